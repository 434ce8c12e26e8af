//! The interpreter: a pure state machine that walks one call through a [`Flow`].
//!
//! No IO and no clock reads: the shell (the call actor, or the simulator)
//! passes in what happened and the time, and carries out the [`Action`]s
//! returned. Timers are internal: after every call to [`Interpreter::handle`]
//! the shell asks [`Interpreter::next_timeout`] and sends
//! [`Event::TimerFired`] at or after that instant. A fired timer that is
//! early or stale is ignored, so the shell need not be exact.
//!
//! Playback contract: a `Play` replaces whatever is playing; the shell
//! answers the latest `Play` with exactly one `PromptFinished` (at once with
//! `interrupted: false` if nothing could be played). After `StopPlayback`
//! the shell reports nothing for the stopped prompts.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::condition::{get_path, value_text};
use crate::flow::*;
pub use crate::nodes::hours::hours_state;
use crate::nodes::{gather, lookup, voicemail};

/// Who is calling whom; seeds the variables `caller`, `callee`, `language`.
#[derive(Clone, Debug, Default)]
pub struct CallVars {
    /// The caller's number (user part of From), e.g. `+8613800000000`.
    pub caller: String,
    /// The number dialled (user part of the request URI).
    pub callee: String,
    /// Start in this language instead of the flow's default (if the flow has it).
    pub language: Option<String>,
    /// More variables, visible to the flow by name.
    pub extra: Vec<(String, Value)>,
    /// Every `hours` node answers this instead of reading the clock
    /// (`hotline serve --force-hours`, for trying a flow at any hour).
    pub forced_hours: Option<ForcedHours>,
}

/// What `--force-hours` makes every `hours` node answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForcedHours {
    Open,
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
    PromptFinished { interrupted: bool },
    /// The instant from `next_timeout()` has passed.
    TimerFired,
    /// The answer to `Action::Lookup` with the same id.
    LookupResult {
        id: u64,
        result: Result<Map<String, Value>, String>,
    },
    /// The voicemail asked for by `Action::RecordVoicemail` is complete.
    RecordingFinished {
        duration_ms: u64,
        path: Option<String>,
    },
    /// The call ended (either side).
    Hangup,
}

/// What the flow wants done.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Play prompts back to back (names relative to the sounds dir, e.g. `en/welcome`).
    Play {
        prompts: Vec<String>,
        barge_in: bool,
    },
    /// Stop the prompt now (a key was accepted); report nothing for it.
    StopPlayback,
    /// Fetch data and answer with `Event::LookupResult { id, .. }`. The
    /// interpreter gives up by itself after `timeout`, so a late answer is harmless.
    Lookup {
        id: u64,
        source: LookupSource,
        params: Map<String, Value>,
        timeout: Duration,
    },
    /// Hand the call to a queue for an agent. The flow is finished.
    Enqueue {
        queue: String,
        priority: i64,
        data: Map<String, Value>,
    },
    /// Send the call elsewhere. The flow is finished.
    Transfer {
        target: String,
        method: TransferMethod,
    },
    /// Beep (if asked) and record the caller for up to `max_secs`; answer
    /// with `Event::RecordingFinished` (also when the caller hangs up first).
    RecordVoicemail { max_secs: u32, beep: bool },
    /// Book a callback: `number` (dialable) is called back by an agent of
    /// `queue` from `due_at` on.
    CallbackRequested {
        number: String,
        slot: String,
        queue: Option<String>,
        due_at: DateTime<Utc>,
    },
    /// A step worth a call event (kinds per docs/call-events.md).
    Record {
        kind: &'static str,
        node: Option<String>,
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

/// Steps run without waiting before the interpreter assumes a loop and hangs up.
const MAX_STEPS: usize = 200;

/// One call's walk through a flow.
///
/// Node kinds (`crate::nodes`) step it through its `pub(crate)` parts.
pub struct Interpreter {
    pub(crate) flow: Arc<Flow>,
    pub(crate) forced_hours: Option<ForcedHours>,
    pub(crate) vars: Value,
    pub(crate) language: String,
    issue_type: Option<String>,
    /// The current node's index in `flow.nodes`.
    pub(crate) node: Option<usize>,
    pub(crate) step: Step,
    pub(crate) deadline: Option<Instant>,
    /// Keys pressed over a barge-in prompt, kept for the next question.
    pub(crate) typeahead: VecDeque<char>,
    /// The last prompt was cut short by a key; the key that follows is type-ahead.
    interrupted: bool,
    pub(crate) next_lookup: u64,
    pub(crate) out: Vec<Action>,
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

impl Interpreter {
    pub fn new(flow: Arc<Flow>, call: CallVars) -> Self {
        let language = call
            .language
            .filter(|l| flow.languages.contains(l))
            .unwrap_or_else(|| flow.default_language.clone());
        let mut vars = json!({
            "caller": call.caller,
            "callee": call.callee,
            "language": language,
            "flow": flow.name,
        });
        for (k, v) in call.extra {
            set_path(&mut vars, &k, v);
        }
        Self {
            flow,
            forced_hours: call.forced_hours,
            vars,
            language,
            issue_type: None,
            node: None,
            step: Step::NotStarted,
            deadline: None,
            typeahead: VecDeque::new(),
            interrupted: false,
            next_lookup: 1,
            out: Vec::new(),
        }
    }

    /// Feeds one event; returns what to do, in order.
    pub fn handle(&mut self, now: Instant, wall: DateTime<Utc>, event: Event) -> Vec<Action> {
        if self.step == Step::Finished {
            return Vec::new();
        }
        match event {
            Event::Started => {
                if self.step == Step::NotStarted {
                    self.record(
                        "flow_started",
                        None,
                        json!({ "flow": self.flow.name, "version": self.flow.version, "language": self.language }),
                    );
                    let start = self.flow.start.clone();
                    self.run_from(start, now, wall);
                }
            }
            Event::Hangup => {
                if self.step == Step::Recording {
                    voicemail::hung_up(self);
                }
                self.finish();
            }
            Event::Digit(d) => self.on_digit(d, now, wall),
            Event::PromptFinished { interrupted } => {
                self.on_prompt_finished(interrupted, now, wall)
            }
            Event::TimerFired => {
                if self.deadline.is_some_and(|t| now >= t) {
                    self.deadline = None;
                    self.on_timer(now, wall);
                }
            }
            Event::LookupResult { id, result } => {
                if self.step == (Step::LookingUp { id }) {
                    self.deadline = None;
                    lookup::answered(self, result, now, wall);
                }
            }
            Event::RecordingFinished { duration_ms, path } => {
                if self.step == Step::Recording {
                    voicemail::recorded(self, duration_ms, path, now, wall);
                }
            }
        }
        std::mem::take(&mut self.out)
    }

    /// When the interpreter wants `Event::TimerFired`; `None` for no timer.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// True once the flow has hung up or handed the call off (enqueue, transfer).
    pub fn is_finished(&self) -> bool {
        self.step == Step::Finished
    }

    /// True while the flow waits for keys (prompt done, timer running).
    pub fn awaiting_input(&self) -> bool {
        matches!(
            self.step,
            Step::Asking { playing: false, .. } | Step::Gathering { playing: false, .. }
        )
    }

    /// True while a prompt the flow asked for should be playing.
    pub fn is_playing(&self) -> bool {
        matches!(
            self.step,
            Step::Playing { .. }
                | Step::Asking { playing: true, .. }
                | Step::Gathering { playing: true, .. }
        )
    }

    /// True while an `Action::Lookup` is unanswered.
    pub fn pending_lookup(&self) -> Option<u64> {
        match self.step {
            Step::LookingUp { id } => Some(id),
            _ => None,
        }
    }

    /// True while a voicemail is being recorded.
    pub fn is_recording(&self) -> bool {
        self.step == Step::Recording
    }

    /// The id of the node the call is in.
    pub fn current_node(&self) -> Option<&str> {
        self.node.map(|i| self.flow.nodes[i].id.as_str())
    }

    pub fn language(&self) -> &str {
        &self.language
    }

    pub fn issue_type(&self) -> Option<&str> {
        self.issue_type.as_deref()
    }

    /// All variables as one JSON object (`caller`, lookups under their `into`, …).
    pub fn vars(&self) -> &Value {
        &self.vars
    }

    /// A variable by dotted name, as text.
    pub fn var(&self, name: &str) -> Option<String> {
        get_path(&self.vars, name).and_then(value_text)
    }

    pub fn flow(&self) -> &Arc<Flow> {
        &self.flow
    }

    // ---- internals, shared by the node kinds ----

    pub(crate) fn node_id(&self) -> Option<String> {
        self.current_node().map(str::to_owned)
    }

    pub(crate) fn kind(&self) -> Option<&NodeKind> {
        self.node.map(|i| &self.flow.nodes[i].kind)
    }

    pub(crate) fn record(&mut self, kind: &'static str, node: Option<String>, data: Value) {
        self.out.push(Action::Record { kind, node, data });
    }

    pub(crate) fn finish(&mut self) {
        self.step = Step::Finished;
        self.deadline = None;
    }

    fn prompt(&self, name: &str) -> String {
        match name.split_once('/') {
            Some((first, _)) if self.flow.languages.iter().any(|l| l == first) => name.to_owned(),
            _ => format!("{}/{}", self.language, name),
        }
    }

    pub(crate) fn play(&mut self, names: &[String], barge_in: bool) {
        let prompts = names.iter().map(|n| self.prompt(n)).collect();
        self.interrupted = false;
        self.out.push(Action::Play { prompts, barge_in });
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

    /// Enters `id` and keeps going through nodes that do not wait.
    pub(crate) fn run_from(&mut self, id: String, now: Instant, wall: DateTime<Utc>) {
        let mut next = Some(id);
        let mut steps = 0;
        while let Some(id) = next.take() {
            steps += 1;
            if steps > MAX_STEPS {
                self.record(
                    "error",
                    Some(id),
                    json!({ "error": "the flow ran in a loop without waiting; hanging up" }),
                );
                self.record("outcome", None, json!({ "outcome": "failed" }));
                self.out.push(Action::Hangup);
                self.finish();
                return;
            }
            next = self.enter(&id, now, wall);
        }
    }

    /// Runs a node's entry; returns the next node when it does not wait.
    fn enter(&mut self, id: &str, now: Instant, wall: DateTime<Utc>) -> Option<String> {
        let flow = Arc::clone(&self.flow);
        let Some(&index) = flow.index.get(id) else {
            // The loader refuses dangling ids; this guards hand-built flows.
            self.record(
                "error",
                Some(id.to_owned()),
                json!({ "error": "no such node" }),
            );
            self.out.push(Action::Hangup);
            self.finish();
            return None;
        };
        let node = &flow.nodes[index];
        self.node = Some(index);
        self.deadline = None;
        let nid = Some(node.id.clone());
        self.record(
            "node_entered",
            nid.clone(),
            json!({ "kind": node.kind.name() }),
        );
        if let Some(it) = &node.issue_type
            && self.issue_type.as_deref() != Some(it)
        {
            self.issue_type = Some(it.clone());
            self.record("issue_type", nid, json!({ "issue_type": it }));
        }
        node.kind.as_kind().enter(self, now, wall)
    }

    pub(crate) fn play_then(
        &mut self,
        prompts: &[String],
        barge_in: bool,
        after: After,
    ) -> Option<String> {
        if prompts.is_empty() {
            return self.after(after);
        }
        self.play(prompts, barge_in);
        self.step = Step::Playing { after, barge_in };
        None
    }

    fn after(&mut self, after: After) -> Option<String> {
        match after {
            After::Goto { next, outcome } => {
                if let Some(o) = outcome {
                    let nid = self.node_id();
                    self.record("outcome", nid, json!({ "outcome": o }));
                }
                Some(next)
            }
            After::RecordVoicemail => voicemail::start_recording(self),
            After::Hangup => {
                self.out.push(Action::Hangup);
                self.finish();
                None
            }
        }
    }

    pub(crate) fn set_language(&mut self, lang: &str, node: Option<String>) {
        self.language = lang.to_owned();
        set_path(&mut self.vars, "language", Value::String(lang.to_owned()));
        self.record("language_set", node, json!({ "language": lang }));
    }

    /// The current node's one-key question, if it asks one.
    fn choice(&self) -> Option<&Choice> {
        Some(self.kind()?.as_kind().question()?.choice)
    }

    pub(crate) fn ask(&mut self, c: &Choice, now: Instant, wall: DateTime<Utc>) -> Option<String> {
        if let Some(d) = self.typeahead.pop_front() {
            self.typeahead.clear();
            self.step = Step::Asking {
                attempt: 0,
                playing: false,
            };
            self.choose(d, now, wall);
            return None;
        }
        self.play(&c.prompts, c.barge_in);
        self.step = Step::Asking {
            attempt: 0,
            playing: true,
        };
        None
    }

    fn on_prompt_finished(&mut self, interrupted: bool, now: Instant, wall: DateTime<Utc>) {
        if interrupted {
            self.interrupted = true;
        }
        match self.step.clone() {
            Step::Playing { after, .. } => {
                if let Some(next) = self.after(after) {
                    self.run_from(next, now, wall);
                }
            }
            Step::Asking {
                attempt,
                playing: true,
            } => {
                self.step = Step::Asking {
                    attempt,
                    playing: false,
                };
                if let Some(c) = self.choice() {
                    self.deadline = Some(now + c.timeout);
                }
            }
            Step::Gathering {
                attempt,
                digits,
                playing: true,
            } => gather::prompt_finished(self, attempt, digits, now),
            _ => {}
        }
    }

    fn on_digit(&mut self, d: char, now: Instant, wall: DateTime<Utc>) {
        match self.step.clone() {
            Step::Asking { playing, attempt } => {
                let barge_in = self.choice().is_some_and(|c| c.barge_in);
                if playing {
                    if !barge_in {
                        return;
                    }
                    self.out.push(Action::StopPlayback);
                    self.step = Step::Asking {
                        attempt,
                        playing: false,
                    };
                }
                self.choose(d, now, wall);
            }
            Step::Gathering { .. } => gather::digit(self, d, now, wall),
            Step::Playing { after, barge_in } => {
                if barge_in {
                    // The shell has stopped (or will stop) the prompt; keep the key.
                    self.typeahead.push_back(d);
                    self.out.push(Action::StopPlayback);
                    if let Some(next) = self.after(after) {
                        self.run_from(next, now, wall);
                    }
                }
            }
            _ => {
                if self.interrupted && self.typeahead.len() < 32 {
                    self.typeahead.push_back(d);
                }
            }
        }
    }

    /// A key for a menu, language question or callback question.
    fn choose(&mut self, d: char, now: Instant, wall: DateTime<Utc>) {
        let flow = Arc::clone(&self.flow);
        let Some(index) = self.node else { return };
        let kind = flow.nodes[index].kind.as_kind();
        self.deadline = None;
        let Some(question) = kind.question() else {
            return;
        };
        match question.choice.option(d) {
            Some(option) => kind.chosen(self, d, option, now, wall),
            None => self.retry(Retry::Invalid, &d.to_string(), now, wall),
        }
    }

    fn on_timer(&mut self, now: Instant, wall: DateTime<Utc>) {
        match self.step.clone() {
            Step::Asking { playing: false, .. } => self.retry(Retry::Timeout, "", now, wall),
            Step::Gathering {
                digits,
                playing: false,
                ..
            } => gather::timer_fired(self, digits, now, wall),
            Step::LookingUp { .. } => lookup::answered(self, Err("timeout".into()), now, wall),
            _ => {}
        }
    }

    /// Silence or a wrong key: say so and ask again, or give up.
    pub(crate) fn retry(&mut self, why: Retry, input: &str, now: Instant, wall: DateTime<Utc>) {
        let flow = Arc::clone(&self.flow);
        let Some(index) = self.node else { return };
        let node = &flow.nodes[index];
        let nid = Some(node.id.clone());
        self.typeahead.clear();
        let Some(r) = node.kind.as_kind().reprompt(&self.step) else {
            return;
        };
        match why {
            Retry::Invalid => self.record(
                "invalid",
                nid.clone(),
                json!({ "input": input, "attempt": r.attempt + 1 }),
            ),
            Retry::Timeout => self.record(
                "timeout",
                nid.clone(),
                json!({ "after_ms": r.timeout.as_millis() as u64, "attempt": r.attempt + 1 }),
            ),
        }
        let attempt = r.attempt + 1;
        if attempt > r.retries {
            self.record("exhausted", nid, json!({ "attempts": attempt }));
            self.run_from(r.on_exhausted.to_owned(), now, wall);
            return;
        }
        let mut again: Vec<String> = match why {
            Retry::Invalid => r.invalid_prompts.to_vec(),
            Retry::Timeout => r.timeout_prompts.to_vec(),
        };
        again.extend(r.prompts.iter().cloned());
        self.play(&again, r.barge_in);
        self.step = match self.step {
            Step::Gathering { .. } => Step::Gathering {
                attempt,
                digits: String::new(),
                playing: true,
            },
            _ => Step::Asking {
                attempt,
                playing: true,
            },
        };
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
