//! `gateway-shim`: parse flags, start logging, run until a shutdown signal.
//!
//! A server (`serve`, `dev`) reports why it stopped as a log line; a client command
//! prints its error once, as text or (with `-o json`) as a JSON object on stderr.

use std::process::ExitCode;

use gateway_shim::{Args, Command, ENV_PREFIX, SERVER_COMMANDS, check_serve, run};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Args = proto::cli::parse_with_env_on(ENV_PREFIX, SERVER_COMMANDS);
    if let Command::Serve(gateway) = &args.command
        && gateway.check.check_config
    {
        return check_serve(gateway).finish("gateway-shim");
    }
    if let Err(error) = args.log.init() {
        eprintln!("gateway-shim: {error}");
        return ExitCode::from(2);
    }
    let server = matches!(args.command, Command::Serve(_) | Command::Dev(_));
    let json = gateway_shim::client::wants_json(&args.command);
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if server => {
            tracing::error!(%error, "gateway-shim stopped");
            ExitCode::FAILURE
        }
        Err(error) => {
            if json {
                eprintln!("{}", serde_json::json!({ "error": error.to_string() }));
            } else {
                eprintln!("gateway-shim: {error}");
            }
            ExitCode::FAILURE
        }
    }
}
