//! Queues: adding, changing and removing them, the service order of the
//! calls waiting in them, the positions announced to callers and the wait
//! estimates built on recent handle times.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::{Acd, Call, Queue};
use crate::action::AcdAction;
use crate::config::{Overflow, QueueConfig};
use crate::error::AcdError;
use crate::ids::{AgentId, CallId, QueueName};

/// How many recent handle times the average is taken over: recent enough to
/// follow a busy day, long enough not to jump with every call.
const HANDLE_TIME_WINDOW: usize = 20;

impl Acd {
    /// Starts `queue` from handle times measured elsewhere, oldest first
    /// (another ACD: a new cluster leader takes the last one's, so its
    /// callers hear wait estimates from the first call on). Ignored for a
    /// queue that has handle times of its own, or an unknown one.
    pub fn seed_handle_times(&mut self, queue: &QueueName, times: &[Duration]) {
        if let Some(q) = self.queues.get_mut(queue) {
            q.seed_handle_times(times);
        }
    }

    // ----- admin ---------------------------------------------------------

    /// Adds or replaces a queue. Waiting calls keep their deadlines. If a
    /// queue stops being ring-all, calls ringing several agents keep only
    /// their earliest offer.
    pub fn upsert_queue(&mut self, config: QueueConfig, now: Instant) {
        let now = self.begin(now);
        let name = config.name.clone();
        match self.queues.get_mut(&name) {
            Some(q) => q.config = config,
            None => {
                self.queues.insert(name.clone(), Queue::new(config));
            }
        }
        if !self.queues[&name].config.strategy.rings_many() {
            let ringing: Vec<CallId> = self
                .calls
                .iter()
                .filter(|(_, c)| c.queue == name && c.offers.len() > 1)
                .map(|(id, _)| id.clone())
                .collect();
            for call in ringing {
                let mut offers: Vec<(Instant, AgentId)> = self.calls[&call]
                    .offers
                    .iter()
                    .map(|a| (self.agents[a].offer.expect("ringing").offered_at, a.clone()))
                    .collect();
                offers.sort();
                for (_, agent) in offers.into_iter().skip(1) {
                    self.withdraw(&agent, &call, now);
                }
            }
        }
        self.end(now);
    }

    /// Removes a queue. Its waiting calls overflow at once to its overflow
    /// target, except that [`Overflow::Callback`] becomes
    /// [`Overflow::Voicemail`] (there is no place left to keep); its waiting
    /// callback entries are given up ([`AcdAction::CallbackAbandoned`]);
    /// connected calls carry on.
    pub fn remove_queue(&mut self, name: &QueueName, now: Instant) -> Result<(), AcdError> {
        let now = self.begin(now);
        let q = self
            .queues
            .remove(name)
            .ok_or_else(|| AcdError::UnknownQueue(name.clone()))?;
        let waiting: Vec<CallId> = self
            .ordered_calls()
            .into_iter()
            .filter(|id| self.calls[id].queue == *name)
            .collect();
        for call in waiting {
            if self.calls.get(&call).is_some_and(|c| c.callback.is_some()) {
                // Its place is gone with the queue.
                self.withdraw_all(&call, now);
                self.abandon_callback(&call);
                continue;
            }
            let target = match &q.config.overflow {
                // No place left to keep.
                Overflow::Callback => Overflow::Voicemail,
                other => other.clone(),
            };
            self.overflow(&call, target, now);
        }
        self.end(now);
        Ok(())
    }

    // ----- positions and estimates ---------------------------------------

    /// Place of a waiting call in its queue (1 = next); `None` if unknown or
    /// connected. Calls ringing an agent count: they are still waiting, and
    /// so do callback entries: they hold their place.
    pub fn position(&self, call: &CallId) -> Option<usize> {
        // Kept current by every input (see `refresh_positions`), so a
        // snapshot of many calls costs no re-ranking.
        let c = self.calls.get(call)?;
        c.agent.is_none().then_some(c.last_position).flatten()
    }

    /// Expected time until an agent picks up `call`: its position times the
    /// queue's average handle time, shared among the agents staffing it.
    /// `None` while the queue has no handle time yet: a figure with nothing
    /// behind it is a promise the caller will hold us to.
    pub fn estimated_wait(&self, call: &CallId) -> Option<Duration> {
        let position = self.position(call)?;
        self.estimate(&self.calls[call].queue, position)
    }

    /// Waiting calls in service order: higher priority first, then longer wait.
    pub(super) fn ordered_calls(&self) -> Vec<CallId> {
        let mut order: Vec<(_, CallId)> = self
            .calls
            .iter()
            .filter(|(_, c)| c.agent.is_none())
            .map(|(id, c)| (c.order_key(), id.clone()))
            .collect();
        order.sort();
        order.into_iter().map(|(_, id)| id).collect()
    }

    pub(super) fn refresh_positions(&mut self) {
        let mut rank: BTreeMap<QueueName, usize> = BTreeMap::new();
        for call in self.ordered_calls() {
            let queue = self.calls[&call].queue.clone();
            let position = {
                let r = rank.entry(queue.clone()).or_insert(0);
                *r += 1;
                *r
            };
            let Some(c) = self.calls.get_mut(&call) else {
                continue;
            };
            if c.last_position != Some(position) {
                c.last_position = Some(position);
                // A callback entry holds its place silently: nobody listens.
                // A caller whose call rings an agent hears no position: the
                // agent may pick up mid-sentence.
                if c.callback.is_none() && c.offers.is_empty() {
                    let estimated_wait = self.estimate(&queue, position);
                    self.actions.push_back(AcdAction::Position {
                        call,
                        position,
                        estimated_wait,
                    });
                }
            }
        }
    }

    fn estimate(&self, queue: &QueueName, position: usize) -> Option<Duration> {
        let q = self.queues.get(queue)?;
        let handle_time = q.average_handle_time()?;
        let staffed = q
            .config
            .members
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|id| self.agents.get(*id).is_some_and(|a| a.state.is_staffed()))
            .count()
            .max(1);
        Some(handle_time * position as u32 / staffed as u32)
    }
}

impl Queue {
    pub(super) fn new(config: QueueConfig) -> Self {
        Queue {
            config,
            rr_next: 0,
            handle_times: VecDeque::new(),
        }
    }

    pub(super) fn seed_handle_times(&mut self, times: &[Duration]) {
        if self.handle_times.is_empty() {
            for t in times {
                self.record_handle_time(*t);
            }
        }
    }

    /// Adds a handle time (connect to end of wrap-up), dropping the oldest
    /// beyond the window.
    pub(super) fn record_handle_time(&mut self, handle_time: Duration) {
        if self.handle_times.len() == HANDLE_TIME_WINDOW {
            self.handle_times.pop_front();
        }
        self.handle_times.push_back(handle_time);
    }

    /// The mean of the recent handle times; `None` before the first.
    pub(super) fn average_handle_time(&self) -> Option<Duration> {
        if self.handle_times.is_empty() {
            return None;
        }
        Some(self.handle_times.iter().sum::<Duration>() / self.handle_times.len() as u32)
    }
}

impl Call {
    /// Service order: higher priority, then earlier arrival, then arrival order.
    /// Callback entries keep theirs, so they keep their place.
    fn order_key(&self) -> (Reverse<i64>, Instant, u64) {
        (Reverse(self.priority), self.queued_at, self.seq)
    }
}
