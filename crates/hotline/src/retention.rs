//! Retention and recordings at rest: the flags, and the background job that
//! applies the retention policy (docs/security.md, "Recordings and personal
//! data").
//!
//! The policy lives with the rest of the gateway's configuration (flags,
//! `HOTLINE_*`, `hotline.toml`), per-queue overrides included, so it is
//! versioned and reviewed like the trunk list; the job reads no settings
//! from the database. The job runs in `hotline serve` once at start and
//! then every `--retention-interval-secs`; each pass works in batches
//! (`hotline_store::privacy::apply_retention`), logs what it removed and
//! writes one `audit_log` entry when it changed anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use hotline_store::privacy::apply_retention;
use hotline_store::{EventFiles, Keep, Keyring, RetentionDays, RetentionPolicy, Store};

/// Retention and recording-encryption flags of `hotline serve` (flattened
/// into its flags; each has a `HOTLINE_*` variable and a config key).
#[derive(Args, Default, Debug, Clone)]
pub struct RetentionArgs {
    /// Delete call recordings (files; rows are marked) this many days after
    /// the call, or `forever` [default: forever].
    #[arg(long, env = "HOTLINE_RETAIN_RECORDINGS_DAYS", value_name = "DAYS")]
    pub retain_recordings_days: Option<String>,
    /// Delete voicemail files this many days after the call, or `forever`
    /// [default: forever].
    #[arg(long, env = "HOTLINE_RETAIN_VOICEMAIL_DAYS", value_name = "DAYS")]
    pub retain_voicemail_days: Option<String>,
    /// Mask the caller's number and name (calls, events, event log, spool,
    /// callbacks) this many days after the call, or `forever` [default: forever].
    #[arg(long, env = "HOTLINE_MASK_CALLERS_AFTER_DAYS", value_name = "DAYS")]
    pub mask_callers_after_days: Option<String>,
    /// A queue's own retention, QUEUE:recordings=N,voicemail=N,mask=N (each
    /// optional, N days or `forever`); repeatable (in the environment, `;`
    /// between queues). Calls follow the queue they were last queued in.
    #[arg(
        long = "retain-queue",
        env = "HOTLINE_RETAIN_QUEUE",
        value_name = "QUEUE:KIND=DAYS,...",
        value_delimiter = ';'
    )]
    pub retain_queue: Vec<String>,
    /// How often the retention job runs (it also runs at start) [default: 3600].
    #[arg(long, env = "HOTLINE_RETENTION_INTERVAL_SECS", value_name = "SECS")]
    pub retention_interval_secs: Option<u64>,
    /// Encrypt recordings and voicemail at rest with this key (64 hex
    /// digits, e.g. from `openssl rand -hex 32`).
    #[arg(long, env = "HOTLINE_RECORDING_KEY_FILE", value_name = "FILE")]
    pub recording_key_file: Option<PathBuf>,
    /// A directory of retired keys (`*.key`) that still open the recordings
    /// they sealed (key rotation).
    #[arg(long, env = "HOTLINE_RECORDING_KEYRING", value_name = "DIR")]
    pub recording_keyring: Option<PathBuf>,
}

/// The same settings from `hotline.toml` (days as a number or `"forever"`).
#[derive(Default)]
pub struct RetentionFile {
    pub retain_recordings_days: Option<toml::Value>,
    pub retain_voicemail_days: Option<toml::Value>,
    pub mask_callers_after_days: Option<toml::Value>,
    pub retain_queue: Option<Vec<String>>,
    pub retention_interval_secs: Option<u64>,
    pub recording_key_file: Option<PathBuf>,
    pub recording_keyring: Option<PathBuf>,
}

/// The resolved settings.
#[derive(Clone, Debug, Default)]
pub struct RetentionConfig {
    pub policy: RetentionPolicy,
    pub interval: Duration,
    /// The recording keys; `None`: recordings are plain WAVs.
    pub keys: Option<Arc<Keyring>>,
}

impl RetentionConfig {
    /// Flags beat the file; a missing setting keeps data forever.
    pub fn resolve(args: &RetentionArgs, file: RetentionFile) -> anyhow::Result<Self> {
        let days = |flag: &Option<String>, file: Option<toml::Value>, name: &str| {
            match (flag, file) {
                (Some(s), _) => parse_keep(s).map(Some),
                (None, Some(toml::Value::Integer(n))) => parse_keep(&n.to_string()).map(Some),
                (None, Some(toml::Value::String(s))) => parse_keep(&s).map(Some),
                (None, Some(v)) => {
                    bail!("{name} in the config file: a number of days or \"forever\", not {v}")
                }
                (None, None) => Ok(None),
            }
            .with_context(|| format!("--{}", name.replace('_', "-")))
        };
        let global = RetentionDays {
            recordings: days(
                &args.retain_recordings_days,
                file.retain_recordings_days,
                "retain_recordings_days",
            )?,
            voicemail: days(
                &args.retain_voicemail_days,
                file.retain_voicemail_days,
                "retain_voicemail_days",
            )?,
            mask_callers: days(
                &args.mask_callers_after_days,
                file.mask_callers_after_days,
                "mask_callers_after_days",
            )?,
        };
        let specs = if args.retain_queue.is_empty() {
            file.retain_queue.unwrap_or_default()
        } else {
            args.retain_queue.clone()
        };
        let mut queues = BTreeMap::new();
        for spec in specs.iter().filter(|s| !s.trim().is_empty()) {
            let (name, days) =
                parse_queue(spec).with_context(|| format!("--retain-queue {spec:?}"))?;
            if queues.insert(name.clone(), days).is_some() {
                bail!("--retain-queue: queue {name:?} given twice");
            }
        }
        let key_file = args.recording_key_file.clone().or(file.recording_key_file);
        let keyring = args.recording_keyring.clone().or(file.recording_keyring);
        let keys = match (&key_file, &keyring) {
            (None, None) => None,
            (key, ring) => {
                if let Some(k) = key {
                    warn_if_readable_by_others(k);
                }
                Some(Arc::new(
                    Keyring::load(key.as_deref(), ring.as_deref())
                        .context("cannot load the recording keys")?,
                ))
            }
        };
        Ok(Self {
            policy: RetentionPolicy { global, queues },
            interval: Duration::from_secs(
                args.retention_interval_secs
                    .or(file.retention_interval_secs)
                    .unwrap_or(3600)
                    .max(1),
            ),
            keys,
        })
    }
}

/// `N` (days, at least 1) or `forever`.
fn parse_keep(s: &str) -> anyhow::Result<Keep> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("forever") || s.eq_ignore_ascii_case("never") {
        return Ok(Keep::Forever);
    }
    match s.parse::<u32>() {
        Ok(0) => bail!("0 days would delete calls as they end; give at least 1, or `forever`"),
        Ok(n) if n > 36_500 => bail!("{n} days is more than 100 years; use `forever`"),
        Ok(n) => Ok(Keep::Days(n)),
        Err(_) => bail!("{s:?} is not a number of days or `forever`"),
    }
}

/// `QUEUE:recordings=N,voicemail=N,mask=N`.
fn parse_queue(spec: &str) -> anyhow::Result<(String, RetentionDays)> {
    let Some((name, rest)) = spec.split_once(':') else {
        bail!("expected QUEUE:KIND=DAYS[,KIND=DAYS...]");
    };
    let name = name.trim();
    if name.is_empty() {
        bail!("no queue name");
    }
    let mut d = RetentionDays::default();
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((kind, value)) = part.split_once('=') else {
            bail!("{part:?}: expected KIND=DAYS");
        };
        let keep = parse_keep(value)?;
        let slot = match kind.trim() {
            "recordings" => &mut d.recordings,
            "voicemail" => &mut d.voicemail,
            "mask" | "mask_callers" => &mut d.mask_callers,
            other => bail!("{other:?}: the kinds are recordings, voicemail and mask"),
        };
        *slot = Some(keep);
    }
    if d == RetentionDays::default() {
        bail!("no KIND=DAYS for queue {name:?}");
    }
    Ok((name.to_owned(), d))
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the recording key file can be read by other users: chmod 600 it"
            );
        }
    }
}

/// Starts the retention job: a pass now, then one every `interval`.
/// Does nothing when the policy keeps everything.
pub fn spawn(store: Store, cfg: &RetentionConfig, data_dir: &Path) {
    if cfg.policy.keeps_everything() {
        tracing::info!("retention: everything is kept (no --retain-*/--mask-callers-after-days)");
        return;
    }
    let policy = cfg.policy.clone();
    let files = EventFiles::of_data_dir(data_dir);
    let interval = cfg.interval;
    tracing::info!(policy = ?policy, every = ?interval, "retention job started");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            run_once(&store, &policy, &files).await;
        }
    });
}

/// One pass, logged and audited.
pub async fn run_once(store: &Store, policy: &RetentionPolicy, files: &EventFiles) {
    let started = std::time::Instant::now();
    match apply_retention(store, policy, files, chrono::Utc::now(), 500).await {
        Ok(r) if r.is_empty() => {
            tracing::debug!(failures = r.failures, "retention: nothing to remove")
        }
        Ok(r) => {
            tracing::info!(
                recordings_deleted = r.recordings_deleted,
                voicemails_deleted = r.voicemails_deleted,
                calls_masked = r.calls_masked,
                events_masked = r.events_masked,
                callbacks_masked = r.callbacks_masked,
                event_log_lines = r.event_log_lines,
                spool_lines = r.spool_lines,
                failures = r.failures,
                took_ms = started.elapsed().as_millis() as u64,
                "retention pass removed old personal data"
            );
            let details = serde_json::to_value(&r).unwrap_or_default();
            if let Err(e) = store
                .audit("system:retention", "retention", None, details)
                .await
            {
                tracing::warn!(error = %e, "retention: cannot write the audit entry");
            }
        }
        Err(e) => tracing::warn!(error = %e, "retention pass failed; retried at the next one"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_overrides_parse_and_bad_ones_are_refused() {
        let (q, d) = parse_queue("billing:recordings=30, mask=forever").unwrap();
        assert_eq!(q, "billing");
        assert_eq!(d.recordings, Some(Keep::Days(30)));
        assert_eq!(d.voicemail, None);
        assert_eq!(d.mask_callers, Some(Keep::Forever));
        for bad in [
            "billing",
            "billing:",
            ":recordings=3",
            "b:recordings=0",
            "b:audio=3",
            "b:recordings=x",
        ] {
            assert!(parse_queue(bad).is_err(), "{bad}");
        }
        let args = RetentionArgs {
            retain_recordings_days: Some("90".into()),
            retain_queue: vec!["vip:recordings=365".into(), "vip:voicemail=1".into()],
            ..RetentionArgs::default()
        };
        assert!(RetentionConfig::resolve(&args, RetentionFile::default()).is_err());
        let file = RetentionFile {
            retain_voicemail_days: Some(toml::Value::Integer(30)),
            mask_callers_after_days: Some(toml::Value::String("forever".into())),
            retain_queue: Some(vec!["sales:recordings=7".into()]),
            ..RetentionFile::default()
        };
        let cfg = RetentionConfig::resolve(
            &RetentionArgs {
                retain_recordings_days: Some("90".into()),
                ..RetentionArgs::default()
            },
            file,
        )
        .unwrap();
        assert_eq!(cfg.policy.global.recordings, Some(Keep::Days(90)));
        assert_eq!(cfg.policy.global.voicemail, Some(Keep::Days(30)));
        assert_eq!(cfg.policy.global.mask_callers, Some(Keep::Forever));
        assert_eq!(cfg.policy.queues["sales"].recordings, Some(Keep::Days(7)));
        assert_eq!(cfg.interval, Duration::from_secs(3600));
        assert!(cfg.keys.is_none());
        assert!(!cfg.policy.keeps_everything());
        assert!(RetentionPolicy::default().keeps_everything());
    }

    #[test]
    fn the_config_file_holds_the_policy_and_the_keys() {
        let dir = std::env::temp_dir().join(format!("hotline-retention-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("rec.key");
        std::fs::write(&key, "ab".repeat(32)).unwrap();
        let conf = dir.join("hotline.toml");
        std::fs::write(
            &conf,
            format!(
                "retain_recordings_days = 90\nmask_callers_after_days = \"forever\"\n\
                 retain_queue = [\"vip:recordings=365\"]\nretention_interval_secs = 60\n\
                 recording_key_file = {key:?}\n"
            ),
        )
        .unwrap();
        let cfg = crate::config::Config::resolve(crate::config::ServeArgs {
            config: Some(conf),
            ..crate::config::ServeArgs::default()
        })
        .unwrap();
        let r = cfg.retention;
        assert_eq!(r.policy.global.recordings, Some(Keep::Days(90)));
        assert_eq!(r.policy.global.mask_callers, Some(Keep::Forever));
        assert_eq!(r.policy.queues["vip"].recordings, Some(Keep::Days(365)));
        assert_eq!(r.interval, Duration::from_secs(60));
        let keys = r.keys.expect("keys loaded");
        assert_eq!(keys.len(), 1);
        assert!(keys.current().is_some());
        assert!(
            !format!("{keys:?}").contains("abab"),
            "no key bytes in Debug"
        );
    }
}
