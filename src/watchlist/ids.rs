//! The two kinds of watchlist id and their rules (docs/microsoft-api.md §3): the user endpoint
//! takes the account name only, never the UPN; the file endpoint takes SHA-1 only.

use std::fmt;

/// An account name as `/api/users/{id}/alerts` expects it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

/// A SHA-1 hash, 40 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sha1(String);

impl UserId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Sha1 {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Sha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a user value was rewritten; the caller turns it into a warning naming the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserNote {
    StrippedUpnDomain,
    StrippedNetbiosDomain,
}

/// Characters Active Directory forbids in an account name (sAMAccountName), plus the separators
/// that would change the URL path (docs/microsoft-api.md §3).
const FORBIDDEN_USER_CHARS: &[char] = &[
    '"', '/', '\\', '[', ']', ':', ';', '|', '=', ',', '+', '*', '?', '<', '>', '@', '%', '#',
];
const MAX_USER_LEN: usize = 256;

/// Parses a user value. `user1@contoso.com` and `CONTOSO\user1` become `user1` with a note.
pub fn parse_user(raw: &str) -> Result<(UserId, Option<UserNote>), String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("empty user name".into());
    }
    let (name, note) = if let Some((name, domain)) = trimmed.split_once('@') {
        if domain.is_empty() || name.is_empty() {
            return Err(format!("'{raw}' is not a user name or UPN"));
        }
        (name, Some(UserNote::StrippedUpnDomain))
    } else if let Some((domain, name)) = trimmed.split_once('\\') {
        if domain.is_empty() || name.is_empty() {
            return Err(format!("'{raw}' is not a DOMAIN\\user name"));
        }
        (name, Some(UserNote::StrippedNetbiosDomain))
    } else {
        (trimmed, None)
    };
    if let Some(bad) = name
        .chars()
        .find(|c| FORBIDDEN_USER_CHARS.contains(c) || c.is_control())
    {
        return Err(format!(
            "'{raw}' cannot be a user name: it contains {bad:?}, which account names never hold"
        ));
    }
    if name.chars().count() > MAX_USER_LEN {
        return Err(format!(
            "'{raw}' is longer than {MAX_USER_LEN} characters; not a user name"
        ));
    }
    if name.chars().all(|c| c == '.' || c == ' ') {
        return Err(format!("'{raw}' cannot be a user name"));
    }
    Ok((UserId(name.to_string()), note))
}

/// Parses a file hash. Only SHA-1 is accepted; MD5 and SHA-256 get a message that says so.
pub fn parse_sha1(raw: &str) -> Result<Sha1, String> {
    let trimmed = raw.trim();
    let all_hex = !trimmed.is_empty() && trimmed.chars().all(|c| c.is_ascii_hexdigit());
    match (all_hex, trimmed.len()) {
        (true, 40) => Ok(Sha1(trimmed.to_ascii_lowercase())),
        (true, 32) => Err(format!(
            "'{trimmed}' looks like MD5: the API accepts SHA-1 only (40 hex digits)"
        )),
        (true, 64) => Err(format!(
            "'{trimmed}' looks like SHA-256: the API accepts SHA-1 only (40 hex digits)"
        )),
        (true, n) => Err(format!(
            "'{trimmed}' has {n} hex digits; a SHA-1 has exactly 40"
        )),
        (false, _) => Err(format!(
            "'{trimmed}' is not a SHA-1 hash (40 hex digits expected)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::says;

    #[test]
    fn plain_user_is_kept() {
        assert_eq!(parse_user("user1").unwrap(), (UserId("user1".into()), None));
    }

    #[test]
    fn upn_and_netbios_forms_are_stripped_with_a_note() {
        assert_eq!(
            parse_user("user1@contoso.com").unwrap(),
            (UserId("user1".into()), Some(UserNote::StrippedUpnDomain))
        );
        assert_eq!(
            parse_user("CONTOSO\\user1").unwrap(),
            (
                UserId("user1".into()),
                Some(UserNote::StrippedNetbiosDomain)
            )
        );
    }

    #[test]
    fn impossible_user_names_are_rejected_naming_the_value() {
        for bad in [
            "us/er",
            "a|b",
            "",
            "   ",
            "x*y",
            "user\u{7}",
            "..",
            "@contoso.com",
        ] {
            let err = parse_user(bad).unwrap_err();
            assert!(
                err.contains(bad.trim()) || bad.trim().is_empty(),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn sha1_is_lower_cased() {
        let sha = parse_sha1("6532EC91D513ACC05F43EE0AA3002599729FD3E1").unwrap();
        assert_eq!(sha.as_str(), "6532ec91d513acc05f43ee0aa3002599729fd3e1");
    }

    #[test]
    fn md5_and_sha256_are_named() {
        let md5 = parse_sha1("d41d8cd98f00b204e9800998ecf8427e").unwrap_err();
        says(&md5, "looks like MD5: the API accepts SHA-1 only");
        let sha256 = parse_sha1(&"a".repeat(64)).unwrap_err();
        says(&sha256, "looks like SHA-256");
        assert!(parse_sha1("xyz").unwrap_err().contains("'xyz'"));
        assert!(parse_sha1(&"b".repeat(39))
            .unwrap_err()
            .contains("39 hex digits"));
    }
}
