//! `--metrics-port`: the server's Prometheus text at `/metrics`. Everything is read at scrape
//! time from counters the server keeps for INFO anyway (the store's per-shard counters, the
//! connection counters), so serving requests records nothing extra.

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::Ctx;

/// What one scrape reports.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Commands run.
    pub commands: u64,
    /// Lookups that found a live key.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Keys evicted for maxmemory.
    pub evicted: u64,
    /// Keys removed because their TTL passed.
    pub expired: u64,
    /// Live keys.
    pub keys: u64,
    /// Bytes the keyspace holds (INFO's used_memory).
    pub used_memory: u64,
    /// The bound, 0 for none.
    pub maxmemory: u64,
    /// Clients connected now.
    pub clients: u64,
    /// Connections accepted since start.
    pub connections: u64,
    /// Seconds since start.
    pub uptime_seconds: f64,
}

/// Reads the server's counters now.
pub fn snapshot(ctx: &Ctx) -> Snapshot {
    let counters = ctx.store.counters();
    Snapshot {
        commands: ctx.stats.commands(),
        hits: counters.hits,
        misses: counters.misses,
        evicted: counters.evicted,
        expired: counters.expired,
        keys: ctx.store.len() as u64,
        used_memory: ctx.store.memory_estimate() as u64,
        maxmemory: ctx.store.maxmemory() as u64,
        clients: ctx.stats.clients() as u64,
        connections: ctx.stats.connections(),
        uptime_seconds: ctx.started.elapsed().as_secs_f64(),
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counters: [(&str, &str, u64); 6] = [
            ("server_commands", "Commands run (ops)", self.commands),
            ("server_keyspace_hits", "Lookups that found a live key", self.hits),
            ("server_keyspace_misses", "Lookups that found no key", self.misses),
            ("server_evicted_keys", "Keys evicted to stay under maxmemory", self.evicted),
            ("server_expired_keys", "Keys removed because their TTL passed", self.expired),
            ("server_connections_received", "Client connections accepted", self.connections),
        ];
        for (name, help, value) in counters {
            ConstCounter::new(value).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)?;
        }
        let gauges: [(&str, &str, f64); 5] = [
            ("server_keys", "Live keys", self.keys as f64),
            (
                "server_used_memory_bytes",
                "Bytes held by keys, values and tables (INFO used_memory)",
                self.used_memory as f64,
            ),
            ("server_maxmemory_bytes", "The maxmemory bound (0: none)", self.maxmemory as f64),
            ("server_connected_clients", "Clients connected now", self.clients as f64),
            ("server_uptime_seconds", "Seconds since the server started", self.uptime_seconds),
        ];
        for (name, help, value) in gauges {
            ConstGauge::new(value).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
        }
        Ok(())
    }
}

/// The routes of the server's metrics port.
pub fn router(ctx: Arc<Ctx>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let ctx = ctx.clone();
            async move {
                let text = service::metrics::render(snapshot(&ctx));
                ([(header::CONTENT_TYPE, service::metrics::CONTENT_TYPE)], text).into_response()
            }
        }),
    )
}
