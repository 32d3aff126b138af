//! One client's pipelined batch: plan every request, send each server its share in one job,
//! then write the replies in request order.

use bytes::BytesMut;
use resp::command::{self, Keys};
use resp::{write, Request};

use crate::local::{self, Flow};
use crate::plan::{self, Jobs, Step};
use crate::{combine, Proxy};

/// Commands that change the ring: requests before them are answered first, requests after
/// them see the new ring.
const BARRIERS: &[&str] = &["ADD_SERVER", "REMOVE_SERVER", "QUIT"];

/// Commands that every server answers.
const BROADCAST: &[&str] = &["KEYS", "DBSIZE", "FLUSHALL", "FLUSHDB"];

/// Commands of the cache server that make no sense through the proxy.
const NOT_THROUGH_PROXY: &[&str] = &["WHOAMI"];

/// Answers a batch of requests into `out`, in order.
pub async fn run_batch(proxy: &Proxy, batch: &[Request], out: &mut BytesMut) -> Flow {
    let mut start = 0;
    for (i, request) in batch.iter().enumerate() {
        let barrier = command::lookup(request.name())
            .filter(|spec| BARRIERS.contains(&spec.name) && spec.accepts(request.args.len()));
        if let Some(spec) = barrier {
            run_segment(proxy, &batch[start..i], out).await;
            if local::run_barrier(proxy, spec, request, out) == Flow::Quit {
                return Flow::Quit;
            }
            start = i + 1;
        }
    }
    run_segment(proxy, &batch[start..], out).await;
    Flow::Continue
}

/// Requests with no ring change among them: one snapshot, one job per server.
async fn run_segment(proxy: &Proxy, requests: &[Request], out: &mut BytesMut) {
    if requests.is_empty() {
        return;
    }
    let topology = proxy.cluster.snapshot();
    let mut jobs = Jobs::default();
    let steps: Vec<Step> = requests
        .iter()
        .map(|request| plan(proxy, request, &topology, &mut jobs))
        .collect();
    let results = jobs.dispatch(&topology).await;
    for (request, step) in requests.iter().zip(&steps) {
        match step {
            Step::Local => local::run(proxy, &topology, request, out),
            Step::Error(text) => write::error(out, text.as_bytes()),
            Step::Forward(part) => combine::forward(&results, *part, out),
            Step::Combine(how, parts) => combine::combine(how, parts, &results, out),
        }
    }
}

fn plan(
    proxy: &Proxy,
    request: &Request,
    topology: &crate::cluster::Topology,
    jobs: &mut Jobs,
) -> Step {
    proxy.stats.record_command();
    let Some(spec) = command::lookup(request.name()) else {
        return Step::Error("ERR unknown command (type HELP)".into());
    };
    if !spec.accepts(request.args.len()) {
        return Step::Error(spec.usage_error());
    }
    match spec.name {
        name if NOT_THROUGH_PROXY.contains(&name) => Step::Error(format!(
            "ERR {name} is not supported through the proxy: ask a cache server directly"
        )),
        name if BROADCAST.contains(&name) => plan::plan_broadcast(spec, request, topology, jobs),
        "SCAN" => plan::plan_scan(request, topology, jobs),
        _ if spec.keys != Keys::None => plan::plan_keyed(spec, request, topology, jobs),
        _ => Step::Local,
    }
}
