//! One page of alerts read as it streams (docs/microsoft-api.md §4): each alert parsed when its
//! last byte is in, the byte budget taken for the alerts kept, and pieces handed to the
//! [`Intake`] while the rest of the response still arrives, so a response is never held whole.

use tokio::sync::OwnedSemaphorePermit;

use super::chunk::{ChunkAlerts, Gathered};
use super::stream::{PageReader, StreamError};
use super::PolledAlert;
use crate::watchlist::Entry;

/// Ids an entry's status keeps of its last poll (`state list --entity`): the first read. An
/// answer of 50,000 alerts kept them all, ~2.8 MB held outside the byte budget until the sweep
/// ended and ~1.8 MB of JSON rewritten into the store at each poll; the count stays whole.
pub const IDS_KEPT: usize = 1_000;

/// The alerts one entry returned, or a piece of them handed over while the response streamed.
#[derive(Debug)]
pub struct EntryAlerts {
    /// Alerts held here (those handed over earlier in pieces are not).
    pub alerts: Vec<PolledAlert>,
    /// Alerts in the response that could not be read.
    pub rejected: Vec<String>,
    /// The ids of the first [`IDS_KEPT`] alerts the entry's response held, handed over or not
    /// (complete results; none for a feed query).
    pub ids: Vec<String>,
    /// Alerts the entry's response held, handed over or not, unreadable ones left out.
    pub read: u64,
    /// False for a piece handed over while the response was still being read.
    pub complete: bool,
    /// HTTP calls made, retries included.
    pub calls: u32,
    /// 429 answers received.
    pub throttled: u32,
    /// The byte budget the alerts here hold, given back once they are committed.
    pub held: Option<OwnedSemaphorePermit>,
    /// A further page was announced and not followed (feed queries read one page at a time).
    pub more: bool,
    /// The earliest and latest `lastUpdateTime` read (microseconds; feed queries only).
    pub earliest_update: Option<i64>,
    pub latest_update: Option<i64>,
    /// Every `lastUpdateTime` read (feed queries only): where a slice over a page is split.
    pub update_times: Vec<i64>,
    /// The API's clock when it answered the first page (its `Date` header, microseconds):
    /// every alert of the collection up to then has been read. In the API's time, like the
    /// feed's cursor, not this host's.
    pub answered_at: Option<i64>,
}

impl Default for EntryAlerts {
    fn default() -> Self {
        EntryAlerts {
            alerts: Vec::new(),
            rejected: Vec::new(),
            ids: Vec::new(),
            read: 0,
            complete: true,
            calls: 0,
            throttled: 0,
            held: None,
            more: false,
            earliest_update: None,
            latest_update: None,
            update_times: Vec::new(),
            answered_at: None,
        }
    }
}

impl EntryAlerts {
    /// Bytes of alert JSON held here.
    pub fn bytes(&self) -> usize {
        self.alerts.iter().map(|a| a.len()).sum()
    }

    /// Adds what a further page of the same query read (its alerts, ids, times and budget).
    pub(super) fn absorb(&mut self, page: EntryAlerts) {
        self.alerts.extend(page.alerts);
        self.rejected.extend(page.rejected);
        let room = IDS_KEPT.saturating_sub(self.ids.len());
        self.ids.extend(page.ids.into_iter().take(room));
        self.read += page.read;
        self.earliest_update = earlier(self.earliest_update, page.earliest_update);
        self.latest_update = later(self.latest_update, page.latest_update);
        self.update_times.extend(page.update_times);
        self.answered_at = earlier(self.answered_at, page.answered_at);
        if let Some(held) = page.held {
            keep(&mut self.held, held);
        }
    }
}

/// Where a poll puts the alerts of a response while it is still being read, so that memory is
/// bounded by a budget and not by the size of the answers. Implemented by the service's poller.
#[async_trait::async_trait]
pub trait Intake: Send + Sync {
    /// Budget for `bytes` more bytes of alerts, if there is room now.
    fn try_take(&self, bytes: usize) -> Option<OwnedSemaphorePermit>;
    /// Waits for budget; called holding none (everything held was handed over first).
    async fn take(&self, bytes: usize) -> OwnedSemaphorePermit;
    /// Waits before a request until the budget has some room.
    async fn before_request(&self);
    /// Hands over alerts of a response still being read (an entity's, or the feed's when
    /// `entry` is None); false when nobody takes them any more.
    async fn hand_over(&self, entry: Option<&Entry>, piece: EntryAlerts) -> bool;
    /// How many bytes of alerts a poll gathers before it hands them over.
    fn piece_bytes(&self) -> usize;
}

/// Why a 200's body could not be read as a page of alerts.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("response body cut short")]
    Cut(#[source] reqwest::Error),
    /// No byte of the body came within `api.timeout` (the duration, as written).
    #[error("no byte of the response body within {0}")]
    Stalled(String),
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// An element of `value` is not JSON (the text says which, without echoing it).
    #[error("{0}")]
    Malformed(String),
    #[error("stopping: nobody takes the alerts any more")]
    NobodyTakes,
}

/// What one response page held, read as it streamed, and where the next page is.
pub(super) struct PageRead {
    pub(super) found: EntryAlerts,
    pub(super) next_link: Option<String>,
}

fn earlier(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    a.into_iter().chain(b).min()
}

fn later(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    a.into_iter().chain(b).max()
}

fn keep(held: &mut Option<OwnedSemaphorePermit>, more: OwnedSemaphorePermit) {
    match held {
        Some(held) => held.merge(more),
        None => *held = Some(more),
    }
}

pub(super) async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> reqwest::Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= cap {
            break;
        }
    }
    Ok(body)
}

/// Reads a collection as it streams: each alert parsed when its last byte is in, budget taken
/// for the alerts kept, and pieces handed to `intake` (when there is one) once they reach its
/// piece size or when the budget has no room, before waiting for it. A read that waits longer
/// than `timeout` for bytes fails the page.
pub(super) async fn read_page(
    mut response: reqwest::Response,
    entry: Option<&Entry>,
    intake: Option<&dyn Intake>,
    timeout: std::time::Duration,
) -> Result<PageRead, PageError> {
    let mut reader = PageReader::new();
    let mut page = EntryAlerts::default();
    let mut read = ChunkAlerts::default();
    // Budget a wait took beyond its ask, for the chunks that follow; given back with the page.
    let mut spare = None;
    let mut gathered = Gathered::default();
    loop {
        // The timer is set only when the read waits: most chunks are in already.
        let next = tokio::time::timeout(timeout, response.chunk()).await;
        let next = next.map_err(|_| PageError::Stalled(crate::units::format_duration(timeout)))?;
        let chunk = match next {
            Ok(Some(chunk)) => match gathered.push(chunk) {
                Some(chunk) => chunk,
                None => continue,
            },
            Ok(None) => match gathered.rest() {
                Some(chunk) => chunk,
                None => break,
            },
            Err(err) => return Err(PageError::Cut(err.without_url())),
        };
        read.feed(&mut reader, &chunk)?;
        if let Some(reason) = read.malformed.take() {
            return Err(PageError::Malformed(reason));
        }
        page.rejected.append(&mut read.rejected);
        let fresh = &mut read.alerts;
        if fresh.is_empty() {
            continue;
        }
        if let Some(intake) = intake {
            let bytes = fresh.iter().map(|a| a.len()).sum();
            take_budget(intake, entry, &mut page, &mut spare, bytes).await?;
        }
        page.read += fresh.len() as u64;
        match entry {
            // An entry's status lists them; a feed query's alerts belong to no entry.
            Some(_) => {
                let room = IDS_KEPT.saturating_sub(page.ids.len());
                page.ids
                    .extend(fresh.iter().take(room).map(|a| a.alert().id.to_string()));
            }
            None => note_update_times(&mut page, fresh),
        }
        page.alerts.append(fresh);
        if let Some(intake) = intake {
            let held = page.held.as_ref().map_or(0, |h| h.num_permits());
            if held >= intake.piece_bytes() && !hand_over(intake, entry, &mut page).await {
                return Err(PageError::NobodyTakes);
            }
        }
    }
    let next_link = reader.finish()?.next_link;
    Ok(PageRead {
        found: page,
        next_link,
    })
}

/// Takes budget for `bytes` more bytes of alerts, from `spare` when it has enough. Without room
/// now, what the page holds goes out first, then it waits holding none (holding some while
/// waiting could wait forever) for a piece's worth, and what is left of that after `bytes` is
/// the next chunks' `spare`. A poll resumed with one chunk's room at every commit hands over
/// pieces of a few alerts, each a batch (a commit, a file sync): deflated answers, which reach
/// here in 4 KiB chunks, cost twice the CPU so, with 8 times the context switches.
async fn take_budget(
    intake: &dyn Intake,
    entry: Option<&Entry>,
    page: &mut EntryAlerts,
    spare: &mut Option<OwnedSemaphorePermit>,
    bytes: usize,
) -> Result<(), PageError> {
    if let Some(taken) = spare.as_mut().and_then(|spare| spare.split(bytes)) {
        keep(&mut page.held, taken);
        return Ok(());
    }
    *spare = None;
    let taken = match intake.try_take(bytes) {
        Some(taken) => taken,
        None => {
            if !page.alerts.is_empty() && !hand_over(intake, entry, page).await {
                return Err(PageError::NobodyTakes);
            }
            let mut taken = intake.take(bytes.max(intake.piece_bytes())).await;
            match taken.split(bytes) {
                Some(asked) => {
                    *spare = Some(taken);
                    asked
                }
                // One alert larger than the whole budget goes through with all of it.
                None => taken,
            }
        }
    };
    keep(&mut page.held, taken);
    Ok(())
}

/// The feed's slices are bounded by the times the API returned, never the clock's.
fn note_update_times(page: &mut EntryAlerts, fresh: &[PolledAlert]) {
    for alert in fresh {
        let updated = alert
            .alert()
            .last_update_time
            .as_deref()
            .and_then(super::time::micros);
        page.earliest_update = earlier(page.earliest_update, updated);
        page.latest_update = later(page.latest_update, updated);
        page.update_times.extend(updated);
    }
}

/// The `Date` header (RFC 9110's IMF-fixdate, which RFC 2822 parsing reads), in microseconds.
pub(super) fn server_date(headers: &reqwest::header::HeaderMap) -> Option<i64> {
    let text = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    let date = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    Some(date.timestamp_micros())
}

/// Hands the alerts `page` holds over as a piece, with the budget they hold.
pub(super) async fn hand_over(
    intake: &dyn Intake,
    entry: Option<&Entry>,
    page: &mut EntryAlerts,
) -> bool {
    let piece = EntryAlerts {
        alerts: std::mem::take(&mut page.alerts),
        rejected: std::mem::take(&mut page.rejected),
        complete: false,
        held: page.held.take(),
        ..EntryAlerts::default()
    };
    intake.hand_over(entry, piece).await
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
