"""Python `websockets` (its threading client) + `msgpack` as a msgpack-rpc peer of
msgwire's `GET /ws`: one msgpack-rpc message per binary WebSocket message.

    py_ws_rpc.py ws://HOST:PORT/ws

Calls `add`, `echo` with a small and a large bin, reads a server stream
(`publishEvent`, then `subscribeEvents` with a `start_time` before it, so the event is
replayed as a `$/item`), and chats: two sockets join one room (`chat`, a bidirectional
stream: `$/send` items in, `$/item` items out) and one hears the other. Every message
received must be binary and hold exactly one MessagePack value. Prints one JSON line
summarising what it saw; exits non-zero on anything unexpected.
"""
import json
import sys
import time

import msgpack
from websockets.sync.client import connect


class Peer:
    """One WebSocket, msgpack-rpc on top; answers the server's `$/ping` requests."""

    def __init__(self, url: str):
        self.ws = connect(url, subprotocols=["msgpack-rpc"], compression=None,
                          max_size=None, open_timeout=10)
        if self.ws.subprotocol != "msgpack-rpc":
            raise SystemExit(f"subprotocol not accepted: {self.ws.subprotocol!r}")
        self.next_id = 0
        self.one_value_each = True

    def send(self, message) -> None:
        self.ws.send(msgpack.packb(message, use_bin_type=True))

    def recv(self):
        data = self.ws.recv(timeout=20)
        if not isinstance(data, bytes):
            raise SystemExit(f"a text message from the server: {data!r}")
        try:
            message = msgpack.unpackb(data, raw=False)  # raises on extra bytes
        except msgpack.ExtraData:
            self.one_value_each = False
            raise
        if message[0] == 0 and message[2] == "$/ping":
            self.send([1, message[1], None, None])
            return self.recv()
        return message

    def request(self, method: str, params) -> int:
        self.next_id += 1
        self.send([0, self.next_id, method, params])
        return self.next_id

    def call(self, method: str, params):
        msgid = self.request(method, params)
        while True:
            message = self.recv()
            if message[0] == 1 and message[1] == msgid:
                if message[2] is not None:
                    raise SystemExit(f"{method} failed: {message[2]!r}")
                return message[3]

    def item(self, msgid: int):
        """The next `$/item` of the call `msgid`."""
        while True:
            message = self.recv()
            if message[0] == 2 and message[1] == "$/item" and message[2][0] == msgid:
                return message[2][1]
            if message[0] == 1 and message[1] == msgid:
                raise SystemExit(f"the stream ended early: {message!r}")


def main() -> None:
    url = sys.argv[1]
    summary = {}
    peer = Peer(url)
    summary["add"] = peer.call("add", [1, 2])
    small = b"\x00\x01binary\xff"
    summary["echo_small"] = peer.call("echo", [small]) == small
    large = bytes(range(256)) * 1024  # 256 KiB
    summary["echo_large"] = peer.call("echo", [large]) == large

    # A server stream: the event published a moment ago is replayed as an item.
    start = int(time.time() * 1000) - 60_000
    peer.call("publishEvent", [4242, "login", {"ip": "10.0.0.1"}])
    sub = peer.request("subscribeEvents", [4242, None, start])
    event = peer.item(sub)
    while event.get("type") == "heartbeat":
        event = peer.item(sub)
    summary["event"] = event["type"]
    peer.send([2, "$/cancel", [sub]])

    # A chat: alice and bob in one room.
    alice, bob = Peer(url), Peer(url)
    a = alice.request("chat", [])
    alice.send([2, "$/send", [a, {"user_id": "alice", "room_id": "room-1",
                                  "type": "join", "content": ""}]])
    summary["chat_welcome"] = alice.item(a)["content"]
    b = bob.request("chat", [])
    bob.send([2, "$/send", [b, {"user_id": "bob", "room_id": "room-1",
                                "type": "join", "content": ""}]])
    bob.item(b)  # bob's welcome
    summary["chat_joined"] = alice.item(a)["user_id"]
    bob.send([2, "$/send", [b, {"user_id": "bob", "room_id": "room-1",
                                "type": "text", "content": "hello from bob"}]])
    summary["chat_text"] = alice.item(a)["content"]
    for p, msgid in ((alice, a), (bob, b)):
        p.send([2, "$/send_end", [msgid]])
    summary["every_message_one_value"] = all(
        p.one_value_each for p in (peer, alice, bob))
    for p in (peer, alice, bob):
        p.ws.close()
        if p.ws.close_code != 1000:
            raise SystemExit(f"close not echoed: {p.ws.close_code}")
    print(json.dumps(summary))


main()
