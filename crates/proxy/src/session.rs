//! One client's pipelined batch: plan every request, send each server its share in one job,
//! then write the replies in request order.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use resp::command::{self, CommandSpec, Keys};
use resp::{write, Request};

use crate::cluster::Topology;
use crate::local::{self, Flow};
use crate::membership;
use crate::plan::{self, Jobs, Step};
use crate::{combine, Proxy};

/// Commands that change the ring (or end the connection): requests before them are
/// answered first, requests after them see the new ring.
const BARRIERS: &[&str] = &["ADD_SERVER", "REMOVE_SERVER", "REBALANCE", "QUIT"];

/// Commands that every server answers.
const BROADCAST: &[&str] = &["KEYS", "DBSIZE", "FLUSHALL", "FLUSHDB"];

/// Commands of the cache server that make no sense through the proxy.
const NOT_THROUGH_PROXY: &[&str] = &["WHOAMI"];

/// Redis commands a sharding proxy cannot serve, and why: they need one server to see
/// several keys or the whole connection (as in twemproxy, which refuses them too).
const REFUSED: &[(&str, &str)] = &[
    ("MULTI", "transactions would span servers"),
    ("EXEC", "transactions would span servers"),
    ("DISCARD", "transactions would span servers"),
    ("WATCH", "transactions would span servers"),
    ("UNWATCH", "transactions would span servers"),
    ("EVAL", "scripts would span servers"),
    ("EVALSHA", "scripts would span servers"),
    ("SCRIPT", "scripts would span servers"),
    ("SUBSCRIBE", "pub/sub needs a connection of its own to one server"),
    ("PSUBSCRIBE", "pub/sub needs a connection of its own to one server"),
    ("PUBLISH", "pub/sub needs a connection of its own to one server"),
    ("MONITOR", "it watches one server"),
    ("BLPOP", "blocking commands would hold a shared server connection"),
    ("BRPOP", "blocking commands would hold a shared server connection"),
    ("RENAME", "the two keys may live on different servers"),
    ("MOVE", "there is one database"),
    ("SWAPDB", "there is one database"),
];

/// The error for a command the proxy does not know: names the command when Redis has it but
/// a proxy cannot serve it, else the seed's `unknown command (type HELP)`.
fn unknown(name: &[u8]) -> String {
    match REFUSED.iter().find(|(refused, _)| refused.as_bytes().eq_ignore_ascii_case(name)) {
        Some((refused, why)) => format!("ERR {refused} is not supported through the proxy: {why}"),
        None => "ERR unknown command (type HELP)".into(),
    }
}

/// Answers a batch of requests into `out`, in order.
///
/// Every decision for a request (gated or not, which servers) and its execution use one
/// snapshot of the ring, reloaded only after a ring command: a migration waits for requests
/// planned on the snapshot before its ring change, so none of them can race a key's move.
pub async fn run_batch(proxy: &Arc<Proxy>, batch: &[Request], out: &mut BytesMut) -> Flow {
    let mut topology = proxy.cluster.snapshot();
    let mut start = 0;
    for (i, request) in batch.iter().enumerate() {
        // Most requests are neither ring commands nor run during a migration: skip the
        // table lookup for them here (planning looks the command up once).
        let initial = request.name().first().map(u8::to_ascii_uppercase);
        let may_be_barrier = BARRIERS.iter().any(|b| Some(b.as_bytes()[0]) == initial);
        if !may_be_barrier && !proxy.migrator.is_running() {
            continue;
        }
        let spec = command::lookup(request.name()).filter(|spec| spec.accepts(request.args.len()));
        if let Some(spec) = spec.filter(|spec| BARRIERS.contains(&spec.name)) {
            run_segment(proxy, &topology, &batch[start..i], out).await;
            if membership::run(proxy, spec, request, out) == Flow::Quit {
                return Flow::Quit;
            }
            topology = proxy.cluster.snapshot();
            start = i + 1;
        } else if let Some(keys) = spec.and_then(|spec| stranded_keys(proxy, &topology, spec, request)) {
            run_segment(proxy, &topology, &batch[start..i], out).await;
            run_gated(proxy, &topology, request, keys, out).await;
            start = i + 1;
        }
    }
    run_segment(proxy, &topology, &batch[start..], out).await;
    Flow::Continue
}

/// While a migration runs: the keys of `request` that a ring change may have left on
/// another server. `None` (the fast path) when there are none.
fn stranded_keys(proxy: &Proxy, topology: &Topology, spec: &CommandSpec, request: &Request) -> Option<Vec<Bytes>> {
    if spec.keys == Keys::None || !proxy.migrator.is_running() {
        return None;
    }
    if !topology.has_history() {
        return None;
    }
    let keys: Vec<Bytes> = plan::key_positions(spec, request.args.len())
        .into_iter()
        .map(|i| request.args[i].clone())
        .filter(|key| !topology.stranded_sources(key, &topology.replicas(key)).is_empty())
        .collect();
    (!keys.is_empty()).then_some(keys)
}

/// Runs a command whose keys may still be on an old owner: under the keys' migration locks,
/// move them first, then run the command where they now belong.
async fn run_gated(proxy: &Proxy, topology: &Topology, request: &Request, keys: Vec<Bytes>, out: &mut BytesMut) {
    let _locks = proxy.migrator.lock(keys.iter().map(|k| &k[..])).await;
    if let Err(error) = proxy.migrator.move_stranded(topology, &keys).await {
        write::error(out, format!("ERR moving the key to its new server failed: {error}").as_bytes());
        return;
    }
    run_segment(proxy, topology, std::slice::from_ref(request), out).await;
}

/// Requests with no ring change among them: one snapshot, one job per server per round.
async fn run_segment(proxy: &Proxy, topology: &Topology, requests: &[Request], out: &mut BytesMut) {
    if requests.is_empty() {
        return;
    }
    let mut jobs = Jobs::default();
    let mut steps: Vec<Step> = requests.iter().map(|request| plan(proxy, request, topology, &mut jobs)).collect();
    let mut rounds = vec![jobs.dispatch(topology).await];
    // Replicated reads that missed ask the next replica, round after round.
    loop {
        let mut next = Jobs::default();
        for step in &mut steps {
            if let Step::Replicated(replicated) = step {
                replicated.advance(&rounds, &mut next);
            }
        }
        if next.is_empty() {
            break;
        }
        rounds.push(next.dispatch(topology).await);
    }
    let results = &rounds[0];
    for (request, step) in requests.iter().zip(&steps) {
        match step {
            Step::Local => local::run(proxy, topology, request, out),
            Step::Error(text) => write::error(out, text.as_bytes()),
            Step::Forward(part) => combine::forward(results, *part, out),
            Step::Combine(how, parts) => combine::combine(how, parts, results, out),
            Step::Replicated(replicated) => replicated.write(out),
        }
    }
}

fn plan(proxy: &Proxy, request: &Request, topology: &Topology, jobs: &mut Jobs) -> Step {
    proxy.stats.record_command();
    let Some(spec) = command::lookup(request.name()) else {
        return Step::Error(unknown(request.name()));
    };
    if !spec.accepts(request.args.len()) {
        return Step::Error(spec.usage_error());
    }
    match spec.name {
        name if NOT_THROUGH_PROXY.contains(&name) => {
            Step::Error(format!("ERR {name} is not supported through the proxy: ask a cache server directly"))
        }
        name if BROADCAST.contains(&name) => plan::plan_broadcast(spec, request, topology, jobs),
        "SCAN" => plan::plan_scan(request, topology, jobs),
        _ if spec.keys != Keys::None => plan::plan_keyed(spec, request, topology, jobs),
        _ => Step::Local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_a_proxy_cannot_serve_are_named() {
        assert_eq!(unknown(b"multi"), "ERR MULTI is not supported through the proxy: transactions would span servers");
        assert_eq!(unknown(b"FROBNICATE"), "ERR unknown command (type HELP)");
    }
}
