//! `demo`: the automated walkthrough of consistent hashing against a running cluster.

use std::process::ExitCode;

use clap::Parser;

/// Walks through consistent hashing on a live cluster: adds cache servers to the proxy's
/// ring, shows where eight keys route, stores them, adds a third server (some keys move and
/// miss), removes one (only its keys move), stores again and checks every key hits.
///
/// It needs the proxy and the three cache servers running; `./demo.sh` builds and starts
/// them, runs this, and stops them again. Each run first empties the proxy's ring and deletes
/// the eight demo keys on the cache servers, so it can be run again and again with the same
/// result. Colour is used on a terminal unless NO_COLOR is set. The seed's Go-style flags
/// work too (`-proxy 127.0.0.1:6380`).
///
/// With --all it goes on after the seed's seven steps with what production needs: REBALANCE
/// after adding cache-C (the misses disappear), how evenly 10,000 keys spread with 3 and 160
/// virtual nodes, how many keys move when a fourth server joins (consistent hashing versus
/// hash mod N), and replication factor 2 with one server killed. That last step starts its
/// own three cache servers and proxy on free ports from the `server` and `proxy` binaries
/// next to this one (`cargo build -p server -p proxy -p demo`, or just `./demo.sh --all`), and
/// stops them again.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// The proxy to drive, as host:port.
    #[arg(long, value_name = "HOST:PORT", default_value = demo::DEFAULT_PROXY)]
    proxy: String,
    /// The three cache servers, comma-separated, labelled cache-A, cache-B and cache-C in
    /// that order: A and B join first, C joins later, B leaves.
    #[arg(
        long,
        value_name = "A,B,C",
        value_delimiter = ',',
        default_value = "127.0.0.1:6381,127.0.0.1:6382,127.0.0.1:6383"
    )]
    servers: Vec<String>,
    /// After the seed's seven steps, also show migration, virtual nodes, consistent hashing
    /// versus hash mod N, replication with a server killed, and every placement side by side (steps 8 to 12).
    #[arg(long)]
    all: bool,
    /// Write a picture of the ring (SVG) after each step into this directory, as
    /// step-01.svg, step-02.svg, ... [default with --all: demo-rings under the system's
    /// temporary directory]
    #[arg(long, value_name = "DIR")]
    svg_dir: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse_from(cli::go_style_args());
    let svg_dir = args.svg_dir.or_else(|| args.all.then(|| std::env::temp_dir().join("demo-rings")));
    let config = demo::Config { proxy: args.proxy, servers: args.servers, svg_dir };
    let run = if args.all { demo::run_all } else { demo::run };
    match run(&config, cli::Palette::detect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("\ndemo: {error:#}");
            ExitCode::FAILURE
        }
    }
}
