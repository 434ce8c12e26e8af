//! Node kinds, one file each, and the [`Kind`] trait they all implement.
//!
//! A kind's file holds its struct (re-exported from [`crate::flow`]), its
//! YAML keys and parser (a [`crate::parse::Syntax`], registered in
//! [`crate::load::KINDS`]), and its step in the interpreter (the [`Kind`]
//! impl, plus any events only that kind waits for). What kinds share stays
//! shared, below them: reading YAML fields in [`crate::parse`], the step
//! context (playing, asking, retrying, going on) in [`crate::step`], small
//! shared types in [`crate::model`]. A kind's file imports only those (and
//! leaf helpers such as [`crate::condition`] or [`crate::say`]), never the
//! flow, the loader or the interpreter, which sit above it. The crate docs
//! (`src/lib.rs`) and docs/architecture.md ("Adding an IVR node kind") list
//! the places a new kind is registered.

use std::any::Any;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::step::{Question, Reprompt, Step, StepCx};

pub(crate) mod branch;
pub(crate) mod callback;
pub(crate) mod enqueue;
pub(crate) mod gather;
pub(crate) mod hangup;
pub(crate) mod hours;
pub(crate) mod language;
pub(crate) mod lookup;
pub(crate) mod menu;
pub(crate) mod play;
pub(crate) mod say;
pub(crate) mod set;
pub(crate) mod survey;
pub(crate) mod transfer;
pub(crate) mod voicemail;

/// What the graph checks, `hotline flows graph` and the interpreter ask of
/// any node, whatever its kind ([`crate::flow::NodeKind::as_kind`]).
pub(crate) trait Kind: AsAny {
    /// The `type:` name, as written in YAML.
    fn name(&self) -> &'static str;

    /// True for nodes that wait for the caller (digits or a recording): a
    /// loop through one is not an endless loop.
    fn waits_for_caller(&self) -> bool {
        false
    }

    /// Where the node can go next, labelled for graphs (`""`: no label).
    fn exits(&self) -> Vec<(String, &str)>;

    /// Its Mermaid shape in `hotline flows graph`: (opening, closing).
    fn shape(&self) -> (&'static str, &'static str) {
        ("[", "]")
    }

    /// Runs the node's entry (it is the interpreter's current node); returns
    /// the next node when it does not wait.
    fn enter(&self, it: &mut dyn StepCx, now: Instant, wall: DateTime<Utc>) -> Option<String>;

    /// For a node that asks for one key ([`Step::Asking`]): the question.
    fn question(&self) -> Option<Question<'_>> {
        None
    }

    /// The caller pressed `key`, which the question maps to `option`.
    /// Called only for nodes with a [`Kind::question`].
    fn chosen(
        &self,
        _it: &mut dyn StepCx,
        _key: char,
        _option: &str,
        _now: Instant,
        _wall: DateTime<Utc>,
    ) {
    }

    /// How to ask again after silence or a wrong key in `step`, or `None`
    /// when the node does not ask. Nodes with a question ask it again.
    fn reprompt(&self, step: &Step) -> Option<Reprompt<'_>> {
        match (self.question(), step) {
            (Some(q), Step::Asking { attempt, .. }) => Some(q.reprompt(*attempt)),
            _ => None,
        }
    }
}

/// A node as [`Any`], so that a kind that refers to another node (a
/// callback's `hours:`) can take it as the struct it expects.
pub(crate) trait AsAny {
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// One labelled exit, for [`Kind::exits`].
pub(crate) fn exit<'a>(label: &str, to: &'a str) -> (String, &'a str) {
    (label.to_owned(), to)
}
