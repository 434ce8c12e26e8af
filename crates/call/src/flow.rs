//! Which IVR flow a call runs, what the flow's lookups are answered with,
//! and the built-in flow used when none is configured.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hotline_ivr::{Flow, FlowErrors, LoadOptions, LookupSource};
use hotline_sip::IncomingCall;
use serde_json::{Map, Value};

/// Picks the flow (version) a new call runs; the call keeps it to its end.
pub type FlowFactory = Arc<dyn Fn(&IncomingCall) -> Arc<Flow> + Send + Sync>;

/// A boxed future, for the object-safe [`LookupProvider`].
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Answers a flow's lookups (subscriber by caller id, order by number,
/// webhook). Errors are short texts recorded with the call.
pub trait LookupProvider: Send + Sync {
    /// `timeout` is the flow's; the caller also stops waiting after it.
    fn lookup(
        &self,
        source: LookupSource,
        params: Map<String, Value>,
        timeout: Duration,
    ) -> BoxFuture<Result<Map<String, Value>, String>>;
}

const BUILTIN: &str = include_str!("builtin.yaml");

/// The built-in flow: welcome, one key (waiting `digit_timeout` for it),
/// "you pressed N", hang up. Checked like any other flow.
pub fn builtin_flow(digit_timeout: Duration) -> Result<Flow, FlowErrors> {
    let ms = digit_timeout.as_millis().max(1);
    let text = BUILTIN.replace("{DIGIT_TIMEOUT}", &format!("{ms}ms"));
    hotline_ivr::load_str(Path::new("<builtin>"), &text, &LoadOptions::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_ivr::{Action, CallVars, Event, Interpreter};
    use std::time::Instant;

    fn plays(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Play { prompts, .. } => Some(prompts.join("+")),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn builtin_flow_loads_and_says_the_key_back() {
        let flow = Arc::new(builtin_flow(Duration::from_secs(5)).expect("builtin flow is valid"));
        let mut it = Interpreter::new(flow, CallVars::default());
        let t0 = Instant::now();
        let wall = chrono::Utc::now();
        assert_eq!(plays(&it.handle(t0, wall, Event::Started)), ["en/welcome"]);
        let a = it.handle(t0, wall, Event::Digit('7'));
        assert_eq!(plays(&a), ["en/you-pressed+en/digits/7"], "{a:?}");
        let a = it.handle(t0, wall, Event::PromptFinished { interrupted: false });
        assert!(a.contains(&Action::Hangup), "{a:?}");
    }

    #[test]
    fn builtin_flow_says_goodbye_after_the_digit_timeout() {
        let flow = Arc::new(builtin_flow(Duration::from_secs(2)).unwrap());
        let mut it = Interpreter::new(flow, CallVars::default());
        let t0 = Instant::now();
        let wall = chrono::Utc::now();
        it.handle(t0, wall, Event::Started);
        it.handle(t0, wall, Event::PromptFinished { interrupted: false });
        let at = it.next_timeout().expect("waits for a key");
        assert_eq!(at.duration_since(t0), Duration::from_secs(2));
        let a = it.handle(at, wall, Event::TimerFired);
        assert_eq!(plays(&a), ["en/goodbye"], "{a:?}");
        let a = it.handle(at, wall, Event::PromptFinished { interrupted: false });
        assert!(a.contains(&Action::Hangup), "{a:?}");
    }
}
