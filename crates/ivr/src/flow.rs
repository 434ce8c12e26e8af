//! A loaded flow: nodes by stable id, each of one kind, all references checked.
//!
//! These types are what the loader produces and the interpreter walks; they
//! are immutable once built and shared between calls as `Arc<Flow>`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;
use regex::Regex;

pub use crate::condition::{CompareOp, Condition, Literal, Test};
use crate::yaml::Pos;

/// One IVR flow, from one YAML file.
#[derive(Debug)]
pub struct Flow {
    /// The flow's name (`flow:` in the file, else the file stem).
    pub name: String,
    /// Content hash of the file (first 12 hex digits of its SHA-256).
    pub version: String,
    pub path: PathBuf,
    pub description: Option<String>,
    /// Languages the flow speaks; prompts must exist in each.
    pub languages: Vec<String>,
    /// The language a call starts in.
    pub default_language: String,
    pub start: String,
    /// Nodes in file order.
    pub nodes: Vec<Node>,
    pub(crate) index: HashMap<String, usize>,
}

impl Flow {
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.index.get(id).map(|&i| &self.nodes[i])
    }
}

/// A step of a flow with its stable id (used in logs and call records).
#[derive(Debug)]
pub struct Node {
    pub id: String,
    pub pos: Pos,
    /// Set on the call when the node is entered (e.g. `subscription.refund`).
    pub issue_type: Option<String>,
    pub kind: NodeKind,
}

#[derive(Debug)]
pub enum NodeKind {
    Play(Play),
    Menu(Menu),
    Gather(DigitCollector),
    Branch(Branch),
    Set(SetVars),
    Hours(BusinessHours),
    Language(LanguageChoice),
    Lookup(Lookup),
    Say(Say),
    Enqueue(Enqueue),
    Voicemail(Voicemail),
    Callback(Callback),
    Transfer(Transfer),
    Hangup(Hangup),
}

impl NodeKind {
    /// The `type:` name of the node, as written in YAML.
    pub fn name(&self) -> &'static str {
        match self {
            NodeKind::Play(_) => "play",
            NodeKind::Menu(_) => "menu",
            NodeKind::Gather(_) => "gather",
            NodeKind::Branch(_) => "branch",
            NodeKind::Set(_) => "set",
            NodeKind::Hours(_) => "hours",
            NodeKind::Language(_) => "language",
            NodeKind::Lookup(_) => "lookup",
            NodeKind::Say(_) => "say",
            NodeKind::Enqueue(_) => "enqueue",
            NodeKind::Voicemail(_) => "voicemail",
            NodeKind::Callback(_) => "callback",
            NodeKind::Transfer(_) => "transfer",
            NodeKind::Hangup(_) => "hangup",
        }
    }

    /// True for nodes that wait for the caller (digits or a recording).
    pub fn waits_for_caller(&self) -> bool {
        match self {
            NodeKind::Menu(_)
            | NodeKind::Gather(_)
            | NodeKind::Callback(_)
            | NodeKind::Voicemail(_) => true,
            NodeKind::Language(l) => !l.choice.options.is_empty(),
            _ => false,
        }
    }

    /// Where the node can go next, labelled for graphs.
    pub fn exits(&self) -> Vec<(String, &str)> {
        fn one<'a>(label: &str, to: &'a str) -> (String, &'a str) {
            (label.to_owned(), to)
        }
        let mut out: Vec<(String, &str)> = Vec::new();
        match self {
            NodeKind::Play(p) => out.push(one("", &p.next)),
            NodeKind::Menu(m) => {
                for (d, to) in &m.choice.options {
                    out.push((d.to_string(), to.as_str()));
                }
                out.push(one("no choice", &m.on_exhausted));
            }
            NodeKind::Gather(g) => {
                out.push(one("ok", &g.next));
                out.push(one("no valid input", &g.on_exhausted));
            }
            NodeKind::Branch(b) => {
                for c in &b.cases {
                    out.push((c.condition.text.clone(), c.next.as_str()));
                }
                out.push(one("else", &b.otherwise));
            }
            NodeKind::Set(s) => out.push(one("", &s.next)),
            NodeKind::Hours(h) => {
                out.push(one("open", &h.open));
                out.push(one("closed", &h.closed));
                if let Some(to) = &h.holiday {
                    out.push(one("holiday", to));
                }
            }
            NodeKind::Language(l) => out.push(one("", &l.next)),
            NodeKind::Lookup(l) => {
                out.push(one("found", &l.next));
                if let Some(to) = &l.on_not_found {
                    out.push(one("not found", to));
                }
                out.push(one("failed", &l.on_failure));
            }
            NodeKind::Say(s) => out.push(one("", &s.next)),
            NodeKind::Voicemail(v) => out.push(one("", &v.next)),
            NodeKind::Callback(c) => {
                out.push(one("slot chosen", &c.next));
                out.push(one("no choice", &c.on_exhausted));
            }
            NodeKind::Enqueue(_) | NodeKind::Transfer(_) | NodeKind::Hangup(_) => {}
        }
        out
    }

    /// Every node id this node refers to.
    pub fn targets(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        match self {
            NodeKind::Play(p) => out.push(&p.next),
            NodeKind::Menu(m) => {
                out.extend(m.choice.options.iter().map(|(_, t)| t.as_str()));
                out.push(&m.on_exhausted);
            }
            NodeKind::Gather(g) => {
                out.push(&g.next);
                out.push(&g.on_exhausted);
            }
            NodeKind::Branch(b) => {
                out.extend(b.cases.iter().map(|c| c.next.as_str()));
                out.push(&b.otherwise);
            }
            NodeKind::Set(s) => out.push(&s.next),
            NodeKind::Hours(h) => {
                out.push(&h.open);
                out.push(&h.closed);
                out.extend(h.holiday.as_deref());
            }
            NodeKind::Language(l) => out.push(&l.next),
            NodeKind::Lookup(l) => {
                out.push(&l.next);
                out.extend(l.on_not_found.as_deref());
                out.push(&l.on_failure);
            }
            NodeKind::Say(s) => out.push(&s.next),
            NodeKind::Voicemail(v) => out.push(&v.next),
            NodeKind::Callback(c) => {
                out.push(&c.next);
                out.push(&c.on_exhausted);
            }
            NodeKind::Enqueue(_) | NodeKind::Transfer(_) | NodeKind::Hangup(_) => {}
        }
        out
    }
}

/// Play prompts, then go on.
#[derive(Debug)]
pub struct Play {
    pub prompts: Vec<String>,
    /// A key press stops the prompts; the key is kept for the next menu.
    pub barge_in: bool,
    pub next: String,
    /// Recorded as the call's outcome when the prompts finish (e.g.
    /// `self_served` on the play that answers the caller's question).
    pub outcome: Option<String>,
}

/// The part menus, language choices and callback slots share: a prompt and
/// one key to press, with retries on silence or a wrong key.
#[derive(Debug)]
pub struct Choice {
    pub prompts: Vec<String>,
    pub barge_in: bool,
    /// Key → node id (menu), language (language) or slot (callback).
    pub options: Vec<(char, String)>,
    pub timeout: Duration,
    /// How many more times the prompt is played after silence or a wrong key.
    pub retries: u32,
    pub invalid_prompts: Vec<String>,
    pub timeout_prompts: Vec<String>,
}

impl Choice {
    pub fn option(&self, key: char) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
pub struct Menu {
    pub choice: Choice,
    /// Where to go when retries run out.
    pub on_exhausted: String,
}

/// `gather`: several digits into a variable.
#[derive(Debug)]
pub struct DigitCollector {
    pub prompts: Vec<String>,
    pub min_digits: usize,
    pub max_digits: usize,
    pub finish_key: Option<char>,
    pub first_digit_timeout: Duration,
    pub inter_digit_timeout: Duration,
    pub retries: u32,
    /// The whole input must match (anchored).
    pub pattern: Option<Regex>,
    pub into: String,
    pub invalid_prompts: Vec<String>,
    pub timeout_prompts: Vec<String>,
    pub next: String,
    pub on_exhausted: String,
}

#[derive(Debug)]
pub struct Branch {
    pub cases: Vec<Case>,
    pub otherwise: String,
}

#[derive(Debug)]
pub struct Case {
    pub condition: Condition,
    pub next: String,
}

#[derive(Debug)]
pub struct SetVars {
    pub vars: Vec<(String, Template)>,
    pub next: String,
}

/// Weekly opening hours in a time zone, with holidays.
#[derive(Debug)]
pub struct BusinessHours {
    pub time_zone: Tz,
    /// Monday first; each day a list of [start, end) ranges in minutes after
    /// local midnight (end may be 1440, "24:00").
    pub weekly: [Vec<(u16, u16)>; 7],
    pub holidays: Vec<NaiveDate>,
    pub open: String,
    pub closed: String,
    /// Where to go on a holiday (default: `closed`).
    pub holiday: Option<String>,
}

#[derive(Debug)]
pub struct LanguageChoice {
    /// Set this language at once (no question asked).
    pub set: Option<String>,
    /// Or ask: options map keys to languages; silence keeps the current one.
    pub choice: Choice,
    pub next: String,
}

#[derive(Debug)]
pub struct Lookup {
    pub source: LookupSource,
    pub params: Vec<(String, Template)>,
    /// Results land in `<into>.<field>` variables.
    pub into: String,
    pub timeout: Duration,
    pub next: String,
    pub on_not_found: Option<String>,
    pub on_failure: String,
}

/// Where a lookup's answer comes from; the call shell performs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupSource {
    /// The subscriber whose phone number is the caller's (param `number`, default `${caller}`).
    SubscriberByCallerId,
    /// An order by its number (param `number`).
    OrderByNumber,
    /// POST the params as a JSON object to `url`; a JSON object comes back.
    Webhook { url: String },
}

impl LookupSource {
    pub fn name(&self) -> &'static str {
        match self {
            LookupSource::SubscriberByCallerId => "subscriber_by_caller_id",
            LookupSource::OrderByNumber => "order_by_number",
            LookupSource::Webhook { .. } => "webhook",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SayAs {
    Digits,
    Number,
    Date,
}

#[derive(Debug)]
pub struct Say {
    pub before: Vec<String>,
    pub value: Template,
    pub say_as: SayAs,
    pub after: Vec<String>,
    pub barge_in: bool,
    pub next: String,
    /// Recorded as the call's outcome when the value has been said.
    pub outcome: Option<String>,
}

#[derive(Debug)]
pub struct Enqueue {
    pub queue: String,
    pub priority: i64,
    pub data: Vec<(String, Template)>,
}

#[derive(Debug)]
pub struct Voicemail {
    pub prompts: Vec<String>,
    pub max_seconds: u32,
    pub beep: bool,
    pub next: String,
}

#[derive(Debug)]
pub struct Callback {
    /// Options map keys to slot names (e.g. `morning`).
    pub choice: Choice,
    /// Must render to a dialable number (see [`crate::callback::is_dialable`]).
    pub number: Template,
    /// The queue whose agents make the call.
    pub queue: Option<String>,
    /// The `hours` node whose schedule the slots follow.
    pub hours: Option<String>,
    /// Slot name → local minute of day on the next open day; a slot not
    /// listed is `asap` (now if open, else the next opening).
    pub slot_times: Vec<(String, u16)>,
    pub next: String,
    pub on_exhausted: String,
    /// Where to go when `number` is not dialable (default: `on_exhausted`).
    pub on_no_number: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferMethod {
    /// A new INVITE to the target, bridged by the gateway.
    Invite,
    /// Ask the caller's side to call the target (SIP REFER).
    Refer,
}

impl TransferMethod {
    pub fn name(self) -> &'static str {
        match self {
            TransferMethod::Invite => "invite",
            TransferMethod::Refer => "refer",
        }
    }
}

#[derive(Debug)]
pub struct Transfer {
    pub to: String,
    pub method: TransferMethod,
}

#[derive(Debug)]
pub struct Hangup {
    /// Played (without barge-in) before hanging up.
    pub prompts: Vec<String>,
    /// Recorded as the call's outcome (e.g. `self_served`).
    pub outcome: Option<String>,
}

/// Text with `${variable}` references, filled in when the node runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(pub String);

impl Template {
    /// Fills in variables; an unset variable becomes empty text.
    pub fn render(&self, lookup: impl Fn(&str) -> Option<String>) -> String {
        let mut out = String::with_capacity(self.0.len());
        let mut rest = self.0.as_str();
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            match rest[i + 2..].find('}') {
                Some(j) => {
                    let name = rest[i + 2..i + 2 + j].trim();
                    out.push_str(&lookup(name).unwrap_or_default());
                    rest = &rest[i + 2 + j + 1..];
                }
                None => {
                    out.push_str(&rest[i..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// True when the whole template is one `${variable}`.
    pub fn single_var(&self) -> Option<&str> {
        let t = self.0.trim();
        let inner = t.strip_prefix("${")?.strip_suffix('}')?;
        (!inner.contains('}') && !inner.contains("${")).then_some(inner.trim())
    }
}
