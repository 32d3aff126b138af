//! The demo's full walkthrough against a live cluster of our real binaries.

use std::process::Command;

use e2e::{binary, Cluster, DEMO_KEYS};

fn run_demo(cluster: &Cluster) -> String {
    let output = Command::new(binary("demo"))
        .args(["--proxy", &cluster.proxy.addr(), "--servers", &cluster.addrs().join(",")])
        .env("NO_COLOR", "1")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

#[test]
fn the_demo_walks_through_and_ends_with_every_key_hitting() {
    let cluster = Cluster::ours(3, &[], &[]);
    let first = run_demo(&cluster);
    for step in 1..=7 {
        assert!(first.contains(&format!("Step {step}. ")), "no step {step} in:\n{first}");
    }
    let summaries: Vec<&str> = first.lines().filter(|l| l.trim_start().starts_with("Summary: ")).collect();
    assert_eq!(summaries.len(), 2, "{first}");
    // Step 5 misses exactly the keys that moved to cache-C, as the ring computes them.
    let addrs = cluster.addrs();
    let mut ring = ring::HashRing::new(3);
    ring.add(&addrs[0]);
    ring.add(&addrs[1]);
    let before: Vec<Option<String>> = DEMO_KEYS.iter().map(|k| ring.get(k.as_bytes()).map(str::to_string)).collect();
    ring.add(&addrs[2]);
    let moved = DEMO_KEYS.iter().zip(&before).filter(|(k, b)| ring.get(k.as_bytes()) != b.as_deref()).count();
    assert_eq!(summaries[0].trim(), format!("Summary: {} hits, {moved} misses", 8 - moved));
    assert_eq!(summaries[1].trim(), "Summary: 8 hits, 0 misses");
    assert!(!first.contains('\x1b'), "NO_COLOR output has no escape codes");

    // A second run against the same cluster starts clean and tells the same story.
    let second = run_demo(&cluster);
    let story =
        |text: &str| text.lines().filter(|l| !l.starts_with("Starting clean")).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(story(&first), story(&second));
}

#[test]
fn without_a_proxy_the_demo_says_how_to_start_one() {
    let port = e2e::free_port();
    let output = Command::new(binary("demo"))
        .args(["--proxy", &format!("127.0.0.1:{port}")])
        .env("NO_COLOR", "1")
        .output()
        .expect("run the demo");
    assert!(!output.status.success());
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(text.contains("demo.sh") && text.contains("cargo run -p proxy"), "{text}");
}
