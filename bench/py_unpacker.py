"""Times Python's msgpack.Unpacker.feed on the reads the Rust contenders get.

    py_unpacker.py STREAM SIZES ROUNDS EXPECTED

STREAM is the MessagePack stream, SIZES the read sizes (one little-endian u32 each),
ROUNDS how many timed runs (after one warm-up), EXPECTED how many values the stream
holds. The stream is cut into the reads before timing starts, as the Rust side does.
Each run feeds every read to a fresh Unpacker and iterates the values it yields.

Prints one line: `values N seconds MEDIAN impl C|Python msgpack VERSION`.
"""

import struct
import sys
import time

import msgpack


def main() -> int:
    stream_path, sizes_path, rounds, expected = sys.argv[1:5]
    rounds, expected = int(rounds), int(expected)
    with open(stream_path, "rb") as f:
        stream = f.read()
    with open(sizes_path, "rb") as f:
        raw = f.read()
    sizes = [n for (n,) in struct.iter_unpack("<I", raw)]
    pieces = []
    pos = 0
    for n in sizes:
        pieces.append(stream[pos : pos + n])
        pos += n
    if pos != len(stream):
        print(f"read sizes cover {pos} of {len(stream)} bytes", file=sys.stderr)
        return 2

    def run() -> int:
        unpacker = msgpack.Unpacker()
        count = 0
        for piece in pieces:
            unpacker.feed(piece)
            for _ in unpacker:
                count += 1
        return count

    got = run()  # warm-up, and the check that every value came out
    if got != expected:
        print(f"decoded {got} values, expected {expected}", file=sys.stderr)
        return 2
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    times.sort()
    impl = "C" if msgpack.Unpacker.__module__.endswith("_cmsgpack") else "Python"
    version = ".".join(str(p) for p in msgpack.version)
    print(f"values {got} seconds {times[len(times) // 2]:.9f} impl {impl} msgpack {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
