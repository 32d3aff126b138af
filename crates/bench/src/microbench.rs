//! The ring's micro-benchmarks (`cargo bench -p ring`), run at the end with `--ring`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::processes::run_echoing;
use crate::report::RingBench;

/// How long `cargo bench -p ring` may take (it takes about 1.5 minutes, plus its build).
const TIMEOUT: Duration = Duration::from_secs(900);
/// The line the ring's benchmark prints before its summary table.
const SUMMARY_MARK: &str = "== summary";

/// Runs `cargo bench -p ring` in the workspace, echoing its output to stderr as it goes,
/// and keeps its summary for the report.
pub fn run(root: &Path) -> Result<RingBench> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("\nring: cargo bench -p ring (about 1.5 minutes)");
    let mut command = Command::new(cargo);
    command.args(["bench", "-p", "ring"]).current_dir(root);
    let (status, lines) = run_echoing("cargo bench -p ring", &mut command, TIMEOUT)?;
    let mut kept = summary(&lines);
    if status.is_none() {
        kept.push(format!("(killed after {} s)", TIMEOUT.as_secs()));
    }
    Ok(RingBench::Ran { ok: status.is_some_and(|s| s.success()), lines: kept })
}

/// The benchmark's own summary (from its `== summary` line on), or else criterion's
/// `time:` lines with their benchmark's name.
pub fn summary(lines: &[String]) -> Vec<String> {
    if let Some(start) = lines.iter().position(|l| l.starts_with(SUMMARY_MARK)) {
        return lines[start..].iter().map(|l| l.trim_end().to_string()).collect();
    }
    let mut kept = Vec::new();
    let mut name = "";
    for line in lines {
        if line.contains("time:") {
            if line.starts_with(char::is_whitespace) {
                kept.push(format!("{name} {}", line.trim()));
            } else {
                kept.push(line.trim().to_string());
            }
        } else if !line.trim().is_empty() && !line.starts_with(char::is_whitespace) {
            name = line.trim();
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn the_summary_is_kept_when_printed() {
        let out =
            lines("lookup/ours_10x3   time:   [9.6 ns 9.7 ns 9.8 ns]\n\n== summary: x ==\nlookup ours\n10x3 9.7 ns\n");
        assert_eq!(summary(&out), ["== summary: x ==", "lookup ours", "10x3 9.7 ns"]);
    }

    #[test]
    fn otherwise_time_lines_with_their_names() {
        let out = lines(
            "lookup/ours_10x3   time:   [9.6 ns 9.7 ns 9.8 ns]\n\
             Found 2 outliers\n\
             lookup/hashring_1000x160\n\
             \x20                       time:   [101 ns 102 ns 103 ns]\n",
        );
        assert_eq!(
            summary(&out),
            [
                "lookup/ours_10x3   time:   [9.6 ns 9.7 ns 9.8 ns]",
                "lookup/hashring_1000x160 time:   [101 ns 102 ns 103 ns]"
            ]
        );
    }
}
