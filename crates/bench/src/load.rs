//! Load from `redis-benchmark`, the Redis world's own tool: one bounded run per target and
//! test, its `--csv` line parsed, and every error it printed kept.

use std::fmt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::processes::{run_bounded, Captured};

/// A redis-benchmark test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Test {
    /// `SET key:__rand_int__ <value>`.
    Set,
    /// `GET key:__rand_int__`.
    Get,
}

impl Test {
    /// Its name in redis-benchmark's `-t` flag.
    pub fn flag(self) -> &'static str {
        match self {
            Test::Set => "set",
            Test::Get => "get",
        }
    }

    /// Its name in redis-benchmark's CSV and in our tables.
    pub fn name(self) -> &'static str {
        match self {
            Test::Set => "SET",
            Test::Get => "GET",
        }
    }
}

/// One measured case: a test at a pipeline depth with a bounded number of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// The command.
    pub test: Test,
    /// Requests each client keeps in flight (`-P`).
    pub pipeline: u32,
    /// Requests in the run (`-n`).
    pub requests: u64,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} P{}", self.test.name(), self.pipeline)
    }
}

/// The settings every run shares.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Parallel connections (`-c`).
    pub clients: u32,
    /// Value size in bytes (`-d`).
    pub value_size: u32,
    /// Distinct random keys (`-r`).
    pub keyspace: u64,
    /// How long one run may take before it is killed.
    pub timeout: Duration,
}

/// One line of redis-benchmark's `--csv` output (latencies in milliseconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Requests per second.
    pub rps: f64,
    /// Mean latency.
    pub avg_ms: f64,
    /// Least latency.
    pub min_ms: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Greatest latency.
    pub max_ms: f64,
}

/// What one run gave.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Its figures; `None` when it failed.
    pub sample: Option<Sample>,
    /// Lines that report a failed request (server errors, connection errors).
    pub errors: Vec<String>,
    /// Why the run itself failed (time limit, exit status, no CSV line).
    pub failure: Option<String>,
    /// redis-benchmark's own warnings (for example that a proxy does not answer CONFIG).
    pub warnings: Vec<String>,
}

/// Runs redis-benchmark once against `127.0.0.1:<port>`.
pub fn run(redis_benchmark: &Path, port: u16, case: &Case, settings: &Settings) -> Result<RunResult> {
    let mut command = Command::new(redis_benchmark);
    command.args(arguments(port, case, settings));
    let captured = run_bounded("redis-benchmark", &mut command, settings.timeout)?;
    Ok(interpret(&captured, case.test))
}

/// redis-benchmark's arguments for one run.
pub fn arguments(port: u16, case: &Case, settings: &Settings) -> Vec<String> {
    [
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-c",
        &settings.clients.to_string(),
        "-n",
        &case.requests.to_string(),
        "-d",
        &settings.value_size.to_string(),
        "-r",
        &settings.keyspace.to_string(),
        "-P",
        &case.pipeline.to_string(),
        "-t",
        case.test.flag(),
        "--csv",
        // Show server errors (redis-benchmark 7 exits at the first one instead).
        "-e",
    ]
    .map(str::to_string)
    .to_vec()
}

/// A run's figures, errors and warnings from what it printed.
fn interpret(captured: &Captured, test: Test) -> RunResult {
    let csv = parse_csv(&captured.stdout);
    let sample =
        csv.as_ref().ok().and_then(|rows| rows.iter().find(|(name, _)| name == test.name())).map(|(_, sample)| *sample);
    let mut failure = captured.failure();
    if failure.is_none() && sample.is_none() {
        failure = Some(match csv {
            Err(e) => format!("{e:#}"),
            Ok(_) => format!("no {} line in the CSV output", test.name()),
        });
    }
    let all_output = format!("{}\n{}", captured.stdout, captured.stderr);
    if let Some(reason) = failure.as_mut() {
        // What the tool said last usually tells why (`Could not connect ...`).
        let said = all_output
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.starts_with('"') && !l.starts_with("WARNING"));
        if let Some(said) = said {
            reason.push_str(": ");
            reason.push_str(said);
        }
    }
    let (errors, warnings) = error_lines(&all_output);
    RunResult { sample: if failure.is_none() { sample } else { None }, errors, failure, warnings }
}

/// The rows of redis-benchmark's `--csv` output: `"test","rps","avg_latency_ms",
/// "min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"`.
/// Other lines (errors, warnings) are skipped.
pub fn parse_csv(output: &str) -> Result<Vec<(String, Sample)>> {
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for line in output.lines() {
        let fields: Vec<String> = line.trim().split(',').map(|f| f.trim().trim_matches('"').to_string()).collect();
        if fields.first().is_some_and(|f| f == "test") {
            header = Some(fields);
            continue;
        }
        let Some(header) = &header else { continue };
        if fields.len() != header.len() || !line.trim_start().starts_with('"') {
            continue;
        }
        let column = |name: &str| -> Result<f64> {
            let at = header
                .iter()
                .position(|h| h == name)
                .with_context(|| format!("no {name} column in redis-benchmark's CSV"))?;
            fields[at].parse().with_context(|| format!("{name} is not a number in {line:?}"))
        };
        rows.push((
            fields[0].clone(),
            Sample {
                rps: column("rps")?,
                avg_ms: column("avg_latency_ms")?,
                min_ms: column("min_latency_ms")?,
                p50_ms: column("p50_latency_ms")?,
                p95_ms: column("p95_latency_ms")?,
                p99_ms: column("p99_latency_ms")?,
                max_ms: column("max_latency_ms")?,
            },
        ));
    }
    if header.is_none() {
        bail!("no CSV header in redis-benchmark's output");
    }
    Ok(rows)
}

/// The lines of redis-benchmark's output that report errors (`ERR ...`, `Error: ...`,
/// `Server error`), and its `WARNING:` lines, which are notes about the tool, not failed
/// requests (redis-benchmark 7 says that `-e` now exits on the first error, and that a
/// proxy did not answer `CONFIG GET`).
pub fn error_lines(output: &str) -> (Vec<String>, Vec<String>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("WARNING") {
            warnings.push(line.to_string());
        } else if line.starts_with('"') {
            continue; // a CSV row or the header
        } else if line.contains("ERR") || line.to_ascii_lowercase().contains("error") {
            errors.push(line.to_string());
        }
    }
    (errors, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
\"SET\",\"100502.52\",\"0.266\",\"0.056\",\"0.255\",\"0.407\",\"0.655\",\"1.199\"\n";

    #[test]
    fn the_csv_line_is_parsed() {
        let rows = parse_csv(OUTPUT).unwrap();
        assert_eq!(
            rows,
            vec![(
                "SET".to_string(),
                Sample {
                    rps: 100502.52,
                    avg_ms: 0.266,
                    min_ms: 0.056,
                    p50_ms: 0.255,
                    p95_ms: 0.407,
                    p99_ms: 0.655,
                    max_ms: 1.199,
                }
            )]
        );
    }

    #[test]
    fn columns_are_found_by_name_and_noise_is_skipped() {
        let output = "WARNING: Could not fetch server CONFIG\n\
\"test\",\"p99_latency_ms\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"max_latency_ms\"\n\
ERR something odd\n\
\"GET\",\"0.9\",\"1666666.62\",\"0.364\",\"0.096\",\"0.359\",\"0.583\",\"0.759\"\n";
        let rows = parse_csv(output).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0, "GET");
        assert_eq!(rows[0].1.rps, 1666666.62);
        assert_eq!(rows[0].1.p99_ms, 0.9);
    }

    #[test]
    fn output_without_csv_is_an_error() {
        assert!(parse_csv("Could not connect to Redis at 127.0.0.1:1: Connection refused\n").is_err());
        assert!(parse_csv(
            "\"test\",\"rps\"\n\"SET\",\"fast\"\n" // a header without the latency columns
        )
        .is_err());
    }

    #[test]
    fn error_lines_are_told_from_warnings() {
        let output = "WARNING: -e option has no effect. We now immediately exit on error to avoid false results.\n\
WARNING: Could not fetch server CONFIG\n\
Error from server: ERR no servers available\n\
Could not connect to Redis at 127.0.0.1:9: Connection refused\n\
\"SET\",\"1.0\",\"1\",\"1\",\"1\",\"1\",\"1\",\"1\"\n\
Error: Server closed the connection\n";
        let (errors, warnings) = error_lines(output);
        assert_eq!(errors, ["Error from server: ERR no servers available", "Error: Server closed the connection"]);
        assert_eq!(warnings.len(), 2);
    }

    #[test]
    fn arguments_carry_every_setting() {
        let case = Case { test: Test::Get, pipeline: 16, requests: 500_000 };
        let settings = Settings { clients: 50, value_size: 32, keyspace: 100_000, timeout: Duration::from_secs(120) };
        assert_eq!(
            arguments(7000, &case, &settings).join(" "),
            "-h 127.0.0.1 -p 7000 -c 50 -n 500000 -d 32 -r 100000 -P 16 -t get --csv -e"
        );
        assert_eq!(case.to_string(), "GET P16");
    }

    #[test]
    fn a_failed_run_has_no_sample() {
        let captured = Captured {
            status: None,
            stdout: OUTPUT.to_string(),
            stderr: String::new(),
            elapsed: Duration::from_secs(120),
        };
        let result = interpret(&captured, Test::Set);
        assert!(result.sample.is_none());
        assert!(result.failure.unwrap().contains("time limit"));
    }
}
