//! twemproxy's stats port (`--stats-port`, nutcracker's 22222): a client that connects gets
//! one JSON object with nutcracker's field names, then the connection closes, so exporters
//! and dashboards written for twemproxy read it unchanged.
//!
//! Values come from our own counters: client connections, requests and failed requests per
//! server, open server connections, servers marked down. Fields we do not count (bytes,
//! queues, EOFs, fragments) are present and 0, so the set of names matches nutcracker's.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::Proxy;

/// nutcracker's default stats port.
pub const DEFAULT_PORT: u16 = 22222;

/// Where the stats are served and under which pool name.
#[derive(Debug, Clone)]
pub struct StatsConfig {
    /// `host:port` to listen on (twemproxy's `-a`/`-s`: 0.0.0.0:22222 by default there).
    pub addr: String,
    /// The pool's name in the JSON (a `nutcracker.yml` pool's, else `proxy`).
    pub pool: String,
}

/// Serves the stats until the proxy is gone. A bind failure is logged and ends the task.
pub async fn serve(config: StatsConfig, proxy: Weak<Proxy>) {
    let listener = match TcpListener::bind(&config.addr).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(addr = %config.addr, %error, "[proxy] stats port: cannot listen");
            return;
        }
    };
    if let Ok(local) = listener.local_addr() {
        tracing::info!("[proxy] stats (twemproxy's JSON) on {local}");
    }
    loop {
        let (mut stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "stats accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(proxy) = proxy.upgrade() else { return };
        let body = render(&proxy, &config.pool);
        drop(proxy);
        tokio::spawn(async move {
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// A JSON string literal.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// The machine's name, for `source`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The JSON nutcracker sends, from `proxy`'s counters now.
pub fn render(proxy: &Arc<Proxy>, pool: &str) -> String {
    let topology = proxy.cluster.snapshot();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let clients = proxy.stats.clients();
    let mut out = format!(
        "{{\"service\":\"nutcracker\", \"source\":{}, \"version\":{}, \"uptime\":{}, \"timestamp\":{}, \
         \"total_connections\":{}, \"curr_connections\":{}, {}: {{",
        quoted(&hostname()),
        quoted(env!("CARGO_PKG_VERSION")),
        proxy.started.elapsed().as_secs(),
        now,
        proxy.stats.connections(),
        clients,
        quoted(pool),
    );
    let ids: Vec<ring::ServerId> = topology.ring.pool_order();
    let ejected = ids.iter().filter(|id| !topology.backend(**id).health.is_up()).count();
    let forward_error: u64 = ids.iter().map(|id| topology.backend(*id).stats.errors.load(Relaxed)).sum();
    let _ = write!(
        out,
        "\"client_eof\":0, \"client_err\":0, \"client_connections\":{clients}, \"server_ejects\":{ejected}, \
         \"forward_error\":{forward_error}, \"fragments\":0"
    );
    for id in ids {
        let backend = topology.backend(id);
        let requests = backend.stats.requests.load(Relaxed);
        let errors = backend.stats.errors.load(Relaxed);
        let _ = write!(
            out,
            ", {}: {{\"server_eof\":0, \"server_err\":{errors}, \"server_timedout\":0, \"server_connections\":{}, \
             \"server_ejected_at\":0, \"requests\":{requests}, \"request_bytes\":0, \"responses\":{}, \
             \"response_bytes\":0, \"in_queue\":0, \"in_queue_bytes\":0, \"out_queue\":0, \"out_queue_bytes\":0}}",
            quoted(topology.ring.label(id)),
            backend.open_connections(),
            requests.saturating_sub(errors),
        );
    }
    out.push_str("}}\n");
    out
}
