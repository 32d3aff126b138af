//! Medians over repetitions, and ratios computed within each repetition before their
//! median is taken (so that a slow moment of the machine, which hits every target of one
//! repetition alike, cancels out of the ratio).

use crate::target::Target;

/// The median; the mean of the two middle values for an even count; `None` when empty.
/// NaNs are ignored.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 })
}

/// What one redis-benchmark run measured of one target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// 99.9th percentile latency, ms (our generator's runs; redis-benchmark's CSV has none).
    pub p999_ms: Option<f64>,
    /// CPU time (user + system) the target's process spent per request, µs.
    pub cpu_us_per_request: Option<f64>,
    /// Busy CPU time of the whole machine per request, µs: load generator, target and
    /// backends together.
    pub machine_us_per_request: Option<f64>,
}

/// The figures of one target in one case, over every repetition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Median requests per second.
    pub rps: f64,
    /// Median of the p50 latencies, ms.
    pub p50_ms: f64,
    /// Median of the p99 latencies, ms.
    pub p99_ms: f64,
    /// Median of the p99.9 latencies, ms, where measured.
    pub p999_ms: Option<f64>,
    /// Median CPU µs per request of the target's process.
    pub cpu_us_per_request: Option<f64>,
    /// Median busy CPU µs per request of the whole machine.
    pub machine_us_per_request: Option<f64>,
    /// Median over repetitions of (this target's rps / twemproxy's rps in the same one).
    pub vs_twemproxy: Option<f64>,
    /// Median over repetitions of (this target's rps / direct redis's rps in the same one).
    pub vs_redis: Option<f64>,
    /// How many repetitions measured it.
    pub reps: usize,
}

/// Every measurement of a run of the suite: repetition x case x target.
#[derive(Debug, Clone)]
pub struct Grid {
    targets: Vec<Target>,
    cases: usize,
    reps: usize,
    cells: Vec<Option<Measurement>>,
}

impl Grid {
    /// An empty grid.
    pub fn new(targets: &[Target], cases: usize, reps: usize) -> Self {
        Self { targets: targets.to_vec(), cases, reps, cells: vec![None; targets.len() * cases * reps] }
    }

    /// The targets, in their order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The number of repetitions.
    pub fn reps(&self) -> usize {
        self.reps
    }

    fn index(&self, rep: usize, case: usize, target: Target) -> Option<usize> {
        let t = self.targets.iter().position(|&x| x == target)?;
        (rep < self.reps && case < self.cases).then(|| (rep * self.cases + case) * self.targets.len() + t)
    }

    /// Records a measurement (ignored for a target, case or repetition not in the grid).
    pub fn set(&mut self, rep: usize, case: usize, target: Target, m: Measurement) {
        if let Some(i) = self.index(rep, case, target) {
            self.cells[i] = Some(m);
        }
    }

    /// The measurement of one repetition, if it succeeded.
    pub fn get(&self, rep: usize, case: usize, target: Target) -> Option<Measurement> {
        self.index(rep, case, target).and_then(|i| self.cells[i])
    }

    /// Medians and within-repetition ratios of `target` in `case`; `None` when no
    /// repetition measured it.
    pub fn summary(&self, case: usize, target: Target) -> Option<Summary> {
        let measured: Vec<Measurement> = (0..self.reps).filter_map(|rep| self.get(rep, case, target)).collect();
        Some(Summary {
            rps: median(measured.iter().map(|m| m.rps))?,
            p50_ms: median(measured.iter().map(|m| m.p50_ms))?,
            p99_ms: median(measured.iter().map(|m| m.p99_ms))?,
            p999_ms: median(measured.iter().filter_map(|m| m.p999_ms)),
            cpu_us_per_request: median(measured.iter().filter_map(|m| m.cpu_us_per_request)),
            machine_us_per_request: median(measured.iter().filter_map(|m| m.machine_us_per_request)),
            vs_twemproxy: self.ratio(case, target, Target::Twemproxy),
            vs_redis: self.ratio(case, target, Target::Redis),
            reps: measured.len(),
        })
    }

    /// The median over repetitions of `target`'s rps over `reference`'s rps in the same
    /// repetition (repetitions missing either are left out).
    pub fn ratio(&self, case: usize, target: Target, reference: Target) -> Option<f64> {
        median((0..self.reps).filter_map(|rep| {
            let ours = self.get(rep, case, target)?;
            let theirs = self.get(rep, case, reference)?;
            (theirs.rps > 0.0).then(|| ours.rps / theirs.rps)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rps: f64) -> Measurement {
        Measurement {
            rps,
            p50_ms: rps / 1000.0,
            p99_ms: rps / 100.0,
            p999_ms: Some(rps / 50.0),
            cpu_us_per_request: Some(rps / 10.0),
            machine_us_per_request: Some(rps / 5.0),
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median([7.0]), Some(7.0));
        assert_eq!(median(std::iter::empty()), None);
        assert_eq!(median([f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn ratios_are_taken_within_a_repetition_then_their_median() {
        let targets = [Target::Redis, Target::Twemproxy, Target::ProxyRedis];
        let mut grid = Grid::new(&targets, 1, 3);
        // The machine is slow in repetition 1: every target drops together.
        for (rep, (redis, twem, ours)) in
            [(100.0, 40.0, 60.0), (50.0, 20.0, 30.0), (90.0, 36.0, 45.0)].into_iter().enumerate()
        {
            grid.set(rep, 0, Target::Redis, m(redis));
            grid.set(rep, 0, Target::Twemproxy, m(twem));
            grid.set(rep, 0, Target::ProxyRedis, m(ours));
        }
        let s = grid.summary(0, Target::ProxyRedis).unwrap();
        assert_eq!(s.rps, 45.0);
        assert_eq!(s.reps, 3);
        // Within-repetition ratios 1.5, 1.5, 1.25: median 1.5 (medians' ratio would be 45/36).
        assert_eq!(s.vs_twemproxy, Some(1.5));
        // 0.6, 0.6, 0.5
        assert_eq!(s.vs_redis, Some(0.6));
        assert_eq!(s.cpu_us_per_request, Some(4.5));
        assert_eq!(s.machine_us_per_request, Some(9.0));
        assert_eq!(s.p999_ms, Some(0.9));
        let redis = grid.summary(0, Target::Redis).unwrap();
        assert_eq!(redis.vs_redis, Some(1.0));
    }

    #[test]
    fn missing_repetitions_are_left_out() {
        let mut grid = Grid::new(&[Target::Redis, Target::Server], 2, 3);
        grid.set(0, 1, Target::Server, m(10.0));
        grid.set(2, 1, Target::Server, m(30.0));
        grid.set(2, 1, Target::Redis, m(15.0));
        let s = grid.summary(1, Target::Server).unwrap();
        assert_eq!(s.rps, 20.0);
        assert_eq!(s.reps, 2);
        assert_eq!(s.vs_redis, Some(2.0));
        assert_eq!(s.vs_twemproxy, None);
        assert!(grid.summary(0, Target::Server).is_none());
        // Outside the grid: ignored.
        grid.set(5, 0, Target::Server, m(1.0));
        grid.set(0, 0, Target::Twemproxy, m(1.0));
        assert!(grid.summary(0, Target::Twemproxy).is_none());
    }
}
