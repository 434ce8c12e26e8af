//! The `survey` node: the post-call satisfaction survey on a self-served
//! path ([`Step::Surveying`]). The call core runs the survey itself (rate
//! 1–5, an optional comment after a tone, thanks: the same as after an
//! agent) and answers with `Event::SurveyFinished`; the flow then goes to
//! `next`, or hangs up when there is none.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{Kind, exit};
use crate::parse::{Context, Fields, Loader, Syntax};
use crate::step::{Action, Step, StepCx};

/// The prompts a survey plays (in the call's language), in order: the
/// question, the retry after a wrong key, the comment invitation, its
/// tone, the thanks. The call core plays them; a flow with a `survey`
/// node is checked to have them in each of its languages.
pub const PROMPTS: [&str; 5] = [
    "survey-rate",
    "sorry-invalid",
    "survey-comment",
    "beep",
    "survey-thanks",
];

/// `survey`: asks the caller to rate the call, then goes on.
#[derive(Debug)]
pub struct Survey {
    /// Where to go when the survey is over; `None`: hang up.
    pub next: Option<String>,
}

pub(crate) const SYNTAX: Syntax<Survey> = Syntax {
    name: "survey",
    keys: &["next"],
    parse,
};

fn parse(l: &mut Loader, f: &mut Fields<'_>, _cx: &Context<'_>) -> Option<Survey> {
    for name in PROMPTS {
        l.prompts.push((name.to_owned(), f.pos));
    }
    Some(Survey {
        next: l.opt_target(f, "next"),
    })
}

impl Kind for Survey {
    fn name(&self) -> &'static str {
        SYNTAX.name
    }

    fn waits_for_caller(&self) -> bool {
        true
    }

    fn exits(&self) -> Vec<(String, &str)> {
        self.next.iter().map(|n| exit("", n)).collect()
    }

    fn enter(&self, it: &mut dyn StepCx, _now: Instant, _wall: DateTime<Utc>) -> Option<String> {
        it.out.push(Action::Survey);
        it.step = Step::Surveying;
        None
    }
}

// The event only a survey waits for (`Step::Surveying`); the interpreter
// calls it on the current node.
impl Survey {
    /// The survey is over (a score or not): go on, or hang up.
    pub(crate) fn finished(&self, it: &mut dyn StepCx, now: Instant, wall: DateTime<Utc>) {
        match &self.next {
            Some(next) => it.run_from(next.clone(), now, wall),
            None => {
                it.out.push(Action::Hangup);
                it.finish();
            }
        }
    }
}
