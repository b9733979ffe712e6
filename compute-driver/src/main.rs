//! `compute-driver`: parse flags, start logging, serve until a shutdown signal. With
//! the hidden first argument `__launch` it is the sandbox launcher instead.

use std::process::ExitCode;

use compute_driver::{Args, ENV_PREFIX, check, launcher, run};

fn main() -> ExitCode {
    let mut raw = std::env::args_os();
    if raw
        .nth(1)
        .is_some_and(|first| first == launcher::SUBCOMMAND)
    {
        return launcher::main(raw.collect());
    }
    let args: Args = proto::cli::parse(ENV_PREFIX);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("compute-driver: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    if args.check.check_config {
        return runtime.block_on(check(&args)).finish("compute-driver");
    }
    if let Err(error) = args.log.init() {
        eprintln!("compute-driver: {error}");
        return ExitCode::from(2);
    }
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "compute-driver stopped");
            ExitCode::FAILURE
        }
    }
}
