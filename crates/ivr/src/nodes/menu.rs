//! The `menu` node: asks for one key and goes where the key says.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Kind, exit};
use crate::model::Choice;
use crate::parse::{Context, Fields, Loader, Syntax};
use crate::step::{Question, StepCx};

/// `menu`: asks for one key; each option leads to a node.
#[derive(Debug)]
pub struct Menu {
    /// The prompts, the options (key → node id) and the retries.
    pub choice: Choice,
    /// Where to go when retries run out.
    pub on_exhausted: String,
}

pub(crate) const SYNTAX: Syntax<Menu> = Syntax {
    name: "menu",
    keys: &[
        "prompt",
        "barge_in",
        "options",
        "timeout",
        "retries",
        "invalid_prompt",
        "timeout_prompt",
        "on_exhausted",
    ],
    parse,
};

fn parse(l: &mut Loader, f: &mut Fields<'_>, cx: &Context<'_>) -> Option<Menu> {
    let d = cx.defaults;
    let mut choice = l.choice(f, d, "options", true);
    // Flow-wide options (e.g. 0 for an agent) join every menu that does not use the key.
    for (k, to) in &d.options {
        if choice.option(*k).is_none() {
            choice.options.push((*k, to.clone()));
            if let Some(from) = &l.current {
                l.edges.entry(from.clone()).or_default().push(to.clone());
            }
        }
    }
    let on_exhausted = l.exhausted(f, "menu");
    Some(Menu {
        choice,
        on_exhausted: on_exhausted?,
    })
}

impl Kind for Menu {
    fn name(&self) -> &'static str {
        SYNTAX.name
    }

    fn waits_for_caller(&self) -> bool {
        true
    }

    fn exits(&self) -> Vec<(String, &str)> {
        let mut out: Vec<(String, &str)> = Vec::new();
        for (d, to) in &self.choice.options {
            out.push((d.to_string(), to.as_str()));
        }
        out.push(exit("no choice", &self.on_exhausted));
        out
    }

    fn shape(&self) -> (&'static str, &'static str) {
        ("{", "}")
    }

    fn enter(&self, it: &mut dyn StepCx, now: Instant, wall: DateTime<Utc>) -> Option<String> {
        it.ask(&self.choice, now, wall)
    }

    fn question(&self) -> Option<Question<'_>> {
        Some(Question {
            choice: &self.choice,
            on_exhausted: &self.on_exhausted,
        })
    }

    fn chosen(&self, it: &mut dyn StepCx, key: char, to: &str, now: Instant, wall: DateTime<Utc>) {
        let nid = it.node_id();
        it.record(
            "input",
            nid,
            json!({ "input": key.to_string(), "next": to }),
        );
        it.run_from(to.to_owned(), now, wall);
    }
}
