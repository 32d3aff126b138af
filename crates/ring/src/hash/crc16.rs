//! CRC-16/XMODEM as twemproxy's `nc_crc16.c` computes it: the state is a
//! `uint32_t` that is never masked, so the bits shifted past 16 stay in the
//! result.

/// The CCITT polynomial x^16 + x^12 + x^5 + 1.
const POLY: u32 = 0x1021;

/// `crc16tab` of twemproxy, built at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ POLY } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc & 0xffff;
        i += 1;
    }
    table
};

/// twemproxy's `hash_crc16`.
pub fn crc16(key: &[u8]) -> u32 {
    let mut crc: u32 = 0;
    for &b in key {
        crc = (crc << 8) ^ TABLE[((crc >> 8) ^ u32::from(b)) as usize & 0xff];
    }
    crc
}
