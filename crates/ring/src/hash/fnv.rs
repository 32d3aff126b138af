//! The four FNV hashes as twemproxy's `nc_fnv.c` computes them.
//!
//! They differ from the textbook in two ways that change placement: bytes are
//! C `char`s, sign-extended on x86 (byte 0xe9 is xored in as 0xffffffe9), and
//! `fnv1a_64` keeps a 32-bit state (the 64-bit offset basis and prime truncated).

use super::c_char;

/// FNV 64-bit offset basis (FNV specification).
const FNV_64_INIT: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV 64-bit prime (FNV specification).
const FNV_64_PRIME: u64 = 0x0000_0100_0000_01b3;
/// FNV 32-bit offset basis (FNV specification).
const FNV_32_INIT: u32 = 2_166_136_261;
/// FNV 32-bit prime (FNV specification).
const FNV_32_PRIME: u32 = 16_777_619;

/// twemproxy's `hash_fnv1_64`: a true 64-bit FNV-1, truncated to 32 bits.
pub fn fnv1_64(key: &[u8]) -> u32 {
    let mut hash = FNV_64_INIT;
    for &b in key {
        hash = hash.wrapping_mul(FNV_64_PRIME);
        hash ^= i64::from(b as i8) as u64;
    }
    hash as u32
}

/// twemproxy's `hash_fnv1a_64`: FNV-1a with a 32-bit state seeded from the
/// low halves of the 64-bit basis and prime.
pub fn fnv1a_64(key: &[u8]) -> u32 {
    let mut hash = FNV_64_INIT as u32;
    for &b in key {
        hash ^= c_char(b);
        hash = hash.wrapping_mul(FNV_64_PRIME as u32);
    }
    hash
}

/// twemproxy's `hash_fnv1_32`.
pub fn fnv1_32(key: &[u8]) -> u32 {
    let mut hash = FNV_32_INIT;
    for &b in key {
        hash = hash.wrapping_mul(FNV_32_PRIME);
        hash ^= c_char(b);
    }
    hash
}

/// twemproxy's `hash_fnv1a_32` (equal to the seed's [`crate::fnv1a_32`] on
/// ASCII keys, different on bytes >= 0x80).
pub fn fnv1a_32(key: &[u8]) -> u32 {
    let mut hash = FNV_32_INIT;
    for &b in key {
        hash ^= c_char(b);
        hash = hash.wrapping_mul(FNV_32_PRIME);
    }
    hash
}
