//! [`Frame`]: one RESP2 value, its incremental parser and its encoder.

use bytes::{Buf, Bytes, BytesMut};

use crate::{write, Limits, ProtocolError};

/// One RESP2 value, as a server replies it (and as a client library sends a request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `+OK`: a status line, never containing CR or LF.
    Simple(Bytes),
    /// `-ERR message`: an error line (the text after `-`).
    Error(Bytes),
    /// `:1`: a signed 64-bit integer.
    Integer(i64),
    /// `$5\r\nAlice`: a binary-safe string.
    Bulk(Bytes),
    /// `$-1`: the null bulk string (a miss).
    Null,
    /// `*N`: an array of frames.
    Array(Vec<Frame>),
    /// `*-1`: the null array.
    NullArray,
}

impl Frame {
    /// A status frame from text. Callers pass text without CR or LF.
    pub fn simple(text: impl Into<Bytes>) -> Frame {
        Frame::Simple(text.into())
    }

    /// An error frame from its text (for example `ERR unknown command`).
    pub fn error(text: impl Into<Bytes>) -> Frame {
        Frame::Error(text.into())
    }

    /// A bulk frame.
    pub fn bulk(data: impl Into<Bytes>) -> Frame {
        Frame::Bulk(data.into())
    }

    /// The bytes of a string-like frame (simple, error or bulk).
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Frame::Simple(b) | Frame::Error(b) | Frame::Bulk(b) => Some(b),
            _ => None,
        }
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }

    /// Appends the encoded frame to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Frame::Simple(s) => write::simple(out, s),
            Frame::Error(s) => write::error(out, s),
            Frame::Integer(n) => write::integer(out, *n),
            Frame::Bulk(b) => write::bulk(out, b),
            Frame::Null => write::null(out),
            Frame::NullArray => write::null_array(out),
            Frame::Array(items) => {
                write::array_header(out, items.len());
                for item in items {
                    item.encode(out);
                }
            }
        }
    }

    /// The encoded frame as a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }

    /// Parses one complete frame from the front of `buf` and consumes it.
    ///
    /// `Ok(None)` means the frame is not complete yet and nothing was consumed. Lines are
    /// bounded by `limits.max_bulk_len`, bulk strings too, arrays by `limits.max_args`.
    pub fn parse(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, ProtocolError> {
        let Some(len) = frame_len(buf, limits)? else {
            return Ok(None);
        };
        let mut bytes = buf.split_to(len).freeze();
        Ok(Some(decode(&mut bytes)))
    }
}

/// The length of the complete frame at the front of `buf`, or `None` if more bytes are
/// needed. Scans without allocating, so a proxy can forward a reply's bytes unchanged.
pub fn frame_len(buf: &[u8], limits: &Limits) -> Result<Option<usize>, ProtocolError> {
    let mut pos = 0;
    // Elements still expected at each open array level; a frame is complete at depth 0.
    let mut pending: [usize; Limits::MAX_DEPTH] = [0; Limits::MAX_DEPTH];
    let mut depth = 0;
    loop {
        let Some(&kind) = buf.get(pos) else {
            return Ok(None);
        };
        let Some(line_end) = find_crlf(buf, pos + 1, limits.max_bulk_len)? else {
            return Ok(None);
        };
        let line = &buf[pos + 1..line_end];
        pos = line_end + 2;
        match kind {
            b'+' | b'-' => {}
            b':' => {
                parse_int(line).ok_or(ProtocolError::InvalidInteger)?;
            }
            b'$' => {
                let n = parse_int(line).ok_or(ProtocolError::InvalidBulkLength)?;
                if n >= 0 {
                    let n = usize::try_from(n).map_err(|_| ProtocolError::InvalidBulkLength)?;
                    if n > limits.max_bulk_len {
                        return Err(ProtocolError::InvalidBulkLength);
                    }
                    if buf.len() < pos + n + 2 {
                        return Ok(None);
                    }
                    if &buf[pos + n..pos + n + 2] != b"\r\n" {
                        return Err(ProtocolError::MissingCrlf);
                    }
                    pos += n + 2;
                }
            }
            b'*' => {
                let n = parse_int(line).ok_or(ProtocolError::InvalidMultibulkLength)?;
                if n > 0 {
                    let n = usize::try_from(n).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
                    if n > limits.max_args {
                        return Err(ProtocolError::InvalidMultibulkLength);
                    }
                    if depth + 1 >= Limits::MAX_DEPTH {
                        return Err(ProtocolError::TooDeep);
                    }
                    depth += 1;
                    pending[depth] = n;
                    continue;
                }
            }
            other => return Err(ProtocolError::UnknownType(other)),
        }
        // One element finished: close every array it completes.
        loop {
            if depth == 0 {
                return Ok(Some(pos));
            }
            pending[depth] -= 1;
            if pending[depth] > 0 {
                break;
            }
            depth -= 1;
        }
    }
}

/// Decodes a frame already validated by [`frame_len`].
fn decode(bytes: &mut Bytes) -> Frame {
    let kind = bytes[0];
    let line_end = bytes.windows(2).position(|w| w == b"\r\n").expect("validated frame has a line");
    let line = bytes.slice(1..line_end);
    bytes.advance(line_end + 2);
    match kind {
        b'+' => Frame::Simple(line),
        b'-' => Frame::Error(line),
        b':' => Frame::Integer(parse_int(&line).expect("validated integer")),
        b'$' => match usize::try_from(parse_int(&line).expect("validated length")) {
            Ok(n) => {
                let data = bytes.slice(..n);
                bytes.advance(n + 2);
                Frame::Bulk(data)
            }
            Err(_) => Frame::Null,
        },
        _ => match usize::try_from(parse_int(&line).expect("validated length")) {
            Ok(n) => Frame::Array((0..n).map(|_| decode(bytes)).collect()),
            Err(_) => Frame::NullArray,
        },
    }
}

/// Finds the CRLF that ends the line starting at `from`; errors if the line is longer than `max`.
pub(crate) fn find_crlf(buf: &[u8], from: usize, max: usize) -> Result<Option<usize>, ProtocolError> {
    let rest = buf.get(from..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'\n') {
        Some(i) if i > 0 && rest[i - 1] == b'\r' => Ok(Some(from + i - 1)),
        Some(_) => Err(ProtocolError::MissingCrlf),
        None if rest.len() > max => Err(ProtocolError::InlineTooLong),
        None => Ok(None),
    }
}

/// Parses a decimal `i64` the way Redis does: optional `-`, digits only, no overflow.
pub(crate) fn parse_int(digits: &[u8]) -> Option<i64> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Option<Frame>, ProtocolError> {
        Frame::parse(&mut BytesMut::from(input), &Limits::default())
    }

    #[test]
    fn every_kind_round_trips() {
        let frames = [
            Frame::simple("OK"),
            Frame::error("ERR unknown command"),
            Frame::Integer(-42),
            Frame::bulk(&b"a\r\nb\0c"[..]),
            Frame::Null,
            Frame::NullArray,
            Frame::Array(vec![]),
            Frame::Array(vec![Frame::bulk("x"), Frame::Array(vec![Frame::Integer(1), Frame::Null])]),
        ];
        for frame in frames {
            let bytes = frame.to_bytes();
            assert_eq!(frame_len(&bytes, &Limits::default()), Ok(Some(bytes.len())));
            assert_eq!(parse_all(&bytes), Ok(Some(frame)));
        }
    }

    #[test]
    fn exact_bytes_of_seed_replies() {
        assert_eq!(&Frame::simple("OK").to_bytes()[..], b"+OK\r\n");
        assert_eq!(&Frame::bulk("Alice").to_bytes()[..], b"$5\r\nAlice\r\n");
        assert_eq!(&Frame::Null.to_bytes()[..], b"$-1\r\n");
        assert_eq!(&Frame::Integer(1).to_bytes()[..], b":1\r\n");
        let keys = Frame::Array(vec![Frame::simple("a"), Frame::simple("b")]);
        assert_eq!(&keys.to_bytes()[..], b"*2\r\n+a\r\n+b\r\n");
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let bytes = Frame::Array(vec![Frame::bulk("hello"), Frame::Integer(7), Frame::Null]).to_bytes();
        for cut in 0..bytes.len() {
            assert_eq!(frame_len(&bytes[..cut], &Limits::default()), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(parse_all(b"?x\r\n"), Err(ProtocolError::UnknownType(b'?')));
        assert_eq!(parse_all(b":12a\r\n"), Err(ProtocolError::InvalidInteger));
        assert_eq!(parse_all(b"$3\r\nabcd\r\n"), Err(ProtocolError::MissingCrlf));
        assert_eq!(parse_all(b"$99999999999999999999\r\n"), Err(ProtocolError::InvalidBulkLength));
        let deep = "*1\r\n".repeat(40);
        assert_eq!(parse_all(deep.as_bytes()), Err(ProtocolError::TooDeep));
    }

    #[test]
    fn limits_bound_lengths() {
        let limits = Limits { max_bulk_len: 4, ..Limits::default() };
        assert_eq!(frame_len(b"$5\r\nhello\r\n", &limits), Err(ProtocolError::InvalidBulkLength));
        assert_eq!(frame_len(b"+abcdefgh", &limits), Err(ProtocolError::InlineTooLong));
    }

    #[test]
    fn parse_int_matches_redis() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-1"), Some(-1));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"9223372036854775808"), None);
        assert_eq!(parse_int(b""), None);
        assert_eq!(parse_int(b"-"), None);
        assert_eq!(parse_int(b"+1"), None);
        assert_eq!(parse_int(b"1 "), None);
    }
}
