//! The hit-ratio section: runs the `hitratio` program (`src/bin/hitratio.rs`, built beside
//! the suite) and keeps its table: the same Zipf and scan-mixed traces replayed against
//! redis-server (allkeys-lru, allkeys-lfu) and our server (each policy) at one `maxmemory`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::processes::Spawned;
use crate::report::HitRatio;

/// How long the replays may take (about 2 minutes on 2 cores, more on a loaded machine).
const TIMEOUT: Duration = Duration::from_secs(900);

/// Runs `hitratio` from `dir` (the directory of the suite's own binary, where cargo put the
/// `server` it starts too), echoing its lines to stderr as they come.
pub fn run(dir: &Path) -> HitRatio {
    let program = dir.join("hitratio");
    eprintln!("\nhit ratio: {} (about 2 minutes)", program.display());
    let mut command = Command::new(&program);
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    let spawned = match Spawned::spawn("hitratio", &mut command) {
        Ok(spawned) => spawned,
        Err(error) => return HitRatio::Ran { ok: false, lines: vec![format!("could not start: {error:#}")] },
    };
    let stdout = spawned.take_stdout();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        if let Some(stdout) = stdout {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("{line}");
                lines.push(line);
            }
        }
        lines
    });
    let status = spawned.wait_timeout(TIMEOUT);
    drop(spawned); // killed if it ran out of time: the reader then sees EOF
    let mut lines = reader.join().unwrap_or_default();
    if status.is_none() {
        lines.push(format!("(killed after {} s)", TIMEOUT.as_secs()));
    }
    HitRatio::Ran { ok: status.is_some_and(|s| s.success()), lines }
}
