//! CRC-32 (IEEE, reflected) as twemproxy's `nc_crc32.c`: `crc32a` is the
//! standard checksum; `crc32` is libmemcached's, which keeps 15 bits of it.

/// The reflected IEEE polynomial.
const POLY: u32 = 0xedb8_8320;

/// `crc32tab` of twemproxy, built at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ POLY } else { crc >> 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn checksum(key: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &b in key {
        crc = (crc >> 8) ^ TABLE[((crc ^ u32::from(b)) & 0xff) as usize];
    }
    !crc
}

/// twemproxy's `hash_crc32`: bits 16..31 of the CRC-32, masked to 15 bits.
pub fn crc32(key: &[u8]) -> u32 {
    (checksum(key) >> 16) & 0x7fff
}

/// twemproxy's `hash_crc32a`: the standard CRC-32.
pub fn crc32a(key: &[u8]) -> u32 {
    checksum(key)
}
