//! The `play` node: plays prompts, then goes on.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{Kind, exit};
use crate::parse::{Context, Fields, Loader, Syntax};
use crate::step::{After, StepCx};

/// Play prompts, then go on.
#[derive(Debug)]
pub struct Play {
    /// Prompt names as written (`welcome`), played back to back in the call's
    /// language (`en/welcome`) unless a name starts with a language.
    pub prompts: Vec<String>,
    /// A key press stops the prompts; the key is kept for the next menu.
    pub barge_in: bool,
    /// Where to go when the prompts finish.
    pub next: String,
    /// Recorded as the call's outcome when the prompts finish (e.g.
    /// `self_served` on the play that answers the caller's question).
    pub outcome: Option<String>,
}

pub(crate) const SYNTAX: Syntax<Play> = Syntax {
    name: "play",
    keys: &["prompt", "barge_in", "next", "outcome"],
    parse,
};

fn parse(l: &mut Loader, f: &mut Fields<'_>, _cx: &Context<'_>) -> Option<Play> {
    let prompts = match l.required(f, "prompt") {
        Some(y) => l.prompt_list(y, "prompt"),
        None => Vec::new(),
    };
    let outcome = l.outcome(f);
    Some(Play {
        prompts,
        barge_in: l.bool(f, "barge_in", false),
        next: l.req_target(f, "next")?,
        outcome,
    })
}

impl Kind for Play {
    fn name(&self) -> &'static str {
        SYNTAX.name
    }

    fn exits(&self) -> Vec<(String, &str)> {
        vec![exit("", &self.next)]
    }

    fn enter(&self, it: &mut dyn StepCx, _now: Instant, _wall: DateTime<Utc>) -> Option<String> {
        let after = After::Goto {
            next: self.next.clone(),
            outcome: self.outcome.clone(),
        };
        it.play_then(&self.prompts, self.barge_in, after)
    }
}
