//! `GET /metrics`: the gateway's figures in the Prometheus text format
//! (docs/operations.md, "Metrics").
//!
//! The library crates count through the `metrics` facade (a macro call, a
//! no-op until a recorder exists); `hotline serve` installs
//! `metrics-exporter-prometheus`'s recorder here and renders it from this
//! axum route, on the main HTTP listener (the exporter's own listener and
//! push gateway are compiled out). Figures something else already keeps —
//! active calls, the SIP edge counters, the writer's counters and spool, the
//! desk's queues and agents, the prompt cache — are read at scrape time
//! rather than counted twice.
//!
//! Labels are bounded: fixed sets (outcomes, methods, code classes, agent
//! states) and admin-defined queue names; never a caller's number, a Call-ID
//! or an address.
//!
//! Access: loopback always; other sources only inside `--metrics-allow`
//! (a scraper carries no browser session, so no login is asked).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hotline_call::ActiveCalls;
use hotline_desk::DeskHandle;
use hotline_events::{CallEvent, EventData};
use hotline_media::PromptCache;
use hotline_sip::SipHandle;
use hotline_store::WriterStats;
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::http::ClientIp;

const CALLS_ACTIVE: &str = "hotline_calls_active";
const CALLS_STARTED: &str = "hotline_calls_started_total";
const OFFERS: &str = "hotline_offers_total";
const FLOW_PUBLISHES: &str = "hotline_flow_publishes_total";
const QUEUE_WAITING: &str = "hotline_queue_waiting_calls";
const QUEUE_LONGEST: &str = "hotline_queue_longest_wait_seconds";
const QUEUE_AVAILABLE: &str = "hotline_queue_agents_available";
const AGENTS: &str = "hotline_agents";
const SPOOL_SEGMENTS: &str = "hotline_spool_segments";
const SPOOL_BYTES: &str = "hotline_spool_bytes";
const WRITER_EVENTS: &str = "hotline_writer_events_total";
const PROMPT_CACHE: &str = "hotline_prompt_cache_prompts";
/// `hotline_acd_leader`: 1 while this node leads the ACD (cluster.rs), else 0.
pub const ACD_LEADER: &str = "hotline_acd_leader";
const SIP_EDGE: &str = "hotline_sip_edge_events_total";
const SIP_BANNED: &str = "hotline_sip_banned_sources";
use hotline_call::rtp_meter::{RTP_LATE, RTP_LOST, RTP_RECEIVED, RTP_SENT};

/// Agent states, as `AgentState::name` spells them.
const AGENT_STATES: [&str; 6] = [
    "offline",
    "available",
    "ringing",
    "on_call",
    "wrap_up",
    "away",
];
/// Offer outcomes, as `offer_outcome` events spell them.
const OFFER_OUTCOMES: [&str; 4] = ["accepted", "declined", "timeout", "withdrawn"];
/// How a flow version went live.
const PUBLISH_KINDS: [&str; 3] = ["publish", "rollback", "file"];

/// Installs the process's recorder (once, in `serve`) and describes every
/// metric; the returned handle renders them.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let seconds = |v: &[f64]| v.to_vec();
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(hotline_sip::metrics::INVITE_ANSWER.into()),
            &seconds(&[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0]),
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(hotline_store::metrics::WRITER_BATCH.into()),
                &seconds(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
            )
        })
        .context("histogram buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    describe();
    // Every series of a fixed label set exists from the start at 0, so a
    // rate() over the first increase is right and dashboards show zeros.
    for o in hotline_store::record::OUTCOMES {
        metrics::counter!(hotline_store::metrics::CALLS, "outcome" => *o).increment(0);
    }
    for o in OFFER_OUTCOMES {
        metrics::counter!(OFFERS, "outcome" => o).increment(0);
    }
    for k in PUBLISH_KINDS {
        metrics::counter!(FLOW_PUBLISHES, "kind" => k).increment(0);
    }
    metrics::counter!(hotline_store::metrics::DB_ERRORS, "op" => "write").increment(0);
    metrics::counter!(hotline_store::metrics::WRITER_BEHIND).increment(0);
    metrics::gauge!(ACD_LEADER).set(0.0);
    for name in [
        CALLS_STARTED,
        RTP_RECEIVED,
        RTP_SENT,
        RTP_LOST,
        RTP_LATE,
        crate::live::TODAY_READS,
    ] {
        metrics::counter!(name).increment(0);
    }
    // Upkeep bounds the histograms' memory between scrapes.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

fn describe() {
    use hotline_sip::metrics as sip;
    use hotline_store::metrics as store;
    describe_gauge!(
        ACD_LEADER,
        "1 while this node leads the cluster's ACD election, else 0."
    );
    describe_gauge!(
        CALLS_ACTIVE,
        "Calls in progress (inbound calls and callback legs)."
    );
    describe_counter!(CALLS_STARTED, "Calls started (call_started events).");
    describe_counter!(
        store::CALLS,
        "Calls completed (call_ended committed to the database), by outcome."
    );
    describe_counter!(
        sip::REQUESTS,
        "SIP requests received (in) and sent (out), by method (unknown methods: other)."
    );
    describe_counter!(
        sip::RESPONSES,
        "SIP responses received (in) and sent (out), by CSeq method and code (exact for common codes, else the class)."
    );
    describe_histogram!(
        sip::INVITE_ANSWER,
        Unit::Seconds,
        "From an inbound INVITE to our 200 OK."
    );
    describe_counter!(
        SIP_EDGE,
        "SIP edge policy events (refusals, drops, bans, authentication), by event."
    );
    describe_gauge!(
        SIP_BANNED,
        "Source addresses banned by the SIP edge policy now."
    );
    describe_counter!(RTP_RECEIVED, "RTP packets accepted from callers.");
    describe_counter!(RTP_SENT, "RTP packets sent to callers.");
    describe_counter!(
        RTP_LOST,
        "RTP audio packets missing from callers' sequence numbers."
    );
    describe_counter!(
        RTP_LATE,
        "Audio frames produced late, after a call task woke late (caught up in the next tick)."
    );
    describe_gauge!(
        QUEUE_WAITING,
        "Calls waiting in a queue (callback entries included), by queue."
    );
    describe_gauge!(
        QUEUE_LONGEST,
        Unit::Seconds,
        "How long the longest-waiting call of a queue has waited, by queue."
    );
    describe_gauge!(
        QUEUE_AVAILABLE,
        "A queue's members available for an offer now, by queue."
    );
    describe_gauge!(AGENTS, "Agents by state.");
    describe_counter!(OFFERS, "Offers of calls to agents, by outcome.");
    describe_histogram!(
        store::WRITER_BATCH,
        Unit::Seconds,
        "One batch of call events written to PostgreSQL (successful or not)."
    );
    describe_counter!(store::DB_ERRORS, "Database operations that failed, by op.");
    describe_counter!(
        store::WRITER_BEHIND,
        "Times the record writer spooled because the database was behind the calls."
    );
    describe_counter!(
        WRITER_EVENTS,
        "Call events handled by the record writer: written straight, spooled, replayed from the spool."
    );
    describe_gauge!(
        SPOOL_SEGMENTS,
        "Spool segment files waiting for the database."
    );
    describe_gauge!(
        SPOOL_BYTES,
        Unit::Bytes,
        "Size of the spool's segment files."
    );
    describe_gauge!(PROMPT_CACHE, "Prompts held in the prompt cache.");
    describe_gauge!(
        crate::live::FEED_CPU,
        Unit::Seconds,
        "CPU time the live feed (/api/live) cost: building it and keeping its board of live calls."
    );
    describe_counter!(
        crate::live::TODAY_READS,
        "Reads of today's figures for the live feed."
    );
    describe_gauge!(
        crate::live::TODAY_READ_TIME,
        Unit::Seconds,
        "Time those reads took in all, database round trip included."
    );
    describe_counter!(
        FLOW_PUBLISHES,
        "Flow versions made live, by kind (publish, rollback, file)."
    );
}

/// Counts what the call events say and nothing else keeps (fed by the
/// records' tee: every event passes once).
pub fn on_event(ev: &CallEvent) {
    match &ev.data {
        EventData::CallStarted { .. } => metrics::counter!(CALLS_STARTED).increment(1),
        EventData::OfferOutcome { outcome, .. } => {
            let label = OFFER_OUTCOMES
                .iter()
                .find(|o| **o == outcome.as_str())
                .copied()
                .unwrap_or("other");
            metrics::counter!(OFFERS, "outcome" => label).increment(1);
        }
        _ => {}
    }
}

/// A flow version went live: published or rolled back in the admin API,
/// or imported from the flows dir.
pub fn flow_published(kind: &'static str) {
    metrics::counter!(FLOW_PUBLISHES, "kind" => kind).increment(1);
}

/// Who may read `/metrics` besides loopback (`--metrics-allow`).
#[derive(Clone, Debug, Default)]
pub struct MetricsAllow(Option<hotline_sip::Trunk>);

impl MetricsAllow {
    /// CIDRs or bare addresses; none: loopback only.
    pub fn parse(specs: &[String]) -> anyhow::Result<Self> {
        let list: Vec<&str> = specs
            .iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if list.is_empty() {
            return Ok(Self(None));
        }
        let nets: hotline_sip::Trunk = format!("metrics={}", list.join(","))
            .parse()
            .map_err(|e: hotline_sip::TrunkParseError| anyhow::anyhow!("{e}"))?;
        Ok(Self(Some(nets)))
    }

    /// Whether a request from `ip` may read the metrics; an unknown source
    /// may not.
    pub fn permits(&self, ip: Option<IpAddr>) -> bool {
        let Some(ip) = ip.map(|ip| ip.to_canonical()) else {
            return false;
        };
        ip.is_loopback()
            || self
                .0
                .as_ref()
                .is_some_and(|t| t.nets.iter().any(|n| n.contains(&ip)))
    }
}

/// What a scrape reads.
#[derive(Clone)]
pub struct MetricsState {
    pub handle: PrometheusHandle,
    pub allow: Arc<MetricsAllow>,
    pub active: ActiveCalls,
    pub desk: DeskHandle,
    pub sip: SipHandle,
    pub prompts: Arc<PromptCache>,
    pub writer: Arc<WriterStats>,
    pub spool_dir: PathBuf,
    /// Queues seen at an earlier scrape (a removed queue's gauges go to 0).
    pub queues_seen: Arc<Mutex<BTreeSet<String>>>,
}

pub fn routes(st: MetricsState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(scrape))
        .with_state(st)
}

/// The Prometheus text exposition format 0.0.4.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn scrape(State(st): State<MetricsState>, ClientIp(ip): ClientIp) -> Response {
    if !st.allow.permits(ip) {
        return (
            StatusCode::FORBIDDEN,
            "metrics are served to loopback and --metrics-allow only\n",
        )
            .into_response();
    }
    refresh(&st).await;
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], st.handle.render()).into_response()
}

/// Sets the figures read at scrape time.
async fn refresh(st: &MetricsState) {
    metrics::gauge!(CALLS_ACTIVE).set(st.active.get() as f64);
    metrics::gauge!(PROMPT_CACHE).set(st.prompts.len() as f64);
    metrics::gauge!(crate::live::FEED_CPU).set(crate::live::feed_cpu_seconds());
    metrics::gauge!(crate::live::TODAY_READ_TIME).set(crate::live::today_read_seconds());

    // The SIP edge policy's own counters (monotonic atomics), as they are.
    for (name, value) in st.sip.edge_stats().fields() {
        if name == "banned_now" {
            metrics::gauge!(SIP_BANNED).set(value as f64);
        } else {
            metrics::counter!(SIP_EDGE, "event" => name).absolute(value);
        }
    }

    use std::sync::atomic::Ordering::Relaxed;
    let w = &st.writer;
    for (path, n) in [
        ("written", w.written.load(Relaxed)),
        ("spooled", w.spooled.load(Relaxed)),
        ("replayed", w.replayed.load(Relaxed)),
    ] {
        metrics::counter!(WRITER_EVENTS, "path" => path).absolute(n);
    }
    metrics::gauge!(SPOOL_SEGMENTS).set(w.spool_segments.load(Relaxed) as f64);
    let dir = st.spool_dir.clone();
    let bytes = tokio::task::spawn_blocking(move || spool_bytes(&dir))
        .await
        .unwrap_or(0);
    metrics::gauge!(SPOOL_BYTES).set(bytes as f64);

    let mut by_state = [0usize; AGENT_STATES.len()];
    for a in st.desk.watch_states().borrow().iter() {
        if let Some(i) = AGENT_STATES.iter().position(|s| *s == a.state.name()) {
            by_state[i] += 1;
        }
    }
    for (state, n) in AGENT_STATES.iter().zip(by_state) {
        metrics::gauge!(AGENTS, "state" => *state).set(n as f64);
    }

    // The desk answers between routing decisions; a busy or gone desk
    // leaves the queue gauges as they were.
    let depths = tokio::time::timeout(Duration::from_secs(1), st.desk.queue_depths()).await;
    if let Ok(Some(depths)) = depths {
        let mut seen = st.queues_seen.lock().unwrap_or_else(|p| p.into_inner());
        let now: BTreeSet<String> = depths.iter().map(|d| d.queue.clone()).collect();
        for gone in seen.difference(&now) {
            let q = gone.clone();
            metrics::gauge!(QUEUE_WAITING, "queue" => q.clone()).set(0.0);
            metrics::gauge!(QUEUE_LONGEST, "queue" => q.clone()).set(0.0);
            metrics::gauge!(QUEUE_AVAILABLE, "queue" => q).set(0.0);
        }
        for d in depths {
            metrics::gauge!(QUEUE_WAITING, "queue" => d.queue.clone()).set(d.waiting as f64);
            metrics::gauge!(QUEUE_LONGEST, "queue" => d.queue.clone())
                .set(d.longest_wait.as_secs_f64());
            metrics::gauge!(QUEUE_AVAILABLE, "queue" => d.queue.clone())
                .set(d.agents_available as f64);
            seen.insert(d.queue);
        }
    }
}

/// Bytes of the spool's segment files (`*.jsonl`); 0 when unreadable.
fn spool_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_always_others_only_when_allowed() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let none = MetricsAllow::parse(&[]).unwrap();
        assert!(none.permits(ip("127.0.0.1")));
        assert!(none.permits(ip("::1")));
        assert!(none.permits(ip("::ffff:127.0.0.1")));
        assert!(!none.permits(ip("10.0.0.5")));
        assert!(!none.permits(None));
        let some = MetricsAllow::parse(&["10.0.0.0/8, 192.0.2.7".into()]).unwrap();
        assert!(some.permits(ip("10.1.2.3")));
        assert!(some.permits(ip("192.0.2.7")));
        assert!(!some.permits(ip("192.0.2.8")));
        assert!(MetricsAllow::parse(&["nonsense".into()]).is_err());
    }
}
