//! ECS (Elastic Common Schema) events, following docs/formats.md: ECS fields where ECS has a
//! place, `microsoft.defender_endpoint.*` for the rest of the alert (the namespace Elastic's own
//! integration uses), `mde_watch.*` for ours. Field types follow the ECS definitions
//! (`event.severity` is a number; `event.category`, `event.type`, `related.*` are arrays).

use std::borrow::Cow;
use std::net::IpAddr;

use smallvec::SmallVec;

use super::evidence;
use super::text;
use super::vendor::VendorFields;
use super::{Change, EventContext, Severity};
use crate::defender::{time, Alert, PolledAlert};
use crate::json::JsonWriter;

pub const ECS_VERSION: &str = "9.0.0";

/// The ECS event of one alert. Written field by field (docs/formats.md, "ECS"), in the order
/// the golden files fix, straight into the output buffer: no intermediate structure per event,
/// and strings escaped a word at a time (`crate::json`).
pub fn encode(polled: &PolledAlert, context: &EventContext) -> serde_json::Result<Vec<u8>> {
    let alert = polled.alert();
    // ECS events are a little larger than the alert they come from: size the buffer once.
    let mut out = Vec::with_capacity(polled.len() + 1024);
    let mut w = JsonWriter::for_text(&mut out, polled.text());
    w.begin_object();
    let created = alert
        .alert_creation_time
        .as_deref()
        .and_then(normalized_time);
    let timestamp = created
        .clone()
        .or_else(|| alert.last_update_time.as_deref().and_then(normalized_time))
        .unwrap_or(Cow::Borrowed(context.observed_at));
    w.key("@timestamp").str(&timestamp);
    w.opt_str("message", alert.title.as_deref());
    w.key("ecs")
        .begin_object()
        .key("version")
        .lit(ECS_VERSION)
        .end_object();
    event(&mut w, alert, context, created.as_deref());
    w.key("rule")
        .begin_object()
        .opt_str("id", alert.detector_id.as_deref())
        .opt_str("name", alert.title.as_deref())
        .opt_str("description", alert.description.as_deref())
        .opt_str("category", alert.category.as_deref())
        .end_object();
    threat(&mut w, &alert.mitre_techniques);
    host(&mut w, alert);
    entities(&mut w, alert);
    related(&mut w, alert);
    if let Some(id) = alert.aad_tenant_id.as_deref() {
        w.key("cloud").begin_object();
        w.key("account")
            .begin_object()
            .key("id")
            .str(id)
            .end_object();
        w.end_object();
        w.key("organization")
            .begin_object()
            .key("id")
            .str(id)
            .end_object();
    }
    w.key("observer")
        .begin_object()
        .key("vendor")
        .lit("Microsoft")
        .key("product")
        .lit(super::product::of(alert).name)
        .end_object();
    if context.verbatim {
        w.key("microsoft").begin_object().key("defender_endpoint");
        VendorFields::of(alert).write(&mut w);
        w.end_object();
    }
    w.key("mde_watch");
    super::write_provenance(&mut w, context);
    w.end_object();
    Ok(out)
}

fn event(w: &mut JsonWriter, alert: &Alert, context: &EventContext, created: Option<&str>) {
    w.key("event")
        .begin_object()
        .key("kind")
        .lit("alert")
        .lit_array("category", categories(alert).iter().copied())
        .lit_array("type", ["info"])
        .key("action")
        .lit(match context.change {
            Change::New => "alert-created",
            Change::Updated => "alert-updated",
        })
        .key("provider")
        .lit(super::product::of(alert).provider)
        .key("module")
        .lit("mde_watch")
        .key("dataset")
        .lit("mde_watch.alert")
        .key("id")
        .str(&alert.id)
        .key("severity")
        .int(i64::from(Severity::parse(alert.severity.as_deref()).ecs()))
        .opt_str("created", created);
    let start = alert.first_event_time.as_deref().and_then(normalized_time);
    let end = alert.last_event_time.as_deref().and_then(normalized_time);
    w.opt_str("start", start.as_deref())
        .opt_str("end", end.as_deref())
        .end_object();
}

/// `user`, `file`, `process` and `url`: the related user and the first evidence of each kind.
fn entities(w: &mut JsonWriter, alert: &Alert) {
    if let Some(user) = alert.related_user.as_ref() {
        let (name, domain) = (user.user_name.as_deref(), user.domain_name.as_deref());
        if name.is_some() || domain.is_some() {
            w.key("user")
                .begin_object()
                .opt_str("name", name)
                .opt_str("domain", domain)
                .end_object();
        }
    }
    if let Some(e) = evidence::file(alert) {
        let path = evidence::full_path(e.file_path.as_deref(), e.file_name.as_deref());
        w.key("file")
            .begin_object()
            .opt_str("name", e.file_name.as_deref())
            .opt_str("path", path.as_deref())
            .opt_str("directory", e.file_path.as_deref())
            .key("hash")
            .begin_object()
            .opt_str("sha1", e.sha1.as_deref())
            .opt_str("sha256", e.sha256.as_deref())
            .end_object()
            .end_object();
    }
    if let Some(e) = evidence::process(alert) {
        w.key("process").begin_object();
        if let Some(pid) = e.process_id {
            w.key("pid").int(pid);
        }
        w.opt_str("name", e.file_name.as_deref())
            .opt_str("command_line", e.process_command_line.as_deref())
            .end_object();
    }
    if let Some(full) = evidence::url(alert) {
        w.key("url")
            .begin_object()
            .key("full")
            .str(full)
            .end_object();
    }
}

/// Defender times in UTC RFC 3339; unreadable ones are left out of ECS date fields (they stay,
/// verbatim, in the vendor namespace or the raw format). A valid UTC time ending in `Z` is
/// already what ECS takes (Elasticsearch reads up to 9 fractional digits), so it goes out as is.
fn normalized_time(text: &str) -> Option<Cow<'_, str>> {
    if time::is_utc_as_sent(text) {
        return Some(Cow::Borrowed(text));
    }
    let parsed = time::parse(text)?;
    if text.ends_with('Z') {
        Some(Cow::Borrowed(text))
    } else {
        Some(Cow::Owned(time::format(parsed)))
    }
}

fn categories(alert: &Alert) -> &'static [&'static str] {
    let malware = alert.threat_family_name.is_some()
        || alert
            .category
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("malware"));
    if malware {
        &["intrusion_detection", "malware"]
    } else {
        &["intrusion_detection"]
    }
}

/// `T1003.001` is a sub-technique of `T1003`: the parent goes to technique.id, the full id to
/// technique.subtechnique.id.
fn threat(w: &mut JsonWriter, techniques: &[Cow<'_, str>]) {
    if techniques.is_empty() {
        return;
    }
    let (ids, subs) = techniques_of(techniques);
    w.key("threat")
        .begin_object()
        .key("framework")
        .lit("MITRE ATT&CK")
        .key("technique")
        .begin_object()
        .str_array("id", ids);
    if !subs.is_empty() {
        w.key("subtechnique")
            .begin_object()
            .str_array("id", subs)
            .end_object();
    }
    w.end_object().end_object();
}

/// The parent techniques and the sub-techniques, each once, in the order first named.
fn techniques_of<'a>(techniques: &'a [Cow<'a, str>]) -> (Names<'a>, Names<'a>) {
    let mut ids = Names::new();
    let mut subs = Names::new();
    for technique in techniques {
        let technique = technique.trim();
        let parent = technique.split('.').next().unwrap_or(technique);
        push_unique(&mut ids, parent);
        if technique.contains('.') {
            push_unique(&mut subs, technique);
        }
    }
    (ids, subs)
}

/// A few names an event lists, kept inline: an alert names a handful at most, and every event
/// builds several such lists.
type Names<'a> = SmallVec<[&'a str; 4]>;

fn push_unique<A: smallvec::Array>(list: &mut SmallVec<A>, item: A::Item)
where
    A::Item: PartialEq,
{
    if !list.contains(&item) {
        list.push(item);
    }
}

fn host(w: &mut JsonWriter, alert: &Alert) {
    let name = alert.computer_dns_name.as_deref();
    if name.is_none() && alert.machine_id.is_none() {
        return;
    }
    w.key("host")
        .begin_object()
        .opt_str("id", alert.machine_id.as_deref())
        .opt_str("name", name)
        .opt_str("hostname", name.map(|n| n.split('.').next().unwrap_or(n)))
        .end_object();
}

/// `related.*`: every hash, address, user and host the alert names, each once.
#[derive(Default)]
struct Related<'a> {
    hash: Names<'a>,
    /// Only addresses: Elasticsearch rejects a whole document for one non-IP in an `ip` field.
    ip: SmallVec<[IpAddr; 2]>,
    user: Names<'a>,
    hosts: Names<'a>,
}

fn related_of<'a>(alert: &'a Alert<'_>) -> Related<'a> {
    let mut related = Related::default();
    if let Some(name) = alert
        .related_user
        .as_ref()
        .and_then(|u| u.user_name.as_deref())
    {
        push_unique(&mut related.user, name);
    }
    for user in &alert.logged_on_users {
        if let Some(name) = user.account_name.as_deref() {
            push_unique(&mut related.user, name);
        }
    }
    for evidence in &alert.evidence {
        for hash in [evidence.sha1.as_deref(), evidence.sha256.as_deref()]
            .into_iter()
            .flatten()
        {
            push_unique(&mut related.hash, hash);
        }
        // A value that is not an address stays, verbatim, in the evidence under
        // microsoft.defender_endpoint.
        if let Some(ip) = evidence.ip_address.as_deref().and_then(text::ip) {
            push_unique(&mut related.ip, ip);
        }
        if let Some(name) = evidence.account_name.as_deref() {
            push_unique(&mut related.user, name);
        }
    }
    if let Some(host) = alert.computer_dns_name.as_deref() {
        push_unique(&mut related.hosts, host);
    }
    related
}

fn related(w: &mut JsonWriter, alert: &Alert) {
    let related = related_of(alert);
    w.key("related").begin_object();
    if !related.hash.is_empty() {
        w.str_array("hash", related.hash);
    }
    if !related.ip.is_empty() {
        w.key("ip").begin_array();
        for ip in related.ip {
            w.display(ip);
        }
        w.end_array();
    }
    if !related.user.is_empty() {
        w.str_array("user", related.user);
    }
    if !related.hosts.is_empty() {
        w.str_array("hosts", related.hosts);
    }
    w.end_object();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtechniques_split_from_parents() {
        let techniques = ["T1003".into(), "T1003.001".into(), "T1059.001".into()];
        let (ids, subs) = techniques_of(&techniques);
        assert_eq!(ids.as_slice(), ["T1003", "T1059"]);
        assert_eq!(subs.as_slice(), ["T1003.001", "T1059.001"]);
        let mut out = Vec::new();
        threat(&mut JsonWriter::new(&mut out), &[]);
        assert!(out.is_empty(), "no techniques, no threat");
    }

    proptest::proptest! {
        /// Strings sent without escapes are copied from the alert's text unscanned, the others
        /// escaped: either way the event reads back as the value sent.
        #[test]
        fn every_string_reads_back_as_sent(
            title in "\\PC*|[\"\\\\\n\u{1}a-z]{0,20}",
            user in "[a-z]{0,8}|[\"\\\\\t\u{7f}\u{e9}a-z]{1,20}",
            host in "[a-z.]{1,30}",
        ) {
            let alert = serde_json::json!({
                "id": "da1", "title": title, "computerDnsName": host,
                "relatedUser": {"userName": user, "domainName": "CONTOSO"},
                "alertCreationTime": "2024-01-01T00:00:00Z",
            });
            let polled = PolledAlert::parse(alert.to_string()).unwrap();
            let context = EventContext::new(&[], "t", "c", Change::New, "2024-01-01T00:00:01Z");
            let event: serde_json::Value =
                serde_json::from_slice(&encode(&polled, &context).unwrap()).unwrap();
            proptest::prop_assert_eq!(event["message"].as_str(), Some(title.as_str()));
            proptest::prop_assert_eq!(event["rule"]["name"].as_str(), Some(title.as_str()));
            proptest::prop_assert_eq!(event["host"]["name"].as_str(), Some(host.as_str()));
            let short = host.split('.').next().unwrap_or_default();
            proptest::prop_assert_eq!(event["host"]["hostname"].as_str(), Some(short));
            if !user.is_empty() {
                proptest::prop_assert_eq!(event["user"]["name"].as_str(), Some(user.as_str()));
                proptest::prop_assert_eq!(&event["related"]["user"][0], user.as_str());
            }
        }
    }
}
