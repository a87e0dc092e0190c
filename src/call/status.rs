//! Call outcome: a status code plus a human-readable message.
//!
//! Every failure a caller can see — from the network, the server, the
//! registry or the handler itself — is one of these codes, so callers can
//! branch on `code()` and log `message()`. The numeric values travel on the
//! wire (see [`crate::protocol::mprpc`]) and must never be renumbered.

use std::fmt;

/// What went wrong (or `Ok`). Stable on the wire as one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum Code {
    /// The call succeeded.
    Ok = 0,
    /// The server has no service of that name.
    UnknownService = 1,
    /// The service has no method of that name.
    UnknownMethod = 2,
    /// The request could not be decoded (or was otherwise invalid).
    BadRequest = 3,
    /// The call's deadline passed before a reply arrived.
    DeadlineExceeded = 4,
    /// No provider could be reached, or the connection was lost.
    Unavailable = 5,
    /// The caller cancelled the call.
    Cancelled = 6,
    /// A bug or unexpected condition in the framework or the handler.
    Internal = 7,
    /// The handler reported an application-level error with its own text.
    Application = 8,
    /// A limit was hit: too many calls in flight, connections, frame size.
    ResourceExhausted = 9,
    /// The server is shutting down and takes no new calls.
    ShuttingDown = 10,
    /// The call cannot be made from where it was made: a blocking call on
    /// the client's own I/O thread (inside a `*_with` callback) would wait
    /// on itself and stall every call of the channel.
    FailedPrecondition = 11,
    /// The provider requires an auth token and the connection sent none or
    /// a wrong one; the provider closes the connection after this reply.
    Unauthenticated = 12,
    /// The method is over its concurrency limit: the server refused the
    /// call at once without running it. Nothing happened, so the call may
    /// be retried (the client does so once, on another provider).
    Overloaded = 13,
    /// The method exists but not in the form it was called: a streaming
    /// method called as a unary call (or the other way round), or a
    /// stream opened in a wire format that has no streams.
    Unimplemented = 14,
}

impl Code {
    /// Decodes a wire byte; unknown values become `Internal` so a newer peer
    /// never makes an older one fail to parse a reply.
    pub fn from_u8(v: u8) -> Code {
        match v {
            0 => Code::Ok,
            1 => Code::UnknownService,
            2 => Code::UnknownMethod,
            3 => Code::BadRequest,
            4 => Code::DeadlineExceeded,
            5 => Code::Unavailable,
            6 => Code::Cancelled,
            7 => Code::Internal,
            8 => Code::Application,
            9 => Code::ResourceExhausted,
            10 => Code::ShuttingDown,
            11 => Code::FailedPrecondition,
            12 => Code::Unauthenticated,
            13 => Code::Overloaded,
            14 => Code::Unimplemented,
            _ => Code::Internal,
        }
    }

    /// A short stable name, used in logs, metrics and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Ok => "ok",
            Code::UnknownService => "unknown_service",
            Code::UnknownMethod => "unknown_method",
            Code::BadRequest => "bad_request",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::Unavailable => "unavailable",
            Code::Cancelled => "cancelled",
            Code::Internal => "internal",
            Code::Application => "application",
            Code::ResourceExhausted => "resource_exhausted",
            Code::ShuttingDown => "shutting_down",
            Code::FailedPrecondition => "failed_precondition",
            Code::Unauthenticated => "unauthenticated",
            Code::Overloaded => "overloaded",
            Code::Unimplemented => "unimplemented",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call: code plus message. `Result<T, Status>` is the call result.
#[derive(Clone, PartialEq, Eq)]
pub struct Status {
    code: Code,
    message: String,
}

impl Status {
    /// A status with any code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
        }
    }

    /// What kind of failure this is; branch on it.
    pub fn code(&self) -> Code {
        self.code
    }

    /// Why the call failed, for a person to read.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// `UnknownService`, naming the service.
    pub fn unknown_service(service: &str) -> Status {
        Status::new(Code::UnknownService, format!("unknown service '{service}'"))
    }

    /// `UnknownMethod`, naming the service and the method.
    pub fn unknown_method(service: &str, method: &str) -> Status {
        Status::new(
            Code::UnknownMethod,
            format!("service '{service}' has no method '{method}'"),
        )
    }

    /// A `BadRequest` status.
    pub fn bad_request(message: impl Into<String>) -> Status {
        Status::new(Code::BadRequest, message)
    }

    /// A `DeadlineExceeded` status.
    pub fn deadline_exceeded(message: impl Into<String>) -> Status {
        Status::new(Code::DeadlineExceeded, message)
    }

    /// An `Unavailable` status.
    pub fn unavailable(message: impl Into<String>) -> Status {
        Status::new(Code::Unavailable, message)
    }

    /// A `Cancelled` status.
    pub fn cancelled(message: impl Into<String>) -> Status {
        Status::new(Code::Cancelled, message)
    }

    /// An `Internal` status.
    pub fn internal(message: impl Into<String>) -> Status {
        Status::new(Code::Internal, message)
    }

    /// A handler's own error, carried to the caller with its text.
    pub fn application(message: impl Into<String>) -> Status {
        Status::new(Code::Application, message)
    }

    /// An `Unauthenticated` status.
    pub fn unauthenticated(message: impl Into<String>) -> Status {
        Status::new(Code::Unauthenticated, message)
    }

    /// An `Overloaded` status.
    pub fn overloaded(message: impl Into<String>) -> Status {
        Status::new(Code::Overloaded, message)
    }

    /// An `Unimplemented` status.
    pub fn unimplemented(message: impl Into<String>) -> Status {
        Status::new(Code::Unimplemented, message)
    }

    /// A `ResourceExhausted` status.
    pub fn resource_exhausted(message: impl Into<String>) -> Status {
        Status::new(Code::ResourceExhausted, message)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Status {}

#[cfg(test)]
mod tests {

    #[test]
    fn debug_is_the_display_sentence_for_a_main_that_returns_the_error() {
        let status = Status::unavailable("no provider of Accounts.Get");
        let boxed: Box<dyn std::error::Error> = Box::new(status);
        assert_eq!(
            format!("{boxed:?}"),
            "unavailable: no provider of Accounts.Get"
        );
        assert_eq!(format!("{boxed:?}"), boxed.to_string());
    }

    use super::*;

    #[test]
    fn every_code_round_trips_through_its_wire_byte() {
        for v in 0..=14u8 {
            assert_eq!(Code::from_u8(v) as u8, v);
        }
        assert_eq!(Code::from_u8(200), Code::Internal);
    }
}
