//! Warm restart of the cache server (`--snapshot FILE`, issue 12): keys written, SIGTERM, a
//! new process on the same file serves them all with their TTLs; a damaged file is refused
//! with an error and the server does not start.
//!
//! `cargo test -p e2e --test warm_restart`

use std::process::Command;
use std::time::Duration;

use e2e::{binary, run_bounded, server, Conn, TempDir, PROGRAM_TIMEOUT};
use resp::Frame;

/// Keys written before the restart.
const KEYS: usize = 10_000;

fn set_keys(c: &mut Conn) {
    let mut commands: Vec<Vec<String>> =
        (0..KEYS).map(|i| vec!["SET".into(), format!("key:{i}"), format!("value-{i}")]).collect();
    // Every tenth key with a TTL far from any boundary, two already gone by the restart.
    commands.extend((0..KEYS).step_by(10).map(|i| vec!["EXPIRE".into(), format!("key:{i}"), "1000".into()]));
    commands.push(vec!["SET".into(), "short-lived".into(), "x".into(), "PX".into(), "1".into()]);
    for reply in c.pipeline(&commands) {
        assert!(!matches!(reply, Frame::Error(_)), "{reply:?}");
    }
}

#[test]
fn a_restarted_server_serves_every_key_it_held_with_its_ttl() {
    let dir = TempDir::new("snapshot");
    let file = dir.path().join("cache.snapshot");
    let file_arg = file.to_string_lossy().into_owned();
    let flags = ["--no-greeting", "--snapshot", file_arg.as_str()];
    let mut first = server("cache-A", &flags);
    assert!(first.wait_for_log("starting empty", Duration::from_secs(5)), "a first start says it starts empty");
    set_keys(&mut Conn::connect(&first.addr()));
    let status = first.stop_with("TERM", Duration::from_secs(20)).expect("SIGTERM").expect("exited");
    assert!(status.success(), "SIGTERM exits 0: {status:?}");
    assert!(first.logs().iter().any(|line| line.contains("keys to the snapshot")), "the stop logs what it wrote");
    assert!(!dir.path().join("cache.snapshot.tmp").exists(), "no temporary file left");

    let second = server("cache-A", &flags);
    assert!(second.wait_for_log(&format!("loaded {KEYS} keys"), Duration::from_secs(5)), "{:?}", second.logs());
    let mut c = Conn::connect(&second.addr());
    assert_eq!(c.call(&["DBSIZE"]), Frame::Integer(KEYS as i64));
    let gets: Vec<Vec<String>> = (0..KEYS).map(|i| vec!["GET".into(), format!("key:{i}")]).collect();
    for (i, reply) in c.pipeline(&gets).into_iter().enumerate() {
        assert_eq!(reply, e2e::bulk(&format!("value-{i}")), "key:{i}");
    }
    match c.call(&["TTL", "key:10"]) {
        Frame::Integer(ttl) => assert!((900..=1000).contains(&ttl), "TTL kept: {ttl}"),
        other => panic!("TTL {other:?}"),
    }
    assert_eq!(c.call(&["TTL", "key:11"]), Frame::Integer(-1), "no TTL stays none");
    assert_eq!(c.call(&["EXISTS", "short-lived"]), Frame::Integer(0), "an expired key is not brought back");
}

/// `redis-cli SHUTDOWN` stops the server as SIGTERM does and writes the snapshot;
/// `SHUTDOWN NOSAVE` stops it without writing; what does not go ahead gets redis-server's
/// replies.
#[test]
fn shutdown_from_a_client_stops_the_server_and_writes_the_snapshot_unless_nosave() {
    assert!(e2e::have("redis-cli"), "redis-cli is not installed (apt-get install -y redis-tools)");
    let dir = TempDir::new("snapshot-shutdown");
    let file = dir.path().join("cache.snapshot");
    let file_arg = file.to_string_lossy().into_owned();
    let flags = ["--no-greeting", "--snapshot", file_arg.as_str()];
    let mut first = server("cache-A", &flags);
    let mut c = Conn::connect(&first.addr());
    set_keys(&mut c);
    for (args, error) in [
        (&["SHUTDOWN", "ABORT"][..], "ERR No shutdown in progress."),
        (&["SHUTDOWN", "NOSAVE", "SAVE"][..], "ERR syntax error"),
        (&["SHUTDOWN", "NOW", "ABORT"][..], "ERR syntax error"),
        (&["SHUTDOWN", "LATER"][..], "ERR syntax error"),
    ] {
        assert_eq!(c.call(args), Frame::Error(error.into()), "{args:?}");
    }
    let port = first.addr().rsplit(':').next().unwrap_or_default().to_string();
    let mut cli = Command::new("redis-cli");
    cli.args(["-p", port.as_str(), "SHUTDOWN"]);
    let output = run_bounded(&mut cli, PROGRAM_TIMEOUT).expect("redis-cli SHUTDOWN");
    assert!(output.status.success(), "redis-cli SHUTDOWN: {output:?}");
    let status = first.wait_exit(Duration::from_secs(20)).expect("waiting").expect("exited after SHUTDOWN");
    assert!(status.success(), "SHUTDOWN exits 0: {status:?}");
    assert!(first.logs().iter().any(|line| line.contains("SHUTDOWN from a client")), "{:?}", first.logs());

    let mut second = server("cache-A", &flags);
    assert!(second.wait_for_log(&format!("loaded {KEYS} keys"), Duration::from_secs(5)), "{:?}", second.logs());
    let mut c = Conn::connect(&second.addr());
    assert_eq!(c.call(&["SET", "written-after", "x"]), Frame::Simple("OK".into()));
    c.send_raw(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n");
    let status = second.wait_exit(Duration::from_secs(20)).expect("waiting").expect("exited after SHUTDOWN NOSAVE");
    assert!(status.success(), "SHUTDOWN NOSAVE exits 0: {status:?}");
    assert!(second.logs().iter().any(|line| line.contains("is not written")), "{:?}", second.logs());
    let third = server("cache-A", &flags);
    assert!(third.wait_for_log(&format!("loaded {KEYS} keys"), Duration::from_secs(5)), "{:?}", third.logs());
    assert_eq!(Conn::connect(&third.addr()).call(&["EXISTS", "written-after"]), Frame::Integer(0));
}

#[test]
fn a_damaged_snapshot_is_refused_and_nothing_starts() {
    let dir = TempDir::new("snapshot-bad");
    let file = dir.path().join("cache.snapshot");
    let file_arg = file.to_string_lossy().into_owned();
    let flags = ["--no-greeting", "--snapshot", file_arg.as_str()];
    let mut first = server("cache-A", &flags);
    set_keys(&mut Conn::connect(&first.addr()));
    first.stop_with("TERM", Duration::from_secs(20)).expect("SIGTERM");
    let whole = std::fs::read(&file).expect("the snapshot");
    // Cut short, as by a full disk or a crash of whatever copied it.
    std::fs::write(&file, &whole[..whole.len() / 2]).expect("truncating");
    let mut start = Command::new(binary("server"));
    start.args(["--port", "0"]).args(flags).env("NO_COLOR", "1");
    let output = run_bounded(&mut start, PROGRAM_TIMEOUT).expect("the server exits by itself");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a truncated snapshot must stop the start: {stderr}");
    assert!(
        stderr.contains("is refused: corrupt or truncated") && stderr.contains("nothing was loaded"),
        "the error says what and why: {stderr}"
    );
    assert!(!stderr.contains("listening on"), "it never served: {stderr}");
}
