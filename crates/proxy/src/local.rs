//! Commands the proxy answers itself without changing anything: SERVERS, ROUTE, MIGRATION,
//! HELP, INFO, and the connection commands shared with the server.

use bytes::{Bytes, BytesMut};
use resp::command::{Command, Route};
use resp::{write, Request};
use service::common::{self, ClientState};

use crate::cluster::Topology;
use crate::owners::NO_SERVERS;
use crate::Proxy;

/// The HELP line: the seed's list, then what was added since.
const HELP: &str = "Commands: SET/GET/DEL/KEYS, ADD_SERVER/REMOVE_SERVER/SERVERS, ROUTE, PING, QUIT; \
also ADD_SERVER host:port [weight] [MIGRATE] [FORCE], REMOVE_SERVER host:port [MIGRATE], SET_DISTRIBUTION name [hash] [MIGRATE], REBALANCE, MIGRATION, \
SERVERS DETAIL, ROUTE key DETAIL, PREVIEW ADD host:port [weight], PREVIEW REMOVE host:port, \
MGET/MSET/EXISTS/EXPIRE/PEXPIRE/PERSIST/TTL/PTTL/INCR/DECR/INCRBY/DECRBY/SCAN/DBSIZE/FLUSHALL/ECHO/INFO";

/// Whether the proxy serves `command` (what `COMMAND` lists): everything it does not refuse.
fn serves(command: &Command) -> bool {
    !matches!(command.route, Route::Refused(_))
}

/// Answers a command that needs no server; argument count checked.
pub fn run(
    proxy: &Proxy,
    client: &mut ClientState,
    topology: &Topology,
    command: &Command,
    request: &Request,
    out: &mut BytesMut,
) {
    let args = &request.args;
    match command.name {
        "help" => write::simple(out, HELP.as_bytes()),
        "servers" if args.len() > 1 => match detail_flag(&args[1]) {
            true => servers_detail(topology, out),
            false => write::error(out, b"ERR usage: SERVERS [DETAIL]"),
        },
        "servers" => {
            write::array_header(out, topology.ring.len());
            topology.ring.servers().for_each(|server| write::simple(out, server.as_bytes()));
        }
        "route" => match (topology.primary(&args[1]), args.get(2)) {
            (None, _) => write::error(out, NO_SERVERS.as_bytes()),
            (Some(owner), None) => write::simple(out, topology.ring.server(owner).as_bytes()),
            (Some(_), Some(flag)) if detail_flag(flag) => route_detail(topology, &args[1], out),
            (Some(_), Some(_)) => write::error(out, b"ERR usage: ROUTE key [DETAIL]"),
        },
        "migration" => write::bulk(out, proxy.migrator.report().as_bytes()),
        // The proxy's own configuration: the nutcracker.yml it was started from.
        "config|rewrite" => match &proxy.config_file {
            Some(file) => match file.rewrite(topology) {
                Ok(_) => write::simple(out, b"OK"),
                Err(error) => {
                    write::error(out, format!("ERR rewriting {}: {error}", file.path.display()).as_bytes())
                }
            },
            None => write::error(
                out,
                b"ERR the proxy was not started from a configuration file (-c nutcracker.yml); --state-file keeps its ring",
            ),
        },
        "info" => write::verbatim(out, client.protocol, info(proxy, topology, &args[1..]).as_bytes()),
        // SCAN past the last server, or on an empty ring: the scan is over.
        "scan" => {
            write::array_header(out, 2);
            write::bulk(out, b"0");
            write::array_header(out, 0);
        }
        "reset" => {
            *client = ClientState::new();
            write::simple(out, b"RESET");
        }
        _ => {
            if let Err(text) = common::run(command, args, client, serves, out) {
                let text = if text == "ERR unknown command" {
                    format!("ERR {} is not supported through the proxy", command.display)
                } else {
                    text
                };
                write::error(out, text.as_bytes());
            }
        }
    }
}

fn detail_flag(arg: &[u8]) -> bool {
    arg.eq_ignore_ascii_case(b"DETAIL")
}

/// One line per server: state, weight, virtual nodes, share of the ring, pooled
/// connections, requests and errors.
fn servers_detail(topology: &Topology, out: &mut BytesMut) {
    let width = topology.backends().chain(&topology.draining).map(|b| b.addr().len()).max().unwrap_or(0);
    let mut lines: Vec<String> = topology
        .ring
        .server_ids()
        .map(|id| {
            let backend = topology.backend(id);
            format!(
                "{:width$}  state={:<8} weight={:<3} vnodes={:<5} share={:>5.1}%  {}",
                backend.addr(),
                backend.health.state(),
                topology.ring.weight(id),
                topology.ring.point_count(id),
                topology.ring.share(id) * 100.0,
                counters(backend),
            )
        })
        .collect();
    lines.extend(topology.draining.iter().map(|backend| {
        format!(
            "{:width$}  state={:<8} weight=-   vnodes=0     share=  0.0%  {}",
            backend.addr(),
            "draining",
            counters(backend)
        )
    }));
    write::array_header(out, lines.len());
    lines.iter().for_each(|line| write::simple(out, line.as_bytes()));
}

fn counters(backend: &crate::backend::Backend) -> String {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    format!(
        "connections={} requests={} errors={}",
        backend.open_connections(),
        load(&backend.stats.requests),
        load(&backend.stats.errors)
    )
}

/// The key's hash, the point it landed on, its owner and its replicas.
fn route_detail(topology: &Topology, key: &[u8], out: &mut BytesMut) {
    let Some(route) = topology.ring.route(key) else {
        write::error(out, NO_SERVERS.as_bytes());
        return;
    };
    let replicas: Vec<&str> = topology.replicas(key).iter().map(|id| topology.ring.server(*id)).collect();
    let owner = topology.ring.server(route.server);
    let serving = topology.primary(key).map_or(owner, |id| topology.ring.server(id));
    let lines = [
        format!("key {}", String::from_utf8_lossy(key)),
        format!(
            "hash {} (0x{:08x}, {}, distribution {})",
            route.hash,
            route.hash,
            topology.ring.hash_name(),
            topology.ring.distribution()
        ),
        format!("point {} (0x{:08x}), the first point at or after the hash", route.point, route.point),
        format!("owner {owner}"),
        format!("serving {serving}"),
        format!("replicas {}", replicas.join(",")),
    ];
    write::array_header(out, lines.len());
    lines.iter().for_each(|line| write::text(out, line.as_bytes()));
}

/// The proxy's own INFO sections that `wanted` (INFO's arguments) asks for; the servers'
/// `# Keyspace` is added by the caller when asked for (see [`crate::plan::plan_info`]).
pub fn info(proxy: &Proxy, topology: &Topology, wanted: &[Bytes]) -> String {
    // Clients waiting in a blocking command, each holding a permit (Redis's blocked_clients).
    let blocked = proxy.max_blocking_connections.saturating_sub(proxy.blocking.available_permits());
    let mut sections = vec![
        ("server", common::info_server_section("proxy", proxy.port, proxy.started)),
        (
            "clients",
            format!("# Clients\r\nconnected_clients:{}\r\nblocked_clients:{blocked}\r\n", proxy.stats.clients()),
        ),
        (
            "stats",
            format!(
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n",
                proxy.stats.connections(),
                proxy.stats.commands(),
            ),
        ),
        ("ring", ring_section(topology)),
        ("handoff", format!("# Handoff\r\nhinted_keys:{}\r\n", proxy.cluster.hints.len())),
        ("migration", format!("# Migration\r\n{}", proxy.migrator.report())),
    ];
    if let Some(shared) = &proxy.shared {
        let pool_down: Vec<&str> = topology.backends().filter(|b| b.health.is_pool_down()).map(|b| b.addr()).collect();
        sections.push((
            "topology",
            format!(
                "# Topology\r\n{}topology_moving:{}\r\ntopology_pool_down:{}\r\n",
                shared.report(),
                u8::from(proxy.migrator.is_moving()),
                pool_down.join(",")
            ),
        ));
    }
    common::info_text(sections, wanted)
}

/// INFO's `# Ring`: the ring's settings and a line per server.
fn ring_section(topology: &Topology) -> String {
    let mut text = format!(
        "# Ring\r\nvnodes:{}\r\nreplication_factor:{}\r\nservers:{}\r\n",
        topology.ring.vnodes(),
        topology.replication,
        topology.ring.len(),
    );
    for (i, id) in topology.ring.server_ids().enumerate() {
        let backend = topology.backend(id);
        let stats = &backend.stats;
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        text.push_str(&format!(
            "server{i}:addr={},state={},weight={},points={},share={:.4},connections={},requests={},errors={}\r\n",
            backend.addr(),
            backend.health.state(),
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
