//! Silencing the call's recording: while a secure gather collects card or
//! ID numbers, and while the agent holds the Pause recording button.
//!
//! The recording keeps its timeline (the media session writes silence on
//! both channels), so the times of the events still line up with the WAV.
//! Every `recording_paused` is matched by a `recording_resumed`: when the
//! span ends, or at the latest when the talk does (before `hangup`).

use std::time::Instant;

use super::CallCore;
use crate::event::EventData;

/// Why the recording is silenced (`reason` in the events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PauseReason {
    /// A `gather` node with `secure: true` runs.
    SecureGather,
    /// The agent pressed Pause recording.
    Agent,
}

impl PauseReason {
    fn name(self) -> &'static str {
        match self {
            PauseReason::SecureGather => "secure_gather",
            PauseReason::Agent => "agent",
        }
    }
}

impl CallCore {
    /// Silences the recording for `reason` (a no-op when it already is).
    pub(super) fn pause_recording(
        &mut self,
        now: Instant,
        reason: PauseReason,
        agent: Option<String>,
    ) {
        match reason {
            PauseReason::SecureGather => {
                if self.pauses.secure.is_some() {
                    return;
                }
                self.pauses.secure = Some(now);
            }
            PauseReason::Agent => {
                if self.pauses.agent.is_some() {
                    return;
                }
                self.pauses.agent = Some((agent.clone().unwrap_or_default(), now));
            }
        }
        tracing::info!(reason = reason.name(), "recording paused");
        self.emit_here(EventData::RecordingPaused {
            reason: reason.name().into(),
            agent_id: agent,
        });
        self.sync_pause();
    }

    /// Lets the recording hear the call again for `reason` (a no-op when
    /// it was not paused for it).
    pub(super) fn resume_recording(&mut self, now: Instant, reason: PauseReason) {
        let (since, agent) = match reason {
            PauseReason::SecureGather => match self.pauses.secure.take() {
                Some(since) => (since, None),
                None => return,
            },
            PauseReason::Agent => match self.pauses.agent.take() {
                Some((agent, since)) => (since, Some(agent)),
                None => return,
            },
        };
        tracing::info!(reason = reason.name(), "recording resumed");
        self.emit_here(EventData::RecordingResumed {
            reason: reason.name().into(),
            agent_id: agent,
            paused_ms: now.saturating_duration_since(since).as_millis() as u64,
        });
        self.sync_pause();
    }

    /// The talk is over: every pause still open is closed (before `hangup`).
    pub(super) fn resume_all(&mut self, now: Instant) {
        self.resume_recording(now, PauseReason::SecureGather);
        self.resume_recording(now, PauseReason::Agent);
    }

    /// The agent's button: honoured for the agent on the call only.
    pub(super) fn on_agent_pause(&mut self, now: Instant, agent: String, on: bool) {
        if self.agent.answered_by.as_deref() != Some(agent.as_str()) {
            tracing::warn!(%agent, "a recording pause from an agent not on the call; ignored");
            return;
        }
        if on {
            self.pause_recording(now, PauseReason::Agent, Some(agent));
        } else {
            self.resume_recording(now, PauseReason::Agent);
        }
    }

    /// Keys the caller presses are masked while the recording is paused.
    pub(super) fn masking_keys(&self) -> bool {
        self.pauses.any() || self.interp.secure_input()
    }

    fn sync_pause(&mut self) {
        let paused = self.pauses.any();
        if let Some(media) = self.media.as_mut() {
            media.set_recording_paused(paused);
        }
    }
}
