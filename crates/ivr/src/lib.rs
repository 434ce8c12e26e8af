//! Hotline IVR flows: the YAML language, its loader and validator, the pure
//! interpreter the call actor drives, the simulator, and hot-reloadable flow sets.
//!
//! See docs/flows.md for the language.

pub mod condition;
pub mod error;
pub mod flow;
pub mod graph;
pub mod interp;
pub mod load;
mod nodes;
pub mod registry;
pub mod say;
pub mod sim;
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
