//! The live feed of the wallboard and the supervisor's page
//! (docs/metrics.md, "Live"): pushed once a second as Server-Sent Events,
//! behind the admin API's authentication (admins and supervisors).
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/live` | `text/event-stream`: one `data:` line of the feed's JSON a second |
//! | `GET /api/live/snapshot` | the feed's JSON once (for scripts and tests) |
//!
//! One task builds the feed for every viewer: the live calls from the
//! [`LiveBoard`] (fed by the records' tee), the queues and agents from the
//! desk, and "today so far" from the same report function as the historical
//! reports (`Store::report_summary` from midnight in `--report-tz`), read
//! again at most every [`TODAY_EVERY`] and only when a call event has
//! arrived since (a minute at most otherwise, for midnight). Nobody
//! watching: the task builds nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use hotline_desk::DeskHandle;
use hotline_store::Store;
use hotline_store::reports::{Figures, Granularity, ReportQuery};
use serde::Serialize;
use tokio::sync::watch;

use crate::admin::AgentStateView;
use crate::live_board::{LiveBoard, LiveCall, Phase};

/// How often the feed is pushed.
pub const PUSH_EVERY: Duration = Duration::from_secs(1);
/// How often "today so far" may be read from the database.
pub const TODAY_EVERY: Duration = Duration::from_secs(5);
/// Read again after this long even without call events (midnight).
const TODAY_AT_LEAST: Duration = Duration::from_secs(60);

/// The board, shared by the records' tee (writes) and the feed (reads).
pub type SharedBoard = Arc<Mutex<LiveBoard>>;

/// CPU time the live feed costs the gateway: the feed task's polls and the
/// board's updates in the records' tee, in seconds since start (`/metrics`,
/// a gauge set at scrape time: the exporter's counters are whole numbers;
/// the load kit's `live` step divides its growth by the time measured).
pub const FEED_CPU: &str = "hotline_live_feed_cpu_seconds";
/// "Today so far" reads (the database's share of the feed's cost) …
pub const TODAY_READS: &str = "hotline_live_today_reads_total";
/// … and the time they took in all, in seconds (a gauge, as above).
pub const TODAY_READ_TIME: &str = "hotline_live_today_read_seconds";

static FEED_CPU_NS: AtomicU64 = AtomicU64::new(0);
static TODAY_READ_NS: AtomicU64 = AtomicU64::new(0);

/// The live feed's CPU time so far, in seconds.
pub fn feed_cpu_seconds() -> f64 {
    FEED_CPU_NS.load(Ordering::Relaxed) as f64 / 1e9
}

/// The time today's reads took so far, in seconds.
pub fn today_read_seconds() -> f64 {
    TODAY_READ_NS.load(Ordering::Relaxed) as f64 / 1e9
}

/// This thread's CPU time so far (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Adds `d` of CPU time to [`FEED_CPU`].
pub fn count_cpu(d: Duration) {
    FEED_CPU_NS.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
}

/// A future whose every poll's CPU time is counted in [`FEED_CPU`] (a
/// poll runs on one thread start to end, so the thread clock measures it).
struct Metered<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for Metered<F> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let t0 = thread_cpu();
        let out = self.0.as_mut().poll(cx);
        count_cpu(thread_cpu().saturating_sub(t0));
        out
    }
}

/// What the feed is built from.
pub struct LiveSources {
    pub board: SharedBoard,
    pub desk: DeskHandle,
    pub agents: watch::Receiver<Vec<AgentStateView>>,
    pub store: Store,
    /// `--report-tz`.
    pub tz: String,
    /// `--service-level-target`, percent.
    pub service_level_target: u8,
}

/// One queue now.
#[derive(Clone, Debug, Serialize)]
struct QueueNow {
    queue: String,
    /// Calls waiting (ringing ones and callback entries included).
    waiting: usize,
    longest_wait_s: u64,
    agents_available: usize,
    /// The queue's service level threshold (colours its longest wait).
    service_level_secs: Option<u32>,
}

/// One agent now.
#[derive(Clone, Debug, Serialize)]
struct AgentNow {
    agent: String,
    name: String,
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    since: Option<DateTime<Utc>>,
    /// Seconds in `state`.
    for_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    call: Option<String>,
}

/// "Today so far".
#[derive(Clone, Debug, Serialize)]
struct Today {
    /// Midnight in `tz`.
    from: DateTime<Utc>,
    tz: String,
    /// When the figures were read.
    computed_at: DateTime<Utc>,
    figures: Figures,
}

/// The feed's JSON.
#[derive(Clone, Debug, Serialize)]
struct Feed {
    at: DateTime<Utc>,
    calls_active: usize,
    in_ivr: usize,
    /// In a queue or ringing an agent.
    waiting: usize,
    with_agent: usize,
    in_survey: usize,
    in_voicemail: usize,
    queues: Vec<QueueNow>,
    agents: Vec<AgentNow>,
    /// Agents per state.
    agent_states: std::collections::BTreeMap<String, usize>,
    calls: Vec<LiveCall>,
    /// `null` until first read (or when the database cannot be read).
    today: Option<Today>,
    /// Service level target, 0–1.
    service_level_target: f64,
}

/// The feed's sender; viewers subscribe to it.
#[derive(Clone)]
pub struct LiveFeed(Arc<watch::Sender<Arc<str>>>);

impl LiveFeed {
    /// Starts the task that builds the feed.
    pub fn start(src: LiveSources) -> Self {
        let (tx, _) = watch::channel(Arc::<str>::from("{}"));
        let tx = Arc::new(tx);
        tokio::spawn(Metered(Box::pin(run(src, tx.clone()))));
        Self(tx)
    }
}

async fn run(mut src: LiveSources, tx: Arc<watch::Sender<Arc<str>>>) {
    let mut tick = tokio::time::interval(PUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut today: Option<Today> = None;
    // (when read, the board's generation then)
    let mut today_read: Option<(Instant, u64)> = None;
    let mut thresholds: std::collections::HashMap<String, u32> = Default::default();
    loop {
        tick.tick().await;
        if tx.receiver_count() == 0 {
            continue;
        }
        let now = Utc::now();
        let (calls, generation) = match src.board.lock() {
            Ok(mut b) => {
                b.sweep(now);
                (b.calls(now), b.generation())
            }
            Err(_) => {
                tracing::error!("live board lock poisoned; feed stops");
                return;
            }
        };
        let due = today_read.is_none_or(|(at, g)| {
            let age = at.elapsed();
            (age >= TODAY_EVERY && g != generation) || age >= TODAY_AT_LEAST
        });
        if due {
            today_read = Some((Instant::now(), generation));
            let t0 = Instant::now();
            let read = read_today(&src.store, &src.tz).await;
            ::metrics::counter!(TODAY_READS).increment(1);
            TODAY_READ_NS.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
            match read {
                Ok(t) => today = Some(t),
                Err(e) => tracing::warn!(error = %e, "live feed: today's figures not read"),
            }
            if let Ok(qs) = src.store.list_queues().await {
                thresholds = qs
                    .into_iter()
                    .map(|q| (q.name, q.service_level_secs))
                    .collect();
            }
        }
        let depths = src.desk.queue_depths().await.unwrap_or_default();
        let agents: Vec<AgentNow> = src
            .agents
            .borrow_and_update()
            .iter()
            .map(|a| AgentNow {
                agent: a.agent.clone(),
                name: a.name.clone(),
                state: a.state.clone(),
                reason: a.reason.clone(),
                since: a.since,
                for_s: a.since.map(|s| (now - s).num_seconds().max(0) as u64),
                call: a.call.clone(),
            })
            .collect();
        let mut agent_states = std::collections::BTreeMap::new();
        for a in &agents {
            *agent_states.entry(a.state.clone()).or_insert(0) += 1;
        }
        let count = |p: &[Phase]| calls.iter().filter(|c| p.contains(&c.phase)).count();
        let feed = Feed {
            at: now,
            calls_active: calls.len(),
            in_ivr: count(&[Phase::Ivr]),
            waiting: count(&[Phase::Queue, Phase::Ringing]),
            with_agent: count(&[Phase::Agent]),
            in_survey: count(&[Phase::Survey]),
            in_voicemail: count(&[Phase::Voicemail]),
            queues: depths
                .into_iter()
                .map(|d| QueueNow {
                    service_level_secs: thresholds.get(&d.queue).copied(),
                    queue: d.queue,
                    waiting: d.waiting,
                    longest_wait_s: d.longest_wait.as_secs(),
                    agents_available: d.agents_available,
                })
                .collect(),
            agents,
            agent_states,
            calls,
            today: today.clone(),
            service_level_target: f64::from(src.service_level_target) / 100.0,
        };
        match serde_json::to_string(&feed) {
            Ok(json) => {
                tx.send_replace(json.into());
            }
            Err(e) => tracing::error!(error = %e, "live feed not serialised"),
        }
    }
}

async fn read_today(store: &Store, tz: &str) -> Result<Today, hotline_store::StoreError> {
    let from = store.start_of_today(tz).await?;
    let now = Utc::now();
    let mut q = ReportQuery::new(from, now.max(from + chrono::Duration::seconds(1)), tz);
    q.granularity = Granularity::None;
    let figures = store.report_summary(&q).await?;
    Ok(Today {
        from,
        tz: tz.to_owned(),
        computed_at: now,
        figures,
    })
}

/// The routes, for serve.rs to mount behind the admin API's authentication.
pub fn routes<S: Clone + Send + Sync + 'static>(feed: LiveFeed) -> axum::Router<S> {
    axum::Router::new()
        .route("/api/live", get(stream))
        .route("/api/live/snapshot", get(snapshot))
        .with_state(feed)
}

/// The feed as Server-Sent Events: the current state at once, then every
/// change (once a second).
#[utoipa::path(
    get,
    path = "/api/live",
    tag = "live",
    summary = "The live feed (Server-Sent Events, one JSON event a second)",
    responses(
        (status = 200, description = "text/event-stream of the feed's JSON"),
        (status = 401, description = "Not signed in"),
    ),
)]
pub(crate) async fn stream(State(feed): State<LiveFeed>) -> Response {
    let rx = feed.0.subscribe();
    let events = futures_util::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first && rx.changed().await.is_err() {
            return None;
        }
        let json = rx.borrow_and_update().clone();
        let ev: Result<Event, std::convert::Infallible> = Ok(Event::default().data(&*json));
        Some((ev, (rx, false)))
    });
    (
        [(header::CACHE_CONTROL, "no-store")],
        Sse::new(events).keep_alive(KeepAlive::default()),
    )
        .into_response()
}

/// The feed once: the next one built (within a second).
#[utoipa::path(
    get,
    path = "/api/live/snapshot",
    tag = "live",
    summary = "The live feed's JSON once",
    responses(
        (status = 200, description = "The feed's JSON"),
        (status = 401, description = "Not signed in"),
        (status = 503, description = "The feed is not being built"),
    ),
)]
pub(crate) async fn snapshot(State(feed): State<LiveFeed>) -> Response {
    let mut rx = feed.0.subscribe();
    match tokio::time::timeout(PUSH_EVERY * 3, rx.changed()).await {
        Ok(Ok(())) => {
            let json = rx.borrow_and_update().clone();
            (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                json.to_string(),
            )
                .into_response()
        }
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": "the live feed is not running"})),
        )
            .into_response(),
    }
}
