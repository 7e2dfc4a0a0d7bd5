"""A Python `msgpack` peer for the gaps of issue 6, section 1 (and the depth and
notification bounds of section 2), with nothing but `socket`, `struct` and `msgpack`.

    py_seed_gaps.py HOST PORT ids DIALECT          the seed's framed-map request with its str
                                                   id, and integer ids of every size, echoed
    py_seed_gaps.py HOST PORT malformed DIALECT    each whole frame that is not a message:
                                                   its answer, then add(1, 2) on the same
                                                   connection
    py_seed_gaps.py HOST PORT depth DIALECT LIMIT  params nested LIMIT, LIMIT + 1 and far
                                                   deeper (the server's --max-depth: LIMIT)
    py_seed_gaps.py HOST PORT notifications METHOD N [hold]
                                                   N notifications of METHOD, then a call,
                                                   in one write (msgpack-rpc); with hold,
                                                   the connection stays open until a line
                                                   on stdin once the call is answered
    py_seed_gaps.py HOST PORT huge                 16 MB strs and bins where add wants numbers
    py_seed_gaps.py HOST PORT flood MEGABYTES      that much junk over three connections (one
                                                   a dialect); the answers are read as they
                                                   come
    py_seed_gaps.py HOST PORT duplicate DIALECT ID KEY
                                                   hold(KEY) with id ID (JSON), the same id
                                                   again, "$/cancel" of it; stops twice for a
                                                   line on stdin (see below)

DIALECT is msgpack-rpc, framed-binary or framed-map. Every answer is waited for at most
ANSWER_TIMEOUT (1 s: the issue's "within a second"); one that does not come is recorded
as "timeout", a connection closed by the server as "closed". What the server answered is
printed as it decoded, with each error message replaced by "<message>" (the messages
are listed apart, under "messages"), so that the test can compare whole answers exactly:
ids with their type (a JSON str is a MessagePack str, a JSON number an integer; a bin
would print as {"$bin": hex}), codes, and what comes after.

The last line of stdout is one JSON summary; with --msgpack after the other arguments,
the summary as MessagePack, in hex, instead (for a test with no JSON parser at hand).
`duplicate` prints a JSON line
{"waiting": "entered"} after its first request and {"waiting": "dropped"} after the
cancel, and reads a line from stdin before it goes on, so that the test can see the
handler enter, and its future dropped, in between; `notifications ... hold` prints
{"waiting": "checked"} the same way.
"""
import json
import socket
import struct
import sys
import threading
import time

import msgpack

import rpc_wire
from rpc_wire import frame

ANSWER_TIMEOUT = 1.0
# What a 16 MB value may take to travel and be decoded (the "promptly" bound is for
# malformed frames; this one only keeps a hang from looking like an answer).
HUGE_TIMEOUT = 30.0
MESSAGE = "<message>"


def jsonable(value):
    """A decoded MessagePack value as JSON can show it (bins as {"$bin": hex})."""
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def nested(depth, leaf=1):
    """`leaf` inside `depth` arrays of one element, as bytes (no recursion in msgpack)."""
    return b"\x91" * depth + msgpack.packb(leaf)


def depth_of(value):
    """How many arrays of one element `value` is inside of, and what is inside them."""
    depth = 0
    while isinstance(value, list) and len(value) == 1:
        depth += 1
        value = value[0]
    return depth, value


class Closed(Exception):
    """The server closed the connection."""


class Timeout(Exception):
    """No whole answer within the time allowed."""


class Peer:
    """One connection speaking one dialect, written and read by hand."""

    def __init__(self, host, port, dialect):
        self.sock = rpc_wire.connect(host, port)
        self.dialect = dialect
        self.buf = b""
        self.unpacker = rpc_wire.unpacker()
        self.messages = []

    def address(self):
        """This end's address, as the server's log names the peer."""
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    # ---- writing -------------------------------------------------------------------

    def request(self, msgid, method, params):
        return rpc_wire.request(self.dialect, msgid, method, params)

    def notification(self, method, params):
        return rpc_wire.notification(self.dialect, method, params)

    def send(self, data):
        self.sock.sendall(data)

    # ---- reading -------------------------------------------------------------------

    def _fill(self, deadline):
        """More bytes, by `deadline` (None: with whatever timeout the socket has)."""
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout()
            self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            raise Timeout() from None
        except (ConnectionResetError, BrokenPipeError):
            raise Closed() from None
        if not data:
            raise Closed()
        return data

    def _next(self, deadline):
        """The next message the server sent, decoded."""
        if self.dialect == "msgpack-rpc":
            while True:
                for message in self.unpacker:
                    return message
                self.unpacker.feed(self._fill(deadline))
        while True:
            if len(self.buf) >= 4:
                (length,) = struct.unpack_from(">I", self.buf)
                if len(self.buf) >= 4 + length:
                    frame = self.buf[4 : 4 + length]
                    self.buf = self.buf[4 + length :]
                    if self.dialect == "framed-map":
                        return msgpack.unpackb(frame, raw=False, strict_map_key=False)
                    (msgid,) = struct.unpack_from(">I", frame, 1)
                    body = msgpack.unpackb(frame[5:], raw=False, strict_map_key=False)
                    return {"type": frame[0], "id": msgid, "body": body}
            self.buf += self._fill(deadline)

    def answer(self, timeout=ANSWER_TIMEOUT):
        """The next answer, scrubbed (see the module docs), or "timeout" / "closed"."""
        deadline = time.monotonic() + timeout
        try:
            return self.scrub(self._next(deadline))
        except Timeout:
            return "timeout"
        except Closed:
            return "closed"

    def _keep(self, message):
        self.messages.append(message)
        return MESSAGE

    def scrub(self, message):
        """`message` as JSON, with its error message replaced by "<message>"."""
        message = jsonable(message)
        if self.dialect == "msgpack-rpc":
            if len(message) == 4 and message[0] == 1 and isinstance(message[2], list):
                message[2][1] = self._keep(message[2][1])
            elif len(message) == 3 and message[:2] == [2, "$/error"]:
                message[2][1] = self._keep(message[2][1])
        elif self.dialect == "framed-map":
            if isinstance(message.get("error"), dict):
                message["error"]["message"] = self._keep(message["error"]["message"])
        else:
            body = message["body"]
            if message["type"] == 2 and "error" in body:
                body["error"] = self._keep(body["error"])
            elif message["type"] == 3 and body.get("method") == "$/error":
                body["params"][1] = self._keep(body["params"][1])
        return message

    def closed(self, timeout=ANSWER_TIMEOUT):
        """Whether the server closes the connection (anything it sends first is read
        and thrown away)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except Closed:
            return True
        except Timeout:
            return False

    # ---- what every case ends with -------------------------------------------------

    def add_works(self, msgid=1000):
        """add(1, 2) on this connection: 3 if answered right, else what came."""
        try:
            self.send(self.request(msgid, "add", [1, 2]))
        except (ConnectionResetError, BrokenPipeError):
            return "closed"
        answer = self.answer()
        return 3 if answer in add_answers(msgid) else answer


def add_answers(msgid):
    """The right answer to add(1, 2) with `msgid`, in each dialect."""
    return (
        [1, msgid, None, 3],
        {"type": 2, "id": msgid, "body": {"result": 3}},
        {"result": 3, "error": None, "id": msgid},
    )


def cases_ids(peer):
    """The seed's request verbatim, then add(1, 2) with integer and str ids of every
    size the protocol allows; msgpack-rpc takes the same ids."""
    seed = {"method": "getUser", "params": {"id": 123}, "id": "req-uuid-001"}
    if peer.dialect == "framed-map":
        # Exactly the bytes `msgpack.packb` writes for the seed's dict, key order kept.
        first = frame(msgpack.packb(seed))
    else:
        first = peer.request(seed["id"], seed["method"], seed["params"])
    answers = []
    peer.send(first)
    answers.append({"sent": seed["id"], "answer": peer.answer()})
    for msgid in [2**64 - 1, -5, -(2**63), 0, "x" * 256, "ünïcode-id"]:
        peer.send(peer.request(msgid, "add", [1, 2]))
        answers.append({"sent": msgid, "answer": peer.answer()})
    return {"answers": answers, "messages": peer.messages}


def malformed_cases(dialect):
    """(name, bytes) of whole frames that are not messages, per dialect."""
    packb, framed = msgpack.packb, frame
    if dialect == "framed-map":
        return [
            ("id float", framed(packb({"method": "add", "params": [1, 2], "id": 1.5}))),
            ("id array", framed(packb({"method": "add", "params": [1, 2], "id": [1]}))),
            ("id str of 257 bytes", framed(packb({"method": "add", "params": [1, 2], "id": "x" * 257}))),
            ("neither method nor id", framed(packb({"params": [1, 2]}))),
            ("empty map", framed(packb({}))),
            ("not a map", framed(packb([1, 2, 3]))),
            ("invalid MessagePack", framed(b"\xc1")),
            ("frame ends inside the map", framed(b"\x83\xa6method")),
            ("id but no method", framed(packb({"params": [], "id": "r-1"}))),
            ("method not a str", framed(packb({"method": 5, "params": [], "id": 9}))),
            ("params neither array nor map", framed(packb({"method": "add", "params": 5, "id": 10}))),
        ]
    if dialect == "framed-binary":
        return [
            ("3 bytes", framed(b"\x01\x00\x00")),
            ("0 bytes", framed(b"")),
            ("unknown type", framed(b"\x09" + struct.pack(">I", 1) + packb({"method": "add"}))),
            ("request with invalid MessagePack", framed(b"\x01" + struct.pack(">I", 4) + b"\xc1")),
            ("request with no body", framed(b"\x01" + struct.pack(">I", 6))),
        ]
    return [
        ("[5]", packb([5])),
        ("request id an array", packb([0, [], "m", []])),
        ("a bare integer", packb(7)),
        ("a str", packb("hello")),
        ("a map", packb({"a": 1})),
        ("notification method not a str", packb([2, 5, []])),
        ("request of 3 elements", packb([0, 9, "m"])),
        ("request of 3 elements, str id", packb([0, "s-1", "m"])),
        ("request method not a str", packb([0, 10, 5, []])),
    ]


def cases_malformed(peer):
    """Each bad frame, its answer, and whether the connection still answers add(1, 2);
    all on one connection, which starts with a good call (the server tells the dialect
    by the first bytes, so a connection that starts with junk is closed at once)."""
    results = [{"case": "a good call first", "then": peer.add_works()}]
    for name, data in malformed_cases(peer.dialect):
        peer.send(data)
        answer = peer.answer()
        results.append({"case": name, "answer": answer, "then": peer.add_works()})
    return {"cases": results, "messages": peer.messages, "peer": peer.address()}


def echo_request(peer, msgid, depth):
    """echo with params nested `depth` deep in all (`[1]` is depth 1)."""
    params = nested(depth)
    if peer.dialect == "msgpack-rpc":
        return b"\x94" + msgpack.packb(0) + msgpack.packb(msgid) + msgpack.packb("echo") + params
    # The seed's key order: method, params, id.
    body = (
        b"\x83"
        + msgpack.packb("method")
        + msgpack.packb("echo")
        + msgpack.packb("params")
        + params
        + msgpack.packb("id")
        + msgpack.packb(msgid)
    )
    return frame(body)


def echo_depth(answer):
    """How deep echo's result nests, if `answer` is one; else the answer itself."""
    if isinstance(answer, list) and len(answer) == 4 and answer[2] is None:
        msgid, result = answer[1], answer[3]
    elif isinstance(answer, dict) and answer.get("error") is None and "result" in answer:
        msgid, result = answer["id"], answer["result"]
    else:
        return answer
    depth, leaf = depth_of(result)
    return {"id": msgid, "result_depth": depth, "leaf": leaf}


def cases_depth(peer, host, port, limit):
    """`limit` deep: echoed (the params array is the outermost of the levels, so the
    result nests one less). One deeper: INVALID_ARGUMENT for its id, the connection goes
    on. Far past twice the limit (msgpack-rpc, where no length says where the message
    ends): the id is answered, then the connection closes. Ids are the depths."""
    out = {}
    for name, depth in [("at the limit", limit), ("one over", limit + 1)]:
        peer.send(echo_request(peer, depth, depth))
        out[name] = {"answer": echo_depth(peer.answer()), "then": peer.add_works()}
    if peer.dialect == "msgpack-rpc":
        far = 4 * limit + 8
        deep = Peer(host, port, peer.dialect)
        deep.send(echo_request(deep, far, far))
        out["far over"] = {"answer": deep.answer(), "closed": deep.closed()}
        peer.messages += deep.messages
    out["messages"] = peer.messages
    return out


def cases_notifications(peer, method, count, hold):
    """`count` notifications of `method`, then a call, in one write."""
    data = b"".join(peer.notification(method, [f"n{i}"]) for i in range(count))
    peer.send(data + peer.request(1, "add", [1, 2]))
    answer = peer.answer()
    if hold:
        wait_for_go("checked")
    return {"answer": answer, "messages": peer.messages}


def cases_huge(peer):
    """add with 16 MB strs and bins where it wants numbers: INVALID_ARGUMENT with a
    short message; and a 16 MB method name: UNIMPLEMENTED with a short one."""
    size = 16 * 1000 * 1000
    text, blob = "x" * size, b"x" * size
    results = []
    for msgid, (name, method, params) in enumerate(
        [
            ("str a", "add", [text, 2]),
            ("bin a", "add", [blob, 2]),
            ("str b", "add", [1, text]),
            ("named str a", "add", {"a": text, "b": 2}),
            ("str key", "add", {text: 1}),
            ("str method", text, [1, 2]),
        ],
        start=1,
    ):
        peer.send(peer.request(msgid, method, params))
        answer = peer.answer(HUGE_TIMEOUT)
        message_bytes = len(peer.messages[-1].encode()) if peer.messages else None
        peer.messages.clear()
        results.append({"case": name, "answer": answer, "message_bytes": message_bytes})
    return {"cases": results, "then": peer.add_works()}


def read_until_add_77(peer, outcome):
    """Reads and drops the junk's answers until add(1, 2) with id 77 is answered, so
    that the server never stops reading junk because its answers pile up. Runs on a
    thread of its own while the junk is written; the socket's timeout is fixed."""
    try:
        while peer._next(None) not in add_answers(77):
            pass
        outcome.append(3)
    except Timeout:
        outcome.append("timeout")
    except Closed:
        outcome.append("closed")


def flood_junk(dialect, megabytes):
    """About `megabytes` MB of junk for one connection: 1 MB pieces (peer text in method
    names and ids where the dialect has them), then a run of small malformed frames."""
    mb = 1000 * 1000
    name = "m" * mb
    packb, framed = msgpack.packb, frame
    if dialect == "msgpack-rpc":
        kinds = [
            packb([2, name, []]),  # a notification nobody handles, 1 MB of method name
            packb([0, 1, name]),  # a request of the wrong length, id readable
            packb([5, name]),  # no readable id: "$/error"
            packb([0, 2, name, 5]),  # params that are neither array nor map
        ]
        small = packb([5])
    elif dialect == "framed-map":
        kinds = [
            framed(packb({"method": name, "params": [], "id": 1.5})),
            framed(packb({"params": [], "id": "i" * mb})),  # an over-long id
            framed(packb({"method": 5, "params": [], "id": 3, "x": name})),
            framed(packb({"method": name, "params": 5})),  # a notification, bad params
        ]
        small = framed(packb({}))
    else:
        kinds = [
            framed(b"\x09" + struct.pack(">I", 1) + packb({"method": name})),
            framed(b"\x01" + struct.pack(">I", 2) + b"\xc1" + b"x" * mb),
            framed(b"\x03" + struct.pack(">I", 0) + packb({"method": name, "params": 5})),
        ]
        small = framed(b"\x01\x00\x00")
    pieces = [kinds[i % len(kinds)] for i in range(megabytes)]
    pieces.append(small * 20000)
    return pieces


def cases_flood(host, port, megabytes):
    """Junk split over three connections (one a dialect), written while another thread
    reads the answers; then add(1, 2) on each. Prints the connections' addresses, for
    the test to find in the server's log."""
    dialects = ["msgpack-rpc", "framed-map", "framed-binary"]
    share = [megabytes // 2, megabytes // 4, megabytes - megabytes // 2 - megabytes // 4]
    peers, sent, then = [], 0, {}
    for dialect, mb in zip(dialects, share):
        peer = Peer(host, port, dialect)
        # A good call first: the server tells the dialect by the first bytes.
        first = peer.add_works()
        if first != 3:
            then[dialect] = {"first call": first}
            continue
        peer.sock.settimeout(HUGE_TIMEOUT)
        outcome = []
        reader = threading.Thread(target=read_until_add_77, args=(peer, outcome))
        reader.start()
        for piece in flood_junk(dialect, mb):
            peer.send(piece)
            sent += len(piece)
        peer.send(peer.request(77, "add", [1, 2]))
        reader.join()
        then[dialect] = outcome[0] if outcome[0] != 3 else peer.add_works()
        peers.append(peer)
    return {"bytes_sent": sent, "peers": [p.address() for p in peers], "then": then}


def wait_for_go(what):
    print(json.dumps({"waiting": what}), flush=True)
    if not sys.stdin.readline():
        raise SystemExit("stdin closed before the test said go")


def cases_duplicate(peer, msgid, key):
    """hold(key) with `msgid`; the same id again while it runs; add on another id;
    "$/cancel" of `msgid`; then `msgid` used again, for add(2, 3)."""
    other = 4242
    peer.send(peer.request(msgid, "hold", [key]))
    wait_for_go("entered")
    peer.send(peer.request(msgid, "hold", [key + 1]))
    duplicate = peer.answer()
    then = peer.add_works(other)
    peer.send(peer.notification("$/cancel", [msgid]))
    wait_for_go("dropped")
    peer.send(peer.request(msgid, "add", [2, 3]))
    reused = peer.answer()
    return {"duplicate": duplicate, "then": then, "reused": reused, "messages": peer.messages}


def main():
    # Answers nest as deep as --max-depth allows (512), and jsonable recurses.
    sys.setrecursionlimit(10000)
    host, port, mode, rest = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    as_msgpack = "--msgpack" in rest
    rest = [arg for arg in rest if arg != "--msgpack"]
    if mode == "ids":
        summary = cases_ids(Peer(host, port, rest[0]))
    elif mode == "malformed":
        summary = cases_malformed(Peer(host, port, rest[0]))
    elif mode == "depth":
        summary = cases_depth(Peer(host, port, rest[0]), host, port, int(rest[1]))
    elif mode == "notifications":
        peer = Peer(host, port, "msgpack-rpc")
        summary = cases_notifications(peer, rest[0], int(rest[1]), rest[2:] == ["hold"])
    elif mode == "huge":
        summary = cases_huge(Peer(host, port, "msgpack-rpc"))
    elif mode == "flood":
        summary = cases_flood(host, port, int(rest[0]))
    elif mode == "duplicate":
        summary = cases_duplicate(Peer(host, port, rest[0]), json.loads(rest[1]), int(rest[2]))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(msgpack.packb(summary).hex() if as_msgpack else json.dumps(summary))


main()
