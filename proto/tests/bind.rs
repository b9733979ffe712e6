//! Safe bind: stale sockets replaced, live ones refused, unsafe parents refused, modes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};

use proto::{BindError, SocketConfig, bind};
use support::{config, short_dir, sock};

#[test]
fn a_stale_socket_is_replaced() {
    let dir = short_dir();
    let path = sock(&dir);
    drop(UnixListener::bind(&path).unwrap()); // leaves a socket file nobody answers on
    let before = std::fs::metadata(&path).unwrap().ino();

    let bound = bind(&config(&path)).unwrap();
    assert_ne!(std::fs::metadata(&path).unwrap().ino(), before);
    UnixStream::connect(&path).expect("the new socket answers");
    drop(bound);
    assert!(!path.exists(), "dropping the bound socket unlinks it");
}

#[test]
fn a_live_socket_is_not_stolen() {
    let dir = short_dir();
    let path = sock(&dir);
    let _live = UnixListener::bind(&path).unwrap();
    let inode = std::fs::metadata(&path).unwrap().ino();

    let error = bind(&config(&path)).unwrap_err();
    assert!(matches!(error, BindError::InUse { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("in use by another running instance")
    );
    assert!(error.to_string().contains("d.sock"));
    assert_eq!(
        std::fs::metadata(&path).unwrap().ino(),
        inode,
        "live socket untouched"
    );
}

#[test]
fn a_regular_file_at_the_path_is_never_deleted() {
    let dir = short_dir();
    let path = sock(&dir);
    std::fs::write(&path, "precious").unwrap();
    let error = bind(&config(&path)).unwrap_err();
    assert!(matches!(error, BindError::NotASocket { .. }), "{error}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}

#[test]
fn a_symlinked_parent_is_refused() {
    let dir = short_dir();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();

    let error = bind(&config(&link.join("d.sock"))).unwrap_err();
    assert!(
        matches!(error, BindError::SymlinkedParent { .. }),
        "{error}"
    );
    assert!(
        std::fs::read_dir(&real).unwrap().next().is_none(),
        "nothing created"
    );
}

#[test]
fn a_world_writable_parent_without_sticky_bit_is_refused() {
    let dir = short_dir();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let error = bind(&config(&open.join("d.sock"))).unwrap_err();
    assert!(matches!(error, BindError::ForeignParent { .. }), "{error}");
}

#[test]
fn a_foreign_owned_parent_is_refused() {
    let dir = short_dir();
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    // Needs root (or CAP_CHOWN) to give the directory away; skip otherwise.
    if std::os::unix::fs::chown(&foreign, Some(65534), None).is_err() {
        eprintln!("skipping: cannot chown test directory");
        return;
    }
    let error = bind(&config(&foreign.join("d.sock"))).unwrap_err();
    assert!(
        matches!(error, BindError::ForeignParent { owner: 65534, .. }),
        "{error}"
    );
}

#[test]
fn a_missing_parent_is_created_private() {
    let dir = short_dir();
    let path = dir.path().join("a/b/d.sock");
    let _bound = bind(&config(&path)).unwrap();
    let mode = std::fs::metadata(dir.path().join("a/b"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o750);
}

#[test]
fn the_default_mode_is_0600() {
    let dir = short_dir();
    let path = sock(&dir);
    let bound = bind(&config(&path)).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(bound.mode(), 0o600);
}

#[test]
fn a_configured_group_gives_mode_0660_and_that_group() {
    let dir = short_dir();
    let path = sock(&dir);
    let gid = nix::unistd::Gid::effective().as_raw();
    let bound = bind(&SocketConfig {
        group: Some(gid.to_string()),
        ..config(&path)
    })
    .unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), gid);
    assert!(
        bound.peer_policy().allows(4242, gid),
        "group members are allowed peers"
    );
}

#[test]
fn an_unknown_group_is_named_in_the_error() {
    let dir = short_dir();
    let error = bind(&SocketConfig {
        group: Some("no-such-group-xyz".into()),
        ..config(&sock(&dir))
    })
    .unwrap_err();
    assert!(error.to_string().contains("no-such-group-xyz"), "{error}");
    assert!(!sock(&dir).exists());
}

#[test]
fn an_overlong_path_is_refused_with_the_limit() {
    let long = format!("/tmp/{}/d.sock", "x".repeat(120));
    let error = bind(&config(std::path::Path::new(&long))).unwrap_err();
    assert!(matches!(error, BindError::PathTooLong { .. }));
    assert!(error.to_string().contains("107"), "{error}");
}

#[test]
fn dropping_does_not_unlink_a_socket_another_instance_published() {
    let dir = short_dir();
    let path = sock(&dir);
    let first = bind(&config(&path)).unwrap();
    std::fs::remove_file(&path).unwrap();
    let second = UnixListener::bind(&path).unwrap();
    drop(first);
    assert!(path.exists(), "the newer socket survives");
    drop(second);
}
