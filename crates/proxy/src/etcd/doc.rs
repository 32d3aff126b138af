//! The pool's topology as one JSON document under `<prefix>/topology`: servers and weights,
//! the placement every proxy must share, and the migration under way. Pure: the changes
//! that ADD_SERVER, REMOVE_SERVER and REBALANCE make to it are checked and applied here,
//! then written with a compare-and-swap on the document's revision.

use serde::{Deserialize, Serialize};

use crate::cluster::MembershipError;
use crate::state_file::Server;

/// The document's format version.
pub const VERSION: u32 = 1;

/// What `<prefix>/topology` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolDoc {
    /// Format version ([`VERSION`]).
    pub version: u32,
    /// Counts the changes written; a migration is named by the epoch that started it.
    pub epoch: u64,
    /// How keys are placed: every proxy of the pool must agree, or keys split.
    pub placement: Placement,
    /// The ring's servers, sorted by address.
    pub servers: Vec<Server>,
    /// The migration under way, if any.
    pub migration: Option<Migration>,
}

/// The flags that decide where a key lands. A proxy started with other `vnodes`,
/// `replication` or `hash_tag` refuses to join the pool; the distribution and hash are the
/// pool's (SET_DISTRIBUTION changes them for every proxy), whatever a proxy's flags say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Virtual nodes per server (`--replicas`).
    pub vnodes: usize,
    /// `--distribution`.
    pub distribution: String,
    /// `--hash`, or the distribution's default.
    pub hash: String,
    /// Copies of each key (`--replication-factor`).
    pub replication: usize,
    /// `--hash-tag` (empty: keys hashed whole).
    pub hash_tag: String,
}

impl Placement {
    /// How the document names a distribution.
    pub fn distribution_name(distribution: ring::Distribution) -> String {
        format!("{distribution:?}")
    }

    /// How the document names a key hash (`default`: the distribution's own).
    pub fn hash_name(hash: Option<ring::Hash>) -> String {
        hash.map_or_else(|| "default".into(), |h| format!("{h:?}"))
    }

    /// The distribution and key hash the document names, or `None` for names this build
    /// does not know.
    pub fn ring(&self) -> Option<(ring::Distribution, Option<ring::Hash>)> {
        let distribution =
            ring::Distribution::ALL.iter().copied().find(|d| Self::distribution_name(*d) == self.distribution)?;
        let hash = match self.hash.as_str() {
            "default" => None,
            name => Some(ring::Hash::ALL.iter().copied().find(|h| Self::hash_name(Some(*h)) == name)?),
        };
        Some((distribution, hash))
    }

    /// The placement as a ring names it (`ketama with fnv1a_64`): the same words for
    /// `default` and the hash it stands for. `None` for names this build does not know.
    pub fn named(&self) -> Option<String> {
        let (distribution, hash) = self.ring()?;
        let ring = ring::HashRing::with_placement(self.vnodes, distribution, hash);
        Some(format!("{} with {}", distribution.name(), ring.hash_name()))
    }

    /// Whether a proxy with placement `other` may serve this pool: the same virtual nodes,
    /// replication factor and hash tag (the distribution and hash it takes from the pool).
    pub fn admits(&self, other: &Placement) -> bool {
        (self.vnodes, self.replication, &self.hash_tag) == (other.vnodes, other.replication, &other.hash_tag)
    }
}

/// A migration of the pool: every proxy routes with the old and new rings until the mover
/// (one proxy, elected) has moved every key and clears it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    /// The epoch of the change that started it.
    pub id: u64,
    /// The servers before the change: a proxy that starts mid-migration builds the old ring
    /// from them, so it knows where keys may still be.
    pub previous: Vec<Server>,
    /// Servers removed with MIGRATE, still reachable until their keys are moved away.
    pub draining: Vec<String>,
    /// The placement before a SET_DISTRIBUTION: the old ring is built with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_placement: Option<Placement>,
}

/// A change asked of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `ADD_SERVER addr weight [MIGRATE]`.
    Add {
        /// `host:port`.
        addr: String,
        /// Units of virtual nodes.
        weight: u32,
        /// Move the keys that change owner.
        migrate: bool,
    },
    /// `REMOVE_SERVER addr [MIGRATE]`.
    Remove {
        /// `host:port`.
        addr: String,
        /// Drain its keys to their new owners.
        migrate: bool,
    },
    /// `SET_DISTRIBUTION name [hash] [MIGRATE]`: the same servers, placed by another
    /// distribution and key hash (named as [`Placement`] names them).
    Place {
        /// [`Placement::distribution_name`].
        distribution: String,
        /// [`Placement::hash_name`].
        hash: String,
        /// Move every key to where it now belongs.
        migrate: bool,
    },
    /// REBALANCE: move every key that is not where the ring puts it.
    Rebalance,
}

impl PoolDoc {
    /// A first document with `servers` and no migration.
    pub fn new(placement: Placement, mut servers: Vec<Server>) -> Self {
        servers.sort_by(|a, b| a.addr.cmp(&b.addr));
        Self { version: VERSION, epoch: 0, placement, servers, migration: None }
    }

    /// Whether `addr` is in the ring.
    pub fn contains(&self, addr: &str) -> bool {
        self.servers.iter().any(|s| s.addr == addr)
    }

    /// The document after `change`, or why it is refused (the same reasons as one proxy's
    /// ring gives).
    ///
    /// Asking for the placement the pool already has is answered as such even while a
    /// migration runs: a proxy that has not yet seen the change it races with is told the
    /// truth, not to wait.
    pub fn apply(&self, change: &Change) -> Result<PoolDoc, MembershipError> {
        if let Change::Place { distribution, hash, .. } = change {
            let wanted = Placement { distribution: distribution.clone(), hash: hash.clone(), ..self.placement.clone() };
            if let Some(same) = self.placement.named().filter(|now| wanted.named().as_ref() == Some(now)) {
                return Err(MembershipError::SamePlacement(same));
            }
        }
        if self.migration.is_some() {
            return Err(MembershipError::MigrationRunning);
        }
        let mut next = self.clone();
        next.epoch += 1;
        let migration = |draining: Vec<String>| Migration {
            id: next.epoch,
            previous: self.servers.clone(),
            draining,
            previous_placement: None,
        };
        match change {
            Change::Add { addr, weight, migrate } => {
                if self.contains(addr) {
                    return Err(MembershipError::AlreadyPresent(addr.clone()));
                }
                next.servers.push(Server { addr: addr.clone(), weight: (*weight).max(1) });
                next.servers.sort_by(|a, b| a.addr.cmp(&b.addr));
                next.migration = migrate.then(|| migration(Vec::new()));
            }
            Change::Remove { addr, migrate } => {
                if !self.contains(addr) {
                    return Err(MembershipError::NotPresent(addr.clone()));
                }
                next.servers.retain(|s| &s.addr != addr);
                next.migration = migrate.then(|| migration(vec![addr.clone()]));
            }
            Change::Place { distribution, hash, migrate } => {
                next.placement.distribution = distribution.clone();
                next.placement.hash = hash.clone();
                next.migration = migrate
                    .then(|| Migration { previous_placement: Some(self.placement.clone()), ..migration(Vec::new()) });
            }
            Change::Rebalance => next.migration = Some(migration(Vec::new())),
        }
        Ok(next)
    }

    /// The document once migration `id` is complete (unchanged if another one runs).
    pub fn finished(&self, id: u64) -> Option<PoolDoc> {
        let running = self.migration.as_ref()?;
        (running.id == id).then(|| PoolDoc { epoch: self.epoch + 1, migration: None, ..self.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement() -> Placement {
        Placement {
            vnodes: 3,
            distribution: "seed".into(),
            hash: "fnv1a_32".into(),
            replication: 1,
            hash_tag: String::new(),
        }
    }

    fn server(addr: &str) -> Server {
        Server { addr: addr.into(), weight: 1 }
    }

    #[test]
    fn changes_are_checked_like_one_proxys_ring() {
        let doc = PoolDoc::new(placement(), vec![server("h:2"), server("h:1")]);
        assert_eq!(doc.servers[0].addr, "h:1", "servers are sorted");
        let add = Change::Add { addr: "h:1".into(), weight: 1, migrate: false };
        assert_eq!(doc.apply(&add), Err(MembershipError::AlreadyPresent("h:1".into())));
        let remove = Change::Remove { addr: "h:9".into(), migrate: false };
        assert_eq!(doc.apply(&remove), Err(MembershipError::NotPresent("h:9".into())));
        let added = doc.apply(&Change::Add { addr: "h:3".into(), weight: 2, migrate: false }).unwrap();
        assert_eq!(added.epoch, 1);
        assert_eq!(added.servers.len(), 3);
        assert_eq!(added.migration, None);
    }

    #[test]
    fn a_migration_blocks_changes_until_it_finishes() {
        let doc = PoolDoc::new(placement(), vec![server("h:1"), server("h:2")]);
        let moving = doc.apply(&Change::Remove { addr: "h:2".into(), migrate: true }).unwrap();
        let migration = moving.migration.clone().unwrap();
        assert_eq!(migration.draining, ["h:2"]);
        assert_eq!(migration.previous, doc.servers);
        assert_eq!(moving.apply(&Change::Rebalance), Err(MembershipError::MigrationRunning));
        assert_eq!(moving.finished(migration.id + 1), None, "another migration's end changes nothing");
        let done = moving.finished(migration.id).unwrap();
        assert_eq!(done.migration, None);
        assert_eq!(done.epoch, moving.epoch + 1);
        assert!(done.apply(&Change::Rebalance).is_ok());
    }

    #[test]
    fn a_placement_change_keeps_the_servers_and_remembers_the_old_placement() {
        let doc = PoolDoc::new(placement(), vec![server("h:1"), server("h:2")]);
        let ketama = Placement::distribution_name(ring::Distribution::Ketama);
        let fnv = Placement::hash_name(Some(ring::Hash::Fnv1a_64));
        let change = Change::Place { distribution: ketama.clone(), hash: fnv.clone(), migrate: true };
        let placed = doc.apply(&change).unwrap();
        // The same placement again, even named by its default hash, is answered as such
        // while the migration runs, not with "a migration is running".
        let same = Change::Place { distribution: ketama.clone(), hash: Placement::hash_name(None), migrate: true };
        assert_eq!(placed.apply(&same), Err(MembershipError::SamePlacement("ketama with fnv1a_64".into())));
        assert_eq!(placed.servers, doc.servers);
        assert_eq!(placed.placement.ring(), Some((ring::Distribution::Ketama, Some(ring::Hash::Fnv1a_64))));
        assert_eq!(placed.migration.as_ref().and_then(|m| m.previous_placement.clone()), Some(doc.placement.clone()));
        assert!(placed.placement.admits(&doc.placement), "vnodes, replication and hash tag unchanged");
        let done = placed.finished(placed.migration.as_ref().unwrap().id).unwrap();
        let again = Change::Place { distribution: ketama, hash: fnv, migrate: false };
        assert!(matches!(done.apply(&again), Err(MembershipError::SamePlacement(_))));
        let other = Placement { vnodes: 160, ..doc.placement.clone() };
        assert!(!doc.placement.admits(&other));
        // A document written before placements could change reads as before.
        let text = serde_json::to_string(&placed).unwrap().replace(r#","previous_placement":null"#, "");
        assert!(serde_json::from_str::<PoolDoc>(&text).is_ok());
    }

    #[test]
    fn round_trips_through_json() {
        let doc = PoolDoc::new(placement(), vec![server("h:1")]).apply(&Change::Rebalance).unwrap();
        let text = serde_json::to_string(&doc).unwrap();
        assert_eq!(serde_json::from_str::<PoolDoc>(&text).unwrap(), doc);
    }
}
