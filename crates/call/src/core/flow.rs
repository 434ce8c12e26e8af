//! Carrying out the IVR interpreter's actions: prompts, lookups, voicemail,
//! the queue hand-over, transfer and the goodbye before a hang-up.
//!
//! Each interpreter event goes in through [`CallCore::step`], which feeds
//! back the events an action produces at once (a prompt that cannot be
//! played finishes immediately).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hotline_ivr::{Action, Event, TransferMethod};
use hotline_media::CallRecorder;
use serde_json::{Map, Value};

use super::pause::PauseReason;
use super::state::{Ending, QueueWait, Stage, Transfer, Voicemail};
use super::{CallCore, CallOutput, RecorderFor, SipCommand};
use crate::event::{EndedBy, EventData, flow_record};

/// How long a REFER's outcome (its NOTIFYs) is awaited before the gateway
/// leaves the call to the transferee anyway.
pub(super) const TRANSFER_WAIT: Duration = Duration::from_secs(30);

/// How long (seconds) a queue overflow's voicemail may last.
const OVERFLOW_VOICEMAIL_SECS: u32 = 120;

impl CallCore {
    /// The next instant the core must wake for the flow, if any.
    pub(super) fn flow_deadline(&self) -> Option<Instant> {
        let interp = self
            .interp
            .next_timeout()
            .filter(|t| Some(*t) != self.flow.fired);
        let vm = match &self.flow.voicemail {
            Voicemail::Recording { deadline, .. } => Some(*deadline),
            _ => None,
        };
        let queue = self.flow.queue.as_ref().map(|q| q.deadline);
        let transfer = match &self.flow.transfer {
            Some(Transfer::Accepted { deadline, .. }) => Some(*deadline),
            _ => None,
        };
        let survey = self.survey_deadline();
        [interp, vm, queue, transfer, survey]
            .into_iter()
            .flatten()
            .min()
    }

    pub(super) fn flow_started(&mut self, now: Instant, wall: DateTime<Utc>) {
        self.step(now, wall, Event::Started);
    }

    pub(super) fn on_flow_timer(&mut self, now: Instant, wall: DateTime<Utc>) {
        if matches!(&self.flow.transfer, Some(Transfer::Accepted { deadline, .. }) if *deadline <= now)
        {
            // Accepted but never reported done: the transferee has the call.
            self.flow.transfer = None;
            return self.hang_up("transferred");
        }
        if matches!(&self.flow.voicemail, Voicemail::Recording { deadline, .. } if *deadline <= now)
        {
            return self.finish_voicemail(now, wall);
        }
        if self.survey_timer(now, wall) {
            return;
        }
        if let Some(q) = self.flow.queue.take_if(|q| q.deadline <= now) {
            let data = EventData::QueueTimeout {
                waited_ms: now.duration_since(q.since).as_millis() as u64,
                queue: q.queue,
            };
            self.emit(data, None);
            let bye = self.localized("no-agents");
            self.stop_prompts();
            if self.play(vec![bye], false) {
                self.set_closing("queue_timeout");
            } else {
                self.hang_up("queue_timeout");
            }
            return;
        }
        match self.interp.next_timeout() {
            Some(t) if t <= now && Some(t) != self.flow.fired => {
                self.flow.fired = Some(t);
                self.step(now, wall, Event::TimerFired);
            }
            _ => {}
        }
    }

    pub(super) fn on_digit(
        &mut self,
        now: Instant,
        wall: DateTime<Utc>,
        digit: char,
        duration_ms: Option<u32>,
        transport: &'static str,
    ) {
        // Barge-in: the media session stops a prompt on an RTP digit itself
        // (and reports it first); a digit from SIP INFO has to stop it here.
        if self.flow.barge_in
            && let Some(media) = self.media.as_mut()
            && media.is_playing()
        {
            media.stop_playback();
            self.prompt_finished(now, wall, true);
            if self.ending.is_some() {
                return;
            }
        }
        // A secure gather's keys (and any key while the recording is
        // paused) are never written: the flow alone sees them.
        let masked = self.masking_keys();
        self.emit_here(EventData::Digit {
            digit: if masked {
                "*".into()
            } else {
                digit.to_string()
            },
            transport: transport.into(),
            duration_ms,
            masked: masked.then_some(true),
        });
        if self.in_survey() {
            return self.survey_digit(now, wall, digit);
        }
        match (&self.flow.stage, &self.flow.voicemail) {
            // A key ends a voicemail message ("press # when you are done").
            (_, Voicemail::Recording { .. }) => self.finish_voicemail(now, wall),
            (Stage::Running, _) => self.step(now, wall, Event::Digit(digit)),
            _ => {}
        }
    }

    pub(super) fn prompt_finished(&mut self, now: Instant, wall: DateTime<Utc>, interrupted: bool) {
        if !self.log_prompts_finished(interrupted) {
            return;
        }
        if let Some(cause) = self.flow.closing.take() {
            return self.hang_up(&cause);
        }
        if self.survey_prompt_finished(now, wall) {
            return;
        }
        if let Voicemail::Beeping { max_secs } = self.flow.voicemail {
            return self.start_capture(max_secs);
        }
        if self.flow.stage == Stage::Queued {
            if self.flow.queue.is_some() || self.waiting_for_agent() {
                let music = self.localized("hold-music");
                self.play(vec![music], false);
            }
            return;
        }
        self.step(now, wall, Event::PromptFinished { interrupted });
    }

    pub(super) fn on_lookup(
        &mut self,
        now: Instant,
        wall: DateTime<Utc>,
        id: u64,
        result: Result<Map<String, Value>, String>,
    ) {
        if !self.is_talking() || self.flow.stage != Stage::Running {
            return;
        }
        self.step(now, wall, Event::LookupResult { id, result });
    }

    /// Feeds the interpreter and carries out what it asks, until it asks
    /// nothing more that needs an immediate answer.
    pub(super) fn step(&mut self, now: Instant, wall: DateTime<Utc>, event: Event) {
        let mut pending = VecDeque::from([event]);
        while let Some(event) = pending.pop_front() {
            let actions = self.interp.handle(now, wall, event);
            for action in actions {
                match action {
                    Action::Play { prompts, barge_in } => {
                        if !self.play(prompts, barge_in) {
                            pending.push_back(Event::PromptFinished { interrupted: false });
                        }
                    }
                    Action::StopPlayback => self.stop_prompts(),
                    Action::SecureInput { active: true } => {
                        self.pause_recording(now, PauseReason::SecureGather, None)
                    }
                    Action::SecureInput { active: false } => {
                        self.resume_recording(now, PauseReason::SecureGather)
                    }
                    Action::Lookup {
                        id,
                        source,
                        params,
                        timeout,
                    } => self.push(CallOutput::Lookup {
                        id,
                        source,
                        params,
                        timeout,
                    }),
                    Action::Enqueue {
                        queue,
                        priority,
                        data,
                    } => self.enqueue(now, queue, priority, data),
                    Action::Transfer { target, method } => {
                        return self.transfer(target, method);
                    }
                    Action::RecordVoicemail { max_secs, beep } => {
                        let beeping = beep && {
                            let beep = self.localized("beep");
                            self.play(vec![beep], false)
                        };
                        if beeping {
                            self.flow.voicemail = Voicemail::Beeping { max_secs };
                        } else {
                            self.start_capture(max_secs);
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
                        self.emit_here(EventData::CallbackRequested {
                            number,
                            slot,
                            queue: Some(queue),
                            due_at: Some(
                                due_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                            ),
                            source: Some("ivr".into()),
                        });
                    }
                    Action::Record { kind, node, data } => {
                        let data = flow_record(kind, data);
                        if let Some(n) = &node {
                            self.flow.note_path(&data, n);
                        }
                        self.emit(data, node.as_deref());
                    }
                    Action::Survey => self.survey_from_flow(now),
                    Action::Hangup => {
                        self.flow.stage = Stage::Done;
                        return self.hang_up("flow_ended");
                    }
                }
            }
        }
    }

    /// Starts prompts; false when none of them could be played.
    pub(super) fn play(&mut self, names: Vec<String>, barge_in: bool) -> bool {
        let node = self.interp.current_node().map(str::to_owned);
        let mut prompts = Vec::with_capacity(names.len());
        let mut played = Vec::with_capacity(names.len());
        for name in names {
            match self.cfg.prompts.get(&name) {
                Ok(p) => {
                    self.emit(
                        EventData::PromptStarted {
                            prompt: name.clone(),
                        },
                        node.as_deref(),
                    );
                    prompts.push(p);
                    played.push(name);
                }
                Err(e) => {
                    tracing::error!(prompt = %name, error = %e, "prompt unavailable; skipped");
                    self.emit(
                        EventData::PromptMissing {
                            prompt: name,
                            error: e.to_string(),
                        },
                        node.as_deref(),
                    );
                }
            }
        }
        let Some(media) = self.media.as_mut() else {
            return false;
        };
        if prompts.is_empty() {
            return false;
        }
        self.flow.playing = played;
        self.flow.barge_in = barge_in;
        media.play(prompts, barge_in);
        true
    }

    /// `<language>/<name>` in the flow's current language.
    pub(super) fn localized(&self, name: &str) -> String {
        format!("{}/{}", self.interp.language(), name)
    }

    /// Hands the call to the agent desk's queue; without a desk (or when
    /// it does not know the queue) holds with music until the max wait.
    fn enqueue(&mut self, now: Instant, queue: String, priority: i64, data: Map<String, Value>) {
        self.flow.stage = Stage::Queued;
        if self.enqueue_to_desk(&queue, priority, data) {
            tracing::info!(%queue, priority, "queued for an agent");
        } else {
            tracing::info!(%queue, priority, "queued with no agent desk: holding until max wait");
            self.hold_without_agents(now, &queue);
        }
        if !self.media.as_ref().is_some_and(|m| m.is_playing()) {
            let music = self.localized("hold-music");
            self.play(vec![music], false);
        }
    }

    /// Holds the queued caller for `queue_max_wait` (no agent will come).
    pub(super) fn hold_without_agents(&mut self, now: Instant, queue: &str) {
        self.flow.queue = Some(QueueWait {
            queue: queue.to_owned(),
            since: now,
            deadline: now + self.cfg.queue_max_wait,
        });
    }

    /// Stops whatever prompt plays; the log says it was cut short, however
    /// the interruption came about (a key by RTP or INFO, a queue event).
    pub(super) fn stop_prompts(&mut self) {
        if let Some(media) = self.media.as_mut() {
            media.stop_playback();
        }
        self.log_prompts_finished(true);
    }

    /// Logs the end of the current playback; false when nothing was playing.
    fn log_prompts_finished(&mut self, interrupted: bool) -> bool {
        if self.flow.playing.is_empty() {
            return false;
        }
        let prompts = std::mem::take(&mut self.flow.playing);
        self.emit_here(EventData::PromptFinished {
            prompt: prompts.last().cloned(),
            prompts,
            interrupted,
        });
        true
    }

    /// Stops what plays and plays `prompts` instead.
    pub(super) fn play_prompts(&mut self, prompts: Vec<String>, barge_in: bool) -> bool {
        self.stop_prompts();
        self.play(prompts, barge_in)
    }

    /// Hangs up with `cause` when the prompts now playing end.
    pub(super) fn set_closing(&mut self, cause: &str) {
        self.flow.closing = Some(cause.to_owned());
    }

    /// The queue overflowed to voicemail: beep, record, thank, hang up.
    pub(super) fn overflow_voicemail(&mut self) {
        self.flow.stage = Stage::Done;
        let beep = self.localized("beep");
        if self.play(vec![beep], false) {
            self.flow.voicemail = Voicemail::Beeping {
                max_secs: OVERFLOW_VOICEMAIL_SECS,
            };
        } else {
            self.start_capture(OVERFLOW_VOICEMAIL_SECS);
        }
    }

    /// Blind transfer: REFER the caller's side to `target`, then leave.
    fn transfer(&mut self, target: String, method: TransferMethod) {
        self.flow.stage = Stage::Done;
        match method {
            // A new INVITE bridged by the gateway needs an outgoing leg,
            // which arrives with the agents' media bridge.
            TransferMethod::Invite => {
                let error = "transfer by INVITE is not available yet; use method: refer";
                tracing::warn!(%target, %error, "transfer failed");
                self.transfer_failed(&target, error);
                self.hang_up("transfer_failed");
            }
            TransferMethod::Refer => {
                self.sip(SipCommand::Refer {
                    target: target.clone(),
                });
                self.flow.transfer = Some(Transfer::Sent { target });
            }
        }
    }

    /// The REFER went out (or could not).
    pub(super) fn on_refer_result(
        &mut self,
        now: Instant,
        _wall: DateTime<Utc>,
        r: Result<(), String>,
    ) {
        let Some(Transfer::Sent { target }) = self.flow.transfer.take() else {
            return;
        };
        match r {
            Ok(()) => {
                tracing::info!(%target, "REFER sent");
                self.flow.transfer = Some(Transfer::Accepted {
                    target,
                    deadline: now + TRANSFER_WAIT,
                });
            }
            Err(error) => {
                tracing::warn!(%target, %error, "transfer failed");
                self.transfer_failed(&target, &error);
                self.hang_up("transfer_failed");
            }
        }
    }

    /// A REFER was accepted (`None`) or a NOTIFY reported the new call's status.
    pub(super) fn on_transfer(&mut self, code: Option<u16>) {
        let Some(Transfer::Accepted { target, .. }) = self.flow.transfer.clone() else {
            return;
        };
        match code {
            None => self.emit(EventData::TransferAccepted { target }, None),
            Some(code) if code < 200 => {}
            Some(code) if code < 300 => {
                self.flow.transfer = None;
                self.emit(EventData::TransferCompleted { target, code }, None);
                self.hang_up("transferred");
            }
            Some(code) => self.on_transfer_failed(code),
        }
    }

    pub(super) fn on_transfer_failed(&mut self, code: u16) {
        let Some(Transfer::Accepted { target, .. }) = self.flow.transfer.take() else {
            return;
        };
        self.transfer_failed(&target, &format!("SIP {code}"));
        self.hang_up("transfer_failed");
    }

    fn transfer_failed(&mut self, target: &str, error: &str) {
        self.emit(
            EventData::TransferFailed {
                target: target.to_owned(),
                error: error.to_owned(),
            },
            None,
        );
        self.emit(EventData::outcome("failed"), None);
    }

    /// Asks the shell for the voicemail file; capture starts when it comes.
    fn start_capture(&mut self, max_secs: u32) {
        self.flow.voicemails += 1;
        let path: PathBuf = self
            .cfg
            .voicemail_dir
            .join(format!("{}-{}.wav", self.cfg.call_id, self.flow.voicemails));
        self.flow.voicemail = Voicemail::Opening {
            max_secs,
            path: path.clone(),
        };
        self.push(CallOutput::CreateRecorder {
            kind: RecorderFor::Voicemail,
            path,
        });
    }

    pub(super) fn on_voicemail_recorder(
        &mut self,
        now: Instant,
        wall: DateTime<Utc>,
        result: Result<CallRecorder, String>,
    ) {
        if !self.is_talking() || self.ending.is_some() {
            return;
        }
        let Voicemail::Opening { max_secs, path } = std::mem::take(&mut self.flow.voicemail) else {
            return;
        };
        match (result, self.media.as_mut()) {
            (Ok(rec), Some(media)) => {
                if let Some(Err(e)) = media.start_capture(rec) {
                    tracing::warn!(error = %e, "earlier voicemail failed to close");
                }
                let deadline = now + Duration::from_secs(u64::from(max_secs));
                self.emit_here(EventData::VoicemailStarted {
                    path: path.display().to_string(),
                    max_secs,
                });
                self.flow.voicemail = Voicemail::Recording { deadline, path };
            }
            (result, _) => {
                if let Err(e) = result {
                    tracing::error!(error = %e, "cannot record voicemail");
                }
                let event = Event::RecordingFinished {
                    duration_ms: 0,
                    path: None,
                };
                self.step(now, wall, event);
            }
        }
    }

    /// Closes the voicemail and tells the flow (or, after a queue
    /// overflow, thanks the caller and hangs up).
    fn finish_voicemail(&mut self, now: Instant, wall: DateTime<Utc>) {
        let Some(event) = self.close_voicemail() else {
            return;
        };
        if self.flow.stage != Stage::Running {
            // A queue's overflow, not the flow's own voicemail node.
            self.emit(EventData::outcome("voicemail"), None);
            let thanks = self.localized("thank-you");
            if self.play(vec![thanks], false) {
                self.set_closing("voicemail");
            } else {
                self.hang_up("voicemail");
            }
            return;
        }
        self.step(now, wall, event);
    }

    /// Stops the capture and records it; the event to tell the flow.
    pub(super) fn close_voicemail(&mut self) -> Option<Event> {
        let Voicemail::Recording { path, .. } = std::mem::take(&mut self.flow.voicemail) else {
            return None;
        };
        let (duration_ms, path) = match self.media.as_mut().and_then(|m| m.stop_capture()) {
            Some(Ok(info)) => {
                self.emit_here(EventData::Voicemail {
                    path: info.path.display().to_string(),
                    duration_ms: info.duration_ms,
                    bytes: info.bytes,
                });
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
    pub(super) fn end_flow(&mut self, now: Instant, wall: DateTime<Utc>) {
        let mut events = Vec::with_capacity(2);
        if let Some(ev) = self.close_voicemail() {
            events.push(ev);
        }
        events.push(Event::Hangup);
        for event in events {
            for action in self.interp.handle(now, wall, event) {
                match action {
                    Action::Record { kind, node, data } => {
                        self.emit(flow_record(kind, data), node.as_deref())
                    }
                    Action::SecureInput { active: false } => {
                        self.resume_recording(now, PauseReason::SecureGather)
                    }
                    _ => {}
                }
            }
        }
        self.flow.stage = Stage::Done;
    }

    /// Hangs up from our side.
    pub(super) fn hang_up(&mut self, cause: &str) {
        self.flow.stage = Stage::Done;
        if let Some(media) = self.media.as_mut() {
            media.stop_playback();
        }
        self.sip(SipCommand::Hangup);
        self.end(Ending::new(EndedBy::Gateway, cause));
    }
}
