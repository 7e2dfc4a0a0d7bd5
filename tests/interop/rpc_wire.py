"""What the Python RPC peers share: a connection, and requests and notifications of
the three dialects written by hand with `msgpack` and `struct` (docs/PROTOCOL.md,
sections 3 to 5)."""
import socket
import struct

import msgpack


def connect(host, port):
    """A TCP connection with Nagle off (small requests leave at once)."""
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def unpacker():
    """An unpacker for what the server sends (strs as str, any map keys)."""
    return msgpack.Unpacker(raw=False, strict_map_key=False)


def frame(body):
    """A framed dialect's u32 length in front of `body`."""
    return struct.pack(">I", len(body)) + body


def request(dialect, msgid, method, params):
    if dialect == "msgpack-rpc":
        return msgpack.packb([0, msgid, method, params])
    if dialect == "framed-binary":
        body = msgpack.packb({"method": method, "params": params})
        return frame(b"\x01" + struct.pack(">I", msgid) + body)
    return frame(msgpack.packb({"method": method, "params": params, "id": msgid}))


def notification(dialect, method, params):
    if dialect == "msgpack-rpc":
        return msgpack.packb([2, method, params])
    body = msgpack.packb({"method": method, "params": params})
    if dialect == "framed-binary":
        return frame(b"\x03" + struct.pack(">I", 0) + body)
    return frame(body)
