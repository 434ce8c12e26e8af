//! The `voicemail` node: plays its prompts, then records the caller
//! ([`Step::Recording`]) until the recording is done or the caller hangs up.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Kind, exit};
use crate::flow::NodeKind;
use crate::interp::{Action, After, Interpreter, Step};
use crate::load::{Context, Fields, Loader, Syntax};

#[derive(Debug)]
pub struct Voicemail {
    pub prompts: Vec<String>,
    pub max_seconds: u32,
    pub beep: bool,
    pub next: String,
}

pub(crate) const SYNTAX: Syntax = Syntax {
    name: "voicemail",
    keys: &["prompt", "max_seconds", "beep", "next"],
    parse,
};

fn parse(l: &mut Loader, f: &mut Fields<'_>, _cx: &Context<'_>) -> Option<NodeKind> {
    Some(NodeKind::Voicemail(Voicemail {
        prompts: l.opt_prompts(f, "prompt"),
        max_seconds: l.int(f, "max_seconds", 5, 600).unwrap_or(120) as u32,
        beep: l.bool(f, "beep", true),
        next: l.req_target(f, "next")?,
    }))
}

impl Kind for Voicemail {
    fn name(&self) -> &'static str {
        SYNTAX.name
    }

    fn waits_for_caller(&self) -> bool {
        true
    }

    fn exits(&self) -> Vec<(String, &str)> {
        vec![exit("", &self.next)]
    }

    fn enter(&self, it: &mut Interpreter, _now: Instant, _wall: DateTime<Utc>) -> Option<String> {
        if self.prompts.is_empty() {
            start_recording(it)
        } else {
            it.play_then(&self.prompts, false, After::RecordVoicemail)
        }
    }
}

/// The prompts are done (or there were none): beep and record.
pub(crate) fn start_recording(it: &mut Interpreter) -> Option<String> {
    if let Some(NodeKind::Voicemail(v)) = it.kind() {
        let (max_secs, beep) = (v.max_seconds, v.beep);
        it.out.push(Action::RecordVoicemail { max_secs, beep });
        it.step = Step::Recording;
    }
    None
}

/// The recording is complete: count it and go on.
pub(crate) fn recorded(
    it: &mut Interpreter,
    duration_ms: u64,
    path: Option<String>,
    now: Instant,
    wall: DateTime<Utc>,
) {
    it.record(
        "outcome",
        it.node_id(),
        json!({ "outcome": "voicemail", "duration_ms": duration_ms, "path": path }),
    );
    if let Some(NodeKind::Voicemail(v)) = it.kind() {
        let next = v.next.clone();
        it.run_from(next, now, wall);
    }
}

/// The caller hung up while recording, to end the message: it still counts.
pub(crate) fn hung_up(it: &mut Interpreter) {
    it.record(
        "outcome",
        it.node_id(),
        json!({ "outcome": "voicemail", "ended_by_hangup": true }),
    );
}
