//! How a feed poll covers its time range without losing an alert while the tenant's alerts change
//! under it. The feed is not ordered by time, and paging it with `$skip` while alerts are created
//! and updated shifts items between pages: one can slide into a page already read. So a poll reads
//! time slices instead, each in a single answer (`$top` items at most): one answer is one
//! consistent reading of its slice, and nothing can shift within it. A slice whose answer says
//! more remain (`@odata.nextLink`) is split in two and each part read again, until every slice
//! fits one page: at the median `lastUpdateTime` of what the answer held (so the parts hold about
//! half each, however the times cluster), else at the middle of its time range. An alert updated meanwhile moves to a later `lastUpdateTime`, into a
//! later slice, the open-ended last one, or the next poll: re-read at worst, never lost. Only
//! when a slice cannot be split (a single microsecond holding more than a page) is it paged.
//! Pure: slices and readings in, the next step out.

use chrono::{DateTime, Utc};

/// `lastUpdateTime ge from and lastUpdateTime lt to`, in microseconds; an end left open is
/// unbounded on that side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// What one answer for a slice told: whether more remained, and the range and median of
/// `lastUpdateTime` among the alerts it held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    pub more: bool,
    pub earliest: Option<i64>,
    pub latest: Option<i64>,
    pub median: Option<i64>,
}

impl Reading {
    /// A reading of an answer holding alerts with these `lastUpdateTime`s.
    pub fn of(more: bool, times: &mut [i64]) -> Reading {
        times.sort_unstable();
        Reading {
            more,
            earliest: times.first().copied(),
            latest: times.last().copied(),
            median: times.get(times.len() / 2).copied(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The answer held the whole slice.
    Done,
    /// Read these two instead (the answer held part of the slice).
    Split(Slice, Slice),
    /// The slice cannot be narrowed: follow its pages.
    Page,
}

pub fn next(slice: Slice, reading: &Reading) -> Next {
    if !reading.more {
        return Next::Done;
    }
    let low = slice.from.or(reading.earliest);
    // An open end is bounded by the latest time seen, just past it.
    let high = slice.to.or(reading.latest.map(|t| t.saturating_add(1)));
    match (low, high) {
        (Some(low), Some(high)) if high.saturating_sub(low) >= 2 => {
            let middle = reading
                .median
                .filter(|median| low < *median && *median < high)
                .unwrap_or(low + (high - low) / 2);
            Next::Split(
                Slice {
                    from: slice.from,
                    to: Some(middle),
                },
                Slice {
                    from: Some(middle),
                    to: slice.to,
                },
            )
        }
        _ => Next::Page,
    }
}

/// The first slice of a poll: from `lookback` behind the cursor, or for the very first poll from
/// `since` before now (or from the beginning), to the open end.
pub fn first(
    cursor: Option<i64>,
    lookback: std::time::Duration,
    since: Option<std::time::Duration>,
    now: DateTime<Utc>,
) -> Slice {
    let micros = |span: std::time::Duration| i64::try_from(span.as_micros()).unwrap_or(i64::MAX);
    let from = match cursor {
        Some(cursor) => Some(cursor.saturating_sub(micros(lookback))),
        None => {
            since.map(|since| crate::defender::time::to_micros(now).saturating_sub(micros(since)))
        }
    };
    Slice { from, to: None }
}

/// Where entity polls left off, for a feed poll with no cursor yet (an install moving from
/// entity polling to the feed, or to Graph): the oldest of the watched entries' last successful
/// polls, each of which had read every alert of its entry up to then. None when one entry was
/// never read whole (new, always failing, or recorded by an older version): the first feed poll
/// then starts from `since`, as on a new install, and the store's dedup keeps what it re-reads
/// from being published twice.
pub fn entity_polls_left_off<'a>(
    last_ok: impl IntoIterator<Item = Option<&'a str>>,
) -> Option<i64> {
    let mut oldest: Option<i64> = None;
    for time in last_ok {
        let micros = crate::defender::time::micros(time?)?;
        oldest = Some(oldest.map_or(micros, |was| was.min(micros)));
    }
    oldest
}

/// The slice as an OData `$filter` on `field` (`lastUpdateTime` for Defender,
/// `lastUpdateDateTime` for Graph), empty when both ends are open.
pub fn filter(slice: Slice, field: &str) -> String {
    let time = |micros: i64| {
        DateTime::<Utc>::from_timestamp_micros(micros)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string()
    };
    let mut clauses = Vec::new();
    if let Some(from) = slice.from {
        clauses.push(format!("{field} ge {}", time(from)));
    }
    if let Some(to) = slice.to {
        clauses.push(format!("{field} lt {}", time(to)));
    }
    clauses.join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_polls_left_off_at_the_oldest_complete_read_or_nowhere() {
        let t1 = "2026-11-20T08:00:00Z";
        let t2 = "2026-11-20T09:30:00.5Z";
        let micros =
            |t: &str| crate::defender::time::to_micros(crate::defender::time::parse(t).unwrap());
        assert_eq!(
            entity_polls_left_off([Some(t2), Some(t1)]),
            Some(micros(t1))
        );
        assert_eq!(entity_polls_left_off([Some(t2)]), Some(micros(t2)));
        assert_eq!(
            entity_polls_left_off([Some(t1), None]),
            None,
            "one never read whole"
        );
        assert_eq!(entity_polls_left_off([Some("yesterday")]), None);
        assert_eq!(entity_polls_left_off(std::iter::empty()), None);
    }

    const OPEN: Slice = Slice {
        from: Some(1_000),
        to: None,
    };

    #[test]
    fn a_whole_answer_ends_the_slice_and_a_partial_one_halves_it() {
        assert_eq!(next(OPEN, &Reading::default()), Next::Done);
        let partial = Reading {
            more: true,
            earliest: Some(1_500),
            latest: Some(2_999),
            median: None,
        };
        assert_eq!(
            next(OPEN, &partial),
            Next::Split(
                Slice {
                    from: Some(1_000),
                    to: Some(2_000)
                },
                Slice {
                    from: Some(2_000),
                    to: None
                },
            ),
            "an open end is bounded by the latest time seen"
        );
        let closed = Slice {
            from: Some(0),
            to: Some(10),
        };
        assert_eq!(
            next(closed, &partial),
            Next::Split(
                Slice {
                    from: Some(0),
                    to: Some(5)
                },
                Slice {
                    from: Some(5),
                    to: Some(10)
                }
            )
        );
        let one_tick = Slice {
            from: Some(7),
            to: Some(8),
        };
        assert_eq!(next(one_tick, &partial), Next::Page);
        let unbounded = Slice {
            from: None,
            to: None,
        };
        assert_eq!(
            next(unbounded, &Reading::of(true, &mut [100, 100, 100])),
            Next::Page,
            "a page of one instant cannot be narrowed"
        );
    }

    /// Splitting only ever narrows: a full slice is covered exactly by its halves, and a chain
    /// of full answers ends in slices of one tick.
    #[test]
    fn halves_cover_their_slice_and_splitting_ends() {
        let mut pending = vec![Slice {
            from: None,
            to: None,
        }];
        let mut done = Vec::new();
        // Every answer is full, with alerts spread over [0, 1000).
        let reading = Reading {
            more: true,
            earliest: Some(0),
            latest: Some(999),
            median: None,
        };
        while let Some(slice) = pending.pop() {
            match next(slice, &reading) {
                Next::Split(a, b) => {
                    assert_eq!(a.from, slice.from);
                    assert_eq!(a.to, b.from);
                    assert_eq!(b.to, slice.to);
                    pending.push(a);
                    pending.push(b);
                }
                Next::Page | Next::Done => done.push(slice),
            }
            assert!(done.len() + pending.len() < 5_000, "splitting ends");
        }
        assert!(done.iter().any(|s| s.from.is_none()) && done.iter().any(|s| s.to.is_none()));
    }

    #[test]
    fn clustered_times_split_at_the_median_not_the_middle() {
        // 9,000 alerts at one instant and 1,000 a second later: the middle of the range would
        // take many halvings to part them; the median parts them at once.
        let mut times: Vec<i64> = std::iter::repeat_n(0, 9_000)
            .chain(std::iter::repeat_n(1_000_000, 1_000))
            .collect();
        let reading = Reading::of(true, &mut times);
        assert_eq!(reading.median, Some(0));
        assert_eq!(
            next(
                Slice {
                    from: None,
                    to: None
                },
                &reading
            ),
            Next::Split(
                Slice {
                    from: None,
                    to: Some(500_000)
                },
                Slice {
                    from: Some(500_000),
                    to: None
                }
            ),
            "a median equal to the low end cannot part: the middle does"
        );
        let mut times: Vec<i64> = std::iter::repeat_n(0, 1_000)
            .chain(std::iter::repeat_n(1_000_000, 9_000))
            .chain([5])
            .collect();
        let reading = Reading::of(true, &mut times);
        assert_eq!(
            next(
                Slice {
                    from: Some(0),
                    to: None
                },
                &reading
            ),
            Next::Split(
                Slice {
                    from: Some(0),
                    to: Some(1_000_000)
                },
                Slice {
                    from: Some(1_000_000),
                    to: None
                }
            )
        );
    }

    #[test]
    fn filters_and_the_first_slice() {
        let slice = Slice {
            from: Some(1_795_340_841_162_000),
            to: Some(1_795_340_841_162_001),
        };
        assert_eq!(
            filter(slice, "lastUpdateTime"),
            "lastUpdateTime ge 2026-11-22T09:47:21.162000Z and lastUpdateTime lt 2026-11-22T09:47:21.162001Z"
        );
        assert_eq!(
            filter(
                Slice {
                    from: None,
                    to: None
                },
                "lastUpdateDateTime"
            ),
            ""
        );
        let now = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap();
        let minute = std::time::Duration::from_secs(60);
        assert_eq!(
            first(Some(120_000_000), minute, None, now).from,
            Some(60_000_000)
        );
        assert_eq!(
            first(None, minute, Some(minute), now).from,
            Some(999_940_000_000)
        );
        assert_eq!(first(None, minute, None, now).from, None);
    }
}
