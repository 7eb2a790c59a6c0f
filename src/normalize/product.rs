//! Which Microsoft product raised an alert. Defender for Endpoint's own API serves only its
//! alerts; the Graph security API serves every Defender product's and names it in
//! `serviceSource`. Each format names the product from here, so an endpoint alert reads the same
//! whichever API it came through, and an Office 365 alert is not labelled an endpoint's.

use crate::defender::Alert;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product {
    /// As Microsoft names it, without "Microsoft" ("Defender for Endpoint").
    pub name: &'static str,
    /// With it ("Microsoft Defender for Endpoint").
    pub full_name: &'static str,
    /// A lowercase identifier (ECS `event.provider`).
    pub provider: &'static str,
}

pub const ENDPOINT: Product = Product {
    name: "Defender for Endpoint",
    full_name: "Microsoft Defender for Endpoint",
    provider: "microsoft_defender_endpoint",
};

/// The product of an alert: Defender for Endpoint unless a `serviceSource` says otherwise; a
/// source this version does not know is named as the portal that gathers them all.
pub fn of(alert: &Alert) -> Product {
    let Some(source) = alert.service_source.as_deref() else {
        return ENDPOINT;
    };
    let (name, full_name, provider) = match source.to_ascii_lowercase().as_str() {
        "microsoftdefenderforendpoint" => return ENDPOINT,
        "microsoftdefenderforidentity" => (
            "Defender for Identity",
            "Microsoft Defender for Identity",
            "microsoft_defender_identity",
        ),
        "microsoftdefenderforoffice365" => (
            "Defender for Office 365",
            "Microsoft Defender for Office 365",
            "microsoft_defender_office365",
        ),
        "microsoftdefenderforcloudapps" => (
            "Defender for Cloud Apps",
            "Microsoft Defender for Cloud Apps",
            "microsoft_defender_cloud_apps",
        ),
        "microsoftdefenderforcloud" => (
            "Defender for Cloud",
            "Microsoft Defender for Cloud",
            "microsoft_defender_cloud",
        ),
        "azureadidentityprotection" => (
            "Entra ID Protection",
            "Microsoft Entra ID Protection",
            "microsoft_entra_id_protection",
        ),
        "microsoftappgovernance" => (
            "App Governance",
            "Microsoft App Governance",
            "microsoft_app_governance",
        ),
        "datalossprevention" => (
            "Purview Data Loss Prevention",
            "Microsoft Purview Data Loss Prevention",
            "microsoft_purview_dlp",
        ),
        "microsoftinsiderriskmanagement" => (
            "Purview Insider Risk Management",
            "Microsoft Purview Insider Risk Management",
            "microsoft_purview_insider_risk",
        ),
        "microsoftsentinel" => ("Sentinel", "Microsoft Sentinel", "microsoft_sentinel"),
        _ => (
            "Defender XDR",
            "Microsoft Defender XDR",
            "microsoft_defender_xdr",
        ),
    };
    Product {
        name,
        full_name,
        provider,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(source: Option<&str>) -> Product {
        of(&Alert {
            service_source: source.map(Into::into),
            ..Alert::default()
        })
    }

    #[test]
    fn the_service_source_names_the_product() {
        assert_eq!(from(None), ENDPOINT);
        assert_eq!(from(Some("microsoftDefenderForEndpoint")), ENDPOINT);
        assert_eq!(
            from(Some("microsoftDefenderForOffice365")).name,
            "Defender for Office 365"
        );
        assert_eq!(
            from(Some("somethingNew")).provider,
            "microsoft_defender_xdr"
        );
    }
}
