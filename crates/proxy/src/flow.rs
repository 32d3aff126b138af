//! What a connection does after a command: go on, or close.

/// What the connection does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Flush and close (QUIT).
    Quit,
}
