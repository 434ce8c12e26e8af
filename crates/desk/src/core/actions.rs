//! Carrying out the ACD's actions: offers and withdrawals to the pages,
//! notices to the calls, the bridge's go-ahead, overflows (a callback for a
//! caller with no number to dial becomes voicemail) and agents lost.

use super::*;

impl DeskCore {
    pub(super) fn drain_actions(&mut self, now: Instant) {
        let mut changed = false;
        while let Some(action) = self.acd.poll_action() {
            match action {
                AcdAction::Offer {
                    call,
                    agent,
                    expires,
                    ..
                } => {
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.offer_expires = Some(expires);
                    }
                    if let Some(msg) = self.offer_message(&call, now) {
                        self.tell_agent(&agent, msg);
                    }
                    self.notify(
                        &call,
                        DeskNotice::Offered {
                            agent: agent.as_str().to_owned(),
                        },
                    );
                }
                AcdAction::Withdraw { call, agent } => {
                    self.tell_agent(
                        &agent,
                        ServerMsg::OfferWithdrawn {
                            call: call.as_str().to_owned(),
                        },
                    );
                }
                AcdAction::Connect { call, agent } => {
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.agent = Some(agent.clone());
                    }
                    if self.calls.get(&call).is_some_and(|c| c.callback.is_some()) {
                        self.dial_callback(&call, &agent, now);
                        continue;
                    }
                    self.notify(
                        &call,
                        DeskNotice::Accepted {
                            agent: agent.as_str().to_owned(),
                        },
                    );
                }
                AcdAction::OfferTimedOut { .. } => {}
                AcdAction::Position {
                    call,
                    position,
                    estimated_wait,
                } => {
                    self.notify(
                        &call,
                        DeskNotice::Position {
                            position,
                            estimated_wait,
                        },
                    );
                }
                AcdAction::Overflow { call, target } => self.overflow(call, target, now),
                AcdAction::CallbackAbandoned { call, attempts } => {
                    tracing::warn!(call = %call.as_str(), attempts, "callback abandoned: the customer never answered");
                    self.progress(&call, "abandoned", attempts, None, None);
                    self.forget_if_done(&call);
                }
                AcdAction::AgentState { agent, state, .. } => {
                    changed = true;
                    self.on_agent_state(&agent, &state, now);
                }
                AcdAction::AgentLost {
                    call,
                    agent,
                    requeued,
                } => {
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.agent = None;
                    }
                    self.notify(
                        &call,
                        DeskNotice::AgentLost {
                            agent: agent.as_str().to_owned(),
                            requeued,
                        },
                    );
                    if !requeued {
                        self.forget_if_done(&call);
                    }
                }
                AcdAction::OfferOutcome {
                    call,
                    agent,
                    outcome,
                    ..
                } => {
                    self.notify(
                        &call,
                        DeskNotice::OfferEnded {
                            agent: agent.as_str().to_owned(),
                            outcome: outcome.name(),
                        },
                    );
                }
            }
        }
        if changed {
            self.out.push_back(DeskOutput::StatesChanged);
        }
    }

    pub(super) fn overflow(&mut self, call: CallId, target: Overflow, now: Instant) {
        // A callback needs a number to dial: a caller ID that is a SIP user
        // name (`caller`) gets voicemail instead, and the entry the ACD kept
        // is let go.
        let undialable = matches!(target, Overflow::Callback)
            && self
                .calls
                .get(&call)
                .is_some_and(|c| !c.info.dialable || !self.dial_policy.allows(&c.info.caller));
        let target = if undialable {
            tracing::info!(call = %call.as_str(), "no number to call back: voicemail instead");
            self.acd.cancel_callback(&call, now);
            Overflow::Voicemail
        } else {
            target
        };
        let callback = matches!(target, Overflow::Callback);
        self.notify(&call, DeskNotice::Overflow { target });
        if callback && let Some(c) = self.calls.get_mut(&call) {
            // The entry keeps its place; the caller hangs up and hears
            // nothing more of it.
            c.callback = Some(0);
            self.out
                .push_back(DeskOutput::Detach { call: call.clone() });
        }
        self.forget_if_done(&call);
    }

    pub(super) fn offer_message(&self, call: &CallId, now: Instant) -> Option<ServerMsg> {
        let c = self.calls.get(call)?;
        let expires = c
            .offer_expires
            .map(|t| t.saturating_duration_since(now).as_millis() as u64)
            .unwrap_or(0);
        Some(ServerMsg::Offer {
            call: call.as_str().to_owned(),
            caller: c.info.caller.clone(),
            issue_type: c.info.issue_type.clone(),
            path: c.info.path.clone(),
            data: c.info.data.clone(),
            expires_in_ms: expires,
            callback: c.callback.is_some(),
        })
    }
}
