//! TLS end to end: our server and the proxy with `--tls-cert/--tls-key[/--tls-ca]` reached by
//! `redis-cli --tls` and the `redis` crate (rustls), the proxy with `--server-tls` in front of
//! a redis-server listening on `--tls-port` only, and plain-text clients refused by a TLS
//! listener without harm.
//!
//! Certificates are made per test with the `openssl` command: a CA, and a server and a
//! client certificate it signed, for `127.0.0.1` and `localhost`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use e2e::{bulk, free_port, have, proxy, run_bounded, server, Conn, PROGRAM_TIMEOUT};
use redis::Commands;
use resp::Frame;

/// A CA, and server and client certificates it signed, in a directory removed on drop.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn new() -> Self {
        assert!(have("openssl"), "the openssl command is not installed (apt-get install -y openssl)");
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "e2e-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("creating the certificate directory");
        let certs = Certs { dir };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        certs.openssl(
            &["req", "-x509"],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=e2e test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        for name in ["server", "client"] {
            let (key, csr, crt, ext) =
                (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("{name}.ext"));
            certs.openssl(&["req"], &ec, &["-keyout", &key, "-out", &csr, "-subj", &format!("/CN={name}")]);
            std::fs::write(
                certs.path(&ext),
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
            )
            .expect("writing the extensions");
            certs.openssl(
                &["x509", "-req"],
                &[],
                &[
                    "-in",
                    &csr,
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &crt,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                ],
            );
        }
        certs
    }

    fn openssl(&self, command: &[&str], key: &[&str], args: &[&str]) {
        let output = Command::new("openssl")
            .args(command)
            .args(key)
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("running openssl");
        assert!(output.status.success(), "openssl {command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// `path(file)` as a string, for a command line.
    fn arg(&self, file: &str) -> String {
        self.path(file).to_string_lossy().into_owned()
    }

    /// `--tls-cert ... --tls-key ...`: the listener's flags.
    fn listener_flags(&self) -> Vec<String> {
        vec!["--tls-cert".into(), self.arg("server.crt"), "--tls-key".into(), self.arg("server.key")]
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Runs `redis-cli --tls --cacert ca.crt -p PORT <extra> <command>`; its stdout, trimmed,
/// and whether it succeeded.
fn redis_cli_tls(port: u16, certs: &Certs, extra: &[&str], command: &[&str]) -> (bool, String) {
    assert!(have("redis-cli"), "redis-cli is not installed (apt-get install -y redis-tools)");
    let mut cli = Command::new("redis-cli");
    cli.args(["-h", "127.0.0.1", "-p", &port.to_string(), "--tls", "--cacert", &certs.arg("ca.crt")])
        .args(extra)
        .args(command);
    let output = run_bounded(&mut cli, PROGRAM_TIMEOUT).expect("redis-cli finished in time");
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let failed = text.starts_with("Error") || text.starts_with("ERR") || text.is_empty();
    (output.status.success() && !failed, text)
}

/// Port of an `127.0.0.1:port` address.
fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':').and_then(|(_, port)| port.parse().ok()).expect("host:port")
}

/// A plain-text client of a TLS listener: it must be disconnected without a reply, and
/// the listener must go on serving.
fn plain_client_is_disconnected(addr: &str) {
    let mut stream = TcpStream::connect(addr).expect("connecting");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").expect("sending a plain-text PING");
    let mut received = Vec::new();
    // The listener answers with a TLS alert at most, then closes: read to the end.
    match stream.read_to_end(&mut received) {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(error) => panic!("a plain-text client was not disconnected: {error}"),
    }
    assert!(!received.windows(5).any(|w| w == b"+PONG"), "a plain-text client got a reply: {received:?}");
}

#[test]
fn the_server_speaks_tls_to_redis_cli_and_drops_plain_text_clients() {
    let certs = Certs::new();
    let flags = certs.listener_flags();
    let server = server("cache-A", &strs(&flags));
    let port = port_of(&server.addr());
    assert_eq!(redis_cli_tls(port, &certs, &[], &["SET", "greeting", "hello over tls"]), (true, "OK".into()));
    assert_eq!(redis_cli_tls(port, &certs, &[], &["GET", "greeting"]), (true, "hello over tls".into()));
    // A large value crosses many TLS records both ways (an argument stays under the
    // kernel's 128 KiB limit for one).
    let part = "x".repeat(100 * 1024);
    let keys: Vec<String> = (0..20).map(|i| format!("big{i}")).collect();
    for key in &keys {
        assert_eq!(redis_cli_tls(port, &certs, &[], &["SET", key, &part]), (true, "OK".into()));
    }
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    let (ok, all) = redis_cli_tls(port, &certs, &[], &mget);
    let values: Vec<&str> = all.lines().collect();
    assert!(ok && values.len() == keys.len() && values.iter().all(|v| *v == part), "MGET: {} bytes", all.len());
    plain_client_is_disconnected(&server.addr());
    // Still serving, and an unverifiable client is refused by the client itself.
    assert_eq!(redis_cli_tls(port, &certs, &[], &["PING"]), (true, "PONG".into()));
}

#[test]
fn the_server_with_tls_ca_requires_client_certificates() {
    let certs = Certs::new();
    let mut flags = certs.listener_flags();
    flags.extend(["--tls-ca".into(), certs.arg("ca.crt")]);
    let server = server("cache-A", &strs(&flags));
    let port = port_of(&server.addr());
    let (ok, _) = redis_cli_tls(port, &certs, &[], &["PING"]);
    assert!(!ok, "a client without a certificate was served");
    let client = ["--cert", &certs.arg("client.crt"), "--key", &certs.arg("client.key")].map(String::from);
    assert_eq!(redis_cli_tls(port, &certs, &strs(&client), &["PING"]), (true, "PONG".into()));
}

#[test]
fn the_proxy_speaks_tls_to_redis_cli_and_the_redis_crate() {
    let certs = Certs::new();
    let servers = [server("cache-A", &[]), server("cache-B", &[])];
    let addrs: Vec<String> = servers.iter().map(|s| s.addr()).collect();
    let flags = certs.listener_flags();
    let proxy = proxy(&addrs, &strs(&flags));
    let port = port_of(&proxy.addr());
    assert_eq!(redis_cli_tls(port, &certs, &[], &["SET", "cli-key", "cli-value"]), (true, "OK".into()));
    assert_eq!(redis_cli_tls(port, &certs, &[], &["GET", "cli-key"]), (true, "cli-value".into()));

    let ca = std::fs::read(certs.path("ca.crt")).expect("reading the CA");
    let tls = redis::TlsCertificates { client_tls: None, root_cert: Some(ca) };
    let client = redis::Client::build_with_tls(format!("rediss://127.0.0.1:{port}/"), tls).expect("client");
    let mut conn = client.get_connection_with_timeout(Duration::from_secs(10)).expect("TLS connection");
    for i in 0..100 {
        let _: () = conn.set(format!("crate-{i}"), i).expect("SET over TLS");
    }
    for i in 0..100 {
        let got: i64 = conn.get(format!("crate-{i}")).expect("GET over TLS");
        assert_eq!(got, i);
    }
    let got: String = conn.get("cli-key").expect("GET over TLS");
    assert_eq!(got, "cli-value");
    // The keys went to the plain-text servers behind it.
    let mut total = 0;
    for addr in &addrs {
        match Conn::connect(addr).call(&["DBSIZE"]) {
            Frame::Integer(n) => total += n,
            other => panic!("DBSIZE answered {other:?}"),
        }
    }
    assert_eq!(total, 101);
    plain_client_is_disconnected(&proxy.addr());
    let got: String = conn.get("cli-key").expect("GET over TLS after a plain-text client");
    assert_eq!(got, "cli-value");
}

/// A redis-server listening on a TLS port only, stopped on drop.
struct TlsRedis {
    child: Child,
    port: u16,
}

impl TlsRedis {
    fn start(certs: &Certs) -> Self {
        assert!(have("redis-server"), "redis-server is not installed (apt-get install -y redis-server)");
        for _ in 0..5 {
            let port = free_port();
            let child = launch::redis_command("redis-server", 0)
                .args(["--tls-port", &port.to_string()])
                .args(["--tls-cert-file", &certs.arg("server.crt"), "--tls-key-file", &certs.arg("server.key")])
                .args(["--tls-ca-cert-file", &certs.arg("ca.crt")])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting redis-server");
            let mut redis = TlsRedis { child, port };
            let client = ["--cert", &certs.arg("client.crt"), "--key", &certs.arg("client.key")].map(String::from);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if redis_cli_tls(port, certs, &strs(&client), &["PING"]) == (true, "PONG".into()) {
                    return redis;
                }
                if matches!(redis.child.try_wait(), Ok(Some(_))) {
                    break; // its port was taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("redis-server with --tls-port did not start");
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_proxy_speaks_tls_to_its_servers() {
    let certs = Certs::new();
    let redis = TlsRedis::start(&certs);
    // Our server with TLS, requiring client certificates too.
    let mut flags = certs.listener_flags();
    flags.extend(["--tls-ca".into(), certs.arg("ca.crt")]);
    let ours = server("cache-A", &strs(&flags));
    let redis_addr = format!("127.0.0.1:{}", redis.port);
    // 160 virtual nodes: with the seed's 3, one of two servers may own nearly the whole ring
    // and every key would land on it. No ejection: a TLS handshake in a debug build on a
    // loaded machine may outlast a health check, and a server marked down would hide a
    // broken link behind the other server instead of failing the test.
    let server_tls = [
        "--replicas",
        "160",
        "--no-auto-eject",
        "--server-tls",
        "--server-tls-ca",
        &certs.arg("ca.crt"),
        "--server-tls-cert",
        &certs.arg("client.crt"),
        "--server-tls-key",
        &certs.arg("client.key"),
    ]
    .map(String::from);
    let proxy = proxy(&[redis_addr.clone(), ours.addr()], &strs(&server_tls));
    let mut client = Conn::connect(&proxy.addr());
    // Keys that differ in more than their last characters: the seed's FNV-1a puts k0..k49
    // close together on the ring, often all on one server.
    let key = |i: u64| format!("tls-{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    for i in 0..50 {
        assert_eq!(client.call(&["SET", &key(i), &format!("v{i}")]), Frame::Simple("OK".into()));
    }
    for i in 0..50 {
        assert_eq!(client.call(&["GET", &key(i)]), bulk(&format!("v{i}")));
    }
    // Both servers hold some: each one's connection works.
    let client_flags = ["--cert", &certs.arg("client.crt"), "--key", &certs.arg("client.key")].map(String::from);
    let on_redis: usize =
        redis_cli_tls(redis.port, &certs, &strs(&client_flags), &["DBSIZE"]).1.parse().expect("DBSIZE");
    let on_ours: usize =
        redis_cli_tls(port_of(&ours.addr()), &certs, &strs(&client_flags), &["DBSIZE"]).1.parse().expect("DBSIZE");
    assert_eq!(on_redis + on_ours, 50);
    assert!(
        on_redis > 0 && on_ours > 0,
        "keys: {on_redis} on redis-server, {on_ours} on ours; {:?}",
        client.call(&["SERVERS", "DETAIL"])
    );
    // A blocking command travels on a dedicated connection, over TLS as well: on a list that
    // the redis-server owns (ours holds strings only), found with ROUTE.
    let on_redis_server = Frame::Simple(redis_addr.clone().into());
    let key = (0..10_000_u64)
        .map(|i| format!("list-{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
        .find(|key| client.call(&["ROUTE", key]) == on_redis_server)
        .expect("a key the redis-server owns");
    assert_eq!(client.call(&["RPUSH", &key, "item"]), Frame::Integer(1));
    assert_eq!(client.call(&["BLPOP", &key, "1"]), Frame::Array(vec![bulk(&key), bulk("item")]));
}

/// The directory for a test's files exists and is removed (a sanity check of the helper).
#[test]
fn certificates_are_made_and_removed() {
    let dir: PathBuf;
    {
        let certs = Certs::new();
        dir = certs.dir.clone();
        for file in ["ca.crt", "server.crt", "server.key", "client.crt", "client.key"] {
            assert!(Path::new(&certs.path(file)).exists(), "{file} missing");
        }
    }
    assert!(!dir.exists());
}

/// A TLS client of `port` that trusts `certs`' CA, from `stream`: sends `PING` once the
/// session is up and returns all it receives until the listener closes. A listener that
/// closes without a TLS session gives an empty answer.
fn tls_exchange(stream: TcpStream, certs: &Certs) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_file(certs.path("ca.crt")).expect("the CA certificate");
    roots.add(ca).expect("a trusted root");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let session = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("TLS session");
    let mut tls = rustls::StreamOwned::new(session, stream);
    let _ = tls.write_all(b"PING\r\n");
    let mut received = Vec::new();
    let _ = tls.read_to_end(&mut received);
    String::from_utf8_lossy(&received).into_owned()
}

/// Refusals over TLS: protected mode's `-DENIED` comes inside the TLS session, as Redis sends
/// it (never as plain text a TLS client cannot read), and a client past `--max-clients` is
/// closed with no plain-text bytes, also as Redis does.
#[test]
fn tls_refusals_are_never_sent_in_plain_text() {
    let certs = Certs::new();
    let mut flags = certs.listener_flags();
    flags.extend(["--bind".into(), "0.0.0.0".into(), "--no-greeting".into(), "--max-clients".into(), "1".into()]);
    let server = server("cache-A", &strs(&flags));
    let proxy = proxy(&[], &strs(&flags));
    for (name, process) in [("server", &server), ("proxy", &proxy)] {
        let port = process.port;
        let said = tls_exchange(e2e::connect_from_127_0_0_2(port), &certs);
        assert!(said.starts_with("-DENIED "), "{name}: a client beyond loopback got {said:?} over TLS");

        // One client holds the only place; the next gets no bytes at all.
        let first = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        first.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut extra = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        extra.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut received = Vec::new();
        let _ = extra.read_to_end(&mut received);
        assert!(Instant::now() < deadline, "{name}: the client past --max-clients was not closed");
        assert!(received.is_empty(), "{name}: plain text to a TLS client: {:?}", String::from_utf8_lossy(&received));
        drop(first);
    }
}
