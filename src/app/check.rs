//! `mde-watch check`: validates everything without starting the service and prints the plan.
//! Every problem goes on its own line; `--connect` also reaches each sink and the OTLP collector,
//! fetches a token and makes one API call.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, SinkKind};
use crate::defender::DefenderClient;
use crate::errors::Chain;
use crate::schedule::gate::RateGate;
use crate::shutdown::Shutdown;
use crate::sinks::Choice;
use crate::stats::Counters;
use crate::units::format_duration;

/// Runs the check, writing the report to `out`; returns the process exit code.
pub async fn check(path: &Path, connect: bool, out: &mut dyn Write) -> std::io::Result<i32> {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(err) => {
            for problem in &err.problems {
                writeln!(out, "error: {problem}")?;
            }
            writeln!(
                out,
                "{}: {} problem(s); nothing was started",
                err.source_name,
                err.problems.len()
            )?;
            return Ok(1);
        }
    };
    report(&config, out)?;
    if !connect {
        writeln!(
            out,
            "config OK (use --connect to also try the token and one API call)"
        )?;
        return Ok(0);
    }
    let failures = try_connect(&config, out).await?;
    if failures == 0 {
        writeln!(out, "config and connection OK")?;
        Ok(0)
    } else {
        Ok(1)
    }
}

/// What the service would do with this config.
pub fn report(config: &Config, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "config: {}", config.source)?;
    for warning in &config.warnings {
        writeln!(out, "warning: {warning}")?;
    }
    let plan = super::plan_for(config);
    let source = crate::feed::choose(config.alert_source.mode, &plan);
    if source.feed {
        let settings = &config.alert_source;
        writeln!(
            out,
            "source: {} ({}): every {} one query of up to {} alerts (more when a slice holds more), re-reading {} behind its cursor; {} of the {} calls per sweep left for the rest",
            match config.api.api {
                crate::config::Api::Defender => "the alerts feed of Defender for Endpoint's API (GET /api/alerts)",
                crate::config::Api::Graph => "the alerts feed of the Microsoft Graph security API (GET /v1.0/security/alerts_v2)",
            },
            source.why,
            format_duration(plan.cron_interval),
            settings.page_size,
            format_duration(settings.lookback),
            plan.budget_per_sweep.saturating_sub(1),
            plan.budget_per_sweep,
        )?;
    } else {
        writeln!(out, "source: entity polls ({})", source.why)?;
        writeln!(out, "{plan}")?;
        for warning in plan.warnings() {
            writeln!(out, "warning: {warning}")?;
        }
    }
    writeln!(
        out,
        "api: {}, {} cloud, {} (token from {}; the app needs the {})",
        match config.api.api {
            crate::config::Api::Defender => "Defender for Endpoint",
            crate::config::Api::Graph => "Microsoft Graph",
        },
        config.api.cloud,
        config.api.api_base,
        config.api.login_base,
        crate::defender::errors::permission(config.api.api)
    )?;
    match (&config.api.certificate, &config.api.secret_source) {
        (Some(credential), _) => writeln!(
            out,
            "certificate: {} (thumbprint {}), valid until {} ({} days left); key from {}; assertions signed {}",
            credential.path.display(),
            credential.certificate.thumbprint,
            credential
                .certificate
                .not_after
                .format("%Y-%m-%d %H:%M UTC"),
            (credential.certificate.not_after - chrono::Utc::now()).num_days(),
            credential.key_source,
            credential.algorithm.as_str()
        )?,
        (None, Some(source)) => writeln!(out, "secret: from {source}")?,
        (None, None) => {}
    }
    writeln!(
        out,
        "store: {} (retention {}, commits flushed within {})",
        config.store.path.display(),
        format_duration(config.store.retention),
        format_duration(config.store.flush_interval)
    )?;
    sinks(config, out)?;
    writeln!(out, "security:")?;
    for line in super::security::summary(config) {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

/// One line per sink: where it sends, in which format, and whether its events may not fit.
fn sinks(config: &Config, out: &mut dyn Write) -> std::io::Result<()> {
    for sink in &config.sinks {
        let target = match &sink.kind {
            SinkKind::File(file) => format!("file {}", file.path.display()),
            SinkKind::Stdout => "stdout".to_string(),
            SinkKind::Syslog(syslog) => format!(
                "syslog {} {} ({:?}, facility {}, messages up to {} bytes)",
                syslog.transport.name(),
                syslog.address,
                syslog.protocol,
                syslog.facility,
                syslog.max_message
            ),
            SinkKind::Kafka(kafka) => format!(
                "kafka topic {} at {} ({} compression)",
                kafka.topic, kafka.brokers, kafka.compression
            ),
        };
        writeln!(
            out,
            "sink {}: {} as {}",
            sink.name,
            target,
            sink.format.as_str()
        )?;
        if let SinkKind::Syslog(syslog) = &sink.kind {
            let tenant = &config.api.tenant_id;
            let size =
                crate::sinks::syslog::size_warning(syslog, sink.format, tenant, &config.collector);
            if let Some(warning) = size {
                writeln!(out, "warning: sink {}: {warning}", sink.name)?;
            }
        }
    }
    Ok(())
}

async fn try_connect(config: &Config, out: &mut dyn Write) -> std::io::Result<usize> {
    let mut failures = check_sinks(config, out).await?;
    failures += check_otlp(config, out).await?;
    let counters = Arc::new(Counters::default());
    let gate = Arc::new(RateGate::new(&config.limits));
    let client = match DefenderClient::new(&config.api, gate, Shutdown::never(), counters) {
        Ok(client) => client,
        Err(err) => {
            writeln!(out, "error: {}", Chain(&err))?;
            return Ok(failures + 1);
        }
    };
    if let Err(err) = client.auth().bearer().await {
        writeln!(out, "error: {}", Chain(&err))?;
        return Ok(failures + 1);
    }
    writeln!(out, "token: OK from {}", client.auth().token_url())?;
    let Some(entry) = config.watchlist.entries.first() else {
        return Ok(failures);
    };
    match client.alerts_for(entry).await {
        Ok(found) => {
            writeln!(
                out,
                "api: OK, {} {} has {} alert(s)",
                entry.kind().as_str(),
                entry.value(),
                found.alerts.len()
            )?;
        }
        Err(err) => {
            writeln!(out, "error: {}", Chain(&err))?;
            failures += 1;
        }
    }
    Ok(failures)
}

/// Sends the OTLP collector an empty export, when one is configured; returns 1 if it failed.
async fn check_otlp(config: &Config, out: &mut dyn Write) -> std::io::Result<usize> {
    if config.telemetry.otlp_endpoint.is_none() {
        return Ok(0);
    }
    let telemetry = config.telemetry.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let target = crate::telemetry::otlp::Target::of(&telemetry)
            .ok_or_else(|| "no OTLP endpoint".to_string())?;
        crate::telemetry::otlp::check_connection(target, std::time::Duration::from_secs(10))
            .map_err(|err| Chain(&err).to_string())
    })
    .await
    .unwrap_or_else(|err| Err(err.to_string()));
    match checked {
        Ok(what) => writeln!(out, "otlp: OK, {what}")?,
        Err(err) => {
            writeln!(out, "error: {err}")?;
            return Ok(1);
        }
    }
    Ok(0)
}

/// Reaches every sink that has something to reach; returns how many failed.
async fn check_sinks(config: &Config, out: &mut dyn Write) -> std::io::Result<usize> {
    let mut failures = 0;
    for sink in &config.sinks {
        let checked = match &sink.kind {
            SinkKind::Kafka(kafka) => {
                let (kafka, name) = (kafka.clone(), sink.name.clone());
                tokio::task::spawn_blocking(move || {
                    crate::sinks::kafka::check_connection(
                        &name,
                        &kafka,
                        std::time::Duration::from_secs(10),
                    )
                    .map(|partitions| format!("topic has {partitions} partition(s)"))
                    .map_err(|failure| Chain(&failure).to_string())
                })
                .await
                .unwrap_or_else(|err| Err(err.to_string()))
            }
            SinkKind::Syslog(syslog) => {
                let attempt = crate::sinks::syslog::check_connection(syslog);
                match tokio::time::timeout(std::time::Duration::from_secs(10), attempt).await {
                    Ok(result) => result.map_err(|failure| Chain(&failure).to_string()),
                    Err(_) => Err(format!("no answer from {} within 10s", syslog.address)),
                }
            }
            SinkKind::File(file) => crate::sinks::FileSink::open(&sink.name, sink.format, file)
                .map(|_| format!("{} is writable", file.path.display()))
                .map_err(|err| Chain(&err).to_string()),
            SinkKind::Stdout => continue,
        };
        match checked {
            Ok(what) => writeln!(out, "sink {}: OK, {what}", sink.name)?,
            Err(err) => {
                writeln!(out, "error: sink {}: {err}", sink.name)?;
                failures += 1;
            }
        }
    }
    Ok(failures)
}
