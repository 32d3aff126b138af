//! [`Protocol`]: RESP2 or RESP3, as a client chose with `HELLO`.

/// The reply protocol of one connection. Every connection starts in RESP2; `HELLO 3` switches
/// it to RESP3, `HELLO 2` back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Protocol {
    /// RESP2: Redis's default.
    #[default]
    Resp2,
    /// RESP3: typed replies (maps, sets, doubles, one null, push messages).
    Resp3,
}

impl Protocol {
    /// The version number HELLO takes and reports: 2 or 3.
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }

    /// The protocol of a HELLO version number, if it is one this project speaks.
    pub fn from_version(version: i64) -> Option<Protocol> {
        match version {
            2 => Some(Protocol::Resp2),
            3 => Some(Protocol::Resp3),
            _ => None,
        }
    }
}
