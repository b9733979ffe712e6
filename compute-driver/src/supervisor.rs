//! Starting an upstream gateway's sandbox supervisor (`openshell-sandbox`) as a
//! sandbox's entrypoint, with the user's process handed over as upstream's drivers
//! hand it (see `shared/contracts/compute-driver.md`, "Launching the sandbox
//! supervisor"). Both backends use these pure functions; the process backend runs the
//! supervisor from a host path, the Kubernetes backend side-loads it from an image.
//!
//! Also the default process of a create that names none: upstream's interactive shell.

use std::collections::BTreeMap;

use proto::pb::compute::v1 as pb;

/// What a create with no command runs (with a terminal), as upstream gateways send it.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/bash", "-l"];

/// Where the Kubernetes backend puts the side-loaded supervisor in the sandbox
/// container (an `emptyDir` mounted read-only).
pub const SIDELOAD_DIR: &str = "/opt/openshell/bin";

/// The supervisor's program inside [`SIDELOAD_DIR`].
pub const SIDELOADED_PROGRAM: &str = "/opt/openshell/bin/openshell-sandbox";

/// Where the supervisor binds its SSH socket in a pod (upstream's default).
pub const POD_SSH_SOCKET: &str = "/run/openshell/ssh.sock";

/// The variables the supervisor reads (names as upstream spells them).
pub mod vars {
    /// The sandbox name.
    pub const SANDBOX: &str = "OPENSHELL_SANDBOX";
    /// The sandbox id.
    pub const SANDBOX_ID: &str = "OPENSHELL_SANDBOX_ID";
    /// The gateway's gRPC endpoint as seen from the sandbox.
    pub const ENDPOINT: &str = "OPENSHELL_ENDPOINT";
    /// Where the supervisor binds its in-sandbox SSH socket.
    pub const SSH_SOCKET_PATH: &str = "OPENSHELL_SSH_SOCKET_PATH";
    /// The spec's log level.
    pub const LOG_LEVEL: &str = "OPENSHELL_LOG_LEVEL";
    /// The user's process (see [`super::main_process_spec`]).
    pub const MAIN_PROCESS_SPEC: &str = "OPENSHELL_MAIN_PROCESS_SPEC";
    /// Numeric user to run the user's process as.
    pub const SANDBOX_UID: &str = "OPENSHELL_SANDBOX_UID";
    /// Numeric group to run the user's process as.
    pub const SANDBOX_GID: &str = "OPENSHELL_SANDBOX_GID";
}

/// The supervisor option, as configured (`--supervisor`/`--supervisor-image` and
/// `--supervisor-endpoint`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Supervisor {
    /// Where the supervisor comes from: a host path (process backend) or an image
    /// (Kubernetes backend).
    pub source: String,
    /// The gateway's gRPC endpoint as sandboxes reach it.
    pub endpoint: String,
}

/// Fills in a create that names no process: the default shell, with a terminal.
pub fn default_process(spec: &mut pb::DriverSandboxSpec) {
    if spec.command.is_empty() {
        spec.command = DEFAULT_SHELL.map(String::from).to_vec();
        spec.tty = true;
    }
}

/// The user's process as the supervisor reads it: `{"version":1,"command":[…],"tty":…}`
/// (plain JSON, the form every supervisor version reads; environment variables carry
/// it unchanged on both backends).
pub fn main_process_spec(spec: &pb::DriverSandboxSpec) -> String {
    serde_json::json!({
        "version": 1,
        "command": spec.command,
        "tty": spec.tty,
    })
    .to_string()
}

/// Where one sandbox's supervisor runs.
#[derive(Clone, Debug)]
pub struct Placement<'a> {
    /// The user-facing sandbox name.
    pub name: &'a str,
    /// Where its SSH socket goes.
    pub ssh_socket: &'a str,
    /// The identity to run the user's process as, when the backend knows it.
    pub identity: Option<(u32, u32)>,
}

/// The supervisor's variables for `sandbox` (they override the spec's own: clients may
/// not set them).
pub fn environment(
    supervisor: &Supervisor,
    sandbox: &pb::DriverSandbox,
    placement: &Placement<'_>,
) -> BTreeMap<String, String> {
    let spec = sandbox.spec.clone().unwrap_or_default();
    let mut env = BTreeMap::from([
        (vars::SANDBOX.to_owned(), placement.name.to_owned()),
        (vars::SANDBOX_ID.to_owned(), sandbox.id.clone()),
        (vars::ENDPOINT.to_owned(), supervisor.endpoint.clone()),
        (
            vars::SSH_SOCKET_PATH.to_owned(),
            placement.ssh_socket.to_owned(),
        ),
        (vars::MAIN_PROCESS_SPEC.to_owned(), main_process_spec(&spec)),
    ]);
    if !spec.log_level.is_empty() {
        env.insert(
            vars::LOG_LEVEL.to_owned(),
            spec.log_level.to_ascii_lowercase(),
        );
    }
    if let Some((uid, gid)) = placement.identity {
        env.insert(vars::SANDBOX_UID.to_owned(), uid.to_string());
        env.insert(vars::SANDBOX_GID.to_owned(), gid.to_string());
    }
    env
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn decode(spec: &str) -> serde_json::Value {
        serde_json::from_str(spec).unwrap()
    }

    #[test]
    fn a_create_without_a_command_gets_the_default_shell_with_a_terminal() {
        let mut spec = pb::DriverSandboxSpec::default();
        default_process(&mut spec);
        assert_eq!(spec.command, ["/bin/bash", "-l"]);
        assert!(spec.tty);
        let mut given = pb::DriverSandboxSpec {
            command: vec!["sleep".into(), "1".into()],
            ..Default::default()
        };
        default_process(&mut given);
        assert_eq!(given.command, ["sleep", "1"]);
        assert!(!given.tty);
    }

    #[test]
    fn the_main_process_is_versioned_json_with_command_and_tty() {
        let spec = pb::DriverSandboxSpec {
            command: vec!["python".into(), "-c".into(), "print('a b')".into()],
            tty: true,
            ..Default::default()
        };
        assert_eq!(
            decode(&main_process_spec(&spec)),
            serde_json::json!({"version": 1, "command": ["python", "-c", "print('a b')"], "tty": true})
        );
    }

    #[test]
    fn the_supervisor_variables_win_over_the_spec() {
        let sandbox = pb::DriverSandbox {
            id: "sb-1".into(),
            name: "sb-1".into(),
            spec: Some(pb::DriverSandboxSpec {
                log_level: "DEBUG".into(),
                command: vec!["sleep".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let supervisor = Supervisor {
            source: "/usr/bin/openshell-sandbox".into(),
            endpoint: "http://gw:8080".into(),
        };
        let env = environment(
            &supervisor,
            &sandbox,
            &Placement {
                name: "demo",
                ssh_socket: "/run/s.sock",
                identity: Some((1000, 100)),
            },
        );
        assert_eq!(env[vars::SANDBOX], "demo");
        assert_eq!(env[vars::SANDBOX_ID], "sb-1");
        assert_eq!(env[vars::ENDPOINT], "http://gw:8080");
        assert_eq!(env[vars::SSH_SOCKET_PATH], "/run/s.sock");
        assert_eq!(env[vars::LOG_LEVEL], "debug");
        assert_eq!(env[vars::SANDBOX_UID], "1000");
        assert_eq!(env[vars::SANDBOX_GID], "100");
        assert_eq!(decode(&env[vars::MAIN_PROCESS_SPEC])["command"][0], "sleep");
    }
}
