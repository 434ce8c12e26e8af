//! The `lookup` node: asks the shell for data (a subscriber, an order, a
//! webhook) and waits for the answer ([`Step::LookingUp`]) or its timeout.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{Kind, exit};
use crate::model::{LookupSource, Template};
use crate::parse::{Context, Fields, Loader, Syntax, is_var_name};
use crate::step::{Action, Step, StepCx, set_path};

/// `lookup`: asks a data source (the gateway's, or a webhook) and stores the
/// answer in variables.
#[derive(Debug)]
pub struct Lookup {
    /// What to ask.
    pub source: LookupSource,
    /// Name → text sent with the request (`${…}` allowed).
    pub params: Vec<(String, Template)>,
    /// Results land in `<into>.<field>` variables.
    pub into: String,
    /// The answer must come within this long, else `on_failure` (3 s by default).
    pub timeout: Duration,
    /// Where to go when something was found.
    pub next: String,
    /// Where to go when nothing was found; `None`: `next`.
    pub on_not_found: Option<String>,
    /// Where to go on an error or a timeout (`${into}.error` holds the reason).
    pub on_failure: String,
}

pub(crate) const SYNTAX: Syntax<Lookup> = Syntax {
    name: "lookup",
    keys: &[
        "source",
        "url",
        "params",
        "into",
        "timeout",
        "next",
        "on_not_found",
        "on_failure",
    ],
    parse,
};

fn parse(l: &mut Loader, f: &mut Fields<'_>, _cx: &Context<'_>) -> Option<Lookup> {
    let source_y = l.required(f, "source");
    let url = f.take("url");
    let source = match source_y.and_then(|y| l.text(y, "source").map(|s| (s, y.pos))) {
        Some((s, pos)) => match s.as_str() {
            "subscriber_by_caller_id" => Some(LookupSource::SubscriberByCallerId),
            "order_by_number" => Some(LookupSource::OrderByNumber),
            "webhook" => match url.and_then(|u| l.text(u, "url").map(|t| (t, u.pos))) {
                Some((u, upos)) => {
                    if !(u.starts_with("http://") || u.starts_with("https://")) {
                        l.err(
                            upos,
                            format!("`url` must start with http:// or https://, found `{u}`"),
                        );
                    }
                    Some(LookupSource::Webhook { url: u })
                }
                None => {
                    if url.is_none() {
                        l.err(pos, "a webhook lookup needs `url`");
                    }
                    None
                }
            },
            other => {
                l.err(
                    pos,
                    format!(
                        "unknown lookup source `{other}`; use subscriber_by_caller_id, order_by_number or webhook"
                    ),
                );
                None
            }
        },
        None => None,
    };
    if let (Some(u), Some(s)) = (url, &source)
        && !matches!(s, LookupSource::Webhook { .. })
    {
        l.err(u.pos, "`url` only applies to `source: webhook`");
    }
    let params = match f.take("params") {
        Some(y) => l.template_map(y, "params"),
        None => Vec::new(),
    };
    if source == Some(LookupSource::OrderByNumber) && !params.iter().any(|(k, _)| k == "number") {
        l.err(
            f.pos,
            "an order_by_number lookup needs `params: {number: …}`",
        );
    }
    let into = l.opt_text(f, "into").unwrap_or_else(|| "lookup".into());
    if !is_var_name(&into) {
        l.err(f.pos, format!("`into`: `{into}` is not a variable name"));
    }
    let timeout = l.duration(f, "timeout").unwrap_or(Duration::from_secs(3));
    let next = l.req_target(f, "next");
    let on_not_found = l.opt_target(f, "on_not_found");
    let on_failure = l.req_target(f, "on_failure");
    Some(Lookup {
        source: source?,
        params,
        into,
        timeout,
        next: next?,
        on_not_found,
        on_failure: on_failure?,
    })
}

impl Kind for Lookup {
    fn name(&self) -> &'static str {
        SYNTAX.name
    }

    fn exits(&self) -> Vec<(String, &str)> {
        let mut out = vec![exit("found", &self.next)];
        if let Some(to) = &self.on_not_found {
            out.push(exit("not found", to));
        }
        out.push(exit("failed", &self.on_failure));
        out
    }

    fn shape(&self) -> (&'static str, &'static str) {
        ("[(", ")]")
    }

    fn enter(&self, it: &mut dyn StepCx, now: Instant, _wall: DateTime<Utc>) -> Option<String> {
        let id = it.next_lookup;
        it.next_lookup += 1;
        let mut params = Map::new();
        for (k, t) in &self.params {
            params.insert(k.clone(), it.render_value(t));
        }
        if self.source == LookupSource::SubscriberByCallerId && !params.contains_key("number") {
            params.insert(
                "number".into(),
                Value::String(it.var("caller").unwrap_or_default()),
            );
        }
        it.out.push(Action::Lookup {
            id,
            source: self.source.clone(),
            params,
            timeout: self.timeout,
        });
        it.step = Step::LookingUp { id };
        it.deadline = Some(now + self.timeout);
        None
    }
}

impl Lookup {
    /// The shell's answer to the pending lookup (or `Err("timeout")` when
    /// the node gave up waiting): store it under `into` and go on. The
    /// interpreter calls it on the current node ([`Step::LookingUp`]).
    pub(crate) fn answered(
        &self,
        it: &mut dyn StepCx,
        result: Result<Map<String, Value>, String>,
        now: Instant,
        wall: DateTime<Utc>,
    ) {
        let nid = it.node_id();
        match result {
            Ok(map) => {
                let found = !map.is_empty() && map.get("found") != Some(&Value::Bool(false));
                it.record(
                    "lookup",
                    nid,
                    json!({ "lookup": self.source.name(), "ok": true, "found": found, "result": map }),
                );
                let mut obj = map;
                obj.entry("found").or_insert(Value::Bool(found));
                set_path(&mut it.vars, &self.into, Value::Object(obj));
                let to = if found {
                    self.next.clone()
                } else {
                    self.on_not_found
                        .clone()
                        .unwrap_or_else(|| self.next.clone())
                };
                it.run_from(to, now, wall);
            }
            Err(e) => {
                it.record(
                    "lookup",
                    nid,
                    json!({ "lookup": self.source.name(), "ok": false, "error": e }),
                );
                set_path(
                    &mut it.vars,
                    &self.into,
                    json!({ "found": false, "error": e }),
                );
                it.run_from(self.on_failure.clone(), now, wall);
            }
        }
    }
}
