//! The registry's error: what was being done, where, and why it failed.

use std::fmt;

/// A registry failure, naming the ZooKeeper connect string, the node path
/// (when one is involved) and the cause.
#[derive(Clone)]
pub struct RegistryError {
    connect: String,
    action: &'static str,
    path: Option<String>,
    cause: String,
}

impl RegistryError {
    pub(crate) fn new(connect: &str, action: &'static str, cause: impl fmt::Display) -> Self {
        RegistryError {
            connect: connect.to_owned(),
            action,
            path: None,
            cause: cause.to_string(),
        }
    }

    pub(crate) fn at(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    /// The ZooKeeper connect string in use.
    pub fn connect_string(&self) -> &str {
        &self.connect
    }

    /// The node path involved, if any.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The underlying cause, as text.
    pub fn cause(&self) -> &str {
        &self.cause
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZooKeeper {}: {}", self.connect, self.action)?;
        if let Some(path) = &self.path {
            write!(f, " {path}")?;
        }
        write!(f, ": {}", self.cause)
    }
}

impl std::error::Error for RegistryError {}
