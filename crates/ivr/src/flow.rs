//! A loaded flow: nodes by stable id, each of one kind, all references checked.
//!
//! These types are what the loader produces and the interpreter walks; they
//! are immutable once built and shared between calls as `Arc<Flow>`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::condition::{CompareOp, Condition, Literal, Test};
use crate::nodes::Kind;
// Each kind's types live in its file under `nodes/`; they are re-exported
// here so that `hotline_ivr::flow::*` names every part of a flow.
pub use crate::nodes::branch::{Branch, Case};
pub use crate::nodes::callback::Callback;
pub use crate::nodes::enqueue::Enqueue;
pub use crate::nodes::gather::DigitCollector;
pub use crate::nodes::hangup::Hangup;
pub use crate::nodes::hours::BusinessHours;
pub use crate::nodes::language::LanguageChoice;
pub use crate::nodes::lookup::{Lookup, LookupSource};
pub use crate::nodes::menu::Menu;
pub use crate::nodes::play::Play;
pub use crate::nodes::say::{Say, SayAs};
pub use crate::nodes::set::SetVars;
pub use crate::nodes::transfer::{Transfer, TransferMethod};
pub use crate::nodes::voicemail::Voicemail;
use crate::yaml::Pos;

/// One IVR flow, from one YAML file.
#[derive(Debug)]
pub struct Flow {
    /// The flow's name (`flow:` in the file, else the file stem).
    pub name: String,
    /// Content hash of the file (first 12 hex digits of its SHA-256).
    pub version: String,
    pub path: PathBuf,
    pub description: Option<String>,
    /// Languages the flow speaks; prompts must exist in each.
    pub languages: Vec<String>,
    /// The language a call starts in.
    pub default_language: String,
    pub start: String,
    /// Nodes in file order.
    pub nodes: Vec<Node>,
    pub(crate) index: HashMap<String, usize>,
}

impl Flow {
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.index.get(id).map(|&i| &self.nodes[i])
    }
}

/// A step of a flow with its stable id (used in logs and call records).
#[derive(Debug)]
pub struct Node {
    pub id: String,
    pub pos: Pos,
    /// Set on the call when the node is entered (e.g. `subscription.refund`).
    pub issue_type: Option<String>,
    pub kind: NodeKind,
}

#[derive(Debug)]
pub enum NodeKind {
    Play(Play),
    Menu(Menu),
    Gather(DigitCollector),
    Branch(Branch),
    Set(SetVars),
    Hours(BusinessHours),
    Language(LanguageChoice),
    Lookup(Lookup),
    Say(Say),
    Enqueue(Enqueue),
    Voicemail(Voicemail),
    Callback(Callback),
    Transfer(Transfer),
    Hangup(Hangup),
}

impl NodeKind {
    /// The kind's own behaviour: its file in `nodes/` (one line per kind).
    pub(crate) fn as_kind(&self) -> &dyn Kind {
        match self {
            NodeKind::Play(n) => n,
            NodeKind::Menu(n) => n,
            NodeKind::Gather(n) => n,
            NodeKind::Branch(n) => n,
            NodeKind::Set(n) => n,
            NodeKind::Hours(n) => n,
            NodeKind::Language(n) => n,
            NodeKind::Lookup(n) => n,
            NodeKind::Say(n) => n,
            NodeKind::Enqueue(n) => n,
            NodeKind::Voicemail(n) => n,
            NodeKind::Callback(n) => n,
            NodeKind::Transfer(n) => n,
            NodeKind::Hangup(n) => n,
        }
    }

    /// The `type:` name of the node, as written in YAML.
    pub fn name(&self) -> &'static str {
        self.as_kind().name()
    }

    /// True for nodes that wait for the caller (digits or a recording).
    pub fn waits_for_caller(&self) -> bool {
        self.as_kind().waits_for_caller()
    }

    /// Where the node can go next, labelled for graphs.
    pub fn exits(&self) -> Vec<(String, &str)> {
        self.as_kind().exits()
    }

    /// Every node id this node refers to.
    pub fn targets(&self) -> Vec<&str> {
        self.exits().into_iter().map(|(_, to)| to).collect()
    }
}

/// The part menus, language choices and callback slots share: a prompt and
/// one key to press, with retries on silence or a wrong key.
#[derive(Debug)]
pub struct Choice {
    pub prompts: Vec<String>,
    pub barge_in: bool,
    /// Key → node id (menu), language (language) or slot (callback).
    pub options: Vec<(char, String)>,
    pub timeout: Duration,
    /// How many more times the prompt is played after silence or a wrong key.
    pub retries: u32,
    pub invalid_prompts: Vec<String>,
    pub timeout_prompts: Vec<String>,
}

impl Choice {
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

    /// True when the whole template is one `${variable}`.
    pub fn single_var(&self) -> Option<&str> {
        let t = self.0.trim();
        let inner = t.strip_prefix("${")?.strip_suffix('}')?;
        (!inner.contains('}') && !inner.contains("${")).then_some(inner.trim())
    }
}
