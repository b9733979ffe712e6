//! Every shell command in README.md, run as written (`tests/readme/run_readme.py`): one
//! bash session per section, in a copy of the checkout with its own build, servers
//! started in the background where the README leaves them running, and the README's
//! yaml examples compared with the files its commands use.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

#[test]
fn every_readme_command_runs_as_written() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new("python3")
        .arg(repo.join("tests/readme/run_readme.py"))
        .arg("--repo")
        .arg(repo)
        .output()
        .expect("python3 runs the README check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok: Running the pieces yourself"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
}
