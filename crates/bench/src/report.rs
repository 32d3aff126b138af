//! What a run of the suite shows: the table on the terminal, `results.md` and
//! `results.svg`. Everything here is pure formatting of the figures, unit-tested below.

mod chart;

use std::fmt::Write as _;

use cli::Palette;

use crate::idle::IdleRow;
use crate::load::Case;
use crate::machine::Machine;
use crate::memory::MemoryRow;
use crate::migration::{self, Attempt};
use crate::numbers::thousands;
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

/// The memory-per-idle-client test's outcome.
#[derive(Debug, Clone)]
pub enum Idle {
    /// `--skip-idle` (or `--quick`).
    Skipped,
    /// One row per target, or why it could not be measured.
    Measured(Vec<(Target, Result<IdleRow, String>)>),
}

/// The migration test's outcome.
#[derive(Debug, Clone)]
pub enum Migration {
    /// `--skip-migration`.
    Skipped,
    /// One attempt per kind of backend.
    Ran(Vec<Attempt>),
}

/// The hit-ratio replays' outcome.
#[derive(Debug, Clone)]
pub enum HitRatio {
    /// `--skip-hit-ratio` (or `--quick`).
    Skipped,
    /// `hitratio` ran; its output lines (a markdown table under one line of settings).
    Ran {
        /// Whether it exited successfully.
        ok: bool,
        /// What it printed.
        lines: Vec<String>,
    },
}

/// How to run the hit-ratio replays alone.
const HIT_RATIO_HOWTO: &str =
    "`cargo build --release -p server -p bench --bin hitratio && target/release/hitratio` replays \
     the same traces alone.";

/// The hit-ratio section's lines, for the terminal and the markdown alike (its table is
/// markdown already).
fn hit_ratio_lines(hit_ratio: &HitRatio) -> Vec<String> {
    match hit_ratio {
        HitRatio::Skipped => vec![format!("skipped (--skip-hit-ratio). {HIT_RATIO_HOWTO}")],
        HitRatio::Ran { ok, lines } => {
            let mut shown = lines.clone();
            if !ok {
                shown.push("(hitratio failed)".into());
            }
            shown
        }
    }
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
    /// The Zipf mix row's generator command, when the wider rows ran.
    pub mix_settings: Option<String>,
    /// The sanity checks.
    pub sanity: Sanity,
    /// Memory per idle client connection.
    pub idle: Idle,
    /// The memory test.
    pub memory: Memory,
    /// The migration test.
    pub migration: Migration,
    /// The hit-ratio replays.
    pub hit_ratio: HitRatio,
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
const COLUMNS: [&str; 11] = [
    "Test",
    "Target",
    "requests/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "CPU µs/req",
    "machine µs/req",
    "vs twemproxy",
    "vs redis",
    "reps",
];

/// One row of the main table, as text.
struct Row {
    /// The target, for colouring.
    target: Target,
    /// The ratio to twemproxy, for colouring.
    vs_twemproxy: Option<f64>,
    cells: [String; 11],
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

fn cells(case: &Case, target: Target, s: Option<&Summary>, reps: usize) -> [String; 11] {
    let dash = || "-".to_string();
    [
        case.to_string(),
        target.label().to_string(),
        s.map_or_else(dash, |s| thousands(s.rps)),
        s.map_or_else(dash, |s| format!("{:.3}", s.p50_ms)),
        s.map_or_else(dash, |s| format!("{:.3}", s.p99_ms)),
        s.and_then(|s| s.p999_ms).map_or_else(dash, |ms| format!("{ms:.3}")),
        s.and_then(|s| s.cpu_us_per_request).map_or_else(dash, |us| format!("{us:.2}")),
        s.and_then(|s| s.machine_us_per_request).map_or_else(dash, |us| format!("{us:.2}")),
        ratio(s.and_then(|s| s.vs_twemproxy)),
        ratio(s.and_then(|s| s.vs_redis)),
        format!("{}/{reps}", s.map_or(0, |s| s.reps)),
    ]
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
                        7 if ours => match row.vs_twemproxy {
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

/// How the idle-client test runs, in a sentence.
const IDLE_HOWTO: &str = "N connections opened to each target on fresh processes (before any load), one PING \
    each, then left idle; (VmRSS while they are open - VmRSS before) / N of the process they talk to, from \
    `/proc/<pid>/status` (for the proxies, the proxy alone, not its backends).";

/// The idle-client section's lines.
pub fn idle_lines(idle: &Idle) -> Vec<String> {
    match idle {
        Idle::Skipped => vec!["skipped (--skip-idle)".to_string()],
        Idle::Measured(rows) => rows
            .iter()
            .map(|(target, row)| match row {
                Ok(r) => format!(
                    "{:<12} {} idle clients, VmRSS {} -> {} KiB: {} bytes/client",
                    target.label(),
                    thousands(f64::from(r.clients)),
                    thousands(r.rss_before_kib as f64),
                    thousands(r.rss_after_kib as f64),
                    thousands(r.bytes_per_client())
                ),
                Err(why) => format!("{:<12} could not be measured: {why}", target.label()),
            })
            .collect(),
    }
}

fn idle_markdown(idle: &Idle) -> String {
    let Idle::Measured(rows) = idle else {
        return "Skipped this time (`--skip-idle`, or `--quick`).\n".to_string();
    };
    let mut out = format!(
        "{IDLE_HOWTO}\n\n| Target | idle clients | VmRSS before (KiB) | VmRSS with them (KiB) | bytes/client |\n\
         |---|---:|---:|---:|---:|\n"
    );
    for (target, row) in rows {
        match row {
            Ok(r) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    target.label(),
                    thousands(f64::from(r.clients)),
                    thousands(r.rss_before_kib as f64),
                    thousands(r.rss_after_kib as f64),
                    thousands(r.bytes_per_client())
                );
            }
            Err(why) => {
                let _ = writeln!(out, "| {} | - | - | - | not measured: {why} |", target.label());
            }
        }
    }
    out
}

/// What logging costs at the defaults: for each target run with `RUST_LOG=warn` beside its
/// twin at the defaults, the twin's requests/s over it, case by case (ratios within each
/// repetition, then their median). `None` when the run has no such pair.
pub fn logging_note(report: &Report) -> Option<String> {
    let targets = report.grid.targets();
    let pairs: Vec<(Target, Target)> = targets
        .iter()
        .filter_map(|&warn| warn.default_flags_twin().map(|twin| (twin, warn)))
        .filter(|(twin, _)| targets.contains(twin))
        .collect();
    let mut parts = Vec::new();
    for (twin, warn) in pairs {
        let cases: Vec<String> = report
            .cases
            .iter()
            .enumerate()
            .filter_map(|(c, case)| {
                let value = report.grid.ratio(c, twin, warn)?;
                Some(format!("{case} {}", ratio(Some(value))))
            })
            .collect();
        if !cases.is_empty() {
            parts.push(format!("{} {}", twin.label(), cases.join(", ")));
        }
    }
    (!parts.is_empty()).then(|| {
        format!(
            "Logging at the defaults (no `RUST_LOG`, stderr to a file) against `RUST_LOG=warn`, requests/s: {}.",
            parts.join("; ")
        )
    })
}

/// How the wider rows are made, for the note under the table.
fn shapes_note(report: &Report) -> Option<String> {
    let mix = report.mix_settings.as_ref()?;
    Some(format!(
        "Wider rows: `MGET 10` is `redis-benchmark ... MGET key:__rand_int__` with 10 keys; HSET and LPUSH are \
         redis-benchmark's `-t hset` and `-t lpush` (not run against our server and proxy/ours: our server keeps \
         strings only); `c1000`/`c10000` are GET P1 with 1,000 and 10,000 \
         connections (every server and proxy started with room for {} clients, twemproxy's \
         `client_connections` likewise); `SET/GET 4KiB` and `64KiB` use keys of their own (`big<size>:`, \
         10,000 and 1,000 of them). `GET/SET 90/10 zipf` is our open-loop generator, {mix}: requests at a \
         fixed rate whatever the replies, latency from the scheduled time (no coordinated omission), HDR \
         histograms; its requests/s is the achieved rate (the schedule's when the target keeps up), and only \
         it reports p99.9 (redis-benchmark's CSV stops at p99).",
        thousands(f64::from(crate::services::MAX_CLIENTS))
    ))
}

/// The columns of the migration table on the terminal.
const MIGRATION_COLUMNS: [&str; 10] = [
    "backends",
    "keys",
    "moved",
    "scanned",
    "elapsed s",
    "wall s",
    "moved keys/s",
    "client req/s",
    "client errors",
    "result",
];

/// How the migration test runs, in a sentence.
fn migration_setup() -> String {
    format!(
        "`ADD_SERVER <fourth> MIGRATE` on our proxy (--replicas {}) in front of 3 backends, keys of {} bytes with \
         {}-byte values loaded through the proxy with `redis-cli --pipe`, while a concurrent client runs \
         (redis-benchmark -c 2 SET and -c 2 GET side by side, killed when the migration ends); target: under {} s \
         for 1,000,000 keys (issue 6)",
        crate::services::PROXY_VNODES,
        crate::memory::KEY_LEN,
        crate::memory::VALUE_LEN,
        migration::TARGET.as_secs()
    )
}

const MIGRATION_CHECKS: &str = "Checked afterwards: MIGRATION says `done` with `errors:0`; the sum of DBSIZE over \
    the four backends is the same before and after, N loaded `mem:` keys + the client's K keys (its keyspace \
    `key:000000000000`... for `-r K`, K = N/100, loaded with the N keys, so its SETs overwrite and never add a key: \
    the count is exact with no SCAN); 1,000 loaded keys read back through the proxy with their values (the client \
    never writes `mem:` keys); the client reported no error and was still running when stopped (redis-benchmark 7 \
    exits at its first error). Elapsed: the proxy's `elapsed_ms` (start to end of the key moves); wall: from the \
    ADD_SERVER reply until MIGRATION no longer says `running` (polled every 50 ms); the target is judged on the \
    longer of the two; moved keys/s = moved / elapsed.";

/// One attempt's cells in the terminal's migration table, or why it could not be measured.
fn migration_cells(attempt: &Attempt) -> Result<[String; 10], String> {
    let row = attempt.result.as_ref().map_err(Clone::clone)?;
    Ok([
        attempt.kind.label().to_string(),
        format!("{} + {}", thousands(row.keys as f64), thousands(row.client_keys as f64)),
        thousands(row.status.moved as f64),
        thousands(row.status.scanned as f64),
        format!("{:.2}", row.proxy_secs()),
        format!("{:.2}", row.wall.as_secs_f64()),
        thousands(row.moved_per_sec()),
        row.client_rps().map_or_else(|| "-".to_string(), thousands),
        row.client_errors().to_string(),
        row.verdict(),
    ])
}

/// The migration section on the terminal.
pub fn migration_text(migration: &Migration, palette: &Palette) -> String {
    let Migration::Ran(attempts) = migration else {
        return "skipped (--skip-migration)\n".to_string();
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", palette.dim(&migration_setup()));
    let rows: Vec<Result<[String; 10], String>> = attempts.iter().map(migration_cells).collect();
    let mut widths = MIGRATION_COLUMNS.map(|c| c.chars().count());
    for cells in rows.iter().flatten() {
        for (w, cell) in widths.iter_mut().zip(cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Failed attempts show their backends too.
    for attempt in attempts {
        widths[0] = widths[0].max(attempt.kind.label().chars().count());
    }
    let pad = |text: &str, column: usize| {
        let fill = " ".repeat(widths[column].saturating_sub(text.chars().count()));
        // The backends and the result are text; the rest are numbers.
        if column == 0 || column == MIGRATION_COLUMNS.len() - 1 {
            format!("{text}{fill}")
        } else {
            format!("{fill}{text}")
        }
    };
    let header: Vec<String> = MIGRATION_COLUMNS.iter().enumerate().map(|(i, c)| palette.bold(&pad(c, i))).collect();
    let _ = writeln!(out, "{}", header.join("  ").trim_end());
    for (attempt, cells) in attempts.iter().zip(&rows) {
        match cells {
            Ok(cells) => {
                let line: Vec<String> = cells
                    .iter()
                    .enumerate()
                    .map(|(i, cell)| {
                        let text = pad(cell, i);
                        match i {
                            9 if cell == "PASS" => palette.green(&text),
                            9 => palette.red(&text),
                            _ => text,
                        }
                    })
                    .collect();
                let _ = writeln!(out, "{}", line.join("  ").trim_end());
                if let Ok(row) = &attempt.result {
                    for problem in row.problems() {
                        let _ = writeln!(out, "       {problem}");
                    }
                }
            }
            Err(why) => {
                let _ = writeln!(
                    out,
                    "{}  {}",
                    pad(attempt.kind.label(), 0),
                    palette.red(&format!("FAIL: could not be measured: {why}"))
                );
            }
        }
    }
    out
}

fn migration_markdown(migration: &Migration) -> String {
    let Migration::Ran(attempts) = migration else {
        return "Skipped this time (`--skip-migration`).\n".to_string();
    };
    let mut out = format!("{}.\n\n", migration_setup());
    out.push_str(
        "| backends | keys | moved | elapsed s | moved keys/s | concurrent client req/s | result |\n\
         |---|---:|---:|---:|---:|---:|---|\n",
    );
    let mut problems = Vec::new();
    for attempt in attempts {
        match &attempt.result {
            Ok(row) => {
                let _ = writeln!(
                    out,
                    "| {} | {} + {} | {} | {:.2} (wall {:.2}) | {} | {} | {} |",
                    attempt.kind.label(),
                    thousands(row.keys as f64),
                    thousands(row.client_keys as f64),
                    thousands(row.status.moved as f64),
                    row.proxy_secs(),
                    row.wall.as_secs_f64(),
                    thousands(row.moved_per_sec()),
                    row.client_rps().map_or_else(|| "-".to_string(), thousands),
                    row.verdict()
                );
                problems.extend(row.problems().into_iter().map(|p| format!("{}: {p}", attempt.kind.label())));
            }
            Err(why) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | - | - | - | - | FAIL (not measured) |",
                    attempt.kind.label(),
                    thousands(attempt.keys as f64)
                );
                problems.push(format!("{}: could not be measured: {why}", attempt.kind.label()));
            }
        }
    }
    let _ = writeln!(out, "\nKeys: N loaded + K of the concurrent client. {MIGRATION_CHECKS}");
    if !problems.is_empty() {
        let _ = writeln!(out, "\nFailures:\n");
        for problem in problems {
            let _ = writeln!(out, "- {problem}");
        }
    }
    out
}

/// The note under the table on how the CPU figures are taken.
fn cpu_note(ticks: &ClockTicks) -> String {
    format!(
        "CPU µs/req: user + system time of the process clients talk to (redis-server, \
         nutcracker, our proxy, our server; not the backends) from `/proc/<pid>/stat` around \
         each run, divided by its requests; {} clock ticks per second ({}), so one run's \
         figure has a resolution of {:.0} ms. machine µs/req: busy time of every core \
         (`/proc/stat`: the load generator, the target and its backends together) per request; \
         no target can go past cores × 1,000,000 / that many requests/s.",
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
    if let Some(note) = logging_note(report) {
        let _ = writeln!(out, "{note}");
    }
    if let Some(note) = shapes_note(report) {
        let _ = writeln!(out, "{}", palette.dim(&note));
    }
    let _ = writeln!(out, "\n{}", palette.bold("Sanity"));
    out.push_str(&sanity_text(&report.sanity, palette));
    let _ = writeln!(out, "\n{}", palette.bold("Memory per idle client"));
    for line in idle_lines(&report.idle) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "\n{}", palette.bold("Memory"));
    for line in memory_lines(&report.memory) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "\n{}", palette.bold("Migration"));
    out.push_str(&migration_text(&report.migration, palette));
    let _ = writeln!(out, "\n{}", palette.bold("Hit ratio at the same maxmemory"));
    for line in hit_ratio_lines(&report.hit_ratio) {
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
    if let Some(note) = logging_note(report) {
        let _ = writeln!(out, "{note}\n");
    }
    if let Some(note) = shapes_note(report) {
        let _ = writeln!(out, "{note}\n");
    }
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
    let _ = writeln!(out, "\n## Memory per idle client\n");
    out.push_str(&idle_markdown(&report.idle));
    let _ = writeln!(out, "\n## Migration\n");
    out.push_str(&migration_markdown(&report.migration));
    let _ = writeln!(out, "\n## Hit ratio at the same maxmemory\n");
    for line in hit_ratio_lines(&report.hit_ratio) {
        let _ = writeln!(out, "{line}");
    }
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
    use crate::migration::BackendKind;
    use crate::sanity::Check;
    use crate::stats::Measurement;

    /// A small report: two cases, three targets, two repetitions.
    pub(crate) fn sample_report() -> Report {
        let cases = vec![Case::new(Test::Set, 1, 100), Case::new(Test::Get, 16, 500)];
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
                        Measurement {
                            rps: rps * scale,
                            p50_ms: 0.25,
                            p99_ms: 0.5,
                            p999_ms: None,
                            cpu_us_per_request: Some(4.0),
                            machine_us_per_request: Some(12.0),
                        },
                    );
                }
            }
        }
        Report {
            cases,
            grid,
            load_settings: "-c 50 -d 32 -r 100000".into(),
            mix_settings: None,
            idle: Idle::Measured(vec![
                (Target::Redis, Ok(IdleRow { clients: 1000, rss_before_kib: 8_000, rss_after_kib: 9_000 })),
                (Target::Twemproxy, Err("connection refused".into())),
            ]),
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
            migration: Migration::Ran(vec![
                Attempt {
                    kind: BackendKind::Ours,
                    keys: 1_000_000,
                    result: Ok(crate::migration::tests::sample_row(BackendKind::Ours)),
                },
                Attempt { kind: BackendKind::Redis, keys: 1_000_000, result: Err("redis-server did not start".into()) },
            ]),
            hit_ratio: HitRatio::Ran {
                ok: true,
                lines: vec![
                    "| target | zipf-0.8 |".into(),
                    "|---|---|".into(),
                    "| ours allkeys-sieve | 58.03 (87, 28497) |".into(),
                ],
            },
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
        assert_eq!(
            *row,
            "SET P1   proxy/redis      90,000   0.250   0.500         -        4.00           12.00         1.20x     0.90x   2/2"
        );
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
            "| Test | Target | requests/s | p50 ms | p99 ms | p99.9 ms | CPU µs/req | machine µs/req | vs twemproxy | vs redis | reps |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            "| GET P16 | **proxy/redis** | 900,000 | 0.250 | 0.500 | - | 4.00 | 12.00 | 1.20x | 0.90x | 2/2 |",
            "## Memory per idle client",
            "| redis | 1,000 | 8,000 | 9,000 | 1,024 |",
            "| twemproxy | - | - | - | not measured: connection refused |",
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
    fn the_migration_section_has_its_table_and_failures() {
        let text = migration_text(&sample_report().migration, &Palette::plain());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("`ADD_SERVER <fourth> MIGRATE` on our proxy (--replicas 160)"));
        assert_eq!(
            lines[1],
            "backends                    keys    moved    scanned  elapsed s  wall s  moved keys/s  client req/s  \
             client errors  result"
        );
        assert_eq!(
            lines[2],
            "ours          1,000,000 + 10,000  346,123  1,010,000       1.80    1.85       192,291        41,000  \
             \x20           0  PASS"
        );
        assert_eq!(lines[3], "redis-server  FAIL: could not be measured: redis-server did not start");
        assert_eq!(migration_text(&Migration::Skipped, &Palette::plain()), "skipped (--skip-migration)\n");

        let md = markdown(&sample_report());
        for needle in [
            "## Migration",
            "| backends | keys | moved | elapsed s | moved keys/s | concurrent client req/s | result |",
            "| ours | 1,000,000 + 10,000 | 346,123 | 1.80 (wall 1.85) | 192,291 | 41,000 | PASS |",
            "| redis-server | 1,000,000 | - | - | - | - | FAIL (not measured) |",
            "- redis-server: could not be measured: redis-server did not start",
            "## Hit ratio at the same maxmemory",
            "| ours allkeys-sieve | 58.03 (87, 28497) |",
        ] {
            assert!(md.contains(needle), "missing {needle:?} in\n{md}");
        }
    }

    #[test]
    fn the_logging_note_compares_each_default_target_with_its_warn_twin() {
        let mut report = sample_report();
        assert_eq!(logging_note(&report), None);
        let targets = [Target::Twemproxy, Target::ProxyRedis, Target::ProxyRedisWarn];
        let mut grid = Grid::new(&targets, report.cases.len(), 1);
        for (c, (defaults, warn)) in [(98_000.0, 100_000.0), (500_000.0, 400_000.0)].into_iter().enumerate() {
            for (target, rps) in
                [(Target::Twemproxy, 50_000.0), (Target::ProxyRedis, defaults), (Target::ProxyRedisWarn, warn)]
            {
                let m = Measurement {
                    rps,
                    p50_ms: 0.1,
                    p99_ms: 0.2,
                    p999_ms: None,
                    cpu_us_per_request: None,
                    machine_us_per_request: None,
                };
                grid.set(0, c, target, m);
            }
        }
        report.grid = grid;
        assert_eq!(
            logging_note(&report).as_deref(),
            Some(
                "Logging at the defaults (no `RUST_LOG`, stderr to a file) against `RUST_LOG=warn`, requests/s: \
                 proxy/redis SET P1 0.98x, GET P16 1.25x."
            )
        );
    }

    #[test]
    fn memory_lines_say_when_skipped() {
        assert_eq!(memory_lines(&Memory::Skipped), ["skipped (--skip-memory)"]);
    }
}
