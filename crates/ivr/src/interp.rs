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

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::{Map, Value, json};

use crate::condition::{get_path, value_text};
use crate::flow::*;
use crate::say;

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
enum Step {
    NotStarted,
    /// Prompts playing; then go on as `After` says.
    Playing(After),
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

#[derive(Clone, Debug, PartialEq)]
enum After {
    Goto(String),
    RecordVoicemail,
    Hangup,
}

/// Why a question is asked again.
#[derive(Clone, Copy)]
enum Retry {
    Invalid,
    Timeout,
}

/// Steps run without waiting before the interpreter assumes a loop and hangs up.
const MAX_STEPS: usize = 200;

/// One call's walk through a flow.
pub struct Interpreter {
    flow: Arc<Flow>,
    forced_hours: Option<ForcedHours>,
    vars: Value,
    language: String,
    issue_type: Option<String>,
    node: Option<usize>,
    step: Step,
    deadline: Option<Instant>,
    /// Keys pressed over a barge-in prompt, kept for the next question.
    typeahead: VecDeque<char>,
    /// The last prompt was cut short by a key; the key that follows is type-ahead.
    interrupted: bool,
    next_lookup: u64,
    out: Vec<Action>,
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
                    // The caller hung up to end the message: it still counts.
                    self.record(
                        "outcome",
                        self.node_id(),
                        json!({ "outcome": "voicemail", "ended_by_hangup": true }),
                    );
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
                    self.on_lookup(result, now, wall);
                }
            }
            Event::RecordingFinished { duration_ms, path } => {
                if self.step == Step::Recording {
                    self.record(
                        "outcome",
                        self.node_id(),
                        json!({ "outcome": "voicemail", "duration_ms": duration_ms, "path": path }),
                    );
                    if let Some(NodeKind::Voicemail(v)) = self.kind() {
                        let next = v.next.clone();
                        self.run_from(next, now, wall);
                    }
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
            Step::Playing(_)
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

    // ---- internals ----

    fn node_id(&self) -> Option<String> {
        self.current_node().map(str::to_owned)
    }

    fn kind(&self) -> Option<&NodeKind> {
        self.node.map(|i| &self.flow.nodes[i].kind)
    }

    fn record(&mut self, kind: &'static str, node: Option<String>, data: Value) {
        self.out.push(Action::Record { kind, node, data });
    }

    fn finish(&mut self) {
        self.step = Step::Finished;
        self.deadline = None;
    }

    fn prompt(&self, name: &str) -> String {
        match name.split_once('/') {
            Some((first, _)) if self.flow.languages.iter().any(|l| l == first) => name.to_owned(),
            _ => format!("{}/{}", self.language, name),
        }
    }

    fn play(&mut self, names: &[String], barge_in: bool) {
        let prompts = names.iter().map(|n| self.prompt(n)).collect();
        self.interrupted = false;
        self.out.push(Action::Play { prompts, barge_in });
    }

    fn render(&self, t: &Template) -> String {
        t.render(|name| self.var(name))
    }

    /// A template that is just `${var}` keeps the variable's JSON type.
    fn render_value(&self, t: &Template) -> Value {
        match t.single_var() {
            Some(name) => get_path(&self.vars, name).cloned().unwrap_or(Value::Null),
            None => Value::String(self.render(t)),
        }
    }

    /// Enters `id` and keeps going through nodes that do not wait.
    fn run_from(&mut self, id: String, now: Instant, wall: DateTime<Utc>) {
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
            self.record("issue_type", nid.clone(), json!({ "issue_type": it }));
        }
        match &node.kind {
            NodeKind::Play(p) => {
                self.play_then(&p.prompts, p.barge_in, After::Goto(p.next.clone()))
            }
            NodeKind::Menu(m) => self.ask(&m.choice, now, wall),
            NodeKind::Language(l) => match &l.set {
                Some(lang) => {
                    self.set_language(lang, nid);
                    Some(l.next.clone())
                }
                None => self.ask(&l.choice, now, wall),
            },
            NodeKind::Callback(c) => self.ask(&c.choice, now, wall),
            NodeKind::Gather(g) => {
                self.step = Step::Gathering {
                    attempt: 0,
                    digits: String::new(),
                    playing: false,
                };
                if self.typeahead.is_empty() {
                    self.play(&g.prompts, true);
                    self.step = Step::Gathering {
                        attempt: 0,
                        digits: String::new(),
                        playing: true,
                    };
                    None
                } else {
                    self.start_gather_timer(now);
                    while let Some(d) = self.typeahead.pop_front() {
                        if !matches!(self.step, Step::Gathering { .. }) || self.node != Some(index)
                        {
                            break;
                        }
                        self.gather_digit(d, now, wall);
                    }
                    None
                }
            }
            NodeKind::Branch(b) => {
                let to = b
                    .cases
                    .iter()
                    .find(|c| c.condition.holds(&self.vars))
                    .map(|c| c.next.clone())
                    .unwrap_or_else(|| b.otherwise.clone());
                Some(to)
            }
            NodeKind::Set(s) => {
                for (k, t) in &s.vars {
                    let v = self.render_value(t);
                    set_path(&mut self.vars, k, v);
                }
                Some(s.next.clone())
            }
            NodeKind::Hours(h) => {
                let (mut state, local) = hours_state(h, wall);
                let mut data = json!({ "state": state, "local_time": local });
                if let Some(forced) = self.forced_hours {
                    state = match forced {
                        ForcedHours::Open => "open",
                        ForcedHours::Closed => "closed",
                    };
                    data = json!({ "state": state, "local_time": local, "forced": true });
                }
                self.record("hours", nid, data);
                Some(match state {
                    "open" => h.open.clone(),
                    "holiday" => h.holiday.clone().unwrap_or_else(|| h.closed.clone()),
                    _ => h.closed.clone(),
                })
            }
            NodeKind::Lookup(l) => {
                let id = self.next_lookup;
                self.next_lookup += 1;
                let mut params = Map::new();
                for (k, t) in &l.params {
                    params.insert(k.clone(), self.render_value(t));
                }
                if l.source == LookupSource::SubscriberByCallerId && !params.contains_key("number")
                {
                    params.insert(
                        "number".into(),
                        Value::String(self.var("caller").unwrap_or_default()),
                    );
                }
                self.out.push(Action::Lookup {
                    id,
                    source: l.source.clone(),
                    params,
                    timeout: l.timeout,
                });
                self.step = Step::LookingUp { id };
                self.deadline = Some(now + l.timeout);
                None
            }
            NodeKind::Say(s) => {
                let value = self.render(&s.value);
                let mut prompts = s.before.clone();
                match say::compose(s.say_as, &value, &self.language) {
                    Ok(frags) => prompts.extend(frags),
                    Err(e) => {
                        self.record("error", nid, json!({ "error": format!("cannot say: {e}") }))
                    }
                }
                prompts.extend(s.after.iter().cloned());
                self.play_then(&prompts, s.barge_in, After::Goto(s.next.clone()))
            }
            NodeKind::Enqueue(e) => {
                let mut data = Map::new();
                for (k, t) in &e.data {
                    data.insert(k.clone(), self.render_value(t));
                }
                self.record(
                    "enqueued",
                    nid,
                    json!({ "queue": e.queue, "priority": e.priority }),
                );
                self.out.push(Action::Enqueue {
                    queue: e.queue.clone(),
                    priority: e.priority,
                    data,
                });
                self.finish();
                None
            }
            NodeKind::Voicemail(v) => {
                if v.prompts.is_empty() {
                    self.start_voicemail()
                } else {
                    self.play_then(&v.prompts, false, After::RecordVoicemail)
                }
            }
            NodeKind::Transfer(t) => {
                self.record(
                    "transfer",
                    nid,
                    json!({ "target": t.to, "method": t.method.name() }),
                );
                self.out.push(Action::Transfer {
                    target: t.to.clone(),
                    method: t.method,
                });
                self.finish();
                None
            }
            NodeKind::Hangup(h) => {
                if let Some(o) = &h.outcome {
                    self.record("outcome", nid, json!({ "outcome": o }));
                }
                if h.prompts.is_empty() {
                    self.out.push(Action::Hangup);
                    self.finish();
                    None
                } else {
                    self.play_then(&h.prompts, false, After::Hangup)
                }
            }
        }
    }

    fn play_then(&mut self, prompts: &[String], barge_in: bool, after: After) -> Option<String> {
        if prompts.is_empty() {
            return self.after(after);
        }
        self.play(prompts, barge_in);
        self.step = Step::Playing(after);
        None
    }

    fn after(&mut self, after: After) -> Option<String> {
        match after {
            After::Goto(id) => {
                // A play/say that answers the caller's question counts once
                // its prompts are done (a hang-up during them does not).
                let outcome = match self.kind() {
                    Some(NodeKind::Play(p)) => p.outcome.clone(),
                    Some(NodeKind::Say(s)) => s.outcome.clone(),
                    _ => None,
                };
                if let Some(o) = outcome {
                    let nid = self.node_id();
                    self.record("outcome", nid, json!({ "outcome": o }));
                }
                Some(id)
            }
            After::RecordVoicemail => self.start_voicemail(),
            After::Hangup => {
                self.out.push(Action::Hangup);
                self.finish();
                None
            }
        }
    }

    fn start_voicemail(&mut self) -> Option<String> {
        if let Some(NodeKind::Voicemail(v)) = self.kind() {
            let (max_secs, beep) = (v.max_seconds, v.beep);
            self.out.push(Action::RecordVoicemail { max_secs, beep });
            self.step = Step::Recording;
        }
        None
    }

    fn set_language(&mut self, lang: &str, node: Option<String>) {
        self.language = lang.to_owned();
        set_path(&mut self.vars, "language", Value::String(lang.to_owned()));
        self.record("language_set", node, json!({ "language": lang }));
    }

    fn choice(&self) -> Option<&Choice> {
        match self.kind()? {
            NodeKind::Menu(m) => Some(&m.choice),
            NodeKind::Language(l) => Some(&l.choice),
            NodeKind::Callback(c) => Some(&c.choice),
            _ => None,
        }
    }

    fn ask(&mut self, c: &Choice, now: Instant, wall: DateTime<Utc>) -> Option<String> {
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
            Step::Playing(after) => {
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
            } => {
                self.step = Step::Gathering {
                    attempt,
                    digits,
                    playing: false,
                };
                self.start_gather_timer(now);
            }
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
            Step::Gathering { .. } => self.gather_digit(d, now, wall),
            Step::Playing(ref after) => {
                let barge_in = self.out_barge_in();
                if barge_in {
                    // The shell has stopped (or will stop) the prompt; keep the key.
                    self.typeahead.push_back(d);
                    self.out.push(Action::StopPlayback);
                    let after = after.clone();
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

    /// Whether the prompt of the current `Playing` step may be cut short.
    fn out_barge_in(&self) -> bool {
        match self.kind() {
            Some(NodeKind::Play(p)) => p.barge_in,
            Some(NodeKind::Say(s)) => s.barge_in,
            _ => false,
        }
    }

    /// A key for a menu, language question or callback question.
    fn choose(&mut self, d: char, now: Instant, wall: DateTime<Utc>) {
        let flow = Arc::clone(&self.flow);
        let Some(index) = self.node else { return };
        let node = &flow.nodes[index];
        let nid = Some(node.id.clone());
        self.deadline = None;
        match &node.kind {
            NodeKind::Menu(m) => match m.choice.option(d) {
                Some(to) => {
                    self.record("input", nid, json!({ "input": d.to_string(), "next": to }));
                    self.run_from(to.to_owned(), now, wall);
                }
                None => self.retry(Retry::Invalid, &d.to_string(), now, wall),
            },
            NodeKind::Language(l) => match l.choice.option(d) {
                Some(lang) => {
                    self.record(
                        "input",
                        nid.clone(),
                        json!({ "input": d.to_string(), "language": lang }),
                    );
                    self.set_language(lang, nid);
                    self.run_from(l.next.clone(), now, wall);
                }
                None => self.retry(Retry::Invalid, &d.to_string(), now, wall),
            },
            NodeKind::Callback(c) => match c.choice.option(d) {
                Some(slot) => {
                    let number = self.render(&c.number);
                    self.record(
                        "input",
                        nid.clone(),
                        json!({ "input": d.to_string(), "slot": slot }),
                    );
                    // Never book what cannot be dialled (a SIP user name
                    // such as `caller`): the flow asks for a number instead.
                    if !crate::callback::is_dialable(&number) {
                        self.record(
                            "callback_refused",
                            nid,
                            json!({ "number": number, "reason": "not a dialable number" }),
                        );
                        let to = c
                            .on_no_number
                            .clone()
                            .unwrap_or_else(|| c.on_exhausted.clone());
                        self.run_from(to, now, wall);
                        return;
                    }
                    let hours =
                        c.hours
                            .as_deref()
                            .and_then(|id| match flow.node(id).map(|n| &n.kind) {
                                Some(NodeKind::Hours(h)) => Some(h),
                                _ => None,
                            });
                    let at = c
                        .slot_times
                        .iter()
                        .find(|(n, _)| n == slot)
                        .map(|&(_, m)| m);
                    let due_at = crate::callback::slot_due(hours, at, wall);
                    let (queue, next) = (c.queue.clone(), c.next.clone());
                    self.out.push(Action::CallbackRequested {
                        number: number.clone(),
                        slot: slot.to_owned(),
                        queue,
                        due_at,
                    });
                    self.record(
                        "outcome",
                        nid,
                        json!({ "outcome": "callback", "number": number, "slot": slot }),
                    );
                    self.run_from(next, now, wall);
                }
                None => self.retry(Retry::Invalid, &d.to_string(), now, wall),
            },
            _ => {}
        }
    }

    fn start_gather_timer(&mut self, now: Instant) {
        if let (Some(NodeKind::Gather(g)), Step::Gathering { digits, .. }) =
            (self.kind(), &self.step)
        {
            let wait = if digits.is_empty() {
                g.first_digit_timeout
            } else {
                g.inter_digit_timeout
            };
            self.deadline = Some(now + wait);
        }
    }

    fn gather_digit(&mut self, d: char, now: Instant, wall: DateTime<Utc>) {
        let Some(NodeKind::Gather(g)) = self.kind() else {
            return;
        };
        let (finish_key, max) = (g.finish_key, g.max_digits);
        let Step::Gathering {
            attempt,
            mut digits,
            playing,
        } = self.step.clone()
        else {
            return;
        };
        if playing {
            self.out.push(Action::StopPlayback);
        }
        if Some(d) == finish_key {
            self.step = Step::Gathering {
                attempt,
                digits: digits.clone(),
                playing: false,
            };
            self.complete_gather(digits, now, wall);
            return;
        }
        digits.push(d);
        self.step = Step::Gathering {
            attempt,
            digits: digits.clone(),
            playing: false,
        };
        if digits.len() >= max {
            self.complete_gather(digits, now, wall);
        } else {
            self.start_gather_timer(now);
        }
    }

    fn complete_gather(&mut self, digits: String, now: Instant, wall: DateTime<Utc>) {
        self.deadline = None;
        let flow = Arc::clone(&self.flow);
        let Some(index) = self.node else { return };
        let node = &flow.nodes[index];
        let NodeKind::Gather(g) = &node.kind else {
            return;
        };
        let ok =
            digits.len() >= g.min_digits && g.pattern.as_ref().is_none_or(|p| p.is_match(&digits));
        if !ok {
            self.retry(Retry::Invalid, &digits, now, wall);
            return;
        }
        self.record(
            "input",
            Some(node.id.clone()),
            json!({ "input": digits, "into": g.into }),
        );
        set_path(&mut self.vars, &g.into, Value::String(digits));
        self.run_from(g.next.clone(), now, wall);
    }

    fn on_timer(&mut self, now: Instant, wall: DateTime<Utc>) {
        match self.step.clone() {
            Step::Asking { playing: false, .. } => self.retry(Retry::Timeout, "", now, wall),
            Step::Gathering {
                digits,
                playing: false,
                ..
            } => {
                if digits.is_empty() {
                    self.retry(Retry::Timeout, "", now, wall);
                } else {
                    self.complete_gather(digits, now, wall);
                }
            }
            Step::LookingUp { .. } => self.on_lookup(Err("timeout".into()), now, wall),
            _ => {}
        }
    }

    /// Silence or a wrong key: say so and ask again, or give up.
    fn retry(&mut self, why: Retry, input: &str, now: Instant, wall: DateTime<Utc>) {
        let flow = Arc::clone(&self.flow);
        let Some(index) = self.node else { return };
        let node = &flow.nodes[index];
        let nid = Some(node.id.clone());
        self.typeahead.clear();
        let (timeout, retries, invalid_p, timeout_p, prompts, exhausted, attempt) =
            match (&node.kind, &self.step) {
                (NodeKind::Menu(m), Step::Asking { attempt, .. }) => {
                    let c = &m.choice;
                    (
                        c.timeout,
                        c.retries,
                        &c.invalid_prompts,
                        &c.timeout_prompts,
                        &c.prompts,
                        Some(m.on_exhausted.clone()),
                        *attempt,
                    )
                }
                (NodeKind::Callback(cb), Step::Asking { attempt, .. }) => {
                    let c = &cb.choice;
                    (
                        c.timeout,
                        c.retries,
                        &c.invalid_prompts,
                        &c.timeout_prompts,
                        &c.prompts,
                        Some(cb.on_exhausted.clone()),
                        *attempt,
                    )
                }
                (NodeKind::Language(l), Step::Asking { attempt, .. }) => {
                    let c = &l.choice;
                    // Running out of tries keeps the current language and goes on.
                    (
                        c.timeout,
                        c.retries,
                        &c.invalid_prompts,
                        &c.timeout_prompts,
                        &c.prompts,
                        Some(l.next.clone()),
                        *attempt,
                    )
                }
                (
                    NodeKind::Gather(g),
                    Step::Gathering {
                        attempt, digits, ..
                    },
                ) => (
                    if digits.is_empty() {
                        g.first_digit_timeout
                    } else {
                        g.inter_digit_timeout
                    },
                    g.retries,
                    &g.invalid_prompts,
                    &g.timeout_prompts,
                    &g.prompts,
                    Some(g.on_exhausted.clone()),
                    *attempt,
                ),
                _ => return,
            };
        match why {
            Retry::Invalid => self.record(
                "invalid",
                nid.clone(),
                json!({ "input": input, "attempt": attempt + 1 }),
            ),
            Retry::Timeout => self.record(
                "timeout",
                nid.clone(),
                json!({ "after_ms": timeout.as_millis() as u64, "attempt": attempt + 1 }),
            ),
        }
        let attempt = attempt + 1;
        if attempt > retries {
            self.record("exhausted", nid, json!({ "attempts": attempt }));
            if let Some(to) = exhausted {
                self.run_from(to, now, wall);
            }
            return;
        }
        let mut again: Vec<String> = match why {
            Retry::Invalid => invalid_p.clone(),
            Retry::Timeout => timeout_p.clone(),
        };
        again.extend(prompts.iter().cloned());
        let barge_in = match &node.kind {
            NodeKind::Gather(_) => true,
            _ => self.choice().is_none_or(|c| c.barge_in),
        };
        self.play(&again, barge_in);
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

    fn on_lookup(
        &mut self,
        result: Result<Map<String, Value>, String>,
        now: Instant,
        wall: DateTime<Utc>,
    ) {
        let flow = Arc::clone(&self.flow);
        let Some(index) = self.node else { return };
        let node = &flow.nodes[index];
        let NodeKind::Lookup(l) = &node.kind else {
            return;
        };
        let nid = Some(node.id.clone());
        match result {
            Ok(map) => {
                let found = !map.is_empty() && map.get("found") != Some(&Value::Bool(false));
                self.record(
                    "lookup",
                    nid,
                    json!({ "lookup": l.source.name(), "ok": true, "found": found, "result": map }),
                );
                let mut obj = map;
                obj.entry("found").or_insert(Value::Bool(found));
                set_path(&mut self.vars, &l.into, Value::Object(obj));
                let to = if found {
                    l.next.clone()
                } else {
                    l.on_not_found.clone().unwrap_or_else(|| l.next.clone())
                };
                self.run_from(to, now, wall);
            }
            Err(e) => {
                self.record(
                    "lookup",
                    nid,
                    json!({ "lookup": l.source.name(), "ok": false, "error": e }),
                );
                set_path(
                    &mut self.vars,
                    &l.into,
                    json!({ "found": false, "error": e }),
                );
                self.run_from(l.on_failure.clone(), now, wall);
            }
        }
    }
}

/// `open`, `closed` or `holiday` at `wall`, and the local time it was judged at.
pub fn hours_state(h: &BusinessHours, wall: DateTime<Utc>) -> (&'static str, String) {
    let local = wall.with_timezone(&h.time_zone);
    let shown = local.format("%Y-%m-%d %H:%M %a").to_string();
    if h.holidays.contains(&local.date_naive()) {
        return ("holiday", shown);
    }
    let day = local.weekday().num_days_from_monday() as usize;
    let minute = (local.hour() * 60 + local.minute()) as u16;
    let open = h.weekly[day]
        .iter()
        .any(|&(a, b)| minute >= a && minute < b);
    (if open { "open" } else { "closed" }, shown)
}

fn set_path(root: &mut Value, path: &str, value: Value) {
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
