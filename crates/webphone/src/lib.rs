//! The agent leg of Hotline: WebRTC audio to agents' browsers and the
//! `/agent` softphone page.
//!
//! - [`AgentMediaHub`]: one UDP socket for every agent's peer; a `str0m`
//!   `Rtc` per session (ICE-lite, one host candidate, PCMU only, DTLS 1.2
//!   or 1.3 as the browser offers). [`AgentMediaHub::accept_offer`] turns
//!   the browser's SDP offer into an answer plus an [`AgentLeg`]: a sender
//!   of 20 ms PCMU frames to the agent, a receiver of the agent's PCMU
//!   frames, and the session's [`AgentEvent`]s. No transcoding: what the
//!   caller sends goes to the agent as it is, spaced a frame-time apart
//!   (at most 100 ms held; `pacer`).
//! - [`protocol`]: the JSON messages of `/agent/ws` (docs/agent-protocol.md).
//! - [`monitor`]: the supervisor's `/admin/monitor/ws` messages (listen,
//!   whisper, barge on an agent's call).
//! - [`ws::pump`]: the WebSocket transport for those messages.
//! - [`http`]: the embedded page and its route builder.
//!
//! See docs/decisions/0002-webrtc-str0m.md for why str0m.

#![warn(missing_docs)]

pub mod http;
mod hub;
pub mod monitor;
mod pacer;
pub mod protocol;
pub mod ws;

pub use hub::{
    AgentEvent, AgentLeg, AgentMediaHub, AgentSender, DisconnectReason, FRAME_BYTES, HubConfig,
    SessionStats, WebphoneError,
};
