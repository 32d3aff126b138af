//! Commands that change the ring: ADD_SERVER, REMOVE_SERVER, SET_DISTRIBUTION, REBALANCE (and
//! QUIT, which also ends a pipeline). They run between the requests before and after them.
//!
//! Where the change goes depends on the topology store: without `--topology`, this proxy's
//! ring changes at once (and its `--state-file`); with `--topology etcd://...`, the change is
//! written to the pool's document in etcd, and every proxy, this one included, applies it.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use resp::command::Command;
use resp::{write, Request};

use crate::etcd::doc::{Change, Placement};
use crate::flow::Flow;
use crate::migration::Migrator;
use crate::Proxy;

/// Runs a ring command (argument count checked) and writes its reply.
///
/// QUIT answers the seed's `+BYE` to a person typing (an inline request) and Redis's `+OK`
/// to programs.
pub async fn run(proxy: &Arc<Proxy>, command: &Command, request: &Request, out: &mut BytesMut) -> Flow {
    let outcome = match command.name {
        "quit" => {
            write::simple(out, if request.raw.is_none() { b"BYE" } else { b"OK" });
            return Flow::Quit;
        }
        "add_server" => add(proxy, &request.args).await,
        "remove_server" => remove(proxy, &request.args).await,
        "set_distribution" => set_distribution(proxy, &request.args).await,
        _ => rebalance(proxy).await,
    };
    match outcome {
        Ok(text) => {
            crate::state_file::save_ring(proxy);
            crate::config_file::save_if_asked(proxy);
            write::simple(out, text.as_bytes());
        }
        Err(text) => write::error(out, text.as_bytes()),
    }
    Flow::Continue
}

/// ADD_SERVER host:port [weight] [MIGRATE] [FORCE]
///
/// Refuses the proxy's own address (a key routed there would loop back into the proxy),
/// and, unless FORCE is given, a server that does not answer the handshake (AUTH with
/// `--server-password`, then PING) within the connect timeout.
async fn add(proxy: &Arc<Proxy>, args: &[Bytes]) -> Result<String, String> {
    let addr = text(&args[1]);
    let mut weight = 1;
    let mut migrate = proxy.migrate_by_default;
    let mut force = false;
    for option in &args[2..] {
        if option.eq_ignore_ascii_case(b"MIGRATE") {
            migrate = true;
        } else if option.eq_ignore_ascii_case(b"FORCE") {
            force = true;
        } else {
            weight = std::str::from_utf8(option)
                .ok()
                .and_then(|w| w.parse::<u32>().ok())
                .filter(|w| *w >= 1)
                .ok_or("ERR usage: ADD_SERVER host:port [weight] [MIGRATE] [FORCE] (weight: a positive integer)")?;
        }
    }
    crate::cluster::check_address(&addr).map_err(|e| e.reply_text())?;
    if is_own_address(&addr, proxy.listen) {
        return Err(format!("ERR {addr} is this proxy's own address"));
    }
    if !force && !proxy.cluster.snapshot().ring.contains(&addr) {
        if let Err(error) = proxy.cluster.new_backend(&addr).check().await {
            let reason = error.reply_text();
            let reason = reason.strip_prefix("ERR ").unwrap_or(&reason);
            return Err(format!(
                "ERR {addr} did not answer, so it was not added ({reason}); ADD_SERVER {addr} FORCE adds it anyway"
            ));
        }
    }
    match &proxy.shared {
        Some(shared) => shared.propose(proxy, &Change::Add { addr: addr.clone(), weight, migrate }).await?,
        None => change(proxy, migrate, |migrating| proxy.cluster.add(&addr, weight, migrating))?,
    }
    tracing::info!("[proxy] Added server: {addr}");
    Ok(if migrate { format!("OK added {addr}, migrating keys (see MIGRATION)") } else { format!("OK added {addr}") })
}

/// REMOVE_SERVER host:port [MIGRATE]
async fn remove(proxy: &Arc<Proxy>, args: &[Bytes]) -> Result<String, String> {
    let addr = text(&args[1]);
    let migrate = match args.get(2) {
        Some(option) if option.eq_ignore_ascii_case(b"MIGRATE") => true,
        Some(_) => return Err("ERR usage: REMOVE_SERVER host:port [MIGRATE]".into()),
        None => proxy.migrate_by_default,
    };
    match &proxy.shared {
        Some(shared) => shared.propose(proxy, &Change::Remove { addr: addr.clone(), migrate }).await?,
        None => change(proxy, migrate, |migrating| proxy.cluster.remove(&addr, migrate, migrating))?,
    }
    tracing::info!("[proxy] Removed server: {addr}");
    Ok(if migrate {
        format!("OK removed {addr}, draining its keys (see MIGRATION)")
    } else {
        format!("OK removed {addr}")
    })
}

/// The usage line of SET_DISTRIBUTION.
const SET_DISTRIBUTION_USAGE: &str =
    "ERR usage: SET_DISTRIBUTION seed|ketama|modula|maglev|rendezvous [hash] [MIGRATE]";

/// SET_DISTRIBUTION name [hash] [MIGRATE]: the online switch of placement. The ring is
/// rebuilt with the same servers and the new distribution and key hash; with MIGRATE (or
/// `--migrate`) every key moves to where it now belongs while clients keep reading and
/// writing (a key not moved yet is moved before a command uses it: no miss); without it,
/// keys miss until REBALANCE, as after the seed's ADD_SERVER.
async fn set_distribution(proxy: &Arc<Proxy>, args: &[Bytes]) -> Result<String, String> {
    let name = text(&args[1]).to_ascii_lowercase();
    let distribution = ring::Distribution::from_name(&name).ok_or_else(|| {
        format!("ERR unknown distribution '{name}' ({})", &SET_DISTRIBUTION_USAGE["ERR usage: ".len()..])
    })?;
    let mut hash = None;
    let mut migrate = proxy.migrate_by_default;
    for option in &args[2..] {
        if option.eq_ignore_ascii_case(b"MIGRATE") {
            migrate = true;
        } else {
            let name = text(option).to_ascii_lowercase();
            let known = ring::Hash::from_name(&name).ok_or_else(|| {
                let names: Vec<&str> = ring::Hash::ALL.iter().map(|h| h.name()).collect();
                format!("ERR unknown hash '{name}' (one of {})", names.join(", "))
            })?;
            hash = Some(known);
        }
    }
    let current = proxy.cluster.snapshot().ring.distribution();
    if [distribution, current].contains(&ring::Distribution::Random) {
        // Random sends each request anywhere: there is no "where a key belongs" to move to
        // or from.
        return Err("ERR keys cannot be moved to or from the random distribution; restart the pool with it".into());
    }
    let ring = proxy.cluster.snapshot().ring.clone();
    let wanted = ring::HashRing::with_placement(ring.vnodes(), distribution, hash);
    if (wanted.distribution(), wanted.hash_name()) == (ring.distribution(), ring.hash_name()) {
        let same = crate::cluster::MembershipError::SamePlacement(format!(
            "{} with {}",
            distribution.name(),
            ring.hash_name()
        ));
        return Err(same.reply_text());
    }
    match &proxy.shared {
        // The pool's document holds the placement every proxy shares: the change goes there,
        // and every proxy, this one included, rebuilds its ring from it.
        Some(shared) => {
            let change = Change::Place {
                distribution: Placement::distribution_name(distribution),
                hash: Placement::hash_name(hash),
                migrate,
            };
            shared.propose(proxy, &change).await?
        }
        None => change(proxy, migrate, |migrating| proxy.cluster.set_placement(distribution, hash, migrating))?,
    }
    let placed = proxy.cluster.snapshot();
    let now = format!("{} with {}", placed.ring.distribution().name(), placed.ring.hash_name());
    tracing::info!("[proxy] Distribution set to {now}");
    Ok(if migrate {
        format!("OK keys now placed by {now}, migrating keys (see MIGRATION)")
    } else {
        format!("OK keys now placed by {now}; REBALANCE moves the keys already stored")
    })
}

/// REBALANCE: move every key that is not where the current ring puts it.
async fn rebalance(proxy: &Arc<Proxy>) -> Result<String, String> {
    if let Some(shared) = &proxy.shared {
        shared.propose(proxy, &Change::Rebalance).await?;
        tracing::info!("[proxy] Rebalancing the pool");
        return Ok("OK rebalancing (see MIGRATION)".into());
    }
    if !proxy.migrator.try_begin() {
        return Err("ERR a migration is running; wait for it to finish (MIGRATION)".into());
    }
    tracing::info!("[proxy] Rebalancing");
    let previous = proxy.cluster.refresh();
    Migrator::spawn(proxy.clone(), Some(previous));
    Ok("OK rebalancing (see MIGRATION)".into())
}

/// Applies a ring change; with `migrate`, claims the migrator first (so no client command
/// slips between the change and the moves) and starts it after.
fn change(
    proxy: &Arc<Proxy>,
    migrate: bool,
    apply: impl FnOnce(bool) -> Result<(), crate::cluster::MembershipError>,
) -> Result<(), String> {
    if !migrate {
        return apply(proxy.migrator.is_running()).map_err(|e| e.reply_text());
    }
    if !proxy.migrator.try_begin() {
        return Err("ERR a migration is running; wait for it to finish (MIGRATION)".into());
    }
    let previous = proxy.cluster.snapshot();
    if let Err(error) = apply(false) {
        proxy.migrator.abort();
        return Err(error.reply_text());
    }
    Migrator::spawn(proxy.clone(), Some(previous));
    Ok(())
}

/// Whether `addr` (`host:port`) names the proxy's listening socket `listen`: its port on
/// loopback, `localhost`, the unspecified address, or the address it listens on.
fn is_own_address(addr: &str, listen: std::net::SocketAddr) -> bool {
    let Some((host, port)) = addr.rsplit_once(':') else { return false };
    if port.parse::<u16>().ok() != Some(listen.port()) {
        return false;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified() || ip == listen.ip())
}

fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

#[cfg(test)]
mod tests {
    use super::is_own_address;

    #[test]
    fn the_proxys_own_address_in_every_form() {
        let listen = "127.0.0.1:6380".parse().unwrap();
        for own in ["127.0.0.1:6380", "localhost:6380", "0.0.0.0:6380", "[::1]:6380", "127.0.0.2:6380"] {
            assert!(is_own_address(own, listen), "{own}");
        }
        for other in ["127.0.0.1:6381", "10.0.0.1:6380", "cache:6380", "nonsense"] {
            assert!(!is_own_address(other, listen), "{other}");
        }
        assert!(is_own_address("10.0.0.5:7000", "10.0.0.5:7000".parse().unwrap()));
    }
}
