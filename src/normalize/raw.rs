//! `raw`: the Defender alert exactly as the API sent it, inside a small envelope with the match
//! context. For pipelines that do their own parsing.

use serde::Serialize;

use super::{EventContext, Provenance};
use crate::defender::alert::Verbatim;
use crate::defender::PolledAlert;

#[derive(Serialize)]
struct RawEvent<'a> {
    mde_watch: Provenance<'a>,
    alert: Verbatim<'a>,
}

pub fn encode(alert: &PolledAlert, context: &EventContext) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&RawEvent {
        mde_watch: Provenance::from(context),
        alert: alert.verbatim(),
    })
}
