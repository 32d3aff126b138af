//! The checks that make the figures worth reading: no request failed, and the data landed.

use std::collections::BTreeSet;

use crate::load::RunResult;
use crate::numbers::thousands;
use crate::probe;
use crate::services::Fleet;
use crate::target::Target;

/// How many error lines of one target the report quotes.
const QUOTED_ERRORS: usize = 3;

/// One check and what it saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Whether it passed.
    pub ok: bool,
    /// What it checks, with the figure it saw.
    pub text: String,
    /// Details (per backend counters, quoted errors).
    pub details: Vec<String>,
}

/// Everything the sanity section shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sanity {
    /// The checks, in the order shown.
    pub checks: Vec<Check>,
    /// Notes that are not failures (redis-benchmark's warnings).
    pub notes: Vec<String>,
}

impl Sanity {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// What redis-benchmark said about one target over all its runs.
#[derive(Debug, Clone, Default)]
pub struct TargetLog {
    /// Runs made.
    pub runs: usize,
    /// Why failed runs failed.
    pub failures: Vec<String>,
    /// Error lines printed.
    pub errors: Vec<String>,
    /// Distinct warnings printed.
    pub warnings: BTreeSet<String>,
}

impl TargetLog {
    /// Adds one run's result.
    pub fn record(&mut self, case: &str, result: &RunResult) {
        self.runs += 1;
        if let Some(failure) = &result.failure {
            self.failures.push(format!("{case}: {failure}"));
        }
        self.errors.extend(result.errors.iter().map(|e| format!("{case}: {e}")));
        self.warnings.extend(result.warnings.iter().cloned());
    }
}

/// The check of one target's redis-benchmark runs.
pub fn benchmark_check(target: Target, log: &TargetLog) -> Check {
    let mut details: Vec<String> = log.failures.iter().take(QUOTED_ERRORS).cloned().collect();
    details.extend(log.errors.iter().take(QUOTED_ERRORS).cloned());
    Check {
        ok: log.failures.is_empty() && log.errors.is_empty(),
        text: format!(
            "{}: {} redis-benchmark runs, {} failed, {} error lines",
            target.label(),
            log.runs,
            log.failures.len(),
            log.errors.len()
        ),
        details,
    }
}

/// The checks against the running fleet after the load: our proxies' error counters,
/// twemproxy's, and DBSIZE on every store.
pub fn fleet_checks(fleet: &Fleet) -> Vec<Check> {
    let mut checks = Vec::new();
    for (target, proxy) in [
        (Target::ProxyRedis, &fleet.proxy_redis),
        (Target::ProxyRedisWarn, &fleet.proxy_redis_warn),
        (Target::ProxyOurs, &fleet.proxy_ours),
    ] {
        let Some(proxy) = proxy else { continue };
        checks.push(match probe::info(&proxy.addr()) {
            Ok(info) => {
                let backends = probe::parse_backend_counters(&info);
                let errors: u64 = backends.iter().map(|b| b.errors).sum();
                let requests: u64 = backends.iter().map(|b| b.requests).sum();
                Check {
                    ok: errors == 0 && backends.len() == crate::services::BACKENDS,
                    text: format!(
                        "{}: INFO errors={errors} over {} backend requests ({} backends)",
                        target.label(),
                        thousands(requests as f64),
                        backends.len()
                    ),
                    details: backends
                        .iter()
                        .map(|b| format!("{} requests={} errors={}", b.addr, thousands(b.requests as f64), b.errors))
                        .collect(),
                }
            }
            Err(e) => failed(format!("{}: INFO failed: {e:#}", target.label())),
        });
    }
    if let Some(twemproxy) = &fleet.twemproxy {
        // Its statistics are aggregated every second (`-i 1000`): let the last second in.
        std::thread::sleep(std::time::Duration::from_millis(1_500));
        checks.push(match probe::twemproxy_stats(twemproxy.stats_port) {
            Ok(json) => {
                let counters: Vec<(&str, u64)> = probe::TWEMPROXY_ERROR_COUNTERS
                    .iter()
                    .map(|name| (*name, probe::sum_json_counter(&json, name)))
                    .collect();
                let total: u64 = counters.iter().map(|(_, n)| n).sum();
                let text: Vec<String> = counters.iter().map(|(k, n)| format!("{k}={n}")).collect();
                Check { ok: total == 0, text: format!("twemproxy: stats {}", text.join(" ")), details: Vec::new() }
            }
            Err(e) => failed(format!("twemproxy: stats failed: {e:#}")),
        });
    }
    for store in fleet.stores() {
        checks.push(match probe::dbsize(&store.addr()) {
            Ok(n) => Check {
                ok: n > 0,
                text: format!("{} ({}): DBSIZE {}", store.label, store.addr(), thousands(n as f64)),
                details: Vec::new(),
            },
            Err(e) => failed(format!("{}: DBSIZE failed: {e:#}", store.label)),
        });
    }
    checks
}

fn failed(text: String) -> Check {
    Check { ok: false, text, details: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_with_errors_fails_its_check() {
        let mut log = TargetLog::default();
        let clean = RunResult {
            sample: None,
            errors: Vec::new(),
            failure: None,
            warnings: vec!["WARNING: Could not fetch server CONFIG".into()],
        };
        log.record("SET P1", &clean);
        log.record("SET P16", &clean);
        let check = benchmark_check(Target::Twemproxy, &log);
        assert!(check.ok);
        assert_eq!(check.text, "twemproxy: 2 redis-benchmark runs, 0 failed, 0 error lines");
        assert_eq!(log.warnings.len(), 1);

        log.record("GET P1", &RunResult { errors: vec!["Error from server: ERR x".into()], ..clean });
        let check = benchmark_check(Target::Twemproxy, &log);
        assert!(!check.ok);
        assert_eq!(check.details, ["GET P1: Error from server: ERR x"]);
    }
}
