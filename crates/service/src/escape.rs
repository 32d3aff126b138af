//! Bytes from the network made safe to print in logs.
//!
//! Keys and values are binary: a NUL or a newline written raw turns a log into a "binary
//! file" or forges log lines. [`printable`] escapes them as Redis's `sdscatrepr` does (the
//! form `redis-cli` and `MONITOR` show), without the surrounding quotes.

use std::fmt;

/// Bytes shown with non-printable bytes escaped; see [`printable`].
#[derive(Debug, Clone, Copy)]
pub struct Printable<'a>(&'a [u8]);

/// Shows `bytes` as text: printable ASCII as is; `\\`, `"`, `\n`, `\r`, `\t`, `\a` and `\b`
/// as those escapes; every other byte (controls, DEL, bytes of non-ASCII text) as `\xHH`.
/// Formatting allocates nothing.
///
/// ```
/// assert_eq!(service::escape::printable(b"user:1001").to_string(), "user:1001");
/// assert_eq!(service::escape::printable(b"a\0b\n\"c\"").to_string(), r#"a\x00b\n\"c\""#);
/// ```
pub fn printable(bytes: &[u8]) -> Printable<'_> {
    Printable(bytes)
}

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while !rest.is_empty() {
            // Runs of plain bytes are written in one piece.
            let plain = rest.iter().position(|&b| needs_escape(b)).unwrap_or(rest.len());
            let (run, tail) = rest.split_at(plain);
            // Plain bytes are printable ASCII, so always valid UTF-8.
            f.write_str(std::str::from_utf8(run).map_err(|_| fmt::Error)?)?;
            let Some((&byte, tail)) = tail.split_first() else { break };
            match byte {
                b'\\' => f.write_str("\\\\")?,
                b'"' => f.write_str("\\\"")?,
                b'\n' => f.write_str("\\n")?,
                b'\r' => f.write_str("\\r")?,
                b'\t' => f.write_str("\\t")?,
                0x07 => f.write_str("\\a")?,
                0x08 => f.write_str("\\b")?,
                other => write!(f, "\\x{other:02x}")?,
            }
            rest = tail;
        }
        Ok(())
    }
}

/// Whether `byte` is written escaped: anything but printable ASCII, and the backslash and
/// double quote that escapes themselves use.
fn needs_escape(byte: u8) -> bool {
    !(0x20..0x7f).contains(&byte) || byte == b'\\' || byte == b'"'
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escapes_as_redis_sdscatrepr_does() {
        let cases: [(&[u8], &str); 7] = [
            (b"plain text: 1-2_3", "plain text: 1-2_3"),
            (b"", ""),
            (b"nul\0here", "nul\\x00here"),
            (b"line\r\nbreak\ttab", "line\\r\\nbreak\\ttab"),
            (b"quote \" and back\\slash", "quote \\\" and back\\\\slash"),
            (b"\x07\x08\x1b\x7f", "\\a\\b\\x1b\\x7f"),
            ("é".as_bytes(), "\\xc3\\xa9"),
        ];
        for (bytes, shown) in cases {
            assert_eq!(printable(bytes).to_string(), shown, "{bytes:?}");
        }
    }

    #[test]
    fn output_is_one_line_of_printable_ascii() {
        let every_byte: Vec<u8> = (0..=255).collect();
        let shown = printable(&every_byte).to_string();
        assert!(shown.bytes().all(|b| (0x20..0x7f).contains(&b)), "{shown}");
    }
}
