//! Bob Jenkins' one-at-a-time hash, as twemproxy's `nc_one_at_a_time.c`.

use super::c_char;

/// twemproxy's `hash_one_at_a_time`: bytes are read as C `char` (signed on x86).
pub fn one_at_a_time(key: &[u8]) -> u32 {
    let mut value: u32 = 0;
    for &b in key {
        value = value.wrapping_add(c_char(b));
        value = value.wrapping_add(value << 10);
        value ^= value >> 6;
    }
    value = value.wrapping_add(value << 3);
    value ^= value >> 11;
    value.wrapping_add(value << 15)
}
