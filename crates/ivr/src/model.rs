//! Small value types shared below the node kinds: what several kinds, the
//! step context ([`crate::step`]), the parsing context ([`crate::parse`])
//! and the helpers beside them ([`crate::say`]) all name.
//!
//! Owns [`Choice`] (a one-key question), [`Template`] (`${var}` text),
//! [`SayAs`], [`LookupSource`] and [`TransferMethod`]; nothing here imports
//! another module of the crate. Re-exported from [`crate::flow`], which is
//! where the public API names them.

use std::time::Duration;

/// The part menus, language choices and callback slots share: a prompt and
/// one key to press, with retries on silence or a wrong key.
#[derive(Debug)]
pub struct Choice {
    /// Played when the node is entered and again before each retry.
    pub prompts: Vec<String>,
    /// A key may cut the prompts short (`barge_in`, true by default).
    pub barge_in: bool,
    /// Key → node id (menu), language (language) or slot (callback).
    pub options: Vec<(char, String)>,
    /// Silence this long counts as no answer (`timeout`, 5 s by default).
    pub timeout: Duration,
    /// How many more times the prompt is played after silence or a wrong key.
    pub retries: u32,
    /// Played after a key not in `options`, before the prompts again.
    pub invalid_prompts: Vec<String>,
    /// Played after `timeout` of silence, before the prompts again.
    pub timeout_prompts: Vec<String>,
}

impl Choice {
    /// What `key` leads to; `None` when the key is not an option.
    pub fn option(&self, key: char) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Text with `${variable}` references, filled in when the node runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(pub String);

impl Template {
    /// Fills in variables; an unset variable becomes empty text.
    pub fn render(&self, lookup: impl Fn(&str) -> Option<String>) -> String {
        let mut out = String::with_capacity(self.0.len());
        let mut rest = self.0.as_str();
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            match rest[i + 2..].find('}') {
                Some(j) => {
                    let name = rest[i + 2..i + 2 + j].trim();
                    out.push_str(&lookup(name).unwrap_or_default());
                    rest = &rest[i + 2 + j + 1..];
                }
                None => {
                    out.push_str(&rest[i..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The names of the variables the template refers to, in order.
    pub fn var_names(&self) -> impl Iterator<Item = &str> {
        let mut rest = self.0.as_str();
        std::iter::from_fn(move || {
            let i = rest.find("${")?;
            let j = rest[i + 2..].find('}')?;
            let name = rest[i + 2..i + 2 + j].trim();
            rest = &rest[i + 2 + j + 1..];
            Some(name)
        })
    }

    /// True when the whole template is one `${variable}`.
    pub fn single_var(&self) -> Option<&str> {
        let t = self.0.trim();
        let inner = t.strip_prefix("${")?.strip_suffix('}')?;
        (!inner.contains('}') && !inner.contains("${")).then_some(inner.trim())
    }
}

/// How a `say` node speaks its value ([`crate::say`] composes the fragments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SayAs {
    /// `as: digits`: each digit on its own (`digits/N`).
    Digits,
    /// `as: number`: a whole number composed from `numbers/…` fragments.
    Number,
    /// `as: date`: a `YYYY-MM-DD` date (or a timestamp) as month, day and year.
    Date,
}

/// Where a lookup's answer comes from; the call shell performs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupSource {
    /// The subscriber whose phone number is the caller's (param `number`, default `${caller}`).
    SubscriberByCallerId,
    /// An order by its number (param `number`).
    OrderByNumber,
    /// POST the params as a JSON object to `url`; a JSON object comes back.
    Webhook {
        /// The service's `http://` URL.
        url: String,
    },
}

impl LookupSource {
    /// The source's name in flows and in the `lookup` event.
    pub fn name(&self) -> &'static str {
        match self {
            LookupSource::SubscriberByCallerId => "subscriber_by_caller_id",
            LookupSource::OrderByNumber => "order_by_number",
            LookupSource::Webhook { .. } => "webhook",
        }
    }
}

/// How a `transfer` node hands the call on (`method:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferMethod {
    /// A new INVITE to the target, bridged by the gateway.
    Invite,
    /// Ask the caller's side to call the target (SIP REFER).
    Refer,
}

impl TransferMethod {
    /// The method's name in flows and in the `transfer` event: `invite` or `refer`.
    pub fn name(self) -> &'static str {
        match self {
            TransferMethod::Invite => "invite",
            TransferMethod::Refer => "refer",
        }
    }
}
