//! Checks the gateway's JSON-lines call event log (`<data-dir>/call-events.jsonl`):
//! every call that walked has its complete record — `call_started`,
//! `answered`, `digit`, `recording`, `call_ended`, with `seq` contiguous
//! from 0. (`tests/load/run` checks the `calls` table instead when the
//! gateway writes to PostgreSQL.)

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

#[derive(Args)]
pub struct CheckArgs {
    /// The gateway's event log.
    #[arg(long)]
    events: PathBuf,
    /// Only calls whose SIP Call-ID starts with this.
    #[arg(long, default_value = "")]
    prefix: String,
    /// At least this many complete records (e.g. SIPp's successful calls).
    #[arg(long)]
    expect: Option<u64>,
    /// A `--calls-file` from a run: every call in it that walked must have a complete record.
    #[arg(long)]
    calls_file: Option<PathBuf>,
    /// Do not require a `digit` event.
    #[arg(long)]
    no_digit: bool,
}

#[derive(Default)]
struct Record {
    sip_call_id: String,
    kinds: HashSet<String>,
    seqs: BTreeSet<u64>,
}

#[derive(Serialize)]
struct Report {
    calls: usize,
    complete: usize,
    incomplete: usize,
    expected: Option<u64>,
    missing: usize,
    ok: bool,
}

pub fn check(a: &CheckArgs) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(&a.events)
        .with_context(|| format!("read {}", a.events.display()))?;
    let mut calls: HashMap<String, Record> = HashMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue; // a torn last line while the gateway writes
        };
        let sip = v["sip_call_id"].as_str().unwrap_or_default();
        if !sip.starts_with(&a.prefix) {
            continue;
        }
        let id = v["call_id"].as_str().unwrap_or_default().to_owned();
        let r = calls.entry(id).or_default();
        r.sip_call_id = sip.to_owned();
        r.kinds
            .insert(v["kind"].as_str().unwrap_or_default().to_owned());
        if let Some(s) = v["seq"].as_u64() {
            r.seqs.insert(s);
        }
    }
    let mut required = vec!["call_started", "answered", "recording", "call_ended"];
    if !a.no_digit {
        required.push("digit");
    }
    let complete_ids: HashSet<&str> = calls
        .values()
        .filter(|r| {
            required.iter().all(|k| r.kinds.contains(*k))
                && r.seqs.first() == Some(&0)
                && r.seqs.last().map(|l| l + 1) == Some(r.seqs.len() as u64)
        })
        .map(|r| r.sip_call_id.as_str())
        .collect();
    let mut missing = 0;
    if let Some(path) = &a.calls_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line)?;
            if v["walked"].as_bool() == Some(true) {
                let id = v["call_id"].as_str().unwrap_or_default();
                if !complete_ids.contains(id) {
                    missing += 1;
                    if missing <= 5 {
                        eprintln!("check-records: no complete record for {id}");
                    }
                }
            }
        }
    }
    let complete = complete_ids.len();
    let ok = missing == 0 && a.expect.is_none_or(|n| complete as u64 >= n);
    let report = Report {
        calls: calls.len(),
        complete,
        incomplete: calls.len() - complete,
        expected: a.expect,
        missing,
        ok,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(ok)
}
