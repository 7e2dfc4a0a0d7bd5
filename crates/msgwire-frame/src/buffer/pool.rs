//! Pooled buffers: a [`BufferPool`] of reusable `Vec<u8>`s, the [`PooledBuffer`] input
//! buffer drawn from it, and the [`PooledFrame`]s it hands out.
//!
//! ```text
//!            take                               take (copy of the frame's bytes)
//!  BufferPool ────► PooledBuffer ── split_frame ──────────────────────► PooledFrame
//!  [idle Vecs] ◄─── (dropped, or storage replaced)      drop ───────────┘   │
//!       ▲                                                                   │
//!       └──────────── returned if fewer than max_idle are idle and ─────────┘
//!                     capacity <= 2 × buffer_size, otherwise freed
//!
//!  PooledBuffer storage (one Vec):
//! +-----------------+-------------------------+-------------------+
//! | dead (consumed) | buffered bytes          | spare capacity    |
//! +-----------------+-------------------------+-------------------+
//!  0                 read                      write = vec.len()   capacity
//! ```
//!
//! * Every buffer the pool allocates has a capacity of at least `buffer_size`. A `Vec`
//!   whose capacity is over `2 × buffer_size` is **oversized**: it is never kept idle.
//! * A [`PooledFrame`] is the frame's bytes copied into a `Vec` taken from the pool. When
//!   it is dropped the `Vec` goes back to the pool, so once the pool is warm a connection
//!   decodes without a single allocation per frame ([`PoolStats`] counts allocations and
//!   reuses). Frames longer than `buffer_size` get a `Vec` of their own size; those over
//!   `2 × buffer_size` are freed on drop. The price: a frame of a few bytes holds a whole
//!   pool buffer while it lives, so pick `buffer_size` near the usual frame size.
//! * A [`PooledBuffer`] appends at the write position. When that hits the end of the
//!   storage and the bytes already consumed leave enough room at the front, it
//!   **compacts** (moves the buffered bytes to the front with `copy_within`). Otherwise
//!   it **grows** into a new `Vec` of twice the capacity (or what is needed), handing
//!   the old one back to the pool. When a burst has passed and what is still buffered
//!   fits in `buffer_size`, an oversized storage is **shrunk**: the bytes move to a pool
//!   buffer and the big `Vec` is freed.
//! * The pool keeps at most `max_idle` idle buffers: memory taken during a burst is given
//!   back to the allocator as frames are dropped. [`BufferPool::trim`] drops every idle
//!   buffer.
//!
//! ```
//! use msgwire_frame::{
//!     buffer::{BufferPool, PooledBuffer},
//!     length::LengthPrefixed,
//!     Framing, InputBuffer,
//! };
//!
//! let pool = BufferPool::new(4096, 16);
//! let mut buf = PooledBuffer::new(&pool);
//! let mut framing = LengthPrefixed::new();
//! for _ in 0..100 {
//!     buf.extend_from_slice(b"\x00\x00\x00\x04ping");
//!     let frame = framing.decode(&mut buf)?.expect("whole frame");
//!     assert_eq!(&frame[..], b"ping");
//!     // `frame` is dropped here: its Vec goes back to the pool.
//! }
//! let stats = pool.stats();
//! assert_eq!(stats.allocated_total, 2); // the input buffer and one frame buffer
//! assert_eq!(stats.reused_total, 99);
//! # Ok::<(), msgwire_frame::Error>(())
//! ```

use std::{
    fmt,
    ops::Deref,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use super::InputBuffer;

/// [`BufferPool::default`]'s buffer size: 8 KiB.
const DEFAULT_BUFFER_SIZE: usize = 8 * 1024;
/// [`BufferPool::default`]'s idle limit.
const DEFAULT_MAX_IDLE: usize = 64;

/// A snapshot of a pool's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Buffers waiting in the pool right now.
    pub idle: usize,
    /// Buffers allocated by the pool since it was created (input buffer storage, frames,
    /// growth under a burst).
    pub allocated_total: u64,
    /// Requests served with an idle buffer instead of a new allocation.
    pub reused_total: u64,
}

#[derive(Debug, Default)]
struct PoolState {
    idle: Vec<Vec<u8>>,
    allocated_total: u64,
    reused_total: u64,
}

#[derive(Debug)]
struct Shared {
    buffer_size: usize,
    max_idle: usize,
    state: Mutex<PoolState>,
}

/// A pool of reusable `Vec<u8>` buffers; see the [module docs](crate::buffer). Cloning is cheap:
/// clones share one pool, and the pool may be shared between threads.
#[derive(Debug, Clone)]
pub struct BufferPool {
    shared: Arc<Shared>,
}

impl Default for BufferPool {
    /// 8 KiB buffers, at most 64 idle.
    fn default() -> Self {
        Self::new(DEFAULT_BUFFER_SIZE, DEFAULT_MAX_IDLE)
    }
}

impl BufferPool {
    /// A pool of buffers of `buffer_size` bytes (at least 1) that keeps at most `max_idle`
    /// of them when they are not in use. Nothing is allocated up front.
    pub fn new(buffer_size: usize, max_idle: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                buffer_size: buffer_size.max(1),
                max_idle,
                state: Mutex::new(PoolState::default()),
            }),
        }
    }

    /// The capacity of the pool's buffers.
    pub fn buffer_size(&self) -> usize {
        self.shared.buffer_size
    }

    /// The most idle buffers the pool keeps.
    pub fn max_idle(&self) -> usize {
        self.shared.max_idle
    }

    /// The pool's counters.
    pub fn stats(&self) -> PoolStats {
        let state = self.lock();
        PoolStats {
            idle: state.idle.len(),
            allocated_total: state.allocated_total,
            reused_total: state.reused_total,
        }
    }

    /// Frees every idle buffer.
    pub fn trim(&self) {
        let idle = std::mem::take(&mut self.lock().idle);
        drop(idle); // freed outside the lock
    }

    /// A new input buffer drawing on this pool; same as [`PooledBuffer::new`].
    pub fn buffer(&self) -> PooledBuffer {
        PooledBuffer::new(self)
    }

    /// `data` copied into a buffer from the pool.
    pub fn frame(&self, data: &[u8]) -> PooledFrame {
        let mut buf = self.take(data.len());
        buf.extend_from_slice(data);
        PooledFrame {
            buf,
            pool: self.clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // The state is a free list and counters, consistent after any panic: a poisoned
        // lock is still usable.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Capacity over which a buffer is not kept idle.
    fn oversized(&self) -> usize {
        self.shared.buffer_size.saturating_mul(2)
    }

    /// An empty `Vec` with room for at least `min_capacity` bytes: an idle one if it is
    /// big enough, else a new one of `max(min_capacity, buffer_size)`.
    fn take(&self, min_capacity: usize) -> Vec<u8> {
        {
            let mut state = self.lock();
            if let Some(mut buf) = state.idle.pop() {
                if buf.capacity() >= min_capacity {
                    state.reused_total += 1;
                    buf.clear();
                    return buf;
                }
                state.idle.push(buf);
            }
            state.allocated_total += 1;
        }
        Vec::with_capacity(min_capacity.max(self.shared.buffer_size))
    }

    /// A new `Vec` of exactly `capacity` (growth under a burst); counted as an allocation.
    fn allocate(&self, capacity: usize) -> Vec<u8> {
        self.lock().allocated_total += 1;
        Vec::with_capacity(capacity)
    }

    /// Keeps `buf` idle if there is room and it is not oversized; otherwise frees it.
    fn give_back(&self, mut buf: Vec<u8>) {
        let capacity = buf.capacity();
        if capacity == 0 || capacity > self.oversized() {
            return;
        }
        let mut state = self.lock();
        if state.idle.len() < self.shared.max_idle {
            buf.clear();
            state.idle.push(buf);
        }
        // else: `buf` is dropped after the guard, freeing it.
    }
}

/// One frame's bytes in a buffer borrowed from a [`BufferPool`], given back when the
/// frame is dropped.
pub struct PooledFrame {
    buf: Vec<u8>,
    pool: BufferPool,
}

impl PooledFrame {
    /// The pool this frame's buffer goes back to.
    pub fn pool(&self) -> &BufferPool {
        &self.pool
    }

    /// Takes the bytes out of the pool's care: the `Vec` is not returned on drop.
    pub fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

impl Drop for PooledFrame {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

impl Deref for PooledFrame {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl AsRef<[u8]> for PooledFrame {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl fmt::Debug for PooledFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PooledFrame(b\"{}\")", self.buf.escape_ascii())
    }
}

impl Clone for PooledFrame {
    /// A copy in another buffer from the same pool.
    fn clone(&self) -> Self {
        self.pool.frame(&self.buf)
    }
}

impl PartialEq for PooledFrame {
    fn eq(&self, other: &Self) -> bool {
        self.buf == other.buf
    }
}

impl Eq for PooledFrame {}

impl PartialEq<[u8]> for PooledFrame {
    fn eq(&self, other: &[u8]) -> bool {
        self.buf[..] == *other
    }
}

/// An [`InputBuffer`] whose storage and frames come from a [`BufferPool`]; see the
/// [module docs](crate::buffer).
pub struct PooledBuffer {
    pool: BufferPool,
    /// `buf[read..]` are the buffered bytes; `buf.len()` is the write position.
    buf: Vec<u8>,
    read: usize,
}

impl PooledBuffer {
    /// An empty buffer; its storage is taken from `pool`.
    pub fn new(pool: &BufferPool) -> Self {
        Self {
            buf: pool.take(pool.buffer_size()),
            pool: pool.clone(),
            read: 0,
        }
    }

    /// The pool this buffer draws on.
    pub fn pool(&self) -> &BufferPool {
        &self.pool
    }

    /// Capacity of the current storage.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    fn live(&self) -> usize {
        self.buf.len() - self.read
    }

    /// Moves the buffered bytes to the front of the storage.
    fn compact(&mut self) {
        let live = self.live();
        self.buf.copy_within(self.read.., 0);
        self.buf.truncate(live);
        self.read = 0;
    }

    /// Moves the buffered bytes into `storage` and gives the old storage back.
    fn replace_storage(&mut self, mut storage: Vec<u8>) {
        storage.extend_from_slice(&self.buf[self.read..]);
        let old = std::mem::replace(&mut self.buf, storage);
        self.read = 0;
        self.pool.give_back(old);
    }

    /// Makes room for `additional` bytes after the write position: compacts if that is
    /// enough, grows otherwise.
    fn make_room(&mut self, additional: usize) {
        if self.buf.capacity() - self.buf.len() >= additional {
            return;
        }
        let needed = self.live().saturating_add(additional);
        if needed <= self.buf.capacity() {
            self.compact();
            return;
        }
        let capacity = needed.max(self.buf.capacity().saturating_mul(2));
        let storage = self.pool.allocate(capacity);
        self.replace_storage(storage);
    }

    /// After bytes were consumed: restart at 0 if empty, and leave an oversized storage
    /// for a pool buffer once what is left fits in one.
    fn after_consume(&mut self) {
        if self.read == self.buf.len() {
            self.buf.clear();
            self.read = 0;
        }
        if self.buf.capacity() > self.pool.oversized() && self.live() <= self.pool.buffer_size() {
            let storage = self.pool.take(self.pool.buffer_size());
            self.replace_storage(storage);
        }
    }
}

impl Default for PooledBuffer {
    /// A buffer on a private [`BufferPool::default`] pool.
    fn default() -> Self {
        Self::new(&BufferPool::default())
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

impl fmt::Debug for PooledBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBuffer")
            .field("capacity", &self.buf.capacity())
            .field("read", &self.read)
            .field("write", &self.buf.len())
            .finish()
    }
}

impl InputBuffer for PooledBuffer {
    type Frame = PooledFrame;

    fn len(&self) -> usize {
        self.live()
    }

    fn bytes(&mut self) -> &[u8] {
        &self.buf[self.read..]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.read..]
    }

    fn extend_from_slice(&mut self, data: &[u8]) {
        self.make_room(data.len());
        self.buf.extend_from_slice(data);
    }

    fn reserve(&mut self, additional: usize) {
        self.make_room(additional);
    }

    fn advance(&mut self, n: usize) {
        assert!(
            n <= self.live(),
            "advance({n}) past the {} buffered bytes",
            self.live()
        );
        self.read += n;
        self.after_consume();
    }

    fn split_frame(&mut self, n: usize) -> PooledFrame {
        assert!(
            n <= self.live(),
            "split_frame({n}) past the {} buffered bytes",
            self.live()
        );
        let frame = self.pool.frame(&self.buf[self.read..self.read + n]);
        self.read += n;
        self.after_consume();
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_splits_in_place() {
        let pool = BufferPool::new(16, 4);
        let mut buf = PooledBuffer::new(&pool);
        buf.extend_from_slice(b"hello world");
        assert_eq!(buf.bytes(), b"hello world");
        let frame = buf.split_frame(5);
        assert_eq!(&frame[..], b"hello");
        assert_eq!(frame.as_ref(), b"hello");
        assert_eq!(format!("{frame:?}"), "PooledFrame(b\"hello\")");
        assert_eq!((buf.read, buf.buf.len()), (5, 11));
        buf.bytes_mut()[1] = b'W';
        buf.advance(1);
        assert_eq!(buf.bytes(), b"World");
    }

    #[test]
    fn compacts_when_the_write_position_hits_the_end() {
        let pool = BufferPool::new(16, 4);
        let mut buf = PooledBuffer::new(&pool);
        buf.extend_from_slice(b"0123456789abcd");
        buf.advance(10);
        assert_eq!((buf.read, buf.buf.len()), (10, 14));
        buf.extend_from_slice(b"efghij"); // 14 + 6 > 16, but 4 + 6 fits
        assert_eq!((buf.read, buf.buf.len()), (0, 10));
        assert_eq!(buf.capacity(), 16, "compaction does not reallocate");
        assert_eq!(buf.bytes(), b"abcdefghij");
        assert_eq!(pool.stats().allocated_total, 1);
    }

    #[test]
    fn drained_buffer_restarts_at_zero() {
        let pool = BufferPool::new(16, 4);
        let mut buf = PooledBuffer::new(&pool);
        buf.extend_from_slice(b"0123456789");
        buf.advance(10);
        assert_eq!((buf.read, buf.buf.len()), (0, 0));
    }

    #[test]
    fn grows_under_a_burst_and_shrinks_back_once_drained() {
        let pool = BufferPool::new(16, 4);
        let mut buf = PooledBuffer::new(&pool);
        buf.extend_from_slice(b"0123456789");
        buf.extend_from_slice(&[b'x'; 10]); // 20 > 16: double
        assert_eq!(buf.capacity(), 32);
        assert_eq!(&buf.bytes()[..12], b"0123456789xx");
        assert_eq!(
            pool.stats().idle,
            1,
            "the 16-byte storage went back to the pool"
        );
        buf.extend_from_slice(&[b'y'; 100]); // 120 > 64: exactly what is needed
        assert_eq!(buf.capacity(), 120);
        assert_eq!(buf.len(), 120);
        assert_eq!(pool.stats().idle, 2, "32 bytes is not oversized: kept");
        // Draining to <= buffer_size moves the rest into a pool buffer.
        buf.advance(100);
        assert_eq!(buf.capacity(), 120, "20 bytes left: still too many");
        buf.advance(5);
        assert_eq!(buf.capacity(), 32, "the idle 32-byte Vec was reused");
        assert_eq!(buf.bytes(), &[b'y'; 15][..]);
        let stats = pool.stats();
        assert_eq!(stats.idle, 1, "the 120-byte storage was freed, not pooled");
        assert_eq!(stats.allocated_total, 3);
        assert_eq!(stats.reused_total, 1);
    }

    #[test]
    fn reserve_makes_room_up_front() {
        let pool = BufferPool::new(16, 4);
        let mut buf = PooledBuffer::new(&pool);
        buf.extend_from_slice(b"abc");
        buf.reserve(13);
        assert_eq!(buf.capacity(), 16);
        buf.reserve(40);
        assert_eq!(buf.capacity(), 43);
        assert_eq!(buf.bytes(), b"abc");
        let before = pool.stats().allocated_total;
        buf.extend_from_slice(&[0; 40]);
        assert_eq!(
            pool.stats().allocated_total,
            before,
            "no growth after reserve"
        );
    }

    #[test]
    fn frames_return_to_the_pool_and_are_reused() {
        let pool = BufferPool::new(64, 4);
        let mut buf = PooledBuffer::new(&pool);
        for i in 0..1000u32 {
            buf.extend_from_slice(&i.to_be_bytes());
            let frame = buf.split_frame(4);
            assert_eq!(&frame[..], i.to_be_bytes());
        }
        let stats = pool.stats();
        assert_eq!(stats.allocated_total, 2, "input storage + one frame buffer");
        assert_eq!(stats.reused_total, 999, "every later frame reused it");
        assert_eq!(stats.idle, 1);
    }

    #[test]
    fn steady_state_with_several_frames_in_flight_does_not_allocate() {
        let pool = BufferPool::new(64, 8);
        let mut buf = PooledBuffer::new(&pool);
        let mut in_flight = std::collections::VecDeque::new();
        for i in 0..200u8 {
            buf.extend_from_slice(&[i; 24]);
            in_flight.push_back(buf.split_frame(24));
            if in_flight.len() > 3 {
                in_flight.pop_front();
            }
        }
        let warm = pool.stats().allocated_total;
        assert_eq!(warm, 1 + 4);
        for i in 0..200u8 {
            buf.extend_from_slice(&[i; 24]);
            in_flight.push_back(buf.split_frame(24));
            in_flight.pop_front();
        }
        assert_eq!(pool.stats().allocated_total, warm);
    }

    #[test]
    fn memory_is_given_back_after_a_burst() {
        let pool = BufferPool::new(32, 3);
        let mut buf = PooledBuffer::new(&pool);
        // A burst: 10 small frames and 2 oversized ones held at once.
        let mut held = Vec::new();
        for _ in 0..10 {
            buf.extend_from_slice(&[1; 20]);
            held.push(buf.split_frame(20));
        }
        buf.extend_from_slice(&[2; 500]);
        held.push(buf.split_frame(250));
        held.push(buf.split_frame(250));
        assert_eq!(buf.capacity(), 32, "input storage shrank back once drained");
        assert_eq!(held[11].len(), 250);
        drop(held);
        let stats = pool.stats();
        assert!(stats.idle <= 3, "idle {} > max_idle", stats.idle);
        assert_eq!(stats.idle, 3);
        {
            let state = pool.lock();
            assert!(state.idle.iter().all(|v| v.capacity() <= 64));
        }
        pool.trim();
        assert_eq!(pool.stats().idle, 0);
    }

    #[test]
    fn oversized_vecs_are_freed_not_pooled() {
        let pool = BufferPool::new(8, 10);
        let big = pool.frame(&[0; 17]);
        let ok = pool.frame(&[0; 16]);
        assert_eq!(pool.stats().allocated_total, 2);
        drop(big);
        assert_eq!(pool.stats().idle, 0);
        drop(ok);
        assert_eq!(pool.stats().idle, 1);
    }

    #[test]
    fn idle_buffer_too_small_for_a_frame_is_kept_and_a_new_one_made() {
        let pool = BufferPool::new(8, 10);
        drop(pool.frame(b"x"));
        let f = pool.frame(&[3; 12]);
        assert_eq!(&f[..], &[3; 12][..]);
        let stats = pool.stats();
        assert_eq!(
            (stats.idle, stats.allocated_total, stats.reused_total),
            (1, 2, 0)
        );
    }

    #[test]
    fn frame_helpers() {
        let pool = BufferPool::new(8, 2);
        let a = pool.frame(b"abc");
        let b = a.clone();
        assert_eq!(a, b);
        assert!(a == *b"abc".as_slice());
        assert_eq!(b.into_vec(), b"abc");
        assert_eq!(
            pool.stats().idle,
            0,
            "into_vec keeps the Vec out of the pool"
        );
        assert_eq!(a.pool().buffer_size(), 8);
    }

    #[test]
    fn dropping_the_input_buffer_returns_its_storage() {
        let pool = BufferPool::new(16, 2);
        let buf = pool.buffer();
        assert_eq!(pool.stats().idle, 0);
        drop(buf);
        assert_eq!(pool.stats().idle, 1);
        let _again = PooledBuffer::new(&pool);
        assert_eq!(pool.stats().reused_total, 1);
    }

    #[test]
    fn zero_buffer_size_is_clamped() {
        let pool = BufferPool::new(0, 2);
        assert_eq!(pool.buffer_size(), 1);
        let mut buf = PooledBuffer::new(&pool);
        buf.extend_from_slice(b"abc");
        assert_eq!(&buf.split_frame(3)[..], b"abc");
    }

    #[test]
    fn clones_share_the_pool_across_threads() {
        let pool = BufferPool::new(16, 8);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    let mut buf = pool.buffer();
                    for _ in 0..100 {
                        buf.extend_from_slice(b"abcd");
                        assert_eq!(&buf.split_frame(4)[..], b"abcd");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let stats = pool.stats();
        assert_eq!(stats.allocated_total + stats.reused_total, 4 * 101);
        assert!(stats.idle <= 8);
    }
}
