//! The `gather` node: collects several digits into a variable, with its own
//! wait state ([`Step::Gathering`]): per-digit timers and a finish key.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use regex::Regex;
use serde_json::{Value, json};

use super::{Kind, exit};
use crate::parse::{Context, Fields, Loader, Syntax, is_var_name};
use crate::step::{Action, Reprompt, Retry, Step, StepCx, set_path};

/// `gather`: several digits into a variable.
#[derive(Debug)]
pub struct DigitCollector {
    /// Played first; digits may be typed over them.
    pub prompts: Vec<String>,
    /// Fewer digits than this is invalid input (1 by default).
    pub min_digits: usize,
    /// Input ends at this many digits (20 by default).
    pub max_digits: usize,
    /// The key that ends input early (`#` by default); `None` for no such key.
    pub finish_key: Option<char>,
    /// No digit at all within this long is a timeout (5 s by default).
    pub first_digit_timeout: Duration,
    /// Silence this long after a digit ends the input (3 s by default).
    pub inter_digit_timeout: Duration,
    /// How many more times the prompts play after invalid input or a timeout.
    pub retries: u32,
    /// The whole input must match (anchored).
    pub pattern: Option<Regex>,
    /// The variable valid input is stored in.
    pub into: String,
    /// Played after invalid input, before the prompts again.
    pub invalid_prompts: Vec<String>,
    /// Played after a timeout, before the prompts again.
    pub timeout_prompts: Vec<String>,
    /// Where to go with valid input.
    pub next: String,
    /// Where to go when retries run out.
    pub on_exhausted: String,
    /// `secure: true`: card or ID numbers. While the node runs the call's
    /// recording is silenced and the keys are masked in events and logs;
    /// `into` is marked masked for the rest of the call (usable by the
    /// flow, shown only as `*`s). Type-ahead is not taken.
    pub secure: bool,
}

pub(crate) const SYNTAX: Syntax<DigitCollector> = Syntax {
    name: "gather",
    keys: &[
        "prompt",
        "min_digits",
        "max_digits",
        "finish_key",
        "first_digit_timeout",
        "inter_digit_timeout",
        "retries",
        "pattern",
        "into",
        "invalid_prompt",
        "timeout_prompt",
        "next",
        "on_exhausted",
        "secure",
    ],
    parse,
};

fn parse(l: &mut Loader, f: &mut Fields<'_>, cx: &Context<'_>) -> Option<DigitCollector> {
    let d = cx.defaults;
    let prompts = match l.required(f, "prompt") {
        Some(y) => l.prompt_list(y, "prompt"),
        None => Vec::new(),
    };
    let min_digits = l.int(f, "min_digits", 1, 64).unwrap_or(1) as usize;
    let max_pos = f.pos;
    let max_digits = l.int(f, "max_digits", 1, 64).unwrap_or(20) as usize;
    if max_digits < min_digits {
        l.err(
            max_pos,
            format!("`max_digits` ({max_digits}) is less than `min_digits` ({min_digits})"),
        );
    }
    let finish_key = match f.take("finish_key") {
        Some(y) if y.is_null() || y.as_str() == Some("none") => None,
        Some(y) => l.key_char(y),
        None => Some('#'),
    };
    let pattern = match f.take("pattern") {
        Some(y) => l.regex(y, "pattern"),
        None => None,
    };
    let first = l
        .duration(f, "first_digit_timeout")
        .or(d.timeout)
        .unwrap_or(Duration::from_secs(5));
    let inter = l
        .duration(f, "inter_digit_timeout")
        .unwrap_or(Duration::from_secs(3));
    let retries = l
        .int(f, "retries", 0, 9)
        .map(|n| n as u32)
        .or(d.retries)
        .unwrap_or(2);
    let into = l.req_text(f, "into");
    if let Some(v) = &into
        && !is_var_name(v)
    {
        l.err(
            f.pos,
            format!("`into`: `{v}` is not a variable name (letters, digits, `_`, `.`)"),
        );
    }
    let invalid_prompts = match f.take("invalid_prompt") {
        Some(y) => l.prompt_list(y, "invalid_prompt"),
        None => d.invalid_prompts.clone(),
    };
    let timeout_prompts = match f.take("timeout_prompt") {
        Some(y) => l.prompt_list(y, "timeout_prompt"),
        None => d.timeout_prompts.clone(),
    };
    let next = l.req_target(f, "next");
    let on_exhausted = l.exhausted(f, "gather");
    let secure = l.bool(f, "secure", false);
    Some(DigitCollector {
        prompts,
        min_digits,
        max_digits,
        finish_key,
        first_digit_timeout: first,
        inter_digit_timeout: inter,
        retries,
        pattern,
        into: into?,
        invalid_prompts,
        timeout_prompts,
        next: next?,
        on_exhausted: on_exhausted?,
        secure,
    })
}

impl Kind for DigitCollector {
    fn name(&self) -> &'static str {
        SYNTAX.name
    }

    fn waits_for_caller(&self) -> bool {
        true
    }

    fn exits(&self) -> Vec<(String, &str)> {
        vec![
            exit("ok", &self.next),
            exit("no valid input", &self.on_exhausted),
        ]
    }

    fn enter(&self, it: &mut dyn StepCx, now: Instant, wall: DateTime<Utc>) -> Option<String> {
        let here = it.node;
        if self.secure {
            // Keys pressed before the span began were shown as they came:
            // a secure gather does not take them as its input.
            it.typeahead.clear();
            if !it.secure {
                it.secure = true;
                it.out.push(Action::SecureInput { active: true });
            }
        }
        it.step = Step::Gathering {
            attempt: 0,
            digits: String::new(),
            playing: false,
        };
        if it.typeahead.is_empty() {
            it.play(&self.prompts, true);
            it.step = Step::Gathering {
                attempt: 0,
                digits: String::new(),
                playing: true,
            };
            None
        } else {
            self.start_timer(it, now);
            while let Some(d) = it.typeahead.pop_front() {
                if !matches!(it.step, Step::Gathering { .. }) || it.node != here {
                    break;
                }
                self.digit(it, d, now, wall);
            }
            None
        }
    }

    fn reprompt(&self, step: &Step) -> Option<Reprompt<'_>> {
        let Step::Gathering {
            attempt, digits, ..
        } = step
        else {
            return None;
        };
        Some(Reprompt {
            attempt: *attempt,
            timeout: if digits.is_empty() {
                self.first_digit_timeout
            } else {
                self.inter_digit_timeout
            },
            retries: self.retries,
            invalid_prompts: &self.invalid_prompts,
            timeout_prompts: &self.timeout_prompts,
            prompts: &self.prompts,
            on_exhausted: &self.on_exhausted,
            barge_in: true,
        })
    }
}

// The events only a gather waits for (`Step::Gathering`); the
// interpreter calls them on the current node.
impl DigitCollector {
    /// The prompt is over (or was cut short): the first-digit timer starts.
    pub(crate) fn prompt_finished(
        &self,
        it: &mut dyn StepCx,
        attempt: u32,
        digits: String,
        now: Instant,
    ) {
        it.step = Step::Gathering {
            attempt,
            digits,
            playing: false,
        };
        self.start_timer(it, now);
    }

    /// Silence: with no digits, ask again; else take what was typed.
    pub(crate) fn timer_fired(
        &self,
        it: &mut dyn StepCx,
        digits: String,
        now: Instant,
        wall: DateTime<Utc>,
    ) {
        if digits.is_empty() {
            it.retry(Retry::Timeout, "", now, wall);
        } else {
            self.complete(it, digits, now, wall);
        }
    }

    fn start_timer(&self, it: &mut dyn StepCx, now: Instant) {
        if let Step::Gathering { digits, .. } = &it.step {
            let wait = if digits.is_empty() {
                self.first_digit_timeout
            } else {
                self.inter_digit_timeout
            };
            it.deadline = Some(now + wait);
        }
    }

    /// A key while gathering (it stops the prompt).
    pub(crate) fn digit(&self, it: &mut dyn StepCx, d: char, now: Instant, wall: DateTime<Utc>) {
        let (finish_key, max) = (self.finish_key, self.max_digits);
        let Step::Gathering {
            attempt,
            mut digits,
            playing,
        } = it.step.clone()
        else {
            return;
        };
        if playing {
            it.out.push(Action::StopPlayback);
        }
        if Some(d) == finish_key {
            it.step = Step::Gathering {
                attempt,
                digits: digits.clone(),
                playing: false,
            };
            self.complete(it, digits, now, wall);
            return;
        }
        digits.push(d);
        it.step = Step::Gathering {
            attempt,
            digits: digits.clone(),
            playing: false,
        };
        if digits.len() >= max {
            self.complete(it, digits, now, wall);
        } else {
            self.start_timer(it, now);
        }
    }

    fn complete(&self, it: &mut dyn StepCx, digits: String, now: Instant, wall: DateTime<Utc>) {
        it.deadline = None;
        let ok = digits.len() >= self.min_digits
            && self.pattern.as_ref().is_none_or(|p| p.is_match(&digits));
        if !ok {
            it.retry(Retry::Invalid, &digits, now, wall);
            return;
        }
        let nid = it.node_id();
        if self.secure {
            let length = digits.chars().count();
            it.record(
                "input",
                nid,
                json!({ "input": "*".repeat(length), "into": self.into, "masked": true, "length": length }),
            );
            it.mask(&self.into);
        } else {
            it.record("input", nid, json!({ "input": digits, "into": self.into }));
        }
        set_path(&mut it.vars, &self.into, Value::String(digits));
        it.run_from(self.next.clone(), now, wall);
    }
}
