//! Subscriptions through the proxy.
//!
//! A channel (and a shard channel) is subscribed on the server the ring names for it, which is
//! where PUBLISH of that channel goes; a pattern is subscribed on every server that is up,
//! and since each server only delivers what was published on it, a message still reaches
//! the client once. A subscribed client gets one [`PushLink`] per server it needs; their
//! readers feed one channel that the client's connection loop selects on.
//!
//! The confirmations the client sees are the proxy's own, as Redis writes them: one per
//! name, with the client's total count, written once the servers confirmed, so a PUBLISH
//! sent after the reply is delivered.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use resp::command::{Command, Route};
use resp::{write, Frame, Request};
use tokio::sync::mpsc;

use crate::cluster::Topology;
use crate::dedicated::{Dedicated, Push, PushLink};
use crate::flow::Flow;
use crate::owners::NO_SERVERS;
use crate::Proxy;

/// Pushes waiting for a slow client before the readers stop reading their servers.
const PUSH_QUEUE: usize = 1024;
/// How long the servers may take to confirm a (un)subscription.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// The three kinds of subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    /// The kind of a subscribe-family command, and whether it subscribes.
    fn of(name: &str) -> Option<(Kind, bool)> {
        Some(match name {
            "subscribe" => (Kind::Channel, true),
            "unsubscribe" => (Kind::Channel, false),
            "psubscribe" => (Kind::Pattern, true),
            "punsubscribe" => (Kind::Pattern, false),
            "ssubscribe" => (Kind::Shard, true),
            "sunsubscribe" => (Kind::Shard, false),
            _ => return None,
        })
    }

    fn verb(self, subscribing: bool) -> &'static [u8] {
        match (self, subscribing) {
            (Kind::Channel, true) => b"subscribe",
            (Kind::Channel, false) => b"unsubscribe",
            (Kind::Pattern, true) => b"psubscribe",
            (Kind::Pattern, false) => b"punsubscribe",
            (Kind::Shard, true) => b"ssubscribe",
            (Kind::Shard, false) => b"sunsubscribe",
        }
    }
}

/// Whether `command` subscribes or unsubscribes (what a subscribed client may still send,
/// besides PING, QUIT and RESET).
pub fn is_subscription(command: &Command) -> bool {
    command.route == Route::PubSub && Kind::of(command.name).is_some()
}

/// A client's subscriptions and the connections that carry them.
#[derive(Debug)]
pub struct Subscriber {
    /// Channel -> the link it is subscribed on.
    channels: HashMap<Bytes, usize>,
    /// Shard channel -> the link it is subscribed on.
    shard: HashMap<Bytes, usize>,
    /// Patterns, subscribed on every link open when they were added.
    patterns: HashSet<Bytes>,
    /// The connections, by link number; `None` once closed.
    links: Vec<Option<PushLink>>,
    /// Confirmations still expected, by link number.
    pending: Vec<usize>,
    sender: mpsc::Sender<Push>,
    pushes: mpsc::Receiver<Push>,
}

impl Default for Subscriber {
    fn default() -> Self {
        let (sender, pushes) = mpsc::channel(PUSH_QUEUE);
        Subscriber {
            channels: HashMap::new(),
            shard: HashMap::new(),
            patterns: HashSet::new(),
            links: Vec::new(),
            pending: Vec::new(),
            sender,
            pushes,
        }
    }
}

impl Subscriber {
    /// Channels, patterns and shard channels: the client is in subscribed mode while this is
    /// not 0.
    pub fn total(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard.len()
    }

    /// The count Redis puts in a confirmation of `kind`.
    fn count(&self, kind: Kind) -> i64 {
        let n = match kind {
            Kind::Channel | Kind::Pattern => self.channels.len() + self.patterns.len(),
            Kind::Shard => self.shard.len(),
        };
        n as i64
    }

    /// The next push from any of the client's servers.
    pub async fn next_push(&mut self) -> Option<Push> {
        self.pushes.recv().await
    }

    /// Writes what a server pushed (a message) for the client. `Flow::Quit` when a server
    /// connection was lost: the client is disconnected, so its library subscribes again.
    pub fn on_push(&mut self, push: Push, out: &mut BytesMut) -> Flow {
        let Some(frame) = push.frame else {
            tracing::warn!(link = push.link, "subscriber connection lost; closing the client");
            return Flow::Quit;
        };
        if let Some(pending) = self.pending.get_mut(push.link).filter(|p| **p > 0) {
            if is_confirmation(&frame) || frame.is_error() {
                *pending -= 1;
                if let Frame::Error(text) = &frame {
                    write::error(out, text);
                }
                return Flow::Continue;
            }
        }
        if !is_confirmation(&frame) {
            frame.encode(out);
        }
        Flow::Continue
    }

    /// The link to `addr`, dialled if there is none.
    async fn link(&mut self, proxy: &Proxy, addr: &str) -> Result<usize, String> {
        if let Some(i) = self.links.iter().position(|l| l.as_ref().is_some_and(|l| l.addr() == addr)) {
            return Ok(i);
        }
        let conn = Dedicated::connect(addr, proxy.connect_timeout, proxy.dedicated.password(), proxy.dedicated.tls())
            .await
            .map_err(|e| e.reply_text())?;
        let i = self.links.len();
        self.links.push(Some(conn.into_push_link(i, self.sender.clone())));
        self.pending.push(0);
        Ok(i)
    }

    /// Sends `verb names...` on each link of `sends` and counts the confirmations due.
    async fn send(&mut self, verb: &[u8], sends: Vec<(usize, Vec<Bytes>)>) -> Result<(), String> {
        for (link, names) in sends {
            let Some(conn) = self.links.get_mut(link).and_then(Option::as_mut) else { continue };
            let mut bytes = BytesMut::new();
            write::array_header(&mut bytes, names.len() + 1);
            write::bulk(&mut bytes, verb);
            names.iter().for_each(|name| write::bulk(&mut bytes, name));
            conn.send(&bytes).await.map_err(|e| e.reply_text())?;
            self.pending[link] += names.len();
        }
        Ok(())
    }

    /// Waits until every server confirmed; messages that arrive meanwhile are written first.
    async fn settle(&mut self, out: &mut BytesMut) -> Flow {
        let deadline = tokio::time::Instant::now() + CONFIRM_TIMEOUT;
        while self.pending.iter().any(|p| *p > 0) {
            match tokio::time::timeout_at(deadline, self.pushes.recv()).await {
                Ok(Some(push)) => {
                    if self.on_push(push, out) == Flow::Quit {
                        return Flow::Quit;
                    }
                }
                Ok(None) | Err(_) => {
                    tracing::warn!("a server did not confirm a subscription in time; closing the client");
                    return Flow::Quit;
                }
            }
        }
        Flow::Continue
    }

    async fn subscribe(
        &mut self,
        proxy: &Proxy,
        topology: &Topology,
        kind: Kind,
        names: &[Bytes],
        out: &mut BytesMut,
    ) -> Flow {
        // First the servers, so that a failure changes nothing.
        let mut sends: Vec<(usize, Vec<Bytes>)> = Vec::new();
        let mut fresh: HashSet<&Bytes> = HashSet::new();
        let mut first_link = Vec::with_capacity(names.len());
        for name in names {
            let known = match kind {
                Kind::Channel => self.channels.get(name).copied(),
                Kind::Shard => self.shard.get(name).copied(),
                Kind::Pattern => self.patterns.contains(name).then_some(0),
            };
            if known.is_some() || !fresh.insert(name) {
                first_link.push(None);
                continue;
            }
            let targets: Vec<&str> = match kind {
                Kind::Pattern => topology.up_servers().map(|id| topology.ring.server(id)).collect(),
                _ => topology.primary(name).map(|id| topology.ring.server(id)).into_iter().collect(),
            };
            if targets.is_empty() {
                write::error(out, NO_SERVERS.as_bytes());
                return Flow::Continue;
            }
            let mut links = Vec::with_capacity(targets.len());
            for addr in targets {
                match self.link(proxy, addr).await {
                    Ok(link) => links.push(link),
                    Err(text) => {
                        write::error(out, text.as_bytes());
                        return Flow::Continue;
                    }
                }
            }
            first_link.push(links.first().copied());
            for link in links {
                match sends.iter_mut().find(|(l, _)| *l == link) {
                    Some((_, list)) => list.push(name.clone()),
                    None => sends.push((link, vec![name.clone()])),
                }
            }
        }
        if let Err(text) = self.send(kind.verb(true), sends).await {
            write::error(out, text.as_bytes());
            return Flow::Quit;
        }
        if self.settle(out).await == Flow::Quit {
            return Flow::Quit;
        }
        for (name, link) in names.iter().zip(first_link) {
            if let Some(link) = link {
                match kind {
                    Kind::Channel => drop(self.channels.insert(name.clone(), link)),
                    Kind::Shard => drop(self.shard.insert(name.clone(), link)),
                    Kind::Pattern => drop(self.patterns.insert(name.clone())),
                }
            }
            confirmation(out, kind.verb(true), Some(name), self.count(kind));
        }
        Flow::Continue
    }

    async fn unsubscribe(&mut self, kind: Kind, names: &[Bytes], out: &mut BytesMut) -> Flow {
        let names: Vec<Bytes> = if names.is_empty() {
            match kind {
                Kind::Channel => self.channels.keys().cloned().collect(),
                Kind::Shard => self.shard.keys().cloned().collect(),
                Kind::Pattern => self.patterns.iter().cloned().collect(),
            }
        } else {
            names.to_vec()
        };
        if names.is_empty() {
            confirmation(out, kind.verb(false), None, self.count(kind));
            return Flow::Continue;
        }
        let mut sends: Vec<(usize, Vec<Bytes>)> = Vec::new();
        let mut add = |link: usize, name: &Bytes| match sends.iter_mut().find(|(l, _)| *l == link) {
            Some((_, list)) => list.push(name.clone()),
            None => sends.push((link, vec![name.clone()])),
        };
        let mut counts = Vec::with_capacity(names.len());
        for name in &names {
            match kind {
                Kind::Channel => self.channels.remove(name).into_iter().for_each(|link| add(link, name)),
                Kind::Shard => self.shard.remove(name).into_iter().for_each(|link| add(link, name)),
                Kind::Pattern => {
                    if self.patterns.remove(name) {
                        let open = self.links.iter().enumerate().filter(|(_, l)| l.is_some());
                        open.for_each(|(link, _)| add(link, name));
                    }
                }
            }
            counts.push(self.count(kind));
        }
        if let Err(text) = self.send(kind.verb(false), sends).await {
            write::error(out, text.as_bytes());
            return Flow::Quit;
        }
        if self.settle(out).await == Flow::Quit {
            return Flow::Quit;
        }
        for (name, count) in names.iter().zip(counts) {
            confirmation(out, kind.verb(false), Some(name), count);
        }
        Flow::Continue
    }
}

/// Runs a subscribe-family command for the client whose subscriptions are `slot`; leaves
/// subscribed mode (and closes the connections) when nothing is left.
pub async fn run(
    proxy: &Proxy,
    slot: &mut Option<Box<Subscriber>>,
    topology: &Topology,
    command: &Command,
    request: &Request,
    out: &mut BytesMut,
) -> Flow {
    let Some((kind, subscribing)) = Kind::of(command.name) else {
        write::error(out, format!("ERR {} is not supported through the proxy", command.display).as_bytes());
        return Flow::Continue;
    };
    let subscriber = slot.get_or_insert_with(Box::default);
    let names = &request.args[1..];
    let flow = if subscribing {
        subscriber.subscribe(proxy, topology, kind, names, out).await
    } else {
        subscriber.unsubscribe(kind, names, out).await
    };
    if subscriber.total() == 0 {
        *slot = None;
    }
    flow
}

/// The reply to PING in subscribed mode (RESP2): `["pong", message or ""]`.
pub fn pong(message: Option<&Bytes>) -> Frame {
    Frame::Array(vec![Frame::bulk("pong"), Frame::Bulk(message.cloned().unwrap_or_default())])
}

/// Redis's error for a command a subscribed client may not send.
pub fn not_allowed(command: &Command) -> String {
    format!(
        "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this \
         context",
        command.name
    )
}

/// `[verb, name or nil, count]`.
fn confirmation(out: &mut BytesMut, verb: &[u8], name: Option<&Bytes>, count: i64) {
    write::array_header(out, 3);
    write::bulk(out, verb);
    match name {
        Some(name) => write::bulk(out, name),
        None => write::null(out, resp::Protocol::Resp2),
    }
    write::integer(out, count);
}

/// Whether a frame is a server's (un)subscribe confirmation, not a message.
fn is_confirmation(frame: &Frame) -> bool {
    let Frame::Array(items) = frame else { return false };
    let Some(Frame::Bulk(kind)) = items.first() else { return false };
    std::str::from_utf8(kind).ok().and_then(Kind::of).is_some()
}
