//! Our server transactions (RFC 3261 §17.2): the INVITE server transaction
//! of a call — the last response (resent for retransmitted INVITEs), the
//! ACK it waits for, Timer G (resend the final response) and Timer H (give
//! up waiting for the ACK) — and the table of Completed non-INVITE server
//! transactions that answers retransmitted requests until Timer J.
//!
//! Transaction data and timers only: the responses are built, and timeouts
//! acted on, by the UAS (`uas.rs`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::outbox::Outbox;
use super::timers::{Timers, rearm};
use crate::message::{ReplyHeaders, Request};
use crate::transport::Peer;

/// The current INVITE server transaction of a call (initial or re-INVITE).
#[derive(Debug)]
pub(super) struct InviteTx {
    pub(super) branch: String,
    /// Where the INVITE came from; its responses go there (RFC 3261 §18.2.2).
    pub(super) peer: Peer,
    pub(super) cseq: u32,
    pub(super) reply: ReplyHeaders,
    /// RFC 3261 §12.1.1: copied into dialog-creating responses (initial INVITE only).
    pub(super) record_route: Vec<String>,
    pub(super) is_reinvite: bool,
    pub(super) last_response: Option<Vec<u8>>,
    pub(super) final_code: Option<u16>,
    pub(super) acked: bool,
    /// Timer G (non-2xx) or the §13.3.1.4 2xx retransmission.
    retransmit_at: Option<Instant>,
    interval: Duration,
    /// When an initial INVITE arrived, until its 2xx goes out (for the
    /// INVITE→200 histogram); `None` for re-INVITEs and stand-ins.
    pub(super) received: Option<Instant>,
    /// Timer H.
    ack_deadline: Option<Instant>,
}

impl InviteTx {
    /// A transaction for an INVITE just received: no response yet.
    pub(super) fn new(
        branch: String,
        peer: Peer,
        cseq: u32,
        reply: ReplyHeaders,
        record_route: Vec<String>,
        is_reinvite: bool,
        t1: Duration,
    ) -> Self {
        InviteTx {
            branch,
            peer,
            cseq,
            reply,
            record_route,
            is_reinvite,
            last_response: None,
            final_code: None,
            acked: false,
            retransmit_at: None,
            interval: t1,
            ack_deadline: None,
            received: None,
        }
    }

    /// Stands in, on an outbound call, for the INVITE server transaction
    /// of re-INVITEs the remote party may send once the dialog exists:
    /// "answered and ACKed", matching no branch.
    pub(super) fn stand_in(call_id: &str, peer: Peer, t1: Duration) -> Self {
        let reply = ReplyHeaders {
            vias: Vec::new(),
            from: String::new(),
            to: String::new(),
            to_has_tag: true,
            call_id: call_id.to_string(),
            cseq: String::new(),
        };
        InviteTx {
            final_code: Some(200),
            acked: true,
            ..InviteTx::new(String::new(), peer, 0, reply, Vec::new(), true, t1)
        }
    }

    /// Sends a final response `data` with status `code` and starts waiting
    /// for its ACK: Timer H (64*T1) always; resent from T1 on — a 2xx
    /// always (§13.3.1.4), a non-2xx over unreliable transports (Timer G,
    /// §17.2.1).
    pub(super) fn send_final(
        &mut self,
        out: &mut Outbox,
        now: Instant,
        t1: Duration,
        code: u16,
        data: Vec<u8>,
    ) {
        let resend = (200..300).contains(&code) || !self.peer.transport.is_reliable();
        self.final_code = Some(code);
        self.last_response = Some(data.clone());
        self.acked = false;
        self.interval = t1;
        self.retransmit_at = resend.then(|| now + t1);
        self.ack_deadline = Some(now + t1 * 64);
        out.send(self.peer, data);
    }

    /// Sends the last response again (a retransmitted INVITE).
    pub(super) fn resend_last(&self, out: &mut Outbox) {
        if let Some(data) = &self.last_response {
            out.send(self.peer, data.clone());
        }
    }

    /// No more resending and no more waiting for an ACK.
    pub(super) fn stop_timers(&mut self) {
        self.retransmit_at = None;
        self.ack_deadline = None;
    }

    /// The ACK for the final response arrived.
    pub(super) fn on_ack(&mut self) {
        self.acked = true;
        self.stop_timers();
    }

    /// Timers G and H.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        [self.retransmit_at, self.ack_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Timer G, if due: resends the final response, the interval doubling
    /// up to T2.
    pub(super) fn fire_timer_g(&mut self, out: &mut Outbox, now: Instant, t2: Duration) {
        if let Some(at) = self.retransmit_at
            && at <= now
        {
            self.resend_last(out);
            self.interval = (self.interval * 2).min(t2);
            self.retransmit_at = Some(rearm(at, self.interval, now));
        }
    }

    /// Timer H, if due: stops the transaction's timers and returns true
    /// (the ACK never came).
    pub(super) fn fire_timer_h(&mut self, now: Instant) -> bool {
        let due = self.ack_deadline.is_some_and(|at| at <= now);
        if !due {
            return false;
        }
        self.stop_timers();
        true
    }
}

/// Identifies a non-INVITE server transaction (RFC 3261 §17.2.3): the top
/// Via's branch and sent-by, and the method. A request from another host
/// reusing a branch is a new transaction, not a retransmission.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct NonInviteKey {
    branch: String,
    sent_by: String,
    method: String,
}

impl NonInviteKey {
    /// The transaction `req` belongs to.
    pub(super) fn of(req: &Request) -> Self {
        NonInviteKey {
            branch: req.branch.clone(),
            sent_by: req.sent_by.clone(),
            method: req.method.as_str().to_string(),
        }
    }
}

/// A non-INVITE server transaction in the Completed state (RFC 3261 §17.2.2).
#[derive(Debug)]
struct NonInviteTx {
    response: Vec<u8>,
    expires: Instant,
}

/// The Completed non-INVITE server transactions, each until its Timer J.
#[derive(Debug, Default)]
pub(super) struct NonInviteTxns {
    txs: HashMap<NonInviteKey, NonInviteTx>,
    expiry: Timers<NonInviteKey>,
}

impl NonInviteTxns {
    /// The response already sent in transaction `key`, for a retransmission.
    pub(super) fn response(&self, key: &NonInviteKey) -> Option<&[u8]> {
        self.txs.get(key).map(|t| t.response.as_slice())
    }

    /// Remembers the response sent in transaction `key` until `expires`.
    pub(super) fn remember(&mut self, key: NonInviteKey, response: Vec<u8>, expires: Instant) {
        self.txs
            .insert(key.clone(), NonInviteTx { response, expires });
        self.expiry.schedule(expires, key);
    }

    /// When [`Self::expire`] has work (possibly none: early, never late).
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.expiry.next()
    }

    /// Forgets the transactions whose Timer J has fired.
    pub(super) fn expire(&mut self, now: Instant) {
        while let Some((_, key)) = self.expiry.pop_due(now) {
            if self.txs.get(&key).is_some_and(|t| t.expires <= now) {
                self.txs.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> ReplyHeaders {
        ReplyHeaders {
            vias: Vec::new(),
            from: String::new(),
            to: String::new(),
            to_has_tag: false,
            call_id: "c".into(),
            cseq: "1 INVITE".into(),
        }
    }

    #[test]
    fn non_2xx_over_tcp_is_not_resent_but_waits_for_ack() {
        let t0 = Instant::now();
        let t1 = Duration::from_millis(500);
        let tcp = Peer::tcp("192.0.2.1:5060".parse().unwrap(), 1);
        let mut out = Outbox::default();
        let mut tx = InviteTx::new("b".into(), tcp, 1, reply(), Vec::new(), false, t1);
        tx.send_final(&mut out, t0, t1, 486, b"486".to_vec());
        assert_eq!(tx.next_deadline(), Some(t0 + t1 * 64));
        tx.send_final(&mut out, t0, t1, 200, b"200".to_vec());
        assert_eq!(
            tx.next_deadline(),
            Some(t0 + t1),
            "a 2xx is resent on TCP too"
        );
        assert!(!tx.fire_timer_h(t0));
        assert!(tx.fire_timer_h(t0 + t1 * 64));
        assert_eq!(tx.next_deadline(), None);
    }

    #[test]
    fn completed_non_invite_transactions_expire() {
        let t0 = Instant::now();
        let mut txns = NonInviteTxns::default();
        let key = NonInviteKey {
            branch: "b".into(),
            sent_by: "192.0.2.1:5060".into(),
            method: "BYE".into(),
        };
        txns.remember(key.clone(), b"200".to_vec(), t0 + Duration::from_secs(32));
        assert_eq!(txns.response(&key), Some(&b"200"[..]));
        txns.expire(t0);
        assert!(txns.response(&key).is_some());
        // Answered again later: the old expiry entry no longer applies.
        txns.remember(key.clone(), b"200".to_vec(), t0 + Duration::from_secs(40));
        txns.expire(t0 + Duration::from_secs(32));
        assert!(txns.response(&key).is_some());
        txns.expire(t0 + Duration::from_secs(40));
        assert!(txns.response(&key).is_none());
        assert_eq!(txns.next_expiry(), None);
    }
}
