//! The `say` node: speaks a value (digits, a number, a date) from recorded
//! fragments, between optional prompts.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Kind, exit};
use crate::model::{SayAs, Template};
use crate::parse::{Context, Fields, Loader, SayNeed, Syntax};
use crate::step::{After, StepCx};

/// `say`: speaks a value (digits, a number, a date) from prompt fragments,
/// between fixed prompts.
#[derive(Debug)]
pub struct Say {
    /// Prompts played before the value.
    pub before: Vec<String>,
    /// The value to speak, usually `${var}`.
    pub value: Template,
    /// How to speak it (`as:`).
    pub say_as: SayAs,
    /// Prompts played after the value.
    pub after: Vec<String>,
    /// A key may cut it short (false by default).
    pub barge_in: bool,
    /// Where to go once it has been said.
    pub next: String,
    /// Recorded as the call's outcome when the value has been said.
    pub outcome: Option<String>,
}

pub(crate) const SYNTAX: Syntax<Say> = Syntax {
    name: "say",
    keys: &[
        "before", "value", "as", "after", "barge_in", "next", "outcome",
    ],
    parse,
};

fn parse(l: &mut Loader, f: &mut Fields<'_>, _cx: &Context<'_>) -> Option<Say> {
    let before = l.opt_prompts(f, "before");
    let value = l.required(f, "value").and_then(|y| l.template(y, "value"));
    let say_as = match l.required(f, "as") {
        Some(y) => match l.text(y, "as").as_deref() {
            Some("digits") => Some(SayAs::Digits),
            Some("number") => Some(SayAs::Number),
            Some("date") => Some(SayAs::Date),
            Some(other) => {
                l.err(
                    y.pos,
                    format!("`as` must be digits, number or date, found `{other}`"),
                );
                None
            }
            None => None,
        }
        .inspect(|&a| {
            l.says.push(SayNeed {
                say_as: a,
                pos: y.pos,
            })
        }),
        None => None,
    };
    let after = l.opt_prompts(f, "after");
    let barge_in = l.bool(f, "barge_in", false);
    let next = l.req_target(f, "next");
    let outcome = l.outcome(f);
    Some(Say {
        before,
        value: value?,
        say_as: say_as?,
        after,
        barge_in,
        next: next?,
        outcome,
    })
}

impl Kind for Say {
    fn name(&self) -> &'static str {
        SYNTAX.name
    }

    fn exits(&self) -> Vec<(String, &str)> {
        vec![exit("", &self.next)]
    }

    fn enter(&self, it: &mut dyn StepCx, _now: Instant, _wall: DateTime<Utc>) -> Option<String> {
        let mut prompts = self.before.clone();
        if it.uses_masked(&self.value) {
            // Its fragments would name the digits in `prompt_started` events
            // and put them in the recording: masked input is never spoken.
            let nid = it.node_id();
            it.record(
                "error",
                nid,
                json!({ "error": "cannot say: the value is masked input (from a secure gather)" }),
            );
        } else {
            let value = it.render(&self.value);
            match crate::say::compose(self.say_as, &value, &it.language) {
                Ok(frags) => prompts.extend(frags),
                Err(e) => {
                    let nid = it.node_id();
                    it.record("error", nid, json!({ "error": format!("cannot say: {e}") }))
                }
            }
        }
        prompts.extend(self.after.iter().cloned());
        let after = After::Goto {
            next: self.next.clone(),
            outcome: self.outcome.clone(),
        };
        it.play_then(&prompts, self.barge_in, after)
    }
}
