//! One run of the suite, start to end: set up, load every target in turn, check, measure
//! memory, time a migration, optionally the ring, report.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cli::Palette;

use crate::args::Args;
use crate::load::{self, Case, Test};
use crate::machine::Machine;
use crate::processes::{self, ScratchDir};
use crate::procfs::{self, ClockTicks};
use crate::report::{self, Memory, Migration, Report, RingBench};
use crate::sanity::{self, Sanity, TargetLog};
use crate::services::{Fleet, Service};
use crate::setup::{self, Tools};
use crate::stats::{Grid, Measurement};
use crate::target::Target;
use crate::{memory, microbench, migration};

/// Runs the suite; `Ok(false)` when it ran but a sanity check failed.
pub fn run(args: &Args) -> Result<bool> {
    let started = Instant::now();
    processes::install_signal_handler()?;
    let palette = Palette::detect();
    let root = setup::workspace_root();
    let out_dir = args.out.clone().unwrap_or_else(|| root.join("bench"));
    let tools = setup::ensure_tools()?;
    let binaries = setup::build_binaries(&root)?;
    let machine = Machine::describe(&tools);
    let ticks = ClockTicks::detect();
    let scratch = ScratchDir::new()?;

    let mut targets: Vec<Target> = Vec::new();
    for &target in &args.targets {
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    let cases = cases(args);
    let settings = load::Settings {
        clients: args.clients,
        value_size: args.value_size,
        keyspace: args.keyspace,
        timeout: Duration::from_secs(args.timeout_secs),
    };

    let (grid, mut sanity) = {
        let fleet = Fleet::start(&targets, &tools, &binaries, &scratch)?;
        for &target in &targets {
            if let Some(front) = fleet.front(target) {
                eprintln!("{:<12} {} (pid {})", target.label(), front.addr(), front.pid());
            }
        }
        let mut logs: HashMap<Target, TargetLog> = HashMap::new();
        warm_up(args, &fleet, &targets, &tools, &settings, &mut logs)?;
        let grid = measure(args, &fleet, &targets, &cases, &tools, &settings, &ticks, &mut logs)?;
        let mut sanity = Sanity::default();
        // Each distinct warning once, with the targets it came from.
        let mut warnings: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for &target in &targets {
            let log = logs.remove(&target).unwrap_or_default();
            sanity.checks.push(sanity::benchmark_check(target, &log));
            for warning in &log.warnings {
                warnings.entry(warning.clone()).or_default().push(target.label());
            }
        }
        sanity.notes.extend(
            warnings.iter().map(|(warning, from)| format!("redis-benchmark said {warning:?} ({})", from.join(", "))),
        );
        sanity.checks.extend(sanity::fleet_checks(&fleet));
        (grid, sanity)
        // The fleet stops here, before the memory test starts its own servers.
    };

    let memory = if args.skip_memory {
        Memory::Skipped
    } else {
        match memory::measure(&tools, &binaries, &scratch, args.memory_keys) {
            Ok(rows) => Memory::Measured(rows),
            Err(e) => Memory::Failed(format!("{e:#}")),
        }
    };
    let migration = if args.skip_migration {
        Migration::Skipped
    } else {
        let attempts = migration::measure(&tools, &binaries, &scratch, args.migration_keys, args.migration_backends);
        sanity.checks.extend(migration::checks(&attempts));
        Migration::Ran(attempts)
    };
    let ring = if args.ring { microbench::run(&root)? } else { RingBench::NotRun };

    let report = Report {
        cases,
        grid,
        load_settings: format!(
            "-c {} -d {} -r {}, -n {} at P1 and {} at P16",
            args.clients, args.value_size, args.keyspace, args.requests_p1, args.requests_p16
        ),
        sanity,
        memory,
        migration,
        ring,
        machine,
        command: command_line(),
        ticks,
        elapsed_secs: started.elapsed().as_secs_f64(),
    };
    print!("{}", report::terminal(&report, &palette));
    write_outputs(&out_dir, &report)?;
    println!(
        "\nwrote {} and {} ({:.0} s in all)",
        out_dir.join("results.md").display(),
        out_dir.join("results.svg").display(),
        started.elapsed().as_secs_f64()
    );
    if !report.sanity.passed() {
        eprintln!("{}", palette.red("sanity checks failed: see above"));
    }
    Ok(report.sanity.passed())
}

/// SET and GET at pipeline 1 and 16, SETs first so that GETs find the keys.
fn cases(args: &Args) -> Vec<Case> {
    let mut cases = Vec::new();
    for test in [Test::Set, Test::Get] {
        for (pipeline, requests) in [(1, args.requests_p1), (16, args.requests_p16)] {
            cases.push(Case { test, pipeline, requests });
        }
    }
    cases
}

/// An untimed SET run against every target, so that every repetition finds the keyspace
/// filled and the connections warm.
fn warm_up(
    args: &Args,
    fleet: &Fleet,
    targets: &[Target],
    tools: &Tools,
    settings: &load::Settings,
    logs: &mut HashMap<Target, TargetLog>,
) -> Result<()> {
    if args.warmup_requests == 0 {
        return Ok(());
    }
    let case = Case { test: Test::Set, pipeline: 16, requests: args.warmup_requests };
    for &target in targets {
        let front = front(fleet, target)?;
        eprint!("[warm-up] {:<12} {case} ... ", target.label());
        let result = load::run(&tools.redis_benchmark, front.port, &case, settings)?;
        logs.entry(target).or_default().record(&format!("warm-up {case}"), &result);
        match (&result.sample, &result.failure) {
            (Some(sample), _) => eprintln!("{} req/s", report::thousands(sample.rps)),
            (None, failure) => eprintln!("FAILED: {}", failure.as_deref().unwrap_or("?")),
        }
    }
    Ok(())
}

/// Every repetition: each case, each target in turn (A B C D E, A B C D E, ...).
#[allow(clippy::too_many_arguments)]
fn measure(
    args: &Args,
    fleet: &Fleet,
    targets: &[Target],
    cases: &[Case],
    tools: &Tools,
    settings: &load::Settings,
    ticks: &ClockTicks,
    logs: &mut HashMap<Target, TargetLog>,
) -> Result<Grid> {
    let reps = args.reps as usize;
    let mut grid = Grid::new(targets, cases.len(), reps);
    for rep in 0..reps {
        for (c, case) in cases.iter().enumerate() {
            for &target in targets {
                let front = front(fleet, target)?;
                eprint!("[rep {}/{reps}] {:<12} {:<7} ... ", rep + 1, target.label(), case.to_string());
                let cpu_before = procfs::cpu_ticks(front.pid()).ok();
                let result = load::run(&tools.redis_benchmark, front.port, case, settings)?;
                let cpu_after = procfs::cpu_ticks(front.pid()).ok();
                logs.entry(target).or_default().record(&case.to_string(), &result);
                let Some(sample) = result.sample else {
                    eprintln!("FAILED: {}", result.failure.as_deref().unwrap_or("no figures"));
                    continue;
                };
                let cpu_us_per_request = cpu_before.zip(cpu_after).map(|(before, after)| {
                    after.saturating_sub(before) as f64 / ticks.per_second * 1e6 / case.requests as f64
                });
                eprintln!(
                    "{:>9} req/s  p50 {:.3} ms  p99 {:.3} ms{}{}",
                    report::thousands(sample.rps),
                    sample.p50_ms,
                    sample.p99_ms,
                    cpu_us_per_request.map(|us| format!("  cpu {us:.2} µs/req")).unwrap_or_default(),
                    if result.errors.is_empty() {
                        String::new()
                    } else {
                        format!("  {} ERROR LINES", result.errors.len())
                    }
                );
                grid.set(
                    rep,
                    c,
                    target,
                    Measurement { rps: sample.rps, p50_ms: sample.p50_ms, p99_ms: sample.p99_ms, cpu_us_per_request },
                );
            }
        }
    }
    Ok(grid)
}

fn front(fleet: &Fleet, target: Target) -> Result<&Service> {
    fleet.front(target).with_context(|| format!("{} was not started", target.label()))
}

/// The command that reproduces this run: `./bench.sh ARGS` when run through it (it says so
/// in BENCH_INVOKED_AS), else `cargo run -p bench --release -- ARGS`.
fn command_line() -> String {
    let program = std::env::var("BENCH_INVOKED_AS").unwrap_or_else(|_| "cargo run -p bench --release --".to_string());
    let args: Vec<String> = std::env::args().skip(1).map(|a| shell_quote(&a)).collect();
    if args.is_empty() {
        program
    } else {
        format!("{program} {}", args.join(" "))
    }
}

/// Quotes an argument for a POSIX shell when it needs it.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_=,./:@%+".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Writes `results.md` and `results.svg` into `dir`.
fn write_outputs(dir: &Path, report: &Report) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in [("results.md", report::markdown(report)), ("results.svg", report::svg(report))] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn cases_are_sets_then_gets_at_both_depths() {
        let args = Args::parse_from(["bench", "--requests-p1", "10", "--requests-p16", "20"]);
        let names: Vec<String> = cases(&args).iter().map(|c| format!("{c} {}", c.requests)).collect();
        assert_eq!(names, ["SET P1 10", "SET P16 20", "GET P1 10", "GET P16 20"]);
    }

    #[test]
    fn arguments_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("--targets=redis,proxy-redis"), "--targets=redis,proxy-redis");
        assert_eq!(shell_quote("my dir"), "'my dir'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
