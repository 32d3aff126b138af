//! Colour for people, plain text for pipes.

use std::io::IsTerminal;

/// ANSI styling that is on only when stdout is a terminal and `NO_COLOR` is not set.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    enabled: bool,
}

impl Palette {
    /// Decides from the environment: a terminal on stdout and no `NO_COLOR`.
    pub fn detect() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self { enabled: !no_color && std::io::stdout().is_terminal() }
    }

    /// Plain text always.
    pub fn plain() -> Self {
        Self { enabled: false }
    }

    /// Whether styling is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Good news: hits, success.
    pub fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Bad news: misses, failures.
    pub fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }

    /// Something changed: a moved key.
    pub fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }

    /// Names of things: servers.
    pub fn cyan(&self, text: &str) -> String {
        self.paint("36", text)
    }

    /// Headings.
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Secondary text.
    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
}
