//! One client's session: its state (name, protocol, an open transaction) and its pipelined
//! batches. Every request is looked up once in the command table and planned by its
//! [`Route`]; each server gets its share of a batch in one job, and the replies are written
//! in request order.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use resp::command::{Command, LookupError, Route};
use resp::{write, Protocol, Request};
use service::auth::Gate;
use service::common::{self, ClientState};
use service::ClientConn;
use smallvec::SmallVec;

use crate::cluster::Topology;
use crate::dedicated::{Dedicated, Push};
use crate::flow::Flow;
use crate::jobs::{Jobs, Round};
use crate::local;
use crate::membership;
use crate::owners;
use crate::plan::{self, Step};
use crate::pubsub::{self, Subscriber};
use crate::{combine, Proxy};

/// What the proxy remembers about one client.
#[derive(Debug, Default)]
pub struct Session {
    /// Name, id and protocol.
    pub client: ClientState,
    /// The transaction being queued since MULTI (boxed, as the rest that few clients use:
    /// every idle client's task holds a session).
    multi: Option<Box<Multi>>,
    /// The connection WATCH pinned the client to, until EXEC, DISCARD, UNWATCH or RESET.
    watching: Option<Box<Dedicated>>,
    /// The client's subscriptions, while it has any (subscribed mode); boxed, as it is large
    /// and most clients never subscribe.
    subscriber: Option<Box<Subscriber>>,
}

impl Session {
    /// The next message for a subscribed client; never resolves for one that is not.
    pub async fn next_push(&mut self) -> Option<Push> {
        match self.subscriber.as_mut() {
            Some(subscriber) => subscriber.next_push().await,
            None => std::future::pending().await,
        }
    }

    /// Writes a message pushed by a server; `Flow::Quit` when the client must be closed.
    pub fn on_push(&mut self, push: Push, out: &mut BytesMut) -> Flow {
        match self.subscriber.as_mut() {
            Some(subscriber) => subscriber.on_push(push, out),
            None => Flow::Continue,
        }
    }

    fn is_subscribed(&self) -> bool {
        self.subscriber.as_ref().is_some_and(|s| s.total() > 0)
    }
}

/// A transaction being queued: its commands and the server they all route to.
#[derive(Debug, Default)]
struct Multi {
    queued: Vec<Request>,
    /// The server of the first keyed command; every later key must route there too.
    server: Option<String>,
    /// A command was refused while queueing: EXEC answers EXECABORT.
    dirty: bool,
}

/// The error for a command the table does not know: the seed's hint for a person typing
/// (an inline request), Redis's wording, which names the command, for programs.
fn unknown(request: &Request, error: LookupError) -> String {
    match (request.raw.is_none(), error) {
        (true, LookupError::UnknownCommand) => "ERR unknown command (type HELP)".into(),
        _ => error.reply_text(&request.args),
    }
}

/// Whether a request changes the ring or ends the connection: requests before it are
/// answered first, requests after it see the new ring.
fn is_barrier(command: &Command) -> bool {
    matches!(command.route, Route::Ring | Route::Inspect) || command.name == "quit"
}

/// Whether a request may change the client's protocol (HELLO, RESET): requests after it go
/// to the servers on links of the protocol it chose.
fn switches_protocol(command: &Command) -> bool {
    matches!(command.name, "hello" | "reset")
}

/// Answers a batch of requests into `out`, in order.
///
/// Every decision for a request (gated or not, which servers) and its execution use one
/// snapshot of the ring, reloaded only after a ring command: a migration waits for requests
/// planned on the snapshot before its ring change, so none of them can race a key's move.
///
/// The work runs in a boxed future, allocated for the batch and freed after it: a client's
/// task, which lives as long as its connection, stays small while the client is idle.
pub async fn run_batch(proxy: &Arc<Proxy>, session: &mut Session, batch: &[Request], conn: &mut ClientConn) -> Flow {
    Box::pin(answer_batch(proxy, session, batch, conn)).await
}

/// A request's command as the table (or a server, for a command learned) names it.
type Resolved = Result<&'static Command, LookupError>;

async fn answer_batch(proxy: &Arc<Proxy>, session: &mut Session, batch: &[Request], conn: &mut ClientConn) -> Flow {
    let mut topology = proxy.cluster.snapshot();
    // Each request is looked up once, here; planning reads the result.
    let mut resolved: SmallVec<[Resolved; 2]> = SmallVec::with_capacity(batch.len());
    for request in batch {
        let mut command = proxy.learned.resolve(request);
        if command.is_err() && proxy.learned.should_ask(request) {
            Box::pin(proxy.learned.ask(&topology, request)).await;
            command = proxy.learned.resolve(request);
        }
        resolved.push(command);
    }
    let mut start = 0;
    let mut in_multi = session.multi.is_some();
    for (i, (request, command)) in batch.iter().zip(&resolved).enumerate() {
        let Ok(command) = *command else { continue };
        proxy.metrics.count_command(command);
        match command.name {
            "multi" => in_multi = true,
            "exec" | "discard" => in_multi = false,
            _ => {}
        }
        if in_multi || !command.accepts(request.args.len()) {
            continue;
        }
        let before = (&batch[start..i], &resolved[start..i]);
        if !proxy.auth.allows(command, &session.client) {
            // An AUTH earlier in the batch may allow it: run up to it, then look again.
            run_segment(proxy, session, &topology, before, conn.output()).await;
            start = i;
            if !proxy.auth.allows(command, &session.client) {
                continue; // refused by `plan`
            }
        }
        let before = (&batch[start..i], &resolved[start..i]);
        let alone = (std::slice::from_ref(request), &resolved[i..=i]);
        if is_barrier(command) {
            run_segment(proxy, session, &topology, before, conn.output()).await;
            if command.route == Route::Inspect {
                Box::pin(crate::preview::run(proxy, request, conn.output())).await;
            } else if Box::pin(membership::run(proxy, command, request, conn.output())).await == Flow::Quit {
                return Flow::Quit;
            }
            topology = proxy.cluster.snapshot();
            start = i + 1;
        } else if needs_dedicated(session, command, request) {
            run_segment(proxy, session, &topology, before, conn.output()).await;
            if Box::pin(run_dedicated(proxy, session, &topology, command, request, conn)).await == Flow::Quit {
                return Flow::Quit;
            }
            start = i + 1;
        } else if let Some(keys) = handoff_keys(proxy, &topology, command, request) {
            run_segment(proxy, session, &topology, before, conn.output()).await;
            Box::pin(run_handoff(proxy, session, &topology, alone, keys, conn.output())).await;
            start = i + 1;
        } else if switches_protocol(command) {
            let through = (&batch[start..=i], &resolved[start..=i]);
            run_segment(proxy, session, &topology, through, conn.output()).await;
            start = i + 1;
        } else if let Some(keys) = stranded_keys(proxy, &topology, command, request) {
            run_segment(proxy, session, &topology, before, conn.output()).await;
            Box::pin(run_gated(proxy, session, &topology, alone, keys, conn.output())).await;
            start = i + 1;
        }
    }
    run_segment(proxy, session, &topology, (&batch[start..], &resolved[start..]), conn.output()).await;
    Flow::Continue
}

/// Whether a request runs on a connection of the client's own rather than the shared ones:
/// a command that blocks, WATCH and the EXEC after it, (un)subscribing. Its arguments are
/// already checked.
fn needs_dedicated(session: &Session, command: &Command, request: &Request) -> bool {
    if pubsub::is_subscription(command) {
        return true;
    }
    if session.is_subscribed() {
        // Refused while planning, as Redis refuses it in subscribed mode.
        return false;
    }
    match command.route {
        Route::Keyed => blocks(command, request),
        Route::Transaction => command.name == "watch" || (command.name == "exec" && session.watching.is_some()),
        _ => false,
    }
}

/// Whether a blocking command will block: XREAD and XREADGROUP only with `BLOCK` (before
/// `STREAMS`); the others always may.
fn blocks(command: &Command, request: &Request) -> bool {
    if !command.is_blocking() {
        return false;
    }
    if !matches!(command.name, "xread" | "xreadgroup") {
        return true;
    }
    let options = request.args[1..].iter().take_while(|a| !a.eq_ignore_ascii_case(b"STREAMS"));
    options.into_iter().any(|a| a.eq_ignore_ascii_case(b"BLOCK"))
}

/// Runs a request of [`needs_dedicated`] after the requests before it were answered.
async fn run_dedicated(
    proxy: &Arc<Proxy>,
    session: &mut Session,
    topology: &Topology,
    command: &'static Command,
    request: &Request,
    conn: &mut ClientConn,
) -> Flow {
    proxy.stats.record_command();
    match command.route {
        Route::PubSub => pubsub::run(proxy, &mut session.subscriber, topology, command, request, conn.output()).await,
        Route::Transaction if command.name == "watch" => {
            watch(proxy, session, topology, command, request, conn.output()).await;
            Flow::Continue
        }
        Route::Transaction => {
            exec_watched(proxy, session, request, conn.output()).await;
            Flow::Continue
        }
        _ => blocking(proxy, topology, command, request, conn).await,
    }
}

/// A blocking command on a connection of its own to the owner of its keys, given back to
/// the pool after its reply. A client that disconnects meanwhile drops the connection, which
/// ends the wait on the server too.
async fn blocking(
    proxy: &Proxy,
    topology: &Topology,
    command: &Command,
    request: &Request,
    conn: &mut ClientConn,
) -> Flow {
    let Ok(_permit) = proxy.blocking.clone().try_acquire_owned() else {
        let text = format!(
            "ERR too many blocked clients through the proxy ({}); try again later",
            proxy.max_blocking_connections
        );
        write::error(conn.output(), text.as_bytes());
        return Flow::Continue;
    };
    let owner = match owners::single_owner(topology, command, request) {
        Ok(owner) => owner,
        Err(text) => {
            write::error(conn.output(), text.as_bytes());
            return Flow::Continue;
        }
    };
    // The replies before it reach the client before it blocks.
    if conn.flush().await.is_err() {
        return Flow::Quit;
    }
    let addr = topology.backend(owner).addr();
    let mut dedicated = match proxy.dedicated.checkout(addr, proxy.connect_timeout).await {
        Ok(dedicated) => dedicated,
        Err(error) => {
            write::error(conn.output(), error.reply_text().as_bytes());
            return Flow::Continue;
        }
    };
    let mut bytes = BytesMut::new();
    request.encode(&mut bytes);
    let reply = tokio::select! {
        reply = dedicated.call(&bytes, 1) => Some(reply),
        () = conn.closed() => None,
    };
    match reply {
        None => {
            tracing::debug!(backend = %addr, cmd = command.display, "client left while blocked");
            Flow::Quit
        }
        Some(Ok(reply)) => {
            conn.output().extend_from_slice(&reply);
            proxy.dedicated.checkin(dedicated);
            Flow::Continue
        }
        Some(Err(error)) => {
            write::error(conn.output(), error.reply_text().as_bytes());
            Flow::Continue
        }
    }
}

/// WATCH: pins the client to a connection to the keys' owner and watches them there.
async fn watch(
    proxy: &Proxy,
    session: &mut Session,
    topology: &Topology,
    command: &Command,
    request: &Request,
    out: &mut BytesMut,
) {
    let owner = match owners::single_owner(topology, command, request) {
        Ok(owner) => topology.backend(owner).addr(),
        Err(text) => return write::error(out, text.as_bytes()),
    };
    let mut dedicated = match session.watching.take() {
        Some(pinned) if pinned.addr() == owner => *pinned,
        Some(pinned) => {
            let text = cross_transaction(pinned.addr(), owner);
            session.watching = Some(pinned);
            return write::error(out, text.as_bytes());
        }
        None => match proxy.dedicated.checkout(owner, proxy.connect_timeout).await {
            Ok(dedicated) => dedicated,
            Err(error) => return write::error(out, error.reply_text().as_bytes()),
        },
    };
    let mut bytes = BytesMut::new();
    request.encode(&mut bytes);
    match dedicated.call(&bytes, 1).await {
        Ok(reply) => {
            out.extend_from_slice(&reply);
            session.watching = Some(Box::new(dedicated));
        }
        Err(error) => write::error(out, error.reply_text().as_bytes()),
    }
}

/// EXEC after WATCH: the transaction on the pinned connection, where the server checks the
/// watched keys; then the pin is released (EXEC unwatches everything).
async fn exec_watched(proxy: &Proxy, session: &mut Session, request: &Request, out: &mut BytesMut) {
    let Some(multi) = session.multi.take() else {
        return write::error(out, b"ERR EXEC without MULTI");
    };
    let Some(mut dedicated) = session.watching.take() else {
        return write::error(out, b"ERR EXEC without WATCH");
    };
    if multi.dirty {
        // The server never saw the transaction; dropping the connection unwatches.
        return write::error(out, b"EXECABORT Transaction discarded because of previous errors.");
    }
    let mut bytes = BytesMut::new();
    write::command(&mut bytes, &[b"MULTI"]);
    multi.queued.iter().for_each(|queued| queued.encode(&mut bytes));
    request.encode(&mut bytes);
    match dedicated.call(&bytes, multi.queued.len() + 2).await {
        Ok(reply) => {
            out.extend_from_slice(&reply);
            proxy.dedicated.checkin(*dedicated);
        }
        Err(error) => write::error(out, error.reply_text().as_bytes()),
    }
}

/// The error for a key of a transaction that routes to another server than the pinned one.
fn cross_transaction(pinned: &str, other: &str) -> String {
    format!(
        "CROSSSLOT Keys in the transaction don't hash to the same server ({pinned}, {other}); give them a common \
         hash tag such as {{user1}} and start the proxy with --hash-tag \"{{}}\""
    )
}

/// While a migration runs: the keys of `request` that a ring change may have left on
/// another server. `None` (the fast path) when there are none.
fn stranded_keys(proxy: &Proxy, topology: &Topology, command: &Command, request: &Request) -> Option<Vec<Bytes>> {
    if command.key_specs.is_empty() || !proxy.migrator.is_running() || !topology.has_history() {
        return None;
    }
    let keys: Vec<Bytes> = command
        .key_positions(&request.args)
        .unwrap_or_default()
        .into_iter()
        .map(|i| request.args[i].clone())
        .filter(|key| !topology.stranded_sources(key, &topology.replicas(key)).is_empty())
        .collect();
    (!keys.is_empty()).then_some(keys)
}

/// While a server is down or hinted keys wait for repair: the keys of `request` that are
/// hinted, or that it writes while a server that should hold them is down. `None` (the fast
/// path) when there are none.
fn handoff_keys(proxy: &Proxy, topology: &Topology, command: &Command, request: &Request) -> Option<Vec<Bytes>> {
    let hints = &proxy.cluster.hints;
    let writes_while_down = topology.any_down() && command.is_write();
    if !(writes_while_down || hints.pending()) || command.key_specs.is_empty() || session_local(command) {
        return None;
    }
    let is_up = |addr: &str| topology.find(addr).is_some_and(|b| b.health.is_up());
    let keys: Vec<Bytes> = command
        .key_positions(&request.args)
        .unwrap_or_default()
        .into_iter()
        .map(|i| request.args[i].clone())
        .filter(|key| {
            (writes_while_down && topology.natural_replicas(key).any(|id| !topology.backend(id).health.is_up()))
                || (hints.pending() && !hints.for_key(key, is_up).is_empty())
        })
        .collect();
    (!keys.is_empty()).then_some(keys)
}

/// Commands the session keeps to itself (queued in MULTI): gated when EXEC runs, not here.
fn session_local(command: &Command) -> bool {
    command.route == Route::Transaction
}

/// Runs a request under its keys' locks: first repairs the hinted ones whose server is back,
/// then records hints for the writes that land elsewhere because a server is down.
async fn run_handoff(
    proxy: &Proxy,
    session: &mut Session,
    topology: &Topology,
    alone: Segment<'_>,
    keys: Vec<Bytes>,
    out: &mut BytesMut,
) {
    let is_write = alone.1.first().is_some_and(|command| command.is_ok_and(|c| c.is_write()));
    let _locks = proxy.migrator.lock(keys.iter().map(|k| &k[..])).await;
    for key in &keys {
        if let Err(error) = crate::repair::repair_key(proxy, topology, key).await {
            write::error(out, format!("ERR repairing the key after its server came back failed: {error}").as_bytes());
            return;
        }
    }
    if is_write && session.multi.is_none() {
        for key in &keys {
            crate::repair::record_write(proxy, topology, key);
        }
    }
    run_segment(proxy, session, topology, alone, out).await;
}

/// Runs a command whose keys may still be on an old owner: under the keys' migration locks,
/// move them first, then run the command where they now belong.
async fn run_gated(
    proxy: &Proxy,
    session: &mut Session,
    topology: &Topology,
    alone: Segment<'_>,
    keys: Vec<Bytes>,
    out: &mut BytesMut,
) {
    let _locks = proxy.migrator.lock(keys.iter().map(|k| &k[..])).await;
    if let Err(error) = proxy.migrator.move_stranded(topology, &keys).await {
        write::error(out, format!("ERR moving the key to its new server failed: {error}").as_bytes());
        return;
    }
    run_segment(proxy, session, topology, alone, out).await;
}

/// Consecutive requests of a batch and their commands, looked up once by [`answer_batch`].
type Segment<'a> = (&'a [Request], &'a [Resolved]);

/// Requests with no ring change among them: one snapshot, one job per server per round.
async fn run_segment(
    proxy: &Proxy,
    session: &mut Session,
    topology: &Topology,
    segment: Segment<'_>,
    out: &mut BytesMut,
) {
    let (requests, resolved) = segment;
    if requests.is_empty() {
        return;
    }
    let protocol = session.client.protocol;
    let bytes = requests.iter().map(|r| r.raw.as_ref().map_or(64, |raw| raw.len())).sum();
    let mut jobs = Jobs::with_room(protocol, bytes, topology.ring.len());
    let mut steps: SmallVec<[Step; 1]> = requests
        .iter()
        .zip(resolved)
        .map(|(request, command)| plan(proxy, session, request, *command, topology, &mut jobs))
        .collect();
    let mut rounds: SmallVec<[Round; 1]> = smallvec::smallvec![jobs.dispatch(topology).await];
    if steps.iter().any(|step| matches!(step, Step::Replicated(_))) {
        Box::pin(later_rounds(&mut steps, &mut rounds, protocol, topology)).await;
    }
    let results = &rounds[0];
    for (request, step) in requests.iter().zip(&steps) {
        match step {
            Step::Local(command) => local::run(proxy, &mut session.client, topology, command, request, out),
            Step::Status(text) => write::simple(out, text.as_bytes()),
            Step::Error(text) => write::error(out, text.as_bytes()),
            Step::Frame(frame) => frame.encode(out),
            Step::Forward(part) => combine::forward(results, *part, out),
            Step::Combine(combined) => combine::combine(&combined.0, &combined.1, results, protocol, out),
            Step::Replicated(replicated) => replicated.write(protocol, out),
        }
    }
}

/// Replicated reads that missed ask the next replica, round after round (in a future of its
/// own: most batches have no replicated step).
async fn later_rounds(steps: &mut [Step], rounds: &mut SmallVec<[Round; 1]>, protocol: Protocol, topology: &Topology) {
    loop {
        let mut next = Jobs::new(protocol);
        for step in steps.iter_mut() {
            if let Step::Replicated(replicated) = step {
                replicated.advance(rounds, &mut next);
            }
        }
        if next.is_empty() {
            break;
        }
        rounds.push(next.dispatch(topology).await);
    }
}

fn plan(
    proxy: &Proxy,
    session: &mut Session,
    request: &Request,
    command: Resolved,
    topology: &Topology,
    jobs: &mut Jobs,
) -> Step {
    proxy.stats.record_command();
    let command = match command {
        Ok(command) => command,
        Err(error) => {
            if let Some(multi) = &mut session.multi {
                multi.dirty = true;
            }
            return Step::Error(unknown(request, error));
        }
    };
    if !command.accepts(request.args.len()) {
        if let Some(multi) = &mut session.multi {
            multi.dirty = true;
        }
        return Step::Error(command.arity_error(request.raw.is_none()));
    }
    match proxy.auth.gate(command, &request.args, &mut session.client) {
        Gate::Run => {}
        Gate::Ok => return Step::Status("OK"),
        Gate::Error(text) => return Step::Error(text),
    }
    if session.is_subscribed() {
        match command.name {
            "ping" => return Step::Frame(Box::new(pubsub::pong(request.args.get(1)))),
            "quit" | "reset" => {}
            _ if pubsub::is_subscription(command) => {}
            _ => return Step::Error(pubsub::not_allowed(command)),
        }
    }
    if command.name == "reset" {
        // Redis's RESET discards the transaction, unwatches and unsubscribes.
        session.multi = None;
        session.watching = None;
        session.subscriber = None;
    }
    if session.multi.is_some() && command.route != Route::Transaction {
        return queue(session, command, request, topology, &proxy.cluster.hints);
    }
    match command.route {
        // Only a blocking command that will not block gets here (XREAD without BLOCK, or
        // inside a transaction, where Redis never blocks).
        Route::Keyed if blocks(command, request) => {
            Step::Error(format!("ERR {} could not get a server connection of its own", command.display))
        }
        Route::Keyed => plan::plan_keyed(command, request, topology, jobs),
        Route::Split(merge) => plan::plan_split(command, merge, request, topology, jobs),
        Route::FanOut(merge) => plan::plan_fan_out(command, merge, request, topology, jobs),
        Route::AnyServer => plan::plan_any(request, topology, jobs),
        Route::Scan => plan::plan_scan(command, request, topology, jobs),
        // INFO adds the servers' keys, summed, to the proxy's own sections, when asked.
        Route::Local if command.name == "info" && common::info_wants(&request.args[1..], "keyspace") => {
            plan::plan_info(local::info(proxy, topology, &request.args[1..]), topology, jobs)
        }
        Route::Local | Route::Ring | Route::Inspect => Step::Local(command),
        // PUBLISH and SPUBLISH are routed by their channel, to where SUBSCRIBE and
        // SSUBSCRIBE of that channel go.
        Route::PubSub if matches!(command.name, "publish" | "spublish") => match topology.primary(&request.args[1]) {
            Some(owner) => Step::Forward(jobs.push(owner, |out| request.encode(out))),
            None => Step::Error(owners::NO_SERVERS.into()),
        },
        Route::PubSub => Step::Error(format!("ERR {} is not supported through the proxy", command.display)),
        Route::Transaction => transaction(session, command, topology, jobs),
        Route::Refused(why) => {
            Step::Error(format!("ERR {} is not supported through the proxy: {why}", command.display))
        }
    }
}

/// MULTI, EXEC, DISCARD, WATCH, UNWATCH.
fn transaction(session: &mut Session, command: &Command, topology: &Topology, jobs: &mut Jobs) -> Step {
    match (command.name, session.multi.is_some()) {
        ("multi", true) => Step::Error("ERR MULTI calls can not be nested".into()),
        ("multi", false) => {
            // After WATCH, every key must route to the watching server.
            let server = session.watching.as_ref().map(|pinned| pinned.addr().to_string());
            session.multi = Some(Box::new(Multi { server, ..Multi::default() }));
            Step::Status("OK")
        }
        ("exec", false) => Step::Error("ERR EXEC without MULTI".into()),
        ("discard", false) => Step::Error("ERR DISCARD without MULTI".into()),
        ("discard", true) => {
            // DISCARD unwatches too.
            session.multi = None;
            session.watching = None;
            Step::Status("OK")
        }
        ("exec", true) => {
            let multi = session.multi.take().unwrap_or_default();
            exec(*multi, topology, jobs)
        }
        ("watch", true) => Step::Error("ERR WATCH inside MULTI is not allowed".into()),
        ("unwatch", _) => {
            session.watching = None;
            Step::Status("OK")
        }
        // WATCH outside MULTI runs on its own connection (`needs_dedicated`).
        _ => Step::Error(format!("ERR {} could not get a server connection of its own", command.display)),
    }
}

/// A command inside MULTI: checked now, as Redis checks it when it queues, and kept for EXEC.
fn queue(
    session: &mut Session,
    command: &Command,
    request: &Request,
    topology: &Topology,
    hints: &crate::handoff::Hints,
) -> Step {
    let Some(multi) = session.multi.as_mut() else { return Step::Error("ERR not in a transaction".into()) };
    let refuse = |multi: &mut Multi, text: String| {
        multi.dirty = true;
        Step::Error(text)
    };
    let allowed = match command.route {
        Route::Keyed | Route::Split(_) | Route::AnyServer => true,
        Route::Local => matches!(command.name, "ping" | "echo"),
        Route::PubSub => matches!(command.name, "publish" | "spublish"),
        _ => false,
    };
    if !allowed {
        return refuse(
            multi,
            format!(
                "ERR {} is not supported inside a transaction through the proxy: it would not run on one server",
                command.display
            ),
        );
    }
    let owners = command.key_positions(&request.args).unwrap_or_default();
    let is_up = |addr: &str| topology.find(addr).is_some_and(|b| b.health.is_up());
    for &i in &owners {
        if hints.pending() && !hints.for_key(&request.args[i], is_up).is_empty() {
            let text = "TRYAGAIN the key is being repaired after its server came back; retry the transaction";
            return refuse(multi, text.into());
        }
        if let Some(down) = topology.natural_replicas(&request.args[i]).find(|id| !topology.backend(*id).health.is_up())
        {
            let text = format!(
                "TRYAGAIN server {} is down: a transaction does not run on a stand-in server",
                topology.ring.server(down)
            );
            return refuse(multi, text);
        }
    }
    for i in owners {
        let Some(owner) = topology.primary(&request.args[i]) else {
            return refuse(multi, owners::NO_SERVERS.into());
        };
        let addr = topology.ring.server(owner).to_string();
        match &multi.server {
            None => multi.server = Some(addr),
            Some(server) if *server == addr => {}
            Some(server) => {
                let text = format!(
                    "CROSSSLOT Keys in the transaction don't hash to the same server ({server}, {addr}); give them a \
                     common hash tag such as {{user1}} and start the proxy with --hash-tag \"{{}}\""
                );
                return refuse(multi, text);
            }
        }
    }
    multi.queued.push(request.clone());
    Step::Status("QUEUED")
}

/// EXEC: the whole transaction, MULTI to EXEC, as one job on one server connection, so no
/// other client's request can come between its commands.
fn exec(multi: Multi, topology: &Topology, jobs: &mut Jobs) -> Step {
    if multi.dirty {
        return Step::Error("EXECABORT Transaction discarded because of previous errors.".into());
    }
    if multi.queued.is_empty() {
        return Step::Combine(Box::new((plan::Combine::Union, Vec::new())));
    }
    let server = match &multi.server {
        Some(addr) => match topology.ring.id_of(addr) {
            Some(id) => id,
            None => return Step::Error(format!("EXECABORT server {addr} left the ring")),
        },
        None => match owners::any_server(topology) {
            Ok(id) => id,
            Err(text) => return Step::Error(text),
        },
    };
    let part = jobs.push_many(server, multi.queued.len() + 2, |out| {
        write::command(out, &[b"MULTI"]);
        multi.queued.iter().for_each(|request| request.encode(out));
        write::command(out, &[b"EXEC"]);
    });
    Step::Forward(part)
}
