//! A private PostgreSQL server for tests: a real `postgres` from Debian's packages,
//! initialised in a short temporary directory, listening on a free loopback port with
//! trust authentication, stopped (fast shutdown) when dropped.
//!
//! `.ci/run` installs the `postgresql` package when it is missing; the server itself is
//! always started here, so no database set up by hand is ever used.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, Uid, User, chown};

/// A running test server.
#[derive(Debug)]
pub struct PostgresPeer {
    child: Child,
    bin_dir: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
}

impl PostgresPeer {
    /// Initialises and starts a server, waiting until it accepts connections.
    ///
    /// # Errors
    /// A message naming what is missing or failed (with the server's log).
    pub fn start() -> Result<Self, String> {
        let bin_dir = find_bin_dir().ok_or(
            "PostgreSQL is not installed: `apt-get install -y postgresql` (.ci/run does this)",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("pg")
            .tempdir_in("/tmp")
            .map_err(|e| format!("temp dir: {e}"))?;
        // The server refuses to run as root: run it as the package's `postgres` user.
        let run_as = if Uid::effective().is_root() {
            let user = User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or("running as root needs the `postgres` user (from the postgresql package)")?;
            chown(dir.path(), Some(user.uid), Some(user.gid)).map_err(|e| format!("chown: {e}"))?;
            Some((user.uid.as_raw(), user.gid.as_raw()))
        } else {
            None
        };
        let data = dir.path().join("data");
        let log = dir.path().join("server.log");
        let mut initdb = command(&bin_dir.join("initdb"), run_as);
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null());
        let out = initdb.output().map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let port = free_port()?;
        let log_file = std::fs::File::create(&log).map_err(|e| format!("log: {e}"))?;
        if let Some((uid, gid)) = run_as {
            chown(&log, Some(uid.into()), Some(gid.into())).map_err(|e| format!("chown: {e}"))?;
        }
        let stderr = log_file.try_clone().map_err(|e| format!("log: {e}"))?;
        let child = command(&bin_dir.join("postgres"), run_as)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(dir.path())
            .args(["-F", "-c", "max_connections=200"])
            .stdout(log_file)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("postgres: {e}"))?;
        let peer = Self {
            child,
            bin_dir,
            port,
            dir,
        };
        peer.wait_ready()?;
        Ok(peer)
    }

    /// A URL for the `postgres` database.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// A URL for database `name`.
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database `name` and returns its URL.
    ///
    /// # Errors
    /// psql's message.
    pub fn fresh_database(&self, name: &str) -> Result<String, String> {
        self.psql(&format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.database_url(name))
    }

    /// Runs one SQL statement with psql.
    ///
    /// # Errors
    /// psql's message.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        self.psql_in("postgres", sql)
    }

    /// Runs one SQL statement with psql in database `database`.
    ///
    /// # Errors
    /// psql's message.
    pub fn psql_in(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin_dir.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", database, "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql])
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!(
                "psql {sql:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn wait_ready(&self) -> Result<(), String> {
        for _ in 0..300 {
            if self.psql("SELECT 1").is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("postgres did not start in 30 s:\n{}", self.log()))
    }
}

impl Drop for PostgresPeer {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SIGINT: "fast" shutdown (disconnect clients, stop now).
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        }
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(program: &Path, run_as: Option<(u32, u32)>) -> Command {
    let mut command = Command::new(program);
    if let Some((uid, gid)) = run_as {
        command.uid(uid).gid(gid).current_dir("/tmp");
    }
    command
}

/// The directory of `initdb` and `postgres`: from PATH, else the newest Debian one.
fn find_bin_dir() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("initdb"))
            .find(|p| p.is_file())
            .and_then(|p| std::fs::canonicalize(p).ok())
            .and_then(|p| p.parent().map(Path::to_path_buf))
    });
    from_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").is_file())
            .collect();
        versions.sort();
        versions.pop()
    })
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}
