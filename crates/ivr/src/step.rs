//! What a node kind's step works with: the events a call feeds in, the
//! actions it asks for, and the step context ([`StepCx`]) a kind's `enter`
//! and event handlers run in.
//!
//! Owns [`Event`], [`Action`] and [`ForcedHours`] (public through
//! [`crate::interp`]), the wait states ([`Step`], [`After`]), the shapes of a
//! one-key question ([`Question`], [`Reprompt`]) and the call's state
//! ([`Call`]). The interpreter ([`crate::interp::Interpreter`]) implements
//! [`StepCx`]; node kinds see it only as `dyn StepCx`, so they sit below the
//! flow and the interpreter rather than beside them.

use std::any::Any;
use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::condition::{get_path, value_text};
use crate::model::{Choice, LookupSource, Template, TransferMethod};

/// What `--force-hours` makes every `hours` node answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForcedHours {
    /// Every `hours` node answers "open".
    Open,
    /// Every `hours` node answers "closed".
    Closed,
}

impl std::str::FromStr for ForcedHours {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(Self::Open),
            "closed" => Ok(Self::Closed),
            _ => Err(format!("`{s}`: expected open or closed")),
        }
    }
}

/// Something that happened on the call.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The call is answered and media flows: the flow begins.
    Started,
    /// The caller pressed a key (0-9, *, #).
    Digit(char),
    /// The latest `Play` ended, or a key press stopped it.
    PromptFinished {
        /// `true` when a key press stopped it.
        interrupted: bool,
    },
    /// The instant from `next_timeout()` has passed.
    TimerFired,
    /// The answer to `Action::Lookup` with the same id.
    LookupResult {
        /// The id of the `Action::Lookup` this answers.
        id: u64,
        /// The source's answer (a JSON object), or why it failed.
        result: Result<Map<String, Value>, String>,
    },
    /// The voicemail asked for by `Action::RecordVoicemail` is complete.
    RecordingFinished {
        /// The message's length in milliseconds.
        duration_ms: u64,
        /// The WAV file; `None` when recording failed.
        path: Option<String>,
    },
    /// The survey asked for by `Action::Survey` is over (not sent when
    /// the caller hangs up during it: `Event::Hangup` is).
    SurveyFinished {
        /// The caller's score (1–5); `None` when none was keyed.
        score: Option<u8>,
    },
    /// The call ended (either side).
    Hangup,
}

/// What the flow wants done.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Play prompts back to back (names relative to the sounds dir, e.g. `en/welcome`).
    Play {
        /// Prompt names relative to the sounds directory.
        prompts: Vec<String>,
        /// Whether a key may stop them.
        barge_in: bool,
    },
    /// Stop the prompt now (a key was accepted); report nothing for it.
    StopPlayback,
    /// Fetch data and answer with `Event::LookupResult { id, .. }`. The
    /// interpreter gives up by itself after `timeout`, so a late answer is harmless.
    Lookup {
        /// Echoed in the `Event::LookupResult`.
        id: u64,
        /// What to ask.
        source: LookupSource,
        /// The node's params, rendered.
        params: Map<String, Value>,
        /// How long the interpreter waits before taking `on_failure`.
        timeout: Duration,
    },
    /// Hand the call to a queue for an agent. The flow is finished.
    Enqueue {
        /// The queue's name.
        queue: String,
        /// Higher is served first.
        priority: i64,
        /// The node's `data`, rendered, for the agent's offer card.
        data: Map<String, Value>,
    },
    /// Send the call elsewhere. The flow is finished.
    Transfer {
        /// The target URI (`sip:…`).
        target: String,
        /// REFER or a new INVITE.
        method: TransferMethod,
    },
    /// Beep (if asked) and record the caller for up to `max_secs`; answer
    /// with `Event::RecordingFinished` (also when the caller hangs up first).
    RecordVoicemail {
        /// The longest message, in seconds.
        max_secs: u32,
        /// Whether to beep first.
        beep: bool,
    },
    /// Run the satisfaction survey (rate 1–5, an optional comment after a
    /// tone, thanks); answer with `Event::SurveyFinished`.
    Survey,
    /// Book a callback: `number` (dialable) is called back by an agent of
    /// `queue` from `due_at` on.
    CallbackRequested {
        /// The number to call back: dialable (`+` and 5–15 digits).
        number: String,
        /// The slot the caller chose (e.g. `morning`, `asap`).
        slot: String,
        /// The queue whose agents call back; `None`: the flow named none.
        queue: Option<String>,
        /// When the callback is due.
        due_at: DateTime<Utc>,
    },
    /// A secure gather starts (`active: true`) or is over, however it
    /// ended (`false`): while active the shell silences the call recording
    /// and masks the caller's keys in events and logs.
    SecureInput {
        /// `true` from the secure gather's start until it is left.
        active: bool,
    },
    /// A step worth a call event (kinds per docs/call-events.md).
    Record {
        /// The event's `kind` (docs/call-events.md).
        kind: &'static str,
        /// The node that produced it, if any.
        node: Option<String>,
        /// The event's `data`.
        data: Value,
    },
    /// End the call. The flow is finished.
    Hangup,
}

/// Where the current node is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Step {
    NotStarted,
    /// Prompts playing (a key may cut them short when `barge_in`); then go
    /// on as `after` says.
    Playing {
        after: After,
        barge_in: bool,
    },
    /// A menu, language question or callback slot question.
    Asking {
        attempt: u32,
        playing: bool,
    },
    Gathering {
        attempt: u32,
        digits: String,
        playing: bool,
    },
    LookingUp {
        id: u64,
    },
    Recording,
    /// The call core runs the survey (`Action::Survey`).
    Surveying,
    Finished,
}

/// What follows a node's prompts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum After {
    /// Go to `next`, recording `outcome` (a play or say that answers the
    /// caller's question counts once its prompts are done, not if the
    /// caller hangs up during them).
    Goto {
        next: String,
        outcome: Option<String>,
    },
    RecordVoicemail,
    Hangup,
}

/// Why a question is asked again.
#[derive(Clone, Copy)]
pub(crate) enum Retry {
    Invalid,
    Timeout,
}

/// A node's one-key question: menus, language choices, callback slots.
pub(crate) struct Question<'a> {
    pub(crate) choice: &'a Choice,
    /// Where to go when the tries run out.
    pub(crate) on_exhausted: &'a str,
}

impl<'a> Question<'a> {
    /// Asking again is asking the same question.
    pub(crate) fn reprompt(&self, attempt: u32) -> Reprompt<'a> {
        let c = self.choice;
        Reprompt {
            attempt,
            timeout: c.timeout,
            retries: c.retries,
            invalid_prompts: &c.invalid_prompts,
            timeout_prompts: &c.timeout_prompts,
            prompts: &c.prompts,
            on_exhausted: self.on_exhausted,
            barge_in: c.barge_in,
        }
    }
}

/// How a node that waits for keys asks again after silence or a wrong key.
pub(crate) struct Reprompt<'a> {
    /// Tries so far (0: the first).
    pub(crate) attempt: u32,
    /// The wait that ran out (reported with a timeout).
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) invalid_prompts: &'a [String],
    pub(crate) timeout_prompts: &'a [String],
    pub(crate) prompts: &'a [String],
    pub(crate) on_exhausted: &'a str,
    pub(crate) barge_in: bool,
}

/// One call's state as node kinds read and change it: variables, language,
/// where the call is, its timer, type-ahead and the actions not yet
/// returned. The interpreter owns one per call.
pub(crate) struct Call {
    pub(crate) forced_hours: Option<ForcedHours>,
    /// The operator's dial rule, if the gateway gave one.
    pub(crate) dial_check: Option<crate::dial::DialCheck>,
    pub(crate) vars: Value,
    pub(crate) language: String,
    /// The current node's index in the flow's nodes.
    pub(crate) node: Option<usize>,
    pub(crate) step: Step,
    pub(crate) deadline: Option<Instant>,
    /// Keys pressed over a barge-in prompt, kept for the next question.
    pub(crate) typeahead: VecDeque<char>,
    pub(crate) next_lookup: u64,
    pub(crate) out: Vec<Action>,
    /// A secure gather is the current node (`Action::SecureInput` sent).
    pub(crate) secure: bool,
    /// Variables holding what a secure gather took (and copies a `set`
    /// made of them): used by the flow, never shown in events.
    pub(crate) masked: Vec<String>,
}

impl Call {
    pub(crate) fn record(&mut self, kind: &'static str, node: Option<String>, data: Value) {
        self.out.push(Action::Record { kind, node, data });
    }

    pub(crate) fn finish(&mut self) {
        self.end_secure();
        self.step = Step::Finished;
        self.deadline = None;
    }

    /// Leaves a secure gather's span, if in one.
    pub(crate) fn end_secure(&mut self) {
        if self.secure {
            self.secure = false;
            self.out.push(Action::SecureInput { active: false });
        }
    }

    /// True when the variable `name` holds masked input, or contains or is
    /// contained in a variable that does (`pay` when `pay.card` is masked).
    pub(crate) fn is_masked(&self, name: &str) -> bool {
        self.masked.iter().any(|m| {
            m == name
                || m.strip_prefix(name).is_some_and(|r| r.starts_with('.'))
                || name
                    .strip_prefix(m.as_str())
                    .is_some_and(|r| r.starts_with('.'))
        })
    }

    /// Marks `name` as holding masked input.
    pub(crate) fn mask(&mut self, name: &str) {
        if !self.masked.iter().any(|m| m == name) {
            self.masked.push(name.to_owned());
        }
    }

    /// True when the template refers to a masked variable.
    pub(crate) fn uses_masked(&self, t: &Template) -> bool {
        !self.masked.is_empty() && t.var_names().any(|n| self.is_masked(n))
    }

    /// The template as it may be shown (events, the agent's card): masked
    /// variables become one `*` per character.
    pub(crate) fn render_shown(&self, t: &Template) -> String {
        t.render(|name| {
            let v = self.var(name)?;
            Some(if self.is_masked(name) {
                "*".repeat(v.chars().count())
            } else {
                v
            })
        })
    }

    /// A variable by dotted name, as text.
    pub(crate) fn var(&self, name: &str) -> Option<String> {
        get_path(&self.vars, name).and_then(value_text)
    }

    pub(crate) fn render(&self, t: &Template) -> String {
        t.render(|name| self.var(name))
    }

    /// A template that is just `${var}` keeps the variable's JSON type.
    pub(crate) fn render_value(&self, t: &Template) -> Value {
        match t.single_var() {
            Some(name) => get_path(&self.vars, name).cloned().unwrap_or(Value::Null),
            None => Value::String(self.render(t)),
        }
    }

    pub(crate) fn set_language(&mut self, lang: &str, node: Option<String>) {
        self.language = lang.to_owned();
        set_path(&mut self.vars, "language", Value::String(lang.to_owned()));
        self.record("language_set", node, json!({ "language": lang }));
    }
}

/// The step context: what a node kind may do to the call it runs in,
/// besides changing its [`Call`] state (a `dyn StepCx` derefs to it).
///
/// What needs the flow — other nodes, prompt paths, going on to the next
/// node, asking and retrying — is here, implemented by the interpreter.
pub(crate) trait StepCx {
    fn call(&self) -> &Call;
    fn call_mut(&mut self) -> &mut Call;

    /// The id of the node the call is in.
    fn node_id(&self) -> Option<String>;

    /// The node `id` of the flow, as its kind's struct (downcast it to the
    /// kind wanted, e.g. `BusinessHours`).
    fn node(&self, id: &str) -> Option<&dyn Any>;

    /// Plays prompts (names resolved in the call's language).
    fn play(&mut self, names: &[String], barge_in: bool);

    /// Plays prompts, then goes on as `after` says; returns the next node
    /// when there is nothing to play.
    fn play_then(&mut self, prompts: &[String], barge_in: bool, after: After) -> Option<String>;

    /// Asks a one-key question (or answers it from type-ahead).
    fn ask(&mut self, c: &Choice, now: Instant, wall: DateTime<Utc>) -> Option<String>;

    /// Silence or a wrong key: say so and ask again, or give up.
    fn retry(&mut self, why: Retry, input: &str, now: Instant, wall: DateTime<Utc>);

    /// Enters `id` and keeps going through nodes that do not wait.
    fn run_from(&mut self, id: String, now: Instant, wall: DateTime<Utc>);
}

impl Deref for dyn StepCx + '_ {
    type Target = Call;
    fn deref(&self) -> &Call {
        self.call()
    }
}

impl DerefMut for dyn StepCx + '_ {
    fn deref_mut(&mut self) -> &mut Call {
        self.call_mut()
    }
}

/// Sets a dotted variable (`lookup.name`), making objects on the way.
pub(crate) fn set_path(root: &mut Value, path: &str, value: Value) {
    let mut v = root;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !v.is_object() {
            *v = Value::Object(Map::new());
        }
        let m = v.as_object_mut().expect("made an object above");
        if i == parts.len() - 1 {
            m.insert((*part).to_owned(), value);
            return;
        }
        v = m.entry(*part).or_insert_with(|| Value::Object(Map::new()));
    }
}
