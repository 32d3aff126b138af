//! `--metrics-port`: the proxy's and the server's Prometheus text, parsed with a Prometheus
//! text-format parser, the counters moving as a known load says; the ring page and the JSON
//! it polls; and PREVIEW, whose predicted moved keys must equal what ADD_SERVER ... MIGRATE
//! and REMOVE_SERVER ... MIGRATE then move.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use e2e::{free_port, proxy, server, Conn, Process};
use resp::Frame;

/// One HTTP/1.0 GET: (status, body).
fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status");
    (status, body.to_string())
}

/// Scrapes `/metrics` and parses it: sample values by metric name and labels.
struct Scrape(prometheus_parse::Scrape);

impl Scrape {
    fn take(port: u16) -> Scrape {
        let (status, body) = http_get(port, "/metrics");
        assert_eq!(status, 200, "{body}");
        let lines = body.lines().map(|l| Ok(l.to_string()));
        Scrape(prometheus_parse::Scrape::parse(lines).expect("Prometheus text"))
    }

    /// The value of `name` with these labels (a subset of the sample's), if present.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(ref buckets) => buckets.last().map_or(0.0, |b| b.count),
                prometheus_parse::Value::Summary(_) => f64::NAN,
            })
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in the scrape"))
    }

    /// Sum of `name` over every sample.
    fn sum(&self, name: &str) -> f64 {
        let value = |s: &prometheus_parse::Sample| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        };
        self.0.samples.iter().filter(|s| s.metric == name).map(value).sum()
    }
}

fn servers(n: usize) -> Vec<Process> {
    (0..n).map(|i| server(&format!("cache-{}", (b'A' + i as u8) as char), &["--no-log-requests"])).collect()
}

fn ok(frame: Frame) {
    assert!(matches!(frame, Frame::Simple(_)), "{frame:?}");
}

#[test]
fn proxy_metrics_count_a_known_load() {
    let servers = servers(2);
    let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
    let port = free_port();
    let proxy = proxy(&addrs, &["--metrics-port", &port.to_string(), "--no-log-requests"]);
    let mut conn = Conn::connect(&proxy.addr());
    let before = Scrape::take(port);
    assert_eq!(before.get("proxy_server_up", &[("server", &addrs[0])]), 1.0);
    let share: f64 = addrs.iter().map(|a| before.get("proxy_server_ring_share", &[("server", a)])).sum();
    assert!((share - 1.0).abs() < 1e-9, "shares add up to the whole ring: {share}");
    assert_eq!(before.get("proxy_ring_points", &[]), 6.0, "2 servers x 3 vnodes");

    let sets: Vec<Vec<String>> =
        (0..100).map(|i| vec!["SET".into(), format!("key:{i}"), format!("value:{i}")]).collect();
    let gets: Vec<Vec<String>> = (0..50).map(|i| vec!["GET".into(), format!("key:{i}")]).collect();
    conn.pipeline(&sets).into_iter().for_each(ok);
    assert!(conn.pipeline(&gets).iter().all(|f| matches!(f, Frame::Bulk(_))));
    let sent_bytes: usize = {
        let mut out = bytes::BytesMut::new();
        sets.iter().chain(&gets).for_each(|c| resp::write::command(&mut out, c));
        out.len()
    };

    let after = Scrape::take(port);
    assert_eq!(after.get("proxy_commands_total", &[("command", "set")]), 100.0);
    assert_eq!(after.get("proxy_commands_total", &[("command", "get")]), 50.0);
    let delta = |name: &str| after.sum(name) - before.sum(name);
    assert!(delta("proxy_server_requests_total") >= 150.0, "every command went to a server");
    assert_eq!(delta("proxy_server_errors_total"), 0.0);
    assert_eq!(delta("proxy_server_timeouts_total"), 0.0);
    assert!(delta("proxy_client_bytes_in_total") >= sent_bytes as f64);
    assert!(delta("proxy_client_bytes_out_total") >= (100 * 5) as f64, "100 x +OK\\r\\n at least");
    assert_eq!(after.get("proxy_client_connections", &[]), 1.0);
    let latencies: f64 = addrs.iter().map(|a| after.get("proxy_server_latency_seconds_count", &[("server", a)])).sum();
    assert!(latencies >= 2.0, "latency recorded for the batches sent: {latencies}");
    assert_eq!(after.get("proxy_migration_running", &[]), 0.0);
    drop(servers);
}

#[test]
fn server_metrics_count_hits_misses_and_keys() {
    let port = free_port();
    let server = server("cache-M", &["--metrics-port", &port.to_string(), "--no-log-requests"]);
    let mut conn = Conn::connect(&server.addr());
    let before = Scrape::take(port);
    assert_eq!(before.get("server_keys", &[]), 0.0);
    let sets: Vec<Vec<String>> = (0..10).map(|i| vec!["SET".into(), format!("k{i}"), "v".into()]).collect();
    conn.pipeline(&sets).into_iter().for_each(ok);
    let gets: Vec<Vec<String>> = (0..15).map(|i| vec!["GET".into(), format!("k{i}")]).collect();
    conn.pipeline(&gets);
    let after = Scrape::take(port);
    assert_eq!(after.get("server_keys", &[]), 10.0);
    assert_eq!(after.get("server_keyspace_hits_total", &[]), 10.0);
    assert_eq!(after.get("server_keyspace_misses_total", &[]), 5.0);
    assert_eq!(after.get("server_commands_total", &[]) - before.get("server_commands_total", &[]), 25.0);
    assert!(after.get("server_used_memory_bytes", &[]) > before.get("server_used_memory_bytes", &[]));
    assert_eq!(after.get("server_evicted_keys_total", &[]), 0.0);
    assert_eq!(after.get("server_connected_clients", &[]), 1.0);
}

#[test]
fn the_page_is_served_with_the_ring_it_polls() {
    let servers = servers(3);
    let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
    let port = free_port();
    let proxy = proxy(&addrs, &["--metrics-port", &port.to_string(), "--replicas", "10", "--no-log-requests"]);
    let (status, page) = http_get(port, "/");
    assert_eq!(status, 200);
    assert!(page.contains("<svg id=\"ring\""), "the ring is drawn in SVG");
    assert!(page.contains("\"/api/ring\""), "the page polls the ring endpoint");
    for outside in ["src=\"http", "href=\"http", "@import", "fetch(\"http"] {
        assert!(!page.contains(outside), "nothing from a CDN: {outside}");
    }

    let (status, body) = http_get(port, "/api/ring");
    assert_eq!(status, 200);
    let ring: serde_json::Value = serde_json::from_str(&body).unwrap();
    let listed: Vec<&str> = ring["servers"].as_array().unwrap().iter().map(|s| s["addr"].as_str().unwrap()).collect();
    let mut sorted = addrs.clone();
    sorted.sort();
    assert_eq!(listed, sorted);
    let points = ring["points"].as_array().unwrap();
    let vnodes: u64 = ring["servers"].as_array().unwrap().iter().map(|s| s["vnodes"].as_u64().unwrap()).sum();
    assert_eq!(points.len() as u64, vnodes, "one point per virtual node");
    assert!(points.windows(2).all(|w| w[0][0].as_u64() < w[1][0].as_u64()), "ascending positions");
    assert!(ring["servers"].as_array().unwrap().iter().all(|s| s["keys"].as_u64() == Some(0)));

    let mut conn = Conn::connect(&proxy.addr());
    for key in ["user:1001", "session:abc", "cart:alice"] {
        let (status, body) = http_get(port, &format!("/api/route?key={key}"));
        assert_eq!(status, 200);
        let route: serde_json::Value = serde_json::from_str(&body).unwrap();
        let Frame::Simple(owner) = conn.call(&["ROUTE", key]) else { panic!("ROUTE") };
        assert_eq!(route["owner"].as_str().unwrap().as_bytes(), &owner[..], "{key}");
        assert_eq!(route["preference"].as_array().unwrap().len(), 3);
    }
    let (status, body) = http_get(port, &format!("/api/preview?op=remove&server={}", sorted[0]));
    assert_eq!(status, 200, "{body}");
    let preview: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(preview["moves"].as_array().unwrap().iter().all(|m| m["from"] == sorted[0].as_str()));
    let (status, _) = http_get(port, "/api/preview?op=remove&server=127.0.0.1:1");
    assert_eq!(status, 400, "not in the ring");
}

/// Parses PREVIEW's `keys N of T would move (...)` line.
fn predicted(reply: &Frame) -> (u64, bool) {
    let Frame::Array(lines) = reply else { panic!("PREVIEW: {reply:?}") };
    let text: Vec<String> = lines
        .iter()
        .map(|l| match l {
            Frame::Simple(s) => String::from_utf8_lossy(s).into_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    let keys = text.iter().find_map(|l| l.strip_prefix("keys ")).unwrap_or_else(|| panic!("{text:?}"));
    let count = keys.split_whitespace().next().unwrap();
    (count.trim_start_matches('~').parse().unwrap(), keys.contains("exact"))
}

fn migrated(conn: &mut Conn) -> u64 {
    assert_eq!(conn.wait_for_migration(Duration::from_secs(30)), "done");
    assert_eq!(conn.field(&["MIGRATION"], "progress_percent").as_deref(), Some("100.0"));
    conn.field(&["MIGRATION"], "keys_moved").unwrap().parse().unwrap()
}

#[test]
fn preview_predicts_exactly_what_add_and_remove_then_move() {
    let servers = servers(3);
    let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
    let proxy = proxy(&addrs[..2], &["--no-log-requests"]);
    let mut conn = Conn::connect(&proxy.addr());
    let sets: Vec<Vec<String>> = (0..2000).map(|i| vec!["SET".into(), format!("user:{i}"), i.to_string()]).collect();
    conn.pipeline(&sets).into_iter().for_each(ok);

    let ring_before = conn.call(&["SERVERS"]);
    let (add, exact) = predicted(&conn.call(&["PREVIEW", "ADD", &addrs[2]]));
    assert!(exact, "2,000 keys are all sampled");
    assert_eq!(conn.call(&["SERVERS"]), ring_before, "PREVIEW changes nothing");
    ok(conn.call(&["ADD_SERVER", &addrs[2], "MIGRATE"]));
    assert_eq!(migrated(&mut conn), add, "PREVIEW ADD predicted the keys ADD_SERVER MIGRATE moved");
    let mut newcomer = Conn::connect(&addrs[2]);
    assert_eq!(newcomer.call(&["DBSIZE"]), Frame::Integer(add as i64));

    let (remove, exact) = predicted(&conn.call(&["PREVIEW", "REMOVE", &addrs[0]]));
    assert!(exact);
    let mut leaving = Conn::connect(&addrs[0]);
    let Frame::Integer(held) = leaving.call(&["DBSIZE"]) else { panic!("DBSIZE") };
    assert_eq!(remove, held as u64, "a leaving server's keys all move");
    ok(conn.call(&["REMOVE_SERVER", &addrs[0], "MIGRATE"]));
    assert_eq!(migrated(&mut conn), remove, "PREVIEW REMOVE predicted the keys REMOVE_SERVER MIGRATE moved");

    assert!(matches!(conn.call(&["PREVIEW", "ADD", "nonsense"]), Frame::Error(_)));
    assert!(matches!(conn.call(&["PREVIEW", "REMOVE", &addrs[0]]), Frame::Error(_)), "no longer in the ring");
    assert!(matches!(conn.call(&["PREVIEW", "MOVE", &addrs[0]]), Frame::Error(_)));
}

#[test]
fn preview_samples_a_large_keyspace_and_bounds_its_error() {
    let servers = servers(3);
    let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
    let proxy = proxy(&addrs[..2], &["--no-log-requests", "--replicas", "40"]);
    let mut conn = Conn::connect(&proxy.addr());
    // More keys per server than PREVIEW samples (10,000), so it must estimate.
    for chunk in (0..40_000).collect::<Vec<u32>>().chunks(5000) {
        let sets: Vec<Vec<String>> = chunk.iter().map(|i| vec!["SET".into(), format!("k:{i}"), "v".into()]).collect();
        conn.pipeline(&sets).into_iter().for_each(ok);
    }
    let reply = conn.call(&["PREVIEW", "ADD", &addrs[2]]);
    let (estimate, exact) = predicted(&reply);
    assert!(!exact, "{reply:?}");
    let Frame::Array(lines) = &reply else { unreachable!() };
    let last = format!("{:?}", lines.last().unwrap());
    // Each server is sampled up to about 10,000 keys (SCAN's batches may overshoot a little);
    // a server holding fewer is counted whole.
    let sampled: u64 =
        last.split("sampled ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().parse().unwrap();
    assert!((10_000..40_000).contains(&sampled) && last.contains("of 40000 keys"), "{last}");
    ok(conn.call(&["ADD_SERVER", &addrs[2], "MIGRATE"]));
    let moved = migrated(&mut conn);
    // The bound printed is a 95% interval; allow twice it, against flakiness.
    let error: f64 = last.split("+/- ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().parse().unwrap();
    assert!(
        (estimate as f64 - moved as f64).abs() <= 2.0 * error.max(1.0),
        "estimate {estimate} +/- {error}, moved {moved}"
    );
}

/// Headless Chromium (`.ci/run` installs it), or `None` when it is not installed here.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|name| e2e::have(name))
}

#[test]
fn the_page_works_in_a_real_browser() {
    let Some(browser) = chromium() else {
        eprintln!("chromium is not installed (apt-get install -y chromium): the browser check is skipped");
        return;
    };
    let servers = servers(3);
    let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
    let port = free_port();
    let proxy = proxy(&addrs, &["--metrics-port", &port.to_string(), "--replicas", "5", "--no-log-requests"]);
    let mut conn = Conn::connect(&proxy.addr());
    let sets: Vec<Vec<String>> = (0..300).map(|i| vec!["SET".into(), format!("user:{i}"), "v".into()]).collect();
    conn.pipeline(&sets).into_iter().for_each(ok);
    let Frame::Simple(owner) = conn.call(&["ROUTE", "user:1001"]) else { panic!("ROUTE") };
    let owner = String::from_utf8_lossy(&owner).into_owned();
    let (_, body) = http_get(port, "/api/ring");
    let ring: serde_json::Value = serde_json::from_str(&body).unwrap();
    let points = ring["points"].as_array().unwrap().len();

    let url = format!("http://127.0.0.1:{port}/?key=user:1001");
    let shot = std::env::temp_dir().join(format!("ring-page-{port}.png"));
    let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars"];
    let mut dump = std::process::Command::new(browser);
    dump.args(flags).args(["--virtual-time-budget=4000", "--dump-dom", &url]);
    let output = e2e::run_bounded(&mut dump, Duration::from_secs(60)).expect("chromium finished");
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(dom.matches("class=\"tick\"").count(), points, "a tick per point of the ring:\n{dom}");
    assert_eq!(dom.matches("<tr class=\"server\">").count(), 3, "every server listed");
    for addr in &addrs {
        assert!(dom.contains(addr.as_str()), "{addr} in the table");
    }
    let route = dom.split("<pre id=\"route\">").nth(1).and_then(|r| r.split("</pre>").next()).unwrap_or_default();
    assert!(route.contains(&format!("-&gt; {owner}")), "the key box answers as ROUTE does: {route}");
    assert!(route.contains("preference list"), "{route}");

    let mut screenshot = std::process::Command::new(browser);
    screenshot.args(flags).args([
        "--virtual-time-budget=4000",
        "--window-size=1280,800",
        &format!("--screenshot={}", shot.display()),
        &url,
    ]);
    e2e::run_bounded(&mut screenshot, Duration::from_secs(60)).expect("chromium finished");
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    eprintln!("screenshot of the page: {}", shot.display());
}
