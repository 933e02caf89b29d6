//! Configuration: flags (clap; their doc comments are `--help`), `BERTH_*`
//! environment variables, and a TOML file, in that order of precedence, over
//! the defaults. Every problem is reported at once, then startup fails.

use crate::auth::{JoinToken, Keys};
use clap::Parser;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Berth control plane: the Amazon ECS API for your own hosts.
#[derive(Debug, Parser)]
#[command(name = "berth-control-plane", version, about)]
pub struct Cli {
    /// TOML configuration file (keys as the flags, e.g. `data-dir = "/var/lib/berth"`).
    #[arg(long, env = "BERTH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the state database lives [default: /var/lib/berth/control-plane].
    #[arg(long, env = "BERTH_DATA_DIR", value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Address of the ECS JSON API (aws --endpoint-url) [default: 127.0.0.1:7080].
    #[arg(long, env = "BERTH_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<String>,
    /// Address of the gRPC API agents connect to [default: 127.0.0.1:7081].
    #[arg(long, env = "BERTH_GRPC_LISTEN", value_name = "ADDR")]
    pub grpc_listen: Option<String>,
    /// Address of /metrics, /healthz and /readyz (unauthenticated), or `off` [default: 127.0.0.1:7082].
    #[arg(long, env = "BERTH_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Allow --metrics-listen beyond loopback (its endpoints are unauthenticated, as Prometheus endpoints are) [default: false].
    #[arg(long, env = "BERTH_METRICS_PUBLIC")]
    pub metrics_public: bool,
    /// Region shown in ARNs [default: us-east-1].
    #[arg(long, env = "BERTH_REGION")]
    pub region: Option<String>,
    /// 12-digit account id shown in ARNs [default: 000000000000].
    #[arg(long, env = "BERTH_ACCOUNT_ID")]
    pub account_id: Option<String>,
    /// How long STOPPED tasks stay describable, e.g. 1h, 30m [default: 1h].
    #[arg(long, env = "BERTH_STOPPED_TASK_RETENTION", value_name = "DURATION")]
    pub stopped_task_retention: Option<String>,
    /// How long an agent may be disconnected before its service tasks are replaced elsewhere, e.g. 2m [default: 2m].
    #[arg(long, env = "BERTH_LOST_HOST_TIMEOUT", value_name = "DURATION")]
    pub lost_host_timeout: Option<String>,
    /// Seed of the `random` placement strategy; the same seed repeats the same choices [default: from the clock].
    #[arg(long, env = "BERTH_PLACEMENT_SEED", value_name = "N")]
    pub placement_seed: Option<u64>,
    /// MiB of the state database's page cache (recent records stay in memory; older ones are read from disk when asked for) [default: 32].
    #[arg(long, env = "BERTH_STORE_CACHE_MIB", value_name = "MIB")]
    pub store_cache_mib: Option<u64>,
    /// Log filter, RUST_LOG syntax [default: info].
    #[arg(long, env = "BERTH_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// Log lines as text or json (one object per line); text lines carry no timestamp when stderr is the journal [default: text].
    #[arg(long, env = "BERTH_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// API users: TOML with one [[credentials]] table per user (access_key_id, secret_access_key, name); when given, every API request must be signed with one of them.
    #[arg(long, env = "BERTH_CREDENTIALS_FILE", value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,
    /// Join token(s) agents must present, one per line; when given, agents without it are refused.
    #[arg(long, env = "BERTH_AGENT_TOKEN_FILE", value_name = "FILE")]
    pub agent_token_file: Option<PathBuf>,
    /// PEM certificate chain for the gRPC listener; serves gRPC over TLS (with --tls-key).
    #[arg(long, env = "BERTH_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "BERTH_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Listen beyond loopback without a credentials file or agent token (anyone who reaches the ports controls the cluster) [default: false].
    #[arg(long, env = "BERTH_INSECURE")]
    pub insecure: bool,
    /// Serve what is left of a state found damaged or incomplete (logged) instead of refusing to start; use once, after deciding not to restore a snapshot [default: false].
    #[arg(long, env = "BERTH_ACCEPT_STATE_LOSS")]
    pub accept_state_loss: bool,
    /// Instead of serving: a maintenance command.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Maintenance commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Backups of the whole state.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

/// `snapshot save` / `snapshot restore`.
#[derive(Debug, clap::Subcommand)]
pub enum SnapshotCommand {
    /// Writes a consistent snapshot of the state to FILE: from the control plane running on --data-dir (asked with SIGUSR1), or from the stored state when none runs.
    Save {
        /// Where to write it.
        file: PathBuf,
    },
    /// Restores FILE into --data-dir, which must hold no state yet; the restored state is read back and compared.
    Restore {
        /// The snapshot.
        file: PathBuf,
    },
}

/// The file form; same names as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    data_dir: Option<PathBuf>,
    http_listen: Option<String>,
    grpc_listen: Option<String>,
    metrics_listen: Option<String>,
    metrics_public: Option<bool>,
    region: Option<String>,
    account_id: Option<String>,
    stopped_task_retention: Option<String>,
    lost_host_timeout: Option<String>,
    placement_seed: Option<u64>,
    store_cache_mib: Option<u64>,
    log: Option<String>,
    log_format: Option<String>,
    credentials_file: Option<PathBuf>,
    agent_token_file: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    insecure: Option<bool>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// State database directory.
    pub data_dir: PathBuf,
    /// ECS JSON API address (port 0 picks a free port).
    pub http_listen: SocketAddr,
    /// /metrics, /healthz, /readyz; `None` when off.
    pub metrics_listen: Option<SocketAddr>,
    /// Agent gRPC address (port 0 picks a free port).
    pub grpc_listen: SocketAddr,
    /// Region in ARNs.
    pub region: String,
    /// Account id in ARNs.
    pub account_id: String,
    /// STOPPED task retention.
    pub stopped_task_retention: Duration,
    /// Disconnection after which service tasks are replaced elsewhere.
    pub lost_host_timeout: Duration,
    /// Seed of the `random` strategy; `None` seeds from the clock.
    pub placement_seed: Option<u64>,
    /// Bytes of sled's page cache.
    pub store_cache_bytes: u64,
    /// Log filter.
    pub log: String,
    /// Log line format.
    pub log_format: berth_proto::logging::Format,
    /// API users; `None` accepts unsigned requests (loopback only, or
    /// `insecure`).
    pub keys: Option<Keys>,
    /// Where `keys` came from (reloaded on SIGHUP).
    pub credentials_file: Option<PathBuf>,
    /// The agents' join token; `None` accepts any agent.
    pub join_token: Option<JoinToken>,
    /// Where `join_token` came from (reloaded on SIGHUP).
    pub agent_token_file: Option<PathBuf>,
    /// Certificate and key files of the gRPC listener.
    pub tls: Option<TlsFiles>,
    /// Listening beyond loopback without authentication was allowed.
    pub insecure: bool,
    /// Serve a damaged state instead of refusing to start.
    pub accept_state_loss: bool,
}

/// PEM files for serving gRPC over TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// Every configuration problem found.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Merges flags/env over the file over the defaults.
    pub fn load(cli: Cli) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();
        let file = match &cli.config {
            None => FileConfig::default(),
            Some(path) => match std::fs::read_to_string(path) {
                Err(e) => {
                    errors.push(format!("cannot read {}: {e}", path.display()));
                    FileConfig::default()
                }
                Ok(text) => toml::from_str(&text).unwrap_or_else(|e| {
                    errors.push(format!("{}: {e}", path.display()));
                    FileConfig::default()
                }),
            },
        };
        let log_format = match cli.log_format.or(file.log_format) {
            None => berth_proto::logging::Format::default(),
            Some(f) => f.parse().unwrap_or_else(|e: String| {
                errors.push(e);
                berth_proto::logging::Format::default()
            }),
        };
        let mut addr = |what: &str, value: Option<String>, default: &str| -> SocketAddr {
            let text = value.unwrap_or_else(|| default.to_owned());
            text.parse().unwrap_or_else(|_| {
                errors.push(format!(
                    "{what} '{text}' is not an address like 127.0.0.1:7080"
                ));
                SocketAddr::from(([127, 0, 0, 1], 0))
            })
        };
        let http_listen = addr(
            "http-listen",
            cli.http_listen.or(file.http_listen),
            "127.0.0.1:7080",
        );
        let grpc_listen = addr(
            "grpc-listen",
            cli.grpc_listen.or(file.grpc_listen),
            "127.0.0.1:7081",
        );
        let metrics_text = cli
            .metrics_listen
            .or(file.metrics_listen)
            .unwrap_or_else(|| "127.0.0.1:7082".to_owned());
        let metrics_listen = if metrics_text == "off" {
            None
        } else {
            Some(addr("metrics-listen", Some(metrics_text), "127.0.0.1:7082"))
        };
        let metrics_public = cli.metrics_public || file.metrics_public.unwrap_or(false);
        if let Some(m) = metrics_listen
            && !m.ip().is_loopback()
            && !metrics_public
        {
            errors.push(format!(
                "metrics-listen {m} is not a loopback address: its endpoints are unauthenticated. Listen on 127.0.0.1, or pass --metrics-public (metrics-public = true) to serve them on the network"
            ));
        }
        let region = cli
            .region
            .or(file.region)
            .unwrap_or_else(|| "us-east-1".to_owned());
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            errors.push(format!(
                "region '{region}' must be lower-case letters, digits and hyphens"
            ));
        }
        let account_id = cli
            .account_id
            .or(file.account_id)
            .unwrap_or_else(|| "000000000000".to_owned());
        if account_id.len() != 12 || !account_id.chars().all(|c| c.is_ascii_digit()) {
            errors.push(format!("account-id '{account_id}' must be 12 digits"));
        }
        let store_cache_mib = cli
            .store_cache_mib
            .or(file.store_cache_mib)
            .unwrap_or(crate::store::DEFAULT_CACHE_BYTES >> 20);
        if !(4..=1 << 20).contains(&store_cache_mib) {
            errors.push(format!(
                "store-cache-mib {store_cache_mib} must be from 4 to 1048576 (MiB)"
            ));
        }
        let retention_text = cli
            .stopped_task_retention
            .or(file.stopped_task_retention)
            .unwrap_or_else(|| "1h".to_owned());
        let stopped_task_retention = parse_duration(&retention_text).unwrap_or_else(|e| {
            errors.push(format!("stopped-task-retention: {e}"));
            Duration::from_secs(3600)
        });
        let lost_text = cli
            .lost_host_timeout
            .or(file.lost_host_timeout)
            .unwrap_or_else(|| "2m".to_owned());
        let lost_host_timeout = parse_duration(&lost_text).unwrap_or_else(|e| {
            errors.push(format!("lost-host-timeout: {e}"));
            Duration::from_secs(120)
        });
        let credentials_file = cli.credentials_file.or(file.credentials_file);
        let keys = credentials_file
            .as_deref()
            .and_then(|path| match Keys::load(path) {
                Ok(k) => Some(k),
                Err(e) => {
                    errors.push(e);
                    None
                }
            });
        let agent_token_file = cli.agent_token_file.or(file.agent_token_file);
        let join_token = agent_token_file
            .as_deref()
            .and_then(|path| match JoinToken::load(path) {
                Ok(t) => Some(t),
                Err(e) => {
                    errors.push(e);
                    None
                }
            });
        let tls = match (cli.tls_cert.or(file.tls_cert), cli.tls_key.or(file.tls_key)) {
            (Some(cert), Some(key)) => {
                for p in [&cert, &key] {
                    if let Err(e) = std::fs::metadata(p) {
                        errors.push(format!("cannot read {}: {e}", p.display()));
                    }
                }
                Some(TlsFiles { cert, key })
            }
            (None, None) => None,
            _ => {
                errors.push("tls-cert and tls-key go together: give both or neither".to_owned());
                None
            }
        };
        let config = Config {
            data_dir: cli
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("/var/lib/berth/control-plane")),
            http_listen,
            metrics_listen,
            grpc_listen,
            region,
            account_id,
            stopped_task_retention,
            lost_host_timeout,
            placement_seed: cli.placement_seed.or(file.placement_seed),
            store_cache_bytes: store_cache_mib << 20,
            log: cli.log.or(file.log).unwrap_or_else(|| "info".to_owned()),
            log_format,
            keys,
            credentials_file,
            join_token,
            agent_token_file,
            tls,
            insecure: cli.insecure || file.insecure.unwrap_or(false),
            accept_state_loss: cli.accept_state_loss,
        };
        // Beyond loopback, whoever reaches a port would control the cluster
        // unless callers sign (both listeners serve the ECS API) and agents
        // present the join token (the gRPC listener). Refuse unless asked.
        if !config.insecure {
            for (what, addr) in [
                ("http-listen", config.http_listen),
                ("grpc-listen", config.grpc_listen),
            ] {
                if addr.ip().is_loopback() {
                    continue;
                }
                if config.keys.is_none() {
                    errors.push(format!(
                        "{what} {addr} is not a loopback address and no credentials-file is given: anyone who reaches it could call the API unauthenticated. Give --credentials-file, listen on 127.0.0.1, or pass --insecure (insecure = true) on a network you trust"
                    ));
                }
                if what == "grpc-listen" && config.join_token.is_none() {
                    errors.push(format!(
                        "{what} {addr} is not a loopback address and no agent-token-file is given: anyone who reaches it could register as an agent. Give --agent-token-file, listen on 127.0.0.1, or pass --insecure (insecure = true) on a network you trust"
                    ));
                }
                if what == "grpc-listen" && config.tls.is_none() {
                    errors.push(format!(
                        "{what} {addr} is not a loopback address and no tls-cert/tls-key is given: the join token and gRPC signatures would cross the network in clear text. Give --tls-cert and --tls-key (README: Security, homelab recipe), listen on 127.0.0.1, or pass --insecure (insecure = true) on a network you trust"
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(errors))
        }
    }
}

/// `90s`, `15m`, `1h`, `2d`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 30s, 15m, 1h or 2d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(format!(
                "'{text}' is not a duration like 30s, 15m, 1h or 2d"
            ));
        }
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("berth-control-plane").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn defaults_listen_on_loopback() {
        let c = Config::load(cli(&[])).unwrap();
        assert!(c.http_listen.ip().is_loopback());
        assert!(c.grpc_listen.ip().is_loopback());
        assert_eq!(c.stopped_task_retention, Duration::from_secs(3600));
    }

    #[test]
    fn reports_every_problem() {
        let err = Config::load(cli(&[
            "--http-listen",
            "nope",
            "--account-id",
            "12",
            "--stopped-task-retention",
            "soon",
        ]))
        .unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
    }

    #[test]
    fn listening_beyond_loopback_needs_insecure() {
        let err = Config::load(cli(&["--grpc-listen", "0.0.0.0:7081"])).unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
        assert!(err.0[2].contains("tls-cert"), "{err}");
        assert!(
            err.0[0].contains("grpc-listen 0.0.0.0:7081") && err.0[0].contains("credentials-file")
        );
        assert!(err.0[1].contains("agent-token-file") && err.0[1].contains("--insecure"));
        let c = Config::load(cli(&["--grpc-listen", "0.0.0.0:7081", "--insecure"])).unwrap();
        assert!(c.insecure);
        assert!(Config::load(cli(&["--http-listen", "[::1]:7080"])).is_ok());

        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials.toml");
        std::fs::write(&creds, "[[credentials]]\naccess_key_id = \"AKIDHOME\"\nsecret_access_key = \"0123456789abcdefXYZ\"\n").unwrap();
        let token = dir.path().join("agent-token");
        std::fs::write(&token, "0123456789abcdef0123456789abcdef\n").unwrap();
        let (creds, token) = (creds.to_str().unwrap(), token.to_str().unwrap());
        // The JSON API beyond loopback needs credentials only.
        let c = Config::load(cli(&[
            "--http-listen",
            "0.0.0.0:7080",
            "--credentials-file",
            creds,
        ]))
        .unwrap();
        assert_eq!(c.keys.as_ref().map(|k| k.len()), Some(1));
        assert!(!format!("{c:?}").contains("XYZ"));
        // gRPC beyond loopback needs credentials, a join token and TLS.
        let err = Config::load(cli(&[
            "--grpc-listen",
            "0.0.0.0:7081",
            "--credentials-file",
            creds,
        ]))
        .unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        let pem = dir.path().join("cp.pem");
        std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let pem = pem.to_str().unwrap();
        let err = Config::load(cli(&[
            "--grpc-listen",
            "0.0.0.0:7081",
            "--credentials-file",
            creds,
            "--agent-token-file",
            token,
        ]))
        .unwrap_err();
        assert!(err.0.len() == 1 && err.0[0].contains("tls-cert"), "{err}");
        assert!(
            Config::load(cli(&[
                "--grpc-listen",
                "0.0.0.0:7081",
                "--credentials-file",
                creds,
                "--agent-token-file",
                token,
                "--tls-cert",
                pem,
                "--tls-key",
                pem
            ]))
            .is_ok()
        );
        // Files that cannot be read, and half a TLS pair, are reported.
        let err = Config::load(cli(&[
            "--credentials-file",
            "/nonexistent/c.toml",
            "--agent-token-file",
            "/nonexistent/t",
            "--tls-cert",
            creds,
        ]))
        .unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
    }

    #[test]
    fn file_fills_what_flags_leave_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.toml");
        std::fs::write(
            &path,
            "region = \"home-1\"\nhttp-listen = \"127.0.0.1:9\"\n",
        )
        .unwrap();
        let c = Config::load(cli(&[
            "--config",
            path.to_str().unwrap(),
            "--http-listen",
            "127.0.0.1:10",
        ]))
        .unwrap();
        assert_eq!(c.region, "home-1");
        assert_eq!(c.http_listen.port(), 10);
        std::fs::write(&path, "regoin = \"x\"\n").unwrap();
        assert!(Config::load(cli(&["--config", path.to_str().unwrap()])).is_err());
    }

    #[test]
    fn the_example_file_states_the_defaults() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/control-plane.toml");
        let from_file = Config::load(cli(&["--config", example])).unwrap();
        let defaults = Config::load(cli(&[])).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert!(parse_duration("1 week").is_err());
    }
}
