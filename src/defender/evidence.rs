//! Evidence items as either API sends them, read into the one [`Evidence`] shape the formats and
//! the watchlist match use. Defender for Endpoint sends flat items named by `entityType`
//! (`User` with `accountName`, `File` and `Process` with `sha1`, …). The Graph security API
//! (`alerts_v2`) types each item by `@odata.type` and nests the facts: `userEvidence.userAccount`,
//! `fileEvidence.fileDetails`, `processEvidence.imageFile` (and `parentProcessImageFile`,
//! `userAccount`), `deviceEvidence.loggedOnUsers`. Both land in the same fields, so a user or a
//! hash is found the same way whichever API the alert came from. Every field of every item
//! stays in the alert's verbatim members whatever is typed here.

use serde::Deserialize;

use super::lenient::{self, Text};

/// An account logged on to the alert's device (Defender's `loggedOnUsers`, or a Graph
/// `deviceEvidence`'s).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LoggedOnUser<'a> {
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    pub account_name: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    pub domain_name: Option<Text<'a>>,
}

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
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EvidenceItem<'a> {
    // Defender's flat item.
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    entity_type: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    sha1: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    sha256: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    file_name: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    file_path: Option<Text<'a>>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    process_id: Option<i64>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    process_command_line: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    ip_address: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    url: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    account_name: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    domain_name: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    user_principal_name: Option<Text<'a>>,
    // Graph's typed item.
    #[serde(
        rename = "@odata.type",
        borrow,
        default,
        deserialize_with = "lenient::opt_string"
    )]
    odata_type: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_object")]
    user_account: Option<Account<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_object")]
    file_details: Option<FileDetails<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_object")]
    image_file: Option<FileDetails<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_object")]
    parent_process_image_file: Option<FileDetails<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::vec_of")]
    logged_on_users: Vec<LoggedOnUser<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    device_dns_name: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    mde_device_id: Option<Text<'a>>,
}

/// Graph's `userAccount`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Account<'a> {
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    account_name: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    domain_name: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    user_principal_name: Option<Text<'a>>,
}

/// Graph's `fileDetails`, `imageFile` and `parentProcessImageFile`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileDetails<'a> {
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    sha1: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    sha256: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    file_name: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "lenient::opt_string")]
    file_path: Option<Text<'a>>,
}

/// What the evidence says about the device, for an alert that does not say it itself (Graph
/// alerts name their device only in a `deviceEvidence`).
#[derive(Debug, Default)]
pub(super) struct Device<'a> {
    pub dns_name: Option<Text<'a>>,
    pub id: Option<Text<'a>>,
    pub logged_on_users: Vec<LoggedOnUser<'a>>,
}

/// Reads `items` into `evidence` and `device`.
pub(super) fn read<'a>(
    items: Vec<EvidenceItem<'a>>,
    evidence: &mut Vec<Evidence<'a>>,
    device: &mut Device<'a>,
) {
    for item in items {
        match item.odata_type.clone() {
            None => evidence.push(flat(item)),
            Some(odata_type) => typed(&odata_type, item, evidence, device),
        }
    }
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
    evidence: &mut Vec<Evidence<'a>>,
    device: &mut Device<'a>,
) {
    let kind = entity_type(odata_type);
    let account = item.user_account.unwrap_or_default();
    let image = item.file_details.or(item.image_file).unwrap_or_default();
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
