//! A client's request: a multibulk array or an inline line, decided by the first byte.

use bytes::{Bytes, BytesMut};

use crate::frame::{find_crlf, parse_int};
use crate::{inline, Limits, ProtocolError};

/// One command from a client: its arguments, the command name first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The arguments, binary safe; `args[0]` is the command name as sent.
    pub args: Vec<Bytes>,
    /// The exact bytes of the request when it arrived as a multibulk array: a proxy can
    /// forward them unchanged. `None` for inline requests.
    pub raw: Option<Bytes>,
}

impl Request {
    /// A request built from arguments (no raw bytes).
    pub fn new(args: Vec<Bytes>) -> Self {
        Self { args, raw: None }
    }

    /// The command name as sent (compare with [`Request::is`]).
    pub fn name(&self) -> &[u8] {
        self.args.first().map(|a| &a[..]).unwrap_or_default()
    }

    /// Whether the command name is `name`, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.name().eq_ignore_ascii_case(name.as_bytes())
    }

    /// Appends the request as a multibulk array: its raw bytes when it has them.
    pub fn encode(&self, out: &mut BytesMut) {
        match &self.raw {
            Some(raw) => out.extend_from_slice(raw),
            None => crate::write::command(out, &self.args),
        }
    }
}

/// Parses the next request at the front of `buf` and consumes its bytes.
///
/// Returns `Ok(None)` when `buf` holds no complete request yet (nothing is consumed, except
/// empty lines and empty arrays, which Redis skips too). Errors mean the input can never
/// become valid: reply with [`ProtocolError::reply_text`] and close the connection.
pub fn parse_request(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Request>, ProtocolError> {
    loop {
        let parsed = match buf.first() {
            None => return Ok(None),
            Some(b'*') => multibulk(buf, limits)?,
            Some(_) => inline::parse(buf, limits)?,
        };
        match parsed {
            Parsed::Incomplete => return Ok(None),
            Parsed::Empty => continue,
            Parsed::Request(request) => return Ok(Some(request)),
        }
    }
}

/// What one parsing step found.
pub(crate) enum Parsed {
    /// Not enough bytes yet.
    Incomplete,
    /// An empty line or array was consumed; look again.
    Empty,
    /// A whole request.
    Request(Request),
}

fn multibulk(buf: &mut BytesMut, limits: &Limits) -> Result<Parsed, ProtocolError> {
    let Some(header_end) = find_crlf(buf, 1, limits.max_inline_len)? else {
        return Ok(Parsed::Incomplete);
    };
    let count = parse_int(&buf[1..header_end]).ok_or(ProtocolError::InvalidMultibulkLength)?;
    let mut pos = header_end + 2;
    if count <= 0 {
        let _ = buf.split_to(pos);
        return Ok(Parsed::Empty);
    }
    let count = usize::try_from(count).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
    if count > limits.max_args {
        return Err(ProtocolError::InvalidMultibulkLength);
    }
    // The count is untrusted: reserve little up front and grow only as arguments arrive.
    let mut spans = Vec::with_capacity(count.min(16));
    for _ in 0..count {
        match buf.get(pos) {
            None => return Ok(Parsed::Incomplete),
            Some(b'$') => {}
            Some(&other) => return Err(ProtocolError::ExpectedBulk(other)),
        }
        let Some(line_end) = find_crlf(buf, pos + 1, limits.max_inline_len)? else {
            return Ok(Parsed::Incomplete);
        };
        let len = parse_int(&buf[pos + 1..line_end])
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= limits.max_bulk_len)
            .ok_or(ProtocolError::InvalidBulkLength)?;
        let start = line_end + 2;
        if buf.len() < start + len + 2 {
            return Ok(Parsed::Incomplete);
        }
        if &buf[start + len..start + len + 2] != b"\r\n" {
            return Err(ProtocolError::MissingCrlf);
        }
        spans.push((start, start + len));
        pos = start + len + 2;
    }
    let raw = buf.split_to(pos).freeze();
    let args = spans.into_iter().map(|(start, end)| raw.slice(start..end)).collect();
    Ok(Parsed::Request(Request { args, raw: Some(raw) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(input: &[u8]) -> Result<Option<Request>, ProtocolError> {
        parse_request(&mut BytesMut::from(input), &Limits::default())
    }

    fn args(input: &[u8]) -> Vec<Bytes> {
        parse_one(input).unwrap().unwrap().args
    }

    #[test]
    fn multibulk_is_binary_safe_and_keeps_raw_bytes() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\r\n\0b\r\n";
        let request = parse_one(input).unwrap().unwrap();
        assert_eq!(request.args, ["SET", "k", "a\r\n\0b"]);
        assert_eq!(request.raw.as_deref(), Some(&input[..]));
    }

    #[test]
    fn multibulk_prefixes_are_incomplete() {
        let input = b"*2\r\n$3\r\nGET\r\n$4\r\nuser\r\n";
        for cut in 1..input.len() {
            assert_eq!(parse_one(&input[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn pipelined_requests_parse_in_order() {
        let mut buf = BytesMut::from(&b"PING\r\n*1\r\n$4\r\nPING\r\nGET a\nrest"[..]);
        let limits = Limits::default();
        let mut names = vec![];
        while let Some(request) = parse_request(&mut buf, &limits).unwrap() {
            names.push(request.args);
        }
        assert_eq!(names, vec![vec!["PING"], vec!["PING"], vec!["GET", "a"]]);
        assert_eq!(&buf[..], b"rest");
    }

    #[test]
    fn empty_arrays_and_lines_are_skipped() {
        assert_eq!(args(b"*0\r\n\r\n*-1\r\nPING\r\n"), ["PING"]);
    }

    #[test]
    fn malformed_multibulk_is_a_protocol_error() {
        assert_eq!(parse_one(b"*x\r\n"), Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(parse_one(b"*1\r\n+GET\r\n"), Err(ProtocolError::ExpectedBulk(b'+')));
        assert_eq!(parse_one(b"*1\r\n$-5\r\n"), Err(ProtocolError::InvalidBulkLength));
        assert_eq!(parse_one(b"*1\r\n$3\r\nGETX\r\n"), Err(ProtocolError::MissingCrlf));
    }

    #[test]
    fn limits_are_enforced_before_data_arrives() {
        let limits = Limits { max_bulk_len: 10, max_args: 2, max_inline_len: 16 };
        let parse = |input: &[u8]| parse_request(&mut BytesMut::from(input), &limits);
        assert_eq!(parse(b"*3\r\n"), Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(parse(b"*1\r\n$11\r\n"), Err(ProtocolError::InvalidBulkLength));
        assert_eq!(parse(b"*1\r\n$10\r\n"), Ok(None));
        assert_eq!(parse(&[b'a'; 17]), Err(ProtocolError::InlineTooLong));
        assert_eq!(parse(b"*11111111111111111111"), Err(ProtocolError::InlineTooLong));
    }
}
