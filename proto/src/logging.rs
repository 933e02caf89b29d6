//! Logging for both binaries: `tracing` to stderr, filtered by RUST_LOG
//! syntax, as text (the default) or one JSON object per line
//! (`--log-format json`). Under systemd, when stderr is the journal
//! (`JOURNAL_STREAM` names it), text lines carry no timestamp of their own:
//! journald stamps every line.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, the
    /// event's fields (`message` among them) and the request's span.
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(format!("log-format '{other}' is not text or json")),
        }
    }
}

/// Installs the global subscriber. Call once, at startup.
pub fn init(filter: &str, format: Format) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        Format::Json => builder.json().flatten_event(true).try_init(),
        // Colours only on a terminal: journald and log files get plain text.
        Format::Text => {
            let builder = builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
            if stderr_is_journal() {
                builder.without_time().try_init()
            } else {
                builder.try_init()
            }
        }
    };
}

/// Whether stderr is the journal stream systemd connected
/// (`JOURNAL_STREAM=DEVICE:INODE` matches stderr's own).
pub fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    journal_matches(&stream, meta.dev(), meta.ino())
}

fn journal_matches(stream: &str, dev: u64, ino: u64) -> bool {
    stream
        .split_once(':')
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
        == Some((dev, ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_stderr_itself() {
        assert!(journal_matches("8:1234", 8, 1234));
        assert!(!journal_matches("8:1234", 8, 1235));
        assert!(!journal_matches("garbage", 8, 1234));
        assert!(!journal_matches("", 0, 0));
    }

    #[test]
    fn formats_parse() {
        assert_eq!("json".parse::<Format>(), Ok(Format::Json));
        assert_eq!("text".parse::<Format>(), Ok(Format::Text));
        assert!("yaml".parse::<Format>().is_err());
    }
}
