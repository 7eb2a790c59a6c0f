use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use tokio::sync::Semaphore;

use super::*;
use crate::watchlist::EntryKind;

/// Budget from a semaphore; a hand-over only counts the alerts given.
struct FakeIntake {
    budget: Arc<Semaphore>,
    piece: usize,
    handed: Mutex<Vec<usize>>,
}

#[async_trait::async_trait]
impl Intake for FakeIntake {
    fn try_take(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        self.budget
            .clone()
            .try_acquire_many_owned(bytes as u32)
            .ok()
    }

    async fn take(&self, bytes: usize) -> OwnedSemaphorePermit {
        let bytes = bytes.min(1000) as u32;
        self.budget.clone().acquire_many_owned(bytes).await.unwrap()
    }

    async fn before_request(&self) {}

    async fn hand_over(&self, _: Option<&Entry>, piece: EntryAlerts) -> bool {
        self.handed.lock().unwrap().push(piece.alerts.len());
        true
    }

    fn piece_bytes(&self) -> usize {
        self.piece
    }
}

fn alert() -> PolledAlert {
    PolledAlert::parse(r#"{"id":"da1"}"#).unwrap()
}

#[tokio::test]
async fn a_poll_that_waited_resumes_with_a_piece_and_spends_it_before_asking_again() {
    let intake = FakeIntake {
        budget: Arc::new(Semaphore::new(1000)),
        piece: 400,
        handed: Mutex::new(Vec::new()),
    };
    let full = intake
        .budget
        .clone()
        .acquire_many_owned(1000)
        .await
        .unwrap();
    let mut page = EntryAlerts {
        alerts: vec![alert()],
        ..EntryAlerts::default()
    };
    let mut spare = None;
    let mut full = Some(full);
    {
        let waiting = take_budget(&intake, None, &mut page, &mut spare, 50);
        tokio::pin!(waiting);
        let mut give_back = |n: usize| {
            let freed = full.as_mut().and_then(|f| f.split(n)).unwrap();
            drop(freed);
        };
        assert!(waiting.as_mut().now_or_never().is_none());
        assert_eq!(
            *intake.handed.lock().unwrap(),
            [1],
            "handed over before waiting"
        );
        give_back(100);
        assert!(
            waiting.as_mut().now_or_never().is_none(),
            "room for the chunk is not enough: it waits for a piece"
        );
        give_back(300);
        assert!(waiting.as_mut().now_or_never().is_some());
    }
    assert_eq!(page.held.as_ref().map(|h| h.num_permits()), Some(50));
    assert_eq!(spare.as_ref().map(|s| s.num_permits()), Some(350));

    // The next chunks spend what was spare, with no budget left to take.
    take_budget(&intake, None, &mut page, &mut spare, 300)
        .await
        .unwrap();
    assert_eq!(page.held.as_ref().map(|h| h.num_permits()), Some(350));
    assert_eq!(spare.as_ref().map(|s| s.num_permits()), Some(50));
    assert_eq!(intake.budget.available_permits(), 0);

    // One that needs more than is spare gives the spare back and takes anew.
    drop(full);
    take_budget(&intake, None, &mut page, &mut spare, 60)
        .await
        .unwrap();
    assert!(spare.is_none());
    assert_eq!(page.held.as_ref().map(|h| h.num_permits()), Some(410));
    assert_eq!(intake.budget.available_permits(), 1000 - 410);
}

/// Serves one answer on loopback: its headers, then `pieces` of the body `gap` apart, then
/// holds the connection open.
async fn slow_server(body: String, pieces: usize, gap: std::time::Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        while !request.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            if socket.read(&mut byte).await.unwrap() == 0 {
                return;
            }
            request.push(byte[0]);
        }
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        socket.write_all(head.as_bytes()).await.unwrap();
        let step = body.len().div_ceil(pieces);
        for piece in body.as_bytes().chunks(step).take(pieces) {
            socket.write_all(piece).await.unwrap();
            tokio::time::sleep(gap).await;
        }
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    });
    url
}

const BODY: &str = r#"{"value":[{"id":"da1"},{"id":"da2"},{"id":"da3"},{"id":"da4"}]}"#;

#[tokio::test]
async fn a_body_that_stops_coming_fails_the_page_after_the_timeout() {
    // Half the body, then nothing: the page fails, it does not wait forever.
    let url = slow_server(BODY.into(), 2, std::time::Duration::from_secs(30)).await;
    let response = reqwest::get(url).await.unwrap();
    let read = read_page(response, None, None, std::time::Duration::from_millis(300)).await;
    assert!(
        matches!(read, Err(PageError::Stalled(ref after)) if after == "300ms"),
        "{:?}",
        read.map(|page| page.found.ids)
    );
}

/// `url`'s answer read as a user's poll reads it (its ids kept for the status).
async fn read_for_user(url: &str, timeout: std::time::Duration) -> PageRead {
    let response = reqwest::get(url).await.unwrap();
    let entry = Entry::for_test(EntryKind::User, "user1");
    read_page(response, Some(&entry), None, timeout)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_body_that_keeps_coming_is_read_however_long_it_takes() {
    // Five pieces 150 ms apart: 600 ms in all, each wait under the 400 ms timeout.
    let url = slow_server(BODY.into(), 5, std::time::Duration::from_millis(150)).await;
    let read = read_for_user(&url, std::time::Duration::from_millis(400)).await;
    assert_eq!(read.found.ids, ["da1", "da2", "da3", "da4"]);
}

#[tokio::test]
async fn an_answer_keeps_the_first_ids_and_counts_every_alert() {
    let alerts: Vec<String> = (0..IDS_KEPT + 200)
        .map(|n| format!(r#"{{"id":"da{n}"}}"#))
        .collect();
    let body = format!(r#"{{"value":[{}]}}"#, alerts.join(","));
    let url = slow_server(body, 3, std::time::Duration::from_millis(10)).await;
    let read = read_for_user(&url, std::time::Duration::from_secs(5)).await;
    let first: Vec<String> = (0..IDS_KEPT).map(|n| format!("da{n}")).collect();
    assert_eq!(read.found.ids, first);
    assert_eq!(read.found.read, (IDS_KEPT + 200) as u64);
    assert_eq!(
        read.found.alerts.len(),
        IDS_KEPT + 200,
        "every alert is kept"
    );

    // A further page adds its count, and ids only while there is room.
    let mut whole = EntryAlerts {
        ids: vec!["a".into(); IDS_KEPT - 1],
        read: 5_000,
        ..EntryAlerts::default()
    };
    whole.absorb(EntryAlerts {
        ids: vec!["b".into(), "c".into()],
        read: 7,
        ..EntryAlerts::default()
    });
    assert_eq!(whole.ids.len(), IDS_KEPT);
    assert_eq!(whole.ids.last().map(String::as_str), Some("b"));
    assert_eq!(whole.read, 5_007);
}

#[tokio::test]
async fn a_feed_query_counts_its_alerts_and_keeps_no_ids() {
    let url = slow_server(BODY.into(), 1, std::time::Duration::from_millis(1)).await;
    let response = reqwest::get(url).await.unwrap();
    let read = read_page(response, None, None, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert!(read.found.ids.is_empty(), "{:?}", read.found.ids);
    assert_eq!(read.found.read, 4);
    assert_eq!(read.found.alerts.len(), 4);
}
