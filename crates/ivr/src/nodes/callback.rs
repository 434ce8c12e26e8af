//! The `callback` node: asks for a slot with one key and books a call back
//! to the caller's (dialable) number; slot times follow an `hours` node.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Kind, exit};
use crate::model::{Choice, Template};
use crate::nodes::hours::{BusinessHours, hhmm};
use crate::parse::{Context, Fields, Loader, SlotTime, Syntax};
use crate::step::{Action, Question, StepCx};
use crate::yaml::{Pos, YamlValue};

/// `callback`: asks the caller for a slot and books a call back to them.
#[derive(Debug)]
pub struct Callback {
    /// Options map keys to slot names (e.g. `morning`).
    pub choice: Choice,
    /// Must render to a dialable number (see [`crate::callback::is_dialable`]).
    pub number: Template,
    /// The queue whose agents make the call.
    pub queue: Option<String>,
    /// The `hours` node whose schedule the slots follow.
    pub hours: Option<String>,
    /// Slot name → local minute of day on the next open day; a slot not
    /// listed is `asap` (now if open, else the next opening).
    pub slot_times: Vec<(String, u16)>,
    /// Where to go once the callback is booked.
    pub next: String,
    /// Where to go when retries run out.
    pub on_exhausted: String,
    /// Where to go when `number` is not dialable (default: `on_exhausted`).
    pub on_no_number: Option<String>,
}

pub(crate) const SYNTAX: Syntax<Callback> = Syntax {
    name: "callback",
    keys: &[
        "prompt",
        "barge_in",
        "slots",
        "number",
        "timeout",
        "retries",
        "invalid_prompt",
        "timeout_prompt",
        "next",
        "on_exhausted",
        "queue",
        "hours",
        "slot_times",
        "on_no_number",
    ],
    parse,
};

fn parse(l: &mut Loader, f: &mut Fields<'_>, cx: &Context<'_>) -> Option<Callback> {
    let choice = l.choice(f, cx.defaults, "slots", false);
    let number = match f.take("number") {
        Some(y) => l.template(y, "number"),
        None => Some(Template("${caller}".into())),
    };
    let queue = l.opt_text(f, "queue");
    let hours = f
        .take("hours")
        .and_then(|y| Some((l.text(y, "hours")?, y.pos)));
    let slot_times = slot_times(l, f);
    let next = l.req_target(f, "next");
    let on_exhausted = l.exhausted(f, "callback");
    let on_no_number = l.opt_target(f, "on_no_number");
    if !slot_times.is_empty() && hours.is_none() {
        let pos = slot_times[0].2;
        l.err(
            pos,
            "`slot_times` needs `hours:` (the hours node whose open days the slots fall on)",
        );
    }
    l.callback_hours.push((hours.clone(), slot_times.clone()));
    Some(Callback {
        choice,
        number: number?,
        queue,
        hours: hours.map(|h| h.0),
        slot_times: slot_times.into_iter().map(|(n, m, _)| (n, m)).collect(),
        next: next?,
        on_exhausted: on_exhausted?,
        on_no_number,
    })
}

/// `slot_times: {slot: "HH:MM", …}`.
fn slot_times(l: &mut Loader, f: &mut Fields<'_>) -> Vec<SlotTime> {
    let Some(y) = f.take("slot_times") else {
        return Vec::new();
    };
    let YamlValue::Map(map) = &y.value else {
        l.err(
            y.pos,
            format!(
                "`slot_times` must map slot names to times (\"09:30\"), found {}",
                y.describe()
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let (Some(name), Some(t)) = (k.as_str(), v.as_str()) else {
            l.err(v.pos, "a slot time is `name: \"HH:MM\"`");
            continue;
        };
        match hhmm(t).filter(|&m| m < 24 * 60) {
            Some(m) => out.push((name.to_owned(), m, v.pos)),
            None => l.err(v.pos, format!("`{t}` is not a time of day (HH:MM)")),
        }
    }
    out
}

/// Whole-flow check, once every node is read: each callback's `hours:`
/// names an hours node, and its slot times fall in that node's opening hours.
/// `node` finds a node of the flow by id.
pub(crate) fn check_hours<'a>(
    l: &mut Loader,
    node: impl Fn(&str) -> Option<&'a dyn Kind>,
    ids: &HashMap<String, Pos>,
) {
    for (hours, times) in std::mem::take(&mut l.callback_hours) {
        let Some((id, pos)) = hours else { continue };
        let found = node(&id);
        match found.map(|k| (k, k.as_any().downcast_ref::<BusinessHours>())) {
            Some((_, Some(h))) => {
                for (slot, m, at) in times {
                    // A schedule that is never open (an emergency
                    // closure) books for now; any other must contain the time.
                    let never_open = h.weekly.iter().all(Vec::is_empty);
                    if !never_open && !crate::callback::ever_open_at(h, m) {
                        l.err(
                            at,
                            format!(
                                "slot `{slot}` at {:02}:{:02} is outside `{id}`'s opening hours on every day",
                                m / 60,
                                m % 60
                            ),
                        );
                    }
                }
            }
            Some((other, None)) => l.err(
                pos,
                format!(
                    "`hours` must name an hours node; `{id}` is a {} node",
                    other.name()
                ),
            ),
            None if ids.contains_key(&id) => {} // that node has its own errors
            None => l.err(
                pos,
                format!("`hours` names `{id}`, which is not a node of this flow"),
            ),
        }
    }
}

impl Kind for Callback {
    fn name(&self) -> &'static str {
        SYNTAX.name
    }

    fn waits_for_caller(&self) -> bool {
        true
    }

    fn exits(&self) -> Vec<(String, &str)> {
        vec![
            exit("slot chosen", &self.next),
            exit("no choice", &self.on_exhausted),
        ]
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

    fn chosen(
        &self,
        it: &mut dyn StepCx,
        key: char,
        slot: &str,
        now: Instant,
        wall: DateTime<Utc>,
    ) {
        let nid = it.node_id();
        let number = it.render(&self.number);
        it.record(
            "input",
            nid.clone(),
            json!({ "input": key.to_string(), "slot": slot }),
        );
        // Never book what cannot be dialled (a SIP user name
        // such as `caller`): the flow asks for a number instead. Nor masked
        // input: the booking is made from events, which never hold it.
        // Nor a number the operator does not allow dialling (a premium or
        // international number keyed in): promising a callback the desk
        // will give up later is a broken promise to the caller.
        let masked = it.uses_masked(&self.number);
        let refused = if masked {
            Some("masked input (from a secure gather)")
        } else if !crate::callback::is_dialable(&number) {
            Some("not a dialable number")
        } else if it
            .dial_check
            .as_ref()
            .is_some_and(|check| !check.allows(&number))
        {
            Some("number not allowed (--dial-allow)")
        } else {
            None
        };
        if let Some(reason) = refused {
            let number = if masked {
                it.render_shown(&self.number)
            } else {
                number
            };
            it.record(
                "callback_refused",
                nid,
                json!({ "number": number, "reason": reason }),
            );
            let to = self
                .on_no_number
                .clone()
                .unwrap_or_else(|| self.on_exhausted.clone());
            it.run_from(to, now, wall);
            return;
        }
        let hours = self
            .hours
            .as_deref()
            .and_then(|id| it.node(id)?.downcast_ref::<BusinessHours>());
        let at = self
            .slot_times
            .iter()
            .find(|(n, _)| n == slot)
            .map(|&(_, m)| m);
        let due_at = crate::callback::slot_due(hours, at, wall);
        let (queue, next) = (self.queue.clone(), self.next.clone());
        it.out.push(Action::CallbackRequested {
            number: number.clone(),
            slot: slot.to_owned(),
            queue,
            due_at,
        });
        it.record(
            "outcome",
            nid,
            json!({ "outcome": "callback", "number": number, "slot": slot }),
        );
        it.run_from(next, now, wall);
    }
}
