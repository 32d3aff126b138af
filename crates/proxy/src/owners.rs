//! Which server a request goes to: the one that owns all its keys, or any server that is up.

use resp::command::Command;
use resp::Request;
use ring::ServerId;

use crate::cluster::Topology;

/// The reply when the ring is empty.
pub const NO_SERVERS: &str = "ERR no servers available";

/// The servers a request's keys route to, in key order, one entry per distinct server.
pub(crate) fn owners(topology: &Topology, request: &Request, positions: &[usize]) -> Result<Vec<ServerId>, String> {
    let mut owners: Vec<ServerId> = Vec::new();
    for &i in positions {
        let owner = topology.primary(&request.args[i]).ok_or(NO_SERVERS)?;
        if !owners.contains(&owner) {
            owners.push(owner);
        }
    }
    Ok(owners)
}

/// The error for an atomic command whose keys live on several servers.
pub fn cross_server(topology: &Topology, owners: &[ServerId]) -> String {
    let names: Vec<&str> = owners.iter().map(|id| topology.ring.server(*id)).collect();
    format!(
        "CROSSSLOT Keys in request don't hash to the same server ({}); give them a common hash tag \
         such as {{user1}} and start the proxy with --hash-tag \"{{}}\"",
        names.join(", ")
    )
}

/// The one server a command's keys all route to; with no key, any server that is up.
pub fn single_owner(topology: &Topology, command: &Command, request: &Request) -> Result<ServerId, String> {
    if let Some(i) = command.fixed_key.filter(|i| *i < request.args.len()) {
        return topology.primary(&request.args[i]).ok_or_else(|| NO_SERVERS.into());
    }
    let positions = command.key_positions(&request.args).unwrap_or_default();
    if positions.is_empty() {
        // No key (EVAL with 0 keys), or arguments the server will refuse: any server answers.
        return any_server(topology);
    }
    match owners(topology, request, &positions)?.as_slice() {
        [one] => Ok(*one),
        several => Err(cross_server(topology, several)),
    }
}

/// A server that is up (the first in ring order), for commands any server answers.
pub fn any_server(topology: &Topology) -> Result<ServerId, String> {
    topology.up_servers().next().or_else(|| topology.ring.server_ids().next()).ok_or_else(|| NO_SERVERS.into())
}
