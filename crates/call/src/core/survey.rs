//! The post-call satisfaction survey: "please rate this call from 1 to 5",
//! a key 1–5, then an optional voice comment after a tone, thanks.
//!
//! Two ways in: a queue with `survey` on, after its agent hung up (the
//! desk's `AgentHungUp` names the queue; the agent is let go at once and
//! the caller kept on the line), and a flow's `survey` node
//! (`Action::Survey`, answered with `Event::SurveyFinished`). A wrong key
//! or silence asks once more; a second one ends the survey with no score
//! (`no_input`). A caller who hangs up before keying a score is not a
//! response (`survey_ended` `hangup`, no `survey_answered`). The comment is
//! a mono WAV next to the voicemails, `<call id>-survey-<n>.wav`, ended by
//! any key, [`COMMENT_MAX`] or the caller hanging up (then it is kept).
//!
//! Events: `survey_started`, `survey_answered`, `survey_comment`,
//! `survey_ended` (docs/call-events.md). The call's own recording keeps
//! running through the survey.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hotline_ivr::Event;
use hotline_ivr::flow::SURVEY_PROMPTS;
use hotline_media::CallRecorder;

use super::pause::PauseReason;
use super::state::{Ending, Survey, SurveyStep, SurveyVia};
use super::{CallCore, CallOutput, RecorderFor, SipCommand};
use crate::event::{EndedBy, EventData};

/// How long the caller has to key a score once the question has played.
pub(super) const RATE_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest comment.
pub(super) const COMMENT_MAX: Duration = Duration::from_secs(30);

const RATE: &str = SURVEY_PROMPTS[0];
const SORRY: &str = SURVEY_PROMPTS[1];
const COMMENT: &str = SURVEY_PROMPTS[2];
const BEEP: &str = SURVEY_PROMPTS[3];
const THANKS: &str = SURVEY_PROMPTS[4];

impl CallCore {
    /// The agent hung up on a call whose queue asks for a survey: the desk
    /// lets go of the call (the agent goes to wrap-up) and the caller hears
    /// the survey. The talk ended now.
    pub(super) fn survey_after_agent(&mut self, now: Instant, queue: String) {
        self.leave_desk();
        // The agent's pause of the recording goes with them.
        self.resume_recording(now, PauseReason::Agent);
        let talk = Ending::new(EndedBy::Agent, "agent_hangup");
        self.start_survey(now, SurveyVia::Queue { queue, talk });
    }

    /// A flow's `survey` node.
    pub(super) fn survey_from_flow(&mut self, now: Instant) {
        self.start_survey(now, SurveyVia::Flow);
    }

    fn start_survey(&mut self, now: Instant, via: SurveyVia) {
        self.flow.surveys += 1;
        let queue = match &via {
            SurveyVia::Queue { queue, .. } => Some(queue.clone()),
            SurveyVia::Flow => None,
        };
        self.survey = Some(Survey {
            via,
            step: SurveyStep::Rating {
                retried: false,
                deadline: None,
            },
            score: None,
        });
        self.survey_emit(EventData::SurveyStarted {
            via: if queue.is_some() { "queue" } else { "flow" }.into(),
            queue,
        });
        self.ask_rating(now, vec![RATE]);
    }

    /// Plays the question (a key may cut it short); with no prompt to
    /// play, the wait for the key starts at once.
    fn ask_rating(&mut self, now: Instant, prompts: Vec<&str>) {
        let names = prompts.into_iter().map(|p| self.localized(p)).collect();
        let playing = self.play_prompts(names, true);
        if let Some(Survey {
            step: SurveyStep::Rating { deadline, .. },
            ..
        }) = self.survey.as_mut()
        {
            *deadline = (!playing).then(|| now + RATE_TIMEOUT);
        }
    }

    /// A survey event, at the flow's node for a flow's survey.
    fn survey_emit(&mut self, data: EventData) {
        match self.survey.as_ref().map(|s| &s.via) {
            Some(SurveyVia::Flow) => self.emit_here(data),
            _ => self.emit(data, None),
        }
    }

    /// True while a survey runs: keys, prompts and timers are its own.
    pub(super) fn in_survey(&self) -> bool {
        self.survey.is_some()
    }

    /// The survey's next deadline, if it waits for one.
    pub(super) fn survey_deadline(&self) -> Option<Instant> {
        match self.survey.as_ref()?.step {
            SurveyStep::Rating { deadline, .. } => deadline,
            SurveyStep::Commenting { deadline } => Some(deadline),
            _ => None,
        }
    }

    /// True when the survey's deadline has passed and was handled.
    pub(super) fn survey_timer(&mut self, now: Instant, wall: DateTime<Utc>) -> bool {
        if self.survey_deadline().is_none_or(|d| d > now) {
            return false;
        }
        match self.survey.as_ref().map(|s| &s.step) {
            Some(SurveyStep::Rating { .. }) => self.rating_missed(now, wall),
            Some(SurveyStep::Commenting { .. }) => self.comment_done(now, wall),
            _ => {}
        }
        true
    }

    /// A key during the survey.
    pub(super) fn survey_digit(&mut self, now: Instant, wall: DateTime<Utc>, digit: char) {
        let Some(survey) = self.survey.as_mut() else {
            return;
        };
        match survey.step {
            SurveyStep::Rating { .. } => match digit.to_digit(10) {
                Some(score @ 1..=5) => {
                    let score = score as u8;
                    survey.score = Some(score);
                    survey.step = SurveyStep::Inviting;
                    self.survey_emit(EventData::SurveyAnswered { score });
                    let invite = vec![self.localized(COMMENT), self.localized(BEEP)];
                    if !self.play_prompts(invite, false) {
                        self.open_comment();
                    }
                }
                _ => self.rating_missed(now, wall),
            },
            SurveyStep::Commenting { .. } => self.comment_done(now, wall),
            // Keys while the invitation or the thanks play count for nothing.
            _ => {}
        }
    }

    /// A wrong key or silence: ask once more, then give up without a score.
    fn rating_missed(&mut self, now: Instant, wall: DateTime<Utc>) {
        let Some(Survey {
            step: SurveyStep::Rating { retried, deadline },
            ..
        }) = self.survey.as_mut()
        else {
            return;
        };
        if *retried {
            return self.survey_over(now, wall, "no_input");
        }
        *retried = true;
        *deadline = None;
        self.ask_rating(now, vec![SORRY, RATE]);
    }

    /// A prompt of the survey finished (true: it was the survey's).
    pub(super) fn survey_prompt_finished(&mut self, now: Instant, wall: DateTime<Utc>) -> bool {
        let Some(survey) = self.survey.as_mut() else {
            return false;
        };
        match survey.step {
            SurveyStep::Rating {
                deadline: ref mut d @ None,
                ..
            } => *d = Some(now + RATE_TIMEOUT),
            SurveyStep::Inviting => self.open_comment(),
            SurveyStep::Thanking => self.survey_done(now, wall),
            _ => {}
        }
        true
    }

    /// Asks the shell for the comment's file; recording starts when it comes.
    fn open_comment(&mut self) {
        let path = self.cfg.voicemail_dir.join(format!(
            "{}-survey-{}.wav",
            self.cfg.call_id, self.flow.surveys
        ));
        if let Some(s) = self.survey.as_mut() {
            s.step = SurveyStep::Opening { path: path.clone() };
        }
        self.push(CallOutput::CreateRecorder {
            kind: RecorderFor::Voicemail,
            path,
        });
    }

    /// True when a mono recorder the shell created is the survey's comment.
    pub(super) fn survey_wants_recorder(&self) -> bool {
        matches!(
            self.survey.as_ref().map(|s| &s.step),
            Some(SurveyStep::Opening { .. })
        )
    }

    /// The comment's file: record the caller.
    pub(super) fn on_comment_recorder(
        &mut self,
        now: Instant,
        wall: DateTime<Utc>,
        result: Result<CallRecorder, String>,
    ) {
        if !self.is_talking() || self.ending.is_some() {
            return;
        }
        match (result, self.media.as_mut()) {
            (Ok(rec), Some(media)) => {
                if let Some(Err(e)) = media.start_capture(rec) {
                    tracing::warn!(error = %e, "an earlier capture failed to close");
                }
                if let Some(s) = self.survey.as_mut() {
                    s.step = SurveyStep::Commenting {
                        deadline: now + COMMENT_MAX,
                    };
                }
            }
            (result, _) => {
                if let Err(e) = result {
                    tracing::error!(error = %e, "cannot record the survey comment");
                }
                self.survey_over(now, wall, "answered");
            }
        }
    }

    /// The comment ended (a key or its limit): keep it, end the survey.
    fn comment_done(&mut self, now: Instant, wall: DateTime<Utc>) {
        self.close_comment();
        self.survey_over(now, wall, "answered");
    }

    /// Stops the comment's capture, if one runs, and records it.
    fn close_comment(&mut self) {
        if !matches!(
            self.survey.as_ref().map(|s| &s.step),
            Some(SurveyStep::Commenting { .. })
        ) {
            return;
        }
        match self.media.as_mut().and_then(|m| m.stop_capture()) {
            Some(Ok(info)) => self.survey_emit(EventData::SurveyComment {
                path: info.path.display().to_string(),
                duration_ms: info.duration_ms,
            }),
            Some(Err(e)) => tracing::error!(error = %e, "survey comment failed"),
            None => {}
        }
    }

    /// `survey_ended`, then the thanks; the survey is done when it ends.
    fn survey_over(&mut self, now: Instant, wall: DateTime<Utc>, reason: &str) {
        let Some(s) = self.survey.as_mut() else {
            return;
        };
        s.step = SurveyStep::Thanking;
        self.survey_emit(EventData::SurveyEnded {
            reason: reason.into(),
        });
        let thanks = self.localized(THANKS);
        if !self.play_prompts(vec![thanks], false) {
            self.survey_done(now, wall);
        }
    }

    /// The thanks played: a queue's survey ends the call as its agent did;
    /// a flow's goes on.
    fn survey_done(&mut self, now: Instant, wall: DateTime<Utc>) {
        let Some(survey) = self.survey.take() else {
            return;
        };
        match survey.via {
            SurveyVia::Queue { talk, .. } => {
                self.flow.stage = super::state::Stage::Done;
                self.sip(SipCommand::Hangup);
                self.end(talk);
            }
            SurveyVia::Flow => self.step(
                now,
                wall,
                Event::SurveyFinished {
                    score: survey.score,
                },
            ),
        }
    }

    /// The call ends during the survey (the caller hung up, a timeout, a
    /// shutdown): a comment being recorded is kept, and the survey ends
    /// (a response only when a score was keyed). A queue's survey keeps
    /// the agent's ending: the talk ended when they hung up.
    pub(super) fn survey_cut_short(&mut self, ending: Ending) -> Ending {
        if self.survey.is_none() {
            return ending;
        }
        self.close_comment();
        let Some(survey) = self.survey.take() else {
            return ending;
        };
        if survey.step != SurveyStep::Thanking {
            let reason = if survey.score.is_some() {
                "answered"
            } else {
                "hangup"
            };
            // Put back for `survey_emit`'s node, then drop.
            self.survey = Some(survey);
            self.survey_emit(EventData::SurveyEnded {
                reason: reason.into(),
            });
            let Some(survey) = self.survey.take() else {
                return ending;
            };
            return survey_ending(survey, ending);
        }
        survey_ending(survey, ending)
    }
}

fn survey_ending(survey: Survey, ending: Ending) -> Ending {
    match survey.via {
        SurveyVia::Queue { talk, .. } => talk,
        SurveyVia::Flow => ending,
    }
}
