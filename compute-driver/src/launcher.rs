//! The launcher: `compute-driver __launch [FLAGS] -- PROGRAM ARGS...`.
//!
//! The driver starts every sandbox through its own binary in this mode, already in the
//! sandbox's process group, working directory and environment. The launcher confines
//! itself and then `exec`s the sandbox's program, so the confinement holds from the
//! program's first instruction and `/proc/<pid>/cmdline` is exactly the requested argv.
//! (Doing this between fork and exec in the driver would need `unsafe`.)
//!
//! Flags:
//! - `--rlimit-as BYTES`: the memory limit, as `RLIMIT_AS` (a ceiling on virtual memory).
//! - `--isolate DIR` with `--keep PATH`...: in a private mount namespace (inside a
//!   user namespace when not root), cover `DIR` (the driver's state directory) with an
//!   empty tmpfs and bind back only the `PATH`s given (the sandbox's working directory
//!   and token file), so a sandbox sees neither other workspaces nor other sandboxes'
//!   tokens.
//! - `--hide PATH`...: host paths covered whole (a directory by an empty tmpfs, a file or socket by `/dev/null`): the driver's socket, a gateway's files.
//! - `--private-tmp`: a fresh tmpfs on `/tmp`.
//! - `--tty PATH`: the program gets the pseudo-terminal `PATH` (a pty's subsidiary
//!   side, opened by the driver) as its controlling terminal and its stdin, stdout and
//!   stderr, in a new session (whose id is the process group the driver signals).
//!
//! Exec report: the launcher's stdin, as the driver starts it, is the write end of a
//! pipe. The launcher moves it to a close-on-exec descriptor (and gives the program
//! `/dev/null` as stdin): a successful `exec` closes it, so the driver reads EOF with
//! no data the moment the program runs, whatever its argv becomes (`#!` scripts
//! included); a failure writes its message there first. No argv comparison, no polling.

mod isolate;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

use nix::sys::resource::{Resource, setrlimit};

use crate::validate::Limits;
pub use isolate::probe as isolation_supported;

/// The hidden first argument that selects launcher mode.
pub const SUBCOMMAND: &str = "__launch";

/// Exit status when the program cannot be executed (as shells use).
const CANNOT_EXECUTE: u8 = 127;

/// Launcher flags for `limits`. CPU cannot be limited with rlimits; the backend
/// reports it as not enforced.
pub fn limit_args(limits: &Limits) -> Vec<OsString> {
    let mut args = Vec::new();
    if let Some(bytes) = limits.memory_bytes {
        args.push("--rlimit-as".into());
        args.push(bytes.to_string().into());
    }
    args
}

/// What one sandbox may not see.
#[derive(Clone, Debug, Default)]
pub struct Isolation {
    /// The state directory, hidden but for `keep`.
    pub root: PathBuf,
    /// What the sandbox keeps under `root` (its working directory and token file).
    pub keep: Vec<PathBuf>,
    /// Host paths hidden whole.
    pub hide: Vec<PathBuf>,
    /// A private `/tmp`.
    pub private_tmp: bool,
}

/// Launcher flags that apply `isolation`.
pub fn isolation_args(isolation: &Isolation) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--isolate".into(), isolation.root.clone().into()];
    for path in &isolation.keep {
        args.push("--keep".into());
        args.push(path.into());
    }
    for path in &isolation.hide {
        args.push("--hide".into());
        args.push(path.into());
    }
    if isolation.private_tmp {
        args.push("--private-tmp".into());
    }
    args
}

#[derive(Debug, Default)]
struct Plan {
    rlimit_as: Option<u64>,
    isolate: Option<isolate::Confinement>,
    tty: Option<PathBuf>,
    argv: Vec<OsString>,
}

impl Plan {
    fn confinement(&mut self) -> &mut isolate::Confinement {
        self.isolate.get_or_insert_with(Default::default)
    }
}

fn parse(args: Vec<OsString>) -> Result<Plan, String> {
    let mut plan = Plan::default();
    let mut args = args.into_iter();
    loop {
        let flag = args.next();
        let mut value = || args.next().ok_or_else(|| format!("{flag:?} needs a value"));
        match flag.as_ref().and_then(|f| f.to_str()) {
            Some("--rlimit-as") => {
                let v = value()?;
                plan.rlimit_as = Some(
                    v.to_str()
                        .and_then(|v| v.parse().ok())
                        .ok_or("bad --rlimit-as")?,
                );
            }
            Some("--isolate") => plan.confinement().root = value()?.into(),
            Some("--keep") => plan.confinement().keep.push(value()?.into()),
            Some("--hide") => plan.confinement().hide.push(value()?.into()),
            Some("--private-tmp") => plan.confinement().private_tmp = true,
            Some("--tty") => plan.tty = Some(value()?.into()),
            Some("--") => break,
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    plan.argv = args.collect();
    if plan.argv.is_empty() {
        return Err("no program given".into());
    }
    Ok(plan)
}

/// Runs launcher mode with the arguments after [`SUBCOMMAND`]; returns only on error.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let report = take_report();
    match confine_and_exec(args) {
        Ok(never) => match never {},
        Err(message) => {
            if let Some(mut report) = report {
                use std::io::Write as _;
                let _ = report.write_all(message.as_bytes());
            }
            eprintln!("compute-driver launcher: {message}");
            ExitCode::from(CANNOT_EXECUTE)
        }
    }
}

/// The exec report pipe (see the module docs): stdin moved to a close-on-exec
/// descriptor, stdin itself replaced by `/dev/null`.
fn take_report() -> Option<std::fs::File> {
    use std::os::fd::AsFd as _;
    // `try_clone_to_owned` duplicates with F_DUPFD_CLOEXEC.
    let report = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    let null = std::fs::File::open("/dev/null").ok()?;
    nix::unistd::dup2_stdin(&null).ok()?;
    Some(std::fs::File::from(report))
}

fn confine_and_exec(args: Vec<OsString>) -> Result<std::convert::Infallible, String> {
    let plan = parse(args)?;
    if let Some(tty) = &plan.tty {
        terminal(tty)?;
    }
    if let Some(bytes) = plan.rlimit_as {
        setrlimit(Resource::RLIMIT_AS, bytes, bytes)
            .map_err(|e| format!("cannot set the memory limit: {e}"))?;
    }
    if let Some(confinement) = &plan.isolate {
        if confinement.root.as_os_str().is_empty() {
            return Err("--keep, --hide and --private-tmp need --isolate".into());
        }
        isolate::confine(confinement).map_err(|e| format!("cannot isolate the sandbox: {e}"))?;
    }
    let (program, rest) = plan.argv.split_first().ok_or("no program given")?;
    let error = std::process::Command::new(program).args(rest).exec();
    Err(format!("cannot run {}: {error}", program.to_string_lossy()))
}

/// Makes `path` this process's controlling terminal and its standard streams: a new
/// session has none, and the first terminal its leader opens (without `O_NOCTTY`)
/// becomes it.
fn terminal(path: &std::path::Path) -> Result<(), String> {
    nix::unistd::setsid().map_err(|e| format!("cannot start a session for the terminal: {e}"))?;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open the terminal {}: {e}", path.display()))?;
    nix::unistd::dup2_stdin(&tty)
        .and_then(|()| nix::unistd::dup2_stdout(&tty))
        .and_then(|()| nix::unistd::dup2_stderr(&tty))
        .map_err(|e| format!("cannot attach the terminal: {e}"))
}
