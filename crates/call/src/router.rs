//! Routes SIP events to call actors by Call-ID and spawns an actor per new call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hotline_sip::{CallKey, SipEvent};
use tokio::sync::mpsc;
use tracing::Instrument;

use hotline_desk::{DialOrder, Dialer};

use crate::actor::{run_call, run_callback};
use crate::context::CallContext;

/// Events queued for one call before its actor falls behind (digits, re-INVITEs, BYE).
const PER_CALL_QUEUE: usize = 32;

/// Counts live call actors; read by the health endpoint and the drain.
#[derive(Clone, Default)]
pub struct ActiveCalls(Arc<AtomicUsize>);

impl ActiveCalls {
    /// Call actors running now, inbound calls and callback legs alike.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// Decrements the live-call count when an actor ends, however it ends.
struct ActiveGuard(ActiveCalls);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Spawns and feeds call actors.
pub struct CallRouter {
    ctx: Arc<CallContext>,
    active: ActiveCalls,
    dial_tx: mpsc::Sender<DialOrder>,
    dial_rx: mpsc::Receiver<DialOrder>,
}

impl CallRouter {
    /// A router whose call actors share `ctx`; nothing runs until
    /// [`CallRouter::run`].
    pub fn new(ctx: Arc<CallContext>) -> Self {
        let (dial_tx, dial_rx) = mpsc::channel(64);
        Self {
            ctx,
            active: ActiveCalls::default(),
            dial_tx,
            dial_rx,
        }
    }

    /// The live-call count, still readable after the router has moved
    /// into [`CallRouter::run`].
    pub fn active(&self) -> ActiveCalls {
        self.active.clone()
    }

    /// The way to place callbacks, through `via` (else back to the trunk
    /// each call came from).
    pub fn dialer(&self, via: Option<SocketAddr>) -> Dialer {
        Dialer::new(self.dial_tx.clone(), via)
    }

    /// Runs until the SIP event stream ends.
    pub async fn run(mut self, mut events: mpsc::Receiver<SipEvent>) {
        let mut calls: HashMap<CallKey, mpsc::Sender<Box<SipEvent>>> = HashMap::new();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<CallKey>();
        loop {
            tokio::select! {
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    self.dispatch(ev, &mut calls, &done_tx).await;
                }
                Some(key) = done_rx.recv() => {
                    calls.remove(&key);
                }
                Some(dial) = self.dial_rx.recv() => {
                    self.spawn_callback(dial, &mut calls, &done_tx);
                }
            }
        }
    }

    /// Registers the new leg's Call-ID before its INVITE exists, so no
    /// response can arrive for a call the router does not know.
    fn spawn_callback(
        &self,
        dial: DialOrder,
        calls: &mut HashMap<CallKey, mpsc::Sender<Box<SipEvent>>>,
        done_tx: &mpsc::UnboundedSender<CallKey>,
    ) {
        let key = CallKey(format!("cb-{}", uuid::Uuid::new_v4()).into());
        let (tx, rx) = mpsc::channel(PER_CALL_QUEUE);
        calls.insert(key.clone(), tx);
        self.active.0.fetch_add(1, Ordering::AcqRel);
        let guard = ActiveGuard(self.active.clone());
        let ctx = self.ctx.clone();
        let done = done_tx.clone();
        let span = tracing::info_span!("call", call_id = %key.0);
        tokio::spawn(
            async move {
                let _guard = guard;
                run_callback(ctx, key.clone(), dial.request, rx, dial.notices).await;
                let _ = done.send(key);
            }
            .instrument(span),
        );
    }

    async fn dispatch(
        &self,
        ev: SipEvent,
        calls: &mut HashMap<CallKey, mpsc::Sender<Box<SipEvent>>>,
        done_tx: &mpsc::UnboundedSender<CallKey>,
    ) {
        let key = match &ev {
            SipEvent::Incoming(inc) => {
                let (tx, rx) = mpsc::channel(PER_CALL_QUEUE);
                calls.insert(inc.call.clone(), tx);
                self.active.0.fetch_add(1, Ordering::AcqRel);
                let guard = ActiveGuard(self.active.clone());
                let ctx = self.ctx.clone();
                let done = done_tx.clone();
                let SipEvent::Incoming(inc) = ev else { return };
                tokio::spawn(async move {
                    let _guard = guard;
                    let key = inc.call.clone();
                    run_call(ctx, inc, rx).await;
                    let _ = done.send(key);
                });
                return;
            }
            other => other.call().clone(),
        };
        if let Some(tx) = calls.get(&key) {
            // A closed channel means the actor already finished; nothing to do.
            // A full one must not stall every other call: hand the wait to a task.
            if let Err(mpsc::error::TrySendError::Full(ev)) = tx.try_send(Box::new(ev)) {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(ev).await;
                });
            }
        }
    }
}
