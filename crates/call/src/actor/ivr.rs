//! How the call actor carries out the IVR interpreter's actions: prompts,
//! lookups, voicemail, the queue stand-in, transfer and hang-up.
//!
//! The interpreter is pure; everything with a clock, a file or a socket
//! happens here. Each interpreter event goes in through [`CallActor::step`],
//! which feeds back the events an action produces at once (a prompt that
//! cannot be played finishes immediately).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use hotline_ivr::{Action, Event, LookupSource, TransferMethod};
use hotline_media::{CallRecorder, MediaSession};
use serde_json::{Map, Value};

use super::{CallActor, Ending};
use crate::event::{EndedBy, EventData, flow_record};

/// Where the call is, from the flow's point of view.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) enum Stage {
    /// The interpreter drives the call.
    #[default]
    Running,
    /// Handed to a queue (the stand-in until agents answer queues).
    Queued,
    /// The flow has ended (it hung up, or was told the call ended).
    Done,
}

/// The voicemail the flow asked for.
#[derive(Debug, Default)]
enum Voicemail {
    #[default]
    Idle,
    /// The beep is playing; recording starts when it ends.
    Beeping {
        max_secs: u32,
    },
    Recording {
        deadline: Instant,
        path: PathBuf,
    },
}

/// A queued call waiting in the stand-in queue.
#[derive(Debug)]
struct QueueWait {
    queue: String,
    since: Instant,
    deadline: Instant,
}

/// The actor's flow-side state.
#[derive(Debug, Default)]
pub(super) struct FlowState {
    pub(super) stage: Stage,
    /// Prompts of the current playback, reported when it finishes.
    playing: Vec<String>,
    barge_in: bool,
    voicemail: Voicemail,
    voicemails: u32,
    queue: Option<QueueWait>,
    /// The interpreter deadline that already fired (never fire it twice).
    fired: Option<Instant>,
    /// A REFER in flight: where to, and when to stop waiting for its outcome.
    transfer: Option<(String, Instant)>,
    /// A goodbye is playing; when it ends the call is hung up with this cause.
    closing: Option<String>,
    /// The flow's nodes in the order the call entered them (shown to agents).
    path: Vec<String>,
}

impl FlowState {
    /// The path an agent reads: each node entered, with what happened
    /// there (`main-menu: pressed 0`, `office-hours: open`,
    /// `find-subscriber: found`).
    fn note_path(&mut self, data: &EventData, node: &str) {
        let what = match data {
            EventData::NodeEntered { .. } => {
                self.path.push(node.to_owned());
                return;
            }
            EventData::Input { input, .. } => Some(format!("pressed {input}")),
            EventData::Hours { state, .. } => Some(state.clone()),
            EventData::Lookup { found, .. } => {
                found.map(|f| if f { "found" } else { "not found" }.to_owned())
            }
            _ => None,
        };
        if let (Some(what), Some(last)) = (what, self.path.last_mut())
            && last == node
        {
            last.push_str(": ");
            last.push_str(&what);
        }
    }
}

/// How long a REFER's outcome (its NOTIFYs) is awaited before the gateway
/// leaves the call to the transferee anyway.
const TRANSFER_WAIT: Duration = Duration::from_secs(30);

impl CallActor {
    /// The next instant the actor must wake for the flow, if any.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let interp = self
            .interp
            .next_timeout()
            .filter(|t| Some(*t) != self.flow.fired);
        let vm = match &self.flow.voicemail {
            Voicemail::Recording { deadline, .. } => Some(*deadline),
            _ => None,
        };
        let queue = self.flow.queue.as_ref().map(|q| q.deadline);
        let transfer = self.flow.transfer.as_ref().map(|t| t.1);
        [interp, vm, queue, transfer].into_iter().flatten().min()
    }

    pub(super) async fn flow_started(&mut self, media: &mut MediaSession) -> Option<Ending> {
        self.step(Event::Started, media).await
    }

    pub(super) async fn on_timer(&mut self, media: &mut MediaSession) -> Option<Ending> {
        let now = Instant::now();
        if matches!(&self.flow.transfer, Some((_, deadline)) if *deadline <= now) {
            // Accepted but never reported done: the transferee has the call.
            self.flow.transfer = None;
            return Some(self.hang_up(media, "transferred").await);
        }
        if matches!(&self.flow.voicemail, Voicemail::Recording { deadline, .. } if *deadline <= now)
        {
            return self.finish_voicemail(media).await;
        }
        if let Some(q) = self.flow.queue.take_if(|q| q.deadline <= now) {
            let data = EventData::QueueTimeout {
                waited_ms: now.duration_since(q.since).as_millis() as u64,
                queue: q.queue,
            };
            self.log.emit(data, None).await;
            let bye = self.localized("no-agents");
            self.stop_prompts(media).await;
            if self.play(vec![bye], false, media).await {
                self.set_closing("queue_timeout");
                return None;
            }
            return Some(self.hang_up(media, "queue_timeout").await);
        }
        match self.interp.next_timeout() {
            Some(t) if t <= now && Some(t) != self.flow.fired => {
                self.flow.fired = Some(t);
                self.step(Event::TimerFired, media).await
            }
            _ => None,
        }
    }

    pub(super) async fn on_digit(
        &mut self,
        digit: char,
        duration_ms: Option<u32>,
        transport: &'static str,
        media: &mut MediaSession,
    ) -> Option<Ending> {
        // Barge-in: the media session stops a prompt on an RTP digit itself
        // (and reports it first); a digit from SIP INFO has to stop it here.
        if self.flow.barge_in && media.is_playing() {
            media.stop_playback();
            if let Some(end) = self.prompt_finished(true, media).await {
                return Some(end);
            }
        }
        let node = self.interp.current_node().map(str::to_owned);
        self.log
            .emit(
                EventData::Digit {
                    digit: digit.to_string(),
                    transport: transport.into(),
                    duration_ms,
                },
                node.as_deref(),
            )
            .await;
        match (&self.flow.stage, &self.flow.voicemail) {
            // A key ends a voicemail message ("press # when you are done").
            (_, Voicemail::Recording { .. }) => self.finish_voicemail(media).await,
            (Stage::Running, _) => self.step(Event::Digit(digit), media).await,
            _ => None,
        }
    }

    pub(super) async fn prompt_finished(
        &mut self,
        interrupted: bool,
        media: &mut MediaSession,
    ) -> Option<Ending> {
        if !self.log_prompts_finished(interrupted).await {
            return None;
        }
        if let Some(cause) = self.flow.closing.take() {
            return Some(self.hang_up(media, &cause).await);
        }
        if let Voicemail::Beeping { max_secs } = self.flow.voicemail {
            return self.start_capture(max_secs, media).await;
        }
        if self.flow.stage == Stage::Queued {
            if self.flow.queue.is_some() || self.waiting_for_agent() {
                let music = self.localized("hold-music");
                self.play(vec![music], false, media).await;
            }
            return None;
        }
        self.step(Event::PromptFinished { interrupted }, media)
            .await
    }

    pub(super) async fn on_lookup(
        &mut self,
        id: u64,
        result: Result<Map<String, Value>, String>,
        media: &mut MediaSession,
    ) -> Option<Ending> {
        if self.flow.stage != Stage::Running {
            return None;
        }
        self.step(Event::LookupResult { id, result }, media).await
    }

    /// Feeds the interpreter and carries out what it asks, until it asks
    /// nothing more that needs an immediate answer.
    async fn step(&mut self, event: Event, media: &mut MediaSession) -> Option<Ending> {
        let mut pending = VecDeque::from([event]);
        while let Some(event) = pending.pop_front() {
            let actions = self.interp.handle(Instant::now(), Utc::now(), event);
            for action in actions {
                match action {
                    Action::Play { prompts, barge_in } => {
                        if !self.play(prompts, barge_in, media).await {
                            pending.push_back(Event::PromptFinished { interrupted: false });
                        }
                    }
                    Action::StopPlayback => self.stop_prompts(media).await,
                    Action::Lookup {
                        id,
                        source,
                        params,
                        timeout,
                    } => self.spawn_lookup(id, source, params, timeout),
                    Action::Enqueue {
                        queue,
                        priority,
                        data,
                    } => {
                        self.enqueue(queue, priority, data, media).await;
                    }
                    Action::Transfer { target, method } => {
                        return self.transfer(target, method, media).await;
                    }
                    Action::RecordVoicemail { max_secs, beep } => {
                        let beeping = beep && {
                            let beep = self.localized("beep");
                            self.play(vec![beep], false, media).await
                        };
                        if beeping {
                            self.flow.voicemail = Voicemail::Beeping { max_secs };
                        } else if let Some(end) = self.start_capture(max_secs, media).await {
                            return Some(end);
                        }
                    }
                    Action::CallbackRequested {
                        number,
                        slot,
                        queue,
                        due_at,
                    } => {
                        // The record writer books it (table `callbacks`) from
                        // this event, in the same transaction or spooled with
                        // it: a booked callback survives a database outage
                        // and a restart like the call record does.
                        let node = self.interp.current_node().map(str::to_owned);
                        self.log
                            .emit(
                                EventData::CallbackRequested {
                                    number,
                                    slot,
                                    queue: Some(queue),
                                    due_at: Some(
                                        due_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                                    ),
                                    source: Some("ivr".into()),
                                },
                                node.as_deref(),
                            )
                            .await;
                    }
                    Action::Record { kind, node, data } => {
                        let data = flow_record(kind, data);
                        if let Some(n) = &node {
                            self.flow.note_path(&data, n);
                        }
                        self.log.emit(data, node.as_deref()).await;
                    }
                    Action::Hangup => {
                        self.flow.stage = Stage::Done;
                        return Some(self.hang_up(media, "flow_ended").await);
                    }
                }
            }
        }
        None
    }

    /// Starts prompts; false when none of them could be played.
    async fn play(&mut self, names: Vec<String>, barge_in: bool, media: &mut MediaSession) -> bool {
        let node = self.interp.current_node().map(str::to_owned);
        let mut prompts = Vec::with_capacity(names.len());
        let mut played = Vec::with_capacity(names.len());
        for name in names {
            match self.ctx.prompts.get(&name) {
                Ok(p) => {
                    self.log
                        .emit(
                            EventData::PromptStarted {
                                prompt: name.clone(),
                            },
                            node.as_deref(),
                        )
                        .await;
                    prompts.push(p);
                    played.push(name);
                }
                Err(e) => {
                    tracing::error!(prompt = %name, error = %e, "prompt unavailable; skipped");
                    self.log
                        .emit(
                            EventData::PromptMissing {
                                prompt: name,
                                error: e.to_string(),
                            },
                            node.as_deref(),
                        )
                        .await;
                }
            }
        }
        if prompts.is_empty() {
            return false;
        }
        self.flow.playing = played;
        self.flow.barge_in = barge_in;
        media.play(prompts, barge_in);
        true
    }

    /// `<language>/<name>` in the flow's current language.
    fn localized(&self, name: &str) -> String {
        format!("{}/{}", self.interp.language(), name)
    }

    fn spawn_lookup(
        &self,
        id: u64,
        source: LookupSource,
        params: Map<String, Value>,
        timeout: Duration,
    ) {
        let fut = self.ctx.lookups.lookup(source, params, timeout);
        let tx = self.lookup_tx.clone();
        tokio::spawn(async move {
            // The interpreter gives up on its own at `timeout`; this bound
            // only keeps a hung lookup from living forever.
            let result = tokio::time::timeout(timeout + Duration::from_secs(1), fut)
                .await
                .unwrap_or_else(|_| Err("timed out".into()));
            let _ = tx.send((id, result)).await;
        });
    }

    /// Hands the call to the agent desk's queue; without a desk (or when
    /// it does not know the queue) holds with music until the max wait.
    async fn enqueue(
        &mut self,
        queue: String,
        priority: i64,
        data: Map<String, Value>,
        media: &mut MediaSession,
    ) {
        self.flow.stage = Stage::Queued;
        if self.enqueue_to_desk(&queue, priority, data).await {
            tracing::info!(%queue, priority, "queued for an agent");
        } else {
            tracing::info!(%queue, priority, "queued with no agent desk: holding until max wait");
            self.hold_without_agents(&queue);
        }
        if !media.is_playing() {
            let music = self.localized("hold-music");
            self.play(vec![music], false, media).await;
        }
    }

    /// Holds the queued caller for `queue_max_wait` (no agent will come).
    pub(super) fn hold_without_agents(&mut self, queue: &str) {
        let now = Instant::now();
        self.flow.queue = Some(QueueWait {
            queue: queue.to_owned(),
            since: now,
            deadline: now + self.ctx.settings.queue_max_wait,
        });
    }

    /// The nodes the call went through, for the agent's screen.
    pub(super) fn flow_path(&self) -> &[String] {
        &self.flow.path
    }

    /// Stops whatever prompt plays; the log says it was cut short, however
    /// the interruption came about (a key by RTP or INFO, a queue event).
    pub(super) async fn stop_prompts(&mut self, media: &mut MediaSession) {
        media.stop_playback();
        self.log_prompts_finished(true).await;
    }

    /// Logs the end of the current playback; false when nothing was playing.
    async fn log_prompts_finished(&mut self, interrupted: bool) -> bool {
        if self.flow.playing.is_empty() {
            return false;
        }
        let prompts = std::mem::take(&mut self.flow.playing);
        let node = self.interp.current_node().map(str::to_owned);
        self.log
            .emit(
                EventData::PromptFinished {
                    prompt: prompts.last().cloned(),
                    prompts,
                    interrupted,
                },
                node.as_deref(),
            )
            .await;
        true
    }

    pub(super) async fn play_prompts(
        &mut self,
        prompts: Vec<String>,
        barge_in: bool,
        media: &mut MediaSession,
    ) -> bool {
        self.stop_prompts(media).await;
        self.play(prompts, barge_in, media).await
    }

    /// Hangs up with `cause` when the prompts now playing end.
    pub(super) fn set_closing(&mut self, cause: &str) {
        self.flow.closing = Some(cause.to_owned());
    }

    /// The queue overflowed to voicemail: beep, record, thank, hang up.
    pub(super) async fn overflow_voicemail(&mut self, media: &mut MediaSession) -> Option<Ending> {
        self.flow.stage = Stage::Done;
        let beep = self.localized("beep");
        if self.play(vec![beep], false, media).await {
            self.flow.voicemail = Voicemail::Beeping { max_secs: 120 };
            None
        } else {
            self.start_capture(120, media).await
        }
    }

    /// Blind transfer: REFER the caller's side to `target`, then leave.
    async fn transfer(
        &mut self,
        target: String,
        method: TransferMethod,
        media: &mut MediaSession,
    ) -> Option<Ending> {
        self.flow.stage = Stage::Done;
        let refused = match method {
            // A new INVITE bridged by the gateway needs an outgoing leg,
            // which arrives with the agents' media bridge.
            TransferMethod::Invite => {
                Some("transfer by INVITE is not available yet; use method: refer".to_owned())
            }
            TransferMethod::Refer => self
                .ctx
                .sip
                .refer(self.key.clone(), target.clone())
                .await
                .err()
                .map(|e| e.to_string()),
        };
        match refused {
            None => {
                tracing::info!(%target, "REFER sent");
                self.flow.transfer = Some((target, Instant::now() + TRANSFER_WAIT));
                None
            }
            Some(error) => {
                tracing::warn!(%target, %error, "transfer failed");
                self.transfer_failed(&target, &error).await;
                Some(self.hang_up(media, "transfer_failed").await)
            }
        }
    }

    /// A REFER was accepted (`None`) or a NOTIFY reported the new call's status.
    pub(super) async fn on_transfer(
        &mut self,
        code: Option<u16>,
        media: &mut MediaSession,
    ) -> Option<Ending> {
        let (target, _) = self.flow.transfer.clone()?;
        match code {
            None => {
                self.log
                    .emit(EventData::TransferAccepted { target }, None)
                    .await;
                None
            }
            Some(code) if code < 200 => None,
            Some(code) if code < 300 => {
                self.flow.transfer = None;
                self.log
                    .emit(EventData::TransferCompleted { target, code }, None)
                    .await;
                Some(self.hang_up(media, "transferred").await)
            }
            Some(code) => self.on_transfer_failed(code, media).await,
        }
    }

    pub(super) async fn on_transfer_failed(
        &mut self,
        code: u16,
        media: &mut MediaSession,
    ) -> Option<Ending> {
        let (target, _) = self.flow.transfer.take()?;
        self.transfer_failed(&target, &format!("SIP {code}")).await;
        Some(self.hang_up(media, "transfer_failed").await)
    }

    async fn transfer_failed(&mut self, target: &str, error: &str) {
        self.log
            .emit(
                EventData::TransferFailed {
                    target: target.to_owned(),
                    error: error.to_owned(),
                },
                None,
            )
            .await;
        self.log.emit(EventData::outcome("failed"), None).await;
    }

    async fn start_capture(&mut self, max_secs: u32, media: &mut MediaSession) -> Option<Ending> {
        self.flow.voicemails += 1;
        let path = self
            .ctx
            .voicemail_dir
            .join(format!("{}-{}.wav", self.log.call_id, self.flow.voicemails));
        match CallRecorder::create_mono(&path) {
            Ok(rec) => {
                if let Some(Err(e)) = media.start_capture(rec) {
                    tracing::warn!(error = %e, "earlier voicemail failed to close");
                }
                let deadline = Instant::now() + Duration::from_secs(u64::from(max_secs));
                let node = self.interp.current_node().map(str::to_owned);
                self.log
                    .emit(
                        EventData::VoicemailStarted {
                            path: path.display().to_string(),
                            max_secs,
                        },
                        node.as_deref(),
                    )
                    .await;
                self.flow.voicemail = Voicemail::Recording { deadline, path };
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot record voicemail");
                self.flow.voicemail = Voicemail::Idle;
                let event = Event::RecordingFinished {
                    duration_ms: 0,
                    path: None,
                };
                Box::pin(self.step(event, media)).await
            }
        }
    }

    /// Closes the voicemail and tells the flow. Returns how the call ends, if it does.
    async fn finish_voicemail(&mut self, media: &mut MediaSession) -> Option<Ending> {
        let event = self.close_voicemail(media).await?;
        if self.flow.stage != Stage::Running {
            // A queue's overflow, not the flow's own voicemail node.
            self.log.emit(EventData::outcome("voicemail"), None).await;
            let thanks = self.localized("thank-you");
            if self.play(vec![thanks], false, media).await {
                self.set_closing("voicemail");
                return None;
            }
            return Some(self.hang_up(media, "voicemail").await);
        }
        Box::pin(self.step(event, media)).await
    }

    /// Stops the capture and records it; the event to tell the flow.
    pub(super) async fn close_voicemail(&mut self, media: &mut MediaSession) -> Option<Event> {
        let Voicemail::Recording { path, .. } = std::mem::take(&mut self.flow.voicemail) else {
            return None;
        };
        let node = self.interp.current_node().map(str::to_owned);
        let (duration_ms, path) = match media.stop_capture() {
            Some(Ok(info)) => {
                self.log
                    .emit(
                        EventData::Voicemail {
                            path: info.path.display().to_string(),
                            duration_ms: info.duration_ms,
                            bytes: info.bytes,
                        },
                        node.as_deref(),
                    )
                    .await;
                (info.duration_ms, Some(info.path.display().to_string()))
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, path = %path.display(), "voicemail failed");
                (0, None)
            }
            None => (0, None),
        };
        Some(Event::RecordingFinished { duration_ms, path })
    }

    /// The call ended without the flow ending it: close a voicemail in
    /// progress and let the flow record how it ended.
    pub(super) async fn end_flow(&mut self, media: &mut MediaSession) {
        let mut events = Vec::with_capacity(2);
        if let Some(ev) = self.close_voicemail(media).await {
            events.push(ev);
        }
        events.push(Event::Hangup);
        for event in events {
            for action in self.interp.handle(Instant::now(), Utc::now(), event) {
                if let Action::Record { kind, node, data } = action {
                    self.log
                        .emit(flow_record(kind, data), node.as_deref())
                        .await;
                }
            }
        }
        self.flow.stage = Stage::Done;
    }

    /// Hangs up from our side.
    pub(super) async fn hang_up(&mut self, media: &mut MediaSession, cause: &str) -> Ending {
        self.flow.stage = Stage::Done;
        media.stop_playback();
        self.ctx.sip.hangup(self.key.clone()).await;
        Ending::new(EndedBy::Gateway, cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_says_what_happened_at_each_node() {
        let mut f = FlowState::default();
        let entered = |kind: &str| EventData::NodeEntered {
            node_kind: kind.into(),
        };
        let pressed = |key: &str| EventData::Input {
            input: key.into(),
            next: None,
            into: None,
            language: None,
            slot: None,
        };
        f.note_path(&entered("language"), "choose-language");
        f.note_path(&pressed("1"), "choose-language");
        f.note_path(&entered("hours"), "office-hours");
        let open = EventData::Hours {
            state: "open".into(),
            local_time: "2024-05-01 12:00 Wed".into(),
            forced: None,
        };
        f.note_path(&open, "office-hours");
        f.note_path(&entered("lookup"), "find-subscriber");
        let not_found = EventData::Lookup {
            lookup: "subscriber_by_caller_id".into(),
            ok: true,
            found: Some(false),
            result: Some(Map::new()),
            error: None,
        };
        f.note_path(&not_found, "find-subscriber");
        f.note_path(&entered("menu"), "main-menu");
        let prompt = EventData::PromptStarted { prompt: "x".into() };
        f.note_path(&prompt, "main-menu");
        // A retry's second input does not pile onto the first.
        f.note_path(&pressed("0"), "main-menu");
        f.note_path(&pressed("9"), "main-menu");
        f.note_path(&entered("enqueue"), "agent");
        assert_eq!(
            f.path,
            [
                "choose-language: pressed 1",
                "office-hours: open",
                "find-subscriber: not found",
                "main-menu: pressed 0",
                "agent"
            ]
        );
    }
}
