//! Fuzzing of the codec and the command table, on stable Rust, inside `cargo test`.
//!
//! One target, [`check`], takes any bytes and checks the properties that must hold for every
//! input a client or a backend could send:
//!
//! - nothing panics: [`resp::RequestParser`], [`resp::parse_request`] (multibulk and inline),
//!   [`Frame::parse`], [`frame_len`], [`command::lookup`] and [`Command::key_positions`];
//! - the same bytes cut into random reads parse exactly as the whole: the same requests or
//!   frames, the same error, the same bytes left over;
//! - [`frame_len`] agrees with what [`Frame::parse`] consumes, and a parsed frame re-encodes to
//!   bytes that parse back to it;
//! - the bytes, read as an [`Unstructured`] recipe, build frames and requests that round-trip:
//!   `parse(encode(x)) == x` for frames, multibulk requests and quoted inline requests;
//! - every key position is an argument index after the command name: `1 <= i < args.len()`,
//!   sorted, each once.
//!
//! Inputs come from the corpus (`crates/resp/fuzz/corpus/`, one input a file) and from a
//! seeded generator: AFL-style havoc mutations of corpus entries and of freshly encoded
//! frames and requests, and plain random bytes. `cargo test -p resp --test fuzz` runs a short
//! deterministic pass; the long run is
//!
//! ```text
//! FUZZ_INPUTS=10000000 cargo test --release -p resp --test fuzz -- --nocapture
//! ```
//!
//! (`FUZZ_SEED` picks the generator's seed, default fixed; `FUZZ_SEED=time` a new one). An
//! input that fails is written to `target/fuzz-failures/` and named in the panic message:
//! copy it into the corpus once fixed, so it is checked on every run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use arbitrary::Unstructured;
use bytes::{Bytes, BytesMut};
use resp::command::{self, Command};
use resp::{frame_len, Frame, Limits, ProtocolError, Request, RequestParser};

/// Inputs in the `cargo test` pass: a few seconds in a debug build.
const DEFAULT_INPUTS: u64 = 10_000;
/// The generator's seed unless `FUZZ_SEED` says otherwise.
const DEFAULT_SEED: u64 = 0x5eed_f022;
/// Longest generated input; large enough for nested frames, small enough to stay fast.
const MAX_INPUT: usize = 1024;
/// Arrays nest at most this deep in generated frames (the parser's own bound is tested by
/// the corpus and by mutation).
const MAX_GEN_DEPTH: usize = 4;

/// Byte strings that mean something to the codec: havoc inserts them.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r",
    b"\n",
    b"*",
    b"$",
    b"+",
    b"-",
    b":",
    b"%",
    b"|",
    b"~",
    b">",
    b"_",
    b"#t",
    b"#f",
    b",",
    b"(",
    b"=",
    b"!",
    b"0",
    b"1",
    b"2",
    b"3",
    b"-1",
    b"-2",
    b"10",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"9223372036854775808",
    b"18446744073709551616",
    b"1048576",
    b"1048577",
    b"65536",
    b"*-1\r\n",
    b"$-1\r\n",
    b"*1\r\n",
    b"*2\r\n",
    b"$0\r\n\r\n",
    b"\"",
    b"'",
    b"\\",
    b"\\x",
    b"\\xff",
    b" ",
    b"\t",
    b"\0",
    b"txt:",
    b"inf",
    b"nan",
    b"1e+20",
    b"STREAMS",
    b"STORE",
    b"EVAL",
    b"XREAD",
    b"SORT",
    b"GET",
    b"SET",
    b"MSET",
    b"FCALL",
    b"ZUNIONSTORE",
    b"GEORADIUS",
    b"MIGRATE",
    b"KEYS",
    b"CONFIG",
    b"OBJECT",
];

/// Arguments the request generator draws from: numbers that key specs read as counts, and
/// keywords that begin key searches.
const WORDS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "4",
    "-1",
    "-2",
    "100",
    "9223372036854775807",
    "-9223372036854775808",
    "4611686018427387904",
    "STREAMS",
    "streams",
    "STORE",
    "STOREDIST",
    "KEYS",
    "WEIGHTS",
    "BY",
    "GET",
    "COUNT",
    "BLOCK",
    "GROUP",
    "LEFT",
    "k",
    "",
];

/// The limits an input is parsed under: Redis's defaults, and small ones that put every
/// bound within reach of short inputs.
fn limits_for(selector: u8) -> Limits {
    match selector % 4 {
        0 | 1 => Limits::default(),
        2 => Limits { max_inline_len: 16, max_bulk_len: 10, max_args: 4 },
        _ => Limits { max_inline_len: 3, max_bulk_len: 0, max_args: 1 },
    }
}

/// A small deterministic generator (SplitMix64): the corpus replays the same way on every
/// machine, and a failure is reproduced from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// FNV-1a: derives the cut points and limits of an input from its bytes, so that a corpus
/// file always replays the same way.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Cuts `len` bytes into pieces: every byte alone sometimes (short inputs only: frames are
/// re-scanned from their start on every read, so that is quadratic), otherwise a few random
/// cuts.
fn cuts(len: usize, rng: &mut Rng) -> Vec<usize> {
    if len == 0 {
        return vec![];
    }
    let mut points: Vec<usize> = if len <= 128 && rng.below(4) == 0 {
        (1..len).collect()
    } else {
        (0..rng.below(6)).map(|_| 1 + rng.below(len)).collect()
    };
    points.push(len);
    points.sort_unstable();
    points.dedup();
    points
}

/// What parsing a whole stream gives: the requests or frames, then the error or the bytes left
/// incomplete (after an error the connection closes: what else arrived does not matter).
#[derive(Debug, PartialEq)]
struct Outcome<T> {
    items: Vec<T>,
    error: Option<ProtocolError>,
    rest: Vec<u8>,
}

/// Parses requests from `input` fed in pieces ending at `cuts`.
fn requests_in_pieces(input: &[u8], cuts: &[usize], limits: &Limits) -> Outcome<Request> {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut items = vec![];
    let mut start = 0;
    for &end in cuts {
        buf.extend_from_slice(&input[start..end]);
        start = end;
        loop {
            match parser.parse(&mut buf, limits) {
                Ok(Some(request)) => items.push(request),
                Ok(None) => break,
                Err(e) => return Outcome { items, error: Some(e), rest: vec![] },
            }
        }
    }
    Outcome { items, error: None, rest: buf.to_vec() }
}

/// Parses frames from `input` fed in pieces ending at `cuts`.
fn frames_in_pieces(input: &[u8], cuts: &[usize], limits: &Limits) -> Outcome<Frame> {
    let mut buf = BytesMut::new();
    let mut items = vec![];
    let mut start = 0;
    for &end in cuts {
        buf.extend_from_slice(&input[start..end]);
        start = end;
        loop {
            let len = frame_len(&buf, limits);
            let before = buf.len();
            let parsed = Frame::parse(&mut buf, limits);
            match (&parsed, len) {
                (Ok(Some(_)), Ok(Some(n))) => assert_eq!(before - buf.len(), n, "frame_len disagrees with parse"),
                (Ok(None), Ok(None)) | (Err(_), Err(_)) => {}
                (parsed, len) => panic!("frame_len {len:?} but parse {parsed:?}"),
            }
            match parsed {
                Ok(Some(frame)) => items.push(frame),
                Ok(None) => break,
                Err(e) => return Outcome { items, error: Some(e), rest: vec![] },
            }
        }
    }
    Outcome { items, error: None, rest: buf.to_vec() }
}

/// Key positions must name arguments after the command name, sorted and each once, and
/// appending to a non-empty vector must leave what was there.
fn check_keys(args: &[Bytes]) {
    let Ok(command) = command::lookup(args) else {
        return;
    };
    let _ = command.accepts(args.len());
    let _ = command.is_write();
    if let Ok(positions) = command.key_positions(args) {
        check_positions(command, args, &positions);
    }
    let mut out = vec![usize::MAX];
    if command.keys_into(args, &mut out).is_ok() {
        assert_eq!(out[0], usize::MAX, "keys_into changed what was there");
        check_positions(command, args, &out[1..]);
    }
}

fn check_positions(command: &Command, args: &[Bytes], positions: &[usize]) {
    for &i in positions {
        assert!(i >= 1 && i < args.len(), "{}: key position {i} of {} args", command.name, args.len());
    }
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{}: positions {positions:?}", command.name);
}

/// Properties of any bytes as a stream from a client or a backend.
fn check_bytes(data: &[u8], rng: &mut Rng) {
    let limits = limits_for(data.first().copied().unwrap_or_default() ^ (fnv(data) as u8));
    // Requests: whole, then in pieces.
    let whole = requests_in_pieces(data, &[data.len()], &limits);
    for request in &whole.items {
        assert!(!request.args.is_empty(), "a request without arguments");
        if let Some(raw) = &request.raw {
            assert_eq!(
                resp::parse_request(&mut BytesMut::from(&raw[..]), &limits).as_ref(),
                Ok(&Some(request.clone()))
            );
        }
        check_keys(&request.args);
    }
    let pieces = cuts(data.len(), rng);
    assert_eq!(requests_in_pieces(data, &pieces, &limits), whole, "requests in pieces {pieces:?}");
    // Frames: whole, then in pieces; each re-encodes to itself.
    let whole = frames_in_pieces(data, &[data.len()], &limits);
    for frame in &whole.items {
        let bytes = frame.to_bytes();
        let again = Frame::parse(&mut BytesMut::from(&bytes[..]), &Limits::default());
        assert_eq!(again.as_ref(), Ok(&Some(frame.clone())), "re-encoded as {bytes:?}");
    }
    assert_eq!(frames_in_pieces(data, &pieces, &limits), whole, "frames in pieces {pieces:?}");
}

/// A byte string of up to `max` bytes.
fn gen_bytes(u: &mut Unstructured, max: usize) -> arbitrary::Result<Bytes> {
    let n = u.int_in_range(0..=max)?;
    Ok(Bytes::copy_from_slice(u.bytes(n.min(u.len()))?))
}

/// Text for a status or error line: any bytes but CR and LF.
fn gen_line(u: &mut Unstructured) -> arbitrary::Result<Bytes> {
    let raw = gen_bytes(u, 16)?;
    Ok(raw.iter().map(|&b| if b == b'\r' || b == b'\n' { b'.' } else { b }).collect::<Vec<u8>>().into())
}

/// Any valid frame, nested at most `depth` more levels.
fn gen_frame(u: &mut Unstructured, depth: usize) -> arbitrary::Result<Frame> {
    let kinds = if depth == 0 { 12 } else { 16 };
    let many = |u: &mut Unstructured| u.int_in_range(0..=4usize);
    Ok(match u.choose_index(kinds)? {
        0 => Frame::Simple(gen_line(u)?),
        1 => Frame::Error(gen_line(u)?),
        2 => Frame::Integer(u.arbitrary()?),
        3 => Frame::Bulk(gen_bytes(u, 32)?),
        4 => Frame::Null,
        5 => Frame::NullArray,
        6 => Frame::Resp3Null,
        7 => Frame::Boolean(u.arbitrary()?),
        8 => Frame::double(u.arbitrary()?),
        9 => {
            let digits: String = (0..u.int_in_range(1..=40)?).map(|i| char::from(b'0' + (i % 10) as u8)).collect();
            let sign = if u.arbitrary()? { "-" } else { "" };
            Frame::BigNumber(Bytes::from(format!("{sign}{digits}")))
        }
        10 => Frame::Verbatim { format: Bytes::copy_from_slice(u.bytes(3.min(u.len()))?), text: gen_bytes(u, 16)? }
            .normalized(),
        11 => Frame::BlobError(gen_bytes(u, 16)?),
        12 => Frame::Array((0..many(u)?).map(|_| gen_frame(u, depth - 1)).collect::<Result<_, _>>()?),
        13 => Frame::Set((0..many(u)?).map(|_| gen_frame(u, depth - 1)).collect::<Result<_, _>>()?),
        14 => Frame::Push((0..many(u)?).map(|_| gen_frame(u, depth - 1)).collect::<Result<_, _>>()?),
        _ => Frame::Map(
            (0..many(u)?)
                .map(|_| Ok((gen_frame(u, depth - 1)?, gen_frame(u, depth - 1)?)))
                .collect::<arbitrary::Result<_>>()?,
        ),
    })
}

/// A verbatim frame always has a three-byte format: pad one cut short by the input's end.
trait Normalized {
    fn normalized(self) -> Self;
}

impl Normalized for Frame {
    fn normalized(self) -> Frame {
        match self {
            Frame::Verbatim { format, text } if format.len() < 3 => {
                let mut padded = format.to_vec();
                padded.resize(3, b'x');
                Frame::Verbatim { format: padded.into(), text }
            }
            other => other,
        }
    }
}

/// Request arguments: a command from the table (its subcommand split off) and then words
/// key specs read, or any bytes.
fn gen_args(u: &mut Unstructured) -> arbitrary::Result<Vec<Bytes>> {
    let mut args = vec![];
    if u.ratio(7, 8)? {
        let commands = command::table().commands();
        let name = commands[u.choose_index(commands.len())?].name;
        for part in name.split('|') {
            let part = if u.arbitrary()? { part.to_ascii_uppercase() } else { part.to_owned() };
            args.push(Bytes::from(part));
        }
    }
    for _ in 0..u.int_in_range(0..=8)? {
        if u.ratio(2, 3)? {
            args.push(Bytes::from_static(WORDS[u.choose_index(WORDS.len())?].as_bytes()));
        } else {
            args.push(gen_bytes(u, 12)?);
        }
    }
    if args.is_empty() {
        args.push(gen_bytes(u, 8)?);
    }
    Ok(args)
}

/// `args` as one inline line, every argument double-quoted with every byte escaped.
fn inline_quoted(args: &[Bytes]) -> Vec<u8> {
    let mut line = vec![];
    for arg in args {
        line.push(b'"');
        for b in arg.iter() {
            line.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        }
        line.extend_from_slice(b"\" ");
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// Properties of generated frames and requests (the bytes are the recipe). Returns the
/// encoded bytes, for havoc to mutate further.
fn check_structured(data: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut u = Unstructured::new(data);
    let mut encoded = vec![];
    if let Ok(frame) = gen_frame(&mut u, MAX_GEN_DEPTH) {
        let bytes = frame.to_bytes();
        let limits = Limits::default();
        assert_eq!(frame_len(&bytes, &limits), Ok(Some(bytes.len())), "{frame:?}");
        // Two frames back to back, in pieces: both come out, nothing is left.
        let twice = [&bytes[..], &bytes[..]].concat();
        let pieces = cuts(twice.len(), rng);
        let outcome = frames_in_pieces(&twice, &pieces, &limits);
        assert_eq!(outcome, Outcome { items: vec![frame.clone(), frame], error: None, rest: vec![] }, "{pieces:?}");
        encoded.extend_from_slice(&bytes);
    }
    if let Ok(args) = gen_args(&mut u) {
        check_keys(&args);
        let limits = Limits::default();
        let mut bytes = BytesMut::new();
        resp::write::command(&mut bytes, &args);
        let multibulk = bytes.to_vec();
        let inline = inline_quoted(&args);
        let stream = [&multibulk[..], &inline[..], &multibulk[..]].concat();
        let pieces = cuts(stream.len(), rng);
        let outcome = requests_in_pieces(&stream, &pieces, &limits);
        assert_eq!(outcome.error, None);
        assert!(outcome.rest.is_empty());
        let got: Vec<(&[Bytes], Option<&[u8]>)> =
            outcome.items.iter().map(|r| (&r.args[..], r.raw.as_deref())).collect();
        let args = &args[..];
        assert_eq!(got, [(args, Some(&multibulk[..])), (args, None), (args, Some(&multibulk[..]))], "{pieces:?}");
        encoded.extend_from_slice(&stream);
    }
    encoded
}

/// The target: every property, on one input.
fn check(data: &[u8]) -> Vec<u8> {
    let mut rng = Rng(fnv(data));
    check_bytes(data, &mut rng);
    check_structured(data, &mut rng)
}

/// AFL's havoc stage, in small: a few random edits of `input`, some splicing in `other`.
fn havoc(input: &mut Vec<u8>, other: &[u8], rng: &mut Rng) {
    for _ in 0..1 + rng.below(6) {
        let len = input.len();
        match rng.below(9) {
            0 if len > 0 => input[rng.below(len)] ^= 1 << rng.below(8),
            1 if len > 0 => input[rng.below(len)] = rng.next() as u8,
            2 | 3 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                input.splice(at..at, token.iter().copied());
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(16));
                input.drain(at..at + n);
            }
            5 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(32));
                let copy = input[at..at + n].to_vec();
                let to = rng.below(len + 1);
                input.splice(to..to, copy);
            }
            6 if !other.is_empty() => {
                let at = rng.below(other.len());
                let n = 1 + rng.below((other.len() - at).min(64));
                let to = rng.below(len + 1);
                input.splice(to..to, other[at..at + n].iter().copied());
            }
            7 if len > 0 => input.truncate(rng.below(len)),
            _ => {
                // A digit run changed to a different number.
                let at = rng.below(len + 1);
                let number = format!("{}", rng.next() as i64 >> rng.below(64));
                input.splice(at..at, number.bytes());
            }
        }
    }
    input.truncate(MAX_INPUT);
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

fn load_corpus() -> Vec<(String, Vec<u8>)> {
    let mut entries: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir())
        .expect("the corpus directory")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            Some((entry.file_name().to_string_lossy().into_owned(), std::fs::read(entry.path()).ok()?))
        })
        .collect();
    entries.sort();
    entries
}

/// Runs the target on `input`; on a failure writes the input out and panics naming it.
fn run_one(input: &[u8], origin: &str) -> Vec<u8> {
    match catch_unwind(AssertUnwindSafe(|| check(input))) {
        Ok(encoded) => encoded,
        Err(panic) => {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-failures");
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join(format!("{:016x}", fnv(input)));
            let _ = std::fs::write(&path, input);
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("?");
            panic!("{origin}: input {} ({:?}) failed: {message}", path.display(), Bytes::copy_from_slice(input));
        }
    }
}

#[test]
fn the_corpus_replays() {
    let corpus = load_corpus();
    assert!(corpus.len() >= 20, "the corpus has {} inputs", corpus.len());
    for (name, input) in &corpus {
        run_one(input, name);
    }
}

#[test]
fn generated_and_mutated_inputs_keep_every_property() {
    let inputs: u64 = std::env::var("FUZZ_INPUTS").ok().and_then(|n| n.parse().ok()).unwrap_or(DEFAULT_INPUTS);
    let seed = match std::env::var("FUZZ_SEED").ok().as_deref() {
        None => DEFAULT_SEED,
        Some("time") => {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
        }
        Some(n) => n.parse().expect("FUZZ_SEED is a number or 'time'"),
    };
    let corpus: Vec<Vec<u8>> = load_corpus().into_iter().map(|(_, input)| input).collect();
    // Recently encoded frames and requests: valid deep inputs for havoc to break.
    let mut pool: Vec<Vec<u8>> = corpus.clone();
    let mut rng = Rng(seed);
    let started = Instant::now();
    for n in 0..inputs {
        let input = match rng.below(8) {
            0 => {
                let len = rng.below(MAX_INPUT);
                rng.bytes(len)
            }
            1 | 2 => {
                let len = 16 + rng.below(MAX_INPUT - 16);
                rng.bytes(len)
            }
            _ => {
                let mut input = pool[rng.below(pool.len())].clone();
                let other = &corpus[rng.below(corpus.len())];
                havoc(&mut input, other, &mut rng);
                input
            }
        };
        let encoded = run_one(&input, &format!("seed {seed} input {n}"));
        if !encoded.is_empty() && encoded.len() <= MAX_INPUT {
            let slot = corpus.len() + rng.below(256);
            if slot < pool.len() {
                pool[slot] = encoded;
            } else {
                pool.push(encoded);
            }
        }
    }
    eprintln!("fuzz: {inputs} inputs, seed {seed}, {:.1?}", started.elapsed());
}
