//! The `mde-watch` command line: parses the arguments (`cli.rs`), sets up logging and the
//! runtime, and hands the command to `commands.rs`.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, LogFormat};
use mde_watch::config::Config;
use mde_watch::telemetry::otlp;

fn main() -> ExitCode {
    // What mde-watch writes (the store, events, exports) names watched users and holds alert
    // content: never readable by other local users, whatever umask it was started with (the
    // unit sets UMask=0027 too).
    // SAFETY: umask swaps the process's file-mode mask and cannot fail; no thread runs yet.
    unsafe { libc::umask(0o027) };
    mde_watch::memory::tune_allocator();
    let cli = Cli::parse();
    // Spans go to OTLP only from the service, and the layer must be there from the start: the
    // config is read once here for its endpoint (errors are reported by the real load later).
    let tracer = match &cli.command {
        Command::Run(file) => Config::load(&file.config)
            .ok()
            .map(|config| config.telemetry),
        _ => None,
    }
    .and_then(|telemetry| otlp::Target::of(&telemetry).map(otlp::tracer_provider));
    let tracer = match tracer.transpose() {
        Ok(tracer) => tracer,
        Err(err) => {
            eprintln!("error: {:#}", anyhow::Error::new(err));
            return ExitCode::FAILURE;
        }
    };
    init_logging(
        cli.log_level.as_deref(),
        matches!(cli.command, Command::Demo { .. }),
        cli.log_format,
        tracer.as_ref(),
    );
    let runtime = match runtime_for(&cli.command).enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    };
    drop(runtime);
    if let Some(tracer) = tracer {
        // Sends the spans still batched; outside the runtime, as the blocking exporter needs.
        if let Err(err) = tracer.shutdown() {
            eprintln!("warning: spans not all exported at exit: {err}");
        }
    }
    code
}

/// The daemon's tasks (polls, the publisher, the sinks' async side, the status server) share one
/// thread: an alert is then read, judged, encoded and freed on the core that received it, with
/// no hand-over between threads. Measured on the heavy benchmark against tokio's multi-thread
/// runtime: ~10% less CPU an alert and 5–9 MiB less peak memory, end to end and feed included
/// (benches/README.md, Dec 4 night); 100,000 alerts/s or more on the heavy shapes but the
/// deflated 200×500 one (97,000–107,000). What blocks stays off it (the file sink's writes and
/// syncs on its own thread, Kafka on librdkafka's, exports and `check --connect` in
/// `spawn_blocking`) but a batch's commit to the store: the polls wait it out with the
/// publisher, the backpressure the end-to-end memory figure relies on (off the thread it cost
/// 8 MiB of peak). The emulator is a server meant never to be the bottleneck: it keeps a thread
/// per core.
fn runtime_for(command: &Command) -> tokio::runtime::Builder {
    match command {
        Command::Sim(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    }
}

fn init_logging(
    level: Option<&str>,
    quiet: bool,
    format: LogFormat,
    tracer: Option<&opentelemetry_sdk::trace::SdkTracerProvider>,
) {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::prelude::*;
    let default = level.unwrap_or(if quiet { "warn" } else { "info" });
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines = match (format, journald) {
        (LogFormat::Json, _) => lines.json().boxed(),
        (LogFormat::Text, true) => lines
            .without_time()
            .with_ansi(false)
            .fmt_fields(mde_watch::logging::EscapedFields)
            .boxed(),
        (LogFormat::Text, false) => lines
            .with_ansi(mde_watch::logging::use_color())
            .fmt_fields(mde_watch::logging::EscapedFields)
            .boxed(),
    };
    // The spans have a filter of their own: with one filter for both, an operator who quiets
    // the log (RUST_LOG=warn) would silently stop the traces too.
    let span_levels =
        tracing_subscriber::filter::Targets::new().with_target("mde_watch", tracing::Level::INFO);
    let spans = tracer.map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("mde-watch"))
            .with_filter(span_levels)
    });
    tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(spans)
        .init();
}
