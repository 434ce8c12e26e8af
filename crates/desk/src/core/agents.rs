//! The agents' side of the desk core: their pages (which connection is
//! current, what a page may ask in which state), the reconnect grace of a
//! page that dropped off, agent states as pages see them, wrap-up forms,
//! and the overview an idle page shows.

use super::*;

impl DeskCore {
    pub(super) fn agent_connected(&mut self, agent: String, conn: u64, now: Instant) {
        let id = AgentId::new(agent.clone());
        if self.acd.agent(&id).is_none() {
            self.acd
                .upsert_agent(AgentConfig::new(id.clone(), agent), now);
        }
        if self.grace.remove(&id).is_some() {
            tracing::info!(agent = %id.as_str(), "agent page back within the grace period");
        }
        self.sockets.insert(id.clone(), conn);
        if let Some(view) = self.acd.agent(&id)
            && view.state == AgentState::Offline
        {
            let _ = self.acd.agent_login(&id, now);
        }
    }

    pub(super) fn agent_disconnected(
        &mut self,
        id: AgentId,
        conn: u64,
        dropped: bool,
        now: Instant,
    ) {
        if self.sockets.get(&id) != Some(&conn) {
            return;
        }
        self.sockets.remove(&id);
        let state = self.acd.agent(&id).map(|v| v.state);
        let busy = matches!(
            state,
            Some(
                AgentState::Ringing { .. } | AgentState::OnCall { .. } | AgentState::WrapUp { .. }
            )
        );
        if dropped && busy {
            tracing::info!(agent = %id.as_str(), grace_s = RECONNECT_GRACE.as_secs(), "agent page dropped off; holding their call");
            if let Some(AgentState::OnCall { call }) = state {
                self.out.push_back(DeskOutput::CheckMedia {
                    agent: id.clone(),
                    call,
                });
            }
            self.grace.insert(id, now + RECONNECT_GRACE);
        } else {
            self.acd.agent_disconnected(&id, now);
        }
    }

    pub(super) fn on_message(
        &mut self,
        agent: &AgentId,
        msg: ClientMsg,
        now: Instant,
    ) -> Result<(), String> {
        let current = self.acd.agent(agent).map(|v| v.state);
        match msg {
            ClientMsg::Hello {} => {
                if let Some(state) = current {
                    self.send_state(agent, &state, now);
                    if let AgentState::Ringing { call } = &state
                        && let Some(offer) = self.offer_message(call, now)
                    {
                        self.tell_agent(agent, offer);
                    }
                }
                Ok(())
            }
            ClientMsg::Available { on: true, .. } => self
                .acd
                .set_available(agent, now)
                .map_err(|e| e.to_string()),
            ClientMsg::Available { on: false, reason } => self
                .acd
                .set_away(agent, reason.unwrap_or_else(|| "away".into()), now)
                .map_err(|e| e.to_string()),
            ClientMsg::Answer { call } => self
                .acd
                .accept(agent, &CallId::new(call), now)
                .map_err(|e| e.to_string()),
            ClientMsg::Decline { call } => self
                .acd
                .decline(agent, &CallId::new(call), now)
                .map_err(|e| e.to_string()),
            ClientMsg::SdpOffer { call, sdp } => {
                let call_id = CallId::new(call.clone());
                if current
                    != Some(AgentState::OnCall {
                        call: call_id.clone(),
                    })
                {
                    return Err(format!("not on call {call}"));
                }
                if !self.calls.contains_key(&call_id) {
                    return Err(format!("call {call} is gone"));
                }
                self.out.push_back(DeskOutput::AcceptSdp {
                    agent: agent.clone(),
                    call: call_id,
                    sdp,
                });
                Ok(())
            }
            ClientMsg::Hangup { call } => {
                let call_id = CallId::new(call);
                let ringing_callback = self
                    .calls
                    .get(&call_id)
                    .is_some_and(|c| c.callback.is_some() && !c.callback_answered);
                // The queue the call is in now (after an overflow, the new one).
                let survey = self
                    .acd
                    .call(&call_id)
                    .map(|c| c.queue)
                    .filter(|q| self.acd.queue_config(q).is_some_and(|c| c.survey))
                    .filter(|_| !ringing_callback)
                    .map(|q| q.as_str().to_owned());
                if ringing_callback {
                    // The agent gave up while the customer's phone rang: an
                    // attempt without an answer; the entry keeps its place.
                    if current
                        != Some(AgentState::OnCall {
                            call: call_id.clone(),
                        })
                    {
                        return Err(format!("not on call {}", call_id.as_str()));
                    }
                    self.acd.callback_failed(&call_id, now);
                } else {
                    self.acd
                        .agent_hung_up(agent, &call_id, now)
                        .map_err(|e| e.to_string())?;
                }
                self.notify(
                    &call_id,
                    DeskNotice::AgentHungUp {
                        agent: agent.as_str().to_owned(),
                        survey,
                    },
                );
                Ok(())
            }
            ClientMsg::Hold { on } => self.notify_current(current, DeskNotice::Hold { on }),
            ClientMsg::Mute { on } => self.notify_current(current, DeskNotice::Mute { on }),
            ClientMsg::PauseRecording { on } => {
                let notice = DeskNotice::RecordingPause {
                    agent: agent.as_str().to_owned(),
                    on,
                };
                self.notify_current(current, notice).map_err(|_| {
                    "no call in progress: there is no recording to pause".to_owned()
                })?;
                self.tell_agent(agent, ServerMsg::Recording { paused: on });
                Ok(())
            }
            ClientMsg::Dtmf { digit } => {
                let Some(d) = digit.chars().next().filter(|_| digit.chars().count() == 1) else {
                    return Err(format!("not one key: {digit:?}"));
                };
                self.notify_current(current, DeskNotice::Dtmf { digit: d })
            }
            ClientMsg::WrapUp {
                call,
                disposition,
                notes,
            } => {
                let call_id = CallId::new(call);
                match self.wrapping.get_mut(agent) {
                    Some((c, _, submitted)) if *c == call_id => {
                        *submitted = Some((disposition, notes));
                    }
                    _ => return Err("not in wrap-up for that call".into()),
                }
                self.acd.wrap_up_done(agent, now).map_err(|e| e.to_string())
            }
            // Answered by the socket itself.
            ClientMsg::Ping {} => Ok(()),
        }
    }

    pub(super) fn notify_current(
        &mut self,
        state: Option<AgentState>,
        notice: DeskNotice,
    ) -> Result<(), String> {
        match state {
            Some(AgentState::OnCall { call }) => {
                self.notify(&call, notice);
                Ok(())
            }
            _ => Err("no call in progress".into()),
        }
    }

    pub(super) fn on_agent_state(&mut self, agent: &AgentId, state: &AgentState, now: Instant) {
        // Leaving wrap-up closes the call's record on the actor's side.
        if !matches!(state, AgentState::WrapUp { .. })
            && let Some((call, since, submitted)) = self.wrapping.remove(agent)
        {
            let (disposition, notes) = match submitted {
                Some((d, n)) => (Some(d), n),
                None => (None, String::new()),
            };
            self.notify(
                &call,
                DeskNotice::WrapUpDone {
                    agent: agent.as_str().to_owned(),
                    disposition,
                    notes,
                    seconds: now.saturating_duration_since(since).as_secs(),
                },
            );
            let n = self.finished.get(agent).map_or(0, |f| f.0) + 1;
            self.finished.insert(agent.clone(), (n, call.clone()));
            self.forget_if_done(&call);
        }
        if let AgentState::WrapUp { call, until } = state {
            self.wrapping
                .insert(agent.clone(), (call.clone(), now, None));
            self.tell_agent(
                agent,
                ServerMsg::WrapUp {
                    call: call.as_str().to_owned(),
                    until: self.unix_ms(*until),
                },
            );
        }
        self.send_state(agent, state, now);
    }

    pub(super) fn send_state(&mut self, agent: &AgentId, state: &AgentState, now: Instant) {
        let (page, reason) = match state {
            AgentState::Offline => (PageState::Offline, None),
            AgentState::Available => (PageState::Available, None),
            AgentState::Ringing { .. } => (PageState::Ringing, None),
            AgentState::OnCall { .. } => (PageState::OnCall, None),
            AgentState::WrapUp { .. } => (PageState::WrapUp, None),
            AgentState::Away { reason } => (PageState::Away, Some(reason.clone())),
        };
        let since = self.acd.agent(agent).and_then(|v| v.since).unwrap_or(now);
        let msg = ServerMsg::State {
            state: page,
            since: self.unix_ms(since),
            reason,
        };
        self.tell_agent(agent, msg);
    }

    /// Agents whose page did not come back in time are gone.
    pub(super) fn expire_grace(&mut self, now: Instant) {
        let expired: Vec<AgentId> = self
            .grace
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(a, _)| a.clone())
            .collect();
        for agent in expired {
            self.grace.remove(&agent);
            if !self.sockets.contains_key(&agent) {
                tracing::info!(agent = %agent.as_str(), "agent page did not come back");
                self.acd.agent_disconnected(&agent, now);
            }
        }
    }

    /// The agent's queues (waiting callers, longest wait, agents
    /// available) and the callback entries in them.
    pub fn overview(&self, agent: &str, now: Instant) -> DeskOverview {
        let agent = AgentId::new(agent.to_owned());
        let mut out = DeskOverview::default();
        if let Some((n, call)) = self.finished.get(&agent) {
            out.finished = *n;
            out.last_finished = Some(call.as_str().to_owned());
        }
        let available = |id: &AgentId| {
            self.acd
                .agent(id)
                .is_some_and(|v| v.state == AgentState::Available)
        };
        let mut queues: Vec<_> = self
            .acd
            .queues()
            .filter(|q| q.members.contains(&agent))
            .collect();
        queues.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        for q in queues {
            let callers: Vec<_> = q.waiting.iter().filter(|c| !c.callback).collect();
            let callbacks: Vec<_> = q.waiting.iter().filter(|c| c.callback).collect();
            out.queues.push(QueueSummary {
                name: q.name.as_str().to_owned(),
                waiting: callers.len(),
                longest_wait_s: callers
                    .iter()
                    .map(|c| c.waited(now).as_secs())
                    .max()
                    .unwrap_or(0),
                agents_available: q.members.iter().filter(|m| available(m)).count(),
                callbacks: callbacks.len(),
            });
            for c in callbacks {
                out.callbacks.push(CallbackSummary {
                    call: c.call.as_str().to_owned(),
                    queue: q.name.as_str().to_owned(),
                    caller: self
                        .calls
                        .get(&c.call)
                        .map(|d| d.info.caller.clone())
                        .unwrap_or_default(),
                    issue_type: c.issue_type.clone(),
                    waited_s: c.waited(now).as_secs(),
                    attempts: c.attempts,
                    position: c.position,
                });
            }
        }
        out.callbacks.sort_by_key(|c| std::cmp::Reverse(c.waited_s));
        out
    }
}
