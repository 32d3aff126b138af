//! The Redis protocol (RESP2, and RESP3 for clients that ask with `HELLO 3`), modelled once
//! for every binary of the project.
//!
//! - [`Frame`]: a reply or request value, with an incremental parser and one encoder.
//! - [`Protocol`]: which of the two a client speaks; the writers in [`write`] take it where
//!   the two differ.
//! - [`parse_request`]: a client's request, in either of the two forms Redis accepts on the same
//!   port, decided by the first byte: a multibulk array (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, what
//!   client libraries send) or an inline line (`GET k`, what people type in `nc`).
//! - [`Limits`]: the named bounds on untrusted input, so memory never grows without bound.
//!
//! Parsing is incremental: `Ok(None)` means "need more bytes", not an error. A connection keeps
//! a [`RequestParser`], which resumes a partial request where it stopped instead of rescanning it.
//!
//! ```
//! use bytes::BytesMut;
//! let mut buf = BytesMut::from(&b"SET user:1001 Alice\r\n"[..]);
//! let request = resp::parse_request(&mut buf, &resp::Limits::default()).unwrap().unwrap();
//! assert_eq!(&request.args[..], ["SET", "user:1001", "Alice"]);
//! assert!(buf.is_empty());
//! ```
#![warn(missing_docs)]

pub mod command;
mod error;
mod frame;
mod inline;
mod limits;
mod protocol;
mod request;
pub mod write;

pub use error::ProtocolError;
pub use frame::{frame_len, Frame};
pub use limits::Limits;
pub use protocol::Protocol;
pub use request::{parse_request, Args, Request, RequestParser};
