//! One run of the suite, start to end: set up, load every target in turn, check, measure
//! memory, time a migration, optionally the ring, report.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cli::Palette;

use crate::args::Args;
use crate::load::{self, Case, Test};
use crate::loadgen::{self, LoadArgs, Mix};
use crate::machine::Machine;
use crate::processes::{self, ScratchDir};
use crate::procfs::{self, ClockTicks};
use crate::report::{self, HitRatio, Idle, Memory, Migration, Report, RingBench};
use crate::sanity::{self, Sanity, TargetLog};
use crate::services::{Fleet, Service, MAX_CLIENTS};
use crate::setup::{self, Tools};
use crate::stats::{Grid, Measurement};
use crate::target::Target;
use crate::{hit_ratio, idle};
use crate::{memory, microbench, migration};

/// Runs the suite; `Ok(false)` when it ran but a sanity check failed.
pub fn run(args: &Args) -> Result<bool> {
    let started = Instant::now();
    let effective = args.effective();
    let args = &effective;
    processes::install_signal_handler()?;
    // Before anything starts: the processes started later inherit the limit.
    match raise_file_limit() {
        Ok(limit) if limit < u64::from(MAX_CLIENTS) + 100 => {
            eprintln!("note: the file limit is {limit}: the 10,000-client rows may fail (raise the hard limit)")
        }
        Ok(_) => {}
        Err(e) => eprintln!("note: could not raise the file limit: {e:#}"),
    }
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

    let (grid, mut sanity, idle) = {
        let fleet = Fleet::start(&targets, &tools, &binaries, &scratch)?;
        for &target in &targets {
            if let Some(front) = fleet.front(target) {
                eprintln!("{:<12} {} (pid {})", target.label(), front.addr(), front.pid());
            }
        }
        // On fresh processes, before any load grew their buffers.
        let idle = if args.skip_idle {
            Idle::Skipped
        } else {
            Idle::Measured(idle::measure(&fleet, &targets, args.idle_clients))
        };
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
        (grid, sanity, idle)
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
    let hit_ratio = if args.skip_hit_ratio {
        HitRatio::Skipped
    } else {
        let dir = binaries.server.parent().unwrap_or(std::path::Path::new("."));
        hit_ratio::run(dir)
    };
    let ring = if args.ring { microbench::run(&root)? } else { RingBench::NotRun };

    let report = Report {
        cases,
        grid,
        load_settings: format!(
            "-c {} -d {} -r {}, -n {} at P1 and {} at P16",
            args.clients, args.value_size, args.keyspace, args.requests_p1, args.requests_p16
        ),
        mix_settings: (!args.core_only).then(|| mix_settings(args)),
        sanity,
        idle,
        memory,
        migration,
        hit_ratio,
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

/// SET and GET at pipeline 1 and 16, SETs first so that GETs find the keys; then, unless
/// `--core-only`, the wider shapes.
fn cases(args: &Args) -> Vec<Case> {
    let mut cases = Vec::new();
    for test in [Test::Set, Test::Get] {
        for (pipeline, requests) in [(1, args.requests_p1), (16, args.requests_p16)] {
            cases.push(Case::new(test, pipeline, requests));
        }
    }
    if args.core_only {
        return cases;
    }
    // Each MGET reads 10 keys: half the requests.
    cases.push(Case::new(Test::Mget, 1, args.requests_p1 / 2));
    cases.push(Case::new(Test::Hset, 1, args.requests_p1));
    cases.push(Case::new(Test::Lpush, 1, args.requests_p1));
    cases.push(Case::new(Test::Mix, 1, 0));
    for clients in [1_000, 10_000] {
        cases.push(Case::new(Test::Get, 1, args.requests_p1 * 2).with_clients(clients));
    }
    // Large values under keys of their own (`big<size>:`), a keyspace small enough for
    // the SETs to fill it before the GETs read it.
    for (size, requests, keyspace) in
        [(4 * 1024, args.requests_p1 / 2, 10_000), (64 * 1024, args.requests_p1 / 10, 1_000)]
    {
        cases.push(Case::new(Test::SetSized(size), 1, requests.max(1)).with_keyspace(keyspace));
        cases.push(Case::new(Test::GetSized(size), 1, requests.max(1)).with_keyspace(keyspace));
    }
    cases
}

/// The Zipf mix row's settings, as a sentence.
fn mix_settings(args: &Args) -> String {
    format!(
        "`bench load --clients {} --rate {} --duration {} --mix get:90,set:10 --zipf 0.99 --keys {} --value-size {}`",
        args.clients, args.mix_rate, args.mix_secs, args.keyspace, args.value_size
    )
}

/// One run of our generator for the Zipf mix row.
fn run_mix(args: &Args, port: u16) -> Result<load::RunResult> {
    let load = LoadArgs {
        addr: format!("127.0.0.1:{port}"),
        clients: args.clients,
        rate: args.mix_rate,
        duration: args.mix_secs,
        mix: Mix { get: 90, set: 10 },
        zipf: 0.99,
        keys: args.keyspace,
        value_size: args.value_size as usize,
        threads: 1,
        seed: 1,
    };
    let plan = load.plan()?;
    Ok(match loadgen::run(&plan) {
        Ok(outcome) => load::RunResult::from_outcome(&outcome),
        Err(e) => {
            load::RunResult { sample: None, errors: Vec::new(), failure: Some(format!("{e:#}")), warnings: Vec::new() }
        }
    })
}

/// Raises this process's soft limit of open files to its hard limit; the new soft limit.
fn raise_file_limit() -> Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the rlimit we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit reads the rlimit we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error()).context("setrlimit(RLIMIT_NOFILE)");
        }
        limit = raised;
    }
    Ok(limit.rlim_cur)
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
    let case = Case::new(Test::Set, 16, args.warmup_requests);
    for &target in targets {
        let front = front(fleet, target)?;
        eprint!("[warm-up] {:<12} {case} ... ", target.label());
        let result = load::run(&tools.redis_benchmark, front.port, &case, settings)?;
        logs.entry(target).or_default().record(&format!("warm-up {case}"), &result);
        match (&result.sample, &result.failure) {
            (Some(sample), _) => eprintln!("{} req/s", crate::numbers::thousands(sample.rps)),
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
                eprint!("[rep {}/{reps}] {:<12} {:<18} ... ", rep + 1, target.label(), case.to_string());
                if case.test.needs_data_types() && target.strings_only() {
                    eprintln!("not run: our server keeps strings only");
                    continue;
                }
                if target.default_flags_twin().is_some() && !case.is_core() {
                    eprintln!("not run: the logging comparison runs the core rows only");
                    continue;
                }
                let cpu_before = procfs::cpu_ticks(front.pid()).ok();
                let machine_before = procfs::machine_busy_ticks().ok();
                let result = if case.test == Test::Mix {
                    run_mix(args, front.port)?
                } else {
                    load::run(&tools.redis_benchmark, front.port, case, settings)?
                };
                let cpu_after = procfs::cpu_ticks(front.pid()).ok();
                let machine_after = procfs::machine_busy_ticks().ok();
                logs.entry(target).or_default().record(&case.to_string(), &result);
                let Some(sample) = result.sample else {
                    eprintln!("FAILED: {}", result.failure.as_deref().unwrap_or("no figures"));
                    continue;
                };
                let p999_ms = sample.p999_ms;
                // The mix's request count is what it sent, not fixed beforehand.
                let requests = if case.test == Test::Mix { sample.rps * args.mix_secs } else { case.requests as f64 };
                let per_request = |before: Option<u64>, after: Option<u64>| {
                    before.zip(after).map(|(before, after)| {
                        after.saturating_sub(before) as f64 / ticks.per_second * 1e6 / requests.max(1.0)
                    })
                };
                let cpu_us_per_request = per_request(cpu_before, cpu_after);
                let machine_us_per_request = per_request(machine_before, machine_after);
                eprintln!(
                    "{:>9} req/s  p50 {:.3} ms  p99 {:.3} ms{}{}{}{}",
                    crate::numbers::thousands(sample.rps),
                    sample.p50_ms,
                    sample.p99_ms,
                    p999_ms.map(|ms| format!("  p99.9 {ms:.3} ms")).unwrap_or_default(),
                    cpu_us_per_request.map(|us| format!("  cpu {us:.2} µs/req")).unwrap_or_default(),
                    machine_us_per_request.map(|us| format!("  machine {us:.2} µs/req")).unwrap_or_default(),
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
                    Measurement {
                        rps: sample.rps,
                        p50_ms: sample.p50_ms,
                        p99_ms: sample.p99_ms,
                        p999_ms,
                        cpu_us_per_request,
                        machine_us_per_request,
                    },
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
        assert_eq!(names[..4], ["SET P1 10", "SET P16 20", "GET P1 10", "GET P16 20"]);
        assert_eq!(
            names[4..],
            [
                "MGET 10 P1 5",
                "HSET P1 10",
                "LPUSH P1 10",
                "GET/SET 90/10 zipf 0",
                "GET P1 c1000 20",
                "GET P1 c10000 20",
                "SET 4KiB P1 5",
                "GET 4KiB P1 5",
                "SET 64KiB P1 1",
                "GET 64KiB P1 1"
            ]
        );
        let core = Args::parse_from(["bench", "--core-only"]);
        assert_eq!(cases(&core).len(), 4);
        let quick = Args::parse_from(["bench", "--quick"]).effective();
        assert_eq!(cases(&quick).len(), 4);
    }

    #[test]
    fn arguments_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("--targets=redis,proxy-redis"), "--targets=redis,proxy-redis");
        assert_eq!(shell_quote("my dir"), "'my dir'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
