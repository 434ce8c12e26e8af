//! The simulator: runs the real [`Interpreter`] against a fake clock, a
//! scripted caller and canned lookup answers, and reports what happened.
//!
//! Prompts last as long as their WAV files (1 s when there is none), keys
//! are pressed when the flow waits for them, and a missing key is silence,
//! so timeouts and retries play out as they would on a call.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::flow::{Flow, LookupSource};
use crate::interp::{Action, CallVars, Event, Interpreter};
use crate::yaml::{self, YamlValue};

/// A canned lookup answer.
#[derive(Clone, Debug, PartialEq)]
pub enum FixtureAnswer {
    /// The source's answer: a JSON object stored under the lookup's `into`.
    Found(Map<String, Value>),
    /// The source failed with this message (the flow takes `on_failure`).
    Error(String),
    /// Never answer: the flow's lookup timeout decides.
    Timeout,
}

/// Lookup answers for the simulator, from a YAML or JSON file:
///
/// ```yaml
/// subscriber_by_caller_id:
///   "+8613800000000": { name: Li Lei, renews_on: 2027-03-01 }
/// order_by_number:
///   "12345": { status: shipped }
///   "99999": { error: database unavailable }
/// webhook:
///   "http://crm.example/vip": timeout
/// ```
///
/// A key not listed answers "not found" (an empty result).
#[derive(Clone, Debug, Default)]
pub struct Fixtures {
    /// `subscriber_by_caller_id` answers, by number.
    pub subscribers: HashMap<String, FixtureAnswer>,
    /// `order_by_number` answers, by order number.
    pub orders: HashMap<String, FixtureAnswer>,
    /// `webhook` answers, by URL.
    pub webhooks: HashMap<String, FixtureAnswer>,
}

impl Fixtures {
    /// Reads fixtures from a YAML or JSON file; the error names the file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses fixtures from YAML or JSON text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let root = yaml::parse(text)
            .map_err(|e| format!("{}:{}: {}", e.pos.line, e.pos.col, e.message))?;
        let mut fx = Fixtures::default();
        let Some(root) = root else { return Ok(fx) };
        let YamlValue::Map(entries) = &root.value else {
            return Err("fixtures must be a mapping".into());
        };
        for (k, v) in entries {
            let table = match k.as_str() {
                Some("subscriber_by_caller_id") => &mut fx.subscribers,
                Some("order_by_number") => &mut fx.orders,
                Some("webhook") => &mut fx.webhooks,
                other => {
                    return Err(format!(
                        "{}:{}: unknown fixture section `{}`; use subscriber_by_caller_id, order_by_number or webhook",
                        k.pos.line,
                        k.pos.col,
                        other.unwrap_or("?")
                    ));
                }
            };
            let YamlValue::Map(items) = &v.value else {
                return Err(format!(
                    "{}:{}: a fixture section maps keys to answers",
                    v.pos.line, v.pos.col
                ));
            };
            for (key, ans) in items {
                let answer = match ans.to_json() {
                    Value::String(s) if s == "timeout" => FixtureAnswer::Timeout,
                    Value::Object(m) if m.len() == 1 && m.contains_key("error") => {
                        FixtureAnswer::Error(m["error"].as_str().unwrap_or("error").to_owned())
                    }
                    Value::Object(m) => FixtureAnswer::Found(m),
                    _ => {
                        return Err(format!(
                            "{}:{}: an answer is a mapping of fields, {{error: …}} or timeout",
                            ans.pos.line, ans.pos.col
                        ));
                    }
                };
                table.insert(key.as_str().unwrap_or_default().to_owned(), answer);
            }
        }
        Ok(fx)
    }

    /// The canned answer to a lookup.
    pub fn answer(&self, source: &LookupSource, params: &Map<String, Value>) -> FixtureAnswer {
        let number = params.get("number").map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let found = match source {
            LookupSource::SubscriberByCallerId => number.and_then(|n| self.subscribers.get(&n)),
            LookupSource::OrderByNumber => number.and_then(|n| self.orders.get(&n)),
            LookupSource::Webhook { url } => self.webhooks.get(url),
        };
        found.cloned().unwrap_or(FixtureAnswer::Found(Map::new()))
    }
}

/// How to run a simulation.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// What the caller presses, space-separated: `1` a key, `1234#` keys in
    /// quick succession, `-` silence at that question, `~1` a key pressed one
    /// second into a prompt (barge-in).
    pub digits: String,
    /// The wall-clock time the call starts (for business hours).
    pub at: DateTime<Utc>,
    /// The caller's number, `${caller}` in the flow.
    pub caller: String,
    /// The number dialled, `${callee}` in the flow.
    pub callee: String,
    /// Start in this language instead of the flow's default.
    pub language: Option<String>,
    /// Canned lookup answers.
    pub fixtures: Fixtures,
    /// Prompt lengths come from `<sounds_dir>/<prompt>.wav`.
    pub sounds_dir: Option<PathBuf>,
    /// How long a simulated voicemail message lasts (capped by the node's maximum).
    pub voicemail_secs: u64,
    /// As `hotline serve --force-hours`: every `hours` node answers this.
    pub forced_hours: Option<crate::ForcedHours>,
    /// As the gateway's `--dial-allow`: the numbers a `callback` node may
    /// book (`None`: any dialable number).
    pub dial_check: Option<crate::callback::DialCheck>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            digits: String::new(),
            at: DateTime::<Utc>::from_timestamp(0, 0).expect("epoch"),
            caller: "+8613800000000".into(),
            callee: "hotline".into(),
            language: None,
            fixtures: Fixtures::default(),
            sounds_dir: None,
            voicemail_secs: 8,
            forced_hours: None,
            dial_check: None,
        }
    }
}

/// One thing that happened, at its offset from the call's start.
#[derive(Clone, Debug, PartialEq)]
pub enum SimStep {
    /// What the interpreter asked for.
    Action(Action),
    /// The caller pressed a key.
    Pressed(char),
}

/// What a simulated call did.
#[derive(Clone, Debug, Default)]
pub struct Transcript {
    /// Every action and key press, in order, with its offset from the call's
    /// start.
    pub steps: Vec<(Duration, SimStep)>,
    /// Why the simulation stopped (hang-up, hand-off, or stuck).
    pub ended: String,
    /// Script entries never used (the call ended first).
    pub unused_input: Vec<String>,
    /// The call's variables when the simulation stopped (`caller`, lookups
    /// under their `into`, gathered digits …).
    pub vars: Value,
}

impl Transcript {
    fn actions(&self) -> impl Iterator<Item = &Action> {
        self.steps.iter().filter_map(|(_, s)| match s {
            SimStep::Action(a) => Some(a),
            _ => None,
        })
    }

    /// Node ids in the order they were entered.
    pub fn nodes(&self) -> Vec<String> {
        self.records("node_entered")
            .into_iter()
            .filter_map(|(n, _)| n)
            .collect()
    }

    /// Every prompt played, in order (`en/welcome`, …).
    pub fn prompts(&self) -> Vec<String> {
        self.actions()
            .filter_map(|a| match a {
                Action::Play { prompts, .. } => Some(prompts.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Records of one kind: (node, data).
    pub fn records(&self, kind: &str) -> Vec<(Option<String>, Value)> {
        self.actions()
            .filter_map(|a| match a {
                Action::Record {
                    kind: k,
                    node,
                    data,
                } if *k == kind => Some((node.clone(), data.clone())),
                _ => None,
            })
            .collect()
    }

    /// The last `outcome` recorded, if any.
    pub fn outcome(&self) -> Option<String> {
        self.records("outcome")
            .last()
            .and_then(|(_, d)| d["outcome"].as_str().map(str::to_owned))
    }

    /// The actions other than records and plays (lookups, enqueue, hangup…).
    pub fn effects(&self) -> Vec<Action> {
        self.actions()
            .filter(|a| {
                !matches!(
                    a,
                    Action::Record { .. } | Action::Play { .. } | Action::StopPlayback
                )
            })
            .cloned()
            .collect()
    }

    /// The path as an admin reads it: node by node, what the caller hears and does.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (at, step) in &self.steps {
            let t = format!("{:>7.1}s", at.as_secs_f64());
            let pad = " ".repeat(t.len());
            let line = match step {
                SimStep::Pressed(c) => Some(format!("{pad}  caller presses {c}")),
                SimStep::Action(a) => match a {
                    Action::Record { kind, node, data } => match *kind {
                        "node_entered" => Some(format!(
                            "{t}  {} ({})",
                            node.as_deref().unwrap_or("?"),
                            data["kind"].as_str().unwrap_or("")
                        )),
                        "flow_started" => Some(format!(
                            "{t}  flow {} version {} in {}",
                            data["flow"].as_str().unwrap_or(""),
                            data["version"].as_str().unwrap_or(""),
                            data["language"].as_str().unwrap_or("")
                        )),
                        "timeout" => {
                            Some(format!("{pad}  no input (waited {} ms)", data["after_ms"]))
                        }
                        "invalid" => Some(format!("{pad}  invalid input {}", data["input"])),
                        "exhausted" => Some(format!("{pad}  out of retries")),
                        "input" => Some(format!("{pad}  accepted {}", data["input"])),
                        "issue_type" => Some(format!(
                            "{pad}  issue type: {}",
                            data["issue_type"].as_str().unwrap_or("")
                        )),
                        "language_set" => Some(format!(
                            "{pad}  language: {}",
                            data["language"].as_str().unwrap_or("")
                        )),
                        "hours" => Some(format!(
                            "{pad}  {} at {}",
                            data["state"].as_str().unwrap_or(""),
                            data["local_time"].as_str().unwrap_or("")
                        )),
                        "lookup" => Some(if data["ok"] == true {
                            format!(
                                "{pad}  lookup {}: {}",
                                data["lookup"].as_str().unwrap_or(""),
                                if data["found"] == true {
                                    format!("found {}", data["result"])
                                } else {
                                    "not found".into()
                                }
                            )
                        } else {
                            format!(
                                "{pad}  lookup {} failed: {}",
                                data["lookup"].as_str().unwrap_or(""),
                                data["error"].as_str().unwrap_or("")
                            )
                        }),
                        "outcome" => Some(format!(
                            "{pad}  outcome: {}",
                            data["outcome"].as_str().unwrap_or("")
                        )),
                        "error" => Some(format!(
                            "{pad}  error: {}",
                            data["error"].as_str().unwrap_or("")
                        )),
                        _ => None,
                    },
                    Action::Play { prompts, barge_in } => Some(format!(
                        "{pad}  hears {}{}",
                        prompts.join(", "),
                        if *barge_in { "" } else { " (no barge-in)" }
                    )),
                    Action::StopPlayback => None,
                    Action::SecureInput { active: true } => Some(format!(
                        "{pad}  recording paused, keys masked (secure gather)"
                    )),
                    Action::SecureInput { active: false } => {
                        Some(format!("{pad}  recording resumed"))
                    }
                    Action::Lookup { source, params, .. } => Some(format!(
                        "{pad}  asks {} {}",
                        source.name(),
                        Value::Object(params.clone())
                    )),
                    Action::Enqueue {
                        queue,
                        priority,
                        data,
                    } => Some(format!(
                        "{pad}  queued for an agent: {queue} (priority {priority}) {}",
                        Value::Object(data.clone())
                    )),
                    Action::Transfer { target, method } => Some(format!(
                        "{pad}  transferred to {target} ({})",
                        method.name()
                    )),
                    Action::RecordVoicemail { max_secs, beep } => Some(format!(
                        "{pad}  {}records a message (up to {max_secs} s)",
                        if *beep { "beep, " } else { "" }
                    )),
                    Action::CallbackRequested {
                        number,
                        slot,
                        queue,
                        due_at,
                    } => Some(format!(
                        "{pad}  callback booked: {number}, {slot}, queue {}, due {}",
                        queue.as_deref().unwrap_or("-"),
                        due_at.format("%Y-%m-%d %H:%M UTC")
                    )),
                    Action::Survey => Some(format!(
                        "{pad}  survey: rate this call from 1 to 5, then a comment after the tone"
                    )),
                    Action::Hangup => Some(format!("{pad}  hangs up")),
                },
            };
            if let Some(line) = line {
                let _ = writeln!(s, "{line}");
            }
        }
        let _ = writeln!(s, "end: {}", self.ended);
        if !self.unused_input.is_empty() {
            let _ = writeln!(s, "unused input: {}", self.unused_input.join(" "));
        }
        s
    }
}

/// Reads a WAV header for its length; `None` when the file is not a usable WAV.
pub fn wav_duration(path: &Path) -> Option<Duration> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let mut i = 12;
    let mut byte_rate = None;
    while i + 8 <= bytes.len() {
        let id = &bytes[i..i + 4];
        let size = u32::from_le_bytes(bytes[i + 4..i + 8].try_into().ok()?) as usize;
        let body = i + 8;
        if id == b"fmt " && body + 12 <= bytes.len() {
            byte_rate = Some(u32::from_le_bytes(
                bytes[body + 8..body + 12].try_into().ok()?,
            ));
        } else if id == b"data" {
            let rate = byte_rate.filter(|r| *r > 0)?;
            let size = size.min(bytes.len() - body);
            return Some(Duration::from_secs_f64(size as f64 / rate as f64));
        }
        i = body + size + (size & 1);
    }
    None
}

enum Input {
    Keys(Vec<char>),
    Silence,
    BargeIn(Vec<char>),
}

fn parse_script(s: &str) -> Result<VecDeque<(String, Input)>, String> {
    let mut out = VecDeque::new();
    for tok in s.split_whitespace() {
        let input = if tok == "-" {
            Input::Silence
        } else {
            let (barge, keys) = match tok.strip_prefix('~') {
                Some(k) => (true, k),
                None => (false, tok),
            };
            if keys.is_empty()
                || !keys
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
            {
                return Err(format!(
                    "`{tok}` is not keys (0-9 * #), `-` (silence) or `~KEYS` (pressed during a prompt)"
                ));
            }
            let keys = keys.chars().collect();
            if barge {
                Input::BargeIn(keys)
            } else {
                Input::Keys(keys)
            }
        };
        out.push_back((tok.to_owned(), input));
    }
    Ok(out)
}

/// How long a simulated survey lasts (prompt, key, comment, thanks).
const SURVEY_SIM_LEN: Duration = Duration::from_secs(15);

/// A lookup answer due at an instant: (when, lookup id, answer).
type PendingAnswer = (Duration, u64, Result<Map<String, Value>, String>);

/// Runs a call through `flow` and returns what happened.
pub fn simulate(flow: Arc<Flow>, opts: &SimOptions) -> Result<Transcript, String> {
    let mut script = parse_script(&opts.digits)?;
    let mut durations: HashMap<String, Duration> = HashMap::new();
    let mut prompt_len = |name: &str| -> Duration {
        *durations.entry(name.to_owned()).or_insert_with(|| {
            opts.sounds_dir
                .as_ref()
                .and_then(|d| wav_duration(&d.join(format!("{name}.wav"))))
                .unwrap_or(Duration::from_secs(1))
        })
    };
    let t0 = Instant::now();
    let wall = |t: Duration| opts.at + chrono::Duration::from_std(t).unwrap_or_default();
    let mut interp = Interpreter::new(
        flow,
        CallVars {
            caller: opts.caller.clone(),
            callee: opts.callee.clone(),
            language: opts.language.clone(),
            extra: Vec::new(),
            forced_hours: opts.forced_hours,
            dial_check: opts.dial_check.clone(),
        },
    );
    let mut tr = Transcript::default();
    let mut t = Duration::ZERO;
    let mut playing: Option<(Duration, bool)> = None;
    let mut lookup: Option<PendingAnswer> = None;
    let mut recording: Option<Duration> = None;
    // The survey the call core would run: when it ends, with the score.
    let mut survey: Option<(Duration, Option<u8>)> = None;
    let mut keys: VecDeque<char> = VecDeque::new();
    let mut next_key_at = Duration::ZERO;
    let mut silent = false;
    let mut key_stopped_prompt = false;
    let mut event = Some(Event::Started);
    let limit = Duration::from_secs(3600);
    for _ in 0..100_000 {
        if let Some(ev) = event.take() {
            if let Event::Digit(c) = ev {
                tr.steps.push((t, SimStep::Pressed(c)));
            }
            let fired = ev == Event::TimerFired;
            for a in interp.handle(t0 + t, wall(t), ev) {
                match &a {
                    Action::Play { prompts, barge_in } => {
                        let len: Duration = prompts.iter().map(|p| prompt_len(p)).sum();
                        playing = Some((t + len, *barge_in));
                    }
                    Action::StopPlayback => playing = None,
                    Action::Lookup {
                        id, source, params, ..
                    } => {
                        lookup = match opts.fixtures.answer(source, params) {
                            FixtureAnswer::Found(m) => {
                                Some((t + Duration::from_millis(100), *id, Ok(m)))
                            }
                            FixtureAnswer::Error(e) => {
                                Some((t + Duration::from_millis(100), *id, Err(e)))
                            }
                            FixtureAnswer::Timeout => None,
                        }
                    }
                    Action::Survey => {
                        // The caller's next keys answer it (the first key
                        // 1-5 is the score); silence or no keys: no score.
                        let score = match script.front() {
                            Some((_, Input::Keys(k) | Input::BargeIn(k))) => {
                                let k = k.first().copied();
                                script.pop_front();
                                if let Some(c) = k {
                                    tr.steps.push((t, SimStep::Pressed(c)));
                                }
                                k.and_then(|c| c.to_digit(10))
                                    .filter(|d| (1..=5).contains(d))
                                    .map(|d| d as u8)
                            }
                            Some((_, Input::Silence)) => {
                                script.pop_front();
                                None
                            }
                            None => None,
                        };
                        survey = Some((t + SURVEY_SIM_LEN, score));
                    }
                    Action::RecordVoicemail { max_secs, .. } => {
                        recording = Some(
                            t + Duration::from_secs(opts.voicemail_secs.min(*max_secs as u64)),
                        );
                    }
                    _ => {}
                }
                tr.steps.push((t, SimStep::Action(a)));
            }
            if fired {
                silent = false;
            }
        }
        if interp.is_finished() {
            tr.ended = match tr.effects().last() {
                Some(Action::Enqueue { .. }) => "handed to a queue".into(),
                Some(Action::Transfer { .. }) => "transferred".into(),
                _ => "hung up".into(),
            };
            break;
        }
        // The earliest thing that happens next.
        let mut cands: Vec<(Duration, u8)> = Vec::new();
        if let Some((until, _)) = playing {
            cands.push((until, 0));
        }
        if let Some((at, _, _)) = &lookup {
            cands.push((*at, 1));
        }
        if let Some(at) = recording {
            cands.push((at, 2));
        }
        if let Some((at, _)) = survey {
            cands.push((at, 5));
        }
        if let Some(dl) = interp.next_timeout() {
            cands.push((dl.saturating_duration_since(t0), 3));
        }
        if keys.is_empty() && !silent {
            match script.front() {
                Some((_, Input::BargeIn(_))) if playing.is_some() => {
                    if let Some((_, Input::BargeIn(k))) = script.pop_front() {
                        keys.extend(k);
                        next_key_at = t + Duration::from_secs(1);
                    }
                }
                Some((_, Input::Keys(_))) if interp.awaiting_input() => {
                    if let Some((_, Input::Keys(k))) = script.pop_front() {
                        keys.extend(k);
                        next_key_at = t + Duration::from_millis(500);
                    }
                }
                Some((_, Input::Silence)) if interp.awaiting_input() => {
                    script.pop_front();
                    silent = true;
                }
                _ => {}
            }
        }
        if !keys.is_empty() {
            cands.push((next_key_at.max(t), 4));
        }
        let Some(&(at, what)) = cands.iter().min() else {
            tr.ended = "the flow waits with nothing to wake it".into();
            break;
        };
        if at > limit {
            tr.ended = "still running after an hour".into();
            break;
        }
        t = at.max(t);
        event = Some(match what {
            0 => {
                playing = None;
                Event::PromptFinished { interrupted: false }
            }
            1 => {
                let (_, id, result) = lookup.take().expect("candidate exists");
                Event::LookupResult { id, result }
            }
            2 => {
                recording = None;
                Event::RecordingFinished {
                    duration_ms: opts.voicemail_secs * 1000,
                    path: None,
                }
            }
            3 => Event::TimerFired,
            5 => {
                let (_, score) = survey.take().expect("candidate exists");
                Event::SurveyFinished { score }
            }
            _ => {
                if matches!(playing, Some((_, true))) && !key_stopped_prompt {
                    // The media stops a barge-in prompt and reports that before the key.
                    playing = None;
                    key_stopped_prompt = true;
                    Event::PromptFinished { interrupted: true }
                } else {
                    key_stopped_prompt = false;
                    let c = keys.pop_front().expect("candidate exists");
                    next_key_at = t + Duration::from_millis(250);
                    Event::Digit(c)
                }
            }
        });
    }
    tr.unused_input = script.into_iter().map(|(tok, _)| tok).collect();
    tr.vars = interp.vars().clone();
    Ok(tr)
}
