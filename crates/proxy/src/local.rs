//! Commands the proxy answers itself: its ring commands (ADD_SERVER, REMOVE_SERVER,
//! SERVERS, ROUTE), HELP, INFO, and the connection commands shared with the server.

use bytes::BytesMut;
use resp::command::CommandSpec;
use resp::{write, Request};
use service::common;

use crate::cluster::Topology;
use crate::plan::NO_SERVERS;
use crate::Proxy;

/// What the connection does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Flush and close (QUIT).
    Quit,
}

/// The HELP line: the seed's list, then what was added since.
const HELP: &str = "Commands: SET/GET/DEL/KEYS, ADD_SERVER/REMOVE_SERVER/SERVERS, ROUTE, PING, QUIT; \
also MGET/MSET/EXISTS/EXPIRE/PEXPIRE/PERSIST/TTL/PTTL/INCR/DECR/INCRBY/DECRBY/SCAN/DBSIZE/FLUSHALL/ECHO/INFO";

/// Runs a command that changes the ring (or ends the connection); argument count checked.
pub fn run_barrier(
    proxy: &Proxy,
    spec: &CommandSpec,
    request: &Request,
    out: &mut BytesMut,
) -> Flow {
    let args = &request.args;
    let addr = String::from_utf8_lossy(args.get(1).map_or(&[][..], |a| &a[..])).into_owned();
    let outcome = match spec.name {
        "QUIT" => {
            write::simple(out, b"BYE");
            return Flow::Quit;
        }
        "ADD_SERVER" => {
            let weight = match args.get(2).map(|w| {
                std::str::from_utf8(w)
                    .ok()
                    .and_then(|w| w.parse::<u32>().ok())
            }) {
                None => Ok(1),
                Some(Some(w)) if w >= 1 => Ok(w),
                Some(_) => Err("ERR weight must be a positive integer".to_string()),
            };
            weight
                .and_then(|weight| proxy.cluster.add(&addr, weight).map_err(|e| e.reply_text()))
                .map(|()| {
                    tracing::info!("[proxy] Added server: {addr}");
                    format!("OK added {addr}")
                })
        }
        _ => proxy
            .cluster
            .remove(&addr)
            .map_err(|e| e.reply_text())
            .map(|()| {
                tracing::info!("[proxy] Removed server: {addr}");
                format!("OK removed {addr}")
            }),
    };
    match outcome {
        Ok(text) => write::simple(out, text.as_bytes()),
        Err(text) => write::error(out, text.as_bytes()),
    }
    Flow::Continue
}

/// Answers a command that needs no server; argument count checked.
pub fn run(proxy: &Proxy, topology: &Topology, request: &Request, out: &mut BytesMut) {
    let args = &request.args;
    let name = resp::command::lookup(request.name()).map_or("", |spec| spec.name);
    match name {
        "HELP" => write::simple(out, HELP.as_bytes()),
        "SERVERS" => {
            write::array_header(out, topology.ring.len());
            topology
                .ring
                .servers()
                .for_each(|server| write::simple(out, server.as_bytes()));
        }
        "ROUTE" => match topology.ring.get(&args[1]) {
            Some(owner) => write::simple(out, owner.as_bytes()),
            None => write::error(out, NO_SERVERS.as_bytes()),
        },
        "INFO" => write::bulk(out, info(proxy, topology).as_bytes()),
        // SCAN past the last server, or on an empty ring: the scan is over.
        "SCAN" => {
            write::array_header(out, 2);
            write::bulk(out, b"0");
            write::array_header(out, 0);
        }
        _ => {
            if let Err(text) = common::run(name, args, "proxy", out) {
                write::error(out, text.as_bytes());
            }
        }
    }
}

fn info(proxy: &Proxy, topology: &Topology) -> String {
    let mut text = format!(
        "# Server\r\nredis_version:{}\r\nserver_name:proxy\r\nchd_version:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\n\
         uptime_in_seconds:{}\r\n\r\n# Clients\r\nconnected_clients:{}\r\n\r\n# Stats\r\ntotal_connections_received:{}\r\n\
         total_commands_processed:{}\r\n\r\n# Ring\r\nvnodes:{}\r\nservers:{}\r\n",
        common::REDIS_VERSION,
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        proxy.port,
        proxy.started.elapsed().as_secs(),
        proxy.stats.clients(),
        proxy.stats.connections(),
        proxy.stats.commands(),
        topology.ring.vnodes(),
        topology.ring.len(),
    );
    for (i, id) in topology.ring.server_ids().enumerate() {
        let backend = topology.backend(id);
        let stats = &backend.stats;
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        text.push_str(&format!(
            "server{i}:addr={},weight={},points={},share={:.4},connections={},requests={},errors={}\r\n",
            backend.addr(),
            topology.ring.weight(id),
            topology.ring.point_count(id),
            topology.ring.share(id),
            backend.open_connections(),
            load(&stats.requests),
            load(&stats.errors),
        ));
    }
    text
}
