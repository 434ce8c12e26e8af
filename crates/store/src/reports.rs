//! Service-quality reports over the call records: the figures of
//! docs/metrics.md for a time range, bucketed by hour/day/week in a time
//! zone, per agent, and the IVR funnel of a flow.
//!
//! For: the historical reports API and (later) the live wallboard's "today
//! so far" — the same functions, a range `[from, to)` that ends now. Not
//! for: what is happening this second (calls in the IVR, agents' states);
//! that is the desk's, not the database's.
//!
//! Every figure is computed by one SQL statement over `calls` (plus
//! `queues` for the service-level threshold, `callbacks` for booked
//! callbacks' fate, `call_events` for offers and the funnel), in one
//! snapshot, straight from the rows the writer derives: a call still being
//! written counts as far as its row says, and totals are exact. The SQL is
//! the one docs/metrics.md prints, figure by figure; migrations/0013 has the
//! indexes and docs/metrics.md ("Design") why there is no rollup table.
//!
//! ```no_run
//! # async fn demo(store: hotline_store::Store) -> Result<(), hotline_store::StoreError> {
//! use chrono::{Duration, Utc};
//! use hotline_store::reports::{Granularity, ReportQuery};
//! let mut q = ReportQuery::new(Utc::now() - Duration::days(30), Utc::now(), "Asia/Shanghai");
//! q.queue = Some("billing".into());
//! let totals = store.report_summary(&q).await?;
//! q.granularity = Granularity::Day;
//! let per_day = store.report_series(&q).await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};

use crate::{Store, StoreError};

/// A short abandon: the caller left the queue within this many seconds
/// (excluded from the service level's denominator).
pub const SHORT_ABANDON_SECS: f64 = 5.0;
/// First-contact resolution's window when none is given, in days.
pub const DEFAULT_FCR_DAYS: i32 = 7;
/// The longest range a report covers, in days (a range is one scan).
pub const MAX_RANGE_DAYS: i64 = 400;
/// The most buckets a series may have.
pub const MAX_BUCKETS: i64 = 10_000;
/// How long after a call's start its callbacks are looked for: calls do
/// not last a day.
const EVENTS_SPAN: &str = "1 day";

/// How a series is bucketed, in the report's time zone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// Local clock hours.
    Hour,
    /// Local days from midnight.
    #[default]
    Day,
    /// ISO weeks, from Monday midnight.
    Week,
    /// One bucket: the whole range.
    None,
}

impl Granularity {
    /// The `date_trunc` field, `None` for no bucketing.
    fn field(self) -> Option<&'static str> {
        match self {
            Granularity::Hour => Some("hour"),
            Granularity::Day => Some("day"),
            Granularity::Week => Some("week"),
            Granularity::None => None,
        }
    }

    fn approx_secs(self) -> i64 {
        match self {
            Granularity::Hour => 3_600,
            Granularity::Day => 86_400,
            Granularity::Week => 7 * 86_400,
            Granularity::None => i64::MAX,
        }
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field().unwrap_or("none"))
    }
}

impl FromStr for Granularity {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "hour" => Ok(Granularity::Hour),
            "day" => Ok(Granularity::Day),
            "week" => Ok(Granularity::Week),
            "none" => Ok(Granularity::None),
            _ => Err(StoreError::Invalid(format!(
                "granularity `{s}`: use hour, day, week or none"
            ))),
        }
    }
}

/// Which calls a report covers and how it buckets them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportQuery {
    /// Calls that started at or after this.
    pub from: DateTime<Utc>,
    /// Calls that started before this (exclusive).
    pub to: DateTime<Utc>,
    /// IANA zone name the buckets are local to (e.g. `Asia/Shanghai`).
    pub tz: String,
    /// The series' buckets.
    pub granularity: Granularity,
    /// Only calls whose last queue is this.
    pub queue: Option<String>,
    /// Only calls of this issue type or one below it (`subscription`
    /// matches `subscription.refund`).
    pub issue_type: Option<String>,
    /// Only calls answered by this agent.
    pub agent: Option<String>,
    /// Only calls through this IVR flow.
    pub flow: Option<String>,
    /// First-contact resolution's window in days.
    pub fcr_days: i32,
}

impl ReportQuery {
    /// A query over `[from, to)` in zone `tz`, by day, no filters, the
    /// default first-contact window.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, tz: impl Into<String>) -> Self {
        Self {
            from,
            to,
            tz: tz.into(),
            granularity: Granularity::Day,
            queue: None,
            issue_type: None,
            agent: None,
            flow: None,
            fcr_days: DEFAULT_FCR_DAYS,
        }
    }

    /// Refuses a query that cannot be meant: an empty or over-long range, an
    /// issue type that is not a dotted name, a window outside 1–90 days,
    /// more than [`MAX_BUCKETS`] buckets. The message is for the user. (The
    /// zone is checked by PostgreSQL, see [`Store::check_time_zone`].)
    pub fn check(&self) -> Result<(), StoreError> {
        if self.from >= self.to {
            return Err(StoreError::Invalid(format!(
                "`from` ({}) must be before `to` ({})",
                self.from.to_rfc3339(),
                self.to.to_rfc3339()
            )));
        }
        let secs = (self.to - self.from).num_seconds();
        if secs > MAX_RANGE_DAYS * 86_400 {
            return Err(StoreError::Invalid(format!(
                "the range is longer than {MAX_RANGE_DAYS} days"
            )));
        }
        if secs / self.granularity.approx_secs() > MAX_BUCKETS {
            return Err(StoreError::Invalid(format!(
                "more than {MAX_BUCKETS} {} buckets; choose a coarser granularity",
                self.granularity
            )));
        }
        if !(1..=90).contains(&self.fcr_days) {
            return Err(StoreError::Invalid(
                "the first-contact window is 1 to 90 days".into(),
            ));
        }
        if let Some(t) = &self.issue_type {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.split('.').all(|seg| {
                    !seg.is_empty()
                        && seg
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                });
            if !ok {
                return Err(StoreError::Invalid(format!(
                    "issue type `{t}` is not a dotted name like `subscription.refund`"
                )));
            }
        }
        if self.tz.is_empty() || self.tz.len() > 64 {
            return Err(StoreError::Invalid(format!(
                "unknown time zone `{}`",
                self.tz
            )));
        }
        Ok(())
    }
}

/// The figures of docs/metrics.md for a set of calls. Counts are exact;
/// a rate or an average is `None` when its denominator is zero. Times in
/// seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Calls that reached the gateway.
    pub offered: i64,
    /// … that the gateway answered.
    pub answered_by_gateway: i64,
    /// … that ended at a node the flow marks self-served.
    pub self_served: i64,
    /// `self_served / answered_by_gateway`.
    pub containment_rate: Option<f64>,
    /// … that were put in a queue.
    pub sent_to_queue: i64,
    /// … that an agent answered.
    pub answered_by_agent: i64,
    /// … that left a queue (caller hung up) before an agent answered.
    pub abandoned_in_queue: i64,
    /// … of those, within [`SHORT_ABANDON_SECS`] of being queued.
    pub short_abandons: i64,
    /// Answered, never queued, caller left before a self-service node.
    pub abandoned_in_ivr: i64,
    /// Answered, never queued, the flow hung up before a self-service node.
    pub ended_in_ivr: i64,
    /// Ended in voicemail.
    pub voicemail: i64,
    /// Callbacks booked by these calls.
    pub callback_requested: i64,
    /// … of which the desk reached the customer.
    pub callback_completed: i64,
    /// … of which every attempt failed.
    pub callback_failed: i64,
    /// Transferred away.
    pub transferred: i64,
    /// Broke (flow error, crash, shutdown).
    pub failed: i64,
    /// Agent-answered within the queue's `service_level_secs` of queueing.
    pub answered_within_sl: i64,
    /// `answered_within_sl / (sent_to_queue - short_abandons)`.
    pub service_level: Option<f64>,
    /// Average speed of answer: mean queue→agent answer time.
    pub asa_secs: Option<f64>,
    /// Mean wait of calls answered or abandoned in queue.
    pub avg_wait_secs: Option<f64>,
    /// Longest such wait.
    pub max_wait_secs: Option<f64>,
    /// Average handle time: talk (hold included) + wrap-up of finished
    /// agent-answered calls.
    pub aht_secs: Option<f64>,
    /// Mean talk time (agent answer → hang-up) of those calls.
    pub avg_talk_secs: Option<f64>,
    /// Mean wrap-up time of those calls.
    pub avg_wrap_up_secs: Option<f64>,
    /// Offers an agent declined.
    pub offers_declined: i64,
    /// Offers nobody took in time.
    pub offers_timed_out: i64,
    /// Self-served, or wrap-up disposition `resolved`.
    pub resolved: i64,
    /// `resolved / (answered_by_agent + self_served)`.
    pub resolution_rate: Option<f64>,
    /// Resolved, and the caller did not call about the same issue type
    /// within the window after.
    pub first_contact_resolved: i64,
    /// `first_contact_resolved / resolved`.
    pub fcr_rate: Option<f64>,
    /// Calls the survey was offered to.
    pub surveys_offered: i64,
    /// Calls with a score.
    pub csat_responses: i64,
    /// `csat_responses / surveys_offered`.
    pub csat_response_rate: Option<f64>,
    /// Mean score, 1–5.
    pub csat_avg: Option<f64>,
    /// Scores of 1.
    pub csat_1: i64,
    /// Scores of 2.
    pub csat_2: i64,
    /// Scores of 3.
    pub csat_3: i64,
    /// Scores of 4.
    pub csat_4: i64,
    /// Scores of 5.
    pub csat_5: i64,
}

fn ratio(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

impl Figures {
    /// The calls-side figures of a row of [`AGG`], offers included
    /// (callbacks are filled in from their own query; the agent table's
    /// offers too, by the offered agent).
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let n = |c: &str| row.try_get::<i64, _>(c);
        let f = |c: &str| row.try_get::<Option<f64>, _>(c);
        let mut x = Figures {
            offered: n("offered")?,
            answered_by_gateway: n("answered_by_gateway")?,
            self_served: n("self_served")?,
            sent_to_queue: n("sent_to_queue")?,
            answered_by_agent: n("answered_by_agent")?,
            abandoned_in_queue: n("abandoned_in_queue")?,
            short_abandons: n("short_abandons")?,
            abandoned_in_ivr: n("abandoned_in_ivr")?,
            ended_in_ivr: n("ended_in_ivr")?,
            voicemail: n("voicemail")?,
            transferred: n("transferred")?,
            failed: n("failed")?,
            answered_within_sl: n("answered_within_sl")?,
            asa_secs: f("asa_secs")?,
            avg_wait_secs: f("avg_wait_secs")?,
            max_wait_secs: f("max_wait_secs")?,
            aht_secs: f("aht_secs")?,
            avg_talk_secs: f("avg_talk_secs")?,
            avg_wrap_up_secs: f("avg_wrap_up_secs")?,
            resolved: n("resolved")?,
            first_contact_resolved: n("first_contact_resolved")?,
            surveys_offered: n("surveys_offered")?,
            csat_responses: n("csat_responses")?,
            csat_avg: f("csat_avg")?,
            csat_1: n("csat_1")?,
            csat_2: n("csat_2")?,
            csat_3: n("csat_3")?,
            csat_4: n("csat_4")?,
            csat_5: n("csat_5")?,
            offers_declined: n("offers_declined")?,
            offers_timed_out: n("offers_timed_out")?,
            ..Figures::default()
        };
        x.fill_rates();
        Ok(x)
    }

    fn zero() -> Self {
        let mut z = Figures::default();
        z.fill_rates();
        z
    }

    /// The rates, from the counts (docs/metrics.md gives each formula).
    fn fill_rates(&mut self) {
        self.containment_rate = ratio(self.self_served, self.answered_by_gateway);
        self.service_level = ratio(
            self.answered_within_sl,
            self.sent_to_queue - self.short_abandons,
        );
        self.resolution_rate = ratio(self.resolved, self.answered_by_agent + self.self_served);
        self.fcr_rate = ratio(self.first_contact_resolved, self.resolved);
        self.csat_response_rate = ratio(self.csat_responses, self.surveys_offered);
    }
}

/// One bucket of a series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// The bucket's start, local time in the report's zone
    /// (`2026-12-01T09:00:00`).
    pub bucket: NaiveDateTime,
    /// The figures of the calls that started in it.
    #[serde(flatten)]
    pub figures: Figures,
}

/// One agent's row of the agent comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentFigures {
    /// The agent's id.
    pub agent: String,
    /// The calls the agent answered (offers: the ones made to the agent).
    #[serde(flatten)]
    pub figures: Figures,
    /// Time on a call or in wrap-up ÷ time signed in and not away, from
    /// `agent_state_changes`; `None` when the agent was not signed in.
    pub occupancy: Option<f64>,
}

/// A node of the funnel.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunnelNode {
    /// The flow's node id.
    pub node: String,
    /// Calls that entered it at least once.
    pub reached: i64,
    /// Calls whose caller gave up while at it (it was their last node).
    pub hung_up: i64,
    /// Calls that reached it and ended self-served (there or further on).
    pub self_served_below: i64,
    /// `hung_up / reached`.
    pub drop_rate: Option<f64>,
}

/// An edge of the funnel: calls that went from one node straight to another.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunnelEdge {
    /// The node left.
    pub from: String,
    /// The node entered next.
    pub to: String,
    /// Calls that took this step (at least once).
    pub calls: i64,
}

/// The IVR funnel of a flow.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Funnel {
    /// Calls of the flow in the range (and issue type).
    pub calls: i64,
    /// Its nodes, most reached first.
    pub nodes: Vec<FunnelNode>,
    /// Its edges, most taken first.
    pub edges: Vec<FunnelEdge>,
    /// The nodes where most callers gave up, worst first (at most 5, only
    /// nodes where someone did).
    pub worst: Vec<FunnelNode>,
}

/// The rollup's additive columns, in `report_rollup`'s order, and whether
/// they combine by `max` (else `sum`).
const ROLLUP_COLUMNS: &[(&str, bool)] = &[
    ("offered", false),
    ("answered_by_gateway", false),
    ("self_served", false),
    ("sent_to_queue", false),
    ("answered_by_agent", false),
    ("abandoned_in_queue", false),
    ("short_abandons", false),
    ("abandoned_in_ivr", false),
    ("ended_in_ivr", false),
    ("voicemail", false),
    ("transferred", false),
    ("failed", false),
    ("answered_within_sl", false),
    ("answer_n", false),
    ("answer_sum", false),
    ("wait_n", false),
    ("wait_sum", false),
    ("wait_max", true),
    ("handled", false),
    ("aht_sum", false),
    ("talk_sum", false),
    ("wrap_sum", false),
    ("resolved", false),
    ("fcr", false),
    ("surveys_offered", false),
    ("csat_n", false),
    ("csat_sum", false),
    ("csat_1", false),
    ("csat_2", false),
    ("csat_3", false),
    ("csat_4", false),
    ("csat_5", false),
    ("offers_declined", false),
    ("offers_timed_out", false),
];

/// One call's part of each rollup column, for a call `c` joined with its
/// queue `qu` (the threshold) and the lateral `x` of [`CALL_FROM`].
/// `{fcr}` is the first-contact window in days. docs/metrics.md has each
/// line as a query of its own.
const CALL_PARTS: &str = "1::int AS offered, \
    (c.answered_at IS NOT NULL)::int AS answered_by_gateway, \
    (c.outcome = 'self_served' IS TRUE)::int AS self_served, \
    (c.queued_at IS NOT NULL)::int AS sent_to_queue, \
    (c.agent_answered_at IS NOT NULL)::int AS answered_by_agent, \
    x.aiq::int AS abandoned_in_queue, \
    (x.aiq AND x.wait < 5 IS TRUE)::int AS short_abandons, \
    (c.outcome = 'abandoned_in_ivr' IS TRUE)::int AS abandoned_in_ivr, \
    (c.outcome = 'ended_in_ivr' IS TRUE)::int AS ended_in_ivr, \
    (c.outcome = 'voicemail' IS TRUE)::int AS voicemail, \
    (c.outcome = 'transferred' IS TRUE)::int AS transferred, \
    (c.outcome = 'failed' IS TRUE)::int AS failed, \
    (x.answer_wait <= coalesce(qu.service_level_secs, 20) IS TRUE)::int AS answered_within_sl, \
    (x.answer_wait IS NOT NULL)::int AS answer_n, \
    coalesce(x.answer_wait, 0) AS answer_sum, \
    (x.wait IS NOT NULL)::int AS wait_n, \
    coalesce(x.wait, 0) AS wait_sum, \
    x.wait AS wait_max, \
    x.handled::int AS handled, \
    CASE WHEN x.handled THEN coalesce(c.talk_seconds, 0) + coalesce(c.wrap_up_seconds, 0) ELSE 0 END AS aht_sum, \
    CASE WHEN x.handled THEN coalesce(c.talk_seconds, 0) ELSE 0 END AS talk_sum, \
    CASE WHEN x.handled THEN coalesce(c.wrap_up_seconds, 0) ELSE 0 END AS wrap_sum, \
    x.resolved::int AS resolved, \
    (x.resolved AND NOT EXISTS (SELECT 1 FROM calls n \
        WHERE n.caller = c.caller AND n.issue_type IS NOT DISTINCT FROM c.issue_type \
          AND n.started_at > c.started_at \
          AND n.started_at <= c.started_at + interval '{fcr} days'))::int AS fcr, \
    (c.survey_offered_at IS NOT NULL)::int AS surveys_offered, \
    (c.csat_score IS NOT NULL)::int AS csat_n, \
    coalesce(c.csat_score, 0)::int AS csat_sum, \
    (c.csat_score = 1 IS TRUE)::int AS csat_1, \
    (c.csat_score = 2 IS TRUE)::int AS csat_2, \
    (c.csat_score = 3 IS TRUE)::int AS csat_3, \
    (c.csat_score = 4 IS TRUE)::int AS csat_4, \
    (c.csat_score = 5 IS TRUE)::int AS csat_5, \
    o.declined AS offers_declined, \
    o.timed_out AS offers_timed_out";

/// What [`CALL_PARTS`] reads besides `calls c`: its queue, the lateral
/// `x`, and `o`, its offers (through the `call_events` primary key: the
/// call's own events, on a page or two).
const CALL_FROM: &str = " LEFT JOIN queues qu ON qu.name = c.queue \
    CROSS JOIN LATERAL (SELECT \
        extract(epoch FROM c.agent_answered_at - c.queued_at)::float8 AS answer_wait, \
        (c.queued_at IS NOT NULL AND c.outcome = 'abandoned') IS TRUE AS aiq, \
        (c.agent_answered_at IS NOT NULL AND c.complete) AS handled, \
        (c.outcome = 'self_served' OR c.disposition = 'resolved') IS TRUE AS resolved, \
        CASE WHEN c.agent_answered_at IS NOT NULL \
               OR (c.queued_at IS NOT NULL AND c.outcome = 'abandoned') \
             THEN extract(epoch FROM coalesce(c.agent_answered_at, c.ended_at) - c.queued_at)::float8 \
        END AS wait) x \
    CROSS JOIN LATERAL (SELECT \
        count(*) FILTER (WHERE e.data->>'outcome' = 'declined')::int AS declined, \
        count(*) FILTER (WHERE e.data->>'outcome' = 'timeout')::int AS timed_out \
      FROM call_events e WHERE e.call_id = c.id AND e.kind = 'offer_outcome') o";

/// Per call `c` of [`OFFER_FROM`], by the agent offered (`k`): the
/// offers they declined and let time out (aggregated: GROUP BY the key).
const OFFER_PARTS: &str = "e.data->>'agent_id' AS k, \
    count(*) FILTER (WHERE e.data->>'outcome' = 'declined') AS declined, \
    count(*) FILTER (WHERE e.data->>'outcome' = 'timeout') AS timed_out";

/// What [`OFFER_PARTS`] reads besides `calls c`: the call's
/// `offer_outcome` events that name an agent (through the `call_events`
/// primary key), and the condition that starts a `WHERE`.
const OFFER_FROM: &str = " JOIN call_events e ON e.call_id = c.id AND e.kind = 'offer_outcome' \
    WHERE e.data->>'agent_id' IS NOT NULL";

/// The figures from rollup-shaped rows `p`.
const AGG: &str = "sum(p.offered)::int8 AS offered, \
    sum(p.answered_by_gateway)::int8 AS answered_by_gateway, \
    sum(p.self_served)::int8 AS self_served, \
    sum(p.sent_to_queue)::int8 AS sent_to_queue, \
    sum(p.answered_by_agent)::int8 AS answered_by_agent, \
    sum(p.abandoned_in_queue)::int8 AS abandoned_in_queue, \
    sum(p.short_abandons)::int8 AS short_abandons, \
    sum(p.abandoned_in_ivr)::int8 AS abandoned_in_ivr, \
    sum(p.ended_in_ivr)::int8 AS ended_in_ivr, \
    sum(p.voicemail)::int8 AS voicemail, \
    sum(p.transferred)::int8 AS transferred, \
    sum(p.failed)::int8 AS failed, \
    sum(p.answered_within_sl)::int8 AS answered_within_sl, \
    (sum(p.answer_sum) / nullif(sum(p.answer_n), 0))::float8 AS asa_secs, \
    (sum(p.wait_sum) / nullif(sum(p.wait_n), 0))::float8 AS avg_wait_secs, \
    max(p.wait_max)::float8 AS max_wait_secs, \
    (sum(p.aht_sum) / nullif(sum(p.handled), 0))::float8 AS aht_secs, \
    (sum(p.talk_sum) / nullif(sum(p.handled), 0))::float8 AS avg_talk_secs, \
    (sum(p.wrap_sum) / nullif(sum(p.handled), 0))::float8 AS avg_wrap_up_secs, \
    sum(p.resolved)::int8 AS resolved, \
    sum(p.fcr)::int8 AS first_contact_resolved, \
    sum(p.surveys_offered)::int8 AS surveys_offered, \
    sum(p.csat_n)::int8 AS csat_responses, \
    (sum(p.csat_sum)::float8 / nullif(sum(p.csat_n), 0))::float8 AS csat_avg, \
    sum(p.csat_1)::int8 AS csat_1, \
    sum(p.csat_2)::int8 AS csat_2, \
    sum(p.csat_3)::int8 AS csat_3, \
    sum(p.csat_4)::int8 AS csat_4, \
    sum(p.csat_5)::int8 AS csat_5, \
    sum(p.offers_declined)::int8 AS offers_declined, \
    sum(p.offers_timed_out)::int8 AS offers_timed_out";

/// Per call of `fc` (`id, slot, flow, issue_type, outcome, ended_by`)
/// and node it entered (`next_node` NULL), or step it took from `node` to
/// `next_node`: 1 reached, whether the caller gave up at the node, whether
/// the call ended self-served. `fp` sums to the funnel (docs/metrics.md).
const FUNNEL_PARTS: &str = "ev AS (SELECT e.call_id, e.node, \
        lag(e.node) OVER (PARTITION BY e.call_id ORDER BY e.seq) AS prev, \
        row_number() OVER (PARTITION BY e.call_id ORDER BY e.seq DESC) AS from_end \
      FROM fc JOIN call_events e ON e.call_id = fc.id \
     WHERE e.kind = 'node_entered' AND e.node IS NOT NULL), \
  fp AS (SELECT fc.slot, fc.flow, fc.issue_type, ev.node, NULL::text AS next_node, 1 AS reached, \
        max(((ev.from_end = 1 AND fc.ended_by IN ('caller', 'timeout') \
              AND fc.outcome IN ('abandoned_in_ivr', 'abandoned')) IS TRUE)::int) AS hung_up, \
        max((fc.outcome = 'self_served' IS TRUE)::int) AS self_served \
      FROM ev JOIN fc ON fc.id = ev.call_id \
     GROUP BY fc.id, fc.slot, fc.flow, fc.issue_type, ev.node \
    UNION ALL \
    SELECT fc.slot, fc.flow, fc.issue_type, ev.prev, ev.node, 1, 0, 0 \
      FROM ev JOIN fc ON fc.id = ev.call_id \
     WHERE ev.prev IS NOT NULL AND ev.prev <> ev.node \
     GROUP BY fc.id, fc.slot, fc.flow, fc.issue_type, ev.prev, ev.node)";

/// Rollup hours rebuilt by each report call before it reads (the rest are
/// read from `calls`, exactly, only slower).
const REBUILD_PER_REPORT: i64 = 48;

/// What a report groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    /// One group: the whole range.
    Total,
    /// Local buckets of this `date_trunc` field.
    Bucket(&'static str),
    /// The agent who answered.
    Agent,
}

/// A group's key value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum KeyValue {
    Total,
    Bucket(NaiveDateTime),
    Agent(String),
}

/// Pushes `<key> AS k, ` for the time expression `ts` and agent expression `agent`.
fn push_key(b: &mut QueryBuilder<'static, Postgres>, key: Key, tz: &str, ts: &str, agent: &str) {
    match key {
        Key::Total => {
            b.push("0 AS k, ");
        }
        Key::Bucket(field) => {
            b.push(format!("date_trunc('{field}', {ts} AT TIME ZONE "))
                .push_bind(tz.to_owned())
                .push(") AS k, ");
        }
        Key::Agent => {
            b.push(format!("{agent} AS k, "));
        }
    }
}

fn key_value(row: &PgRow, key: Key) -> Result<KeyValue, sqlx::Error> {
    Ok(match key {
        Key::Total => KeyValue::Total,
        Key::Bucket(_) => KeyValue::Bucket(row.try_get("k")?),
        Key::Agent => KeyValue::Agent(row.try_get("k")?),
    })
}

/// ` AND …` for each filter of `q`, on the calls (or rollup rows) aliased
/// `t`; `skip_agent` leaves the agent filter out.
fn push_filters(
    b: &mut QueryBuilder<'static, Postgres>,
    q: &ReportQuery,
    t: &str,
    skip_agent: bool,
) {
    if let Some(v) = &q.queue {
        b.push(format!(" AND {t}.queue = ")).push_bind(v.clone());
    }
    if let (Some(v), false) = (&q.agent, skip_agent) {
        b.push(format!(" AND {t}.agent_id = ")).push_bind(v.clone());
    }
    if let Some(v) = &q.flow {
        b.push(format!(" AND {t}.flow = ")).push_bind(v.clone());
    }
    if let Some(v) = &q.issue_type {
        b.push(format!(" AND ({t}.issue_type = "))
            .push_bind(v.clone())
            .push(format!(" OR starts_with({t}.issue_type, "))
            .push_bind(format!("{v}."))
            .push("))");
    }
}

/// The calls-side figures of `q` per `key`: whole clean hours from the
/// rollup when `rollup`, everything else from `calls`, in one statement.
fn figures_query(q: &ReportQuery, key: Key, rollup: bool) -> QueryBuilder<'static, Postgres> {
    let mut b = QueryBuilder::new("WITH ");
    push_ranges(&mut b, q, rollup);
    b.push(", p AS (");
    if rollup {
        b.push("SELECT ");
        push_key(&mut b, key, &q.tz, "r.slot", "r.agent_id");
        let cols: Vec<String> = ROLLUP_COLUMNS
            .iter()
            .map(|(c, _)| format!("r.{c}"))
            .collect();
        b.push(cols.join(", "))
            .push(" FROM report_rollup r WHERE r.slot >= ")
            .push_bind(q.from)
            .push(" AND r.slot + interval '1 hour' <= ")
            .push_bind(q.to)
            .push(" AND NOT EXISTS (SELECT 1 FROM d WHERE d.slot = r.slot)");
        push_filters(&mut b, q, "r", false);
        if key == Key::Agent {
            b.push(" AND r.agent_id IS NOT NULL");
        }
        b.push(" UNION ALL ");
    }
    b.push("SELECT ");
    push_key(&mut b, key, &q.tz, "c.started_at", "c.agent_id");
    b.push(CALL_PARTS.replace("{fcr}", &q.fcr_days.to_string()))
        .push(CALLS_IN_RANGES)
        .push(CALL_FROM)
        .push(" WHERE true");
    push_filters(&mut b, q, "c", false);
    if key == Key::Agent {
        b.push(" AND c.agent_id IS NOT NULL");
    }
    b.push(") SELECT p.k, ")
        .push(AGG)
        .push(" FROM p GROUP BY p.k");
    b
}

/// The offers of `q` by the agent offered (`k`, `declined`, `timed_out`):
/// whole clean hours from `report_offers` when `rollup`, everything else
/// from the calls' events, in one statement.
fn offers_query(q: &ReportQuery, rollup: bool) -> QueryBuilder<'static, Postgres> {
    let mut b = QueryBuilder::new("WITH ");
    push_ranges(&mut b, q, rollup);
    b.push(", p AS (");
    if rollup {
        b.push(
            "SELECT o.agent_id AS k, o.declined, o.timed_out FROM report_offers o WHERE o.slot >= ",
        )
        .push_bind(q.from)
        .push(" AND o.slot + interval '1 hour' <= ")
        .push_bind(q.to)
        .push(" AND NOT EXISTS (SELECT 1 FROM d WHERE d.slot = o.slot)");
        push_filters(&mut b, q, "o", false);
        b.push(" UNION ALL ");
    }
    b.push("SELECT ")
        .push(OFFER_PARTS)
        .push(CALLS_IN_RANGES)
        .push(OFFER_FROM);
    push_filters(&mut b, q, "c", true);
    if let Some(a) = &q.agent {
        b.push(" AND e.data->>'agent_id' = ").push_bind(a.clone());
    }
    b.push(
        " GROUP BY 1) SELECT p.k, sum(p.declined)::int8 AS declined, \
         sum(p.timed_out)::int8 AS timed_out FROM p GROUP BY p.k",
    );
    b
}

/// The calls that started in `ranges`, as `c`: each range read through the
/// `started_at` index. A plain join on the ranges leaves the planner
/// guessing how many calls a range holds; with a filter on a common value
/// (`issue_type=subscription`: 46 % of calls) it then chose to read all of
/// `calls` (~650 ms over a million calls for a one-day range). `OFFSET 0`
/// keeps the subquery from being flattened back into that join.
const CALLS_IN_RANGES: &str = " FROM ranges g CROSS JOIN LATERAL (SELECT * FROM calls c0 \
     WHERE c0.started_at >= g.lo AND c0.started_at < g.hi OFFSET 0) c";

/// Pushes `d AS (…), ranges AS (…)`: the dirty hours of the range, and the
/// time ranges to read from `calls` (with `rollup`: the dirty hours and
/// the partial hours at both ends; without: the whole range).
fn push_ranges(b: &mut QueryBuilder<'static, Postgres>, q: &ReportQuery, rollup: bool) {
    b.push("d AS MATERIALIZED (SELECT slot FROM report_dirty WHERE slot >= date_trunc('hour', ");
    b.push_bind(q.from)
        .push(", 'UTC') AND slot < ")
        .push_bind(q.to)
        .push("), ranges AS MATERIALIZED (");
    if rollup {
        // The dirty hours, and the partial hours at both ends.
        b.push("SELECT greatest(slot, ")
            .push_bind(q.from)
            .push(") AS lo, least(slot + interval '1 hour', ")
            .push_bind(q.to)
            .push(") AS hi FROM d UNION SELECT ")
            .push_bind(q.from)
            .push(", least(date_trunc('hour', ")
            .push_bind(q.from)
            .push(", 'UTC') + interval '1 hour', ")
            .push_bind(q.to)
            .push(") WHERE date_trunc('hour', ")
            .push_bind(q.from)
            .push(", 'UTC') <> ")
            .push_bind(q.from)
            .push(" UNION SELECT greatest(date_trunc('hour', ")
            .push_bind(q.to)
            .push(", 'UTC'), ")
            .push_bind(q.from)
            .push("), ")
            .push_bind(q.to)
            .push(" WHERE date_trunc('hour', ")
            .push_bind(q.to)
            .push(", 'UTC') <> ")
            .push_bind(q.to);
    } else {
        b.push("SELECT ")
            .push_bind(q.from)
            .push("::timestamptz AS lo, ")
            .push_bind(q.to)
            .push("::timestamptz AS hi");
    }
    b.push(")");
}

impl Store {
    /// A read-only transaction with one snapshot for all of a report's
    /// statements, without JIT: PostgreSQL's JIT compiles these wide
    /// aggregates for 1–2 s (their estimated cost is high) to save
    /// milliseconds.
    async fn report_tx(&self) -> Result<sqlx::Transaction<'_, Postgres>, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
        Ok(tx)
    }

    /// Checks a time zone name with PostgreSQL (the zone database the
    /// reports bucket with): `Invalid` for a name it does not know.
    pub async fn check_time_zone(&self, tz: &str) -> Result<(), StoreError> {
        let now = Utc::now();
        self.zone_offsets(tz, now, now).await.map(|_| ())
    }

    /// Midnight starting `date` in zone `tz`, as an instant.
    pub async fn local_midnight(
        &self,
        date: chrono::NaiveDate,
        tz: &str,
    ) -> Result<DateTime<Utc>, StoreError> {
        self.check_time_zone(tz).await?;
        let (t,): (DateTime<Utc>,) = sqlx::query_as("SELECT $1::timestamp AT TIME ZONE $2")
            .bind(date.and_hms_opt(0, 0, 0).unwrap_or_default())
            .bind(tz)
            .fetch_one(self.pool())
            .await?;
        Ok(t)
    }

    /// The last midnight in zone `tz` (the start of "today" there), by the
    /// database's clock; `Invalid` for an unknown zone.
    pub async fn start_of_today(&self, tz: &str) -> Result<DateTime<Utc>, StoreError> {
        self.check_time_zone(tz).await?;
        let (t,): (DateTime<Utc>,) =
            sqlx::query_as("SELECT date_trunc('day', now() AT TIME ZONE $1) AT TIME ZONE $1")
                .bind(tz)
                .fetch_one(self.pool())
                .await?;
        Ok(t)
    }

    /// The zone's UTC offsets at `a` and `b`, in seconds; `Invalid` for an
    /// unknown zone.
    async fn zone_offsets(
        &self,
        tz: &str,
        a: DateTime<Utc>,
        b: DateTime<Utc>,
    ) -> Result<(i64, i64), StoreError> {
        let bad = || StoreError::Invalid(format!("unknown time zone `{tz}`"));
        if tz.is_empty() || tz.len() > 64 {
            return Err(bad());
        }
        match sqlx::query_as(
            "SELECT extract(epoch FROM ($1 AT TIME ZONE $3) - ($1 AT TIME ZONE 'UTC'))::int8, \
                    extract(epoch FROM ($2 AT TIME ZONE $3) - ($2 AT TIME ZONE 'UTC'))::int8",
        )
        .bind(a)
        .bind(b)
        .bind(tz)
        .fetch_one(self.pool())
        .await
        {
            Ok(offsets) => Ok(offsets),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("22023") => Err(bad()),
            Err(e) => Err(e.into()),
        }
    }

    /// Rebuilds up to `limit` dirty rollup hours from `calls` (oldest
    /// first, skipping hours a writer is marking right now); how many it
    /// rebuilt. Reports call it with a small limit; `hotline seed-demo`
    /// until it returns 0.
    pub async fn rebuild_report_rollup(&self, limit: i64) -> Result<u64, StoreError> {
        self.rebuild_rollup_before(limit, None).await
    }

    /// [`Self::rebuild_report_rollup`] of the hours before `before` only.
    async fn rebuild_rollup_before(
        &self,
        limit: i64,
        before: Option<DateTime<Utc>>,
    ) -> Result<u64, StoreError> {
        let cols: Vec<&str> = ROLLUP_COLUMNS.iter().map(|(c, _)| *c).collect();
        let aggs: Vec<String> = ROLLUP_COLUMNS
            .iter()
            .map(|(c, max)| {
                if *max {
                    format!("max({c})")
                } else {
                    format!("sum({c})")
                }
            })
            .collect();
        let sql = format!(
            "WITH d AS (SELECT slot FROM report_dirty WHERE $2::timestamptz IS NULL OR slot < $2 \
                          ORDER BY slot LIMIT $1 FOR UPDATE SKIP LOCKED), \
             gone AS (DELETE FROM report_rollup r USING d WHERE r.slot = d.slot), \
             parts AS (SELECT d.slot, c.flow, c.queue, c.issue_type, c.agent_id, {parts} \
                         FROM d JOIN calls c ON c.started_at >= d.slot \
                                            AND c.started_at < d.slot + interval '1 hour'{from}), \
             fresh AS (INSERT INTO report_rollup (slot, flow, queue, issue_type, agent_id, {cols}) \
                       SELECT slot, flow, queue, issue_type, agent_id, {aggs} FROM parts \
                        GROUP BY slot, flow, queue, issue_type, agent_id), \
             fc AS (SELECT c.id, d.slot, c.flow, c.issue_type, c.outcome, c.ended_by \
                      FROM d JOIN calls c ON c.started_at >= d.slot \
                                         AND c.started_at < d.slot + interval '1 hour' \
                     WHERE c.flow IS NOT NULL), \
             {funnel}, \
             gone_f AS (DELETE FROM report_funnel f USING d WHERE f.slot = d.slot), \
             fresh_f AS (INSERT INTO report_funnel \
                           (slot, flow, issue_type, node, next_node, reached, hung_up, self_served) \
                         SELECT slot, flow, issue_type, node, next_node, \
                                sum(reached), sum(hung_up), sum(self_served) FROM fp \
                          GROUP BY slot, flow, issue_type, node, next_node), \
             gone_o AS (DELETE FROM report_offers o USING d WHERE o.slot = d.slot), \
             fresh_o AS (INSERT INTO report_offers \
                           (slot, flow, queue, issue_type, agent_id, declined, timed_out) \
                         SELECT d.slot, c.flow, c.queue, c.issue_type, {offer_parts} \
                           FROM d JOIN calls c ON c.started_at >= d.slot \
                                              AND c.started_at < d.slot + interval '1 hour'{offer_from} \
                          GROUP BY 1, 2, 3, 4, 5) \
             DELETE FROM report_dirty x USING d WHERE x.slot = d.slot",
            parts = CALL_PARTS.replace("{fcr}", &DEFAULT_FCR_DAYS.to_string()),
            from = CALL_FROM,
            cols = cols.join(", "),
            aggs = aggs.join(", "),
            funnel = FUNNEL_PARTS,
            offer_parts = OFFER_PARTS,
            offer_from = OFFER_FROM,
        );
        let mut tx = self.pool().begin().await?;
        sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
        let done = sqlx::query(&sql)
            .bind(limit)
            .bind(before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Checks `q` and its zone; whether the rollup can serve it (the
    /// default first-contact window, and whole-hour zone offsets when it
    /// buckets by local time).
    async fn prepare(&self, q: &ReportQuery, buckets: bool) -> Result<bool, StoreError> {
        q.check()?;
        let (a, b) = self.zone_offsets(&q.tz, q.from, q.to).await?;
        // Not the hour going on: calls change it every second, and it is
        // as quick to read from `calls` as to rebuild.
        let hour = Utc::now() - chrono::Duration::hours(1);
        self.rebuild_rollup_before(REBUILD_PER_REPORT, Some(hour))
            .await?;
        Ok(q.fcr_days == DEFAULT_FCR_DAYS && (!buckets || (a % 3600 == 0 && b % 3600 == 0)))
    }

    /// The figures per `key`: calls, then callbacks and offers merged in.
    async fn figures_by(
        &self,
        q: &ReportQuery,
        key: Key,
        rollup: bool,
    ) -> Result<BTreeMap<KeyValue, Figures>, StoreError> {
        let mut tx = self.report_tx().await?;
        let mut out = BTreeMap::new();
        for row in figures_query(q, key, rollup)
            .build()
            .fetch_all(&mut *tx)
            .await?
        {
            out.insert(key_value(&row, key)?, Figures::from_row(&row)?);
        }

        // Callbacks booked by the calls, and what became of them.
        let mut b = QueryBuilder::new("SELECT ");
        push_key(&mut b, key, &q.tz, "c.started_at", "c.agent_id");
        b.push(
            "count(*) AS requested, count(*) FILTER (WHERE cb.state = 'done') AS completed, \
                    count(*) FILTER (WHERE cb.state = 'abandoned') AS failed \
               FROM callbacks cb JOIN calls c ON c.id = cb.call_id \
              WHERE cb.created_at >= ",
        )
        .push_bind(q.from)
        .push(" AND cb.created_at < ")
        .push_bind(q.to)
        .push(format!(" + interval '{EVENTS_SPAN}' AND c.started_at >= "))
        .push_bind(q.from)
        .push(" AND c.started_at < ")
        .push_bind(q.to);
        push_filters(&mut b, q, "c", false);
        if key == Key::Agent {
            b.push(" AND c.agent_id IS NOT NULL");
        }
        b.push(" GROUP BY 1");
        for row in b.build().fetch_all(&mut *tx).await? {
            let f = out
                .entry(key_value(&row, key)?)
                .or_insert_with(Figures::zero);
            f.callback_requested = row.try_get("requested")?;
            f.callback_completed = row.try_get("completed")?;
            f.callback_failed = row.try_get("failed")?;
        }

        // Offers: in the rows above (each call's offers, by the groups of
        // its call); the agent table counts them by the agent offered
        // instead (report_offers and the calls' events).
        if key == Key::Agent {
            for f in out.values_mut() {
                f.offers_declined = 0;
                f.offers_timed_out = 0;
            }
            for row in offers_query(q, rollup).build().fetch_all(&mut *tx).await? {
                let f = out
                    .entry(key_value(&row, key)?)
                    .or_insert_with(Figures::zero);
                f.offers_declined = row.try_get("declined")?;
                f.offers_timed_out = row.try_get("timed_out")?;
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// The figures of the calls of `q` (granularity ignored).
    pub async fn report_summary(&self, q: &ReportQuery) -> Result<Figures, StoreError> {
        let rollup = self.prepare(q, false).await?;
        let mut all = self.figures_by(q, Key::Total, rollup).await?;
        Ok(all.remove(&KeyValue::Total).unwrap_or_else(Figures::zero))
    }

    /// The figures per bucket of `q.granularity` in `q.tz`, every bucket
    /// that overlaps the range (empty ones with zero counts), oldest first.
    /// Granularity `none`: one bucket, named by `from` in local time.
    pub async fn report_series(&self, q: &ReportQuery) -> Result<Vec<SeriesPoint>, StoreError> {
        let Some(field) = q.granularity.field() else {
            let figures = self.report_summary(q).await?;
            let (bucket,): (NaiveDateTime,) = sqlx::query_as("SELECT $1 AT TIME ZONE $2")
                .bind(q.from)
                .bind(&q.tz)
                .fetch_one(self.pool())
                .await?;
            return Ok(vec![SeriesPoint { bucket, figures }]);
        };
        let rollup = self.prepare(q, true).await?;
        let mut by = self.figures_by(q, Key::Bucket(field), rollup).await?;
        let buckets: Vec<(NaiveDateTime,)> = sqlx::query_as(&format!(
            "SELECT generate_series(date_trunc('{field}', $1 AT TIME ZONE $3), \
                    ($2 - interval '1 microsecond') AT TIME ZONE $3, interval '1 {field}')"
        ))
        .bind(q.from)
        .bind(q.to)
        .bind(&q.tz)
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<SeriesPoint> = buckets
            .into_iter()
            .map(|(bucket,)| SeriesPoint {
                bucket,
                figures: by
                    .remove(&KeyValue::Bucket(bucket))
                    .unwrap_or_else(Figures::zero),
            })
            .collect();
        // A bucket the series did not list (a local time skipped by a
        // clock change) still has its calls.
        for (k, figures) in by {
            if let KeyValue::Bucket(bucket) = k {
                out.push(SeriesPoint { bucket, figures });
            }
        }
        out.sort_by_key(|p| p.bucket);
        Ok(out)
    }

    /// The agent comparison: per agent, the figures of the calls they
    /// answered, the offers made to them that they declined or let time
    /// out, and (without a queue, issue type or flow filter) their
    /// occupancy over the range. Agents with any of these, by id.
    pub async fn report_agents(&self, q: &ReportQuery) -> Result<Vec<AgentFigures>, StoreError> {
        let rollup = self.prepare(q, false).await?;
        let mut out: BTreeMap<String, AgentFigures> = BTreeMap::new();
        for (k, figures) in self.figures_by(q, Key::Agent, rollup).await? {
            if let KeyValue::Agent(agent) = k {
                out.insert(
                    agent.clone(),
                    AgentFigures {
                        agent,
                        figures,
                        occupancy: None,
                    },
                );
            }
        }
        if q.queue.is_none() && q.issue_type.is_none() && q.flow.is_none() {
            for (agent, occ) in self.occupancy(q).await? {
                out.entry(agent.clone())
                    .or_insert_with(|| AgentFigures {
                        agent,
                        figures: Figures::zero(),
                        occupancy: None,
                    })
                    .occupancy = occ;
            }
        }
        Ok(out.into_values().collect())
    }

    /// Each agent's occupancy over `[from, min(to, now))` from their state
    /// history (docs/metrics.md, "Occupancy").
    async fn occupancy(&self, q: &ReportQuery) -> Result<Vec<(String, Option<f64>)>, StoreError> {
        let mut b = QueryBuilder::new(OCCUPANCY_HEAD);
        b.push_bind(q.from)
            .push(" AND at < ")
            .push_bind(q.to)
            .push(
                " UNION ALL \
                 SELECT a.id, p.state, ",
            )
            .push_bind(q.from)
            .push(
                ", 0 FROM agents a CROSS JOIN LATERAL (\
                   SELECT state FROM agent_state_changes s \
                    WHERE s.agent = a.id AND s.at < ",
            )
            .push_bind(q.from)
            .push(
                " ORDER BY s.at DESC, s.id DESC LIMIT 1) p\
             ), iv AS (\
               SELECT agent, state, at AS s, \
                      coalesce(lead(at) OVER (PARTITION BY agent ORDER BY at, id), least(",
            )
            .push_bind(q.to)
            .push(", now())) AS e FROM ch) \
             SELECT agent, (extract(epoch FROM sum(e - s) FILTER (WHERE state IN ('on_call', 'wrap_up'))) \
                    / nullif(extract(epoch FROM sum(e - s) FILTER (WHERE state IN ('available', 'ringing', 'on_call', 'wrap_up'))), 0))::float8 AS occupancy \
               FROM iv WHERE e > s");
        if let Some(a) = &q.agent {
            b.push(" AND agent = ").push_bind(a.clone());
        }
        b.push(" GROUP BY agent");
        let mut tx = self.report_tx().await?;
        let rows = b.build().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| Ok((r.try_get("agent")?, r.try_get("occupancy")?)))
            .collect()
    }

    /// The IVR funnel of flow `q.flow` (required) over the calls of `q`
    /// (its queue and agent filters are ignored: the funnel is the IVR's).
    pub async fn report_funnel(&self, q: &ReportQuery) -> Result<Funnel, StoreError> {
        let Some(flow) = q.flow.clone() else {
            return Err(StoreError::Invalid("the funnel needs a `flow`".into()));
        };
        let fq = ReportQuery {
            queue: None,
            agent: None,
            flow: Some(flow),
            ..q.clone()
        };
        let rollup = self.prepare(&fq, false).await?;
        let calls = self
            .figures_by(&fq, Key::Total, rollup)
            .await?
            .remove(&KeyValue::Total)
            .map_or(0, |f| f.offered);
        let mut b = QueryBuilder::new("WITH ");
        push_ranges(&mut b, &fq, rollup);
        b.push(
            ", fc AS (SELECT c.id, NULL::timestamptz AS slot, c.flow, c.issue_type, c.outcome, \
                     c.ended_by",
        )
        .push(CALLS_IN_RANGES)
        .push(" WHERE true");
        push_filters(&mut b, &fq, "c", false);
        b.push("), ").push(FUNNEL_PARTS).push(
            ", allp AS (SELECT fp.node, fp.next_node, fp.reached, fp.hung_up, fp.self_served FROM fp",
        );
        if rollup {
            b.push(
                " UNION ALL SELECT r.node, r.next_node, r.reached, r.hung_up, r.self_served \
                   FROM report_funnel r WHERE r.slot >= ",
            )
            .push_bind(fq.from)
            .push(" AND r.slot + interval '1 hour' <= ")
            .push_bind(fq.to)
            .push(" AND NOT EXISTS (SELECT 1 FROM d WHERE d.slot = r.slot)");
            push_filters(&mut b, &fq, "r", true);
        }
        b.push(
            ") SELECT CASE WHEN next_node IS NULL THEN 'n' ELSE 'e' END AS what, node AS a, \
                      next_node AS b, sum(reached)::int8 AS reached, sum(hung_up)::int8 AS hung_up, \
                      sum(self_served)::int8 AS self_served \
                 FROM allp GROUP BY node, next_node",
        );
        let mut out = Funnel {
            calls,
            ..Funnel::default()
        };
        let mut tx = self.report_tx().await?;
        let rows = b.build().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        for row in rows {
            let what: String = row.try_get("what")?;
            let reached: i64 = row.try_get("reached")?;
            match what.as_str() {
                "n" => {
                    let hung_up: i64 = row.try_get("hung_up")?;
                    out.nodes.push(FunnelNode {
                        node: row.try_get("a")?,
                        reached,
                        hung_up,
                        self_served_below: row.try_get("self_served")?,
                        drop_rate: ratio(hung_up, reached),
                    });
                }
                _ => out.edges.push(FunnelEdge {
                    from: row.try_get("a")?,
                    to: row.try_get("b")?,
                    calls: reached,
                }),
            }
        }
        out.nodes
            .sort_by(|a, b| b.reached.cmp(&a.reached).then(a.node.cmp(&b.node)));
        out.edges.sort_by(|a, b| {
            b.calls
                .cmp(&a.calls)
                .then(a.from.cmp(&b.from))
                .then(a.to.cmp(&b.to))
        });
        let mut worst: Vec<FunnelNode> = out
            .nodes
            .iter()
            .filter(|n| n.hung_up > 0)
            .cloned()
            .collect();
        worst.sort_by(|a, b| {
            b.hung_up
                .cmp(&a.hung_up)
                .then(
                    b.drop_rate
                        .partial_cmp(&a.drop_rate)
                        .unwrap_or(std::cmp::Ordering::Equal),
                )
                .then(a.node.cmp(&b.node))
        });
        worst.truncate(5);
        out.worst = worst;
        Ok(out)
    }
}

/// Occupancy's state intervals: the changes in the range, plus each
/// agent's state in force at `from`.
const OCCUPANCY_HEAD: &str = "WITH ch AS (\
    SELECT agent, state, at, id FROM agent_state_changes WHERE at >= ";
