"""A stream client written from docs/PROTOCOL.md section 10 alone: the stock `msgpack`
package and a socket, msgpack-rpc dialect. Prints one JSON object for the Rust test to
check.

    py_stream_client.py files HOST PORT SIZE    uploads SIZE random bytes (client
        stream), downloads them back granting credit (server stream), compares, then
        starts a second download and cancels it after three chunks; a unary call on
        the same connection is answered after the cancel
    py_stream_client.py events HOST PORT USER   publishes login, profile_update and
        logout for USER, subscribes to its login and logout events from time 0, reads
        them (heartbeats skipped), cancels the subscription, and calls add(2, 3)
    py_stream_client.py pynvim HOST PORT FILE_ID   pynvim's session calls download;
        the items arrive as `$/item` notifications before the result
"""
import hashlib
import json
import os
import socket
import sys

import msgpack

WINDOW_ITEMS = 64  # 10.4: the default window, in items...
WINDOW_BYTES = 1024 * 1024  # ...and in bytes
# A msgwire receiver gives credit back once half a window is taken, in items or bytes.
GRANT_ITEMS = WINDOW_ITEMS // 2
GRANT_BYTES = WINDOW_BYTES // 2


class Peer:
    """One msgpack-rpc connection: requests, notifications, and what comes back."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.unpacker = msgpack.Unpacker(raw=False)
        self.next_id = 1
        self.send_credit = {}  # per call: [items, bytes] this end may still send

    def send(self, message):
        self.sock.sendall(msgpack.packb(message, use_bin_type=True))

    def request(self, method, params):
        call_id = self.next_id
        self.next_id += 1
        self.send([0, call_id, method, params])
        self.send_credit[call_id] = [WINDOW_ITEMS, WINDOW_BYTES]
        return call_id

    def notify(self, method, params):
        self.send([2, method, params])

    def recv(self, or_credit=False):
        """The next message; `$/ping` requests are answered here (10.6), and
        `$/send_credit` is added up (returning None if `or_credit`)."""
        while True:
            for message in self.unpacker:
                if message[0] == 0 and message[2] == "$/ping":
                    self.send([1, message[1], None, None])
                    continue
                if message[0] == 2 and message[1] == "$/send_credit":
                    credit = self.send_credit[message[2][0]]
                    credit[0] += message[2][1]
                    credit[1] += message[2][2]
                    if or_credit:
                        return None
                    continue
                return message
            data = self.sock.recv(65536)
            if not data:
                raise SystemExit("the server closed the connection")
            self.unpacker.feed(data)

    def stream_send(self, call_id, value):
        """A `$/send`, once there is credit for it: at least one item and more than
        zero bytes; an item costs the encoded length of its value (10.4)."""
        credit = self.send_credit[call_id]
        while credit[0] < 1 or credit[1] <= 0:
            message = self.recv(or_credit=True)
            if message is not None and message[0] == 1 and message[1] == call_id:
                raise SystemExit(f"the upload ended early: {message[2]}")
        credit[0] -= 1
        credit[1] -= len(msgpack.packb(value, use_bin_type=True))
        self.notify("$/send", [call_id, value])


def upload(peer, data):
    checksum = hashlib.sha256(data).hexdigest()
    call_id = peer.request("upload", [])
    peer.stream_send(call_id, {
        "filename": "from-python.bin",
        "total_size": len(data),
        "content_type": "application/octet-stream",
        "checksum": checksum,
    })
    for offset in range(0, len(data), 65536):
        peer.stream_send(call_id, data[offset:offset + 65536])
    peer.notify("$/send_end", [call_id])
    while True:
        message = peer.recv()
        if message[0] == 1 and message[1] == call_id:
            if message[2] is not None:
                raise SystemExit(f"upload failed: {message[2]}")
            return message[3]


def download(peer, file_id, stop_after=None):
    """The chunks of `file_id`, granting credit as they are taken; with `stop_after`,
    cancels after that many chunks and returns what it had."""
    call_id = peer.request("download", [file_id])
    chunks = []
    taken = size = 0
    while True:
        message = peer.recv()
        if message[0] == 2 and message[1] == "$/item" and message[2][0] == call_id:
            chunk = message[2][1]
            chunks.append(chunk)
            taken += 1
            size += len(msgpack.packb(chunk, use_bin_type=True))
            if stop_after is not None and len(chunks) == stop_after:
                peer.notify("$/cancel", [call_id])  # section 6
                return call_id, chunks, None
            if taken >= GRANT_ITEMS or size >= GRANT_BYTES:
                peer.notify("$/credit", [call_id, taken, size])
                taken = size = 0
        elif message[0] == 1 and message[1] == call_id:
            if message[2] is not None:
                raise SystemExit(f"download failed: {message[2]}")
            return call_id, chunks, message[3]


def call(peer, method, params, cancelled=()):
    """A unary call; items and answers of `cancelled` calls that were on their way
    are counted, not taken for the answer."""
    call_id = peer.request(method, params)
    late = {"items": 0, "responses": 0}
    while True:
        message = peer.recv()
        if message[0] == 1 and message[1] == call_id:
            return message[3], late
        if message[0] == 2 and message[2] and message[2][0] in cancelled:
            late["items"] += 1
        elif message[0] == 1 and message[1] in cancelled:
            late["responses"] += 1


def files(host, port, size):
    peer = Peer(host, port)
    data = os.urandom(size)
    uploaded = upload(peer, data)
    _, chunks, info = download(peer, uploaded["file_id"])
    back = b"".join(chunk["data"] for chunk in chunks)
    offsets_in_order = all(
        chunk["offset"] == i * 65536 and chunk["size"] == len(chunk["data"])
        for i, chunk in enumerate(chunks)
    )
    cancelled_id, partial, _ = download(peer, uploaded["file_id"], stop_after=3)
    added, late = call(peer, "add", [2, 3], cancelled=(cancelled_id,))
    print(json.dumps({
        "uploaded": {k: uploaded[k] for k in ("bytes_uploaded", "checksum_verified")},
        "identical": back == data,
        "chunks": len(chunks),
        "largest_chunk": max(len(chunk["data"]) for chunk in chunks),
        "offsets_in_order": offsets_in_order,
        "final_size": info.get("size") if isinstance(info, dict) else None,
        "cancelled_after": len(partial),
        "add_after_cancel": added,
        "late": late,
        "file_id": uploaded["file_id"],
    }))


def events(host, port, user):
    peer = Peer(host, port)
    for kind in ("login", "profile_update", "logout"):
        call(peer, "publishEvent", [user, kind, {"from": "python"}])
    call_id = peer.request("subscribeEvents", [user, ["login", "logout"], 0])
    seen = []
    heartbeats = 0
    while len(seen) < 2:
        message = peer.recv()
        if message[0] == 2 and message[1] == "$/item" and message[2][0] == call_id:
            item = message[2][1]
            if item.get("type") == "heartbeat":
                heartbeats += 1
            else:
                seen.append(item["type"])
        elif message[0] == 1 and message[1] == call_id:
            raise SystemExit(f"the subscription ended: {message[2]}")
    peer.notify("$/cancel", [call_id])
    added, late = call(peer, "add", [2, 3], cancelled=(call_id,))
    print(json.dumps({"events": seen, "add_after_cancel": added, "late": late}))


def pynvim(host, port, file_id):
    from pynvim.msgpack_rpc import tcp_session

    session = tcp_session(host, port)
    info = session.request("download", file_id)
    items = []
    while True:
        message = session.next_message()
        if message is None:
            break
        items.append(message)
        if len(items) == info["size"] // 65536 + (1 if info["size"] % 65536 else 0):
            break
    session.close()
    print(json.dumps({
        "result_size": info["size"],
        "kinds": sorted({m.type for m in items}),
        "names": sorted({m.name for m in items}),
        "bytes": sum(len(m.args[1]["data"]) for m in items),
    }))


if __name__ == "__main__":
    mode, host, port, arg = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if mode == "files":
        files(host, port, int(arg))
    elif mode == "events":
        events(host, port, int(arg))
    elif mode == "pynvim":
        pynvim(host, port, arg)
    else:
        raise SystemExit(f"unknown mode {mode}")
