//! The seed's programs took Go flags (`-port 6381`); clap wants `--port 6381`.

use std::ffi::OsString;

/// The process arguments with Go-style long flags rewritten for clap: `-port 6381` becomes
/// `--port 6381` and `-port=6381` becomes `--port=6381`. Short flags (`-h`), negative numbers
/// and values are left alone.
pub fn go_style_args() -> Vec<OsString> {
    rewrite(std::env::args_os())
}

fn rewrite(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args.into_iter()
        .enumerate()
        .map(|(i, arg)| match arg.to_str() {
            Some(text) if i > 0 && is_go_long_flag(text) => OsString::from(format!("-{text}")),
            _ => arg,
        })
        .collect()
}

fn is_go_long_flag(arg: &str) -> bool {
    let Some(rest) = arg.strip_prefix('-') else {
        return false;
    };
    let name = rest.split('=').next().unwrap_or_default();
    name.len() > 1 && !rest.starts_with('-') && name.starts_with(|c: char| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Vec<String> {
        rewrite(args.iter().map(OsString::from)).into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn go_flags_become_long_flags() {
        assert_eq!(
            run(&["server", "-port", "6381", "-name", "cache-A"]),
            ["server", "--port", "6381", "--name", "cache-A"]
        );
        assert_eq!(run(&["proxy", "-replicas=5"]), ["proxy", "--replicas=5"]);
    }

    #[test]
    fn others_are_kept() {
        assert_eq!(run(&["proxy", "--port", "1", "-h", "-5", "x"]), ["proxy", "--port", "1", "-h", "-5", "x"]);
    }
}
