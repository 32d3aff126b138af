//! An open-loop load generator for the shapes redis-benchmark cannot make: a GET/SET mix
//! over a Zipf-distributed keyspace, paced at a fixed rate (`bench load --help`).
//!
//! - **Open loop.** Request `j` of a worker is due at `start + j * interval`, whatever the
//!   replies do; requests go round-robin over the worker's connections (so each connection
//!   gets an even share of the rate) and pile up, pipelined, when the target falls behind.
//!   A request's latency runs from its *scheduled* time, not from when it was sent, so a
//!   stall counts against every request it delayed (no coordinated omission).
//! - **Precise pacing.** The worker sleeps in `epoll_wait` until its next request is due on
//!   a `timerfd` (nanosecond resolution), not on epoll's millisecond timeout, which alone
//!   would add up to a millisecond to every latency.
//! - **HDR histograms** (the `hdrhistogram` crate, 3 significant digits, microseconds).
//! - **Zipf keys**: [`Zipf`], rejection-inversion sampling (Hörmann and Derflinger), O(1)
//!   per key and no table, for any exponent > 0.
//!
//! Each worker is one thread with its own mio event loop; one (the default) is like
//! redis-benchmark, single-threaded.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use resp::Limits;

/// `bench load`: one open-loop run against one address.
#[derive(clap::Parser, Debug, Clone)]
#[command(name = "bench load", about = "Open-loop load (fixed rate, Zipf keys, HDR latencies) against one RESP server")]
pub struct LoadArgs {
    /// The target, host:port.
    #[arg(long, default_value = "127.0.0.1:6379")]
    pub addr: String,
    /// Connections.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,
    /// Requests per second over all connections (the schedule; what was achieved is reported).
    #[arg(long, default_value_t = 20_000.0)]
    pub rate: f64,
    /// Seconds of scheduled requests.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// The mix of commands, `get:90,set:10` (weights; GET and SET).
    #[arg(long, default_value = "get:90,set:10")]
    pub mix: Mix,
    /// Zipf exponent of the key ranks (0.99 is YCSB's).
    #[arg(long, default_value_t = 0.99)]
    pub zipf: f64,
    /// Distinct keys, `key:000000000000` upwards (redis-benchmark's names, so its SETs fill them).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,
    /// SET value size, bytes.
    #[arg(long, default_value_t = 32)]
    pub value_size: usize,
    /// Worker threads, each with its own connections and event loop.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: u32,
    /// Seed of the key and command choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl LoadArgs {
    /// The run these arguments describe.
    pub fn plan(&self) -> Result<Plan> {
        let addr = self
            .addr
            .to_socket_addrs()
            .with_context(|| format!("resolving {}", self.addr))?
            .next()
            .with_context(|| format!("{} resolves to no address", self.addr))?;
        if !(self.rate.is_finite() && self.rate > 0.0) {
            bail!("--rate must be a positive number of requests per second");
        }
        if !(self.duration.is_finite() && self.duration > 0.0) {
            bail!("--duration must be a positive number of seconds");
        }
        Ok(Plan {
            addr,
            clients: self.clients,
            rate: self.rate,
            duration: Duration::from_secs_f64(self.duration),
            mix: self.mix,
            zipf: Zipf::new(self.keys, self.zipf)?,
            value_size: self.value_size,
            threads: self.threads.min(self.clients),
            seed: self.seed,
        })
    }
}

/// Runs `bench load` with the arguments after `load`, and prints its figures.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<()> {
    use clap::Parser;
    let args = LoadArgs::parse_from(args);
    let plan = args.plan()?;
    let outcome = run(&plan)?;
    println!("{}", outcome.summary(&plan));
    if outcome.failed > 0 || outcome.error_replies > 0 {
        bail!("{} requests failed, {} error replies", outcome.failed, outcome.error_replies);
    }
    Ok(())
}

/// The weights of GET and SET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// Weight of GET.
    pub get: u32,
    /// Weight of SET.
    pub set: u32,
}

impl Mix {
    /// Whether a uniform draw in [0, 1) picks SET.
    fn is_set(&self, draw: f64) -> bool {
        draw * f64::from(self.get + self.set) >= f64::from(self.get)
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut mix = Mix { get: 0, set: 0 };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once(':').ok_or_else(|| format!("{part:?} is not command:weight"))?;
            let weight: u32 = weight.trim().parse().map_err(|_| format!("{weight:?} is not a whole number"))?;
            match name.trim().to_ascii_lowercase().as_str() {
                "get" => mix.get += weight,
                "set" => mix.set += weight,
                other => return Err(format!("{other:?}: only get and set are generated")),
            }
        }
        if mix.get.checked_add(mix.set).is_none_or(|sum| sum == 0) {
            return Err("the weights must add up to more than 0".to_string());
        }
        Ok(mix)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "get:{},set:{}", self.get, self.set)
    }
}

/// A small fast generator (SplitMix64): the keys need speed and a fixed seed, not secrecy.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Zipf's law over ranks 1..=n: P(k) ∝ 1 / k^exponent, sampled by rejection-inversion
/// (W. Hörmann, G. Derflinger, "Rejection-inversion to generate variates from monotone
/// discrete distributions", 1996), as in Apache Commons' sampler.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    exponent: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    s: f64,
}

impl Zipf {
    /// The distribution over `n` ranks with `exponent` (> 0).
    pub fn new(n: u64, exponent: f64) -> Result<Self> {
        if n == 0 {
            bail!("a Zipf distribution needs at least one key");
        }
        if !(exponent.is_finite() && exponent > 0.0) {
            bail!("the Zipf exponent must be a positive number (0.99 is usual)");
        }
        let n = n as f64;
        let mut zipf = Self { n, exponent, h_integral_x1: 0.0, h_integral_n: 0.0, s: 0.0 };
        zipf.h_integral_x1 = zipf.h_integral(1.5) - 1.0;
        zipf.h_integral_n = zipf.h_integral(n + 0.5);
        zipf.s = 2.0 - zipf.h_integral_inverse(zipf.h_integral(2.5) - zipf.h(2.0));
        Ok(zipf)
    }

    /// A rank in 1..=n; 1 is the most frequent.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_integral_n + rng.next_f64() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.s || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    /// The exact probability of rank `k` (for tests and reports; O(n)).
    pub fn probability(&self, k: u64) -> f64 {
        let norm: f64 = (1..=self.n as u64).map(|i| (i as f64).powf(-self.exponent)).sum();
        (k as f64).powf(-self.exponent) / norm
    }

    fn h(&self, x: f64) -> f64 {
        (-self.exponent * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.exponent) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.exponent)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// ln(1 + x) / x, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// (e^x - 1) / x, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x))
    }
}

/// When each request of one worker is due: request `j` at `start + j * interval`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    interval_ns: f64,
    requests: u64,
}

impl Schedule {
    /// Worker `worker` of `workers` sharing `rate` requests/s for `duration`: each worker
    /// sends rate/workers per second, their schedules offset evenly within one interval.
    pub fn new(start: Instant, rate: f64, duration: Duration, worker: u32, workers: u32) -> Self {
        let interval_ns = 1e9 * f64::from(workers) / rate;
        let offset = Duration::from_nanos((interval_ns * f64::from(worker) / f64::from(workers)) as u64);
        let requests = (duration.as_secs_f64() * rate / f64::from(workers)).floor() as u64;
        Self { start: start + offset, interval_ns, requests }
    }

    /// Requests this worker sends in all.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// When request `j` is due.
    pub fn at(&self, j: u64) -> Instant {
        self.start + Duration::from_nanos((j as f64 * self.interval_ns) as u64)
    }

    /// How many requests are due by `now` (never more than [`Self::requests`]).
    pub fn due_by(&self, now: Instant) -> u64 {
        let Some(elapsed) = now.checked_duration_since(self.start) else {
            return 0;
        };
        let due = (elapsed.as_nanos() as f64 / self.interval_ns).floor() as u64 + 1;
        // Float rounding may put `at(due)` at `now`; the loop below settles it exactly.
        let mut due = due.min(self.requests);
        while due < self.requests && self.at(due) <= now {
            due += 1;
        }
        while due > 0 && self.at(due - 1) > now {
            due -= 1;
        }
        due
    }
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The target.
    pub addr: SocketAddr,
    /// Connections.
    pub clients: u32,
    /// Scheduled requests per second, all connections together.
    pub rate: f64,
    /// How long requests are scheduled for.
    pub duration: Duration,
    /// GET and SET weights.
    pub mix: Mix,
    /// The key ranks' distribution.
    pub zipf: Zipf,
    /// SET value size.
    pub value_size: usize,
    /// Worker threads.
    pub threads: u32,
    /// Seed of the choices.
    pub seed: u64,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Requests written.
    pub sent: u64,
    /// Replies read (error replies included).
    pub replies: u64,
    /// `-ERR ...` replies.
    pub error_replies: u64,
    /// Requests that got no reply (connection lost, or still unanswered at the end).
    pub failed: u64,
    /// From the first scheduled request to the last reply.
    pub elapsed: Duration,
    /// Latencies from the scheduled time, µs.
    pub latency_us: Histogram<u64>,
}

impl Outcome {
    /// Nothing sent yet, an empty latency histogram.
    fn empty() -> Result<Self> {
        Ok(Outcome {
            sent: 0,
            replies: 0,
            error_replies: 0,
            failed: 0,
            elapsed: Duration::ZERO,
            latency_us: new_histogram()?,
        })
    }

    /// Replies per second over the run.
    pub fn rps(&self) -> f64 {
        self.replies as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A latency percentile (0..=100), ms.
    pub fn percentile_ms(&self, percentile: f64) -> f64 {
        self.latency_us.value_at_quantile(percentile / 100.0) as f64 / 1000.0
    }

    /// One line with the figures.
    pub fn summary(&self, plan: &Plan) -> String {
        format!(
            "{} {} clients, {:.0} req/s scheduled for {:.1} s, zipf {} over {} keys: {:.0} req/s, \
             p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms; sent {}, replies {}, error replies {}, failed {}",
            plan.mix,
            plan.clients,
            plan.rate,
            plan.duration.as_secs_f64(),
            plan.zipf.exponent,
            plan.zipf.n,
            self.rps(),
            self.percentile_ms(50.0),
            self.percentile_ms(99.0),
            self.percentile_ms(99.9),
            self.latency_us.max() as f64 / 1000.0,
            self.sent,
            self.replies,
            self.error_replies,
            self.failed
        )
    }
}

/// How long replies may take to come in after the last request was due.
const DRAIN: Duration = Duration::from_secs(5);
/// The timerfd's token; connections use their index.
const TIMER: Token = Token(usize::MAX);

/// Runs the plan: connects every client, then sends on schedule until the duration ends
/// and the last reply is in (or [`DRAIN`] passes).
pub fn run(plan: &Plan) -> Result<Outcome> {
    // Connect first, every worker's share, so that the schedule starts with all clients up.
    let mut shares: Vec<Vec<TcpStream>> = (0..plan.threads).map(|_| Vec::new()).collect();
    for i in 0..plan.clients {
        let stream = std::net::TcpStream::connect(plan.addr)
            .with_context(|| format!("connecting client {} of {} to {}", i + 1, plan.clients, plan.addr))?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        shares[(i % plan.threads) as usize].push(TcpStream::from_std(stream));
    }
    let start = Instant::now() + Duration::from_millis(20);
    let handles: Vec<_> = shares
        .into_iter()
        .enumerate()
        .map(|(w, streams)| {
            let schedule = Schedule::new(start, plan.rate, plan.duration, w as u32, plan.threads);
            let worker = Worker::new(plan, streams, schedule, plan.seed.wrapping_add(w as u64));
            std::thread::Builder::new()
                .name(format!("load-{w}"))
                .spawn(move || worker.and_then(Worker::run))
                .context("starting a load worker")
        })
        .collect::<Result<_>>()?;
    let mut total = Outcome::empty()?;
    for handle in handles {
        let part = handle.join().map_err(|_| anyhow::anyhow!("a load worker panicked"))??;
        total.sent += part.sent;
        total.replies += part.replies;
        total.error_replies += part.error_replies;
        total.failed += part.failed;
        total.elapsed = total.elapsed.max(part.elapsed);
        total.latency_us.add(&part.latency_us).context("merging latency histograms")?;
    }
    Ok(total)
}

fn new_histogram() -> Result<Histogram<u64>> {
    // 1 µs to 10 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).context("creating a latency histogram")
}

/// One connection of a worker.
struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
    input: Vec<u8>,
    /// Scheduled times of the requests awaiting their reply, oldest first.
    in_flight: VecDeque<Instant>,
    /// Whether WRITABLE interest is registered (only while `out` is not empty).
    wants_write: bool,
    dead: bool,
}

/// One thread's share of the clients, with its event loop.
struct Worker {
    poll: Poll,
    timer: Timer,
    conns: Vec<Conn>,
    schedule: Schedule,
    rng: Rng,
    mix: Mix,
    zipf: Zipf,
    value: Vec<u8>,
    limits: Limits,
    /// Requests awaiting their reply, over every connection.
    pending: u64,
    outcome: Outcome,
}

impl Worker {
    fn new(plan: &Plan, streams: Vec<TcpStream>, schedule: Schedule, seed: u64) -> Result<Self> {
        let poll = Poll::new().context("creating an event loop")?;
        let timer = Timer::new()?;
        poll.registry().register(&mut SourceFd(&timer.fd()), TIMER, Interest::READABLE)?;
        let mut conns = Vec::with_capacity(streams.len());
        for (i, mut stream) in streams.into_iter().enumerate() {
            poll.registry().register(&mut stream, Token(i), Interest::READABLE)?;
            conns.push(Conn {
                stream,
                out: Vec::new(),
                input: Vec::new(),
                in_flight: VecDeque::new(),
                wants_write: false,
                dead: false,
            });
        }
        Ok(Self {
            poll,
            timer,
            conns,
            schedule,
            rng: Rng::new(seed),
            mix: plan.mix,
            zipf: plan.zipf.clone(),
            value: vec![b'x'; plan.value_size],
            limits: Limits::default(),
            pending: 0,
            outcome: Outcome::empty()?,
        })
    }

    fn run(mut self) -> Result<Outcome> {
        let mut events = Events::with_capacity(1024);
        let mut next = 0u64; // the next request to send
        let last_due = self.schedule.at(self.schedule.requests().saturating_sub(1));
        let deadline = last_due + DRAIN;
        let mut last_reply = self.schedule.at(0);
        let mut touched: Vec<usize> = Vec::new();
        loop {
            let now = Instant::now();
            // Send everything due by now (all at once when late: the schedule does not wait).
            let due = self.schedule.due_by(now);
            while next < due {
                let c = (next % self.conns.len() as u64) as usize;
                let scheduled = self.schedule.at(next);
                next += 1;
                if self.conns[c].dead {
                    self.outcome.failed += 1;
                    continue;
                }
                self.encode(c, scheduled);
                if touched.last() != Some(&c) && !touched.contains(&c) {
                    touched.push(c);
                }
            }
            for c in touched.drain(..) {
                self.flush(c)?;
            }
            let waiting = self.pending;
            if next >= self.schedule.requests() && waiting == 0 {
                break;
            }
            if now >= deadline {
                self.outcome.failed += waiting;
                break;
            }
            let wake = if next < self.schedule.requests() { self.schedule.at(next) } else { deadline };
            self.timer.set(wake.saturating_duration_since(Instant::now()))?;
            match self.poll.poll(&mut events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("waiting for events"),
            }
            for event in &events {
                if event.token() == TIMER {
                    self.timer.clear();
                    continue;
                }
                let c = event.token().0;
                if event.is_writable() {
                    self.flush(c)?;
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    if let Some(at) = self.read(c) {
                        last_reply = at;
                    }
                }
            }
        }
        self.outcome.elapsed = last_reply.saturating_duration_since(self.schedule.at(0));
        Ok(self.outcome)
    }

    /// Appends one request, GET or SET of a Zipf-chosen key, to connection `c`.
    fn encode(&mut self, c: usize, scheduled: Instant) {
        let is_set = self.mix.is_set(self.rng.next_f64());
        let key = format!("key:{:012}", self.zipf.sample(&mut self.rng) - 1);
        let conn = &mut self.conns[c];
        let out = &mut conn.out;
        if is_set {
            out.extend_from_slice(
                format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n", key.len(), self.value.len()).as_bytes(),
            );
            out.extend_from_slice(&self.value);
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).as_bytes());
        }
        conn.in_flight.push_back(scheduled);
        self.outcome.sent += 1;
        self.pending += 1;
    }

    /// Writes what connection `c` has pending, asking for WRITABLE while some is left.
    fn flush(&mut self, c: usize) -> Result<()> {
        let conn = &mut self.conns[c];
        if conn.dead {
            return Ok(());
        }
        let mut written = 0;
        while written < conn.out.len() {
            match conn.stream.write(&conn.out[written..]) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.kill(c);
                    return Ok(());
                }
            }
        }
        conn.out.drain(..written);
        let wants_write = !conn.out.is_empty();
        if wants_write != conn.wants_write {
            let interest = if wants_write { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
            self.poll.registry().reregister(&mut conn.stream, Token(c), interest)?;
            conn.wants_write = wants_write;
        }
        Ok(())
    }

    /// Reads and accounts for every complete reply on connection `c`; the time of the last.
    fn read(&mut self, c: usize) -> Option<Instant> {
        let mut chunk = [0u8; 64 * 1024];
        let mut last = None;
        loop {
            let conn = &mut self.conns[c];
            if conn.dead {
                return last;
            }
            match conn.stream.read(&mut chunk) {
                Ok(0) => {
                    self.kill(c);
                    return last;
                }
                Ok(n) => conn.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return last,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.kill(c);
                    return last;
                }
            }
            let now = Instant::now();
            let mut at = 0;
            loop {
                let conn = &mut self.conns[c];
                match resp::frame_len(&conn.input[at..], &self.limits) {
                    Ok(Some(len)) => {
                        let is_error = conn.input[at] == b'-';
                        at += len;
                        let Some(scheduled) = conn.in_flight.pop_front() else {
                            // A reply nobody asked for: the stream is out of step.
                            self.kill(c);
                            return last;
                        };
                        self.outcome.replies += 1;
                        self.pending -= 1;
                        self.outcome.error_replies += u64::from(is_error);
                        let us = now.saturating_duration_since(scheduled).as_micros().max(1);
                        self.outcome.latency_us.saturating_record(u64::try_from(us).unwrap_or(u64::MAX));
                        last = Some(now);
                    }
                    Ok(None) => break,
                    Err(_) => {
                        self.kill(c);
                        return last;
                    }
                }
            }
            self.conns[c].input.drain(..at);
        }
    }

    /// Gives up on connection `c`: its requests in flight have failed.
    fn kill(&mut self, c: usize) {
        let conn = &mut self.conns[c];
        if !conn.dead {
            conn.dead = true;
            self.outcome.failed += conn.in_flight.len() as u64;
            self.pending -= conn.in_flight.len() as u64;
            conn.in_flight.clear();
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }
}

/// A one-shot `timerfd`: epoll wakes when it fires, to the nanosecond.
struct Timer {
    fd: OwnedFd,
}

impl Timer {
    fn new() -> Result<Self> {
        // SAFETY: timerfd_create takes no pointers; a non-negative result is a new fd we own.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error()).context("timerfd_create");
        }
        // SAFETY: `fd` was just returned by timerfd_create and is owned by nobody else.
        Ok(Self { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Fires once after `after` (at least 1 ns: zero would disarm it).
    fn set(&self, after: Duration) -> Result<()> {
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec {
                tv_sec: after.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: libc::c_long::from(after.subsec_nanos() as i32),
            },
        };
        // SAFETY: `spec` is a valid itimerspec; the old value is not asked for (null).
        let rc = unsafe { libc::timerfd_settime(self.fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error()).context("timerfd_settime");
        }
        Ok(())
    }

    /// Reads the expiry count, so that the next expiry is a new edge.
    fn clear(&self) {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into `count`; EAGAIN (not fired) is fine to ignore.
        let _ = unsafe { libc::read(self.fd(), count.as_mut_ptr().cast(), count.len()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_frequencies_follow_the_law() {
        for exponent in [0.5, 0.99, 1.0, 1.5] {
            let zipf = Zipf::new(20, exponent).unwrap();
            let mut rng = Rng::new(7);
            let draws = 400_000;
            let mut counts = [0u64; 21];
            for _ in 0..draws {
                let k = zipf.sample(&mut rng);
                assert!((1..=20).contains(&k), "rank {k} out of range");
                counts[k as usize] += 1;
            }
            for (k, &count) in counts.iter().enumerate().skip(1) {
                let expected = zipf.probability(k as u64) * draws as f64;
                let error = (count as f64 - expected).abs() / expected;
                assert!(error < 0.05, "s={exponent} rank {k}: {count} draws, expected {expected:.0}");
            }
        }
    }

    #[test]
    fn zipf_over_a_large_keyspace_is_skewed_and_in_range() {
        let zipf = Zipf::new(1_000_000, 0.99).unwrap();
        let mut rng = Rng::new(1);
        let draws: Vec<u64> = (0..100_000).map(|_| zipf.sample(&mut rng)).collect();
        assert!(draws.iter().all(|&k| (1..=1_000_000).contains(&k)));
        let top = draws.iter().filter(|&&k| k == 1).count() as f64 / draws.len() as f64;
        let expected = zipf.probability(1);
        assert!((top - expected).abs() < 0.01, "rank 1: {top}, expected {expected}");
        assert!(draws.iter().any(|&k| k > 100_000), "the tail is reached");
        assert!(Zipf::new(0, 0.99).is_err() && Zipf::new(10, 0.0).is_err() && Zipf::new(10, f64::NAN).is_err());
        let one = Zipf::new(1, 0.99).unwrap();
        assert!((0..100).all(|_| one.sample(&mut rng) == 1));
    }

    #[test]
    fn the_schedule_is_paced_regardless_of_replies() {
        let start = Instant::now();
        // 1,000 req/s for 2 s over 1 worker: one request per ms, 2,000 in all.
        let s = Schedule::new(start, 1000.0, Duration::from_secs(2), 0, 1);
        assert_eq!(s.requests(), 2000);
        assert_eq!(s.at(0), start);
        assert_eq!(s.at(250), start + Duration::from_millis(250));
        assert_eq!(s.due_by(start), 1);
        assert_eq!(s.due_by(start + Duration::from_micros(999)), 1);
        assert_eq!(s.due_by(start + Duration::from_millis(1)), 2);
        // A worker that stalled for 100 ms owes every request of those 100 ms at once.
        assert_eq!(s.due_by(start + Duration::from_millis(100)), 101);
        assert_eq!(s.due_by(start + Duration::from_secs(60)), 2000);
        // Nothing is due before the start.
        let later = Schedule::new(start + Duration::from_secs(1), 1000.0, Duration::from_secs(1), 0, 1);
        assert_eq!(later.due_by(start), 0);
    }

    #[test]
    fn workers_share_the_rate_with_offset_schedules() {
        let start = Instant::now();
        // 3,000 req/s over 3 workers: each one every 1 ms, offset by 1/3 ms.
        let schedules: Vec<Schedule> =
            (0..3).map(|w| Schedule::new(start, 3000.0, Duration::from_secs(1), w, 3)).collect();
        assert!(schedules.iter().all(|s| s.requests() == 1000));
        let mut times: Vec<Instant> = schedules.iter().flat_map(|s| (0..4).map(|j| s.at(j))).collect();
        times.sort();
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap >= Duration::from_micros(333) && gap <= Duration::from_micros(334), "gap {gap:?}");
        }
    }

    /// A short run against a real redis-server (skipped when it is not installed): every
    /// request answered, at about the scheduled rate, with the keys and values landing.
    #[test]
    fn a_short_run_against_redis_server() {
        if !launch::have("redis-server") {
            eprintln!("redis-server is not installed: skipped");
            return;
        }
        let port = launch::free_port().unwrap();
        let dir = crate::processes::ScratchDir::new().unwrap();
        let mut command = launch::redis_command("redis-server", port);
        command.arg("--dir").arg(dir.path()).stdout(std::process::Stdio::null());
        let _server = crate::processes::Spawned::spawn("redis-server", &mut command).unwrap();
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !crate::probe::ping(&addr) {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let args = LoadArgs {
            addr: addr.clone(),
            clients: 4,
            rate: 2000.0,
            duration: 0.5,
            mix: "get:50,set:50".parse().unwrap(),
            zipf: 0.99,
            keys: 100,
            value_size: 7,
            threads: 2,
            seed: 1,
        };
        let plan = args.plan().unwrap();
        let outcome = run(&plan).unwrap();
        assert_eq!(outcome.sent, 1000);
        assert_eq!((outcome.replies, outcome.failed, outcome.error_replies), (1000, 0, 0));
        assert_eq!(outcome.latency_us.len(), 1000);
        assert!(outcome.rps() > 1000.0, "{}", outcome.summary(&plan));
        assert!(outcome.percentile_ms(50.0) < 100.0, "{}", outcome.summary(&plan));
        // Rank 1 is the hottest key: surely SET at least once, with the value's size.
        let reply = crate::probe::call(&addr, &["STRLEN", "key:000000000000"]).unwrap();
        assert_eq!(reply, resp::Frame::Integer(7));
    }

    #[test]
    fn mixes_parse_and_choose_by_weight() {
        let mix: Mix = "get:90,set:10".parse().unwrap();
        assert_eq!(mix, Mix { get: 90, set: 10 });
        assert!(!mix.is_set(0.0) && !mix.is_set(0.899) && mix.is_set(0.9) && mix.is_set(0.999));
        assert_eq!("SET:1".parse::<Mix>().unwrap(), Mix { get: 0, set: 1 });
        assert!("get:0".parse::<Mix>().is_err());
        assert!("del:5".parse::<Mix>().is_err());
        assert!("get".parse::<Mix>().is_err());
        let mut rng = Rng::new(3);
        let sets = (0..100_000).filter(|_| mix.is_set(rng.next_f64())).count();
        assert!((9_000..11_000).contains(&sets), "{sets} SETs of 100,000");
    }
}
