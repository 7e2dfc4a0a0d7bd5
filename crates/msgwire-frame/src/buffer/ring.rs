//! [`RingBuffer`]: a fixed block of memory that writes wrap around.
//!
//! ```text
//!  storage (capacity 16), head = 11, len = 9: the readable bytes wrap
//! +---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
//! | f | g | h | i |   |   |   |   |   |   |   | a | b | c | d | e |
//! +---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
//!                ^ tail (next write)             ^ head (next read)
//!
//!  after bytes(): rotate_left(head), head = 0, the view is contiguous
//! +---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
//! | a | b | c | d | e | f | g | h | i |   |   |   |   |   |   |   |
//! +---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
//! ```
//!
//! * Appending writes at the tail and wraps past the end of the storage; dropping bytes
//!   from the front only moves the head. Neither copies the buffered bytes.
//! * A framing reads the buffered bytes as one slice ([`InputBuffer::bytes`]). When the
//!   readable region wraps, the storage is rotated in place (`<[u8]>::rotate_left`) so
//!   that it starts at index 0. That costs one pass over the storage but only happens
//!   when the writes have gone round the end, so it is amortised over at least
//!   `capacity - len` appended bytes.
//! * When an append (or [`InputBuffer::reserve`]) needs more room than the capacity, the
//!   storage **grows**: to twice the capacity, or to exactly what is needed if that is
//!   more. It never shrinks by itself; [`RingBuffer::shrink_to`] gives memory back.
//! * Frames are copied out into a `Box<[u8]>` (a `Vec<u8>` with `into_vec`, free of
//!   charge). Not `Vec<u8>` itself: `Vec<u8>` implements both `AsRef<[u8]>` and
//!   `AsRef<Vec<u8>>`, so the natural `frame.as_ref()` on a concrete frame would not
//!   compile; `Box<[u8]>` has the one `AsRef<[u8]>`, like `Bytes` and
//!   [`PooledFrame`](super::PooledFrame).
//!
//! ```
//! use msgwire_frame::{buffer::RingBuffer, length::LengthPrefixed, Framing, InputBuffer};
//!
//! let mut framing = LengthPrefixed::new();
//! let mut buf = RingBuffer::with_capacity(8);
//! buf.extend_from_slice(b"\x00\x00\x00\x02hi\x00\x00");
//! assert_eq!(framing.decode(&mut buf)?.as_deref(), Some(&b"hi"[..]));
//! // This append wraps round the end of the 8-byte storage...
//! buf.extend_from_slice(b"\x00\x03abc");
//! // ...and decoding still sees one contiguous frame.
//! assert_eq!(framing.decode(&mut buf)?.as_deref(), Some(&b"abc"[..]));
//! assert_eq!(buf.capacity(), 8);
//! # Ok::<(), msgwire_frame::Error>(())
//! ```

use std::fmt;

use super::InputBuffer;

/// Capacity of [`RingBuffer::default`]: 8 KiB.
const DEFAULT_CAPACITY: usize = 8 * 1024;

/// A ring buffer over a `Box<[u8]>`; see the [module docs](crate::buffer).
pub struct RingBuffer {
    storage: Box<[u8]>,
    /// Index of the first readable byte. Always `< capacity` (or 0 if the capacity is 0).
    head: usize,
    /// Number of readable bytes.
    len: usize,
}

impl Default for RingBuffer {
    /// An 8 KiB ring buffer.
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for RingBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingBuffer")
            .field("capacity", &self.storage.len())
            .field("head", &self.head)
            .field("len", &self.len)
            .finish()
    }
}

impl RingBuffer {
    /// An empty ring buffer of `capacity` bytes, allocated up front.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            storage: vec![0; capacity].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    /// Size of the storage.
    pub fn capacity(&self) -> usize {
        self.storage.len()
    }

    /// Whether the readable bytes currently wrap round the end of the storage (the next
    /// [`InputBuffer::bytes`] call will rotate).
    pub fn is_wrapped(&self) -> bool {
        self.head + self.len > self.storage.len()
    }

    /// Replaces the storage by one of `max(capacity, len())` bytes if that is smaller than
    /// the current capacity: gives memory back after a burst made the buffer grow.
    pub fn shrink_to(&mut self, capacity: usize) {
        let target = capacity.max(self.len);
        if target < self.storage.len() {
            self.reallocate(target);
        }
    }

    /// Index one past the last readable byte, modulo the capacity.
    fn tail(&self) -> usize {
        let cap = self.storage.len();
        if cap == 0 {
            return 0;
        }
        (self.head + self.len) % cap
    }

    /// The readable bytes as (first part, wrapped part).
    fn as_slices(&self) -> (&[u8], &[u8]) {
        let cap = self.storage.len();
        if self.head + self.len <= cap {
            (&self.storage[self.head..self.head + self.len], &[])
        } else {
            let first = cap - self.head;
            (
                &self.storage[self.head..],
                &self.storage[..self.len - first],
            )
        }
    }

    /// New storage of `capacity` (>= len) bytes, readable bytes moved to its front.
    fn reallocate(&mut self, capacity: usize) {
        let mut storage = vec![0; capacity].into_boxed_slice();
        let (a, b) = self.as_slices();
        storage[..a.len()].copy_from_slice(a);
        storage[a.len()..a.len() + b.len()].copy_from_slice(b);
        self.storage = storage;
        self.head = 0;
    }

    /// Makes sure `additional` more bytes fit, doubling the capacity (or more) if not.
    fn ensure_room(&mut self, additional: usize) {
        let cap = self.storage.len();
        let needed = self.len.saturating_add(additional);
        if needed > cap {
            self.reallocate(needed.max(cap.saturating_mul(2)));
        }
    }

    /// Rotates the storage so that the readable bytes start at index 0, if they wrap.
    fn make_contiguous(&mut self) {
        if self.is_wrapped() {
            self.storage.rotate_left(self.head);
            self.head = 0;
        }
    }
}

impl InputBuffer for RingBuffer {
    type Frame = Box<[u8]>;

    fn len(&self) -> usize {
        self.len
    }

    fn bytes(&mut self) -> &[u8] {
        self.make_contiguous();
        &self.storage[self.head..self.head + self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        self.make_contiguous();
        &mut self.storage[self.head..self.head + self.len]
    }

    fn extend_from_slice(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.ensure_room(data.len());
        let cap = self.storage.len();
        let tail = self.tail();
        // First piece: from the tail to the end of the storage; the rest wraps to 0.
        let first = data.len().min(cap - tail);
        self.storage[tail..tail + first].copy_from_slice(&data[..first]);
        let rest = &data[first..];
        self.storage[..rest.len()].copy_from_slice(rest);
        self.len += data.len();
    }

    fn reserve(&mut self, additional: usize) {
        self.ensure_room(additional);
    }

    fn advance(&mut self, n: usize) {
        assert!(
            n <= self.len,
            "advance({n}) past the {} buffered bytes",
            self.len
        );
        self.len -= n;
        if self.len == 0 {
            // Empty: restart at 0 so the next writes are contiguous.
            self.head = 0;
        } else {
            self.head = (self.head + n) % self.storage.len();
        }
    }

    fn split_frame(&mut self, n: usize) -> Box<[u8]> {
        assert!(
            n <= self.len,
            "split_frame({n}) past the {} buffered bytes",
            self.len
        );
        let (a, b) = self.as_slices();
        let mut frame = Vec::with_capacity(n);
        let from_a = n.min(a.len());
        frame.extend_from_slice(&a[..from_a]);
        frame.extend_from_slice(&b[..n - from_a]);
        self.advance(n);
        // Capacity is exactly n: no reallocation.
        frame.into_boxed_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Puts the ring in the state of the module diagram: capacity 16, head 11, `a..=i`.
    fn wrapped() -> RingBuffer {
        let mut ring = RingBuffer::with_capacity(16);
        ring.extend_from_slice(&[b'.'; 11]);
        ring.extend_from_slice(b"abcde");
        ring.advance(11);
        assert_eq!((ring.head, ring.len), (11, 5));
        ring.extend_from_slice(b"fghi");
        ring
    }

    #[test]
    fn writes_wrap_round_the_end() {
        let ring = wrapped();
        assert!(ring.is_wrapped());
        assert_eq!(ring.capacity(), 16);
        assert_eq!(&ring.storage[..4], b"fghi");
        assert_eq!(&ring.storage[11..], b"abcde");
        assert_eq!(ring.tail(), 4);
    }

    #[test]
    fn bytes_rotates_a_wrapped_region_into_one_slice() {
        let mut ring = wrapped();
        assert_eq!(ring.bytes(), b"abcdefghi");
        assert!(!ring.is_wrapped());
        assert_eq!(ring.head, 0);
        assert_eq!(&ring.storage[..9], b"abcdefghi");
        assert_eq!(ring.capacity(), 16, "rotation does not reallocate");
        // Still a ring afterwards: appends go after the data.
        ring.extend_from_slice(b"jk");
        assert_eq!(ring.bytes(), b"abcdefghijk");
    }

    #[test]
    fn bytes_mut_rotates_and_writes_through() {
        let mut ring = wrapped();
        ring.bytes_mut()[0] = b'A';
        assert_eq!(ring.bytes(), b"Abcdefghi");
    }

    #[test]
    fn split_frame_copies_across_the_wrap_without_rotating() {
        let mut ring = wrapped();
        assert_eq!(&ring.split_frame(7)[..], b"abcdefg");
        assert_eq!(ring.split_frame(0).as_ref(), b"");
        assert_eq!((ring.head, ring.len), (2, 2));
        assert_eq!(ring.bytes(), b"hi");
    }

    #[test]
    fn advance_across_the_wrap_and_to_empty() {
        let mut ring = wrapped();
        ring.advance(6);
        assert_eq!((ring.head, ring.len), (1, 3));
        assert_eq!(ring.bytes(), b"ghi");
        ring.advance(3);
        assert!(ring.is_empty());
        assert_eq!(ring.head, 0, "an empty ring restarts at 0");
    }

    #[test]
    fn grows_by_doubling_keeping_order() {
        let mut ring = wrapped();
        ring.extend_from_slice(b"jklmnopq"); // 9 + 8 = 17 > 16
        assert_eq!(ring.capacity(), 32);
        assert_eq!(ring.head, 0, "growth unwraps");
        assert_eq!(ring.bytes(), b"abcdefghijklmnopq");
    }

    #[test]
    fn grows_to_exactly_what_is_needed_when_more_than_double() {
        let mut ring = RingBuffer::with_capacity(4);
        ring.extend_from_slice(&[7; 100]);
        assert_eq!(ring.capacity(), 100);
        assert_eq!(ring.bytes(), &[7; 100][..]);
    }

    #[test]
    fn zero_capacity_grows_on_first_write() {
        let mut ring = RingBuffer::with_capacity(0);
        assert_eq!(ring.bytes(), b"");
        ring.extend_from_slice(b"");
        assert_eq!(ring.capacity(), 0);
        ring.extend_from_slice(b"xy");
        assert_eq!(ring.bytes(), b"xy");
        ring.advance(1);
        assert_eq!(ring.bytes(), b"y");
    }

    #[test]
    fn reserve_is_honoured() {
        let mut ring = RingBuffer::with_capacity(16);
        ring.extend_from_slice(b"abc");
        ring.reserve(10);
        assert_eq!(ring.capacity(), 16, "13 bytes fit already");
        ring.reserve(20);
        assert_eq!(ring.capacity(), 32);
        ring.reserve(100);
        assert_eq!(ring.capacity(), 103);
        assert_eq!(ring.bytes(), b"abc");
    }

    #[test]
    fn shrink_to_gives_memory_back_but_keeps_data() {
        let mut ring = RingBuffer::with_capacity(16);
        ring.extend_from_slice(&[1; 1000]);
        ring.advance(995);
        ring.shrink_to(16);
        assert_eq!(ring.capacity(), 16);
        assert_eq!(ring.bytes(), &[1; 5][..]);
        ring.shrink_to(2);
        assert_eq!(ring.capacity(), 5, "never below the buffered bytes");
    }

    #[test]
    fn steady_state_does_not_grow() {
        let mut ring = RingBuffer::with_capacity(16);
        let mut out = Vec::new();
        for i in 0..1000u32 {
            let msg = i.to_be_bytes();
            ring.extend_from_slice(&msg[..3]);
            ring.extend_from_slice(&msg[3..]);
            let _ = ring.bytes();
            out.push(ring.split_frame(4));
            if i % 3 == 0 {
                // Leave a partial message buffered now and then so the head wanders.
                ring.extend_from_slice(b"zz");
                ring.advance(2);
            }
        }
        assert_eq!(ring.capacity(), 16);
        for (i, frame) in out.iter().enumerate() {
            assert_eq!(frame[..], (i as u32).to_be_bytes());
        }
    }

    #[test]
    #[should_panic(expected = "past the")]
    fn advance_past_the_end_panics() {
        RingBuffer::with_capacity(4).advance(1);
    }
}
