//! Queue and agent configuration, as it comes from the config file or the
//! database; the ACD takes it at start and on every admin change.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::ids::{AgentId, QueueName};
use crate::strategy::Strategy;

/// Where a call goes when it has waited [`QueueConfig::max_wait`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Leaves the ACD; the shell records a voicemail.
    Voicemail,
    /// The call stays in the ACD as a *callback entry* that keeps the
    /// caller's place (same queue, priority and arrival order); the shell
    /// tells the caller they will be called back and hangs up their leg. The
    /// entry is offered to agents like a call; when one accepts, the shell
    /// dials the customer. See the crate documentation, "Callback entries".
    /// A queue that is removed cannot keep a place: its waiting calls then
    /// overflow to [`Overflow::Voicemail`] instead.
    Callback,
    /// Leaves the ACD; the shell apologises and hangs up.
    Hangup,
    /// Moves to another queue, keeping its original queue time (so it is
    /// served before callers who arrived later). The call stays in the ACD.
    /// A missing queue, or a call that has already overflowed as many times
    /// as there are queues (a cycle), becomes [`Overflow::Hangup`].
    Queue(QueueName),
}

/// What happens to a call whose agent disconnects (browser closed) mid-call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AgentLostPolicy {
    /// Back into its queue, keeping its place and with a fresh max wait.
    #[default]
    Requeue,
    /// The ACD lets the call go; the shell tells the caller and hangs up.
    Release,
}

/// One queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// The name flows enqueue calls by.
    pub name: QueueName,
    /// How an agent is picked for a call.
    pub strategy: Strategy,
    /// Who answers this queue. The order is the round-robin order. Ids of
    /// agents that do not exist (yet) are skipped, so membership can be
    /// edited independently of the agents.
    pub members: Vec<AgentId>,
    /// After this long in the queue a call overflows, even if an agent is
    /// ringing for it at that moment (the offer is withdrawn): the caller was
    /// promised no longer.
    pub max_wait: Duration,
    /// Where a call goes after [`QueueConfig::max_wait`].
    pub overflow: Overflow,
    /// An offer not accepted within this long times out; the agent goes away.
    pub offer_timeout: Duration,
    /// After-call work before the agent is offered the next call. Zero: none.
    pub wrap_up: Duration,
    /// Issue type → required skill, used by [`Strategy::SkillsPriority`].
    /// Issue types are dotted (`subscription.refund`); the longest mapped
    /// prefix wins (`subscription.refund`, then `subscription`). A call with
    /// no issue type, or one no entry covers, may go to any member.
    pub skills: BTreeMap<String, String>,
    /// What happens to a call whose agent disconnects mid-call. Callback
    /// entries are always requeued (no caller is left on hold).
    pub on_agent_lost: AgentLostPolicy,
    /// Failed outbound attempts ([`crate::Acd::callback_failed`]) after which
    /// a callback entry is given up ([`crate::AcdAction::CallbackAbandoned`]).
    /// At least one attempt is always made (0 counts as 1).
    pub callback_attempts: u32,
    /// After a failed attempt, a callback entry keeps its place but is not
    /// offered again before this long has passed.
    pub callback_retry: Duration,
    /// After the agent hangs up, the caller is kept on the line for the
    /// satisfaction survey (rate 1–5, an optional comment).
    pub survey: bool,
}

impl QueueConfig {
    /// A queue with the defaults: longest idle, no members, 2 min max wait
    /// then voicemail, 20 s offers, 30 s wrap-up, requeue on a lost agent,
    /// callbacks tried 3 times 2 min apart, no survey.
    /// Use struct update syntax to change any of them.
    pub fn new(name: impl Into<QueueName>) -> Self {
        Self {
            name: name.into(),
            strategy: Strategy::LongestIdle,
            members: Vec::new(),
            max_wait: Duration::from_secs(120),
            overflow: Overflow::Voicemail,
            offer_timeout: Duration::from_secs(20),
            wrap_up: Duration::from_secs(30),
            skills: BTreeMap::new(),
            on_agent_lost: AgentLostPolicy::Requeue,
            callback_attempts: 3,
            callback_retry: Duration::from_secs(120),
            survey: false,
        }
    }

    /// The skill a call of `issue_type` needs in this queue, if any.
    pub fn required_skill(&self, issue_type: Option<&str>) -> Option<&str> {
        if !self.strategy.routes_on_skills() {
            return None;
        }
        let mut key = issue_type?;
        loop {
            if let Some(skill) = self.skills.get(key) {
                return Some(skill);
            }
            key = &key[..key.rfind('.')?];
        }
    }
}

/// One agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    /// The agent's id (their login), unique.
    pub id: AgentId,
    /// Display name.
    pub name: String,
    /// What [`Strategy::SkillsPriority`] queues match a call's required
    /// skill against.
    pub skills: Vec<String>,
}

impl AgentConfig {
    /// An agent with no skills.
    pub fn new(id: impl Into<AgentId>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            skills: Vec::new(),
        }
    }

    /// The same agent with these skills.
    pub fn with_skills<S: Into<String>>(mut self, skills: impl IntoIterator<Item = S>) -> Self {
        self.skills = skills.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the agent has `skill` (exact, case-sensitive match).
    pub fn has_skill(&self, skill: &str) -> bool {
        self.skills.iter().any(|s| s == skill)
    }
}

// ---- settings as text --------------------------------------------------------
//
// The queue settings as the admin API and the `queues` table spell them:
// written in snake case (`round_robin`, `queue:<name>`), read in any case
// with `-` for `_` too (the docs and operators write `round-robin`).

/// Agent ids, queue names, skills as the admin API accepts them: 1–64 of
/// `A-Z a-z 0-9 . _ @ -`.
pub fn valid_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

/// A queue setting given as text that names no value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSetting(String);

/// A setting word as compared: trimmed, lower case, `-` as `_`.
fn setting_word(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace('-', "_")
}

impl Strategy {
    /// The strategy's name: `longest_idle`, `round_robin`, `ring_all`,
    /// `skills_priority`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::LongestIdle => "longest_idle",
            Strategy::RoundRobin => "round_robin",
            Strategy::RingAll => "ring_all",
            Strategy::SkillsPriority => "skills_priority",
        }
    }
}

impl std::str::FromStr for Strategy {
    type Err = InvalidSetting;

    /// A strategy's name spelled with `_` or `-`, in any case.
    fn from_str(s: &str) -> Result<Self, InvalidSetting> {
        Ok(match setting_word(s).as_str() {
            "longest_idle" => Strategy::LongestIdle,
            "round_robin" => Strategy::RoundRobin,
            "ring_all" => Strategy::RingAll,
            "skills_priority" => Strategy::SkillsPriority,
            _ => {
                return Err(InvalidSetting(format!(
                    "strategy {s:?} is not longest_idle, round_robin, ring_all or skills_priority \
                     (`-` for `_` is fine too)"
                )));
            }
        })
    }
}

impl Default for Overflow {
    /// [`Overflow::Voicemail`], as in [`QueueConfig::new`].
    fn default() -> Self {
        Overflow::Voicemail
    }
}

impl fmt::Display for Overflow {
    /// `voicemail`, `callback`, `hangup` or `queue:<name>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Overflow::Voicemail => f.write_str("voicemail"),
            Overflow::Callback => f.write_str("callback"),
            Overflow::Hangup => f.write_str("hangup"),
            Overflow::Queue(q) => write!(f, "queue:{q}"),
        }
    }
}

impl std::str::FromStr for Overflow {
    type Err = InvalidSetting;

    /// The keywords in any case (and `hang-up`), or `queue:<name>` with a
    /// [`valid_id`] name, taken as given.
    fn from_str(s: &str) -> Result<Self, InvalidSetting> {
        let word = setting_word(s);
        Ok(match word.as_str() {
            "voicemail" | "voice_mail" => Overflow::Voicemail,
            "callback" | "call_back" => Overflow::Callback,
            "hangup" | "hang_up" => Overflow::Hangup,
            _ => match word.strip_prefix("queue:").and_then(|_| s.trim().get(6..)) {
                Some(q) if valid_id(q.trim()) => Overflow::Queue(QueueName::new(q.trim())),
                _ => {
                    return Err(InvalidSetting(format!(
                        "overflow {s:?} is not voicemail, callback, hangup or queue:<name>"
                    )));
                }
            },
        })
    }
}

impl AgentLostPolicy {
    /// `requeue` or `release`.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentLostPolicy::Requeue => "requeue",
            AgentLostPolicy::Release => "release",
        }
    }
}

impl std::str::FromStr for AgentLostPolicy {
    type Err = InvalidSetting;

    /// `requeue` or `release`, in any case.
    fn from_str(s: &str) -> Result<Self, InvalidSetting> {
        Ok(match setting_word(s).as_str() {
            "requeue" | "re_queue" => AgentLostPolicy::Requeue,
            "release" => AgentLostPolicy::Release,
            _ => {
                return Err(InvalidSetting(format!(
                    "on_agent_lost {s:?} is not requeue or release"
                )));
            }
        })
    }
}

/// Serde as text: [`Strategy::as_str`], [`Overflow`]'s `Display` and
/// [`AgentLostPolicy::as_str`] out; their `FromStr` (any spelling) in.
macro_rules! serde_as_text {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

serde_as_text!(Strategy, Overflow, AgentLostPolicy);

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for AgentLostPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_any_spelling_and_write_snake_case() {
        for (text, want) in [
            ("round_robin", Strategy::RoundRobin),
            ("round-robin", Strategy::RoundRobin),
            ("Ring-All", Strategy::RingAll),
            ("skills-priority", Strategy::SkillsPriority),
            ("longest_idle", Strategy::LongestIdle),
        ] {
            let got: Strategy = serde_json::from_value(serde_json::json!(text)).unwrap();
            assert_eq!(got, want, "{text}");
        }
        assert_eq!(
            serde_json::to_value(Strategy::RoundRobin).unwrap(),
            "round_robin"
        );
        assert!(serde_json::from_str::<Strategy>("\"random\"").is_err());
        let lost: AgentLostPolicy = serde_json::from_str("\"Release\"").unwrap();
        assert_eq!(lost, AgentLostPolicy::Release);
        assert_eq!(
            serde_json::to_value(AgentLostPolicy::Requeue).unwrap(),
            "requeue"
        );
        assert_eq!("hang-up".parse::<Overflow>().unwrap(), Overflow::Hangup);
        assert_eq!(
            "queue:my-queue".parse::<Overflow>().unwrap(),
            Overflow::Queue("my-queue".into())
        );
        assert_eq!(
            "queue:sales".parse::<Overflow>().unwrap(),
            Overflow::Queue("sales".into())
        );
        assert_eq!(Overflow::Queue("sales".into()).to_string(), "queue:sales");
        assert!("queue:".parse::<Overflow>().is_err());
        assert!("queue:a b".parse::<Overflow>().is_err());
        assert!("bounce".parse::<Overflow>().is_err());
        let o: Overflow = serde_json::from_str("\"callback\"").unwrap();
        assert_eq!(o, Overflow::Callback);
        assert_eq!(
            serde_json::to_value(Overflow::Queue("b".into())).unwrap(),
            "queue:b"
        );
    }

    #[test]
    fn ids_are_checked() {
        assert!(valid_id("a1") && valid_id("ada.agent@x") && !valid_id("") && !valid_id("a b"));
        assert!(!valid_id(&"x".repeat(65)));
    }

    #[test]
    fn skills_match_the_longest_prefix_only_for_skills_priority() {
        let mut q = QueueConfig {
            strategy: Strategy::SkillsPriority,
            ..QueueConfig::new("support")
        };
        q.skills.insert("subscription".into(), "billing".into());
        q.skills
            .insert("subscription.refund".into(), "refunds".into());
        assert_eq!(
            q.required_skill(Some("subscription.refund")),
            Some("refunds")
        );
        assert_eq!(
            q.required_skill(Some("subscription.refund.partial")),
            Some("refunds")
        );
        assert_eq!(
            q.required_skill(Some("subscription.cancel")),
            Some("billing")
        );
        assert_eq!(q.required_skill(Some("order")), None);
        assert_eq!(q.required_skill(None), None);
        q.strategy = Strategy::LongestIdle;
        assert_eq!(q.required_skill(Some("subscription")), None);
    }
}
