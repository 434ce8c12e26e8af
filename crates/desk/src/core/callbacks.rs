//! Callback entries in the desk core: booked ones that fall due (and
//! admins' cancellations), dialling the customer when an agent accepts,
//! and what a callback leg reports back.

use super::*;

impl DeskCore {
    /// `number` is not one the policy lets the desk dial: the callback is
    /// given up (recorded as abandoned, "number not allowed").
    pub(super) fn refuse_number(&mut self, call: &CallId, number: &str, now: Instant) {
        tracing::warn!(call = %call.as_str(), %number, "callback number not allowed by --dial-allow: not dialled");
        let attempts = self.calls.get(call).and_then(|c| c.callback).unwrap_or(0);
        self.progress(
            call,
            "abandoned",
            attempts,
            None,
            Some("number not allowed"),
        );
        self.acd.cancel_callback(call, now);
        if self.calls.remove(call).is_some() {
            self.out
                .push_back(DeskOutput::Forget { call: call.clone() });
        }
    }

    pub(super) fn callback_ended(
        &mut self,
        call: CallId,
        attempt: u32,
        answered: bool,
        now: Instant,
    ) {
        // A leg of an earlier attempt (its agent was lost, the entry went
        // back and another agent is dialling now) has no say.
        let current = self
            .calls
            .get(&call)
            .is_some_and(|c| c.callback == Some(attempt) && c.agent.is_some());
        if !current {
            return;
        }
        if let Some(agent) = self.calls.get(&call).and_then(|c| c.agent.clone()) {
            let by = if answered { "caller" } else { "no_answer" };
            self.tell_agent(
                &agent,
                ServerMsg::Ended {
                    call: call.as_str().to_owned(),
                    by: by.into(),
                },
            );
        }
        let (attempts, agent) = self
            .calls
            .get(&call)
            .map(|c| (c.callback.unwrap_or(attempt), c.agent.clone()))
            .unwrap_or((attempt, None));
        if answered {
            self.acd.callback_done(&call, now);
            self.progress(&call, "done", attempts, agent, Some("answered"));
        } else {
            self.acd.callback_failed(&call, now);
            // Back in its place (or abandoned: the ACD says so next).
            self.progress(&call, "queued", attempts, agent, Some("no answer"));
        }
        if let Some(c) = self.calls.get_mut(&call) {
            c.agent = None;
        }
        self.pending_forget.push(call);
    }

    /// Takes the due bookings the desk does not hold yet as callback
    /// entries, and drops cancelled ones still waiting for an agent.
    pub(super) fn take_booked(
        &mut self,
        due: Vec<BookedCallback>,
        cancelled: Vec<String>,
        now: Instant,
    ) {
        for entry in cancelled {
            let call = CallId::new(entry);
            let waiting = self
                .calls
                .get(&call)
                .is_some_and(|c| c.callback.is_some() && c.agent.is_none());
            if waiting {
                tracing::info!(call = %call.as_str(), "callback cancelled by an admin");
                self.acd.cancel_callback(&call, now);
                self.calls.remove(&call);
                self.out.push_back(DeskOutput::Forget { call });
            }
        }
        for b in due {
            let call = CallId::new(b.entry.clone());
            if self.calls.contains_key(&call) || self.unplaced.contains(&b.entry) {
                continue;
            }
            if !self.dial_policy.allows(&b.number) {
                tracing::warn!(call = %call.as_str(), number = %b.number, "booked callback to a number --dial-allow does not allow: given up");
                self.progress(
                    &call,
                    "abandoned",
                    b.attempts,
                    None,
                    Some("number not allowed"),
                );
                self.unplaced.insert(b.entry);
                continue;
            }
            let queue = match b
                .queue
                .clone()
                .or_else(|| self.acd.queues().next().map(|q| q.name.as_str().to_owned()))
            {
                Some(q) => q,
                None => {
                    tracing::warn!(call = %call.as_str(), "a due callback has no queue to go to");
                    self.unplaced.insert(b.entry);
                    continue;
                }
            };
            // An overflow's entry goes back to the caller's place.
            let waited = b.queued_since.map_or(Duration::ZERO, |t| {
                let now_wall = crate::clock::wall_at(self.epoch, now);
                now_wall.duration_since(t).unwrap_or_default()
            });
            if let Err(e) = self.acd.rejoin_callback(
                call.clone(),
                &QueueName::new(queue.clone()),
                b.attempts,
                waited,
                now,
            ) {
                tracing::warn!(call = %call.as_str(), %queue, error = %e, "cannot queue a due callback");
                self.unplaced.insert(b.entry);
                continue;
            }
            tracing::info!(call = %call.as_str(), %queue, attempts = b.attempts, "booked callback due: queued");
            let info = CallInfo {
                call: b.entry.clone(),
                queue,
                priority: 0,
                issue_type: None,
                caller: b.number.clone(),
                dialable: true,
                // Unknown trunk: the dialler's --callback-via must say.
                reply_via: b
                    .via
                    .unwrap_or(std::net::SocketAddr::from(([0, 0, 0, 0], 0))),
                path: vec![format!("callback booked for {}", b.slot)],
                data: serde_json::json!({ "flow": { "callback": { "number": b.number, "slot": b.slot } } }),
            };
            self.calls
                .insert(call.clone(), DeskCall::new(info, Some(b.attempts)));
            self.progress(&call, "queued", b.attempts, None, None);
        }
    }

    /// `agent` accepted callback entry `call`: the shell dials the
    /// customer, and the new leg hears the desk from now on.
    pub(super) fn dial_callback(&mut self, call: &CallId, agent: &AgentId, now: Instant) {
        let Some(number) = self.calls.get(call).map(|c| c.info.caller.clone()) else {
            return;
        };
        if !self.dial_policy.allows(&number) {
            // Checked when the entry was taken; a policy changed since.
            self.refuse_number(call, &number, now);
            return;
        }
        if let Err(cap) = self.dial_log.try_place(now, &number, &self.dial_policy) {
            let (legs, limit) = match cap {
                crate::policy::DialCap::Total => ("callback legs", self.dial_policy.max_per_hour()),
                crate::policy::DialCap::PerNumber => (
                    "callback legs to this number",
                    self.dial_policy.max_per_number_per_hour(),
                ),
            };
            tracing::warn!(call = %call.as_str(), cap = limit, "hourly cap on {legs} reached: the attempt waits");
            self.acd.callback_deferred(call, now);
            return;
        }
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        let attempt = c.callback.unwrap_or(0) + 1;
        c.callback = Some(attempt);
        c.callback_answered = false;
        let request = DialRequest {
            entry: call.as_str().to_owned(),
            number: c.info.caller.clone(),
            via: c.info.reply_via,
            agent: agent.as_str().to_owned(),
            queue: c.info.queue.clone(),
            attempt,
        };
        self.progress(call, "dialing", attempt, Some(agent.clone()), None);
        self.out.push_back(DeskOutput::Dial(request));
    }
}
