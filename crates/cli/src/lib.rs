//! Command-line plumbing shared by the binaries: the seed's Go-style flags, tracing set-up,
//! and terminal colour that switches itself off when output is piped or `NO_COLOR` is set.
#![warn(missing_docs)]

mod color;
mod flags;

pub use color::Palette;
pub use flags::go_style_args;

/// Starts logging through `tracing` to stderr: `RUST_LOG` filters, `info` by default.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr).init();
}
