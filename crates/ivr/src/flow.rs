//! A loaded flow: nodes by stable id, each of one kind, all references checked.
//!
//! These types are what the loader produces and the interpreter walks; they
//! are immutable once built and shared between calls as `Arc<Flow>`.
//!
//! Owns [`Flow`], [`Node`] and [`NodeKind`], the enum over the node kinds'
//! structs (one file each under `nodes/`), so it sits above the node kinds;
//! the loader and the interpreter sit above it.

use std::collections::HashMap;
use std::path::PathBuf;

pub use crate::condition::{CompareOp, Condition, Literal, Test};
// The small types kinds share, defined below them; re-exported here so that
// `hotline_ivr::flow::*` names every part of a flow.
pub use crate::model::{Choice, LookupSource, SayAs, Template, TransferMethod};
use crate::nodes::Kind;
// Each kind's types live in its file under `nodes/`; they are re-exported
// here for the same reason.
pub use crate::nodes::branch::{Branch, Case};
pub use crate::nodes::callback::Callback;
pub use crate::nodes::enqueue::Enqueue;
pub use crate::nodes::gather::DigitCollector;
pub use crate::nodes::hangup::Hangup;
pub use crate::nodes::hours::BusinessHours;
pub use crate::nodes::language::LanguageChoice;
pub use crate::nodes::lookup::Lookup;
pub use crate::nodes::menu::Menu;
pub use crate::nodes::play::Play;
pub use crate::nodes::say::Say;
pub use crate::nodes::set::SetVars;
pub use crate::nodes::survey::{PROMPTS as SURVEY_PROMPTS, Survey};
pub use crate::nodes::transfer::Transfer;
pub use crate::nodes::voicemail::Voicemail;
use crate::yaml::Pos;

/// One IVR flow, from one YAML file.
#[derive(Debug)]
pub struct Flow {
    /// The flow's name (`flow:` in the file, else the file stem).
    pub name: String,
    /// Content hash of the file (first 12 hex digits of its SHA-256).
    pub version: String,
    /// The YAML file the flow was loaded from.
    pub path: PathBuf,
    /// `description:` from the file, free text for people; `None` when absent.
    pub description: Option<String>,
    /// Languages the flow speaks; prompts must exist in each.
    pub languages: Vec<String>,
    /// The language a call starts in.
    pub default_language: String,
    /// The id of the node a call begins at (`start:` in the file).
    pub start: String,
    /// Nodes in file order.
    pub nodes: Vec<Node>,
    pub(crate) index: HashMap<String, usize>,
}

impl Flow {
    /// The node with this id; `None` when the flow has none.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.index.get(id).map(|&i| &self.nodes[i])
    }
}

/// A step of a flow with its stable id (used in logs and call records).
#[derive(Debug)]
pub struct Node {
    /// The node's id: its key under `nodes:` in the file.
    pub id: String,
    /// Where the node starts in the file, for error messages.
    pub pos: Pos,
    /// Set on the call when the node is entered (e.g. `subscription.refund`).
    pub issue_type: Option<String>,
    /// What the node does, with its settings.
    pub kind: NodeKind,
}

/// The node types of docs/flows.md, one variant per `type:`.
#[derive(Debug)]
pub enum NodeKind {
    /// `play`: prompts, then on.
    Play(Play),
    /// `menu`: one key picks the next node.
    Menu(Menu),
    /// `gather`: several digits into a variable.
    Gather(DigitCollector),
    /// `branch`: the first case whose condition holds.
    Branch(Branch),
    /// `set`: sets variables.
    Set(SetVars),
    /// `hours`: open, closed or holiday now?
    Hours(BusinessHours),
    /// `language`: sets the language, or asks for it.
    Language(LanguageChoice),
    /// `lookup`: fetches data from a source the gateway knows.
    Lookup(Lookup),
    /// `say`: speaks a value (digits, a number, a date) from prompt fragments.
    Say(Say),
    /// `enqueue`: hands the call to an agent queue; ends the flow.
    Enqueue(Enqueue),
    /// `voicemail`: records a message.
    Voicemail(Voicemail),
    /// `callback`: books a call back to the caller.
    Callback(Callback),
    /// `transfer`: sends the call elsewhere; ends the flow.
    Transfer(Transfer),
    /// `hangup`: says goodbye and hangs up.
    Hangup(Hangup),
    /// `survey`: the satisfaction survey, then `next` (or hang up).
    Survey(Survey),
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
            NodeKind::Survey(n) => n,
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
