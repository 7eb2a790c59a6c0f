use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use tokio::sync::Semaphore;

use super::*;

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
