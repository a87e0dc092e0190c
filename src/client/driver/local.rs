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

use super::{Driver, Notify};
use crate::client::call::CallResult;
use crate::client::cells::CellRef;
use crate::client::queue::{Shared, Target};
use crate::client::request::Parts;
use crate::client::stream::{ClientCore, NewStream, StreamCmd};

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

/// Starts the call `parts` describes on `shared`'s driver: right here
/// when this is that driver's thread and the driver is free (delivering
/// completions), else through its queue. One look-up of the thread's
/// driver decides. `parts` is built once by the caller and only borrowed
/// on its way: packed from there, or copied into the queue.
#[inline]
pub(crate) fn start(shared: &Shared, parts: &Parts<'_>, target: Target<'_>, cell: CellRef) {
    let own = own(shared);
    let free = own.as_ref().and_then(|driver| driver.try_borrow_mut().ok());
    match free {
        // Packed from the caller's own arguments straight into the
        // chosen connection's output.
        Some(mut driver) => driver.take_call(parts, Notify::Cell(cell), target),
        None => shared.submit(parts, target, cell),
    }
}

/// Starts a detached call whose callback `done` the driver holds itself
/// (no completion cell: see `cells::held`), numbering `parts` with the
/// id the driver gives it, when this is `shared`'s driver thread and the
/// driver is free. Else hands `done` and `target` back: the call then
/// takes a cell and goes through `start`.
#[inline]
pub(crate) fn start_held<'a, F>(
    shared: &Shared,
    parts: &mut Parts<'_>,
    target: Target<'a>,
    done: F,
) -> Result<(), (F, Target<'a>)>
where
    F: FnOnce(CallResult) + Send + 'static,
{
    let own = own(shared);
    let free = own.as_ref().and_then(|driver| driver.try_borrow_mut().ok());
    match free {
        Some(mut driver) => {
            driver.take_held(parts, target, done);
            Ok(())
        }
        None => Err((done, target)),
    }
}

/// This thread's own driver, if this is `shared`'s driver thread.
#[inline]
fn own(shared: &Shared) -> Option<Rc<RefCell<Driver>>> {
    DRIVER.with(|slot| match &*slot.borrow() {
        Some((own, driver)) if std::ptr::eq(*own, shared) => Some(driver.clone()),
        _ => None,
    })
}

/// This thread's own driver for `shared`, if this is its thread and the
/// driver is free (not inside one of its own steps).
fn own_free(shared: &Shared) -> Option<Rc<RefCell<Driver>>> {
    let own = own(shared)?;
    let free = own.try_borrow_mut().is_ok();
    free.then_some(own)
}

/// Hands stream `id`'s `cmd` to `shared`'s driver: packed at once on its
/// own free thread (a stream handler sending, granting or cancelling),
/// else queued.
pub(crate) fn stream_command(shared: &Shared, id: u64, cmd: StreamCmd) {
    match own_free(shared) {
        Some(driver) => driver.borrow_mut().stream_command(id, cmd),
        None => shared.stream_command(id, cmd),
    }
}

/// Opens `stream` on `shared`'s driver: at once on its own free thread
/// (a handler opening the next stream), else queued.
pub(crate) fn open_stream(shared: &Shared, stream: NewStream) {
    match own_free(shared) {
        Some(driver) => driver.borrow_mut().open_stream(stream),
        None => shared.open_stream(stream),
    }
}

/// Packs a message of `len` bytes for stream `id` straight into its
/// connection's output, `write` appending the message itself, when this
/// is `shared`'s driver thread and the driver is free (a handler
/// sending): no staging buffer, allocation or queue. False when it is
/// not (nothing was written: queue the message instead).
pub(crate) fn stream_message(
    shared: &Shared,
    id: u64,
    len: usize,
    write: &mut dyn FnMut(&mut bytes::BytesMut),
) -> bool {
    match own_free(shared) {
        Some(driver) => {
            driver.borrow_mut().stream_message(id, len, write);
            true
        }
        None => false,
    }
}

/// Delivers handled stream `core` (ended before it reached its driver):
/// listed for the driver's delivery when this is its own free thread (a
/// handler opening a stream that fails at once is not re-entered from
/// inside itself), else here.
pub(crate) fn deliver_stream(shared: &Shared, core: std::sync::Arc<ClientCore>) {
    match own_free(shared) {
        Some(driver) => driver.borrow_mut().streams.list_delivery(core),
        None => core.deliver(),
    }
}
