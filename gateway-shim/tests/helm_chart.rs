//! The Helm chart, rendered by Helm's own engine and validated against the Kubernetes
//! schemas, its pod's properties asserted and every container's rendered command line
//! run through the real binary's `--check-config` (`helm/tests/chart_test.py`; its
//! Python packages are installed from `helm/tests/requirements.txt` when missing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-shim");

#[test]
fn the_chart_renders_validates_and_its_command_lines_pass_the_config_check() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let bin_dir = support::ensure_driver_binaries(GATEWAY);
    let (ok, text) = support::run_python(
        &repo.join("helm/tests/requirements.txt"),
        "import helm_python, kubernetes_validate, yaml",
        &repo.join("helm/tests/chart_test.py"),
        &["--bin-dir".as_ref(), bin_dir.as_os_str()],
    );
    assert!(ok, "{text}");
    assert!(text.contains("ok: examples/kind.yaml"), "{text}");
    // Tenants, attribute rules and the trusted-proxy listener, as an operator sets them.
    assert!(text.contains("ok: examples/tenants.yaml"), "{text}");
    assert!(
        text.contains("ok: refused {'gateway': {'trustedProxy'"),
        "{text}"
    );
    assert!(
        text.contains("ok: refused {'gateway': {'controlPlane'"),
        "{text}"
    );
    assert!(!text.contains("FAIL"), "{text}");
}
