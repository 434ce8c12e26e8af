//! What the call actor asks of an IVR flow: inputs in, actions out, time passed in.
//!
//! The actor knows nothing of menus; it feeds a [`CallFlow`] what happened and
//! carries out what it asks. [`BuiltinFlow`] is the minimal flow the gateway
//! answers with until a YAML flow is configured: welcome, one digit, confirm,
//! hang up.

use std::time::{Duration, Instant};

/// Something that happened on the call that the flow may care about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowInput {
    /// The call is answered and media flows.
    Started,
    Digit(char),
    /// The last `Play` finished (or a digit interrupted it).
    PromptFinished {
        interrupted: bool,
    },
    /// The deadline from the last `StartTimer` passed.
    TimerFired,
}

/// What the flow wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowAction {
    /// Play prompts back to back (names relative to the sounds dir, e.g. `en/welcome`).
    Play {
        prompts: Vec<String>,
        barge_in: bool,
    },
    /// Wake the flow with `TimerFired` at this instant (replaces any earlier timer).
    StartTimer(Instant),
    CancelTimer,
    /// A step worth recording (node entered, timeout, invalid input…).
    Record {
        kind: &'static str,
        node: Option<String>,
        data: serde_json::Value,
    },
    Hangup,
}

/// An IVR flow driven by the call actor. Pure: no IO, time passed in.
pub trait CallFlow: Send + Sync {
    fn handle(&mut self, now: Instant, input: FlowInput) -> Vec<FlowAction>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Idle,
    Welcome,
    Waiting,
    Confirming,
    Goodbye,
    Done,
}

/// Answer, play a welcome, collect one digit, play it back, hang up.
pub struct BuiltinFlow {
    step: Step,
    language: String,
    digit_timeout: Duration,
    digit: Option<char>,
}

impl BuiltinFlow {
    pub fn new(language: &str, digit_timeout: Duration) -> Self {
        Self {
            step: Step::Idle,
            language: language.to_owned(),
            digit_timeout,
            digit: None,
        }
    }

    fn prompt(&self, name: &str) -> String {
        format!("{}/{}", self.language, name)
    }

    fn digit_prompt(&self, d: char) -> String {
        let name = match d {
            '*' => "star".to_owned(),
            '#' => "pound".to_owned(),
            d => d.to_string(),
        };
        self.prompt(&format!("digits/{name}"))
    }

    fn confirm(&mut self, d: char) -> Vec<FlowAction> {
        self.digit = Some(d);
        self.step = Step::Confirming;
        let mut prompts = vec![self.prompt("you-pressed")];
        if d.is_ascii_digit() || d == '*' || d == '#' {
            prompts.push(self.digit_prompt(d));
        }
        vec![
            FlowAction::CancelTimer,
            FlowAction::Play {
                prompts,
                barge_in: false,
            },
        ]
    }
}

impl CallFlow for BuiltinFlow {
    fn handle(&mut self, now: Instant, input: FlowInput) -> Vec<FlowAction> {
        match (self.step, input) {
            (Step::Idle, FlowInput::Started) => {
                self.step = Step::Welcome;
                vec![FlowAction::Play {
                    prompts: vec![self.prompt("welcome")],
                    barge_in: true,
                }]
            }
            (Step::Welcome | Step::Waiting, FlowInput::Digit(d)) => self.confirm(d),
            (Step::Welcome, FlowInput::PromptFinished { .. }) => {
                self.step = Step::Waiting;
                vec![FlowAction::StartTimer(now + self.digit_timeout)]
            }
            (Step::Waiting, FlowInput::TimerFired) => {
                self.step = Step::Goodbye;
                vec![
                    FlowAction::Record {
                        kind: "timeout",
                        node: None,
                        data: serde_json::json!({ "after_ms": self.digit_timeout.as_millis() as u64 }),
                    },
                    FlowAction::Play {
                        prompts: vec![self.prompt("goodbye")],
                        barge_in: false,
                    },
                ]
            }
            (Step::Confirming | Step::Goodbye, FlowInput::PromptFinished { .. }) => {
                self.step = Step::Done;
                vec![FlowAction::Hangup]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plays(actions: &[FlowAction]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                FlowAction::Play { prompts, .. } => Some(prompts.join("+")),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn digit_during_welcome_is_confirmed_then_hangs_up() {
        let t0 = Instant::now();
        let mut f = BuiltinFlow::new("en", Duration::from_secs(5));
        assert_eq!(plays(&f.handle(t0, FlowInput::Started)), ["en/welcome"]);
        let a = f.handle(t0, FlowInput::Digit('7'));
        assert_eq!(plays(&a), ["en/you-pressed+en/digits/7"]);
        // the interrupted welcome reports too late to matter
        assert!(f.handle(t0, FlowInput::Digit('8')).is_empty());
        assert_eq!(
            f.handle(t0, FlowInput::PromptFinished { interrupted: false }),
            [FlowAction::Hangup]
        );
    }

    #[test]
    fn no_digit_times_out_to_goodbye() {
        let t0 = Instant::now();
        let mut f = BuiltinFlow::new("en", Duration::from_secs(5));
        f.handle(t0, FlowInput::Started);
        let t1 = t0 + Duration::from_secs(4);
        assert_eq!(
            f.handle(t1, FlowInput::PromptFinished { interrupted: false }),
            [FlowAction::StartTimer(t1 + Duration::from_secs(5))]
        );
        let a = f.handle(t1 + Duration::from_secs(5), FlowInput::TimerFired);
        assert_eq!(plays(&a), ["en/goodbye"]);
        assert!(matches!(
            a[0],
            FlowAction::Record {
                kind: "timeout",
                ..
            }
        ));
        assert_eq!(
            f.handle(t1, FlowInput::PromptFinished { interrupted: false }),
            [FlowAction::Hangup]
        );
    }

    #[test]
    fn star_and_pound_have_prompts() {
        let t0 = Instant::now();
        let mut f = BuiltinFlow::new("zh", Duration::from_secs(5));
        f.handle(t0, FlowInput::Started);
        assert_eq!(
            plays(&f.handle(t0, FlowInput::Digit('#'))),
            ["zh/you-pressed+zh/digits/pound"]
        );
    }
}
