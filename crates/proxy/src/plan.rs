//! Planning a pipelined batch: each request becomes a [`Step`]; requests bound for servers are
//! gathered into one [`Jobs`] entry per server, so a batch costs one write per server.

use bytes::Bytes;
use resp::command::{Command, FindKeys, Merge};
use resp::Request;
use ring::ServerId;

use crate::cluster::Topology;
use crate::jobs::{Jobs, Part};
use crate::owners::{any_server, single_owner, NO_SERVERS};
use crate::replica::Replicated;

/// How the replies of several parts become one reply.
#[derive(Debug)]
pub enum Combine {
    /// MGET split by owner: for each requested key, (part, element of that part's array).
    Mget(Vec<(usize, usize)>),
    /// DEL, EXISTS, DBSIZE: the sum of the integers.
    Sum,
    /// MSET, FLUSHALL: `+OK` when every server said OK.
    AllOk,
    /// SCRIPT LOAD, FUNCTION LOAD: every server answered the same; that answer.
    Same,
    /// SCRIPT EXISTS: 1 where every server says 1.
    AllOnes,
    /// RANDOMKEY: the first answer that is not null.
    FirstNonNull,
    /// PUBSUB CHANNELS: the union of the arrays.
    Union,
    /// PUBSUB NUMSUB: (channel, count) pairs summed by channel.
    SumPairs,
    /// KEYS: every server's keys; as the seed lists them (`+key`) for the seed's `KEYS`,
    /// as bulk strings for Redis's `KEYS pattern`.
    Keys {
        /// The seed's form: no pattern.
        seed_style: bool,
        /// Replicas hold copies: list each key once.
        distinct: bool,
    },
    /// DBSIZE under replication: the number of distinct keys over all servers' KEYS.
    CountDistinct,
    /// INFO: the proxy's own sections, then `# Keyspace` with every server's keys summed.
    Info(String),
    /// SCAN on the `server`-th of `servers` servers: the cursor gets the server index added.
    Scan {
        /// Index of the scanned server in the ring's sorted list.
        server: usize,
        /// How many servers there are.
        servers: usize,
    },
}

/// What to write for one request once the batch's replies are in.
///
/// The rare, large payloads are boxed: a batch keeps one step per request, and at 32 bytes
/// a pipeline's list stays within glibc's per-thread cache (at 16 requests it did not, and
/// allocating it was 3% of the proxy's instructions at pipeline 16, by callgrind).
#[derive(Debug)]
pub enum Step {
    /// Answered by the proxy itself when the replies are written (PING, SERVERS, ...).
    Local(&'static Command),
    /// A status reply decided while planning (`+QUEUED`, `+OK` to MULTI).
    Status(&'static str),
    /// An error found while planning.
    Error(String),
    /// A reply decided while planning (PING in subscribed mode).
    Frame(Box<resp::Frame>),
    /// One server's reply, passed through unchanged.
    Forward(Part),
    /// Several replies put back together: how, and from which parts.
    Combine(Box<(Combine, Vec<Part>)>),
    /// A keyed command on the replicas of its keys, over one or more rounds.
    Replicated(Box<Replicated>),
}

/// SCAN cursors carry the server index in their low bits.
pub const SCAN_SERVER_BITS: u32 = 10;

/// Plans a keyed command on the replicas of its keys (`--replication-factor` above 1).
fn plan_replicated(command: &Command, request: &Request, topology: &Topology, jobs: &mut Jobs) -> Step {
    match Replicated::plan(command, request, topology, jobs) {
        Ok(replicated) => Step::Replicated(Box::new(replicated)),
        Err(text) => Step::Error(text),
    }
}

/// Plans a command sent whole to the owner of its keys.
pub fn plan_keyed(command: &'static Command, request: &Request, topology: &Topology, jobs: &mut Jobs) -> Step {
    if topology.replication > 1 {
        return plan_replicated(command, request, topology, jobs);
    }
    match single_owner(topology, command, request) {
        Ok(owner) => {
            log_route(command, request.args.get(1), topology, owner);
            Step::Forward(jobs.push(owner, |out| request.encode(out)))
        }
        Err(text) => Step::Error(text),
    }
}

/// Plans a multi-key command that Redis itself does not run atomically (MGET, MSET, DEL,
/// UNLINK, EXISTS, TOUCH): one sub-command per owner, with that owner's keys in order.
pub fn plan_split(
    command: &'static Command,
    merge: Merge,
    request: &Request,
    topology: &Topology,
    jobs: &mut Jobs,
) -> Step {
    if topology.replication > 1 {
        return plan_replicated(command, request, topology, jobs);
    }
    let args = &request.args;
    if !(args.len() - 1).is_multiple_of(key_width(command)) {
        return Step::Error(command.arity_error(request.raw.is_none()));
    }
    let positions = match command.key_positions(args) {
        Ok(positions) if !positions.is_empty() => positions,
        // Arguments the server will refuse: let one server say why.
        _ => return plan_any(request, topology, jobs),
    };
    let owners: Vec<ServerId> = match positions.iter().map(|&i| topology.primary(&args[i])).collect() {
        Some(owners) => owners,
        None => return Step::Error(NO_SERVERS.into()),
    };
    if owners.iter().all(|o| *o == owners[0]) {
        log_route(command, args.get(1), topology, owners[0]);
        return Step::Forward(jobs.push(owners[0], |out| request.encode(out)));
    }
    let mut groups: Vec<(ServerId, Vec<usize>)> = Vec::new();
    for (&position, &owner) in positions.iter().zip(&owners) {
        match groups.iter_mut().find(|(o, _)| *o == owner) {
            Some((_, group)) => group.push(position),
            None => groups.push((owner, vec![position])),
        }
    }
    let width = key_width(command);
    let parts: Vec<Part> = groups
        .iter()
        .map(|(owner, group)| {
            log_route(command, args.get(group[0]), topology, *owner);
            let mut sub: Vec<&[u8]> = vec![&args[0]];
            for &p in group {
                sub.extend(args[p..(p + width).min(args.len())].iter().map(|a| &a[..]));
            }
            jobs.push(*owner, |out| resp::write::command(out, &sub))
        })
        .collect();
    let combine = match merge {
        Merge::Values => {
            let mut slots = vec![(0, 0); positions.len()];
            let mut order: Vec<usize> = positions.clone();
            order.sort_unstable();
            for (part, (_, group)) in groups.iter().enumerate() {
                for (element, p) in group.iter().enumerate() {
                    if let Ok(slot) = order.binary_search(p) {
                        slots[slot] = (part, element);
                    }
                }
            }
            Combine::Mget(slots)
        }
        Merge::AllOk => Combine::AllOk,
        _ => Combine::Sum,
    };
    Step::Combine(Box::new((combine, parts)))
}

/// Arguments from one key to the next, each key's own arguments included: 2 for MSET's
/// key-value pairs.
fn key_width(command: &Command) -> usize {
    match command.key_specs.first().map(|spec| spec.find) {
        Some(FindKeys::Range { step, .. }) if step > 1 => step as usize,
        _ => 1,
    }
}

/// Plans a command any one server answers.
pub fn plan_any(request: &Request, topology: &Topology, jobs: &mut Jobs) -> Step {
    match any_server(topology) {
        Ok(server) => Step::Forward(jobs.push(server, |out| request.encode(out))),
        Err(text) => Step::Error(text),
    }
}

/// Plans a command every server answers, its replies merged as `merge` says.
pub fn plan_fan_out(command: &Command, merge: Merge, request: &Request, topology: &Topology, jobs: &mut Jobs) -> Step {
    let replicated = topology.replication > 1;
    let star = || Request::new(vec![request.args[0].clone(), Bytes::from_static(b"*")]);
    let (combine, request) = match merge {
        // The seed's bare KEYS: redis-server needs a pattern.
        Merge::Keys if request.args.len() == 1 => (Combine::Keys { seed_style: true, distinct: replicated }, star()),
        Merge::Keys => (Combine::Keys { seed_style: false, distinct: replicated }, request.clone()),
        Merge::Sum if replicated && command.name == "dbsize" => {
            (Combine::CountDistinct, Request::new(vec![Bytes::from_static(b"KEYS"), Bytes::from_static(b"*")]))
        }
        Merge::Sum => (Combine::Sum, request.clone()),
        Merge::AllOk => (Combine::AllOk, request.clone()),
        Merge::Same => (Combine::Same, request.clone()),
        Merge::AllOnes => (Combine::AllOnes, request.clone()),
        Merge::FirstNonNull => (Combine::FirstNonNull, request.clone()),
        Merge::Union => (Combine::Union, request.clone()),
        Merge::SumPairs => (Combine::SumPairs, request.clone()),
        Merge::Values => (Combine::Sum, request.clone()),
    };
    // Servers marked down are left out: their keys are served by the next servers.
    let parts: Vec<Part> = topology.up_servers().map(|id| jobs.push(id, |out| request.encode(out))).collect();
    if parts.is_empty() && matches!(combine, Combine::Same | Combine::FirstNonNull) {
        return Step::Error(NO_SERVERS.into());
    }
    Step::Combine(Box::new((combine, parts)))
}

/// Plans INFO: the proxy's own text (`own`), and `INFO keyspace` from every server that is up
/// to sum their keys.
pub fn plan_info(own: String, topology: &Topology, jobs: &mut Jobs) -> Step {
    let request = Request::new(vec![Bytes::from_static(b"INFO"), Bytes::from_static(b"keyspace")]);
    let parts = topology.up_servers().map(|id| jobs.push(id, |out| request.encode(out))).collect();
    Step::Combine(Box::new((Combine::Info(own), parts)))
}

/// Plans SCAN: the proxy's cursor is the server's cursor shifted left, plus the index of the
/// server in the ring's sorted list; servers are scanned one after the other.
pub fn plan_scan(command: &'static Command, request: &Request, topology: &Topology, jobs: &mut Jobs) -> Step {
    let args = &request.args;
    let Some(cursor) = std::str::from_utf8(&args[1]).ok().and_then(|c| c.parse::<u64>().ok()) else {
        return Step::Error("ERR invalid cursor".into());
    };
    let mut server = (cursor & ((1 << SCAN_SERVER_BITS) - 1)) as usize;
    let mut backend_cursor = (cursor >> SCAN_SERVER_BITS).to_string();
    let servers = topology.ring.len();
    // A server marked down is skipped (its keys are served elsewhere meanwhile); the cursor
    // walks on to the next server from its start.
    let id = loop {
        let Some(id) = topology.ring.server_ids().nth(server) else {
            // Past the last server (or none at all): the scan is over.
            return Step::Local(command);
        };
        if topology.backend(id).health.is_up() {
            break id;
        }
        server += 1;
        backend_cursor = "0".into();
    };
    let mut sub: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
    sub[1] = backend_cursor.as_bytes();
    let part = jobs.push(id, |out| resp::write::command(out, &sub));
    Step::Combine(Box::new((Combine::Scan { server, servers }, vec![part])))
}

/// The seed's routing line: `[proxy] SET key -> routing to host:port`.
fn log_route(command: &Command, key: Option<&Bytes>, topology: &Topology, owner: ServerId) {
    if !topology.log_requests {
        return;
    }
    tracing::info!(
        "[proxy] {} {} -> routing to {}",
        command.display,
        service::escape::printable(key.map(|k| &k[..]).unwrap_or_default()),
        topology.ring.server(owner)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_fits_in_32_bytes() {
        // A batch allocates one step per request; see [`Step`].
        assert!(std::mem::size_of::<Step>() <= 32, "{} bytes", std::mem::size_of::<Step>());
    }
}
