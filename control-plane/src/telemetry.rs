//! Logging for the control plane binary: `tracing` to stderr, filtered by
//! the configured filter (RUST_LOG syntax).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call once, at startup.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}
