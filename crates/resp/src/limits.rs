//! Named bounds on untrusted input.

/// Bounds applied while parsing input from the network. Input beyond a bound is a
/// [`crate::ProtocolError`]: the peer gets `-ERR` and the connection is closed, so a
/// connection's buffer never holds more than about `max_bulk_len` plus one header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest inline request line, and longest header line of a multibulk request
    /// (Redis: 64 KiB, `PROTO_INLINE_MAX_SIZE`).
    pub max_inline_len: usize,
    /// Largest bulk string (Redis: `proto-max-bulk-len`, 512 MiB).
    pub max_bulk_len: usize,
    /// Most arguments in one multibulk request (Redis: 1024 * 1024).
    pub max_args: usize,
}

impl Limits {
    /// Redis's inline limit: 64 KiB.
    pub const DEFAULT_MAX_INLINE_LEN: usize = 64 * 1024;
    /// Redis's default `proto-max-bulk-len`: 512 MiB.
    pub const DEFAULT_MAX_BULK_LEN: usize = 512 * 1024 * 1024;
    /// Redis's multibulk argument limit: 1,048,576.
    pub const DEFAULT_MAX_ARGS: usize = 1024 * 1024;
    /// Arrays in replies nest at most this deep (Redis replies nest a few levels at most).
    pub const MAX_DEPTH: usize = 32;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_inline_len: Self::DEFAULT_MAX_INLINE_LEN,
            max_bulk_len: Self::DEFAULT_MAX_BULK_LEN,
            max_args: Self::DEFAULT_MAX_ARGS,
        }
    }
}
