//! The store's rules, one behaviour per test.
#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

fn store_with_namespace() -> Store {
    let mut store = Store::new(100);
    store
        .create("namespaces", "", json!({"metadata": {"name": "ws"}}))
        .unwrap();
    store
}

#[test]
fn creates_get_versions_and_conflicts() {
    let mut store = store_with_namespace();
    let pod = store
        .create(
            "pods",
            "ws",
            json!({"metadata": {"name": "p", "labels": {"app": "a"}}, "spec": {}}),
        )
        .unwrap();
    assert_eq!(pod["metadata"]["resourceVersion"], "2");
    assert_eq!(pod["kind"], "Pod");
    let again = store
        .create("pods", "ws", json!({"metadata": {"name": "p"}}))
        .unwrap_err();
    assert_eq!((again.code, again.reason), (409, "AlreadyExists"));
    let missing_ns = store
        .create("pods", "nope", json!({"metadata": {"name": "p"}}))
        .unwrap_err();
    assert_eq!(missing_ns.code, 404);
    let invalid = store
        .create("pods", "ws", json!({"metadata": {"name": "Bad_Name"}}))
        .unwrap_err();
    assert_eq!((invalid.code, invalid.reason), (422, "Invalid"));
    assert_eq!(invalid.status()["kind"], "Status");

    let mut stale = pod.clone();
    store
        .merge_patch("pods", "ws", "p", &json!({"status": {"phase": "Running"}}))
        .unwrap();
    stale["spec"] = json!({"x": 1});
    let conflict = store.replace("pods", "ws", "p", stale).unwrap_err();
    assert_eq!((conflict.code, conflict.reason), (409, "Conflict"));
    assert_eq!(
        store.get("pods", "ws", "p").unwrap()["status"]["phase"],
        "Running"
    );
    assert_eq!(store.get("pods", "ws", "q").unwrap_err().code, 404);
}

#[test]
fn lists_select_by_label_and_namespace() {
    let mut store = store_with_namespace();
    store
        .create("namespaces", "", json!({"metadata": {"name": "other"}}))
        .unwrap();
    store
        .create(
            "pods",
            "ws",
            json!({"metadata": {"name": "a", "labels": {"app": "x"}}}),
        )
        .unwrap();
    store
        .create(
            "pods",
            "ws",
            json!({"metadata": {"name": "b", "labels": {"app": "y"}}}),
        )
        .unwrap();
    store
        .create(
            "pods",
            "other",
            json!({"metadata": {"name": "c", "labels": {"app": "x"}}}),
        )
        .unwrap();
    let selected = Selector::parse("app=x").unwrap();
    let (all_x, version) = store.list("pods", None, &selected).unwrap();
    assert_eq!(all_x.len(), 2);
    assert_eq!(version, store.version());
    let (in_ws, _) = store
        .list("pods", Some("ws"), &Selector::default())
        .unwrap();
    assert_eq!(in_ws.len(), 2);
}

#[test]
fn deleting_an_owner_collects_what_it_owns() {
    let mut store = store_with_namespace();
    let secret = store
        .create("secrets", "ws", json!({"metadata": {"name": "s"}}))
        .unwrap();
    let uid = secret["metadata"]["uid"].clone();
    store
        .create("pods", "ws", json!({"metadata": {"name": "p", "ownerReferences": [{"kind": "Secret", "name": "s", "uid": uid}]}}))
        .unwrap();
    store
        .create("pods", "ws", json!({"metadata": {"name": "free"}}))
        .unwrap();
    store.delete("secrets", "ws", "s").unwrap();
    assert_eq!(store.get("pods", "ws", "p").unwrap_err().code, 404);
    assert!(store.get("pods", "ws", "free").is_ok());
    store.delete("namespaces", "", "ws").unwrap();
    assert_eq!(
        store.get("pods", "ws", "free").unwrap_err().code,
        404,
        "a namespace takes its objects"
    );
}

#[test]
fn watches_resume_from_history_or_get_410() {
    let mut store = Store::new(3);
    store
        .create("namespaces", "", json!({"metadata": {"name": "ws"}}))
        .unwrap();
    let start = store.version();
    store
        .create("pods", "ws", json!({"metadata": {"name": "p"}}))
        .unwrap();
    store
        .merge_patch("pods", "ws", "p", &json!({"status": {"phase": "Running"}}))
        .unwrap();
    store.delete("pods", "ws", "p").unwrap();
    let changes: Vec<_> = store
        .events_since(start)
        .unwrap()
        .iter()
        .map(|e| e.change)
        .collect();
    assert_eq!(changes, [Change::Added, Change::Modified, Change::Deleted]);
    store
        .create("pods", "ws", json!({"metadata": {"name": "q"}}))
        .unwrap();
    let expired = store.events_since(start).unwrap_err();
    assert_eq!((expired.code, expired.reason), (410, "Expired"));
    let now = store.version();
    store.compact();
    assert_eq!(
        store.events_since(now).unwrap_err().code,
        410,
        "every version handed out is expired"
    );
    store
        .create("pods", "ws", json!({"metadata": {"name": "r"}}))
        .unwrap();
    let relisted = store.version();
    store
        .create("pods", "ws", json!({"metadata": {"name": "s"}}))
        .unwrap();
    assert_eq!(
        store.events_since(relisted).unwrap().len(),
        1,
        "a fresh list's version is watchable"
    );
}

#[test]
fn pages_say_whether_more_follow_and_count_them_only_without_a_selector() {
    let mut store = store_with_namespace();
    for i in 0..5 {
        let app = if i % 2 == 0 { "even" } else { "odd" };
        store
            .create(
                "pods",
                "ws",
                json!({"metadata": {"name": format!("p{i}"), "labels": {"app": app}}, "spec": {}}),
            )
            .unwrap();
    }
    let all = Selector::default();
    let first = store.list_page("pods", Some("ws"), &all, None, 2).unwrap();
    assert_eq!(
        (first.items.len(), first.more, first.remaining),
        (2, true, Some(3))
    );
    let last = store
        .list_page("pods", Some("ws"), &all, Some(("ws", "p2")), 2)
        .unwrap();
    assert_eq!(
        (last.items.len(), last.more, last.remaining),
        (2, false, Some(0))
    );
    // Selected: more or not, never a count (as the API server leaves it unset).
    let even = Selector::parse("app=even").unwrap();
    let page = store.list_page("pods", Some("ws"), &even, None, 2).unwrap();
    assert_eq!(
        (page.items.len(), page.more, page.remaining),
        (2, true, None)
    );
    let rest = store
        .list_page("pods", Some("ws"), &even, Some(("ws", "p2")), 2)
        .unwrap();
    assert_eq!(
        (rest.items.len(), rest.more, rest.remaining),
        (1, false, None)
    );
}
