//! Watching main processes and stopping process groups.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Child;

use super::state::{Desired, Phase, now_ms};
use super::{Entry, Inner, procfs};

/// How often an adopted process (not our child) is checked.
const ADOPTED_POLL: Duration = Duration::from_millis(250);
/// How often a signalled process group is checked while stopping.
const STOP_POLL: Duration = Duration::from_millis(20);
/// How long to wait for a group to vanish after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Waits for our child to exit, then records how it ended.
pub(super) fn watch_child(inner: Arc<Inner>, entry: Arc<Entry>, mut child: Child, pid: i32) {
    tokio::spawn(async move {
        let (code, signal) = match child.wait().await {
            Ok(status) => {
                use std::os::unix::process::ExitStatusExt;
                (status.code(), status.signal())
            }
            Err(error) => {
                tracing::warn!(sandbox = %entry.record.id, %error, "cannot wait for sandbox process");
                (None, None)
            }
        };
        record_exit(&inner, &entry, pid, Phase::Exited { code, signal }).await;
    });
}

/// Polls a process the driver adopted after a restart (its exit status is not ours to
/// read), then records that it ended.
pub(super) fn watch_adopted(inner: Arc<Inner>, entry: Arc<Entry>, pid: i32, ticks: u64) {
    tracing::info!(sandbox = %entry.record.id, pid, "re-adopted running sandbox");
    tokio::spawn(async move {
        while procfs::is_same_process(pid, ticks) {
            tokio::time::sleep(ADOPTED_POLL).await;
        }
        record_exit(
            &inner,
            &entry,
            pid,
            Phase::Exited {
                code: None,
                signal: None,
            },
        )
        .await;
    });
}

async fn record_exit(inner: &Inner, entry: &Entry, pid: i32, ended: Phase) {
    let mut state = entry.state.lock().await;
    if entry.removed.load(Ordering::SeqCst) || state.running().map(|(p, _)| p) != Some(pid) {
        return;
    }
    state.phase = if state.desired == Desired::Stopped {
        Phase::Stopped
    } else {
        ended
    };
    state.since_ms = now_ms();
    if let Err(error) = inner.layout.save_state(&entry.record.id, &state) {
        tracing::error!(sandbox = %entry.record.id, %error, "cannot record sandbox exit");
    }
    let (kind, reason, message) = match &state.phase {
        Phase::Exited { code, signal } => {
            let (reason, message) = super::state::exit_summary(*code, *signal);
            let kind = if *code == Some(0) {
                "Normal"
            } else {
                "Warning"
            };
            (kind, reason, message)
        }
        _ => ("Normal", "Stopped", "stopped on request".to_owned()),
    };
    tracing::info!(sandbox = %entry.record.id, pid, %message, "sandbox main process ended");
    inner.publish(entry, &state, kind, reason, message);
}

/// SIGTERM to the process group, SIGKILL after `grace`, then SIGKILL once more to any
/// member left behind by a leader that exited. Does nothing when `pid` is no longer
/// the process we started (the pid may belong to someone else by now).
pub(super) async fn terminate_group(pid: i32, ticks: u64, grace: Duration) {
    if !procfs::is_same_process(pid, ticks) {
        return;
    }
    let group = Pid::from_raw(pid);
    let _ = killpg(group, Signal::SIGTERM);
    if !gone_within(pid, ticks, grace).await {
        tracing::warn!(pid, ?grace, "sandbox ignored SIGTERM; sending SIGKILL");
        let _ = killpg(group, Signal::SIGKILL);
        gone_within(pid, ticks, KILL_WAIT).await;
    }
    let _ = killpg(group, Signal::SIGKILL);
}

async fn gone_within(pid: i32, ticks: u64, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while procfs::is_same_process(pid, ticks) {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(STOP_POLL).await;
    }
    true
}
