//! The agent desk of the Hotline gateway: which agent gets which call, the
//! agents' pages, wrap-up and callback attempts.
//!
//! For: a sans-IO [`DeskCore`] over routing's ACD that takes every desk
//! decision (reconnect grace, wrap-up forms, callback attempts, offer cards)
//! from inputs and the current time, and the thin task ([`AgentDesk`]) that
//! runs it: it owns the channels to call actors and agent pages, the
//! timers, and the media hub's round trips.
//! Not for: SIP, call audio or records. Call actors talk to the desk only in
//! [`protocol`]'s messages; the desk asks for outbound legs over a
//! [`Dialer`] the binary wires to the call router, which it never names.
//! Dependencies run one way: call → desk → routing.
//!
//! ```no_run
//! # async fn demo(hub: hotline_webphone::AgentMediaHub) {
//! let desk = hotline_desk::AgentDesk::start(Vec::new(), Vec::new(), hub);
//! let states = desk.watch_states();
//! println!("{} agents", states.borrow().len());
//! # }
//! ```

#![warn(missing_docs)]

mod clock;
pub mod cluster;
mod core;
pub mod node;
pub mod policy;
pub mod protocol;
mod task;

pub use cluster::{ClusterEvent, ClusterInput, ClusterRole, DeskMail, Outbox};
pub use core::{CoreInput, DeskCore, DeskOutput, RECONNECT_GRACE};
pub use node::{NodeDesk, NodeOutput};
pub use policy::DialPolicy;
pub use protocol::{
    AgentSocketEvent, BookedCallback, CallInfo, CallbackProgress, DeskInput, DeskNotice,
    DeskOverview, DialOrder, DialRequest, Dialer, MonitorAction, MonitorStatus, QueueDepth,
    QueuedCall,
};
pub use task::{AgentDesk, DeskHandle};
