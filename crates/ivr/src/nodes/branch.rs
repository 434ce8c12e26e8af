//! The `branch` node: goes to the first case whose condition holds.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{Kind, exit};
use crate::condition::{Condition, parse_condition};
use crate::parse::{Context, Fields, Loader, Syntax};
use crate::step::StepCx;
use crate::yaml::{Yaml, YamlValue};

/// `branch`: goes to the first case whose condition holds, else to `otherwise`.
#[derive(Debug)]
pub struct Branch {
    /// Tried in file order.
    pub cases: Vec<Case>,
    /// Where to go when no case holds (`else:` in the file).
    pub otherwise: String,
}

/// One `- if: CONDITION` / `then: NODE` entry of a `branch`.
#[derive(Debug)]
pub struct Case {
    /// The `if:` condition.
    pub condition: Condition,
    /// The node to go to when it holds (`then:`).
    pub next: String,
}

pub(crate) const SYNTAX: Syntax<Branch> = Syntax {
    name: "branch",
    keys: &["cases", "else"],
    parse,
};

fn parse(l: &mut Loader, f: &mut Fields<'_>, _cx: &Context<'_>) -> Option<Branch> {
    let mut cases = Vec::new();
    if let Some(y) = l.required(f, "cases") {
        match &y.value {
            YamlValue::Seq(items) => {
                for item in items {
                    if let Some(c) = case(l, item) {
                        cases.push(c);
                    }
                }
            }
            _ => l.err(
                y.pos,
                format!(
                    "`cases` must be a list of `- if: … then: …`, found {}",
                    y.describe()
                ),
            ),
        }
    }
    let otherwise = l.req_target(f, "else");
    Some(Branch {
        cases,
        otherwise: otherwise?,
    })
}

fn case(l: &mut Loader, item: &Yaml) -> Option<Case> {
    let mut f = l.fields(item, "a branch case")?;
    let cond = l.required(&mut f, "if").and_then(|y| {
        let text = l.text(y, "if")?;
        match parse_condition(&text) {
            Ok(c) => Some(c),
            Err(e) => {
                let pos = l.pos_in_scalar(y, &text, e.at);
                l.err(pos, format!("`if`: {e}"));
                None
            }
        }
    });
    let next = l.req_target(&mut f, "then");
    l.finish(f, &["if", "then"]);
    Some(Case {
        condition: cond?,
        next: next?,
    })
}

impl Kind for Branch {
    fn name(&self) -> &'static str {
        SYNTAX.name
    }

    fn exits(&self) -> Vec<(String, &str)> {
        let mut out: Vec<(String, &str)> = Vec::new();
        for c in &self.cases {
            out.push((c.condition.text.clone(), c.next.as_str()));
        }
        out.push(exit("else", &self.otherwise));
        out
    }

    fn shape(&self) -> (&'static str, &'static str) {
        ("{", "}")
    }

    fn enter(&self, it: &mut dyn StepCx, _now: Instant, _wall: DateTime<Utc>) -> Option<String> {
        let to = self
            .cases
            .iter()
            .find(|c| c.condition.holds(&it.vars))
            .map(|c| c.next.clone())
            .unwrap_or_else(|| self.otherwise.clone());
        Some(to)
    }
}
