//! A client's request: a multibulk array or an inline line, decided by the first byte.

use bytes::{Bytes, BytesMut};

use crate::frame::{find_crlf, parse_int, quick_number};
use crate::{inline, Limits, ProtocolError};

/// One command from a client: its arguments, the command name first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The arguments, binary safe; `args[0]` is the command name as sent.
    pub args: Args,
    /// The exact bytes of the request when it arrived as a multibulk array: a proxy can
    /// forward them unchanged. `None` for inline requests.
    pub raw: Option<Bytes>,
}

/// A request's arguments: up to three inline (GET, SET and most keyed commands), so a
/// request allocates nothing beyond the bytes it arrived in. A separate list per request
/// was 5% of the proxy's instructions at pipeline 16 (callgrind): a pipeline frees more of
/// them at once than glibc's per-thread cache keeps, and the rest took the slow path.
pub type Args = smallvec::SmallVec<[Bytes; 3]>;

impl Request {
    /// A request built from arguments (no raw bytes).
    pub fn new(args: Vec<Bytes>) -> Self {
        Self { args: Args::from_vec(args), raw: None }
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
///
/// This starts from scratch on every call: a connection that reads a large request in many
/// pieces should keep a [`RequestParser`] instead, which resumes where it stopped.
pub fn parse_request(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Request>, ProtocolError> {
    RequestParser::default().parse(buf, limits)
}

/// A resumable request parser: one per connection, fed the same buffer on every call.
///
/// While a multibulk request is incomplete, it remembers how many arguments it has already
/// found and where, and an incomplete inline line how far it was searched, so every byte is
/// examined a bounded number of times however the request is cut into reads (Redis keeps
/// the same progress in its client struct: `multibulklen`, `bulklen`, `qb_pos`). The caller
/// may only append to the buffer between calls; anything else must be followed by
/// [`RequestParser::reset`].
#[derive(Debug, Default)]
pub struct RequestParser {
    /// Progress through the multibulk request at the front of the buffer, if one is partial.
    multibulk: Option<Box<Multibulk>>,
    /// Bytes of an incomplete inline line already searched for its newline.
    inline_scanned: usize,
}

/// How far a partial multibulk request has been parsed.
#[derive(Debug)]
struct Multibulk {
    /// Arguments the header announced.
    count: usize,
    /// Where each argument found so far lies in the buffer.
    spans: Vec<(usize, usize)>,
    /// Where the next argument's `$` line starts.
    pos: usize,
    /// The length of the next argument, once its `$` line has been read (its data starts at
    /// `pos`).
    bulk_len: Option<usize>,
}

impl RequestParser {
    /// A parser with nothing in progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets any progress: call it when the buffer was cleared or replaced.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Parses the next request at the front of `buf` and consumes its bytes, resuming the
    /// work of the previous call on an incomplete request; same results as [`parse_request`].
    pub fn parse(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<Option<Request>, ProtocolError> {
        let result = self.parse_next(buf, limits);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn parse_next(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<Option<Request>, ProtocolError> {
        loop {
            let parsed = match buf.first() {
                None => return Ok(None),
                Some(b'*') => self.multibulk(buf, limits)?,
                Some(_) => match inline::parse(buf, limits, &mut self.inline_scanned)? {
                    inline::Line::Incomplete => Parsed::Incomplete,
                    inline::Line::Blank => Parsed::Empty,
                    inline::Line::Args(args) => Parsed::Request(Request::new(args)),
                },
            };
            match parsed {
                Parsed::Incomplete => return Ok(None),
                Parsed::Empty => continue,
                Parsed::Request(request) => return Ok(Some(request)),
            }
        }
    }

    fn multibulk(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<Parsed, ProtocolError> {
        let mut state = match self.multibulk.take() {
            Some(state) => *state,
            None => {
                let Some((count, header_end)) = length_line(buf, 1, limits.max_inline_len)? else {
                    return Ok(Parsed::Incomplete);
                };
                let count = count.ok_or(ProtocolError::InvalidMultibulkLength)?;
                let pos = header_end + 2;
                if count <= 0 {
                    let _ = buf.split_to(pos);
                    return Ok(Parsed::Empty);
                }
                let count = usize::try_from(count).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
                if count > limits.max_args {
                    return Err(ProtocolError::InvalidMultibulkLength);
                }
                if count <= FAST_ARGS {
                    // The common case, a short request wholly in the buffer: its spans stay on
                    // the stack. A partial one keeps the progress made here.
                    let mut spans = [(0, 0); FAST_ARGS];
                    let (mut pos, mut bulk_len) = (pos, None);
                    let mut found = 0;
                    while found < count {
                        match next_arg(buf, &mut pos, &mut bulk_len, limits)? {
                            Some(span) => spans[found] = span,
                            None => break,
                        }
                        found += 1;
                    }
                    if found == count {
                        return Ok(Parsed::Request(take_request(buf, pos, &spans[..count])));
                    }
                    let partial = Multibulk { count, spans: spans[..found].to_vec(), pos, bulk_len };
                    return Ok(self.suspend(partial));
                }
                // The count is untrusted: reserve little up front and grow only as arguments
                // arrive.
                Multibulk { count, spans: Vec::with_capacity(count.min(16)), pos, bulk_len: None }
            }
        };
        while state.spans.len() < state.count {
            match next_arg(buf, &mut state.pos, &mut state.bulk_len, limits)? {
                Some(span) => state.spans.push(span),
                None => return Ok(self.suspend(state)),
            }
        }
        Ok(Parsed::Request(take_request(buf, state.pos, &state.spans)))
    }

    /// Keeps a partial request's progress for the next call.
    fn suspend(&mut self, state: Multibulk) -> Parsed {
        self.multibulk = Some(Box::new(state));
        Parsed::Incomplete
    }
}

/// Requests with at most this many arguments are parsed without a heap list of spans.
const FAST_ARGS: usize = 8;

/// Reads the bulk argument at `pos`: its span once it is wholly in `buf`, with `pos` moved
/// past it; `None` when more bytes are needed, with `pos` and `bulk_len` kept so that the
/// next call resumes without reading the `$` line again.
fn next_arg(
    buf: &[u8],
    pos: &mut usize,
    bulk_len: &mut Option<usize>,
    limits: &Limits,
) -> Result<Option<(usize, usize)>, ProtocolError> {
    let len = match *bulk_len {
        Some(len) => len,
        None => {
            match buf.get(*pos) {
                None => return Ok(None),
                Some(b'$') => {}
                Some(&other) => return Err(ProtocolError::ExpectedBulk(other)),
            }
            let Some((len, line_end)) = length_line(buf, *pos + 1, limits.max_inline_len)? else {
                return Ok(None);
            };
            let len = len
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= limits.max_bulk_len)
                .ok_or(ProtocolError::InvalidBulkLength)?;
            *pos = line_end + 2;
            *bulk_len = Some(len);
            len
        }
    };
    let start = *pos;
    if buf.len() < start + len + 2 {
        return Ok(None);
    }
    if &buf[start + len..start + len + 2] != b"\r\n" {
        return Err(ProtocolError::MissingCrlf);
    }
    *pos = start + len + 2;
    *bulk_len = None;
    Ok(Some((start, start + len)))
}

/// The number on the length line that starts at `from` (just past a `*` or a `$`), and where
/// its `\r\n` begins; `None` while the line is incomplete, a number of `None` when the line
/// is not an integer. The one-pass [`quick_number`] reads the common line; anything else
/// takes [`find_crlf`] and [`parse_int`], which know every error.
#[inline]
fn length_line(buf: &[u8], from: usize, max: usize) -> Result<Option<(Option<i64>, usize)>, ProtocolError> {
    if let Some((n, end)) = quick_number(buf, from, max) {
        return Ok(Some((i64::try_from(n).ok(), end)));
    }
    let Some(end) = find_crlf(buf, from, max)? else { return Ok(None) };
    Ok(Some((parse_int(&buf[from..end]), end)))
}

/// Takes the request's `len` bytes off the front of `buf`: its arguments are `spans` of them.
fn take_request(buf: &mut BytesMut, len: usize, spans: &[(usize, usize)]) -> Request {
    let raw = buf.split_to(len).freeze();
    let mut args = Args::with_capacity(spans.len());
    for &(start, end) in spans {
        args.push(raw.slice(start..end));
    }
    Request { args, raw: Some(raw) }
}

/// What one parsing step found.
enum Parsed {
    /// Not enough bytes yet.
    Incomplete,
    /// An empty line or array was consumed; look again.
    Empty,
    /// A whole request.
    Request(Request),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(input: &[u8]) -> Result<Option<Request>, ProtocolError> {
        parse_request(&mut BytesMut::from(input), &Limits::default())
    }

    fn args(input: &[u8]) -> Vec<Bytes> {
        parse_one(input).unwrap().unwrap().args.to_vec()
    }

    #[test]
    fn multibulk_is_binary_safe_and_keeps_raw_bytes() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\r\n\0b\r\n";
        let request = parse_one(input).unwrap().unwrap();
        assert_eq!(&request.args[..], ["SET", "k", "a\r\n\0b"]);
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
            names.push(request.args.to_vec());
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

    /// Feeds `input` to one parser `chunk` bytes at a time; every request it yields.
    fn parse_in_chunks(input: &[u8], chunk: usize, limits: &Limits) -> Result<Vec<Request>, ProtocolError> {
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut requests = vec![];
        for piece in input.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(request) = parser.parse(&mut buf, limits)? {
                requests.push(request);
            }
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        Ok(requests)
    }

    #[test]
    fn a_big_request_fed_in_chunks_parses_as_a_whole() {
        let mut input = BytesMut::new();
        let mut args: Vec<Vec<u8>> = vec![b"MSET".to_vec()];
        for i in 0..5_000 {
            args.push(format!("key:{i}").into_bytes());
            args.push(vec![b'v'; i % 40]);
        }
        crate::write::command(&mut input, &args);
        input.extend_from_slice(b"PING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nECHO \"a b\"\n");
        let whole = parse_in_chunks(&input, input.len(), &Limits::default()).unwrap();
        assert_eq!(whole.len(), 4);
        assert_eq!(whole[0].args.len(), args.len());
        assert_eq!(whole[0].args[1], "key:0");
        assert_eq!(&whole[3].args[..], ["ECHO", "a b"]);
        for chunk in [1, 2, 3, 7, 100, 4096] {
            assert_eq!(parse_in_chunks(&input, chunk, &Limits::default()).unwrap(), whole, "chunk {chunk}");
        }
    }

    #[test]
    fn chunked_input_finds_the_same_errors() {
        let limits = Limits { max_bulk_len: 10, max_args: 2, max_inline_len: 16 };
        let cases: [(&[u8], ProtocolError); 4] = [
            (b"*2\r\n$1\r\na\r\n+b\r\n", ProtocolError::ExpectedBulk(b'+')),
            (b"*1\r\n$11\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$3\r\nGETX\r\n", ProtocolError::MissingCrlf),
            (&[b'a'; 40], ProtocolError::InlineTooLong),
        ];
        for (input, error) in cases {
            for chunk in [1, 2, 5, input.len()] {
                assert_eq!(parse_in_chunks(input, chunk, &limits), Err(error.clone()), "{input:?} by {chunk}");
            }
        }
    }

    #[test]
    fn a_million_arguments_in_small_reads_take_linear_time() {
        const ARGS: usize = 1 << 20;
        let mut input = format!("*{}\r\n$4\r\nMGET\r\n", ARGS + 1).into_bytes();
        for _ in 0..ARGS {
            input.extend_from_slice(b"$1\r\nk\r\n");
        }
        let started = std::time::Instant::now();
        let requests = parse_in_chunks(&input, 16 * 1024, &Limits { max_args: ARGS + 1, ..Limits::default() }).unwrap();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].args.len(), ARGS + 1);
        // Rescanning from the start on every read takes minutes in a debug build.
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
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
