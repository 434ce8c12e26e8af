//! A supervisor on the agent's call: listen, whisper, barge.
//!
//! Who hears whom is decided here, per frame, from the mode
//! ([`MonitorMode`]): the supervisor always hears the caller and the agent
//! mixed; the agent hears the supervisor in whisper and barge; the caller
//! only in barge. The shell keeps the supervisor leg's channels and asks:
//! [`CallCore::route_caller_frame`] for each caller frame (what goes to
//! the agent and to the supervisor), [`CallInput::MonitorAudio`] brings
//! the supervisor's frames, and the agent's frames (`agent.rs`) pick up
//! the supervisor's voice for the caller in barge before they reach the
//! media session, so the recording's right (agent) channel carries it.
//! In whisper the supervisor is heard by the agent only and is not in the
//! recording.
//!
//! G.711 PCMU legs are decoded to linear, summed with saturation and
//! re-encoded; each leg waits for the one carrying it in a bounded
//! `MixFifo` (at most [`super::MIX_FIFO_SAMPLES`]: late audio is dropped, not
//! delayed). A mode switch keeps the leg and clears what waits.
//!
//! [`CallInput::MonitorAudio`]: super::CallInput::MonitorAudio

use hotline_desk::{MonitorAction, MonitorStatus};
use hotline_media::{ulaw_decode, ulaw_encode};
use hotline_webphone::monitor::MonitorMode;
use hotline_webphone::{AgentEvent, DisconnectReason};

use super::mixing::{CallerRoute, Monitor};
use super::{CallCore, CallOutput};
use crate::event::EventData;

impl CallCore {
    /// A supervisor is on the call.
    pub fn monitored(&self) -> bool {
        self.monitor.is_some()
    }

    /// A supervisor is on in barge: the caller hears them.
    pub(super) fn monitor_barging(&self) -> bool {
        self.monitor
            .as_ref()
            .is_some_and(|m| m.mode.caller_hears_supervisor())
    }

    /// A supervisor's leg arrived (the shell keeps its channels): joined
    /// only while an agent is bridged; else stopped at once (`not_on_call`).
    pub(super) fn on_monitor_start(&mut self, supervisor: String, mode: MonitorMode) {
        if self.agent.bridge.is_none() || !self.is_talking() {
            self.push(CallOutput::Monitor(MonitorStatus::Stopped(
                "not_on_call".into(),
            )));
            return;
        }
        if self.monitor.is_some() {
            self.stop_monitor("replaced");
        }
        tracing::info!(%supervisor, mode = mode.as_str(), "supervisor joins the call");
        self.emit(
            EventData::MonitorStarted {
                supervisor_id: supervisor.clone(),
                mode: mode.as_str().into(),
            },
            None,
        );
        self.monitor = Some(Monitor::new(supervisor, mode));
        self.push(CallOutput::Monitor(MonitorStatus::Started(mode)));
    }

    /// A mode switch or Stop from the supervisor's page (Start comes as
    /// [`super::CallInput::MonitorStart`], its leg kept by the shell).
    pub(super) fn on_monitor_notice(&mut self, supervisor: String, action: MonitorAction) {
        let Some(m) = self.monitor.as_mut() else {
            return;
        };
        if m.supervisor != supervisor {
            return;
        }
        match action {
            MonitorAction::Mode(mode) => {
                if m.mode == mode {
                    self.push(CallOutput::Monitor(MonitorStatus::Mode(mode)));
                    return;
                }
                m.mode = mode;
                m.to_agent.clear();
                m.to_caller.clear();
                self.emit(
                    EventData::MonitorMode {
                        supervisor_id: supervisor,
                        mode: mode.as_str().into(),
                    },
                    None,
                );
                self.push(CallOutput::Monitor(MonitorStatus::Mode(mode)));
            }
            MonitorAction::Stop => self.stop_monitor("supervisor"),
            // The shell turns a Start into `MonitorStart`.
            MonitorAction::Start { .. } => {}
        }
    }

    /// The supervisor's leg leaves the call (`monitor_stopped`); the shell
    /// closes it.
    pub(super) fn stop_monitor(&mut self, reason: &str) {
        let Some(m) = self.monitor.take() else {
            return;
        };
        tracing::info!(supervisor = %m.supervisor, %reason, "supervisor leaves the call");
        self.emit(
            EventData::MonitorStopped {
                supervisor_id: m.supervisor,
                reason: reason.into(),
            },
            None,
        );
        self.push(CallOutput::Monitor(MonitorStatus::Stopped(reason.into())));
    }

    /// One PCMU frame of the supervisor's voice.
    pub(super) fn on_monitor_audio(&mut self, frame: &[u8]) {
        let held = self.agent.bridge.as_ref().is_none_or(|b| b.held);
        let Some(m) = self.monitor.as_mut() else {
            return;
        };
        if held || !(m.mode.agent_hears_supervisor() || m.mode.caller_hears_supervisor()) {
            return;
        }
        m.sup_pcm.clear();
        m.sup_pcm.extend(frame.iter().map(|&c| ulaw_decode(c)));
        if m.mode.agent_hears_supervisor() {
            m.to_agent.push(&m.sup_pcm);
        }
        if m.mode.caller_hears_supervisor() {
            m.to_caller.push(&m.sup_pcm);
        }
    }

    /// News of the supervisor's leg: a leg that failed leaves the call. A
    /// leg the page closed itself (Stop, a new mode's peer, the page left)
    /// is the supervisor leaving, whether that close or the desk's Stop
    /// comes first.
    pub(super) fn on_monitor_leg_event(&mut self, ev: AgentEvent) {
        if let AgentEvent::Disconnected { reason, .. } = ev {
            let why = if matches!(
                reason,
                DisconnectReason::Closed | DisconnectReason::RemoteClosed
            ) {
                "supervisor"
            } else {
                "media_lost"
            };
            self.stop_monitor(why);
        }
    }

    /// The agent's decoded voice (before mute and hold are applied: a muted
    /// page sends silence anyway), for the supervisor's ear.
    pub(super) fn monitor_agent_voice(&mut self, pcm: &[i16]) {
        if let Some(m) = self.monitor.as_mut() {
            m.agent_to_supervisor.push(pcm);
        }
    }

    /// Barge: the supervisor's voice joins the agent's on its way to the
    /// caller (and so into the recording's agent channel).
    pub(super) fn monitor_mix_for_caller(&mut self, pcm: &mut [i16]) {
        if let Some(m) = self.monitor.as_mut()
            && m.mode.caller_hears_supervisor()
        {
            m.to_caller.mix_into(pcm);
        }
    }

    /// One caller frame (PCMU, as it goes to the agent) while a supervisor
    /// is on: fills `to_agent` with the caller and the supervisor mixed
    /// (whisper, barge) and `to_supervisor` with the caller and the agent
    /// mixed. Nothing when no supervisor is on.
    pub fn route_caller_frame(
        &mut self,
        caller: &[u8],
        to_agent: &mut Vec<u8>,
        to_supervisor: &mut Vec<u8>,
    ) -> CallerRoute {
        let Some(m) = self.monitor.as_mut() else {
            return CallerRoute::default();
        };
        m.caller_pcm.clear();
        m.caller_pcm.extend(caller.iter().map(|&c| ulaw_decode(c)));
        let mut route = CallerRoute::default();
        if m.mode.agent_hears_supervisor() {
            m.mixed.clear();
            m.mixed.extend_from_slice(&m.caller_pcm);
            m.to_agent.mix_into(&mut m.mixed);
            to_agent.clear();
            to_agent.extend(m.mixed.iter().map(|&s| ulaw_encode(s)));
            route.agent_mixed = true;
        }
        m.mixed.clear();
        m.mixed.extend_from_slice(&m.caller_pcm);
        m.agent_to_supervisor.mix_into(&mut m.mixed);
        to_supervisor.clear();
        to_supervisor.extend(m.mixed.iter().map(|&s| ulaw_encode(s)));
        route.supervisor = true;
        route
    }
}
