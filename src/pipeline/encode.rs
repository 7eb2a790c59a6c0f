//! The batch's events: each alert encoded once per format the sinks use, and shrunk for a sink
//! with a size limit where an event is over it.

use std::collections::HashMap;

use super::events::EventShrunk;
use super::{Candidate, Pipeline, PipelineError};
use crate::normalize::{self, Change, EventContext, Format, Severity};
use crate::sinks::{Events, OutEvent, Sink};

impl Pipeline {
    /// Encodes once per format; a sink with a size limit gets its own copy where an event is over.
    pub(super) fn encode(
        &self,
        to_emit: &[(Candidate, Change)],
        observed_at: &str,
    ) -> Result<Vec<Events>, PipelineError> {
        let mut encoded: HashMap<Format, Events> = HashMap::new();
        let mut per_sink = Vec::with_capacity(self.sinks.len());
        for sink in &self.sinks {
            let format = sink.format();
            let events = match encoded.get(&format) {
                Some(events) => events.clone(),
                None => {
                    let mut events = Vec::with_capacity(to_emit.len());
                    for (candidate, change) in to_emit {
                        let context = self.context(candidate, *change, observed_at);
                        events.push(out_event(format, candidate, &context)?);
                    }
                    let events: Events = events.into();
                    encoded.insert(format, events.clone());
                    events
                }
            };
            let over = |event: &OutEvent| {
                sink.payload_limit(event)
                    .is_some_and(|limit| event.payload().len() > limit)
            };
            per_sink.push(if events.iter().any(over) {
                self.fit(sink.as_ref(), &events, to_emit, observed_at)?
                    .into()
            } else {
                events
            });
        }
        Ok(per_sink)
    }

    fn context<'a>(
        &'a self,
        candidate: &'a Candidate,
        change: Change,
        observed_at: &'a str,
    ) -> EventContext<'a> {
        EventContext {
            found_by: candidate.found_by,
            ..EventContext::new(
                &candidate.matches,
                &self.tenant_id,
                &self.collector,
                change,
                observed_at,
            )
        }
    }

    /// For a sink with a size limit (syslog): an event over it is shrunk into a whole, smaller
    /// event of its format (normalize::encode_within), counted and logged once per alert.
    fn fit(
        &self,
        sink: &dyn Sink,
        events: &[OutEvent],
        to_emit: &[(Candidate, Change)],
        observed_at: &str,
    ) -> Result<Vec<OutEvent>, PipelineError> {
        let mut fitted = Vec::with_capacity(events.len());
        for (event, (candidate, change)) in events.iter().zip(to_emit) {
            let limit = match sink.payload_limit(event) {
                Some(limit) if event.payload().len() > limit => limit,
                _ => {
                    fitted.push(event.clone());
                    continue;
                }
            };
            let context = self.context(candidate, *change, observed_at);
            let shrunk =
                normalize::encode_within(sink.format(), &candidate.polled, &context, limit)?;
            EventShrunk {
                sink: sink.name(),
                alert_id: event.alert_id(),
                bytes: event.payload().len(),
                shrunk_to: shrunk.payload.len(),
                limit,
                fits: shrunk.fits,
            }
            .emit(&self.counters);
            fitted.push(event.with_payload(shrunk.payload));
        }
        Ok(fitted)
    }
}

fn out_event(
    format: Format,
    candidate: &Candidate,
    context: &EventContext,
) -> Result<OutEvent, PipelineError> {
    let alert = &candidate.polled.alert();
    let kinds = {
        let user = candidate
            .matches
            .iter()
            .any(|m| m.kind == crate::watchlist::EntryKind::User);
        let file = candidate
            .matches
            .iter()
            .any(|m| m.kind == crate::watchlist::EntryKind::File);
        match (user, file) {
            (true, true) => "user,file",
            (false, true) => "file",
            _ => "user",
        }
    };
    Ok(OutEvent::new(
        normalize::encode(format, &candidate.polled, context)?,
        &alert.id,
        &candidate.matches,
        Severity::parse(alert.severity.as_deref()),
        kinds,
        alert.created_or_updated_ms(),
    ))
}
