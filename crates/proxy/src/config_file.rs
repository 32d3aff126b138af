//! The ring written back to the `nutcracker.yml` the proxy was started from (`-c FILE`):
//! on `CONFIG REWRITE`, and after every ring change with `--write-config`. twemproxy has no
//! runtime topology, so its file is the truth operators keep; after an `ADD_SERVER` it should
//! say so, or the next restart of either proxy forgets the server.
//!
//! Only the pool's `servers:` list is rewritten, line by line in the file's own text: every
//! other line (other pools, comments, keys, their order) stays as it was. The list gets the
//! ring's servers as twemproxy writes them, `host:port:weight [name]`, in the ring's pool
//! order, indented as the list was. The write is atomic: a temporary file beside it, synced,
//! renamed over it, the directory synced.

use std::path::PathBuf;

use crate::cluster::Topology;

/// The file a proxy was started from.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// The `nutcracker.yml`.
    pub path: PathBuf,
    /// The pool this proxy serves (its top-level key).
    pub pool: String,
    /// Rewrite after every ring change (`--write-config`), not only on `CONFIG REWRITE`.
    pub write_on_change: bool,
}

/// Why the file could not be rewritten.
#[derive(Debug)]
pub enum RewriteError {
    /// Reading or writing it failed.
    Io(std::io::Error),
    /// Its text has no `servers:` list for the pool where it was at start.
    NoServersList(String),
}

impl std::fmt::Display for RewriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RewriteError::Io(error) => write!(f, "{error}"),
            RewriteError::NoServersList(pool) => write!(f, "no servers: list found for the pool {pool:?}"),
        }
    }
}

impl ConfigFile {
    /// Rewrites the pool's `servers:` list with `topology`'s ring; how many servers it lists.
    pub fn rewrite(&self, topology: &Topology) -> Result<usize, RewriteError> {
        let text = std::fs::read_to_string(&self.path).map_err(RewriteError::Io)?;
        let ring = &topology.ring;
        let servers: Vec<String> = ring
            .pool_order()
            .into_iter()
            .map(|id| {
                let (addr, label) = (ring.server(id), ring.label(id));
                match label != addr {
                    true => format!("{addr}:{} {label}", ring.weight(id)),
                    false => format!("{addr}:{}", ring.weight(id)),
                }
            })
            .collect();
        let mut rewritten = replace_servers(&text, &self.pool, &servers)
            .ok_or_else(|| RewriteError::NoServersList(self.pool.clone()))?;
        // SET_DISTRIBUTION may have changed these: twemproxy must read what the ring is.
        rewritten = set_pool_key(&rewritten, &self.pool, "distribution", ring.distribution().name());
        if let Some(hash) = ring.hash() {
            rewritten = set_pool_key(&rewritten, &self.pool, "hash", hash.name());
        }
        crate::state_file::write_atomically(&self.path, rewritten.as_bytes()).map_err(RewriteError::Io)?;
        Ok(servers.len())
    }
}

/// Rewrites the file after a ring change when `--write-config` asks for it, logging a
/// failure (the ring change itself stands).
pub fn save_if_asked(proxy: &crate::Proxy) {
    let Some(file) = proxy.config_file.as_ref().filter(|file| file.write_on_change) else { return };
    match file.rewrite(&proxy.cluster.snapshot()) {
        Ok(n) => tracing::info!("[proxy] wrote the ring ({n} servers) to {}", file.path.display()),
        Err(error) => tracing::error!(%error, path = %file.path.display(), "[proxy] could not rewrite the config file"),
    }
}

/// A line's indentation, in spaces.
fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Whether a line holds YAML (not blank, not a comment).
fn is_content(line: &str) -> bool {
    !line.trim().is_empty() && !line.trim_start().starts_with('#')
}

/// The lines of `pool`'s block: from its top-level key (`start`) to the next top-level key
/// or the end (`end`, exclusive).
fn pool_block(lines: &[&str], pool: &str) -> Option<(usize, usize)> {
    let start = lines.iter().position(|line| {
        indent(line) == 0 && line.trim_end().strip_suffix(':').is_some_and(|key| key.trim_matches('"') == pool)
    })?;
    let end = (start + 1..lines.len()).find(|&i| is_content(lines[i]) && indent(lines[i]) == 0).unwrap_or(lines.len());
    Some((start, end))
}

/// `lines` joined back, ending with a newline when `original` did.
fn join_like(lines: Vec<String>, original: &str) -> String {
    let mut text = lines.join("\n");
    if original.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// `text` with the `servers:` list of `pool` replaced by `servers`; `None` when the pool or
/// its list is not found.
fn replace_servers(text: &str, pool: &str, servers: &[String]) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let (start, end) = pool_block(&lines, pool)?;
    let key = (start + 1..end).find(|&i| lines[i].trim_start().starts_with("servers:"))?;
    let key_indent = indent(lines[key]);
    // The list: the lines after the key that are more indented, or list items at its level.
    let mut item_indent = None;
    let mut last = key;
    for (i, line) in lines.iter().enumerate().take(end).skip(key + 1) {
        if !is_content(line) {
            continue;
        }
        let deeper = indent(line) > key_indent || (indent(line) == key_indent && line.trim_start().starts_with('-'));
        if !deeper {
            break;
        }
        if line.trim_start().starts_with('-') {
            item_indent.get_or_insert(indent(line));
        }
        last = i;
    }
    let pad = " ".repeat(item_indent.unwrap_or(key_indent + 2));
    let mut out: Vec<String> = lines[..=key].iter().map(|l| l.to_string()).collect();
    out.extend(servers.iter().map(|server| format!("{pad}- {server}")));
    out.extend(lines[last + 1..].iter().map(|l| l.to_string()));
    Some(join_like(out, text))
}

/// `text` with the pool's scalar `key` set to `value`: its line replaced, or added after the
/// pool's first line when it has none (a pool that was found by `replace_servers`).
fn set_pool_key(text: &str, pool: &str, key: &str, value: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some((start, end)) = pool_block(&lines, pool) else { return text.to_string() };
    // The pool's keys sit at the indentation of its first key.
    let key_indent = (start + 1..end).find(|&i| is_content(lines[i])).map_or(2, |i| indent(lines[i]));
    let line = format!("{}{key}: {value}", " ".repeat(key_indent));
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let prefix = format!("{key}:");
    match (start + 1..end).find(|&i| indent(lines[i]) == key_indent && lines[i].trim_start().starts_with(&prefix)) {
        Some(i) => out[i] = line,
        None => out.insert(start + 1, line),
    }
    join_like(out, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# our pools\nalpha:\n  listen: 127.0.0.1:22121\n  hash: fnv1a_64\n  servers:\n   - 127.0.0.1:6379:1\n   # a comment in the list\n   - 127.0.0.1:6380:1 cache-b\n  redis: true\n\nbeta:\n  listen: 127.0.0.1:22122\n  servers:\n  - 10.0.0.1:6379:1\n";

    #[test]
    fn only_the_pools_server_list_changes() {
        let servers =
            vec!["127.0.0.1:6379:1".to_string(), "127.0.0.1:6380:1 cache-b".into(), "127.0.0.1:6381:2".into()];
        let out = replace_servers(FILE, "alpha", &servers).expect("rewritten");
        assert_eq!(
            out,
            "# our pools\nalpha:\n  listen: 127.0.0.1:22121\n  hash: fnv1a_64\n  servers:\n   - 127.0.0.1:6379:1\n   - 127.0.0.1:6380:1 cache-b\n   - 127.0.0.1:6381:2\n  redis: true\n\nbeta:\n  listen: 127.0.0.1:22122\n  servers:\n  - 10.0.0.1:6379:1\n"
        );
        let out = replace_servers(FILE, "beta", &["10.0.0.2:6379:1".to_string()]).expect("rewritten");
        assert!(out.ends_with("beta:\n  listen: 127.0.0.1:22122\n  servers:\n  - 10.0.0.2:6379:1\n"), "{out}");
        assert!(out.starts_with("# our pools\nalpha:\n"), "the other pool is untouched");
    }

    #[test]
    fn the_pools_distribution_and_hash_are_set_or_added() {
        let out = set_pool_key(FILE, "alpha", "hash", "md5");
        assert!(out.contains("alpha:\n  listen: 127.0.0.1:22121\n  hash: md5\n"), "{out}");
        let out = set_pool_key(&out, "alpha", "distribution", "maglev");
        assert!(out.starts_with("# our pools\nalpha:\n  distribution: maglev\n  listen:"), "{out}");
        assert!(
            out.ends_with("beta:\n  listen: 127.0.0.1:22122\n  servers:\n  - 10.0.0.1:6379:1\n"),
            "beta untouched: {out}"
        );
        assert_eq!(set_pool_key(FILE, "gamma", "hash", "md5"), FILE);
    }

    #[test]
    fn a_pool_without_a_list_is_not_rewritten() {
        assert_eq!(replace_servers(FILE, "gamma", &[]), None);
        assert_eq!(replace_servers("alpha:\n  listen: 1.2.3.4:1\n", "alpha", &[]), None);
    }

    #[test]
    fn what_it_writes_parses_back() {
        let servers = vec!["127.0.0.1:6379:3".to_string(), "127.0.0.1:6390:1 extra".into()];
        let out = replace_servers(FILE, "alpha", &servers).expect("rewritten");
        let value: serde_yaml::Value = serde_yaml::from_str(&out).expect("valid YAML");
        let list = &value["alpha"]["servers"];
        assert_eq!(list[0].as_str(), Some("127.0.0.1:6379:3"));
        assert_eq!(list[1].as_str(), Some("127.0.0.1:6390:1 extra"));
        assert_eq!(value["beta"]["servers"][0].as_str(), Some("10.0.0.1:6379:1"));
    }
}
