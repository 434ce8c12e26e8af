//! Callback entries (see the crate documentation, "Callback entries"):
//! booking one, turning a waiting call into one in place, its outbound
//! attempt succeeding, failing or being cancelled, its agent vanishing, its
//! retry delay, and giving it up ([`AcdAction::CallbackAbandoned`]).

use std::time::{Duration, Instant};

use super::{Acd, Call, Callback};
use crate::action::AcdAction;
use crate::error::AcdError;
use crate::ids::{AgentId, CallId, QueueName};

impl Acd {
    /// A callback booked earlier (in the IVR, or restored after a restart)
    /// is due: it enters `queue` as a callback entry at the back, with
    /// `attempts` already spent, and is offered to agents like a call. It
    /// never overflows and nobody hears positions for it.
    pub fn enqueue_callback(
        &mut self,
        call: CallId,
        queue: &QueueName,
        attempts: u32,
        now: Instant,
    ) -> Result<(), AcdError> {
        self.rejoin_callback(call, queue, attempts, Duration::ZERO, now)
    }

    /// A callback entry that keeps a caller's place: like
    /// [`Acd::enqueue_callback`], but placed as if it had queued `waited`
    /// ago (when the caller queued, before a restart or a change of
    /// cluster leader).
    pub fn rejoin_callback(
        &mut self,
        call: CallId,
        queue: &QueueName,
        attempts: u32,
        waited: Duration,
        now: Instant,
    ) -> Result<(), AcdError> {
        let now = self.begin(now);
        let callback = Callback {
            attempts,
            retry_after: None,
            queue: queue.clone(),
        };
        let since = now.checked_sub(waited).unwrap_or(now);
        self.insert_call(call, queue, 0, None, Some(callback), since)?;
        self.end(now);
        Ok(())
    }

    /// The caller asked to be called back while waiting, keeping their
    /// place: the call becomes a callback entry in place (same queue,
    /// priority and arrival order), its offers are withdrawn, and it is
    /// offered to agents like a call. No action announces it (the shell
    /// asked); the shell then hangs up the caller's leg, and the
    /// [`Acd::call_ended`] for that leg leaves the entry alone.
    pub fn request_callback(&mut self, call: &CallId, now: Instant) -> Result<(), AcdError> {
        let now = self.begin(now);
        let c = self
            .calls
            .get(call)
            .ok_or_else(|| AcdError::UnknownCall(call.clone()))?;
        if c.callback.is_some() {
            return Err(AcdError::AlreadyCallback(call.clone()));
        }
        if c.agent.is_some() {
            return Err(AcdError::AlreadyConnected(call.clone()));
        }
        self.make_callback(call, now);
        self.end(now);
        Ok(())
    }

    /// The outbound leg of callback entry `call` ended after the customer
    /// was connected to the agent: the entry leaves the ACD and the agent
    /// goes to wrap-up, as [`Acd::call_ended`] for a connected call. Ignored
    /// unless `call` is a callback entry connected to an agent (for
    /// instance after [`AcdAction::AgentLost`] put it back in its place).
    pub fn callback_done(&mut self, call: &CallId, now: Instant) {
        let now = self.begin(now);
        if let Some(agent) = self.connected_callback(call) {
            self.calls.remove(call);
            self.after_call(&agent, now);
        }
        self.end(now);
    }

    /// The outbound leg of callback entry `call` failed (busy, no answer)
    /// after an agent accepted it: the agent goes to wrap-up as after a
    /// call, and the entry goes back to its place with one more failed
    /// attempt, not offered again before the queue's
    /// [`QueueConfig::callback_retry`](crate::QueueConfig::callback_retry).
    /// After
    /// [`QueueConfig::callback_attempts`](crate::QueueConfig::callback_attempts)
    /// failed attempts (or if its queue was removed meanwhile) it leaves the
    /// ACD instead, with
    /// [`AcdAction::CallbackAbandoned`]. Ignored unless `call` is a callback
    /// entry connected to an agent.
    pub fn callback_failed(&mut self, call: &CallId, now: Instant) {
        self.callback_not_placed(call, now, true);
    }

    /// The callback leg was not placed at all (a dial cap held it back):
    /// as [`callback_failed`](Self::callback_failed), but the attempt does
    /// not count — the entry waits `callback_retry` and keeps all its tries.
    pub fn callback_deferred(&mut self, call: &CallId, now: Instant) {
        self.callback_not_placed(call, now, false);
    }

    fn callback_not_placed(&mut self, call: &CallId, now: Instant, counts: bool) {
        let now = self.begin(now);
        if let Some(agent) = self.connected_callback(call) {
            let queues = &self.queues;
            let keep = self.calls.get_mut(call).is_some_and(|c| {
                let policy = queues
                    .get(&c.queue)
                    .map(|q| (q.config.callback_attempts.max(1), q.config.callback_retry));
                c.agent = None;
                c.tried.clear();
                c.last_position = None;
                let Some(cb) = c.callback.as_mut() else {
                    return false;
                };
                if counts {
                    cb.attempts = cb.attempts.saturating_add(1);
                }
                match policy {
                    Some((limit, retry)) if cb.attempts < limit => {
                        cb.retry_after = retry_at(now, retry);
                        true
                    }
                    _ => false,
                }
            });
            self.after_call(&agent, now);
            if !keep {
                self.abandon_callback(call);
            }
        }
        self.end(now);
    }

    /// The callback request is cancelled (by an admin or the customer):
    /// offers are withdrawn and the entry leaves the ACD; an agent already
    /// on it goes to wrap-up (the shell ends the outbound leg). Ignored
    /// unless `call` is a callback entry.
    pub fn cancel_callback(&mut self, call: &CallId, now: Instant) {
        let now = self.begin(now);
        if self.calls.get(call).is_some_and(|c| c.callback.is_some()) {
            self.remove_call(call, now);
        }
        self.end(now);
    }

    // ----- the machine ---------------------------------------------------

    /// Makes waiting `call` a callback entry in place: same queue, priority,
    /// arrival time and order, so its position does not change.
    pub(super) fn make_callback(&mut self, call: &CallId, at: Instant) {
        self.withdraw_all(call, at);
        if let Some(c) = self.calls.get_mut(call) {
            c.tried.clear();
            c.callback = Some(Callback {
                attempts: 0,
                retry_after: None,
                queue: c.queue.clone(),
            });
        }
    }

    /// The agent talking on callback entry `call`, if it is one and connected.
    fn connected_callback(&self, call: &CallId) -> Option<AgentId> {
        self.calls
            .get(call)
            .filter(|c| c.callback.is_some())
            .and_then(|c| c.agent.clone())
    }

    /// The agent on callback entry `call` vanished. Nobody is on hold: the
    /// entry goes back in its place whatever the queue's
    /// [`crate::AgentLostPolicy`], as after a failed attempt but without
    /// counting one; given up only if its queue is gone.
    pub(super) fn callback_agent_lost(&mut self, call: &CallId, agent: &AgentId, at: Instant) {
        let c = self.calls.get_mut(call).expect("connected call exists");
        let Some(cb) = c.callback.as_mut() else {
            return;
        };
        let retry = self.queues.get(&c.queue).map(|q| q.config.callback_retry);
        if let Some(retry) = retry {
            cb.retry_after = retry_at(at, retry);
            c.agent = None;
            c.tried.clear();
            c.last_position = None;
        }
        self.actions.push_back(AcdAction::AgentLost {
            call: call.clone(),
            agent: agent.clone(),
            requeued: retry.is_some(),
        });
        if retry.is_none() {
            self.abandon_callback(call);
        }
    }

    /// Lets go of callback entry `call`, which has no offer and no agent.
    pub(super) fn abandon_callback(&mut self, call: &CallId) {
        if let Some(c) = self.calls.remove(call) {
            let attempts = c.callback.map_or(0, |cb| cb.attempts);
            self.actions.push_back(AcdAction::CallbackAbandoned {
                call: call.clone(),
                attempts,
            });
        }
    }
}

impl Call {
    /// A callback entry waiting out its retry delay: holds its place but is
    /// not offered.
    pub(super) fn retry_pending(&self) -> bool {
        self.callback
            .as_ref()
            .is_some_and(|cb| cb.retry_after.is_some())
    }
}

/// When a callback entry that failed (or lost its agent) at `at` may be
/// offered again; `None` (at once) for no delay.
fn retry_at(at: Instant, retry: Duration) -> Option<Instant> {
    if retry.is_zero() {
        None
    } else {
        at.checked_add(retry)
    }
}
