//! The call actor's agent side: waiting in a queue of the agent desk, and
//! the audio bridge between the caller's RTP and the agent's WebRTC leg.
//!
//! PCMU passes through untouched in both directions when the caller speaks
//! PCMU (the agent leg is PCMU only); a PCMA caller is converted per sample.
//! The bridge's audio to the caller goes through the media session, so it
//! is paced by the shared clock and lands on the recording's right channel.

use std::time::{Duration, Instant};

use hotline_media::{MediaSession, RtpPacket, alaw_decode, ulaw_decode, ulaw_encode};
use hotline_routing::Overflow;
use hotline_webphone::{AgentEvent, AgentLeg, AgentSender, DisconnectReason};
use serde_json::json;
use tokio::sync::mpsc;

use super::ivr::Stage;
use super::{CallActor, Ending};
use crate::event::{EndedBy, EventData};
use hotline_desk::{CallInfo, DeskInput, DeskNotice, QueuedCall};

/// How long a call record waits for its agent's wrap-up before closing.
const WRAP_UP_WAIT: Duration = Duration::from_secs(600);

/// The actor's state towards the desk and the agent.
#[derive(Default)]
pub(super) struct AgentSide {
    /// Notices from the desk while the call is queued or with an agent.
    pub(super) notices: Option<mpsc::Receiver<DeskNotice>>,
    pub(super) bridge: Option<Bridge>,
    /// The agent who answered (for the record and wrap-up).
    answered_by: Option<String>,
    /// The queue the call waits in (empty until enqueued).
    queue: String,
    /// Agents ringing for this call right now (offers without an outcome).
    ringing: Vec<String>,
    queued: bool,
    /// The desk's id of this call: the call id, or for a callback leg the
    /// id of the call whose callback entry it serves.
    desk_call: String,
    /// A callback leg (see `callback.rs`): it ends with `CallbackEnded`
    /// for this attempt.
    callback: Option<u32>,
}

impl AgentSide {
    /// A callback leg, already accepted by `agent`.
    pub(super) fn for_callback(
        &mut self,
        entry: String,
        attempt: u32,
        agent: String,
        notices: mpsc::Receiver<DeskNotice>,
    ) {
        self.desk_call = entry;
        self.callback = Some(attempt);
        self.answered_by = Some(agent);
        self.notices = Some(notices);
    }

    /// The agent who answered ("" when none).
    pub(super) fn desk_agent(&self) -> &str {
        self.answered_by.as_deref().unwrap_or("")
    }
}

/// A live audio bridge to an agent.
pub(super) struct Bridge {
    agent: String,
    to_agent: AgentSender,
    from_agent: mpsc::Receiver<Vec<u8>>,
    events: mpsc::UnboundedReceiver<AgentEvent>,
    muted: bool,
    held: bool,
    pcm: Vec<i16>,
}

/// Receives from an optional channel; pending while there is none.
pub(super) async fn recv<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// What the bridge delivers: the agent's audio, or news of the leg.
pub(super) enum FromAgent {
    Frame(Vec<u8>),
    Event(AgentEvent),
}

/// The bridge's next frame or event; pending while there is no bridge.
pub(super) async fn recv_bridge(bridge: &mut Option<Bridge>) -> FromAgent {
    let Some(b) = bridge else {
        return std::future::pending().await;
    };
    tokio::select! {
        Some(frame) = b.from_agent.recv() => FromAgent::Frame(frame),
        Some(ev) = b.events.recv() => FromAgent::Event(ev),
        else => std::future::pending().await,
    }
}

impl CallActor {
    /// Hands the call to the desk's queue. False when there is no desk.
    pub(super) async fn enqueue_to_desk(
        &mut self,
        queue: &str,
        priority: i64,
        data: serde_json::Map<String, serde_json::Value>,
    ) -> bool {
        let Some(desk) = self.ctx.desk.clone() else {
            return false;
        };
        let (tx, rx) = mpsc::channel(64);
        self.agent.desk_call = self.log.call_id.to_string();
        self.agent.notices = Some(rx);
        self.agent.queued = true;
        self.agent.queue = queue.to_owned();
        let shown = json!({ "flow": data, "vars": self.interp.vars() });
        let caller = self.incoming.caller.user.clone();
        desk.send(DeskInput::Enqueue(QueuedCall {
            info: CallInfo {
                call: self.agent.desk_call.clone(),
                queue: queue.to_owned(),
                priority,
                issue_type: self.interp.issue_type().map(str::to_owned),
                dialable: hotline_ivr::callback::is_dialable(&caller),
                caller,
                reply_via: self.incoming.peer.addr,
                path: self.flow_path().to_vec(),
                data: shown,
            },
            notices: tx,
        }))
        .await;
        true
    }

    pub(super) async fn on_desk(
        &mut self,
        notice: DeskNotice,
        media: &mut MediaSession,
    ) -> Option<Ending> {
        match notice {
            DeskNotice::UnknownQueue => {
                self.agent.queued = false;
                let queue = self.agent.queue.clone();
                self.hold_without_agents(&queue);
                None
            }
            DeskNotice::Position {
                position,
                estimated_wait,
            } => {
                self.log
                    .emit(
                        EventData::QueuePosition {
                            position: position as u64,
                            estimated_wait_ms: estimated_wait.map(|w| w.as_millis() as u64),
                        },
                        None,
                    )
                    .await;
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
                    self.play_queue_prompts(prompts, media).await;
                }
                None
            }
            DeskNotice::Offered { agent } => {
                self.log
                    .emit(
                        EventData::AgentOffered {
                            agent_id: agent.clone(),
                        },
                        None,
                    )
                    .await;
                self.agent.ringing.push(agent);
                None
            }
            DeskNotice::OfferEnded { agent, outcome } => {
                self.agent.ringing.retain(|a| *a != agent);
                self.log
                    .emit(
                        EventData::OfferOutcome {
                            agent_id: agent,
                            outcome: outcome.into(),
                        },
                        None,
                    )
                    .await;
                None
            }
            DeskNotice::Accepted { agent } => {
                self.log
                    .emit(
                        EventData::AgentAnswered {
                            agent_id: agent.clone(),
                        },
                        None,
                    )
                    .await;
                self.agent.answered_by = Some(agent);
                self.stop_prompts(media).await;
                None
            }
            DeskNotice::Leg { agent, leg } => {
                self.start_bridge(agent, leg, media).await;
                None
            }
            DeskNotice::AgentHungUp { agent } => {
                tracing::info!(%agent, "agent hung up");
                self.stop_bridge(media).await;
                media.stop_playback();
                self.ctx.sip.hangup(self.key.clone()).await;
                Some(Ending::new(EndedBy::Agent, "agent_hangup"))
            }
            DeskNotice::AgentLost { agent, requeued } => {
                self.log
                    .emit(
                        EventData::AgentLost {
                            agent_id: agent,
                            requeued,
                        },
                        None,
                    )
                    .await;
                self.stop_bridge(media).await;
                self.agent.answered_by = None;
                let lang = self.interp.language().to_owned();
                // A callback leg has no queue to wait in: its entry went
                // back to the queue, the customer is told and let go.
                if requeued && self.agent.callback.is_none() {
                    let prompts = vec![
                        format!("{lang}/agent-lost"),
                        format!("{lang}/connecting-agent"),
                    ];
                    self.play_queue_prompts(prompts, media).await;
                    None
                } else {
                    self.agent.queued = false;
                    self.goodbye(
                        vec![format!("{lang}/agent-lost"), format!("{lang}/no-agents")],
                        "agent_lost",
                        media,
                    )
                    .await
                }
            }
            DeskNotice::Overflow { target } => {
                self.log
                    .emit(
                        EventData::QueueOverflow {
                            target: target.to_string(),
                        },
                        None,
                    )
                    .await;
                let lang = self.interp.language().to_owned();
                match target {
                    Overflow::Queue(_) => None,
                    Overflow::Voicemail => {
                        self.agent.queued = false;
                        self.stop_prompts(media).await;
                        self.overflow_voicemail(media).await
                    }
                    Overflow::Callback => {
                        self.agent.queued = false;
                        let number = self.incoming.caller.user.clone();
                        self.log
                            .emit(
                                EventData::CallbackRequested {
                                    number,
                                    slot: "asap".into(),
                                    queue: None,
                                    due_at: None,
                                    source: None,
                                },
                                None,
                            )
                            .await;
                        self.log.emit(EventData::outcome("callback"), None).await;
                        self.goodbye(
                            vec![format!("{lang}/callback-confirmed")],
                            "queue_overflow",
                            media,
                        )
                        .await
                    }
                    Overflow::Hangup => {
                        self.agent.queued = false;
                        self.goodbye(vec![format!("{lang}/no-agents")], "queue_overflow", media)
                            .await
                    }
                }
            }
            DeskNotice::Hold { on } => {
                if let Some(b) = self.agent.bridge.as_mut() {
                    b.held = on;
                }
                self.log.emit(EventData::AgentHold { on }, None).await;
                if on {
                    let music = format!("{}/hold-music", self.interp.language());
                    self.play_queue_prompts(vec![music], media).await;
                } else {
                    self.stop_prompts(media).await;
                }
                None
            }
            DeskNotice::Mute { on } => {
                if let Some(b) = self.agent.bridge.as_mut() {
                    b.muted = on;
                }
                self.log.emit(EventData::AgentMute { on }, None).await;
                None
            }
            DeskNotice::Dtmf { digit } => {
                if let Err(e) = media.send_digit(digit) {
                    tracing::warn!(%digit, error = %e, "cannot send the agent's digit");
                }
                None
            }
            DeskNotice::WrapUpDone { .. } => None,
        }
    }

    pub(super) async fn start_bridge(
        &mut self,
        agent: String,
        leg: AgentLeg,
        media: &mut MediaSession,
    ) {
        tracing::info!(%agent, "bridging the caller to the agent");
        self.stop_prompts(media).await;
        media.start_bridge();
        self.agent.bridge = Some(Bridge {
            agent,
            to_agent: leg.to_agent,
            from_agent: leg.from_agent,
            events: leg.events,
            muted: false,
            held: false,
            pcm: Vec::with_capacity(160),
        });
    }

    async fn stop_bridge(&mut self, media: &mut MediaSession) {
        if let Some(b) = self.agent.bridge.take() {
            media.stop_bridge();
            if let Some(desk) = &self.ctx.desk {
                desk.hub()
                    .close(&format!("{}/{}", b.agent, self.agent.desk_call))
                    .await;
            }
        }
    }

    /// The agent's voice, into the caller's stream (and the recording).
    pub(super) fn on_agent_audio(&mut self, frame: Vec<u8>, media: &mut MediaSession) {
        let Some(b) = self.agent.bridge.as_mut() else {
            return;
        };
        if b.muted || b.held {
            return;
        }
        b.pcm.clear();
        b.pcm.extend(frame.iter().map(|&c| ulaw_decode(c)));
        media.push_bridge_audio(&b.pcm);
    }

    /// The caller's voice, to the agent: the RTP payload as it came when
    /// both sides speak PCMU.
    pub(super) fn forward_to_agent(&mut self, datagram: &[u8]) {
        let Some(b) = self.agent.bridge.as_mut() else {
            return;
        };
        if b.held {
            return;
        }
        let Ok(pkt) = RtpPacket::parse(datagram) else {
            return;
        };
        if pkt.payload_type != self.incoming.offer.payload_type || pkt.payload.is_empty() {
            return;
        }
        match self.incoming.offer.codec {
            hotline_sip::Codec::Pcmu => {
                b.to_agent.send(pkt.payload);
            }
            hotline_sip::Codec::Pcma => {
                let converted: Vec<u8> = pkt
                    .payload
                    .iter()
                    .map(|&a| ulaw_encode(alaw_decode(a)))
                    .collect();
                b.to_agent.send(&converted);
            }
        }
    }

    pub(super) async fn on_leg_event(
        &mut self,
        ev: AgentEvent,
        media: &mut MediaSession,
    ) -> Option<Ending> {
        match ev {
            AgentEvent::Connected { after } => {
                let agent = self.agent.bridge.as_ref().map(|b| b.agent.clone())?;
                self.log
                    .emit(
                        EventData::AgentConnected {
                            agent_id: agent.clone(),
                            setup_ms: after.as_millis() as u64,
                        },
                        None,
                    )
                    .await;
                if let Some(desk) = &self.ctx.desk {
                    desk.send(DeskInput::LegConnected {
                        call: self.agent.desk_call.clone(),
                        agent,
                    })
                    .await;
                }
                None
            }
            AgentEvent::Stats(_) => None,
            AgentEvent::Disconnected { reason, .. } => {
                if reason != DisconnectReason::Closed {
                    // The desk hears of a closed page through its socket and
                    // decides (requeue or release); the audio just stops here.
                    tracing::warn!(?reason, "agent audio lost");
                    self.log
                        .emit(
                            EventData::AgentMediaLost {
                                reason: format!("{reason:?}"),
                            },
                            None,
                        )
                        .await;
                }
                if let Some(b) = self.agent.bridge.take() {
                    drop(b);
                    media.stop_bridge();
                }
                None
            }
        }
    }

    /// The call is over: the desk lets go of it (the agent goes to wrap-up).
    pub(super) async fn leave_desk(&mut self, media: &mut MediaSession) {
        self.stop_bridge(media).await;
        // The caller left while agents rang: those offers end here, in the
        // call's own record (the desk's word on it comes too late).
        for agent in std::mem::take(&mut self.agent.ringing) {
            self.log
                .emit(
                    EventData::OfferOutcome {
                        agent_id: agent,
                        outcome: "withdrawn".into(),
                    },
                    None,
                )
                .await;
        }
        if self.agent.notices.is_some()
            && let Some(desk) = &self.ctx.desk
        {
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
            desk.send(input).await;
        }
    }

    /// After the call: the agent's wrap-up belongs to its record.
    pub(super) async fn after_agent(&mut self) {
        let Some(agent) = self.agent.answered_by.clone() else {
            return;
        };
        let Some(rx) = self.agent.notices.as_mut() else {
            return;
        };
        let started = Instant::now();
        let done = tokio::time::timeout(WRAP_UP_WAIT, async {
            while let Some(n) = rx.recv().await {
                if let DeskNotice::WrapUpDone {
                    disposition,
                    notes,
                    seconds,
                    ..
                } = n
                {
                    return Some((disposition, notes, seconds));
                }
            }
            None
        })
        .await;
        let (disposition, notes, seconds) = match done {
            Ok(Some(w)) => w,
            _ => (None, String::new(), started.elapsed().as_secs()),
        };
        self.log
            .emit(
                EventData::WrapUp {
                    agent_id: agent,
                    disposition,
                    notes,
                    seconds,
                },
                None,
            )
            .await;
    }

    /// Plays queue prompts (position, hold music) unless an agent is on.
    async fn play_queue_prompts(&mut self, prompts: Vec<String>, media: &mut MediaSession) {
        if self.agent.bridge.is_some() && !self.agent.bridge.as_ref().is_some_and(|b| b.held) {
            return;
        }
        self.play_prompts(prompts, false, media).await;
    }

    /// True while the caller waits for an agent (hold music loops).
    pub(super) fn waiting_for_agent(&self) -> bool {
        self.agent.queued && self.agent.answered_by.is_none()
            || self.agent.bridge.as_ref().is_some_and(|b| b.held)
    }

    /// Says goodbye, then hangs up (when the prompts end).
    async fn goodbye(
        &mut self,
        prompts: Vec<String>,
        cause: &str,
        media: &mut MediaSession,
    ) -> Option<Ending> {
        self.flow.stage = Stage::Done;
        if self.play_prompts(prompts, false, media).await {
            self.set_closing(cause);
            None
        } else {
            Some(self.hang_up(media, cause).await)
        }
    }
}
