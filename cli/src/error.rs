//! The one error every command returns: a message for a person, already
//! saying what was being done and why it failed.

use std::fmt;

/// What went wrong, in words.
#[derive(Debug)]
pub(crate) struct Error(String);

/// A command's result.
pub(crate) type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Error {
        Error(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `Err(Error)` from a format string.
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::new(format!($($arg)*)))
    };
}
pub(crate) use fail;
