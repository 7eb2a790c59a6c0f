//! Which hosts to talk to: the API host, the login host and the token audience for each cloud
//! (docs/microsoft-api.md §1 and §2). GCC High and DoD use `api-gov…` with the `.us` login host, as
//! Microsoft's page says (XSOAR's table differs; we follow Microsoft).

/// RFC 3986 unreserved characters stay; everything else in a path segment is encoded.
pub const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Public,
    Us,
    Eu,
    Uk,
    Au,
    Swa,
    Ina,
    Gcc,
    GccHigh,
    Dod,
}

pub const CLOUD_NAMES: &str = "public | us | eu | uk | au | swa | ina | gcc | gcc-high | dod";

/// Hosts and token audience for one cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub api_base: String,
    pub login_base: String,
    /// The token audience; the v2 scope is `<audience>/.default`, the v1 resource is the audience.
    pub audience: String,
}

impl Cloud {
    pub fn parse(name: &str) -> Result<Cloud, String> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "public" | "commercial" | "global" => Cloud::Public,
            "us" => Cloud::Us,
            "eu" => Cloud::Eu,
            "uk" => Cloud::Uk,
            "au" => Cloud::Au,
            "swa" => Cloud::Swa,
            "ina" => Cloud::Ina,
            "gcc" => Cloud::Gcc,
            "gcc-high" | "gcchigh" | "gcc_high" => Cloud::GccHigh,
            "dod" => Cloud::Dod,
            _ => return Err(format!("'{name}' is not a cloud (one of: {CLOUD_NAMES})")),
        })
    }

    pub fn endpoints(self) -> Endpoints {
        const COMMERCIAL_LOGIN: &str = "https://login.microsoftonline.com";
        const COMMERCIAL_AUDIENCE: &str = "https://api.securitycenter.microsoft.com";
        let regional = |prefix: &str| Endpoints {
            api_base: format!("https://{prefix}api.security.microsoft.com"),
            login_base: COMMERCIAL_LOGIN.into(),
            audience: COMMERCIAL_AUDIENCE.into(),
        };
        match self {
            Cloud::Public => regional(""),
            Cloud::Us => regional("us."),
            Cloud::Eu => regional("eu."),
            Cloud::Uk => regional("uk."),
            Cloud::Au => regional("au."),
            Cloud::Swa => regional("swa."),
            Cloud::Ina => regional("ina."),
            Cloud::Gcc => Endpoints {
                api_base: "https://api-gcc.securitycenter.microsoft.us".into(),
                login_base: COMMERCIAL_LOGIN.into(),
                audience: "https://api-gcc.securitycenter.microsoft.us".into(),
            },
            Cloud::GccHigh | Cloud::Dod => Endpoints {
                api_base: "https://api-gov.securitycenter.microsoft.us".into(),
                login_base: "https://login.microsoftonline.us".into(),
                audience: "https://api-gov.securitycenter.microsoft.us".into(),
            },
        }
    }
}

impl Cloud {
    /// The Graph security API's hosts for this cloud: the public host for every commercial
    /// region and GCC, `graph.microsoft.us` for GCC High, `dod-graph.microsoft.us` for DoD
    /// (Microsoft's national-cloud deployments page). The audience is the host.
    pub fn graph_endpoints(self) -> Endpoints {
        let (host, login) = match self {
            Cloud::GccHigh => (
                "https://graph.microsoft.us",
                "https://login.microsoftonline.us",
            ),
            Cloud::Dod => (
                "https://dod-graph.microsoft.us",
                "https://login.microsoftonline.us",
            ),
            _ => (
                "https://graph.microsoft.com",
                "https://login.microsoftonline.com",
            ),
        };
        Endpoints {
            api_base: host.into(),
            login_base: login.into(),
            audience: host.into(),
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Cloud::Public => "public",
            Cloud::Us => "us",
            Cloud::Eu => "eu",
            Cloud::Uk => "uk",
            Cloud::Au => "au",
            Cloud::Swa => "swa",
            Cloud::Ina => "ina",
            Cloud::Gcc => "gcc",
            Cloud::GccHigh => "gcc-high",
            Cloud::Dod => "dod",
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regional_hosts_share_the_commercial_login() {
        let eu = Cloud::parse("EU").unwrap().endpoints();
        assert_eq!(eu.api_base, "https://eu.api.security.microsoft.com");
        assert_eq!(eu.login_base, "https://login.microsoftonline.com");
        assert_eq!(eu.audience, "https://api.securitycenter.microsoft.com");
    }

    #[test]
    fn gov_clouds_follow_microsoft() {
        let high = Cloud::parse("gcc-high").unwrap().endpoints();
        assert_eq!(high.api_base, "https://api-gov.securitycenter.microsoft.us");
        assert_eq!(high.login_base, "https://login.microsoftonline.us");
        assert_eq!(Cloud::parse("dod").unwrap().endpoints(), high);
        let gcc = Cloud::parse("gcc").unwrap().endpoints();
        assert_eq!(gcc.api_base, "https://api-gcc.securitycenter.microsoft.us");
        assert_eq!(gcc.login_base, "https://login.microsoftonline.com");
    }

    #[test]
    fn unknown_cloud_lists_the_choices() {
        let err = Cloud::parse("mars").unwrap_err();
        assert!(err.contains("'mars'") && err.contains("gcc-high"), "{err}");
    }
}
