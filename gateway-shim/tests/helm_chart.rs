//! The Helm chart, rendered by Helm's own engine and validated against the Kubernetes
//! schemas, its pod's properties asserted and every container's rendered command line
//! run through the real binary's `--check-config` (`helm/tests/chart_test.py`; its
//! Python packages are installed from `helm/tests/requirements.txt` when missing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-shim");

fn python_has_packages() -> bool {
    Command::new("python3")
        .args(["-c", "import helm_python, kubernetes_validate, yaml"])
        .output()
        .is_ok_and(|out| out.status.success())
}

#[test]
fn the_chart_renders_validates_and_its_command_lines_pass_the_config_check() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    if !python_has_packages() {
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "-q", "-r"])
            .arg(repo.join("helm/tests/requirements.txt"))
            .status()
            .expect("python3 is needed for the chart test");
        assert!(
            status.success(),
            "installing helm/tests/requirements.txt failed"
        );
    }
    let bin_dir = support::ensure_driver_binaries(GATEWAY);
    let out = Command::new("python3")
        .arg(repo.join("helm/tests/chart_test.py"))
        .arg("--bin-dir")
        .arg(&bin_dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok: examples/kind.yaml"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
}
