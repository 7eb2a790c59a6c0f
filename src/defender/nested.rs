//! An alert's small nested members (`mitreTechniques`, `loggedOnUsers`, `relatedUser`, and
//! Graph's `userAccount` and file details in evidence) read from their slices, which the
//! alert's scan already checked, without a serde deserializer: that cost about a tenth of an
//! alert's read. Objects are read by [`named`]: a name sent twice keeps its first value, an
//! escaped name is decoded. What `techniques` does not take on (an object among the items)
//! goes to the lenient serde reader, whose verdict stands. The two small shapes Defender's
//! members are read into (`LoggedOnUser`, `RelatedUser`) live here with their readers.

use super::lenient::{self, Text};
use crate::json::scan::{Cursor, Kind};

/// An account logged on to the alert's device (Defender's `loggedOnUsers`, or a Graph
/// `deviceEvidence`'s).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoggedOnUser<'a> {
    /// The account's name without its domain (`accountName`), as the watchlist holds users.
    pub account_name: Option<Text<'a>>,
    /// The NetBIOS domain (`domainName`), kept for the events, not for the match.
    pub domain_name: Option<Text<'a>>,
}

/// The user an alert is about (Defender's `relatedUser`: `userName`, `domainName`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RelatedUser<'a> {
    pub user_name: Option<Text<'a>>,
    pub domain_name: Option<Text<'a>>,
}

/// An alert's techniques, room for two inside it (see [`super::alert::Members`]).
pub type Techniques<'a> = smallvec::SmallVec<[Text<'a>; 2]>;
/// An alert's logged-on users, room for one inside it.
pub type LoggedOnUsers<'a> = smallvec::SmallVec<[LoggedOnUser<'a>; 1]>;

/// `mitreTechniques`: documented as a string, sent as an array of them; null is none, and
/// items that are not strings are skipped.
pub fn techniques<'a>(value: &'a str, kind: Kind) -> serde_json::Result<Techniques<'a>> {
    let fast = match kind {
        Kind::Null => Some(Techniques::new()),
        Kind::String { .. } => lenient::text_of(value, kind)?.map(|one| smallvec::smallvec![one]),
        Kind::Array => strings(value),
        _ => None,
    };
    match fast {
        Some(techniques) => Ok(techniques),
        None => lenient::field(value, |de| lenient::vec_of(de)).map(Techniques::from_vec),
    }
}

/// `loggedOnUsers`: an array of `{accountName, domainName}` (a single object is one), items
/// of another kind skipped, anything else none.
pub fn logged_on_users<'a>(value: &'a str, kind: Kind) -> serde_json::Result<LoggedOnUsers<'a>> {
    let logged_on = |object| {
        let [account_name, domain_name] = named(object, ["accountName", "domainName"])?;
        Ok(LoggedOnUser {
            account_name,
            domain_name,
        })
    };
    match kind {
        Kind::Object => Ok(smallvec::smallvec![logged_on(value)?]),
        Kind::Array => {
            let mut users = LoggedOnUsers::new();
            let mut cursor = Cursor::new(value);
            cursor.open().map_err(syntax)?;
            while cursor.next_element().map_err(syntax)? {
                let (item, kind) = cursor.skip().map_err(syntax)?;
                if kind == Kind::Object {
                    users.push(logged_on(item)?);
                }
            }
            Ok(users)
        }
        _ => Ok(LoggedOnUsers::new()),
    }
}

/// `relatedUser`: `{userName, domainName}`, or none when it is anything else.
pub fn related_user<'a>(value: &'a str, kind: Kind) -> serde_json::Result<Option<RelatedUser<'a>>> {
    if kind != Kind::Object {
        return Ok(None);
    }
    let [user_name, domain_name] = named(value, ["userName", "domainName"])?;
    Ok(Some(RelatedUser {
        user_name,
        domain_name,
    }))
}

/// The strings of an array, other scalars and arrays skipped; None when an item is an object.
fn strings(array: &str) -> Option<Techniques<'_>> {
    let mut found = Techniques::new();
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

/// A scan error in the terms of the serde readers the alert's members share.
fn syntax(error: crate::json::scan::Syntax) -> serde_json::Error {
    <serde_json::Error as serde::de::Error>::custom(error)
}

/// The members `names` of a small object's checked slice as text, each as first sent (escaped
/// names decoded; anything else in the object ignored).
pub fn named<'a, const N: usize>(
    object: &'a str,
    names: [&str; N],
) -> serde_json::Result<[Option<Text<'a>>; N]> {
    let mut found: [Option<Option<Text<'a>>>; N] = std::array::from_fn(|_| None);
    let mut cursor = Cursor::new(object);
    cursor.open().map_err(syntax)?;
    while let Some(member) = cursor.next_member().map_err(syntax)? {
        let name = lenient::name_of(member.name, member.name_escaped)?;
        let Some(slot) = names.iter().position(|wanted| *wanted == name) else {
            continue;
        };
        if found[slot].is_none() {
            found[slot] = Some(lenient::text_of(member.value, member.kind)?);
        }
    }
    Ok(found.map(Option::flatten))
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

    /// Each shape of `mitreTechniques` reads as the serde reader reads it, or fails as it fails.
    #[test]
    fn techniques_read_as_serde_reads_them() {
        let shapes = [
            "null",
            "\"T1059\"",
            "\"T\\u0031\"",
            "[]",
            r#"["T1003","T1003.001"]"#,
            r#"[1,"T1",null,true,["x"],"T\n2"]"#,
            r#"[{"a":1},"T1"]"#,
            r#"{"accountName":"u","domainName":"D"}"#,
            "12",
            "\"\\ud800\"",
        ];
        for shape in shapes {
            let serde_techniques: serde_json::Result<Vec<Text>> =
                lenient::field(shape, |de| lenient::vec_of(de));
            assert_eq!(
                techniques(shape, kind_of(shape)).ok().map(|t| t.into_vec()),
                serde_techniques.ok(),
                "techniques of {shape}"
            );
        }
    }

    fn user<'a>(account: Option<&'a str>, domain: Option<&'a str>) -> LoggedOnUser<'a> {
        LoggedOnUser {
            account_name: account.map(Text::from),
            domain_name: domain.map(Text::from),
        }
    }

    /// Every shape of `loggedOnUsers` and `relatedUser`: odd items skipped, a name sent twice
    /// keeps its first value, escaped names decoded, scalars are none.
    #[test]
    fn users_of_every_shape() {
        let users = [
            ("null", vec![]),
            ("[]", vec![]),
            ("\"text\"", vec![]),
            ("12", vec![]),
            (
                r#"{"accountName":"u","domainName":"D"}"#,
                vec![user(Some("u"), Some("D"))],
            ),
            (
                r#"{"accountName":5,"domainName":{"x":1}}"#,
                vec![user(Some("5"), None)],
            ),
            (
                r#"{"accountName":"u","accountName":"v"}"#,
                vec![user(Some("u"), None)],
            ),
            (r#"{"acc\u006funtName":"u"}"#, vec![user(Some("u"), None)]),
            (
                r#"[{"accountName":"a"},"s",3,{"domainName":"D","accountName":"b"}]"#,
                vec![user(Some("a"), None), user(Some("b"), Some("D"))],
            ),
            (
                r#"[{"accountName":"a","accountName":"b"},[{"accountName":"c"}]]"#,
                vec![user(Some("a"), None)],
            ),
        ];
        for (shape, expected) in users {
            assert_eq!(
                logged_on_users(shape, kind_of(shape)).unwrap().into_vec(),
                expected,
                "users of {shape}"
            );
        }
        let related = related_user(
            r#"{"userName":"u","domainName":null,"x":[1],"userName":"v"}"#,
            Kind::Object,
        )
        .unwrap();
        assert_eq!(
            related,
            Some(RelatedUser {
                user_name: Some("u".into()),
                domain_name: None
            })
        );
        for shape in ["null", "[{\"userName\":\"u\"}]", "\"u\""] {
            assert_eq!(
                related_user(shape, kind_of(shape)).unwrap(),
                None,
                "{shape}"
            );
        }
        assert!(
            logged_on_users(r#"[{"accountName":"\ud800"}]"#, Kind::Array).is_err(),
            "no character: an error"
        );
    }

    #[test]
    fn named_members_are_read_first_come_with_escapes_decoded() {
        let found = named(
            r#"{"sha1":"a","x":{"sha1":"no"},"sh\u0061256":"b","sha1":"c"}"#,
            ["sha1", "sha256", "fileName"],
        )
        .unwrap();
        assert_eq!(found, [Some("a".into()), Some("b".into()), None]);
        let found = named(r#"{"fileName":7,"sha1":null}"#, ["sha1", "fileName"]).unwrap();
        assert_eq!(found, [None, Some("7".into())]);
        assert!(
            named(r#"{"sha1":"\ud800"}"#, ["sha1"]).is_err(),
            "no character: an error"
        );
    }
}
