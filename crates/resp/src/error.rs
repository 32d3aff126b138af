//! Errors of the wire format: input that can never become a valid frame.

use std::fmt;

/// Input that breaks the protocol. The connection that sent it cannot be resynchronised,
/// so the caller replies `-ERR Protocol error: ...` and closes it, as Redis does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// An inline request line longer than [`crate::Limits::max_inline_len`].
    InlineTooLong,
    /// An inline request with an unterminated quote.
    UnbalancedQuotes,
    /// A multibulk count that is not a number or exceeds [`crate::Limits::max_args`].
    InvalidMultibulkLength,
    /// A bulk length that is not a number or exceeds [`crate::Limits::max_bulk_len`].
    InvalidBulkLength,
    /// A multibulk element that does not start with `$`.
    ExpectedBulk(u8),
    /// A bulk string not followed by CRLF.
    MissingCrlf,
    /// A reply frame with an unknown type byte.
    UnknownType(u8),
    /// An integer field that is not a decimal number.
    InvalidInteger,
    /// Arrays nested deeper than the parser follows.
    TooDeep,
    /// A RESP3 value that does not read as its type says (`#x`, `,abc`, `(1a`, `_x`, a
    /// verbatim string without its `fmt:` prefix).
    InvalidValue(u8),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InlineTooLong => f.write_str("too big inline request"),
            Self::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
            Self::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            Self::InvalidBulkLength => f.write_str("invalid bulk length"),
            Self::ExpectedBulk(got) => write!(f, "expected '$', got '{}'", char::from(*got)),
            Self::MissingCrlf => f.write_str("expected CRLF after bulk string"),
            Self::UnknownType(got) => write!(f, "unknown reply type '{}'", char::from(*got)),
            Self::InvalidInteger => f.write_str("invalid integer"),
            Self::TooDeep => f.write_str("reply nested too deep"),
            Self::InvalidValue(kind) => write!(f, "invalid '{}' value", char::from(*kind)),
        }
    }
}

impl std::error::Error for ProtocolError {}

impl ProtocolError {
    /// The error line a server sends before closing the connection (without `-` and CRLF).
    pub fn reply_text(&self) -> String {
        format!("ERR Protocol error: {self}")
    }
}
