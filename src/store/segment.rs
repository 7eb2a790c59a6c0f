//! The on-disk form of the `log` tree: each sled value is a segment of up to
//! [`SEGMENT_RECORDS`] seen records, written by one commit and keyed by a rising sequence number.
//! A few thousand values of ~16 KiB cost sled far less memory and time than a million tiny keys;
//! the newest record of an id wins when the log is read back.

use super::record::SeenRecord;

/// Records per segment: keeps each value well under sled's blob threshold (values above it
/// become one file each).
pub const SEGMENT_RECORDS: usize = 256;

/// 1: records as they are. 2: the same body compressed with zstd (a third of the size: the
/// start reads every segment, and sled keeps what it read in memory).
const PLAIN: u8 = 1;
const COMPRESSED: u8 = 2;
const ZSTD_LEVEL: i32 = 1;
const FIXED: usize = 8 + 4 + 8 + 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("segment is damaged at byte {at}: {what}")]
pub struct SegmentError {
    pub at: usize,
    pub what: &'static str,
}

/// Encodes one segment. Ids longer than 65,535 bytes cannot come from the API (its ids are
/// tens of characters); they are cut at a character boundary rather than failing the commit.
pub fn encode<'a>(records: impl IntoIterator<Item = (&'a str, &'a SeenRecord)>) -> Vec<u8> {
    Encoder::new().encode(records)
}

/// Encodes segments with one zstd context for all of them. A context per segment allocated
/// its tables afresh every 256 alerts, and the kernel zeroed those pages each time: a few
/// percent of a heavy poll's CPU went to that alone.
pub struct Encoder {
    /// None when zstd could not make a context: segments are then written plain.
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder {
            compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL).ok(),
        }
    }

    /// One segment, compressed when that makes it smaller.
    pub fn encode<'a>(
        &mut self,
        records: impl IntoIterator<Item = (&'a str, &'a SeenRecord)>,
    ) -> Vec<u8> {
        let plain = encode_plain(records);
        let compressed = self
            .compressor
            .as_mut()
            .map(|compressor| compressor.compress(&plain[1..]));
        compressed_or_plain(compressed, plain)
    }
}

fn compressed_or_plain(compressed: Option<std::io::Result<Vec<u8>>>, plain: Vec<u8>) -> Vec<u8> {
    match compressed {
        Some(Ok(body)) if body.len() + 1 < plain.len() => {
            let mut out = Vec::with_capacity(body.len() + 1);
            out.push(COMPRESSED);
            out.extend_from_slice(&body);
            out
        }
        _ => plain,
    }
}

fn encode_plain<'a>(records: impl IntoIterator<Item = (&'a str, &'a SeenRecord)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + SEGMENT_RECORDS * (FIXED + 40));
    out.push(PLAIN);
    for (id, record) in records {
        let id = cut(id, u16::MAX as usize);
        out.extend_from_slice(&(id.len() as u16).to_be_bytes());
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&record.last_update.unwrap_or(i64::MIN).to_be_bytes());
        out.extend_from_slice(&record.fingerprint.to_be_bytes());
        out.extend_from_slice(&record.first_observed.to_be_bytes());
        out.extend_from_slice(&record.last_observed.to_be_bytes());
    }
    out
}

fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Decodes one segment, calling `each` for every record in order.
pub fn decode(bytes: &[u8], each: impl FnMut(&str, SeenRecord)) -> Result<(), SegmentError> {
    match bytes.first() {
        Some(&PLAIN) => decode_body(&bytes[1..], each),
        Some(&COMPRESSED) => {
            let body = zstd::decode_all(&bytes[1..]).map_err(|_| SegmentError {
                at: 1,
                what: "compressed body is unreadable",
            })?;
            decode_body(&body, each)
        }
        Some(_) => Err(SegmentError {
            at: 0,
            what: "unknown segment version",
        }),
        None => Err(SegmentError {
            at: 0,
            what: "empty value",
        }),
    }
}

/// Offsets in errors count from the start of the (uncompressed) body.
fn decode_body(bytes: &[u8], mut each: impl FnMut(&str, SeenRecord)) -> Result<(), SegmentError> {
    let mut at = 0;
    while at < bytes.len() {
        let take =
            |at: usize, len: usize, what| bytes.get(at..at + len).ok_or(SegmentError { at, what });
        let len = u16::from_be_bytes(
            take(at, 2, "truncated id length")?
                .try_into()
                .unwrap_or([0; 2]),
        );
        let id =
            std::str::from_utf8(take(at + 2, len as usize, "truncated id")?).map_err(|_| {
                SegmentError {
                    at: at + 2,
                    what: "id is not UTF-8",
                }
            })?;
        let fixed = take(at + 2 + len as usize, FIXED, "truncated record")?;
        let word = |from: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&fixed[from..from + 8]);
            i64::from_be_bytes(word)
        };
        let mut fingerprint = [0u8; 4];
        fingerprint.copy_from_slice(&fixed[8..12]);
        let last_update = word(0);
        each(
            id,
            SeenRecord {
                last_update: (last_update != i64::MIN).then_some(last_update),
                fingerprint: u32::from_be_bytes(fingerprint),
                first_observed: word(12),
                last_observed: word(20),
            },
        );
        at += 2 + len as usize + FIXED;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decoded(bytes: &[u8]) -> Result<Vec<(String, SeenRecord)>, SegmentError> {
        let mut out = Vec::new();
        decode(bytes, |id, record| out.push((id.to_string(), record)))?;
        Ok(out)
    }

    fn record() -> impl Strategy<Value = SeenRecord> {
        (
            proptest::option::of(any::<i64>().prop_filter("sentinel", |v| *v != i64::MIN)),
            any::<u32>(),
            any::<i64>(),
            any::<i64>(),
        )
            .prop_map(
                |(last_update, fingerprint, first_observed, last_observed)| SeenRecord {
                    last_update,
                    fingerprint,
                    first_observed,
                    last_observed,
                },
            )
    }

    #[test]
    fn full_segments_are_compressed_and_read_back() {
        let record = SeenRecord {
            last_update: Some(1_790_000_000_000_000),
            fingerprint: 7,
            first_observed: 1_790_000_000,
            last_observed: 1_790_000_100,
        };
        let ids: Vec<String> = (0..SEGMENT_RECORDS)
            .map(|i| format!("da638{:015}_{}", i * 7919, -(i as i64) * 31))
            .collect();
        let bytes = encode(ids.iter().map(|id| (id.as_str(), &record)));
        assert_eq!(bytes[0], COMPRESSED);
        let plain = encode_plain(ids.iter().map(|id| (id.as_str(), &record)));
        assert!(
            bytes.len() * 2 < plain.len(),
            "{} vs {}",
            bytes.len(),
            plain.len()
        );
        let back = decoded(&bytes).unwrap();
        assert_eq!(back.len(), SEGMENT_RECORDS);
        assert_eq!(back[9], (ids[9].clone(), record));
    }

    proptest! {
        #[test]
        fn round_trips(records in proptest::collection::vec((".{0,40}", record()), 0..20)) {
            let bytes = encode(records.iter().map(|(id, r)| (id.as_str(), r)));
            prop_assert_eq!(decoded(&bytes).unwrap(), records);
        }

        #[test]
        fn damaged_bytes_are_an_error_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decoded(&bytes);
        }
    }

    #[test]
    fn truncation_is_reported_with_its_offset() {
        let record = SeenRecord {
            last_update: None,
            fingerprint: 1,
            first_observed: 2,
            last_observed: 3,
        };
        let bytes = encode_plain([("da1", &record)]);
        let err = decoded(&bytes[..bytes.len() - 1]).unwrap_err();
        assert_eq!(err.at, 5);
        assert_eq!(err.what, "truncated record");
        assert!(decoded(&[]).is_err());
        assert!(decoded(&[9]).is_err());
        assert_eq!(decoded(&[COMPRESSED, 1, 2, 3]).unwrap_err().at, 1);
    }

    #[test]
    fn overlong_ids_are_cut_at_a_character_boundary() {
        assert_eq!(cut("aé", 2), "a");
        assert_eq!(cut("abc", 5), "abc");
    }
}
