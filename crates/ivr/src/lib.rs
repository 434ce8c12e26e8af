//! Hotline IVR flows: the YAML language, its loader and validator, the pure
//! interpreter the call actor drives, the simulator, and hot-reloadable flow sets.
//!
//! See docs/flows.md for the language.
//!
//! # Module layering
//!
//! Files import only from layers below them (`tests/tools/module-cycles
//! crates/ivr` finds no cycle), the way quinn-proto layers its modules:
//!
//! 1. leaves: `yaml`, `error`, `condition`, `webhook`;
//! 2. what node kinds use: `model` (small shared types: `Choice`,
//!    `Template`, `SayAs`, `LookupSource`, `TransferMethod`), `parse` (the
//!    parsing context: `Loader` and its helpers, `Fields`, `Syntax`),
//!    `step` (`Action`, `Event`, the wait states and the step context
//!    `StepCx`), and `say` (spoken values);
//! 3. `nodes/`: the `Kind` trait (`nodes/mod.rs`) and one file per kind. A
//!    kind may use another below it: the `callback` kind uses the `hours`
//!    kind's `BusinessHours`, directly and through the `callback` module
//!    (slot times), which sits between those two files;
//! 4. `flow` (`Flow`, `Node`, the `NodeKind` enum over the kinds' structs),
//!    then `graph`;
//! 5. `load` (the dispatcher: reads a flow, picks a kind's parser from
//!    `KINDS`, runs the whole-flow checks) and `interp` (the interpreter
//!    loop; `Interpreter` implements `StepCx`);
//! 6. `registry` and `sim`.
//!
//! # Adding an IVR node kind
//!
//! One new file plus registration lines (paths from the repository root):
//!
//! 1. `crates/ivr/src/nodes/<kind>.rs`, new: the kind's struct (`pub`,
//!    `#[derive(Debug)]`); `pub(crate) const SYNTAX: Syntax<Struct>` (its
//!    `type:` name, its keys, and its parser `fn parse(&mut Loader, &mut
//!    Fields<'_>, &Context<'_>) -> Option<Struct>`); and `impl Kind for
//!    Struct` (`name`, `exits`, `enter`; as needed `waits_for_caller`,
//!    `shape`, `question` and `chosen` for a one-key question, `reprompt`).
//!    It imports only `super::{Kind, exit}`, `crate::model`,
//!    `crate::parse`, `crate::step`, leaf helpers (`yaml`, `condition` …)
//!    and, if it needs one, another kind's file.
//! 2. `crates/ivr/src/nodes/mod.rs`: `pub(crate) mod <kind>;`
//! 3. `crates/ivr/src/flow.rs`: `pub use crate::nodes::<kind>::<Struct>;`
//!    (so that `hotline_ivr::flow::*` names every part of a flow), the
//!    variant `<Variant>(<Struct>)` in `NodeKind`, and the arm
//!    `NodeKind::<Variant>(n) => n,` in `NodeKind::as_kind`.
//! 4. `crates/ivr/src/load.rs`: `kind!(<kind> => <Variant>),` in `KINDS`
//!    (its place there is its place in "use one of: …" error messages).
//! 5. Only if the kind needs something new below it: a type other modules
//!    also name goes in `crates/ivr/src/model.rs` (and a `pub use` in
//!    `flow.rs`); a reading helper in `crates/ivr/src/parse.rs`; a new wait
//!    state is a `Step` variant in `crates/ivr/src/step.rs` plus the event
//!    arms in `crates/ivr/src/interp.rs` that call the kind's methods on
//!    `NodeKind::<Variant>` (as for `gather`, `lookup` and `voicemail`); a
//!    new request to the call is an `Action` variant in `step.rs`, carried
//!    out by the call core (`crates/call/src/core/flow.rs`) and the
//!    simulator (`crates/ivr/src/sim.rs`).
//! 6. `docs/flows.md`: its row in "Node types".
//! 7. Tests: the kind in `crates/ivr/tests/fixtures/all-kinds.yaml` (a unit
//!    test in `load.rs` checks that every kind in `KINDS` is there) with a
//!    simulator test in `crates/ivr/tests/simulator.rs`, and its errors in
//!    a broken-flow fixture (`crates/ivr/tests/fixtures/flows/*.yaml` with
//!    its `.expected` output).

#![warn(missing_docs)]

pub mod condition;
mod dial;
pub mod error;
pub mod flow;
pub mod graph;
pub mod interp;
pub mod load;
mod model;
mod nodes;
mod parse;
pub mod registry;
pub mod say;
pub mod sim;
mod step;
#[cfg(feature = "webhook")]
pub mod webhook;
pub mod yaml;

pub use error::{ErrorKind, FlowError, FlowErrors};
pub use flow::{Flow, LookupSource, Node, NodeKind, TransferMethod};
pub mod callback;
pub use interp::{Action, CallVars, Event, ForcedHours, Interpreter};
pub use load::{LoadOptions, load_file, load_str};
pub use registry::{FlowSet, ReloadReport};
pub use sim::{Fixtures, SimOptions, Transcript, simulate};
