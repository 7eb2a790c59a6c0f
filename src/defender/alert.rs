//! The Alert entity (defender-api.md §5). Every field but `id` may be null or absent; enums are
//! kept as strings because the API adds values. The typed view holds only what mde-watch reads;
//! every field, known or not, stays in the verbatim JSON that travels beside it, so nothing the
//! API sends is ever dropped (the `raw` format carries it whole, ECS under the vendor namespace).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::lenient;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    #[serde(deserialize_with = "alert_id")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub incident_id: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub investigation_id: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub assigned_to: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub severity: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub classification: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub determination: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub investigation_state: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub detection_source: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub detector_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub category: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub threat_family_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub threat_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub alert_creation_time: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub first_event_time: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub last_event_time: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub last_update_time: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub resolved_time: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub machine_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub computer_dns_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub rbac_group_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub aad_tenant_id: Option<String>,
    /// Documented as a string, sent as an array.
    #[serde(default, deserialize_with = "lenient::vec_of")]
    pub mitre_techniques: Vec<String>,
    #[serde(default, deserialize_with = "lenient::opt_object")]
    pub related_user: Option<RelatedUser>,
    /// Undocumented, observed.
    #[serde(default, deserialize_with = "lenient::vec_of")]
    pub logged_on_users: Vec<LoggedOnUser>,
    #[serde(default, deserialize_with = "lenient::vec_of")]
    pub evidence: Vec<Evidence>,
}

fn alert_id<'de, D: serde::Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    match lenient::opt_string(de)? {
        Some(id) if !id.trim().is_empty() => Ok(id),
        _ => Err(serde::de::Error::custom("alert has an empty or null id")),
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RelatedUser {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub user_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub domain_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LoggedOnUser {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub account_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub domain_name: Option<String>,
}

/// One evidence item. Only the fields normalization reads are typed; all of them, typed or not,
/// are kept in the verbatim JSON.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub entity_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub sha1: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub sha256: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub file_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub file_path: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub process_id: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub process_command_line: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub ip_address: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub account_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub domain_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub user_principal_name: Option<String>,
}

impl Evidence {
    pub fn is(&self, entity_type: &str) -> bool {
        self.entity_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(entity_type))
    }
}

/// An alert as received: the typed view and the exact JSON the API sent.
#[derive(Debug, Clone)]
pub struct PolledAlert {
    pub alert: Alert,
    pub raw: Box<RawValue>,
}

impl PolledAlert {
    /// Parses one alert object; the error names what is wrong without echoing the whole alert.
    pub fn from_raw(raw: Box<RawValue>) -> Result<PolledAlert, String> {
        let alert: Alert = serde_json::from_str(raw.get()).map_err(|err| err.to_string())?;
        Ok(PolledAlert { alert, raw })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_shapes_do_not_fail_the_alert() {
        let raw = r#"{"id":"da1_2","incidentId":"20433","severity":"High","mitreTechniques":"T1059",
            "evidence":null,"relatedUser":null,"loggedOnUsers":[{"accountName":"u"}],
            "futureField":{"x":1},"comments":[]}"#;
        let alert: Alert = serde_json::from_str(raw).unwrap();
        assert_eq!(alert.incident_id, Some(20433));
        assert_eq!(alert.mitre_techniques, ["T1059"]);
        assert!(alert.evidence.is_empty());
    }

    #[test]
    fn missing_id_is_an_error() {
        let err = serde_json::from_str::<Alert>(r#"{"id":null,"title":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("null id"), "{err}");
        assert!(serde_json::from_str::<Alert>(r#"{"title":"x"}"#).is_err());
    }
}
