//! `demo --all`: the seed's walkthrough, then migration, virtual nodes, consistent hashing
//! versus hash mod N, and replication with a server killed, against our real binaries.

use std::net::TcpStream;
use std::process::Command;

use e2e::{binary, Cluster};

/// The sample keys the balance and churn steps count over.
const SAMPLE_KEYS: usize = 10_000;

fn run_demo_all(cluster: &Cluster) -> String {
    // The replication step starts `server` and `proxy` from the demo's directory: make sure
    // they are built (Cluster::ours built them already; this is a no-op then).
    binary("server");
    binary("proxy");
    let pictures = std::env::temp_dir().join(format!("demo-rings-{}", cluster.proxy.addr().replace([':', '.'], "-")));
    let _ = std::fs::remove_dir_all(&pictures);
    let output = Command::new(binary("demo"))
        .args(["--all", "--proxy", &cluster.proxy.addr(), "--servers", &cluster.addrs().join(",")])
        .arg("--svg-dir")
        .arg(&pictures)
        .env("NO_COLOR", "1")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "demo --all failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    // A picture of the ring per step, named in the intro: step 4 has three servers' ticks
    // and marks the keys that moved to cache-C.
    assert!(stdout.contains(&format!("ring pictures: one SVG per step in {}", pictures.display())), "{stdout}");
    for step in 1..=12 {
        let svg = std::fs::read_to_string(pictures.join(format!("step-{step:02}.svg"))).expect("a picture per step");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "step {step}");
    }
    let join = std::fs::read_to_string(pictures.join("step-04.svg")).unwrap();
    assert_eq!(join.matches("class=\"tick\"").count(), 9, "3 servers x 3 virtual nodes");
    // Which keys move depends on the servers' addresses (free ports here): the picture marks
    // as many as step 4's table says moved.
    let moved = step(&stdout, 4).iter().filter(|l| l.contains(" moved: ")).count();
    assert_eq!(join.matches("moved from cache-").count(), moved, "moved keys are marked");
    let _ = std::fs::remove_dir_all(&pictures);
    stdout
}

/// The lines of step `n`: from its heading to the next heading or closing summary.
fn step(text: &str, n: usize) -> Vec<&str> {
    let heading = format!("Step {n}. ");
    let mut lines = text.lines().skip_while(|l| !l.starts_with(&heading));
    let first = lines.next().unwrap_or_else(|| panic!("no step {n} in:\n{text}"));
    std::iter::once(first)
        .chain(lines.take_while(|l| !l.starts_with("Step ") && !l.starts_with("What ")))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// The first number after `label` on the line that starts (indented) with it.
fn count_after(lines: &[&str], label: &str) -> usize {
    let line = lines
        .iter()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{}", lines.join("\n")));
    let rest = &line.trim_start()[label.len()..];
    let number = rest.split_whitespace().next().unwrap_or_default().replace(',', "");
    number.parse().unwrap_or_else(|_| panic!("no count after `{label}` in `{line}`"))
}

fn sample_keys() -> Vec<String> {
    (0..SAMPLE_KEYS).map(|i| format!("user:{i}")).collect()
}

/// Keys that change owner when `joining` joins `servers` on a ring with `vnodes` per server.
fn ring_moves(servers: &[String], joining: &str, vnodes: usize) -> usize {
    let mut before = ring::HashRing::new(vnodes);
    for server in servers {
        before.add(server);
    }
    let mut after = before.clone();
    after.add(joining);
    sample_keys().iter().filter(|k| before.get(k.as_bytes()) != after.get(k.as_bytes())).count()
}

/// Keys whose server changes when `fnv1a_32(key) % N` goes from 3 to 4.
fn mod_n_moves() -> usize {
    sample_keys()
        .iter()
        .filter(|k| {
            let hash = ring::fnv1a_32(k.as_bytes());
            hash % 3 != hash % 4
        })
        .count()
}

#[test]
fn demo_all_shows_what_production_needs() {
    let cluster = Cluster::ours(3, &[], &[]);
    let text = run_demo_all(&cluster);
    assert!(!text.contains('\x1b'), "NO_COLOR output has no escape codes");

    // The seed's seven steps come first, unchanged in number; then steps 8 to 12.
    for n in 1..=12 {
        step(&text, n);
    }
    assert!(!text.contains("Step 13. "), "{text}");
    // Step 12: a row per placement and pool size; maglev balanced, modula moving most keys.
    let placements: Vec<String> =
        step(&text, 12).into_iter().filter(|l| l.trim_end().ends_with('x')).map(|l| l.to_string()).collect();
    for name in ["seed, 3 vnodes", "seed, 160 vnodes", "ketama", "modula", "maglev", "rendezvous"] {
        assert_eq!(placements.iter().filter(|l| l.trim_start().starts_with(name)).count(), 2, "{name}: {placements:?}");
    }
    let maglev = placements.iter().find(|l| l.trim_start().starts_with("maglev")).expect("maglev row");
    let fields: Vec<&str> = maglev.split_whitespace().collect();
    let balance: f64 = fields[2].parse().expect("max/mean");
    assert!(balance <= 1.03, "maglev's balance at 10 servers: {maglev}");
    let modula = placements.iter().find(|l| l.trim_start().starts_with("modula")).expect("modula row");
    let join: f64 = modula.split_whitespace().nth(3).and_then(|f| f.trim_end_matches('x').parse().ok()).expect("join");
    assert!(join > 5.0, "modula moves most keys on a join: {modula}");
    let seed = step(&text, 7);
    assert_eq!(seed.last().map(|l| l.trim()), Some("Summary: 8 hits, 0 misses"), "{}", seed.join("\n"));
    assert!(text.contains("What consistent hashing showed") && text.contains("What production needs"), "{text}");

    // Step 8: REBALANCE after adding cache-C, then every key hits.
    let rebalance = step(&text, 8);
    assert!(
        rebalance.iter().any(|l| l.contains("REBALANCE  +OK rebalancing (see MIGRATION)")),
        "{}",
        rebalance.join("\n")
    );
    assert!(rebalance.iter().any(|l| l.trim_start().starts_with("MIGRATION  done: ")), "{}", rebalance.join("\n"));
    assert_eq!(rebalance.last().map(|l| l.trim()), Some("Summary: 8 hits, 0 misses"), "{}", rebalance.join("\n"));

    // Step 9: both virtual-node settings, each with its max/mean.
    let balance = step(&text, 9);
    let joined = balance.join("\n");
    assert!(joined.contains("3 virtual nodes per server ("), "{joined}");
    assert!(joined.contains("160 virtual nodes per server ("), "{joined}");
    assert_eq!(balance.iter().filter(|l| l.trim_start().starts_with("max/mean ")).count(), 2, "{joined}");
    assert!(joined.contains("100 of 100 agree"), "the proxy routes as the ring crate does:\n{joined}");

    // Step 10: the moved counts are what the ring crate and fnv1a_32 % N give.
    let churn = step(&text, 10);
    let joined = churn.join("\n");
    let joining = joined
        .split("cache-D (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no cache-D address in:\n{joined}"))
        .to_string();
    let addrs = cluster.addrs();
    for vnodes in [3, 160] {
        let label = format!("ring, {vnodes} virtual nodes, 3 -> 4 servers");
        assert_eq!(count_after(&churn, &label), ring_moves(&addrs, &joining, vnodes), "{label}:\n{joined}");
    }
    assert_eq!(count_after(&churn, "fnv1a_32(key) % N, N 3 -> 4"), mod_n_moves(), "{joined}");
    assert_eq!(count_after(&churn, "ideal: 1/4 of the keys"), SAMPLE_KEYS / 4, "{joined}");

    // Step 11: every key reads back after a kill -9, and the dead server is marked down.
    let replication = step(&text, 11);
    let joined = replication.join("\n");
    assert!(replication.iter().any(|l| l.trim() == "Summary: 8 hits, 0 misses"), "{joined}");
    assert!(replication.iter().any(|l| l.trim_start().starts_with("kill -9 node-")), "{joined}");
    assert!(
        replication.iter().any(|l| l.contains("SERVERS DETAIL marked node-") && l.contains("state=down")),
        "the dead server was not reported down:\n{joined}"
    );
    let down: Vec<&&str> =
        replication.iter().filter(|l| l.trim_start().starts_with("node-") && l.contains(" state=down ")).collect();
    assert_eq!(down.len(), 1, "exactly the killed server is down in SERVERS DETAIL:\n{joined}");
    assert!(replication.iter().any(|l| l.contains("Stopped the 3 processes this step started")), "{joined}");

    // Nothing the demo started is left: its four processes are gone and their ports closed.
    let started: Vec<(u32, String)> = replication
        .iter()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "pid")?;
            let pid = words.get(at + 1)?.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok()?;
            let addr = words.get(1).filter(|a| a.starts_with("127.0.0.1:"))?.to_string();
            Some((pid, addr))
        })
        .collect();
    assert_eq!(started.len(), 4, "three servers and a proxy listed with their pids:\n{joined}");
    for (pid, addr) in &started {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        assert!(
            !(cmdline.contains("/server") || cmdline.contains("/proxy")),
            "pid {pid} ({addr}) is still running: {cmdline}"
        );
        assert!(TcpStream::connect(addr).is_err(), "{addr} still accepts connections");
    }
}

#[test]
fn without_all_the_demo_stops_after_the_seed() {
    let cluster = Cluster::ours(3, &[], &[]);
    let output = Command::new(binary("demo"))
        .args(["--proxy", &cluster.proxy.addr(), "--servers", &cluster.addrs().join(",")])
        .env("NO_COLOR", "1")
        .output()
        .expect("run the demo");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("Step 7. ") && !text.contains("Step 8. "), "{text}");
    assert!(!text.contains("What production needs"), "{text}");
}
