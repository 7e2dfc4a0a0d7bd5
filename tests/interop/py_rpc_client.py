"""A Python `msgpack` client for msgwire's RPC interop tests, in all three dialects.

    py_rpc_client.py HOST PORT DIALECT batch N    N random add/multiply requests written in
                                                  ONE write; every response matched by id
    py_rpc_client.py HOST PORT DIALECT trickle    one request written one byte at a time
    py_rpc_client.py HOST PORT DIALECT errors     unknown method, bad params, not found

DIALECT is msgpack-rpc, framed-binary or framed-map. Prints one JSON summary line and
exits 0 only if every answer was right.
"""
import json
import random
import struct
import sys

import msgpack

import rpc_wire


class Conn:
    def __init__(self, host, port, dialect):
        self.sock = rpc_wire.connect(host, port)
        self.dialect = dialect
        self.buf = b""
        self.unpacker = rpc_wire.unpacker()

    def encode(self, msgid, method, params):
        return rpc_wire.request(self.dialect, msgid, method, params)

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise SystemExit("server closed the connection")
        return data

    def responses(self):
        """Yields (id, error, result); error is None or (code, message)."""
        while True:
            if self.dialect == "msgpack-rpc":
                self.unpacker.feed(self._recv())
                for kind, msgid, error, result in self.unpacker:
                    assert kind == 1, kind
                    yield msgid, (tuple(error) if error else None), result
                continue
            self.buf += self._recv()
            while len(self.buf) >= 4:
                (length,) = struct.unpack_from(">I", self.buf)
                if len(self.buf) < 4 + length:
                    break
                frame, self.buf = self.buf[4 : 4 + length], self.buf[4 + length :]
                if self.dialect == "framed-binary":
                    assert frame[0] == 2, frame[0]
                    (msgid,) = struct.unpack_from(">I", frame, 1)
                    body = msgpack.unpackb(frame[5:], raw=False)
                    error = (body.get("code", 2), body["error"]) if "error" in body else None
                    yield msgid, error, body.get("result")
                else:
                    body = msgpack.unpackb(frame, raw=False)
                    err = body.get("error")
                    error = (err["code"], err["message"]) if err else None
                    yield body["id"], error, body.get("result")


def batch(conn, n):
    rng = random.Random(7)
    want = {}
    out = []
    for msgid in range(1, n + 1):
        a, b = rng.randint(-(10**6), 10**6), rng.randint(-(10**6), 10**6)
        if rng.random() < 0.5:
            method, expect = "add", a + b
        else:
            method, expect = "multiply", a * b
        params = [a, b] if rng.random() < 0.5 else {"a": a, "b": b}
        want[msgid] = expect
        out.append(conn.encode(msgid, method, params))
    conn.sock.sendall(b"".join(out))
    seen = 0
    for msgid, error, result in conn.responses():
        assert error is None, error
        assert want.pop(msgid) == result, (msgid, result)
        seen += 1
        if not want:
            break
    return {"answered": seen}


def trickle(conn):
    request = conn.encode(41, "greet", ["Trickle"])
    for byte in request:
        conn.sock.sendall(bytes([byte]))
    for msgid, error, result in conn.responses():
        assert (msgid, error) == (41, None), (msgid, error)
        assert "Trickle" in result, result
        return {"bytes_sent_one_by_one": len(request), "result": result}


def errors(conn):
    cases = {
        1: ("noSuchMethod", [], 12),
        2: ("add", ["one", 2], 3),
        3: ("getUser", [99], 5),
        4: ("add", [1], 3),
    }
    conn.sock.sendall(b"".join(conn.encode(i, m, p) for i, (m, p, _) in cases.items()))
    got = {}
    for msgid, error, _ in conn.responses():
        assert error is not None, msgid
        got[msgid] = error
        if len(got) == len(cases):
            break
    for msgid, (method, _, code) in cases.items():
        assert got[msgid][0] == code, (method, got[msgid])
    assert "noSuchMethod" in got[1][1], got[1]
    return {"errors": {cases[k][0] + str(k): list(v) for k, v in got.items()}}


def main():
    host, port, dialect, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    conn = Conn(host, port, dialect)
    if mode == "batch":
        summary = batch(conn, int(sys.argv[5]))
    elif mode == "trickle":
        summary = trickle(conn)
    elif mode == "errors":
        summary = errors(conn)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(summary))


main()
