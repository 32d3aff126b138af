//! Memory per idle client connection: N connections opened to a target, one PING each,
//! then left idle; (VmRSS after - VmRSS before) / N of the process they talk to.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::procfs;
use crate::services::Fleet;
use crate::target::Target;

/// Let the target finish with the last connection (and the allocator settle) before reading
/// its RSS.
const SETTLE: Duration = Duration::from_millis(300);
/// How long one PING may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The figures of one target.
#[derive(Debug, Clone, PartialEq)]
pub struct IdleRow {
    /// Idle connections held open.
    pub clients: u32,
    /// VmRSS before they connected, KiB.
    pub rss_before_kib: u64,
    /// VmRSS while they were connected and idle, KiB.
    pub rss_after_kib: u64,
}

impl IdleRow {
    /// (VmRSS after - VmRSS before) / clients, bytes.
    pub fn bytes_per_client(&self) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 * 1024.0 / f64::from(self.clients.max(1))
    }
}

/// Measures every target of `targets` that the fleet runs, one after the other.
pub fn measure(fleet: &Fleet, targets: &[Target], clients: u32) -> Vec<(Target, Result<IdleRow, String>)> {
    targets
        .iter()
        .filter_map(|&target| {
            let front = fleet.front(target)?;
            eprint!("[idle] {:<12} {clients} idle clients ... ", target.label());
            let row = one(&front.addr(), front.pid(), clients).map_err(|e| format!("{e:#}"));
            match &row {
                Ok(row) => eprintln!("{:.0} bytes/client", row.bytes_per_client()),
                Err(why) => eprintln!("FAILED: {why}"),
            }
            Some((target, row))
        })
        .collect()
}

/// Opens `clients` connections to `addr`, PINGs on each, and reads the RSS of `pid` before
/// and while they are idle.
fn one(addr: &str, pid: u32, clients: u32) -> Result<IdleRow> {
    std::thread::sleep(SETTLE);
    let rss_before_kib = procfs::rss_kib(pid)?;
    let mut conns = Vec::with_capacity(clients as usize);
    for i in 0..clients {
        let stream =
            TcpStream::connect(addr).with_context(|| format!("connecting idle client {} of {clients}", i + 1))?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        conns.push(stream);
    }
    for stream in &mut conns {
        stream.write_all(b"*1\r\n$4\r\nPING\r\n").context("sending PING")?;
    }
    for stream in &mut conns {
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).context("reading the reply to PING")?;
        if &reply != b"+PONG\r\n" {
            bail!("PING was answered {:?}", String::from_utf8_lossy(&reply));
        }
    }
    std::thread::sleep(SETTLE);
    let rss_after_kib = procfs::rss_kib(pid)?;
    drop(conns);
    Ok(IdleRow { clients, rss_before_kib, rss_after_kib })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_per_client_is_the_growth_over_the_clients() {
        let row = IdleRow { clients: 1000, rss_before_kib: 10_000, rss_after_kib: 12_000 };
        assert_eq!(row.bytes_per_client(), 2048.0);
        let shrunk = IdleRow { clients: 10, rss_before_kib: 10_000, rss_after_kib: 9_000 };
        assert_eq!(shrunk.bytes_per_client(), 0.0);
    }
}
