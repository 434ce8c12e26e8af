//! The operator's rule for the numbers a flow may promise to call back.
//! Its own module: the interpreter's call state holds it and the
//! `callback` node asks it, without either importing the other.

use std::sync::Arc;

/// The operator's rule for which numbers the gateway may dial back
/// (`--dial-allow`): the desk applies it before it queues and before it
/// dials a callback; a `callback` node asks it before it promises one, so
/// a caller whose number is outside it is asked for another number
/// (`on_no_number`) instead of being told a callback is booked that will
/// never be placed.
#[derive(Clone)]
pub struct DialCheck(Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl DialCheck {
    /// A check that allows a number when `allows` says so.
    pub fn new(allows: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(allows))
    }

    /// Whether `number` may be dialled.
    pub fn allows(&self, number: &str) -> bool {
        (self.0)(number)
    }
}

impl std::fmt::Debug for DialCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DialCheck(..)")
    }
}
