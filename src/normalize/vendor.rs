//! The `microsoft.defender_endpoint` namespace of ECS events: every top-level field of the alert
//! as the API sent it, verbatim, except those ECS already carries in its own fields. Borrowed
//! slices of the raw JSON, so fields this version does not know are kept at no cost.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Alert fields whose values ECS holds elsewhere (event.id, message/rule.*, @timestamp/event.*,
/// host.*, cloud.account.id, threat.*, user.*).
const MAPPED_TO_ECS: &[&str] = &[
    "id",
    "title",
    "description",
    "detectorId",
    "category",
    "alertCreationTime",
    "firstEventTime",
    "lastEventTime",
    "machineId",
    "computerDnsName",
    "aadTenantId",
    "mitreTechniques",
    "relatedUser",
];

/// Numeric ids the API has sent as strings: written from the typed alert, so one field never
/// changes type between events (Elasticsearch and Splunk both dislike that).
pub const NUMERIC_IDS: &[&str] = &["incidentId", "investigationId"];

pub struct VendorFields<'a> {
    numbers: Vec<(&'static str, i64)>,
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> VendorFields<'a> {
    /// `numbers` are the typed values of [`NUMERIC_IDS`], in that order.
    pub fn parse(
        raw: &'a RawValue,
        numbers: [Option<i64>; 2],
    ) -> serde_json::Result<VendorFields<'a>> {
        let mut parsed: VendorFields = serde_json::from_str(raw.get())?;
        parsed.numbers = NUMERIC_IDS
            .iter()
            .zip(numbers)
            .filter_map(|(k, v)| v.map(|v| (*k, v)))
            .collect();
        Ok(parsed)
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        de.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for VendorFields<'de> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = VendorFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an alert object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::new();
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    // Nulls carry nothing and Elasticsearch ignores them: leave them out.
                    let skip = value.get() == "null"
                        || MAPPED_TO_ECS.contains(&key.as_ref())
                        || NUMERIC_IDS.contains(&key.as_ref());
                    if !skip {
                        fields.push((key, value));
                    }
                }
                Ok(VendorFields {
                    numbers: Vec::new(),
                    fields,
                })
            }
        }
        de.deserialize_map(FieldsVisitor)
    }
}

impl Serialize for VendorFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.numbers.len() + self.fields.len()))?;
        for (key, value) in &self.numbers {
            map.serialize_entry(key, value)?;
        }
        for (key, value) in &self.fields {
            map.serialize_entry(key.as_ref(), value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_drops_mapped_and_null() {
        let raw = RawValue::from_string(
            r#"{"id":"a","incidentId":"7","status":"New","futureField":{"x":[1]},"classification":null,"title":"t"}"#.into(),
        )
        .unwrap();
        let fields = VendorFields::parse(&raw, [Some(7), None]).unwrap();
        assert_eq!(
            serde_json::to_string(&fields).unwrap(),
            r#"{"incidentId":7,"status":"New","futureField":{"x":[1]}}"#
        );
    }
}
