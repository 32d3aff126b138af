//! Getting ready: the Redis tools and twemproxy from the distribution's packages when they
//! are missing, and our `server` and `proxy` built in release.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::procfs;

/// The outside programs the suite drives.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `redis-server` (package `redis-server`).
    pub redis_server: PathBuf,
    /// `redis-cli` (package `redis-tools`).
    pub redis_cli: PathBuf,
    /// `redis-benchmark` (package `redis-tools`).
    pub redis_benchmark: PathBuf,
    /// `nutcracker`, twemproxy (package `nutcracker`; installed in /usr/sbin).
    pub nutcracker: PathBuf,
}

/// Our binaries, built in release.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The cache server.
    pub server: PathBuf,
    /// The sharding proxy.
    pub proxy: PathBuf,
}

/// Each program the suite needs and the Debian package that ships it.
const PROGRAMS: [(&str, &str); 4] = [
    ("redis-server", "redis-server"),
    ("redis-cli", "redis-tools"),
    ("redis-benchmark", "redis-tools"),
    ("nutcracker", "nutcracker"),
];

/// The workspace root (this crate lives in `<root>/crates/bench`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).map_or_else(|| manifest.to_path_buf(), Path::to_path_buf)
}

/// Finds every program, installing the missing ones' packages with `apt-get install -y`
/// (through `sudo` when not root; `apt-get update` and a second try only if that fails).
pub fn ensure_tools() -> Result<Tools> {
    let mut missing: Vec<&str> =
        PROGRAMS.iter().filter(|(program, _)| find_program(program).is_none()).map(|(_, package)| *package).collect();
    missing.dedup();
    if !missing.is_empty() {
        eprintln!("installing {} (apt-get)", missing.join(" "));
        if apt_get(&["install", "-y", "-q"], &missing).is_err() {
            apt_get(&["update", "-q"], &[])?;
            apt_get(&["install", "-y", "-q"], &missing)?;
        }
    }
    let find = |program: &str| {
        find_program(program).with_context(|| format!("{program} is still missing after installing its package"))
    };
    Ok(Tools {
        redis_server: find("redis-server")?,
        redis_cli: find("redis-cli")?,
        redis_benchmark: find("redis-benchmark")?,
        nutcracker: find("nutcracker")?,
    })
}

/// Runs `apt-get <args> <packages>`, as root or through sudo.
fn apt_get(args: &[&str], packages: &[&str]) -> Result<()> {
    let mut command = if procfs::is_root() {
        Command::new("apt-get")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg("apt-get");
        sudo
    };
    command.args(args).args(packages).env("DEBIAN_FRONTEND", "noninteractive");
    let status = command.status().with_context(|| format!("running apt-get {}", args.join(" ")))?;
    if !status.success() {
        bail!("apt-get {} {} failed ({status})", args.join(" "), packages.join(" "));
    }
    Ok(())
}

/// The program's path: on `PATH`, or in the sbin directories a non-root `PATH` may lack
/// (nutcracker installs into /usr/sbin).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `cargo build --release -p server -p proxy` in the workspace, then their paths.
pub fn build_binaries(root: &Path) -> Result<Binaries> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building server and proxy (cargo build --release -p server -p proxy)");
    let status = Command::new(&cargo)
        .args(["build", "--release", "-p", "server", "-p", "proxy"])
        .current_dir(root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p server -p proxy failed ({status})");
    }
    let dir = target_dir(root).join("release");
    let binaries = Binaries { server: dir.join("server"), proxy: dir.join("proxy") };
    for binary in [&binaries.server, &binaries.proxy] {
        if !is_executable(binary) {
            bail!("{} was not built where expected (set CARGO_TARGET_DIR?)", binary.display());
        }
    }
    Ok(binaries)
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the workspace root), else the
/// one this executable was built into (`<target>/<profile>/bench`), else `<root>/target`.
fn target_dir(root: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return root.join(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            let profile_dir = exe.parent()?;
            let target = profile_dir.parent()?;
            target.join("release").is_dir().then(|| target.to_path_buf())
        })
        .unwrap_or_else(|| root.join("target"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }

    #[test]
    fn programs_are_found_on_the_path_only_when_executable() {
        assert!(find_program("sh").is_some());
        assert!(find_program("surely-no-such-program-here").is_none());
    }
}
