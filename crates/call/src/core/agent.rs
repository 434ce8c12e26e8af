//! The call towards the agent desk: joining a queue, the desk's notices
//! (position prompts, offers, the agent's answer, hold and mute, agent
//! lost, overflow), and the audio bridge's state.
//!
//! The bridge's channels live in the shell; here is what the bridge is
//! (who, held, muted) and what crosses it: the agent's PCMU frames are
//! decoded into the media session (paced by the shared clock, recorded on
//! the right channel), and the shell asks [`CallCore::caller_to_agent`]
//! before it forwards the caller's RTP payloads.

use std::time::Instant;

use chrono::{DateTime, Utc};
use hotline_desk::{CallInfo, DeskInput, DeskNotice};
use hotline_media::ulaw_decode;
use hotline_routing::Overflow;
use hotline_webphone::{AgentEvent, DisconnectReason};
use serde_json::json;

use super::pause::PauseReason;
use super::state::{Bridge, Ending, Phase, Stage};
use super::{CallCore, CallOutput, SipCommand};
use crate::event::{EndedBy, EventData};

impl CallCore {
    /// Hands the call to the desk's queue. False when there is no desk.
    pub(super) fn enqueue_to_desk(
        &mut self,
        queue: &str,
        priority: i64,
        data: serde_json::Map<String, serde_json::Value>,
    ) -> bool {
        if !self.cfg.has_desk {
            return false;
        }
        self.agent.desk_call = self.cfg.call_id.to_string();
        self.agent.attached = true;
        self.agent.queued = true;
        self.agent.queue = queue.to_owned();
        // Masked input (a secure gather's) reaches the agent as `*`s.
        let shown = json!({ "flow": data, "vars": self.interp.shown_vars() });
        let caller = self.party.caller.clone();
        let info = CallInfo {
            call: self.agent.desk_call.clone(),
            queue: queue.to_owned(),
            priority,
            issue_type: self.interp.issue_type().map(str::to_owned),
            dialable: hotline_ivr::callback::is_dialable(&caller),
            caller,
            reply_via: self.party.peer,
            path: self.flow.path.clone(),
            data: shown,
        };
        self.push(CallOutput::Enqueue(info));
        true
    }

    pub(super) fn on_notice(&mut self, now: Instant, _wall: DateTime<Utc>, notice: DeskNotice) {
        match self.phase {
            Phase::Dialing | Phase::BindingRtp if self.dial.is_some() => {
                self.on_dial_notice(notice)
            }
            // The desk let go of the call (its agent hung up before a
            // survey): only the agent's wrap-up still concerns it.
            Phase::Talking if self.agent.left => {
                if let DeskNotice::WrapUpDone {
                    disposition,
                    notes,
                    seconds,
                    ..
                } = notice
                {
                    self.agent.wrap_up = Some((disposition, notes, seconds));
                }
            }
            Phase::Talking => self.on_talk_notice(now, notice),
            Phase::WrapUp { .. } => {
                if let DeskNotice::WrapUpDone {
                    disposition,
                    notes,
                    seconds,
                    ..
                } = notice
                {
                    self.wrap_up_done(now, Some((disposition, notes, seconds)));
                }
            }
            _ => {}
        }
    }

    /// The desk's notice channel closed: no wrap-up will come.
    pub(super) fn on_desk_gone(&mut self, now: Instant, _wall: DateTime<Utc>) {
        self.agent.attached = false;
        match self.phase {
            Phase::Dialing | Phase::BindingRtp if self.dial.is_some() => self.dial_agent_gone(),
            Phase::WrapUp { .. } => self.wrap_up_done(now, None),
            _ => {}
        }
    }

    /// The agent's audio leg arrived.
    pub(super) fn on_agent_leg(&mut self, _now: Instant, agent: String) {
        match (&self.phase, self.dial.as_mut()) {
            (Phase::Talking, _) if !self.agent.left => self.start_bridge(agent),
            (_, Some(dial)) => dial.leg = Some(agent),
            // Too late (the call is over): let the leg go.
            _ => self.push(CallOutput::CloseAgentLeg { hub_session: None }),
        }
    }

    fn on_talk_notice(&mut self, now: Instant, notice: DeskNotice) {
        match notice {
            DeskNotice::UnknownQueue => {
                self.agent.queued = false;
                let queue = self.agent.queue.clone();
                self.hold_without_agents(now, &queue);
            }
            DeskNotice::Position {
                position,
                estimated_wait,
            } => {
                self.emit(
                    EventData::QueuePosition {
                        position: position as u64,
                        estimated_wait_ms: estimated_wait.map(|w| w.as_millis() as u64),
                    },
                    None,
                );
                // Never while an agent rings: they may pick up mid-sentence.
                if self.agent.bridge.is_none()
                    && self.agent.answered_by.is_none()
                    && self.agent.ringing.is_empty()
                {
                    let lang = self.interp.language().to_owned();
                    let mut prompts = vec![format!("{lang}/queue-position-before")];
                    prompts.extend(
                        hotline_ivr::say::number(position as u64, &lang)
                            .into_iter()
                            .map(|f| format!("{lang}/{f}")),
                    );
                    prompts.push(format!("{lang}/queue-position-after"));
                    self.play_queue_prompts(prompts);
                }
            }
            DeskNotice::Offered { agent } => {
                self.emit(
                    EventData::AgentOffered {
                        agent_id: agent.clone(),
                    },
                    None,
                );
                self.agent.ringing.push(agent);
            }
            DeskNotice::OfferEnded { agent, outcome } => {
                self.agent.ringing.retain(|a| *a != agent);
                self.emit(
                    EventData::OfferOutcome {
                        agent_id: agent,
                        outcome: outcome.into(),
                    },
                    None,
                );
            }
            DeskNotice::Accepted { agent } => {
                self.emit(
                    EventData::AgentAnswered {
                        agent_id: agent.clone(),
                    },
                    None,
                );
                self.agent.answered_by = Some(agent);
                self.stop_prompts();
            }
            // The shell keeps the leg's channels and says `AgentLeg`.
            DeskNotice::Leg { agent, .. } => self.start_bridge(agent),
            DeskNotice::AgentHungUp { agent, survey } => {
                tracing::info!(%agent, "agent hung up");
                self.stop_bridge();
                if let Some(media) = self.media.as_mut() {
                    media.stop_playback();
                }
                if let Some(queue) = survey {
                    // The queue asks for a survey: the caller stays on.
                    return self.survey_after_agent(now, queue);
                }
                self.sip(SipCommand::Hangup);
                self.end(Ending::new(EndedBy::Agent, "agent_hangup"));
            }
            DeskNotice::AgentLost { agent, requeued } => {
                self.stop_monitor("agent_lost");
                self.emit(
                    EventData::AgentLost {
                        agent_id: agent,
                        requeued,
                    },
                    None,
                );
                self.stop_bridge();
                // The agent's pause goes with them.
                self.resume_recording(now, PauseReason::Agent);
                self.agent.answered_by = None;
                let lang = self.interp.language().to_owned();
                // A callback leg has no queue to wait in: its entry went
                // back to the queue, the customer is told and let go.
                if requeued && self.agent.callback.is_none() {
                    let prompts = vec![
                        format!("{lang}/agent-lost"),
                        format!("{lang}/connecting-agent"),
                    ];
                    self.play_queue_prompts(prompts);
                } else {
                    self.agent.queued = false;
                    self.goodbye(
                        vec![format!("{lang}/agent-lost"), format!("{lang}/no-agents")],
                        "agent_lost",
                    );
                }
            }
            DeskNotice::Overflow { target } => self.on_overflow(target),
            DeskNotice::Hold { on } => {
                if let Some(b) = self.agent.bridge.as_mut() {
                    b.held = on;
                }
                self.emit(EventData::AgentHold { on }, None);
                if on {
                    let music = self.localized("hold-music");
                    self.play_queue_prompts(vec![music]);
                } else {
                    self.stop_prompts();
                }
            }
            DeskNotice::Mute { on } => {
                if let Some(b) = self.agent.bridge.as_mut() {
                    b.muted = on;
                }
                self.emit(EventData::AgentMute { on }, None);
            }
            DeskNotice::RecordingPause { agent, on } => self.on_agent_pause(now, agent, on),
            DeskNotice::Dtmf { digit } => {
                if let Some(media) = self.media.as_mut()
                    && let Err(e) = media.send_digit(digit)
                {
                    tracing::warn!(%digit, error = %e, "cannot send the agent's digit");
                }
            }
            DeskNotice::Monitor { supervisor, action } => {
                self.on_monitor_notice(supervisor, action)
            }
            DeskNotice::WrapUpDone { .. } => {}
        }
    }

    fn on_overflow(&mut self, target: Overflow) {
        self.emit(
            EventData::QueueOverflow {
                target: target.to_string(),
            },
            None,
        );
        let lang = self.interp.language().to_owned();
        match target {
            Overflow::Queue(_) => {}
            Overflow::Voicemail => {
                self.agent.queued = false;
                self.stop_prompts();
                self.overflow_voicemail();
            }
            Overflow::Callback => {
                self.agent.queued = false;
                let number = self.party.caller.clone();
                self.emit(
                    EventData::CallbackRequested {
                        number,
                        slot: "asap".into(),
                        queue: None,
                        due_at: None,
                        source: None,
                    },
                    None,
                );
                self.emit(EventData::outcome("callback"), None);
                self.goodbye(vec![format!("{lang}/callback-confirmed")], "queue_overflow");
            }
            Overflow::Hangup => {
                self.agent.queued = false;
                self.goodbye(vec![format!("{lang}/no-agents")], "queue_overflow");
            }
        }
    }

    pub(super) fn start_bridge(&mut self, agent: String) {
        tracing::info!(%agent, "bridging the caller to the agent");
        self.stop_prompts();
        if let Some(media) = self.media.as_mut() {
            media.start_bridge();
        }
        self.agent.bridge = Some(Bridge {
            agent,
            muted: false,
            held: false,
        });
    }

    fn stop_bridge(&mut self) {
        self.stop_monitor("call_ended");
        if let Some(b) = self.agent.bridge.take() {
            if let Some(media) = self.media.as_mut() {
                media.stop_bridge();
            }
            let hub_session = self
                .cfg
                .has_desk
                .then(|| format!("{}/{}", b.agent, self.agent.desk_call));
            self.push(CallOutput::CloseAgentLeg { hub_session });
        }
    }

    /// The agent's voice, into the caller's stream (and the recording);
    /// with a supervisor on, also to the supervisor, and in barge mixed
    /// with the supervisor's (monitor.rs).
    pub(super) fn on_agent_audio(&mut self, frame: &[u8]) {
        let Some(b) = self.agent.bridge.as_ref() else {
            return;
        };
        let (muted, held) = (b.muted, b.held);
        let barging = self.monitor_barging();
        if (held || muted) && !self.monitored() || !self.is_talking() || self.media.is_none() {
            return;
        }
        let mut pcm = std::mem::take(&mut self.agent.pcm);
        pcm.clear();
        pcm.extend(frame.iter().map(|&c| ulaw_decode(c)));
        self.monitor_agent_voice(&pcm);
        if !held && (!muted || barging) {
            if muted {
                pcm.fill(0);
            }
            self.monitor_mix_for_caller(&mut pcm);
            if let Some(media) = self.media.as_mut() {
                media.push_bridge_audio(&pcm);
            }
        }
        self.agent.pcm = pcm;
    }

    pub(super) fn on_leg_event(&mut self, ev: AgentEvent) {
        if !self.is_talking() {
            return;
        }
        match ev {
            AgentEvent::Connected { after } => {
                let Some(agent) = self.agent.bridge.as_ref().map(|b| b.agent.clone()) else {
                    return;
                };
                self.emit(
                    EventData::AgentConnected {
                        agent_id: agent.clone(),
                        setup_ms: after.as_millis() as u64,
                    },
                    None,
                );
                let call = self.agent.desk_call.clone();
                self.tell_desk(DeskInput::LegConnected { call, agent });
            }
            AgentEvent::Stats(_) => {}
            // The page closed its peer: it hung up (and the desk's
            // `AgentHungUp` follows, often just behind), or it went away
            // (the desk sees the socket close and says `AgentLost`). The
            // desk knows which; until it says, the bridge stays up with no
            // audio on it, so a supervisor hears "call ended" or "agent
            // lost" as the case is, not "agent lost" for every hang-up
            // whose close came first.
            AgentEvent::Disconnected {
                reason: DisconnectReason::RemoteClosed,
                ..
            } if self.agent.bridge.is_some() => {
                tracing::debug!("the agent's page closed its audio; waiting for the desk");
            }
            AgentEvent::Disconnected { reason, .. } => {
                if reason != DisconnectReason::Closed {
                    // The desk hears of a failed page through its socket and
                    // decides (requeue or release); the audio just stops here.
                    tracing::warn!(?reason, "agent audio lost");
                    self.emit(
                        EventData::AgentMediaLost {
                            reason: format!("{reason:?}"),
                        },
                        None,
                    );
                }
                self.stop_monitor("agent_lost");
                if self.agent.bridge.take().is_some() {
                    if let Some(media) = self.media.as_mut() {
                        media.stop_bridge();
                    }
                    self.push(CallOutput::CloseAgentLeg { hub_session: None });
                }
            }
        }
    }

    /// The call is over for the desk, which lets go of it (the agent goes
    /// to wrap-up): when it ends, or when its agent hung up before a survey.
    pub(super) fn leave_desk(&mut self) {
        if self.agent.left {
            return;
        }
        self.agent.left = true;
        self.stop_bridge();
        // The caller left while agents rang: those offers end here, in the
        // call's own record (the desk's word on it comes too late).
        for agent in std::mem::take(&mut self.agent.ringing) {
            self.emit(
                EventData::OfferOutcome {
                    agent_id: agent,
                    outcome: "withdrawn".into(),
                },
                None,
            );
        }
        if self.agent.attached {
            let input = if let Some(attempt) = self.agent.callback {
                DeskInput::CallbackEnded {
                    entry: self.agent.desk_call.clone(),
                    attempt,
                    answered: true,
                }
            } else {
                DeskInput::CallEnded {
                    call: self.agent.desk_call.clone(),
                }
            };
            self.tell_desk(input);
        }
    }

    /// Plays queue prompts (position, hold music) unless an agent is on.
    fn play_queue_prompts(&mut self, prompts: Vec<String>) {
        if self.agent.bridge.as_ref().is_some_and(|b| !b.held) {
            return;
        }
        self.play_prompts(prompts, false);
    }

    /// True while the caller waits for an agent (hold music loops).
    pub(super) fn waiting_for_agent(&self) -> bool {
        self.agent.queued && self.agent.answered_by.is_none()
            || self.agent.bridge.as_ref().is_some_and(|b| b.held)
    }

    /// Says goodbye, then hangs up (when the prompts end).
    fn goodbye(&mut self, prompts: Vec<String>, cause: &str) {
        self.flow.stage = Stage::Done;
        if self.play_prompts(prompts, false) {
            self.set_closing(cause);
        } else {
            self.hang_up(cause);
        }
    }
}
