//! Warm restart (`--snapshot FILE`): the keys, values and expiries written to a file when the
//! server stops, and loaded when it starts, so a restart does not begin with a cold cache
//! (memcached's warm restart, Redis's RDB on shutdown).
//!
//! The file is written whole or not at all: to `FILE.tmp`, fsynced, renamed over `FILE`, and
//! the directory fsynced. Loading checks the whole file (its header, every record, the record
//! count and a SHA-256 of everything before it) before the first key goes into the store, so a
//! corrupt or truncated file is refused with an error and never half-loaded.
//!
//! Format, little-endian:
//!
//! ```text
//! "CHSNAP\0\x01"                        magic and version (8 bytes)
//! record*:  key_len u32, key, value_len u32, value, expires_at u64 (Unix ms, 0: never)
//! end:      u32::MAX, record count u64, SHA-256 of every byte before the digest (32 bytes)
//! ```

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::store::Store;

/// The file's first bytes: the format's name and version.
const MAGIC: &[u8; 8] = b"CHSNAP\0\x01";
/// The key length that marks the end of the records.
const END: u32 = u32::MAX;
/// Bytes of the digest at the end.
const DIGEST_LEN: usize = 32;

/// Why a snapshot file was refused.
#[derive(Debug)]
pub enum LoadError {
    /// It could not be read.
    Io(io::Error),
    /// Its bytes are not a whole snapshot: what is wrong, and where.
    Corrupt(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(error) => write!(f, "{error}"),
            LoadError::Corrupt(why) => write!(f, "corrupt or truncated ({why})"),
        }
    }
}

impl std::error::Error for LoadError {}

/// What a load found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// Keys put in the store.
    pub keys: usize,
    /// Keys in the file whose expiry had passed, left out.
    pub expired: usize,
}

/// Loads `path` into `store`; `None` when there is no such file (a first start). The file is
/// checked whole before anything is stored.
pub fn load(path: &Path, store: &Store) -> Result<Option<Loaded>, LoadError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(LoadError::Io(error)),
    };
    let records = parse(&bytes).map_err(LoadError::Corrupt)?;
    let now = store.unix_now_ms();
    let mut loaded = Loaded { keys: 0, expired: 0 };
    for record in records {
        match record.expires_at {
            Some(at) if at <= now => loaded.expired += 1,
            expires_at => {
                store.put(record.key, record.value, expires_at);
                loaded.keys += 1;
            }
        }
    }
    Ok(Some(loaded))
}

/// One key of a snapshot, borrowed from the file's bytes.
struct Record<'a> {
    key: &'a [u8],
    value: &'a [u8],
    expires_at: Option<u64>,
}

/// Every record of a whole, intact snapshot; what is wrong otherwise.
fn parse(bytes: &[u8]) -> Result<Vec<Record<'_>>, String> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a snapshot of this server: wrong header".into());
    }
    let Some(body_len) = bytes.len().checked_sub(DIGEST_LEN) else {
        return Err("shorter than its digest".into());
    };
    let (body, digest) = bytes.split_at(body_len);
    if Sha256::digest(body).as_slice() != digest {
        return Err("its checksum does not match its contents".into());
    }
    let mut reader = Reader { bytes: body, pos: MAGIC.len() };
    let mut records = Vec::new();
    loop {
        let key_len = reader.u32()?;
        if key_len == END {
            break;
        }
        let key = reader.take(key_len as usize)?;
        let value_len = reader.u32()?;
        let value = reader.take(value_len as usize)?;
        let expires_at = reader.u64()?;
        records.push(Record { key, value, expires_at: (expires_at != 0).then_some(expires_at) });
    }
    let count = reader.u64()?;
    if count != records.len() as u64 {
        return Err(format!("it announces {count} keys and holds {}", records.len()));
    }
    if reader.pos != body.len() {
        return Err(format!("{} stray bytes after the end", body.len() - reader.pos));
    }
    Ok(records)
}

/// Reads fixed-size fields from a byte slice, with the offset in its errors.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.bytes.len());
        let Some(end) = end else { return Err(format!("cut short at byte {}", self.pos)) };
        let taken = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let mut field = [0; 4];
        field.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(field))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut field = [0; 8];
        field.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(field))
    }
}

/// Writes every live key of `store` to `path`, atomically (see the module's doc); how many.
pub fn save(path: &Path, store: &Store) -> io::Result<usize> {
    let temp = temp_path(path);
    let written = write_to(&temp, store);
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    let count = written?;
    std::fs::rename(&temp, path)?;
    // The rename itself must survive a crash: sync the directory that holds it.
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()?;
    Ok(count)
}

/// `FILE.tmp`, beside `FILE`.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes the snapshot to `path` and syncs it; the number of keys.
fn write_to(path: &Path, store: &Store) -> io::Result<usize> {
    let file = File::create(path)?;
    let mut out = Hashed { inner: BufWriter::new(file), digest: Sha256::new() };
    out.write_all(MAGIC)?;
    let mut count = 0u64;
    let mut result = Ok(());
    store.for_each(|key, value, expires_at| {
        if result.is_err() {
            return;
        }
        // Keys and values are bounded by --max-bulk-len (at most 512 MiB): they fit a u32.
        result = (|| {
            out.write_all(&(key.len() as u32).to_le_bytes())?;
            out.write_all(key)?;
            out.write_all(&(value.len() as u32).to_le_bytes())?;
            out.write_all(value)?;
            out.write_all(&expires_at.unwrap_or(0).to_le_bytes())
        })();
        count += 1;
    });
    result?;
    out.write_all(&END.to_le_bytes())?;
    out.write_all(&count.to_le_bytes())?;
    let digest = out.digest.finalize();
    let mut file = out.inner.into_inner().map_err(|error| error.into_error())?;
    file.write_all(&digest)?;
    file.sync_all()?;
    Ok(count as usize)
}

/// A writer that hashes what goes through it.
struct Hashed<W> {
    inner: W,
    digest: Sha256,
}

impl<W: Write> Write for Hashed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("snapshot-test-{}-{name}", std::process::id()))
    }

    #[test]
    fn keys_values_and_expiries_survive_a_save_and_a_load() {
        let path = temp_file("roundtrip");
        let store = Store::new();
        store.put(b"plain", b"value", None);
        store.put(b"binary\0key", &[0, 255, 13, 10], None);
        store.put(b"empty", b"", None);
        let later = store.unix_now_ms() + 100_000;
        store.put(b"volatile", b"v", Some(later));
        assert_eq!(save(&path, &store).expect("save"), 4);

        let restored = Store::new();
        let loaded = load(&path, &restored).expect("load").expect("the file exists");
        assert_eq!(loaded, Loaded { keys: 4, expired: 0 });
        assert_eq!(restored.get(b"plain").as_deref(), Some(&b"value"[..]));
        assert_eq!(restored.get(b"binary\0key").as_deref(), Some(&[0, 255, 13, 10][..]));
        assert_eq!(restored.get(b"empty").as_deref(), Some(&b""[..]));
        assert_eq!(restored.peek(b"volatile").and_then(|(_, at)| at), Some(later));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_missing_file_is_a_first_start() {
        assert!(load(&temp_file("missing"), &Store::new()).expect("no error").is_none());
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused_and_nothing_is_loaded() {
        let path = temp_file("corrupt");
        let store = Store::new();
        for i in 0..20 {
            store.put(format!("key:{i}").as_bytes(), format!("value-{i}").as_bytes(), None);
        }
        save(&path, &store).expect("save");
        let whole = std::fs::read(&path).expect("read");
        let mut damaged: Vec<Vec<u8>> = (0..whole.len()).map(|n| whole[..n].to_vec()).collect();
        for i in (0..whole.len()).step_by(7) {
            let mut flipped = whole.clone();
            flipped[i] ^= 0x20;
            damaged.push(flipped);
        }
        let mut extra = whole.clone();
        extra.push(0);
        damaged.push(extra);
        for bytes in damaged {
            std::fs::write(&path, &bytes).expect("write");
            let fresh = Store::new();
            match load(&path, &fresh) {
                Err(LoadError::Corrupt(_)) => {}
                other => panic!("{} damaged bytes loaded: {other:?}", bytes.len()),
            }
            assert!(fresh.is_empty(), "a refused file put keys in the store");
        }
        let _ = std::fs::remove_file(&path);
    }
}
