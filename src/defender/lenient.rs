//! Deserializers that accept the shapes the API has been seen to send instead of failing a whole
//! response on one odd field: a number where a string was documented, a string where a number was,
//! null where an array was. The raw alert is kept verbatim elsewhere, so nothing is lost.

use serde::de::{DeserializeOwned, Deserializer};
use serde::Deserialize;
use serde_json::Value;

pub fn opt_string<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

pub fn opt_i64<'de, D: Deserializer<'de>>(de: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// An array that may come as null, a single item, or items that do not fit (skipped).
pub fn vec_of<'de, D: Deserializer<'de>, T: DeserializeOwned>(de: D) -> Result<Vec<T>, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| serde_json::from_value(item).ok())
            .collect(),
        Value::Null => Vec::new(),
        single => serde_json::from_value(single).map(|item| vec![item]).unwrap_or_default(),
    })
}

pub fn opt_object<'de, D: Deserializer<'de>, T: DeserializeOwned>(de: D) -> Result<Option<T>, D::Error> {
    Ok(serde_json::from_value(Value::deserialize(de)?).ok())
}
