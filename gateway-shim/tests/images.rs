//! The container images as a cluster would run them: `.ci/build-images` builds one
//! per binary (from this build's binaries), each archive is unpacked with umoci, and
//! each image's own entrypoint and user (from its config) start in a chroot of its
//! rootfs, the three sharing only a sockets directory bound into each: the drivers
//! serve on their sockets and the gateway's `/readyz` turns ready once both answer.
//! Needs root (chroot, bind mounts in a private mount namespace), umoci and skopeo;
//! skipped without root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const GATEWAY: &str = env!("CARGO_BIN_EXE_gateway-shim");

struct Running(Vec<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Unpacks `archive` into `dir/<name>`; returns the rootfs, the entrypoint and the user.
fn unpack(archive: &Path, dir: &Path, name: &str) -> (PathBuf, Vec<String>, String) {
    let layout = dir.join(format!("{name}-layout"));
    let ok = Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(format!("oci:{}:t", layout.display()))
        .status()
        .unwrap();
    assert!(ok.success(), "skopeo could not read {}", archive.display());
    let bundle = dir.join(name);
    let ok = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:t", layout.display()))
        .arg(&bundle)
        .status()
        .unwrap();
    assert!(ok.success(), "umoci could not unpack {name}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let args: Vec<String> = config["process"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let user = format!(
        "{}:{}",
        config["process"]["user"]["uid"], config["process"]["user"]["gid"]
    );
    (bundle.join("rootfs"), args, user)
}

/// Starts the image's entrypoint with `extra` flags in a chroot of `rootfs`, with the
/// host's `sockets` bound at /run/openshell, as the image's user.
fn start(
    rootfs: &Path,
    entrypoint: &[String],
    user: &str,
    sockets: &Path,
    extra: &[&str],
    log: &Path,
) -> Child {
    for dir in ["run/openshell", "proc", "dev"] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    // What a container runtime gives every container: /proc and /dev.
    let script = r#"mount --bind "$1" "$2/run/openshell" && mount -t proc proc "$2/proc" && mount --rbind /dev "$2/dev" && root=$2 && user=$3 && shift 3 && exec chroot --userspec="$user" "$root" "$@""#;
    Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(sockets)
        .arg(rootfs)
        .arg(user)
        .args(entrypoint)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn each_image_starts_from_its_rootfs_and_the_gateway_turns_ready() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping: chroot and bind mounts need root");
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let bin_dir = support::ensure_driver_binaries(GATEWAY);
    let dir = proto::testing::short_dir();
    let images = dir.path().join("images");
    let built = Command::new(repo.join(".ci/build-images"))
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--out")
        .arg(&images)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        ".ci/build-images failed (needs umoci and skopeo: apt-get install umoci skopeo):\n{}",
        String::from_utf8_lossy(&built.stderr)
    );

    let sockets = dir.path().join("s");
    for sub in ["", "c", "k"] {
        let path = sockets.join(sub);
        std::fs::create_dir_all(&path).unwrap();
        std::os::unix::fs::chown(&path, Some(65532), Some(65532)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o750)).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics = format!("--metrics-addr=127.0.0.1:{port}");
    let mut running = Running(Vec::new());
    let mut users = Vec::new();
    for (name, extra) in [
        (
            "compute-driver",
            vec!["--socket=/run/openshell/c/compute.sock"],
        ),
        (
            "credentials-driver",
            vec!["--socket=/run/openshell/k/credentials.sock"],
        ),
        (
            "gateway-shim",
            vec![
                "serve",
                "--compute-driver-socket=/run/openshell/c/compute.sock",
                "--credentials-driver-socket=/run/openshell/k/credentials.sock",
                "--listen=127.0.0.1:0",
                "--db-url=sqlite:/home/nonroot/store/gateway.db",
                &metrics,
            ],
        ),
    ] {
        let (rootfs, entrypoint, user) =
            unpack(&images.join(format!("{name}.tar")), dir.path(), name);
        assert_eq!(
            entrypoint,
            vec![format!("/usr/local/bin/{name}")],
            "{name}'s entrypoint"
        );
        users.push(user.clone());
        let log = dir.path().join(format!("{name}.log"));
        running
            .0
            .push(start(&rootfs, &entrypoint, &user, &sockets, &extra, &log));
    }
    assert!(
        users.iter().all(|u| u == "65532:65532"),
        "non-root: {users:?}"
    );

    let logs = || {
        ["compute-driver", "credentials-driver", "gateway-shim"]
            .iter()
            .map(|n| {
                let log = dir.path().join(format!("{n}.err"));
                format!(
                    "--- {n}\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            })
            .collect::<String>()
    };
    let client = reqwest::Client::new();
    let mut status = None;
    for _ in 0..150 {
        status = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16());
        if status == Some(200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status,
        Some(200),
        "gateway /readyz never turned ready:\n{}",
        logs()
    );
    for socket in ["c/compute.sock", "k/credentials.sock"] {
        let meta = std::fs::metadata(sockets.join(socket)).unwrap();
        assert_eq!(
            std::os::unix::fs::MetadataExt::uid(&meta),
            65532,
            "{socket} served by the image's user"
        );
    }
}
