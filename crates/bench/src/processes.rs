//! Child processes and scratch directories that are always cleaned up: on drop, on an error
//! path, and on Ctrl-C or SIGTERM (a handler kills every live child and removes every
//! scratch directory before the suite exits). Only what this process started is ever
//! touched, always by its own handle, never by name.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
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

/// Runs `command` with its stdout piped, echoing each line to stderr as it comes, for at most
/// `timeout` (then it is killed); its exit status (`None` when killed) and the lines.
pub fn run_echoing(name: &str, command: &mut Command, timeout: Duration) -> Result<(Option<ExitStatus>, Vec<String>)> {
    use std::io::{BufRead, BufReader};
    command.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped());
    let spawned = Spawned::spawn(name, command)?;
    let stdout = spawned.take_stdout();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        if let Some(stdout) = stdout {
            for line in BufReader::new(stdout).lines().map_while(std::result::Result::ok) {
                eprintln!("{line}");
                lines.push(line);
            }
        }
        lines
    });
    let status = spawned.wait_timeout(timeout);
    drop(spawned); // killed if it ran out of time: the reader then sees EOF
    Ok((status, reader.join().unwrap_or_default()))
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

/// How a background command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It was still running when it was stopped (the expected end of a load that runs
    /// "until told otherwise").
    Stopped,
    /// It exited on its own before it was stopped.
    Exited(ExitStatus),
    /// It ran out of time and its watchdog killed it.
    TimedOut,
}

/// What a background command produced once stopped.
#[derive(Debug)]
pub struct Finished {
    /// How it ended.
    pub ending: Ending,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

/// A command running in the background with its output captured: killed when stopped, when
/// dropped, and by a watchdog thread once its time limit passes (whatever the caller is
/// doing then).
pub struct Background {
    process: Spawned,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    /// Dropping it wakes the watchdog early, which then leaves the child alone.
    cancel: Option<mpsc::Sender<()>>,
    /// The watchdog; it returns whether it killed the child.
    watchdog: Option<JoinHandle<bool>>,
    started: Instant,
}

impl Background {
    /// Starts `command` with its stdout and stderr captured; it is killed after `timeout`.
    pub fn start(name: &str, command: &mut Command, timeout: Duration) -> Result<Self> {
        use std::process::Stdio;
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let process = Spawned::spawn(name, command)?;
        let (stdout, stderr) = process.take_pipes();
        let (cancel, cancelled) = mpsc::channel::<()>();
        let child = process.child.clone();
        let watchdog = std::thread::spawn(move || match cancelled.recv_timeout(timeout) {
            Err(RecvTimeoutError::Timeout) => {
                let mut child = lock(&child);
                // Only a child still running counts as killed by the time limit.
                let running = matches!(child.try_wait(), Ok(None));
                running && child.kill().is_ok()
            }
            // Stopped in time (the sender was dropped).
            Ok(()) | Err(RecvTimeoutError::Disconnected) => false,
        });
        Ok(Self {
            process,
            stdout: Some(drain(stdout)),
            stderr: Some(drain(stderr)),
            cancel: Some(cancel),
            watchdog: Some(watchdog),
            started,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Its exit status if it has exited (on its own or killed by its watchdog).
    pub fn exited(&self) -> Option<ExitStatus> {
        self.process.exited()
    }

    /// Stops it (kills it if it still runs) and returns what it printed and how it ended.
    pub fn stop(mut self) -> Finished {
        let exited = self.process.exited();
        drop(self.cancel.take());
        let timed_out = self.watchdog.take().is_some_and(|w| w.join().unwrap_or(false));
        let ending = match (timed_out, exited) {
            (true, _) => Ending::TimedOut,
            (false, Some(status)) => Ending::Exited(status),
            (false, None) => Ending::Stopped,
        };
        let elapsed = self.started.elapsed();
        {
            // Kill and reap now, so that the readers see EOF (Drop does it again, harmlessly).
            let mut child = lock(&self.process.child);
            let _ = child.kill();
            let _ = child.wait();
        }
        let join = |reader: Option<JoinHandle<String>>| reader.and_then(|r| r.join().ok()).unwrap_or_default();
        Finished { ending, stdout: join(self.stdout.take()), stderr: join(self.stderr.take()), elapsed }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Wake the watchdog so that its thread ends; the child dies with `self.process`.
        drop(self.cancel.take());
    }
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
    fn a_background_command_stopped_while_running_says_so() {
        let background = Background::start(
            "sh",
            Command::new("sh").args(["-c", "echo started; exec sleep 30"]),
            Duration::from_secs(30),
        )
        .unwrap();
        let pid = background.pid();
        std::thread::sleep(Duration::from_millis(200));
        let finished = background.stop();
        assert_eq!(finished.ending, Ending::Stopped);
        assert_eq!(finished.stdout, "started\n");
        assert!(finished.elapsed < Duration::from_secs(10));
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn a_background_command_that_exits_early_is_told_apart() {
        let background =
            Background::start("sh", Command::new("sh").args(["-c", "echo oops >&2; exit 3"]), Duration::from_secs(30))
                .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while background.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let finished = background.stop();
        assert!(matches!(finished.ending, Ending::Exited(status) if status.code() == Some(3)));
        assert_eq!(finished.stderr, "oops\n");
    }

    #[test]
    fn a_background_command_over_its_time_is_killed_by_the_watchdog() {
        let background =
            Background::start("sleep", Command::new("sleep").arg("30"), Duration::from_millis(100)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while background.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(background.exited().is_some());
        assert_eq!(background.stop().ending, Ending::TimedOut);
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
