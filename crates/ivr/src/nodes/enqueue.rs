//! The `enqueue` node: hands the call to a queue for an agent; the flow ends.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Map, json};

use super::Kind;
use crate::model::Template;
use crate::parse::{Context, Fields, Loader, Syntax};
use crate::step::{Action, StepCx};

/// `enqueue`: hands the call to an agent queue; the flow ends there.
#[derive(Debug)]
pub struct Enqueue {
    /// The queue's name, as configured for the agent desk.
    pub queue: String,
    /// Higher is served first (`priority:`, 0 by default).
    pub priority: i64,
    /// Name → text shown to the agent on the offer card (`${…}` allowed).
    pub data: Vec<(String, Template)>,
}

pub(crate) const SYNTAX: Syntax<Enqueue> = Syntax {
    name: "enqueue",
    keys: &["queue", "priority", "data"],
    parse,
};

fn parse(l: &mut Loader, f: &mut Fields<'_>, _cx: &Context<'_>) -> Option<Enqueue> {
    let queue = l.req_text(f, "queue");
    let priority = l.int(f, "priority", -1000, 1000).unwrap_or(0);
    let data = match f.take("data") {
        Some(y) => l.template_map(y, "data"),
        None => Vec::new(),
    };
    Some(Enqueue {
        queue: queue?,
        priority,
        data,
    })
}

impl Kind for Enqueue {
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
        let mut data = Map::new();
        for (k, t) in &self.data {
            // The agent's card shows masked input as `*`s.
            let v = if it.uses_masked(t) {
                serde_json::Value::String(it.render_shown(t))
            } else {
                it.render_value(t)
            };
            data.insert(k.clone(), v);
        }
        let nid = it.node_id();
        it.record(
            "enqueued",
            nid,
            json!({ "queue": self.queue, "priority": self.priority }),
        );
        it.out.push(Action::Enqueue {
            queue: self.queue.clone(),
            priority: self.priority,
            data,
        });
        it.finish();
        None
    }
}
