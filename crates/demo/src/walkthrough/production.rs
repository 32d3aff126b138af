//! The steps after the seed's seven (`--all`): what a production deployment adds, each shown
//! with measured figures.
//!
//! - REBALANCE after adding cache-C: the misses of step 5 disappear.
//! - Virtual nodes: how evenly 10,000 keys spread with 3 and with 160 per server.
//! - Consistent hashing versus `hash mod N`: keys moved when a fourth server joins.
//! - Replication factor 2: a cluster of the demo's own, one server killed, every key read back.
//!
//! The second and third are computed with the `ring` crate, the placement code the proxy
//! routes with; the others drive a live proxy. [`production_conclusion`] turns the figures into
//! the closing "What production needs".

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use resp::Frame;

use super::{command_text, moves, Findings, ReadBack, Step, Walkthrough};
use crate::balance::{self, Churn, Spread, SAMPLE_KEYS};
use crate::client::{describe, Client};
use crate::cluster::LocalCluster;
use crate::report::{
    self, and_list, bar, decimal, keys, percent_tenths, right_align, thousands, BarGlyphs, Cell, Style, INDENT,
};
use crate::{value_for, DEMO_KEYS};

/// The steps `--all` runs after the seed's, in order.
pub const PRODUCTION_STEPS: [Step; 5] = [
    Step {
        title: "Add cache-C again, then REBALANCE: no more misses",
        intro: "Steps 1 to 5 once more, then REBALANCE: the proxy moves every stored key to its owner on the current ring, so the reads that missed now hit.",
        run: step_rebalance,
    },
    Step {
        title: "Virtual nodes and balance",
        intro: "How evenly 10,000 keys spread over the three servers with 3 virtual nodes per server (the seed's default) and with 160.",
        run: step_balance,
    },
    Step {
        title: "Consistent hashing versus hash mod N",
        intro: "Add a fourth server and count the keys that change server: the ring moves only the newcomer's share, hash mod N moves most of them.",
        run: step_churn,
    },
    Step {
        title: "Replication factor 2 and a dead server",
        intro: "Every key is written to two servers; kill one with SIGKILL and every key still reads back from its other copy.",
        run: step_replication,
    },
    Step {
        title: "Every placement, side by side",
        intro: "The proxy's --distribution choices over made-up pools of 10 and 100 servers: how evenly they divide the key space, how many keys move when a server joins or leaves (against the ideal), and what a lookup costs.",
        run: step_placements,
    },
];

/// Pool sizes of the placements step.
const PLACEMENT_POOLS: [usize; 2] = [10, 100];

// ----- step 12: placements -----

fn step_placements(w: &mut Walkthrough) -> Result<()> {
    let p = w.palette;
    let keys = balance::sample_keys(SAMPLE_KEYS);
    println!(
        "{INDENT}{} keys {} .. {}; pools of 10.0.x.y:6379 addresses, placed with the ring crate, never started.",
        thousands(keys.len()),
        keys[0],
        keys[keys.len() - 1]
    );
    println!();
    let mut rows = vec![vec![
        Cell::empty(),
        Cell::styled("servers", Style::Quiet),
        Cell::styled("max/mean", Style::Quiet),
        Cell::styled("moved on a join / ideal", Style::Quiet),
        Cell::styled("on a leave / ideal", Style::Quiet),
        Cell::styled("lookup vs seed 160", Style::Quiet),
    ]];
    for &n in &PLACEMENT_POOLS {
        let measured: Vec<balance::PlacementRow> =
            balance::PLACEMENTS.iter().map(|&(d, v)| balance::placement_row(d, v, n, &keys)).collect();
        let reference = measured.iter().find(|r| r.name == "seed, 160 vnodes").map_or(1.0, |r| r.lookup_ns.max(1e-9));
        for row in &measured {
            let balance_style = if row.max_over_mean <= 1.10 { Style::Good } else { Style::Plain };
            let moves_style = |ratio: f64| if ratio <= 1.5 { Style::Good } else { Style::Bad };
            rows.push(vec![
                Cell::plain(row.name.clone()),
                Cell::plain(row.servers.to_string()),
                Cell::styled(format!("{}{:.2}", if row.sampled { "~" } else { "" }, row.max_over_mean), balance_style),
                Cell::styled(format!("{:.2}x", row.join_over_ideal), moves_style(row.join_over_ideal)),
                Cell::styled(format!("{:.2}x", row.leave_over_ideal), moves_style(row.leave_over_ideal)),
                Cell::plain(format!("{:.1}x", row.lookup_ns / reference)),
            ]);
        }
    }
    w.print_table(&rows);
    println!(
        "{INDENT}{}",
        p.yellow(
            "maglev divides the key space most evenly with O(1) lookups; ketama is twemproxy's, bit for bit; modula moves \
             almost every key on any change; the seed's ring needs many virtual nodes to balance. ~: counted over the keys \
             (rendezvous has no table). The README's Placement section has 1,000 servers and release-build timings."
        )
    );
    Ok(())
}

/// Virtual nodes per server compared in the balance and churn steps: the seed's default and
/// a production-sized number.
pub const VNODE_SETTINGS: [usize; 2] = [3, 160];
/// Width of a full (100 %) bar in the balance step, in characters.
const BAR_WIDTH: usize = 50;
/// Keys routed through the live proxy to check that it places keys as the `ring` crate does.
const ROUTE_CHECK_KEYS: usize = 100;
/// How often `MIGRATION` is polled, and for how long at most.
const MIGRATION_POLL: Duration = Duration::from_millis(20);
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(60);
/// The replication step's cluster: its cache servers' names and its replication factor.
const NODE_NAMES: [&str; 3] = ["node-1", "node-2", "node-3"];
const REPLICATION_FACTOR: usize = 2;
/// Virtual nodes per server on the step's proxy: more than the seed's 3, so that the eight
/// keys' copies are less likely to sit on one pair of servers.
const REPLICATION_VNODES: usize = 160;
/// How often `SERVERS DETAIL` is polled after the kill, and for how long at most (the
/// proxy's defaults mark a dead server down in about 1.5 s).
const DOWN_POLL: Duration = Duration::from_millis(50);
const DOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the REBALANCE step measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationRun {
    /// The server that joined without migration (`cache-C`).
    pub joined: String,
    /// Demo keys whose owner changed when it joined.
    pub moved_by_ring: usize,
    /// Reading every key after the join, before REBALANCE.
    pub before: ReadBack,
    /// The migration's final state (`done`, `failed`, or `running` if it did not finish).
    pub state: String,
    /// `MIGRATION`'s `keys_scanned`.
    pub scanned: u64,
    /// `MIGRATION`'s `keys_moved`.
    pub moved: u64,
    /// `MIGRATION`'s `keys_remaining`.
    pub remaining: u64,
    /// `MIGRATION`'s `errors`.
    pub errors: u64,
    /// `MIGRATION`'s `elapsed_ms`.
    pub elapsed_ms: u64,
    /// Reading every key after REBALANCE.
    pub after: ReadBack,
    /// Values found on their owner, asking each cache server directly.
    pub on_owner: usize,
    /// Copies found on servers that do not own the key.
    pub stray_copies: usize,
}

/// What the churn step measured: keys moved when a fourth server joins three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChurnRun {
    /// Servers before the join.
    pub servers_before: usize,
    /// On the ring, per number of virtual nodes.
    pub ring: Vec<(usize, Churn)>,
    /// Under `fnv1a_32(key) % N`.
    pub mod_n: Churn,
}

/// What the replication step measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationRun {
    /// Copies of each key.
    pub factor: usize,
    /// The server killed.
    pub killed: String,
    /// Keys it held a copy of.
    pub held: usize,
    /// Of those, the keys it was the first replica (owner) of.
    pub owned: usize,
    /// Reading every key right after the kill.
    pub read: ReadBack,
    /// Milliseconds from the kill until `SERVERS DETAIL` showed it down, if it did in time.
    pub down_after_ms: Option<u64>,
    /// How long the walkthrough was prepared to wait for that, in milliseconds.
    pub waited_at_most_ms: u64,
}

// ----- step 8: migration -----

fn step_rebalance(w: &mut Walkthrough) -> Result<()> {
    let p = w.palette;
    let reset = w.reset()?;
    println!("{}", p.dim(&format!("{INDENT}Reset: {reset}.")));
    w.add_server(0)?;
    w.add_server(1)?;
    let before = w.route_all()?;
    for (k, key) in DEMO_KEYS.iter().enumerate() {
        w.store(key)?;
        w.stored_on[k] = Some(before[k]);
    }
    println!(
        "{INDENT}SET {} keys: every one answered {}, on {} and {}",
        DEMO_KEYS.len(),
        p.green("+OK"),
        w.servers[0].label,
        w.servers[1].label
    );
    w.add_server(2)?;
    let owners = w.route_all()?;
    let moved = moves(&before, &owners);
    w.marked = moved.clone();
    w.routes = owners;
    let joined = w.servers[2].label.clone();

    let before_reads = get_all(w)?;
    let before_read = read_summary(&before_reads, &moved.iter().map(|m| m.key).collect::<Vec<_>>());
    println!(
        "{INDENT}{} of {} now route to {joined}; reading every key gives {} hits, {} misses, as in step 5.",
        moved.len(),
        keys(DEMO_KEYS.len()),
        before_read.hits,
        before_read.misses
    );

    println!();
    let reply = "OK rebalancing (see MIGRATION)";
    w.expect_status(&[b"REBALANCE"], reply)?;
    println!("{INDENT}REBALANCE  {}", p.green(&format!("+{reply}")));
    let (fields, polls) = wait_for_migration(w)?;
    let field = |name: &str| -> Result<u64> {
        fields
            .get(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("MIGRATION's reply has no numeric `{name}` field"))
    };
    let state = fields.get("migration").cloned().unwrap_or_default();
    let (scanned, moved_keys, remaining, errors, elapsed_ms) = (
        field("keys_scanned")?,
        field("keys_moved")?,
        field("keys_remaining")?,
        field("errors")?,
        field("elapsed_ms")?,
    );
    let figures = format!(
        "{scanned} keys scanned, {moved_keys} moved, {remaining} remaining, {errors} errors, in {elapsed_ms} ms (polled {})",
        times(polls)
    );
    let painted_state = if state == "done" { p.green(&state) } else { p.red(&state) };
    println!("{INDENT}MIGRATION  {painted_state}: {figures}");

    let after_reads = get_all(w)?;
    let after_read = read_summary(&after_reads, &[]);
    println!();
    let mut rows = vec![vec![
        Cell::styled("GET", Style::Quiet),
        Cell::styled("owner", Style::Quiet),
        Cell::styled("before", Style::Quiet),
        Cell::styled("after", Style::Quiet),
    ]];
    for (k, key) in DEMO_KEYS.iter().enumerate() {
        let hit_or_miss = |value: &Option<Bytes>| match value {
            Some(_) => Cell::styled("HIT", Style::Good),
            None => Cell::styled("MISS", Style::Bad),
        };
        let mut row = vec![
            Cell::plain(*key),
            Cell::styled(w.servers[w.routes[k]].label.clone(), Style::Name),
            hit_or_miss(&before_reads[k]),
            hit_or_miss(&after_reads[k]),
        ];
        if let Some(m) = moved.iter().find(|m| m.key == k) {
            row.push(Cell::styled(format!("moved from {}", w.servers[m.from].label), Style::Changed));
        }
        rows.push(row);
    }
    w.print_table(&rows);

    let (on_owner, stray_copies) = check_placement(w)?;
    let strays = if stray_copies == 0 {
        "no copy left anywhere else".to_string()
    } else {
        format!("{stray_copies} stray copies on servers that do not own the key")
    };
    println!(
        "{INDENT}Asked each cache server directly: {on_owner} of {} values are on their owner, {strays}.",
        DEMO_KEYS.len()
    );
    w.print_summary(&after_read);

    w.findings.migration = Some(MigrationRun {
        joined,
        moved_by_ring: moved.len(),
        before: before_read,
        state,
        scanned,
        moved: moved_keys,
        remaining,
        errors,
        elapsed_ms,
        after: after_read,
        on_owner,
        stray_copies,
    });
    Ok(())
}

/// `GET` of every demo key through the proxy, in order.
fn get_all(w: &mut Walkthrough) -> Result<Vec<Option<Bytes>>> {
    DEMO_KEYS.iter().map(|key| w.fetch(key)).collect()
}

/// Polls `MIGRATION` until it is no longer `running` (or [`MIGRATION_TIMEOUT`] passes):
/// its last fields and how many polls it took.
fn wait_for_migration(w: &mut Walkthrough) -> Result<(HashMap<String, String>, usize)> {
    let deadline = Instant::now() + MIGRATION_TIMEOUT;
    let mut polls = 0;
    let bar = MigrationBar::new(&w.palette);
    loop {
        let args: [&[u8]; 1] = [b"MIGRATION"];
        let reply = w.call(&args)?;
        polls += 1;
        let fields = match &reply {
            Frame::Bulk(text) => parse_fields(&String::from_utf8_lossy(text)),
            _ => return Err(w.unexpected(&args, &reply, "a bulk string of field:value lines")),
        };
        bar.show(&fields);
        if fields.get("migration").map(String::as_str) != Some("running") || Instant::now() >= deadline {
            bar.finish();
            return Ok((fields, polls));
        }
        std::thread::sleep(MIGRATION_POLL);
    }
}

/// A progress bar (indicatif) for a running migration, fed from `MIGRATION`'s
/// `progress_percent`, `keys_scanned`, `keys_remaining` and `eta_ms`. Drawn only where the
/// output is coloured (a terminal, no `NO_COLOR`); elsewhere the plain `MIGRATION` line that
/// follows says the same.
struct MigrationBar(Option<indicatif::ProgressBar>);

impl MigrationBar {
    fn new(palette: &cli::Palette) -> Self {
        if !palette.enabled() {
            return Self(None);
        }
        let bar = indicatif::ProgressBar::with_draw_target(Some(1000), indicatif::ProgressDrawTarget::stdout());
        let style = indicatif::ProgressStyle::with_template(&format!("{INDENT}MIGRATION  [{{bar:32.green}}] {{msg}}"))
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        Self(Some(bar))
    }

    fn show(&self, fields: &HashMap<String, String>) {
        let Some(bar) = &self.0 else { return };
        let number = |name: &str| fields.get(name).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let percent = number("progress_percent");
        bar.set_position((percent * 10.0) as u64);
        let eta = fields.get("eta_ms").map_or_else(String::new, |ms| format!(", about {ms} ms left"));
        bar.set_message(format!(
            "{percent:.1}%: {} keys scanned, {} remaining{eta}",
            number("keys_scanned"),
            number("keys_remaining")
        ));
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// `field:value` lines (INFO style) as a map.
fn parse_fields(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Asks every cache server directly for every demo key: how many values sit on their owner,
/// and how many copies sit on a server that does not own the key.
fn check_placement(w: &Walkthrough) -> Result<(usize, usize)> {
    let (mut on_owner, mut stray) = (0, 0);
    for (i, server) in w.servers.iter().enumerate() {
        let mut client = Client::connect(&server.addr)
            .with_context(|| format!("connecting to cache server {} to check placement", server.display()))?;
        for (k, key) in DEMO_KEYS.iter().enumerate() {
            let reply = client
                .call(&[b"GET", key.as_bytes()])
                .with_context(|| format!("GET {key} on cache server {}", server.display()))?;
            match reply {
                Frame::Null => {}
                Frame::Bulk(value) if value == value_for(key).as_bytes() => {
                    if w.routes.get(k) == Some(&i) {
                        on_owner += 1;
                    } else {
                        stray += 1;
                    }
                }
                other => bail!(
                    "unexpected reply from cache server {}: `GET {key}` answered {}",
                    server.display(),
                    describe(&other)
                ),
            }
        }
    }
    Ok((on_owner, stray))
}

// ----- step 9: virtual nodes and balance -----

fn step_balance(w: &mut Walkthrough) -> Result<()> {
    let p = w.palette;
    let addrs: Vec<String> = w.servers.iter().map(|s| s.addr.clone()).collect();
    let keys = balance::sample_keys(SAMPLE_KEYS);
    println!(
        "{INDENT}Computed here with the ring crate, the same placement code the proxy routes with, for {} keys {} .. {} on the addresses of {}.",
        thousands(keys.len()),
        keys[0],
        keys[keys.len() - 1],
        and_list(&w.servers.iter().map(|s| s.label.clone()).collect::<Vec<_>>())
    );
    check_against_proxy(w, &addrs, &keys)?;

    let glyphs = BarGlyphs::for_palette(&p);
    for vnodes in VNODE_SETTINGS {
        let spread = balance::spread(&addrs, vnodes, &keys);
        println!();
        println!("{INDENT}{} virtual nodes per server ({} points on the ring):", vnodes, thousands(spread.points));
        let total = spread.total();
        let counts = right_align(&spread.counts.iter().map(|&n| thousands(n)).collect::<Vec<_>>());
        let shares = right_align(&spread.counts.iter().map(|&n| percent_tenths(n, total)).collect::<Vec<_>>());
        let arcs = right_align(&spread.ring_permille.iter().map(|&n| percent_tenths(n, 1000)).collect::<Vec<_>>());
        let rows: Vec<Vec<Cell>> = w
            .servers
            .iter()
            .enumerate()
            .map(|(i, server)| {
                vec![
                    Cell::styled(server.label.clone(), Style::Name),
                    Cell::plain(bar(spread.counts[i], total, BAR_WIDTH, glyphs)),
                    Cell::plain(counts[i].clone()),
                    Cell::plain(format!("{} of the keys", shares[i])),
                    Cell::styled(format!("{} of the ring", arcs[i]), Style::Quiet),
                ]
            })
            .collect();
        print_nested(w, &rows);
        let (num, den) = spread.max_over_mean();
        let ratio = decimal(num, den, 2);
        let painted = if num * 10 <= den * 11 { p.green(&ratio) } else { p.yellow(&ratio) };
        let servers = spread.counts.len().max(1);
        println!(
            "{INDENT}{INDENT}max/mean {painted}: the busiest server gets {ratio}x its fair share of {} keys",
            thousands((total + servers / 2) / servers)
        );
        w.findings.balance.push(spread);
    }
    if let Some(verdict) = balance_verdict(&w.findings.balance) {
        println!();
        println!("{INDENT}{}", p.yellow(&verdict));
    }
    Ok(())
}

/// One sentence comparing the fewest and the most virtual nodes tried, from the measured
/// max/mean ratios; `None` with fewer than two settings.
pub fn balance_verdict(spreads: &[Spread]) -> Option<String> {
    let (first, last) = (spreads.first()?, spreads.last()?);
    if spreads.len() < 2 {
        return None;
    }
    let ratio = |s: &Spread| {
        let (num, den) = s.max_over_mean();
        (decimal(num, den, 2), num, den)
    };
    let (few, few_num, few_den) = ratio(first);
    let (many, many_num, many_den) = ratio(last);
    // Compare num/den fractions without floating point: a/b < c/d  <=>  a*d < c*b.
    let evened = many_num * few_den < few_num * many_den;
    let arcs: Vec<String> = last.ring_permille.iter().map(|&n| percent_tenths(n, 1000)).collect();
    Some(if evened {
        format!(
            "{} virtual nodes per server evened the load: max/mean {few} -> {many}. The keys follow each server's share of the ring ({} at {}).",
            last.vnodes,
            and_list(&arcs),
            last.vnodes
        )
    } else {
        format!(
            "Here {} virtual nodes did not even the load (max/mean {few} -> {many}): FNV-1a, which places the points too, barely mixes a name's last characters, so the points host:port#0, #1, ... land in clumps, and the ring shares at {} are {}.",
            last.vnodes,
            last.vnodes,
            and_list(&arcs)
        )
    })
}

/// Prints a table one level deeper than the step's own lines.
fn print_nested(w: &Walkthrough, rows: &[Vec<Cell>]) {
    for line in report::table(rows, &w.palette) {
        println!("{INDENT}{line}");
    }
}

/// Routes the first [`ROUTE_CHECK_KEYS`] sample keys through the live proxy and prints how
/// many land where the `ring` crate puts them with the proxy's own number of virtual nodes
/// (from `SERVERS DETAIL`). Measured, not asserted: a proxy started with other flags may differ.
fn check_against_proxy(w: &mut Walkthrough, addrs: &[String], keys: &[String]) -> Result<()> {
    let args: [&[u8]; 2] = [b"SERVERS", b"DETAIL"];
    let reply = w.call(&args)?;
    let lines = text_lines(&reply).ok_or_else(|| w.unexpected(&args, &reply, "an array of server lines"))?;
    let vnodes: Vec<usize> =
        lines.iter().filter_map(|l| detail_field(l, "vnodes")).filter_map(|v| v.parse().ok()).collect();
    let Some(&proxy_vnodes) =
        vnodes.first().filter(|_| vnodes.len() == addrs.len() && vnodes.windows(2).all(|p| p[0] == p[1]))
    else {
        println!(
            "{INDENT}(The live proxy's ring is not the three servers with equal virtual nodes, so it is not compared.)"
        );
        return Ok(());
    };
    let ring = balance::ring_of(addrs, proxy_vnodes);
    let sample = &keys[..ROUTE_CHECK_KEYS.min(keys.len())];
    let mut agree = 0;
    for key in sample {
        let args: [&[u8]; 2] = [b"ROUTE", key.as_bytes()];
        let reply = w.call(&args)?;
        if let Frame::Simple(addr) | Frame::Bulk(addr) = &reply {
            if ring.get(key.as_bytes()).map(str::as_bytes) == Some(&addr[..]) {
                agree += 1;
            }
        }
    }
    let verdict = format!("{agree} of {} agree", sample.len());
    let painted = if agree == sample.len() { w.palette.green(&verdict) } else { w.palette.yellow(&verdict) };
    println!(
        "{INDENT}Checked against the live proxy (vnodes={proxy_vnodes} in SERVERS DETAIL): ROUTE {} .. {}: {painted}.",
        sample[0],
        sample[sample.len() - 1]
    );
    Ok(())
}

// ----- step 10: consistent hashing versus mod N -----

fn step_churn(w: &mut Walkthrough) -> Result<()> {
    let p = w.palette;
    let addrs: Vec<String> = w.servers.iter().map(|s| s.addr.clone()).collect();
    let keys = balance::sample_keys(SAMPLE_KEYS);
    let joining = balance::next_address(&addrs);
    let newcomer = crate::label(addrs.len());
    let before = addrs.len();
    let after = before + 1;
    println!(
        "{INDENT}{} keys {} .. {}; the fourth server is {newcomer} ({joining}), placed by its address with the ring crate, never started.",
        thousands(keys.len()),
        keys[0],
        keys[keys.len() - 1]
    );

    let ring: Vec<(usize, Churn)> =
        VNODE_SETTINGS.iter().map(|&v| (v, balance::ring_churn(&addrs, &joining, v, &keys))).collect();
    let mod_n = balance::mod_n_churn(&keys, before as u32, after as u32);
    let ideal = Churn {
        total: keys.len(),
        moved: keys.len() / after,
        to_new: keys.len() / after,
        new_share_permille: (1000 + after / 2) / after,
    };

    // One row per scheme: its label and what it did.
    let mut schemes: Vec<(String, Churn)> = ring
        .iter()
        .map(|(vnodes, churn)| (format!("ring, {vnodes} virtual nodes, {before} -> {after} servers"), *churn))
        .collect();
    schemes.push((format!("fnv1a_32(key) % N, N {before} -> {after}"), mod_n));
    schemes.push((format!("ideal: 1/{after} of the keys"), ideal));
    let column = |f: &dyn Fn(&Churn) -> String| right_align(&schemes.iter().map(|(_, c)| f(c)).collect::<Vec<_>>());
    let counts = column(&|c| thousands(c.moved));
    let shares = column(&|c| percent_tenths(c.moved, c.total));
    let to_new = column(&|c| thousands(c.to_new));
    let between = column(&|c| thousands(c.moved - c.to_new));
    let new_share = column(&|c| percent_tenths(c.new_share_permille, 1000));

    println!();
    let mut rows = vec![vec![
        Cell::empty(),
        Cell::styled("moved", Style::Quiet),
        Cell::empty(),
        Cell::styled(format!("to {newcomer}"), Style::Quiet),
        Cell::styled("between old servers", Style::Quiet),
        Cell::styled(format!("{newcomer}'s share"), Style::Quiet),
    ]];
    for (i, (label, churn)) in schemes.iter().enumerate() {
        let is_ideal = i + 1 == schemes.len();
        // Good: only keys for the newcomer moved. Bad: keys moved between servers that stayed.
        let style = match (is_ideal, churn.moved == churn.to_new) {
            (true, _) => Style::Quiet,
            (false, true) => Style::Good,
            (false, false) => Style::Bad,
        };
        rows.push(vec![
            Cell::plain(label.clone()),
            Cell::styled(counts[i].clone(), style),
            Cell::styled(shares[i].clone(), style),
            Cell::plain(to_new[i].clone()),
            Cell::styled(between[i].clone(), style),
            Cell::styled(new_share[i].clone(), Style::Quiet),
        ]);
    }
    w.print_table(&rows);

    println!("{INDENT}{}", p.yellow(&churn_sentence(&newcomer, &ring, &mod_n)));
    w.findings.churn = Some(ChurnRun { servers_before: before, ring, mod_n });
    Ok(())
}

/// What the churn table shows, in one sentence from its counts.
pub fn churn_sentence(newcomer: &str, ring: &[(usize, Churn)], mod_n: &Churn) -> String {
    let mut line = String::new();
    if !ring.is_empty() && ring.iter().all(|(_, c)| c.moved == c.to_new) {
        line.push_str(&format!(
            "On the ring only the keys in {newcomer}'s new stretches moved, every one of them to {newcomer}; "
        ));
    }
    let between = mod_n.moved - mod_n.to_new;
    match ring.last() {
        Some((vnodes, best)) => line.push_str(&format!(
            "hash mod N moved {}x as many keys as the ring with {vnodes} virtual nodes, {} of them between servers that did not change.",
            decimal(mod_n.moved, best.moved.max(1), 1),
            thousands(between)
        )),
        None => line.push_str(&format!(
            "hash mod N moved {} keys, {} of them between servers that did not change.",
            thousands(mod_n.moved),
            thousands(between)
        )),
    }
    line
}

// ----- step 11: replication -----

fn step_replication(w: &mut Walkthrough) -> Result<()> {
    let p = w.palette;
    let factor = REPLICATION_FACTOR.to_string();
    let vnodes = REPLICATION_VNODES.to_string();
    let flags = ["--replication-factor", factor.as_str(), "--replicas", vnodes.as_str()];
    // Dropping `cluster` kills and reaps every process, on every path out of this function.
    let mut cluster = LocalCluster::start(&NODE_NAMES, &flags)?;
    println!("{INDENT}Started its own cluster on free ports (stopped again at the end of this step):");
    let mut rows: Vec<Vec<Cell>> = cluster
        .servers
        .iter()
        .map(|s| {
            vec![
                Cell::styled(s.label(), Style::Name),
                Cell::plain(s.addr()),
                Cell::styled(format!("pid {}", s.pid()), Style::Quiet),
            ]
        })
        .collect();
    rows.push(vec![
        Cell::styled("proxy", Style::Name),
        Cell::plain(cluster.proxy.addr()),
        Cell::styled(format!("pid {}", cluster.proxy.pid()), Style::Quiet),
        Cell::plain(flags.join(" ")),
    ]);
    print_nested(w, &rows);

    let proxy_addr = cluster.proxy.addr().to_string();
    let mut proxy =
        Client::connect(&proxy_addr).with_context(|| format!("connecting to the step's proxy at {proxy_addr}"))?;
    let addrs: Vec<String> = cluster.servers.iter().map(|s| s.addr().to_string()).collect();
    let names: Vec<String> = cluster.servers.iter().map(|s| s.label().to_string()).collect();
    let index_of = |addr: &str| addrs.iter().position(|a| a == addr);

    for key in DEMO_KEYS {
        let value = value_for(key);
        let args: [&[u8]; 3] = [b"SET", key.as_bytes(), value.as_bytes()];
        let reply = call(&mut proxy, &args)?;
        if reply != Frame::simple("OK") {
            bail!("`SET {key} {value}` through the step's proxy answered {}, expected +OK", describe(&reply));
        }
    }
    println!();
    println!("{INDENT}SET {} keys through its proxy: every one answered {}", DEMO_KEYS.len(), p.green("+OK"));

    // Where ROUTE key DETAIL says each key's copies are.
    let mut replicas: Vec<Vec<usize>> = Vec::with_capacity(DEMO_KEYS.len());
    for key in DEMO_KEYS {
        let args: [&[u8]; 3] = [b"ROUTE", key.as_bytes(), b"DETAIL"];
        let reply = call(&mut proxy, &args)?;
        let lines = text_lines(&reply).unwrap_or_default();
        let listed = lines.iter().find_map(|l| l.strip_prefix("replicas ")).ok_or_else(|| {
            anyhow!("`ROUTE {key} DETAIL` answered {}, expected a `replicas a,b` line", describe(&reply))
        })?;
        let holders: Vec<usize> = listed.split(',').filter_map(|a| index_of(a.trim())).collect();
        if holders.is_empty() {
            bail!("`ROUTE {key} DETAIL` lists replicas `{listed}`, none of them a server of this step");
        }
        replicas.push(holders);
    }
    let rows: Vec<Vec<Cell>> = DEMO_KEYS
        .iter()
        .zip(&replicas)
        .map(|(key, holders)| {
            let list: Vec<String> = holders.iter().map(|&h| names[h].clone()).collect();
            vec![Cell::plain(*key), Cell::styled("replicas", Style::Quiet), Cell::styled(list.join(", "), Style::Name)]
        })
        .collect();
    w.print_table(&rows);
    let copies: Vec<usize> = (0..names.len()).map(|s| replicas.iter().filter(|r| r.contains(&s)).count()).collect();
    let found = count_copies(&cluster, &replicas)?;
    let total_copies: usize = copies.iter().sum();
    let per_server: Vec<String> = names.iter().zip(&copies).map(|(n, c)| format!("{n} {c}")).collect();
    println!(
        "{INDENT}Copies per server (from ROUTE key DETAIL): {}; {total_copies} in all. Asked each server directly: {found} of {total_copies} copies are there.",
        per_server.join(", ")
    );

    // The victim: the server that owns (holds the first copy of) the most keys.
    let owned: Vec<usize> =
        (0..names.len()).map(|s| replicas.iter().filter(|r| r.first() == Some(&s)).count()).collect();
    let victim = (0..names.len()).max_by_key(|&s| (owned[s], std::cmp::Reverse(s))).unwrap_or(0);
    let victim_name = names[victim].clone();
    let victim_addr = addrs[victim].clone();
    let pid = cluster.servers[victim].pid();
    cluster.servers[victim].kill()?;
    let killed_at = Instant::now();
    println!();
    println!(
        "{INDENT}{} {victim_name} (pid {pid}, {victim_addr}): it held {} of the {} keys, and was the first replica of {}.",
        p.red("kill -9"),
        copies[victim],
        DEMO_KEYS.len(),
        owned[victim]
    );

    let mut read = ReadBack { hits: 0, misses: 0, misses_on_moved: 0 };
    let mut rows = Vec::new();
    for (k, key) in DEMO_KEYS.iter().enumerate() {
        let args: [&[u8]; 2] = [b"GET", key.as_bytes()];
        let reply = call(&mut proxy, &args)?;
        let mut row = vec![Cell::plain(format!("GET {key}"))];
        match &reply {
            Frame::Bulk(value) if *value == value_for(key).as_bytes() => {
                read.hits += 1;
                row.push(Cell::styled("HIT", Style::Good));
                row.push(Cell::styled(String::from_utf8_lossy(value).into_owned(), Style::Quiet));
            }
            Frame::Null => {
                read.misses += 1;
                row.push(Cell::styled("MISS", Style::Bad));
                row.push(Cell::empty());
            }
            other => bail!("`GET {key}` through the step's proxy answered {}", describe(other)),
        }
        let holders = &replicas[k];
        if holders.first() == Some(&victim) {
            let rest: Vec<String> = holders[1..].iter().map(|&h| names[h].clone()).collect();
            row.push(Cell::styled(
                format!("first copy was on {victim_name}; the other is on {}", and_list(&rest)),
                Style::Changed,
            ));
        } else if holders.contains(&victim) {
            row.push(Cell::styled(format!("second copy was on {victim_name}"), Style::Quiet));
        }
        rows.push(row);
    }
    w.print_table(&rows);
    w.print_summary(&read);

    // Health checks: how long until the proxy marks the dead server down.
    let deadline = killed_at + DOWN_TIMEOUT;
    let mut down_after = None;
    let mut last_lines = Vec::new();
    loop {
        let args: [&[u8]; 2] = [b"SERVERS", b"DETAIL"];
        let reply = call(&mut proxy, &args)?;
        last_lines = text_lines(&reply).unwrap_or(last_lines);
        let state = last_lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(victim_addr.as_str()))
            .and_then(|l| detail_field(l, "state"));
        if state == Some("down") {
            down_after = Some(killed_at.elapsed());
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(DOWN_POLL);
    }
    println!();
    match down_after {
        Some(after) => println!(
            "{INDENT}SERVERS DETAIL marked {victim_name} {} {} s after the kill (health checks; polled every {} ms, would have waited {} s):",
            p.red("state=down"),
            decimal(after.as_millis() as usize, 1000, 2),
            DOWN_POLL.as_millis(),
            DOWN_TIMEOUT.as_secs()
        ),
        None => println!(
            "{INDENT}{}",
            p.yellow(&format!(
                "SERVERS DETAIL did not mark {victim_name} down within {} s of the kill:",
                DOWN_TIMEOUT.as_secs()
            ))
        ),
    }
    let rows: Vec<Vec<Cell>> = last_lines
        .iter()
        .map(|line| {
            let addr = line.split_whitespace().next().unwrap_or_default();
            let name = index_of(addr).map_or_else(String::new, |i| names[i].clone());
            let style = if detail_field(line, "state") == Some("down") { Style::Bad } else { Style::Plain };
            vec![Cell::styled(name, Style::Name), Cell::styled(line.clone(), style)]
        })
        .collect();
    print_nested(w, &rows);

    drop(proxy);
    let stopped = cluster.stop()?;
    println!(
        "{INDENT}{}",
        p.dim(&format!("Stopped the {} processes this step started ({victim_name} was already gone).", stopped))
    );

    w.findings.replication = Some(ReplicationRun {
        factor: REPLICATION_FACTOR,
        killed: victim_name,
        held: copies[victim],
        owned: owned[victim],
        read,
        down_after_ms: down_after.map(|d| d.as_millis() as u64),
        waited_at_most_ms: DOWN_TIMEOUT.as_millis() as u64,
    });
    Ok(())
}

/// Sends a command to the replication step's proxy.
fn call(client: &mut Client, args: &[&[u8]]) -> Result<Frame> {
    client
        .call(args)
        .with_context(|| format!("sending `{}` to the step's proxy at {}", command_text(args), client.addr()))
}

/// Asks each server of the step's cluster directly for each key: how many of the copies
/// `replicas` lists are really there.
fn count_copies(cluster: &LocalCluster, replicas: &[Vec<usize>]) -> Result<usize> {
    let mut found = 0;
    for (s, server) in cluster.servers.iter().enumerate() {
        let mut client = Client::connect(server.addr())
            .with_context(|| format!("connecting to {} at {}", server.label(), server.addr()))?;
        for (key, holders) in DEMO_KEYS.iter().zip(replicas) {
            if !holders.contains(&s) {
                continue;
            }
            let reply =
                client.call(&[b"GET", key.as_bytes()]).with_context(|| format!("GET {key} on {}", server.label()))?;
            if reply == Frame::bulk(value_for(key)) {
                found += 1;
            }
        }
    }
    Ok(found)
}

// ----- shared helpers -----

/// The lines of an array of simple or bulk strings (`SERVERS DETAIL`, `ROUTE key DETAIL`).
fn text_lines(frame: &Frame) -> Option<Vec<String>> {
    let Frame::Array(items) = frame else { return None };
    items
        .iter()
        .map(|item| match item {
            Frame::Simple(text) | Frame::Bulk(text) => Some(String::from_utf8_lossy(text).into_owned()),
            _ => None,
        })
        .collect()
}

/// The value of `name=value` in a `SERVERS DETAIL` line.
fn detail_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
}

/// Hits and misses of a read-back (`None` is a miss); misses among `moved` keys are counted
/// as misses on moved keys.
fn read_summary(reads: &[Option<Bytes>], moved: &[usize]) -> ReadBack {
    let hits = reads.iter().filter(|r| r.is_some()).count();
    let misses_on_moved = reads.iter().enumerate().filter(|(k, r)| r.is_none() && moved.contains(k)).count();
    ReadBack { hits, misses: reads.len() - hits, misses_on_moved }
}

/// `1 time`, `3 times`.
fn times(n: usize) -> String {
    if n == 1 {
        "once".to_string()
    } else {
        format!("{n} times")
    }
}

// ----- the closing summary -----

/// "What production needs", one sentence per production step that ran, from measured figures.
pub fn production_conclusion(findings: &Findings) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(m) = &findings.migration {
        let total = m.after.hits + m.after.misses;
        let after = if m.after.misses == 0 {
            format!("every read hit again ({} hits, 0 misses)", m.after.hits)
        } else {
            format!("then {} hits, {} misses", m.after.hits, m.after.misses)
        };
        lines.push(format!(
            "Data migration: adding {} without moving data made {} of {total} reads miss; REBALANCE moved {} keys ({} scanned, {} ms, state {}) and {after}. Migrate on every ring change: ADD_SERVER/REMOVE_SERVER ... MIGRATE, or start the proxy with --migrate.",
            m.joined, m.before.misses, m.moved, m.scanned, m.elapsed_ms, m.state
        ));
    }
    if let (Some(first), Some(last)) = (findings.balance.first(), findings.balance.last()) {
        let ratios: Vec<String> = findings
            .balance
            .iter()
            .map(|s: &Spread| {
                let (num, den) = s.max_over_mean();
                format!("{} with {}", decimal(num, den, 2), s.vnodes)
            })
            .collect();
        let (few_num, few_den) = first.max_over_mean();
        let (many_num, many_den) = last.max_over_mean();
        let lesson = if findings.balance.len() > 1 && many_num * few_den < few_num * many_den {
            "more points per server even the load"
        } else {
            "more points alone did not even the load here, because FNV-1a puts the points of similar names in clumps"
        };
        lines.push(format!(
            "Virtual nodes ({} keys on {} servers): the busiest server's load over the mean was {} virtual nodes per server; {lesson}. Place a hundred or more points per server with a hash that mixes well (ketama uses MD5), and give servers of unequal size weights.",
            thousands(first.total()),
            first.counts.len(),
            and_list(&ratios)
        ));
    }
    if let Some(c) = &findings.churn {
        let after = c.servers_before + 1;
        let ring: Vec<String> = c
            .ring
            .iter()
            .map(|(v, churn)| format!("{} ({v} virtual nodes)", percent_tenths(churn.moved, churn.total)))
            .collect();
        lines.push(format!(
            "Consistent hashing: adding a server ({} -> {after}) moved {} of {} keys on the ring (ideal {}), but {} under hash mod N: with mod N every resize would empty most of the cache.",
            c.servers_before,
            and_list(&ring),
            thousands(c.mod_n.total),
            percent_tenths(c.mod_n.total / after, c.mod_n.total),
            percent_tenths(c.mod_n.moved, c.mod_n.total)
        ));
    }
    if let Some(r) = &findings.replication {
        let down = match r.down_after_ms {
            Some(ms) => format!("health checks marked it down {} s later", decimal(ms as usize, 1000, 2)),
            None => format!("health checks had not marked it down after {} s", r.waited_at_most_ms / 1000),
        };
        lines.push(format!(
            "Replication and health checks: with {} copies of every key, kill -9 of {} (holding {} keys, first replica of {}) still gave {} hits, {} misses, and {down}. Run with --replication-factor 2 or more and keep health checks on.",
            r.factor, r.killed, r.held, r.owned, r.read.hits, r.read.misses
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_lines_parse() {
        let line =
            "127.0.0.1:6381  state=down     weight=1   vnodes=3     share= 33.3%  connections=1 requests=10 errors=0";
        assert_eq!(detail_field(line, "state"), Some("down"));
        assert_eq!(detail_field(line, "vnodes"), Some("3"));
        assert_eq!(detail_field(line, "share"), Some(""));
        assert_eq!(detail_field(line, "missing"), None);
        let frame = Frame::Array(vec![Frame::simple("key k"), Frame::bulk("replicas a,b")]);
        assert_eq!(text_lines(&frame).unwrap(), ["key k", "replicas a,b"]);
        assert_eq!(text_lines(&Frame::Array(vec![Frame::Integer(1)])), None);
        assert_eq!(text_lines(&Frame::Null), None);
    }

    #[test]
    fn migration_fields_parse() {
        let fields = parse_fields("migration:done\r\nkeys_scanned:8\r\nkeys_moved:4\r\nelapsed_ms:2\r\n");
        assert_eq!(fields["migration"], "done");
        assert_eq!(fields["keys_moved"], "4");
        assert_eq!(times(1), "once");
        assert_eq!(times(3), "3 times");
    }

    fn measured() -> Findings {
        let keys = balance::sample_keys(1_000);
        let servers: Vec<String> = ["a:1", "b:2", "c:3"].iter().map(|s| s.to_string()).collect();
        Findings {
            migration: Some(MigrationRun {
                joined: "cache-C".into(),
                moved_by_ring: 4,
                before: ReadBack { hits: 4, misses: 4, misses_on_moved: 4 },
                state: "done".into(),
                scanned: 8,
                moved: 4,
                remaining: 0,
                errors: 0,
                elapsed_ms: 2,
                after: ReadBack { hits: 8, misses: 0, misses_on_moved: 0 },
                on_owner: 8,
                stray_copies: 0,
            }),
            balance: VNODE_SETTINGS.iter().map(|&v| balance::spread(&servers, v, &keys)).collect(),
            churn: Some(ChurnRun {
                servers_before: 3,
                ring: vec![(160, Churn { total: 10_000, moved: 2_490, to_new: 2_490, new_share_permille: 249 })],
                mod_n: Churn { total: 10_000, moved: 7_512, to_new: 2_501, new_share_permille: 250 },
            }),
            replication: Some(ReplicationRun {
                factor: 2,
                killed: "node-1".into(),
                held: 6,
                owned: 3,
                read: ReadBack { hits: 8, misses: 0, misses_on_moved: 0 },
                down_after_ms: Some(1_320),
                waited_at_most_ms: 10_000,
            }),
            ..Findings::default()
        }
    }

    #[test]
    fn the_production_summary_quotes_the_measurements() {
        let lines = production_conclusion(&measured());
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(
            lines[0].contains("made 4 of 8 reads miss; REBALANCE moved 4 keys (8 scanned, 2 ms, state done)"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("every read hit again (8 hits, 0 misses)"), "{}", lines[0]);
        assert!(
            lines[1].contains(" with 3 and ") && lines[1].contains(" with 160 virtual nodes per server"),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains("(1,000 keys on 3 servers)"), "{}", lines[1]);
        assert!(
            lines[2].contains(
                "moved 24.9% (160 virtual nodes) of 10,000 keys on the ring (ideal 25.0%), but 75.1% under hash mod N"
            ),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].contains("kill -9 of node-1 (holding 6 keys, first replica of 3) still gave 8 hits, 0 misses"),
            "{}",
            lines[3]
        );
        assert!(lines[3].contains("marked it down 1.32 s later"), "{}", lines[3]);
    }

    #[test]
    fn the_production_summary_reports_failures_as_measured() {
        let mut findings = measured();
        if let Some(m) = findings.migration.as_mut() {
            m.after = ReadBack { hits: 6, misses: 2, misses_on_moved: 0 };
        }
        if let Some(r) = findings.replication.as_mut() {
            r.down_after_ms = None;
        }
        let lines = production_conclusion(&findings);
        assert!(lines[0].contains("then 6 hits, 2 misses"), "{}", lines[0]);
        assert!(lines[3].contains("had not marked it down after 10 s"), "{}", lines[3]);
    }

    fn spread(vnodes: usize, counts: &[usize], ring_permille: &[usize]) -> Spread {
        Spread { vnodes, points: vnodes * counts.len(), counts: counts.to_vec(), ring_permille: ring_permille.to_vec() }
    }

    #[test]
    fn the_balance_verdict_follows_the_ratios() {
        let few = spread(3, &[1_905, 4_078, 4_017], &[189, 419, 392]);
        let even = spread(160, &[3_300, 3_400, 3_300], &[330, 340, 330]);
        let clumped = spread(160, &[2_863, 2_681, 4_456], &[281, 270, 450]);
        let good = balance_verdict(&[few.clone(), even]).unwrap();
        assert!(good.starts_with("160 virtual nodes per server evened the load: max/mean 1.22 -> 1.02."), "{good}");
        let bad = balance_verdict(&[few.clone(), clumped]).unwrap();
        assert!(bad.starts_with("Here 160 virtual nodes did not even the load (max/mean 1.22 -> 1.34)"), "{bad}");
        assert!(bad.ends_with("the ring shares at 160 are 28.1%, 27.0% and 45.0%."), "{bad}");
        assert_eq!(balance_verdict(&[few]), None);
        assert_eq!(balance_verdict(&[]), None);
    }

    #[test]
    fn the_churn_sentence_compares_with_mod_n() {
        let ring = [(160, Churn { total: 10_000, moved: 2_500, to_new: 2_500, new_share_permille: 250 })];
        let mod_n = Churn { total: 10_000, moved: 7_500, to_new: 2_500, new_share_permille: 250 };
        assert_eq!(
            churn_sentence("cache-D", &ring, &mod_n),
            "On the ring only the keys in cache-D's new stretches moved, every one of them to cache-D; hash mod N moved 3.0x as many keys as the ring with 160 virtual nodes, 5,000 of them between servers that did not change."
        );
        assert!(churn_sentence("cache-D", &[], &mod_n).starts_with("hash mod N moved 7,500 keys"));
    }

    #[test]
    fn the_production_summary_skips_steps_not_run() {
        assert!(production_conclusion(&Findings::default()).is_empty());
    }
}
