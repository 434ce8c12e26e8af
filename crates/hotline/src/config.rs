//! Gateway configuration: defaults < `hotline.toml` < `HOTLINE_*` env < flags.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

/// `hotline serve` flags. Each has a `HOTLINE_*` env override and a config key
/// of the same name with `_` for `-` in `hotline.toml`.
///
/// `Debug` (hand-written, [`redacted_debug`]) prints `***` for the admin
/// token and the database URL (which may hold a password).
#[derive(Args, Default)]
pub struct ServeArgs {
    /// TOML config file (keys as the flags, e.g. sip_listen = "0.0.0.0:5060").
    #[arg(long, env = "HOTLINE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// SIP address, UDP and TCP [default: 0.0.0.0:5060].
    #[arg(long, env = "HOTLINE_SIP_LISTEN", value_name = "ADDR")]
    pub sip_listen: Option<SocketAddr>,
    /// HTTP address for health, admin and agents [default: 127.0.0.1:8080].
    #[arg(long, env = "HOTLINE_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// HTTPS: the certificate chain (PEM, leaf first) for the HTTP listener
    /// and `--sip-tls-listen`; with `--tls-key`. Reloaded on SIGHUP.
    #[arg(
        long,
        env = "HOTLINE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of `--tls-cert`.
    #[arg(
        long,
        env = "HOTLINE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// SIP over TLS (`sips:`, RFC 3261 §26) on this TCP address, e.g.
    /// 0.0.0.0:5061; needs `--tls-cert` [default: off].
    #[arg(long, env = "HOTLINE_SIP_TLS_LISTEN", value_name = "ADDR")]
    pub sip_tls_listen: Option<SocketAddr>,
    /// Encrypted caller audio only: an INVITE (or re-offer) that is not
    /// SDES-SRTP (`RTP/SAVP` with a usable `a=crypto`, which is only
    /// accepted over SIP on TLS) gets 488 [default: off].
    #[arg(long, env = "HOTLINE_REQUIRE_SRTP")]
    pub require_srtp: bool,
    /// RTP port range, even ports used for RTP [default: 20000-29999].
    #[arg(long, env = "HOTLINE_RTP_PORTS", value_name = "LOW-HIGH")]
    pub rtp_ports: Option<String>,
    /// Recordings, event spool and the embedded database live here [default: ./data].
    #[arg(long, env = "HOTLINE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Prompt WAV files, by language (en/…, zh/…) [default: ./sounds].
    #[arg(long, env = "HOTLINE_SOUNDS_DIR", value_name = "DIR")]
    pub sounds_dir: Option<PathBuf>,
    /// IVR flow YAML files [default: ./ivr-flows].
    #[arg(long, env = "HOTLINE_FLOWS_DIR", value_name = "DIR")]
    pub flows_dir: Option<PathBuf>,
    /// PostgreSQL URL; without one the gateway runs its own under the data dir.
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// IP address to advertise in SDP [default: the interface that routes to the caller].
    #[arg(long, env = "HOTLINE_MEDIA_IP", value_name = "IP")]
    pub media_ip: Option<IpAddr>,
    /// Hang up after this many seconds without RTP from the caller [default: 30].
    #[arg(long, env = "HOTLINE_RTP_TIMEOUT_SECS", value_name = "SECS")]
    pub rtp_timeout_secs: Option<u64>,
    /// Ring (180) this long before answering [default: 0].
    #[arg(long, env = "HOTLINE_ANSWER_DELAY_MS", value_name = "MS")]
    pub answer_delay_ms: Option<u64>,
    /// On SIGTERM, let calls finish for up to this long [default: 60].
    #[arg(long, env = "HOTLINE_DRAIN_TIMEOUT_SECS", value_name = "SECS")]
    pub drain_timeout_secs: Option<u64>,
    /// Seconds the built-in flow waits for a digit [default: 5].
    #[arg(long, env = "HOTLINE_DIGIT_TIMEOUT_SECS", value_name = "SECS")]
    pub digit_timeout_secs: Option<u64>,
    /// The flow every call starts in (by its `flow:` name); `builtin` is the
    /// gateway's own minimal flow, also used when the entry flow is missing [default: main].
    #[arg(long, env = "HOTLINE_ENTRY_FLOW", value_name = "NAME")]
    pub entry_flow: Option<String>,
    /// A queue no agent desk knows (none configured): seconds a queued
    /// caller hears hold music before being told no one is free [default: 120].
    #[arg(long, env = "HOTLINE_QUEUE_MAX_WAIT_SECS", value_name = "SECS")]
    pub queue_max_wait_secs: Option<u64>,
    /// This gateway's name: in every call record (`calls.node`), and the
    /// calls crash recovery closes at start are this name's only. Nodes
    /// sharing a database (two on one host too) need different names:
    /// letters, digits, `.`, `_`, `-`, at most 63 [default: the host name].
    #[arg(long, env = "HOTLINE_NODE", value_name = "NAME")]
    pub node_name: Option<String>,
    /// Seconds this node's lease lasts without renewal (renewed every third
    /// of it). Nodes sharing a database take a node whose lease expired
    /// for dead and close its open calls as interrupted; a node cut off
    /// from the database for longer than this has its calls closed by
    /// another node [default: 60; at least 3].
    #[arg(long, env = "HOTLINE_NODE_LEASE_SECS", value_name = "SECS")]
    pub node_lease_secs: Option<u64>,
    /// The time zone reports bucket in when a request names none (IANA
    /// name; docs/metrics.md) [default: Asia/Shanghai].
    #[arg(long, env = "HOTLINE_REPORT_TZ", value_name = "ZONE")]
    pub report_tz: Option<String>,
    /// The service level the wallboard colours against, in percent: green
    /// at or above it, amber within 10 points below, red under that
    /// (docs/metrics.md, "Live") [default: 80].
    #[arg(long, env = "HOTLINE_SERVICE_LEVEL_TARGET", value_name = "PERCENT",
          value_parser = clap::value_parser!(u8).range(1..=100))]
    pub service_level_target: Option<u8>,
    /// Bearer token for the admin API (`/api/…`); without one it answers 503.
    #[arg(
        long,
        env = "HOTLINE_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// Read the admin API's bearer token from this file (first line,
    /// surrounding whitespace trimmed) instead; not with --admin-token.
    #[arg(long, env = "HOTLINE_ADMIN_TOKEN_FILE", value_name = "PATH")]
    pub admin_token_file: Option<PathBuf>,
    /// An origin besides the gateway's own host whose pages may open the
    /// agent socket (`/agent/ws`), e.g. `https://desk.example.com`;
    /// repeatable (in the environment, `;` between origins).
    #[arg(
        long = "allowed-origin",
        env = "HOTLINE_ALLOWED_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ';'
    )]
    pub allowed_origin: Vec<String>,
    /// UDP address of the agents' WebRTC media (one port for every agent)
    /// [default: the HTTP listener's IP, any free port].
    #[arg(long, env = "HOTLINE_AGENT_MEDIA_LISTEN", value_name = "ADDR")]
    pub agent_media_listen: Option<SocketAddr>,
    /// The SIP trunk (IP:port) that queued callbacks are dialled through
    /// [default: the peer that sent the caller's original call].
    #[arg(long, env = "HOTLINE_CALLBACK_VIA", value_name = "ADDR")]
    pub callback_via: Option<SocketAddr>,
    /// Every `hours` node of every flow answers `open` (or `closed`), for
    /// trying a flow at any hour. Command line only: refused in the config
    /// file and the environment, so it never becomes production config.
    #[arg(long, value_name = "open|closed")]
    pub force_hours: Option<hotline_ivr::ForcedHours>,

    /// Numbers callbacks may dial: a regular expression over the E.164
    /// number (anchor it); repeatable (in the environment, `;` between
    /// patterns) [default: mainland China mobile and landline numbers].
    /// Anything else is never dialled (toll fraud; docs/security.md).
    #[arg(
        long = "dial-allow",
        env = "HOTLINE_DIAL_ALLOW",
        value_name = "REGEX",
        value_delimiter = ';'
    )]
    pub dial_allow: Vec<String>,
    /// Callback legs placed in any one hour at most [default: 120].
    #[arg(long, env = "HOTLINE_DIAL_MAX_PER_HOUR", value_name = "N")]
    pub dial_max_per_hour: Option<u32>,
    /// Callback legs to any one number in any one hour at most [default: 4].
    #[arg(long, env = "HOTLINE_DIAL_MAX_PER_NUMBER_PER_HOUR", value_name = "N")]
    pub dial_max_per_number_per_hour: Option<u32>,

    /// Addresses besides loopback that may read `GET /metrics`
    /// (Prometheus), CIDR[,CIDR...] (docs/operations.md, "Metrics")
    /// [default: loopback only].
    #[arg(
        long = "metrics-allow",
        env = "HOTLINE_METRICS_ALLOW",
        value_name = "CIDR[,CIDR...]",
        value_delimiter = ','
    )]
    pub metrics_allow: Vec<String>,

    // ----- SIP edge policy (docs/security.md) -----
    /// A peer allowed to call, NAME=CIDR[,CIDR...]; repeatable (in the
    /// environment, `;` between trunks). None: anyone may call.
    #[arg(
        long = "trunk",
        env = "HOTLINE_TRUNK",
        value_name = "NAME=CIDR[,CIDR...]",
        value_delimiter = ';'
    )]
    pub trunk: Vec<String>,
    /// What addresses on no trunk get when trunks are set: `reply` (403) or
    /// `drop` (nothing) [default: reply].
    #[arg(long, env = "HOTLINE_REFUSE_UNKNOWN", value_name = "reply|drop")]
    pub refuse_unknown: Option<String>,
    /// Digest credentials a trunk's INVITEs must carry (RFC 8760 SHA-256 or
    /// MD5), NAME=USER:PASSWORD_FILE, the password being the file's first
    /// line; `NAME=USER:env:VAR` reads it from the environment variable VAR
    /// instead (never from the command line). NAME of a --trunk: its
    /// addresses must also authenticate; another NAME: any address may
    /// call with these credentials. Repeatable (`;` in the environment).
    #[arg(
        long = "trunk-auth",
        env = "HOTLINE_TRUNK_AUTH",
        value_name = "NAME=USER:PASSWORD_FILE",
        value_delimiter = ';'
    )]
    pub trunk_auth: Vec<String>,
    /// Trunks (names of --trunk) whose calls must be SDES-SRTP over SIP on
    /// TLS: a plain RTP/AVP offer from their addresses gets 488, like
    /// --require-srtp for everyone. Repeatable or comma-separated.
    #[arg(
        long = "trunk-require-srtp",
        env = "HOTLINE_TRUNK_REQUIRE_SRTP",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub trunk_require_srtp: Vec<String>,
    /// Realm of the Digest challenges [default: hotline].
    #[arg(long, env = "HOTLINE_SIP_AUTH_REALM", value_name = "REALM")]
    pub sip_auth_realm: Option<String>,
    /// Digest algorithms offered (one challenge each, in this order) and
    /// accepted, comma-separated; put md5 first for a peer that answers
    /// only the first challenge and knows only MD5 [default: sha256,md5].
    #[arg(long, env = "HOTLINE_SIP_AUTH_ALGORITHMS", value_name = "LIST")]
    pub sip_auth_algorithms: Option<String>,
    /// SIP messages per second per source address, trunks exempt; 0: no limit [default: 1000].
    #[arg(long, env = "HOTLINE_SIP_RATE", value_name = "N")]
    pub sip_rate: Option<u32>,
    /// Messages a source may send at once above the rate [default: 2000].
    #[arg(long, env = "HOTLINE_SIP_BURST", value_name = "N")]
    pub sip_burst: Option<u32>,
    /// Ban a source after this many strikes (over the rate, refused as
    /// unknown) within a minute; a scanner User-Agent bans at once; 0: never [default: 50].
    #[arg(long, env = "HOTLINE_SIP_BAN_AFTER", value_name = "N")]
    pub sip_ban_after: Option<u32>,
    /// How long a ban lasts [default: 600].
    #[arg(long, env = "HOTLINE_SIP_BAN_SECS", value_name = "SECS")]
    pub sip_ban_secs: Option<u64>,
    /// Concurrent calls in total, beyond: 503; 0: no limit [default: the RTP ports in --rtp-ports].
    #[arg(long, env = "HOTLINE_MAX_CALLS", value_name = "N")]
    pub max_calls: Option<usize>,
    /// Concurrent inbound calls per source, trunks exempt; 0: no limit [default: 0].
    #[arg(long, env = "HOTLINE_MAX_CALLS_PER_SOURCE", value_name = "N")]
    pub max_calls_per_source: Option<usize>,
    /// Inbound calls per source not yet confirmed by an ACK, trunks exempt;
    /// 0: no limit [default: 200].
    #[arg(long, env = "HOTLINE_MAX_UNACKED_PER_SOURCE", value_name = "N")]
    pub max_unacked_per_source: Option<usize>,
    /// Open SIP TCP connections per source, trunks exempt; 0: no limit [default: 64].
    #[arg(long, env = "HOTLINE_MAX_TCP_PER_SOURCE", value_name = "N")]
    pub max_tcp_per_source: Option<usize>,
    /// Largest SIP header section in bytes; bigger messages are dropped [default: 16384].
    #[arg(long, env = "HOTLINE_SIP_MAX_HEADER_BYTES", value_name = "BYTES")]
    pub sip_max_header_bytes: Option<usize>,
    /// Most lines in a SIP header section [default: 128].
    #[arg(long, env = "HOTLINE_SIP_MAX_HEADERS", value_name = "N")]
    pub sip_max_headers: Option<usize>,
    /// User-Agent substrings (comma-separated, case-insensitive) whose
    /// requests are dropped and their source banned; `none`: no check [default:
    /// friendly-scanner,sipvicious,sipcli,VaxSIPUserAgent,...].
    #[arg(long, env = "HOTLINE_SCANNER_USER_AGENTS", value_name = "LIST")]
    pub scanner_user_agents: Option<String>,

    // ----- Retention and recordings at rest (docs/security.md) -----
    #[command(flatten)]
    pub retention: crate::retention::RetentionArgs,
}

/// The same keys as [`ServeArgs`], read from `hotline.toml`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    sip_listen: Option<SocketAddr>,
    http_listen: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    sip_tls_listen: Option<SocketAddr>,
    require_srtp: Option<bool>,
    rtp_ports: Option<String>,
    data_dir: Option<PathBuf>,
    sounds_dir: Option<PathBuf>,
    flows_dir: Option<PathBuf>,
    database_url: Option<String>,
    media_ip: Option<IpAddr>,
    rtp_timeout_secs: Option<u64>,
    answer_delay_ms: Option<u64>,
    drain_timeout_secs: Option<u64>,
    digit_timeout_secs: Option<u64>,
    entry_flow: Option<String>,
    queue_max_wait_secs: Option<u64>,
    node_name: Option<String>,
    node_lease_secs: Option<u64>,
    report_tz: Option<String>,
    service_level_target: Option<u8>,
    admin_token: Option<String>,
    admin_token_file: Option<PathBuf>,
    allowed_origin: Option<Vec<String>>,
    agent_media_listen: Option<SocketAddr>,
    callback_via: Option<SocketAddr>,
    dial_allow: Option<Vec<String>>,
    dial_max_per_hour: Option<u32>,
    dial_max_per_number_per_hour: Option<u32>,
    metrics_allow: Option<Vec<String>>,
    /// Present only to refuse it with a clear message (`--force-hours`).
    force_hours: Option<toml::Value>,
    // SIP edge policy (docs/security.md).
    trunk: Option<Vec<String>>,
    refuse_unknown: Option<String>,
    trunk_auth: Option<Vec<String>>,
    trunk_require_srtp: Option<Vec<String>>,
    sip_auth_realm: Option<String>,
    sip_auth_algorithms: Option<String>,
    sip_rate: Option<u32>,
    sip_burst: Option<u32>,
    sip_ban_after: Option<u32>,
    sip_ban_secs: Option<u64>,
    max_calls: Option<usize>,
    max_calls_per_source: Option<usize>,
    max_unacked_per_source: Option<usize>,
    max_tcp_per_source: Option<usize>,
    sip_max_header_bytes: Option<usize>,
    sip_max_headers: Option<usize>,
    scanner_user_agents: Option<String>,
    // Retention and recordings at rest (docs/security.md).
    retain_recordings_days: Option<toml::Value>,
    retain_voicemail_days: Option<toml::Value>,
    mask_callers_after_days: Option<toml::Value>,
    retain_queue: Option<Vec<String>>,
    retention_interval_secs: Option<u64>,
    recording_key_file: Option<PathBuf>,
    recording_keyring: Option<PathBuf>,
}

/// The resolved configuration of `hotline serve`. `Debug` hides the
/// secrets (see [`ServeArgs`]).
#[derive(Clone)]
pub struct Config {
    pub sip_listen: SocketAddr,
    pub http_listen: SocketAddr,
    /// `--tls-cert` and `--tls-key`: HTTPS (and SIP over TLS) when set.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `--sip-tls-listen`.
    pub sip_tls_listen: Option<SocketAddr>,
    /// `--require-srtp`.
    pub require_srtp: bool,
    pub rtp_ports: (u16, u16),
    pub data_dir: PathBuf,
    pub sounds_dir: PathBuf,
    pub flows_dir: PathBuf,
    pub database_url: Option<String>,
    pub media_ip: Option<IpAddr>,
    pub rtp_timeout: Duration,
    pub answer_delay: Duration,
    pub drain_timeout: Duration,
    pub digit_timeout: Duration,
    pub entry_flow: String,
    pub queue_max_wait: Duration,
    /// `--node-name`: this gateway's name in the records and in recovery.
    pub node_name: String,
    /// `--node-lease-secs`: how long this node's lease lasts unrenewed.
    pub node_lease: Duration,
    /// `--report-tz`: the reports' default time zone.
    pub report_tz: String,
    /// `--service-level-target`: the wallboard's service level target, percent.
    pub service_level_target: u8,
    /// The admin API's bearer token; `None`: the admin API is disabled.
    pub admin_token: Option<String>,
    /// `--allowed-origin`: pages of these origins may open `/agent/ws` too.
    pub allowed_origins: Vec<String>,
    pub agent_media_listen: SocketAddr,
    /// Where callbacks are dialled; `None`: back through the original call's peer.
    pub callback_via: Option<SocketAddr>,
    /// `--force-hours` (command line only).
    pub force_hours: Option<hotline_ivr::ForcedHours>,
    /// What callbacks may dial (`--dial-allow`, `--dial-max-per-hour`).
    pub dial_policy: hotline_desk::DialPolicy,
    /// The SIP edge policy: trunks, rate limits, caps (docs/security.md).
    pub sip_guard: hotline_sip::GuardConfig,
    /// Retention policy and recording keys (docs/security.md).
    pub retention: crate::retention::RetentionConfig,
    /// `--metrics-allow`: who besides loopback may read `/metrics`.
    pub metrics_allow: crate::metrics::MetricsAllow,
}

impl Config {
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        if args.admin_token.is_some() && admin_token_in_argv(std::env::args_os()) {
            tracing::warn!(
                "--admin-token on the command line shows in `ps` to every user of this \
                 machine: use --admin-token-file or HOTLINE_ADMIN_TOKEN instead"
            );
        }
        let file = match &args.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        if file.force_hours.is_some() {
            bail!(
                "force_hours in the config file: it is for trying a flow and only \
                 accepted as the --force-hours flag"
            );
        }
        if std::env::var_os("HOTLINE_FORCE_HOURS").is_some() {
            bail!(
                "HOTLINE_FORCE_HOURS is set: forcing business hours is only accepted \
                 as the --force-hours flag"
            );
        }
        let rtp = args
            .rtp_ports
            .clone()
            .or_else(|| file.rtp_ports.clone())
            .unwrap_or_else(|| "20000-29999".into());
        let http_listen = args
            .http_listen
            .or(file.http_listen)
            .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("literal address"));
        let rtp_ports = parse_port_range(&rtp)?;
        let tls = match (
            args.tls_cert.clone().or_else(|| file.tls_cert.clone()),
            args.tls_key.clone().or_else(|| file.tls_key.clone()),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => bail!("tls_cert and tls_key go together: set both or neither"),
        };
        let sip_tls_listen = args.sip_tls_listen.or(file.sip_tls_listen);
        if sip_tls_listen.is_some() && tls.is_none() {
            bail!("--sip-tls-listen needs a certificate: set --tls-cert and --tls-key");
        }
        let dial_policy = dial_policy(&args, &file)?;
        let sip_guard = sip_guard(&args, &file, rtp_ports)?;
        let retention = crate::retention::RetentionConfig::resolve(
            &args.retention,
            crate::retention::RetentionFile {
                retain_recordings_days: file.retain_recordings_days.clone(),
                retain_voicemail_days: file.retain_voicemail_days.clone(),
                mask_callers_after_days: file.mask_callers_after_days.clone(),
                retain_queue: file.retain_queue.clone(),
                retention_interval_secs: file.retention_interval_secs,
                recording_key_file: file.recording_key_file.clone(),
                recording_keyring: file.recording_keyring.clone(),
            },
        )?;
        Ok(Self {
            sip_listen: args
                .sip_listen
                .or(file.sip_listen)
                .unwrap_or_else(|| "0.0.0.0:5060".parse().expect("literal address")),
            http_listen,
            tls,
            sip_tls_listen,
            require_srtp: args.require_srtp || file.require_srtp.unwrap_or(false),
            rtp_ports,
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| "data".into()),
            sounds_dir: args
                .sounds_dir
                .or(file.sounds_dir)
                .unwrap_or_else(|| "sounds".into()),
            flows_dir: args
                .flows_dir
                .or(file.flows_dir)
                .unwrap_or_else(|| "ivr-flows".into()),
            database_url: args.database_url.or(file.database_url),
            media_ip: args.media_ip.or(file.media_ip),
            rtp_timeout: Duration::from_secs(
                args.rtp_timeout_secs
                    .or(file.rtp_timeout_secs)
                    .unwrap_or(30),
            ),
            answer_delay: Duration::from_millis(
                args.answer_delay_ms.or(file.answer_delay_ms).unwrap_or(0),
            ),
            drain_timeout: Duration::from_secs(
                args.drain_timeout_secs
                    .or(file.drain_timeout_secs)
                    .unwrap_or(60),
            ),
            digit_timeout: Duration::from_secs(
                args.digit_timeout_secs
                    .or(file.digit_timeout_secs)
                    .unwrap_or(5),
            ),
            entry_flow: args
                .entry_flow
                .or(file.entry_flow)
                .unwrap_or_else(|| "main".into()),
            queue_max_wait: Duration::from_secs(
                args.queue_max_wait_secs
                    .or(file.queue_max_wait_secs)
                    .unwrap_or(120),
            ),
            node_name: match args.node_name.or(file.node_name) {
                Some(n) => check_node_name(&n)?,
                None => default_node_name(),
            },
            node_lease: match args.node_lease_secs.or(file.node_lease_secs) {
                Some(s) if s < 3 => bail!("--node-lease-secs {s}: at least 3 seconds"),
                Some(s) => Duration::from_secs(s),
                None => Duration::from_secs(60),
            },
            report_tz: args
                .report_tz
                .or(file.report_tz)
                .unwrap_or_else(|| "Asia/Shanghai".into()),
            service_level_target: args
                .service_level_target
                .or(file.service_level_target)
                .unwrap_or(80)
                .clamp(1, 100),
            agent_media_listen: args
                .agent_media_listen
                .or(file.agent_media_listen)
                .unwrap_or_else(|| SocketAddr::new(http_listen.ip(), 0)),
            callback_via: args.callback_via.or(file.callback_via),
            metrics_allow: if !args.metrics_allow.is_empty() {
                crate::metrics::MetricsAllow::parse(&args.metrics_allow)
            } else {
                crate::metrics::MetricsAllow::parse(
                    file.metrics_allow.as_deref().unwrap_or_default(),
                )
            }
            .context("--metrics-allow")?,
            force_hours: args.force_hours,
            dial_policy,
            sip_guard,
            retention,
            allowed_origins: if !args.allowed_origin.is_empty() {
                args.allowed_origin
            } else {
                file.allowed_origin.unwrap_or_default()
            },
            admin_token: admin_token(
                args.admin_token,
                args.admin_token_file,
                file.admin_token,
                file.admin_token_file,
            )?,
        })
    }
}

/// The admin token: `--admin-token` or `--admin-token-file` (flag or
/// environment) beat the file's `admin_token` / `admin_token_file`; a token
/// and a token file from the same level are refused, as is an empty token.
fn admin_token(
    flag: Option<String>,
    flag_file: Option<PathBuf>,
    conf: Option<String>,
    conf_file: Option<PathBuf>,
) -> anyhow::Result<Option<String>> {
    if flag.is_some() && flag_file.is_some() {
        bail!("--admin-token and --admin-token-file are both given: use one");
    }
    if conf.is_some() && conf_file.is_some() {
        bail!("admin_token and admin_token_file are both in the config file: use one");
    }
    let token = match (flag, flag_file) {
        (Some(t), _) => Some(t),
        (None, Some(path)) => Some(read_token_file(&path)?),
        (None, None) => match (conf, conf_file) {
            (Some(t), _) => Some(t),
            (None, Some(path)) => Some(read_token_file(&path)?),
            (None, None) => None,
        },
    };
    match token {
        Some(t) if t.trim().is_empty() => bail!("--admin-token must not be empty"),
        t => Ok(t),
    }
}

/// `--node-name` checked: 1–63 letters, digits, `.`, `_`, `-` (it goes
/// into records, logs and metrics labels as it is).
fn check_node_name(name: &str) -> anyhow::Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        bail!(
            "--node-name `{}`: use 1 to 63 letters, digits, `.`, `_` or `-`",
            name.escape_default()
        );
    }
    Ok(name.to_owned())
}

/// The host name (the default node name), else `hotline`.
fn default_node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .and_then(|s| check_node_name(s.trim()).ok())
        .unwrap_or_else(|| "hotline".into())
}

/// Whether `--admin-token` itself (not `--admin-token-file`) is among the
/// process's arguments, where `ps` shows it.
fn admin_token_in_argv(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    args.into_iter().any(|a| {
        let a = a.to_string_lossy();
        a == "--admin-token" || a.starts_with("--admin-token=")
    })
}

/// The token in `path`: its first line, whitespace trimmed (never quoted in errors).
fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the admin token file {}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        bail!("the admin token file {} is empty", path.display());
    }
    Ok(token)
}

/// `Some("***")` for a set secret, `None` for an unset one.
fn redacted<T>(secret: &Option<T>) -> Option<&'static str> {
    secret.as_ref().map(|_| "***")
}

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets only; the rest are addresses, paths and numbers, listed
        // by `hotline serve --help`.
        f.debug_struct("ServeArgs")
            .field("config", &self.config)
            .field("sip_listen", &self.sip_listen)
            .field("http_listen", &self.http_listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redacted(&self.database_url))
            .field("admin_token", &redacted(&self.admin_token))
            .field("admin_token_file", &self.admin_token_file)
            .field("allowed_origin", &self.allowed_origin)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("sip_listen", &self.sip_listen)
            .field("http_listen", &self.http_listen)
            .field("rtp_ports", &self.rtp_ports)
            .field("data_dir", &self.data_dir)
            .field("sounds_dir", &self.sounds_dir)
            .field("flows_dir", &self.flows_dir)
            .field("database_url", &redacted(&self.database_url))
            .field("media_ip", &self.media_ip)
            .field("entry_flow", &self.entry_flow)
            .field("node_name", &self.node_name)
            .field("node_lease", &self.node_lease)
            .field("admin_token", &redacted(&self.admin_token))
            .field("allowed_origins", &self.allowed_origins)
            .field("agent_media_listen", &self.agent_media_listen)
            .field("callback_via", &self.callback_via)
            .field("force_hours", &self.force_hours)
            .field("metrics_allow", &self.metrics_allow)
            .finish_non_exhaustive()
    }
}

/// What callbacks may dial, from flags, environment and file.
fn dial_policy(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<hotline_desk::DialPolicy> {
    let patterns: Vec<String> = if !args.dial_allow.is_empty() {
        args.dial_allow.clone()
    } else if let Some(p) = &file.dial_allow {
        p.clone()
    } else {
        hotline_desk::policy::DEFAULT_DIAL_ALLOW
            .iter()
            .map(|p| p.to_string())
            .collect()
    };
    let max = args
        .dial_max_per_hour
        .or(file.dial_max_per_hour)
        .unwrap_or(hotline_desk::policy::DEFAULT_DIAL_MAX_PER_HOUR);
    let per_number = args
        .dial_max_per_number_per_hour
        .or(file.dial_max_per_number_per_hour)
        .unwrap_or(hotline_desk::policy::DEFAULT_DIAL_MAX_PER_NUMBER_PER_HOUR);
    Ok(hotline_desk::DialPolicy::new(&patterns, max)?.with_max_per_number(per_number))
}

/// The SIP edge policy from flags, environment and file (docs/security.md).
fn sip_guard(
    args: &ServeArgs,
    file: &FileConfig,
    rtp_ports: (u16, u16),
) -> anyhow::Result<hotline_sip::GuardConfig> {
    use hotline_sip::{GuardConfig, RefuseMode, Trunk};
    let d = GuardConfig::default();
    let trunk_specs: &[String] = if args.trunk.is_empty() {
        file.trunk.as_deref().unwrap_or_default()
    } else {
        &args.trunk
    };
    let mut trunks: Vec<Trunk> = Vec::new();
    for spec in trunk_specs
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        let t: Trunk = spec.parse().context("--trunk")?;
        if trunks.iter().any(|o| o.name == t.name) {
            bail!("--trunk {:?} is given twice", t.name);
        }
        trunks.push(t);
    }
    let refuse_unknown = match args
        .refuse_unknown
        .as_deref()
        .or(file.refuse_unknown.as_deref())
    {
        Some(s) => s
            .parse::<RefuseMode>()
            .map_err(|e| anyhow::anyhow!("--refuse-unknown {e}"))?,
        None => d.refuse_unknown,
    };
    let scanner_user_agents = match args
        .scanner_user_agents
        .as_deref()
        .or(file.scanner_user_agents.as_deref())
    {
        Some(list) if list.trim().eq_ignore_ascii_case("none") => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
        None => d.scanner_user_agents.clone(),
    };
    // Every call takes one even RTP port: more calls than that cannot be answered.
    let rtp_capacity =
        usize::from((rtp_ports.1 & !1).saturating_sub(rtp_ports.0 + rtp_ports.0 % 2)) / 2 + 1;
    let rate = args.sip_rate.or(file.sip_rate).unwrap_or(d.rate);
    let burst = args.sip_burst.or(file.sip_burst).unwrap_or(d.burst);
    if rate > 0 && burst == 0 {
        bail!("--sip-burst must be at least 1 when --sip-rate is set");
    }
    let trunk_auth = trunk_auth(args, file, &trunks)?;
    let srtp_names: &[String] = if args.trunk_require_srtp.is_empty() {
        file.trunk_require_srtp.as_deref().unwrap_or_default()
    } else {
        &args.trunk_require_srtp
    };
    let mut srtp_trunks: Vec<String> = Vec::new();
    for name in srtp_names
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        if !trunks.iter().any(|t| t.name == name) {
            bail!("--trunk-require-srtp {name:?}: no --trunk of that name");
        }
        if !srtp_trunks.iter().any(|n| n == name) {
            srtp_trunks.push(name.to_string());
        }
    }
    let mut digest = d.digest.clone();
    if let Some(realm) = args
        .sip_auth_realm
        .as_deref()
        .or(file.sip_auth_realm.as_deref())
    {
        let realm = realm.trim();
        if realm.is_empty() || realm.contains(['"', '\\']) || realm.chars().any(char::is_control) {
            bail!("--sip-auth-realm {realm:?}: must be non-empty, without quotes or backslashes");
        }
        digest.realm = realm.to_string();
    }
    if let Some(list) = args
        .sip_auth_algorithms
        .as_deref()
        .or(file.sip_auth_algorithms.as_deref())
    {
        let mut algorithms = Vec::new();
        for a in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let a: hotline_sip::DigestAlgorithm = a
                .parse()
                .map_err(|e| anyhow::anyhow!("--sip-auth-algorithms {e}"))?;
            if !algorithms.contains(&a) {
                algorithms.push(a);
            }
        }
        if algorithms.is_empty() {
            bail!("--sip-auth-algorithms names no algorithm");
        }
        digest.algorithms = algorithms;
    }
    Ok(GuardConfig {
        srtp_trunks,
        trunks,
        refuse_unknown,
        trunk_auth,
        digest,
        rate,
        burst,
        ban_after: args
            .sip_ban_after
            .or(file.sip_ban_after)
            .unwrap_or(d.ban_after),
        ban_for: args
            .sip_ban_secs
            .or(file.sip_ban_secs)
            .map_or(d.ban_for, Duration::from_secs),
        max_calls: args.max_calls.or(file.max_calls).unwrap_or(rtp_capacity),
        max_calls_per_source: args
            .max_calls_per_source
            .or(file.max_calls_per_source)
            .unwrap_or(d.max_calls_per_source),
        max_unacked_per_source: args
            .max_unacked_per_source
            .or(file.max_unacked_per_source)
            .unwrap_or(d.max_unacked_per_source),
        max_tcp_per_source: args
            .max_tcp_per_source
            .or(file.max_tcp_per_source)
            .unwrap_or(d.max_tcp_per_source),
        max_header_bytes: args
            .sip_max_header_bytes
            .or(file.sip_max_header_bytes)
            .unwrap_or(d.max_header_bytes),
        max_headers: args
            .sip_max_headers
            .or(file.sip_max_headers)
            .unwrap_or(d.max_headers),
        scanner_user_agents,
        ..d
    })
}

/// `--trunk-auth NAME=USER:PASSWORD_FILE` (or `NAME=USER:env:VAR`), from
/// flags/environment or else the file. Error messages name the file or
/// variable, never the password.
fn trunk_auth(
    args: &ServeArgs,
    file: &FileConfig,
    trunks: &[hotline_sip::Trunk],
) -> anyhow::Result<Vec<hotline_sip::TrunkCredentials>> {
    let specs: &[String] = if args.trunk_auth.is_empty() {
        file.trunk_auth.as_deref().unwrap_or_default()
    } else {
        &args.trunk_auth
    };
    let mut out: Vec<hotline_sip::TrunkCredentials> = Vec::new();
    for spec in specs.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let (name, rest) = spec
            .split_once('=')
            .with_context(|| format!("--trunk-auth {spec:?}: expected NAME=USER:PASSWORD_FILE"))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            bail!("--trunk-auth {spec:?}: the name must be letters, digits, '-', '_' or '.'");
        }
        let (user, source) = rest
            .split_once(':')
            .with_context(|| format!("--trunk-auth {spec:?}: expected NAME=USER:PASSWORD_FILE"))?;
        let user = user.trim();
        if user.is_empty() || user.contains(['"', '\\']) || user.chars().any(char::is_control) {
            bail!(
                "--trunk-auth {spec:?}: the user must be non-empty, without quotes or backslashes"
            );
        }
        let source = source.trim();
        let password = match source.strip_prefix("env:") {
            Some(var) => std::env::var(var).with_context(|| {
                format!("--trunk-auth {name}: environment variable {var} is not set")
            })?,
            None => std::fs::read_to_string(source).with_context(|| {
                format!("--trunk-auth {name}: cannot read the password file {source}")
            })?,
        };
        let password = password.lines().next().unwrap_or("").trim().to_owned();
        if password.is_empty() {
            bail!("--trunk-auth {name}: the password ({source}) is empty");
        }
        if out.iter().any(|c| c.trunk == name) {
            bail!("--trunk-auth {name:?} is given twice");
        }
        if out
            .iter()
            .any(|c| c.username == user && !trunks.iter().any(|t| t.name == c.trunk))
            && !trunks.iter().any(|t| t.name == name)
        {
            bail!(
                "--trunk-auth {name}: user {user:?} is already used by another trunk without addresses"
            );
        }
        out.push(hotline_sip::TrunkCredentials::new(name, user, password));
    }
    Ok(out)
}

/// The keys of `hotline.toml` that `hotline flows` honours (its
/// `--config`): where flows and prompts live, and which numbers a callback
/// may be booked to. The rest of the file is read, so a typo in it is an
/// error here as it is for `serve`, and ignored.
#[derive(Debug, Default)]
pub struct FlowsFileSettings {
    pub flows_dir: Option<PathBuf>,
    pub sounds_dir: Option<PathBuf>,
    pub dial_allow: Option<Vec<String>>,
    pub dial_max_per_hour: Option<u32>,
}

/// Reads the `hotline flows` keys of a config file.
pub fn flows_settings(path: &Path) -> anyhow::Result<FlowsFileSettings> {
    let file = load_file(path)?;
    Ok(FlowsFileSettings {
        flows_dir: file.flows_dir,
        sounds_dir: file.sounds_dir,
        dial_allow: file.dial_allow,
        dial_max_per_hour: file.dial_max_per_hour,
    })
}

fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

/// Parses `LOW-HIGH` into an inclusive range of at least one RTP/RTCP pair.
pub fn parse_port_range(s: &str) -> anyhow::Result<(u16, u16)> {
    let (lo, hi) = s
        .split_once('-')
        .with_context(|| format!("RTP port range {s:?} is not LOW-HIGH"))?;
    let lo: u16 = lo
        .trim()
        .parse()
        .with_context(|| format!("bad low port in {s:?}"))?;
    let hi: u16 = hi
        .trim()
        .parse()
        .with_context(|| format!("bad high port in {s:?}"))?;
    if lo < 1024 || hi <= lo {
        bail!("RTP port range {s:?} must be LOW-HIGH with 1024 <= LOW < HIGH");
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packaged /etc/hotline/hotline.toml documents every key of the
    /// file, and every value it shows parses.
    #[test]
    fn the_packaged_config_names_every_key_and_each_parses() {
        let packaged = include_str!("../../../deploy/debian/hotline.toml");
        let source = include_str!("config.rs");
        let body = source
            .split("struct FileConfig {")
            .nth(1)
            .and_then(|b| b.split("\n}").next())
            .expect("FileConfig in config.rs");
        let keys: Vec<&str> = body
            .lines()
            .filter_map(|l| l.trim().split_once(": Option<").map(|(k, _)| k))
            .filter(|k| *k != "force_hours")
            .collect();
        assert!(keys.len() > 50, "FileConfig fields not found: {keys:?}");
        // Uncomment every `# key = value` line (the first of a key only).
        let mut seen = std::collections::HashSet::new();
        let mut text = String::new();
        for line in packaged.lines() {
            let l = line.strip_prefix("# ").unwrap_or(line);
            let key = l.split_once(" = ").map(|(k, _)| k.trim());
            if let Some(k) = key
                && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && seen.insert(k.to_string())
            {
                text.push_str(l);
                text.push('\n');
            }
        }
        for k in &keys {
            assert!(seen.contains(*k), "deploy/debian/hotline.toml lacks `{k}`");
        }
        if let Err(e) = toml::from_str::<FileConfig>(&text) {
            panic!("deploy/debian/hotline.toml, every key uncommented: {e}\n{text}");
        }
    }

    #[test]
    fn port_range_parses_and_refuses_nonsense() {
        assert_eq!(parse_port_range("20000-20100").unwrap(), (20000, 20100));
        assert!(parse_port_range("20100-20000").is_err());
        assert!(parse_port_range("abc").is_err());
        assert!(parse_port_range("80-90").is_err());
    }

    #[test]
    fn flags_beat_file_which_beats_defaults() {
        let dir = std::env::temp_dir().join(format!("hotline-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hotline.toml");
        std::fs::write(
            &file,
            "sip_listen = \"127.0.0.1:5070\"\nrtp_ports = \"30000-30100\"\n",
        )
        .unwrap();
        let cfg = Config::resolve(ServeArgs {
            config: Some(file.clone()),
            rtp_ports: Some("31000-31010".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.sip_listen, "127.0.0.1:5070".parse().unwrap());
        assert_eq!(cfg.rtp_ports, (31000, 31010));
        assert_eq!(cfg.http_listen, "127.0.0.1:8080".parse().unwrap());
        std::fs::write(&file, "sip_listn = \"x\"\n").unwrap();
        let err = Config::resolve(ServeArgs {
            config: Some(file),
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("sip_listn"), "{err:#}");
    }

    /// `--node-name` beats the file's `node_name`; without either it is
    /// the host name; a name that would not fit a label is refused.
    #[test]
    fn node_name_from_flag_file_or_host() {
        let dir = std::env::temp_dir().join(format!("hotline-node-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hotline.toml");
        std::fs::write(&file, "node_name = \"gw-b.dc1\"\n").unwrap();
        let from_file = Config::resolve(ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(from_file.node_name, "gw-b.dc1");
        let from_flag = Config::resolve(ServeArgs {
            config: Some(file),
            node_name: Some("gw_a".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(from_flag.node_name, "gw_a");
        let host = Config::resolve(ServeArgs::default()).unwrap().node_name;
        assert!(!host.is_empty() && host.len() <= 63, "{host}");
        for bad in ["", "gw a", "gw/a", "\u{1b}[31m", &"n".repeat(64)] {
            let err = Config::resolve(ServeArgs {
                node_name: Some(bad.into()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(
                format!("{err:#}").contains("--node-name"),
                "{bad:?}: {err:#}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Callbacks dial mainland numbers unless told otherwise; a bad
    /// pattern stops the start with its text.
    #[test]
    fn dial_policy_defaults_flags_and_refusal() {
        let cfg = Config::resolve(ServeArgs::default()).unwrap();
        assert!(cfg.dial_policy.allows("+8613800138000"));
        assert!(!cfg.dial_policy.allows("+882345678901"));
        let cfg = Config::resolve(ServeArgs {
            dial_allow: vec![r"^\+1555[0-9]{7}$".into()],
            dial_max_per_hour: Some(3),
            dial_max_per_number_per_hour: Some(2),
            ..Default::default()
        })
        .unwrap();
        assert!(cfg.dial_policy.allows("+15550100002"));
        assert!(!cfg.dial_policy.allows("+8613800138000"));
        assert_eq!(cfg.dial_policy.max_per_hour(), 3);
        assert_eq!(cfg.dial_policy.max_per_number_per_hour(), 2);
        let err = Config::resolve(ServeArgs {
            dial_allow: vec!["^+86(".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("--dial-allow \"^+86(\""),
            "{err:#}"
        );
    }

    /// `--force-hours` is for trying a flow: only the flag is accepted.
    #[test]
    fn force_hours_only_as_a_flag() {
        let dir = std::env::temp_dir().join(format!("hotline-cfg-hours-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hotline.toml");
        std::fs::write(&file, "force_hours = \"open\"\n").unwrap();
        let err = Config::resolve(ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("--force-hours flag"), "{err:#}");
        std::fs::write(&file, "").unwrap();
        let cfg = Config::resolve(ServeArgs {
            config: Some(file),
            force_hours: Some(hotline_ivr::ForcedHours::Open),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.force_hours, Some(hotline_ivr::ForcedHours::Open));
    }

    #[test]
    fn metrics_allow_from_flag_or_file() {
        let dir = std::env::temp_dir().join(format!("hotline-cfg-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hotline.toml");
        std::fs::write(&file, "metrics_allow = [\"10.0.0.0/8\"]\n").unwrap();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let from_file = Config::resolve(ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        })
        .unwrap();
        assert!(from_file.metrics_allow.permits(ip("10.9.8.7")));
        assert!(!from_file.metrics_allow.permits(ip("192.0.2.1")));
        let flag = Config::resolve(ServeArgs {
            config: Some(file.clone()),
            metrics_allow: vec!["192.0.2.0/24".into()],
            ..Default::default()
        })
        .unwrap();
        assert!(flag.metrics_allow.permits(ip("192.0.2.1")));
        assert!(!flag.metrics_allow.permits(ip("10.9.8.7")));
        let err = Config::resolve(ServeArgs {
            metrics_allow: vec!["not-an-address".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("--metrics-allow"), "{err:#}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn sip_edge_settings() {
        let dir = std::env::temp_dir().join(format!("hotline-cfg-edge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hotline.toml");
        std::fs::write(
            &file,
            "trunk = [\"carrier=203.0.113.0/24,2001:db8::1\"]\nrefuse_unknown = \"drop\"\n\
             sip_rate = 50\nscanner_user_agents = \"evil, Nasty\"\n",
        )
        .unwrap();
        let args = || ServeArgs {
            config: Some(file.clone()),
            rtp_ports: Some("20000-20099".into()),
            ..Default::default()
        };
        let g = Config::resolve(args()).unwrap().sip_guard;
        assert_eq!(g.trunks.len(), 1);
        assert!(g.trunk_of("2001:db8::1".parse().unwrap()).is_some());
        assert_eq!(g.refuse_unknown, hotline_sip::RefuseMode::Drop);
        assert_eq!((g.rate, g.burst), (50, 2000));
        assert_eq!(g.scanner_user_agents, vec!["evil", "nasty"]);
        // The total cap defaults to the RTP ports: 20000, 20002, ..., 20098.
        assert_eq!(g.max_calls, 50);
        // Flags replace the file's trunks.
        let g = Config::resolve(ServeArgs {
            trunk: vec!["a=10.0.0.0/8".into(), "b=192.0.2.1".into()],
            refuse_unknown: Some("reply".into()),
            max_calls: Some(0),
            ..args()
        })
        .unwrap()
        .sip_guard;
        assert_eq!(
            g.trunks.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(g.refuse_unknown, hotline_sip::RefuseMode::Reply);
        assert_eq!(g.max_calls, 0);
        let none = ServeArgs {
            scanner_user_agents: Some("none".into()),
            ..args()
        };
        assert!(
            Config::resolve(none)
                .unwrap()
                .sip_guard
                .scanner_user_agents
                .is_empty()
        );
        for bad in [
            ServeArgs {
                trunk: vec!["nonsense".into()],
                ..args()
            },
            ServeArgs {
                trunk: vec!["a=10.0.0.1".into(), "a=10.0.0.2".into()],
                ..args()
            },
            ServeArgs {
                refuse_unknown: Some("maybe".into()),
                ..args()
            },
        ] {
            assert!(Config::resolve(bad).is_err());
        }
        // No trunk: open, with the defaults on.
        let g = Config::resolve(ServeArgs::default()).unwrap().sip_guard;
        assert!(g.trunks.is_empty());
        assert_eq!(g.max_calls, 5000);
        assert!(g.rate > 0 && g.max_unacked_per_source > 0);
        assert!(
            g.scanner_user_agents
                .iter()
                .any(|s| s == "friendly-scanner")
        );
    }

    #[test]
    fn trunk_require_srtp_names_a_trunk() {
        let g = Config::resolve(ServeArgs {
            trunk: vec!["carrier=203.0.113.0/24".into(), "pbx=10.0.0.1".into()],
            trunk_require_srtp: vec!["carrier".into(), "carrier".into()],
            ..ServeArgs::default()
        })
        .unwrap()
        .sip_guard;
        assert_eq!(g.srtp_trunks, vec!["carrier".to_string()]);
        assert!(g.requires_srtp("203.0.113.9".parse().unwrap()));
        assert!(!g.requires_srtp("10.0.0.1".parse().unwrap()));
        assert!(!g.requires_srtp("198.51.100.1".parse().unwrap()));
        let err = Config::resolve(ServeArgs {
            trunk: vec!["carrier=203.0.113.0/24".into()],
            trunk_require_srtp: vec!["nobody".into()],
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("no --trunk of that name"),
            "{err:#}"
        );
    }

    #[test]
    fn trunk_auth_reads_passwords_from_files_or_the_environment() {
        let dir = std::env::temp_dir().join(format!("hotline-cfg-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pw = dir.join("carrier.pw");
        std::fs::write(&pw, "  s3cret pass \nignored\n").unwrap();
        let var = format!("HOTLINE_TEST_PBX_PW_{}", std::process::id());
        // SAFETY: a variable of this test's own, set before anything reads it.
        unsafe { std::env::set_var(&var, "from-env") };
        let args = |auth: Vec<String>| ServeArgs {
            trunk: vec!["carrier=203.0.113.0/24".into()],
            trunk_auth: auth,
            sip_auth_algorithms: Some("md5, SHA-256".into()),
            sip_auth_realm: Some("example.net".into()),
            ..Default::default()
        };
        let g = Config::resolve(args(vec![
            format!("carrier=gw1:{}", pw.display()),
            format!("office=pbx7:env:{var}"),
        ]))
        .unwrap()
        .sip_guard;
        assert_eq!(g.trunk_auth.len(), 2);
        assert_eq!(
            g.trunk_auth[0],
            hotline_sip::TrunkCredentials::new("carrier", "gw1", "s3cret pass")
        );
        assert_eq!(
            g.trunk_auth[1],
            hotline_sip::TrunkCredentials::new("office", "pbx7", "from-env")
        );
        assert!(!format!("{g:?}").contains("s3cret"), "{g:?}");
        assert_eq!(
            g.digest.algorithms,
            [
                hotline_sip::DigestAlgorithm::Md5,
                hotline_sip::DigestAlgorithm::Sha256
            ]
        );
        assert_eq!(g.digest.realm, "example.net");
        for bad in [
            vec!["carrier=gw1".to_string()],
            vec![format!("carrier=:{}", pw.display())],
            vec![format!("carrier=gw1:{}", dir.join("missing").display())],
            vec!["carrier=gw1:env:HOTLINE_TEST_UNSET_VARIABLE".to_string()],
            vec![
                format!("carrier=gw1:{}", pw.display()),
                format!("carrier=gw2:{}", pw.display()),
            ],
        ] {
            let e = Config::resolve(args(bad.clone())).err();
            assert!(e.is_some(), "{bad:?}");
            assert!(!format!("{e:?}").contains("s3cret"), "{e:?}");
        }
        let mut a = args(vec![]);
        a.sip_auth_algorithms = Some("sha1".into());
        assert!(Config::resolve(a).is_err());
        // SAFETY: as above.
        unsafe { std::env::remove_var(&var) };
    }

    #[test]
    fn admin_token_from_the_file_and_never_empty() {
        let dir = std::env::temp_dir().join(format!("hotline-cfg-admin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hotline.toml");
        std::fs::write(&file, "admin_token = \"from-file\"\n").unwrap();
        let args = |token: Option<&str>| ServeArgs {
            config: Some(file.clone()),
            admin_token: token.map(Into::into),
            ..Default::default()
        };
        let cfg = Config::resolve(args(None)).unwrap();
        assert_eq!(cfg.admin_token.as_deref(), Some("from-file"));
        let cfg = Config::resolve(args(Some("flag"))).unwrap();
        assert_eq!(cfg.admin_token.as_deref(), Some("flag"));
        assert!(Config::resolve(args(Some(" "))).is_err());
        assert_eq!(
            Config::resolve(ServeArgs::default()).unwrap().admin_token,
            None
        );
    }

    #[test]
    fn tls_cert_and_key_go_together_and_sip_tls_needs_them() {
        let with = |cert: Option<&str>, key: Option<&str>, sip: Option<&str>| {
            Config::resolve(ServeArgs {
                tls_cert: cert.map(PathBuf::from),
                tls_key: key.map(PathBuf::from),
                sip_tls_listen: sip.map(|a| a.parse().unwrap()),
                ..Default::default()
            })
        };
        let cfg = with(Some("c.pem"), Some("k.pem"), Some("0.0.0.0:5061")).unwrap();
        assert_eq!(cfg.tls, Some(("c.pem".into(), "k.pem".into())));
        assert_eq!(cfg.sip_tls_listen, Some("0.0.0.0:5061".parse().unwrap()));
        assert_eq!(with(None, None, None).unwrap().tls, None);
        assert!(with(Some("c.pem"), None, None).is_err());
        assert!(with(None, Some("k.pem"), None).is_err());
        let e = with(None, None, Some("0.0.0.0:5061")).unwrap_err();
        assert!(e.to_string().contains("--tls-cert"), "{e}");
    }

    #[test]
    fn an_admin_token_in_argv_is_noticed() {
        let argv = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert!(admin_token_in_argv(argv(&["serve", "--admin-token", "x"])));
        assert!(admin_token_in_argv(argv(&["serve", "--admin-token=x"])));
        let file = argv(&["serve", "--admin-token-file", "/t"]);
        assert!(!admin_token_in_argv(file));
        assert!(!admin_token_in_argv(argv(&["--admin-token-file=/t"])));
        assert!(!admin_token_in_argv(argv(&["hotline", "serve"])));
    }

    #[test]
    fn admin_token_file_and_never_both() {
        let dir = std::env::temp_dir().join(format!("hotline-cfg-tokfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tok = dir.join("admin.token");
        std::fs::write(&tok, "  from-token-file \n# ignored\n").unwrap();
        let empty = dir.join("empty.token");
        std::fs::write(&empty, "\n").unwrap();
        let args = ServeArgs {
            admin_token_file: Some(tok.clone()),
            ..Default::default()
        };
        let cfg = Config::resolve(args).unwrap();
        assert_eq!(cfg.admin_token.as_deref(), Some("from-token-file"));
        // Both as flags: refused.
        let both = ServeArgs {
            admin_token: Some("flag".into()),
            admin_token_file: Some(tok.clone()),
            ..Default::default()
        };
        let e = Config::resolve(both).unwrap_err().to_string();
        assert!(e.contains("--admin-token-file"), "{e}");
        assert!(!e.contains("flag\""), "{e}");
        // Empty or missing file: refused.
        for p in [empty.clone(), dir.join("missing")] {
            let args = ServeArgs {
                admin_token_file: Some(p),
                ..Default::default()
            };
            assert!(Config::resolve(args).is_err());
        }
        // In hotline.toml; both there: refused; a flag beats the file's.
        let conf = dir.join("hotline.toml");
        let with_conf = |text: String, token: Option<&str>| {
            std::fs::write(&conf, text).unwrap();
            Config::resolve(ServeArgs {
                config: Some(conf.clone()),
                admin_token: token.map(Into::into),
                ..Default::default()
            })
        };
        let file_line = format!("admin_token_file = {:?}\n", tok.display().to_string());
        let cfg = with_conf(file_line.clone(), None).unwrap();
        assert_eq!(cfg.admin_token.as_deref(), Some("from-token-file"));
        let cfg = with_conf(file_line.clone(), Some("flag")).unwrap();
        assert_eq!(cfg.admin_token.as_deref(), Some("flag"));
        assert!(with_conf(format!("{file_line}admin_token = \"x\"\n"), None).is_err());
    }

    #[test]
    fn debug_never_prints_secrets() {
        let args = ServeArgs {
            admin_token: Some("tok-SECRET".into()),
            database_url: Some("postgres://u:pw-SECRET@db/h".into()),
            allowed_origin: vec!["https://desk.example.com".into()],
            ..Default::default()
        };
        let shown = format!("{args:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
        let cfg = Config::resolve(args).unwrap();
        let shown = format!("{cfg:?} {cfg:#?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("https://desk.example.com"), "{shown}");
    }
}
