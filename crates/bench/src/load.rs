//! Load from `redis-benchmark`, the Redis world's own tool: one bounded run per target and
//! test, its `--csv` line parsed, and every error it printed kept.

use std::fmt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::processes::{run_bounded, Captured};

/// A test: a redis-benchmark test, or our generator's mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Test {
    /// `SET key:__rand_int__ <value>`.
    Set,
    /// `GET key:__rand_int__`.
    Get,
    /// `MGET` of 10 random keys (a command line of its own: redis-benchmark's `-t mget`
    /// has no random keys).
    Mget,
    /// `HSET myhash element:__rand_int__ <value>`.
    Hset,
    /// `LPUSH mylist <value>`.
    Lpush,
    /// `SET big<size>:__rand_int__ <size bytes>` (a command line of its own, so that these
    /// keys never replace the small values the other tests read).
    SetSized(u32),
    /// `GET big<size>:__rand_int__`, after [`Test::SetSized`] filled them.
    GetSized(u32),
    /// 90 % GET / 10 % SET over Zipf-distributed keys, open-loop at a fixed rate: our
    /// generator ([`crate::loadgen`]), not redis-benchmark.
    Mix,
}

/// Keys of one `MGET`.
pub const MGET_KEYS: usize = 10;

impl Test {
    /// Its name in redis-benchmark's `-t` flag; `None` for a command line of its own.
    pub fn flag(self) -> Option<&'static str> {
        match self {
            Test::Set => Some("set"),
            Test::Get => Some("get"),
            Test::Hset => Some("hset"),
            Test::Lpush => Some("lpush"),
            Test::Mget | Test::SetSized(_) | Test::GetSized(_) | Test::Mix => None,
        }
    }

    /// The command's name (redis-benchmark's CSV names its `-t` tests so).
    pub fn name(self) -> &'static str {
        match self {
            Test::Set | Test::SetSized(_) => "SET",
            Test::Get | Test::GetSized(_) => "GET",
            Test::Mget => "MGET",
            Test::Hset => "HSET",
            Test::Lpush => "LPUSH",
            Test::Mix => "GET/SET",
        }
    }

    /// Whether it needs Redis's data types beyond strings (hashes, lists).
    pub fn needs_data_types(self) -> bool {
        matches!(self, Test::Hset | Test::Lpush)
    }

    /// Its name in our tables: `SET`, `MGET 10`, `SET 4KiB`, `GET/SET 90/10 zipf`.
    pub fn label(self) -> String {
        match self {
            Test::Mget => format!("MGET {MGET_KEYS}"),
            Test::SetSized(size) | Test::GetSized(size) => format!("{} {}", self.name(), size_label(size)),
            Test::Mix => "GET/SET 90/10 zipf".to_string(),
            _ => self.name().to_string(),
        }
    }

    /// The command line after redis-benchmark's options, for a test that is not a `-t` one.
    pub fn command_line(self) -> Option<Vec<String>> {
        let sized_key = |size: u32| format!("big{size}:__rand_int__");
        match self {
            Test::Mget => Some(
                std::iter::once("MGET".to_string())
                    .chain(std::iter::repeat_n("key:__rand_int__".to_string(), MGET_KEYS))
                    .collect(),
            ),
            Test::SetSized(size) => Some(vec!["SET".to_string(), sized_key(size), "x".repeat(size as usize)]),
            Test::GetSized(size) => Some(vec!["GET".to_string(), sized_key(size)]),
            _ => None,
        }
    }
}

/// `4096` -> `4KiB`, `65536` -> `64KiB`, `100` -> `100B`.
pub fn size_label(bytes: u32) -> String {
    if bytes >= 1024 && bytes & 1023 == 0 {
        format!("{}KiB", bytes / 1024)
    } else {
        format!("{bytes}B")
    }
}

/// One measured case: a test at a pipeline depth with a bounded number of requests, and
/// the settings it changes from the run's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// The command.
    pub test: Test,
    /// Requests each client keeps in flight (`-P`).
    pub pipeline: u32,
    /// Requests in the run (`-n`).
    pub requests: u64,
    /// Connections, when not the run's (`-c`).
    pub clients: Option<u32>,
    /// Distinct random keys, when not the run's (`-r`).
    pub keyspace: Option<u64>,
}

impl Case {
    /// Whether it is one of the core rows: SET or GET of the run's values, with the run's
    /// connections and keyspace.
    pub fn is_core(&self) -> bool {
        matches!(self.test, Test::Set | Test::Get) && self.clients.is_none() && self.keyspace.is_none()
    }

    /// A case with the run's connections and keyspace.
    pub fn new(test: Test, pipeline: u32, requests: u64) -> Self {
        Self { test, pipeline, requests, clients: None, keyspace: None }
    }

    /// The same with `clients` connections.
    pub fn with_clients(self, clients: u32) -> Self {
        Self { clients: Some(clients), ..self }
    }

    /// The same over `keyspace` keys.
    pub fn with_keyspace(self, keyspace: u64) -> Self {
        Self { keyspace: Some(keyspace), ..self }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.test == Test::Mix {
            write!(f, "{}", self.test.label())?;
        } else {
            write!(f, "{} P{}", self.test.label(), self.pipeline)?;
        }
        if let Some(clients) = self.clients {
            write!(f, " c{clients}")?;
        }
        Ok(())
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

/// One line of redis-benchmark's `--csv` output, or one run of our generator (latencies in
/// milliseconds).
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
    /// 99.9th percentile: our generator's runs only (redis-benchmark's CSV has none).
    pub p999_ms: Option<f64>,
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

impl RunResult {
    /// A run of our generator, as redis-benchmark's would read (every failed request and
    /// error reply becomes an error line).
    pub fn from_outcome(outcome: &crate::loadgen::Outcome) -> Self {
        let mut errors = Vec::new();
        if outcome.failed > 0 {
            errors.push(format!("Error: {} requests got no reply", outcome.failed));
        }
        if outcome.error_replies > 0 {
            errors.push(format!("Error: {} ERR replies", outcome.error_replies));
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let h = &outcome.latency_us;
        let sample = (outcome.replies > 0).then(|| Sample {
            rps: outcome.rps(),
            avg_ms: h.mean() / 1000.0,
            min_ms: ms(h.min()),
            p50_ms: outcome.percentile_ms(50.0),
            p95_ms: outcome.percentile_ms(95.0),
            p99_ms: outcome.percentile_ms(99.0),
            p999_ms: Some(outcome.percentile_ms(99.9)),
            max_ms: ms(h.max()),
        });
        let failure = sample.is_none().then(|| "no reply at all".to_string());
        RunResult { sample, errors, failure, warnings: Vec::new() }
    }
}

/// redis-benchmark's arguments for one run.
pub fn arguments(port: u16, case: &Case, settings: &Settings) -> Vec<String> {
    let mut args: Vec<String> = [
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-c",
        &case.clients.unwrap_or(settings.clients).to_string(),
        "-n",
        &case.requests.to_string(),
        "-d",
        &settings.value_size.to_string(),
        "-r",
        &case.keyspace.unwrap_or(settings.keyspace).to_string(),
        "-P",
        &case.pipeline.to_string(),
        "--csv",
        // Show server errors (redis-benchmark 7 exits at the first one instead).
        "-e",
    ]
    .map(str::to_string)
    .to_vec();
    match (case.test.flag(), case.test.command_line()) {
        (Some(flag), _) => args.extend(["-t".to_string(), flag.to_string()]),
        (None, Some(command)) => args.extend(command),
        (None, None) => {}
    }
    args
}

/// A run's figures, errors and warnings from what it printed.
fn interpret(captured: &Captured, test: Test) -> RunResult {
    let csv = parse_csv(&captured.stdout);
    // A command line of its own is named by its text in the CSV: its only row.
    let sample = csv
        .as_ref()
        .ok()
        .and_then(|rows| rows.iter().find(|(name, _)| test.flag().is_none() || name == test.name()))
        .map(|(_, sample)| *sample);
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
                p999_ms: None,
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
                    p999_ms: None,
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
        let case = Case::new(Test::Get, 16, 500_000);
        let settings = Settings { clients: 50, value_size: 32, keyspace: 100_000, timeout: Duration::from_secs(120) };
        assert_eq!(
            arguments(7000, &case, &settings).join(" "),
            "-h 127.0.0.1 -p 7000 -c 50 -n 500000 -d 32 -r 100000 -P 16 --csv -e -t get"
        );
        assert_eq!(case.to_string(), "GET P16");
        let mget = Case::new(Test::Mget, 1, 1000).with_clients(1000);
        let args = arguments(7000, &mget, &settings).join(" ");
        assert!(args.starts_with("-h 127.0.0.1 -p 7000 -c 1000 -n 1000 "), "{args}");
        assert!(args.ends_with(&format!("--csv -e MGET{}", " key:__rand_int__".repeat(10))), "{args}");
        assert_eq!(mget.to_string(), "MGET 10 P1 c1000");
        let big = Case::new(Test::SetSized(4096), 1, 10).with_keyspace(1000);
        let args = arguments(7000, &big, &settings);
        assert!(args.join(" ").contains(" -r 1000 "));
        assert_eq!(args[args.len() - 3..], ["SET".to_string(), "big4096:__rand_int__".to_string(), "x".repeat(4096)]);
        assert_eq!(big.to_string(), "SET 4KiB P1");
        assert_eq!(Case::new(Test::Mix, 1, 0).to_string(), "GET/SET 90/10 zipf");
        assert_eq!((size_label(65536), size_label(100)), ("64KiB".to_string(), "100B".to_string()));
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

    #[test]
    fn a_command_line_of_its_own_is_its_only_csv_row() {
        let output = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
\"MGET key:__rand_int__ key:__rand_int__\",\"50000.00\",\"0.5\",\"0.1\",\"0.4\",\"0.8\",\"1.0\",\"2.0\"\n";
        let captured = Captured {
            status: Some(std::process::ExitStatus::default()),
            stdout: output.to_string(),
            stderr: String::new(),
            elapsed: Duration::from_secs(1),
        };
        let result = interpret(&captured, Test::Mget);
        assert_eq!(result.sample.map(|s| s.rps), Some(50000.0));
        assert!(interpret(&captured, Test::Get).sample.is_none());
    }
}
