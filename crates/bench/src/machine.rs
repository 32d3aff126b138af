//! The machine and the tools a run measured with, for the report.

use std::path::Path;
use std::process::Command;

use crate::setup::Tools;

/// What the figures were measured on.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// Cores this process may use.
    pub cores: usize,
    /// CPU model from /proc/cpuinfo.
    pub cpu_model: String,
    /// Kernel release.
    pub kernel: String,
    /// `redis-benchmark --version`.
    pub redis_benchmark: String,
    /// `redis-server --version`.
    pub redis_server: String,
    /// `nutcracker --version`.
    pub nutcracker: String,
    /// When the run started (UTC).
    pub date: String,
}

impl Machine {
    /// Looks at this machine.
    pub fn describe(tools: &Tools) -> Self {
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|text| parse_cpu_model(&text))
                .unwrap_or_else(|| "unknown".into()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|k| k.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            redis_benchmark: version(&tools.redis_benchmark),
            redis_server: version(&tools.redis_server),
            nutcracker: version(&tools.nutcracker),
            date: first_line_of(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
                .unwrap_or_else(|| "unknown".into()),
        }
    }
}

/// The first `model name` of /proc/cpuinfo.
pub fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_string())
    })
}

/// `<program> --version`'s first line, tidied (`This is nutcracker-0.5.0` ->
/// `nutcracker-0.5.0`; redis-server's build details after the version are dropped).
fn version(program: &Path) -> String {
    first_line_of(Command::new(program).arg("--version"))
        .map(|line| tidy_version(&line))
        .unwrap_or_else(|| "unknown".into())
}

/// A version line without the noise around the version.
pub fn tidy_version(line: &str) -> String {
    let line = line.trim().trim_start_matches("This is ");
    // "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=..."
    match line.find(" sha=") {
        Some(cut) => line[..cut].to_string(),
        None => line.to_string(),
    }
}

/// The first non-empty line a command prints (stdout, else stderr).
fn first_line_of(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    [output.stdout, output.stderr].iter().find_map(|bytes| {
        String::from_utf8_lossy(bytes).lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_model_is_the_first_model_name() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\n\
                       processor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(parse_cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(parse_cpu_model("processor : 0\n"), None);
    }

    #[test]
    fn versions_are_tidied() {
        assert_eq!(tidy_version("This is nutcracker-0.5.0"), "nutcracker-0.5.0");
        assert_eq!(
            tidy_version("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64"),
            "Redis server v=7.0.15"
        );
        assert_eq!(tidy_version("redis-benchmark 7.0.15"), "redis-benchmark 7.0.15");
    }
}
