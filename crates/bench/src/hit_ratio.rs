//! The hit-ratio section: runs the `hitratio` program (`src/bin/hitratio.rs`, built beside
//! the suite) and keeps its table: the same Zipf and scan-mixed traces replayed against
//! redis-server (allkeys-lru, allkeys-lfu) and our server (each policy) at one `maxmemory`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::processes::run_echoing;
use crate::report::HitRatio;

/// How long the replays may take (about 2 minutes on 2 cores, more on a loaded machine).
const TIMEOUT: Duration = Duration::from_secs(900);

/// Runs `hitratio` from `dir` (the directory of the suite's own binary, where cargo put the
/// `server` it starts too), echoing its lines to stderr as they come.
pub fn run(dir: &Path) -> HitRatio {
    let program = dir.join("hitratio");
    eprintln!("\nhit ratio: {} (about 2 minutes)", program.display());
    let (status, mut lines) = match run_echoing("hitratio", &mut Command::new(&program), TIMEOUT) {
        Ok(ran) => ran,
        Err(error) => return HitRatio::Ran { ok: false, lines: vec![format!("could not start: {error:#}")] },
    };
    if status.is_none() {
        lines.push(format!("(killed after {} s)", TIMEOUT.as_secs()));
    }
    HitRatio::Ran { ok: status.is_some_and(|s| s.success()), lines }
}
