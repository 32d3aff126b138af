//! The encoder: every reply byte the project sends is written by one of these functions.
//!
//! They append to a buffer, so a pipelined batch of replies is built in one buffer and
//! flushed with one write.
//!
//! Where RESP3 (`HELLO 3`) replies differ from RESP2's, the writer takes the client's
//! [`Protocol`] and picks the form: [`null`], [`null_array`], [`map_header`], [`set_header`],
//! [`double`], [`boolean`], [`verbatim`]. A command writes its reply once, for both protocols.
//! The others ([`push_header`], [`big_number`], [`blob_error`], ...) are RESP3's own types.

use bytes::{BufMut, BytesMut};

use crate::Protocol;

/// Longest text sent as a simple string by [`text`]; longer text goes as a bulk string.
const MAX_SIMPLE_TEXT: usize = 4096;

/// `+text\r\n`. The caller guarantees `text` holds no CR or LF.
pub fn simple(out: &mut BytesMut, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(b'+');
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

/// `-text\r\n`, for example `error(out, b"ERR unknown command")`.
pub fn error(out: &mut BytesMut, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(b'-');
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

/// `:n\r\n`.
pub fn integer(out: &mut BytesMut, n: i64) {
    line(out, b':', n);
}

/// `$len\r\ndata\r\n`: binary safe.
pub fn bulk(out: &mut BytesMut, data: &[u8]) {
    out.reserve(data.len() + 16);
    line(out, b'$', data.len() as i64);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// A missing value (a miss): `$-1\r\n`, RESP2's null bulk string, or `_\r\n` in RESP3.
pub fn null(out: &mut BytesMut, protocol: Protocol) {
    out.put_slice(match protocol {
        Protocol::Resp2 => b"$-1\r\n",
        Protocol::Resp3 => b"_\r\n",
    });
}

/// A missing array: `*-1\r\n`, RESP2's null array, or `_\r\n` in RESP3.
pub fn null_array(out: &mut BytesMut, protocol: Protocol) {
    out.put_slice(match protocol {
        Protocol::Resp2 => b"*-1\r\n",
        Protocol::Resp3 => b"_\r\n",
    });
}

/// The header of `pairs` key-value pairs that follow: `%pairs\r\n` in RESP3, an array of
/// `2 * pairs` elements in RESP2 (as Redis's `addReplyMapLen`).
pub fn map_header(out: &mut BytesMut, protocol: Protocol, pairs: usize) {
    match protocol {
        Protocol::Resp2 => line(out, b'*', (pairs * 2) as i64),
        Protocol::Resp3 => line(out, b'%', pairs as i64),
    }
}

/// The header of a set of `n` members: `~n\r\n` in RESP3, an array in RESP2.
pub fn set_header(out: &mut BytesMut, protocol: Protocol, n: usize) {
    match protocol {
        Protocol::Resp2 => line(out, b'*', n as i64),
        Protocol::Resp3 => line(out, b'~', n as i64),
    }
}

/// `>n\r\n`: the header of a RESP3 push message of `n` elements.
pub fn push_header(out: &mut BytesMut, n: usize) {
    line(out, b'>', n as i64);
}

/// `|n\r\n`: the header of a RESP3 attribute of `n` pairs (the reply it annotates follows).
pub fn attribute_header(out: &mut BytesMut, n: usize) {
    line(out, b'|', n as i64);
}

/// A double: `,1.5\r\n` in RESP3, a bulk string (`$3\r\n1.5`) in RESP2, formatted as Redis
/// formats doubles (`inf`, `-inf`, `nan`, shortest round-trip digits otherwise).
pub fn double(out: &mut BytesMut, protocol: Protocol, value: f64) {
    let text = format_double(value);
    match protocol {
        Protocol::Resp2 => bulk(out, text.as_bytes()),
        Protocol::Resp3 => double_text(out, text.as_bytes()),
    }
}

/// `,text\r\n`: a RESP3 double given as its text.
pub fn double_text(out: &mut BytesMut, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(b',');
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

/// A double's text as Redis writes it.
pub fn format_double(value: f64) -> String {
    if value.is_nan() {
        "nan".into()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        value.to_string()
    }
}

/// A boolean: `#t\r\n` / `#f\r\n` in RESP3, `:1` / `:0` in RESP2.
pub fn boolean(out: &mut BytesMut, protocol: Protocol, value: bool) {
    match protocol {
        Protocol::Resp2 => integer(out, i64::from(value)),
        Protocol::Resp3 => out.put_slice(if value { b"#t\r\n" } else { b"#f\r\n" }),
    }
}

/// `(digits\r\n`: a RESP3 big number. The caller passes decimal digits (an optional `-`).
pub fn big_number(out: &mut BytesMut, digits: &[u8]) {
    out.reserve(digits.len() + 3);
    out.put_u8(b'(');
    out.put_slice(digits);
    out.put_slice(b"\r\n");
}

/// Text for people (INFO, CLIENT INFO): RESP3's verbatim string `=len\r\ntxt:...`, or a
/// bulk string in RESP2, as Redis's `addReplyVerbatim`.
pub fn verbatim(out: &mut BytesMut, protocol: Protocol, text: &[u8]) {
    match protocol {
        Protocol::Resp2 => bulk(out, text),
        Protocol::Resp3 => verbatim_with(out, b"txt", text),
    }
}

/// `=len\r\nfmt:text\r\n`: a RESP3 verbatim string; `format` is three bytes (`txt`, `mkd`).
pub fn verbatim_with(out: &mut BytesMut, format: &[u8], text: &[u8]) {
    out.reserve(text.len() + 20);
    line(out, b'=', (format.len() + 1 + text.len()) as i64);
    out.put_slice(format);
    out.put_u8(b':');
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

/// `!len\r\ntext\r\n`: a RESP3 binary-safe error.
pub fn blob_error(out: &mut BytesMut, text: &[u8]) {
    out.reserve(text.len() + 16);
    line(out, b'!', text.len() as i64);
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

/// `*n\r\n`: the header of an array whose `n` elements follow.
pub fn array_header(out: &mut BytesMut, n: usize) {
    line(out, b'*', n as i64);
}

/// A string meant for people: a simple string (`+key`, as the seed lists keys) when it
/// can be one, otherwise a bulk string, so binary data stays intact.
pub fn text(out: &mut BytesMut, data: &[u8]) {
    if data.len() <= MAX_SIMPLE_TEXT && !data.iter().any(|&b| b == b'\r' || b == b'\n') {
        simple(out, data);
    } else {
        bulk(out, data);
    }
}

/// A request as a multibulk array of bulk strings: what a client sends to a server.
pub fn command<A: AsRef<[u8]>>(out: &mut BytesMut, args: &[A]) {
    array_header(out, args.len());
    for arg in args {
        bulk(out, arg.as_ref());
    }
}

fn line(out: &mut BytesMut, kind: u8, n: i64) {
    let mut digits = [0u8; 20];
    let text = format_i64(n, &mut digits);
    out.reserve(text.len() + 3);
    out.put_u8(kind);
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

/// Formats without allocating: replies are written on every request's hot path.
fn format_i64(n: i64, digits: &mut [u8; 20]) -> &[u8] {
    let mut i = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        digits[i] = b'-';
    }
    &digits[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_format_like_display() {
        for n in [0, 1, -1, 9, 10, 12345, i64::MIN, i64::MAX] {
            let mut out = BytesMut::new();
            integer(&mut out, n);
            assert_eq!(out, format!(":{n}\r\n").as_bytes());
        }
    }

    #[test]
    fn text_falls_back_to_bulk_for_binary() {
        let mut out = BytesMut::new();
        text(&mut out, b"user:1");
        text(&mut out, b"a\r\nb");
        assert_eq!(&out[..], b"+user:1\r\n$4\r\na\r\nb\r\n");
    }

    #[test]
    fn protocol_aware_writers_keep_resp2_bytes() {
        let mut out = BytesMut::new();
        null(&mut out, Protocol::Resp2);
        null_array(&mut out, Protocol::Resp2);
        map_header(&mut out, Protocol::Resp2, 2);
        set_header(&mut out, Protocol::Resp2, 1);
        double(&mut out, Protocol::Resp2, 1.5);
        boolean(&mut out, Protocol::Resp2, true);
        verbatim(&mut out, Protocol::Resp2, b"a:1");
        assert_eq!(&out[..], b"$-1\r\n*-1\r\n*4\r\n*1\r\n$3\r\n1.5\r\n:1\r\n$3\r\na:1\r\n");
    }

    #[test]
    fn protocol_aware_writers_in_resp3() {
        let mut out = BytesMut::new();
        null(&mut out, Protocol::Resp3);
        null_array(&mut out, Protocol::Resp3);
        map_header(&mut out, Protocol::Resp3, 2);
        set_header(&mut out, Protocol::Resp3, 1);
        double(&mut out, Protocol::Resp3, 1.5);
        double(&mut out, Protocol::Resp3, f64::NEG_INFINITY);
        boolean(&mut out, Protocol::Resp3, false);
        verbatim(&mut out, Protocol::Resp3, b"a:1");
        assert_eq!(&out[..], b"_\r\n_\r\n%2\r\n~1\r\n,1.5\r\n,-inf\r\n#f\r\n=7\r\ntxt:a:1\r\n");
    }

    #[test]
    fn command_is_multibulk() {
        let mut out = BytesMut::new();
        command(&mut out, &["GET", "k"]);
        assert_eq!(&out[..], b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }
}
