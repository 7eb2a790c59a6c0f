//! systemd's service notification protocol (sd_notify(3)): `READY=1` once the service can work,
//! `STATUS=` lines for `systemctl status`, `WATCHDOG=1` keep-alives and `STOPPING=1`. Each
//! message is one datagram to `$NOTIFY_SOCKET`; without that variable (a terminal, a test) every
//! call does nothing. A failed send is logged, never fatal: the service works without systemd.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET '{socket}': {reason}")]
    Socket { socket: String, reason: String },
    #[error("WATCHDOG_USEC '{0}' is not a positive number of microseconds")]
    WatchdogUsec(String),
}

pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

struct Target {
    socket: UnixDatagram,
    address: SocketAddr,
    shown: String,
}

impl Notifier {
    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog: None,
        }
    }

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` as systemd sets them.
    pub fn from_env() -> Result<Notifier, NotifyError> {
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        )?;
        let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(Notifier {
                target: None,
                watchdog: None,
            });
        };
        let shown = socket.to_string_lossy().into_owned();
        let failed = |reason: String| NotifyError::Socket {
            socket: shown.clone(),
            reason,
        };
        let address = address(&shown).map_err(failed)?;
        let socket = UnixDatagram::unbound().map_err(|err| failed(err.to_string()))?;
        Ok(Notifier {
            target: Some(Target {
                socket,
                address,
                shown,
            }),
            watchdog,
        })
    }

    /// How often to send `WATCHDOG=1`, when systemd asked for it.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    pub fn stopping(&self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
    }

    fn send(&self, message: &str) {
        let Some(target) = &self.target else {
            return;
        };
        if let Err(err) = target
            .socket
            .send_to_addr(message.as_bytes(), &target.address)
        {
            tracing::warn!(socket = %target.shown, error = %err, "cannot notify systemd");
        }
    }
}

/// `@name` is an abstract socket (what systemd uses), anything else a path.
fn address(socket: &str) -> Result<SocketAddr, String> {
    match socket.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes()).map_err(|err| err.to_string())
        }
        None if socket.starts_with('/') => {
            SocketAddr::from_pathname(socket).map_err(|err| err.to_string())
        }
        None => Err("neither an absolute path nor an abstract name (@…)".into()),
    }
}

/// The keep-alive period: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3) advises, so one
/// late ping does not kill the service. None when no watchdog is set or it is meant for another
/// process (`WATCHDOG_PID`).
pub fn watchdog_interval(
    usec: Option<&str>,
    pid: Option<&str>,
    own_pid: u32,
) -> Result<Option<Duration>, NotifyError> {
    let Some(usec) = usec else {
        return Ok(None);
    };
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok() != Some(own_pid) {
            return Ok(None);
        }
    }
    match usec.trim().parse::<u64>() {
        Ok(micros) if micros > 0 => Ok(Some(Duration::from_micros(micros / 2))),
        _ => Err(NotifyError::WatchdogUsec(usec.to_string())),
    }
}

/// The protocol separates fields with newlines: a status must stay on one line.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::says;

    #[test]
    fn watchdog_pings_at_half_the_period_for_this_process_only() {
        assert_eq!(
            watchdog_interval(Some("30000000"), None, 7).unwrap(),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval(Some("30000000"), Some("7"), 7).unwrap(),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval(Some("30000000"), Some("8"), 7).unwrap(),
            None
        );
        assert_eq!(watchdog_interval(None, None, 7).unwrap(), None);
    }

    #[test]
    fn a_bad_watchdog_period_is_named() {
        for bad in ["0", "soon", "-5"] {
            let err = watchdog_interval(Some(bad), None, 7)
                .unwrap_err()
                .to_string();
            says(&err, &format!("'{bad}'"));
        }
    }

    #[test]
    fn socket_addresses_are_paths_or_abstract_names() {
        assert!(address("/run/systemd/notify").is_ok());
        assert!(address("@/org/freedesktop/systemd1/notify/123").is_ok());
        assert!(address("relative/path").is_err());
    }

    #[test]
    fn datagrams_reach_a_listening_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            target: Some(Target {
                socket: UnixDatagram::unbound().unwrap(),
                address: SocketAddr::from_pathname(&path).unwrap(),
                shown: path.display().to_string(),
            }),
            watchdog: None,
        };
        notifier.ready("next sweep 12:05\nsecond line");
        let mut buffer = [0u8; 256];
        let n = listener.recv(&mut buffer).unwrap();
        assert_eq!(
            std::str::from_utf8(&buffer[..n]).unwrap(),
            "READY=1\nSTATUS=next sweep 12:05 second line"
        );
    }
}
