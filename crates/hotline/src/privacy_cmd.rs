//! `hotline erase --caller NUMBER` and `hotline recordings verify`: the
//! personal-data commands. The database is found as for `hotline migrate`
//! (DATABASE_URL, or the embedded cluster under --data-dir); the files
//! (event log, spool) are the data dir's.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use hotline_store::privacy::{caller_subject, erase_caller, erase_details};
use hotline_store::{EventFiles, open_recording};

use crate::config::{Config, ServeArgs};
use crate::records::{Database, DbArgs};
use crate::retention::RetentionArgs;

#[derive(Args, Debug)]
pub struct EraseArgs {
    /// The customer's number as the records hold it (the From user part,
    /// e.g. +8613800138000): their recordings and voicemail are deleted and
    /// the number (and their name on their calls) masked everywhere.
    #[arg(long, value_name = "NUMBER")]
    caller: String,
    /// List what would be erased; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    db: DbArgs,
}

/// `hotline erase`.
pub fn erase(args: EraseArgs) -> anyhow::Result<()> {
    let (url, data_dir) = args.db.resolve()?;
    let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
    let files = EventFiles::of_data_dir(&data_dir);
    tokio::runtime::Runtime::new()?.block_on(async {
        let db = Database::open(url.as_deref(), &data_dir, true, false).await?;
        let res = async {
            let report = erase_caller(&db.store, &args.caller, &files, args.dry_run)
                .await
                .context("cannot erase")?;
            let verb = if args.dry_run { "would" } else { "did" };
            if report.is_empty() {
                println!("nothing to erase for that number (already erased, or never seen)");
                return Ok(());
            }
            println!(
                "{} calls by or to the number, {} more mentioning it",
                report.calls.len(),
                report.mentioned_in.len()
            );
            for id in &report.calls {
                println!("  call {id}");
            }
            for p in &report.recordings {
                println!("recording {p}: {verb} delete");
            }
            for p in &report.voicemails {
                println!("voicemail {p}: {verb} delete");
            }
            println!(
                "masked ({verb}): {} calls, {} call events, {} callbacks; {} event-log lines, {} spool lines; number removed from {} customers",
                report.masked.calls,
                report.masked.events,
                report.masked.callbacks,
                report.event_log_lines,
                report.spool_lines,
                report.customers
            );
            if args.dry_run {
                println!("dry run: nothing changed");
                return Ok(());
            }
            let id = db
                .store
                .audit(
                    &cli_actor(),
                    "erase_caller",
                    Some(&caller_subject(args.caller.trim())),
                    erase_details(&report, false),
                )
                .await
                .context("erased, but cannot write the audit entry")?;
            println!("audit entry {id} written");
            Ok(())
        }
        .await;
        db.close().await;
        res
    })
}

/// `cli:<unix user>`.
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| {
            // No USER (a service, cron): the uid from /proc.
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("Uid:"))
                        .and_then(|l| l.split_whitespace().nth(1).map(|u| format!("uid {u}")))
                })
                .unwrap_or_else(|| "unknown".into())
        });
    format!("cli:{user}")
}

#[derive(Args, Debug)]
pub struct RecordingsArgs {
    #[command(subcommand)]
    command: RecordingsCommand,
}

#[derive(Subcommand, Debug)]
enum RecordingsCommand {
    /// Read every recording (decrypting sealed ones) and compare its sha256
    /// with the one recorded; exit status 1 when any fails.
    Verify {
        /// The current recording key (sealed recordings need it or the keyring).
        #[arg(long, env = "HOTLINE_RECORDING_KEY_FILE", value_name = "FILE")]
        recording_key_file: Option<PathBuf>,
        /// Retired recording keys (`*.key`).
        #[arg(long, env = "HOTLINE_RECORDING_KEYRING", value_name = "DIR")]
        recording_keyring: Option<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `hotline recordings …`.
pub fn recordings(args: RecordingsArgs) -> anyhow::Result<()> {
    let RecordingsCommand::Verify {
        recording_key_file,
        recording_keyring,
        db,
    } = args.command;
    let cfg = Config::resolve(ServeArgs {
        config: db.config,
        data_dir: db.data_dir,
        database_url: db.database_url,
        retention: RetentionArgs {
            recording_key_file,
            recording_keyring,
            ..RetentionArgs::default()
        },
        ..ServeArgs::default()
    })?;
    let keys = cfg.retention.keys.clone();
    let bad = tokio::runtime::Runtime::new()?.block_on(async {
        let db = Database::open(cfg.database_url.as_deref(), &cfg.data_dir, true, false).await?;
        let res: anyhow::Result<u64> = async {
            let (mut ok, mut bad, mut deleted, mut unchecked) = (0u64, 0u64, 0u64, 0u64);
            let mut after = None;
            loop {
                let page = db.store.recordings_page(after, 200).await?;
                let Some(last) = page.last() else { break };
                after = Some(last.id);
                for rec in page {
                    if rec.deleted_at.is_some() {
                        deleted += 1;
                        continue;
                    }
                    let keys = keys.clone();
                    let r = rec.clone();
                    let result = tokio::task::spawn_blocking(move || {
                        open_recording(&r, keys.as_deref()).map(|rd| rd.checked())
                    })
                    .await?;
                    match result {
                        Ok(true) => ok += 1,
                        Ok(false) => {
                            unchecked += 1;
                            println!("NO CHECKSUM {} (call {}): {}", rec.id, rec.call_id, rec.path);
                        }
                        Err(e) => {
                            bad += 1;
                            let what = if e.is_corrupt() { "MISMATCH" } else { "FAILED" };
                            println!("{what} {} (call {}): {e}", rec.id, rec.call_id);
                        }
                    }
                }
            }
            println!(
                "{ok} recordings verified, {bad} failed, {unchecked} without a checksum, {deleted} deleted on purpose"
            );
            Ok(bad)
        }
        .await;
        db.close().await;
        res
    })?;
    if bad > 0 {
        anyhow::bail!("{bad} recordings failed verification");
    }
    Ok(())
}
