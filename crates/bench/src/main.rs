//! `bench`: the benchmark suite (`cargo run -p bench --release`, or `./bench.sh`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = bench::Args::parse();
    match bench::run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        // The figures were reported, but a request failed or data is missing.
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::from(2)
        }
    }
}
