//! Planning a pipelined batch: each request becomes a [`Step`]; requests bound for servers are
//! gathered into one [`Jobs`] entry per server, so a batch costs one write per server.

use bytes::{Bytes, BytesMut};
use resp::command::{CommandSpec, Keys};
use resp::Request;
use ring::ServerId;

use crate::backend::BackendError;
use crate::cluster::Topology;
use crate::replica::{Replicated, Round};

/// Where one reply sits among the jobs of a batch: job `job`, reply `index` of it.
#[derive(Debug, Clone, Copy)]
pub struct Part {
    /// The job (one per server) in [`Jobs`].
    pub job: usize,
    /// The reply's position within the job.
    pub index: usize,
}

/// How the replies of several parts become one reply.
#[derive(Debug)]
pub enum Combine {
    /// MGET split by owner: for each requested key, (part, element of that part's array).
    Mget(Vec<(usize, usize)>),
    /// DEL, EXISTS, DBSIZE: the sum of the integers.
    Sum,
    /// MSET, FLUSHALL: `+OK` when every server said OK.
    AllOk,
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
    /// SCAN on the `server`-th of `servers` servers: the cursor gets the server index added.
    Scan {
        /// Index of the scanned server in the ring's sorted list.
        server: usize,
        /// How many servers there are.
        servers: usize,
    },
}

/// What to write for one request once the batch's replies are in.
#[derive(Debug)]
pub enum Step {
    /// Answered by the proxy itself when the replies are written (PING, SERVERS, ...).
    Local,
    /// An error found while planning.
    Error(String),
    /// One server's reply, passed through unchanged.
    Forward(Part),
    /// Several replies put back together.
    Combine(Combine, Vec<Part>),
    /// A keyed command on the replicas of its keys, over one or more rounds.
    Replicated(Replicated),
}

/// The requests of one batch, encoded per server.
#[derive(Default)]
pub struct Jobs {
    jobs: Vec<(ServerId, BytesMut, usize)>,
}

impl Jobs {
    /// Appends a request for `server`, encoded by `encode`; where its reply will be.
    pub fn push(&mut self, server: ServerId, encode: impl FnOnce(&mut BytesMut)) -> Part {
        let job = match self.jobs.iter().position(|(s, _, _)| *s == server) {
            Some(job) => job,
            None => {
                self.jobs.push((server, BytesMut::new(), 0));
                self.jobs.len() - 1
            }
        };
        let (_, bytes, count) = &mut self.jobs[job];
        encode(bytes);
        *count += 1;
        Part { job, index: *count - 1 }
    }

    /// Whether no request was added.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Sends every job to its server, then waits for all replies (they are all in flight
    /// at once). The result is indexed like [`Part::job`].
    pub async fn dispatch(self, topology: &Topology) -> Round {
        let mut waiting = Vec::with_capacity(self.jobs.len());
        for (server, bytes, count) in self.jobs {
            let backend = topology.backend(server);
            waiting.push((backend, backend.send(bytes.freeze(), count).await));
        }
        let mut results = Vec::with_capacity(waiting.len());
        for (backend, receiver) in waiting {
            let lost = || BackendError::Lost { addr: backend.addr().to_string() };
            results.push(receiver.await.unwrap_or_else(|_| Err(lost())));
        }
        results
    }
}

/// SCAN cursors carry the server index in their low bits.
pub const SCAN_SERVER_BITS: u32 = 10;

/// Plans a request whose keys decide where it goes. `spec` has accepted the argument count.
pub fn plan_keyed(spec: &CommandSpec, request: &Request, topology: &Topology, jobs: &mut Jobs) -> Step {
    if topology.replication > 1 {
        return match Replicated::plan(spec, request, topology, jobs) {
            Ok(replicated) => Step::Replicated(replicated),
            Err(text) => Step::Error(text),
        };
    }
    let args = &request.args;
    if spec.keys == Keys::First {
        // The common case, without allocating.
        let Some(owner) = topology.primary(&args[1]) else { return Step::Error(NO_SERVERS.into()) };
        log_route(spec, &args[1], topology, owner);
        return Step::Forward(jobs.push(owner, |out| request.encode(out)));
    }
    let key_positions = key_positions(spec, args.len());
    let owners: Vec<ServerId> = match key_positions.iter().map(|&i| topology.primary(&args[i])).collect() {
        Some(owners) => owners,
        None => return Step::Error(NO_SERVERS.into()),
    };
    if owners.iter().all(|o| *o == owners[0]) {
        log_route(spec, &args[1], topology, owners[0]);
        return Step::Forward(jobs.push(owners[0], |out| request.encode(out)));
    }
    // Keys on several servers: one sub-request per owner, with that owner's keys in order.
    let mut groups: Vec<(ServerId, Vec<usize>)> = Vec::new();
    for (&position, &owner) in key_positions.iter().zip(&owners) {
        match groups.iter_mut().find(|(o, _)| *o == owner) {
            Some((_, positions)) => positions.push(position),
            None => groups.push((owner, vec![position])),
        }
    }
    let width = if spec.keys == Keys::Pairs { 2 } else { 1 };
    let parts: Vec<Part> = groups
        .iter()
        .map(|(owner, positions)| {
            log_route(spec, &args[positions[0]], topology, *owner);
            let mut sub: Vec<&[u8]> = vec![&args[0]];
            for &p in positions {
                sub.extend(args[p..p + width].iter().map(|a| &a[..]));
            }
            jobs.push(*owner, |out| resp::write::command(out, &sub))
        })
        .collect();
    let combine = match spec.name {
        "MGET" => {
            let mut slots = vec![(0, 0); key_positions.len()];
            for (part, (_, positions)) in groups.iter().enumerate() {
                for (element, &p) in positions.iter().enumerate() {
                    slots[p - 1] = (part, element);
                }
            }
            Combine::Mget(slots)
        }
        "MSET" => Combine::AllOk,
        _ => Combine::Sum,
    };
    Step::Combine(combine, parts)
}

/// Where `spec`'s keys are among `n` arguments.
pub fn key_positions(spec: &CommandSpec, n: usize) -> Vec<usize> {
    match spec.keys {
        Keys::First => vec![1],
        Keys::All => (1..n).collect(),
        Keys::Pairs => (1..n).step_by(2).collect(),
        Keys::None => Vec::new(),
    }
}

/// Plans a command every server answers: KEYS, DBSIZE, FLUSHALL, FLUSHDB.
pub fn plan_broadcast(spec: &CommandSpec, request: &Request, topology: &Topology, jobs: &mut Jobs) -> Step {
    let replicated = topology.replication > 1;
    let (combine, request) = match spec.name {
        "KEYS" => (Combine::Keys { seed_style: request.args.len() == 1, distinct: replicated }, request.clone()),
        "DBSIZE" if replicated => {
            (Combine::CountDistinct, Request::new(vec![Bytes::from_static(b"KEYS"), Bytes::from_static(b"*")]))
        }
        "DBSIZE" => (Combine::Sum, request.clone()),
        _ => (Combine::AllOk, request.clone()),
    };
    // Servers marked down are left out: their keys are served by the next servers.
    let parts = topology.up_servers().map(|id| jobs.push(id, |out| request.encode(out))).collect();
    Step::Combine(combine, parts)
}

/// Plans SCAN: the proxy's cursor is the server's cursor shifted left, plus the index of the
/// server in the ring's sorted list; servers are scanned one after the other.
pub fn plan_scan(request: &Request, topology: &Topology, jobs: &mut Jobs) -> Step {
    let args = &request.args;
    let Some(cursor) = std::str::from_utf8(&args[1]).ok().and_then(|c| c.parse::<u64>().ok()) else {
        return Step::Error("ERR invalid cursor".into());
    };
    let server = (cursor & ((1 << SCAN_SERVER_BITS) - 1)) as usize;
    let servers = topology.ring.len();
    let Some(id) = topology.ring.server_ids().nth(server) else {
        // Past the last server (or none at all): the scan is over.
        return Step::Local;
    };
    let backend_cursor = (cursor >> SCAN_SERVER_BITS).to_string();
    let mut sub: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
    sub[1] = backend_cursor.as_bytes();
    let part = jobs.push(id, |out| resp::write::command(out, &sub));
    Step::Combine(Combine::Scan { server, servers }, vec![part])
}

/// The reply when the ring is empty.
pub const NO_SERVERS: &str = "ERR no servers available";

fn log_route(spec: &CommandSpec, key: &Bytes, topology: &Topology, owner: ServerId) {
    if !topology.log_requests {
        return;
    }
    tracing::info!(
        "[proxy] {} {} -> routing to {}",
        spec.name,
        String::from_utf8_lossy(key),
        topology.ring.server(owner)
    );
}
