//! JSON strings sixteen bytes at a time: where the next byte is that is not itself
//! inside a string (the scanner stops there to find a string's end; the writer to escape it),
//! and a string escaped exactly as serde_json escapes it, so hand-written events equal what
//! serde wrote before them (the golden files hold them). Pure.

/// Bytes serde_json writes other than as themselves: the quote, the backslash and the controls.
#[cfg(any(not(target_arch = "x86_64"), test))]
const fn escaped(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// The index of the first byte that must be escaped: sixteen bytes per step with SSE2 (part of
/// every x86_64), the tail in one more step over the last sixteen, a string shorter than that
/// in one step over a padded copy. Every string of an alert and of its events goes through
/// here, most of them a few dozen bytes long.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn first_escape(bytes: &[u8]) -> Option<usize> {
    let len = bytes.len();
    if len < 16 {
        // One step over a copy padded with a byte that is never escaped: cheaper than walking
        // a short string's bytes one by one.
        let mut block = [b'a'; 16];
        block[..len].copy_from_slice(bytes);
        let hits = escapes_in(&block);
        return (hits != 0).then(|| hits.trailing_zeros() as usize);
    }
    let mut at = 0;
    while at + 16 <= len {
        let hits = escapes_in(bytes[at..at + 16].try_into().unwrap_or(&[b'a'; 16]));
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize);
        }
        at += 16;
    }
    if at == len {
        return None;
    }
    // The last sixteen bytes, overlapping some already read: those held nothing to escape, so
    // the first hit of this step is the first of the rest.
    let start = len - 16;
    let hits = escapes_in(bytes[start..].try_into().unwrap_or(&[b'a'; 16]));
    (hits != 0).then(|| start + hits.trailing_zeros() as usize)
}

/// A bit per byte of `block` that must be escaped, the first byte the lowest bit.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn escapes_in(block: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, so its instructions run on every CPU this
    // code is built for; the load reads the sixteen bytes of `block`, wherever they sit.
    let hits = unsafe {
        let block = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
        // A control byte is one whose unsigned max with 0x1f is 0x1f.
        let last_control = _mm_set1_epi8(0x1f);
        let control = _mm_cmpeq_epi8(_mm_max_epu8(block, last_control), last_control);
        let quote = _mm_cmpeq_epi8(block, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(block, _mm_set1_epi8(b'\\' as i8));
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
    };
    hits as u32
}

#[cfg(not(target_arch = "x86_64"))]
pub fn first_escape(bytes: &[u8]) -> Option<usize> {
    first_escape_by_words(bytes)
}

/// [`first_escape`] eight bytes per step: a word has such a byte when one of its bytes is below
/// 0x20, or equals `"` or `\` (the classic has-zero-byte test on the word XORed with each of
/// them). The portable path, and the tests' reference for the SSE2 one.
#[cfg(any(not(target_arch = "x86_64"), test))]
fn first_escape_by_words(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |word: u64| word.wrapping_sub(ONES) & !word & HIGH;
    let mut at = 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
        let hits = below_space
            | zero_byte(word ^ (ONES * b'"' as u64))
            | zero_byte(word ^ (ONES * b'\\' as u64));
        if hits != 0 {
            // The lowest flagged byte is the first one; borrows only ever flag higher bytes
            // after a true hit, so the lowest flag is exact.
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| escaped(b))
        .map(|i| at + i)
}

/// `value` as a quoted JSON string, escaped byte for byte as serde_json does: `\"`, `\\`, the
/// short forms `\b \f \n \r \t`, `\u00XX` (lower-case hex) for the other controls; everything
/// else, multi-byte UTF-8 and DEL included, as it is.
pub fn escape_into(out: &mut Vec<u8>, value: &str) {
    let mut rest = value.as_bytes();
    out.reserve(rest.len() + 2);
    out.push(b'"');
    while let Some(at) = first_escape(rest) {
        out.extend_from_slice(&rest[..at]);
        let byte = rest[at];
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
        }
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// The value of a JSON string's content (between its quotes) that the scan found well formed
/// and holding escapes, decoded as serde_json decodes it; None for what only serde_json should
/// judge (a `\u` escape of a surrogate that is not a high one followed by its low one), so
/// that the caller asks it and reports its verdict.
pub fn unescape(content: &str) -> Option<String> {
    let bytes = content.as_bytes();
    let mut out = String::with_capacity(content.len());
    let mut rest = 0;
    while let Some(found) = memchr::memchr(b'\\', &bytes[rest..]) {
        let at = rest + found;
        out.push_str(&content[rest..at]);
        let (decoded, used) = match *bytes.get(at + 1)? {
            b'"' => ('"', 2),
            b'\\' => ('\\', 2),
            b'/' => ('/', 2),
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            b'u' => {
                let unit = hex4(bytes.get(at + 2..at + 6)?)?;
                match unit {
                    0xD800..=0xDBFF => {
                        let low = match bytes.get(at + 6..at + 8) {
                            Some(b"\\u") => hex4(bytes.get(at + 8..at + 12)?)?,
                            _ => return None,
                        };
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return None;
                        }
                        let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                        (char::from_u32(code)?, 12)
                    }
                    0xDC00..=0xDFFF => return None,
                    _ => (char::from_u32(unit)?, 6),
                }
            }
            _ => return None,
        };
        out.push(decoded);
        rest = at + used;
    }
    out.push_str(&content[rest..]);
    Some(out)
}

fn hex4(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0, |unit, &digit| {
        Some(unit << 4 | char::from(digit).to_digit(16)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn escaped_string(value: &str) -> String {
        let mut out = Vec::new();
        escape_into(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_as_serde_json_does() {
        for value in [
            "",
            "plain",
            "a\"b\\c",
            "C:\\Users\\u1\\AppData",
            "\u{0}\u{1}\u{8}\u{b}\u{c}\n\r\t\u{1f}\u{7f}",
            "héllo ☃ 𝄞 \"quoted\" twelve bytes…",
            "exactly8",
            "seven\n7",
            "0123456789abcde\"",
        ] {
            assert_eq!(
                escaped_string(value),
                serde_json::to_string(value).unwrap(),
                "{value:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_string_escapes_as_serde_json_does(value in any::<String>(), controls in "[\\x00-\\x21\\x5b-\\x5d\\x7f]{0,40}") {
            prop_assert_eq!(escaped_string(&value), serde_json::to_string(&value).unwrap());
            prop_assert_eq!(escaped_string(&controls), serde_json::to_string(&controls).unwrap());
        }
    }

    proptest! {
        #[test]
        fn any_escaped_string_decodes_as_serde_json_does(value in any::<String>(), units in proptest::collection::vec(0xd7f0u32..0xe010, 0..4)) {
            let sent = serde_json::to_string(&value).unwrap();
            prop_assert_eq!(unescape(&sent[1..sent.len() - 1]), Some(value));
            // Escapes of surrogates, paired or not: decoded as serde_json decodes them, or
            // left to it.
            let escapes: String = units.iter().map(|u| format!("\\u{u:04x}")).collect();
            let content = format!("a{escapes}\\/\\u00e9");
            let serde = serde_json::from_str::<String>(&format!("\"{content}\"")).ok();
            match unescape(&content) {
                Some(decoded) => prop_assert_eq!(Some(decoded), serde),
                None => prop_assert!(units.iter().any(|u| (0xd800..0xe000).contains(u))),
            }
        }
    }

    #[test]
    fn the_first_special_byte_is_found_in_any_position() {
        for len in 0..40 {
            for at in 0..len {
                for special in [b'"', b'\\', 0u8, 0x1f] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    // A byte past the first must never hide it, nor a borrow from below flag it.
                    if at + 1 < len {
                        bytes[at + 1] = 0;
                    }
                    assert_eq!(first_escape(&bytes), Some(at), "{bytes:?}");
                    assert_eq!(first_escape_by_words(&bytes), Some(at), "{bytes:?}");
                }
            }
            // Bytes above 0x7f (UTF-8) and the printable neighbours of the special ones are not.
            for plain in [0xc3, 0xff, 0x80, 0x20, b'!', b'#', b'[', b']'] {
                assert_eq!(first_escape(&vec![plain; len]), None, "{plain:#x}");
                assert_eq!(first_escape_by_words(&vec![plain; len]), None);
            }
        }
    }
}
