//! Finding a request's keys from key specs, as Redis's `getKeysUsingKeySpecs` does.

use bytes::Bytes;

use super::facts::{BeginSearch, FindKeys, KeySpec};

/// The arguments contradict the key spec (a bad `numkeys`, say): the server that gets the
/// command will answer the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyError;

/// The fixed argument index of the only key, when the specs say there is exactly one there.
pub(crate) fn fixed_key(specs: &[KeySpec]) -> Option<usize> {
    match specs {
        [KeySpec { begin: BeginSearch::Index(i), find: FindKeys::Range { last_key: 0, .. }, .. }] if *i > 0 => {
            Some(*i as usize)
        }
        _ => None,
    }
}

/// Appends the argument indexes of the keys in `args` to `out`, sorted, each once.
pub(crate) fn find(specs: &[KeySpec], args: &[Bytes], out: &mut Vec<usize>) -> Result<(), KeyError> {
    let argc = args.len() as i64;
    let start = out.len();
    for spec in specs {
        let first = match spec.begin {
            BeginSearch::Index(i) => i as i64,
            BeginSearch::Keyword { keyword, start_from } => match find_keyword(args, keyword, start_from as i64) {
                Some(i) => i + 1,
                None => continue,
            },
            BeginSearch::Unknown => continue,
        };
        let (first, last, step) = match spec.find {
            FindKeys::Range { last_key, step, limit } => {
                let last_key = last_key as i64;
                let last = if last_key >= 0 {
                    first + last_key
                } else if limit <= 1 {
                    argc + last_key
                } else {
                    first + ((argc - first) / limit as i64 + last_key)
                };
                (first, last, step as i64)
            }
            FindKeys::KeyNum { key_num_index, first_key, step } => {
                let index = first + key_num_index as i64;
                let count = usize::try_from(index)
                    .ok()
                    .and_then(|i| args.get(i))
                    .and_then(|a| std::str::from_utf8(a).ok()?.parse::<i64>().ok())
                    // More keys than arguments is a bad count; refusing it here also keeps
                    // the arithmetic below far from overflow (`EVAL s 9223372036854775807`).
                    .filter(|n| (0..=argc).contains(n))
                    .ok_or(KeyError)?;
                let first = first + first_key as i64;
                (first, first + (count - 1) * step as i64, step as i64)
            }
            FindKeys::Unknown => continue,
        };
        if step <= 0 {
            continue;
        }
        let mut i = first;
        while i <= last {
            if i < 1 || i >= argc {
                return Err(KeyError);
            }
            out.push(i as usize);
            i += step;
        }
    }
    let found = &mut out[start..];
    found.sort_unstable();
    let mut unique = start;
    for i in start..out.len() {
        if unique == start || out[unique - 1] != out[i] {
            out[unique] = out[i];
            unique += 1;
        }
    }
    out.truncate(unique);
    Ok(())
}

/// The index of `keyword` in `args`, searched as Redis does: forward from `start_from`, or
/// backward from `argc + start_from` when it is negative.
fn find_keyword(args: &[Bytes], keyword: &str, start_from: i64) -> Option<i64> {
    let argc = args.len() as i64;
    let (start, end) = if start_from > 0 { (start_from, argc - 1) } else { (argc + start_from, 0) };
    let mut i = start;
    while i != end {
        if i >= argc || i < 1 {
            break;
        }
        if args[i as usize].eq_ignore_ascii_case(keyword.as_bytes()) {
            return Some(i);
        }
        i += if start <= end { 1 } else { -1 };
    }
    None
}
