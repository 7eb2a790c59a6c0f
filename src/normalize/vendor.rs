//! The `microsoft.defender_endpoint` namespace of ECS events: every top-level field of the alert
//! as the API sent it, verbatim, except those ECS already carries in its own fields. Written from
//! the members the alert's one parse kept, so fields this version does not know cost nothing.

use std::borrow::Cow;

use crate::defender::Alert;
use crate::json::JsonWriter;

/// Numeric ids the API has sent as strings: written from the typed alert, so one field never
/// changes type between events (Elasticsearch and Splunk both dislike that).
pub const NUMERIC_IDS: &[&str] = &["incidentId", "investigationId"];

/// Whether the alert's member `key` is written elsewhere: ECS holds its value in its own fields
/// (event.id, message/rule.*, @timestamp/event.*, host.*, cloud.account.id, threat.*, user.*),
/// or it is one of the [`NUMERIC_IDS`]. Asked of every member of every alert, so a `match`
/// (dispatched on length) rather than a walk through a list.
fn held_elsewhere(key: &str) -> bool {
    matches!(
        key,
        "id" | "title"
            | "description"
            | "detectorId"
            | "category"
            | "alertCreationTime"
            | "firstEventTime"
            | "lastEventTime"
            | "machineId"
            | "computerDnsName"
            | "aadTenantId"
            | "mitreTechniques"
            | "relatedUser"
            | "incidentId"
            | "investigationId"
    )
}

pub struct VendorFields<'a, 'b> {
    numbers: [Option<(&'static str, i64)>; 2],
    alert: &'a Alert<'b>,
}

impl<'a, 'b> VendorFields<'a, 'b> {
    /// The vendor members of `alert`: its members as sent, but for those ECS holds elsewhere,
    /// nulls, and the numeric ids (written from their typed values).
    pub fn of(alert: &'a Alert<'b>) -> VendorFields<'a, 'b> {
        let typed = [alert.incident_id, alert.investigation_id];
        let mut numbers = [None; 2];
        for ((slot, key), value) in numbers.iter_mut().zip(NUMERIC_IDS).zip(typed) {
            *slot = value.map(|v| (*key, v));
        }
        VendorFields { numbers, alert }
    }

    fn fields(&self) -> impl Iterator<Item = (&Cow<'a, str>, &'a str)> + '_ {
        self.alert
            .members
            .iter()
            .map(|(key, value)| (key, *value))
            // Nulls carry nothing and Elasticsearch ignores them: leave them out.
            .filter(|(key, value)| *value != "null" && !held_elsewhere(key))
    }
}

impl VendorFields<'_, '_> {
    /// The namespace as one JSON object: the numeric ids, then the members in the order sent.
    pub fn write(&self, w: &mut JsonWriter) {
        w.begin_object();
        for (key, value) in self.numbers.iter().flatten() {
            w.key(key).int(*value);
        }
        for (key, value) in self.fields() {
            match key {
                // Sent without escapes (`Alert::members`): nothing to escape.
                Cow::Borrowed(key) => w.unescaped_key(key),
                Cow::Owned(key) => w.escaped_key(key),
            }
            .raw(value);
        }
        w.end_object();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_drops_mapped_and_null() {
        let alert = Alert::read(
            r#"{"id":"a","incidentId":"7","status":"New","futureField":{"x":[1]},"classification":null,"title":"t","fu\u0074ure\"2":1}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        VendorFields::of(&alert).write(&mut JsonWriter::new(&mut out));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"incidentId":7,"status":"New","futureField":{"x":[1]},"future\"2":1}"#,
            "a name sent with escapes is written as serde_json writes it"
        );
    }

    #[test]
    fn numeric_ids_and_fields_ecs_holds_are_left_out() {
        for key in NUMERIC_IDS.iter().chain(&["id", "title", "relatedUser"]) {
            assert!(held_elsewhere(key), "{key}");
        }
        for key in ["severity", "evidence", "Id", "titles", ""] {
            assert!(!held_elsewhere(key), "{key}");
        }
    }
}
