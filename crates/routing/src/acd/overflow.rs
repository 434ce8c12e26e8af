//! Overflow: where a call goes once it has waited its queue's max wait, or
//! when its queue is removed — voicemail, hang-up, another queue (keeping
//! its queue time, bounded against cycles) or a callback entry in place.

use std::time::Instant;

use super::Acd;
use crate::action::AcdAction;
use crate::config::Overflow;
use crate::ids::CallId;

impl Acd {
    /// Sends waiting `call` to `target`, withdrawing its offers; announced
    /// with [`AcdAction::Overflow`]. A callback entry never overflows.
    pub(super) fn overflow(&mut self, call: &CallId, target: Overflow, at: Instant) {
        if self.calls.get(call).is_none_or(|c| c.callback.is_some()) {
            return; // a callback entry never overflows
        }
        if target == Overflow::Callback {
            self.make_callback(call, at);
            self.actions.push_back(AcdAction::Overflow {
                call: call.clone(),
                target,
            });
            return;
        }
        self.withdraw_all(call, at);
        let c = self.calls.get_mut(call).expect("overflowing call exists");
        let target = match target {
            Overflow::Queue(name) => match self.queues.get(&name) {
                Some(q) if c.hops < self.queues.len() => {
                    c.queue = name.clone();
                    c.deadline = at + q.config.max_wait;
                    c.tried.clear();
                    c.hops += 1;
                    c.last_position = None;
                    self.actions.push_back(AcdAction::Overflow {
                        call: call.clone(),
                        target: Overflow::Queue(name),
                    });
                    return;
                }
                _ => Overflow::Hangup,
            },
            other => other,
        };
        self.calls.remove(call);
        self.actions.push_back(AcdAction::Overflow {
            call: call.clone(),
            target,
        });
    }
}
