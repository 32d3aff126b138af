//! Command-line plumbing shared by the binaries: the seed's Go-style flags, tracing set-up,
//! and terminal colour that switches itself off when output is piped or `NO_COLOR` is set.
#![warn(missing_docs)]

mod color;
mod flags;

pub use color::Palette;
pub use flags::go_style_args;

/// The exit status of a binary's `main`: success, or failure after printing the error and
/// its causes as one `error: ...` line on stderr, as clap reports a bad flag (not Rust's
/// default `Error: ...` debug form).
pub fn exit_code<E: std::fmt::Display>(result: Result<(), E>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Starts logging through `tracing` to stderr: `RUST_LOG` filters, `info` by default;
/// coloured only when stderr is a terminal and `NO_COLOR` is not set, so logs piped to a file
/// or another program stay plain text.
pub fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(!no_color && std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
