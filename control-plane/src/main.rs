//! `berth-control-plane`: parse the configuration, bind, serve until
//! SIGINT/SIGTERM.
//!
//! Once both listeners are bound it prints one line to stdout,
//! `berth-control-plane ready http=<addr> grpc=<addr> metrics=<addr|off>`, so scripts and tests
//! that pass port 0 learn the real ports. Logs go to stderr.

use anyhow::Context;
use berth_control_plane::{config, run_with_sighup};
use clap::Parser;
use std::io::Write;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut cli = config::Cli::parse();
    let command = cli.command.take();
    let config = match config::Config::load(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth-control-plane: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    berth_proto::logging::init(&config.log, config.log_format);
    if let Some(config::Command::Snapshot(c)) = command {
        return snapshot(c, &config.data_dir).await;
    }
    match serve(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "control plane failed");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `snapshot save FILE` / `snapshot restore FILE`.
async fn snapshot(
    command: config::SnapshotCommand,
    data_dir: &std::path::Path,
) -> std::process::ExitCode {
    use berth_control_plane::snapshot;
    let result = match &command {
        config::SnapshotCommand::Save { file } => snapshot::save(data_dir, file)
            .map(|n| format!("saved {n} records to {}", file.display())),
        config::SnapshotCommand::Restore { file } => {
            snapshot::restore(file, data_dir).await.map(|n| {
                format!(
                    "restored {n} records into {} and verified them",
                    data_dir.display()
                )
            })
        }
    };
    match result {
        Ok(line) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("berth-control-plane snapshot: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: config::Config) -> anyhow::Result<()> {
    tracing::info!(?config, "starting");
    let beyond_loopback =
        !(config.http_listen.ip().is_loopback() && config.grpc_listen.ip().is_loopback());
    if config.insecure && beyond_loopback {
        let mut missing = Vec::new();
        if config.keys.is_none() {
            missing.push("credentials-file (API callers are not authenticated)");
        }
        if config.join_token.is_none() {
            missing.push("agent-token-file (any agent may join)");
        }
        if config.tls.is_none() && !config.grpc_listen.ip().is_loopback() {
            missing.push("tls-cert/tls-key (gRPC is plain text)");
        }
        if !missing.is_empty() {
            tracing::warn!(
                http = %config.http_listen,
                grpc = %config.grpc_listen,
                missing = %missing.join(", "),
                "listening beyond loopback with protections off (--insecure)"
            );
        }
    }
    let http = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("cannot listen on {} (http-listen)", config.http_listen))?;
    let grpc = tokio::net::TcpListener::bind(config.grpc_listen)
        .await
        .with_context(|| format!("cannot listen on {} (grpc-listen)", config.grpc_listen))?;
    // Registered before the ready line: from then on SIGHUP reloads the
    // credentials instead of ending the process.
    let sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot watch SIGHUP")?;
    let metrics = berth_control_plane::bind_metrics(&config).await?;
    let metrics_addr = match &metrics {
        Some(m) => m.local_addr()?.to_string(),
        None => "off".to_owned(),
    };
    let (http_addr, grpc_addr) = (http.local_addr()?, grpc.local_addr()?);
    tracing::info!(http = %http_addr, grpc = %grpc_addr, "listening");
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "berth-control-plane ready http={http_addr} grpc={grpc_addr} metrics={metrics_addr}"
    )?;
    stdout.flush()?;
    run_with_sighup(config, http, grpc, metrics, shutdown_signal(), Some(sighup)).await
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
