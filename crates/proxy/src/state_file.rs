//! The ring on disk (`--state-file`): the servers and their weights as a small JSON file,
//! rewritten after every ring change and read at start, so a restarted proxy routes keys
//! where it did before it stopped.
//!
//! Writes are atomic: a temporary file in the same directory is written, synced and renamed
//! over the old one (then the directory is synced), so a crash leaves the old ring or the new
//! one, never half of either.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::cluster::Topology;

/// The file's format version.
const VERSION: u32 = 1;

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Format version ([`VERSION`]).
    pub version: u32,
    /// The ring's servers, sorted by address.
    pub servers: Vec<Server>,
    /// The distribution, when SET_DISTRIBUTION changed it from the flags' (absent in files
    /// written before it existed: the flags' then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    /// The key hash's name, with `distribution` (absent: the seed's own FNV-1a-32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// One server of the ring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// `host:port` as given to ADD_SERVER.
    pub addr: String,
    /// Units of virtual nodes.
    pub weight: u32,
}

impl State {
    /// The servers of `topology`'s ring.
    pub fn of(topology: &Topology) -> State {
        let ring = &topology.ring;
        let mut servers: Vec<Server> =
            ring.server_ids().map(|id| Server { addr: ring.server(id).to_string(), weight: ring.weight(id) }).collect();
        servers.sort_by(|a, b| a.addr.cmp(&b.addr));
        State {
            version: VERSION,
            servers,
            distribution: Some(ring.distribution().name().to_string()),
            hash: ring.hash().map(|hash| hash.name().to_string()),
        }
    }
}

/// Reads the file: `None` when it does not exist yet.
pub fn load(path: &Path) -> anyhow::Result<Option<State>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("reading the state file {}", path.display())),
    };
    let state: State =
        serde_json::from_str(&text).with_context(|| format!("the state file {} is not valid", path.display()))?;
    anyhow::ensure!(state.version == VERSION, "the state file {} has version {}", path.display(), state.version);
    Ok(Some(state))
}

/// The distribution and hash `state` records, if it records them (`None` for the hash: the
/// seed's own).
pub fn placement(state: &State) -> anyhow::Result<Option<(ring::Distribution, Option<ring::Hash>)>> {
    let Some(distribution) = &state.distribution else { return Ok(None) };
    let distribution = ring::Distribution::from_name(distribution)
        .with_context(|| format!("the state file names an unknown distribution '{distribution}'"))?;
    let hash = match &state.hash {
        Some(hash) => Some(
            ring::Hash::from_name(hash).with_context(|| format!("the state file names an unknown hash '{hash}'"))?,
        ),
        None => None,
    };
    Ok(Some((distribution, hash)))
}

/// Writes `state` to `path` atomically (temporary file, fsync, rename, fsync of the
/// directory). Concurrent callers take turns.
pub fn save(path: &Path, state: &State) -> std::io::Result<()> {
    static SAVING: Mutex<()> = Mutex::new(());
    let _turn = SAVING.lock().unwrap_or_else(|p| p.into_inner());
    let mut text = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    text.push(b'\n');
    write_atomically(path, &text)
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one, never half of
/// either: a temporary file in the same directory, synced, renamed over `path`, then the
/// directory synced (the state file and `config_file` share it).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Saves the current ring of `proxy` if it has a state file, logging a failure (the ring
/// change itself stands).
pub fn save_ring(proxy: &crate::Proxy) {
    let Some(path) = &proxy.state_file else { return };
    let state = State::of(&proxy.cluster.snapshot());
    if let Err(error) = save(path, &state) {
        tracing::error!(%error, path = %path.display(), "[proxy] could not write the state file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_atomically() {
        let dir = std::env::temp_dir().join(format!("state-file-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ring.json");
        assert_eq!(load(&path).unwrap(), None);
        let state = State {
            version: VERSION,
            servers: vec![
                Server { addr: "127.0.0.1:6381".into(), weight: 1 },
                Server { addr: "h:2".into(), weight: 4 },
            ],
            distribution: Some("ketama".into()),
            hash: Some("md5".into()),
        };
        save(&path, &state).unwrap();
        save(&path, &state).unwrap();
        assert_eq!(load(&path).unwrap(), Some(state));
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left");
        // A file from before the placement was recorded still loads.
        std::fs::write(&path, r#"{"version": 1, "servers": [{"addr": "h:1", "weight": 1}]}"#).unwrap();
        assert_eq!(load(&path).unwrap().map(|s| (s.servers.len(), s.distribution)), Some((1, None)));
        std::fs::write(&path, "{not json").unwrap();
        assert!(load(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
