//! Child processes and scratch directories that are always cleaned up: on drop, on an error
//! path, and on Ctrl-C or SIGTERM (a handler kills every live child and removes every
//! scratch directory before the suite exits). Only what this process started is ever
//! touched, always by its own handle, never by name.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Every child still running, so that the signal handler can stop them.
static LIVE: Mutex<Vec<Arc<Mutex<Child>>>> = Mutex::new(Vec::new());
/// Every scratch directory not yet removed.
static SCRATCH: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Set by the signal handler: no new child may start once it has run.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// How often a wait for a child polls it.
const POLL: Duration = Duration::from_millis(10);

/// Locks a mutex even if a thread panicked while holding it: the data (a list of handles)
/// stays valid.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Installs the Ctrl-C / SIGTERM / SIGHUP handler: kill and reap every live child, remove
/// every scratch directory, exit with status 130.
pub fn install_signal_handler() -> Result<()> {
    ctrlc::set_handler(|| {
        eprintln!("\ninterrupted: stopping every process the suite started");
        stop_everything();
        std::process::exit(130);
    })
    .context("installing the Ctrl-C handler")
}

/// Kills and reaps every live child and removes every scratch directory.
fn stop_everything() {
    STOPPING.store(true, Ordering::SeqCst);
    for child in lock(&LIVE).drain(..) {
        let mut child = lock(&child);
        let _ = child.kill();
        let _ = child.wait();
    }
    for dir in lock(&SCRATCH).drain(..) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A child process that is killed (SIGKILL) and reaped when this handle drops.
pub struct Spawned {
    /// What it is, for messages.
    name: String,
    /// Its process id.
    pid: u32,
    /// The child, shared with the registry the signal handler empties.
    child: Arc<Mutex<Child>>,
}

impl Spawned {
    /// Starts `command` and registers it. Registration happens under the registry's lock,
    /// so a signal cannot slip between the start and the registration.
    pub fn spawn(name: &str, command: &mut Command) -> Result<Self> {
        let mut live = lock(&LIVE);
        if STOPPING.load(Ordering::SeqCst) {
            bail!("not starting {name}: the suite is stopping");
        }
        let child = command.spawn().with_context(|| format!("starting {name} ({:?})", command.get_program()))?;
        let pid = child.id();
        let child = Arc::new(Mutex::new(child));
        live.push(child.clone());
        Ok(Self { name: name.to_string(), pid, child })
    }

    /// Its operating-system process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// What it is.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its exit status if it has exited.
    pub fn exited(&self) -> Option<ExitStatus> {
        lock(&self.child).try_wait().ok().flatten()
    }

    /// Waits for it to exit, at most `timeout`; `None` when it is still running then.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Takes its piped stdout (once).
    pub fn take_stdout(&self) -> Option<ChildStdout> {
        lock(&self.child).stdout.take()
    }

    /// Takes its piped stdout and stderr (each once).
    fn take_pipes(&self) -> (Option<ChildStdout>, Option<ChildStderr>) {
        let mut child = lock(&self.child);
        (child.stdout.take(), child.stderr.take())
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        {
            let mut child = lock(&self.child);
            let _ = child.kill();
            let _ = child.wait();
        }
        lock(&LIVE).retain(|c| !Arc::ptr_eq(c, &self.child));
    }
}

/// What a bounded run of a command produced.
#[derive(Debug)]
pub struct Captured {
    /// Its exit status; `None` when it ran out of time and was killed.
    pub status: Option<ExitStatus>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Captured {
    /// Whether it exited on its own with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Why it did not succeed, for a message (`None` when it did).
    pub fn failure(&self) -> Option<String> {
        match self.status {
            None => Some(format!("killed after {:.0} s (time limit)", self.elapsed.as_secs_f64())),
            Some(status) if !status.success() => Some(format!("exited with {status}")),
            Some(_) => None,
        }
    }
}

/// Runs `command` to completion with its stdout and stderr captured, killing it after
/// `timeout`. Its stdin is whatever the caller set (null by default here).
pub fn run_bounded(name: &str, command: &mut Command, timeout: Duration) -> Result<Captured> {
    use std::process::Stdio;
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let process = Spawned::spawn(name, command)?;
    let (stdout, stderr) = process.take_pipes();
    let stdout = drain(stdout);
    let stderr = drain(stderr);
    let status = process.wait_timeout(timeout);
    // Killed and reaped here if it is still running: the readers then see EOF.
    drop(process);
    Ok(Captured {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        elapsed: started.elapsed(),
    })
}

/// Reads a pipe to its end on a thread, so that a chatty child never blocks on a full pipe.
fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A private temporary directory, removed (with everything in it) on drop or on a signal.
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Creates `$TMPDIR/bench-<pid>-<n>`.
    pub fn new() -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path =
            std::env::temp_dir().join(format!("bench-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&path).with_context(|| format!("creating scratch directory {}", path.display()))?;
        lock(&SCRATCH).push(path.clone());
        Ok(Self { path })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        lock(&SCRATCH).retain(|p| p != &self.path);
    }
}

/// A loopback port that was free a moment ago, for programs that cannot listen on port 0
/// (`redis-server`, `nutcracker`). Whoever uses it checks that it got it
/// ([`crate::procfs::listening_ports`]) and retries with another when it did not.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a free loopback port")?;
    Ok(listener.local_addr().context("reading the bound port")?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_run_captures_output_and_status() {
        let run = run_bounded("sh", Command::new("sh").args(["-c", "echo out; echo err >&2"]), Duration::from_secs(10))
            .unwrap();
        assert!(run.success());
        assert_eq!(run.stdout, "out\n");
        assert_eq!(run.stderr, "err\n");
        assert_eq!(run.failure(), None);
    }

    #[test]
    fn a_run_over_its_time_is_killed() {
        let run = run_bounded("sleep", Command::new("sleep").arg("30"), Duration::from_millis(100)).unwrap();
        assert!(run.status.is_none());
        assert!(run.elapsed < Duration::from_secs(10));
        assert!(run.failure().unwrap().contains("time limit"));
    }

    #[test]
    fn a_dropped_child_is_killed_and_unregistered() {
        let child = Spawned::spawn("sleep", Command::new("sleep").arg("30")).unwrap();
        let pid = child.pid();
        assert!(child.exited().is_none());
        drop(child);
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        assert!(!lock(&LIVE).iter().any(|c| lock(c).id() == pid));
    }

    #[test]
    fn a_scratch_dir_is_removed_on_drop() {
        let dir = ScratchDir::new().unwrap();
        let path = dir.path().to_path_buf();
        std::fs::write(path.join("f"), "x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }
}
