//! Counters for INFO.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Connection and command counters, updated without locks.
#[derive(Debug, Default)]
pub struct Stats {
    clients: AtomicUsize,
    connections: AtomicU64,
    commands: AtomicU64,
}

/// Counts a client as connected until dropped.
pub struct ClientGuard<'a>(&'a Stats);

impl Drop for ClientGuard<'_> {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Relaxed);
    }
}

impl Stats {
    /// Records a new client; it counts as connected while the guard lives.
    pub fn client_connected(&self) -> ClientGuard<'_> {
        self.clients.fetch_add(1, Relaxed);
        self.connections.fetch_add(1, Relaxed);
        ClientGuard(self)
    }

    /// Records one command.
    pub fn record_command(&self) {
        self.commands.fetch_add(1, Relaxed);
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.clients.load(Relaxed)
    }

    /// Connections accepted since start.
    pub fn connections(&self) -> u64 {
        self.connections.load(Relaxed)
    }

    /// Commands run since start.
    pub fn commands(&self) -> u64 {
        self.commands.load(Relaxed)
    }
}
