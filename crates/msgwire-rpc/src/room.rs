//! How the connection's lists and queues take room. A quiet connection lets go of what
//! they grew to (see `Session::let_go_if_quiet`); when one is used again it takes
//! [`FIRST_ROOM`] slots at once instead of growing one reallocation at a time.

use std::collections::VecDeque;

/// The room a list or queue takes when it is first used (again, after the connection
/// let go of it): enough for a burst without growing — growing reallocates, which takes
/// the allocator's arena lock — and small enough to come from the allocator's
/// per-thread cache.
pub(crate) const FIRST_ROOM: usize = 8;

/// Pushes onto `list`, first making [`FIRST_ROOM`] if it has none.
pub(crate) fn push<T>(list: &mut Vec<T>, item: T) {
    if list.capacity() == 0 {
        list.reserve(FIRST_ROOM);
    }
    list.push(item);
}

/// Pushes onto the back of `queue`, first making [`FIRST_ROOM`] if it has none.
pub(crate) fn push_back<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.capacity() == 0 {
        queue.reserve(FIRST_ROOM);
    }
    queue.push_back(item);
}
