//! Key hashes, named and computed exactly as twemproxy's `src/hashkit/`
//! (one module per hash, as there).
//!
//! [`Hash`] is the one table of names: the proxy's `--hash` flag and the
//! `hash:` key of a `nutcracker.yml` both parse through it. Several of these
//! differ from their textbook definitions, and placement depends on the
//! differences: bytes are read as C `char` (sign-extended on x86) by the FNV
//! hashes, `one_at_a_time` and `hsieh`; `fnv1a_64` keeps a 32-bit state;
//! `crc16` never masks its state; `crc32` keeps 15 bits.

mod crc16;
mod crc32;
mod fnv;
mod hsieh;
mod jenkins;
mod md5;
mod murmur;
mod one_at_a_time;

pub use crc16::crc16;
pub use crc32::{crc32, crc32a};
pub use fnv::{fnv1_32, fnv1_64, fnv1a_32, fnv1a_64};
pub use hsieh::hsieh;
pub use jenkins::jenkins;
pub use md5::{md5, md5_digest};
pub use murmur::murmur;
pub use one_at_a_time::one_at_a_time;

/// A byte read through C's `char` on x86, then widened to `uint32_t`:
/// sign-extended (0xe9 becomes 0xffff_ffe9).
#[inline]
fn c_char(b: u8) -> u32 {
    b as i8 as i32 as u32
}

/// Defines [`Hash`] and its name table from one list, so names, parsing and
/// implementations cannot drift (twemproxy's `HASH_CODEC`).
macro_rules! hashes {
    ($($variant:ident => $name:literal, $func:path;)*) => {
        /// A key hash, by its twemproxy name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types)] // twemproxy's names: fnv1a_64 is Fnv1a_64
        #[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
        pub enum Hash {
            $(
                #[doc = concat!("twemproxy's `", $name, "`.")]
                #[cfg_attr(feature = "clap", value(name = $name))]
                $variant,
            )*
        }

        impl Hash {
            /// Every hash, in twemproxy's order.
            pub const ALL: &'static [Hash] = &[$(Hash::$variant),*];

            /// The name twemproxy and our flags use.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Hash::$variant => $name,)*
                }
            }

            /// The 32-bit hash of `key`.
            #[inline]
            pub fn hash(self, key: &[u8]) -> u32 {
                match self {
                    $(Hash::$variant => $func(key),)*
                }
            }
        }
    };
}

hashes! {
    OneAtATime => "one_at_a_time", one_at_a_time;
    Md5 => "md5", md5;
    Crc16 => "crc16", crc16;
    Crc32 => "crc32", crc32;
    Crc32a => "crc32a", crc32a;
    Fnv1_64 => "fnv1_64", fnv1_64;
    Fnv1a_64 => "fnv1a_64", fnv1a_64;
    Fnv1_32 => "fnv1_32", fnv1_32;
    Fnv1a_32 => "fnv1a_32", fnv1a_32;
    Hsieh => "hsieh", hsieh;
    Murmur => "murmur", murmur;
    Jenkins => "jenkins", jenkins;
}

impl Hash {
    /// twemproxy's default (`hash:` absent from a pool).
    pub const TWEMPROXY_DEFAULT: Hash = Hash::Fnv1a_64;

    /// The hash called `name` (exact, lower case, as in twemproxy).
    pub fn from_name(name: &str) -> Option<Hash> {
        Hash::ALL.iter().copied().find(|h| h.name() == name)
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Hash {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Hash::from_name(s).ok_or_else(|| {
            let names: Vec<&str> = Hash::ALL.iter().map(|h| h.name()).collect();
            format!("unknown hash {s:?}; expected one of {}", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys for the vectors: empty, short, long, and bytes >= 0x80 (where C's
    /// signed `char` shows).
    const KEYS: [&[u8]; 9] = [
        b"",
        b"a",
        b"foo",
        b"foobar",
        b"user:1001",
        b"hello world, this is a longer key!",
        b"\xe9t\xe9\xff\x80",
        b"abcdefghijklm",
        b"key:\xc3\xa9\xc3\xa8x",
    ];

    /// Produced by twemproxy's own `src/hashkit/*.c` compiled with gcc on
    /// x86-64 and called on `KEYS`.
    const GOLDEN: [(Hash, [u32; 9]); 12] = [
        (
            Hash::OneAtATime,
            [
                0x00000000, 0xca2e9442, 0x238678dd, 0xf952fde7, 0xa3ac13e0, 0xa70c7b76, 0x24ca5f3c, 0x6d99f6dc,
                0xc071dcc4,
            ],
        ),
        (
            Hash::Md5,
            [
                0xd98c1dd4, 0xb975c10c, 0xdb18bdac, 0x22f65838, 0xe4d46b12, 0x0fe08e67, 0xcbc7a0ec, 0xd1bdae22,
                0x0f5c3a45,
            ],
        ),
        (
            Hash::Crc16,
            [
                0x00000000, 0x00007c87, 0x0c3caf96, 0x9effb025, 0xe1645650, 0xf1a001a9, 0x96c7b723, 0x72b79537,
                0x24aaef3f,
            ],
        ),
        (
            Hash::Crc32,
            [
                0x00000000, 0x000068b7, 0x00000c73, 0x00001ef6, 0x00006873, 0x00006a38, 0x00005f14, 0x00005df4,
                0x0000491a,
            ],
        ),
        (
            Hash::Crc32a,
            [
                0x00000000, 0xe8b7be43, 0x8c736521, 0x9ef61f95, 0xe8732775, 0xea3818fe, 0xdf14f005, 0xddf46ea2,
                0x491a3749,
            ],
        ),
        (
            Hash::Fnv1_64,
            [
                0x84222325, 0x8601b7be, 0x6ba13533, 0xa4dda9c2, 0xd39e3d20, 0xafd12d83, 0x4d6c876a, 0x3df1e6a2,
                0x30f2f01f,
            ],
        ),
        (
            Hash::Fnv1a_64,
            [
                0x84222325, 0x8601ec8c, 0xfed9d577, 0xf73967e8, 0xae7b40d6, 0xa885d9bb, 0xd7c1bc24, 0x398bc308,
                0xac0cf6cf,
            ],
        ),
        (
            Hash::Fnv1_32,
            [
                0x811c9dc5, 0x050c5d7e, 0x408f5e13, 0x31f0b262, 0xa6affca0, 0x27b42ce3, 0xa010f68a, 0xe589b522,
                0x30e5865f,
            ],
        ),
        (
            Hash::Fnv1a_32,
            [
                0x811c9dc5, 0xe40c292c, 0xa9f37ed7, 0xbf9cf968, 0x4f7c1bf6, 0xa0d62c5b, 0xed71dfa4, 0x3b8356e8,
                0x00a5374f,
            ],
        ),
        (
            Hash::Hsieh,
            [
                0x00000000, 0x93642e87, 0x76d4d427, 0x07a5862c, 0xda3b9063, 0x46b30ff6, 0xbbb5b223, 0x70ce5414,
                0x2187c96b,
            ],
        ),
        (
            Hash::Murmur,
            [
                0x00000000, 0x4b41757c, 0xc4e0338f, 0xabecff17, 0x4ca47a0b, 0x3bbdac9a, 0xceb5da5e, 0x2987d8bb,
                0x0c67b837,
            ],
        ),
        (
            Hash::Jenkins,
            [
                0xdeadbefc, 0xe0a38690, 0x99f84f99, 0x0fdd8b60, 0x94a1fb1a, 0xa97ba9c7, 0x17ca258a, 0xb621e85f,
                0xc03b7bdc,
            ],
        ),
    ];

    #[test]
    fn every_hash_matches_twemproxy() {
        assert_eq!(GOLDEN.len(), Hash::ALL.len());
        for (hash, expected) in GOLDEN {
            for (key, want) in KEYS.iter().zip(expected) {
                assert_eq!(hash.hash(key), want, "{hash} of {key:?}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for &h in Hash::ALL {
            assert_eq!(h.name().parse::<Hash>(), Ok(h));
        }
        assert!("fnv1a".parse::<Hash>().unwrap_err().contains("fnv1a_64"));
    }

    #[test]
    fn twemproxy_fnv1a_32_is_the_seed_hash_on_ascii() {
        assert_eq!(fnv1a_32(b"user:1001"), crate::fnv1a_32(b"user:1001"));
        assert_ne!(fnv1a_32(b"\xe9"), crate::fnv1a_32(b"\xe9"));
    }
}
