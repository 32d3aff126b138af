//! The encoder: every reply byte the project sends is written by one of these functions.
//!
//! They append to a buffer, so a pipelined batch of replies is built in one buffer and
//! flushed with one write.

use bytes::{BufMut, BytesMut};

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

/// `$-1\r\n`: the null bulk string, a miss.
pub fn null(out: &mut BytesMut) {
    out.put_slice(b"$-1\r\n");
}

/// `*-1\r\n`: the null array.
pub fn null_array(out: &mut BytesMut) {
    out.put_slice(b"*-1\r\n");
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
    fn command_is_multibulk() {
        let mut out = BytesMut::new();
        command(&mut out, &["GET", "k"]);
        assert_eq!(&out[..], b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }
}
