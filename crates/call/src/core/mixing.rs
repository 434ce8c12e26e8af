//! What a supervisor on the call is (mode, the mixing buffers), kept
//! apart from `monitor.rs`'s decisions so the core's root names only this
//! leaf (no module cycle).

use hotline_media::MixFifo;
use hotline_webphone::monitor::MonitorMode;

/// How much of one leg waits for another at most: 100 ms at 8 kHz.
pub const MIX_FIFO_SAMPLES: usize = 800;

/// The supervisor on the call.
pub(super) struct Monitor {
    pub supervisor: String,
    pub mode: MonitorMode,
    /// The supervisor's voice, waiting for the agent's next caller frame.
    pub to_agent: MixFifo,
    /// The supervisor's voice, waiting for the agent's next frame to the caller.
    pub to_caller: MixFifo,
    /// The agent's voice, waiting for the next caller frame to the supervisor.
    pub agent_to_supervisor: MixFifo,
    /// Scratch buffers (no allocation per frame).
    pub caller_pcm: Vec<i16>,
    pub mixed: Vec<i16>,
    pub sup_pcm: Vec<i16>,
}

impl Monitor {
    pub fn new(supervisor: String, mode: MonitorMode) -> Self {
        Self {
            supervisor,
            mode,
            to_agent: MixFifo::new(MIX_FIFO_SAMPLES),
            to_caller: MixFifo::new(MIX_FIFO_SAMPLES),
            agent_to_supervisor: MixFifo::new(MIX_FIFO_SAMPLES),
            caller_pcm: Vec::with_capacity(160),
            mixed: Vec::with_capacity(160),
            sup_pcm: Vec::with_capacity(160),
        }
    }
}

/// Where a caller frame goes while a supervisor is on the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallerRoute {
    /// `to_agent` holds the caller mixed with the supervisor: send it to
    /// the agent instead of the caller's frame as it came.
    pub agent_mixed: bool,
    /// `to_supervisor` holds the caller mixed with the agent: send it to
    /// the supervisor.
    pub supervisor: bool,
}
