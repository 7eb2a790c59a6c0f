//! Evidence items as either API sends them, read into the one [`Evidence`] shape the formats and
//! the watchlist match use. Defender for Endpoint sends flat items named by `entityType`
//! (`User` with `accountName`, `File` and `Process` with `sha1`, …). The Graph security API
//! (`alerts_v2`) types each item by `@odata.type` and nests the facts: `userEvidence.userAccount`,
//! `fileEvidence.fileDetails`, `processEvidence.imageFile` (and `parentProcessImageFile`,
//! `userAccount`), `deviceEvidence.loggedOnUsers`. Both land in the same fields, so a user or a
//! hash is found the same way whichever API the alert came from. Every field of every item
//! stays in the alert's verbatim members whatever is typed here.

use super::lenient::{self, Text};
use super::nested::{self, named, LoggedOnUsers};
use crate::json::scan::{self, Cursor, Kind};

/// An alert's evidence items, room for three inside it (a user, a file, an address; see
/// [`super::alert::Members`]).
pub type EvidenceList<'a> = smallvec::SmallVec<[Evidence<'a>; 3]>;

/// One evidence item, as either API sends it (`EvidenceItem` reads both). Only the fields
/// normalization and the match read are typed; all of them, typed or not, are in the alert's
/// members.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evidence<'a> {
    pub entity_type: Option<Text<'a>>,
    pub sha1: Option<Text<'a>>,
    pub sha256: Option<Text<'a>>,
    pub file_name: Option<Text<'a>>,
    pub file_path: Option<Text<'a>>,
    pub process_id: Option<i64>,
    pub process_command_line: Option<Text<'a>>,
    pub ip_address: Option<Text<'a>>,
    pub url: Option<Text<'a>>,
    pub account_name: Option<Text<'a>>,
    pub domain_name: Option<Text<'a>>,
    pub user_principal_name: Option<Text<'a>>,
}

impl Evidence<'_> {
    pub fn is(&self, entity_type: &str) -> bool {
        self.entity_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(entity_type))
    }
}

/// One evidence item with the fields of both shapes.
#[derive(Debug, Default)]
struct EvidenceItem<'a> {
    // Defender's flat item.
    entity_type: Option<Text<'a>>,
    sha1: Option<Text<'a>>,
    sha256: Option<Text<'a>>,
    file_name: Option<Text<'a>>,
    file_path: Option<Text<'a>>,
    process_id: Option<i64>,
    process_command_line: Option<Text<'a>>,
    ip_address: Option<Text<'a>>,
    url: Option<Text<'a>>,
    account_name: Option<Text<'a>>,
    domain_name: Option<Text<'a>>,
    user_principal_name: Option<Text<'a>>,
    // Graph's typed item. Its nested objects are boxed: inline they made every item, Defender's
    // too, ~1.6 KB to fill and move; boxed, only Graph's items allocate for them.
    odata_type: Option<Text<'a>>,
    user_account: Option<Box<Evidence<'a>>>,
    file_details: Option<Box<Evidence<'a>>>,
    image_file: Option<Box<Evidence<'a>>>,
    parent_process_image_file: Option<Box<Evidence<'a>>>,
    logged_on_users: LoggedOnUsers<'a>,
    device_dns_name: Option<Text<'a>>,
    mde_device_id: Option<Text<'a>>,
}

impl<'a> EvidenceItem<'a> {
    /// The field the member `name` fills with its text, if it has one.
    fn text_slot(&mut self, name: &str) -> Option<&mut Option<Text<'a>>> {
        Some(match name {
            "entityType" => &mut self.entity_type,
            "sha1" => &mut self.sha1,
            "sha256" => &mut self.sha256,
            "fileName" => &mut self.file_name,
            "filePath" => &mut self.file_path,
            "processCommandLine" => &mut self.process_command_line,
            "ipAddress" => &mut self.ip_address,
            "url" => &mut self.url,
            "accountName" => &mut self.account_name,
            "domainName" => &mut self.domain_name,
            "userPrincipalName" => &mut self.user_principal_name,
            "@odata.type" => &mut self.odata_type,
            "deviceDnsName" => &mut self.device_dns_name,
            "mdeDeviceId" => &mut self.mde_device_id,
            _ => return None,
        })
    }
}

/// One of Graph's objects nested in an evidence item, in the shape of the evidence it feeds:
/// `userAccount` (an account's names), or `fileDetails`, `imageFile` and
/// `parentProcessImageFile` (a file's hashes, name and path). Each holds only its own names;
/// one reading takes them all. None when the value is not an object.
fn details(value: &str, kind: Kind) -> serde_json::Result<Option<Box<Evidence<'_>>>> {
    if kind != Kind::Object {
        return Ok(None);
    }
    let names = [
        "accountName",
        "domainName",
        "userPrincipalName",
        "sha1",
        "sha256",
        "fileName",
        "filePath",
    ];
    let found = named(value, names)?;
    let [account_name, domain_name, user_principal_name, sha1, sha256, file_name, file_path] =
        found;
    Ok(Some(Box::new(Evidence {
        account_name,
        domain_name,
        user_principal_name,
        sha1,
        sha256,
        file_name,
        file_path,
        ..Evidence::default()
    })))
}

/// What the evidence says about the device, for an alert that does not say it itself (Graph
/// alerts name their device only in a `deviceEvidence`).
#[derive(Debug, Default)]
pub(super) struct Device<'a> {
    pub dns_name: Option<Text<'a>>,
    pub id: Option<Text<'a>>,
    pub logged_on_users: LoggedOnUsers<'a>,
}

/// Why the evidence member could not be read.
#[derive(Debug)]
pub(super) enum Failure {
    /// Not JSON: the alert's text is broken.
    Syntax(scan::Syntax),
    /// JSON no lenient reading makes sense of (an escape that decodes to no character).
    Value(serde_json::Error),
}

impl From<scan::Syntax> for Failure {
    fn from(err: scan::Syntax) -> Self {
        Failure::Syntax(err)
    }
}

impl From<serde_json::Error> for Failure {
    fn from(err: serde_json::Error) -> Self {
        Failure::Value(err)
    }
}

/// Reads the alert's `evidence` member where the cursor stands, in the alert's one pass, into
/// `evidence` and `device`: an array of items (those that are not objects skipped), a single
/// item, or anything else (no evidence).
pub(super) fn read<'a>(
    cursor: &mut Cursor<'a>,
    evidence: &mut EvidenceList<'a>,
    device: &mut Device<'a>,
) -> Result<(), Failure> {
    match cursor.peek() {
        Some(b'[') => {
            cursor.open()?;
            while cursor.next_element()? {
                if cursor.peek() == Some(b'{') {
                    take(item(cursor)?, evidence, device);
                } else {
                    cursor.skip()?;
                }
            }
        }
        Some(b'{') => take(item(cursor)?, evidence, device),
        _ => {
            cursor.skip()?;
        }
    }
    Ok(())
}

fn take<'a>(item: EvidenceItem<'a>, evidence: &mut EvidenceList<'a>, device: &mut Device<'a>) {
    match item.odata_type.clone() {
        None => evidence.push(flat(item)),
        Some(odata_type) => typed(&odata_type, item, evidence, device),
    }
}

/// One item, member by member: Defender's flat fields, and Graph's nested objects read from
/// their slices ([`named`]).
fn item<'a>(cursor: &mut Cursor<'a>) -> Result<EvidenceItem<'a>, Failure> {
    let mut item = EvidenceItem::default();
    cursor.open()?;
    while let Some(member) = cursor.next_member()? {
        let name = lenient::name_of(member.name, member.name_escaped)?;
        let (value, kind) = (member.value, member.kind);
        if kind == Kind::Null {
            // Every field starts empty, and most of Defender's are sent null: no name to match.
            continue;
        }
        match name.as_ref() {
            "processId" => item.process_id = lenient::number_of(value, kind)?,
            "userAccount" => item.user_account = details(value, kind)?,
            "fileDetails" => item.file_details = details(value, kind)?,
            "imageFile" => item.image_file = details(value, kind)?,
            "parentProcessImageFile" => item.parent_process_image_file = details(value, kind)?,
            "loggedOnUsers" => item.logged_on_users = nested::logged_on_users(value, kind)?,
            other => {
                if let Some(slot) = item.text_slot(other) {
                    *slot = lenient::text_of(value, kind)?;
                }
            }
        }
    }
    Ok(item)
}

fn flat(item: EvidenceItem<'_>) -> Evidence<'_> {
    Evidence {
        entity_type: item.entity_type,
        sha1: item.sha1,
        sha256: item.sha256,
        file_name: item.file_name,
        file_path: item.file_path,
        process_id: item.process_id,
        process_command_line: item.process_command_line,
        ip_address: item.ip_address,
        url: item.url,
        account_name: item.account_name,
        domain_name: item.domain_name,
        user_principal_name: item.user_principal_name,
    }
}

/// `#microsoft.graph.security.processEvidence` → `Process`; an unknown `…fooBarEvidence` →
/// `FooBar`, as Defender names its entity types.
fn entity_type(odata_type: &str) -> String {
    let name = odata_type.rsplit('.').next().unwrap_or(odata_type);
    let name = name.strip_suffix("Evidence").unwrap_or(name);
    match name {
        "ip" => "Ip".into(),
        "device" => "Machine".into(),
        _ => {
            let mut chars = name.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
}

fn typed<'a>(
    odata_type: &str,
    item: EvidenceItem<'a>,
    evidence: &mut EvidenceList<'a>,
    device: &mut Device<'a>,
) {
    let kind = entity_type(odata_type);
    let account = item.user_account.map(|boxed| *boxed).unwrap_or_default();
    let image = (item.file_details.or(item.image_file))
        .map(|boxed| *boxed)
        .unwrap_or_default();
    if kind == "Machine" {
        device.dns_name = device.dns_name.take().or(item.device_dns_name);
        device.id = device.id.take().or(item.mde_device_id);
        device.logged_on_users.extend(item.logged_on_users);
    }
    let parent = item.parent_process_image_file;
    evidence.push(Evidence {
        entity_type: Some(kind.clone().into()),
        sha1: image.sha1,
        sha256: image.sha256,
        file_name: image.file_name,
        file_path: image.file_path,
        process_id: item.process_id,
        process_command_line: item.process_command_line,
        ip_address: item.ip_address,
        url: item.url,
        account_name: account.account_name,
        domain_name: account.domain_name,
        user_principal_name: account.user_principal_name,
    });
    // The parent's image is named with its hash here (Defender gives a parent name and path
    // only): an entry of its own, so a watched hash is found in it too.
    if let Some(parent) = parent.filter(|p| p.sha1.is_some() || p.sha256.is_some()) {
        evidence.push(Evidence {
            entity_type: Some(kind.into()),
            sha1: parent.sha1,
            sha256: parent.sha256,
            file_name: parent.file_name,
            file_path: parent.file_path,
            ..Evidence::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(value: &str) -> Vec<(Option<String>, Option<String>, Option<i64>)> {
        let (mut evidence, mut device) = (EvidenceList::new(), Device::default());
        let mut cursor = Cursor::new(value);
        read(&mut cursor, &mut evidence, &mut device).unwrap();
        cursor.finish().unwrap();
        evidence
            .into_iter()
            .map(|e| {
                (
                    e.entity_type.map(String::from),
                    e.sha1.map(String::from),
                    e.process_id,
                )
            })
            .collect()
    }

    #[test]
    fn odd_evidence_shapes_keep_what_reads() {
        let file = (Some("File".to_string()), Some("ab".to_string()), None);
        assert_eq!(
            read_all(r#"{"entityType":"File","sha1":"ab"}"#),
            std::slice::from_ref(&file)
        );
        assert_eq!(
            read_all(
                r#"["x", 3, null, [], {"entityType":"File","sha1":"ab","extra":{"n":[1]}}, {"entityType":"Process","processId":"7312","sha1":null}]"#
            ),
            [file, (Some("Process".to_string()), None, Some(7312))]
        );
        assert!(read_all("null").is_empty());
        assert!(read_all(r#""File""#).is_empty());
        assert_eq!(
            read_all(r#"[{"entityType":"Fi\u006ce","sh\u00611":"c\u0064"}]"#),
            [(Some("File".to_string()), Some("cd".to_string()), None)],
            "escaped names and values decode"
        );
        let mut cursor = Cursor::new(r#"[{"sha1":"ab",}]"#);
        assert!(matches!(
            read(
                &mut cursor,
                &mut EvidenceList::new(),
                &mut Device::default()
            ),
            Err(Failure::Syntax(_))
        ));
    }

    #[test]
    fn graph_types_read_as_defender_names_them() {
        assert_eq!(
            entity_type("#microsoft.graph.security.processEvidence"),
            "Process"
        );
        assert_eq!(
            entity_type("#microsoft.graph.security.userEvidence"),
            "User"
        );
        assert_eq!(entity_type("#microsoft.graph.security.ipEvidence"), "Ip");
        assert_eq!(
            entity_type("#microsoft.graph.security.deviceEvidence"),
            "Machine"
        );
        assert_eq!(
            entity_type("#microsoft.graph.security.registryKeyEvidence"),
            "RegistryKey"
        );
        assert_eq!(entity_type(""), "");
    }
}
