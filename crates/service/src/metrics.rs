//! What `--metrics-port` needs in both binaries: a switch that keeps recording free when no
//! one asked for metrics, a lock-free latency histogram, client traffic counters, Prometheus
//! text through `prometheus-client` (from a [`Collector`] that reads our own atomics at
//! scrape time), and the HTTP server (axum) that serves it.
//!
//! Hot paths never look anything up by label: each counter is an atomic that its owner holds
//! (a backend's, a command's by table index), and the collector walks them when scraped.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::registry::Registry;

static ENABLED: AtomicBool = AtomicBool::new(false);
static BYTES_IN: AtomicU64 = AtomicU64::new(0);
static BYTES_OUT: AtomicU64 = AtomicU64::new(0);

/// Turns recording on for this process (done once at start when `--metrics-port` is given).
pub fn enable() {
    ENABLED.store(true, Relaxed);
}

/// Whether anything is recorded: one relaxed load, so call sites skip clock reads and
/// counters when metrics are off.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Relaxed)
}

/// Counts bytes received from clients (when enabled).
#[inline]
pub fn note_bytes_in(n: usize) {
    if enabled() {
        BYTES_IN.fetch_add(n as u64, Relaxed);
    }
}

/// Counts bytes written to clients (when enabled).
#[inline]
pub fn note_bytes_out(n: usize) {
    if enabled() {
        BYTES_OUT.fetch_add(n as u64, Relaxed);
    }
}

/// Bytes received from and sent to clients since start: `(in, out)`.
pub fn client_bytes() -> (u64, u64) {
    (BYTES_IN.load(Relaxed), BYTES_OUT.load(Relaxed))
}

/// Upper bounds of the latency buckets, in microseconds (the last bucket is `+Inf`).
pub const LATENCY_BOUNDS_US: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000,
];

/// A latency histogram of fixed buckets: recording is two relaxed atomic adds and a short
/// scan of the bounds, no lock and no allocation.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket, the last one `+Inf`.
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

/// A histogram read at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Sum of the observations, seconds.
    pub sum_seconds: f64,
    /// Observations.
    pub count: u64,
    /// `(upper bound in seconds, observations in this bucket)`, not cumulative; the last
    /// bound is `+Inf`.
    pub buckets: Vec<(f64, u64)>,
}

impl Histogram {
    /// Records one observation.
    #[inline]
    pub fn record(&self, elapsed: Duration) {
        let us = elapsed.as_micros().min(u64::MAX as u128) as u64;
        let at = LATENCY_BOUNDS_US.iter().position(|&b| us <= b).unwrap_or(LATENCY_BOUNDS_US.len());
        self.buckets[at].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// The histogram now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let bounds = LATENCY_BOUNDS_US.iter().map(|&b| b as f64 / 1e6).chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds.zip(&self.buckets).map(|(b, c)| (b, c.load(Relaxed))).collect();
        HistogramSnapshot {
            sum_seconds: self.sum_us.load(Relaxed) as f64 / 1e6,
            count: buckets.iter().map(|(_, c)| c).sum(),
            buckets,
        }
    }
}

/// Prometheus text (version 0.0.4, OpenMetrics-compatible) of what `collector` reports now.
pub fn render(collector: impl Collector) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(collector));
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        tracing::warn!(%error, "encoding metrics failed");
    }
    text
}

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `router` on `listener` until `shutdown` resolves; errors are logged, never fatal to
/// the process that asked for metrics.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!("metrics and the ring page on http://{address}/ (Prometheus text at /metrics)");
    if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
        tracing::warn!(%error, "the metrics server stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket() {
        let histogram = Histogram::default();
        histogram.record(Duration::from_micros(40));
        histogram.record(Duration::from_micros(100));
        histogram.record(Duration::from_millis(3));
        histogram.record(Duration::from_secs(60));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 4);
        assert_eq!(snapshot.buckets[0], (0.00005, 1));
        assert_eq!(snapshot.buckets[1], (0.0001, 1));
        assert_eq!(snapshot.buckets[6], (0.005, 1));
        assert_eq!(snapshot.buckets.last(), Some(&(f64::INFINITY, 1)));
        assert!((snapshot.sum_seconds - 60.00314).abs() < 1e-9);
    }
}
