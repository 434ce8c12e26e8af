//! The call core driven with a fake clock: no socket, no task, no sleep.
//! Each test plays what the end-to-end tests play against the real
//! gateway (a flow with digits, voicemail, transfer, queues and agents,
//! hang-ups, the callback leg) and checks the events and commands that
//! come out, in order.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hotline_call::{
    CallCore, CallInput, CallOutput, CoreConfig, EndedBy, EventData, RecorderFor, SipCommand,
    desk_input_name,
};
use hotline_desk::{DeskNotice, DialRequest};
use hotline_media::{CallRecorder, PromptCache};
use hotline_routing::Overflow;
use hotline_sip::{
    CallKey, Codec, Direction, EndReason, IncomingCall, Party, Peer, RemoteMedia, SipEvent,
    Transport,
};
use uuid::Uuid;

const FLOW: &str = r#"
flow: core-test
languages: [en]
language: en
start: menu
nodes:
  menu:
    type: menu
    prompt: menu
    timeout: 5s
    retries: 0
    options:
      1: bye
      2: vm
      3: transfer
      4: agent
      5: missing
      6: card
      7: rate
    on_exhausted: bye
  card:
    type: gather
    prompt: menu
    into: card
    min_digits: 4
    max_digits: 4
    first_digit_timeout: 5s
    retries: 0
    secure: true
    next: card-check
    on_exhausted: bye
  card-check:
    type: branch
    cases:
      - if: card == "4242"
        then: agent
    else: bye
  bye:
    type: hangup
    prompt: goodbye
    outcome: self_served
  vm:
    type: voicemail
    max_seconds: 10
    beep: true
    next: bye
  transfer:
    type: transfer
    to: sip:office@pbx.example
    method: refer
  agent:
    type: enqueue
    queue: support
  rate:
    type: survey
    next: bye
  missing:
    type: play
    prompt: no-such-prompt
    next: bye
"#;

/// Every prompt the tests play: 100 ms of a quiet tone (5 frames).
const PROMPTS: &[&str] = &[
    "menu",
    "goodbye",
    "beep",
    "hold-music",
    "no-agents",
    "thank-you",
    "queue-position-before",
    "queue-position-after",
    "numbers/2",
    "agent-lost",
    "connecting-agent",
    "callback-confirmed",
    "survey-rate",
    "sorry-invalid",
    "survey-comment",
    "survey-thanks",
];

/// A PCM16 8 kHz mono WAV of `samples` samples.
fn write_wav(path: &Path, samples: usize) {
    let data_len = (samples * 2) as u32;
    let mut b = Vec::with_capacity(44 + samples * 2);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&8000u32.to_le_bytes());
    b.extend_from_slice(&16000u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let v = if i % 16 < 8 { 1000i16 } else { -1000 };
        b.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("prompt dir");
    std::fs::write(path, b).expect("prompt written");
}

fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hotline-core-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for p in PROMPTS {
        write_wav(&dir.join(format!("sounds/en/{p}.wav")), 800);
    }
    std::fs::create_dir_all(dir.join("rec")).expect("recordings dir");
    std::fs::create_dir_all(dir.join("vm")).expect("voicemail dir");
    dir
}

fn config(dir: &Path, has_desk: bool) -> CoreConfig {
    CoreConfig {
        call_id: Uuid::new_v4(),
        node: "test-node".into(),
        rtp_timeout: Duration::from_secs(3600),
        answer_delay: Duration::ZERO,
        queue_max_wait: Duration::from_secs(5),
        forced_hours: None,
        dial_check: None,
        recordings_dir: dir.join("rec"),
        voicemail_dir: dir.join("vm"),
        has_desk,
        prompts: Arc::new(PromptCache::new(dir.join("sounds"))),
    }
}

fn flow() -> Arc<hotline_ivr::Flow> {
    let flow = hotline_ivr::load_str(
        Path::new("core-test.yaml"),
        FLOW,
        &hotline_ivr::LoadOptions::default(),
    )
    .expect("the test flow loads");
    Arc::new(flow)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("an address")
}

fn remote() -> RemoteMedia {
    RemoteMedia {
        rtp_addr: addr("192.0.2.10:40000"),
        codec: Codec::Pcmu,
        payload_type: 0,
        dtmf_payload_type: Some(101),
        direction: Direction::SendRecv,
        srtp: None,
    }
}

fn key() -> CallKey {
    CallKey::from("core-test-call")
}

/// A core and everything it asked for, on a fake clock.
struct Call {
    core: CallCore,
    now: Instant,
    wall: DateTime<Utc>,
    events: Vec<(EventData, Option<String>)>,
    sip: Vec<SipCommand>,
    desk: Vec<&'static str>,
    enqueued: Vec<String>,
    /// What each enqueue showed the agent (`CallInfo::data`), as JSON text.
    enqueued_data: Vec<String>,
    legs_closed: Vec<Option<String>>,
    done: bool,
    /// What the SIP layer answers to the 200 OK and the REFER.
    answer: Result<(), String>,
    refer: Result<(), String>,
    frame: Vec<u8>,
    _dir: PathBuf,
}

impl Call {
    fn build(dir: PathBuf, make: impl FnOnce(&Path) -> CallCore) -> Self {
        let core = make(&dir);
        let mut call = Self {
            core,
            now: Instant::now(),
            wall: Utc::now(),
            events: Vec::new(),
            sip: Vec::new(),
            desk: Vec::new(),
            enqueued: Vec::new(),
            enqueued_data: Vec::new(),
            legs_closed: Vec::new(),
            done: false,
            answer: Ok(()),
            refer: Ok(()),
            frame: Vec::with_capacity(256),
            _dir: dir,
        };
        call.pump();
        call
    }

    /// An inbound call, answered (the ACK not yet in).
    fn inbound(name: &str, has_desk: bool) -> Self {
        Self::inbound_with(name, has_desk, |_| {})
    }

    fn inbound_with(name: &str, has_desk: bool, tweak: impl FnOnce(&mut CoreConfig)) -> Self {
        Self::build(test_dir(name), |dir| {
            let mut cfg = config(dir, has_desk);
            tweak(&mut cfg);
            let incoming = IncomingCall {
                call: key(),
                caller: Party {
                    user: "+8613800000000".into(),
                    display_name: Some("Li Lei".into()),
                },
                callee: "4000".into(),
                offer: remote(),
                peer: Peer {
                    transport: Transport::Udp,
                    addr: addr("192.0.2.1:5060"),
                    conn: 0,
                },
            };
            CallCore::inbound(cfg, &incoming, flow())
        })
    }

    /// An inbound call whose ACK came: the flow runs.
    fn confirmed(name: &str, has_desk: bool) -> Self {
        let mut call = Self::inbound(name, has_desk);
        call.sip_event(SipEvent::Confirmed { call: key() });
        call
    }

    fn input(&mut self, input: CallInput<'_>) {
        self.core.handle(self.now, self.wall, input);
        self.pump();
        if let Err(e) = self.core.check_invariants() {
            panic!("{e}; events {:?}", self.kinds());
        }
    }

    fn sip_event(&mut self, ev: SipEvent) {
        self.input(CallInput::Sip(ev));
    }

    fn digit(&mut self, d: char) {
        self.sip_event(SipEvent::Digit {
            call: key(),
            digit: d,
            duration_ms: Some(100),
        });
    }

    fn notice(&mut self, n: DeskNotice) {
        self.input(CallInput::Desk(n));
    }

    fn caller_hangs_up(&mut self) {
        self.sip_event(SipEvent::Ended {
            call: key(),
            reason: EndReason::RemoteBye,
        });
    }

    /// Carries out the outputs as a shell would (recorders are real files).
    fn pump(&mut self) {
        while let Some(out) = self.core.poll_output() {
            assert!(!self.done, "output after Done: {out:?}");
            match out {
                CallOutput::Emit(data, node) => self.events.push((data, node)),
                CallOutput::BindRtp { .. } => {
                    let bound = CallInput::RtpBound(Ok(addr("192.0.2.2:20000")));
                    self.core.handle(self.now, self.wall, bound);
                }
                CallOutput::Sip(cmd) => {
                    let result = match &cmd {
                        SipCommand::Answer { .. } => {
                            Some(CallInput::AnswerResult(self.answer.clone()))
                        }
                        SipCommand::Refer { .. } => {
                            Some(CallInput::ReferResult(self.refer.clone()))
                        }
                        SipCommand::Originate(_) => Some(CallInput::OriginateResult(Ok(()))),
                        _ => None,
                    };
                    self.sip.push(cmd);
                    if let Some(result) = result {
                        self.core.handle(self.now, self.wall, result);
                    }
                }
                CallOutput::CreateRecorder { kind, path } => {
                    let result = match kind {
                        RecorderFor::Call => CallRecorder::create(&path),
                        RecorderFor::Voicemail => CallRecorder::create_mono(&path),
                    }
                    .map_err(|e| e.to_string());
                    let input = CallInput::RecorderCreated { kind, result };
                    self.core.handle(self.now, self.wall, input);
                }
                CallOutput::Lookup { .. } => {}
                CallOutput::Enqueue(info) => {
                    self.enqueued_data.push(info.data.to_string());
                    self.enqueued.push(info.queue);
                }
                CallOutput::Desk(input) => self.desk.push(desk_input_name(&input)),
                CallOutput::CloseAgentLeg { hub_session } => self.legs_closed.push(hub_session),
                CallOutput::Monitor(_) => {}
                CallOutput::ReleaseRtp => {}
                CallOutput::Done => self.done = true,
            }
        }
    }

    /// Lets `d` pass: a media frame every 20 ms, timers when due.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end && !self.done {
            self.now += Duration::from_millis(20);
            self.wall += chrono::Duration::milliseconds(20);
            if self.core.is_talking() {
                self.frame.clear();
                self.core.media_frame(self.now, self.wall, &mut self.frame);
                self.pump();
            }
            if self.core.poll_timeout().is_some_and(|t| t <= self.now) {
                self.input(CallInput::Timeout);
            }
        }
    }

    fn kinds(&self) -> Vec<&str> {
        self.events.iter().map(|(e, _)| e.kind()).collect()
    }

    /// Kinds from the `n`th-last event on.
    fn last_kinds(&self, n: usize) -> Vec<&str> {
        let k = self.kinds();
        k[k.len().saturating_sub(n)..].to_vec()
    }

    fn prompts_started(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|(e, _)| match e {
                EventData::PromptStarted { prompt } => Some(prompt.as_str()),
                _ => None,
            })
            .collect()
    }

    fn hangup(&self) -> (EndedBy, &str) {
        self.events
            .iter()
            .find_map(|(e, _)| match e {
                EventData::Hangup {
                    ended_by, cause, ..
                } => Some((*ended_by, cause.as_str())),
                _ => None,
            })
            .expect("a hangup event")
    }

    fn outcomes(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|(e, _)| match e {
                EventData::Outcome { outcome, .. } => Some(outcome.as_str()),
                _ => None,
            })
            .collect()
    }

    fn hangups_sent(&self) -> usize {
        self.sip
            .iter()
            .filter(|c| matches!(c, SipCommand::Hangup))
            .count()
    }

    fn count(&self, kind: &str) -> usize {
        self.kinds().iter().filter(|k| **k == kind).count()
    }

    /// The record is closed properly: one hangup, `call_ended` last, Done.
    fn assert_closed(&self) {
        assert!(self.done, "{:?}", self.kinds());
        assert_eq!(self.count("hangup"), 1, "{:?}", self.kinds());
        assert_eq!(self.kinds().last(), Some(&"call_ended"));
        assert!(self.core.is_over());
    }
}

/// `want` appears in `have` in this order (other events may come between).
fn assert_in_order(have: &[&str], want: &[&str]) {
    let mut it = have.iter();
    for w in want {
        assert!(
            it.any(|h| h == w),
            "{w} missing or out of order in {have:?}"
        );
    }
}

#[test]
fn a_flow_run_with_a_digit_records_its_path_in_order() {
    let mut c = Call::inbound("digits", false);
    assert_eq!(c.kinds(), ["call_started", "answered"]);
    assert!(matches!(c.sip[..], [SipCommand::Answer { .. }]));
    // Nothing plays before the ACK.
    c.advance(Duration::from_secs(1));
    assert_eq!(c.kinds(), ["call_started", "answered"]);

    c.sip_event(SipEvent::Confirmed { call: key() });
    assert_eq!(c.prompts_started(), ["en/menu"]);
    c.advance(Duration::from_millis(200));
    c.digit('1');
    c.advance(Duration::from_millis(300));
    assert_eq!(c.prompts_started(), ["en/menu", "en/goodbye"]);
    assert_eq!(
        c.kinds(),
        [
            "call_started",
            "answered",
            "flow_started",
            "node_entered",
            "prompt_started",
            "prompt_finished",
            "digit",
            "input",
            "node_entered",
            "outcome",
            "prompt_started",
            "prompt_finished",
            "hangup",
            "recording",
            "call_ended",
        ]
    );
    assert_eq!(c.hangup(), (EndedBy::Gateway, "flow_ended"));
    assert_eq!(c.outcomes(), ["self_served"]);
    assert_eq!(c.hangups_sent(), 1);
    c.assert_closed();
    // The digit is recorded at the node it was pressed in.
    let digit_node = c
        .events
        .iter()
        .find(|(e, _)| e.kind() == "digit")
        .and_then(|(_, n)| n.clone());
    assert_eq!(digit_node.as_deref(), Some("menu"));
}

#[test]
fn a_missing_prompt_is_recorded_and_skipped() {
    let mut c = Call::confirmed("missing", false);
    c.digit('5');
    assert!(c.kinds().contains(&"prompt_missing"), "{:?}", c.kinds());
    c.advance(Duration::from_millis(500));
    assert_eq!(c.prompts_started(), ["en/menu", "en/goodbye"]);
    assert_eq!(c.hangup(), (EndedBy::Gateway, "flow_ended"));
    c.assert_closed();
}

#[test]
fn voicemail_beeps_then_records_until_hash() {
    let mut c = Call::confirmed("vm-hash", false);
    c.digit('2');
    assert_eq!(c.prompts_started().last(), Some(&"en/beep"));
    assert_eq!(c.count("voicemail_started"), 0, "not before the beep ends");
    c.advance(Duration::from_millis(200));
    assert_eq!(c.count("voicemail_started"), 1, "{:?}", c.kinds());
    c.advance(Duration::from_secs(2));
    c.digit('#');
    assert_in_order(
        &c.kinds(),
        &["prompt_finished", "voicemail_started", "digit", "voicemail"],
    );
    let path = c
        .events
        .iter()
        .find_map(|(e, _)| match e {
            EventData::Voicemail {
                path, duration_ms, ..
            } => Some((path.clone(), *duration_ms)),
            _ => None,
        })
        .expect("a voicemail event");
    assert!(Path::new(&path.0).is_file(), "{path:?}");
    assert!(path.1 >= 1900, "{path:?}");
    c.advance(Duration::from_millis(300));
    assert_eq!(c.hangup(), (EndedBy::Gateway, "flow_ended"));
    c.assert_closed();
}

#[test]
fn voicemail_stops_at_its_max_length() {
    let mut c = Call::confirmed("vm-max", false);
    c.digit('2');
    c.advance(Duration::from_secs(9));
    assert_eq!(c.count("voicemail"), 0);
    c.advance(Duration::from_secs(2));
    assert_eq!(c.count("voicemail"), 1, "{:?}", c.kinds());
    c.advance(Duration::from_millis(300));
    c.assert_closed();
}

#[test]
fn a_transfer_accepted_then_completed_hangs_up_as_transferred() {
    let mut c = Call::confirmed("xfer-ok", false);
    c.digit('3');
    assert!(
        matches!(c.sip.last(), Some(SipCommand::Refer { target }) if target == "sip:office@pbx.example")
    );
    c.sip_event(SipEvent::TransferAccepted { call: key() });
    c.sip_event(SipEvent::TransferProgress {
        call: key(),
        code: 100,
    });
    assert_eq!(c.hangups_sent(), 0);
    c.sip_event(SipEvent::TransferProgress {
        call: key(),
        code: 200,
    });
    assert_in_order(
        &c.kinds(),
        &["transfer_accepted", "transfer_completed", "hangup"],
    );
    assert_eq!(c.hangup(), (EndedBy::Gateway, "transferred"));
    assert_eq!(c.hangups_sent(), 1);
    c.assert_closed();
}

#[test]
fn a_failed_transfer_is_recorded_and_hangs_up() {
    let mut c = Call::confirmed("xfer-fail", false);
    c.digit('3');
    c.sip_event(SipEvent::TransferAccepted { call: key() });
    c.sip_event(SipEvent::TransferFailed {
        call: key(),
        code: 486,
    });
    let failed = c.events.iter().find_map(|(e, _)| match e {
        EventData::TransferFailed { error, .. } => Some(error.clone()),
        _ => None,
    });
    assert_eq!(failed.as_deref(), Some("SIP 486"));
    assert_eq!(c.outcomes(), ["failed"]);
    assert_eq!(c.hangup(), (EndedBy::Gateway, "transfer_failed"));
    c.assert_closed();
}

#[test]
fn a_refer_the_dialog_refuses_fails_the_transfer() {
    let mut c = Call::inbound("xfer-refused", false);
    c.refer = Err("no dialog".into());
    c.sip_event(SipEvent::Confirmed { call: key() });
    c.digit('3');
    assert_in_order(
        &c.kinds(),
        &["transfer_failed", "outcome", "hangup", "call_ended"],
    );
    assert_eq!(c.hangup(), (EndedBy::Gateway, "transfer_failed"));
    c.assert_closed();
}

#[test]
fn a_transfer_without_notify_leaves_after_the_wait() {
    let mut c = Call::confirmed("xfer-silent", false);
    c.digit('3');
    c.sip_event(SipEvent::TransferAccepted { call: key() });
    c.advance(Duration::from_secs(29));
    assert!(!c.done);
    c.advance(Duration::from_secs(2));
    assert_eq!(c.hangup(), (EndedBy::Gateway, "transferred"));
    c.assert_closed();
}

#[test]
fn enqueue_without_a_desk_holds_until_max_wait_then_apologises() {
    let mut c = Call::confirmed("no-desk", false);
    c.digit('4');
    assert!(c.enqueued.is_empty());
    c.advance(Duration::from_secs(4));
    let music = c
        .prompts_started()
        .iter()
        .filter(|p| **p == "en/hold-music")
        .count();
    assert!(music >= 10, "the music loops: {music}");
    assert_eq!(c.count("queue_timeout"), 0);
    c.advance(Duration::from_millis(1100));
    assert_eq!(c.count("queue_timeout"), 1, "{:?}", c.kinds());
    assert_eq!(c.prompts_started().last(), Some(&"en/no-agents"));
    c.advance(Duration::from_millis(300));
    assert_eq!(c.hangup(), (EndedBy::Gateway, "queue_timeout"));
    c.assert_closed();
}

/// A call queued at the desk, hold music playing.
fn queued(name: &str) -> Call {
    let mut c = Call::confirmed(name, true);
    c.digit('4');
    assert_eq!(c.enqueued, ["support"]);
    assert_eq!(c.prompts_started().last(), Some(&"en/hold-music"));
    c
}

#[test]
fn position_prompts_play_only_while_no_offer_is_out() {
    let mut c = queued("position");
    c.notice(DeskNotice::Position {
        position: 2,
        estimated_wait: Some(Duration::from_secs(60)),
    });
    assert_eq!(
        c.prompts_started()[c.prompts_started().len() - 3..],
        [
            "en/queue-position-before",
            "en/numbers/2",
            "en/queue-position-after"
        ]
    );
    let before = c.prompts_started().len();
    c.notice(DeskNotice::Offered { agent: "a1".into() });
    c.notice(DeskNotice::Position {
        position: 1,
        estimated_wait: None,
    });
    assert_eq!(
        c.prompts_started().len(),
        before,
        "not while an agent rings"
    );
    assert_eq!(c.count("queue_position"), 2);
    c.notice(DeskNotice::OfferEnded {
        agent: "a1".into(),
        outcome: "declined",
    });
    c.notice(DeskNotice::Position {
        position: 2,
        estimated_wait: None,
    });
    assert!(c.prompts_started().len() > before);
}

#[test]
fn an_agent_answers_bridges_hangs_up_and_wraps_up() {
    let mut c = queued("agent");
    c.notice(DeskNotice::Offered { agent: "a1".into() });
    c.notice(DeskNotice::Accepted { agent: "a1".into() });
    let last = c.events.last().map(|(e, _)| e.kind());
    assert_eq!(last, Some("prompt_finished"), "the music stops");
    let started = c.prompts_started().len();
    c.input(CallInput::AgentLeg { agent: "a1".into() });
    assert!(c.core.agent_bridged() && c.core.caller_to_agent());
    c.input(CallInput::AgentLegEvent(
        hotline_webphone::AgentEvent::Connected {
            after: Duration::from_millis(300),
        },
    ));
    assert_eq!(c.desk, ["LegConnected"]);
    c.input(CallInput::AgentAudio(&[0xff; 160]));
    c.advance(Duration::from_secs(2));
    assert_eq!(
        c.prompts_started().len(),
        started,
        "no prompt over the agent"
    );
    c.notice(DeskNotice::AgentHungUp {
        agent: "a1".into(),
        survey: None,
    });
    assert_eq!(c.hangup(), (EndedBy::Agent, "agent_hangup"));
    assert_eq!(c.hangups_sent(), 1);
    assert_eq!(c.desk, ["LegConnected", "CallEnded"]);
    assert_eq!(c.legs_closed.len(), 1);
    // The record waits for the agent's wrap-up.
    assert_eq!(c.count("call_ended"), 0);
    c.advance(Duration::from_secs(30));
    assert!(!c.done);
    c.notice(DeskNotice::WrapUpDone {
        agent: "a1".into(),
        disposition: Some("solved".into()),
        notes: "ok".into(),
        seconds: 30,
    });
    assert_eq!(c.last_kinds(2), ["wrap_up", "call_ended"]);
    assert_in_order(
        &c.kinds(),
        &[
            "agent_offered",
            "agent_answered",
            "agent_connected",
            "hangup",
            "recording",
            "wrap_up",
            "call_ended",
        ],
    );
    c.assert_closed();
}

#[test]
fn the_wrap_up_wait_ends_after_600_seconds() {
    let mut c = queued("wrap-timeout");
    c.notice(DeskNotice::Accepted { agent: "a1".into() });
    c.input(CallInput::AgentLeg { agent: "a1".into() });
    c.caller_hangs_up();
    assert_eq!(c.hangup(), (EndedBy::Caller, "BYE"));
    c.advance(Duration::from_secs(599));
    assert_eq!(c.count("call_ended"), 0);
    c.advance(Duration::from_secs(2));
    let seconds = c.events.iter().find_map(|(e, _)| match e {
        EventData::WrapUp {
            seconds,
            disposition,
            ..
        } => Some((*seconds, disposition.clone())),
        _ => None,
    });
    assert_eq!(seconds, Some((600, None)));
    c.assert_closed();
}

#[test]
fn an_agent_lost_with_requeue_plays_and_keeps_waiting() {
    let mut c = queued("lost-requeued");
    c.notice(DeskNotice::Accepted { agent: "a1".into() });
    c.input(CallInput::AgentLeg { agent: "a1".into() });
    c.notice(DeskNotice::AgentLost {
        agent: "a1".into(),
        requeued: true,
    });
    assert_eq!(c.legs_closed.len(), 1);
    assert!(c.legs_closed[0].is_some(), "closed in the hub too");
    assert!(!c.core.agent_bridged());
    let p = c.prompts_started();
    assert_eq!(p[p.len() - 2..], ["en/agent-lost", "en/connecting-agent"]);
    c.advance(Duration::from_secs(1));
    assert_eq!(c.prompts_started().last(), Some(&"en/hold-music"));
    assert!(!c.done);
}

#[test]
fn an_agent_lost_without_requeue_says_goodbye() {
    let mut c = queued("lost-released");
    c.notice(DeskNotice::Accepted { agent: "a1".into() });
    c.notice(DeskNotice::AgentLost {
        agent: "a1".into(),
        requeued: false,
    });
    c.advance(Duration::from_secs(1));
    assert_eq!(c.hangup(), (EndedBy::Gateway, "agent_lost"));
    assert!(c.done, "no wrap-up without an agent");
    c.assert_closed();
}

#[test]
fn overflow_to_voicemail_records_and_the_caller_ends_it() {
    let mut c = queued("overflow-vm");
    c.notice(DeskNotice::Overflow {
        target: Overflow::Voicemail,
    });
    c.advance(Duration::from_secs(2));
    assert_eq!(c.count("voicemail_started"), 1, "{:?}", c.kinds());
    c.caller_hangs_up();
    assert_in_order(
        &c.kinds(),
        &[
            "queue_overflow",
            "voicemail_started",
            "voicemail",
            "outcome",
            "hangup",
            "call_ended",
        ],
    );
    assert_eq!(c.outcomes(), ["voicemail"]);
    assert_eq!(c.hangup(), (EndedBy::Caller, "BYE"));
    c.assert_closed();
}

#[test]
fn overflow_to_callback_books_it_and_hangs_up() {
    let mut c = queued("overflow-cb");
    c.notice(DeskNotice::Overflow {
        target: Overflow::Callback,
    });
    assert_in_order(
        &c.kinds(),
        &["queue_overflow", "callback_requested", "outcome"],
    );
    assert_eq!(c.prompts_started().last(), Some(&"en/callback-confirmed"));
    c.advance(Duration::from_millis(300));
    assert_eq!(c.hangup(), (EndedBy::Gateway, "queue_overflow"));
    assert_eq!(c.desk, ["CallEnded"]);
    c.assert_closed();
}

#[test]
fn overflow_to_hangup_apologises() {
    let mut c = queued("overflow-hangup");
    c.notice(DeskNotice::Overflow {
        target: Overflow::Hangup,
    });
    assert_eq!(c.prompts_started().last(), Some(&"en/no-agents"));
    c.advance(Duration::from_millis(300));
    assert_eq!(c.hangup(), (EndedBy::Gateway, "queue_overflow"));
    c.assert_closed();
}

#[test]
fn hold_plays_music_and_unhold_stops_it() {
    let mut c = queued("hold");
    c.notice(DeskNotice::Accepted { agent: "a1".into() });
    c.input(CallInput::AgentLeg { agent: "a1".into() });
    c.notice(DeskNotice::Hold { on: true });
    assert!(!c.core.caller_to_agent(), "the agent hears nothing on hold");
    assert_eq!(c.prompts_started().last(), Some(&"en/hold-music"));
    let n = c.prompts_started().len();
    c.advance(Duration::from_secs(1));
    assert!(c.prompts_started().len() > n, "the music loops");
    c.notice(DeskNotice::Hold { on: false });
    assert!(c.core.caller_to_agent());
    let n = c.prompts_started().len();
    c.advance(Duration::from_secs(1));
    assert_eq!(c.prompts_started().len(), n, "no music after unhold");
    c.notice(DeskNotice::Mute { on: true });
    assert_in_order(&c.kinds(), &["agent_hold", "agent_hold", "agent_mute"]);
}

/// The record writer derives `abandoned_in_ivr` (docs/call-events.md)
/// from what the core records: a caller's BYE in the menu, no outcome of
/// the flow's, and the flow told of the hang-up before `hangup`.
#[test]
fn a_caller_hanging_up_in_the_ivr_leaves_an_abandoned_record() {
    let mut c = Call::confirmed("abandoned", false);
    c.advance(Duration::from_millis(60));
    c.caller_hangs_up();
    assert_eq!(
        c.kinds(),
        [
            "call_started",
            "answered",
            "flow_started",
            "node_entered",
            "prompt_started",
            "hangup",
            "recording",
            "call_ended"
        ]
    );
    assert!(c.outcomes().is_empty());
    assert_eq!(c.hangup(), (EndedBy::Caller, "BYE"));
    assert_eq!(c.hangups_sent(), 0, "no BYE of ours");
    c.assert_closed();
}

#[test]
fn rtp_silence_ends_the_call_as_a_timeout() {
    let mut c = Call::inbound_with("rtp-timeout", false, |cfg| {
        cfg.rtp_timeout = Duration::from_secs(2);
    });
    c.sip_event(SipEvent::Confirmed { call: key() });
    c.advance(Duration::from_secs(4));
    assert_eq!(c.hangup(), (EndedBy::Timeout, "rtp_timeout"));
    assert_eq!(c.hangups_sent(), 1);
    c.assert_closed();
}

#[test]
fn shutdown_hangs_up_every_call() {
    let mut c = Call::confirmed("shutdown", false);
    c.input(CallInput::Shutdown);
    assert_eq!(c.hangup(), (EndedBy::Gateway, "shutdown"));
    assert_eq!(c.hangups_sent(), 1);
    c.assert_closed();
}

#[test]
fn a_call_that_cannot_be_answered_ends_as_its_dialog_did() {
    let dir = test_dir("answer-failed");
    let mut c = Call::build(dir, |dir| {
        let incoming = IncomingCall {
            call: key(),
            caller: Party {
                user: "alice".into(),
                display_name: None,
            },
            callee: "4000".into(),
            offer: remote(),
            peer: Peer {
                transport: Transport::Udp,
                addr: addr("192.0.2.1:5060"),
                conn: 0,
            },
        };
        // Answered after a ring of 1 s.
        let mut cfg = config(dir, false);
        cfg.answer_delay = Duration::from_secs(1);
        CallCore::inbound(cfg, &incoming, flow())
    });
    assert!(matches!(c.sip[..], [SipCommand::Ring]));
    c.answer = Err("cancelled".into());
    c.advance(Duration::from_millis(1100));
    assert!(matches!(
        c.sip[..],
        [SipCommand::Ring, SipCommand::Answer { .. }]
    ));
    assert!(!c.done);
    c.sip_event(SipEvent::Ended {
        call: key(),
        reason: EndReason::Cancelled,
    });
    assert_eq!(c.kinds(), ["call_started", "hangup", "call_ended"]);
    assert_eq!(c.hangup(), (EndedBy::Caller, "CANCEL"));
    c.assert_closed();
}

fn job() -> DialRequest {
    DialRequest {
        entry: "original-call".into(),
        number: "+8613800000000".into(),
        via: addr("192.0.2.1:5060"),
        agent: "a1".into(),
        queue: "support".into(),
        attempt: 1,
    }
}

fn callback(name: &str) -> Call {
    let c = Call::build(test_dir(name), |dir| {
        CallCore::callback(config(dir, true), key(), &job(), flow())
    });
    assert_eq!(c.kinds(), ["call_started"]);
    match &c.events[0].0 {
        EventData::CallStarted {
            direction,
            callback_of,
            attempt,
            ..
        } => {
            assert_eq!(direction.as_deref(), Some("outbound"));
            assert_eq!(callback_of.as_deref(), Some("original-call"));
            assert_eq!(*attempt, Some(1));
        }
        other => panic!("{other:?}"),
    }
    match &c.sip[..] {
        [SipCommand::Originate(o)] => assert_eq!(o.target, "sip:+8613800000000@192.0.2.1:5060"),
        other => panic!("{other:?}"),
    }
    c
}

#[test]
fn a_callback_leg_rings_is_answered_and_bridged() {
    let mut c = callback("cb-answered");
    // The agent's leg comes while the customer's phone rings.
    c.input(CallInput::AgentLeg { agent: "a1".into() });
    assert!(!c.core.agent_bridged());
    c.sip_event(SipEvent::Ringing {
        call: key(),
        code: 180,
    });
    c.sip_event(SipEvent::OutboundAnswered {
        call: key(),
        media: remote(),
    });
    assert_eq!(
        c.kinds(),
        ["call_started", "ringing", "answered", "agent_answered"]
    );
    assert_eq!(c.desk, ["CallbackAnswered"]);
    assert!(c.core.agent_bridged() && c.core.is_talking());
    c.advance(Duration::from_secs(1));
    c.caller_hangs_up();
    assert_eq!(c.hangup(), (EndedBy::Caller, "BYE"));
    assert_eq!(c.desk, ["CallbackAnswered", "CallbackEnded(answered)"]);
    c.notice(DeskNotice::WrapUpDone {
        agent: "a1".into(),
        disposition: None,
        notes: String::new(),
        seconds: 5,
    });
    assert_eq!(c.last_kinds(3), ["recording", "wrap_up", "call_ended"]);
    c.assert_closed();
}

#[test]
fn a_busy_callback_fails_the_attempt() {
    let mut c = callback("cb-busy");
    c.sip_event(SipEvent::OutboundFailed {
        call: key(),
        code: 486,
        reason: "Busy Here".into(),
    });
    assert_eq!(
        c.kinds(),
        [
            "call_started",
            "callback_failed",
            "outcome",
            "hangup",
            "call_ended"
        ]
    );
    assert_eq!(c.outcomes(), ["failed"]);
    assert_eq!(c.hangup(), (EndedBy::Caller, "callback_486"));
    assert_eq!(c.desk, ["CallbackEnded(not answered)"]);
    c.assert_closed();
}

#[test]
fn an_agent_giving_up_while_it_rings_cancels_the_callback() {
    let mut c = callback("cb-agent-gone");
    c.notice(DeskNotice::AgentHungUp {
        agent: "a1".into(),
        survey: None,
    });
    assert_eq!(c.hangups_sent(), 1);
    c.notice(DeskNotice::AgentLost {
        agent: "a1".into(),
        requeued: false,
    });
    assert_eq!(c.hangups_sent(), 1, "cancelled once");
    c.sip_event(SipEvent::OutboundFailed {
        call: key(),
        code: 487,
        reason: "Request Terminated".into(),
    });
    assert_eq!(c.hangup(), (EndedBy::Caller, "callback_487"));
    c.assert_closed();
}

/// A small deterministic generator (xorshift64*), so a failing seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random inputs in random order (digits, time, desk notices, the agent
/// leg, transfer news, shutdown) never break the core's invariants, and
/// every call still closes with exactly one `hangup` and `call_ended` last.
#[test]
fn random_inputs_keep_the_invariants_and_close_every_record() {
    let dir = test_dir("random");
    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    for seed in 1..=120u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let has_desk = seed % 3 != 0;
        let mut c = Call::build(dir.clone(), |dir| {
            let incoming = IncomingCall {
                call: key(),
                caller: Party {
                    user: "+8613800000000".into(),
                    display_name: None,
                },
                callee: "4000".into(),
                offer: remote(),
                peer: Peer {
                    transport: Transport::Udp,
                    addr: addr("192.0.2.1:5060"),
                    conn: 0,
                },
            };
            CallCore::inbound(config(dir, has_desk), &incoming, flow())
        });
        c.sip_event(SipEvent::Confirmed { call: key() });
        // Most calls go to the queue first, where most of the inputs matter.
        if seed % 3 != 2 {
            c.digit('4');
        }
        let agent = || "a1".to_string();
        for _ in 0..40 {
            if c.done {
                break;
            }
            match rng.below(20) {
                0..=3 => {
                    let d = b"123456#0"[rng.below(8) as usize] as char;
                    c.digit(d);
                }
                4..=6 => c.advance(Duration::from_millis(rng.below(1500))),
                7 => c.notice(DeskNotice::Position {
                    position: 1 + rng.below(3) as usize,
                    estimated_wait: None,
                }),
                8 => c.notice(DeskNotice::Offered { agent: agent() }),
                9 => c.notice(DeskNotice::OfferEnded {
                    agent: agent(),
                    outcome: "timeout",
                }),
                10 => c.notice(DeskNotice::Accepted { agent: agent() }),
                11 => c.input(CallInput::AgentLeg { agent: agent() }),
                12 => c.notice(DeskNotice::Hold {
                    on: rng.below(2) == 0,
                }),
                13 => c.notice(DeskNotice::AgentLost {
                    agent: agent(),
                    requeued: rng.below(2) == 0,
                }),
                14 => {
                    let target = match rng.below(4) {
                        0 => Overflow::Voicemail,
                        1 => Overflow::Callback,
                        2 => Overflow::Hangup,
                        _ => Overflow::Queue("sales".into()),
                    };
                    c.notice(DeskNotice::Overflow { target });
                }
                15 => {
                    if c.core.agent_bridged() && rng.below(2) == 0 {
                        c.input(CallInput::AgentLegEvent(
                            hotline_webphone::AgentEvent::Connected {
                                after: Duration::from_millis(200),
                            },
                        ));
                    } else {
                        c.input(CallInput::AgentAudio(&[0x7f; 160]));
                    }
                }
                16 => c.sip_event(SipEvent::TransferAccepted { call: key() }),
                17 => c.sip_event(SipEvent::TransferProgress {
                    call: key(),
                    code: [180, 200, 503][rng.below(3) as usize],
                }),
                18 => match rng.below(4) {
                    0 => c.input(CallInput::Shutdown),
                    1 => c.notice(DeskNotice::RecordingPause {
                        agent: agent(),
                        on: rng.below(3) != 0,
                    }),
                    _ => c.notice(DeskNotice::Mute { on: true }),
                },
                // Half the time the queue asks for a survey.
                _ => c.notice(DeskNotice::AgentHungUp {
                    agent: agent(),
                    survey: (rng.below(2) == 0).then(|| "support".to_owned()),
                }),
            }
            if let Err(e) = c.core.check_invariants() {
                panic!("seed {seed}: {e}; events {:?}", c.kinds());
            }
        }
        if !c.done {
            c.caller_hangs_up();
        }
        if !c.done {
            c.notice(DeskNotice::WrapUpDone {
                agent: agent(),
                disposition: None,
                notes: String::new(),
                seconds: 1,
            });
        }
        assert!(c.done, "seed {seed}: {:?}", c.kinds());
        assert_eq!(c.count("hangup"), 1, "seed {seed}: {:?}", c.kinds());
        assert_eq!(c.count("call_ended"), 1, "seed {seed}");
        assert_eq!(c.kinds().last(), Some(&"call_ended"), "seed {seed}");
        assert!(c.hangups_sent() <= 1, "seed {seed}: {:?}", c.sip);
        assert!(c.core.check_invariants().is_ok(), "seed {seed}");
        // Every pause is closed, before the hangup.
        let k = c.kinds();
        let hangup_at = k.iter().position(|k| *k == "hangup").unwrap_or(k.len());
        let open = k[..hangup_at].iter().fold(0i32, |n, k| match *k {
            "recording_paused" => n + 1,
            "recording_resumed" => n - 1,
            _ => n,
        });
        assert_eq!(open, 0, "seed {seed}: {k:?}");
        assert!(
            !k[hangup_at..].contains(&"recording_paused"),
            "seed {seed}: {k:?}"
        );
        for k in c.kinds() {
            *seen.entry(k.to_owned()).or_default() += 1;
        }
        let (_, cause) = c.hangup();
        *seen.entry(format!("cause {cause}")).or_default() += 1;
    }
    // The walk reaches the paths it is meant to shake.
    for k in [
        "agent_answered",
        "agent_connected",
        "agent_lost",
        "agent_hold",
        "queue_overflow",
        "voicemail_started",
        "wrap_up",
        "cause agent_hangup",
        "cause BYE",
        "cause flow_ended",
        "recording_paused",
        "recording_resumed",
    ] {
        assert!(seen.contains_key(k), "{k} never reached: {seen:?}");
    }
}

/// The gateway channel (right) of the call's WAV, per 20 ms frame: the
/// loudest sample of each.
fn recorded_frames(c: &Call, channel: usize) -> Vec<i16> {
    let path = c
        .events
        .iter()
        .find_map(|(e, _)| match e {
            EventData::Recording { path, .. } => Some(path.clone()),
            _ => None,
        })
        .expect("a recording event");
    let samples: Vec<i16> = hound::WavReader::open(path)
        .expect("the recording opens")
        .samples::<i16>()
        .map(|s| s.expect("a sample"))
        .collect();
    samples
        .chunks(320)
        .map(|f| {
            f.iter()
                .skip(channel)
                .step_by(2)
                .map(|v| v.abs())
                .max()
                .unwrap_or(0)
        })
        .collect()
}

fn digit_events(c: &Call) -> Vec<(String, Option<bool>)> {
    c.events
        .iter()
        .filter_map(|(e, _)| match e {
            EventData::Digit { digit, masked, .. } => Some((digit.clone(), *masked)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_secure_gather_pauses_the_recording_and_masks_its_digits() {
    let mut c = Call::confirmed("secure-gather", true);
    c.advance(Duration::from_millis(200)); // the menu prompt, recorded
    c.digit('6');
    let paused_at = c.now;
    assert_eq!(c.count("recording_paused"), 1, "{:?}", c.kinds());
    c.advance(Duration::from_millis(400)); // the card prompt plays, silenced
    for d in "4242".chars() {
        c.digit(d);
        c.advance(Duration::from_millis(100));
    }
    // The digits took the flow to the agent queue (the branch saw 4242);
    // the agent's view of the call's variables masks them.
    assert_eq!(c.enqueued, ["support"]);
    assert!(
        c.enqueued_data[0].contains(r#""card":"****""#),
        "{:?}",
        c.enqueued_data
    );
    assert!(
        !c.enqueued_data[0].contains("4242"),
        "{:?}",
        c.enqueued_data
    );
    assert_eq!(
        digit_events(&c),
        [
            ("6".into(), None),
            ("*".into(), Some(true)),
            ("*".into(), Some(true)),
            ("*".into(), Some(true)),
            ("*".into(), Some(true)),
        ]
    );
    let input = c
        .events
        .iter()
        .find_map(|(e, node)| match e {
            EventData::Input {
                input,
                into: Some(into),
                masked,
                length,
                ..
            } => Some((input.clone(), into.clone(), *masked, *length, node.clone())),
            _ => None,
        })
        .expect("the gather's input");
    assert_eq!(
        input,
        (
            "****".into(),
            "card".into(),
            Some(true),
            Some(4),
            Some("card".into())
        )
    );
    let resumed = c
        .events
        .iter()
        .find_map(|(e, _)| match e {
            EventData::RecordingResumed {
                reason, paused_ms, ..
            } => Some((reason.clone(), *paused_ms)),
            _ => None,
        })
        .expect("resumed");
    assert_eq!(resumed, ("secure_gather".into(), 700));
    assert_in_order(
        &c.kinds(),
        &[
            "node_entered",
            "recording_paused",
            "input",
            "recording_resumed",
            "enqueued",
        ],
    );
    assert!(
        !format!("{:?}", c.events).contains("4242"),
        "{:?}",
        c.events
    );
    c.advance(Duration::from_millis(400)); // hold music, recorded again
    c.caller_hangs_up();
    c.assert_closed();
    // The WAV: the menu prompt and the hold music are heard, nothing of
    // the span between (its own prompt included) is.
    let right = recorded_frames(&c, 1);
    let start = paused_at
        .duration_since(c.now - Duration::from_millis(1400))
        .as_millis();
    assert_eq!(start, 200);
    assert!(
        right[1..5].iter().any(|v| *v > 500),
        "menu heard: {right:?}"
    );
    assert!(
        right[11..45].iter().all(|v| *v == 0),
        "paused span silent: {right:?}"
    );
    assert!(
        right[46..].iter().any(|v| *v > 500),
        "hold music heard: {right:?}"
    );
}

#[test]
fn a_hang_up_during_a_secure_gather_resumes_before_the_hangup() {
    let mut c = Call::confirmed("secure-hangup", false);
    c.digit('6');
    c.digit('1');
    c.advance(Duration::from_millis(100));
    c.caller_hangs_up();
    c.assert_closed();
    assert_in_order(
        &c.kinds(),
        &[
            "recording_paused",
            "digit",
            "recording_resumed",
            "hangup",
            "recording",
        ],
    );
    assert_eq!(c.count("recording_resumed"), 1);
    assert_eq!(digit_events(&c)[1], ("*".into(), Some(true)));
}

#[test]
fn a_secure_gather_that_times_out_resumes_the_recording() {
    let mut c = Call::confirmed("secure-timeout", false);
    c.digit('6');
    c.advance(Duration::from_secs(8));
    assert_in_order(
        &c.kinds(),
        &[
            "recording_paused",
            "timeout",
            "exhausted",
            "recording_resumed",
        ],
    );
}

#[test]
fn an_agent_pauses_and_resumes_the_recording() {
    let mut c = queued("agent-pause");
    c.notice(DeskNotice::Accepted { agent: "a1".into() });
    c.input(CallInput::AgentLeg { agent: "a1".into() });
    // Another agent's button does nothing to this call.
    c.notice(DeskNotice::RecordingPause {
        agent: "a2".into(),
        on: true,
    });
    assert_eq!(c.count("recording_paused"), 0);
    c.notice(DeskNotice::RecordingPause {
        agent: "a1".into(),
        on: true,
    });
    c.notice(DeskNotice::RecordingPause {
        agent: "a1".into(),
        on: true,
    });
    assert_eq!(
        c.count("recording_paused"),
        1,
        "a second press is no new pause"
    );
    c.digit('5');
    assert_eq!(digit_events(&c).last(), Some(&("*".into(), Some(true))));
    c.advance(Duration::from_secs(3));
    c.notice(DeskNotice::RecordingPause {
        agent: "a1".into(),
        on: false,
    });
    let pauses: Vec<_> = c
        .events
        .iter()
        .filter_map(|(e, _)| match e {
            EventData::RecordingPaused { reason, agent_id } => {
                Some((reason.clone(), agent_id.clone(), None))
            }
            EventData::RecordingResumed {
                reason,
                agent_id,
                paused_ms,
            } => Some((reason.clone(), agent_id.clone(), Some(*paused_ms))),
            _ => None,
        })
        .collect();
    assert_eq!(
        pauses,
        [
            ("agent".into(), Some("a1".into()), None),
            ("agent".into(), Some("a1".into()), Some(3000)),
        ]
    );
    // Paused again, then the call ends: resumed before the hangup.
    c.notice(DeskNotice::RecordingPause {
        agent: "a1".into(),
        on: true,
    });
    c.caller_hangs_up();
    assert_eq!(c.count("recording_resumed"), 2);
    assert_in_order(
        &c.kinds(),
        &["recording_paused", "recording_resumed", "hangup"],
    );
    let k = c.kinds();
    let last_resume = k.iter().rposition(|k| *k == "recording_resumed").unwrap();
    assert!(last_resume < k.iter().position(|k| *k == "hangup").unwrap());
}

// ---- the satisfaction survey ------------------------------------------------

/// A queued call the agent answered, talked on and hung up; the queue asks
/// for a survey, so the caller stays on the line.
fn surveyed(name: &str) -> Call {
    let mut c = queued(name);
    c.notice(DeskNotice::Accepted { agent: "a1".into() });
    c.input(CallInput::AgentLeg { agent: "a1".into() });
    c.advance(Duration::from_secs(2));
    c.notice(DeskNotice::AgentHungUp {
        agent: "a1".into(),
        survey: Some("support".into()),
    });
    c
}

impl Call {
    fn survey_kinds(&self) -> Vec<&str> {
        self.kinds()
            .into_iter()
            .filter(|k| k.starts_with("survey_"))
            .collect()
    }

    fn survey_ended(&self) -> Option<&str> {
        self.events.iter().find_map(|(e, _)| match e {
            EventData::SurveyEnded { reason } => Some(reason.as_str()),
            _ => None,
        })
    }

    fn score(&self) -> Option<u8> {
        self.events.iter().find_map(|(e, _)| match e {
            EventData::SurveyAnswered { score } => Some(*score),
            _ => None,
        })
    }

    fn comment(&self) -> Option<(String, u64)> {
        self.events.iter().find_map(|(e, _)| match e {
            EventData::SurveyComment { path, duration_ms } => Some((path.clone(), *duration_ms)),
            _ => None,
        })
    }

    fn wrap_up(&mut self) {
        self.notice(DeskNotice::WrapUpDone {
            agent: "a1".into(),
            disposition: Some("resolved".into()),
            notes: String::new(),
            seconds: 4,
        });
    }
}

#[test]
fn a_queue_survey_takes_a_score_and_a_comment_then_ends_as_the_agent_did() {
    let mut c = surveyed("survey-5");
    // The agent is let go at once (their wrap-up starts); the caller stays.
    assert_eq!(c.desk, ["CallEnded"]);
    assert_eq!(c.legs_closed.len(), 1);
    assert_eq!(c.hangups_sent(), 0);
    assert!(c.core.is_talking() && !c.core.caller_to_agent());
    assert!(matches!(
        &c.events.iter().find(|(e, _)| e.kind() == "survey_started").unwrap().0,
        EventData::SurveyStarted { via, queue: Some(q) } if via == "queue" && q == "support"
    ));
    assert_eq!(c.prompts_started().last(), Some(&"en/survey-rate"));
    c.advance(Duration::from_millis(300));
    c.digit('5');
    assert_eq!(c.score(), Some(5));
    let p = c.prompts_started();
    assert_eq!(p[p.len() - 2..], ["en/survey-comment", "en/beep"]);
    // The invitation and its tone end: the comment is recorded.
    c.advance(Duration::from_millis(300));
    // The agent's wrap-up comes meanwhile, and the desk lets go of the
    // call: the wrap-up waits for the end of the call.
    c.wrap_up();
    c.input(CallInput::DeskGone);
    assert_eq!(c.count("wrap_up"), 0);
    c.advance(Duration::from_secs(2));
    c.digit('#');
    let (path, ms) = c.comment().expect("a survey_comment");
    assert!(Path::new(&path).is_file(), "{path}");
    assert!(path.ends_with("-survey-1.wav"), "{path}");
    assert!(ms >= 1900, "{ms}");
    assert_eq!(c.survey_ended(), Some("answered"));
    assert_eq!(c.prompts_started().last(), Some(&"en/survey-thanks"));
    assert_eq!(c.hangups_sent(), 0, "not before the thanks");
    c.advance(Duration::from_millis(300));
    assert_eq!(c.hangups_sent(), 1);
    assert_eq!(c.hangup(), (EndedBy::Agent, "agent_hangup"));
    assert_in_order(
        &c.kinds(),
        &[
            "agent_answered",
            "survey_started",
            "survey_answered",
            "survey_comment",
            "survey_ended",
            "hangup",
            "recording",
            "wrap_up",
            "call_ended",
        ],
    );
    assert_eq!(c.desk, ["CallEnded"], "the desk is told once");
    c.assert_closed();
}

#[test]
fn a_caller_hanging_up_during_the_comment_keeps_it_and_the_score() {
    let mut c = surveyed("survey-bye-comment");
    c.advance(Duration::from_millis(300));
    c.digit('4');
    c.advance(Duration::from_secs(1));
    c.caller_hangs_up();
    assert_eq!(c.score(), Some(4));
    assert!(c.comment().is_some(), "{:?}", c.kinds());
    assert_eq!(c.survey_ended(), Some("answered"));
    assert_eq!(c.hangups_sent(), 0, "the caller hung up");
    // The talk ended when the agent hung up, whoever ends the survey.
    assert_eq!(c.hangup(), (EndedBy::Agent, "agent_hangup"));
    assert_eq!(c.count("call_ended"), 0, "waits for the wrap-up");
    c.wrap_up();
    assert_eq!(c.last_kinds(2), ["wrap_up", "call_ended"]);
    c.assert_closed();
}

#[test]
fn a_caller_hanging_up_before_keying_a_score_is_not_a_response() {
    let mut c = surveyed("survey-bye");
    c.advance(Duration::from_millis(500));
    c.caller_hangs_up();
    assert_eq!(c.survey_kinds(), ["survey_started", "survey_ended"]);
    assert_eq!(c.survey_ended(), Some("hangup"));
    assert_eq!(c.score(), None);
    c.wrap_up();
    c.assert_closed();
}

#[test]
fn a_wrong_key_asks_once_more_then_a_valid_one_counts() {
    let mut c = surveyed("survey-invalid");
    c.advance(Duration::from_millis(300));
    c.digit('9');
    let p = c.prompts_started();
    assert_eq!(p[p.len() - 2..], ["en/sorry-invalid", "en/survey-rate"]);
    assert_eq!(c.score(), None);
    c.advance(Duration::from_millis(300));
    c.digit('3');
    assert_eq!(c.score(), Some(3));
    // No comment: it ends at its limit, empty but kept.
    c.advance(Duration::from_secs(31));
    assert_eq!(c.survey_ended(), Some("answered"));
    c.advance(Duration::from_millis(300));
    assert_eq!(c.hangups_sent(), 1);
    c.wrap_up();
    c.assert_closed();
}

#[test]
fn no_key_after_the_retry_ends_the_survey_without_a_score() {
    let mut c = surveyed("survey-silent");
    c.advance(Duration::from_secs(15));
    let rates = c
        .prompts_started()
        .iter()
        .filter(|p| **p == "en/survey-rate")
        .count();
    assert_eq!(rates, 2, "asked twice");
    assert_eq!(c.survey_ended(), Some("no_input"));
    assert_eq!(c.survey_kinds(), ["survey_started", "survey_ended"]);
    assert_eq!(c.hangups_sent(), 1);
    assert_eq!(c.hangup(), (EndedBy::Agent, "agent_hangup"));
    c.wrap_up();
    c.assert_closed();
}

#[test]
fn without_the_queue_setting_or_when_the_caller_leaves_first_there_is_no_survey() {
    let mut c = queued("survey-off");
    c.notice(DeskNotice::Accepted { agent: "a1".into() });
    c.input(CallInput::AgentLeg { agent: "a1".into() });
    c.caller_hangs_up();
    assert_eq!(c.hangup(), (EndedBy::Caller, "BYE"));
    c.wrap_up();
    assert!(c.survey_kinds().is_empty());
    c.assert_closed();
}

#[test]
fn a_flow_survey_node_runs_the_survey_then_goes_on() {
    let mut c = Call::confirmed("survey-flow", false);
    c.digit('7');
    let (started, node) = c
        .events
        .iter()
        .find(|(e, _)| e.kind() == "survey_started")
        .expect("survey_started");
    assert!(
        matches!(started, EventData::SurveyStarted { via, queue: None } if via == "flow"),
        "{started:?}"
    );
    assert_eq!(node.as_deref(), Some("rate"));
    c.advance(Duration::from_millis(300));
    c.digit('2');
    c.advance(Duration::from_millis(300));
    c.advance(Duration::from_secs(1));
    c.digit('#');
    assert_eq!(c.survey_ended(), Some("answered"));
    // The thanks, then the flow's next node says goodbye and hangs up.
    c.advance(Duration::from_millis(500));
    assert_in_order(&c.prompts_started(), &["en/survey-thanks", "en/goodbye"]);
    assert_eq!(c.hangup(), (EndedBy::Gateway, "flow_ended"));
    assert_eq!(c.score(), Some(2));
    c.assert_closed();
}
