//! An alert's small nested members (`mitreTechniques`, `loggedOnUsers`, `relatedUser`, and
//! Graph's `userAccount` and file details in evidence) read from their slices, which the
//! alert's scan already checked, without a serde deserializer: that cost about a tenth of an
//! alert's read. What the readers of Defender's members do not take on (an object where a name
//! was expected, a name sent twice or escaped) goes to the lenient serde readers, whose verdict
//! and errors stand, so every shape reads as it did. Graph's objects are read by [`named`]
//! alone: a name sent twice keeps its first value. The two small shapes Defender's members are
//! read into (`LoggedOnUser`, `RelatedUser`) live here with their readers.

use serde::Deserialize;

use super::lenient::{self, Text};
use crate::json::scan::{Cursor, Kind};

/// An account logged on to the alert's device (Defender's `loggedOnUsers`, or a Graph
/// `deviceEvidence`'s).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LoggedOnUser<'a> {
    /// The account's name without its domain (`accountName`), as the watchlist holds users.
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    pub account_name: Option<Text<'a>>,
    /// The NetBIOS domain (`domainName`), kept for the events, not for the match.
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    pub domain_name: Option<Text<'a>>,
}

/// The user an alert is about (Defender's `relatedUser`).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RelatedUser<'a> {
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    pub user_name: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    pub domain_name: Option<Text<'a>>,
}

/// `mitreTechniques`: documented as a string, sent as an array of them; null is none, and
/// items that are not strings are skipped.
pub fn techniques<'a>(value: &'a str, kind: Kind) -> serde_json::Result<Vec<Text<'a>>> {
    let fast = match kind {
        Kind::Null => Some(Vec::new()),
        Kind::String { .. } => lenient::text_of(value, kind)?.map(|one| vec![one]),
        Kind::Array => strings(value),
        _ => None,
    };
    match fast {
        Some(techniques) => Ok(techniques),
        None => lenient::field(value, |de| lenient::vec_of(de)),
    }
}

/// `loggedOnUsers`: an array of `{accountName, domainName}` (a single object is one), items
/// of another kind skipped.
pub fn logged_on_users<'a>(
    value: &'a str,
    kind: Kind,
) -> serde_json::Result<Vec<LoggedOnUser<'a>>> {
    let logged_on = |[account_name, domain_name]: [Option<Text<'a>>; 2]| LoggedOnUser {
        account_name,
        domain_name,
    };
    let fast = match kind {
        Kind::Object => pair(value, ["accountName", "domainName"]).map(|p| vec![logged_on(p)]),
        Kind::Array => objects(value, |item| pair(item, ["accountName", "domainName"]))
            .map(|pairs| pairs.into_iter().map(logged_on).collect()),
        _ => Some(Vec::new()),
    };
    match fast {
        Some(users) => Ok(users),
        None => lenient::field(value, |de| lenient::vec_of(de)),
    }
}

/// `relatedUser`: `{userName, domainName}`, or none when it is anything else.
pub fn related_user<'a>(value: &'a str, kind: Kind) -> serde_json::Result<Option<RelatedUser<'a>>> {
    if kind != Kind::Object {
        return Ok(None);
    }
    match pair(value, ["userName", "domainName"]) {
        Some([user_name, domain_name]) => Ok(Some(RelatedUser {
            user_name,
            domain_name,
        })),
        None => lenient::field(value, |de| lenient::opt_object(de)),
    }
}

/// The strings of an array, other scalars and arrays skipped; None when an item is an object.
fn strings(array: &str) -> Option<Vec<Text<'_>>> {
    let mut found = Vec::new();
    each(array, |value, kind| match kind {
        Kind::Object => None,
        Kind::String { .. } => {
            found.extend(lenient::text_of(value, kind).ok()?);
            Some(())
        }
        _ => Some(()),
    })?;
    Some(found)
}

/// What `read` makes of each object of an array, other items skipped; None when it gives up.
fn objects<'a, T>(array: &'a str, read: impl Fn(&'a str) -> Option<T>) -> Option<Vec<T>> {
    let mut found = Vec::new();
    each(array, |value, kind| {
        if kind == Kind::Object {
            found.push(read(value)?);
        }
        Some(())
    })?;
    Some(found)
}

/// Calls `each` with every item of an array's checked slice; None as soon as it does.
fn each<'a>(array: &'a str, mut each: impl FnMut(&'a str, Kind) -> Option<()>) -> Option<()> {
    let mut cursor = Cursor::new(array);
    cursor.open().ok()?;
    while cursor.next_element().ok()? {
        let (value, kind) = cursor.skip().ok()?;
        each(value, kind)?;
    }
    Some(())
}

/// The two named members of a small object as text (anything else in it ignored); None when a
/// name comes twice or escaped, as serde's derived reader judges those.
fn pair<'a>(object: &'a str, names: [&str; 2]) -> Option<[Option<Text<'a>>; 2]> {
    match named(object, names) {
        Ok((found, true)) => Some(found),
        _ => None,
    }
}

/// The members `names` of a small object's checked slice as text, each as first sent (escaped
/// names decoded; anything else in the object ignored), and whether the object was plain: no
/// name sent twice or with escapes.
pub fn named<'a, const N: usize>(
    object: &'a str,
    names: [&str; N],
) -> serde_json::Result<([Option<Text<'a>>; N], bool)> {
    let mut found: [Option<Option<Text<'a>>>; N] = std::array::from_fn(|_| None);
    let mut plain = true;
    let mut cursor = Cursor::new(object);
    let syntax = <serde_json::Error as serde::de::Error>::custom;
    cursor.open().map_err(syntax)?;
    while let Some(member) = cursor.next_member().map_err(syntax)? {
        plain &= !member.name_escaped;
        let name = lenient::name_of(member.name, member.name_escaped)?;
        let Some(slot) = names.iter().position(|wanted| *wanted == name) else {
            continue;
        };
        if found[slot].is_some() {
            plain = false;
            continue;
        }
        found[slot] = Some(lenient::text_of(member.value, member.kind)?);
    }
    Ok((found.map(Option::flatten), plain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::scan::top;

    fn kind_of(value: &str) -> Kind {
        match top(value).unwrap() {
            crate::json::scan::Top::Object(_) => Kind::Object,
            crate::json::scan::Top::Other(kind) => kind,
        }
    }

    /// Each shape reads as the serde readers read it, or fails as they fail.
    #[test]
    fn every_shape_reads_as_serde_reads_it() {
        let shapes = [
            "null",
            "\"T1059\"",
            "\"T\\u0031\"",
            "[]",
            r#"["T1003","T1003.001"]"#,
            r#"[1,"T1",null,true,["x"],"T\n2"]"#,
            r#"[{"a":1},"T1"]"#,
            r#"{"accountName":"u","domainName":"D"}"#,
            r#"{"userName":"u","domainName":null,"x":[1]}"#,
            r#"{"accountName":5,"domainName":{"x":1}}"#,
            r#"{"accountName":"u","accountName":"v"}"#,
            r#"{"acc\u006funtName":"u"}"#,
            r#"[{"accountName":"a"},"s",3,{"domainName":"D","accountName":"b"}]"#,
            r#"[{"accountName":"a","accountName":"b"}]"#,
            "12",
            "\"text\"",
        ];
        for shape in shapes {
            let kind = kind_of(shape);
            let serde_techniques: serde_json::Result<Vec<Text>> =
                lenient::field(shape, |de| lenient::vec_of(de));
            let serde_users: serde_json::Result<Vec<LoggedOnUser>> =
                lenient::field(shape, |de| lenient::vec_of(de));
            let serde_related: serde_json::Result<Option<RelatedUser>> =
                lenient::field(shape, |de| lenient::opt_object(de));
            assert_eq!(
                techniques(shape, kind).ok(),
                serde_techniques.ok(),
                "techniques of {shape}"
            );
            assert_eq!(
                logged_on_users(shape, kind).ok(),
                serde_users.ok(),
                "users of {shape}"
            );
            assert_eq!(
                related_user(shape, kind).ok(),
                serde_related.ok(),
                "related user of {shape}"
            );
        }
    }

    #[test]
    fn named_members_are_read_first_come_with_escapes_decoded() {
        let (found, plain) = named(
            r#"{"sha1":"a","x":{"sha1":"no"},"sh\u0061256":"b","sha1":"c"}"#,
            ["sha1", "sha256", "fileName"],
        )
        .unwrap();
        assert_eq!(found, [Some("a".into()), Some("b".into()), None]);
        assert!(!plain, "a name sent twice and one escaped");
        let (found, plain) = named(r#"{"fileName":7,"sha1":null}"#, ["sha1", "fileName"]).unwrap();
        assert_eq!(found, [None, Some("7".into())]);
        assert!(plain);
        assert!(
            named(r#"{"sha1":"\ud800"}"#, ["sha1"]).is_err(),
            "no character: an error"
        );
    }
}
