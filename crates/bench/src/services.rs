//! Starting the servers and proxies under test on free loopback ports, and the fleet of
//! them that the load phase uses.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::processes::{ScratchDir, Spawned};
use crate::setup::{Binaries, Tools};
use crate::target::Target;
use crate::{probe, procfs};

/// How long a process may take to listen and answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How many free ports to try for a program that cannot listen on port 0 (another process
/// may take the port between our probe and its bind).
const PORT_ATTEMPTS: usize = 5;

/// A server or proxy the suite started; stopped when dropped.
pub struct Service {
    /// Its name in messages (`redis-backend-1`, `proxy/ours`, ...).
    pub label: String,
    /// The loopback port it listens on.
    pub port: u16,
    /// Its log file.
    pub log: PathBuf,
    process: Spawned,
}

impl Service {
    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its process id, for /proc.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// How to tell that a freshly started process is ready.
#[derive(Clone, Copy)]
enum Ready {
    /// It listens on the port and answers PING.
    Ping,
    /// It listens on the port (twemproxy forwards PING to a backend; listening is enough).
    Listening,
}

/// Most clients each server and proxy accepts: room for the 10,000-client rows (every
/// default is 10,000, which one more connection would exceed). The suite raises its file
/// limit, which the processes it starts inherit.
pub const MAX_CLIENTS: u32 = 12_000;

/// Starts a `redis-server` with persistence off on a free port.
pub fn redis_server(tools: &Tools, label: &str, scratch: &ScratchDir) -> Result<Service> {
    let log = log_path(scratch, label);
    with_free_port(label, |port| {
        let mut command = launch::redis_command(&tools.redis_server, port);
        command.arg("--dir").arg(scratch.path());
        command.arg("--maxclients").arg(MAX_CLIENTS.to_string());
        start(label, &mut command, &log, Some(port), Ready::Ping)
    })
}

/// Starts one of our servers (`--port 0`: the kernel picks the port, read back from /proc).
pub fn our_server(binaries: &Binaries, label: &str, scratch: &ScratchDir) -> Result<Service> {
    our_server_with(binaries, label, scratch, Logs::Defaults)
}

/// Starts one of our servers with the given logging.
pub fn our_server_with(binaries: &Binaries, label: &str, scratch: &ScratchDir, logs: Logs) -> Result<Service> {
    let mut command = Command::new(&binaries.server);
    command.args(["--port", "0", "--no-greeting", "--name", label, "--max-clients", &MAX_CLIENTS.to_string()]);
    ours(&mut command, logs);
    start(label, &mut command, &log_path(scratch, label), None, Ready::Ping)
}

/// Virtual nodes per server for our proxy: twemproxy's ketama places 160 points per server,
/// so both spread keys over the backends alike (the seed's default of 3 leaves one backend
/// with most of the keys, and its single thread with most of the work).
pub const PROXY_VNODES: &str = "160";

/// Starts our proxy in front of `backends`.
pub fn our_proxy(binaries: &Binaries, label: &str, backends: &[&Service], scratch: &ScratchDir) -> Result<Service> {
    our_proxy_with(binaries, label, backends, scratch, Logs::Defaults)
}

/// Starts our proxy in front of `backends` with the given logging.
pub fn our_proxy_with(
    binaries: &Binaries,
    label: &str,
    backends: &[&Service],
    scratch: &ScratchDir,
    logs: Logs,
) -> Result<Service> {
    let servers: Vec<String> = backends.iter().map(|b| b.addr()).collect();
    let mut command = Command::new(&binaries.proxy);
    command.args(["--port", "0", "--no-greeting", "--replicas", PROXY_VNODES, "--servers", &servers.join(",")]);
    command.args(["--max-clients", &MAX_CLIENTS.to_string()]);
    ours(&mut command, logs);
    start(label, &mut command, &log_path(scratch, label), None, Ready::Ping)
}

/// How our processes under load log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logs {
    /// The defaults a user gets: no `RUST_LOG`, so `info`; stderr to a log file, so no line
    /// per request.
    Defaults,
    /// `RUST_LOG=warn`: the yardstick the defaults are held to.
    WarnOnly,
}

/// The environment of our processes under load: `logs`, and no colour codes.
fn ours(command: &mut Command, logs: Logs) {
    match logs {
        Logs::Defaults => command.env_remove("RUST_LOG"),
        Logs::WarnOnly => command.env("RUST_LOG", "warn"),
    };
    command.env("NO_COLOR", "1");
}

/// twemproxy and the port of its statistics.
pub struct Twemproxy {
    /// The proxy.
    pub service: Service,
    /// Where its statistics (JSON) are served.
    pub stats_port: u16,
}

/// Starts twemproxy in the foreground in front of `backends`: one pool with ketama
/// distribution and twemproxy's default hash (fnv1a_64), Redis protocol, no ejection.
pub fn twemproxy(tools: &Tools, label: &str, backends: &[&Service], scratch: &ScratchDir) -> Result<Twemproxy> {
    let log = log_path(scratch, label);
    let config_path = scratch.path().join("nutcracker.yml");
    let mut stats_port = 0;
    let service = with_free_port(label, |port| {
        stats_port = free_port()?;
        let servers: Vec<String> = backends.iter().map(|b| b.addr()).collect();
        std::fs::write(&config_path, twemproxy_config(port, &servers))
            .with_context(|| format!("writing {}", config_path.display()))?;
        let mut command = Command::new(&tools.nutcracker);
        command
            .arg("-c")
            .arg(&config_path)
            .args(["-s", &stats_port.to_string(), "-a", "127.0.0.1"])
            // Statistics aggregated every second, so that the sanity check sees them.
            .args(["-i", "1000"])
            .arg("-o")
            .arg(&log);
        start(label, &mut command, &log, Some(port), Ready::Listening)
    })?;
    Ok(Twemproxy { service, stats_port })
}

/// twemproxy's YAML configuration: one pool named `bench`.
pub fn twemproxy_config(port: u16, servers: &[String]) -> String {
    let mut yaml = format!(
        "bench:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n  \
         redis: true\n  auto_eject_hosts: false\n  server_connections: 1\n  \
         client_connections: {MAX_CLIENTS}\n  servers:\n"
    );
    for server in servers {
        // host:port:weight
        yaml.push_str(&format!("   - {server}:1\n"));
    }
    yaml
}

fn log_path(scratch: &ScratchDir, label: &str) -> PathBuf {
    scratch.path().join(format!("{}.log", label.replace('/', "-")))
}

/// A loopback port that was free a moment ago, for programs that cannot listen on port 0
/// (`redis-server`, `nutcracker`); [`start`] checks that the program got it.
fn free_port() -> Result<u16> {
    launch::free_port().context("finding a free loopback port")
}

/// Runs `attempt` with a free port until it gets one (a program that lost its port to
/// another process exits at start-up).
fn with_free_port<T>(label: &str, mut attempt: impl FnMut(u16) -> Result<T>) -> Result<T> {
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        match attempt(free_port()?) {
            Ok(started) => return Ok(started),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
        .context(format!("{label} did not start on any of {PORT_ATTEMPTS} free ports")))
}

/// Spawns `command` with its output going to `log`, and waits until it listens (on `port`
/// when given, else on whatever port it chose) and is ready.
fn start(label: &str, command: &mut Command, log: &Path, port: Option<u16>, ready: Ready) -> Result<Service> {
    let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone().context("duplicating the log file handle")?;
    command.stdin(Stdio::null()).stdout(Stdio::from(out)).stderr(Stdio::from(err));
    let process = Spawned::spawn(label, command)?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = process.exited() {
            bail!("{label} exited at start-up ({status}); its log ends:\n{}", log_tail(log));
        }
        let listening = procfs::listening_ports(process.pid()).unwrap_or_default();
        let found = match port {
            Some(port) => listening.contains(&port).then_some(port),
            None => listening.first().copied(),
        };
        if let Some(port) = found {
            let addr = format!("127.0.0.1:{port}");
            if matches!(ready, Ready::Listening) || probe::ping(&addr) {
                return Ok(Service { label: label.to_string(), port, log: log.to_path_buf(), process });
            }
        }
        if Instant::now() >= deadline {
            bail!("{label} was not ready within {} s; its log ends:\n{}", START_TIMEOUT.as_secs(), log_tail(log));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last lines of a log file, for an error message.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Everything the load phase runs, started once and stopped together (dropping it stops
/// the proxies before their backends).
pub struct Fleet {
    /// Our proxy in front of the three redis-servers.
    pub proxy_redis: Option<Service>,
    /// Our proxy in front of the three redis-servers, with `RUST_LOG=warn`.
    pub proxy_redis_warn: Option<Service>,
    /// Our proxy in front of our three servers.
    pub proxy_ours: Option<Service>,
    /// twemproxy in front of the three redis-servers.
    pub twemproxy: Option<Twemproxy>,
    /// redis-server for the direct target.
    pub redis: Option<Service>,
    /// Our server alone.
    pub server: Option<Service>,
    /// Our server alone, with `RUST_LOG=warn`.
    pub server_warn: Option<Service>,
    /// The three redis-servers behind twemproxy and proxy/redis.
    pub redis_backends: Vec<Service>,
    /// Our three servers behind proxy/ours.
    pub our_backends: Vec<Service>,
}

/// Backends behind each proxy.
pub const BACKENDS: usize = 3;

impl Fleet {
    /// Starts what `targets` need.
    pub fn start(targets: &[Target], tools: &Tools, binaries: &Binaries, scratch: &ScratchDir) -> Result<Self> {
        let wants = |t: Target| targets.contains(&t);
        let mut fleet = Fleet {
            proxy_redis: None,
            proxy_redis_warn: None,
            proxy_ours: None,
            twemproxy: None,
            redis: None,
            server: None,
            server_warn: None,
            redis_backends: Vec::new(),
            our_backends: Vec::new(),
        };
        if wants(Target::Redis) {
            fleet.redis = Some(redis_server(tools, "redis", scratch)?);
        }
        if wants(Target::Twemproxy) || wants(Target::ProxyRedis) || wants(Target::ProxyRedisWarn) {
            for i in 1..=BACKENDS {
                let label = format!("redis-backend-{i}");
                fleet.redis_backends.push(redis_server(tools, &label, scratch)?);
            }
        }
        let redis_backends: Vec<&Service> = fleet.redis_backends.iter().collect();
        if wants(Target::Twemproxy) {
            fleet.twemproxy = Some(twemproxy(tools, "twemproxy", &redis_backends, scratch)?);
        }
        if wants(Target::ProxyRedis) {
            fleet.proxy_redis = Some(our_proxy(binaries, "proxy-redis", &redis_backends, scratch)?);
        }
        if wants(Target::ProxyRedisWarn) {
            let proxy = our_proxy_with(binaries, "proxy-redis-warn", &redis_backends, scratch, Logs::WarnOnly)?;
            fleet.proxy_redis_warn = Some(proxy);
        }
        if wants(Target::ProxyOurs) {
            for i in 0..BACKENDS {
                let label = format!("cache-{}", char::from(b'A' + i as u8));
                fleet.our_backends.push(our_server(binaries, &label, scratch)?);
            }
            let our_backends: Vec<&Service> = fleet.our_backends.iter().collect();
            fleet.proxy_ours = Some(our_proxy(binaries, "proxy-ours", &our_backends, scratch)?);
        }
        if wants(Target::Server) {
            fleet.server = Some(our_server(binaries, "server", scratch)?);
        }
        if wants(Target::ServerWarn) {
            fleet.server_warn = Some(our_server_with(binaries, "server-warn", scratch, Logs::WarnOnly)?);
        }
        Ok(fleet)
    }

    /// The process clients talk to for `target`.
    pub fn front(&self, target: Target) -> Option<&Service> {
        match target {
            Target::Redis => self.redis.as_ref(),
            Target::Twemproxy => self.twemproxy.as_ref().map(|t| &t.service),
            Target::ProxyRedis => self.proxy_redis.as_ref(),
            Target::ProxyOurs => self.proxy_ours.as_ref(),
            Target::Server => self.server.as_ref(),
            Target::ProxyRedisWarn => self.proxy_redis_warn.as_ref(),
            Target::ServerWarn => self.server_warn.as_ref(),
        }
    }

    /// Every process that stores data: the backends and the servers used directly.
    pub fn stores(&self) -> Vec<&Service> {
        self.redis
            .iter()
            .chain(&self.redis_backends)
            .chain(&self.our_backends)
            .chain(&self.server)
            .chain(&self.server_warn)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twemproxy_config_names_every_server_with_weight_one() {
        let yaml = twemproxy_config(7000, &["127.0.0.1:7001".to_string(), "127.0.0.1:7002".to_string()]);
        assert!(yaml.starts_with("bench:\n  listen: 127.0.0.1:7000\n"));
        assert!(yaml.contains("  distribution: ketama\n"));
        assert!(yaml.contains("  hash: fnv1a_64\n"));
        assert!(yaml.contains("  redis: true\n"));
        assert!(yaml.contains("  auto_eject_hosts: false\n"));
        assert!(yaml.contains("  client_connections: 12000\n"));
        assert!(yaml.ends_with("   - 127.0.0.1:7001:1\n   - 127.0.0.1:7002:1\n"));
    }
}
