//! Inline requests: one line of text, as typed in `nc` or `telnet`.
//!
//! Arguments split on whitespace; double quotes (with `\n`, `\r`, `\t`, `\\`, `\"`, `\xHH`
//! escapes) and single quotes group words, as in Redis. One rule keeps the seed's sessions
//! working: in `SET key value...` the value is the rest of the line, spaces kept
//! (`SET greeting hello world` stores `hello world`), unless what follows the value reads as
//! SET options (`SET k v EX 10`).

use bytes::{Bytes, BytesMut};

use crate::{Limits, ProtocolError};

/// What one look at the front of the buffer found.
pub(crate) enum Line {
    /// No newline yet.
    Incomplete,
    /// A line with nothing on it was consumed; look again.
    Blank,
    /// A line's arguments, the command name first.
    Args(Vec<Bytes>),
}

/// One argument of an inline line.
struct Token {
    /// The argument after quote processing.
    value: Vec<u8>,
    /// Where it starts in the line.
    start: usize,
    /// Whether it was quoted.
    quoted: bool,
}

/// Parses the inline line at the front of `buf`. `scanned` is how much of an incomplete line
/// earlier calls already searched for its newline: the search resumes there, and the count
/// is updated while the line stays incomplete and reset to 0 once it is taken.
pub(crate) fn parse(buf: &mut BytesMut, limits: &Limits, scanned: &mut usize) -> Result<Line, ProtocolError> {
    let limit = limits.max_inline_len + 1;
    let from = (*scanned).min(buf.len()).min(limit);
    let found = buf[from..buf.len().min(limit)].iter().position(|&b| b == b'\n');
    let Some(newline) = found.map(|i| from + i) else {
        if buf.len() > limits.max_inline_len {
            return Err(ProtocolError::InlineTooLong);
        }
        *scanned = buf.len();
        return Ok(Line::Incomplete);
    };
    *scanned = 0;
    let line = buf.split_to(newline + 1).freeze();
    let text = line.slice(..trim_end(&line));
    let tokens = tokenize(&text)?;
    if tokens.is_empty() {
        return Ok(Line::Blank);
    }
    let mut args: Vec<Bytes> = tokens.iter().map(|t| Bytes::from(t.value.clone())).collect();
    if is_set_with_spaced_value(&tokens) {
        args.truncate(2);
        args.push(text.slice(tokens[2].start..));
    }
    Ok(Line::Args(args))
}

fn trim_end(line: &[u8]) -> usize {
    line.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1)
}

fn is_set_with_spaced_value(tokens: &[Token]) -> bool {
    tokens.len() > 3
        && tokens[0].value.eq_ignore_ascii_case(b"SET")
        && !tokens[2].quoted
        && !tokens[3..].iter().any(|t| t.quoted)
        && !reads_as_set_options(&tokens[3..])
}

/// Whether `tokens` parse as SET's options: `EX s`, `PX ms`, `EXAT t`, `PXAT t`, `NX`, `XX`,
/// `KEEPTTL`, `GET`.
fn reads_as_set_options(tokens: &[Token]) -> bool {
    let mut i = 0;
    while let Some(token) = tokens.get(i) {
        let word = token.value.to_ascii_uppercase();
        match &word[..] {
            b"NX" | b"XX" | b"KEEPTTL" | b"GET" => i += 1,
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if i + 1 < tokens.len() => i += 2,
            _ => return false,
        }
    }
    true
}

fn tokenize(line: &[u8]) -> Result<Vec<Token>, ProtocolError> {
    let mut tokens = Vec::new();
    let mut i = 0;
    loop {
        while line.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        let Some(&first) = line.get(i) else {
            return Ok(tokens);
        };
        let start = i;
        let mut value = Vec::new();
        let quoted = first == b'"' || first == b'\'';
        if quoted {
            i += 1;
            loop {
                let Some(&b) = line.get(i) else {
                    return Err(ProtocolError::UnbalancedQuotes);
                };
                i += 1;
                if b == first {
                    break;
                }
                if b == b'\\' && first == b'"' {
                    let (byte, used) = unescape(line.get(i..).unwrap_or_default());
                    value.push(byte);
                    i += used;
                } else if b == b'\\' && line.get(i) == Some(&b'\'') {
                    value.push(b'\'');
                    i += 1;
                } else {
                    value.push(b);
                }
            }
            // A closing quote must end the argument, as in Redis.
            if line.get(i).is_some_and(|b| !b.is_ascii_whitespace()) {
                return Err(ProtocolError::UnbalancedQuotes);
            }
        } else {
            while let Some(&b) = line.get(i).filter(|b| !b.is_ascii_whitespace()) {
                value.push(b);
                i += 1;
            }
        }
        tokens.push(Token { value, start, quoted });
    }
}

/// Decodes the escape after a backslash inside double quotes: (byte, bytes consumed).
fn unescape(rest: &[u8]) -> (u8, usize) {
    let hex = |b: u8| char::from(b).to_digit(16);
    match rest {
        [b'x', h, l, ..] if hex(*h).is_some() && hex(*l).is_some() => {
            let value = hex(*h).unwrap_or_default() * 16 + hex(*l).unwrap_or_default();
            (value as u8, 3)
        }
        [b'n', ..] => (b'\n', 1),
        [b'r', ..] => (b'\r', 1),
        [b't', ..] => (b'\t', 1),
        [b'b', ..] => (0x08, 1),
        [b'a', ..] => (0x07, 1),
        [other, ..] => (*other, 1),
        [] => (b'\\', 0),
    }
}

#[cfg(test)]
mod tests {
    use crate::{parse_request, Limits, ProtocolError};
    use bytes::{Bytes, BytesMut};

    fn args(input: &str) -> Vec<Bytes> {
        parse_request(&mut BytesMut::from(input.as_bytes()), &Limits::default()).unwrap().unwrap().args.to_vec()
    }

    #[test]
    fn lines_end_in_lf_or_crlf() {
        assert_eq!(args("GET user:1001\n"), ["GET", "user:1001"]);
        assert_eq!(args("GET user:1001\r\n"), ["GET", "user:1001"]);
        assert_eq!(args("  ping  \r\n"), ["ping"]);
    }

    #[test]
    fn seed_set_keeps_the_rest_of_the_line() {
        assert_eq!(args("SET greeting hello   big world \r\n"), ["SET", "greeting", "hello   big world"]);
        assert_eq!(args("set k v\n"), ["set", "k", "v"]);
    }

    #[test]
    fn set_options_stay_options() {
        assert_eq!(args("SET k v EX 10\r\n"), ["SET", "k", "v", "EX", "10"]);
        assert_eq!(args("SET k v nx px 5\r\n"), ["SET", "k", "v", "nx", "px", "5"]);
        assert_eq!(args("SET k v EX\r\n"), ["SET", "k", "v EX"]);
    }

    #[test]
    fn quotes_group_and_escape() {
        assert_eq!(args("SET k \"a b\\r\\n\\x41\"\n"), ["SET", "k", "a b\r\nA"]);
        assert_eq!(args("ECHO 'it\\'s'\n"), ["ECHO", "it's"]);
        let err = parse_request(&mut BytesMut::from(&b"GET \"k\n"[..]), &Limits::default());
        assert_eq!(err, Err(ProtocolError::UnbalancedQuotes));
    }

    #[test]
    fn incomplete_line_waits() {
        let mut buf = BytesMut::from(&b"GET k"[..]);
        assert_eq!(parse_request(&mut buf, &Limits::default()), Ok(None));
        assert_eq!(&buf[..], b"GET k");
    }
}
