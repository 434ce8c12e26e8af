//! The `hangup` node: records an outcome, says goodbye and hangs up.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::Kind;
use crate::parse::{Context, Fields, Loader, Syntax};
use crate::step::{Action, After, StepCx};

/// `hangup`: says goodbye and ends the call.
#[derive(Debug)]
pub struct Hangup {
    /// Played (without barge-in) before hanging up.
    pub prompts: Vec<String>,
    /// Recorded as the call's outcome (e.g. `self_served`).
    pub outcome: Option<String>,
}

pub(crate) const SYNTAX: Syntax<Hangup> = Syntax {
    name: "hangup",
    keys: &["prompt", "outcome"],
    parse,
};

fn parse(l: &mut Loader, f: &mut Fields<'_>, _cx: &Context<'_>) -> Option<Hangup> {
    Some(Hangup {
        prompts: l.opt_prompts(f, "prompt"),
        outcome: l.outcome(f),
    })
}

impl Kind for Hangup {
    fn name(&self) -> &'static str {
        SYNTAX.name
    }

    fn exits(&self) -> Vec<(String, &str)> {
        Vec::new()
    }

    fn shape(&self) -> (&'static str, &'static str) {
        ("([", "])")
    }

    fn enter(&self, it: &mut dyn StepCx, _now: Instant, _wall: DateTime<Utc>) -> Option<String> {
        if let Some(o) = &self.outcome {
            let nid = it.node_id();
            it.record("outcome", nid, json!({ "outcome": o }));
        }
        if self.prompts.is_empty() {
            it.out.push(Action::Hangup);
            it.finish();
            None
        } else {
            it.play_then(&self.prompts, false, After::Hangup)
        }
    }
}
