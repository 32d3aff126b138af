//! Commands that change the ring: ADD_SERVER, REMOVE_SERVER, REBALANCE (and QUIT, which also
//! ends a pipeline). They run between the requests before and after them.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use resp::command::Command;
use resp::{write, Request};

use crate::local::Flow;
use crate::migration::Migrator;
use crate::Proxy;

/// Runs a ring command (argument count checked) and writes its reply.
///
/// QUIT answers the seed's `+BYE` to a person typing (an inline request) and Redis's `+OK`
/// to programs.
pub fn run(proxy: &Arc<Proxy>, command: &Command, request: &Request, out: &mut BytesMut) -> Flow {
    let outcome = match command.name {
        "quit" => {
            write::simple(out, if request.raw.is_none() { b"BYE" } else { b"OK" });
            return Flow::Quit;
        }
        "add_server" => add(proxy, &request.args),
        "remove_server" => remove(proxy, &request.args),
        _ => rebalance(proxy),
    };
    match outcome {
        Ok(text) => write::simple(out, text.as_bytes()),
        Err(text) => write::error(out, text.as_bytes()),
    }
    Flow::Continue
}

/// ADD_SERVER host:port [weight] [MIGRATE]
fn add(proxy: &Arc<Proxy>, args: &[Bytes]) -> Result<String, String> {
    let addr = text(&args[1]);
    let mut weight = 1;
    let mut migrate = proxy.migrate_by_default;
    for option in &args[2..] {
        if option.eq_ignore_ascii_case(b"MIGRATE") {
            migrate = true;
        } else {
            weight = std::str::from_utf8(option)
                .ok()
                .and_then(|w| w.parse::<u32>().ok())
                .filter(|w| *w >= 1)
                .ok_or("ERR usage: ADD_SERVER host:port [weight] [MIGRATE] (weight: a positive integer)")?;
        }
    }
    change(proxy, migrate, |migrating| proxy.cluster.add(&addr, weight, migrating))?;
    tracing::info!("[proxy] Added server: {addr}");
    Ok(if migrate { format!("OK added {addr}, migrating keys (see MIGRATION)") } else { format!("OK added {addr}") })
}

/// REMOVE_SERVER host:port [MIGRATE]
fn remove(proxy: &Arc<Proxy>, args: &[Bytes]) -> Result<String, String> {
    let addr = text(&args[1]);
    let migrate = match args.get(2) {
        Some(option) if option.eq_ignore_ascii_case(b"MIGRATE") => true,
        Some(_) => return Err("ERR usage: REMOVE_SERVER host:port [MIGRATE]".into()),
        None => proxy.migrate_by_default,
    };
    change(proxy, migrate, |migrating| proxy.cluster.remove(&addr, migrate, migrating))?;
    tracing::info!("[proxy] Removed server: {addr}");
    Ok(if migrate {
        format!("OK removed {addr}, draining its keys (see MIGRATION)")
    } else {
        format!("OK removed {addr}")
    })
}

/// REBALANCE: move every key that is not where the current ring puts it.
fn rebalance(proxy: &Arc<Proxy>) -> Result<String, String> {
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

fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}
