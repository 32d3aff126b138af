//! The seed's greeting (`+OK cache-A ready`, `+OK proxy ready (type HELP for commands)`), sent
//! so that it serves a person at `nc` and never confuses a program.
//!
//! A Redis client does not expect a line before its first reply: one that gets a greeting
//! reads it as the reply to its first command and stays one reply behind for good. A person
//! expects it at once. The two are told apart the way Redis tells a request's two forms apart,
//! by the first byte: programs open with a multibulk array (`*`), people type inline lines.
//!
//! - A client that stays silent for [`DEFAULT_DELAY`] after connecting (a person reading the
//!   screen, `nc` waiting for input) gets the greeting then.
//! - A client whose first byte is not `*` (an inline command typed or piped at once) gets the
//!   greeting just before the reply to that command.
//! - A client whose first byte is `*` (redis-cli, client libraries, redis-benchmark) never
//!   gets it.
//!
//! `--no-greeting` turns it off; `--greeting-delay-ms` sets the silence. The one case this
//! cannot serve is a program that connects and then sits silent for longer than the delay
//! before its first command (a pool that opens connections ahead of use): it gets the greeting
//! and should run the binaries with `--no-greeting`.

use std::time::Duration;

/// How long a new client may stay silent before it is greeted: short enough to look
/// immediate to a person, far longer than a program takes to send its first command.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(250);

/// Whether a client whose first byte is `first` gets the greeting: everyone but a program,
/// which opens with a multibulk array.
pub fn greets(first: u8) -> bool {
    first != b'*'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_not_greeted_people_are() {
        assert!(!greets(b'*'));
        for first in [b'P', b'p', b'G', b'\r', b'\n', b' ', b'$'] {
            assert!(greets(first), "{}", char::from(first));
        }
    }
}
