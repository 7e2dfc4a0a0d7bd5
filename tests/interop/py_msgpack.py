"""Python `msgpack` as a peer for msgwire's interop tests.

Reads a stream msgwire wrote on stdin, decodes it with `msgpack`, re-encodes every value
with `msgpack.packb` and writes the new stream to stdout; prints the number of values
to stderr.

    py_msgpack.py length   stdin/stdout: [u32 BE length][msgpack value] ...
    py_msgpack.py stream   stdin/stdout: msgpack values back to back; stdin is decoded
                           with Unpacker.feed() in 7-byte pieces
"""
import struct
import sys

import msgpack


def unpack_one(payload: bytes):
    return msgpack.unpackb(payload, raw=False, strict_map_key=False)


def main() -> None:
    mode = sys.argv[1]
    data = sys.stdin.buffer.read()
    values = []
    if mode == "length":
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack_from(">I", data, pos)
            pos += 4
            if pos + length > len(data):
                raise SystemExit(f"truncated frame at {pos - 4}")
            values.append(unpack_one(data[pos : pos + length]))
            pos += length
        out = b"".join(
            struct.pack(">I", len(p)) + p
            for p in (msgpack.packb(v, use_bin_type=True) for v in values)
        )
    elif mode == "stream":
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        for i in range(0, len(data), 7):
            unpacker.feed(data[i : i + 7])
            values.extend(unpacker)
        out = b"".join(msgpack.packb(v, use_bin_type=True) for v in values)
    else:
        raise SystemExit(f"unknown mode {mode}")
    sys.stdout.buffer.write(out)
    print(len(values), file=sys.stderr)


main()
