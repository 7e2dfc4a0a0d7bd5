//! The XOR masking of RFC 6455 section 5.3.

/// XORs `data` with the 4-byte masking `key`, as if `data` started at byte 0 of a frame's
/// payload (byte `i` is XORed with `key[i % 4]`). Masking and unmasking are the same
/// operation.
///
/// Works 8 bytes at a time: the key repeated twice as a `u64`, XORed into each 8-byte
/// chunk (chunks start at multiples of 8, so the key lines up); the last 0–7 bytes are
/// done one by one.
///
/// ```
/// use msgwire_frame::websocket::apply_mask;
///
/// let key = [0x37, 0xfa, 0x21, 0x3d];
/// let mut data = *b"Hello";
/// apply_mask(&mut data, key);
/// assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// apply_mask(&mut data, key);
/// assert_eq!(&data, b"Hello");
/// ```
pub fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        if let Ok(word) = <&mut [u8; 8]>::try_from(chunk) {
            *word = (u64::from_ne_bytes(*word) ^ wide).to_ne_bytes();
        }
    }
    // The remainder starts at a multiple of 8, hence of 4: the key starts at key[0].
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(data: &mut [u8], key: [u8; 4]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }

    #[test]
    fn matches_bytewise_xor_for_every_length() {
        let key = [0x01, 0x23, 0x45, 0x67];
        for len in 0..70 {
            let original: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut fast = original.clone();
            let mut slow = original.clone();
            apply_mask(&mut fast, key);
            naive(&mut slow, key);
            assert_eq!(fast, slow, "length {len}");
            apply_mask(&mut fast, key);
            assert_eq!(fast, original, "masking twice restores, length {len}");
        }
    }

    #[test]
    fn rfc_6455_masked_hello() {
        let mut data = *b"Hello";
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }
}
