//! The outbox: everything the endpoint's state machines hand to the world
//! outside, in the order they produced it — [`Transmit`]s for the network
//! and [`SipEvent`]s for the application — and the tally that goes with the
//! events: how many calls the application has been told about and not yet
//! told have finished ([`Endpoint::active_calls`](crate::Endpoint::active_calls)).
//!
//! Every module writes here instead of into several fields of the
//! [`Endpoint`](crate::Endpoint); the endpoint drains it in
//! `poll_transmit` / `poll_event`.

use std::collections::VecDeque;

use crate::event::SipEvent;
use crate::transport::Peer;

/// Bytes to send to a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to (for TCP: which connection).
    pub peer: Peer,
    /// One complete SIP message.
    pub data: Vec<u8>,
}

/// Transmits and events waiting to be polled, and the count of live calls.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    transmits: VecDeque<Transmit>,
    events: VecDeque<SipEvent>,
    /// Calls announced (`Incoming` emitted, or originated) whose last event
    /// (`Ended` / `OutboundFailed`) has not been emitted yet.
    live: usize,
}

impl Outbox {
    /// Queues one message for `peer`.
    pub(super) fn send(&mut self, peer: Peer, data: Vec<u8>) {
        self.transmits.push_back(Transmit { peer, data });
    }

    /// Queues an event for the application.
    pub(super) fn event(&mut self, event: SipEvent) {
        self.events.push_back(event);
    }

    /// A call the application now knows about (it got `Incoming`, or
    /// `originate` returned its key): one more live call.
    pub(super) fn call_announced(&mut self) {
        self.live += 1;
    }

    /// Queues the last event of an announced call (`Ended` or
    /// `OutboundFailed`): one live call less.
    pub(super) fn call_finished(&mut self, last: SipEvent) {
        self.live = self.live.saturating_sub(1);
        self.events.push_back(last);
    }

    /// Calls announced and not finished.
    pub(super) fn live(&self) -> usize {
        self.live
    }

    pub(super) fn pop_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub(super) fn pop_event(&mut self) -> Option<SipEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CallKey;
    use crate::event::EndReason;

    #[test]
    fn keeps_order_and_counts_live_calls() {
        let mut out = Outbox::default();
        let peer = Peer::udp("192.0.2.1:5060".parse().unwrap());
        out.send(peer, b"one".to_vec());
        out.send(peer, b"two".to_vec());
        out.call_announced();
        out.call_announced();
        assert_eq!(out.live(), 2);
        let call = CallKey::from("c1");
        out.event(SipEvent::Confirmed { call: call.clone() });
        out.call_finished(SipEvent::Ended {
            call: call.clone(),
            reason: EndReason::RemoteBye,
        });
        assert_eq!(out.live(), 1);
        assert_eq!(out.pop_transmit().unwrap().data, b"one");
        assert_eq!(out.pop_transmit().unwrap().data, b"two");
        assert!(out.pop_transmit().is_none());
        assert!(matches!(out.pop_event(), Some(SipEvent::Confirmed { .. })));
        assert!(matches!(out.pop_event(), Some(SipEvent::Ended { .. })));
        assert!(out.pop_event().is_none());
        // Never below zero.
        out.call_finished(SipEvent::Ended {
            call: call.clone(),
            reason: EndReason::RemoteBye,
        });
        out.call_finished(SipEvent::Ended {
            call,
            reason: EndReason::RemoteBye,
        });
        assert_eq!(out.live(), 0);
    }
}
