//! The `voicemail` node: plays its prompts, then records the caller
//! ([`Step::Recording`]) until the recording is done or the caller hangs up.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Kind, exit};
use crate::parse::{Context, Fields, Loader, Syntax};
use crate::step::{Action, After, Step, StepCx};

/// `voicemail`: records a message from the caller.
#[derive(Debug)]
pub struct Voicemail {
    /// Played before recording starts.
    pub prompts: Vec<String>,
    /// The longest message, in seconds (120 by default).
    pub max_seconds: u32,
    /// Whether a beep marks the start of the recording (true by default).
    pub beep: bool,
    /// Where to go when the recording ends (unless the caller hung up).
    pub next: String,
}

pub(crate) const SYNTAX: Syntax<Voicemail> = Syntax {
    name: "voicemail",
    keys: &["prompt", "max_seconds", "beep", "next"],
    parse,
};

fn parse(l: &mut Loader, f: &mut Fields<'_>, _cx: &Context<'_>) -> Option<Voicemail> {
    Some(Voicemail {
        prompts: l.opt_prompts(f, "prompt"),
        max_seconds: l.int(f, "max_seconds", 5, 600).unwrap_or(120) as u32,
        beep: l.bool(f, "beep", true),
        next: l.req_target(f, "next")?,
    })
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

    fn enter(&self, it: &mut dyn StepCx, _now: Instant, _wall: DateTime<Utc>) -> Option<String> {
        if self.prompts.is_empty() {
            self.start_recording(it)
        } else {
            it.play_then(&self.prompts, false, After::RecordVoicemail)
        }
    }
}

// The events only a voicemail waits for (`Step::Recording`); the
// interpreter calls them on the current node.
impl Voicemail {
    /// The prompts are done (or there were none): beep and record.
    pub(crate) fn start_recording(&self, it: &mut dyn StepCx) -> Option<String> {
        let (max_secs, beep) = (self.max_seconds, self.beep);
        it.out.push(Action::RecordVoicemail { max_secs, beep });
        it.step = Step::Recording;
        None
    }

    /// The recording is complete: count it and go on.
    pub(crate) fn recorded(
        &self,
        it: &mut dyn StepCx,
        duration_ms: u64,
        path: Option<String>,
        now: Instant,
        wall: DateTime<Utc>,
    ) {
        let nid = it.node_id();
        it.record(
            "outcome",
            nid,
            json!({ "outcome": "voicemail", "duration_ms": duration_ms, "path": path }),
        );
        it.run_from(self.next.clone(), now, wall);
    }
}

/// The caller hung up while recording, to end the message: it still counts.
pub(crate) fn hung_up(it: &mut dyn StepCx) {
    let nid = it.node_id();
    it.record(
        "outcome",
        nid,
        json!({ "outcome": "voicemail", "ended_by_hangup": true }),
    );
}
