//! Replication: with `--replication-factor R`, a key lives on the first R distinct servers
//! clockwise that are up. A write goes to all of them and is acknowledged when every
//! reachable replica acknowledged and at least one did; a read goes to the first and falls
//! back to the next on an error or a miss, round after round.

use bytes::{Bytes, BytesMut};
use resp::command::{Command, Merge as Split, Route};
use resp::{write, Frame, Request};
use ring::ServerId;

use crate::cluster::Topology;
use crate::jobs::{Jobs, Part, Round};
use crate::owners::{any_server, cross_server, NO_SERVERS};

/// What counts as "not here, ask the next replica".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Miss {
    /// A null bulk string (GET).
    Null,
    /// `:0` (EXISTS).
    Zero,
    /// `:-2`, no such key (TTL, PTTL).
    NoKey,
    /// Every reply is final.
    Never,
}

impl Miss {
    fn of(name: &str) -> Self {
        match name {
            "get" => Miss::Null,
            "exists" => Miss::Zero,
            "ttl" | "pttl" => Miss::NoKey,
            _ => Miss::Never,
        }
    }

    fn is_miss(self, reply: &[u8]) -> bool {
        match self {
            Miss::Null => reply == b"$-1\r\n" || reply == b"_\r\n",
            Miss::Zero => reply == b":0\r\n",
            Miss::NoKey => reply == b":-2\r\n",
            Miss::Never => false,
        }
    }
}

/// One single-key command and its replicas.
#[derive(Debug)]
struct Sub {
    request: Bytes,
    write: bool,
    miss: Miss,
    targets: Vec<ServerId>,
    /// Targets asked so far (reads ask one per round).
    asked: usize,
    /// Parts awaited: (round, part).
    pending: Vec<(usize, Part)>,
    /// The final reply.
    reply: Option<Bytes>,
    /// A miss seen on an earlier replica, kept in case the later ones fail.
    miss_seen: Option<Bytes>,
}

impl Sub {
    fn new(request: Bytes, name: &str, write: bool, targets: Vec<ServerId>) -> Self {
        Sub {
            request,
            write,
            miss: Miss::of(name),
            targets,
            asked: 0,
            pending: Vec::new(),
            reply: None,
            miss_seen: None,
        }
    }

    /// Sends the sub's first round.
    fn start(&mut self, jobs: &mut Jobs, round: usize) {
        let count = if self.write { self.targets.len() } else { 1 };
        for &target in &self.targets[..count] {
            let request = &self.request;
            self.pending.push((round, jobs.push(target, |out| out.extend_from_slice(request))));
        }
        self.asked = count;
    }

    /// Looks at the replies of the rounds so far; asks the next replica if needed.
    fn advance(&mut self, rounds: &[Round], next: &mut Jobs) {
        if self.reply.is_some() || self.pending.iter().any(|(round, _)| *round >= rounds.len()) {
            return;
        }
        let replies: Vec<Result<Bytes, String>> = self
            .pending
            .drain(..)
            .map(|(round, part)| match &rounds[round][part.job] {
                Ok(replies) => Ok(Bytes::copy_from_slice(replies.get(part.index))),
                Err(error) => Err(error.reply_text()),
            })
            .collect();
        if self.write {
            // An error reply from a reachable replica wins: the write was not acknowledged.
            let error_reply = replies.iter().flatten().find(|r| r.first() == Some(&b'-'));
            let acked = replies.iter().flatten().next();
            self.reply = Some(match (error_reply, acked, replies.iter().find_map(|r| r.as_ref().err())) {
                (Some(error), _, _) | (None, Some(error), _) => error.clone(),
                (None, None, Some(unreachable)) => error_bytes(unreachable),
                (None, None, None) => error_bytes(NO_SERVERS),
            });
            return;
        }
        match replies.into_iter().next() {
            Some(Ok(reply)) if !self.miss.is_miss(&reply) => self.reply = Some(reply),
            other => {
                match other {
                    Some(Ok(miss)) => self.miss_seen = Some(miss),
                    Some(Err(text)) if self.miss_seen.is_none() && self.asked == self.targets.len() => {
                        self.reply = Some(error_bytes(&text));
                        return;
                    }
                    _ => {}
                }
                if self.asked < self.targets.len() {
                    let target = self.targets[self.asked];
                    self.asked += 1;
                    let request = &self.request;
                    let round = rounds.len();
                    self.pending.push((round, next.push(target, |out| out.extend_from_slice(request))));
                } else {
                    self.reply = Some(self.miss_seen.take().unwrap_or_else(|| error_bytes(NO_SERVERS)));
                }
            }
        }
    }
}

fn error_bytes(text: &str) -> Bytes {
    let mut out = BytesMut::new();
    write::error(&mut out, text.as_bytes());
    out.freeze()
}

/// How the subs' replies become the command's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    /// One key: its reply unchanged.
    Single,
    /// MGET: an array of the values.
    Mget,
    /// DEL, EXISTS: the sum of the per-key integers.
    Sum,
    /// MSET: `+OK` if every key was acknowledged.
    AllOk,
}

/// A keyed command under replication: one sub per key.
#[derive(Debug)]
pub struct Replicated {
    merge: Merge,
    subs: Vec<Sub>,
}

impl Replicated {
    /// Plans `request` (argument count checked, keyed) on the replicas of its keys.
    pub fn plan(command: &Command, request: &Request, topology: &Topology, jobs: &mut Jobs) -> Result<Self, String> {
        if topology.ring.is_empty() {
            return Err(NO_SERVERS.into());
        }
        let args = &request.args;
        let encode = |parts: &[&[u8]]| {
            let mut out = BytesMut::new();
            write::command(&mut out, parts);
            out.freeze()
        };
        let positions = command.key_positions(args).unwrap_or_default();
        let (merge, subs): (Merge, Vec<Sub>) = match command.route {
            Route::Split(Split::AllOk) => {
                let subs = positions
                    .iter()
                    .filter_map(|&i| Some((args.get(i)?, args.get(i + 1)?)))
                    .map(|(k, v)| Sub::new(encode(&[b"SET", k, v]), "set", true, topology.replicas(k)))
                    .collect();
                (Merge::AllOk, subs)
            }
            Route::Split(split) => {
                let (name, merge) = match split {
                    Split::Values => ("get", Merge::Mget),
                    _ => (command.name, Merge::Sum),
                };
                let subs = positions
                    .iter()
                    .map(|&i| {
                        let sub_name: &[u8] = if merge == Merge::Mget { b"GET" } else { &args[0] };
                        Sub::new(encode(&[sub_name, &args[i]]), name, command.is_write(), topology.replicas(&args[i]))
                    })
                    .collect();
                (merge, subs)
            }
            _ => {
                // One command on the replicas of its keys, which must be the same servers.
                let targets = match positions.first() {
                    Some(&first) => topology.replicas(&args[first]),
                    None => any_server(topology).map(|id| vec![id])?,
                };
                if let Some(&other) = positions.iter().find(|&&i| topology.replicas(&args[i]) != targets) {
                    let others = topology.replicas(&args[other]);
                    let mut servers = targets.clone();
                    servers.extend(others.into_iter().filter(|id| !targets.contains(id)));
                    return Err(cross_server(topology, &servers));
                }
                let mut out = BytesMut::new();
                request.encode(&mut out);
                (Merge::Single, vec![Sub::new(out.freeze(), command.name, command.is_write(), targets)])
            }
        };
        let mut planned = Replicated { merge, subs };
        for sub in &mut planned.subs {
            sub.start(jobs, 0);
        }
        Ok(planned)
    }

    /// Moves every sub along after a round; new requests go into `next`.
    pub fn advance(&mut self, rounds: &[Round], next: &mut Jobs) {
        for sub in &mut self.subs {
            sub.advance(rounds, next);
        }
    }

    /// Writes the merged reply; a value no replica could read is a miss in `protocol`.
    pub fn write(&self, protocol: resp::Protocol, out: &mut BytesMut) {
        let replies: Vec<&[u8]> =
            self.subs.iter().map(|s| s.reply.as_deref().unwrap_or(b"-ERR no reply\r\n")).collect();
        if let (Merge::Single, Some(reply)) = (self.merge, replies.first()) {
            out.extend_from_slice(reply);
            return;
        }
        if let Some(error) = replies.iter().find(|r| r.first() == Some(&b'-') && !matches!(self.merge, Merge::Mget)) {
            out.extend_from_slice(error);
            return;
        }
        match self.merge {
            Merge::Single | Merge::Mget => {
                write::array_header(out, replies.len());
                // A value that could not be read from any replica reads as a miss.
                replies.iter().for_each(|r| {
                    if r.first() == Some(&b'-') {
                        write::null(out, protocol)
                    } else {
                        out.extend_from_slice(r)
                    }
                });
            }
            Merge::Sum => {
                let total = replies.iter().map(|r| parse_integer(r)).sum();
                write::integer(out, total);
            }
            Merge::AllOk => write::simple(out, b"OK"),
        }
    }
}

fn parse_integer(reply: &[u8]) -> i64 {
    let mut bytes = BytesMut::from(reply);
    match Frame::parse(&mut bytes, &resp::Limits::default()) {
        Ok(Some(Frame::Integer(n))) => n,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_miss_asks_the_next_replica() {
        assert!(Miss::of("get").is_miss(b"$-1\r\n"));
        assert!(Miss::of("get").is_miss(b"_\r\n"), "RESP3's null");
        assert!(!Miss::of("get").is_miss(b"$1\r\nv\r\n"));
        assert!(Miss::of("exists").is_miss(b":0\r\n"));
        assert!(Miss::of("ttl").is_miss(b":-2\r\n"));
        assert!(!Miss::of("ttl").is_miss(b":-1\r\n"));
        assert!(!Miss::of("incr").is_miss(b":0\r\n"), "writes are never retried elsewhere");
    }
}
