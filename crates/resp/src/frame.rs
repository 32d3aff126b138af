//! [`Frame`]: one RESP2 or RESP3 value, its incremental parser and its encoder.
//!
//! RESP2's five types and RESP3's ten are all parsed, by [`frame_len`] (which the proxy uses to
//! count replies on a backend connection without allocating) and by [`Frame::parse`].
//! Attributes (`|`, RESP3's out-of-band metadata on the reply that follows) are part of that
//! reply's bytes for [`frame_len`], so a forwarded reply keeps them byte for byte;
//! [`Frame::parse`] skips them and returns the reply they annotate (nothing in this project
//! reads them, and Redis sends them only to clients that asked, with `CLIENT TRACKING`'s
//! options).

use bytes::{Buf, Bytes, BytesMut};

use crate::{write, Limits, Protocol, ProtocolError};

/// One RESP value, as a server replies it (and as a client library sends a request).
///
/// The first seven variants are RESP2's; the others exist only in RESP3 (`HELLO 3`). Encoding
/// a frame writes exactly its own type: a RESP3 frame is only sent to a RESP3 client (see
/// [`Frame::map`], [`Frame::set`] and [`Frame::null`] to build the right one for a protocol).
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
    /// `$-1`: RESP2's null bulk string (a miss).
    Null,
    /// `*N`: an array of frames.
    Array(Vec<Frame>),
    /// `*-1`: RESP2's null array.
    NullArray,
    /// `_`: RESP3's null, for a missing value of any type.
    Resp3Null,
    /// `%N`: RESP3's map, N key-value pairs in order.
    Map(Vec<(Frame, Frame)>),
    /// `~N`: RESP3's set (unordered, as the server listed it).
    Set(Vec<Frame>),
    /// `,1.5`: RESP3's double, kept as the text the server sent (`inf`, `-inf`, `nan`, `1e+20`),
    /// so that a value passes through unchanged; [`Frame::double`] builds one from an `f64`.
    Double(Bytes),
    /// `#t` / `#f`: RESP3's boolean.
    Boolean(bool),
    /// `(123...`: RESP3's big number, its decimal digits (with an optional `-`).
    BigNumber(Bytes),
    /// `=N\r\ntxt:...`: RESP3's verbatim string: a three-letter format (`txt`, `mkd`) and the text.
    Verbatim {
        /// The format, three bytes (`txt`).
        format: Bytes,
        /// The text after `format:`.
        text: Bytes,
    },
    /// `!N\r\n...`: RESP3's binary-safe error.
    BlobError(Bytes),
    /// `>N`: RESP3's push message (pub/sub messages, invalidations), out of band of replies.
    Push(Vec<Frame>),
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

    /// A RESP3 double frame from a number, written as Redis writes doubles (`1.5`, `inf`).
    pub fn double(value: f64) -> Frame {
        Frame::Double(Bytes::from(write::format_double(value)))
    }

    /// Key-value pairs as `protocol` sends them: a map in RESP3, a flat array (key, value,
    /// key, value...) in RESP2, as Redis replies to HELLO, CONFIG GET or COMMAND DOCS.
    pub fn map(protocol: Protocol, pairs: Vec<(Frame, Frame)>) -> Frame {
        match protocol {
            Protocol::Resp2 => Frame::Array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
            Protocol::Resp3 => Frame::Map(pairs),
        }
    }

    /// Members as `protocol` sends them: a set in RESP3, an array in RESP2.
    pub fn set(protocol: Protocol, items: Vec<Frame>) -> Frame {
        match protocol {
            Protocol::Resp2 => Frame::Array(items),
            Protocol::Resp3 => Frame::Set(items),
        }
    }

    /// A missing value as `protocol` sends it: `$-1` in RESP2, `_` in RESP3.
    pub fn null(protocol: Protocol) -> Frame {
        match protocol {
            Protocol::Resp2 => Frame::Null,
            Protocol::Resp3 => Frame::Resp3Null,
        }
    }

    /// The bytes of a string-like frame (simple, error, bulk, blob error, verbatim text, big
    /// number or double text).
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Frame::Simple(b)
            | Frame::Error(b)
            | Frame::Bulk(b)
            | Frame::BlobError(b)
            | Frame::BigNumber(b)
            | Frame::Double(b)
            | Frame::Verbatim { text: b, .. } => Some(b),
            _ => None,
        }
    }

    /// Whether this is an error reply (`-` or RESP3's `!`).
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_) | Frame::BlobError(_))
    }

    /// Whether this is a null of either protocol (`$-1`, `*-1`, `_`).
    pub fn is_null(&self) -> bool {
        matches!(self, Frame::Null | Frame::NullArray | Frame::Resp3Null)
    }

    /// Appends the encoded frame to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Frame::Simple(s) => write::simple(out, s),
            Frame::Error(s) => write::error(out, s),
            Frame::Integer(n) => write::integer(out, *n),
            Frame::Bulk(b) => write::bulk(out, b),
            Frame::Null => write::null(out, Protocol::Resp2),
            Frame::NullArray => write::null_array(out, Protocol::Resp2),
            Frame::Resp3Null => write::null(out, Protocol::Resp3),
            Frame::Array(items) => {
                write::array_header(out, items.len());
                items.iter().for_each(|item| item.encode(out));
            }
            Frame::Set(items) => {
                write::set_header(out, Protocol::Resp3, items.len());
                items.iter().for_each(|item| item.encode(out));
            }
            Frame::Push(items) => {
                write::push_header(out, items.len());
                items.iter().for_each(|item| item.encode(out));
            }
            Frame::Map(pairs) => {
                write::map_header(out, Protocol::Resp3, pairs.len());
                for (key, value) in pairs {
                    key.encode(out);
                    value.encode(out);
                }
            }
            Frame::Double(text) => write::double_text(out, text),
            Frame::Boolean(b) => write::boolean(out, Protocol::Resp3, *b),
            Frame::BigNumber(digits) => write::big_number(out, digits),
            Frame::Verbatim { format, text } => write::verbatim_with(out, format, text),
            Frame::BlobError(text) => write::blob_error(out, text),
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
    /// bounded by `limits.max_bulk_len`, bulk strings too, aggregates by `limits.max_args`.
    /// An attribute before a reply is consumed with it and dropped (see the module's doc).
    pub fn parse(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, ProtocolError> {
        let Some(len) = frame_len(buf, limits)? else {
            return Ok(None);
        };
        let mut bytes = buf.split_to(len).freeze();
        Ok(Some(decode(&mut bytes)))
    }
}

/// The type bytes of RESP2 and RESP3.
const FRAME_TYPES: &[u8] = b"+-:_#(,$!=*~>%|";

/// How many elements an aggregate header announces, checked against the limits.
fn aggregate_len(line: &[u8], limits: &Limits, per_entry: usize) -> Result<usize, ProtocolError> {
    let n = parse_int(line).ok_or(ProtocolError::InvalidMultibulkLength)?;
    let n = usize::try_from(n).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
    if n > limits.max_args {
        return Err(ProtocolError::InvalidMultibulkLength);
    }
    Ok(n * per_entry)
}

/// The length of the complete frame at the front of `buf`, or `None` if more bytes are
/// needed. Scans without allocating, so a proxy can forward a reply's bytes unchanged.
///
/// Every RESP2 and RESP3 type is understood. An attribute (`|N`) and the reply it annotates
/// count as one frame.
pub fn frame_len(buf: &[u8], limits: &Limits) -> Result<Option<usize>, ProtocolError> {
    // The replies a cache sends most, one bulk string or one status line, complete and well
    // formed: measured without the general walk (which gives the same answers, and every
    // error).
    match buf.first() {
        Some(b'$') => {
            if let Some((n, line_end)) = quick_number(buf, 1, limits.max_bulk_len) {
                let end = line_end + 2 + n;
                if n <= limits.max_bulk_len && buf.get(end..end + 2) == Some(b"\r\n") {
                    return Ok(Some(end + 2));
                }
            }
        }
        Some(b'+') => {
            if let Ok(Some(line_end)) = find_crlf(buf, 1, limits.max_bulk_len) {
                return Ok(Some(line_end + 2));
            }
        }
        _ => {}
    }
    walk_frame(buf, limits)
}

/// [`frame_len`] for any frame: walks it line by line, aggregates by depth.
fn walk_frame(buf: &[u8], limits: &Limits) -> Result<Option<usize>, ProtocolError> {
    let mut pos = 0;
    // Elements still expected at each open aggregate level; a frame is complete at depth 0.
    let mut pending: [usize; Limits::MAX_DEPTH] = [0; Limits::MAX_DEPTH];
    let mut depth = 0;
    loop {
        let Some(&kind) = buf.get(pos) else {
            return Ok(None);
        };
        // An unknown type is an error at once, not after its line arrives: input cut into
        // reads fails as the whole would.
        if !FRAME_TYPES.contains(&kind) {
            return Err(ProtocolError::UnknownType(kind));
        }
        let Some(line_end) = find_crlf(buf, pos + 1, limits.max_bulk_len)? else {
            return Ok(None);
        };
        let line = &buf[pos + 1..line_end];
        pos = line_end + 2;
        // Elements of an aggregate that opens here: None for a complete element.
        let opens = match kind {
            b'+' | b'-' => None,
            b':' => {
                parse_int(line).ok_or(ProtocolError::InvalidInteger)?;
                None
            }
            b'_' if line.is_empty() => None,
            b'#' if line == b"t" || line == b"f" => None,
            b'(' if is_big_number(line) => None,
            b',' if is_double(line) => None,
            b'_' | b'#' | b'(' | b',' => return Err(ProtocolError::InvalidValue(kind)),
            b'$' | b'!' | b'=' => {
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
                    if kind == b'=' && (n < 4 || buf[pos + 3] != b':') {
                        return Err(ProtocolError::InvalidValue(kind));
                    }
                    pos += n + 2;
                } else if kind != b'$' {
                    return Err(ProtocolError::InvalidBulkLength);
                }
                None
            }
            // `*-1` is RESP2's null array; the other aggregates have no null form.
            b'*' if parse_int(line).is_some_and(|n| n < 0) => None,
            b'*' | b'~' | b'>' => Some(aggregate_len(line, limits, 1)?),
            b'%' => Some(aggregate_len(line, limits, 2)?),
            // The attribute's pairs, then the reply they annotate.
            b'|' => Some(aggregate_len(line, limits, 2)? + 1),
            other => return Err(ProtocolError::UnknownType(other)),
        };
        match opens {
            Some(0) => {}
            Some(n) => {
                if depth + 1 >= Limits::MAX_DEPTH {
                    return Err(ProtocolError::TooDeep);
                }
                depth += 1;
                pending[depth] = n;
                continue;
            }
            None => {}
        }
        // One element finished: close every aggregate it completes.
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

/// RESP3's big number: an optional `-`, then decimal digits.
fn is_big_number(line: &[u8]) -> bool {
    let digits = line.strip_prefix(b"-").unwrap_or(line);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// RESP3's double: what Redis writes (`1.5`, `-3`, `1e+20`, `inf`, `-inf`, `nan`).
fn is_double(line: &[u8]) -> bool {
    std::str::from_utf8(line).is_ok_and(|text| text.parse::<f64>().is_ok())
}

/// Decodes a frame already validated by [`frame_len`].
fn decode(bytes: &mut Bytes) -> Frame {
    let kind = bytes[0];
    let line_end = bytes.windows(2).position(|w| w == b"\r\n").expect("validated frame has a line");
    let line = bytes.slice(1..line_end);
    bytes.advance(line_end + 2);
    let length = || usize::try_from(parse_int(&line).expect("validated length"));
    let blob = |bytes: &mut Bytes, n: usize| {
        let data = bytes.slice(..n);
        bytes.advance(n + 2);
        data
    };
    match kind {
        b'+' => Frame::Simple(line),
        b'-' => Frame::Error(line),
        b':' => Frame::Integer(parse_int(&line).expect("validated integer")),
        b'_' => Frame::Resp3Null,
        b'#' => Frame::Boolean(&line[..] == b"t"),
        b'(' => Frame::BigNumber(line),
        b',' => Frame::Double(line),
        b'$' => match length() {
            Ok(n) => Frame::Bulk(blob(bytes, n)),
            Err(_) => Frame::Null,
        },
        b'!' => Frame::BlobError(blob(bytes, length().expect("validated length"))),
        b'=' => {
            let data = blob(bytes, length().expect("validated length"));
            Frame::Verbatim { format: data.slice(..3), text: data.slice(4..) }
        }
        b'%' => {
            let n = length().expect("validated length");
            Frame::Map((0..n).map(|_| (decode(bytes), decode(bytes))).collect())
        }
        b'|' => {
            // Skip the attribute's pairs: the frame is the reply they annotate.
            for _ in 0..length().expect("validated length") * 2 {
                decode(bytes);
            }
            decode(bytes)
        }
        b'~' => Frame::Set((0..length().expect("validated length")).map(|_| decode(bytes)).collect()),
        b'>' => Frame::Push((0..length().expect("validated length")).map(|_| decode(bytes)).collect()),
        _ => match length() {
            Ok(n) => Frame::Array((0..n).map(|_| decode(bytes)).collect()),
            Err(_) => Frame::NullArray,
        },
    }
}

/// Finds the CRLF that ends the line starting at `from`; errors if the line is longer than `max`.
///
/// The bound is the same whether the newline has arrived or not (a line whose LF lies beyond
/// `max` is too long either way), so input cut into reads fails as the whole would.
pub(crate) fn find_crlf(buf: &[u8], from: usize, max: usize) -> Result<Option<usize>, ProtocolError> {
    let rest = buf.get(from..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'\n') {
        Some(i) if i > max => Err(ProtocolError::InlineTooLong),
        Some(i) if i > 0 && rest[i - 1] == b'\r' => Ok(Some(from + i - 1)),
        Some(_) => Err(ProtocolError::MissingCrlf),
        None if rest.len() > max => Err(ProtocolError::InlineTooLong),
        None => Ok(None),
    }
}

/// The number on the line that starts at `from` (just past a `*` or a `$`) and where its
/// `\r\n` begins, when that line is wholly in `buf` and is nothing but 1 to 18 digits within
/// `max` bytes: the common case, read in one pass over the digits. Anything else (a line not
/// yet complete, a sign, a stray byte, a longer number) gives `None`, and the caller takes the
/// general path ([`find_crlf`], then [`parse_int`]), which knows every error. Parsing the
/// line twice, a search for its newline and then its digits, cost our server 4% of its
/// instructions at pipeline 16 (callgrind).
#[inline]
pub(crate) fn quick_number(buf: &[u8], from: usize, max: usize) -> Option<(usize, usize)> {
    /// More digits than this take the general path, so the sum cannot overflow.
    const MAX_DIGITS: usize = 18;
    let mut value: u64 = 0;
    let mut i = from;
    loop {
        match *buf.get(i)? {
            digit @ b'0'..=b'9' if i - from < MAX_DIGITS => {
                value = value * 10 + u64::from(digit - b'0');
                i += 1;
            }
            b'\r' if i > from && i + 1 - from <= max && buf.get(i + 1) == Some(&b'\n') => {
                return Some((usize::try_from(value).ok()?, i));
            }
            _ => return None,
        }
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

    /// Lines and frames the quick paths must read exactly as the general ones do, whole and
    /// cut short at every byte.
    const TRICKY: &[&[u8]] = &[
        b"$5\r\nhello\r\n",
        b"$0\r\n\r\n",
        b"$05\r\nhello\r\n",
        b"$5\r\nhelloXX",
        b"$-1\r\n",
        b"$-0\r\n\r\n",
        b"$+5\r\nhello\r\n",
        b"$5\nhello\r\n",
        b"$\r\n",
        b"$ 5\r\nhello\r\n",
        b"$999999999999999999\r\n",
        b"$9999999999999999999\r\n",
        b"$99999999999999999999\r\n",
        b"$513\r\n",
        b"$5\r\nhello\r\n$3\r\nabc\r\n",
        b"+OK\r\n",
        b"+\r\n",
        b"+OK\n",
        b"+O\rK\r\n",
        b"+OK\r\n+PONG\r\n",
    ];

    #[test]
    fn quick_bulk_lengths_agree_with_the_general_walk() {
        for limits in [
            Limits::default(),
            Limits { max_bulk_len: 512, ..Limits::default() },
            Limits { max_bulk_len: 3, ..Limits::default() },
        ] {
            for input in TRICKY {
                for cut in 0..=input.len() {
                    let part = &input[..cut];
                    assert_eq!(
                        frame_len(part, &limits),
                        walk_frame(part, &limits),
                        "{:?} with max_bulk_len {}",
                        String::from_utf8_lossy(part),
                        limits.max_bulk_len
                    );
                }
            }
        }
    }

    #[test]
    fn quick_numbers_agree_with_find_crlf_and_parse_int() {
        for input in TRICKY {
            for cut in 0..=input.len() {
                let part = &input[..cut];
                for max in [1, 2, 3, 20, 1024] {
                    if let Some((n, end)) = quick_number(part, 1, max) {
                        assert_eq!(find_crlf(part, 1, max), Ok(Some(end)), "{part:?}");
                        assert_eq!(parse_int(&part[1..end]).and_then(|n| usize::try_from(n).ok()), Some(n), "{part:?}");
                    }
                }
            }
        }
    }

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

    /// One frame of every RESP3 type, nested in each aggregate.
    fn resp3_frames() -> Vec<Frame> {
        vec![
            Frame::Resp3Null,
            Frame::Boolean(true),
            Frame::Boolean(false),
            Frame::double(1.5),
            Frame::double(f64::INFINITY),
            Frame::Double(Bytes::from_static(b"-1e+20")),
            Frame::BigNumber(Bytes::from_static(b"-3492890328409238509324850943850943825024385")),
            Frame::Verbatim { format: Bytes::from_static(b"txt"), text: Bytes::from_static(b"Some string\r\n") },
            Frame::BlobError(Bytes::from_static(b"SYNTAX invalid\r\nsyntax")),
            Frame::Map(vec![]),
            Frame::Set(vec![]),
            Frame::Push(vec![]),
            Frame::Map(vec![
                (Frame::bulk("first"), Frame::Integer(1)),
                (Frame::simple("second"), Frame::Set(vec![Frame::Boolean(false), Frame::Resp3Null])),
            ]),
            Frame::Set(vec![Frame::bulk("a"), Frame::Map(vec![(Frame::Integer(1), Frame::double(0.25))])]),
            Frame::Push(vec![Frame::bulk("message"), Frame::bulk("channel"), Frame::bulk("hello")]),
            Frame::Array(vec![Frame::Map(vec![(Frame::bulk("k"), Frame::Array(vec![]))]), Frame::Null]),
        ]
    }

    #[test]
    fn every_resp3_kind_round_trips() {
        for frame in resp3_frames() {
            let bytes = frame.to_bytes();
            assert_eq!(frame_len(&bytes, &Limits::default()), Ok(Some(bytes.len())), "{frame:?}");
            assert_eq!(parse_all(&bytes), Ok(Some(frame)));
        }
    }

    #[test]
    fn exact_bytes_of_resp3_types() {
        let cases: [(Frame, &[u8]); 10] = [
            (Frame::Resp3Null, b"_\r\n"),
            (Frame::Boolean(true), b"#t\r\n"),
            (Frame::double(1.5), b",1.5\r\n"),
            (Frame::double(f64::NEG_INFINITY), b",-inf\r\n"),
            (Frame::BigNumber(Bytes::from_static(b"12345678901234567890")), b"(12345678901234567890\r\n"),
            (
                Frame::Verbatim { format: Bytes::from_static(b"txt"), text: Bytes::from_static(b"hi") },
                b"=6\r\ntxt:hi\r\n",
            ),
            (Frame::BlobError(Bytes::from_static(b"ERR x")), b"!5\r\nERR x\r\n"),
            (Frame::Map(vec![(Frame::bulk("a"), Frame::Integer(1))]), b"%1\r\n$1\r\na\r\n:1\r\n"),
            (Frame::Set(vec![Frame::simple("x")]), b"~1\r\n+x\r\n"),
            (Frame::Push(vec![Frame::bulk("p")]), b">1\r\n$1\r\np\r\n"),
        ];
        for (frame, bytes) in cases {
            assert_eq!(&frame.to_bytes()[..], bytes, "{frame:?}");
        }
    }

    #[test]
    fn every_prefix_of_every_resp3_kind_is_incomplete() {
        for frame in resp3_frames() {
            let bytes = frame.to_bytes();
            for cut in 0..bytes.len() {
                assert_eq!(frame_len(&bytes[..cut], &Limits::default()), Ok(None), "{frame:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn an_attribute_is_part_of_the_reply_it_annotates() {
        // `|1` key-popularity attribute, then the reply: an array of two integers.
        let bytes: &[u8] = b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n";
        assert_eq!(frame_len(bytes, &Limits::default()), Ok(Some(bytes.len())));
        for cut in 0..bytes.len() {
            assert_eq!(frame_len(&bytes[..cut], &Limits::default()), Ok(None), "cut at {cut}");
        }
        let mut buf = BytesMut::from(bytes);
        buf.extend_from_slice(b":1\r\n");
        let frame = Frame::parse(&mut buf, &Limits::default());
        assert_eq!(frame, Ok(Some(Frame::Array(vec![Frame::Integer(2039123), Frame::Integer(9543892)]))));
        assert_eq!(&buf[..], b":1\r\n", "the attribute and its reply are consumed, nothing more");
        // An attribute inside an aggregate annotates one element.
        let nested: &[u8] = b"*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n";
        assert_eq!(frame_len(nested, &Limits::default()), Ok(Some(nested.len())));
        assert_eq!(parse_all(nested), Ok(Some(Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)]))));
    }

    #[test]
    fn bad_resp3_values_are_errors() {
        assert_eq!(parse_all(b"#x\r\n"), Err(ProtocolError::InvalidValue(b'#')));
        assert_eq!(parse_all(b"_1\r\n"), Err(ProtocolError::InvalidValue(b'_')));
        assert_eq!(parse_all(b",abc\r\n"), Err(ProtocolError::InvalidValue(b',')));
        assert_eq!(parse_all(b"(12a\r\n"), Err(ProtocolError::InvalidValue(b'(')));
        assert_eq!(parse_all(b"=2\r\nab\r\n"), Err(ProtocolError::InvalidValue(b'=')));
        assert_eq!(parse_all(b"=4\r\nabcd\r\n"), Err(ProtocolError::InvalidValue(b'=')));
        assert_eq!(parse_all(b"!-1\r\n"), Err(ProtocolError::InvalidBulkLength));
        assert_eq!(parse_all(b"%-1\r\n"), Err(ProtocolError::InvalidMultibulkLength));
        let limits = Limits { max_args: 2, ..Limits::default() };
        assert_eq!(frame_len(b"%3\r\n", &limits), Err(ProtocolError::InvalidMultibulkLength));
        let deep = "%1\r\n+k\r\n".repeat(40);
        assert_eq!(parse_all(deep.as_bytes()), Err(ProtocolError::TooDeep));
    }

    #[test]
    fn protocol_helpers_pick_the_form() {
        let pairs = || vec![(Frame::bulk("k"), Frame::Integer(1))];
        assert_eq!(Frame::map(Protocol::Resp2, pairs()), Frame::Array(vec![Frame::bulk("k"), Frame::Integer(1)]));
        assert_eq!(Frame::map(Protocol::Resp3, pairs()), Frame::Map(pairs()));
        assert_eq!(Frame::set(Protocol::Resp3, vec![]), Frame::Set(vec![]));
        assert_eq!(Frame::null(Protocol::Resp2), Frame::Null);
        assert_eq!(Frame::null(Protocol::Resp3), Frame::Resp3Null);
        assert!(Frame::Resp3Null.is_null() && Frame::NullArray.is_null());
        assert!(Frame::BlobError(Bytes::new()).is_error());
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
        // Found by fuzzing: the bound and the type byte are checked before the line ends, so
        // input cut into reads fails as the whole does.
        assert_eq!(frame_len(b"+abcdefgh\r\n", &limits), Err(ProtocolError::InlineTooLong));
        assert_eq!(frame_len(b"?x", &limits), Err(ProtocolError::UnknownType(b'?')));
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
