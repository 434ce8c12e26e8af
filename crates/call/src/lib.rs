//! The call layer of the Hotline gateway: one actor per call, a thin async
//! shell around a sans-IO [`CallCore`].
//!
//! For: turning an incoming SIP call into an answered, paced, recorded
//! conversation driven by an IVR flow (`hotline-ivr`'s interpreter), and
//! emitting the call's events.
//! Not for: parsing SIP (see `hotline-sip`), coding audio (see
//! `hotline-media`) or storing records (the events go to an [`EventSink`]).
//!
//! ```no_run
//! # async fn demo(ctx: std::sync::Arc<hotline_call::CallContext>,
//! #               events: tokio::sync::mpsc::Receiver<hotline_sip::SipEvent>) {
//! let router = hotline_call::CallRouter::new(ctx);
//! let active = router.active();
//! tokio::spawn(router.run(events));
//! println!("{} calls", active.get());
//! # }
//! ```

#![warn(missing_docs)]

mod actor;
mod clock;
mod context;
mod core;
mod event;
mod flow;
mod recv;
mod router;
mod rtp;
/// RTP counters of `/metrics` (their names, for the binary to describe).
pub mod rtp_meter;
mod srtp;

pub use actor::run_call;
pub use clock::{FRAME, MediaClock};
pub use context::{CallContext, CallSettings};
pub use core::{
    CallCore, CallInput, CallOutput, CallerRoute, CoreConfig, Ending, MIX_FIFO_SAMPLES,
    RecorderFor, RtpError, SipCommand, desk_input_name,
};
pub use event::{CallEvent, CallEventStamper, EndedBy, EventData, EventLog, EventSink};
pub use flow::{BoxFuture, FlowFactory, LookupProvider, builtin_flow};
pub use router::{ActiveCalls, CallRouter};
