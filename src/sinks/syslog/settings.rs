//! A syslog sink's settings: what `[[sinks]] type = "syslog"` holds once checked, and the check.
//! Pure: the config loader hands the table's values in (and how it resolves a relative path)
//! and gets the settings, every problem and every warning back, each named by its
//! `sinks[N].key`.

use std::path::PathBuf;

use super::frame::{self, Framing};
use crate::sinks::choice::{choose, Choice, Names};
use crate::sinks::Checked;
use crate::units::{parse_bytes, ByteSize};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogTransport {
    Udp,
    Tcp,
    Tls,
    Unix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogProtocol {
    Rfc5424,
    Rfc3164,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyslogSettings {
    pub address: String,
    pub transport: SyslogTransport,
    pub framing: super::frame::Framing,
    pub protocol: SyslogProtocol,
    pub facility: u8,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub server_name: Option<String>,
    /// Largest message (header and event) sent, in bytes.
    pub max_message: usize,
}

impl SyslogSettings {
    /// The host alerts go to unencrypted across a network: udp or tcp to a host other than
    /// loopback.
    pub fn clear_host(&self) -> Option<&str> {
        let host = crate::exposure::host_of(&self.address);
        let plain = matches!(self.transport, SyslogTransport::Tcp | SyslogTransport::Udp);
        (plain && !crate::exposure::is_loopback_host(host)).then_some(host)
    }
}

impl SyslogTransport {
    /// RFC 5426 §3.2 asks UDP receivers to take 2,048 bytes; RFC 5425 §4.3.1 asks TLS receivers
    /// to take 8,192, which is also rsyslog's default maxMessageSize on every input.
    pub fn default_max_message(self) -> usize {
        match self {
            SyslogTransport::Udp => 2048,
            SyslogTransport::Tcp | SyslogTransport::Tls | SyslogTransport::Unix => 8192,
        }
    }
}

/// The table as written (`[[sinks]] type = "syslog"`); a misspelt key is refused (the config loader finds it).
#[derive(Debug, serde::Deserialize)]
pub struct SyslogTable {
    pub name: Option<String>,
    /// host:port, or a socket path with transport = "unix"
    pub address: String,
    /// udp | tcp | tls | unix
    pub transport: Option<String>,
    /// octet-counting | newline (tcp; tls is always octet-counted)
    pub framing: Option<String>,
    /// rfc5424 | rfc3164
    pub protocol: Option<String>,
    pub format: Option<String>,
    pub facility: Option<String>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    /// The name the server certificate must carry (default: the host of `address`).
    pub server_name: Option<String>,
    /// Largest syslog message sent ("8KiB"); a larger event is shrunk into a whole, smaller
    /// event. Default 8192 for tcp, tls and unix, 2048 for udp.
    pub max_message: Option<ByteSize>,
    /// The former name of `max_message` (udp only); still read.
    pub max_datagram: Option<usize>,
}

/// Checks the table at `key` (`sinks[N]`); `resolve` makes a written path absolute.
pub fn check(
    key: &str,
    table: SyslogTable,
    resolve: impl Fn(&str) -> PathBuf,
) -> Checked<SyslogSettings> {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let transport: SyslogTransport = choose(key, table.transport.as_deref(), &mut problems);
    let framing: Framing = choose(key, table.framing.as_deref(), &mut problems);
    let protocol: SyslogProtocol = choose(key, table.protocol.as_deref(), &mut problems);
    let facility = facility(key, table.facility.as_deref(), &mut problems);
    if transport != SyslogTransport::Unix && !table.address.contains(':') {
        problems.push(format!(
            "{key}.address: '{}' needs a port (host:port)",
            table.address
        ));
    }
    if table.cert_file.is_some() != table.key_file.is_some() {
        problems.push(format!("{key}: cert_file and key_file go together"));
    }
    let max_message = max_message(
        key,
        transport,
        table.max_message,
        table.max_datagram,
        (&mut problems, &mut warnings),
    );
    let path = |value: Option<String>| value.map(|p| resolve(&p));
    let settings = SyslogSettings {
        address: table.address,
        transport,
        framing,
        protocol,
        facility,
        ca_file: path(table.ca_file),
        cert_file: path(table.cert_file),
        key_file: path(table.key_file),
        server_name: table.server_name,
        max_message,
    };
    // Alerts over udp or tcp to another host: allowed (internal relays often run plaintext), said.
    if let Some(host) = settings.clear_host() {
        warnings.push(format!(
            "{key}: alerts go to {host} over {} in clear; transport = \"tls\" encrypts them",
            settings.transport.name()
        ));
    }
    Checked {
        settings,
        problems,
        warnings,
    }
}

/// The facility's code; local4 (20) when absent or unknown.
fn facility(key: &str, name: Option<&str>, problems: &mut Vec<String>) -> u8 {
    let name = name.unwrap_or("local4");
    frame::facility(name).unwrap_or_else(|| {
        problems.push(format!("{key}.facility: '{name}' is not a facility (kern, user, daemon, auth, local0 … local7, …)"));
        20
    })
}

#[rustfmt::skip]
impl Choice for SyslogTransport {
    const KEY: &'static str = "transport";
    const DEFAULT: Self = Self::Tcp;
    const CHOICES: Names<Self> = &[("udp", Self::Udp), ("tcp", Self::Tcp), ("tls", Self::Tls), ("unix", Self::Unix)];
}

#[rustfmt::skip]
impl Choice for Framing {
    const KEY: &'static str = "framing";
    const DEFAULT: Self = Self::OctetCounting;
    const CHOICES: Names<Self> = &[("octet-counting", Self::OctetCounting), ("newline", Self::Newline)];
}

#[rustfmt::skip]
impl Choice for SyslogProtocol {
    const KEY: &'static str = "protocol";
    const DEFAULT: Self = Self::Rfc5424;
    const CHOICES: Names<Self> = &[("rfc5424", Self::Rfc5424), ("rfc3164", Self::Rfc3164)];
}

fn max_message(
    key: &str,
    transport: SyslogTransport,
    max_message: Option<ByteSize>,
    max_datagram: Option<usize>,
    (problems, warnings): (&mut Vec<String>, &mut Vec<String>),
) -> usize {
    let default = transport.default_max_message();
    let bytes = match (max_message, max_datagram) {
        (Some(_), Some(_)) => {
            problems.push(format!(
                "{key}: max_datagram is the former name of max_message; set only max_message"
            ));
            return default;
        }
        (None, Some(bytes)) => {
            warnings.push(format!(
                "{key}.max_datagram is now called max_message (it applies to every transport); read as max_message = {bytes}"
            ));
            bytes as u64
        }
        (Some(ByteSize::Bytes(bytes)), None) => bytes,
        (Some(ByteSize::Text(text)), None) => match parse_bytes(&text) {
            Ok(bytes) => bytes,
            Err(err) => {
                problems.push(format!("{key}.max_message: {err}"));
                return default;
            }
        },
        (None, None) => return default,
    };
    // 480 bytes is what every UDP receiver must take (RFC 5426 §3.2); 65,507 is the most a UDP
    // datagram carries; stream transports have no such ceiling, 16 MiB is a sanity bound.
    let ceiling: u64 = if transport == SyslogTransport::Udp {
        65_507
    } else {
        16 << 20
    };
    if !(480..=ceiling).contains(&bytes) {
        problems.push(format!(
            "{key}.max_message: {bytes} bytes is out of range for {} (480 to {ceiling})",
            transport.name()
        ));
        return default;
    }
    bytes as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(address: &str) -> SyslogTable {
        SyslogTable {
            name: None,
            format: None,
            address: address.into(),
            transport: None,
            framing: None,
            protocol: None,
            facility: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            server_name: None,
            max_message: None,
            max_datagram: None,
        }
    }

    #[test]
    fn every_choice_reads_back_by_its_name() {
        use crate::sinks::choice::reads_back;
        reads_back::<SyslogTransport>();
        reads_back::<Framing>();
        reads_back::<SyslogProtocol>();
    }

    #[test]
    fn defaults_problems_and_the_renamed_key() {
        let checked = check("sinks[1]", table("relay:514"), |p| PathBuf::from(p));
        assert!(checked.problems.is_empty(), "{:?}", checked.problems);
        assert_eq!(checked.settings.transport, SyslogTransport::Tcp);
        assert_eq!(checked.settings.max_message, 8192);

        let checked = check(
            "sinks[1]",
            SyslogTable {
                transport: Some("quic".into()),
                facility: Some("local9".into()),
                cert_file: Some("c.pem".into()),
                ..table("relay")
            },
            |p| PathBuf::from(p),
        );
        let problems = checked.problems.join("\n");
        for expected in [
            "sinks[1].transport: 'quic' is not a transport (udp | tcp | tls | unix)",
            "sinks[1].facility: 'local9'",
            "sinks[1].address: 'relay' needs a port",
            "sinks[1]: cert_file and key_file go together",
        ] {
            assert!(problems.contains(expected), "{expected}: {problems}");
        }

        let checked = check(
            "sinks[0]",
            SyslogTable {
                transport: Some("udp".into()),
                max_datagram: Some(1400),
                ca_file: Some("ca.pem".into()),
                ..table("relay:514")
            },
            |p| PathBuf::from("/etc/mde-watch").join(p),
        );
        assert_eq!(checked.settings.max_message, 1400);
        assert!(checked.warnings[0].contains("max_datagram is now called max_message"));
        assert_eq!(
            checked.settings.ca_file,
            Some(PathBuf::from("/etc/mde-watch/ca.pem"))
        );
    }

    #[test]
    fn alerts_in_clear_to_another_host_are_said() {
        let with = |transport: &str, address: &str| {
            check(
                "sinks[2]",
                SyslogTable {
                    transport: Some(transport.into()),
                    ..table(address)
                },
                |p| PathBuf::from(p),
            )
            .warnings
        };
        assert_eq!(
            with("udp", "relay.corp:514"),
            ["sinks[2]: alerts go to relay.corp over udp in clear; transport = \"tls\" encrypts them"]
        );
        assert_eq!(with("tcp", "[2001:db8::5]:514").len(), 1);
        assert!(with("tcp", "127.0.0.1:514").is_empty());
        assert!(with("tls", "relay.corp:6514").is_empty());
        assert!(with("unix", "/dev/log").is_empty());
    }
}
