//! The proxy's metrics: what `/metrics` exports and the ring page shows, read from the
//! counters the proxy keeps anyway (a backend's requests, errors, timeouts, latency; its
//! health; the ring; the migrator) plus one counter per command of the table.
//!
//! Recording is an atomic add on a counter its owner already holds (no label lookups), and
//! only while `--metrics-port` is given ([`service::metrics::enabled`]). Scraping takes a
//! [`Snapshot`] and encodes it with `prometheus-client`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use resp::command::Command;
use serde::Serialize;
use service::metrics::HistogramSnapshot;

use crate::migration::Progress;
use crate::Proxy;

/// Per-command counters, indexed by the command table's ids.
pub struct Metrics {
    commands: Box<[AtomicU64]>,
}

impl Default for Metrics {
    fn default() -> Self {
        let len = resp::command::table().commands().len();
        Self { commands: (0..len).map(|_| AtomicU64::new(0)).collect() }
    }
}

impl Metrics {
    /// Counts one command from a client (when metrics are on).
    #[inline]
    pub fn count_command(&self, command: &Command) {
        if service::metrics::enabled() {
            if let Some(counter) = self.commands.get(command.id) {
                counter.fetch_add(1, Relaxed);
            }
        }
    }

    /// `(name, count)` of every command run at least once.
    fn commands(&self) -> Vec<(&'static str, u64)> {
        let table = resp::command::table().commands();
        table
            .iter()
            .zip(self.commands.iter())
            .map(|(command, count)| (command.name, count.load(Relaxed)))
            .filter(|(_, count)| *count > 0)
            .collect()
    }
}

/// One server as the metrics and the page see it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerRow {
    /// `host:port`.
    pub addr: String,
    /// `up`, `down` or `draining`.
    pub state: &'static str,
    /// Its weight (0 while draining).
    pub weight: u32,
    /// Points it owns on the ring.
    pub vnodes: usize,
    /// Fraction of the key space it owns, 0 to 1.
    pub share: f64,
    /// Requests sent to it.
    pub requests: u64,
    /// Requests that got no reply (connect failure, lost connection, timeout).
    pub errors: u64,
    /// Error replies it sent.
    pub error_replies: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Times it was marked down.
    pub ejections: u64,
    /// Pooled connections open to it.
    pub connections: usize,
    /// Sum of the latencies recorded, seconds.
    pub latency_sum_seconds: f64,
    /// Latencies recorded.
    pub latency_count: u64,
    /// Keys it holds (DBSIZE), when asked for and it answered.
    pub keys: Option<u64>,
    /// The latency histogram.
    #[serde(skip)]
    pub latency: HistogramSnapshot,
}

/// The migration, for the page.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationRow {
    /// `idle`, `running`, `done`, `failed`.
    pub state: &'static str,
    /// Keys scanned, moved, at the start.
    pub scanned: u64,
    /// Keys moved.
    pub moved: u64,
    /// Keys the sources held at the start.
    pub total: u64,
    /// Errors.
    pub errors: u64,
    /// 0 to 100.
    pub percent: f64,
    /// Milliseconds left, when known.
    pub eta_ms: Option<u64>,
}

impl From<&Progress> for MigrationRow {
    fn from(p: &Progress) -> Self {
        Self {
            state: p.state,
            scanned: p.scanned,
            moved: p.moved,
            total: p.total,
            errors: p.errors,
            percent: p.percent,
            eta_ms: p.eta.map(|e| e.as_millis() as u64),
        }
    }
}

/// Everything one scrape or one poll of the page reports.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The distribution's name.
    pub distribution: String,
    /// The key hash's name.
    pub hash: String,
    /// Virtual nodes per unit of weight.
    pub vnodes_per_weight: usize,
    /// Copies per key.
    pub replication: usize,
    /// Servers, ring order (sorted), then draining ones.
    pub servers: Vec<ServerRow>,
    /// The ring's points as `[position, index into servers]`, ascending (empty for
    /// distributions without points).
    pub points: Vec<(u32, usize)>,
    /// Clients connected now.
    pub clients: usize,
    /// Connections accepted since start.
    pub connections_received: u64,
    /// Commands run since start.
    pub commands: u64,
    /// Bytes received from clients.
    pub bytes_in: u64,
    /// Bytes sent to clients.
    pub bytes_out: u64,
    /// The running or last migration.
    pub migration: MigrationRow,
    /// Seconds since start.
    pub uptime_seconds: f64,
    #[serde(skip)]
    progress: Option<Progress>,
    #[serde(skip)]
    per_command: Vec<(&'static str, u64)>,
}

/// Reads everything now; with `keys`, asks each server for its DBSIZE (each within a short
/// timeout, a server that does not answer shows no count).
pub async fn snapshot(proxy: &Arc<Proxy>, keys: bool) -> Snapshot {
    let topology = proxy.cluster.snapshot();
    let ring = &topology.ring;
    let row = |backend: &crate::backend::Backend, state: &'static str, weight, vnodes, share| {
        let latency = backend.stats.latency.snapshot();
        ServerRow {
            addr: backend.addr().to_string(),
            state,
            weight,
            vnodes,
            share,
            requests: backend.stats.requests.load(Relaxed),
            errors: backend.stats.errors.load(Relaxed),
            error_replies: backend.stats.error_replies.load(Relaxed),
            timeouts: backend.stats.timeouts.load(Relaxed),
            ejections: backend.health.ejections(),
            connections: backend.open_connections(),
            latency_sum_seconds: latency.sum_seconds,
            latency_count: latency.count,
            keys: None,
            latency,
        }
    };
    let mut servers: Vec<ServerRow> = ring
        .server_ids()
        .map(|id| {
            let backend = topology.backend(id);
            row(backend, backend.health.state(), ring.weight(id), ring.point_count(id), ring.share(id))
        })
        .collect();
    servers.extend(topology.draining.iter().map(|backend| row(backend, "draining", 0, 0, 0.0)));
    if keys {
        for server in servers.iter_mut() {
            let Some(backend) = topology.find(&server.addr).filter(|b| b.health.is_up()) else { continue };
            let asked = crate::migration::call(backend, &[b"DBSIZE"]);
            if let Ok(Ok(resp::Frame::Integer(n))) = tokio::time::timeout(KEYS_TIMEOUT, asked).await {
                server.keys = Some(n.max(0) as u64);
            }
        }
    }
    let index: std::collections::HashMap<&str, usize> =
        servers.iter().enumerate().map(|(i, s)| (s.addr.as_str(), i)).collect();
    let points = ring.points().filter_map(|(position, owner)| Some((position, *index.get(owner)?))).collect();
    let progress = proxy.migrator.progress();
    let (bytes_in, bytes_out) = service::metrics::client_bytes();
    Snapshot {
        distribution: ring.distribution().to_string(),
        hash: ring.hash_name().to_string(),
        vnodes_per_weight: ring.vnodes(),
        replication: topology.replication,
        points,
        clients: proxy.stats.clients(),
        connections_received: proxy.stats.connections(),
        commands: proxy.stats.commands(),
        bytes_in,
        bytes_out,
        migration: MigrationRow::from(&progress),
        uptime_seconds: proxy.started.elapsed().as_secs_f64(),
        progress: Some(progress),
        per_command: proxy.metrics.commands(),
        servers,
    }
}

/// How long the page's DBSIZE of one server may take.
const KEYS_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(250);

/// Prometheus text of `snapshot`.
pub fn render(snapshot: Snapshot) -> String {
    service::metrics::render(snapshot)
}

type Fmt = Result<(), std::fmt::Error>;

/// A counter (`u64` values) or gauge (`f64` values) per server.
fn per_server(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    servers: &[ServerRow],
    value: impl Fn(&ServerRow) -> f64,
) -> Fmt {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for server in servers {
        let labels = [("server", server.addr.as_str())];
        let family = metric.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(value(server) as u64).encode(family)?,
            _ => ConstGauge::new(value(server)).encode(family)?,
        }
    }
    Ok(())
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Fmt {
    ConstCounter::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> Fmt {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> Fmt {
        use MetricType::{Counter, Gauge};
        let s = &self.servers;
        per_server(&mut e, "proxy_server_requests", "Requests sent to the server", Counter, s, |r| r.requests as f64)?;
        per_server(
            &mut e,
            "proxy_server_errors",
            "Requests that got no reply (connect failure, lost link, timeout)",
            Counter,
            s,
            |r| r.errors as f64,
        )?;
        per_server(&mut e, "proxy_server_error_replies", "Error replies the server sent", Counter, s, |r| {
            r.error_replies as f64
        })?;
        per_server(
            &mut e,
            "proxy_server_timeouts",
            "Requests that waited past --server-timeout-ms",
            Counter,
            s,
            |r| r.timeouts as f64,
        )?;
        per_server(
            &mut e,
            "proxy_server_ejections",
            "Times the health checks marked the server down",
            Counter,
            s,
            |r| r.ejections as f64,
        )?;
        per_server(
            &mut e,
            "proxy_server_up",
            "1 while the server takes traffic, 0 while marked down or draining",
            Gauge,
            s,
            |r| f64::from(u8::from(r.state == "up")),
        )?;
        per_server(&mut e, "proxy_server_ring_share", "Fraction of the key space the server owns", Gauge, s, |r| {
            r.share
        })?;
        per_server(&mut e, "proxy_server_vnodes", "Points the server owns on the ring", Gauge, s, |r| r.vnodes as f64)?;
        per_server(&mut e, "proxy_server_weight", "The server's weight", Gauge, s, |r| f64::from(r.weight))?;
        per_server(&mut e, "proxy_server_connections", "Pooled connections open to the server", Gauge, s, |r| {
            r.connections as f64
        })?;
        {
            let mut metric = e.encode_descriptor(
                "proxy_server_latency_seconds",
                "Time from sending a batch of requests to the server to its last reply",
                None,
                MetricType::Histogram,
            )?;
            for server in s {
                let labels = [("server", server.addr.as_str())];
                let mut family = metric.encode_family(&labels)?;
                let h = &server.latency;
                family.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &h.buckets, None)?;
            }
        }
        gauge(&mut e, "proxy_client_connections", "Clients connected now", self.clients as f64)?;
        counter(&mut e, "proxy_client_connections_received", "Client connections accepted", self.connections_received)?;
        counter(&mut e, "proxy_client_commands", "Commands from clients", self.commands)?;
        counter(&mut e, "proxy_client_bytes_in", "Bytes received from clients", self.bytes_in)?;
        counter(&mut e, "proxy_client_bytes_out", "Bytes sent to clients", self.bytes_out)?;
        {
            let mut metric =
                e.encode_descriptor("proxy_commands", "Commands from clients, by command", None, MetricType::Counter)?;
            for (name, count) in &self.per_command {
                let labels = [("command", *name)];
                ConstCounter::new(*count).encode(metric.encode_family(&labels)?)?;
            }
        }
        gauge(
            &mut e,
            "proxy_ring_servers",
            "Servers in the ring",
            self.servers.iter().filter(|r| r.state != "draining").count() as f64,
        )?;
        gauge(&mut e, "proxy_ring_points", "Points on the ring", self.points.len() as f64)?;
        if let Some(p) = &self.progress {
            gauge(
                &mut e,
                "proxy_migration_running",
                "1 while a migration runs",
                f64::from(u8::from(p.state == "running")),
            )?;
            gauge(
                &mut e,
                "proxy_migration_progress_ratio",
                "Keys scanned of the keys the sources held, 0 to 1",
                p.percent / 100.0,
            )?;
            gauge(
                &mut e,
                "proxy_migration_keys_scanned",
                "Keys the running or last migration scanned",
                p.scanned as f64,
            )?;
            gauge(&mut e, "proxy_migration_keys_moved", "Keys the running or last migration moved", p.moved as f64)?;
            gauge(
                &mut e,
                "proxy_migration_keys_total",
                "Keys the sources held when the migration began",
                p.total as f64,
            )?;
            gauge(&mut e, "proxy_migration_errors", "Errors of the running or last migration", p.errors as f64)?;
            gauge(
                &mut e,
                "proxy_migration_eta_seconds",
                "Estimated time left (0 when none runs)",
                p.eta.map_or(0.0, |d| d.as_secs_f64()),
            )?;
        }
        gauge(&mut e, "proxy_uptime_seconds", "Seconds since the proxy started", self.uptime_seconds)?;
        Ok(())
    }
}
