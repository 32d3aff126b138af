//! The automated walkthrough of the seed demo "Consistent Hashing in Action".
//!
//! It drives a running proxy (`ADD_SERVER`, `ROUTE`, `SET`, `GET`, `REMOVE_SERVER`) and three
//! cache servers, and prints what happens to eight keys as servers join and leave the ring:
//! which keys move, which reads miss, and why consistent hashing keeps that small.
//!
//! - [`client`]: a small blocking RESP2 client (std `TcpStream`, timeouts, greeting-tolerant).
//! - [`walkthrough`]: the numbered steps, the clean start and the closing summary.
//! - [`report`]: pure formatting (aligned tables, the summary line, bars), unit-tested.
//! - [`balance`]: pure counts over 10,000 keys with the `ring` crate (spread, churn).
//! - [`cluster`]: the small cluster the replication step starts for itself, stopped on drop.
//!
//! `cargo run -p demo` runs it against the seed's ports; `./demo.sh` starts the cluster first.
//! With `--all` the walkthrough continues after the seed's seven steps with what production
//! needs: migration, virtual nodes, consistent hashing versus `hash mod N`, replication.
#![warn(missing_docs)]

pub mod balance;
pub mod client;
pub mod cluster;
pub mod picture;
pub mod report;
pub mod walkthrough;

use anyhow::{bail, Result};

pub use walkthrough::{run, run_all, Walkthrough};

/// The proxy the seed's walkthrough talks to.
pub const DEFAULT_PROXY: &str = "127.0.0.1:6380";
/// The seed's three cache servers, in the order they are labelled cache-A, cache-B, cache-C.
pub const DEFAULT_SERVERS: [&str; 3] = ["127.0.0.1:6381", "127.0.0.1:6382", "127.0.0.1:6383"];
/// The eight keys of the seed's walkthrough, in the order they are shown.
pub const DEMO_KEYS: [&str; 8] = [
    "user:1001",
    "user:2002",
    "session:abc",
    "session:xyz",
    "product:laptop",
    "product:phone",
    "order:99",
    "cart:alice",
];

/// The value the walkthrough stores under `key`: `value-for-<key>`.
pub fn value_for(key: &str) -> String {
    format!("value-for-{key}")
}

/// The label of the `index`-th cache server: `cache-A`, `cache-B`, ...
pub fn label(index: usize) -> String {
    // Past Z (never with the seed's three servers) fall back to numbers.
    match u8::try_from(index).ok().filter(|&i| i < 26) {
        Some(i) => format!("cache-{}", char::from(b'A' + i)),
        None => format!("cache-{}", index + 1),
    }
}

/// What the walkthrough runs against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The proxy's `host:port`.
    pub proxy: String,
    /// The cache servers' `host:port`, labelled cache-A, cache-B, cache-C in that order.
    pub servers: Vec<String>,
    /// Where to write a picture of the ring after each step (`step-NN.svg`); `None`: none.
    pub svg_dir: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            proxy: DEFAULT_PROXY.to_string(),
            servers: DEFAULT_SERVERS.iter().map(|s| s.to_string()).collect(),
            svg_dir: None,
        }
    }
}

impl Config {
    /// Checks what the walkthrough needs: exactly three distinct servers, none of them the
    /// proxy, every address in `host:port` form.
    pub fn validate(&self) -> Result<()> {
        if self.servers.len() != 3 {
            bail!(
                "--servers needs exactly three addresses (cache-A, cache-B, cache-C), got {}: {}",
                self.servers.len(),
                self.servers.join(",")
            );
        }
        for addr in std::iter::once(&self.proxy).chain(&self.servers) {
            if split_host_port(addr).is_none() {
                bail!("`{addr}` is not a host:port address (for example 127.0.0.1:6381)");
            }
        }
        for (i, addr) in self.servers.iter().enumerate() {
            if self.servers[..i].contains(addr) {
                bail!("--servers lists {addr} twice; the three cache servers must differ");
            }
            if *addr == self.proxy {
                bail!("{addr} is given both as the proxy and as a cache server");
            }
        }
        Ok(())
    }

    /// How to start the cluster this configuration expects, for when something is missing.
    pub fn how_to_start(&self) -> String {
        let mut text = String::from(
            "Start everything with one command (builds, starts the cluster, runs the demo):\n\
             \x20   ./demo.sh\n\
             or start the cache servers and the proxy yourself, one terminal each:\n",
        );
        for (i, addr) in self.servers.iter().enumerate() {
            text.push_str(&format!("    {}\n", start_command("server", addr, Some(&label(i)))));
        }
        text.push_str(&format!("    {}\n", start_command("proxy", &self.proxy, None)));
        text.push_str("and run the demo again:\n    cargo run -p demo");
        let default = Config::default();
        if self.proxy != default.proxy {
            text.push_str(&format!(" -- --proxy {}", self.proxy));
        }
        if self.servers != default.servers {
            let sep = if self.proxy == default.proxy { " --" } else { "" };
            text.push_str(&format!("{sep} --servers {}", self.servers.join(",")));
        }
        text
    }
}

/// `cargo run -p server -- --port 6381 --name cache-A`, with `--bind` when the host is not
/// the binaries' default.
pub fn start_command(package: &str, addr: &str, name: Option<&str>) -> String {
    let (host, port) = split_host_port(addr).unwrap_or(("127.0.0.1", addr));
    let mut command = format!("cargo run -p {package} -- --port {port}");
    if let Some(name) = name {
        command.push_str(&format!(" --name {name}"));
    }
    if host != "127.0.0.1" {
        command.push_str(&format!(" --bind {host}"));
    }
    command
}

/// `("127.0.0.1", "6381")` from `127.0.0.1:6381`; `None` without a numeric port.
fn split_host_port(addr: &str) -> Option<(&str, &str)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty() && port.parse::<u16>().is_ok()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(proxy: &str, servers: &[&str]) -> Config {
        Config { proxy: proxy.to_string(), servers: servers.iter().map(|s| s.to_string()).collect(), svg_dir: None }
    }

    #[test]
    fn labels_follow_the_seed() {
        assert_eq!(label(0), "cache-A");
        assert_eq!(label(2), "cache-C");
        assert_eq!(label(26), "cache-27");
        assert_eq!(value_for("user:1001"), "value-for-user:1001");
    }

    #[test]
    fn default_config_is_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn bad_configs_are_explained() {
        let two = config("127.0.0.1:6380", &["127.0.0.1:6381", "127.0.0.1:6382"]);
        assert!(two.validate().unwrap_err().to_string().contains("exactly three"));
        let twice = config("127.0.0.1:6380", &["a:1", "a:1", "b:2"]);
        assert!(twice.validate().unwrap_err().to_string().contains("twice"));
        let no_port = config("127.0.0.1", &["a:1", "b:1", "c:1"]);
        assert!(no_port.validate().unwrap_err().to_string().contains("host:port"));
        let proxy_too = config("a:1", &["a:1", "b:1", "c:1"]);
        assert!(proxy_too.validate().is_err());
    }

    #[test]
    fn how_to_start_names_every_command() {
        let text = Config::default().how_to_start();
        assert!(text.contains("./demo.sh"));
        assert!(text.contains("cargo run -p server -- --port 6381 --name cache-A"));
        assert!(text.contains("cargo run -p server -- --port 6382 --name cache-B"));
        assert!(text.contains("cargo run -p server -- --port 6383 --name cache-C"));
        assert!(text.contains("cargo run -p proxy -- --port 6380"));
        assert!(text.ends_with("cargo run -p demo"));
    }

    #[test]
    fn how_to_start_follows_other_addresses() {
        let text = config("127.0.0.1:7000", &["10.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]).how_to_start();
        assert!(text.contains("cargo run -p server -- --port 7001 --name cache-A --bind 10.0.0.1"));
        assert!(text.contains("cargo run -p proxy -- --port 7000\n"));
        assert!(text.ends_with(
            "cargo run -p demo -- --proxy 127.0.0.1:7000 --servers 10.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
        ));
    }
}
