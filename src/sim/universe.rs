//! The emulator's deterministic alert universe. From a seed it builds users `user1..userN`, files
//! with stable 40-hex hashes, and alerts tied to a user, a file or both. Alerts appear over
//! (virtual) time and some change status later, so new and changed alerts can be tested.
//! Rendering mixes the quirks the reference lists: 0–7 fractional digits, nulls, empty arrays,
//! the undocumented `loggedOnUsers`/`domains`, and a field this version does not know.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use serde_json::{json, Value};

/// Virtual time zero of every universe: alert timestamps are offsets from here.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

#[derive(Debug, Clone)]
pub struct UniverseSpec {
    pub seed: u64,
    pub users: usize,
    pub files: usize,
    /// Largest number of alerts tied to one user (each user gets 0..=max).
    pub max_alerts_per_user: u32,
    /// Every user gets exactly this many alerts instead (benchmark shapes: 200 users × 500
    /// alerts, one user with 50,000).
    pub alerts_per_user: Option<u32>,
    /// Share of alerts that appear after time zero, spread over `horizon_secs`.
    pub late_share: f64,
    /// Share of alerts that change status some time after they appear.
    pub change_share: f64,
    /// Virtual seconds an alert stays as it appeared, at least, before it may change.
    pub change_delay_secs: u64,
    pub horizon_secs: u64,
    /// Characters of analyst prose appended to every description (to test size limits).
    pub description_padding: usize,
    /// Process evidence entries added to every alert (a chain of child processes; to test
    /// size limits and lists that must be shortened).
    pub evidence_padding: usize,
    /// Alert ids and titles carry CR, LF, NUL and ESC, as a hostile or broken API might send
    /// (to test that no log line or syslog header can be forged).
    pub hostile_text: bool,
}

impl Default for UniverseSpec {
    fn default() -> Self {
        UniverseSpec {
            seed: 1,
            users: 200,
            files: 200,
            max_alerts_per_user: 4,
            alerts_per_user: None,
            late_share: 0.3,
            change_share: 0.3,
            change_delay_secs: 60,
            horizon_secs: 3600,
            description_padding: 0,
            evidence_padding: 0,
            hostile_text: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimAlert {
    pub index: usize,
    pub id: String,
    pub user: Option<usize>,
    pub file: Option<usize>,
    /// Virtual seconds after the epoch when the alert becomes visible.
    pub appear_at: u64,
    /// Virtual seconds after the epoch when it moves to InProgress (or Resolved).
    pub change_at: Option<u64>,
    pub severity: &'static str,
    pub category: &'static str,
}

pub struct Universe {
    pub spec: UniverseSpec,
    pub alerts: Vec<SimAlert>,
    /// Rendered JSON per alert, before and after its change: rendering is the emulator's main
    /// cost, and an alert's JSON depends only on which of the two phases it is in.
    rendered: [Vec<OnceLock<Arc<str>>>; 2],
    /// Creation and last-update times per alert and phase, in microseconds (as rendered).
    times: [Vec<OnceLock<(i64, i64)>>; 2],
    by_user: HashMap<usize, Vec<usize>>,
    by_file: HashMap<usize, Vec<usize>>,
    file_index: HashMap<String, usize>,
}

/// splitmix64: small, fast, and the same on every machine.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

const SEVERITIES: [&str; 5] = ["UnSpecified", "Informational", "Low", "Medium", "High"];
const CATEGORIES: [&str; 6] = [
    "Execution",
    "CredentialAccess",
    "Malware",
    "DefenseEvasion",
    "SuspiciousActivity",
    "Exploit",
];

impl Universe {
    pub fn new(spec: UniverseSpec) -> Universe {
        let mut rng = Rng(spec.seed);
        let mut alerts = Vec::new();
        let mut add = |rng: &mut Rng, user: Option<usize>, file: Option<usize>| {
            let index = alerts.len();
            let late = rng.chance(spec.late_share);
            let appear_at = if late {
                1 + rng.below(spec.horizon_secs.max(1))
            } else {
                0
            };
            let change_at = rng
                .chance(spec.change_share)
                .then(|| appear_at + spec.change_delay_secs + rng.below(spec.horizon_secs.max(1)));
            alerts.push(SimAlert {
                index,
                id: alert_id(spec.seed, index),
                user,
                file,
                appear_at,
                change_at,
                severity: SEVERITIES[rng.below(5) as usize],
                category: CATEGORIES[rng.below(6) as usize],
            });
        };
        for user in 1..=spec.users {
            let alerts = match spec.alerts_per_user {
                Some(fixed) => u64::from(fixed),
                None => rng.below(u64::from(spec.max_alerts_per_user) + 1),
            };
            for _ in 0..alerts {
                let file = (spec.files > 0 && rng.chance(0.4))
                    .then(|| 1 + rng.below(spec.files as u64) as usize);
                add(&mut rng, Some(user), file);
            }
        }
        for file in 1..=spec.files {
            for _ in 0..rng.below(3) {
                add(&mut rng, None, Some(file));
            }
        }
        let mut by_user: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut by_file: HashMap<usize, Vec<usize>> = HashMap::new();
        for alert in &alerts {
            if let Some(user) = alert.user {
                by_user.entry(user).or_default().push(alert.index);
            }
            if let Some(file) = alert.file {
                by_file.entry(file).or_default().push(alert.index);
            }
        }
        let file_index = (1..=spec.files)
            .map(|i| (file_sha1(spec.seed, i), i))
            .collect();
        let rendered = [
            (0..alerts.len()).map(|_| OnceLock::new()).collect(),
            (0..alerts.len()).map(|_| OnceLock::new()).collect(),
        ];
        let times = [
            (0..alerts.len()).map(|_| OnceLock::new()).collect(),
            (0..alerts.len()).map(|_| OnceLock::new()).collect(),
        ];
        Universe {
            spec,
            alerts,
            rendered,
            times,
            by_user,
            by_file,
            file_index,
        }
    }

    pub fn user_name(index: usize) -> String {
        format!("user{index}")
    }

    pub fn file_hash(&self, index: usize) -> String {
        file_sha1(self.spec.seed, index)
    }

    /// What the universe holds, for `GET /sim/universe`: every user and file hash with how many
    /// alerts it has (all of them, and those visible at virtual time `now_secs`).
    pub fn listing(&self, now_secs: u64) -> Value {
        let counts = |indexes: &[usize]| {
            let visible = indexes
                .iter()
                .filter(|&&i| self.alerts[i].appear_at <= now_secs)
                .count();
            json!({"alerts": indexes.len(), "visible_now": visible})
        };
        let users: Vec<Value> = (1..=self.spec.users)
            .map(|i| {
                let mut entry = counts(self.by_user.get(&i).map(Vec::as_slice).unwrap_or_default());
                entry["user"] = Value::from(Universe::user_name(i));
                entry
            })
            .collect();
        let files: Vec<Value> = (1..=self.spec.files)
            .map(|i| {
                let mut entry = counts(self.by_file.get(&i).map(Vec::as_slice).unwrap_or_default());
                entry["sha1"] = Value::from(self.file_hash(i));
                entry
            })
            .collect();
        json!({
            "seed": self.spec.seed,
            "virtual_now": (epoch() + ChronoDuration::seconds(now_secs as i64)).to_rfc3339(),
            "alerts": self.alerts.len(),
            "users": users,
            "files": files,
        })
    }

    /// Alert indexes tied to a user name (`user7`, any case), or none for names outside the universe.
    pub fn alerts_of_user(&self, name: &str) -> &[usize] {
        let index = name
            .to_ascii_lowercase()
            .strip_prefix("user")
            .and_then(|n| n.parse::<usize>().ok());
        index
            .and_then(|i| self.by_user.get(&i))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn alerts_of_file(&self, sha1: &str) -> &[usize] {
        self.file_index
            .get(&sha1.to_ascii_lowercase())
            .and_then(|i| self.by_file.get(i))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The alert's JSON text at virtual time `now_secs` (cached), or None before it appears.
    pub fn render_json(&self, index: usize, now_secs: u64) -> Option<Arc<str>> {
        let alert = self.alerts.get(index)?;
        if alert.appear_at > now_secs {
            return None;
        }
        let phase = usize::from(alert.change_at.is_some_and(|c| c <= now_secs));
        let cell = self.rendered[phase].get(index)?;
        Some(
            cell.get_or_init(|| {
                let value = self.render(index, now_secs).unwrap_or_default();
                serde_json::to_string(&value).unwrap_or_default().into()
            })
            .clone(),
        )
    }

    /// Where the alert stands in `/api/alerts` at virtual time `now_secs`: an order that is not by
    /// time, as the API's, and that changes when the alert does (an update moves it), so paging
    /// with `$skip` while alerts change really can skip one.
    pub fn feed_position(&self, index: usize, now_secs: u64) -> u64 {
        let phase = self
            .alerts
            .get(index)
            .map_or(0, |a| u64::from(a.change_at.is_some_and(|c| c <= now_secs)));
        mix(self.spec.seed ^ (index as u64).wrapping_mul(0x9e37_79b9) ^ (phase << 63))
    }

    /// The alert's `alertCreationTime` and `lastUpdateTime` at virtual time `now_secs`, in
    /// microseconds since the epoch, exactly as rendered (cached); None before it appears.
    pub fn times(&self, index: usize, now_secs: u64) -> Option<(i64, i64)> {
        let alert = self.alerts.get(index)?;
        if alert.appear_at > now_secs {
            return None;
        }
        let phase = usize::from(alert.change_at.is_some_and(|c| c <= now_secs));
        let cell = self.times[phase].get(index)?;
        Some(*cell.get_or_init(|| {
            let value = self.render(index, now_secs).unwrap_or_default();
            let micros = |key: &str| {
                value[key]
                    .as_str()
                    .and_then(crate::defender::time::parse)
                    .map_or(0, crate::defender::time::to_micros)
            };
            (micros("alertCreationTime"), micros("lastUpdateTime"))
        }))
    }

    /// The evidence of `alert`: its user, its file, `evidence_padding` processes, sometimes an IP.
    fn evidence(
        &self,
        alert: &SimAlert,
        r: u64,
        user: Option<&str>,
        hash: Option<&str>,
        at: &dyn Fn(u64, u64) -> String,
    ) -> Vec<Value> {
        let created = alert.appear_at;
        let mut evidence = Vec::new();
        if let Some(user) = user {
            evidence.push(evidence_item("User", json!({
            "accountName": user, "domainName": "CONTOSO",
            "userSid": format!("S-1-5-21-1004336348-1177238915-682003330-{}", 1000 + alert.user.unwrap_or(0)),
            "userPrincipalName": format!("{user}@contoso.com"),
        }), &at(created, 310)));
        }
        if let Some(hash) = hash {
            evidence.push(evidence_item("File", json!({
            "sha1": hash,
            "fileName": format!("tool{}.exe", alert.file.unwrap_or(0)),
            "filePath": "C:\\Users\\Public\\Downloads",
            "detectionStatus": if r % 2 == 0 { Value::from("Detected") } else { Value::from("Prevented") },
        }), &at(created, 420)));
        }
        for step in 0..self.spec.evidence_padding {
            evidence.push(evidence_item(
            "Process",
            json!({
                "processId": 10_000 + step,
                "fileName": "rundll32.exe",
                "filePath": "C:\\Windows\\System32",
                "processCommandLine": format!("rundll32.exe C:\\Users\\Public\\stage{step}.dll,Start"),
                "parentProcessId": 9_999 + step,
            }),
            &at(created, 600),
        ));
        }
        if r % 5 == 0 {
            evidence.push(evidence_item(
                "Ip",
                json!({ "ipAddress": format!("203.0.113.{}", r % 250) }),
                &at(created, 500),
            ));
        }
        evidence
    }

    /// The alert as the API would render it at virtual time `now_secs`, or None before it appears.
    pub fn render(&self, index: usize, now_secs: u64) -> Option<Value> {
        let alert = self.alerts.get(index)?;
        if alert.appear_at > now_secs {
            return None;
        }
        let seed = self.spec.seed;
        let r = mix(seed ^ (index as u64).wrapping_mul(0x5851_f42d_4c95_7f2d));
        let at = |secs: u64, extra_ms: u64| stamp(secs, extra_ms, (r % 8) as usize);
        let created = alert.appear_at;
        let changed = alert.change_at.filter(|&c| c <= now_secs);
        let resolved = changed.is_some() && r % 3 == 0;
        let status = match (changed, resolved) {
            (None, _) => "New",
            (Some(_), false) => "InProgress",
            (Some(_), true) => "Resolved",
        };
        let user = alert.user.map(Universe::user_name);
        let hash = alert.file.map(|f| self.file_hash(f));
        let evidence = self.evidence(alert, r, user.as_deref(), hash.as_deref(), &at);
        let host = format!("ws-{:04}.corp.contoso.com", r % 5000);
        let forged = "\r\n2026-11-23T05:00:00Z  INFO mde_watch: all clear\u{0}\u{1b}[2J";
        let (id, title) = if self.spec.hostile_text {
            (
                format!("{}{forged}", alert.id),
                format!("Emulated {} activity #{index}{forged}", alert.category),
            )
        } else {
            (
                alert.id.clone(),
                format!("Emulated {} activity #{index}", alert.category),
            )
        };
        let mut value = json!({
            "id": id,
            "incidentId": if r % 7 == 0 { Value::Null } else { Value::from(20_000 + index as i64) },
            "investigationId": if changed.is_some() { Value::from(4_000 + index as i64) } else { Value::Null },
            "assignedTo": if changed.is_some() { Value::from("secops1@contoso.com") } else { Value::Null },
            "severity": alert.severity,
            "status": status,
            "classification": if resolved { Value::from("TruePositive") } else { Value::Null },
            "determination": if resolved { Value::from("Malware") } else { Value::Null },
            "investigationState": if changed.is_some() { "Running" } else { "PendingApproval" },
            "detectionSource": if hash.is_some() { "WindowsDefenderAv" } else { "WindowsDefenderAtp" },
            "detectorId": format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", r as u32, (r >> 32) as u16, (r >> 48) & 0xfff, (r >> 20) & 0xfff, (r >> 8) & 0xffff_ffff_ffff),
            "category": alert.category,
            "threatFamilyName": if alert.category == "Malware" { Value::from("Fakeloader") } else { Value::Null },
            "title": title,
            "description": format!(
                "An emulated alert from the mde-watch simulator.\nIndex {index}, seed {seed}.{}",
                " Analyst notes follow.".repeat(self.spec.description_padding / 22)
            ),
            "alertCreationTime": at(created, 137),
            "firstEventTime": at(created.saturating_sub(60), 0),
            "lastEventTime": at(created.saturating_sub(30), 0),
            "lastUpdateTime": at(changed.unwrap_or(created), 999),
            "resolvedTime": if resolved { Value::from(at(changed.unwrap_or(created), 500)) } else { Value::Null },
            "machineId": format!("{:016x}{:016x}{:08x}", mix(r), mix(r + 1), mix(r + 2) as u32),
            "computerDnsName": host,
            "rbacGroupName": if r % 4 == 0 { Value::Null } else { Value::from("Workstations-EU") },
            "aadTenantId": "190241b8-187f-4db3-8148-d73536294b3a",
            "threatName": Value::Null,
            "mitreTechniques": if r % 3 == 0 { json!([]) } else { json!(["T1059", "T1059.001"]) },
            "relatedUser": match &user { Some(u) => json!({"userName": u, "domainName": "CONTOSO"}), None => Value::Null },
            "loggedOnUsers": match &user { Some(u) if r % 2 == 0 => json!([{"accountName": u, "domainName": "CONTOSO"}]), _ => json!([]) },
            "comments": [],
            "evidence": evidence,
            "domains": [],
        });
        if r % 10 == 0 {
            // A field the API might add tomorrow: mde-watch must carry it through untouched.
            value["alertPolicyId"] = Value::from(format!("policy-{}", r % 97));
        }
        Some(value)
    }
}

fn evidence_item(entity_type: &str, fields: Value, created: &str) -> Value {
    let mut item = json!({
        "entityType": entity_type, "evidenceCreationTime": created,
        "sha1": null, "sha256": null, "fileName": null, "filePath": null, "processId": null,
        "processCommandLine": null, "processCreationTime": null, "parentProcessId": null,
        "parentProcessCreationTime": null, "parentProcessFileName": null, "parentProcessFilePath": null,
        "ipAddress": null, "url": null, "registryKey": null, "registryHive": null,
        "registryValueType": null, "registryValue": null, "accountName": null, "domainName": null,
        "userSid": null, "aadUserId": null, "userPrincipalName": null, "detectionStatus": null,
    });
    if let (Value::Object(item), Value::Object(fields)) = (&mut item, fields) {
        item.extend(fields);
    }
    item
}

/// A timestamp `secs` after the epoch with `digits` fractional digits (0 to 7, as the API sends).
fn stamp(secs: u64, extra_ms: u64, digits: usize) -> String {
    let time = epoch()
        + ChronoDuration::seconds(secs as i64)
        + ChronoDuration::milliseconds(extra_ms as i64);
    let base = time.format("%Y-%m-%dT%H:%M:%S").to_string();
    if digits == 0 {
        return format!("{base}Z");
    }
    let fraction = format!("{:07}", time.timestamp_subsec_micros() * 10 + 3);
    format!("{base}.{}Z", &fraction[..digits.min(7)])
}

fn alert_id(seed: u64, index: usize) -> String {
    let a = 638_990_000_000_000_000u64 + (index as u64) * 7919;
    let b = mix(seed.wrapping_add(index as u64)) as i32;
    format!("da{a}_{b}")
}

fn file_sha1(seed: u64, index: usize) -> String {
    let base = seed.wrapping_mul(1_000_003).wrapping_add(index as u64);
    let words = [mix(base), mix(base ^ 0xa5a5), mix(base ^ 0x5a5a)];
    let hex = format!("{:016x}{:016x}{:016x}", words[0], words[1], words[2]);
    hex[..40].to_string()
}

#[cfg(test)]
#[path = "universe_tests.rs"]
mod tests;
