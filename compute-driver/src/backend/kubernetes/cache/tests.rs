#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use k8s_openapi::api::core::v1::{Pod, Secret};
use prost::Message as _;
use proto::pb::compute::v1 as pb;
use proto::phase::{Phase, phase_of};
use serde_json::json;

use super::super::pod_spec::{self, RenderOptions};
use super::{Cache, Kind, Origin};
use crate::backend::Event;

fn options(name: &str) -> RenderOptions<'_> {
    RenderOptions {
        namespace: "ns",
        object_name: name,
        default_image: "busybox",
        gateway_id: "gw",
        image_pull_policy: "IfNotPresent",
        supervisor: None,
    }
}

fn record(id: &str) -> pb::DriverSandbox {
    pb::DriverSandbox {
        id: id.into(),
        name: id.into(),
        namespace: "ns".into(),
        spec: Some(pb::DriverSandboxSpec::default()),
        ..Default::default()
    }
}

fn secret(id: &str, uid: &str) -> Secret {
    let record = record(id);
    let mut secret = pod_spec::secret(&record, &options(id), &record.encode_to_vec());
    secret.metadata.uid = Some(uid.into());
    secret
}

fn stopped_secret(id: &str, uid: &str) -> Secret {
    let mut stopped = secret(id, uid);
    stopped
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(pod_spec::DESIRED_STATE.into(), "stopped".into());
    stopped
}

fn pod(id: &str, uid: &str, owner: &str, ready: bool) -> Pod {
    let mut pod = pod_spec::pod(&record(id), &options(id), owner, &Default::default());
    pod.metadata.uid = Some(uid.into());
    pod.status = Some(
        serde_json::from_value(json!({"phase": "Running", "conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }}]}))
        .unwrap(),
    );
    pod
}

fn phases(events: &[Event]) -> Vec<(String, Option<Phase>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Sandbox(s) => Some((s.id.clone(), Some(phase_of(s)))),
            Event::Deleted(id) => Some((id.clone(), None)),
            Event::Platform { .. } => None,
        })
        .collect()
}

#[test]
fn each_change_reports_the_sandbox_once() {
    let mut cache = Cache::default();
    let events = cache.apply_secret(&secret("a", "s1"), Origin::Watch);
    assert_eq!(
        phases(&events),
        [("a".into(), Some(Phase::Error))],
        "a running sandbox without a pod (PodMissing)"
    );
    let events = cache.apply_pod(&pod("a", "p1", "s1", false), Origin::Watch);
    assert_eq!(phases(&events), [("a".into(), Some(Phase::Provisioning))]);
    let events = cache.apply_pod(&pod("a", "p1", "s1", true), Origin::Watch);
    assert_eq!(phases(&events), [("a".into(), Some(Phase::Ready))]);
    assert!(
        cache
            .apply_pod(&pod("a", "p1", "s1", true), Origin::Watch)
            .is_empty(),
        "an unchanged view is not reported again"
    );
    let view = cache.view("a").unwrap();
    assert_eq!(view.namespace, "ns");
    assert_eq!(view.status.unwrap().instance_id, "a");
    assert_eq!(cache.sandbox_of_pod("p1").as_deref(), Some("a"));
    assert_eq!(cache.id_by_name("a").as_deref(), Some("a"));
}

#[test]
fn a_pod_of_an_earlier_secret_is_not_the_sandbox_s() {
    let mut cache = Cache::default();
    cache.apply_secret(&secret("a", "s2"), Origin::Watch);
    cache.apply_pod(&pod("a", "p1", "s1", true), Origin::Watch);
    assert_eq!(phase_of(&cache.view("a").unwrap()), Phase::Error);
}

#[test]
fn a_missing_pod_is_expected_while_creating_it_an_error_after_and_fine_when_stopped() {
    let mut cache = Cache::default();
    cache.creating("a");
    cache.apply_secret(&secret("a", "s1"), Origin::Created);
    assert_eq!(phase_of(&cache.view("a").unwrap()), Phase::Provisioning);
    let events = cache.created("a");
    assert_eq!(phases(&events), [("a".into(), Some(Phase::Error))]);
    let reason = |cache: &Cache| {
        let view = cache.view("a").unwrap();
        view.status.unwrap().conditions[0].reason.clone()
    };
    assert_eq!(reason(&cache), "PodMissing");

    let events = cache.apply_secret(&stopped_secret("a", "s1"), Origin::Updated);
    assert_eq!(phases(&events), [("a".into(), Some(Phase::Stopped))]);
}

#[test]
fn what_the_driver_deleted_stays_deleted_despite_stale_events() {
    let mut cache = Cache::default();
    cache.apply_secret(&secret("a", "s1"), Origin::Watch);
    cache.apply_pod(&pod("a", "p1", "s1", true), Origin::Watch);

    // Stop: the desired state first, then the pod.
    assert!(
        cache
            .apply_secret(&stopped_secret("a", "s1"), Origin::Updated)
            .is_empty(),
        "the pod still runs"
    );
    let events = cache.forget_pod("a");
    assert_eq!(phases(&events), [("a".into(), Some(Phase::Stopped))]);
    assert!(
        cache
            .apply_pod(&pod("a", "p1", "s1", true), Origin::Watch)
            .is_empty(),
        "a stale event of the deleted pod changes nothing"
    );

    assert_eq!(phases(&cache.forget_sandbox("a")), [("a".into(), None)]);
    assert!(
        cache
            .apply_secret(&secret("a", "s1"), Origin::Watch)
            .is_empty()
    );
    assert!(cache.view("a").is_none());
    // The stream confirms the deletion: nothing more to report.
    assert!(cache.remove_secret(&secret("a", "s1")).is_empty());
}

#[test]
fn a_relist_reports_what_changed_meanwhile_and_nothing_else() {
    let mut cache = Cache::default();
    for (id, uid) in [("a", "sa"), ("b", "sb")] {
        cache.apply_secret(&secret(id, uid), Origin::Watch);
    }
    cache.begin_relist(Kind::Secrets);
    assert!(
        cache
            .apply_secret(&secret("a", "sa"), Origin::Relist)
            .is_empty(),
        "a is unchanged"
    );
    let added = cache.apply_secret(&secret("c", "sc"), Origin::Relist);
    assert_eq!(phases(&added), [("c".into(), Some(Phase::Error))]);
    cache.apply_secret(&secret("d", "sd"), Origin::Created);
    let events = cache.finish_relist(Kind::Secrets);
    assert_eq!(
        phases(&events),
        [("b".into(), None)],
        "b vanished while the stream was down; d was written during the relist"
    );
    let ids: Vec<String> = cache.list().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, ["a", "c", "d"]);
}

#[test]
fn the_cache_is_synced_once_both_kinds_were_listed() {
    let mut cache = Cache::default();
    assert!(!cache.synced());
    cache.begin_relist(Kind::Secrets);
    cache.finish_relist(Kind::Secrets);
    assert!(!cache.synced());
    cache.begin_relist(Kind::Pods);
    cache.finish_relist(Kind::Pods);
    assert!(cache.synced());
}

#[test]
fn a_secret_whose_record_disagrees_with_its_label_is_ignored() {
    let mut forged = secret("a", "s1");
    forged
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert(pod_spec::SANDBOX_ID.into(), "b".into());
    let mut cache = Cache::default();
    assert!(cache.apply_secret(&forged, Origin::Watch).is_empty());
    assert!(cache.list().is_empty());
}

#[test]
fn a_create_reply_never_replaces_what_the_watch_delivered_later() {
    let mut cache = Cache::default();
    cache.apply_secret(&secret("a", "s1"), Origin::Created);
    // The kubelet's update arrives through the watch before the create's reply.
    cache.apply_pod(&pod("a", "p1", "s1", true), Origin::Watch);
    let mut reply = pod("a", "p1", "s1", false);
    reply.status = None;
    assert!(cache.apply_pod(&reply, Origin::Created).is_empty());
    assert_eq!(phase_of(&cache.view("a").unwrap()), Phase::Ready);
    // A new pod (another uid) from this driver does replace the old one.
    let events = cache.apply_pod(&pod("a", "p2", "s1", false), Origin::Created);
    assert_eq!(phases(&events), [("a".into(), Some(Phase::Provisioning))]);
}

/// The kept views are exactly what the Secrets and Pods say now.
fn assert_views_current(cache: &Cache, step: &str) {
    let mut ids: Vec<&String> = cache.sandboxes.keys().collect();
    ids.sort();
    let derived: Vec<pb::DriverSandbox> = ids.iter().filter_map(|id| cache.derive(id)).collect();
    assert_eq!(cache.list(), derived, "after {step}");
    let encoded: Vec<Bytes> = derived
        .iter()
        .map(|sandbox| Bytes::from(sandbox.encode_to_vec()))
        .collect();
    assert_eq!(cache.list_encoded(), encoded, "encodings after {step}");
}

#[test]
fn kept_views_follow_every_kind_of_change() {
    let mut cache = Cache::default();
    cache.apply_secret(&secret("a", "sa"), Origin::Watch);
    assert_views_current(&cache, "a secret");
    cache.creating("a");
    assert_views_current(&cache, "creating its pod");
    cache.apply_pod(&pod("a", "pa", "sa", false), Origin::Created);
    cache.created("a");
    assert_views_current(&cache, "its pod created");
    cache.apply_pod(&pod("a", "pa", "sa", true), Origin::Watch);
    assert_views_current(&cache, "its pod ready");
    cache.apply_secret(&secret("b", "sb"), Origin::Watch);
    cache.apply_pod(&pod("b", "pb", "sb", true), Origin::Watch);
    cache.apply_secret(&stopped_secret("a", "sa"), Origin::Updated);
    assert_views_current(&cache, "a stopped");
    cache.forget_pod("a");
    assert_views_current(&cache, "a's pod deleted by the driver");
    cache.remove_pod(&pod("b", "pb", "sb", true));
    assert_views_current(&cache, "b's pod gone");
    cache.begin_relist(Kind::Pods);
    cache.apply_pod(&pod("b", "pb2", "sb", false), Origin::Relist);
    cache.finish_relist(Kind::Pods);
    assert_views_current(&cache, "a relist of pods");
    cache.begin_relist(Kind::Secrets);
    cache.apply_secret(&secret("b", "sb"), Origin::Relist);
    cache.finish_relist(Kind::Secrets);
    assert_views_current(&cache, "a relist of secrets without a");
    assert_eq!(cache.list().len(), 1);
    cache.forget_sandbox("b");
    assert_views_current(&cache, "b deleted by the driver");
    assert!(cache.list().is_empty());
}
