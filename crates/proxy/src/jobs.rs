//! The requests of one batch bound for servers: encoded into one job per server (so a batch
//! costs one write per server), sent together, and their replies awaited together.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use resp::Protocol;
use ring::ServerId;
use smallvec::SmallVec;
use tokio::sync::oneshot;

use crate::backend::{Backend, BackendError, Replies};
use crate::cluster::Topology;

/// The replies of one round of jobs.
pub type Round = smallvec::SmallVec<[Result<Replies, BackendError>; 1]>;

/// Where one reply sits among the jobs of a batch: job `job`, reply `index` of it.
#[derive(Debug, Clone, Copy)]
pub struct Part {
    /// The job (one per server) in [`Jobs`].
    pub job: usize,
    /// The reply's position within the job.
    pub index: usize,
}

/// The requests of one batch, encoded per server, and the protocol of the client they come
/// from: they go on backend links that speak it, so the replies come back in it.
#[derive(Default)]
pub struct Jobs {
    /// Inline for one server: a batch that goes to one server allocates no list.
    jobs: SmallVec<[(ServerId, BytesMut, usize); 1]>,
    protocol: Protocol,
    /// Room each server's buffer starts with, so a pipeline is encoded without regrowing.
    room: usize,
}

/// Bytes added to a server's share of a batch for the room its buffer starts with.
const SHARE_SLACK: usize = 128;

/// The most room a job's buffer starts with; a larger batch grows it as usual.
const MAX_START_ROOM: usize = 64 * 1024;

impl Jobs {
    /// No requests yet, for a client speaking `protocol`.
    pub fn new(protocol: Protocol) -> Self {
        Self { jobs: SmallVec::new(), protocol, room: 0 }
    }

    /// No requests yet, for requests of about `bytes` encoded bytes in all, spread over
    /// `servers`: each server's buffer starts with room for twice its even share (all of it
    /// with one or two servers; up to [`MAX_START_ROOM`]). Room for the whole batch on every server
    /// made a pipeline's buffers too large for glibc's per-thread cache.
    pub fn with_room(protocol: Protocol, bytes: usize, servers: usize) -> Self {
        let share = if servers > 2 { bytes * 2 / servers + SHARE_SLACK } else { bytes };
        Self { jobs: SmallVec::new(), protocol, room: share.min(bytes).min(MAX_START_ROOM) }
    }

    /// Appends a request for `server`, encoded by `encode`; where its reply will be.
    pub fn push(&mut self, server: ServerId, encode: impl FnOnce(&mut BytesMut)) -> Part {
        self.push_many(server, 1, encode)
    }

    /// Appends `count` requests for `server` that must stay together (a transaction), encoded
    /// by `encode`; where the last one's reply will be.
    pub fn push_many(&mut self, server: ServerId, requests: usize, encode: impl FnOnce(&mut BytesMut)) -> Part {
        let job = match self.jobs.iter().position(|(s, _, _)| *s == server) {
            Some(job) => job,
            None => {
                self.jobs.push((server, BytesMut::with_capacity(self.room), 0));
                self.jobs.len() - 1
            }
        };
        let (_, bytes, count) = &mut self.jobs[job];
        encode(bytes);
        *count += requests;
        Part { job, index: *count - 1 }
    }

    /// Whether no request was added.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Sends every job to its server, then waits for all replies (they are all in flight
    /// at once). The result is indexed like [`Part::job`].
    ///
    /// The sending happens before the returned future is first polled, so the future holds
    /// only what awaits the replies (it is part of every batch's future).
    pub fn dispatch(self, topology: &Topology) -> impl std::future::Future<Output = Round> + '_ {
        let protocol = self.protocol;
        let mut waiting = self.send_pooled(topology);
        async move {
            // The common case, one server with a link at hand, waits inline; the others in a
            // future of their own.
            match waiting.pop() {
                Some((backend, Pending::Sent(receiver))) if waiting.is_empty() => {
                    let reply = receiver.await.unwrap_or_else(|_| Err(lost(backend)));
                    smallvec::smallvec![reply]
                }
                Some(last) => {
                    waiting.push(last);
                    Box::pin(collect(waiting, protocol)).await
                }
                None => Round::new(),
            }
        }
    }

    /// Sends each job on a pooled link of its server, without waiting; a job whose server has
    /// none at hand stays unsent.
    fn send_pooled(self, topology: &Topology) -> SmallVec<[(&Arc<Backend>, Pending); 1]> {
        let protocol = self.protocol;
        self.jobs
            .into_iter()
            .map(|(server, bytes, count)| {
                let backend = topology.backend(server);
                let pending = match backend.try_send_as(protocol, bytes.freeze(), count) {
                    Ok(receiver) => Pending::Sent(receiver),
                    Err(bytes) => Pending::Unsent(bytes, count),
                };
                (backend, pending)
            })
            .collect()
    }
}

/// Waits for the replies of every job of a batch, in order; first dials a link for a job
/// whose server had none at hand.
async fn collect(mut waiting: SmallVec<[(&Arc<Backend>, Pending); 1]>, protocol: Protocol) -> Round {
    // Rare, and boxed: the future of every batch stays small.
    for i in 0..waiting.len() {
        if let (backend, Pending::Unsent(bytes, count)) = &waiting[i] {
            let receiver = Box::pin(backend.send_as(protocol, bytes.clone(), *count)).await;
            waiting[i].1 = Pending::Sent(receiver);
        }
    }
    let mut results = Round::with_capacity(waiting.len());
    for (backend, pending) in waiting {
        let reply = match pending {
            Pending::Sent(receiver) => receiver.await.ok(),
            Pending::Unsent(..) => None,
        };
        results.push(reply.unwrap_or_else(|| Err(lost(backend))));
    }
    results
}

/// The error of a job whose link went away with its replies.
fn lost(backend: &Backend) -> BackendError {
    BackendError::Lost { addr: backend.addr().to_string() }
}

/// A job on its way: sent, with its replies to come, or waiting for a link to its server.
enum Pending {
    Sent(oneshot::Receiver<Result<Replies, BackendError>>),
    Unsent(Bytes, usize),
}
