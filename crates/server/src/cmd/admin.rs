//! Server commands: WHOAMI, INFO, TIME, CONFIG GET/SET/RESETSTAT (with `maxmemory` and
//! `maxmemory-policy` at run time), FUNCTION FLUSH and SCRIPT FLUSH (no functions or scripts
//! here: OK), DEBUG SLEEP, SHUTDOWN. The connection commands are shared with the proxy
//! ([`common::COMMANDS`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use resp::{write, Protocol};
use service::common;

use super::{Outcome, Reply};
use crate::glob::glob_match;
use crate::stop::Save;
use crate::store::{parse_memory, Policy};
use crate::Ctx;

/// The commands this module runs (table names).
pub const COMMANDS: &[&str] = &[
    "whoami",
    "info",
    "time",
    "function|flush",
    "script|flush",
    "debug",
    "config|get",
    "config|set",
    "config|resetstat",
];

/// Longest DEBUG SLEEP honoured: it blocks an event loop, as in Redis, but not for long.
const MAX_DEBUG_SLEEP: Duration = Duration::from_secs(10);

/// Runs one of [`COMMANDS`]; INFO's text is a verbatim string in RESP3, as Redis sends it.
pub fn run(ctx: &Ctx, name: &str, args: &[Bytes], proto: Protocol, out: &mut BytesMut) -> Outcome {
    match name {
        "whoami" => write::simple(out, ctx.name.as_bytes()),
        "info" => write::verbatim(out, proto, info(ctx, &args[1..]).as_bytes()),
        "time" => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            write::array_header(out, 2);
            write::bulk(out, now.as_secs().to_string().as_bytes());
            write::bulk(out, now.subsec_micros().to_string().as_bytes());
        }
        "function|flush" | "script|flush" => {
            if let Some(mode) = args.get(2) {
                if !(mode.eq_ignore_ascii_case(b"ASYNC") || mode.eq_ignore_ascii_case(b"SYNC")) || args.len() > 3 {
                    return Err(Reply::Syntax);
                }
            }
            write::simple(out, b"OK");
        }
        "debug" => debug(args, out)?,
        "config|get" => config_get(ctx, &args[2..], proto, out),
        "config|set" => config_set(ctx, &args[2..], out)?,
        "config|resetstat" => {
            ctx.store.reset_counters();
            write::simple(out, b"OK");
        }
        _ => return Err(Reply::Other(format!("ERR {name} is not an admin command"))),
    }
    Ok(())
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`, with Redis's replies to what does not go
/// ahead. `NOW` and `FORCE` change nothing here (no replicas to wait for, no save to fail
/// before the stop); `SAVE` needs `--snapshot`, the file it saves to.
pub fn shutdown(ctx: &Ctx, args: &[Bytes]) -> Outcome {
    let (mut save, mut abort, mut others) = (Save::AsConfigured, false, false);
    for arg in &args[1..] {
        let word = arg.to_ascii_uppercase();
        let wanted = match &word[..] {
            b"NOSAVE" => Save::NoSave,
            b"SAVE" => Save::Save,
            b"NOW" | b"FORCE" => {
                others = true;
                continue;
            }
            b"ABORT" => {
                abort = true;
                continue;
            }
            _ => return Err(Reply::Syntax),
        };
        if save != Save::AsConfigured && save != wanted {
            return Err(Reply::Syntax);
        }
        save = wanted;
    }
    if abort {
        // A stop here is not paused for anything, so there is never one to abort.
        return Err(if others || save != Save::AsConfigured {
            Reply::Syntax
        } else {
            Reply::Other("ERR No shutdown in progress.".into())
        });
    }
    if save == Save::Save && !ctx.has_snapshot {
        return Err(Reply::Other(
            "ERR SHUTDOWN SAVE needs a file to save to: start the server with --snapshot FILE".into(),
        ));
    }
    tracing::info!("[{}] SHUTDOWN from a client: no new clients, answering what the connected ones sent", ctx.name);
    ctx.stop.ask(save);
    Ok(())
}

/// DEBUG SLEEP seconds: the one DEBUG subcommand tools send.
fn debug(args: &[Bytes], out: &mut BytesMut) -> Outcome {
    if !args[1].eq_ignore_ascii_case(b"SLEEP") || args.len() != 3 {
        let sub = String::from_utf8_lossy(&args[1]);
        return Err(Reply::Other(format!("ERR unknown subcommand '{sub}'. Try DEBUG HELP.")));
    }
    let seconds = std::str::from_utf8(&args[2]).ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    if seconds > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(seconds).min(MAX_DEBUG_SLEEP));
    }
    write::simple(out, b"OK");
    Ok(())
}

/// The parameters CONFIG GET reports, with their current values.
fn parameters(ctx: &Ctx) -> Vec<(&'static str, String)> {
    vec![
        ("maxmemory", ctx.store.maxmemory().to_string()),
        ("maxmemory-policy", ctx.store.policy().name().to_string()),
        ("maxmemory-samples", "5".into()),
        ("save", String::new()),
        ("appendonly", "no".into()),
        ("databases", "1".into()),
        ("hz", "10".into()),
        ("lfu-log-factor", "10".into()),
        ("lfu-decay-time", "1".into()),
        ("proto-max-bulk-len", crate::store::MAX_STRING.to_string()),
    ]
}

/// CONFIG GET pattern...: every parameter matching one of the glob patterns.
fn config_get(ctx: &Ctx, patterns: &[Bytes], proto: Protocol, out: &mut BytesMut) {
    let found: Vec<(&str, String)> = parameters(ctx)
        .into_iter()
        .filter(|(name, _)| patterns.iter().any(|p| glob_match(&p.to_ascii_lowercase(), name.as_bytes())))
        .collect();
    write::map_header(out, proto, found.len());
    for (name, value) in found {
        write::bulk(out, name.as_bytes());
        write::bulk(out, value.as_bytes());
    }
}

/// CONFIG SET parameter value [parameter value ...]: `maxmemory` and `maxmemory-policy`
/// take effect at once (lowering `maxmemory` evicts); other parameters are accepted and
/// ignored, as before.
fn config_set(ctx: &Ctx, pairs: &[Bytes], out: &mut BytesMut) -> Outcome {
    if !pairs.len().is_multiple_of(2) {
        return Err(Reply::Other("ERR wrong number of arguments for 'config|set' command".into()));
    }
    let mut maxmemory = None;
    let mut policy = None;
    for pair in pairs.chunks_exact(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let value = String::from_utf8_lossy(&pair[1]);
        let failed =
            |why: &str| Reply::Other(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"));
        match name.as_str() {
            "maxmemory" => {
                maxmemory = Some(parse_memory(&value).ok_or_else(|| failed("argument must be a memory value"))?)
            }
            "maxmemory-policy" => {
                let why = format!("argument(s) must be one of the following: {}", Policy::NAMES_IN_REDIS_ORDER);
                policy = Some(Policy::parse(&value).ok_or_else(|| failed(&why))?);
            }
            _ => {}
        }
    }
    if let Some(policy) = policy {
        ctx.store.set_policy(policy);
    }
    if let Some(bytes) = maxmemory {
        ctx.store.set_maxmemory(bytes);
    }
    write::simple(out, b"OK");
    Ok(())
}

/// Resident memory of the process in bytes (Linux; 0 elsewhere).
fn resident_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|pages| pages.parse::<usize>().ok()))
        .map_or(0, |pages| pages * 4096)
}

/// Bytes as Redis's `_human` fields show them (`1.50M`).
fn human(bytes: usize) -> String {
    const UNITS: &[(f64, &str)] = &[(1024.0 * 1024.0 * 1024.0, "G"), (1024.0 * 1024.0, "M"), (1024.0, "K")];
    let b = bytes as f64;
    UNITS
        .iter()
        .find(|(size, _)| b >= *size)
        .map_or(format!("{bytes}B"), |(size, unit)| format!("{:.2}{unit}", b / size))
}

/// INFO [section ...]: Redis's sections and field names; no section, `default`, `all` or
/// `everything` give every section.
fn info(ctx: &Ctx, wanted: &[Bytes]) -> String {
    let store = &ctx.store;
    let keys = store.len();
    let expires = store.volatile_len();
    let used = store.memory_estimate();
    let rss = resident_bytes();
    let counters = store.counters();
    let (expire_ms, expire_step_us) = store.expire_times();
    let pauses = store.expire_pauses();
    let sections = [
        ("server", common::info_server_section(&ctx.name, ctx.port, ctx.started) + "hz:10\r\n"),
        ("clients", format!("# Clients\r\nconnected_clients:{}\r\n", ctx.stats.clients())),
        (
            "memory",
            format!(
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\n\
                 used_memory_rss_human:{}\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\n\
                 mem_fragmentation_ratio:{:.2}\r\n",
                human(used),
                human(rss),
                store.maxmemory(),
                human(store.maxmemory()),
                store.policy().name(),
                rss as f64 / used.max(1) as f64,
            ),
        ),
        (
            "stats",
            format!(
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nexpired_keys:{}\r\n\
                 evicted_keys:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\nexpire_cycle_cpu_milliseconds:{}\r\n\
                 expire_cycle_max_pause_us:{}\r\nexpire_cycle_pauses:le10us={},le100us={},le1ms={},le10ms={},gt10ms={}\r\n",
                ctx.stats.connections(),
                ctx.stats.commands(),
                counters.expired,
                counters.evicted,
                counters.hits,
                counters.misses,
                expire_ms,
                expire_step_us,
                pauses[0],
                pauses[1],
                pauses[2],
                pauses[3],
                pauses[4],
            ),
        ),
        (
            "keyspace",
            format!(
                "# Keyspace\r\n{}",
                if keys > 0 { format!("db0:keys={keys},expires={expires},avg_ttl=0\r\n") } else { String::new() }
            ),
        ),
    ];
    common::info_text(sections, wanted)
}
