//! The harness against a conforming driver we did not write in Rust: a small Python
//! ComputeDriver on grpcio (`tests/grpcio/python_driver.py`), which sends response
//! headers only with its first message and answers NOT_FOUND to Stop of a deleted
//! sandbox, as upstream's drivers do. `driver-conformance`, run as users run it,
//! passes it. (That the harness still fails each deliberately broken driver is
//! `harness_catches_broken_drivers.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const HARNESS: &str = env!("CARGO_BIN_EXE_driver-conformance");

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_harness_passes_a_conforming_python_driver() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let ready = Command::new("python3")
        .args(["-c", "import grpc, grpc_tools, grpc_health"])
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "-q", "-r"])
            .arg(repo.join("tests/grpcio/requirements.txt"))
            .status()
            .unwrap();
        assert!(
            status.success(),
            "pip install -r tests/grpcio/requirements.txt"
        );
    }
    let dir = proto::testing::short_dir();
    let socket = dir.path().join("py.sock");
    let log = std::fs::File::create(dir.path().join("driver.log")).unwrap();
    let _driver = KillOnDrop(
        Command::new("python3")
            .arg(repo.join("tests/grpcio/python_driver.py"))
            .arg("--socket")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    for _ in 0..200 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let inputs = dir.path().join("inputs.yaml");
    std::fs::write(&inputs, "compute:\n  command: [sleep, \"300\"]\n").unwrap();
    let out = Command::new(HARNESS)
        .arg("--compute-socket")
        .arg(&socket)
        .arg("--config")
        .arg(&inputs)
        .output()
        .unwrap();
    let text = format!(
        "{}{}\n--- driver log\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.path().join("driver.log")).unwrap_or_default()
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains(" passed, 0 failed, 0 skipped"), "{text}");
}
