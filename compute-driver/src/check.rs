//! `compute-driver --check-config`: the socket flags, the state directory, the hidden
//! paths, and for the Kubernetes backend the kubeconfig (or in-cluster config), the
//! gateway id and the namespace, checked without serving or calling the API server.

use proto::cli::ConfigCheck;

use crate::{Args, BackendKind};

/// Checks `args` as start-up would use them.
pub async fn check(args: &Args) -> ConfigCheck {
    let mut report = ConfigCheck::default();
    report.expect("--socket", args.socket.check(), "path, directory and group");
    match args.supervisor.supervisor(args.backend) {
        Ok(None) => {}
        Ok(Some(supervisor)) => report.note(format!(
            "supervisor option: {} as each sandbox's entrypoint, gateway at {}",
            supervisor.source, supervisor.endpoint
        )),
        // The message names the flag.
        Err(problem) => report.problem(problem),
    }
    match args.backend {
        BackendKind::Process => {
            let state_dir = args.state_dir();
            let found = if state_dir.exists() {
                proto::private::check_dir(&state_dir)
            } else {
                Ok(())
            };
            report.expect("--state-dir", found, "private (created 0700 if missing)");
            for path in &args.process.hide_path {
                if !path.is_absolute() {
                    report.problem(format!(
                        "--hide-path {}: must be absolute (sandboxes start in their own directory)",
                        path.display()
                    ));
                }
            }
        }
        BackendKind::Kubernetes => {
            let config = args.kube.config();
            let named =
                crate::backend::kubernetes::config::label_value("--gateway-id", &config.gateway_id)
                    .and_then(|()| config.namespace_of("--kube-namespace", "").map(drop))
                    .map_err(|e| e.to_string());
            report.expect("--gateway-id, --kube-namespace", named, "valid names");
            let client = crate::backend::kubernetes::client(&config)
                .await
                .map(drop)
                .map_err(|e| e.to_string());
            report.expect(
                "--kubeconfig",
                client,
                "Kubernetes configuration loads (the API server is not called)",
            );
        }
    }
    report
}
