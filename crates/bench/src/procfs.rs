//! What `/proc` tells about a process: CPU time, resident memory and the TCP ports it
//! listens on. The parsers are pure functions over the files' text, unit-tested below.

use std::collections::HashSet;
use std::process::Command;

use anyhow::{Context, Result};

/// Clock ticks per second of `/proc/<pid>/stat`'s CPU times.
#[derive(Debug, Clone, Copy)]
pub struct ClockTicks {
    /// Ticks per second.
    pub per_second: f64,
    /// Whether `getconf CLK_TCK` said so; `false` means 100 was assumed.
    pub measured: bool,
}

impl ClockTicks {
    /// Asks `getconf CLK_TCK`, assuming 100 (Linux's USER_HZ everywhere in practice) when it
    /// cannot be asked.
    pub fn detect() -> Self {
        let measured = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().ok())
            .filter(|ticks| *ticks > 0.0);
        match measured {
            Some(per_second) => Self { per_second, measured: true },
            None => Self { per_second: 100.0, measured: false },
        }
    }
}

/// User plus system CPU time of process `pid` (all its threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat_cpu_ticks(&stat).with_context(|| format!("no utime/stime in {path}"))
}

/// utime + stime (fields 14 and 15) from the text of `/proc/<pid>/stat`. The command name
/// (field 2) is in parentheses and may hold spaces or parentheses itself, so fields are
/// counted from the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is at index 0, so field N is at index N - 3.
    let mut fields = after_comm.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time every core of the machine spent busy (not idle, not waiting on I/O), in clock
/// ticks: the first line of `/proc/stat`. Around a run, it shows what one request cost the
/// whole machine: load generator, proxy and backends together.
pub fn machine_busy_ticks() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_machine_busy_ticks(&stat).context("no cpu line in /proc/stat")
}

/// user + nice + system + irq + softirq + steal from the `cpu` line of `/proc/stat`'s text
/// (idle and iowait left out; guest time is already inside user).
pub fn parse_machine_busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).map(|field| field.parse().ok()).collect::<Option<_>>()?;
    let [user, nice, system, _idle, _iowait, irq, softirq, steal, ..] = fields[..] else {
        return None;
    };
    Some(user + nice + system + irq + softirq + steal)
}

/// Resident set size of process `pid`, in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_status_kib(&status, "VmRSS").with_context(|| format!("no VmRSS in {path}"))
}

/// The value in KiB of a `Name:   1234 kB` line of `/proc/<pid>/status`.
pub fn parse_status_kib(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Whether this process runs as root (real uid 0, from `/proc/self/status`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("Uid:").and_then(|rest| rest.split_whitespace().next()).map(|uid| uid == "0")
            })
        })
        .unwrap_or(false)
}

/// TCP ports on which process `pid` itself listens: the LISTEN sockets of
/// `/proc/net/tcp{,6}` whose inodes are among the process's open file descriptors. Telling
/// who owns a port this way means a process that lost a race for a port is never mistaken
/// for one that won it.
pub fn listening_ports(pid: u32) -> Result<Vec<u16>> {
    let inodes = socket_inodes(pid)?;
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        // tcp6 is absent on a kernel without IPv6: not an error.
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        ports.extend(
            parse_listening(&text).into_iter().filter(|(_, inode)| inodes.contains(inode)).map(|(port, _)| port),
        );
    }
    ports.sort_unstable();
    ports.dedup();
    Ok(ports)
}

/// The inodes of the sockets process `pid` has open (`/proc/<pid>/fd/* -> socket:[inode]`).
fn socket_inodes(pid: u32) -> Result<HashSet<u64>> {
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))?;
    Ok(entries
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| parse_socket_link(&target.to_string_lossy()))
        .collect())
}

/// The inode of a `socket:[12345]` file-descriptor link.
fn parse_socket_link(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// `(port, inode)` of each LISTEN row of a `/proc/net/tcp` (or `tcp6`) table.
pub fn parse_listening(table: &str) -> Vec<(u16, u64)> {
    /// The `st` column's value for TCP_LISTEN.
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1) // the header
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let local = fields.get(1)?;
            if *fields.get(3)? != LISTEN {
                return None;
            }
            let port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            let inode = fields.get(9)?.parse().ok()?;
            Some((port, inode))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_busy_ticks_leave_out_idle_and_iowait() {
        let stat = "cpu  100 2 30 5000 7 1 4 9 0 0\ncpu0 50 1 15 2500 3 0 2 4 0 0\nintr 1\n";
        assert_eq!(parse_machine_busy_ticks(stat), Some(100 + 2 + 30 + 1 + 4 + 9));
        assert_eq!(parse_machine_busy_ticks("cpu  1 2 3\n"), None);
        assert_eq!(parse_machine_busy_ticks("intr 1\n"), None);
    }

    #[test]
    fn cpu_ticks_are_utime_plus_stime() {
        let stat = "849 (redis-server) S 1 849 849 0 -1 4194560 1157 0 0 0 123 45 0 0 20 0 5 0 \
                    6016 58773504 2318 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(168));
    }

    #[test]
    fn a_command_name_with_spaces_and_parentheses_is_skipped() {
        let stat = "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 2 3";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(10));
        assert_eq!(parse_stat_cpu_ticks("77 (x) R 1"), None);
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tserver\nVmPeak:\t  99999 kB\nVmRSS:\t   12345 kB\nThreads:\t2\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(12345));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn listening_rows_give_port_and_inode() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(parse_listening(table), vec![(8080, 4242)]);
    }

    #[test]
    fn socket_links_give_inodes() {
        assert_eq!(parse_socket_link("socket:[4242]"), Some(4242));
        assert_eq!(parse_socket_link("pipe:[4242]"), None);
        assert_eq!(parse_socket_link("/dev/null"), None);
    }

    #[test]
    fn this_process_is_readable() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_ok());
        assert!(rss_kib(pid).is_ok_and(|kib| kib > 0));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(listening_ports(pid).unwrap().contains(&port));
    }
}
