//! How a call closes: the flow and the desk let go, the `hangup` event,
//! the recording, and the wait for the agent's wrap-up before `call_ended`
//! (so disposition and notes land in the same numbered event stream).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::state::{Ending, Phase, Stage};
use super::{CallCore, CallOutput};
use crate::event::EventData;

/// How long a call record waits for its agent's wrap-up before closing.
pub(super) const WRAP_UP_WAIT: Duration = Duration::from_secs(600);

impl CallCore {
    /// The talk is over: the flow records how it ended, and the desk lets go.
    pub(super) fn end_talk(&mut self, now: Instant, wall: DateTime<Utc>) {
        if self.flow.stage != Stage::Done {
            // The flow did not end the call itself: let it record how it ended.
            self.end_flow(now, wall);
        } else if self.close_voicemail().is_some() {
            // A queue overflow's message the caller ended by hanging up (as
            // most do): it is kept, and the call's outcome is voicemail.
            self.emit(EventData::outcome("voicemail"), None);
        }
        self.leave_desk();
        // A pause still open ends with the talk, before `hangup`.
        self.resume_all(now);
    }

    /// Records how the call ended and closes its recording; then waits for
    /// the agent's wrap-up, or ends the record at once.
    pub(super) fn close(&mut self, now: Instant, ending: Ending) {
        self.push(CallOutput::ReleaseRtp);
        self.emit(
            EventData::Hangup {
                ended_by: ending.by,
                cause: ending.cause.clone(),
                recovered_at: None,
            },
            None,
        );
        if let Some(media) = self.media.take() {
            match media.finish() {
                Some(Ok(info)) => self.emit(
                    EventData::Recording {
                        path: info.path.display().to_string(),
                        duration_ms: info.duration_ms,
                        channels: info.channels,
                        sample_rate: info.sample_rate,
                        bytes: info.bytes,
                        sha256: None,
                        recovered: None,
                    },
                    None,
                ),
                Some(Err(e)) => tracing::error!(error = %e, "recording failed"),
                None => {}
            }
        }
        let early = self.agent.wrap_up.take();
        match (&self.agent.answered_by, self.agent.attached, early) {
            // Submitted during the survey (the desk may have let go of the
            // call since): it goes in now.
            (Some(agent), _, Some(done)) => {
                self.phase = Phase::WrapUp {
                    agent: agent.clone(),
                    since: now,
                    deadline: now,
                    ending,
                };
                self.wrap_up_done(now, Some(done));
            }
            (Some(agent), true, None) => {
                self.phase = Phase::WrapUp {
                    agent: agent.clone(),
                    since: now,
                    deadline: now + WRAP_UP_WAIT,
                    ending,
                };
            }
            _ => self.call_ended(&ending),
        }
    }

    /// The agent's wrap-up (`None`: it never came, or the desk is gone).
    pub(super) fn wrap_up_done(
        &mut self,
        now: Instant,
        done: Option<(Option<String>, String, u64)>,
    ) {
        let Phase::WrapUp {
            agent,
            since,
            ending,
            ..
        } = std::mem::replace(&mut self.phase, Phase::Over)
        else {
            return;
        };
        let (disposition, notes, seconds) =
            done.unwrap_or_else(|| (None, String::new(), now.duration_since(since).as_secs()));
        self.emit(
            EventData::WrapUp {
                agent_id: agent,
                disposition,
                notes,
                seconds,
            },
            None,
        );
        self.call_ended(&ending);
    }

    fn call_ended(&mut self, ending: &Ending) {
        self.emit(EventData::CallEnded {}, None);
        tracing::info!(ended_by = ending.by.as_str(), cause = %ending.cause, "call ended");
        self.push(CallOutput::Done);
        self.phase = Phase::Over;
    }
}
