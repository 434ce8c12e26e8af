//! A supervisor on an agent's call (core/monitor.rs), driven with a fake
//! clock like tests/core.rs: who hears whom in listen, whisper and barge,
//! the mixing (saturating), mode switches on the same leg, the events, and
//! the call's end ending the monitor.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hotline_call::{CallCore, CallInput, CallOutput, CoreConfig, EventData, RecorderFor};
use hotline_desk::{DeskNotice, MonitorAction, MonitorStatus};
use hotline_media::{CallRecorder, PromptCache, ulaw_decode, ulaw_encode};
use hotline_sip::{
    CallKey, Codec, Direction, EndReason, IncomingCall, Party, Peer, RemoteMedia, SipEvent,
    Transport,
};
use hotline_webphone::monitor::MonitorMode;
use uuid::Uuid;

const FLOW: &str = r#"
flow: monitor-test
languages: [en]
language: en
start: agent
nodes:
  agent:
    type: enqueue
    queue: support
"#;

fn write_wav(path: &Path, samples: usize) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("prompt dir");
    let mut w = hound::WavWriter::create(path, spec).expect("prompt created");
    for _ in 0..samples {
        w.write_sample(0i16).expect("sample");
    }
    w.finalize().expect("prompt written");
}

fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hotline-monitor-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for p in [
        "hold-music",
        "queue-position-before",
        "queue-position-after",
    ] {
        write_wav(&dir.join(format!("sounds/en/{p}.wav")), 800);
    }
    std::fs::create_dir_all(dir.join("rec")).expect("recordings dir");
    std::fs::create_dir_all(dir.join("vm")).expect("voicemail dir");
    dir
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("an address")
}

fn key() -> CallKey {
    CallKey::from("monitor-test-call")
}

/// A call bridged to agent `a1`, on a fake clock.
struct Call {
    core: CallCore,
    now: Instant,
    wall: DateTime<Utc>,
    events: Vec<EventData>,
    statuses: Vec<MonitorStatus>,
    done: bool,
    _dir: PathBuf,
}

impl Call {
    fn bridged(name: &str) -> Self {
        let dir = test_dir(name);
        let cfg = CoreConfig {
            call_id: Uuid::new_v4(),
            node: "test-node".into(),
            rtp_timeout: Duration::from_secs(3600),
            answer_delay: Duration::ZERO,
            queue_max_wait: Duration::from_secs(600),
            forced_hours: None,
            dial_check: None,
            recordings_dir: dir.join("rec"),
            voicemail_dir: dir.join("vm"),
            has_desk: true,
            prompts: Arc::new(PromptCache::new(dir.join("sounds"))),
        };
        let flow = hotline_ivr::load_str(
            Path::new("monitor-test.yaml"),
            FLOW,
            &hotline_ivr::LoadOptions::default(),
        )
        .expect("the test flow loads");
        let incoming = IncomingCall {
            call: key(),
            caller: Party {
                user: "+8613800000000".into(),
                display_name: None,
            },
            callee: "4000".into(),
            offer: RemoteMedia {
                rtp_addr: addr("192.0.2.10:40000"),
                codec: Codec::Pcmu,
                payload_type: 0,
                dtmf_payload_type: Some(101),
                direction: Direction::SendRecv,
                srtp: None,
            },
            peer: Peer {
                transport: Transport::Udp,
                addr: addr("192.0.2.1:5060"),
                conn: 0,
            },
        };
        let core = CallCore::inbound(cfg, &incoming, Arc::new(flow));
        let mut c = Call {
            core,
            now: Instant::now(),
            wall: Utc::now(),
            events: Vec::new(),
            statuses: Vec::new(),
            done: false,
            _dir: dir,
        };
        c.pump();
        c.input(CallInput::Sip(SipEvent::Confirmed { call: key() }));
        c.input(CallInput::Desk(DeskNotice::Accepted { agent: "a1".into() }));
        c.input(CallInput::AgentLeg { agent: "a1".into() });
        assert!(c.core.agent_bridged());
        c
    }

    fn input(&mut self, input: CallInput<'_>) {
        self.core.handle(self.now, self.wall, input);
        self.pump();
        if let Err(e) = self.core.check_invariants() {
            panic!("{e}; events {:?}", self.kinds());
        }
    }

    fn pump(&mut self) {
        while let Some(out) = self.core.poll_output() {
            assert!(!self.done, "output after Done: {out:?}");
            match out {
                CallOutput::Emit(data, _) => self.events.push(data),
                CallOutput::BindRtp { .. } => {
                    let bound = CallInput::RtpBound(Ok(addr("192.0.2.2:20000")));
                    self.core.handle(self.now, self.wall, bound);
                }
                CallOutput::Sip(hotline_call::SipCommand::Answer { .. }) => {
                    self.core
                        .handle(self.now, self.wall, CallInput::AnswerResult(Ok(())));
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
                CallOutput::Monitor(status) => self.statuses.push(status),
                CallOutput::Done => self.done = true,
                _ => {}
            }
        }
    }

    fn caller_hangs_up(&mut self) {
        self.input(CallInput::Sip(SipEvent::Ended {
            call: key(),
            reason: EndReason::RemoteBye,
        }));
    }

    fn kinds(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.kind()).collect()
    }

    fn start(&mut self, mode: MonitorMode) {
        self.input(CallInput::MonitorStart {
            supervisor: "sue".into(),
            mode,
        });
    }

    fn action(&mut self, action: MonitorAction) {
        self.input(CallInput::Desk(DeskNotice::Monitor {
            supervisor: "sue".into(),
            action,
        }));
    }

    /// The next 20 ms frame the caller receives, decoded.
    fn caller_hears(&mut self) -> Vec<i16> {
        self.now += Duration::from_millis(20);
        self.wall += chrono::Duration::milliseconds(20);
        let mut out = Vec::new();
        self.core.media_frame(self.now, self.wall, &mut out);
        self.pump();
        out[12..].iter().map(|&c| ulaw_decode(c)).collect()
    }

    /// One caller frame through the core: (what the agent gets — `None`
    /// when the caller's frame as it came —, what the supervisor gets).
    fn caller_says(&mut self, level: i16) -> (Option<Vec<i16>>, Option<Vec<i16>>) {
        let frame = vec![ulaw_encode(level); 160];
        let (mut to_agent, mut to_sup) = (Vec::new(), Vec::new());
        let route = self
            .core
            .route_caller_frame(&frame, &mut to_agent, &mut to_sup);
        let decode = |v: &[u8]| v.iter().map(|&c| ulaw_decode(c)).collect::<Vec<_>>();
        (
            route.agent_mixed.then(|| decode(&to_agent)),
            route.supervisor.then(|| decode(&to_sup)),
        )
    }
}

fn frame(level: i16) -> Vec<u8> {
    vec![ulaw_encode(level); 160]
}

fn near(samples: &[i16], want: i32) -> bool {
    samples
        .iter()
        .all(|&s| (i32::from(s) - want).abs() <= want.abs() / 16 + 8)
}

#[test]
fn no_monitor_without_an_agent_bridged() {
    let mut c = Call::bridged("refused");
    c.caller_hangs_up();
    c.start(MonitorMode::Listen);
    assert_eq!(c.statuses, [MonitorStatus::Stopped("not_on_call".into())]);
    assert!(!c.kinds().contains(&"monitor_started"));
}

#[test]
fn listen_hears_both_sides_and_nobody_hears_the_supervisor() {
    let mut c = Call::bridged("listen");
    c.start(MonitorMode::Listen);
    assert_eq!(c.statuses, [MonitorStatus::Started(MonitorMode::Listen)]);
    assert!(matches!(
        c.events.last(),
        Some(EventData::MonitorStarted { supervisor_id, mode }) if supervisor_id == "sue" && mode == "listen"
    ));
    // The supervisor talks loudly, the agent says 1000, the caller 2000.
    c.input(CallInput::MonitorAudio(&frame(8000)));
    c.input(CallInput::AgentAudio(&frame(1000)));
    let (to_agent, to_sup) = c.caller_says(2000);
    assert_eq!(
        to_agent, None,
        "the agent gets the caller's frame as it came"
    );
    let to_sup = to_sup.expect("the supervisor hears the call");
    assert!(near(&to_sup, 3000), "caller + agent: {:?}", &to_sup[..4]);
    let heard = c.caller_hears();
    assert!(
        near(&heard, 1000),
        "the caller hears the agent only: {:?}",
        &heard[..4]
    );
}

#[test]
fn whisper_reaches_the_agent_only() {
    let mut c = Call::bridged("whisper");
    c.start(MonitorMode::Whisper);
    c.input(CallInput::MonitorAudio(&frame(4000)));
    let (to_agent, to_sup) = c.caller_says(2000);
    let to_agent = to_agent.expect("the agent hears caller and supervisor");
    assert!(near(&to_agent, 6000), "{:?}", &to_agent[..4]);
    assert!(
        near(&to_sup.expect("supervisor"), 2000),
        "the supervisor does not hear themselves"
    );
    c.input(CallInput::MonitorAudio(&frame(4000)));
    c.input(CallInput::AgentAudio(&frame(0)));
    let heard = c.caller_hears();
    assert!(
        near(&heard, 0),
        "the caller does not hear the whisper: {:?}",
        &heard[..4]
    );
}

#[test]
fn barge_is_heard_by_both_and_recorded_on_the_agent_channel() {
    let mut c = Call::bridged("barge");
    c.start(MonitorMode::Barge);
    c.input(CallInput::MonitorAudio(&frame(4000)));
    c.input(CallInput::MonitorAudio(&frame(4000)));
    c.input(CallInput::AgentAudio(&frame(1000)));
    let heard = c.caller_hears();
    assert!(near(&heard, 5000), "agent + supervisor: {:?}", &heard[..4]);
    let (to_agent, _) = c.caller_says(2000);
    assert!(near(&to_agent.expect("agent"), 6000));
    // A muted agent: the caller still hears the supervisor.
    c.input(CallInput::Desk(DeskNotice::Mute { on: true }));
    c.input(CallInput::MonitorAudio(&frame(4000)));
    c.input(CallInput::AgentAudio(&frame(1000)));
    let heard = c.caller_hears();
    assert!(near(&heard, 4000), "{:?}", &heard[..4]);
    c.caller_hangs_up();
    let path = c
        .events
        .iter()
        .find_map(|e| match e {
            EventData::Recording { path, .. } => Some(path.clone()),
            _ => None,
        })
        .expect("a recording");
    let samples: Vec<i16> = hound::WavReader::open(path)
        .expect("the recording opens")
        .samples::<i16>()
        .map(|s| s.expect("a sample"))
        .collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    assert!(
        right.iter().any(|&s| (i32::from(s) - 5000).abs() < 400),
        "the agent channel carries agent + supervisor"
    );
}

#[test]
fn mixing_saturates() {
    let mut c = Call::bridged("saturate");
    c.start(MonitorMode::Whisper);
    c.input(CallInput::MonitorAudio(&frame(30_000)));
    let (to_agent, _) = c.caller_says(30_000);
    let to_agent = to_agent.expect("agent");
    assert!(
        to_agent.iter().all(|&s| s > 30_000),
        "clipped, not wrapped: {:?}",
        &to_agent[..4]
    );
}

#[test]
fn modes_switch_on_the_same_leg_and_the_call_end_stops_the_monitor() {
    let mut c = Call::bridged("modes");
    c.start(MonitorMode::Listen);
    c.action(MonitorAction::Mode(MonitorMode::Whisper));
    c.action(MonitorAction::Mode(MonitorMode::Whisper)); // no change: no event
    c.action(MonitorAction::Mode(MonitorMode::Barge));
    // Another supervisor's request is not this one's.
    c.input(CallInput::Desk(DeskNotice::Monitor {
        supervisor: "bob".into(),
        action: MonitorAction::Stop,
    }));
    let modes: Vec<&str> = c
        .events
        .iter()
        .filter_map(|e| match e {
            EventData::MonitorMode { mode, .. } => Some(mode.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(modes, ["whisper", "barge"]);
    assert_eq!(
        c.statuses,
        [
            MonitorStatus::Started(MonitorMode::Listen),
            MonitorStatus::Mode(MonitorMode::Whisper),
            MonitorStatus::Mode(MonitorMode::Whisper),
            MonitorStatus::Mode(MonitorMode::Barge),
        ]
    );
    c.caller_hangs_up();
    assert_eq!(
        c.statuses.last(),
        Some(&MonitorStatus::Stopped("call_ended".into()))
    );
    let k = c.kinds();
    let stopped = k
        .iter()
        .position(|k| *k == "monitor_stopped")
        .expect("stopped");
    let hangup = k.iter().position(|k| *k == "hangup").expect("hangup");
    assert!(stopped < hangup, "{k:?}");
    assert!(matches!(
        &c.events[stopped],
        EventData::MonitorStopped { supervisor_id, reason } if supervisor_id == "sue" && reason == "call_ended"
    ));
}

#[test]
fn stop_and_a_lost_leg_end_the_monitor() {
    let mut c = Call::bridged("stop");
    c.start(MonitorMode::Barge);
    c.action(MonitorAction::Stop);
    assert_eq!(
        c.statuses.last(),
        Some(&MonitorStatus::Stopped("supervisor".into()))
    );
    // Stopped: the supervisor's audio goes nowhere; the caller gets the agent only.
    c.input(CallInput::MonitorAudio(&frame(4000)));
    c.input(CallInput::AgentAudio(&frame(1000)));
    assert!(near(&c.caller_hears(), 1000));
    assert_eq!(c.caller_says(2000), (None, None));
    c.start(MonitorMode::Listen);
    c.input(CallInput::MonitorLegEvent(
        hotline_webphone::AgentEvent::Disconnected {
            reason: hotline_webphone::DisconnectReason::Idle,
            stats: Default::default(),
        },
    ));
    assert_eq!(
        c.statuses.last(),
        Some(&MonitorStatus::Stopped("media_lost".into()))
    );
    let reasons: Vec<&str> = c
        .events
        .iter()
        .filter_map(|e| match e {
            EventData::MonitorStopped { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, ["supervisor", "media_lost"]);
}

/// Why the monitor stopped, in order.
fn stop_reasons(c: &Call) -> Vec<&str> {
    c.events
        .iter()
        .filter_map(|e| match e {
            EventData::MonitorStopped { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
        .collect()
}

fn agent_leg_gone(c: &mut Call, reason: hotline_webphone::DisconnectReason) {
    c.input(CallInput::AgentLegEvent(
        hotline_webphone::AgentEvent::Disconnected {
            reason,
            stats: Default::default(),
        },
    ));
}

#[test]
fn an_agent_hanging_up_ends_the_monitor_as_call_ended_whichever_news_comes_first() {
    use hotline_webphone::DisconnectReason;
    // The page's hang-up closes its peer, and that close can reach the call
    // before the desk's AgentHungUp (seen in tests/e2e/supervisor.rs).
    let mut c = Call::bridged("hangup-close-first");
    c.start(MonitorMode::Listen);
    agent_leg_gone(&mut c, DisconnectReason::RemoteClosed);
    assert_eq!(stop_reasons(&c), Vec::<&str>::new());
    assert!(
        !c.kinds().contains(&"agent_media_lost"),
        "a page's close is not a media failure: {:?}",
        c.kinds()
    );
    c.input(CallInput::Desk(DeskNotice::AgentHungUp {
        agent: "a1".into(),
        survey: None,
    }));
    assert_eq!(stop_reasons(&c), ["call_ended"]);
    assert_eq!(
        c.statuses.last(),
        Some(&MonitorStatus::Stopped("call_ended".into()))
    );
    // The other order.
    let mut c = Call::bridged("hangup-desk-first");
    c.start(MonitorMode::Listen);
    c.input(CallInput::Desk(DeskNotice::AgentHungUp {
        agent: "a1".into(),
        survey: None,
    }));
    agent_leg_gone(&mut c, DisconnectReason::RemoteClosed);
    assert_eq!(stop_reasons(&c), ["call_ended"]);
}

#[test]
fn a_failed_agent_leg_or_a_closed_page_ends_the_monitor_as_agent_lost() {
    use hotline_webphone::DisconnectReason;
    let mut c = Call::bridged("agent-media-failed");
    c.start(MonitorMode::Whisper);
    agent_leg_gone(&mut c, DisconnectReason::Idle);
    assert_eq!(stop_reasons(&c), ["agent_lost"]);
    // A page closed without a hang-up: the peer closes, then the desk
    // (which saw the socket go) says the agent is lost.
    let mut c = Call::bridged("agent-page-closed");
    c.start(MonitorMode::Listen);
    agent_leg_gone(&mut c, DisconnectReason::RemoteClosed);
    c.input(CallInput::Desk(DeskNotice::AgentLost {
        agent: "a1".into(),
        requeued: true,
    }));
    assert_eq!(stop_reasons(&c), ["agent_lost"]);
}

#[test]
fn a_supervisor_page_closing_its_leg_is_the_supervisor_leaving() {
    use hotline_webphone::DisconnectReason;
    // The page's Stop closes its peer too, and that close can reach the
    // call before the desk's Stop (seen in tests/e2e/supervisor.rs).
    let mut c = Call::bridged("monitor-close-first");
    c.start(MonitorMode::Barge);
    c.input(CallInput::MonitorLegEvent(
        hotline_webphone::AgentEvent::Disconnected {
            reason: DisconnectReason::RemoteClosed,
            stats: Default::default(),
        },
    ));
    c.action(MonitorAction::Stop);
    assert_eq!(stop_reasons(&c), ["supervisor"]);
    assert_eq!(
        c.statuses.last(),
        Some(&MonitorStatus::Stopped("supervisor".into()))
    );
}
