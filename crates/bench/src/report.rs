//! What a run of the suite shows: the table on the terminal, `results.md` and
//! `results.svg`. Everything here is pure formatting of the figures, unit-tested below.

mod chart;

use std::fmt::Write as _;

use cli::Palette;

use crate::load::Case;
use crate::machine::Machine;
use crate::memory::MemoryRow;
use crate::procfs::ClockTicks;
use crate::sanity::Sanity;
use crate::stats::{Grid, Summary};
use crate::target::Target;

pub use chart::svg;

/// The memory test's outcome.
#[derive(Debug, Clone)]
pub enum Memory {
    /// `--skip-memory`.
    Skipped,
    /// It could not be measured.
    Failed(String),
    /// The figures, redis-server first.
    Measured(Vec<MemoryRow>),
}

/// The ring micro-benchmarks' outcome.
#[derive(Debug, Clone)]
pub enum RingBench {
    /// Not asked for (`--ring` runs it).
    NotRun,
    /// `cargo bench -p ring` ran; its result lines.
    Ran {
        /// Whether it exited successfully.
        ok: bool,
        /// The lines with criterion's `time:` figures.
        lines: Vec<String>,
    },
}

/// Everything a run measured, ready to be shown.
#[derive(Debug, Clone)]
pub struct Report {
    /// The cases, in the order of the table.
    pub cases: Vec<Case>,
    /// Every measurement.
    pub grid: Grid,
    /// The redis-benchmark settings, as a sentence (`-c 50 -d 32 -r 100000`).
    pub load_settings: String,
    /// The sanity checks.
    pub sanity: Sanity,
    /// The memory test.
    pub memory: Memory,
    /// The ring micro-benchmarks.
    pub ring: RingBench,
    /// Where it ran.
    pub machine: Machine,
    /// The command that reproduces it.
    pub command: String,
    /// The clock of the CPU figures.
    pub ticks: ClockTicks,
    /// How long the whole run took, seconds.
    pub elapsed_secs: f64,
}

/// The columns of the main table.
const COLUMNS: [&str; 9] =
    ["Test", "Target", "requests/s", "p50 ms", "p99 ms", "CPU µs/req", "vs twemproxy", "vs redis", "reps"];

/// One row of the main table, as text.
struct Row {
    /// The target, for colouring.
    target: Target,
    /// The ratio to twemproxy, for colouring.
    vs_twemproxy: Option<f64>,
    cells: [String; 9],
}

impl Report {
    /// The main table's rows, grouped by case.
    fn rows(&self) -> Vec<Vec<Row>> {
        self.cases
            .iter()
            .enumerate()
            .map(|(c, case)| {
                self.grid
                    .targets()
                    .iter()
                    .map(|&target| {
                        let summary = self.grid.summary(c, target);
                        Row {
                            target,
                            vs_twemproxy: summary.and_then(|s| s.vs_twemproxy),
                            cells: cells(case, target, summary.as_ref(), self.grid.reps()),
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

fn cells(case: &Case, target: Target, s: Option<&Summary>, reps: usize) -> [String; 9] {
    let dash = || "-".to_string();
    [
        case.to_string(),
        target.label().to_string(),
        s.map_or_else(dash, |s| thousands(s.rps)),
        s.map_or_else(dash, |s| format!("{:.3}", s.p50_ms)),
        s.map_or_else(dash, |s| format!("{:.3}", s.p99_ms)),
        s.and_then(|s| s.cpu_us_per_request).map_or_else(dash, |us| format!("{us:.2}")),
        ratio(s.and_then(|s| s.vs_twemproxy)),
        ratio(s.and_then(|s| s.vs_redis)),
        format!("{}/{reps}", s.map_or(0, |s| s.reps)),
    ]
}

/// `712345.6` -> `712,346`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

/// `1 repetition`, `3 repetitions`.
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `1.234` -> `1.23x`; none -> `-`.
pub fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |r| format!("{r:.2}x"))
}

/// Whether a column holds numbers (right-aligned).
fn numeric(column: usize) -> bool {
    column >= 2
}

/// The main table, aligned, coloured when `palette` is on.
pub fn table(report: &Report, palette: &Palette) -> String {
    let groups = report.rows();
    let mut widths = COLUMNS.map(|c| c.chars().count());
    for row in groups.iter().flatten() {
        for (w, cell) in widths.iter_mut().zip(&row.cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let pad = |text: &str, column: usize| {
        let fill = " ".repeat(widths[column].saturating_sub(text.chars().count()));
        if numeric(column) {
            format!("{fill}{text}")
        } else {
            format!("{text}{fill}")
        }
    };
    let mut out = String::new();
    let header: Vec<String> = COLUMNS.iter().enumerate().map(|(i, c)| palette.bold(&pad(c, i))).collect();
    let _ = writeln!(out, "{}", header.join("  ").trim_end());
    let rule = "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1));
    for group in &groups {
        let _ = writeln!(out, "{}", palette.dim(&rule));
        for row in group {
            let cells: Vec<String> = row
                .cells
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    let text = pad(cell, i);
                    let ours = !matches!(row.target, Target::Redis | Target::Twemproxy);
                    match i {
                        1 if ours => palette.cyan(&text),
                        6 if ours => match row.vs_twemproxy {
                            Some(r) if r >= 1.0 => palette.green(&text),
                            Some(_) => palette.red(&text),
                            None => text,
                        },
                        _ => text,
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
    }
    out
}

/// The main table in Markdown.
fn markdown_table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", COLUMNS.join(" | "));
    let align: Vec<&str> = (0..COLUMNS.len()).map(|i| if numeric(i) { "---:" } else { "---" }).collect();
    let _ = writeln!(out, "|{}|", align.join("|"));
    for row in report.rows().iter().flatten() {
        let mut cells = row.cells.clone();
        if !matches!(row.target, Target::Redis | Target::Twemproxy) {
            cells[1] = format!("**{}**", cells[1]);
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

/// Requests/s of every repetition, to show the spread behind each median.
fn markdown_repetitions(report: &Report) -> String {
    let reps = report.grid.reps();
    let mut out = String::new();
    let heads: Vec<String> = (1..=reps).map(|r| format!("rep {r}")).collect();
    let _ = writeln!(out, "| Test | Target | {} |", heads.join(" | "));
    let _ = writeln!(out, "|---|---|{}", "---:|".repeat(reps));
    for (c, case) in report.cases.iter().enumerate() {
        for &target in report.grid.targets() {
            let figures: Vec<String> = (0..reps)
                .map(|rep| report.grid.get(rep, c, target).map_or_else(|| "failed".to_string(), |m| thousands(m.rps)))
                .collect();
            let _ = writeln!(out, "| {case} | {} | {} |", target.label(), figures.join(" | "));
        }
    }
    out
}

/// The sanity section as plain lines (`ok`/`FAIL` marks, coloured when `palette` is on).
pub fn sanity_text(sanity: &Sanity, palette: &Palette) -> String {
    let mut out = String::new();
    for check in &sanity.checks {
        let mark = if check.ok { palette.green("ok  ") } else { palette.red("FAIL") };
        let _ = writeln!(out, "{mark} {}", check.text);
        for detail in &check.details {
            let _ = writeln!(out, "       {detail}");
        }
    }
    for note in &sanity.notes {
        let _ = writeln!(out, "{} {note}", palette.dim("note"));
    }
    out
}

fn sanity_markdown(sanity: &Sanity) -> String {
    let mut out = String::new();
    for check in &sanity.checks {
        let mark = if check.ok { "ok" } else { "**FAIL**" };
        let _ = writeln!(out, "- {mark}: {}", check.text);
        for detail in &check.details {
            let _ = writeln!(out, "  - `{detail}`");
        }
    }
    for note in &sanity.notes {
        let _ = writeln!(out, "- note: {note}");
    }
    out
}

/// The memory section's lines: one per server, then the comparison.
pub fn memory_lines(memory: &Memory) -> Vec<String> {
    match memory {
        Memory::Skipped => vec!["skipped (--skip-memory)".to_string()],
        Memory::Failed(why) => vec![format!("could not be measured: {why}")],
        Memory::Measured(rows) => {
            let mut lines: Vec<String> = rows
                .iter()
                .map(|r| {
                    format!(
                        "{:<12} {} keys (DBSIZE {}), VmRSS {} -> {} KiB: {:.1} bytes/key{}",
                        r.label,
                        thousands(r.keys as f64),
                        thousands(r.dbsize as f64),
                        thousands(r.rss_before_kib as f64),
                        thousands(r.rss_after_kib as f64),
                        r.bytes_per_key(),
                        if r.pipe_errors > 0 { format!(", {} errors", r.pipe_errors) } else { String::new() }
                    )
                })
                .collect();
            if let [redis, ours] = rows.as_slice() {
                if redis.bytes_per_key() > 0.0 {
                    lines.push(format!(
                        "{} / {}: {:.2}x",
                        ours.label,
                        redis.label,
                        ours.bytes_per_key() / redis.bytes_per_key()
                    ));
                }
            }
            lines
        }
    }
}

fn memory_markdown(memory: &Memory) -> String {
    let Memory::Measured(rows) = memory else {
        return format!("{}\n", memory_lines(memory).join("\n"));
    };
    let mut out = String::from(
        "| Server | keys | DBSIZE | VmRSS before (KiB) | VmRSS after (KiB) | bytes/key |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.1} |",
            r.label,
            thousands(r.keys as f64),
            thousands(r.dbsize as f64),
            thousands(r.rss_before_kib as f64),
            thousands(r.rss_after_kib as f64),
            r.bytes_per_key()
        );
    }
    if let Some(line) = memory_lines(memory).get(rows.len()) {
        let _ = writeln!(out, "\n{line} (resident bytes per key).");
    }
    out
}

/// The note under the table on how the CPU figures are taken.
fn cpu_note(ticks: &ClockTicks) -> String {
    format!(
        "CPU µs/req: user + system time of the process clients talk to (redis-server, \
         nutcracker, our proxy, our server; not the backends) from `/proc/<pid>/stat` around \
         each run, divided by its requests; {} clock ticks per second ({}), so one run's \
         figure has a resolution of {:.0} ms.",
        ticks.per_second,
        if ticks.measured { "getconf CLK_TCK" } else { "assumed: getconf CLK_TCK could not be asked" },
        1000.0 / ticks.per_second
    )
}

const RING_HOWTO: &str = "`cargo bench -p ring` (criterion; about 1.5 minutes) measures the \
    ring's lookups against the seed's and the `hashring` crate's; `./bench.sh --ring` runs it at \
    the end of the suite. Its figures and notes: crates/ring/README.md.";

/// Everything printed after the progress lines.
pub fn terminal(report: &Report, palette: &Palette) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{}",
        palette.bold(&format!(
            "Medians of {} (redis-benchmark {}); ratios within each repetition, then their median",
            plural(report.grid.reps(), "repetition"),
            report.load_settings
        ))
    );
    out.push_str(&table(report, palette));
    let _ = writeln!(out, "{}", palette.dim(&cpu_note(&report.ticks)));
    let _ = writeln!(out, "\n{}", palette.bold("Sanity"));
    out.push_str(&sanity_text(&report.sanity, palette));
    let _ = writeln!(out, "\n{}", palette.bold("Memory"));
    for line in memory_lines(&report.memory) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "\n{}", palette.bold("Ring"));
    match &report.ring {
        RingBench::NotRun => {
            let _ = writeln!(out, "not run: {RING_HOWTO}");
        }
        RingBench::Ran { ok, lines } => {
            if !ok {
                let _ = writeln!(out, "{}", palette.red("cargo bench -p ring failed"));
            }
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    out
}

/// `results.md`.
pub fn markdown(report: &Report) -> String {
    let m = &report.machine;
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmark results\n");
    let _ = writeln!(
        out,
        "Measured by `{}` on {} ({} cores, {}), Linux {}, in {:.0} s. Load from {} with \
         {}; each figure is the median of {}, targets alternating within each \
         repetition; ratios are computed within a repetition, then their median is taken.\n",
        report.command,
        m.date,
        m.cores,
        m.cpu_model,
        m.kernel,
        report.elapsed_secs,
        m.redis_benchmark,
        report.load_settings,
        plural(report.grid.reps(), "repetition")
    );
    let _ = writeln!(out, "Targets:\n");
    for &target in report.grid.targets() {
        let _ = writeln!(out, "- `{}`: {}", target.label(), target.description());
    }
    let _ = writeln!(out, "\n## Throughput and latency\n");
    out.push_str(&markdown_table(report));
    let _ = writeln!(out, "\n{}\n", cpu_note(&report.ticks));
    let _ = writeln!(out, "![requests per second per target](results.svg)\n");
    let _ = writeln!(out, "### Requests/s of each repetition\n");
    out.push_str(&markdown_repetitions(report));
    let _ = writeln!(out, "\n## Sanity\n");
    out.push_str(&sanity_markdown(&report.sanity));
    let _ = writeln!(
        out,
        "\n## Memory\n\nResident memory per key: a fresh server loaded with keys of {} bytes \
         and {}-byte values through `redis-cli --pipe`; (VmRSS after - VmRSS before) / keys, \
         from `/proc/<pid>/status`.\n",
        crate::memory::KEY_LEN,
        crate::memory::VALUE_LEN
    );
    out.push_str(&memory_markdown(&report.memory));
    let _ = writeln!(out, "\n## Ring\n");
    match &report.ring {
        RingBench::NotRun => {
            let _ = writeln!(out, "Not run this time. {RING_HOWTO}");
        }
        RingBench::Ran { ok, lines } => {
            let _ = writeln!(
                out,
                "`cargo bench -p ring`{}:\n\n```\n{}\n```",
                if *ok { "" } else { " (failed)" },
                lines.join("\n")
            );
        }
    }
    let _ = writeln!(out, "\n## Machine\n");
    let _ = writeln!(out, "- cores (nproc): {}", m.cores);
    let _ = writeln!(out, "- CPU: {}", m.cpu_model);
    let _ = writeln!(out, "- kernel: {}", m.kernel);
    let _ = writeln!(out, "- tools: {}, {}, {}", m.redis_benchmark, m.redis_server, m.nutcracker);
    let _ = writeln!(out, "- date: {}", m.date);
    let _ = writeln!(out, "- command: `{}`", report.command);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::load::Test;
    use crate::sanity::Check;
    use crate::stats::Measurement;

    /// A small report: two cases, three targets, two repetitions.
    pub(crate) fn sample_report() -> Report {
        let cases = vec![
            Case { test: Test::Set, pipeline: 1, requests: 100 },
            Case { test: Test::Get, pipeline: 16, requests: 500 },
        ];
        let targets = [Target::Redis, Target::Twemproxy, Target::ProxyRedis];
        let mut grid = Grid::new(&targets, cases.len(), 2);
        for rep in 0..2 {
            for (c, scale) in [(0, 1.0), (1, 10.0)] {
                for (target, rps) in
                    [(Target::Redis, 100_000.0), (Target::Twemproxy, 75_000.0), (Target::ProxyRedis, 90_000.0)]
                {
                    grid.set(
                        rep,
                        c,
                        target,
                        Measurement { rps: rps * scale, p50_ms: 0.25, p99_ms: 0.5, cpu_us_per_request: Some(4.0) },
                    );
                }
            }
        }
        Report {
            cases,
            grid,
            load_settings: "-c 50 -d 32 -r 100000".into(),
            sanity: Sanity {
                checks: vec![
                    Check { ok: true, text: "redis: 4 runs".into(), details: vec![] },
                    Check {
                        ok: false,
                        text: "proxy/redis: INFO errors=1".into(),
                        details: vec!["127.0.0.1:1 requests=5 errors=1".into()],
                    },
                ],
                notes: vec!["WARNING: Could not fetch server CONFIG".into()],
            },
            memory: Memory::Measured(vec![
                MemoryRow {
                    label: "redis-server".into(),
                    keys: 1_000_000,
                    dbsize: 1_000_000,
                    rss_before_kib: 8_000,
                    rss_after_kib: 153_000,
                    pipe_errors: 0,
                },
                MemoryRow {
                    label: "server".into(),
                    keys: 1_000_000,
                    dbsize: 1_000_000,
                    rss_before_kib: 4_000,
                    rss_after_kib: 120_000,
                    pipe_errors: 0,
                },
            ]),
            ring: RingBench::NotRun,
            machine: Machine {
                cores: 2,
                cpu_model: "Test CPU".into(),
                kernel: "6.1".into(),
                redis_benchmark: "redis-benchmark 7.0.15".into(),
                redis_server: "Redis server v=7.0.15".into(),
                nutcracker: "nutcracker-0.5.0".into(),
                date: "2026-01-01 00:00 UTC".into(),
            },
            command: "./bench.sh".into(),
            ticks: ClockTicks { per_second: 100.0, measured: true },
            elapsed_secs: 12.0,
        }
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(712_345.6), "712,346");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-1234.0), "-1,234");
    }

    #[test]
    fn ratios_have_two_decimals() {
        assert_eq!(ratio(Some(1.2345)), "1.23x");
        assert_eq!(ratio(None), "-");
    }

    #[test]
    fn the_plain_table_is_aligned() {
        let text = table(&sample_report(), &Palette::plain());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("Test     Target       requests/s  p50 ms"));
        // Header, a rule and three rows per case.
        assert_eq!(lines.len(), 1 + 2 * 4);
        let row = lines.iter().find(|l| l.starts_with("SET P1   proxy/redis")).unwrap();
        assert_eq!(*row, "SET P1   proxy/redis      90,000   0.250   0.500        4.00         1.20x     0.90x   2/2");
        // Right-aligned numbers end in the same column as their header.
        let header_end = lines[0].find("requests/s").unwrap() + "requests/s".len();
        assert_eq!(&row[header_end - 6..header_end], "90,000");
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn the_markdown_has_every_section() {
        let md = markdown(&sample_report());
        for needle in [
            "# Benchmark results",
            "| Test | Target | requests/s | p50 ms | p99 ms | CPU µs/req | vs twemproxy | vs redis | reps |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
            "| GET P16 | **proxy/redis** | 900,000 | 0.250 | 0.500 | 4.00 | 1.20x | 0.90x | 2/2 |",
            "| SET P1 | twemproxy | 75,000 | 75,000 |",
            "![requests per second per target](results.svg)",
            "- ok: redis: 4 runs",
            "- **FAIL**: proxy/redis: INFO errors=1",
            "  - `127.0.0.1:1 requests=5 errors=1`",
            "| server | 1,000,000 | 1,000,000 | 4,000 | 120,000 | 118.8 |",
            "server / redis-server: 0.80x",
            "`./bench.sh --ring`",
            "- CPU: Test CPU",
            "- command: `./bench.sh`",
            "100 clock ticks per second (getconf CLK_TCK)",
        ] {
            assert!(md.contains(needle), "missing {needle:?} in\n{md}");
        }
    }

    #[test]
    fn the_terminal_report_shows_failures_and_memory() {
        let text = terminal(&sample_report(), &Palette::plain());
        assert!(text.contains("FAIL proxy/redis: INFO errors=1"));
        assert!(text.contains("       127.0.0.1:1 requests=5 errors=1"));
        assert!(text.contains("ok   redis: 4 runs"));
        assert!(text
            .contains("redis-server 1,000,000 keys (DBSIZE 1,000,000), VmRSS 8,000 -> 153,000 KiB: 148.5 bytes/key"));
        assert!(text.contains("not run: `cargo bench -p ring`"));
    }

    #[test]
    fn memory_lines_say_when_skipped() {
        assert_eq!(memory_lines(&Memory::Skipped), ["skipped (--skip-memory)"]);
    }
}
