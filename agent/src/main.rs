//! `berth-agent`: parse the configuration, then run until SIGINT/SIGTERM.
//! Containers keep running when the agent stops; the next start resumes them.

use berth_agent::{config, run};
use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = config::Cli::parse();
    let config = match config::Config::load(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth-agent: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    berth_proto::logging::init(&config.log, config.log_format);
    tracing::info!(?config, version = berth_agent::VERSION, "starting");
    tokio::select! {
        result = run(config) => match result {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "agent failed");
                std::process::ExitCode::FAILURE
            }
        },
        _ = shutdown_signal() => {
            tracing::info!("stopping; containers keep running");
            berth_proto::systemd::Notifier::from_env().stopping();
            std::process::ExitCode::SUCCESS
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
