//! `bench`: the benchmark suite (`cargo run -p bench --release`, or `./bench.sh`), and
//! `bench load ...`, the open-loop load generator on its own (`bench load --help`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    if std::env::args_os().nth(1).is_some_and(|a| a == "load") {
        argv.next(); // the program
        argv.next(); // "load"
        return match bench::loadgen::main(std::iter::once("bench load".into()).chain(argv)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench load: {e:#}");
                ExitCode::from(1)
            }
        };
    }
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
