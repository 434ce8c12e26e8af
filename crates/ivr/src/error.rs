//! Flow errors as `file:line:column: message`, the form editors and CI understand.

use std::fmt;
use std::path::PathBuf;

use crate::yaml::Pos;

/// One problem in a flow file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct FlowError {
    /// The flow file, as the loader was given it.
    pub file: PathBuf,
    /// `None` when the problem is the file as a whole (unreadable).
    pub pos: Option<Pos>,
    /// What is wrong, phrased for the flow author.
    pub message: String,
    /// What sort of problem: lets a tool tell a missing recording (often a
    /// wrong sounds directory) from a mistake in the flow.
    pub kind: ErrorKind,
}

/// The sort of a [`FlowError`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The flow file itself is wrong (or unreadable).
    #[default]
    Flow,
    /// A prompt the flow names has no WAV file under the sounds directory,
    /// or the sounds directory itself is missing.
    MissingRecording,
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                p.line,
                p.col,
                self.message
            ),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Every problem found in one or more flow files, in file and line order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct FlowErrors(pub Vec<FlowError>);

impl fmt::Display for FlowErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
