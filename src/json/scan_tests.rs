//! The scanner and the cursor against serde_json: the same members, the same verdicts.
use super::scan::*;
use proptest::prelude::*;
use serde_json::value::RawValue;

/// serde_json's verdict on a text, as it read alerts before: checked, numbers not converted.
fn serde_reads(text: &str) -> bool {
    serde_json::from_str::<&RawValue>(text).is_ok()
}

fn ours(text: &str) -> Result<Vec<(String, String)>, Syntax> {
    match top(text)? {
        Top::Object(members) => members
            .map(|m| {
                m.map(|m| {
                    let name = if m.name_escaped {
                        serde_json::from_str(&format!("\"{}\"", m.name)).unwrap()
                    } else {
                        m.name.to_string()
                    };
                    (name, m.value.to_string())
                })
            })
            .collect(),
        Top::Other(_) => Ok(Vec::new()),
    }
}

/// An object's members read by `Cursor::next_member`, as the evidence items are read.
fn by_member(text: &str) -> Result<Vec<(String, String)>, Syntax> {
    let mut cursor = Cursor::new(text);
    cursor.open()?;
    let mut read = Vec::new();
    while let Some(m) = cursor.next_member()? {
        let name = if m.name_escaped {
            serde_json::from_str(&format!("\"{}\"", m.name)).unwrap()
        } else {
            m.name.to_string()
        };
        read.push((name, m.value.to_string()));
    }
    cursor.finish()?;
    Ok(read)
}

/// serde_json's verdict on a text that must be an object.
fn serde_reads_object(text: &str) -> bool {
    serde_reads(text) && text.trim_start().starts_with('{')
}

#[test]
fn members_come_with_their_verbatim_values() {
    let text = r#" {"id":"a\"1" , "n":-1.5e+3,"o":{"x":[1,{"y":null}]},"b":true,"s":"line\nbreak","e":[] } "#;
    let members: Vec<Member> = match top(text).unwrap() {
        Top::Object(m) => m.collect::<Result<_, _>>().unwrap(),
        Top::Other(_) => panic!("an object"),
    };
    let seen: Vec<(&str, &str, Kind)> = members.iter().map(|m| (m.name, m.value, m.kind)).collect();
    assert_eq!(
        seen,
        [
            ("id", r#""a\"1""#, Kind::String { escaped: true }),
            ("n", "-1.5e+3", Kind::Number),
            ("o", r#"{"x":[1,{"y":null}]}"#, Kind::Object),
            ("b", "true", Kind::Bool),
            ("s", r#""line\nbreak""#, Kind::String { escaped: true }),
            ("e", "[]", Kind::Array),
        ]
    );
}

#[test]
fn broken_text_is_refused_where_serde_json_refuses_it() {
    for text in [
        "",
        "{",
        "{\"a\"",
        "{\"a\":}",
        "{\"a\":1,}",
        "{\"a\":1 \"b\":2}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":-}",
        "{\"a\":1e}",
        "{\"a\":tru}",
        "{\"a\":\"x}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12g4\"}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":[1,]}",
        "{\"a\":[1 2]}",
        "{a:1}",
        "{\"a\":1}x",
        "[1",
        "{\"a\":1}}",
        "[}",
        "{]",
        "[\"a\":1]",
        "{\"a\":[}}",
    ] {
        assert!(!serde_reads(text), "{text:?}");
        assert!(ours(text).is_err(), "{text:?} was read");
        assert!(
            by_member(text).is_err(),
            "{text:?} was read member by member"
        );
    }
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
    assert!(ours(&deep).is_err(), "nesting beyond serde_json's limit");
    assert!(matches!(top("[1, 2]"), Ok(Top::Other(Kind::Array))));
    assert!(matches!(
        top(" \"x\" "),
        Ok(Top::Other(Kind::String { .. }))
    ));
}

/// Reads a whole text through the cursor, opening every object and array: the value it holds.
fn walk(cursor: &mut Cursor) -> Result<serde_json::Value, Syntax> {
    let value = match cursor.peek() {
        Some(b'{') => {
            cursor.open()?;
            let mut map = serde_json::Map::new();
            while let Some((name, _)) = cursor.next_name()? {
                let name: String = serde_json::from_str(&format!("\"{name}\"")).unwrap();
                map.insert(name, walk(cursor)?);
            }
            serde_json::Value::Object(map)
        }
        Some(b'[') => {
            cursor.open()?;
            let mut items = Vec::new();
            while cursor.next_element()? {
                items.push(walk(cursor)?);
            }
            serde_json::Value::Array(items)
        }
        _ => {
            let (text, _) = cursor.skip()?;
            serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
        }
    };
    Ok(value)
}

fn walked(text: &str) -> Result<serde_json::Value, Syntax> {
    let mut cursor = Cursor::new(text);
    let value = walk(&mut cursor)?;
    cursor.finish()?;
    Ok(value)
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        ".*".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// Every object serde_json writes reads back member for member; any cut or changed byte
    /// is refused exactly when serde_json refuses it.
    #[test]
    fn agrees_with_serde_json(
        members in prop::collection::btree_map(".{0,8}", json_value(), 0..8),
        pretty in any::<bool>(),
        cut in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let object = serde_json::Value::Object(members.into_iter().collect());
        let text = if pretty {
            serde_json::to_string_pretty(&object).unwrap()
        } else {
            serde_json::to_string(&object).unwrap()
        };
        let read = ours(&text).unwrap();
        prop_assert_eq!(&by_member(&text).unwrap(), &read, "next_member reads what next_name and skip read");
        // Compared with serde_json's reading of the same text (floats round the same way).
        let reread: serde_json::Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(walked(&text).unwrap(), reread, "the cursor, opening everything");
        let expected: Vec<(String, String)> = object
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), if pretty { serde_json::to_string_pretty(v).unwrap() } else { v.to_string() }))
            .collect();
        if !pretty {
            prop_assert_eq!(read, expected);
        } else {
            prop_assert_eq!(read.len(), expected.len());
        }
        // The same text cut short, or with one byte replaced (kept UTF-8 by choosing ASCII).
        let at = cut.index(text.len());
        if text.is_char_boundary(at) {
            let short = &text[..at];
            prop_assert_eq!(ours(short).is_ok(), serde_reads(short), "{:?}", short);
            prop_assert_eq!(walked(short).is_ok(), serde_reads(short), "{:?}", short);
            prop_assert_eq!(by_member(short).is_ok(), serde_reads_object(short), "{:?}", short);
            let mut changed = text.clone().into_bytes();
            if changed[at].is_ascii() {
                changed[at] = byte & 0x7f;
                let changed = String::from_utf8(changed).unwrap();
                prop_assert_eq!(ours(&changed).is_ok(), serde_reads(&changed), "{:?}", changed);
                prop_assert_eq!(walked(&changed).is_ok(), serde_reads(&changed), "{:?}", changed);
                prop_assert_eq!(by_member(&changed).is_ok(), serde_reads_object(&changed), "{:?}", changed);
            }
        }
    }
}
