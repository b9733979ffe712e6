//! The launcher: `compute-driver __launch [--rlimit-as BYTES] -- PROGRAM ARGS...`.
//!
//! The driver starts every sandbox through its own binary in this mode, already in the
//! sandbox's process group, working directory and environment. The launcher applies
//! the resource limits to itself and then `exec`s the sandbox's program, so the limits
//! hold from the first instruction and `/proc/<pid>/cmdline` is exactly the requested
//! argv. (Doing this between fork and exec in the driver would need `unsafe`.)

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use nix::sys::resource::{Resource, setrlimit};

use crate::validate::Limits;

/// The hidden first argument that selects launcher mode.
pub const SUBCOMMAND: &str = "__launch";

/// Exit status when the program cannot be executed (as shells do).
const CANNOT_EXECUTE: u8 = 127;

/// Launcher flags for `limits`. Memory becomes `RLIMIT_AS` (address space, a ceiling
/// on virtual memory); CPU cannot be limited with rlimits and is reported as not
/// enforced by the backend.
pub fn limit_args(limits: &Limits) -> Vec<OsString> {
    let mut args = Vec::new();
    if let Some(bytes) = limits.memory_bytes {
        args.push("--rlimit-as".into());
        args.push(bytes.to_string().into());
    }
    args
}

/// Runs launcher mode with the arguments after [`SUBCOMMAND`]; returns only on error.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let mut args = args.into_iter();
    let mut rlimit_as = None;
    loop {
        match args.next().as_ref().and_then(|a| a.to_str()) {
            Some("--rlimit-as") => {
                rlimit_as = args.next().and_then(|v| v.to_str()?.parse::<u64>().ok())
            }
            Some("--") => break,
            other => {
                eprintln!("compute-driver launcher: unexpected argument {other:?}");
                return ExitCode::from(CANNOT_EXECUTE);
            }
        }
    }
    let argv: Vec<OsString> = args.collect();
    let Some((program, rest)) = argv.split_first() else {
        eprintln!("compute-driver launcher: no program given");
        return ExitCode::from(CANNOT_EXECUTE);
    };
    if let Some(bytes) = rlimit_as
        && let Err(error) = setrlimit(Resource::RLIMIT_AS, bytes, bytes)
    {
        eprintln!("compute-driver launcher: cannot set the memory limit: {error}");
        return ExitCode::from(CANNOT_EXECUTE);
    }
    let error = std::process::Command::new(program).args(rest).exec();
    eprintln!(
        "compute-driver launcher: cannot run {}: {error}",
        program.to_string_lossy()
    );
    ExitCode::from(CANNOT_EXECUTE)
}
