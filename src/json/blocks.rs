//! Where an object or array ends, 64 bytes a step: the streamed page is cut into its alerts by
//! finding each one's closing brace, and walking an alert byte by byte to find it cost as much as
//! reading the alert itself. A block's quotes and brackets become bit masks (SSE2 where there is
//! one), the bytes inside strings a running XOR of the quotes, and only the brackets outside
//! strings are then visited. A block holding a backslash is left to the byte-by-byte walk: which
//! quote it escapes depends on the backslashes before it, and alerts have few. Pure.

/// What one block did to a scan standing inside an object or array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The outermost container closed at this index of the block; the byte after it is the
    /// index + 1.
    Ends(usize),
    /// The block was read whole; the scan's depth and string state are updated.
    Continues,
    /// The block holds a backslash: nothing was read, the caller walks it byte by byte.
    HasEscape,
}

/// Where a scan stands between blocks: the containers open (at least one) and whether the next
/// byte is inside a string (its opening quote passed, its closing one not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inside {
    pub depth: u32,
    pub in_string: bool,
}

/// Reads one block from `inside`, which it updates unless the block holds a backslash.
#[inline]
pub fn step(block: &[u8; 64], inside: &mut Inside) -> Step {
    let masks = Masks::of(block);
    if masks.backslash != 0 {
        return Step::HasEscape;
    }
    // Bit i set: after byte i, the scan is inside a string. A quote flips it; a bracket never
    // is a quote, so its bit says whether it sits inside a string.
    let carried = if inside.in_string { !0 } else { 0 };
    let in_strings = prefix_xor(masks.quote) ^ carried;
    let mut brackets = (masks.open | masks.close) & !in_strings;
    while brackets != 0 {
        let at = brackets.trailing_zeros() as usize;
        brackets &= brackets - 1;
        if masks.open >> at & 1 == 1 {
            inside.depth += 1;
        } else {
            inside.depth -= 1;
            if inside.depth == 0 {
                inside.in_string = false;
                return Step::Ends(at);
            }
        }
    }
    inside.in_string = in_strings >> 63 == 1;
    Step::Continues
}

/// Bit i of each mask is byte i of the block.
#[derive(Debug, Default, PartialEq, Eq)]
struct Masks {
    quote: u64,
    backslash: u64,
    /// `{` and `[`.
    open: u64,
    /// `}` and `]`.
    close: u64,
}

impl Masks {
    #[cfg(target_arch = "x86_64")]
    fn of(block: &[u8; 64]) -> Masks {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        let mut masks = Masks::default();
        for (lane, bytes) in block.chunks_exact(16).enumerate() {
            // SAFETY: SSE2 is part of the x86_64 baseline; the sixteen bytes loaded are one of
            // the block's four lanes, read unaligned.
            let [quote, backslash, open, close] = unsafe {
                let v = _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>());
                let mask =
                    |byte: u8| _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(byte as i8)));
                // `[` and `{` differ by the 0x20 bit only, as do `]` and `}`: with that bit set,
                // one comparison finds both.
                let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
                let folded_mask =
                    |byte: u8| _mm_movemask_epi8(_mm_cmpeq_epi8(folded, _mm_set1_epi8(byte as i8)));
                [
                    mask(b'"'),
                    mask(b'\\'),
                    folded_mask(b'{'),
                    folded_mask(b'}'),
                ]
            };
            let shift = 16 * lane;
            masks.quote |= u64::from(quote as u16) << shift;
            masks.backslash |= u64::from(backslash as u16) << shift;
            masks.open |= u64::from(open as u16) << shift;
            masks.close |= u64::from(close as u16) << shift;
        }
        masks
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn of(block: &[u8; 64]) -> Masks {
        Masks::by_bytes(block)
    }

    /// The same masks a byte at a time: other architectures, and the reference in tests.
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    fn by_bytes(block: &[u8; 64]) -> Masks {
        let mut masks = Masks::default();
        for (at, &byte) in block.iter().enumerate() {
            let bit = 1u64 << at;
            match byte {
                b'"' => masks.quote |= bit,
                b'\\' => masks.backslash |= bit,
                b'{' | b'[' => masks.open |= bit,
                b'}' | b']' => masks.close |= bit,
                _ => {}
            }
        }
        masks
    }
}

/// Bit i of the result is the XOR of bits 0..=i of `bits`.
fn prefix_xor(mut bits: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        bits ^= bits << shift;
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The same step a byte at a time.
    fn step_by_bytes(block: &[u8; 64], inside: &mut Inside) -> Step {
        if block.contains(&b'\\') {
            return Step::HasEscape;
        }
        for (at, &byte) in block.iter().enumerate() {
            match byte {
                b'"' => inside.in_string = !inside.in_string,
                b'{' | b'[' if !inside.in_string => inside.depth += 1,
                b'}' | b']' if !inside.in_string => {
                    inside.depth -= 1;
                    if inside.depth == 0 {
                        return Step::Ends(at);
                    }
                }
                _ => {}
            }
        }
        Step::Continues
    }

    fn block_of(bytes: &[u8]) -> [u8; 64] {
        let mut block = [b' '; 64];
        block[..bytes.len()].copy_from_slice(bytes);
        block
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let mut inside = Inside {
            depth: 1,
            in_string: false,
        };
        let block = block_of(br#""a}]":["{",{"b":"]"}]} , {"next":1}"#);
        assert_eq!(step(&block, &mut inside), Step::Ends(21));
        let mut inside = Inside {
            depth: 1,
            in_string: true,
        };
        // The block starts inside a string that closes at byte 3.
        assert_eq!(step(&block_of(br#"}]"}"#), &mut inside), Step::Ends(3));
    }

    #[test]
    fn state_carries_into_the_next_block() {
        let mut inside = Inside {
            depth: 1,
            in_string: false,
        };
        let mut block = [b'x'; 64];
        block[10] = b'{';
        block[60] = b'"';
        assert_eq!(step(&block, &mut inside), Step::Continues);
        assert_eq!(
            inside,
            Inside {
                depth: 2,
                in_string: true
            }
        );
        block[63] = b'\\';
        assert_eq!(step(&block, &mut inside), Step::HasEscape);
    }

    proptest! {
        #[test]
        fn blocks_read_as_bytes_do(
            bytes in proptest::collection::vec(
                proptest::sample::select(b"{}[]\"a :,\xc3\xa9".to_vec()), 64),
            backslash in proptest::option::of(0usize..64),
            depth in 1u32..4,
            in_string: bool,
        ) {
            let mut block: [u8; 64] = bytes.try_into().unwrap();
            if let Some(at) = backslash {
                block[at] = b'\\';
            }
            prop_assert_eq!(Masks::of(&block), Masks::by_bytes(&block));
            let start = Inside { depth, in_string };
            let (mut fast, mut slow) = (start, start);
            let step_fast = step(&block, &mut fast);
            prop_assert_eq!(step_fast, step_by_bytes(&block, &mut slow));
            if step_fast == Step::Continues {
                prop_assert_eq!(fast, slow);
            }
        }
    }
}
