//! Sandbox create and delete as sagas that finish whatever the caller does.
//!
//! Each runs in a task of its own: a caller that cancels or whose deadline passes only
//! stops waiting. The record carries a `openshell.io/pending` mark (`create`,
//! `rollback`, `delete`) while the driver and the store disagree:
//!
//! - Create: the record is written marked `create`; the driver calls (the workspace,
//!   once per gateway process, then create, which validates) get the caller's remaining deadline; success clears the mark;
//!   any failure rolls back (marked `rollback`, deleted at the driver with the
//!   configured timeout, record removed), so the caller's "failed" is true and the name
//!   is free again.
//! - Delete: marked `delete`, then deleted at the driver and in the store with the
//!   configured timeout: a delete the caller asked for completes even if they stop
//!   waiting.
//! - [`repair`], at start-up and every reconcile interval, finishes what a crash or an
//!   unreachable driver left: every record still marked (a `create` only once it is
//!   older than any create in flight could be, and not in flight here) is deleted at
//!   the driver and in the store.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::pb::gateway::v1 as pb;
use tonic::Code;

use super::error::ApiError;

use super::Core;
use super::driver_spec::SANDBOX_NAME_LABEL;
use crate::drivers::Change;
use crate::store::{Kind, Record, StoreError};

/// Record-level label of a sandbox whose saga has not finished.
pub(super) const PENDING: &str = "openshell.io/pending";

/// Runs the create saga for `record` (written marked `create`), detached; returns its
/// outcome if the caller still waits.
///
/// # Errors
/// The driver's refusal (the record is gone by then), or INTERNAL if the task died.
pub(super) async fn create(
    core: &Arc<Core>,
    record: Record,
    driver: proto::pb::compute::v1::DriverSandbox,
    deadline: Option<tokio::time::Instant>,
) -> Result<Record, ApiError> {
    let task = tokio::spawn(create_detached(Arc::clone(core), record, driver, deadline));
    task.await
        .map_err(|_| ApiError::internal("the sandbox create task failed"))?
}

async fn create_detached(
    core: Arc<Core>,
    record: Record,
    driver: proto::pb::compute::v1::DriverSandbox,
    deadline: Option<tokio::time::Instant>,
) -> Result<Record, ApiError> {
    let id = record.key.clone();
    core.statuses.begin_create(&id);
    core.statuses.announce(Change::Updated(id.clone()));
    let compute = core.compute.within(deadline);
    // Whether CreateSandbox was sent: before it, the driver holds nothing to undo.
    let mut sent = false;
    let forward = async {
        compute.link().ensure_available().await?;
        compute.ensure_workspace_once(&driver.workspace).await?;
        // CreateSandbox validates the spec itself (INVALID_ARGUMENT naming the field):
        // one validation per create, no separate ValidateSandboxCreate.
        sent = true;
        compute.create(&driver).await
    };
    let outcome = forward.await;
    match outcome {
        Ok(()) => {
            core.statuses.end_create(&id, true);
            match mark(&core, record.clone(), None).await {
                Ok(record) => Ok(record),
                Err(error) => {
                    // The sandbox exists at the driver. Its record deleted meanwhile (a
                    // delete raced the create): undo it at the driver now. Otherwise
                    // repair rolls it back once the mark is old, so say it failed.
                    tracing::warn!(sandbox = %id, %error, "created, but the record could not be finalised");
                    if error.code() == Code::NotFound
                        && let Err(status) = core.compute.delete(&id).await
                    {
                        tracing::warn!(sandbox = %id, error = %status, "could not delete the orphan at the driver");
                    }
                    Err(error)
                }
            }
        }
        Err(refusal) => {
            core.compute.forget_workspace(&driver.workspace);
            core.statuses.end_create(&id, false);
            if let Err(error) = roll_back(&core, record, sent).await {
                tracing::warn!(sandbox = %id, %error, "rollback of a failed create left for repair");
            }
            core.statuses.announce(Change::Deleted(id));
            Err(refusal.into())
        }
    }
}

/// Removes a sandbox whose create failed: marked `rollback`, deleted at the driver
/// (with the configured timeout: the caller's may be spent) if CreateSandbox was
/// `sent`, then the record.
async fn roll_back(core: &Core, record: Record, sent: bool) -> Result<(), ApiError> {
    if !sent {
        core.records_of(&record)
            .delete(Kind::Sandbox, &record.key, Some(record.version))
            .await?;
        return Ok(());
    }
    let record = mark(core, record, Some("rollback")).await?;
    remove(core, &record).await
}

/// Runs the delete saga for `record`, detached; returns whether a record was removed.
///
/// # Errors
/// UNAVAILABLE and the like from the driver (the delete is finished later by
/// [`repair`]), store errors.
pub(super) async fn delete(core: &Arc<Core>, record: Record) -> Result<bool, ApiError> {
    let record = mark(core, record, Some("delete")).await?;
    let task = tokio::spawn({
        let core = Arc::clone(core);
        async move { remove(&core, &record).await }
    });
    task.await
        .map_err(|_| ApiError::internal("the sandbox delete task failed"))??;
    Ok(true)
}

/// Deletes the sandbox at the driver (NOT_FOUND counts as done), then its record.
async fn remove(core: &Core, record: &Record) -> Result<(), ApiError> {
    match core.compute.delete(&record.key).await {
        Ok(_) => {}
        Err(status) if status.code() == Code::NotFound => {}
        Err(error) => return Err(error.into()),
    }
    let store = core.records_of(record);
    store.delete(Kind::Sandbox, &record.key, None).await?;
    // After the sandbox: a settings write checks the sandbox in its transaction, so
    // none lands after this.
    store
        .delete(Kind::SandboxSettings, &record.key, None)
        .await?;
    core.statuses.announce(Change::Deleted(record.key.clone()));
    tracing::info!(sandbox = %record.key, name = %record.name, "sandbox removed");
    Ok(())
}

/// Sets (`Some`) or clears (`None`) the pending mark.
async fn mark(core: &Core, record: Record, pending: Option<&str>) -> Result<Record, ApiError> {
    set_mark(core, record, PENDING, pending).await
}

/// Sets (`Some`) or clears (`None`) the record-level label `label` of a sandbox,
/// re-reading it on a concurrent write.
pub(super) async fn set_mark(
    core: &Core,
    mut record: Record,
    label: &str,
    value: Option<&str>,
) -> Result<Record, ApiError> {
    for _ in 0..5 {
        if record.labels.get(label).map(String::as_str) == value {
            return Ok(record);
        }
        match value {
            Some(value) => record.labels.insert(label.to_owned(), value.to_owned()),
            None => record.labels.remove(label),
        };
        match core.records_of(&record).update(&record).await {
            Ok(version) => {
                record.version = version;
                return Ok(record);
            }
            Err(StoreError::Conflict { .. }) => {
                record = core
                    .records_of(&record)
                    .get(Kind::Sandbox, &record.key)
                    .await?
                    .ok_or_else(|| ApiError::not_found("the sandbox was deleted meanwhile"))?;
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::conflict(
        "the sandbox kept changing while being updated; try again",
    ))
}

/// Finishes every saga a crash or an unreachable driver left behind; `min_age` is how
/// old a `create` must be before it counts as abandoned. Returns how many records it
/// removed.
///
/// # Errors
/// The first store or driver error (the rest wait for the next run).
pub async fn repair(core: &Core, min_age: Duration) -> Result<usize, ApiError> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let min_age_ms = i64::try_from(min_age.as_millis()).unwrap_or(i64::MAX);
    // The driver's listing first, then the records: every sandbox the driver lists had
    // its record written before it was created, so one without a record now is an
    // orphan (a create that reached the driver after its rollback's delete).
    let at_driver = core.compute.list().await?;
    let records = core.store.list_every_tenant(Kind::Sandbox).await?;
    let mut removed = 0;
    for orphan in orphans(&at_driver, &records) {
        if core.statuses.is_creating(orphan) {
            continue;
        }
        tracing::info!(sandbox = %orphan, "repair: deleting a sandbox the driver has but no record names");
        match core.compute.delete(orphan).await {
            Ok(_) => removed += 1,
            Err(error) if error.code() == Code::NotFound => {}
            Err(error) => return Err(error.into()),
        }
    }
    for record in records {
        let Some(pending) = record.labels.get(PENDING) else {
            continue;
        };
        if pending == "create" {
            let created =
                super::sandboxes::decode(&record).map_or(0, |s: pb::Sandbox| s.created_at_ms);
            if core.statuses.is_creating(&record.key) || now_ms - created < min_age_ms {
                continue;
            }
        }
        tracing::info!(sandbox = %record.key, name = %record.name, %pending, "repair: finishing an interrupted saga");
        remove(core, &record).await?;
        removed += 1;
    }
    Ok(removed)
}

/// Ids the driver lists, made by this gateway (its sandbox-name label), that no record
/// names.
fn orphans<'a>(
    at_driver: &'a [proto::pb::compute::v1::DriverSandbox],
    records: &[Record],
) -> Vec<&'a str> {
    let known: std::collections::HashSet<&str> = records.iter().map(|r| r.key.as_str()).collect();
    at_driver
        .iter()
        .filter(|sandbox| {
            sandbox
                .spec
                .as_ref()
                .and_then(|spec| spec.template.as_ref())
                .is_some_and(|template| template.labels.contains_key(SANDBOX_NAME_LABEL))
        })
        .map(|sandbox| sandbox.id.as_str())
        .filter(|id| !known.contains(id))
        .collect()
}

/// Runs [`repair`] now and then every `every`.
pub async fn repair_loop(core: Arc<Core>, every: Duration, min_age: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match repair(&core, min_age).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "repair: interrupted sandbox sagas finished"),
            Err(error) => tracing::debug!(%error, "repair: will retry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::pb::compute::v1 as driver;

    fn at_driver(id: &str, ours: bool) -> driver::DriverSandbox {
        let labels = if ours {
            [(SANDBOX_NAME_LABEL.to_owned(), "n".to_owned())].into()
        } else {
            Default::default()
        };
        driver::DriverSandbox {
            id: id.into(),
            spec: Some(driver::DriverSandboxSpec {
                template: Some(driver::DriverSandboxTemplate {
                    labels,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn orphans_are_ours_without_a_record() {
        let listed = [
            at_driver("sb-1", true),
            at_driver("sb-2", true),
            at_driver("other", false),
        ];
        let records = [Record::new(Kind::Sandbox, "sb-1", "a", "local")];
        assert_eq!(orphans(&listed, &records), ["sb-2"]);
        assert!(
            orphans(&listed, &[]).len() == 2,
            "another gateway's sandbox is never ours"
        );
    }
}
