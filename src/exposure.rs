//! What others could read: which hosts are this machine's own (loopback), and who besides their
//! owner can read a file. Pure verdicts the config check turns into problems and warnings: a
//! credential never crosses a network in clear, and a secret file is guarded like an ssh key.

use std::net::IpAddr;
use std::path::Path;

/// True for `localhost` (and names under `.localhost`, RFC 6761 §6.3) and loopback addresses
/// (127.0.0.0/8, ::1), with or without IPv6 brackets. Any other name counts as remote, even one
/// that happens to resolve to loopback: the check does not trust DNS.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let lower = host.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host of `host:port`, `[v6]:port`, a bare host, or a librdkafka `proto://host:port`.
pub fn host_of(address: &str) -> &str {
    let address = address.trim();
    let address = address.split_once("://").map_or(address, |(_, rest)| rest);
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match address.rsplit_once(':') {
        // More than one colon and no brackets: a bare IPv6 address.
        Some((host, _)) if !host.contains(':') => host,
        _ => address,
    }
}

/// How a URL is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlReach {
    /// `https://`: encrypted, the server's certificate verified.
    Tls,
    /// `http://` to this host: nothing crosses a network.
    Local,
    /// `http://` to another host: whatever it carries travels in clear.
    InClear { host: String },
}

/// [`UrlReach`] of `url`; `None` when it is not a URL with a host.
pub fn url_reach(url: &str) -> Option<UrlReach> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    Some(match parsed.scheme() {
        "https" => UrlReach::Tls,
        _ if is_loopback_host(host) => UrlReach::Local,
        _ => UrlReach::InClear {
            host: host.to_string(),
        },
    })
}

/// The first host of a comma-separated list that is not loopback.
pub fn first_remote<'a>(addresses: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    addresses
        .into_iter()
        .map(str::trim)
        .filter(|address| !address.is_empty())
        .find(|address| !is_loopback_host(host_of(address)))
}

/// Who besides its owner can reach a file, from its permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAccess {
    OwnerOnly,
    /// Its group can read (or write, or run) it.
    Group,
    /// Every local user can.
    Others,
}

pub fn file_access(mode: u32) -> FileAccess {
    if mode & 0o007 != 0 {
        FileAccess::Others
    } else if mode & 0o070 != 0 {
        FileAccess::Group
    } else {
        FileAccess::OwnerOnly
    }
}

/// What the check makes of something: refuse it, or load it and say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Problem(String),
    Warning(String),
}

/// A secret file (`key` names the setting) with permission bits `mode`: refused when every
/// local user can read it, a warning when its group can, nothing when it is its owner's alone.
pub fn secret_file(key: &str, path: &Path, mode: u32) -> Option<Finding> {
    let shown = path.display();
    let mode = mode & 0o7777;
    match file_access(mode) {
        FileAccess::OwnerOnly => None,
        FileAccess::Others => Some(Finding::Problem(format!(
            "{key}: {shown} can be read by every local user (mode {mode:04o}); a secret file must be private: \
             run chmod 600 {shown} (owned by the user mde-watch runs as), or hand it over as a systemd credential"
        ))),
        FileAccess::Group => Some(Finding::Warning(format!(
            "{key}: {shown} can be read by its group (mode {mode:04o}); run chmod 600 {shown} to keep it to its owner, \
             or hand it over as a systemd credential"
        ))),
    }
}

/// The permission bits of the file at `path` (symbolic links followed).
pub fn mode_of(path: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o7777)
}

/// [`secret_file`] for a file on disk. A file that cannot be stat'ed draws nothing here: reading
/// it fails later with its own error, which names it.
pub fn secret_file_on_disk(key: &str, path: &Path) -> Option<Finding> {
    secret_file(key, path, mode_of(path).ok()?)
}

/// [`secret_file_on_disk`] for a file read again while the daemon runs: refused, with the
/// problem, when every local user can read it (a group-readable one was warned of at start).
pub fn private_enough(key: &str, path: &Path) -> Result<(), String> {
    match secret_file_on_disk(key, path) {
        Some(Finding::Problem(problem)) => Err(problem),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses() {
        for host in [
            "localhost",
            "LOCALHOST",
            "api.localhost",
            "127.0.0.1",
            "127.8.9.1",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "10.1.2.3",
            "login.example.net",
            "localhost.example.net",
            "0.0.0.0",
            "[2001:db8::1]",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn hosts_of_addresses() {
        assert_eq!(host_of("kafka-1:9092"), "kafka-1");
        assert_eq!(host_of(" SASL_SSL://kafka-1:9093 "), "kafka-1");
        assert_eq!(host_of("[::1]:514"), "::1");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(host_of("relay"), "relay");
        assert_eq!(
            first_remote("127.0.0.1:9092, kafka-2:9092".split(',')),
            Some("kafka-2:9092")
        );
        assert_eq!(first_remote("localhost:9092,[::1]:9092".split(',')), None);
    }

    #[test]
    fn how_urls_are_reached() {
        assert_eq!(url_reach("https://10.1.2.3"), Some(UrlReach::Tls));
        assert_eq!(url_reach("http://[::1]:4318"), Some(UrlReach::Local));
        assert_eq!(
            url_reach("http://login.example.net/x"),
            Some(UrlReach::InClear {
                host: "login.example.net".into()
            })
        );
        assert_eq!(url_reach("not a url"), None);
    }

    #[test]
    fn secret_file_modes() {
        let path = Path::new("/etc/mde-watch/client-secret");
        assert_eq!(secret_file("api.client_secret_file", path, 0o100600), None);
        assert_eq!(secret_file("api.client_secret_file", path, 0o400), None);
        let Some(Finding::Warning(text)) = secret_file("api.client_secret_file", path, 0o100640)
        else {
            panic!("0640 is a warning")
        };
        assert!(
            text.contains("mode 0640") && text.contains("chmod 600 /etc/mde-watch/client-secret"),
            "{text}"
        );
        let Some(Finding::Problem(text)) = secret_file("api.client_secret_file", path, 0o100644)
        else {
            panic!("0644 is refused")
        };
        assert!(text.starts_with("api.client_secret_file: /etc/mde-watch/client-secret can be read by every local user (mode 0644)"), "{text}");
        assert!(matches!(
            secret_file("k", path, 0o602),
            Some(Finding::Problem(_))
        ));
    }
}
