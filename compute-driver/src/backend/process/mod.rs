//! The process backend (the embedded default): each sandbox is a process group on this
//! machine, started from `spec.command`, with its records under `--state-dir`.
//!
//! Sandboxes outlive the driver: a restarted driver re-adopts process groups that are
//! still running (checked by pid *and* start time) and reports the others with their
//! last state.

mod launch;
mod logs;
mod procfs;
mod state;
mod store;
mod supervise;
mod terminal;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use proto::Secret;
use proto::pb::compute::v1 as pb;
use tokio::sync::{Mutex, broadcast};

use super::{Backend, Capabilities, Deadline, Event, LogRequest, LogSource, LogStream, SandboxRef};
use crate::launcher::Isolation;
use crate::validate::Limits;
use crate::{ComputeError as Error, Result};
use launch::LaunchPaths;
pub use launch::vars;
use state::{Desired, Phase, State, now_ms};
use store::Layout;

/// Settings of the process backend.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where records, tokens, logs and working directories live.
    pub state_dir: PathBuf,
    /// After SIGTERM to a sandbox's process group, how long before SIGKILL.
    pub stop_grace: Duration,
    /// The driver binary, re-executed as the launcher (see `crate::launcher`).
    pub launcher: PathBuf,
    /// Host paths no sandbox may see (the driver's own socket is added).
    pub hide: Vec<PathBuf>,
    /// Whether each sandbox gets a private `/tmp`.
    pub private_tmp: bool,
    /// The supervisor option: its binary's path and the gateway endpoint.
    pub supervisor: Option<crate::supervisor::Supervisor>,
}

/// What the host lets this backend enforce, found out at start-up.
#[derive(Clone, Copy, Debug)]
struct HostSupport {
    /// Mount namespaces work: sandboxes see only their own files.
    isolation: bool,
}

/// One sandbox.
#[derive(Debug)]
struct Entry {
    /// As created, with the token cleared and the namespace filled in.
    record: pb::DriverSandbox,
    token: Secret,
    limits: Limits,
    state: Mutex<State>,
    /// Serialises start/stop/delete of this sandbox.
    ops: Mutex<()>,
    removed: AtomicBool,
}

/// The process backend.
#[derive(Clone, Debug)]
pub struct ProcessBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    support: HostSupport,
    layout: Layout,
    sandboxes: Mutex<HashMap<String, Arc<Entry>>>,
    events: broadcast::Sender<Event>,
}

/// How long a launcher may take to confine itself and exec the sandbox's program.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The namespace the process backend reports (the contract lets drivers fill it).
const NAMESPACE: &str = "local";

impl ProcessBackend {
    /// Opens the state directory and recovers every sandbox recorded there.
    ///
    /// # Errors
    /// `Storage` when the state directory cannot be created or listed.
    pub async fn open(config: Config) -> Result<Self> {
        let layout = Layout::open(&config.state_dir)?;
        let support = HostSupport {
            isolation: crate::launcher::isolation_supported(
                &config.launcher,
                &config
                    .state_dir
                    .join(format!(".probe-{}", std::process::id())),
            ),
        };
        if support.isolation {
            tracing::info!(
                "sandboxes are isolated: each sees only its own files under the state directory"
            );
        } else {
            tracing::warn!(
                "this host allows no mount namespaces: sandboxes can see each other's files"
            );
        }
        let (events, _) = broadcast::channel(1024);
        let backend = Self {
            inner: Arc::new(Inner {
                config,
                support,
                layout,
                sandboxes: Mutex::new(HashMap::new()),
                events,
            }),
        };
        backend.recover().await?;
        Ok(backend)
    }

    /// The captured stdout file of a sandbox (documented layout; for operators and
    /// tests).
    pub fn stdout_path(&self, id: &str) -> PathBuf {
        self.inner.layout.stdout_path(id)
    }

    async fn recover(&self) -> Result<()> {
        let stored = self.inner.layout.load_all()?;
        let (mut adopted, total) = (0, stored.len());
        let mut sandboxes = self.inner.sandboxes.lock().await;
        for item in stored {
            let limits = limits_of(&item.record);
            let mut state = item.state;
            let alive = state
                .running()
                .filter(|&(pid, ticks)| procfs::is_same_process(pid, ticks));
            if alive.is_none() && state.running().is_some() {
                state.phase = if state.desired == Desired::Stopped {
                    Phase::Stopped
                } else {
                    Phase::Lost
                };
                state.since_ms = now_ms();
                self.inner.layout.save_state(&item.record.id, &state)?;
            }
            let entry = Arc::new(Entry {
                record: item.record,
                token: item.token,
                limits,
                state: Mutex::new(state),
                ops: Mutex::new(()),
                removed: AtomicBool::new(false),
            });
            if let Some((pid, ticks)) = alive {
                adopted += 1;
                supervise::watch_adopted(Arc::clone(&self.inner), Arc::clone(&entry), pid, ticks);
            }
            sandboxes.insert(entry.record.id.clone(), entry);
        }
        tracing::info!(
            sandboxes = total,
            still_running = adopted,
            "recovered sandboxes from the state directory"
        );
        Ok(())
    }

    async fn find(&self, reference: &SandboxRef) -> Option<Arc<Entry>> {
        let sandboxes = self.inner.sandboxes.lock().await;
        match reference {
            SandboxRef::Id(id) => sandboxes.get(id).cloned(),
            SandboxRef::Name(name) => sandboxes.values().find(|e| &e.record.name == name).cloned(),
        }
    }

    async fn start_entry(&self, entry: &Arc<Entry>) -> Result<()> {
        let _op = entry.ops.lock().await;
        let mut state = entry.state.lock().await;
        if let Some((pid, ticks)) = state.running()
            && procfs::is_same_process(pid, ticks)
        {
            if state.desired != Desired::Running {
                state.desired = Desired::Running;
                self.inner.layout.save_state(&entry.record.id, &state)?;
            }
            return Ok(());
        }
        let layout = &self.inner.layout;
        let id = &entry.record.id;
        let supervisor = match &self.inner.config.supervisor {
            Some(supervisor) => Some((supervisor.clone(), ssh_socket(layout, id)?)),
            None => None,
        };
        let mut keep = vec![layout.work_dir(&entry.record), layout.token_path(id)];
        keep.extend(
            supervisor
                .as_ref()
                .and_then(|(_, socket)| socket.parent().map(Into::into)),
        );
        let paths = LaunchPaths {
            launcher: self.inner.config.launcher.clone(),
            work_dir: layout.work_dir(&entry.record),
            token_file: layout.token_path(id),
            stdout: layout.stdout_path(id),
            stderr: layout.stderr_path(id),
            isolation: self.inner.support.isolation.then(|| Isolation {
                root: self.inner.config.state_dir.clone(),
                keep,
                hide: self.inner.config.hide.clone(),
                private_tmp: self.inner.config.private_tmp,
            }),
            supervisor,
        };
        let mut record = entry.record.clone();
        if let Some(spec) = record.spec.as_mut() {
            spec.sandbox_token.clear();
        }
        let launch::Spawned {
            child,
            report,
            terminal,
        } = launch::spawn(&record, &entry.limits, &paths)?;
        let pid = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .ok_or_else(|| Error::Process {
                action: format!("start sandbox {id}"),
                source: std::io::Error::other("the process exited before its pid was read"),
            })?;
        let ticks = procfs::start_ticks(pid).unwrap_or_default();
        // Ready means the program runs: the launcher has applied the limits and
        // isolation and its exec succeeded (its exec report closed); a failure is
        // reported by the exit watcher with the launcher's message.
        let mut child = child;
        let launched = launch::launched(report, LAUNCH_TIMEOUT).await;
        if let Some(terminal) = terminal
            && !matches!(launched, launch::Launched::Failed(_))
        {
            terminal.relay_to(&paths.stdout);
        }
        match launched {
            launch::Launched::Running => {}
            launch::Launched::Failed(why) => {
                // The launcher exits (127) right after its report: record that exit,
                // never a moment of Ready.
                if let Ok(Ok(status)) = tokio::time::timeout(LAUNCH_TIMEOUT, child.wait()).await {
                    use std::os::unix::process::ExitStatusExt as _;
                    *state = State {
                        desired: Desired::Running,
                        phase: Phase::Exited {
                            code: status.code(),
                            signal: status.signal(),
                        },
                        since_ms: now_ms(),
                        unenforced_limits: self.inner.unenforced(&entry.limits),
                    };
                    layout.save_state(id, &state)?;
                    tracing::info!(sandbox = %id, pid, %why, "the launcher could not start the program");
                    self.inner
                        .publish(entry, &state, "Warning", "Failed", why.trim().to_owned());
                    return Ok(());
                }
            }
            launch::Launched::TimedOut => {
                tracing::warn!(sandbox = %id, pid, "launcher did not exec within {LAUNCH_TIMEOUT:?}");
            }
        }
        *state = State {
            desired: Desired::Running,
            phase: Phase::Running {
                pid,
                start_ticks: ticks,
            },
            since_ms: now_ms(),
            unenforced_limits: self.inner.unenforced(&entry.limits),
        };
        layout.save_state(id, &state)?;
        tracing::info!(sandbox = %id, pid, "sandbox started");
        self.inner.publish(
            entry,
            &state,
            "Normal",
            "Started",
            format!("main process {pid} started"),
        );
        drop(state);
        supervise::watch_child(Arc::clone(&self.inner), Arc::clone(entry), child, pid);
        Ok(())
    }

    async fn stop_entry(&self, entry: &Arc<Entry>) -> Result<()> {
        let _op = entry.ops.lock().await;
        let running = {
            let mut state = entry.state.lock().await;
            if state.desired == Desired::Stopped && state.phase == Phase::Stopped {
                return Ok(());
            }
            state.desired = Desired::Stopped;
            self.inner.layout.save_state(&entry.record.id, &state)?;
            state.running()
        };
        if let Some((pid, ticks)) = running {
            supervise::terminate_group(pid, ticks, self.inner.config.stop_grace).await;
        }
        let mut state = entry.state.lock().await;
        if state.phase != Phase::Stopped {
            state.phase = Phase::Stopped;
            state.since_ms = now_ms();
            self.inner.layout.save_state(&entry.record.id, &state)?;
            self.inner.publish(
                entry,
                &state,
                "Normal",
                "Stopped",
                "stopped on request".into(),
            );
        }
        tracing::info!(sandbox = %entry.record.id, "sandbox stopped");
        Ok(())
    }
}

impl Inner {
    /// What this host cannot enforce for a sandbox with `limits`.
    fn unenforced(&self, limits: &Limits) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(millis) = limits.cpu_millis {
            out.push(format!(
                "cpu limit {millis}m (needs cgroup v2, not used by this backend)"
            ));
        }
        if !self.support.isolation {
            out.push("filesystem isolation (no mount namespaces on this host)".to_owned());
        }
        out
    }

    /// The sandbox as reported to callers: record plus status, token cleared.
    fn view(entry: &Entry, state: &State) -> pb::DriverSandbox {
        let mut sandbox = entry.record.clone();
        sandbox.status = Some(pb::DriverSandboxStatus {
            sandbox_name: entry.record.name.clone(),
            instance_id: state
                .running()
                .map(|(pid, _)| pid.to_string())
                .unwrap_or_default(),
            conditions: state::conditions(state),
            ..Default::default()
        });
        sandbox
    }

    fn publish(&self, entry: &Entry, state: &State, kind: &str, reason: &str, message: String) {
        let _ = self
            .events
            .send(Event::Sandbox(Box::new(Self::view(entry, state))));
        let _ = self.events.send(Event::Platform {
            sandbox_id: entry.record.id.clone(),
            event: pb::DriverPlatformEvent {
                timestamp_ms: now_ms(),
                source: "process".into(),
                r#type: kind.into(),
                reason: reason.into(),
                message,
                metadata: HashMap::new(),
            },
        });
    }
}

/// Where the supervisor of sandbox `id` binds its SSH socket: in the sandbox's own
/// run directory (a path shared by all sandboxes would clash on one host).
fn ssh_socket(layout: &Layout, id: &str) -> Result<PathBuf> {
    let socket = layout.run_dir(id)?.join("ssh.sock");
    // sockaddr_un holds 108 bytes with the terminating NUL.
    if socket.as_os_str().len() > 107 {
        return Err(Error::FailedPrecondition(format!(
            "the supervisor's SSH socket {} would be longer than a Unix socket path may be (107 bytes): use a shorter --state-dir",
            socket.display()
        )));
    }
    Ok(socket)
}

fn limits_of(record: &pb::DriverSandbox) -> Limits {
    crate::validate::sandbox(record).unwrap_or_default()
}

#[tonic::async_trait]
impl Backend for ProcessBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            default_image: String::new(),
            reports_runtime_readiness: true,
        }
    }

    fn validate(&self, sandbox: &pb::DriverSandbox, _limits: &Limits) -> Result<()> {
        let spec = sandbox.spec.clone().unwrap_or_default();
        let gpus = spec
            .resource_requirements
            .as_ref()
            .and_then(|r| r.gpu.as_ref())
            .and_then(|g| g.count)
            .unwrap_or(0);
        if gpus > 0 {
            return Err(Error::FailedPrecondition(format!(
                "sandbox.spec.resource_requirements.gpu.count: the process backend cannot assign GPUs (asked for {gpus})"
            )));
        }
        let template = spec.template.unwrap_or_default();
        for (field, config) in [
            ("platform_config", &template.platform_config),
            ("driver_config", &template.driver_config),
        ] {
            if let Some(key) = config.as_ref().and_then(|s| s.fields.keys().next()) {
                return Err(Error::InvalidArgument(crate::validate::InvalidField {
                    field: format!("sandbox.spec.template.{field}[{key:?}]"),
                    reason: "the process backend takes no configuration keys here".into(),
                }));
            }
        }
        if template.user_namespaces == Some(true) {
            return Err(Error::FailedPrecondition(
                "sandbox.spec.template.user_namespaces: not supported by the process backend"
                    .into(),
            ));
        }
        Ok(())
    }

    async fn create(
        &self,
        sandbox: pb::DriverSandbox,
        limits: Limits,
        _deadline: Deadline,
    ) -> Result<()> {
        let (record, token) = super::split_token(&sandbox, NAMESPACE);
        let mut sandboxes = self.inner.sandboxes.lock().await;
        if let Some(existing) = sandboxes.get(&record.id) {
            return if existing.record == record && existing.token == token {
                Ok(())
            } else {
                Err(Error::AlreadyExists(record.id))
            };
        }
        if sandboxes.values().any(|e| e.record.name == record.name) {
            return Err(Error::AlreadyExists(record.name));
        }
        let initial = State {
            desired: Desired::Running,
            phase: Phase::Stopped,
            since_ms: now_ms(),
            unenforced_limits: self.inner.unenforced(&limits),
        };
        if !record.workspace.is_empty() {
            self.inner.layout.ensure_workspace(&record.workspace)?;
        }
        self.inner
            .layout
            .create_sandbox(&record, &token, &initial)?;
        let entry = Arc::new(Entry {
            record,
            token,
            limits,
            state: Mutex::new(initial),
            ops: Mutex::new(()),
            removed: AtomicBool::new(false),
        });
        sandboxes.insert(entry.record.id.clone(), Arc::clone(&entry));
        drop(sandboxes);
        tracing::info!(sandbox = %entry.record.id, name = %entry.record.name, "sandbox created");
        if let Err(error) = self.start_entry(&entry).await {
            self.inner.sandboxes.lock().await.remove(&entry.record.id);
            let _ = self.inner.layout.remove_sandbox(&entry.record.id);
            return Err(error);
        }
        Ok(())
    }

    async fn get(&self, sandbox: &SandboxRef) -> Result<pb::DriverSandbox> {
        let entry = self
            .find(sandbox)
            .await
            .ok_or_else(|| Error::NotFound(sandbox.as_str().to_owned()))?;
        let state = entry.state.lock().await;
        Ok(Inner::view(&entry, &state))
    }

    async fn list(&self) -> Result<Vec<pb::DriverSandbox>> {
        let entries: Vec<_> = self
            .inner
            .sandboxes
            .lock()
            .await
            .values()
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let state = entry.state.lock().await;
            out.push(Inner::view(&entry, &state));
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn stop(&self, sandbox: &SandboxRef, _deadline: Deadline) -> Result<()> {
        match self.find(sandbox).await {
            Some(entry) => self.stop_entry(&entry).await,
            None => Ok(()),
        }
    }

    async fn start(&self, sandbox: &SandboxRef, _deadline: Deadline) -> Result<()> {
        let entry = self
            .find(sandbox)
            .await
            .ok_or_else(|| Error::NotFound(sandbox.as_str().to_owned()))?;
        self.start_entry(&entry).await
    }

    async fn delete(&self, sandbox: &SandboxRef, _deadline: Deadline) -> Result<bool> {
        let Some(entry) = self.find(sandbox).await else {
            return Ok(false);
        };
        let _op = entry.ops.lock().await;
        if self
            .inner
            .sandboxes
            .lock()
            .await
            .remove(&entry.record.id)
            .is_none()
        {
            return Ok(false);
        }
        let running = {
            let state = entry.state.lock().await;
            entry.removed.store(true, Ordering::SeqCst);
            state.running()
        };
        if let Some((pid, ticks)) = running {
            supervise::terminate_group(pid, ticks, self.inner.config.stop_grace).await;
        }
        self.inner.layout.remove_sandbox(&entry.record.id)?;
        let _ = self
            .inner
            .events
            .send(Event::Deleted(entry.record.id.clone()));
        tracing::info!(sandbox = %entry.record.id, "sandbox deleted");
        Ok(true)
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    async fn ensure_workspace(&self, name: &str, _deadline: Deadline) -> Result<()> {
        self.inner.layout.ensure_workspace(name)
    }

    async fn delete_workspace(&self, name: &str, _deadline: Deadline) -> Result<()> {
        let users: Vec<String> = self
            .inner
            .sandboxes
            .lock()
            .await
            .values()
            .filter(|e| e.record.workspace == name)
            .map(|e| e.record.id.clone())
            .collect();
        if !users.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "workspace {name:?} still has sandboxes ({}): delete them first",
                users.join(", ")
            )));
        }
        self.inner.layout.remove_workspace(name)
    }

    async fn logs(&self, sandbox: &SandboxRef, request: LogRequest) -> Result<LogStream> {
        let entry = self
            .find(sandbox)
            .await
            .ok_or_else(|| Error::NotFound(sandbox.as_str().to_owned()))?;
        let id = &entry.record.id;
        let files = [
            (LogSource::Stdout, self.inner.layout.stdout_path(id)),
            (LogSource::Stderr, self.inner.layout.stderr_path(id)),
        ];
        Ok(logs::stream(entry, files, request))
    }
}
