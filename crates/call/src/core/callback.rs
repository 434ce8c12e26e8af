//! A queued callback's outbound leg while it rings.
//!
//! A caller whose queue overflowed to a callback hangs up, but their entry
//! keeps its place in the queue (see `hotline-routing`). When it reaches an
//! agent and the agent accepts, the desk asks the router for this leg: it
//! dials the customer through the trunk (`--callback-via`, else the peer
//! that sent the original call), rings, and once answered runs as an
//! ordinary call bridged to the agent — same recording, same wrap-up, its
//! own call record (`direction` outbound, `callback_of` the original call).
//! If the customer does not answer, the desk is told and the entry goes
//! back to its place for another attempt later.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_desk::{DeskInput, DeskNotice, DialRequest};
use hotline_ivr::Flow;
use hotline_sip::{CallKey, Originate, RemoteMedia, SipEvent};

use super::state::{Dial, Party, Phase, Stage};
use super::{CallCore, CallOutput, CoreConfig, RtpError, SipCommand, apply_direction};
use crate::event::{EndedBy, EventData};

/// How long the customer's phone rings before the attempt counts as failed.
pub(super) const RING_TIMEOUT: Duration = Duration::from_secs(30);

impl CallCore {
    /// A callback attempt of `job`, already accepted by `job.agent`; its
    /// SIP events arrive under `key`. Asks for its RTP socket.
    pub fn callback(cfg: CoreConfig, key: CallKey, job: &DialRequest, flow: Arc<Flow>) -> Self {
        let party = Party {
            caller: job.number.clone(),
            caller_name: None,
            callee: job.number.clone(),
            transport: "udp",
            peer: job.via,
            offer: None,
        };
        let mut core = Self::new(cfg, key, party, flow);
        core.emit(
            EventData::CallStarted {
                caller: job.number.clone(),
                caller_name: None,
                callee: job.number.clone(),
                transport: "udp".into(),
                source: job.via.to_string(),
                node: Some(core.cfg.node.clone()),
                direction: Some("outbound".into()),
                callback_of: Some(job.entry.clone()),
                attempt: Some(job.attempt),
                queue: Some(job.queue.clone()),
                srtp: false,
            },
            None,
        );
        tracing::info!(number = %job.number, agent = %job.agent, attempt = job.attempt, "calling back");
        // No flow runs on this leg: it is the agent's call from the start.
        core.flow.stage = Stage::Done;
        core.flow.started = true;
        core.agent.desk_call = job.entry.clone();
        core.agent.callback = Some(job.attempt);
        core.agent.answered_by = Some(job.agent.clone());
        core.agent.attached = true;
        core.dial = Some(Dial {
            number: job.number.clone(),
            via: job.via,
            attempt: job.attempt,
            started: None,
            leg: None,
            desk_open: true,
        });
        core.push(CallOutput::BindRtp { peer: job.via });
        core
    }

    /// The RTP socket is bound (or not): send the INVITE.
    pub(super) fn dial_from(&mut self, now: Instant, r: Result<SocketAddr, RtpError>) {
        let local = match r {
            Ok(local) => local,
            Err(e) => return self.dial_failed(503, &e.to_string(), EndedBy::Gateway),
        };
        let Some(dial) = self.dial.as_mut() else {
            return;
        };
        dial.started = Some(now);
        let target = format!("sip:{}@{}", dial.number, dial.via);
        self.local_rtp = Some(local);
        self.phase = Phase::Dialing;
        let originate = Originate {
            call_id: Some(self.call.0.to_string()),
            target,
            from_user: "hotline".into(),
            from_display: Some("Hotline".into()),
            local_rtp: local,
            ring_timeout: RING_TIMEOUT,
        };
        self.sip(SipCommand::Originate(Box::new(originate)));
    }

    pub(super) fn on_originate_result(&mut self, _now: Instant, r: Result<(), String>) {
        if let (Phase::Dialing, Err(e)) = (&self.phase, r) {
            self.dial_failed(503, &e, EndedBy::Gateway);
        }
    }

    pub(super) fn on_dial_sip(&mut self, now: Instant, ev: SipEvent) {
        if !matches!(self.phase, Phase::Dialing) {
            return;
        }
        match ev {
            SipEvent::Ringing { code, .. } => self.emit(EventData::Ringing { code }, None),
            SipEvent::OutboundAnswered { media, .. } => self.callback_answered(now, media),
            SipEvent::OutboundFailed { code, reason, .. } => {
                self.dial_failed(code, &reason, EndedBy::Caller)
            }
            SipEvent::Ended { reason, .. } => {
                self.dial_failed(487, &format!("{reason:?}"), EndedBy::Caller)
            }
            _ => {}
        }
    }

    pub(super) fn dial_sip_gone(&mut self, _now: Instant) {
        self.dial_failed(503, "SIP is gone", EndedBy::Gateway);
    }

    pub(super) fn on_dial_notice(&mut self, notice: DeskNotice) {
        match notice {
            DeskNotice::Leg { agent, .. } => {
                if let Some(dial) = self.dial.as_mut() {
                    dial.leg = Some(agent);
                }
            }
            DeskNotice::AgentHungUp { .. } | DeskNotice::AgentLost { .. } => self.dial_agent_gone(),
            _ => {}
        }
    }

    /// The agent gave up (or went away) while it rang: cancel, then wait
    /// for the outcome (`OutboundFailed` 487).
    pub(super) fn dial_agent_gone(&mut self) {
        if !matches!(self.phase, Phase::Dialing) {
            return;
        }
        if let Some(dial) = self.dial.as_mut()
            && dial.desk_open
        {
            dial.desk_open = false;
            self.sip(SipCommand::Hangup);
        }
    }

    /// The customer picked up: an ordinary call bridged to the agent.
    fn callback_answered(&mut self, now: Instant, remote: RemoteMedia) {
        let Some(dial) = self.dial.take() else {
            return;
        };
        let after_ms = dial
            .started
            .map(|s| now.duration_since(s).as_millis() as u64)
            .unwrap_or_default();
        tracing::info!(after_ms, "customer answered");
        self.party.offer = Some(remote);
        self.tell_desk(DeskInput::CallbackAnswered {
            entry: self.agent.desk_call.clone(),
            attempt: dial.attempt,
        });
        let rtp = self.local_rtp.map(|a| a.to_string()).unwrap_or_default();
        self.emit(EventData::Answered { rtp }, None);
        let agent_id = self.agent.answered_by.clone().unwrap_or_default();
        self.emit(EventData::AgentAnswered { agent_id }, None);
        self.open_media(now);
        if let Some(media) = self.media.as_mut() {
            apply_direction(media, remote.direction);
        }
        self.phase = Phase::Talking;
        if let Some(agent) = dial.leg {
            self.start_bridge(agent);
        }
    }

    /// The attempt failed: its record closes at once and the desk puts the
    /// entry back for a later attempt.
    fn dial_failed(&mut self, code: u16, reason: &str, by: EndedBy) {
        let attempt = self.dial.take().map(|d| d.attempt).unwrap_or_default();
        self.emit(
            EventData::CallbackFailed {
                code,
                reason: reason.to_owned(),
                attempt,
            },
            None,
        );
        self.emit(EventData::outcome("failed"), None);
        self.emit(
            EventData::Hangup {
                ended_by: by,
                cause: format!("callback_{code}"),
                recovered_at: None,
            },
            None,
        );
        self.emit(EventData::CallEnded {}, None);
        self.tell_desk(DeskInput::CallbackEnded {
            entry: self.agent.desk_call.clone(),
            attempt,
            answered: false,
        });
        tracing::info!(code, %reason, "callback not answered");
        self.push(CallOutput::ReleaseRtp);
        self.push(CallOutput::Done);
        self.phase = Phase::Over;
    }
}
