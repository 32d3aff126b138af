//! Redis's glob patterns for KEYS and SCAN MATCH: `*`, `?`, `[abc]`, `[^a-z]`, `\x`.

/// Whether `text` matches the glob `pattern`.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative with one backtrack point for the last `*`: linear in practice, never recursive.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if let Some(step) = match_one(pattern, p, text[t]) {
            p += step;
            t += 1;
        } else if pattern.get(p) == Some(&b'*') {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&b| b == b'*')
}

/// If the pattern element at `p` matches `c`, its length in the pattern.
fn match_one(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    match *pattern.get(p)? {
        b'*' => None,
        b'?' => Some(1),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == c).then_some(2),
        b'[' => {
            let mut i = p + 1;
            let negate = pattern.get(i) == Some(&b'^');
            i += usize::from(negate);
            let mut matched = false;
            while i < pattern.len() && pattern[i] != b']' {
                if pattern[i] == b'\\' && i + 1 < pattern.len() {
                    matched |= pattern[i + 1] == c;
                    i += 2;
                } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
                    let (lo, hi) = (pattern[i].min(pattern[i + 2]), pattern[i].max(pattern[i + 2]));
                    matched |= (lo..=hi).contains(&c);
                    i += 3;
                } else {
                    matched |= pattern[i] == c;
                    i += 1;
                }
            }
            (matched != negate).then_some(i + 1 - p)
        }
        literal => (literal == c).then_some(1),
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn redis_examples() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything", true),
            ("*", "", true),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("user:*", "user:1001", true),
            ("user:*", "session:abc", false),
            ("*:1*1", "user:1001", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(glob_match(pattern.as_bytes(), text.as_bytes()), *expected, "{pattern} vs {text}");
        }
    }
}
