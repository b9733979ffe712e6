//! The store on a real directory: handles, owners, replacement, deletion, races.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;

use super::*;

fn owner(workspace: &str) -> Owner {
    Owner {
        provider_name: "openai".into(),
        credential_key: "OPENAI_API_KEY".into(),
        workspace: workspace.into(),
        provider_id: "p-1".into(),
    }
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    (dir, store)
}

#[test]
fn a_stored_value_reads_back_by_handle_from_a_private_file() {
    let (dir, store) = open();
    let handle = store
        .put(&owner("team"), "", &Secret::new("sk-1"), None)
        .unwrap();
    assert!(handle.starts_with(HANDLE_PREFIX), "{handle}");
    assert_eq!(
        store.get(&handle, &owner("team")).unwrap().value.expose(),
        "sk-1"
    );
    let file = dir
        .path()
        .join("store/values")
        .join(format!("{handle}.json"));
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let root = dir.path().join("store");
    assert_eq!(
        fs::metadata(root).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn replacing_keeps_the_handle_and_a_gone_handle_gets_a_new_one() {
    let (_dir, store) = open();
    let first = store
        .put(&owner("team"), "", &Secret::new("v1"), None)
        .unwrap();
    let again = store
        .put(&owner("team"), "o2", &Secret::new("v2"), Some(&first))
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(
        store.get(&first, &owner("team")).unwrap().value.expose(),
        "v2"
    );
    store.delete(&first, &owner("team")).unwrap();
    let fresh = store
        .put(&owner("team"), "", &Secret::new("v3"), Some(&first))
        .unwrap();
    assert_ne!(fresh, first);
    assert!(matches!(
        store.get(&first, &owner("team")),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn another_workspace_cannot_read_replace_or_delete_a_value() {
    let (_dir, store) = open();
    let handle = store
        .put(&owner("team"), "", &Secret::new("v"), None)
        .unwrap();
    let other = owner("other");
    assert!(matches!(
        store.get(&handle, &other),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.put(&other, "", &Secret::new("x"), Some(&handle)),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete(&handle, &other),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.get(&handle, &owner("team")).unwrap().value.expose(),
        "v"
    );
    // A request that does not say its workspace is not refused for that.
    assert!(store.get(&handle, &Owner::default()).is_ok());
}

#[test]
fn handles_that_are_not_ours_name_nothing() {
    let (_dir, store) = open();
    for handle in [
        "",
        "store-../../etc/passwd",
        "store-0123456789ABCDEF0123456789ABCDEF",
        "config:github",
        "store-0123",
    ] {
        assert!(
            matches!(
                store.get(handle, &Owner::default()),
                Err(StoreError::NotFound(_))
            ),
            "{handle}"
        );
        store.delete(handle, &Owner::default()).unwrap();
    }
}

#[test]
fn leftovers_of_an_interrupted_write_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    let handle = store.put(&owner("t"), "", &Secret::new("v"), None).unwrap();
    let torn = root.join("values/store-00000000000000000000000000000000.tmp");
    fs::write(&torn, b"{\"val").unwrap();
    drop(store);
    let store = Store::open(&root).unwrap();
    assert!(!torn.exists());
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(store.get(&handle, &owner("t")).is_ok());
}

/// A replace racing a delete of the same handle: whichever goes first, the outcome is
/// one of the two orders — the value is gone, or it survives under a handle that reads
/// the new value — and no torn file is left.
#[test]
fn a_replace_racing_a_delete_ends_in_one_order() {
    let (dir, store) = open();
    let store = Arc::new(store);
    for round in 0..50 {
        let handle = store
            .put(&owner("t"), "", &Secret::new("old"), None)
            .unwrap();
        let (a, b) = (Arc::clone(&store), Arc::clone(&store));
        let h = handle.clone();
        let replace = std::thread::spawn(move || {
            a.put(
                &owner("t"),
                "",
                &Secret::new(format!("new-{round}")),
                Some(&h),
            )
        });
        let h = handle.clone();
        let delete = std::thread::spawn(move || b.delete(&h, &owner("t")));
        let replaced = replace.join().unwrap().unwrap();
        delete.join().unwrap().unwrap();
        let expected = format!("new-{round}");
        if replaced == handle {
            // Replace first, then delete: gone.
            assert!(store.get(&handle, &owner("t")).is_err());
        } else {
            // Delete first, then a fresh handle with the new value.
            assert_eq!(
                store.get(&replaced, &owner("t")).unwrap().value.expose(),
                expected
            );
            store.delete(&replaced, &owner("t")).unwrap();
        }
    }
    let leftovers: Vec<_> = fs::read_dir(dir.path().join("store/values"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_store_dir_others_control_is_refused_by_flag() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("open");
    fs::create_dir(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
    let error = Store::open(&root).unwrap_err().to_string();
    assert!(error.starts_with("--store-dir: "), "{error}");
}
