//! A call its channel's interceptors watch: their `after` sees its outcome
//! once (`Watch`), wherever it ends — the callback of `call_with`, the
//! future or blocking wait of `call_async` and `call` when the result is
//! taken, or the drop of an unfinished `PendingCall` (a cancel).
//!
//! Only a channel with interceptors pays for this (one allocation per
//! call, for the names); without, a call carries `None`.

use std::time::Instant;

use super::call::CallResult;
use crate::call::interceptor::{ClientInterceptors, Outcome};
use crate::call::status::Code;

/// What the interceptors' `after` is told about one call.
pub(crate) struct Watch {
    chain: ClientInterceptors,
    service: Box<str>,
    method: Box<str>,
    started: Instant,
}

impl Watch {
    /// A watch for a call of `service.method`; `None` without interceptors.
    #[inline]
    pub(crate) fn new(
        chain: &ClientInterceptors,
        service: &str,
        method: &str,
    ) -> Option<Box<Watch>> {
        (!chain.is_empty()).then(|| {
            Box::new(Watch {
                chain: chain.clone(),
                service: service.into(),
                method: method.into(),
                started: Instant::now(),
            })
        })
    }

    /// Shows the call's outcome to every interceptor.
    pub(crate) fn ended(&self, result: &CallResult) {
        self.ended_with(match result {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        })
    }

    /// Shows the call's outcome, by its code, to every interceptor.
    pub(crate) fn ended_with(&self, code: Code) {
        let outcome = Outcome {
            code,
            latency: self.started.elapsed(),
        };
        self.chain.after(&self.service, &self.method, &outcome);
    }
}
