//! A tiny blocking RESP client for the suite's own questions (PING, DBSIZE, INFO), and the
//! parsers for the counters the proxies report.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use resp::{Frame, Limits};

/// How long one question may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one command to `addr` on a fresh connection and returns the reply.
pub fn call(addr: &str, args: &[&str]) -> Result<Frame> {
    let mut replies = pipeline(addr, &[args])?;
    replies.pop().with_context(|| format!("no reply to {} from {addr}", args.join(" ")))
}

/// Sends `commands` to `addr` at once on a fresh connection and returns their replies, in
/// order.
pub fn pipeline(addr: &str, commands: &[&[&str]]) -> Result<Vec<Frame>> {
    let what = || match commands {
        [one] => one.join(" "),
        _ => format!("{} commands", commands.len()),
    };
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut out = BytesMut::new();
    for args in commands {
        resp::write::command(&mut out, args);
    }
    stream.write_all(&out).with_context(|| format!("sending {} to {addr}", what()))?;
    let mut replies = Vec::with_capacity(commands.len());
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    while replies.len() < commands.len() {
        if let Some(frame) =
            Frame::parse(&mut buf, &Limits::default()).with_context(|| format!("bad reply from {addr}"))?
        {
            replies.push(frame);
            continue;
        }
        let read = stream.read(&mut chunk).with_context(|| format!("reading the replies to {} from {addr}", what()))?;
        if read == 0 {
            bail!("{addr} closed the connection after {} of {} replies", replies.len(), commands.len());
        }
        buf.extend_from_slice(&chunk[..read]);
    }
    Ok(replies)
}

/// Whether `addr` answers `PING` with `PONG`.
pub fn ping(addr: &str) -> bool {
    call(addr, &["PING"]).is_ok_and(|reply| reply == Frame::simple("PONG"))
}

/// The number of keys `DBSIZE` reports.
pub fn dbsize(addr: &str) -> Result<i64> {
    match call(addr, &["DBSIZE"])? {
        Frame::Integer(n) => Ok(n),
        other => bail!("DBSIZE on {addr} replied {other:?}"),
    }
}

/// The text of `INFO`.
pub fn info(addr: &str) -> Result<String> {
    match call(addr, &["INFO"])? {
        Frame::Bulk(text) => Ok(String::from_utf8_lossy(&text).into_owned()),
        other => bail!("INFO on {addr} replied {other:?}"),
    }
}

/// One backend's counters from our proxy's `INFO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendCounters {
    /// The backend's address.
    pub addr: String,
    /// Requests the proxy sent it.
    pub requests: u64,
    /// Requests that got no reply from it.
    pub errors: u64,
}

/// The `server<i>:addr=...,requests=N,errors=N` lines of our proxy's `INFO`.
pub fn parse_backend_counters(info: &str) -> Vec<BackendCounters> {
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.trim().split_once(':')?;
            let index = name.strip_prefix("server")?;
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let field = |key: &str| {
                fields.split(',').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    (k == key).then(|| v.to_string())
                })
            };
            Some(BackendCounters {
                addr: field("addr")?,
                requests: field("requests")?.parse().ok()?,
                errors: field("errors")?.parse().ok()?,
            })
        })
        .collect()
}

/// twemproxy's statistics: the JSON document its stats port sends on connect.
pub fn twemproxy_stats(stats_port: u16) -> Result<String> {
    let addr = format!("127.0.0.1:{stats_port}");
    let mut stream = TcpStream::connect(&addr).with_context(|| format!("connecting to twemproxy stats {addr}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    let mut text = String::new();
    stream.read_to_string(&mut text).with_context(|| format!("reading twemproxy stats from {addr}"))?;
    Ok(text)
}

/// The counters of twemproxy's statistics that mean a request failed.
pub const TWEMPROXY_ERROR_COUNTERS: [&str; 4] = ["forward_error", "server_err", "server_timedout", "server_ejects"];

/// The sum of every `"name":N` in twemproxy's stats JSON (per pool or per server).
pub fn sum_json_counter(json: &str, name: &str) -> u64 {
    let needle = format!("\"{name}\":");
    json.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = json[at + needle.len()..].trim_start();
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_counters_come_from_the_server_lines() {
        let info = "# Proxy\r\nconnected_clients:1\r\n\
            server0:addr=127.0.0.1:7001,weight=1,points=3,share=0.3300,connections=1,requests=120,errors=0\r\n\
            server1:addr=127.0.0.1:7002,weight=1,points=3,share=0.6700,connections=1,requests=80,errors=2\r\n\
            servers:2\r\n";
        assert_eq!(
            parse_backend_counters(info),
            vec![
                BackendCounters { addr: "127.0.0.1:7001".into(), requests: 120, errors: 0 },
                BackendCounters { addr: "127.0.0.1:7002".into(), requests: 80, errors: 2 },
            ]
        );
    }

    #[test]
    fn twemproxy_counters_are_summed_over_servers() {
        let json = r#"{"service":"nutcracker", "bench": {"client_err":0, "forward_error":3,
            "127.0.0.1:1": {"server_err":1, "server_timedout":0},
            "127.0.0.1:2": {"server_err": 4, "server_timedout":0}}}"#;
        assert_eq!(sum_json_counter(json, "server_err"), 5);
        assert_eq!(sum_json_counter(json, "forward_error"), 3);
        assert_eq!(sum_json_counter(json, "server_ejects"), 0);
    }
}
