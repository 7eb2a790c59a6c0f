//! Defender severity and its numbers in each target format (docs/formats.md, "Severity").

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Unspecified,
    Informational,
    Low,
    Medium,
    High,
}

impl Severity {
    /// Case-insensitive; unknown and missing values are Unspecified (the label is kept verbatim
    /// in the vendor namespace).
    pub fn parse(label: Option<&str>) -> Severity {
        // Every event reads it: compared in place rather than lower-cased into a new string.
        let Some(label) = label else {
            return Severity::Unspecified;
        };
        [
            ("informational", Severity::Informational),
            ("low", Severity::Low),
            ("medium", Severity::Medium),
            ("high", Severity::High),
        ]
        .into_iter()
        .find(|(name, _)| label.eq_ignore_ascii_case(name))
        .map_or(Severity::Unspecified, |(_, severity)| severity)
    }

    /// The label used in headers and lower-case fields.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Unspecified => "unspecified",
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    /// Splunk CIM's lower-case severity.
    pub fn cim(self) -> &'static str {
        match self {
            Severity::Unspecified => "unknown",
            other => other.label(),
        }
    }

    pub fn ecs(self) -> u8 {
        match self {
            Severity::Unspecified => 0,
            Severity::Informational => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_any_case_and_unknowns() {
        assert_eq!(Severity::parse(Some("HIGH")), Severity::High);
        assert_eq!(Severity::parse(Some("UnSpecified")), Severity::Unspecified);
        assert_eq!(Severity::parse(Some("Catastrophic")), Severity::Unspecified);
        assert_eq!(Severity::parse(None).ecs(), 0);
        assert_eq!(Severity::parse(Some("Medium")).ecs(), 3);
    }
}
