//! A real rsyslogd for tests: started as a plain process (`rsyslogd -n -f CONF -i PIDFILE`) with
//! imudp and imtcp on free loopback ports (or TLS through gtls with certificates made here, the
//! client's certificate required or not), imuxsock on a socket in the test's directory, and
//! omfile writing each received message verbatim to a file the test reads. Stopped when dropped.
//! By default it takes messages up to 256 KiB; [`Rsyslog::start_stock`] keeps rsyslog's own
//! defaults (8 KiB messages, control characters escaped), as a receiver nobody tuned.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::kafka::free_port;

pub struct Rsyslog {
    child: Option<Child>,
    dir: PathBuf,
    config: PathBuf,
    pub udp_port: u16,
    pub tcp_port: u16,
    /// A unix datagram socket (imuxsock).
    pub socket: PathBuf,
    pub output: PathBuf,
}

/// What the TLS listener asks of clients.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Any client (anonymous on the client side).
    None,
    /// A client certificate signed by the test CA.
    Required,
}

/// CA, server certificate and key for 127.0.0.1/localhost, made with the openssl command.
pub struct Certs {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A client certificate and key signed by the same CA.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

pub fn make_certs(dir: &Path) -> Certs {
    let ca = super::certs::TestCa::new(dir);
    let server = ca.server("server", 2);
    let client = ca.issue(
        "client",
        "/CN=mde-watch test client",
        "extendedKeyUsage=clientAuth\n",
        2,
    );
    Certs {
        ca: ca.pem,
        cert: server.cert,
        key: server.key,
        client_cert: client.cert,
        client_key: client.key,
    }
}

impl Rsyslog {
    pub fn start(dir: &Path, tls: Option<&Certs>) -> Rsyslog {
        Rsyslog::start_with(dir, tls, ClientAuth::None)
    }

    pub fn start_with(dir: &Path, tls: Option<&Certs>, client_auth: ClientAuth) -> Rsyslog {
        Rsyslog::launch_with(dir, tls, client_auth, false)
    }

    /// rsyslog with its stock limits: nothing in the config but the inputs and the output file.
    pub fn start_stock(dir: &Path, tls: Option<&Certs>) -> Rsyslog {
        Rsyslog::launch_with(dir, tls, ClientAuth::None, true)
    }

    fn launch_with(
        dir: &Path,
        tls: Option<&Certs>,
        client_auth: ClientAuth,
        stock: bool,
    ) -> Rsyslog {
        let dir = dir.to_path_buf();
        let output = dir.join("received.log");
        let socket = dir.join("log.sock");
        let (udp_port, tcp_port) = (free_port(), free_port());
        let auth_mode = match client_auth {
            ClientAuth::None => "anon",
            ClientAuth::Required => "x509/certvalid",
        };
        let (tls_global, tcp_module) = match tls {
            Some(certs) => (
                format!(
                    "global(DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\")\n",
                    certs.ca.display(),
                    certs.cert.display(),
                    certs.key.display()
                ),
                format!("module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"{auth_mode}\")"),
            ),
            None => (String::new(), "module(load=\"imtcp\")".to_string()),
        };
        let tuning = if stock {
            ""
        } else {
            " maxMessageSize=\"256k\" parser.escapeControlCharactersOnReceive=\"off\""
        };
        let config = format!(
            "global(workDirectory=\"{dir}\"{tuning})\n\
             {tls_global}\
             module(load=\"imudp\")\n\
             module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             {tcp_module}\n\
             input(type=\"imuxsock\" Socket=\"{socket}\" UseSpecialParser=\"off\" RateLimit.Interval=\"0\")\n\
             input(type=\"imudp\" address=\"127.0.0.1\" port=\"{udp_port}\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tcp_port}\")\n\
             template(name=\"verbatim\" type=\"string\" string=\"%rawmsg%\\n\")\n\
             *.* action(type=\"omfile\" file=\"{out}\" template=\"verbatim\")\n",
            dir = dir.display(),
            socket = socket.display(),
            out = output.display(),
        );
        let config_path = dir.join("rsyslog.conf");
        std::fs::write(&config_path, config).unwrap();
        let mut rsyslog = Rsyslog {
            child: None,
            dir,
            config: config_path,
            udp_port,
            tcp_port,
            socket,
            output,
        };
        rsyslog.launch();
        rsyslog
    }

    fn launch(&mut self) {
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&self.config)
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd starts (apt-get install rsyslog; tests/run.sh does it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.tcp_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not listen on {}",
                self.tcp_port
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops rsyslogd and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(25));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports and file.
    pub fn restart(&mut self) {
        self.launch();
    }

    /// Every message received so far, one per line.
    pub fn received(&self) -> Vec<String> {
        std::fs::read_to_string(&self.output)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Waits until `count` messages arrived (or `timeout`), then returns them.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.received();
            if lines.len() >= count || Instant::now() > deadline {
                std::thread::sleep(Duration::from_millis(300));
                return self.received();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A received RFC 5424 message: its SD params and its MSG.
pub struct Received {
    pub pri: u8,
    pub msgid: String,
    pub params: BTreeMap<String, String>,
    pub msg: String,
}

pub fn parse_5424(line: &str) -> Received {
    let rest = line.strip_prefix('<').expect("<PRI>");
    let (pri, rest) = rest.split_once(">1 ").expect("version 1");
    let mut fields = rest.splitn(6, ' ');
    let _timestamp = fields.next().unwrap();
    let _host = fields.next().unwrap();
    assert_eq!(fields.next(), Some("mde-watch"));
    let _procid = fields.next().unwrap();
    let msgid = fields.next().unwrap().to_string();
    let sd_and_msg = fields.next().unwrap();
    let body = sd_and_msg
        .strip_prefix("[mdewatch@32473")
        .expect("our SD-ID");
    let mut params = BTreeMap::new();
    let mut chars = body.char_indices().peekable();
    let end = loop {
        match chars.next() {
            Some((_, ' ')) => {
                let mut name = String::new();
                for (_, c) in chars.by_ref() {
                    if c == '=' {
                        break;
                    }
                    name.push(c);
                }
                assert_eq!(chars.next().map(|(_, c)| c), Some('"'));
                let mut value = String::new();
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => value.push(chars.next().unwrap().1),
                        '"' => break,
                        c => value.push(c),
                    }
                }
                params.insert(name, value);
            }
            Some((at, ']')) => break at + 1,
            other => panic!("unexpected {other:?} in structured data of {line}"),
        }
    };
    let msg = body[end..].strip_prefix(' ').unwrap_or("").to_string();
    Received {
        pri: pri.parse().unwrap(),
        msgid,
        params,
        msg,
    }
}

pub fn syslog_sink(transport: &str, port: u16, extra: &str) -> String {
    format!(
        "[[sinks]]\ntype = \"syslog\"\nname = \"syslog\"\naddress = \"127.0.0.1:{port}\"\ntransport = \"{transport}\"\nformat = \"cef\"\n{extra}\n"
    )
}

/// A received RFC 3164 message: `<PRI>Mmm dd hh:mm:ss HOST TAG: MSG`.
pub fn parse_3164(line: &str) -> (u8, String) {
    let rest = line.strip_prefix('<').expect("<PRI>");
    let (pri, rest) = rest.split_once('>').expect("PRI closes");
    let after_time = rest
        .get(16..)
        .expect("a 15-character timestamp and a space");
    let (_host, rest) = after_time.split_once(' ').expect("host name");
    let msg = rest.strip_prefix("mdewatch: ").expect("the tag");
    (pri.parse().unwrap(), msg.to_string())
}
