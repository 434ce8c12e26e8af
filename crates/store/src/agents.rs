//! Agents, queues and their members; agents' login sessions and state history
//! (`migrations/0003_agents.sql`).
//!
//! For: the admin API, `hotline agents`, agent login, and loading the ACD's
//! configuration. Not for: live agent states (the routing engine owns them;
//! [`Store::record_agent_state`] only keeps their history).
//!
//! Passwords are stored as argon2id PHC strings; session tokens are 32 random
//! bytes (hex) of which only the SHA-256 is stored.
//!
//! ```no_run
//! # async fn demo(store: hotline_store::Store) -> Result<(), hotline_store::StoreError> {
//! use hotline_store::agents::NewAgent;
//! store.create_agent(NewAgent::new("a1", "Ada Agent", "correct horse")).await?;
//! if let Some(agent) = store.verify_agent_password("a1", "correct horse").await? {
//!     let token = store.create_session(&agent.id, std::time::Duration::from_secs(3600)).await?;
//!     assert_eq!(store.session_agent(&token).await?.as_deref(), Some("a1"));
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use hotline_routing::{AgentConfig, AgentLostPolicy, Overflow, QueueConfig, QueueName, Strategy};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::{Store, StoreError};

/// Agent ids, queue names, skills: 1–64 of `A-Z a-z 0-9 . _ @ -`.
pub use hotline_routing::valid_id;

/// An agent as everyone but the login check sees it: never the password hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Agent {
    /// The login name.
    pub id: String,
    /// Display name.
    pub name: String,
    /// What `skills_priority` queues match a call's required skill against.
    pub skills: Vec<String>,
    /// Inactive agents cannot log in and are never offered calls.
    pub active: bool,
    /// What the admin console allows them (the desk is the same for all).
    #[sqlx(try_from = "String")]
    pub role: Role,
    /// When the agent was added.
    pub created_at: DateTime<Utc>,
}

/// What a person may do in the admin console (`/admin`, `/api`). Everyone,
/// whatever the role, takes calls only as a queue member signed in at `/agent`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including publishing flows and managing users.
    Admin,
    /// Reads everything; changes nothing.
    Supervisor,
    /// The desk only; refused by the admin console.
    #[default]
    Agent,
}

impl Role {
    /// Every role, as spelled in the database and the API.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Supervisor, Role::Agent];

    /// `admin`, `supervisor` or `agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                StoreError::Invalid(format!("role {s:?} is not one of admin, supervisor, agent"))
            })
    }
}

impl TryFrom<String> for Role {
    type Error = StoreError;

    fn try_from(s: String) -> Result<Self, StoreError> {
        s.parse()
    }
}

/// A new agent (`POST /api/agents`, `hotline agents add`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    /// The login name: 1–64 of `A-Z a-z 0-9 . _ @ -`.
    pub id: String,
    /// Display name, shown on the agent's page and in the admin pages.
    pub name: String,
    /// In clear text; stored only as an argon2id hash. At least
    /// [`MIN_PASSWORD_LEN`] characters.
    pub password: String,
    /// Skills for `skills_priority` queues; none by default.
    #[serde(default)]
    pub skills: Vec<String>,
    /// `false` adds the agent unable to log in; `true` by default.
    #[serde(default = "yes")]
    pub active: bool,
    /// `agent` by default; `admin` or `supervisor` may sign in at `/admin`.
    #[serde(default)]
    pub role: Role,
}

impl NewAgent {
    /// An active agent without skills.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            password: password.into(),
            skills: Vec::new(),
            active: true,
            role: Role::Agent,
        }
    }

    /// The same person with `role`.
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }
}

impl fmt::Debug for NewAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAgent")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("skills", &self.skills)
            .field("active", &self.active)
            .field("role", &self.role)
            .finish()
    }
}

/// A change to an agent: the fields given are set, the others kept. A new
/// password or deactivation ends the agent's sessions.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentUpdate {
    /// A new display name.
    pub name: Option<String>,
    /// The new skills, replacing the old ones.
    pub skills: Option<Vec<String>>,
    /// `false` deactivates the agent (ending their sessions); `true` reactivates.
    pub active: Option<bool>,
    /// A new password (ending the agent's sessions); same rules as on creation.
    pub password: Option<String>,
    /// A new role; open admin console sessions follow it at their next request.
    pub role: Option<Role>,
}

impl fmt::Debug for AgentUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentUpdate")
            .field("name", &self.name)
            .field("skills", &self.skills)
            .field("active", &self.active)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("role", &self.role)
            .finish()
    }
}

/// A queue with its members in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    /// The queue's name, as flows' `enqueue` nodes name it.
    pub name: String,
    /// How an agent is picked for a call.
    pub strategy: Strategy,
    /// Seconds a call may wait before it overflows.
    pub max_wait_secs: u32,
    /// Where a call goes after `max_wait_secs`.
    pub overflow: Overflow,
    /// Seconds an offer rings before it times out and the agent is set away.
    pub offer_timeout_secs: u32,
    /// Seconds of after-call work before the agent is offered the next call.
    pub wrap_up_secs: u32,
    /// What happens to a call whose agent's page goes away mid-call.
    pub on_agent_lost: AgentLostPolicy,
    /// Issue type → required skill (for `skills_priority`).
    pub issue_skills: BTreeMap<String, String>,
    /// A callback the customer does not answer is dialled this many times in all.
    pub callback_attempts: u32,
    /// Seconds between callback attempts.
    pub callback_retry_secs: u32,
    /// After the agent hangs up, the caller rates the call (1–5) and may
    /// leave a comment.
    pub survey: bool,
    /// Service level threshold: an agent answer within this many seconds
    /// of queueing counts as within service level (docs/metrics.md).
    pub service_level_secs: u32,
    /// Agent ids in round-robin order.
    pub members: Vec<String>,
    /// When the queue was created.
    pub created_at: DateTime<Utc>,
}

impl From<Queue> for QueueConfig {
    /// The queue in the ACD's terms.
    fn from(q: Queue) -> Self {
        QueueConfig {
            strategy: q.strategy,
            members: q.members.into_iter().map(Into::into).collect(),
            max_wait: Duration::from_secs(q.max_wait_secs.into()),
            overflow: q.overflow,
            offer_timeout: Duration::from_secs(q.offer_timeout_secs.into()),
            wrap_up: Duration::from_secs(q.wrap_up_secs.into()),
            skills: q.issue_skills,
            on_agent_lost: q.on_agent_lost,
            callback_attempts: q.callback_attempts,
            callback_retry: Duration::from_secs(q.callback_retry_secs.into()),
            survey: q.survey,
            ..QueueConfig::new(q.name)
        }
    }
}

impl From<Agent> for AgentConfig {
    /// The agent in the ACD's terms.
    fn from(a: Agent) -> Self {
        AgentConfig::new(a.id, a.name).with_skills(a.skills)
    }
}

/// A new queue (`POST /api/queues`); everything but the name has a default.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewQueue {
    /// The queue's name, as flows' `enqueue` nodes name it.
    pub name: String,
    /// How an agent is picked for a call; longest idle by default.
    #[serde(default)]
    pub strategy: Strategy,
    /// Seconds a call may wait before it overflows; 120 by default.
    #[serde(default = "default_max_wait")]
    pub max_wait_secs: u32,
    /// Where a call goes after `max_wait_secs`; voicemail by default.
    #[serde(default)]
    pub overflow: Overflow,
    /// Seconds an offer rings before it times out; 20 by default.
    #[serde(default = "default_offer_timeout")]
    pub offer_timeout_secs: u32,
    /// Seconds of after-call work after each call; 30 by default.
    #[serde(default = "default_wrap_up")]
    pub wrap_up_secs: u32,
    /// Requeue (the default) or release a call whose agent is lost.
    #[serde(default)]
    pub on_agent_lost: AgentLostPolicy,
    /// Issue type → required skill, for `skills_priority`; empty by default.
    #[serde(default)]
    pub issue_skills: BTreeMap<String, String>,
    /// Times an unanswered callback is dialled in all; 3 by default.
    #[serde(default = "default_callback_attempts")]
    pub callback_attempts: u32,
    /// Seconds between callback attempts; 120 by default.
    #[serde(default = "default_callback_retry")]
    pub callback_retry_secs: u32,
    /// The post-call satisfaction survey after the agent hangs up; off by
    /// default.
    #[serde(default)]
    pub survey: bool,
    /// Service level threshold in seconds; 20 by default.
    #[serde(default = "default_service_level")]
    pub service_level_secs: u32,
    /// Agent ids in round-robin order; none by default.
    #[serde(default)]
    pub members: Vec<String>,
}

impl NewQueue {
    /// Longest idle, 120 s max wait then voicemail, 20 s offers, 30 s wrap-up.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            strategy: Strategy::default(),
            max_wait_secs: default_max_wait(),
            overflow: Overflow::default(),
            offer_timeout_secs: default_offer_timeout(),
            wrap_up_secs: default_wrap_up(),
            on_agent_lost: AgentLostPolicy::default(),
            issue_skills: BTreeMap::new(),
            callback_attempts: default_callback_attempts(),
            callback_retry_secs: default_callback_retry(),
            survey: false,
            service_level_secs: default_service_level(),
            members: Vec::new(),
        }
    }
}

/// A change to a queue: the fields given are set, the others kept
/// (`members`, when given, replaces the membership).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueUpdate {
    /// A new strategy.
    pub strategy: Option<Strategy>,
    /// A new max wait, in seconds.
    pub max_wait_secs: Option<u32>,
    /// A new overflow target.
    pub overflow: Option<Overflow>,
    /// A new offer timeout, in seconds.
    pub offer_timeout_secs: Option<u32>,
    /// A new wrap-up time, in seconds.
    pub wrap_up_secs: Option<u32>,
    /// A new lost-agent policy.
    pub on_agent_lost: Option<AgentLostPolicy>,
    /// A new issue-type → skill map, replacing the old one.
    pub issue_skills: Option<BTreeMap<String, String>>,
    /// A new number of callback attempts.
    pub callback_attempts: Option<u32>,
    /// A new time between callback attempts, in seconds.
    pub callback_retry_secs: Option<u32>,
    /// Turns the post-call survey on or off.
    pub survey: Option<bool>,
    /// A new service level threshold, in seconds.
    pub service_level_secs: Option<u32>,
    /// The new members, in order, replacing the old ones.
    pub members: Option<Vec<String>>,
}

/// An agent's last recorded state (`None`: never recorded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AgentLastState {
    /// The agent's id.
    pub agent: String,
    /// The agent's display name.
    pub name: String,
    /// Whether the agent may log in.
    pub active: bool,
    /// One of [`AGENT_STATES`]; `None` when no state was ever recorded.
    pub state: Option<String>,
    /// The away reason, when the state is `away`.
    pub reason: Option<String>,
    /// When the state was recorded.
    pub at: Option<DateTime<Utc>>,
}

/// The states `agent_state_changes` accepts (as the softphone protocol names them).
pub const AGENT_STATES: &[&str] = &[
    "offline",
    "available",
    "ringing",
    "on_call",
    "wrap_up",
    "away",
];

/// The id no person may have: who the admin bearer token acts as.
pub const RESERVED_ID: &str = "token";

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
const MAX_PASSWORD_LEN: usize = 1024;
const MAX_SECS: u32 = 86_400;

fn yes() -> bool {
    true
}
fn default_max_wait() -> u32 {
    120
}
fn default_offer_timeout() -> u32 {
    20
}
fn default_wrap_up() -> u32 {
    30
}

fn default_callback_attempts() -> u32 {
    3
}

fn default_callback_retry() -> u32 {
    120
}

fn default_service_level() -> u32 {
    20
}

fn check_id(what: &str, s: &str) -> Result<(), StoreError> {
    if valid_id(s) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{what} {s:?} must be 1-64 characters of A-Z a-z 0-9 . _ @ -"
        )))
    }
}

fn check_name(name: &str) -> Result<String, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "name must be 1-200 printable characters".into(),
        ));
    }
    Ok(name.to_owned())
}

fn check_password(pw: &str) -> Result<(), StoreError> {
    let n = pw.chars().count();
    if n < MIN_PASSWORD_LEN || pw.len() > MAX_PASSWORD_LEN {
        return Err(StoreError::Invalid(format!(
            "password must be at least {MIN_PASSWORD_LEN} characters (and at most {MAX_PASSWORD_LEN} bytes)"
        )));
    }
    Ok(())
}

/// Checks and deduplicates skills, keeping their order.
fn check_skills(skills: &[String]) -> Result<Vec<String>, StoreError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(skills.len());
    for s in skills {
        let s = s.trim();
        check_id("skill", s)?;
        if seen.insert(s.to_owned()) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

fn check_secs(what: &str, v: u32, min: u32) -> Result<i32, StoreError> {
    if v < min || v > MAX_SECS {
        return Err(StoreError::Invalid(format!(
            "{what} must be between {min} and {MAX_SECS}"
        )));
    }
    Ok(v as i32)
}

fn check_attempts(v: u32) -> Result<i32, StoreError> {
    if !(1..=10).contains(&v) {
        return Err(StoreError::Invalid(
            "callback_attempts must be between 1 and 10".into(),
        ));
    }
    Ok(v as i32)
}

fn check_issue_skills(m: &BTreeMap<String, String>) -> Result<serde_json::Value, StoreError> {
    for (issue, skill) in m {
        if issue.is_empty() || issue.len() > 200 || issue.chars().any(char::is_whitespace) {
            return Err(StoreError::Invalid(format!(
                "issue type {issue:?} must be 1-200 characters without spaces"
            )));
        }
        check_id("skill", skill)?;
    }
    Ok(serde_json::to_value(m).expect("a map of strings serializes"))
}

fn check_members(members: &[String]) -> Result<(), StoreError> {
    let mut seen = BTreeSet::new();
    for m in members {
        check_id("agent id", m)?;
        if !seen.insert(m.as_str()) {
            return Err(StoreError::Invalid(format!("agent {m:?} is listed twice")));
        }
    }
    Ok(())
}

/// Maps constraint violations to typed errors.
fn db_err(e: sqlx::Error, what: &'static str, id: &str) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        match d.code().as_deref() {
            Some("23505") => {
                return StoreError::Conflict {
                    what,
                    id: id.to_owned(),
                };
            }
            Some("23503") => return StoreError::Invalid(format!("{what} {id:?}: unknown agent")),
            Some("23514") => {
                return StoreError::Invalid(format!(
                    "{what} {id:?}: refused by {}",
                    d.constraint().unwrap_or("a check")
                ));
            }
            _ => {}
        }
    }
    StoreError::Db(e)
}

fn not_found(what: &'static str, id: &str) -> StoreError {
    StoreError::NotFound {
        what,
        id: id.to_owned(),
    }
}

/// An argon2id PHC string of `password` with a fresh random salt. Slow on
/// purpose (tens of ms): runs on the blocking pool.
pub async fn hash_password(password: &str) -> Result<String, StoreError> {
    let pw = password.to_owned();
    tokio::task::spawn_blocking(move || hash_blocking(&pw))
        .await
        .map_err(|e| StoreError::Hash(e.to_string()))?
}

fn hash_blocking(pw: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Hash(e.to_string()))
}

/// Whether `pw` matches the PHC string `hash` (constant-time compare inside).
fn verify_blocking(hash: &str, pw: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => Argon2::default().verify_password(pw.as_bytes(), &h).is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "stored password hash is not a PHC string");
            false
        }
    }
}

/// A hash that no password matches, checked against when the agent is
/// unknown so that costs the same time as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut pw = [0u8; 32];
        OsRng.fill_bytes(&mut pw);
        hash_blocking(&hex(&pw)).expect("hashing a random password")
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// What `agent_sessions.token_hash` holds for a token.
pub fn session_token_hash(token: &str) -> String {
    hex(&sha2::Sha256::digest(token.as_bytes()))
}

/// Session tokens are 32 random bytes as 64 lower-case hex digits.
pub(crate) fn plausible_token(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[derive(sqlx::FromRow)]
struct QueueRow {
    name: String,
    strategy: String,
    max_wait_secs: i32,
    overflow: String,
    offer_timeout_secs: i32,
    wrap_up_secs: i32,
    on_agent_lost: String,
    issue_skills: serde_json::Value,
    callback_attempts: i32,
    callback_retry_secs: i32,
    survey: bool,
    service_level_secs: i32,
    members: Vec<String>,
    created_at: DateTime<Utc>,
}

impl TryFrom<QueueRow> for Queue {
    type Error = StoreError;

    fn try_from(r: QueueRow) -> Result<Self, StoreError> {
        let bad = |what: &str, v: &str| StoreError::Invalid(format!("stored {what} {v:?}"));
        Ok(Queue {
            strategy: r
                .strategy
                .parse()
                .map_err(|_| bad("strategy", &r.strategy))?,
            overflow: r
                .overflow
                .parse()
                .map_err(|e: hotline_routing::InvalidSetting| StoreError::Invalid(e.to_string()))?,
            on_agent_lost: r
                .on_agent_lost
                .parse()
                .map_err(|_| bad("on_agent_lost", &r.on_agent_lost))?,
            issue_skills: serde_json::from_value(r.issue_skills)
                .map_err(|e| StoreError::Invalid(format!("stored issue_skills: {e}")))?,
            max_wait_secs: r.max_wait_secs.max(0) as u32,
            offer_timeout_secs: r.offer_timeout_secs.max(0) as u32,
            wrap_up_secs: r.wrap_up_secs.max(0) as u32,
            callback_attempts: r.callback_attempts.max(1) as u32,
            callback_retry_secs: r.callback_retry_secs.max(0) as u32,
            survey: r.survey,
            service_level_secs: r.service_level_secs.max(1) as u32,
            name: r.name,
            members: r.members,
            created_at: r.created_at,
        })
    }
}

const AGENT_COLS: &str = "id, name, skills, active, role, created_at";
const QUEUE_SELECT: &str = "SELECT q.name, q.strategy, q.max_wait_secs, q.overflow, \
        q.offer_timeout_secs, q.wrap_up_secs, q.on_agent_lost, q.issue_skills, q.created_at, \
        q.callback_attempts, q.callback_retry_secs, q.survey, q.service_level_secs, \
        coalesce((SELECT array_agg(m.agent ORDER BY m.position, m.agent) \
                    FROM queue_members m WHERE m.queue = q.name), '{}') AS members \
     FROM queues q";

impl Store {
    // ---- agents -------------------------------------------------------------

    /// Creates an agent (the password is hashed here). `Conflict` if the id is taken.
    pub async fn create_agent(&self, new: NewAgent) -> Result<Agent, StoreError> {
        check_id("agent id", &new.id)?;
        if new.id == RESERVED_ID {
            // The audit log's and the flows' name for the admin bearer token.
            return Err(StoreError::Invalid(format!(
                "agent id {RESERVED_ID:?} is reserved (it names the admin API's bearer token)"
            )));
        }
        let name = check_name(&new.name)?;
        let skills = check_skills(&new.skills)?;
        check_password(&new.password)?;
        let hash = hash_password(&new.password).await?;
        sqlx::query_as::<_, Agent>(&format!(
            "INSERT INTO agents (id, name, password_hash, skills, active, role) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {AGENT_COLS}"
        ))
        .bind(&new.id)
        .bind(&name)
        .bind(&hash)
        .bind(&skills)
        .bind(new.active)
        .bind(new.role.as_str())
        .fetch_one(self.pool())
        .await
        .map_err(|e| db_err(e, "agent", &new.id))
    }

    /// All agents, by id.
    pub async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        Ok(
            sqlx::query_as::<_, Agent>(&format!("SELECT {AGENT_COLS} FROM agents ORDER BY id"))
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// One agent, or `None`.
    pub async fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        Ok(
            sqlx::query_as::<_, Agent>(&format!("SELECT {AGENT_COLS} FROM agents WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Changes the fields given. A new password or `active: false` also
    /// ends the agent's sessions. `NotFound` if there is no such agent.
    pub async fn update_agent(&self, id: &str, up: AgentUpdate) -> Result<Agent, StoreError> {
        let name = up.name.as_deref().map(check_name).transpose()?;
        let skills = up.skills.as_deref().map(check_skills).transpose()?;
        let hash = match &up.password {
            Some(pw) => {
                check_password(pw)?;
                Some(hash_password(pw).await?)
            }
            None => None,
        };
        let mut tx = self.pool().begin().await?;
        let agent = sqlx::query_as::<_, Agent>(&format!(
            "UPDATE agents SET name = coalesce($2, name), skills = coalesce($3, skills), \
                    active = coalesce($4, active), password_hash = coalesce($5, password_hash), \
                    role = coalesce($6, role) \
              WHERE id = $1 RETURNING {AGENT_COLS}"
        ))
        .bind(id)
        .bind(name)
        .bind(skills)
        .bind(up.active)
        .bind(hash.as_deref())
        .bind(up.role.map(Role::as_str))
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| db_err(e, "agent", id))?
        .ok_or_else(|| not_found("agent", id))?;
        if hash.is_some() || up.active == Some(false) {
            for table in ["agent_sessions", "admin_sessions"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE agent = $1"))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(agent)
    }

    /// Deletes an agent with its sessions and queue memberships (its state
    /// history and call records stay). `NotFound` if there is no such agent.
    pub async fn delete_agent(&self, id: &str) -> Result<(), StoreError> {
        let n = sqlx::query("DELETE FROM agents WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected();
        if n == 0 {
            return Err(not_found("agent", id));
        }
        Ok(())
    }

    /// The agent if `password` is theirs and they are active, else `None`.
    /// An unknown or inactive agent costs the same argon2 verification as a
    /// wrong password, so timing does not tell which agents exist.
    pub async fn verify_agent_password(
        &self,
        id: &str,
        password: &str,
    ) -> Result<Option<Agent>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            agent: Agent,
            password_hash: String,
        }
        let row = if valid_id(id) {
            sqlx::query_as::<_, Row>(&format!(
                "SELECT {AGENT_COLS}, password_hash FROM agents WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
        } else {
            None
        };
        let hash = row
            .as_ref()
            .map(|r| r.password_hash.clone())
            .unwrap_or_default();
        let pw = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            let known = !hash.is_empty();
            let ok = verify_blocking(if known { &hash } else { dummy_hash() }, &pw);
            known && ok
        })
        .await
        .map_err(|e| StoreError::Hash(e.to_string()))?;
        Ok(row.map(|r| r.agent).filter(|a| ok && a.active))
    }

    // ---- sessions -----------------------------------------------------------

    /// Starts a session for `agent`, valid for `ttl`; returns the token for
    /// the cookie (64 hex digits). Only its SHA-256 is stored. Expired
    /// sessions are swept on the way.
    pub async fn create_session(&self, agent: &str, ttl: Duration) -> Result<String, StoreError> {
        let mut raw = [0u8; 32];
        OsRng.fill_bytes(&mut raw);
        let token = hex(&raw);
        sqlx::query("DELETE FROM agent_sessions WHERE expires_at < now()")
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO agent_sessions (token_hash, agent, expires_at) \
             VALUES ($1, $2, now() + $3 * interval '1 second')",
        )
        .bind(session_token_hash(&token))
        .bind(agent)
        .bind(ttl.as_secs_f64())
        .execute(self.pool())
        .await
        .map_err(|e| match db_err(e, "session", agent) {
            StoreError::Invalid(_) => not_found("agent", agent),
            e => e,
        })?;
        Ok(token)
    }

    /// The agent whose live session `token` is (unexpired, agent active),
    /// marking the session seen now; `None` otherwise.
    pub async fn session_agent(&self, token: &str) -> Result<Option<String>, StoreError> {
        if !plausible_token(token) {
            return Ok(None);
        }
        Ok(sqlx::query_scalar::<_, String>(
            "UPDATE agent_sessions s SET last_seen_at = now() FROM agents a \
              WHERE s.token_hash = $1 AND s.expires_at > now() AND a.id = s.agent AND a.active \
             RETURNING s.agent",
        )
        .bind(session_token_hash(token))
        .fetch_optional(self.pool())
        .await?)
    }

    /// Ends a session; whether there was one.
    pub async fn delete_session(&self, token: &str) -> Result<bool, StoreError> {
        if !plausible_token(token) {
            return Ok(false);
        }
        let n = sqlx::query("DELETE FROM agent_sessions WHERE token_hash = $1")
            .bind(session_token_hash(token))
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Ends every session of `agent`; how many there were.
    pub async fn delete_agent_sessions(&self, agent: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM agent_sessions WHERE agent = $1")
            .bind(agent)
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    // ---- state history ------------------------------------------------------

    /// Appends to an agent's state history. `state` is one of [`AGENT_STATES`].
    pub async fn record_agent_state(
        &self,
        agent: &str,
        state: &str,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if !AGENT_STATES.contains(&state) {
            return Err(StoreError::Invalid(format!(
                "agent state {state:?} is not one of {}",
                AGENT_STATES.join(", ")
            )));
        }
        sqlx::query(
            "INSERT INTO agent_state_changes (agent, state, reason, at) VALUES ($1, $2, $3, $4)",
        )
        .bind(agent)
        .bind(state)
        .bind(reason)
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every agent with their last recorded state, by id.
    pub async fn agent_last_states(&self) -> Result<Vec<AgentLastState>, StoreError> {
        Ok(sqlx::query_as::<_, AgentLastState>(
            "SELECT a.id AS agent, a.name, a.active, s.state, s.reason, s.at \
               FROM agents a \
               LEFT JOIN LATERAL (SELECT state, reason, at FROM agent_state_changes \
                                   WHERE agent = a.id ORDER BY at DESC, id DESC LIMIT 1) s ON true \
              ORDER BY a.id",
        )
        .fetch_all(self.pool())
        .await?)
    }

    // ---- queues -------------------------------------------------------------

    /// Creates a queue (with its members, if given). `Conflict` if the name
    /// is taken, `Invalid` for unknown member agents.
    pub async fn create_queue(&self, new: NewQueue) -> Result<Queue, StoreError> {
        check_id("queue name", &new.name)?;
        check_members(&new.members)?;
        let skills = check_issue_skills(&new.issue_skills)?;
        let mut tx = self.pool().begin().await?;
        lock_queues(&mut tx).await?;
        check_overflow(&mut tx, &new.name, &new.overflow).await?;
        sqlx::query(
            "INSERT INTO queues (name, strategy, max_wait_secs, overflow, offer_timeout_secs, \
                                 wrap_up_secs, on_agent_lost, issue_skills, \
                                 callback_attempts, callback_retry_secs, survey, \
                                 service_level_secs) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&new.name)
        .bind(new.strategy.as_str())
        .bind(check_secs("max_wait_secs", new.max_wait_secs, 1)?)
        .bind(new.overflow.to_string())
        .bind(check_secs("offer_timeout_secs", new.offer_timeout_secs, 1)?)
        .bind(check_secs("wrap_up_secs", new.wrap_up_secs, 0)?)
        .bind(new.on_agent_lost.as_str())
        .bind(&skills)
        .bind(check_attempts(new.callback_attempts)?)
        .bind(check_secs(
            "callback_retry_secs",
            new.callback_retry_secs,
            0,
        )?)
        .bind(new.survey)
        .bind(check_secs("service_level_secs", new.service_level_secs, 1)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_err(e, "queue", &new.name))?;
        replace_members(&mut tx, &new.name, &new.members).await?;
        let q = fetch_queue(&mut tx, &new.name).await?;
        tx.commit().await?;
        q.ok_or_else(|| not_found("queue", &new.name))
    }

    /// All queues with their members, by name.
    pub async fn list_queues(&self) -> Result<Vec<Queue>, StoreError> {
        sqlx::query_as::<_, QueueRow>(&format!("{QUEUE_SELECT} ORDER BY q.name"))
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(Queue::try_from)
            .collect()
    }

    /// One queue, or `None`.
    pub async fn queue(&self, name: &str) -> Result<Option<Queue>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        fetch_queue(&mut conn, name).await
    }

    /// Changes the fields given. `NotFound` if there is no such queue.
    pub async fn update_queue(&self, name: &str, up: QueueUpdate) -> Result<Queue, StoreError> {
        let secs = |what, v: Option<u32>, min| v.map(|v| check_secs(what, v, min)).transpose();
        let max_wait = secs("max_wait_secs", up.max_wait_secs, 1)?;
        let offer_timeout = secs("offer_timeout_secs", up.offer_timeout_secs, 1)?;
        let wrap_up = secs("wrap_up_secs", up.wrap_up_secs, 0)?;
        let attempts = up.callback_attempts.map(check_attempts).transpose()?;
        let retry = secs("callback_retry_secs", up.callback_retry_secs, 0)?;
        let service_level = secs("service_level_secs", up.service_level_secs, 1)?;
        let skills = up
            .issue_skills
            .as_ref()
            .map(check_issue_skills)
            .transpose()?;
        if let Some(m) = &up.members {
            check_members(m)?;
        }
        let mut tx = self.pool().begin().await?;
        lock_queues(&mut tx).await?;
        let n = sqlx::query(
            "UPDATE queues SET strategy = coalesce($2, strategy), \
                    max_wait_secs = coalesce($3, max_wait_secs), overflow = coalesce($4, overflow), \
                    offer_timeout_secs = coalesce($5, offer_timeout_secs), \
                    wrap_up_secs = coalesce($6, wrap_up_secs), \
                    on_agent_lost = coalesce($7, on_agent_lost), \
                    issue_skills = coalesce($8, issue_skills), \
                    callback_attempts = coalesce($9, callback_attempts), \
                    callback_retry_secs = coalesce($10, callback_retry_secs), \
                    survey = coalesce($11, survey), \
                    service_level_secs = coalesce($12, service_level_secs) \
              WHERE name = $1",
        )
        .bind(name)
        .bind(up.strategy.map(Strategy::as_str))
        .bind(max_wait)
        .bind(up.overflow.as_ref().map(Overflow::to_string))
        .bind(offer_timeout)
        .bind(wrap_up)
        .bind(up.on_agent_lost.map(AgentLostPolicy::as_str))
        .bind(skills)
        .bind(attempts)
        .bind(retry)
        .bind(up.survey)
        .bind(service_level)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_err(e, "queue", name))?
        .rows_affected();
        if n == 0 {
            return Err(not_found("queue", name));
        }
        if let Some(overflow) = &up.overflow {
            check_overflow(&mut tx, name, overflow).await?;
        }
        if let Some(members) = &up.members {
            replace_members(&mut tx, name, members).await?;
        }
        let q = fetch_queue(&mut tx, name).await?;
        tx.commit().await?;
        q.ok_or_else(|| not_found("queue", name))
    }

    /// Deletes a queue and its membership. `NotFound` if there is no such
    /// queue, `Invalid` if another queue overflows to it (its callers would
    /// be sent nowhere).
    pub async fn delete_queue(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        lock_queues(&mut tx).await?;
        let users: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM queues WHERE overflow = $1 AND name <> $2 ORDER BY name",
        )
        .bind(Overflow::Queue(QueueName::new(name)).to_string())
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        if !users.is_empty() {
            return Err(StoreError::Invalid(format!(
                "queue {name:?} is the overflow of {}: change their overflow first",
                users
                    .iter()
                    .map(|u| format!("{u:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let n = sqlx::query("DELETE FROM queues WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(not_found("queue", name));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets who answers a queue, in this (round-robin) order. `NotFound` for
    /// the queue, `Invalid` for unknown or repeated agents.
    pub async fn set_queue_members(
        &self,
        queue: &str,
        agents: &[String],
    ) -> Result<Queue, StoreError> {
        check_members(agents)?;
        let mut tx = self.pool().begin().await?;
        let exists =
            sqlx::query_scalar::<_, String>("SELECT name FROM queues WHERE name = $1 FOR UPDATE")
                .bind(queue)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Err(not_found("queue", queue));
        }
        replace_members(&mut tx, queue, agents).await?;
        let q = fetch_queue(&mut tx, queue).await?;
        tx.commit().await?;
        q.ok_or_else(|| not_found("queue", queue))
    }
}

/// Serialises changes to the queues (not reads) for the rest of `tx`, so two
/// admins cannot each add half of an overflow loop, or delete a queue while
/// another starts overflowing to it.
async fn lock_queues(tx: &mut sqlx::PgConnection) -> Result<(), StoreError> {
    sqlx::query("LOCK TABLE queues IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// `Invalid` unless `queue`'s `overflow` (if to a queue) names another
/// existing queue and following the overflows from there never comes back
/// to `queue` (a caller would bounce between them until hung up).
async fn check_overflow(
    tx: &mut sqlx::PgConnection,
    queue: &str,
    overflow: &Overflow,
) -> Result<(), StoreError> {
    let Overflow::Queue(target) = overflow else {
        return Ok(());
    };
    let target = target.as_str();
    if target == queue {
        return Err(StoreError::Invalid(format!(
            "overflow loop: queue {queue:?} cannot overflow to itself ({queue} → {queue})"
        )));
    }
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT name, overflow FROM queues")
        .fetch_all(&mut *tx)
        .await?;
    let mut edges: BTreeMap<String, Option<String>> = rows
        .into_iter()
        .map(|(name, o)| match o.parse::<Overflow>() {
            Ok(Overflow::Queue(t)) => (name, Some(t.0)),
            _ => (name, None),
        })
        .collect();
    if !edges.contains_key(target) {
        return Err(StoreError::Invalid(format!(
            "overflow {overflow}: there is no queue {target:?} (create it first)"
        )));
    }
    edges.insert(queue.to_owned(), Some(target.to_owned()));
    match overflow_cycle(&edges, queue) {
        Some(cycle) => Err(StoreError::Invalid(format!(
            "overflow loop: {} (queue {queue:?} cannot overflow to {target:?})",
            cycle.join(" → ")
        ))),
        None => Ok(()),
    }
}

/// Following each queue's overflow queue (`edges`: queue → the queue it
/// overflows to) from `start`: the loop back to `start` as
/// `[start, …, start]`, or `None` if the chain ends (or loops elsewhere).
pub fn overflow_cycle(
    edges: &BTreeMap<String, Option<String>>,
    start: &str,
) -> Option<Vec<String>> {
    let mut path = vec![start.to_owned()];
    let mut at = start;
    while let Some(Some(next)) = edges.get(at) {
        if next == start {
            path.push(next.clone());
            return Some(path);
        }
        if path.contains(next) {
            return None;
        }
        path.push(next.clone());
        at = next;
    }
    None
}

async fn fetch_queue(
    conn: &mut sqlx::PgConnection,
    name: &str,
) -> Result<Option<Queue>, StoreError> {
    sqlx::query_as::<_, QueueRow>(&format!("{QUEUE_SELECT} WHERE q.name = $1"))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .map(Queue::try_from)
        .transpose()
}

/// Replaces a queue's members (checked: valid, distinct) inside `tx`.
async fn replace_members(
    tx: &mut sqlx::PgConnection,
    queue: &str,
    agents: &[String],
) -> Result<(), StoreError> {
    let known: Vec<String> = sqlx::query_scalar("SELECT id FROM agents WHERE id = ANY($1)")
        .bind(agents)
        .fetch_all(&mut *tx)
        .await?;
    let unknown: Vec<&str> = agents
        .iter()
        .filter(|a| !known.contains(a))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(StoreError::Invalid(format!(
            "unknown agent(s) for queue {queue:?}: {}",
            unknown.join(", ")
        )));
    }
    sqlx::query("DELETE FROM queue_members WHERE queue = $1")
        .bind(queue)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO queue_members (queue, agent, position) \
         SELECT $1, agent, (pos - 1)::int4 FROM UNNEST($2::text[]) WITH ORDINALITY AS m(agent, pos)",
    )
    .bind(queue)
    .bind(agents)
    .execute(&mut *tx)
    .await
    .map_err(|e| db_err(e, "queue", queue))?;
    Ok(())
}

/// The channel every change to agents, queues or queue membership notifies
/// (migration 0017's statement triggers; the payload is the table's name).
pub const ADMIN_CHANNEL: &str = "hotline_admin";

/// `LISTEN hotline_admin` on a connection of its own
/// ([`Store::listen_admin_changes`]).
pub struct AdminListener(sqlx::postgres::PgListener);

impl AdminListener {
    /// The table of the next change. `Ok(None)`: the connection was lost
    /// (the next call reconnects and listens again; changes in between are
    /// not seen, so reload everything).
    pub async fn next(&mut self) -> Result<Option<String>, StoreError> {
        Ok(self.0.try_recv().await?.map(|n| n.payload().to_owned()))
    }
}

impl Store {
    /// Listens for changes to agents, queues and membership
    /// ([`ADMIN_CHANNEL`]), made by any gateway or command.
    pub async fn listen_admin_changes(&self) -> Result<AdminListener, StoreError> {
        let mut l = sqlx::postgres::PgListener::connect_with(self.pool()).await?;
        l.listen(ADMIN_CHANNEL).await?;
        Ok(AdminListener(l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_loops_are_found_through_the_start() {
        let edges = |pairs: &[(&str, Option<&str>)]| -> BTreeMap<String, Option<String>> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.map(str::to_owned)))
                .collect()
        };
        let g = edges(&[("a", Some("b")), ("b", Some("c")), ("c", Some("a"))]);
        assert_eq!(overflow_cycle(&g, "a").unwrap(), ["a", "b", "c", "a"]);
        let g = edges(&[("a", Some("a"))]);
        assert_eq!(overflow_cycle(&g, "a").unwrap(), ["a", "a"]);
        let g = edges(&[("a", Some("b")), ("b", None)]);
        assert_eq!(overflow_cycle(&g, "a"), None);
        // A loop elsewhere (old data) ends the walk instead of spinning.
        let g = edges(&[("a", Some("b")), ("b", Some("c")), ("c", Some("b"))]);
        assert_eq!(overflow_cycle(&g, "a"), None);
        let g = edges(&[("a", Some("ghost"))]);
        assert_eq!(overflow_cycle(&g, "a"), None);
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_blocking("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_blocking(&h, "correct horse"));
        assert!(!verify_blocking(&h, "wrong horse"));
        assert!(!verify_blocking(dummy_hash(), ""));
        assert_ne!(h, hash_blocking("correct horse").unwrap(), "salted");
    }

    #[test]
    fn tokens_hash_to_hex_sha256() {
        let t = "ab".repeat(32);
        assert!(plausible_token(&t));
        assert!(!plausible_token("AB"));
        assert_eq!(session_token_hash(&t).len(), 64);
        assert_ne!(session_token_hash(&t), t);
    }
}
