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

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::flow::{Flow, NodeKind};
use crate::model::Choice;
pub use crate::nodes::hours::hours_state;
use crate::nodes::voicemail;
pub use crate::step::{Action, Event, ForcedHours};
use crate::step::{After, Call, Retry, Step, StepCx, set_path};

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
    /// The operator's dial rule: a `callback` node books only numbers it
    /// allows (`None`: any dialable number, as in the simulator).
    pub dial_check: Option<crate::callback::DialCheck>,
}

/// Steps run without waiting before the interpreter assumes a loop and hangs up.
const MAX_STEPS: usize = 200;

/// One call's walk through a flow.
///
/// Node kinds (`crate::nodes`) step it as a `dyn StepCx` (`crate::step`):
/// through its `Call` state and the trait's methods.
pub struct Interpreter {
    flow: Arc<Flow>,
    call: Call,
    issue_type: Option<String>,
    /// The last prompt was cut short by a key; the key that follows is type-ahead.
    interrupted: bool,
}

impl Interpreter {
    /// An interpreter for one call. The call's language is `call.language` if the
    /// flow speaks it, else the flow's default; nothing happens before
    /// [`Event::Started`].
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
            call: Call {
                forced_hours: call.forced_hours,
                dial_check: call.dial_check,
                vars,
                language,
                node: None,
                step: Step::NotStarted,
                deadline: None,
                typeahead: VecDeque::new(),
                next_lookup: 1,
                out: Vec::new(),
                secure: false,
                masked: Vec::new(),
            },
            issue_type: None,
            interrupted: false,
        }
    }

    /// Feeds one event; returns what to do, in order.
    pub fn handle(&mut self, now: Instant, wall: DateTime<Utc>, event: Event) -> Vec<Action> {
        if self.call.step == Step::Finished {
            return Vec::new();
        }
        match event {
            Event::Started => {
                if self.call.step == Step::NotStarted {
                    self.call.record(
                        "flow_started",
                        None,
                        json!({ "flow": self.flow.name, "version": self.flow.version, "language": self.call.language }),
                    );
                    let start = self.flow.start.clone();
                    self.run_from(start, now, wall);
                }
            }
            Event::Hangup => {
                if self.call.step == Step::Recording {
                    voicemail::hung_up(self);
                }
                self.call.finish();
            }
            Event::Digit(d) => self.on_digit(d, now, wall),
            Event::PromptFinished { interrupted } => {
                self.on_prompt_finished(interrupted, now, wall)
            }
            Event::TimerFired => {
                if self.call.deadline.is_some_and(|t| now >= t) {
                    self.call.deadline = None;
                    self.on_timer(now, wall);
                }
            }
            Event::LookupResult { id, result } => {
                if self.call.step == (Step::LookingUp { id }) {
                    self.call.deadline = None;
                    let flow = Arc::clone(&self.flow);
                    if let Some(NodeKind::Lookup(l)) = self.kind_in(&flow) {
                        l.answered(self, result, now, wall);
                    }
                }
            }
            Event::SurveyFinished { .. } => {
                if self.call.step == Step::Surveying {
                    let flow = Arc::clone(&self.flow);
                    if let Some(NodeKind::Survey(s)) = self.kind_in(&flow) {
                        s.finished(self, now, wall);
                    }
                }
            }
            Event::RecordingFinished { duration_ms, path } => {
                if self.call.step == Step::Recording {
                    let flow = Arc::clone(&self.flow);
                    if let Some(NodeKind::Voicemail(v)) = self.kind_in(&flow) {
                        v.recorded(self, duration_ms, path, now, wall);
                    }
                }
            }
        }
        std::mem::take(&mut self.call.out)
    }

    /// When the interpreter wants `Event::TimerFired`; `None` for no timer.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.call.deadline
    }

    /// True once the flow has hung up or handed the call off (enqueue, transfer).
    pub fn is_finished(&self) -> bool {
        self.call.step == Step::Finished
    }

    /// True while the flow waits for keys (prompt done, timer running).
    pub fn awaiting_input(&self) -> bool {
        matches!(
            self.call.step,
            Step::Asking { playing: false, .. } | Step::Gathering { playing: false, .. }
        )
    }

    /// True while a prompt the flow asked for should be playing.
    pub fn is_playing(&self) -> bool {
        matches!(
            self.call.step,
            Step::Playing { .. }
                | Step::Asking { playing: true, .. }
                | Step::Gathering { playing: true, .. }
        )
    }

    /// True while an `Action::Lookup` is unanswered.
    pub fn pending_lookup(&self) -> Option<u64> {
        match self.call.step {
            Step::LookingUp { id } => Some(id),
            _ => None,
        }
    }

    /// True while a voicemail is being recorded.
    pub fn is_recording(&self) -> bool {
        self.call.step == Step::Recording
    }

    /// The id of the node the call is in.
    pub fn current_node(&self) -> Option<&str> {
        self.call.node.map(|i| self.flow.nodes[i].id.as_str())
    }

    /// The call's current language, e.g. `en` (changed by `language` nodes).
    pub fn language(&self) -> &str {
        &self.call.language
    }

    /// The issue type of the last node entered that set one; `None` before any.
    pub fn issue_type(&self) -> Option<&str> {
        self.issue_type.as_deref()
    }

    /// All variables as one JSON object (`caller`, lookups under their `into`, …).
    pub fn vars(&self) -> &Value {
        &self.call.vars
    }

    /// A variable by dotted name, as text.
    pub fn var(&self, name: &str) -> Option<String> {
        self.call.var(name)
    }

    /// True while a secure gather is the current node (between
    /// `Action::SecureInput { active: true }` and `{ active: false }`):
    /// keys pressed now must not be shown.
    pub fn secure_input(&self) -> bool {
        self.call.secure
    }

    /// True when the variable `name` holds what a secure gather took (or a
    /// `set` copy of it), or contains such a variable.
    pub fn is_masked(&self, name: &str) -> bool {
        self.call.is_masked(name)
    }

    /// The variables as they may be shown (to an agent, in a log): like
    /// [`Interpreter::vars`] with every masked variable's text replaced by
    /// one `*` per character.
    pub fn shown_vars(&self) -> Value {
        let mut vars = self.call.vars.clone();
        for name in &self.call.masked {
            if let Some(text) = self.call.var(name) {
                set_path(
                    &mut vars,
                    name,
                    Value::String("*".repeat(text.chars().count())),
                );
            }
        }
        vars
    }

    /// The flow version this call runs; a reload does not change it mid-call.
    pub fn flow(&self) -> &Arc<Flow> {
        &self.flow
    }

    // ---- internals: the loop, and what node kinds share ----

    /// The current node's kind, borrowed from `flow` (a clone of the
    /// interpreter's, so that the node can step the interpreter).
    fn kind_in<'f>(&self, flow: &'f Flow) -> Option<&'f NodeKind> {
        self.call.node.map(|i| &flow.nodes[i].kind)
    }

    fn prompt(&self, name: &str) -> String {
        match name.split_once('/') {
            Some((first, _)) if self.flow.languages.iter().any(|l| l == first) => name.to_owned(),
            _ => format!("{}/{}", self.call.language, name),
        }
    }

    /// Runs a node's entry; returns the next node when it does not wait.
    fn enter(&mut self, id: &str, now: Instant, wall: DateTime<Utc>) -> Option<String> {
        let flow = Arc::clone(&self.flow);
        let Some(&index) = flow.index.get(id) else {
            // The loader refuses dangling ids; this guards hand-built flows.
            self.call.record(
                "error",
                Some(id.to_owned()),
                json!({ "error": "no such node" }),
            );
            self.call.out.push(Action::Hangup);
            self.call.finish();
            return None;
        };
        let node = &flow.nodes[index];
        // Leaving a secure gather ends its span (a secure gather that
        // follows at once keeps it: no resume-and-pause in between).
        if !matches!(&node.kind, NodeKind::Gather(g) if g.secure) {
            self.call.end_secure();
        }
        self.call.node = Some(index);
        self.call.deadline = None;
        let nid = Some(node.id.clone());
        self.call.record(
            "node_entered",
            nid.clone(),
            json!({ "kind": node.kind.name() }),
        );
        if let Some(it) = &node.issue_type
            && self.issue_type.as_deref() != Some(it)
        {
            self.issue_type = Some(it.clone());
            self.call
                .record("issue_type", nid, json!({ "issue_type": it }));
        }
        node.kind.as_kind().enter(self, now, wall)
    }

    fn after(&mut self, after: After) -> Option<String> {
        match after {
            After::Goto { next, outcome } => {
                if let Some(o) = outcome {
                    let nid = self.node_id();
                    self.call.record("outcome", nid, json!({ "outcome": o }));
                }
                Some(next)
            }
            After::RecordVoicemail => {
                let flow = Arc::clone(&self.flow);
                match self.kind_in(&flow) {
                    Some(NodeKind::Voicemail(v)) => v.start_recording(self),
                    _ => None,
                }
            }
            After::Hangup => {
                self.call.out.push(Action::Hangup);
                self.call.finish();
                None
            }
        }
    }

    /// The current node's one-key question, if it asks one.
    fn choice(&self) -> Option<&Choice> {
        Some(self.kind_in(&self.flow)?.as_kind().question()?.choice)
    }

    fn on_prompt_finished(&mut self, interrupted: bool, now: Instant, wall: DateTime<Utc>) {
        if interrupted {
            self.interrupted = true;
        }
        match self.call.step.clone() {
            Step::Playing { after, .. } => {
                if let Some(next) = self.after(after) {
                    self.run_from(next, now, wall);
                }
            }
            Step::Asking {
                attempt,
                playing: true,
            } => {
                self.call.step = Step::Asking {
                    attempt,
                    playing: false,
                };
                if let Some(c) = self.choice() {
                    self.call.deadline = Some(now + c.timeout);
                }
            }
            Step::Gathering {
                attempt,
                digits,
                playing: true,
            } => {
                let flow = Arc::clone(&self.flow);
                if let Some(NodeKind::Gather(g)) = self.kind_in(&flow) {
                    g.prompt_finished(self, attempt, digits, now);
                }
            }
            _ => {}
        }
    }

    fn on_digit(&mut self, d: char, now: Instant, wall: DateTime<Utc>) {
        match self.call.step.clone() {
            Step::Asking { playing, attempt } => {
                let barge_in = self.choice().is_some_and(|c| c.barge_in);
                if playing {
                    if !barge_in {
                        return;
                    }
                    self.call.out.push(Action::StopPlayback);
                    self.call.step = Step::Asking {
                        attempt,
                        playing: false,
                    };
                }
                self.choose(d, now, wall);
            }
            Step::Gathering { .. } => {
                let flow = Arc::clone(&self.flow);
                if let Some(NodeKind::Gather(g)) = self.kind_in(&flow) {
                    g.digit(self, d, now, wall);
                }
            }
            Step::Playing { after, barge_in } => {
                if barge_in {
                    // The shell has stopped (or will stop) the prompt; keep the key.
                    self.call.typeahead.push_back(d);
                    self.call.out.push(Action::StopPlayback);
                    if let Some(next) = self.after(after) {
                        self.run_from(next, now, wall);
                    }
                }
            }
            _ => {
                if self.interrupted && self.call.typeahead.len() < 32 {
                    self.call.typeahead.push_back(d);
                }
            }
        }
    }

    /// A key for a menu, language question or callback question.
    fn choose(&mut self, d: char, now: Instant, wall: DateTime<Utc>) {
        let flow = Arc::clone(&self.flow);
        let Some(index) = self.call.node else { return };
        let kind = flow.nodes[index].kind.as_kind();
        self.call.deadline = None;
        let Some(question) = kind.question() else {
            return;
        };
        match question.choice.option(d) {
            Some(option) => kind.chosen(self, d, option, now, wall),
            None => self.retry(Retry::Invalid, &d.to_string(), now, wall),
        }
    }

    fn on_timer(&mut self, now: Instant, wall: DateTime<Utc>) {
        let flow = Arc::clone(&self.flow);
        match self.call.step.clone() {
            Step::Asking { playing: false, .. } => self.retry(Retry::Timeout, "", now, wall),
            Step::Gathering {
                digits,
                playing: false,
                ..
            } => {
                if let Some(NodeKind::Gather(g)) = self.kind_in(&flow) {
                    g.timer_fired(self, digits, now, wall);
                }
            }
            Step::LookingUp { .. } => {
                if let Some(NodeKind::Lookup(l)) = self.kind_in(&flow) {
                    l.answered(self, Err("timeout".into()), now, wall);
                }
            }
            _ => {}
        }
    }
}

/// What node kinds may do to the call beyond changing its state: the parts
/// of a step that need the flow.
impl StepCx for Interpreter {
    fn call(&self) -> &Call {
        &self.call
    }

    fn call_mut(&mut self) -> &mut Call {
        &mut self.call
    }

    fn node_id(&self) -> Option<String> {
        self.current_node().map(str::to_owned)
    }

    fn node(&self, id: &str) -> Option<&dyn Any> {
        Some(self.flow.node(id)?.kind.as_kind().as_any())
    }

    fn play(&mut self, names: &[String], barge_in: bool) {
        let prompts = names.iter().map(|n| self.prompt(n)).collect();
        self.interrupted = false;
        self.call.out.push(Action::Play { prompts, barge_in });
    }

    fn play_then(&mut self, prompts: &[String], barge_in: bool, after: After) -> Option<String> {
        if prompts.is_empty() {
            return self.after(after);
        }
        self.play(prompts, barge_in);
        self.call.step = Step::Playing { after, barge_in };
        None
    }

    fn ask(&mut self, c: &Choice, now: Instant, wall: DateTime<Utc>) -> Option<String> {
        if let Some(d) = self.call.typeahead.pop_front() {
            self.call.typeahead.clear();
            self.call.step = Step::Asking {
                attempt: 0,
                playing: false,
            };
            self.choose(d, now, wall);
            return None;
        }
        self.play(&c.prompts, c.barge_in);
        self.call.step = Step::Asking {
            attempt: 0,
            playing: true,
        };
        None
    }

    fn retry(&mut self, why: Retry, input: &str, now: Instant, wall: DateTime<Utc>) {
        let flow = Arc::clone(&self.flow);
        let Some(index) = self.call.node else { return };
        let node = &flow.nodes[index];
        let nid = Some(node.id.clone());
        self.call.typeahead.clear();
        let Some(r) = node.kind.as_kind().reprompt(&self.call.step) else {
            return;
        };
        match why {
            // A secure gather's wrong digits are shown as one `*` each.
            Retry::Invalid if self.call.secure => self.call.record(
                "invalid",
                nid.clone(),
                json!({
                    "input": "*".repeat(input.chars().count()),
                    "attempt": r.attempt + 1,
                    "masked": true,
                }),
            ),
            Retry::Invalid => self.call.record(
                "invalid",
                nid.clone(),
                json!({ "input": input, "attempt": r.attempt + 1 }),
            ),
            Retry::Timeout => self.call.record(
                "timeout",
                nid.clone(),
                json!({ "after_ms": r.timeout.as_millis() as u64, "attempt": r.attempt + 1 }),
            ),
        }
        let attempt = r.attempt + 1;
        if attempt > r.retries {
            self.call
                .record("exhausted", nid, json!({ "attempts": attempt }));
            self.run_from(r.on_exhausted.to_owned(), now, wall);
            return;
        }
        let mut again: Vec<String> = match why {
            Retry::Invalid => r.invalid_prompts.to_vec(),
            Retry::Timeout => r.timeout_prompts.to_vec(),
        };
        again.extend(r.prompts.iter().cloned());
        self.play(&again, r.barge_in);
        self.call.step = match self.call.step {
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

    fn run_from(&mut self, id: String, now: Instant, wall: DateTime<Utc>) {
        let mut next = Some(id);
        let mut steps = 0;
        while let Some(id) = next.take() {
            steps += 1;
            if steps > MAX_STEPS {
                self.call.record(
                    "error",
                    Some(id),
                    json!({ "error": "the flow ran in a loop without waiting; hanging up" }),
                );
                self.call
                    .record("outcome", None, json!({ "outcome": "failed" }));
                self.call.out.push(Action::Hangup);
                self.call.finish();
                return;
            }
            next = self.enter(&id, now, wall);
        }
    }
}
