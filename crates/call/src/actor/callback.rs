//! Queued callbacks: the outbound leg that calls a customer back.
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

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_media::MediaSession;
use hotline_sip::{
    CallKey, IncomingCall, Originate, Party, Peer, RemoteMedia, SipEvent, Transport,
};
use hotline_webphone::AgentLeg;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::ivr::Stage;
use super::{CallActor, CallContext, Ending, apply_direction, bind_rtp};
use crate::event::{CallEventStamper, EndedBy, EventData};
use hotline_desk::{DeskInput, DeskNotice, DialRequest};

/// How long the customer's phone rings before the attempt counts as failed.
const RING_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs one callback attempt to its end. Spawned by the router, which has
/// already routed `key`'s SIP events to `rx`.
pub(crate) async fn run_callback(
    ctx: Arc<CallContext>,
    key: CallKey,
    job: DialRequest,
    mut rx: mpsc::Receiver<SipEvent>,
    mut notices: mpsc::Receiver<DeskNotice>,
) {
    let mut log = CallEventStamper::new(Uuid::new_v4(), key.0.to_string(), ctx.events.clone());
    log.emit(
        EventData::CallStarted {
            caller: job.number.clone(),
            caller_name: None,
            callee: job.number.clone(),
            transport: "udp".into(),
            source: job.via.to_string(),
            node: Some(ctx.settings.node.clone()),
            direction: Some("outbound".into()),
            callback_of: Some(job.entry.clone()),
            attempt: Some(job.attempt),
            queue: Some(job.queue.clone()),
        },
        None,
    )
    .await;
    tracing::info!(number = %job.number, agent = %job.agent, attempt = job.attempt, "calling back");

    let dialled = dial(&ctx, &key, &job, &mut log, &mut rx, &mut notices).await;
    let (remote, socket, lease, leg) = match dialled {
        Ok(d) => d,
        Err(failure) => {
            log.emit(
                EventData::CallbackFailed {
                    code: failure.code,
                    reason: failure.reason.clone(),
                    attempt: job.attempt,
                },
                None,
            )
            .await;
            log.emit(EventData::outcome("failed"), None).await;
            log.emit(
                EventData::Hangup {
                    ended_by: failure.by,
                    cause: format!("callback_{}", failure.code),
                    recovered_at: None,
                },
                None,
            )
            .await;
            log.emit(EventData::CallEnded {}, None).await;
            if let Some(desk) = &ctx.desk {
                desk.send(DeskInput::CallbackEnded {
                    entry: job.entry.clone(),
                    attempt: job.attempt,
                    answered: false,
                })
                .await;
            }
            tracing::info!(code = failure.code, reason = %failure.reason, "callback not answered");
            return;
        }
    };

    let incoming = IncomingCall {
        call: key.clone(),
        caller: Party {
            user: job.number.clone(),
            display_name: None,
        },
        callee: job.number.clone(),
        offer: remote,
        peer: Peer {
            transport: Transport::Udp,
            addr: job.via,
            conn: 0,
        },
    };
    let mut actor = CallActor::with_log(ctx, incoming, rx, log);
    actor.flow.stage = Stage::Done;
    actor.started = true;
    if let Some(desk) = &actor.ctx.desk {
        desk.send(DeskInput::CallbackAnswered {
            entry: job.entry.clone(),
            attempt: job.attempt,
        })
        .await;
    }
    actor
        .agent
        .for_callback(job.entry.clone(), job.attempt, job.agent.clone(), notices);
    let ending = actor.talk_callback(socket, lease, remote, leg).await;
    actor.finish(ending.0, ending.1).await;
}

/// Why an attempt failed.
struct Failure {
    code: u16,
    reason: String,
    by: EndedBy,
}

type Dialled = (
    RemoteMedia,
    std::net::UdpSocket,
    hotline_media::PortLease,
    Option<(String, AgentLeg)>,
);

/// Sends the INVITE and waits for the customer to answer, keeping the
/// agent's audio leg (set up meanwhile) for the bridge.
async fn dial(
    ctx: &CallContext,
    key: &CallKey,
    job: &DialRequest,
    log: &mut CallEventStamper,
    rx: &mut mpsc::Receiver<SipEvent>,
    notices: &mut mpsc::Receiver<DeskNotice>,
) -> Result<Dialled, Failure> {
    let fail = |code: u16, reason: &str, by: EndedBy| Failure {
        code,
        reason: reason.to_owned(),
        by,
    };
    let (socket, lease) = bind_rtp(ctx, job.via)
        .map_err(|e| fail(503, &format!("no RTP port: {e}"), EndedBy::Gateway))?;
    let local = socket
        .local_addr()
        .map_err(|e| fail(503, &format!("RTP socket: {e}"), EndedBy::Gateway))?;
    let target = format!("sip:{}@{}", job.number, job.via);
    ctx.sip
        .originate(Originate {
            call_id: Some(key.0.to_string()),
            target,
            from_user: "hotline".into(),
            from_display: Some("Hotline".into()),
            local_rtp: local,
            ring_timeout: RING_TIMEOUT,
        })
        .await
        .map_err(|e| fail(503, &e.to_string(), EndedBy::Gateway))?;

    let mut leg: Option<(String, AgentLeg)> = None;
    let mut desk_open = true;
    let mut shutdown = ctx.shutdown.clone();
    let started = Instant::now();
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(SipEvent::Ringing { code, .. }) => {
                    log.emit(EventData::Ringing { code }, None).await;
                }
                Some(SipEvent::OutboundAnswered { media, .. }) => {
                    tracing::info!(after_ms = started.elapsed().as_millis() as u64, "customer answered");
                    return Ok((media, socket, lease, leg));
                }
                Some(SipEvent::OutboundFailed { code, reason, .. }) => {
                    return Err(fail(code, &reason, EndedBy::Caller));
                }
                Some(SipEvent::Ended { reason, .. }) => {
                    return Err(fail(487, &format!("{reason:?}"), EndedBy::Caller));
                }
                Some(_) => {}
                None => return Err(fail(503, "SIP is gone", EndedBy::Gateway)),
            },
            n = notices.recv(), if desk_open => match n {
                Some(DeskNotice::Leg { agent, leg: l }) => leg = Some((agent, l)),
                Some(DeskNotice::AgentHungUp { .. }) | Some(DeskNotice::AgentLost { .. }) | None => {
                    // The agent gave up (or went away) while it rang: cancel,
                    // then wait for the outcome (OutboundFailed 487).
                    desk_open = false;
                    ctx.sip.hangup(key.clone()).await;
                }
                Some(_) => {}
            },
            // The agent's voice while it rings goes nowhere (not queued up
            // to arrive late once the customer answers).
            Some(_) = async {
                match leg.as_mut() {
                    Some((_, l)) => l.from_agent.recv().await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    ctx.sip.hangup(key.clone()).await;
                }
            }
        }
    }
}

impl CallActor {
    /// The answered callback: media as for any call, bridged to the agent.
    async fn talk_callback(
        &mut self,
        socket: std::net::UdpSocket,
        lease: hotline_media::PortLease,
        remote: RemoteMedia,
        leg: Option<(String, AgentLeg)>,
    ) -> (Ending, Option<MediaSession>) {
        let local = socket
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        self.log
            .emit(EventData::Answered { rtp: local }, None)
            .await;
        let agent_id = self.agent.desk_agent().to_owned();
        self.log
            .emit(EventData::AgentAnswered { agent_id }, None)
            .await;
        let mut media = self.open_media(&remote);
        apply_direction(&mut media, remote.direction);
        if let Some((agent, leg)) = leg {
            self.start_bridge(agent, leg, &mut media).await;
        }
        let ending = self.talk_on(socket, lease, &mut media).await;
        (ending, Some(media))
    }
}
