//! [`RemoteError`]: how a task that ran in another process failed.

use std::fmt;

/// How a task that ran in another process failed: the error's type name,
/// its message and, when the worker had one, its traceback text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    /// The error's type (`ValueError`, or a Rust handler's choice).
    pub kind: String,
    /// Its message.
    pub message: String,
    /// A traceback, or empty.
    pub traceback: String,
    /// The qualified names of the error's types, most derived first (the
    /// Python package gives each class of the exception's MRO, as
    /// `module.QualName`), for [`Retry::on`](crate::Retry::on); may be
    /// empty.
    pub kinds: Vec<String>,
}

impl RemoteError {
    /// An error of `kind` saying `message`, with no traceback.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        RemoteError {
            kind: kind.into(),
            message: message.into(),
            traceback: String::new(),
            kinds: Vec::new(),
        }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for RemoteError {}
