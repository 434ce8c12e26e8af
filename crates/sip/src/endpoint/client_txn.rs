//! Our client transactions (RFC 3261 §17.1): the INVITE client transaction
//! of an outbound call — its state, Timers A and B, the requests that share
//! its branch (the non-2xx ACK, CANCEL) and the ACK it repeats for
//! retransmitted final responses — and the non-INVITE transactions of our
//! other requests (BYE, REFER, CANCEL) with Timers E and F.
//!
//! Transaction data and timers only: what a response or a timeout means
//! for the call is decided by the caller (`uac.rs`).

use std::time::{Duration, Instant};

use super::outbox::Outbox;
use super::timers::rearm;
use crate::message::{Method, build_request};
use crate::transport::Peer;

/// A client non-INVITE transaction for a request we send in the dialog
/// (BYE, REFER), or for the CANCEL of our outbound INVITE (RFC 3261
/// §17.1.2). Responses are matched by branch and CSeq method (§17.1.3).
#[derive(Debug)]
pub(super) struct ClientTx {
    method: Method,
    branch: String,
    /// Where it was sent (and Timer E resends it).
    peer: Peer,
    data: Vec<u8>,
    /// Timer E (UDP only).
    retransmit_at: Option<Instant>,
    interval: Duration,
    /// Timer F.
    deadline: Instant,
}

impl ClientTx {
    /// A transaction for `data`, sent to `peer` at `now`: Timer E from T1
    /// (unreliable transports only), Timer F at 64*T1.
    pub(super) fn new(
        method: Method,
        branch: String,
        peer: Peer,
        data: Vec<u8>,
        now: Instant,
        t1: Duration,
    ) -> Self {
        ClientTx {
            method,
            branch,
            peer,
            data,
            retransmit_at: (!peer.transport.is_reliable()).then(|| now + t1),
            interval: t1,
            deadline: now + t1 * 64,
        }
    }

    fn matches(&self, branch: &str, cseq_method: &str) -> bool {
        self.branch == branch && self.method.as_str() == cseq_method
    }
}

/// A call's non-INVITE client transactions awaiting a final response: at
/// most one per method (one BYE, one REFER, one CANCEL).
#[derive(Debug, Default)]
pub(super) struct ClientTxns {
    txs: Vec<ClientTx>,
}

impl ClientTxns {
    /// Sends `tx`'s request and tracks it, replacing a transaction of the
    /// same method.
    pub(super) fn start(&mut self, out: &mut Outbox, tx: ClientTx) {
        self.txs.retain(|t| t.method != tx.method);
        out.send(tx.peer, tx.data.clone());
        self.txs.push(tx);
    }

    /// Whether a `method` transaction is in flight.
    pub(super) fn has(&self, method: &Method) -> bool {
        self.txs.iter().any(|t| &t.method == method)
    }

    /// Whether a response with this top-Via branch and CSeq method is ours
    /// (RFC 3261 §17.1.3).
    pub(super) fn matches(&self, branch: &str, cseq_method: &str) -> bool {
        self.txs.iter().any(|t| t.matches(branch, cseq_method))
    }

    /// A response to one of ours. Provisional: the transaction is
    /// Proceeding and retransmits every T2 (§17.1.2.2). Final: the
    /// transaction is done and its method returned.
    pub(super) fn on_response(
        &mut self,
        branch: &str,
        cseq_method: &str,
        code: u16,
        t2: Duration,
    ) -> Option<Method> {
        let i = self
            .txs
            .iter()
            .position(|t| t.matches(branch, cseq_method))?;
        if code < 200 {
            if let Some(t) = self.txs.get_mut(i) {
                t.interval = t2;
            }
            return None;
        }
        Some(self.txs.remove(i).method)
    }

    /// Forgets every transaction whose method `keep` rejects.
    pub(super) fn retain(&mut self, keep: impl Fn(&Method) -> bool) {
        self.txs.retain(|t| keep(&t.method));
    }

    /// The earliest Timer E or F.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.txs
            .iter()
            .flat_map(|t| [t.retransmit_at, Some(t.deadline)])
            .flatten()
            .min()
    }

    /// Runs Timer E (retransmit, doubling up to T2, §17.1.2.2) and Timer F
    /// (give up): returns the methods of the transactions that timed out,
    /// a BYE last (so a REFER's failure is reported before a BYE's end).
    pub(super) fn on_timeout(
        &mut self,
        out: &mut Outbox,
        now: Instant,
        t2: Duration,
    ) -> Vec<Method> {
        for t in &mut self.txs {
            if let Some(at) = t.retransmit_at
                && at <= now
                && t.deadline > now
            {
                t.interval = (t.interval * 2).min(t2);
                t.retransmit_at = Some(rearm(at, t.interval, now));
                out.send(t.peer, t.data.clone());
            }
        }
        if !self.txs.iter().any(|t| t.deadline <= now) {
            return Vec::new();
        }
        let (mut expired, live): (Vec<_>, Vec<_>) = std::mem::take(&mut self.txs)
            .into_iter()
            .partition(|t| t.deadline <= now);
        self.txs = live;
        expired.sort_by_key(|t| t.method == Method::Bye);
        expired.into_iter().map(|t| t.method).collect()
    }
}

/// State of our INVITE client transaction (RFC 3261 §17.1.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum UacState {
    /// INVITE sent, nothing back yet (Timers A and B run).
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A final non-2xx arrived and was ACKed; retransmissions get the ACK again.
    Completed,
    /// A 2xx arrived: the dialog exists; 2xx retransmissions get the dialog's ACK.
    Accepted,
    /// Given up (Timer B, no answer to our CANCEL, transport error).
    Terminated,
}

/// The INVITE client transaction of an outbound call (RFC 3261 §17.1.1),
/// kept for the call's life so that 2xx retransmissions still get an ACK.
#[derive(Debug)]
pub(super) struct InviteClientTx {
    pub(super) state: UacState,
    pub(super) branch: String,
    pub(super) cseq: u32,
    pub(super) request_uri: String,
    /// The INVITE's Via value (CANCEL and the non-2xx ACK repeat it, §9.1, §17.1.1.3).
    pub(super) via: String,
    /// The INVITE's To value (no tag).
    pub(super) to: String,
    /// The INVITE, resent by Timer A.
    pub(super) invite: Vec<u8>,
    /// The INVITE's destination (CANCEL and the non-2xx ACK go there too).
    pub(super) peer: Peer,
    /// Timer A (UDP only).
    pub(super) retransmit_at: Option<Instant>,
    pub(super) interval: Duration,
    /// Timer B (Calling only).
    pub(super) timer_b: Option<Instant>,
    /// The ACK to repeat for retransmitted final responses, and where to.
    pub(super) ack: Option<(Peer, Vec<u8>)>,
    /// Until when a 2xx retransmission gets the ACK again (64*T1, §13.2.2.4).
    pub(super) ack_until: Option<Instant>,
}

impl InviteClientTx {
    /// No final response yet (Calling or Proceeding).
    pub(super) fn is_pending(&self) -> bool {
        matches!(self.state, UacState::Calling | UacState::Proceeding)
    }

    /// Timers A and B, which run while Calling.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let calling = self.state == UacState::Calling;
        [
            self.retransmit_at.filter(|_| calling),
            self.timer_b.filter(|_| calling),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Stops Timers A and B.
    pub(super) fn stop_timers(&mut self) {
        self.retransmit_at = None;
        self.timer_b = None;
    }

    /// A provisional response: Calling becomes Proceeding, which stops
    /// Timer A, and Timer B no longer applies.
    pub(super) fn on_provisional(&mut self) {
        if self.state == UacState::Calling {
            self.state = UacState::Proceeding;
            self.stop_timers();
        }
    }

    /// Timer B, if due while Calling: the transaction is Terminated and
    /// true returned (the caller reports the failure).
    pub(super) fn fire_timer_b(&mut self, now: Instant) -> bool {
        let due = self.timer_b.is_some_and(|at| at <= now);
        if self.state != UacState::Calling || !due {
            return false;
        }
        self.state = UacState::Terminated;
        self.stop_timers();
        true
    }

    /// Timer A, if due while Calling: resends the INVITE, the interval
    /// doubling without the T2 cap.
    pub(super) fn fire_timer_a(&mut self, out: &mut Outbox, now: Instant) {
        if self.state != UacState::Calling {
            return;
        }
        if let Some(at) = self.retransmit_at.filter(|at| *at <= now) {
            self.interval *= 2;
            self.retransmit_at = Some(rearm(at, self.interval, now));
            out.send(self.peer, self.invite.clone());
        }
    }

    /// A request in this transaction (same Request-URI, Via and CSeq
    /// number): the ACK of a non-2xx (§17.1.1.3, `to` from the response) or
    /// our CANCEL (§9.1, `to` as in the INVITE). `from` is our From value,
    /// tag included.
    pub(super) fn request(
        &self,
        method: &Method,
        from: String,
        to: String,
        call_id: &str,
        user_agent: &str,
    ) -> Vec<u8> {
        let headers: Vec<(&str, String)> = vec![
            ("Via", self.via.clone()),
            ("Max-Forwards", "70".to_string()),
            ("From", from),
            ("To", to),
            ("Call-ID", call_id.to_string()),
            ("CSeq", format!("{} {}", self.cseq, method.as_str())),
            ("User-Agent", user_agent.to_string()),
        ];
        build_request(method.as_str(), &self.request_uri, &headers, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp() -> Peer {
        Peer::udp("192.0.2.1:5060".parse().unwrap())
    }

    #[test]
    fn timer_e_doubles_to_t2_then_timer_f_reports_bye_last() {
        let t0 = Instant::now();
        let (t1, t2) = (Duration::from_millis(500), Duration::from_secs(4));
        let mut out = Outbox::default();
        let mut txs = ClientTxns::default();
        let bye = ClientTx::new(
            Method::Bye,
            "z9hG4bKb".into(),
            udp(),
            b"BYE".to_vec(),
            t0,
            t1,
        );
        let refer = ClientTx::new(
            Method::Refer,
            "z9hG4bKr".into(),
            udp(),
            b"REFER".to_vec(),
            t0,
            t1,
        );
        txs.start(&mut out, bye);
        txs.start(&mut out, refer);
        assert_eq!(out.pop_transmit().unwrap().data, b"BYE");
        assert_eq!(out.pop_transmit().unwrap().data, b"REFER");
        assert_eq!(txs.next_deadline(), Some(t0 + t1));

        let mut sent = Vec::new();
        while let Some(at) = txs.next_deadline() {
            if !txs.on_timeout(&mut out, at, t2).is_empty() {
                assert_eq!(at, t0 + t1 * 64);
                break;
            }
            while let Some(t) = out.pop_transmit() {
                if t.data == b"BYE" {
                    sent.push(at - t0);
                }
            }
        }
        let ms: Vec<u128> = sent.iter().map(Duration::as_millis).collect();
        assert_eq!(
            &ms[..6],
            &[500, 1500, 3500, 7500, 11500, 15500],
            "T1, then doubling, capped at T2"
        );
        assert!(!txs.has(&Method::Bye));
    }

    #[test]
    fn timeout_order_and_responses() {
        let t0 = Instant::now();
        let (t1, t2) = (Duration::from_millis(500), Duration::from_secs(4));
        let mut out = Outbox::default();
        let mut txs = ClientTxns::default();
        let bye = ClientTx::new(Method::Bye, "b".into(), udp(), Vec::new(), t0, t1);
        let refer = ClientTx::new(Method::Refer, "r".into(), udp(), Vec::new(), t0, t1);
        txs.start(&mut out, bye);
        txs.start(&mut out, refer);
        let expired = txs.on_timeout(&mut out, t0 + t1 * 64, t2);
        assert_eq!(expired, vec![Method::Refer, Method::Bye]);

        let cancel = ClientTx::new(Method::Cancel, "c".into(), udp(), Vec::new(), t0, t1);
        txs.start(&mut out, cancel);
        assert!(txs.matches("c", "CANCEL"));
        assert!(!txs.matches("c", "BYE"));
        assert_eq!(txs.on_response("c", "CANCEL", 100, t2), None);
        assert!(txs.has(&Method::Cancel));
        assert_eq!(
            txs.on_response("c", "CANCEL", 200, t2),
            Some(Method::Cancel)
        );
        assert!(!txs.has(&Method::Cancel));
    }
}
