//! Calls started on the driver's own thread go straight onto a connection.
//!
//! A callback runs on the driver thread while the driver delivers a turn's
//! completions, when the loop does not hold the driver (see `run`). A call
//! it starts is routed at once and its request packed straight into the
//! output of the connection it goes to, which the turn's flush then
//! writes: no submission queue, lock, staging copy or hand-off between
//! threads. Calls from other threads (and, as a fallback, any call made
//! while the driver is busy) still go through the queue (`queue`).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::route::Target;
use super::Driver;
use crate::client::cells::CellRef;
use crate::client::queue::{Shared, Submit};
use crate::client::request::Parts;

/// A driver thread's own driver, and its queue (the identity calls name
/// their driver by).
type Own = (*const Shared, Rc<RefCell<Driver>>);

thread_local! {
    /// On a driver thread: its driver. `None` on every other thread.
    static DRIVER: RefCell<Option<Own>> = const { RefCell::new(None) };
}

/// Makes `driver` the one calls on this thread may start directly.
pub(super) fn install(shared: &Arc<Shared>, driver: &Rc<RefCell<Driver>>) {
    DRIVER.with(|slot| *slot.borrow_mut() = Some((Arc::as_ptr(shared), driver.clone())));
}

/// The driver is stopping: calls on this thread are queued again.
pub(super) fn uninstall() {
    let driver = DRIVER.with(|slot| slot.borrow_mut().take());
    drop(driver);
}

/// Starts `call` on `shared`'s driver: right here when this is that
/// driver's thread and the driver is free (delivering completions), else
/// through its queue. One look-up of the thread's driver decides. Returns
/// the call's request id.
#[inline]
pub(crate) fn start(shared: &Shared, call: Submit<'_>, payload: &[u8], cell: CellRef) -> u64 {
    // The driver is taken out of the thread-local (not the call into a
    // closure): the call's parts are not moved about on their way.
    let own = DRIVER.with(|slot| match &*slot.borrow() {
        Some((own, driver)) if std::ptr::eq(*own, shared) => Some(driver.clone()),
        _ => None,
    });
    let free = own.as_ref().and_then(|driver| driver.try_borrow_mut().ok());
    match free {
        Some(mut driver) => driver.start_here(call, payload, cell),
        None => shared.submit(call, payload, cell),
    }
}

impl Driver {
    /// Takes on a call started on this thread, packed from the caller's
    /// own arguments straight into the chosen connection's output.
    #[inline]
    fn start_here(&mut self, call: Submit<'_>, payload: &[u8], cell: CellRef) -> u64 {
        let id = cell.call_id();
        let parts = Parts {
            id,
            deadline: call.deadline,
            // Its deadline was set from this turn's start: the whole
            // timeout is left.
            timeout_ms: Some(call.timeout_ms),
            service: call.service,
            method: call.method,
            payload,
            metadata: &call.metadata,
            trace: call.trace,
            reply_metadata: call.reply_metadata.is_some(),
        };
        let target = Target {
            endpoints: call.endpoints,
            hash_key: call.hash_key,
            reply_metadata: call.reply_metadata,
        };
        self.take_call(&parts, cell, target);
        id
    }
}
