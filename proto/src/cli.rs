//! Flags and logging shared by the three binaries (feature `cli`).
//!
//! [`parse`] gives every flag an environment variable named after the binary's prefix
//! (`--socket-group` of `compute-driver` is `COMPUTE_DRIVER_SOCKET_GROUP`), so no flag
//! can be added without one; a flag that declares its own `env` keeps it.

use std::future::Future;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Command, CommandFactory, Parser, ValueEnum};

use tonic::service::Routes;

#[cfg(doc)]
use crate::uds::shutdown_signal;
use crate::uds::{BindError, Health, ServeError, ServeOptions, SocketConfig, bind, serve};

/// The command for `T` with an env var on every flag (see the module docs).
pub fn command<T: CommandFactory>(env_prefix: &str) -> Command {
    with_env_vars(T::command(), env_prefix, &|_| true)
}

/// The command for `T` with env vars on the top-level flags and on the flags of the
/// subcommands `servers` names only: a client subcommand's flags are set on its command
/// line (or by the env vars they declare themselves), never by a generic variable.
pub fn command_with_env_on<T: CommandFactory>(env_prefix: &str, servers: &[&str]) -> Command {
    with_env_vars(T::command(), env_prefix, &|name| servers.contains(&name))
}

fn with_env_vars(command: Command, env_prefix: &str, include: &dyn Fn(&str) -> bool) -> Command {
    let command = command.mut_subcommands(|sub| {
        if include(sub.get_name()) {
            with_env_vars(sub, env_prefix, &|_| true)
        } else {
            sub
        }
    });
    command.mut_args(|arg| {
        let id = arg.get_id().as_str();
        if arg.get_env().is_some() || arg.is_positional() || matches!(id, "help" | "version") {
            return arg;
        }
        let name = format!("{env_prefix}_{}", id.to_uppercase().replace('-', "_"));
        arg.env(name)
    })
}

/// Parses `T` from the process arguments and environment; exits with clap's message
/// on bad input.
pub fn parse<T: Parser>(env_prefix: &str) -> T {
    from_command(command::<T>(env_prefix))
}

/// [`parse`] with env vars on the flags of `servers` only (see [`command_with_env_on`]).
pub fn parse_with_env_on<T: Parser>(env_prefix: &str, servers: &[&str]) -> T {
    from_command(command_with_env_on::<T>(env_prefix, servers))
}

fn from_command<T: Parser>(command: Command) -> T {
    let matches = command.get_matches();
    T::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

/// `--check-config`: load everything start-up would, report, exit.
#[derive(Args, Clone, Debug, Default)]
pub struct CheckArgs {
    /// Load and check everything start-up would (flags, config files, secrets,
    /// kubeconfig, URLs) without serving; exit 0 when it would start, 1 naming each
    /// problem otherwise. Usable as an init step.
    #[arg(long)]
    pub check_config: bool,
}

/// What `--check-config` found.
#[derive(Debug, Default)]
pub struct ConfigCheck {
    problems: Vec<String>,
    notes: Vec<String>,
}

impl ConfigCheck {
    /// Records a problem (a message naming the flag and the fix).
    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    /// Records something checked and found good.
    pub fn note(&mut self, message: impl Into<String>) {
        self.notes.push(message.into());
    }

    /// Records `result`'s error as a problem prefixed with `flag`, or `ok` as a note.
    pub fn expect<T>(&mut self, flag: &str, result: Result<T, String>, ok: &str) -> Option<T> {
        match result {
            Ok(value) => {
                self.note(format!("{flag}: {ok}"));
                Some(value)
            }
            Err(error) => {
                self.problem(format!("{flag}: {error}"));
                None
            }
        }
    }

    /// The problems found so far.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Prints the report (notes to stdout, problems to stderr) and gives the exit code.
    pub fn finish(self, binary: &str) -> std::process::ExitCode {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        for note in &self.notes {
            let _ = writeln!(out, "{binary}: ok: {note}");
        }
        if self.problems.is_empty() {
            let _ = writeln!(out, "{binary}: configuration OK");
            return std::process::ExitCode::SUCCESS;
        }
        let mut err = std::io::stderr().lock();
        for problem in &self.problems {
            let _ = writeln!(err, "{binary}: config error: {problem}");
        }
        std::process::ExitCode::FAILURE
    }
}

/// Where a driver serves and who may connect.
#[derive(Args, Clone, Debug)]
pub struct SocketArgs {
    /// Path of the Unix socket to serve gRPC on (its directory is created if missing).
    #[arg(long, visible_alias = "bind-socket", value_name = "PATH")]
    pub socket: PathBuf,
    /// Group that shares the socket (name or numeric gid): the socket gets mode 0660
    /// and the group's members may connect. Without it the mode is 0600.
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,
    /// Peer UIDs allowed to connect, comma-separated. Default: this process's own UID.
    #[arg(long, value_name = "UID,...", value_delimiter = ',')]
    pub allowed_uids: Vec<u32>,
    /// Peer GIDs allowed to connect, comma-separated (the socket group is added).
    #[arg(long, value_name = "GID,...", value_delimiter = ',')]
    pub allowed_gids: Vec<u32>,
    /// After SIGTERM/SIGINT, how long open calls may run before they are cut
    /// (e.g. 500ms, 10s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

impl SocketArgs {
    /// The socket configuration these flags describe.
    pub fn socket_config(&self) -> SocketConfig {
        SocketConfig {
            path: self.socket.clone(),
            group: self.socket_group.clone(),
            allowed_uids: self.allowed_uids.clone(),
            allowed_gids: self.allowed_gids.clone(),
        }
    }

    /// Checks these flags as binding would, without binding (see [`crate::uds::check`]).
    ///
    /// # Errors
    /// A message naming the flag.
    pub fn check(&self) -> Result<(), String> {
        crate::uds::check(&self.socket_config()).map_err(|e| e.to_string())
    }

    /// The shutdown behaviour these flags describe.
    pub fn serve_options(&self) -> ServeOptions {
        ServeOptions {
            shutdown_grace: self.shutdown_grace,
            ..ServeOptions::default()
        }
    }
}

/// Why a driver's server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The socket could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// Serving failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Binds the socket these flags describe and serves `routes` (which should include
/// `health`'s service) until `shutdown` completes (in binaries: [`shutdown_signal`]),
/// then drains and removes the socket.
///
/// # Errors
/// [`ServerError`] when binding or serving fails.
pub async fn serve_until<F>(
    args: &SocketArgs,
    routes: Routes,
    health: Health,
    shutdown: F,
) -> Result<(), ServerError>
where
    F: Future<Output = ()>,
{
    let socket = bind(&args.socket_config())?;
    serve(socket, routes, health, args.serve_options(), shutdown).await?;
    Ok(())
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logging flags; logs go to stderr.
#[derive(Args, Clone, Debug)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// Log filter: a level (error, warn, info, debug, trace) or per-module directives
    /// such as `info,proto=debug`.
    #[arg(long, global = true, value_name = "FILTER", default_value = "info")]
    pub log_level: String,
}

impl LogArgs {
    /// Installs the global subscriber.
    ///
    /// # Errors
    /// A message naming the bad `--log-level` directive.
    pub fn init(&self) -> Result<(), String> {
        let filter = tracing_subscriber::EnvFilter::try_new(&self.log_level)
            .map_err(|e| format!("--log-level {:?}: {e}", self.log_level))?;
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr);
        let result = match self.log_format {
            LogFormat::Pretty => builder.try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
        result.map_err(|e| format!("cannot install logger: {e}"))
    }
}

/// Parses a duration: `500ms`, `10s`, `2m`, `1h`, `30d`, combinations such as `1h 30m`
/// (humantime's syntax), or a plain number of seconds.
///
/// # Errors
/// A message with the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map(Duration::from_secs)
            .map_err(|e| format!("invalid duration {text:?}: {e}"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("invalid duration {text:?} ({e}): use e.g. 500ms, 10s, 2m, 1h or 30d"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches;

    #[derive(Parser, Debug)]
    struct Demo {
        #[command(flatten)]
        socket: SocketArgs,
        #[command(flatten)]
        log: LogArgs,
        /// Has its own env var.
        #[arg(long, env = "OTHER_NAME")]
        special: Option<String>,
    }

    #[test]
    fn every_flag_gets_a_prefixed_env_var() {
        let cmd = command::<Demo>("DEMO");
        let envs: Vec<_> = cmd
            .get_arguments()
            .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
            .map(|a| {
                (
                    a.get_id().to_string(),
                    a.get_env().map(|e| e.to_string_lossy().into_owned()),
                )
            })
            .collect();
        assert!(envs.iter().all(|(_, env)| env.is_some()), "{envs:?}");
        assert!(envs.contains(&("socket_group".into(), Some("DEMO_SOCKET_GROUP".into()))));
        assert!(envs.contains(&("special".into(), Some("OTHER_NAME".into()))));
    }

    #[test]
    fn bind_socket_is_an_alias_of_socket() {
        let matches = command::<Demo>("DEMO")
            .try_get_matches_from(["demo", "--bind-socket", "/tmp/x.sock"])
            .unwrap();
        let demo = Demo::from_arg_matches(&matches).unwrap();
        assert_eq!(demo.socket.socket, PathBuf::from("/tmp/x.sock"));
        assert_eq!(demo.socket.shutdown_grace, Duration::from_secs(10));
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert!(parse_duration("soon").unwrap_err().contains("500ms"));
        assert!(parse_duration("").is_err());
    }
}
