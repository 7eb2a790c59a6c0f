//! Deserializers that accept the shapes the API has been seen to send instead of failing a whole
//! response on one odd field: a number where a string was documented, a string where a number was,
//! null or a single item where an array was. The raw alert is kept verbatim elsewhere, so nothing
//! is lost when a typed field cannot hold what was sent. Visitors, not `Value`, so the common
//! case costs no extra allocation.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, StrDeserializer};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::json::escape::unescape;
use crate::json::scan::Kind;

/// Text from the alert: borrowed from it unless an escape had to be decoded.
pub type Text<'a> = Cow<'a, str>;

/// A value read from its verbatim slice, one the alert's scan already checked.
pub fn field<'a, T>(
    value: &'a str,
    read: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::StrRead<'a>>,
    ) -> serde_json::Result<T>,
) -> serde_json::Result<T> {
    read(&mut serde_json::Deserializer::from_str(value))
}

/// A scalar as text. Most are a string without escapes or `null`: the slice is then the value,
/// read without a parser; anything else as [`opt_string`] reads it.
pub fn text_of(value: &str, kind: Kind) -> serde_json::Result<Option<Text<'_>>> {
    match kind {
        Kind::Null => Ok(None),
        Kind::String { escaped: false } => Ok(Some(Cow::Borrowed(&value[1..value.len() - 1]))),
        Kind::String { escaped: true } => match unescape(&value[1..value.len() - 1]) {
            Some(decoded) => Ok(Some(Cow::Owned(decoded))),
            None => field(value, |de| opt_string(de)),
        },
        _ => field(value, |de| opt_string(de)),
    }
}

/// A number: plain integers read directly, anything else (a string, a float) as [`opt_i64`].
pub fn number_of(value: &str, kind: Kind) -> serde_json::Result<Option<i64>> {
    match kind {
        Kind::Null => Ok(None),
        _ => match value.parse::<i64>() {
            Ok(n) => Ok(Some(n)),
            Err(_) => field(value, |de| opt_i64(de)),
        },
    }
}

/// A member's name (as between its quotes), borrowed unless it holds an escape.
#[inline(always)]
pub fn name_of(name: &str, escaped: bool) -> serde_json::Result<Text<'_>> {
    if !escaped {
        return Ok(Cow::Borrowed(name));
    }
    match unescape(name) {
        Some(decoded) => Ok(Cow::Owned(decoded)),
        None => serde_json::from_str::<String>(&format!("\"{name}\"")).map(Cow::Owned),
    }
}

struct AnyScalar;

impl<'de> Visitor<'de> for AnyScalar {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, number, boolean or null")
    }
    // The common case: a string without escapes, borrowed from the response.
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

pub fn opt_string<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    de.deserialize_any(AnyScalar)
}

pub fn opt_i64<'de, D: Deserializer<'de>>(de: D) -> Result<Option<i64>, D::Error> {
    Ok(opt_string(de)?.and_then(|text| {
        let text = text.trim();
        text.parse::<i64>().ok().or_else(|| {
            text.parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0)
                .map(|f| f as i64)
        })
    }))
}

/// One item of a lenient array: an object (or string) that fits `T`, or nothing.
struct Item<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Item<T> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct ItemVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ItemVisitor<T> {
            type Value = Item<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an item")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(|t| Item(Some(t)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Item(T::deserialize(StrDeserializer::<E>::new(v)).ok()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Item(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Item(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Item(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Item(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Item(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Item(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Item(None))
            }
        }
        de.deserialize_any(ItemVisitor(PhantomData))
    }
}

/// An array that may come as null, a single item, or with items that do not fit (skipped).
pub fn vec_of<'de, D: Deserializer<'de>, T: Deserialize<'de>>(de: D) -> Result<Vec<T>, D::Error> {
    struct SeqVisitor<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for SeqVisitor<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(Item(item)) = seq.next_element::<Item<T>>()? {
                items.extend(item);
            }
            Ok(items)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map)).map(|t| vec![t])
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(T::deserialize(StrDeserializer::<E>::new(v))
                .ok()
                .into_iter()
                .collect())
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
    de.deserialize_any(SeqVisitor(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Probe<'a> {
        #[serde(borrow, default, deserialize_with = "opt_string")]
        s: Option<Cow<'a, str>>,
        #[serde(default, deserialize_with = "opt_i64")]
        n: Option<i64>,
        #[serde(default, deserialize_with = "vec_of")]
        v: Vec<Cow<'a, str>>,
    }

    #[test]
    fn odd_shapes() {
        let probe: Probe = serde_json::from_str(r#"{"s":5,"n":"12","v":"one"}"#).unwrap();
        assert_eq!(
            probe,
            Probe {
                s: Some("5".into()),
                n: Some(12),
                v: vec!["one".into()]
            }
        );
        let probe: Probe =
            serde_json::from_str(r#"{"s":{"a":1},"n":[1],"v":[1,"x",null,["y"]]}"#).unwrap();
        assert_eq!(
            probe,
            Probe {
                s: None,
                n: None,
                v: vec!["x".into()]
            }
        );
        let probe: Probe = serde_json::from_str(r#"{"s":null,"n":3.0,"v":null}"#).unwrap();
        assert_eq!(
            probe,
            Probe {
                s: None,
                n: Some(3),
                v: vec![]
            }
        );
    }
}
