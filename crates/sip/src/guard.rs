//! The SIP edge policy: who may talk to the gateway and how much.
//!
//! A sans-IO state machine consulted by the [`Endpoint`](crate::Endpoint)
//! for every datagram or framed TCP message *before* any transaction, call
//! or event exists, so a refused message costs a hash lookup and a counter
//! increment: no RTP port, no call actor, no database row. Time is passed
//! in; [`Guard::poll_timeout`] says when it next wants
//! [`Guard::handle_timeout`] (housekeeping).
//!
//! What it decides, in order:
//!
//! 1. [`Guard::admit_message`] — every message: sources on a trunk
//!    allow-list pass; a banned source is dropped; every other source pays
//!    one token of its bucket (`rate` per second, `burst` at most), an empty
//!    bucket drops the message and counts a strike. Header sections over
//!    `max_header_bytes` or with more than `max_headers` lines are dropped.
//! 2. [`Guard::admit_request`] — a request outside any dialog of ours: a
//!    known scanner User-Agent is dropped (and its source banned at once);
//!    with trunks configured, a source on no trunk is refused (403, or
//!    nothing with [`RefuseMode::Drop`]) and earns a strike.
//! 3. [`Guard::admit_call`] — an initial INVITE about to become a call:
//!    at most `max_calls` in total, `max_calls_per_source` and
//!    `max_unacked_per_source` (calls not yet confirmed by an ACK) per
//!    source; beyond them 503 with Retry-After. Trunk addresses are exempt
//!    from the per-source limits (and from the rate limit and bans).
//!
//! Between steps 2 and 3, [`Guard::authenticate`] asks for Digest
//! credentials (RFC 3261 §22, RFC 8760; see [`Authenticator`]) of an
//! initial INVITE from a trunk that has them (`trunk_auth`), and of an
//! initial INVITE or OPTIONS from a source on no IP trunk when some
//! credentials belong to no IP trunk (a PBX at a dynamic address): 401
//! with a challenge, 403 (and a strike) for wrong credentials or a replay.
//! A source authenticated this way is still an ordinary source for the
//! rate limit, bans and per-source caps: only its request passes.
//!
//! `ban_after` strikes within `ban_window` ban the source for `ban_for`
//! (like fail2ban, in process). Every decision increments a counter of
//! [`EdgeCounters`], shared with whoever reports them.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tracing::{debug, info, warn};

use crate::digest::{Authenticator, DigestConfig, DigestVerdict, TrunkCredentials};

/// A named set of addresses allowed to send calls (a carrier trunk, a PBX).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trunk {
    /// Shown in logs.
    pub name: String,
    /// The peer's addresses (a bare address is a /32 or /128).
    pub nets: Vec<IpNet>,
}

/// Why a `--trunk` value is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("trunk {0:?}: {1}")]
pub struct TrunkParseError(String, String);

impl FromStr for Trunk {
    type Err = TrunkParseError;

    /// `NAME=CIDR[,CIDR…]`, e.g. `carrier=203.0.113.0/24,2001:db8::1`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| TrunkParseError(s.to_string(), why.to_string());
        let (name, list) = s
            .split_once('=')
            .ok_or_else(|| err("expected NAME=CIDR[,CIDR...]"))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(err("the name must be letters, digits, '-', '_' or '.'"));
        }
        let mut nets = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = match part.parse::<IpNet>() {
                Ok(n) => n.trunc(),
                Err(_) => match part.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => return Err(err(&format!("{part:?} is not an IP address or CIDR"))),
                },
            };
            nets.push(net);
        }
        if nets.is_empty() {
            return Err(err("no addresses"));
        }
        Ok(Trunk {
            name: name.to_string(),
            nets,
        })
    }
}

impl fmt::Display for Trunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=", self.name)?;
        for (i, n) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

/// What a source on no trunk gets when trunks are configured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RefuseMode {
    /// 403 Forbidden (rate-limited like everything else).
    #[default]
    Reply,
    /// Nothing at all: the gateway looks absent.
    Drop,
}

impl FromStr for RefuseMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "reply" | "403" => Ok(RefuseMode::Reply),
            "drop" => Ok(RefuseMode::Drop),
            other => Err(format!("{other:?}: expected reply or drop")),
        }
    }
}

/// User-Agent substrings (case-insensitive) of well-known SIP scanners.
pub const DEFAULT_SCANNER_USER_AGENTS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "vaxsipuseragent",
    "sip-scan",
    "sipsscan",
    "sundayddr",
    "iwar",
    "sivus",
    "smap",
    "pplsip",
];

/// Settings of the [`Guard`]. A zero number means "no limit".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardConfig {
    /// Allowed peers; empty: anyone may call (open mode).
    pub trunks: Vec<Trunk>,
    /// What sources on no trunk get when `trunks` is not empty.
    pub refuse_unknown: RefuseMode,
    /// Messages per second per source (trunks exempt).
    pub rate: u32,
    /// Bucket size: messages a source may send at once.
    pub burst: u32,
    /// Strikes within `ban_window` that ban a source.
    pub ban_after: u32,
    /// How long a strike counts towards `ban_after`.
    pub ban_window: Duration,
    /// How long a banned source is dropped; zero turns banning off.
    pub ban_for: Duration,
    /// Concurrent calls in total (inbound and outbound).
    pub max_calls: usize,
    /// Concurrent inbound calls per source (trunks exempt).
    pub max_calls_per_source: usize,
    /// Inbound calls per source not yet confirmed by an ACK (trunks exempt).
    pub max_unacked_per_source: usize,
    /// Open TCP connections per source (trunks exempt).
    pub max_tcp_per_source: usize,
    /// Size of a message's header section (start line included), bytes.
    pub max_header_bytes: usize,
    /// Lines in a message's header section (start line included).
    pub max_headers: usize,
    /// Lower-case User-Agent substrings whose requests are dropped.
    pub scanner_user_agents: Vec<String>,
    /// Sources tracked at once; beyond, new unknown sources are dropped.
    pub max_sources: usize,
    /// Digest credentials per trunk name: a trunk of `trunks` with this
    /// name must also authenticate its INVITEs; credentials of a name on
    /// no IP trunk let any address authenticate as that trunk.
    pub trunk_auth: Vec<TrunkCredentials>,
    /// Realm, algorithms, nonce lifetime of the Digest challenges.
    pub digest: DigestConfig,
    /// Names of `trunks` whose calls must be SDES-SRTP (an `RTP/AVP` offer
    /// from their addresses gets 488, as with a global `require_srtp`).
    pub srtp_trunks: Vec<String>,
}

impl Default for GuardConfig {
    /// The gateway's defaults: generous enough for a carrier trunk at 100+
    /// calls per second even when it is not declared as a trunk.
    fn default() -> Self {
        GuardConfig {
            trunks: Vec::new(),
            refuse_unknown: RefuseMode::Reply,
            rate: 1000,
            burst: 2000,
            ban_after: 50,
            ban_window: Duration::from_secs(60),
            ban_for: Duration::from_secs(600),
            max_calls: 0,
            max_calls_per_source: 0,
            max_unacked_per_source: 200,
            max_tcp_per_source: 64,
            max_header_bytes: 16 * 1024,
            max_headers: 128,
            scanner_user_agents: DEFAULT_SCANNER_USER_AGENTS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            max_sources: 65_536,
            trunk_auth: Vec::new(),
            digest: DigestConfig::default(),
            srtp_trunks: Vec::new(),
        }
    }
}

impl GuardConfig {
    /// No policy at all: every source passes, nothing is limited.
    pub fn off() -> Self {
        GuardConfig {
            trunks: Vec::new(),
            refuse_unknown: RefuseMode::Reply,
            rate: 0,
            burst: 0,
            ban_after: 0,
            ban_window: Duration::from_secs(60),
            ban_for: Duration::ZERO,
            max_calls: 0,
            max_calls_per_source: 0,
            max_unacked_per_source: 0,
            max_tcp_per_source: 0,
            max_header_bytes: 0,
            max_headers: 0,
            scanner_user_agents: Vec::new(),
            max_sources: 0,
            trunk_auth: Vec::new(),
            digest: DigestConfig::default(),
            srtp_trunks: Vec::new(),
        }
    }

    /// Credentials that belong to no IP trunk: any address may use them.
    fn address_free_credentials(&self) -> impl Iterator<Item = &TrunkCredentials> {
        self.trunk_auth
            .iter()
            .filter(|c| !self.trunks.iter().any(|t| t.name == c.trunk))
    }

    /// The trunk `ip` belongs to, if any.
    pub fn trunk_of(&self, ip: IpAddr) -> Option<&Trunk> {
        let ip = ip.to_canonical();
        self.trunks
            .iter()
            .find(|t| t.nets.iter().any(|n| n.contains(&ip)))
    }

    /// Whether calls from `ip` must be SRTP: it is on a trunk of `srtp_trunks`.
    pub fn requires_srtp(&self, ip: IpAddr) -> bool {
        !self.srtp_trunks.is_empty()
            && self
                .trunk_of(ip)
                .is_some_and(|t| self.srtp_trunks.contains(&t.name))
    }
}

/// Counters of what the edge refused (and a few gauges), shared with the
/// reporting side. Updated with relaxed atomics: cheap, eventually exact.
#[derive(Debug, Default)]
pub struct EdgeCounters {
    messages: AtomicU64,
    from_trunks: AtomicU64,
    refused_unknown: AtomicU64,
    dropped_scanner: AtomicU64,
    dropped_banned: AtomicU64,
    rate_limited: AtomicU64,
    bans: AtomicU64,
    banned_now: AtomicU64,
    dropped_oversized: AtomicU64,
    dropped_sources_full: AtomicU64,
    refused_total_cap: AtomicU64,
    refused_source_cap: AtomicU64,
    refused_unacked_cap: AtomicU64,
    refused_tcp: AtomicU64,
    bad_requests: AtomicU64,
    method_not_allowed: AtomicU64,
    not_implemented: AtomicU64,
    dropped_unusable: AtomicU64,
    auth_challenged: AtomicU64,
    auth_failed: AtomicU64,
    auth_passed: AtomicU64,
}

/// A snapshot of [`EdgeCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EdgeStats {
    /// Messages seen (keep-alives excluded).
    pub messages: u64,
    /// Of which from trunk addresses.
    pub from_trunks: u64,
    /// Requests from sources on no trunk, refused (403 or dropped).
    pub refused_unknown: u64,
    /// Requests dropped for a scanner User-Agent.
    pub dropped_scanner: u64,
    /// Messages dropped because their source was banned.
    pub dropped_banned: u64,
    /// Messages dropped by the per-source rate limit.
    pub rate_limited: u64,
    /// Bans imposed.
    pub bans: u64,
    /// Sources banned right now.
    pub banned_now: u64,
    /// Messages dropped for too large or too many headers.
    pub dropped_oversized: u64,
    /// Messages dropped because the source table was full.
    pub dropped_sources_full: u64,
    /// INVITEs refused with 503: total call cap.
    pub refused_total_cap: u64,
    /// INVITEs refused with 503: per-source call cap.
    pub refused_source_cap: u64,
    /// INVITEs refused with 503: per-source cap of un-ACKed calls.
    pub refused_unacked_cap: u64,
    /// TCP connections refused (per-source cap).
    pub refused_tcp: u64,
    /// Malformed requests answered 400 (or another 4xx/5xx of the parser).
    pub bad_requests: u64,
    /// Requests answered 405 Method Not Allowed.
    pub method_not_allowed: u64,
    /// Requests answered 501 Not Implemented.
    pub not_implemented: u64,
    /// Messages nobody could be answered for (no Via, junk, bad ACKs).
    pub dropped_unusable: u64,
    /// Requests answered 401 with a Digest challenge (stale ones included).
    pub auth_challenged: u64,
    /// Requests refused 403 for wrong credentials or a replayed nonce-count.
    pub auth_failed: u64,
    /// Requests whose Digest credentials were right.
    pub auth_passed: u64,
}

impl EdgeStats {
    /// (name, value) of every counter, for reports.
    pub fn fields(&self) -> [(&'static str, u64); 21] {
        [
            ("messages", self.messages),
            ("from_trunks", self.from_trunks),
            ("refused_unknown", self.refused_unknown),
            ("dropped_scanner", self.dropped_scanner),
            ("dropped_banned", self.dropped_banned),
            ("rate_limited", self.rate_limited),
            ("bans", self.bans),
            ("banned_now", self.banned_now),
            ("dropped_oversized", self.dropped_oversized),
            ("dropped_sources_full", self.dropped_sources_full),
            ("refused_total_cap", self.refused_total_cap),
            ("refused_source_cap", self.refused_source_cap),
            ("refused_unacked_cap", self.refused_unacked_cap),
            ("refused_tcp", self.refused_tcp),
            ("bad_requests", self.bad_requests),
            ("method_not_allowed", self.method_not_allowed),
            ("not_implemented", self.not_implemented),
            ("dropped_unusable", self.dropped_unusable),
            ("auth_challenged", self.auth_challenged),
            ("auth_failed", self.auth_failed),
            ("auth_passed", self.auth_passed),
        ]
    }

    /// Everything refused or dropped (gauges and `messages` excluded).
    fn refusals(&self) -> u64 {
        self.refused_unknown
            + self.dropped_scanner
            + self.dropped_banned
            + self.rate_limited
            + self.dropped_oversized
            + self.dropped_sources_full
            + self.refused_total_cap
            + self.refused_source_cap
            + self.refused_unacked_cap
            + self.refused_tcp
            + self.auth_failed
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl EdgeCounters {
    /// Reads every counter.
    pub fn snapshot(&self) -> EdgeStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EdgeStats {
            messages: g(&self.messages),
            from_trunks: g(&self.from_trunks),
            refused_unknown: g(&self.refused_unknown),
            dropped_scanner: g(&self.dropped_scanner),
            dropped_banned: g(&self.dropped_banned),
            rate_limited: g(&self.rate_limited),
            bans: g(&self.bans),
            banned_now: g(&self.banned_now),
            dropped_oversized: g(&self.dropped_oversized),
            dropped_sources_full: g(&self.dropped_sources_full),
            refused_total_cap: g(&self.refused_total_cap),
            refused_source_cap: g(&self.refused_source_cap),
            refused_unacked_cap: g(&self.refused_unacked_cap),
            refused_tcp: g(&self.refused_tcp),
            bad_requests: g(&self.bad_requests),
            method_not_allowed: g(&self.method_not_allowed),
            not_implemented: g(&self.not_implemented),
            dropped_unusable: g(&self.dropped_unusable),
            auth_challenged: g(&self.auth_challenged),
            auth_failed: g(&self.auth_failed),
            auth_passed: g(&self.auth_passed),
        }
    }

    /// A request answered with an error by the parser (400, 405, 501, ...).
    pub(crate) fn count_bad_request(&self, code: u16) {
        match code {
            405 => bump(&self.method_not_allowed),
            501 => bump(&self.not_implemented),
            _ => bump(&self.bad_requests),
        }
    }

    pub(crate) fn count_unusable(&self) {
        bump(&self.dropped_unusable);
    }

    pub(crate) fn count_tcp_refused(&self) {
        bump(&self.refused_tcp);
    }

    /// A banned source's connection, closed at accept or at its next message.
    pub(crate) fn count_banned_drop(&self) {
        bump(&self.dropped_banned);
    }
}

/// The decision on a request outside any dialog ([`Guard::admit_request`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestVerdict {
    /// Go on.
    Pass,
    /// Answer 403 Forbidden (statelessly), nothing else.
    Forbid,
    /// No answer.
    Drop,
}

/// A request whose credentials did not pass ([`Guard::authenticate`]):
/// answered statelessly (RFC 3261 §8.2.7) with `code`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthRefusal {
    /// 401 (challenge) or 403 (wrong credentials, replay).
    pub code: u16,
    /// Reason phrase.
    pub reason: &'static str,
    /// The WWW-Authenticate headers of a 401.
    pub headers: Vec<(&'static str, String)>,
    /// The To tag: the same for a retransmission of the request.
    pub to_tag: String,
}

/// An initial INVITE refused by a cap ([`Guard::admit_call`]): 503.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallRefusal {
    /// Reason phrase of the 503.
    pub reason: &'static str,
    /// Seconds for Retry-After.
    pub retry_after: u32,
}

/// The banned sources and until when, shared with the shell's TCP and TLS
/// listeners: a banned source's new connections are closed at accept and
/// its open ones at their next message, as its datagrams are dropped.
#[derive(Debug, Default)]
pub struct BanList(std::sync::RwLock<HashMap<IpAddr, Instant>>);

impl BanList {
    /// Whether `ip` is banned at `now`.
    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        let ip = ip.to_canonical();
        self.0
            .read()
            .map(|m| m.get(&ip).is_some_and(|until| now < *until))
            .unwrap_or(false)
    }

    fn set(&self, ip: IpAddr, until: Instant) {
        if let Ok(mut m) = self.0.write() {
            m.insert(ip, until);
        }
    }

    fn remove(&self, ip: IpAddr) {
        if let Ok(mut m) = self.0.write() {
            m.remove(&ip);
        }
    }
}

/// A source the guard drops right now (`GET /api/edge/bans`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    /// The banned address.
    pub ip: IpAddr,
    /// Seconds until the ban lifts by itself (rounded up).
    pub remaining_secs: u64,
}

/// Per-source state.
#[derive(Debug)]
struct Source {
    tokens: f64,
    refilled: Instant,
    strikes: u32,
    window_start: Instant,
    banned_until: Option<Instant>,
    /// Inbound calls announced and not ended.
    calls: usize,
    /// Of those, not yet confirmed by an ACK.
    unacked: usize,
}

impl Source {
    fn new(now: Instant, burst: u32) -> Self {
        Source {
            tokens: f64::from(burst),
            refilled: now,
            strikes: 0,
            window_start: now,
            banned_until: None,
            calls: 0,
            unacked: 0,
        }
    }
}

/// At most this many log lines per window for refusals and bad messages.
const LOG_BUDGET: u32 = 20;
const LOG_WINDOW: Duration = Duration::from_secs(10);
/// How often idle sources are forgotten and expired bans lifted.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// How often a summary of refusals is logged (when there were any).
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Lets a bounded number of log lines through per window, so a flood costs
/// counters and not a flooded log.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    window_start: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl LogLimiter {
    fn new() -> Self {
        LogLimiter {
            window_start: None,
            used: 0,
            suppressed: 0,
        }
    }

    /// `Some(lines suppressed since the last one)` when a line may be logged.
    pub(crate) fn allow(&mut self, now: Instant) -> Option<u64> {
        let fresh = self
            .window_start
            .is_none_or(|s| now.saturating_duration_since(s) >= LOG_WINDOW);
        if fresh {
            self.window_start = Some(now);
            self.used = 0;
        }
        if self.used < LOG_BUDGET {
            self.used += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

/// The edge policy state machine (see the module documentation).
#[derive(Debug)]
pub struct Guard {
    cfg: GuardConfig,
    /// Digest authentication; `None` without credentials.
    auth: Option<Authenticator>,
    sources: HashMap<IpAddr, Source>,
    counters: Arc<EdgeCounters>,
    bans: Arc<BanList>,
    log: LogLimiter,
    next_sweep: Option<Instant>,
    last_summary: Option<(Instant, EdgeStats)>,
}

impl Guard {
    /// A guard with no sources known yet and fresh counters.
    pub fn new(cfg: GuardConfig) -> Self {
        let auth = (!cfg.trunk_auth.is_empty()).then(|| {
            let mut key = [0u8; 32];
            // At start-up, never on the network path: without the OS's
            // random generator no nonce could be trusted.
            #[allow(clippy::expect_used)]
            getrandom::fill(&mut key).expect("the OS random generator for the Digest nonce key");
            Authenticator::new(cfg.digest.clone(), key)
        });
        Guard {
            cfg,
            auth,
            sources: HashMap::new(),
            counters: Arc::new(EdgeCounters::default()),
            bans: Arc::new(BanList::default()),
            log: LogLimiter::new(),
            next_sweep: None,
            last_summary: None,
        }
    }

    /// The settings it was made with.
    pub fn config(&self) -> &GuardConfig {
        &self.cfg
    }

    /// The counters, to share with a reporter.
    pub fn counters(&self) -> Arc<EdgeCounters> {
        self.counters.clone()
    }

    /// The banned sources, to share with the stream listeners.
    pub fn ban_list(&self) -> Arc<BanList> {
        self.bans.clone()
    }

    /// Whether the gateway takes calls from anyone (no trunk and no
    /// credentials configured).
    pub fn is_open(&self) -> bool {
        self.cfg.trunks.is_empty() && self.cfg.trunk_auth.is_empty()
    }

    /// Whether `ip` is on a trunk (always false in open mode).
    pub fn is_trunk(&self, ip: IpAddr) -> bool {
        self.cfg.trunk_of(ip).is_some()
    }

    /// Whether `ip` may place calls at all (a trunk, or open mode).
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        self.is_open() || self.is_trunk(ip)
    }

    /// A budget for one log line about bad input (see [`LogLimiter`]).
    pub(crate) fn log_allowed(&mut self, now: Instant) -> Option<u64> {
        self.log.allow(now)
    }

    pub(crate) fn counters_ref(&self) -> &EdgeCounters {
        &self.counters
    }

    /// The source's entry, created if there is room. `None`: table full.
    fn source(&mut self, now: Instant, ip: IpAddr) -> Option<&mut Source> {
        let max = self.cfg.max_sources;
        if max > 0 && self.sources.len() >= max && !self.sources.contains_key(&ip) {
            self.sweep(now);
            if self.sources.len() >= max {
                return None;
            }
        }
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + SWEEP_EVERY);
        }
        let burst = self.cfg.burst;
        Some(
            self.sources
                .entry(ip)
                .or_insert_with(|| Source::new(now, burst)),
        )
    }

    /// The sources banned at `now`, most recently banned first (the
    /// longest remaining ban first).
    pub fn bans(&self, now: Instant) -> Vec<Ban> {
        let mut bans: Vec<Ban> = self
            .sources
            .iter()
            .filter_map(|(ip, s)| {
                let left = s.banned_until?.checked_duration_since(now)?;
                (!left.is_zero()).then(|| Ban {
                    ip: *ip,
                    remaining_secs: left.as_secs() + u64::from(left.subsec_nanos() > 0),
                })
            })
            .collect();
        bans.sort_by(|a, b| {
            b.remaining_secs
                .cmp(&a.remaining_secs)
                .then(a.ip.cmp(&b.ip))
        });
        bans
    }

    /// Bans `ip` for `left` from `now` (a ban saved before a restart);
    /// an address already banned for longer keeps its ban. False (nothing
    /// done) for a zero `left`, a trunk's address (a peer made a trunk
    /// since it was banned), or when this policy bans nobody.
    pub fn restore_ban(&mut self, now: Instant, ip: IpAddr, left: Duration) -> bool {
        let ip = ip.to_canonical();
        if left.is_zero()
            || self.is_trunk(ip)
            || self.cfg.ban_after == 0
            || self.cfg.ban_for.is_zero()
        {
            return false;
        }
        let until = now + left;
        let burst = self.cfg.burst;
        let src = self
            .sources
            .entry(ip)
            .or_insert_with(|| Source::new(now, burst));
        match src.banned_until {
            Some(t) if t >= until => return true,
            // Counted in `banned_now` until it is lifted, even if expired.
            Some(_) => {}
            None => bump(&self.counters.banned_now),
        }
        src.banned_until = Some(until);
        self.bans.set(ip, until);
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + SWEEP_EVERY);
        }
        true
    }

    /// Lifts the ban on `ip` now, with a fresh strike count (an operator's
    /// decision: `DELETE /api/edge/bans/{ip}`). False when it was not
    /// banned.
    pub fn unban(&mut self, now: Instant, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let Some(src) = self.sources.get_mut(&ip) else {
            return false;
        };
        if src.banned_until.is_none_or(|until| now >= until) {
            return false;
        }
        src.banned_until = None;
        src.strikes = 0;
        src.window_start = now;
        self.bans.remove(ip);
        self.counters.banned_now.fetch_sub(1, Ordering::Relaxed);
        info!(%ip, "SIP source ban lifted by an operator");
        true
    }

    /// Adds strikes to a source; bans it when they reach `ban_after`.
    fn strike(&mut self, now: Instant, ip: IpAddr, n: u32) {
        let (ban_after, window, ban_for) =
            (self.cfg.ban_after, self.cfg.ban_window, self.cfg.ban_for);
        if ban_after == 0 || ban_for.is_zero() {
            return;
        }
        let Some(src) = self.source(now, ip) else {
            return;
        };
        if now.saturating_duration_since(src.window_start) >= window {
            src.window_start = now;
            src.strikes = 0;
        }
        src.strikes = src.strikes.saturating_add(n);
        if src.strikes >= ban_after && src.banned_until.is_none() {
            src.banned_until = Some(now + ban_for);
            self.bans.set(ip, now + ban_for);
            bump(&self.counters.bans);
            bump(&self.counters.banned_now);
            if let Some(suppressed) = self.log.allow(now) {
                warn!(%ip, ban_secs = ban_for.as_secs(), suppressed, "SIP source banned");
            }
        }
    }

    /// Step 1, for every message: trunk, ban, rate limit and header limits.
    /// `head` gives the size and line count of the header section (start
    /// line included); it runs only for a source that passed the cheaper
    /// checks, so a banned source costs a hash lookup. False: drop the
    /// message without a word.
    pub fn admit_message(
        &mut self,
        now: Instant,
        ip: IpAddr,
        head: impl FnOnce() -> (usize, usize),
    ) -> bool {
        let ip = ip.to_canonical();
        bump(&self.counters.messages);
        if self.is_trunk(ip) {
            bump(&self.counters.from_trunks);
            return self.head_fits(now, ip, head);
        }
        let (rate, burst) = (self.cfg.rate, self.cfg.burst);
        if rate > 0 || self.cfg.ban_after > 0 {
            let Some(src) = self.source(now, ip) else {
                bump(&self.counters.dropped_sources_full);
                return false;
            };
            let mut lifted = false;
            if let Some(until) = src.banned_until {
                if now < until {
                    bump(&self.counters.dropped_banned);
                    return false;
                }
                src.banned_until = None;
                src.strikes = 0;
                src.window_start = now;
                lifted = true;
            }
            let mut limited = false;
            if rate > 0 {
                let elapsed = now.saturating_duration_since(src.refilled).as_secs_f64();
                src.refilled = now;
                src.tokens = (src.tokens + elapsed * f64::from(rate)).min(f64::from(burst.max(1)));
                if src.tokens >= 1.0 {
                    src.tokens -= 1.0;
                } else {
                    limited = true;
                }
            }
            if lifted {
                self.bans.remove(ip);
                self.counters.banned_now.fetch_sub(1, Ordering::Relaxed);
                info!(%ip, "SIP source ban lifted");
            }
            if limited {
                bump(&self.counters.rate_limited);
                self.strike(now, ip, 1);
                return false;
            }
        }
        self.head_fits(now, ip, head)
    }

    fn head_fits(
        &mut self,
        now: Instant,
        ip: IpAddr,
        head: impl FnOnce() -> (usize, usize),
    ) -> bool {
        let (max_bytes, max_lines) = (self.cfg.max_header_bytes, self.cfg.max_headers);
        if max_bytes == 0 && max_lines == 0 {
            return true;
        }
        let (head_len, lines) = head();
        if (max_bytes > 0 && head_len > max_bytes) || (max_lines > 0 && lines > max_lines) {
            self.oversized(now, ip, head_len, lines);
            return false;
        }
        true
    }

    fn oversized(&mut self, now: Instant, ip: IpAddr, head_len: usize, lines: usize) {
        bump(&self.counters.dropped_oversized);
        if let Some(suppressed) = self.log.allow(now) {
            warn!(%ip, head_len, lines, suppressed, "dropping SIP message: header section too large");
        }
    }

    /// Step 2, for a request that belongs to no dialog of ours: scanner
    /// User-Agents and the trunk allow-list.
    pub fn admit_request(
        &mut self,
        now: Instant,
        ip: IpAddr,
        method: &str,
        user_agent: Option<&str>,
    ) -> RequestVerdict {
        let ip = ip.to_canonical();
        let trunk = self.is_trunk(ip);
        if let Some(ua) = user_agent.filter(|ua| self.is_scanner(ua)) {
            bump(&self.counters.dropped_scanner);
            if !trunk {
                // Nobody sends these by mistake: ban at once.
                self.strike(now, ip, self.cfg.ban_after.max(1));
            }
            if let Some(suppressed) = self.log.allow(now) {
                info!(%ip, method, user_agent = ua, suppressed, "dropping request from a SIP scanner");
            }
            return RequestVerdict::Drop;
        }
        if trunk || self.is_open() {
            return RequestVerdict::Pass;
        }
        if self.cfg.address_free_credentials().next().is_some() {
            match method {
                // Challenged or checked by `authenticate`.
                "INVITE" | "OPTIONS" => return RequestVerdict::Pass,
                // RFC 3261 §8.2.7: the ACK of a stateless 401 is absorbed,
                // a CANCEL of a request answered statelessly ignored.
                "ACK" | "CANCEL" => return RequestVerdict::Drop,
                _ => {}
            }
        }
        bump(&self.counters.refused_unknown);
        self.strike(now, ip, 1);
        if let Some(suppressed) = self.log.allow(now) {
            info!(%ip, method, suppressed, "refusing SIP request from an address on no trunk");
        }
        match self.cfg.refuse_unknown {
            RefuseMode::Reply if method != "ACK" => RequestVerdict::Forbid,
            _ => RequestVerdict::Drop,
        }
    }

    /// Step 2½, for an initial INVITE (and an OPTIONS outside any dialog)
    /// that passed [`Guard::admit_request`]: Digest credentials, when the
    /// source's trunk has them or the source is on no IP trunk (see the
    /// module documentation). `Ok(Some(trunk))`: authenticated as that
    /// trunk; `Ok(None)`: no authentication needed.
    #[allow(clippy::too_many_arguments)]
    pub fn authenticate(
        &mut self,
        now: Instant,
        ip: IpAddr,
        method: &str,
        uri: &str,
        authorization: &[String],
        call_id: &str,
        branch: &str,
    ) -> Result<Option<String>, AuthRefusal> {
        let ip = ip.to_canonical();
        let Guard { cfg, auth, .. } = self;
        let Some(auth) = auth.as_mut() else {
            return Ok(None);
        };
        let candidates: Vec<&TrunkCredentials> = match cfg.trunk_of(ip) {
            Some(_) if method != "INVITE" => return Ok(None),
            Some(t) => cfg
                .trunk_auth
                .iter()
                .filter(|c| c.trunk == t.name)
                .collect(),
            None => cfg.address_free_credentials().collect(),
        };
        if candidates.is_empty() {
            return Ok(None);
        }
        let verdict = auth.verify(now, ip, method, uri, authorization, candidates.into_iter());
        if matches!(verdict, DigestVerdict::Authenticated(_)) {
            bump(&self.counters.auth_passed);
        }
        let to_tag = auth.stateless_tag(call_id, branch);
        match verdict {
            DigestVerdict::Authenticated(trunk) => {
                debug!(%ip, trunk, "Digest credentials accepted");
                Ok(Some(trunk))
            }
            DigestVerdict::Challenge { stale } => {
                let refusal = AuthRefusal {
                    code: 401,
                    reason: "Unauthorized",
                    headers: auth.challenge(now, ip, stale),
                    to_tag,
                };
                bump(&self.counters.auth_challenged);
                Err(refusal)
            }
            DigestVerdict::Refused(why) => {
                let refusal = AuthRefusal {
                    code: 403,
                    reason: "Forbidden",
                    headers: Vec::new(),
                    to_tag,
                };
                bump(&self.counters.auth_failed);
                self.strike(now, ip, 1);
                if let Some(suppressed) = self.log.allow(now) {
                    info!(%ip, method, why, suppressed, "SIP request refused: bad Digest credentials");
                }
                Err(refusal)
            }
        }
    }

    /// Whether a message the parser could not accept may be answered: not
    /// to sources on no trunk (when trunks are configured).
    pub fn may_answer_bad(&mut self, now: Instant, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if self.is_allowed(ip) {
            return true;
        }
        bump(&self.counters.refused_unknown);
        self.strike(now, ip, 1);
        false
    }

    fn is_scanner(&self, user_agent: &str) -> bool {
        if self.cfg.scanner_user_agents.is_empty() {
            return false;
        }
        let ua = user_agent.to_ascii_lowercase();
        self.cfg
            .scanner_user_agents
            .iter()
            .any(|s| !s.is_empty() && ua.contains(s.as_str()))
    }

    /// Step 3, for an initial INVITE about to become a call; `live` is the
    /// number of calls in progress (inbound and outbound).
    pub fn admit_call(&mut self, now: Instant, ip: IpAddr, live: usize) -> Result<(), CallRefusal> {
        let ip = ip.to_canonical();
        if self.cfg.max_calls > 0 && live >= self.cfg.max_calls {
            bump(&self.counters.refused_total_cap);
            self.log_cap(now, ip, "total");
            return Err(CallRefusal {
                reason: "Service Unavailable (call limit)",
                retry_after: 30,
            });
        }
        if self.is_trunk(ip) {
            return Ok(());
        }
        let (per_source, unacked) = (
            self.cfg.max_calls_per_source,
            self.cfg.max_unacked_per_source,
        );
        let (calls, pending) = self
            .sources
            .get(&ip)
            .map_or((0, 0), |s| (s.calls, s.unacked));
        if per_source > 0 && calls >= per_source {
            bump(&self.counters.refused_source_cap);
            self.log_cap(now, ip, "per source");
            return Err(CallRefusal {
                reason: "Service Unavailable (calls per source limit)",
                retry_after: 30,
            });
        }
        if unacked > 0 && pending >= unacked {
            bump(&self.counters.refused_unacked_cap);
            self.log_cap(now, ip, "un-ACKed per source");
            return Err(CallRefusal {
                reason: "Service Unavailable (unconfirmed calls limit)",
                retry_after: 10,
            });
        }
        Ok(())
    }

    fn log_cap(&mut self, now: Instant, ip: IpAddr, which: &'static str) {
        if let Some(suppressed) = self.log.allow(now) {
            warn!(%ip, limit = which, suppressed, "INVITE refused with 503: call limit reached");
        }
    }

    /// A call from `ip` was admitted (the application is told about it).
    /// Returns whether it is tracked, i.e. whether [`Guard::call_acked`] and
    /// [`Guard::call_ended`] are owed.
    pub fn call_started(&mut self, now: Instant, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let capped = self.cfg.max_calls_per_source > 0 || self.cfg.max_unacked_per_source > 0;
        if !capped || self.is_trunk(ip) {
            return false;
        }
        match self.source(now, ip) {
            Some(src) => {
                src.calls += 1;
                src.unacked += 1;
                true
            }
            None => false,
        }
    }

    /// The ACK for the 2xx of a tracked call arrived.
    pub fn call_acked(&mut self, ip: IpAddr) {
        if let Some(src) = self.sources.get_mut(&ip.to_canonical()) {
            src.unacked = src.unacked.saturating_sub(1);
        }
    }

    /// A tracked call ended; `unacked`: before its ACK arrived.
    pub fn call_ended(&mut self, ip: IpAddr, unacked: bool) {
        if let Some(src) = self.sources.get_mut(&ip.to_canonical()) {
            src.calls = src.calls.saturating_sub(1);
            if unacked {
                src.unacked = src.unacked.saturating_sub(1);
            }
        }
    }

    /// When [`Guard::handle_timeout`] wants to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_sweep
    }

    /// Housekeeping: lifts expired bans, forgets idle sources, logs a
    /// summary of refusals at most once a minute.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.sweep(now);
            self.next_sweep = (!self.sources.is_empty()).then(|| now + SWEEP_EVERY);
        }
        let stats = self.counters.snapshot();
        match self.last_summary {
            None => self.last_summary = Some((now, stats)),
            Some((at, before)) if now.saturating_duration_since(at) >= SUMMARY_EVERY => {
                let refused = stats.refusals().saturating_sub(before.refusals());
                if refused > 0 {
                    info!(
                        refused,
                        rate_limited = stats.rate_limited - before.rate_limited,
                        banned_drops = stats.dropped_banned - before.dropped_banned,
                        unknown = stats.refused_unknown - before.refused_unknown,
                        scanners = stats.dropped_scanner - before.dropped_scanner,
                        banned_now = stats.banned_now,
                        "SIP edge refusals in the last minute"
                    );
                }
                self.last_summary = Some((now, stats));
            }
            Some(_) => {}
        }
    }

    fn sweep(&mut self, now: Instant) {
        let (rate, burst, window) = (self.cfg.rate, self.cfg.burst, self.cfg.ban_window);
        let (counters, bans) = (&self.counters, &self.bans);
        self.sources.retain(|ip, s| {
            if let Some(until) = s.banned_until {
                if now < until {
                    return true;
                }
                s.banned_until = None;
                s.strikes = 0;
                bans.remove(*ip);
                counters.banned_now.fetch_sub(1, Ordering::Relaxed);
                debug!(%ip, "SIP source ban lifted");
            }
            let refilled = rate == 0
                || s.tokens
                    + now.saturating_duration_since(s.refilled).as_secs_f64() * f64::from(rate)
                    >= f64::from(burst);
            let strikes_gone =
                s.strikes == 0 || now.saturating_duration_since(s.window_start) >= window;
            // Keep what still matters: calls, strikes, an unrefilled bucket.
            s.calls > 0 || s.unacked > 0 || !refilled || !strikes_gone
        });
    }
}

/// Open TCP connections per source, for the shell's accept loop.
#[derive(Debug)]
pub struct ConnLimiter {
    cfg: GuardConfig,
    open: HashMap<IpAddr, usize>,
}

impl ConnLimiter {
    /// A limiter allowing `cfg.max_tcp_per_source` connections per source
    /// (trunks and 0: no limit).
    pub fn new(cfg: GuardConfig) -> Self {
        ConnLimiter {
            cfg,
            open: HashMap::new(),
        }
    }

    /// Whether a new connection from `ip` may stay open; counts it if so.
    pub fn try_open(&mut self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let max = self.cfg.max_tcp_per_source;
        let unlimited = max == 0 || self.cfg.trunk_of(ip).is_some();
        let n = self.open.entry(ip).or_insert(0);
        if !unlimited && *n >= max {
            if *n == 0 {
                self.open.remove(&ip);
            }
            return false;
        }
        *n += 1;
        true
    }

    /// A connection counted by `try_open` closed.
    pub fn close(&mut self, ip: IpAddr) {
        let ip = ip.to_canonical();
        if let Some(n) = self.open.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.open.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cfg() -> GuardConfig {
        GuardConfig {
            rate: 10,
            burst: 20,
            ban_after: 5,
            ban_window: Duration::from_secs(60),
            ban_for: Duration::from_secs(300),
            ..GuardConfig::default()
        }
    }

    #[test]
    fn trunks_parse_and_match_v4_and_v6() {
        let t: Trunk = "carrier=203.0.113.0/24, 2001:db8::/32,198.51.100.7"
            .parse()
            .unwrap();
        assert_eq!(t.name, "carrier");
        assert_eq!(t.nets.len(), 3);
        assert_eq!(
            t.to_string(),
            "carrier=203.0.113.0/24,2001:db8::/32,198.51.100.7/32"
        );
        let g = GuardConfig {
            trunks: vec![t, "pbx=10.1.2.3/8".parse().unwrap()],
            ..GuardConfig::default()
        };
        for yes in [
            "203.0.113.1",
            "203.0.113.255",
            "2001:db8::5",
            "2001:db8:ffff::1",
            "198.51.100.7",
            "10.200.0.1",
        ] {
            assert!(g.trunk_of(ip(yes)).is_some(), "{yes}");
        }
        for no in [
            "203.0.114.1",
            "2001:db9::1",
            "198.51.100.8",
            "11.0.0.1",
            "::1",
        ] {
            assert!(g.trunk_of(ip(no)).is_none(), "{no}");
        }
        // A dual-stack socket reports IPv4 peers as mapped IPv6 addresses.
        assert_eq!(
            g.trunk_of(ip("::ffff:203.0.113.9")).unwrap().name,
            "carrier"
        );
        assert_eq!(g.trunk_of(ip("10.9.9.9")).unwrap().name, "pbx");
        for bad in [
            "nope",
            "=1.2.3.4",
            "x=",
            "x=1.2.3",
            "x=1.2.3.4/33",
            "a b=1.2.3.4",
        ] {
            assert!(bad.parse::<Trunk>().is_err(), "{bad}");
        }
    }

    #[test]
    fn bucket_limits_then_refills() {
        let mut g = Guard::new(GuardConfig {
            ban_after: 0,
            ..cfg()
        });
        let t0 = Instant::now();
        let src = ip("192.0.2.9");
        let passed = (0..30)
            .filter(|_| g.admit_message(t0, src, || (100, 5)))
            .count();
        assert_eq!(passed, 20, "the burst");
        assert_eq!(g.counters().snapshot().rate_limited, 10);
        // 10 per second: half a second gives 5 more.
        let t1 = t0 + Duration::from_millis(500);
        let passed = (0..10)
            .filter(|_| g.admit_message(t1, src, || (100, 5)))
            .count();
        assert_eq!(passed, 5);
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(3600);
        let passed = (0..100)
            .filter(|_| g.admit_message(t2, src, || (100, 5)))
            .count();
        assert_eq!(passed, 20);
        // Another source has its own bucket.
        assert!(g.admit_message(t2, ip("192.0.2.10"), || (100, 5)));
    }

    #[test]
    fn flooding_bans_until_the_ban_expires() {
        let mut g = Guard::new(cfg());
        let t0 = Instant::now();
        let src = ip("192.0.2.9");
        for _ in 0..20 {
            assert!(g.admit_message(t0, src, || (100, 5)));
        }
        // Five over the limit: five strikes, banned.
        for _ in 0..5 {
            assert!(!g.admit_message(t0, src, || (100, 5)));
        }
        let s = g.counters().snapshot();
        assert_eq!((s.rate_limited, s.bans, s.banned_now), (5, 1, 1));
        // Banned: dropped even with a full bucket, not rate-limited.
        let t1 = t0 + Duration::from_secs(299);
        assert!(!g.admit_message(t1, src, || (100, 5)));
        assert_eq!(g.counters().snapshot().dropped_banned, 1);
        assert_eq!(g.counters().snapshot().rate_limited, 5);
        // Housekeeping keeps the ban.
        g.handle_timeout(t1);
        assert!(!g.admit_message(t1, src, || (100, 5)));
        // Unbanned after ban_for, with a fresh strike count.
        let t2 = t0 + Duration::from_secs(300);
        assert!(g.admit_message(t2, src, || (100, 5)));
        assert_eq!(g.counters().snapshot().banned_now, 0);
        assert!(g.poll_timeout().is_some());
    }

    #[test]
    fn an_operator_lists_and_lifts_a_ban() {
        let mut g = Guard::new(cfg());
        let t0 = Instant::now();
        let (src, other) = (ip("192.0.2.9"), ip("192.0.2.10"));
        assert!(g.bans(t0).is_empty());
        for _ in 0..25 {
            g.admit_message(t0, src, || (100, 5));
        }
        let t1 = t0 + Duration::from_millis(1500);
        assert_eq!(
            g.bans(t1),
            [Ban {
                ip: src,
                remaining_secs: 299
            }]
        );
        let list = g.ban_list();
        assert!(list.is_banned(src, t1) && !list.is_banned(other, t1));
        assert!(!g.unban(t1, other), "not banned");
        assert!(g.unban(t1, src));
        assert!(!list.is_banned(src, t1), "the listeners see the lift");
        assert!(!g.unban(t1, src), "already lifted");
        assert!(g.bans(t1).is_empty());
        assert_eq!(g.counters().snapshot().banned_now, 0);
        // Admitted at once, with a fresh strike count.
        assert!(g.admit_message(t1, src, || (100, 5)));
        // An expired ban is not listed and cannot be lifted twice.
        for _ in 0..45 {
            g.admit_message(t1, src, || (100, 5));
        }
        let later = t1 + Duration::from_secs(300);
        assert!(list.is_banned(src, t1) && !list.is_banned(src, later));
        assert!(g.bans(later).is_empty());
        assert!(!g.unban(later, src));
        assert_eq!(
            g.counters().snapshot().banned_now,
            1,
            "lifted by the next message or sweep"
        );
    }

    #[test]
    fn sweep_lifts_bans_and_forgets_idle_sources() {
        let mut g = Guard::new(cfg());
        let t0 = Instant::now();
        let src = ip("192.0.2.9");
        for _ in 0..25 {
            g.admit_message(t0, src, || (100, 5));
        }
        assert_eq!(g.counters().snapshot().banned_now, 1);
        let later = t0 + Duration::from_secs(400);
        g.handle_timeout(later);
        assert_eq!(g.counters().snapshot().banned_now, 0);
        assert!(g.sources.is_empty(), "{:?}", g.sources);
        assert_eq!(g.poll_timeout(), None, "nothing left to sweep");
    }

    /// A ban saved before a restart holds for its time left, is listed,
    /// and lifts when that time is up.
    #[test]
    fn a_restored_ban_holds_for_its_time_left() {
        let mut g = Guard::new(cfg());
        let now = Instant::now();
        let scanner = ip("203.0.113.9");
        assert!(!g.restore_ban(now, scanner, Duration::ZERO));
        // A peer made a trunk since its ban is not banned again.
        let mut trunked = Guard::new(GuardConfig {
            trunks: vec!["pbx=203.0.113.0/24".parse().unwrap()],
            ..cfg()
        });
        assert!(!trunked.restore_ban(now, scanner, Duration::from_secs(120)));
        assert!(trunked.bans(now).is_empty());
        assert!(!trunked.ban_list().is_banned(scanner, now));
        assert!(g.restore_ban(now, scanner, Duration::from_secs(120)));
        assert!(!g.admit_message(now, scanner, || (100, 5)));
        assert_eq!(
            g.bans(now),
            vec![Ban {
                ip: scanner,
                remaining_secs: 120
            }]
        );
        assert_eq!(g.counters.snapshot().banned_now, 1);
        // A shorter restore does not shorten it; the same ban is counted once.
        assert!(g.restore_ban(now, scanner, Duration::from_secs(10)));
        assert_eq!(g.bans(now)[0].remaining_secs, 120);
        assert_eq!(g.counters.snapshot().banned_now, 1);
        assert!(
            g.ban_list()
                .is_banned(scanner, now + Duration::from_secs(119))
        );
        let later = now + Duration::from_secs(121);
        assert!(g.admit_message(later, scanner, || (100, 5)));
        assert!(g.bans(later).is_empty());
        assert_eq!(g.counters.snapshot().banned_now, 0);
    }

    #[test]
    fn strikes_expire_with_the_window() {
        let mut g = Guard::new(GuardConfig {
            trunks: vec!["t=10.0.0.0/8".parse().unwrap()],
            ..cfg()
        });
        let t0 = Instant::now();
        let src = ip("192.0.2.9");
        for i in 0..4 {
            assert_eq!(
                g.admit_request(t0 + Duration::from_secs(i), src, "OPTIONS", None),
                RequestVerdict::Forbid
            );
        }
        // The fifth strike comes after the window: no ban.
        let late = t0 + Duration::from_secs(61);
        assert_eq!(
            g.admit_request(late, src, "INVITE", None),
            RequestVerdict::Forbid
        );
        assert_eq!(g.counters().snapshot().bans, 0);
        assert!(g.admit_message(late, src, || (100, 5)));
        for _ in 0..4 {
            g.admit_request(late, src, "INVITE", None);
        }
        assert_eq!(g.counters().snapshot().bans, 1);
        assert!(!g.admit_message(late, src, || (100, 5)));
        assert_eq!(g.counters().snapshot().refused_unknown, 9);
    }

    #[test]
    fn allow_list_refuses_strangers_and_spares_trunks() {
        let mut g = Guard::new(GuardConfig {
            trunks: vec!["carrier=198.51.100.0/24".parse().unwrap()],
            ..cfg()
        });
        let now = Instant::now();
        let trunk = ip("198.51.100.20");
        let stranger = ip("192.0.2.9");
        assert_eq!(
            g.admit_request(now, trunk, "INVITE", Some("Carrier SBC")),
            RequestVerdict::Pass
        );
        assert_eq!(
            g.admit_request(now, stranger, "INVITE", Some("Zoiper")),
            RequestVerdict::Forbid
        );
        assert_eq!(
            g.admit_request(now, stranger, "ACK", None),
            RequestVerdict::Drop
        );
        assert!(g.may_answer_bad(now, trunk));
        assert!(!g.may_answer_bad(now, stranger));
        // A trunk is never rate-limited nor banned.
        for _ in 0..10_000 {
            assert!(g.admit_message(now, trunk, || (100, 5)));
        }
        assert_eq!(g.counters().snapshot().from_trunks, 10_000);
        let mut drop = Guard::new(GuardConfig {
            refuse_unknown: RefuseMode::Drop,
            ..g.config().clone()
        });
        assert_eq!(
            drop.admit_request(now, stranger, "INVITE", None),
            RequestVerdict::Drop
        );
        assert_eq!("drop".parse::<RefuseMode>(), Ok(RefuseMode::Drop));
        assert_eq!("Reply".parse::<RefuseMode>(), Ok(RefuseMode::Reply));
        assert!("maybe".parse::<RefuseMode>().is_err());
    }

    #[test]
    fn open_mode_lets_anyone_call() {
        let mut g = Guard::new(cfg());
        assert!(g.is_open());
        let now = Instant::now();
        assert_eq!(
            g.admit_request(now, ip("192.0.2.9"), "INVITE", None),
            RequestVerdict::Pass
        );
        assert!(g.may_answer_bad(now, ip("192.0.2.9")));
    }

    #[test]
    fn scanner_user_agents_are_dropped_and_banned() {
        let mut g = Guard::new(cfg());
        let now = Instant::now();
        let src = ip("192.0.2.66");
        for ua in [
            "friendly-scanner",
            "SIPVicious 0.3",
            "sipcli/v1.8",
            "VaxSIPUserAgent/3.1",
        ] {
            assert_eq!(
                g.admit_request(now, src, "INVITE", Some(ua)),
                RequestVerdict::Drop,
                "{ua}"
            );
        }
        let s = g.counters().snapshot();
        assert_eq!((s.dropped_scanner, s.bans), (4, 1));
        assert!(
            !g.admit_message(now, src, || (100, 5)),
            "banned at the first scanner request"
        );
        // Ordinary agents pass; an empty list disables the check.
        assert_eq!(
            g.admit_request(now, ip("192.0.2.1"), "INVITE", Some("Linphone/5.2")),
            RequestVerdict::Pass
        );
        let mut none = Guard::new(GuardConfig {
            scanner_user_agents: Vec::new(),
            ..cfg()
        });
        assert_eq!(
            none.admit_request(now, src, "INVITE", Some("friendly-scanner")),
            RequestVerdict::Pass
        );
    }

    #[test]
    fn header_limits() {
        let mut g = Guard::new(GuardConfig {
            max_header_bytes: 1000,
            max_headers: 10,
            trunks: vec!["t=10.0.0.1".parse().unwrap()],
            ..cfg()
        });
        let now = Instant::now();
        let src = ip("192.0.2.1");
        assert!(g.admit_message(now, src, || (1000, 10)));
        assert!(!g.admit_message(now, src, || (1001, 10)));
        assert!(!g.admit_message(now, src, || (100, 11)));
        assert!(
            !g.admit_message(now, ip("10.0.0.1"), || (5000, 5)),
            "trunks too"
        );
        assert_eq!(g.counters().snapshot().dropped_oversized, 3);
    }

    #[test]
    fn call_caps() {
        let mut g = Guard::new(GuardConfig {
            max_calls: 10,
            max_calls_per_source: 4,
            max_unacked_per_source: 2,
            trunks: vec!["t=198.51.100.1".parse().unwrap()],
            ..cfg()
        });
        let now = Instant::now();
        let a = ip("::ffff:192.0.2.1");
        let a4 = ip("192.0.2.1");
        // Two unconfirmed calls: the third waits for an ACK.
        for _ in 0..2 {
            assert_eq!(g.admit_call(now, a, 0), Ok(()));
            assert!(g.call_started(now, a));
        }
        let r = g.admit_call(now, a4, 2).unwrap_err();
        assert_eq!(r.retry_after, 10);
        g.call_acked(a4);
        g.call_acked(a);
        for _ in 0..2 {
            assert_eq!(g.admit_call(now, a, 2), Ok(()));
            assert!(g.call_started(now, a));
            g.call_acked(a);
        }
        // Four confirmed calls: the per-source cap.
        assert!(g.admit_call(now, a, 4).is_err());
        g.call_ended(a, false);
        assert_eq!(g.admit_call(now, a, 3), Ok(()));
        // A call ended before its ACK frees its un-ACKed slot too.
        assert!(g.call_started(now, a));
        g.call_ended(a, true);
        assert_eq!(
            g.sources.get(&a4).map(|s| (s.calls, s.unacked)),
            Some((3, 0))
        );
        // The total cap applies to everyone, trunks included; the per-source
        // caps do not apply to trunks.
        let trunk = ip("198.51.100.1");
        assert!(g.admit_call(now, trunk, 10).is_err());
        for n in 0..9 {
            assert_eq!(g.admit_call(now, trunk, n), Ok(()));
            assert!(!g.call_started(now, trunk), "trunk calls are not tracked");
        }
        let s = g.counters().snapshot();
        assert_eq!(
            (
                s.refused_unacked_cap,
                s.refused_source_cap,
                s.refused_total_cap
            ),
            (1, 1, 1)
        );
        // A source with calls is not forgotten by housekeeping.
        g.handle_timeout(now + Duration::from_secs(3600));
        assert!(g.sources.contains_key(&a4));
    }

    #[test]
    fn source_table_is_bounded() {
        let mut g = Guard::new(GuardConfig {
            max_sources: 2,
            ..cfg()
        });
        let now = Instant::now();
        assert!(g.admit_message(now, ip("192.0.2.1"), || (10, 1)));
        assert!(g.admit_message(now, ip("192.0.2.2"), || (10, 1)));
        assert!(!g.admit_message(now, ip("192.0.2.3"), || (10, 1)));
        assert_eq!(g.counters().snapshot().dropped_sources_full, 1);
        // Once the others are idle they make room.
        let later = now + Duration::from_secs(10);
        assert!(g.admit_message(later, ip("192.0.2.3"), || (10, 1)));
    }

    #[test]
    fn tcp_connections_per_source() {
        let mut c = ConnLimiter::new(GuardConfig {
            max_tcp_per_source: 2,
            trunks: vec!["t=10.0.0.0/8".parse().unwrap()],
            ..GuardConfig::default()
        });
        let a = ip("192.0.2.1");
        assert!(c.try_open(a));
        assert!(c.try_open(a));
        assert!(!c.try_open(a));
        assert!(c.try_open(ip("192.0.2.2")));
        c.close(a);
        assert!(c.try_open(a));
        for _ in 0..10 {
            assert!(c.try_open(ip("10.1.1.1")));
        }
    }

    #[test]
    fn off_limits_nothing() {
        let mut g = Guard::new(GuardConfig::off());
        let now = Instant::now();
        let src = ip("192.0.2.1");
        for _ in 0..10_000 {
            assert!(g.admit_message(now, src, || (60_000, 1000)));
        }
        assert_eq!(
            g.admit_request(now, src, "INVITE", Some("friendly-scanner")),
            RequestVerdict::Pass
        );
        assert_eq!(g.admit_call(now, src, 1_000_000), Ok(()));
        assert!(g.sources.is_empty());
        assert_eq!(g.poll_timeout(), None);
    }

    #[test]
    fn log_lines_are_budgeted() {
        let mut l = LogLimiter::new();
        let now = Instant::now();
        let allowed = (0..100).filter(|_| l.allow(now).is_some()).count();
        assert_eq!(allowed, LOG_BUDGET as usize);
        assert_eq!(l.allow(now + LOG_WINDOW), Some(100 - u64::from(LOG_BUDGET)));
    }
}
