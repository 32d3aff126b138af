//! The walkthrough: a clean start, the seed's seven numbered steps, and what they showed.
//!
//! Each step is a [`Step`]: a title and a function over the shared [`Walkthrough`] state.
//! [`SEED_STEPS`] are the seed's walkthrough; [`PRODUCTION_STEPS`] (run after them with
//! `--all`, numbering on from 8) show what a production deployment adds: migration, virtual
//! nodes, consistent hashing against `hash mod N`, and replication. Every step records what
//! it measured in [`Findings`], and the closing summaries are built from those figures.

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use cli::Palette;
use resp::Frame;

use crate::client::{describe, Client};
use crate::report::{self, and_list, keys, percent, Cell, Style, INDENT};
use crate::{label, value_for, Config, DEMO_KEYS};

mod production;

pub use production::{production_conclusion, ChurnRun, MigrationRun, ReplicationRun, PRODUCTION_STEPS};

/// One numbered step of the walkthrough.
#[derive(Clone, Copy)]
pub struct Step {
    /// The heading, after `Step N.`.
    pub title: &'static str,
    /// One sentence on what to look for, printed under the heading.
    pub intro: &'static str,
    /// What the step does and prints.
    pub run: fn(&mut Walkthrough) -> Result<()>,
}

/// The seed's walkthrough, in order.
pub const SEED_STEPS: [Step; 7] = [
    Step {
        title: "Add cache-A and cache-B to the ring",
        intro: "Each server puts its virtual nodes on the hash ring; a key belongs to the first node at or after its own hash.",
        run: step_add_first_two,
    },
    Step {
        title: "Where the keys route",
        intro: "ROUTE asks the proxy which server owns each key.",
        run: step_show_routes,
    },
    Step {
        title: "Store a value for every key",
        intro: "SET through the proxy: each value lands on the key's owner.",
        run: step_store,
    },
    Step {
        title: "Add cache-C and see which keys move",
        intro: "cache-C's nodes take over the stretches of the ring just before them; every other key stays put.",
        run: step_add_third,
    },
    Step {
        title: "Read every key back through the proxy",
        intro: "A key that moved is now looked up on its new owner, which never stored it: a miss.",
        run: step_read_after_add,
    },
    Step {
        title: "Remove cache-B and see which keys move",
        intro: "cache-B's nodes leave the ring; its keys fall through to the next node clockwise.",
        run: step_remove_second,
    },
    Step {
        title: "Store every key again and read it back",
        intro: "Writing the values again puts each one on its current owner; now every read hits.",
        run: step_restore_and_verify,
    },
];

/// Starts from a clean cluster, runs the seed's steps and prints what they showed.
pub fn run(config: &Config, palette: Palette) -> Result<()> {
    config.validate()?;
    let mut walkthrough = Walkthrough::connect(config, palette)?;
    walkthrough.intro();
    walkthrough.clean_start()?;
    walkthrough.run_steps(&SEED_STEPS)?;
    walkthrough.conclude();
    Ok(())
}

/// Like [`run`], then continues with [`PRODUCTION_STEPS`] (numbered from 8) and closes with
/// what production needs, from what those steps measured.
pub fn run_all(config: &Config, palette: Palette) -> Result<()> {
    config.validate()?;
    let mut walkthrough = Walkthrough::connect(config, palette)?;
    walkthrough.intro();
    walkthrough.clean_start()?;
    walkthrough.run_steps(&SEED_STEPS)?;
    walkthrough.run_steps(&PRODUCTION_STEPS)?;
    walkthrough.conclude();
    walkthrough.conclude_production();
    Ok(())
}

/// One cache server of the demo: its label and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// `cache-A`.
    pub label: String,
    /// `127.0.0.1:6381`, exactly as given to `ADD_SERVER`.
    pub addr: String,
}

impl Server {
    /// `cache-A (127.0.0.1:6381)`.
    pub fn display(&self) -> String {
        format!("{} ({})", self.label, self.addr)
    }
}

/// A change of ring membership and what it did to the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingChange {
    /// The server that joined or left.
    pub server: String,
    /// Whether it joined (`true`) or left.
    pub joined: bool,
    /// Servers in the ring after the change.
    pub servers_after: usize,
    /// Keys looked at.
    pub total: usize,
    /// Keys whose owner changed.
    pub moved: usize,
    /// Of those, the ones that moved the way consistent hashing predicts: onto the joining
    /// server, or off the leaving one.
    pub moved_as_expected: usize,
    /// Labels of the servers the moved keys went to, without repeats.
    pub destinations: Vec<String>,
}

/// The result of reading every key back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadBack {
    /// Reads that returned the stored value.
    pub hits: usize,
    /// Reads that returned nothing.
    pub misses: usize,
    /// Misses on keys that had moved since their value was stored.
    pub misses_on_moved: usize,
}

/// What the steps measured, for the closing summary. Every number is counted, not assumed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// Adding the third server (step 4).
    pub join: Option<RingChange>,
    /// Reading back after the join (step 5).
    pub read_after_join: Option<ReadBack>,
    /// Removing the second server (step 6).
    pub leave: Option<RingChange>,
    /// Reading back after re-storing (step 7).
    pub final_read: Option<ReadBack>,
    /// Adding a server, then REBALANCE (step 8, with `--all`).
    pub migration: Option<MigrationRun>,
    /// Key spread for each number of virtual nodes tried (step 9, with `--all`).
    pub balance: Vec<crate::balance::Spread>,
    /// Keys moved by adding a fourth server, ring versus mod N (step 10, with `--all`).
    pub churn: Option<ChurnRun>,
    /// Replication factor 2 with one server killed (step 11, with `--all`).
    pub replication: Option<ReplicationRun>,
}

/// A key whose owner changed: its index in [`DEMO_KEYS`], old and new owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// Index of the key.
    pub key: usize,
    /// Index of the server that owned it.
    pub from: usize,
    /// Index of the server that owns it now.
    pub to: usize,
}

/// The keys whose owner differs between two routings (owners by server index, per key).
pub fn moves(before: &[usize], after: &[usize]) -> Vec<Move> {
    before
        .iter()
        .zip(after)
        .enumerate()
        .filter(|(_, (from, to))| from != to)
        .map(|(key, (&from, &to))| Move { key, from, to })
        .collect()
}

/// The walkthrough's state: the proxy connection, the servers, and what it has seen so far.
pub struct Walkthrough {
    proxy: Client,
    servers: Vec<Server>,
    palette: Palette,
    /// Steps run so far, for numbering.
    steps_done: usize,
    /// Owner of each demo key (server index) as last shown; empty before the first ROUTE.
    routes: Vec<usize>,
    /// Where each key's value was last stored (server index).
    stored_on: Vec<Option<usize>>,
    /// What the steps measured.
    findings: Findings,
    /// Where a picture of the ring is written after each step.
    svg_dir: Option<std::path::PathBuf>,
    /// Keys that moved during the current step, marked in its picture.
    marked: Vec<Move>,
    /// The proxy's virtual nodes per server (INFO `vnodes`), read for the first picture.
    vnodes: Option<usize>,
}

impl Walkthrough {
    /// Connects to the proxy (it must answer `PING`). If nothing listens there, the error
    /// says how to start the cluster.
    pub fn connect(config: &Config, palette: Palette) -> Result<Walkthrough> {
        let proxy = Client::connect(&config.proxy).map_err(|e| {
            if e.is_unreachable() {
                anyhow!("the proxy at {} is not reachable ({e}).\n\n{}", config.proxy, config.how_to_start())
            } else {
                anyhow!(e).context(format!("the proxy at {} does not answer PING", config.proxy))
            }
        })?;
        let servers: Vec<Server> =
            config.servers.iter().enumerate().map(|(i, addr)| Server { label: label(i), addr: addr.clone() }).collect();
        Ok(Walkthrough {
            proxy,
            servers,
            palette,
            steps_done: 0,
            routes: Vec::new(),
            stored_on: vec![None; DEMO_KEYS.len()],
            findings: Findings::default(),
            svg_dir: config.svg_dir.clone(),
            marked: Vec::new(),
            vnodes: None,
        })
    }

    /// What the steps measured so far.
    pub fn findings(&self) -> &Findings {
        &self.findings
    }

    /// The title block: what runs against what.
    pub fn intro(&self) {
        let p = &self.palette;
        println!("{}", p.bold("Consistent Hashing in Action"));
        let servers: Vec<String> = self.servers.iter().map(|s| p.cyan(&s.display())).collect();
        println!("{INDENT}proxy {}, cache servers {}", self.proxy.addr(), servers.join(", "));
        println!("{INDENT}keys: {}", DEMO_KEYS.join(" "));
        if let Some(dir) = &self.svg_dir {
            println!("{INDENT}ring pictures: one SVG per step in {}", dir.display());
        }
    }

    /// Empties the proxy's ring and deletes the demo keys on every cache server directly,
    /// so every run starts from the same state. Fails, naming the server and how to start
    /// it, if a cache server does not answer.
    pub fn clean_start(&mut self) -> Result<()> {
        let reset = self.reset()?;
        println!();
        println!("{}", self.palette.dim(&format!("Starting clean: {reset}.")));
        Ok(())
    }

    /// Empties the proxy's ring and deletes the demo keys on every cache server, and forgets
    /// routes and stored values. Returns what it did, as a clause for a sentence.
    fn reset(&mut self) -> Result<String> {
        // Reach every server before changing anything.
        let mut direct = Vec::new();
        for (i, server) in self.servers.iter().enumerate() {
            let client = Client::connect(&server.addr).map_err(|e| {
                if e.is_unreachable() {
                    let start = crate::start_command("server", &server.addr, Some(&server.label));
                    anyhow!(
                        "cache server {} is not reachable ({e}).\n\nStart it with:\n    {start}\nor start the whole cluster and the demo with ./demo.sh",
                        server.display()
                    )
                } else {
                    anyhow!(e).context(format!(
                        "cache server {} does not answer PING",
                        server.display()
                    ))
                }
            })?;
            direct.push((i, client));
        }

        let listed = self.servers_in_ring()?;
        for addr in &listed {
            self.expect_status(&[b"REMOVE_SERVER", addr.as_bytes()], &format!("OK removed {addr}"))?;
        }

        let mut deleted = 0;
        for (i, client) in &mut direct {
            for key in DEMO_KEYS {
                let args: [&[u8]; 2] = [b"DEL", key.as_bytes()];
                let reply =
                    client.call(&args).with_context(|| format!("DEL {key} on {}", self.servers[*i].display()))?;
                match reply {
                    Frame::Integer(n) => deleted += usize::try_from(n).unwrap_or(0),
                    other => {
                        bail!(
                            "unexpected reply from cache server {}: `DEL {key}` answered {}, expected :0 or :1",
                            self.servers[*i].display(),
                            describe(&other)
                        )
                    }
                }
            }
        }

        let ring = if listed.is_empty() {
            "the ring was already empty".to_string()
        } else {
            let names: Vec<String> = listed.iter().map(|a| self.name_of(a)).collect();
            format!("removed {} from the ring", and_list(&names))
        };
        let leftovers = if deleted == 0 {
            "no demo keys were left on the cache servers".to_string()
        } else {
            format!("deleted {} left on the cache servers", keys(deleted))
        };
        self.routes.clear();
        self.stored_on = vec![None; DEMO_KEYS.len()];
        Ok(format!("{ring}; {leftovers}"))
    }

    /// Runs `steps` in order, numbering them after the steps already run.
    pub fn run_steps(&mut self, steps: &[Step]) -> Result<()> {
        for step in steps {
            self.steps_done += 1;
            println!();
            println!("{}", self.palette.bold(&report::heading(self.steps_done, step.title)));
            println!("{}", self.palette.dim(&format!("{INDENT}{}", step.intro)));
            self.marked.clear();
            (step.run)(self).with_context(|| format!("step {} failed", self.steps_done))?;
            self.draw(step.title).with_context(|| format!("drawing the ring after step {}", self.steps_done))?;
        }
        Ok(())
    }

    /// Writes the ring as the proxy holds it now to `step-NN.svg` (with `--svg-dir`), the
    /// demo keys on it and the ones that moved in this step marked. The ring is rebuilt from
    /// SERVERS with the `ring` crate, which places keys exactly as the proxy does.
    fn draw(&mut self, title: &str) -> Result<()> {
        let Some(dir) = self.svg_dir.clone() else { return Ok(()) };
        let vnodes = match self.vnodes {
            Some(vnodes) => vnodes,
            None => {
                let reply = self.call(&[b"INFO"])?;
                let text = reply.as_bytes().map(|t| String::from_utf8_lossy(t).into_owned()).unwrap_or_default();
                let vnodes = text
                    .lines()
                    .find_map(|l| l.strip_prefix("vnodes:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(ring::DEFAULT_VNODES);
                *self.vnodes.insert(vnodes)
            }
        };
        let mut ring = ring::HashRing::new(vnodes);
        ring.add_all(self.servers_in_ring()?);
        let keys: Vec<crate::picture::KeyMark> = if self.routes.is_empty() {
            Vec::new()
        } else {
            DEMO_KEYS
                .iter()
                .enumerate()
                .map(|(k, key)| crate::picture::KeyMark {
                    key: key.to_string(),
                    moved_from: self.marked.iter().find(|m| m.key == k).map(|m| self.servers[m.from].addr.clone()),
                })
                .collect()
        };
        let heading = report::heading(self.steps_done, title);
        let servers = self.servers.clone();
        let name = move |addr: &str| servers.iter().find(|s| s.addr == addr).map(|s| s.label.clone());
        let svg = crate::picture::ring_svg(&heading, &ring, &keys, &name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("step-{:02}.svg", self.steps_done));
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Prints what the steps showed, from the measured [`Findings`].
    pub fn conclude(&self) {
        println!();
        println!("{}", self.palette.bold("What consistent hashing showed"));
        for line in conclusion(&self.findings, DEMO_KEYS.len()) {
            println!("{INDENT}- {line}");
        }
    }

    /// Prints what production needs, from what [`PRODUCTION_STEPS`] measured.
    pub fn conclude_production(&self) {
        println!();
        println!("{}", self.palette.bold("What production needs"));
        for line in production_conclusion(&self.findings) {
            println!("{INDENT}- {line}");
        }
    }

    // ----- proxy commands -----

    /// Sends a command to the proxy; I/O failures carry the command in their context.
    fn call(&mut self, args: &[&[u8]]) -> Result<Frame> {
        self.proxy.call(args).with_context(|| format!("sending `{}` to the proxy", command_text(args)))
    }

    /// The error for a reply the walkthrough did not expect.
    fn unexpected(&self, args: &[&[u8]], reply: &Frame, wanted: &str) -> anyhow::Error {
        anyhow!(
            "unexpected reply from the proxy at {}: `{}` answered {}, expected {wanted}",
            self.proxy.addr(),
            command_text(args),
            describe(reply)
        )
    }

    /// Sends a command that must answer with exactly the status line `expected`.
    fn expect_status(&mut self, args: &[&[u8]], expected: &str) -> Result<()> {
        match self.call(args)? {
            Frame::Simple(text) if text == expected.as_bytes() => Ok(()),
            other => Err(self.unexpected(args, &other, &format!("+{expected}"))),
        }
    }

    /// `SERVERS`: the addresses in the ring, in the proxy's order.
    fn servers_in_ring(&mut self) -> Result<Vec<String>> {
        let args: [&[u8]; 1] = [b"SERVERS"];
        let reply = self.call(&args)?;
        let Frame::Array(items) = &reply else {
            return Err(self.unexpected(&args, &reply, "an array of host:port"));
        };
        let mut addrs = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Frame::Simple(text) | Frame::Bulk(text) => addrs.push(String::from_utf8_lossy(text).into_owned()),
                _ => return Err(self.unexpected(&args, &reply, "an array of host:port")),
            }
        }
        Ok(addrs)
    }

    /// `ROUTE key` for every demo key: each key's owner, by server index.
    fn route_all(&mut self) -> Result<Vec<usize>> {
        let mut owners = Vec::with_capacity(DEMO_KEYS.len());
        for key in DEMO_KEYS {
            let args: [&[u8]; 2] = [b"ROUTE", key.as_bytes()];
            let reply = self.call(&args)?;
            let owner = match &reply {
                Frame::Simple(addr) | Frame::Bulk(addr) => self.index_of(addr),
                _ => None,
            };
            let owner = owner.ok_or_else(|| self.unexpected(&args, &reply, "+host:port of a demo server"))?;
            owners.push(owner);
        }
        Ok(owners)
    }

    /// `SET key value-for-key` through the proxy, which must answer `+OK`.
    fn store(&mut self, key: &str) -> Result<()> {
        let value = value_for(key);
        self.expect_status(&[b"SET", key.as_bytes(), value.as_bytes()], "OK")
    }

    /// `GET key` through the proxy: `Some(value)` on a hit, `None` on a miss. A hit with a
    /// value the walkthrough did not store is an error.
    fn fetch(&mut self, key: &str) -> Result<Option<Bytes>> {
        let args: [&[u8]; 2] = [b"GET", key.as_bytes()];
        let reply = self.call(&args)?;
        match reply {
            Frame::Null => Ok(None),
            Frame::Bulk(value) if value == value_for(key).as_bytes() => Ok(Some(value)),
            other => Err(self.unexpected(&args, &other, &format!("$-1 or {:?}", value_for(key)))),
        }
    }

    /// `ADD_SERVER` for the server at `index`, answered `+OK added host:port`.
    fn add_server(&mut self, index: usize) -> Result<()> {
        let addr = self.servers[index].addr.clone();
        self.expect_status(&[b"ADD_SERVER", addr.as_bytes()], &format!("OK added {addr}"))?;
        self.print_membership_change("ADD_SERVER", &addr, &format!("+OK added {addr}"));
        Ok(())
    }

    /// `REMOVE_SERVER` for the server at `index`, answered `+OK removed host:port`.
    fn remove_server(&mut self, index: usize) -> Result<()> {
        let addr = self.servers[index].addr.clone();
        self.expect_status(&[b"REMOVE_SERVER", addr.as_bytes()], &format!("OK removed {addr}"))?;
        self.print_membership_change("REMOVE_SERVER", &addr, &format!("+OK removed {addr}"));
        Ok(())
    }

    /// Checks `SERVERS` against the servers the walkthrough expects, and prints the ring.
    fn show_ring(&mut self, expected: &[usize]) -> Result<()> {
        let listed = self.servers_in_ring()?;
        let mut got = listed.clone();
        got.sort();
        let mut want: Vec<String> = expected.iter().map(|&i| self.servers[i].addr.clone()).collect();
        want.sort();
        if got != want {
            bail!(
                "the proxy's SERVERS lists {} but the ring should hold {}",
                display_list(&listed),
                display_list(&want)
            );
        }
        let names: Vec<String> = listed.iter().map(|addr| self.palette.cyan(&self.name_of(addr))).collect();
        println!("{INDENT}SERVERS: {}", names.join(", "));
        Ok(())
    }

    // ----- printing helpers -----

    fn print_membership_change(&self, command: &str, addr: &str, reply: &str) {
        println!("{INDENT}{command} {addr}  {}", self.palette.green(reply));
    }

    /// The routing table: key, owner, and for keys whose owner changed, where they came from.
    fn print_routes(&self, owners: &[usize], previous: Option<&[usize]>) {
        let rows: Vec<Vec<Cell>> = DEMO_KEYS
            .iter()
            .enumerate()
            .map(|(k, key)| {
                let owner = &self.servers[owners[k]];
                let mut row = vec![Cell::plain(*key), Cell::plain("->"), Cell::styled(owner.display(), Style::Name)];
                if let Some(before) = previous.and_then(|p| p.get(k)) {
                    if *before != owners[k] {
                        row.push(Cell::styled(
                            format!("moved: {} -> {}", self.servers[*before].label, owner.label),
                            Style::Changed,
                        ));
                    }
                }
                row
            })
            .collect();
        self.print_table(&rows);
        let counts: Vec<String> = self
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| (s, owners.iter().filter(|&&o| o == i).count()))
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{} {}", s.label, keys(n)))
            .collect();
        println!("{INDENT}Keys per server: {}", counts.join(", "));
    }

    fn print_table(&self, rows: &[Vec<Cell>]) {
        for line in report::table(rows, &self.palette) {
            println!("{line}");
        }
    }

    fn print_summary(&self, read: &ReadBack) {
        let line = report::summary_line(read.hits, read.misses);
        let painted = if read.misses == 0 { self.palette.green(&line) } else { self.palette.yellow(&line) };
        println!("{INDENT}{painted}");
    }

    /// `cache-A` for a demo server's address, the address itself otherwise.
    fn name_of(&self, addr: &str) -> String {
        self.servers.iter().find(|s| s.addr == addr).map_or_else(|| addr.to_string(), Server::display)
    }

    fn index_of(&self, addr: &[u8]) -> Option<usize> {
        self.servers.iter().position(|s| s.addr.as_bytes() == addr)
    }

    /// Routes every key, prints the table (marking keys that moved since the last routing),
    /// and remembers the new routing. Returns the moves.
    fn reroute(&mut self) -> Result<Vec<Move>> {
        let owners = self.route_all()?;
        let previous = std::mem::take(&mut self.routes);
        let previous = (!previous.is_empty()).then_some(previous);
        self.print_routes(&owners, previous.as_deref());
        let moved = previous.as_deref().map(|before| moves(before, &owners)).unwrap_or_default();
        self.marked = moved.clone();
        self.routes = owners;
        Ok(moved)
    }

    /// Summarises a membership change in one line and records it in the findings.
    fn record_change(&self, server: usize, joined: bool, servers_after: usize, moved: &[Move]) -> RingChange {
        let as_expected = moved.iter().filter(|m| if joined { m.to == server } else { m.from == server }).count();
        let mut destinations: Vec<String> = Vec::new();
        for m in moved {
            let name = self.servers[m.to].label.clone();
            if !destinations.contains(&name) {
                destinations.push(name);
            }
        }
        RingChange {
            server: self.servers[server].label.clone(),
            joined,
            servers_after,
            total: DEMO_KEYS.len(),
            moved: moved.len(),
            moved_as_expected: as_expected,
            destinations,
        }
    }
}

// ----- the seed's steps -----

fn step_add_first_two(w: &mut Walkthrough) -> Result<()> {
    w.add_server(0)?;
    w.add_server(1)?;
    w.show_ring(&[0, 1])
}

fn step_show_routes(w: &mut Walkthrough) -> Result<()> {
    w.reroute()?;
    Ok(())
}

fn step_store(w: &mut Walkthrough) -> Result<()> {
    let mut rows = Vec::new();
    for (k, key) in DEMO_KEYS.iter().enumerate() {
        w.store(key)?;
        let owner = w.routes.get(k).copied();
        w.stored_on[k] = owner;
        rows.push(vec![
            Cell::plain(format!("SET {key}")),
            Cell::plain(value_for(key)),
            Cell::styled("+OK", Style::Good),
            Cell::styled(owner.map_or_else(String::new, |o| format!("on {}", w.servers[o].display())), Style::Name),
        ]);
    }
    w.print_table(&rows);
    Ok(())
}

fn step_add_third(w: &mut Walkthrough) -> Result<()> {
    w.add_server(2)?;
    w.show_ring(&[0, 1, 2])?;
    println!();
    let moved = w.reroute()?;
    let change = w.record_change(2, true, 3, &moved);
    println!("{INDENT}{}", w.palette.yellow(&change_sentence(&change)));
    w.findings.join = Some(change);
    Ok(())
}

fn step_read_after_add(w: &mut Walkthrough) -> Result<()> {
    let read = read_back(w)?;
    w.findings.read_after_join = Some(read);
    Ok(())
}

fn step_remove_second(w: &mut Walkthrough) -> Result<()> {
    w.remove_server(1)?;
    w.show_ring(&[0, 2])?;
    println!();
    let moved = w.reroute()?;
    let change = w.record_change(1, false, 2, &moved);
    println!("{INDENT}{}", w.palette.yellow(&change_sentence(&change)));
    w.findings.leave = Some(change);
    Ok(())
}

fn step_restore_and_verify(w: &mut Walkthrough) -> Result<()> {
    for (k, key) in DEMO_KEYS.iter().enumerate() {
        w.store(key)?;
        w.stored_on[k] = w.routes.get(k).copied();
    }
    println!("{INDENT}SET {} keys again: every one answered {}", DEMO_KEYS.len(), w.palette.green("+OK"));
    let read = read_back(w)?;
    w.findings.final_read = Some(read);
    if read.misses > 0 {
        bail!(
            "{} still missed right after being stored again: the proxy is not routing SET and GET alike",
            keys(read.misses)
        );
    }
    Ok(())
}

/// GETs every key through the proxy, prints HIT or MISS per key and the summary line.
fn read_back(w: &mut Walkthrough) -> Result<ReadBack> {
    let mut read = ReadBack { hits: 0, misses: 0, misses_on_moved: 0 };
    let mut rows = Vec::new();
    for (k, key) in DEMO_KEYS.iter().enumerate() {
        let value = w.fetch(key)?;
        let owner = w.routes.get(k).map(|&o| w.servers[o].display());
        let mut row = vec![
            Cell::plain(format!("GET {key}")),
            Cell::empty(),
            Cell::styled(owner.map(|o| format!("from {o}")).unwrap_or_default(), Style::Name),
        ];
        match value {
            Some(value) => {
                read.hits += 1;
                row[1] = Cell::styled("HIT", Style::Good);
                row.push(Cell::styled(String::from_utf8_lossy(&value).into_owned(), Style::Quiet));
            }
            None => {
                read.misses += 1;
                row[1] = Cell::styled("MISS", Style::Bad);
                let owner_now = w.routes.get(k).copied();
                if let Some(s) = w.stored_on[k].filter(|&s| Some(s) != owner_now) {
                    read.misses_on_moved += 1;
                    row.push(Cell::styled(format!("the value is on {}", w.servers[s].label), Style::Changed));
                }
            }
        }
        rows.push(row);
    }
    w.print_table(&rows);
    w.print_summary(&read);
    Ok(read)
}

// ----- sentences from measurements -----

/// One line on a membership change: how many keys moved, and whether they moved the way
/// consistent hashing predicts.
pub fn change_sentence(change: &RingChange) -> String {
    let stayed = change.total - change.moved;
    let head = format!("{} of {} moved ({}%)", change.moved, keys(change.total), percent(change.moved, change.total));
    let how = if change.moved == 0 {
        String::new()
    } else if change.moved_as_expected == change.moved {
        if change.joined {
            format!(", all of them to {}", change.server)
        } else {
            format!(", all of them from {} to {}", change.server, and_list(&change.destinations))
        }
    } else {
        let others = change.moved - change.moved_as_expected;
        let direction = if change.joined { "to" } else { "from" };
        format!(", {} {direction} {} and {} between other servers", change.moved_as_expected, change.server, others)
    };
    format!("{head}{how}; {stayed} stayed on their server.")
}

/// The closing summary, one sentence per finding, from measured counts only.
pub fn conclusion(findings: &Findings, total: usize) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(join) = &findings.join {
        let stray = join.moved - join.moved_as_expected;
        let mut line = format!(
            "Adding {} ({} -> {} servers) moved {} of {} ({}%)",
            join.server,
            join.servers_after.saturating_sub(1),
            join.servers_after,
            join.moved,
            keys(join.total),
            percent(join.moved, join.total)
        );
        if stray == 0 {
            line.push_str(&format!(", all of them to {}", join.server));
        } else {
            line.push_str(&format!(
                ": {} to {} and {stray} between the other servers",
                join.moved_as_expected, join.server
            ));
        }
        line.push_str(&format!(
            ". Consistent hashing moves about 1/N of the keys (1/{} here); {} keys are a small sample of that.",
            join.servers_after, total
        ));
        lines.push(line);
    }
    if let Some(read) = &findings.read_after_join {
        lines.push(format!(
            "Moved keys miss until they are written again, because their values stay on the old server: the read-back after adding had {} hits and {} misses ({} of them on moved keys).",
            read.hits, read.misses, read.misses_on_moved
        ));
    }
    if let Some(leave) = &findings.leave {
        let stayed = leave.total - leave.moved;
        let mut line = format!(
            "Removing {} moved {} of {} ({}%)",
            leave.server,
            leave.moved,
            keys(leave.total),
            percent(leave.moved, leave.total)
        );
        if leave.moved_as_expected == leave.moved {
            let (what, each) = if leave.moved == 1 { ("the one key", "") } else { ("the keys", "each ") };
            line.push_str(&format!(
                ": only {what} {} owned, {each}to the next server on the ring ({}); the other {stayed} stayed where they were.",
                leave.server,
                and_list(&leave.destinations)
            ));
        } else {
            line.push_str(&format!(
                ": {} of them from {}, and {} that {} did not own; {stayed} stayed where they were.",
                leave.moved_as_expected,
                leave.server,
                leave.moved - leave.moved_as_expected,
                leave.server
            ));
        }
        lines.push(line);
    }
    if let Some(read) = &findings.final_read {
        lines.push(format!(
            "After storing every value again on its current owner: {} hits, {} misses.",
            read.hits, read.misses
        ));
    }
    lines
}

/// A command as typed in `nc`, for messages: `ROUTE user:1001`.
fn command_text(args: &[&[u8]]) -> String {
    args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" ")
}

fn display_list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_lists_only_changed_owners() {
        let before = [1, 1, 0, 1];
        let after = [2, 1, 0, 2];
        assert_eq!(moves(&before, &after), [Move { key: 0, from: 1, to: 2 }, Move { key: 3, from: 1, to: 2 }]);
        assert!(moves(&after, &after).is_empty());
    }

    fn join(moved: usize, as_expected: usize) -> RingChange {
        RingChange {
            server: "cache-C".into(),
            joined: true,
            servers_after: 3,
            total: 8,
            moved,
            moved_as_expected: as_expected,
            destinations: vec!["cache-C".into()],
        }
    }

    fn leave() -> RingChange {
        RingChange {
            server: "cache-B".into(),
            joined: false,
            servers_after: 2,
            total: 8,
            moved: 3,
            moved_as_expected: 3,
            destinations: vec!["cache-A".into()],
        }
    }

    #[test]
    fn change_sentences_report_counts() {
        assert_eq!(
            change_sentence(&join(4, 4)),
            "4 of 8 keys moved (50%), all of them to cache-C; 4 stayed on their server."
        );
        assert_eq!(
            change_sentence(&leave()),
            "3 of 8 keys moved (38%), all of them from cache-B to cache-A; 5 stayed on their server."
        );
        assert_eq!(
            change_sentence(&join(3, 2)),
            "3 of 8 keys moved (38%), 2 to cache-C and 1 between other servers; 5 stayed on their server."
        );
        assert_eq!(change_sentence(&join(0, 0)), "0 of 8 keys moved (0%); 8 stayed on their server.");
    }

    #[test]
    fn conclusion_uses_the_measured_numbers() {
        let findings = Findings {
            join: Some(join(4, 4)),
            read_after_join: Some(ReadBack { hits: 4, misses: 4, misses_on_moved: 4 }),
            leave: Some(leave()),
            final_read: Some(ReadBack { hits: 8, misses: 0, misses_on_moved: 0 }),
            ..Findings::default()
        };
        let lines = conclusion(&findings, 8);
        assert_eq!(lines.len(), 4);
        assert!(
            lines[0].starts_with("Adding cache-C (2 -> 3 servers) moved 4 of 8 keys (50%), all of them to cache-C.")
        );
        assert!(lines[0].contains("1/3 here"));
        assert!(lines[1].contains("4 hits and 4 misses (4 of them on moved keys)"));
        assert!(lines[2].starts_with(
            "Removing cache-B moved 3 of 8 keys (38%): only the keys cache-B owned, each to the next server on the ring (cache-A); the other 5 stayed"
        ));
        assert_eq!(lines[3], "After storing every value again on its current owner: 8 hits, 0 misses.");
    }

    #[test]
    fn conclusion_skips_steps_not_run() {
        assert!(conclusion(&Findings::default(), 8).is_empty());
    }

    #[test]
    fn server_display_shows_label_and_address() {
        let server = Server { label: "cache-A".into(), addr: "127.0.0.1:6381".into() };
        assert_eq!(server.display(), "cache-A (127.0.0.1:6381)");
    }

    #[test]
    fn command_text_reads_like_nc() {
        assert_eq!(command_text(&[b"ROUTE", b"user:1001"]), "ROUTE user:1001");
    }
}
