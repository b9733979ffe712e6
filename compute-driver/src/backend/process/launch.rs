//! Starting a sandbox's main process: exact argv (no shell), a clean environment, its
//! own process group, output captured to files, limits applied by the launcher before
//! `exec` (see `crate::launcher`), and the token passed as a file path, never a value.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use proto::pb::compute::v1 as pb;
use tokio::process::{Child, Command};

use super::terminal::{self, Terminal};
use crate::launcher;
use crate::supervisor::{self, Supervisor};
use crate::validate::Limits;
use crate::{ComputeError as Error, Result};

/// Environment variables the driver sets for every sandbox (they override the
/// request's variables of the same name).
pub mod vars {
    /// The sandbox id.
    pub const SANDBOX_ID: &str = "OPENSHELL_SANDBOX_ID";
    /// The sandbox name.
    pub const SANDBOX_NAME: &str = "OPENSHELL_SANDBOX_NAME";
    /// The workspace (may be empty).
    pub const WORKSPACE: &str = "OPENSHELL_WORKSPACE";
    /// Path of the file holding the sandbox token (mode 0600).
    pub const TOKEN_FILE: &str = "OPENSHELL_SANDBOX_TOKEN_FILE";
    /// The requested log level, when given.
    pub const LOG_LEVEL: &str = "OPENSHELL_LOG_LEVEL";
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a launch needs besides the record.
#[derive(Debug)]
pub(crate) struct LaunchPaths {
    /// The driver binary (re-executed as the launcher).
    pub(crate) launcher: PathBuf,
    /// Working directory.
    pub(crate) work_dir: PathBuf,
    /// Token file.
    pub(crate) token_file: PathBuf,
    /// Captured stdout.
    pub(crate) stdout: PathBuf,
    /// Captured stderr.
    pub(crate) stderr: PathBuf,
    /// What to hide from the sandbox (the state directory but its work dir and token,
    /// the configured host paths, /tmp), when the host supports isolation.
    pub(crate) isolation: Option<launcher::Isolation>,
    /// The supervisor option, with where this sandbox's supervisor binds its SSH socket.
    pub(crate) supervisor: Option<(Supervisor, PathBuf)>,
}

/// The environment of a sandbox: PATH (the driver's, or a default) and HOME, then the
/// template's variables, then the spec's, then the driver's own (which win).
pub(crate) fn environment(
    record: &pb::DriverSandbox,
    token_file: &Path,
    work_dir: &Path,
    inherited_path: Option<String>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert(
        "PATH".to_owned(),
        inherited_path.unwrap_or_else(|| DEFAULT_PATH.to_owned()),
    );
    env.insert("HOME".to_owned(), work_dir.display().to_string());
    let spec = record.spec.clone().unwrap_or_default();
    if let Some(template) = &spec.template {
        env.extend(template.environment.clone());
    }
    env.extend(spec.environment.clone());
    env.insert(vars::SANDBOX_ID.to_owned(), record.id.clone());
    // The user-facing name when the gateway gave one (its driver-level name may be the
    // id); else the driver-level name. The id, workspace and token file are the
    // driver's own and always win.
    env.entry(vars::SANDBOX_NAME.to_owned())
        .or_insert_with(|| record.name.clone());
    env.insert(vars::WORKSPACE.to_owned(), record.workspace.clone());
    env.insert(
        vars::TOKEN_FILE.to_owned(),
        token_file.display().to_string(),
    );
    if !spec.log_level.is_empty() {
        env.insert(
            vars::LOG_LEVEL.to_owned(),
            spec.log_level.to_ascii_lowercase(),
        );
    }
    env
}

/// A started launcher.
#[derive(Debug)]
pub(crate) struct Spawned {
    /// The launcher, soon the program.
    pub(crate) child: Child,
    /// The read end of its exec report (see `crate::launcher`).
    pub(crate) report: std::os::fd::OwnedFd,
    /// Its terminal, when it has one (to relay once it runs).
    pub(crate) terminal: Option<Terminal>,
}

/// Starts the main process of `record` through the launcher: the spec's command, or
/// with the supervisor option the supervisor, handed the command in its environment.
///
/// # Errors
/// `Storage` when the output files cannot be opened; `Process` when the launcher
/// cannot be started or no terminal can be opened.
pub(crate) fn spawn(
    record: &pb::DriverSandbox,
    limits: &Limits,
    paths: &LaunchPaths,
) -> Result<Spawned> {
    let spec = record.spec.clone().unwrap_or_default();
    let output = |path: &Path| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(Error::storage("open output file", path))
    };
    let mut args: Vec<OsString> = vec![launcher::SUBCOMMAND.into()];
    args.extend(launcher::limit_args(limits));
    if let Some(isolation) = &paths.isolation {
        args.extend(launcher::isolation_args(isolation));
    }
    let mut env = environment(
        record,
        &paths.token_file,
        &paths.work_dir,
        std::env::var("PATH").ok(),
    );
    let process_error = |source| Error::Process {
        action: format!("start sandbox {}", record.id),
        source,
    };
    // With the supervisor the terminal is its business (the spec says whether the
    // user's process gets one); without, the driver provides it.
    let terminal = if spec.tty && paths.supervisor.is_none() {
        let terminal = terminal::open().map_err(process_error)?;
        args.push("--tty".into());
        args.push(terminal.path.clone().into());
        Some(terminal)
    } else {
        None
    };
    args.push("--".into());
    match &paths.supervisor {
        Some((supervisor, ssh_socket)) => {
            args.push(OsString::from(&supervisor.source));
            let name = env[vars::SANDBOX_NAME].clone();
            let ssh_socket = ssh_socket.display().to_string();
            env.extend(supervisor::environment(
                supervisor,
                record,
                &supervisor::Placement {
                    name: &name,
                    ssh_socket: &ssh_socket,
                    identity: Some((
                        nix::unistd::Uid::effective().as_raw(),
                        nix::unistd::Gid::effective().as_raw(),
                    )),
                },
            ));
        }
        None => args.extend(spec.command.iter().map(OsString::from)),
    }
    let (report, report_writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|errno| process_error(std::io::Error::from(errno)))?;
    let mut command = Command::new(&paths.launcher);
    command
        .args(args)
        .env_clear()
        .envs(env)
        .current_dir(&paths.work_dir)
        // The exec report's write end, as the launcher's stdin (it moves it aside).
        .stdin(Stdio::from(report_writer))
        .stdout(output(&paths.stdout)?)
        .stderr(output(&paths.stderr)?)
        .kill_on_drop(false);
    if terminal.is_none() {
        // With a terminal the launcher starts a session instead, which is a process
        // group of its own too (and may not already lead one).
        command.process_group(0);
    }
    let child = command.spawn().map_err(process_error)?;
    // Our copy of the write end goes with the command: EOF then means the child's
    // copy closed, at its exec (or its exit).
    drop(command);
    Ok(Spawned {
        child,
        report,
        terminal,
    })
}

/// How a launch went, as its exec report says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Launched {
    /// The program runs (the report closed without a word).
    Running,
    /// The launcher failed before the exec, saying why (it exits 127).
    Failed(String),
    /// No answer within the limit.
    TimedOut,
}

/// Waits for the exec report `report` (see `crate::launcher`), up to `limit`.
pub(crate) async fn launched(report: std::os::fd::OwnedFd, limit: std::time::Duration) -> Launched {
    use tokio::io::AsyncReadExt as _;
    let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(report) else {
        return Launched::Failed("the exec report pipe could not be read".into());
    };
    let mut said = Vec::new();
    match tokio::time::timeout(limit, pipe.read_to_end(&mut said)).await {
        Ok(Ok(_)) if said.is_empty() => Launched::Running,
        Ok(Ok(_)) => Launched::Failed(String::from_utf8_lossy(&said).into_owned()),
        Ok(Err(error)) => Launched::Failed(format!("reading the exec report: {error}")),
        Err(_) => Launched::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_variables_win_and_the_token_is_only_a_path() {
        let record = pb::DriverSandbox {
            id: "sb-1".into(),
            name: "demo".into(),
            spec: Some(pb::DriverSandboxSpec {
                sandbox_token: "secret-token".into(),
                environment: [
                    ("A".to_owned(), "spec".to_owned()),
                    (vars::SANDBOX_ID.to_owned(), "spoofed".to_owned()),
                ]
                .into(),
                template: Some(pb::DriverSandboxTemplate {
                    environment: [
                        ("A".to_owned(), "template".to_owned()),
                        ("B".to_owned(), "t".to_owned()),
                    ]
                    .into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let env = environment(&record, Path::new("/s/token"), Path::new("/w"), None);
        assert_eq!(env["A"], "spec");
        assert_eq!(env["B"], "t");
        assert_eq!(env[vars::SANDBOX_ID], "sb-1");
        assert_eq!(env[vars::TOKEN_FILE], "/s/token");
        assert_eq!(env["HOME"], "/w");
        assert_eq!(env["PATH"], DEFAULT_PATH);
        assert!(env.values().all(|v| !v.contains("secret-token")));
    }
}
