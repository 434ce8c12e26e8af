//! Hotline routing: queues, agents and the automatic call distributor (ACD)
//! that offers queued callers to agents, as a pure sans-IO state machine.
//!
//! What it is for: deciding which agent is offered which call and when —
//! strategies (longest idle, round robin, ring all, skills + priority),
//! agent states (offline, available, ringing, on call, wrap-up, away),
//! offer timeouts, max wait and overflow, callback entries that keep the
//! caller's place, positions and estimated waits, and the record of every
//! offer and its outcome.
//!
//! What it is not for: it reads no clock, opens no socket, spawns no task and
//! knows nothing of SIP, media, WebSockets or SQL. The shell (the gateway)
//! feeds it inputs with the current [`std::time::Instant`], carries out the
//! [`AcdAction`]s it drains with [`Acd::poll_action`] (ring the agent's page,
//! bridge the call, play the position, write the record), and calls
//! [`Acd::handle_timeout`] at [`Acd::poll_timeout`].
//!
//! Guarantees: a call is offered to one agent at a time (ring-all queues
//! excepted, where the first accept wins and the rest are withdrawn); an agent
//! holds at most one offer or call; an accept of an offer that is no longer
//! live is refused ([`AcdError::NoLiveOffer`]) and changes nothing, which is
//! what makes two agents answering one call impossible; an unanswered offer
//! times out and the agent is set away rather than left reserved.
//!
//! # Callback entries
//!
//! A caller who has waited their queue's max wait with
//! [`Overflow::Callback`], or who asks for it ([`Acd::request_callback`]),
//! does not lose their place: the call becomes a *callback entry* in place —
//! same queue, priority, arrival time and order — so nobody behind it moves
//! up and it is served when its turn comes. Live offers for it are withdrawn
//! first. Then:
//!
//! - The shell tells the caller they will be called back and hangs up their
//!   leg. The [`Acd::call_ended`] it reports for that leg **does not remove
//!   a callback entry** (connected or not: the hang-up may be reported after
//!   an agent has already accepted the callback).
//! - The entry is offered to agents exactly like a call (same strategies,
//!   offer timeouts, ring-all, [`AcdAction::Offer`] and
//!   [`AcdAction::Connect`]). When an agent accepts, they are on call with it
//!   and the shell dials the customer.
//! - It leaves the ACD by [`Acd::callback_done`] (the customer was reached;
//!   the agent goes to wrap-up as after a call; [`Acd::agent_hung_up`] does
//!   the same), [`Acd::cancel_callback`], or by failing:
//!   [`Acd::callback_failed`] (busy, no answer) sends the agent to wrap-up
//!   and puts the entry back in its place, not offered again before the
//!   queue's [`QueueConfig::callback_retry`]; after
//!   [`QueueConfig::callback_attempts`] failures it is given up with
//!   [`AcdAction::CallbackAbandoned`]. Removing its queue gives it up too.
//! - If its agent disconnects, it goes back to its place (whatever the
//!   queue's [`AgentLostPolicy`]) as after a failure but without counting an
//!   attempt: [`AcdAction::AgentLost`] with `requeued: true`.
//! - It holds a place: it counts in other callers' positions and appears in
//!   [`QueueView::waiting`] ([`CallView::callback`], [`CallView::attempts`]),
//!   but no [`AcdAction::Position`] is emitted for it, and it never
//!   overflows.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use hotline_routing::{Acd, AcdAction, AgentConfig, QueueConfig, Strategy};
//!
//! let sales = QueueConfig {
//!     strategy: Strategy::LongestIdle,
//!     members: vec!["ana".into()],
//!     ..QueueConfig::new("sales")
//! };
//! let mut acd = Acd::new([sales], [AgentConfig::new("ana", "Ana")]);
//! let t0 = Instant::now(); // the shell's clock; tests use any fixed instant
//! acd.agent_login(&"ana".into(), t0).unwrap();
//! acd.set_available(&"ana".into(), t0).unwrap();
//! acd.enqueue("call-1".into(), &"sales".into(), 0, None, t0).unwrap();
//!
//! let offers: Vec<_> = std::iter::from_fn(|| acd.poll_action())
//!     .filter(|a| matches!(a, AcdAction::Offer { .. }))
//!     .collect();
//! assert_eq!(offers.len(), 1);
//!
//! let t1 = t0 + Duration::from_secs(3);
//! acd.accept(&"ana".into(), &"call-1".into(), t1).unwrap();
//! assert!(std::iter::from_fn(|| acd.poll_action())
//!     .any(|a| matches!(a, AcdAction::Connect { .. })));
//! ```

#![warn(missing_docs)]

mod acd;
mod action;
mod config;
mod error;
mod ids;
mod strategy;
mod view;

pub use acd::Acd;
pub use action::{AcdAction, AgentState, OfferOutcome, REASON_NO_ANSWER, REASON_NOT_READY};
pub use config::{AgentConfig, AgentLostPolicy, InvalidSetting, Overflow, QueueConfig, valid_id};
pub use error::AcdError;
pub use ids::{AgentId, CallId, QueueName};
pub use strategy::Strategy;
pub use view::{AgentView, CallView, QueueView};
