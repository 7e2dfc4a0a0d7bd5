"""Python `websockets` (its sans-IO Protocol) as a WebSocket peer for msgwire's tests.

    py_websocket.py decode SIDE  stdin: frames msgwire wrote to a SIDE peer (server or
                                 client). Prints one JSON line per frame received:
                                 {"opcode": name, "fin": bool, "data": base64}
    py_websocket.py encode SIDE  stdin: JSON lines {"opcode": name, "fin": bool,
                                 "data": base64} (close: {"opcode": "close", "code": n,
                                 "reason": s}); writes the frames a SIDE peer sends.

Both directions go through websockets.protocol.Protocol, so masking, fragmentation and
UTF-8 rules are websockets' own.
"""
import base64
import json
import sys

from websockets.frames import Opcode
from websockets.protocol import Protocol, Side, State

NAMES = {
    Opcode.CONT: "continuation",
    Opcode.TEXT: "text",
    Opcode.BINARY: "binary",
    Opcode.CLOSE: "close",
    Opcode.PING: "ping",
    Opcode.PONG: "pong",
}


def side(name: str) -> Side:
    return {"server": Side.SERVER, "client": Side.CLIENT}[name]


def decode(peer: Side) -> None:
    proto = Protocol(peer, state=State.OPEN, max_size=None)
    data = sys.stdin.buffer.read()
    for i in range(0, len(data), 5):
        proto.receive_data(data[i : i + 5])
    if proto.parser_exc is not None:
        raise SystemExit(f"websockets rejected the stream: {proto.parser_exc!r}")
    for frame in proto.events_received():
        line = {
            "opcode": NAMES[frame.opcode],
            "fin": frame.fin,
            "data": base64.b64encode(frame.data).decode(),
        }
        print(json.dumps(line))


def encode(peer: Side) -> None:
    proto = Protocol(peer, state=State.OPEN, max_size=None)
    for line in sys.stdin:
        if not line.strip():
            continue
        frame = json.loads(line)
        data = base64.b64decode(frame.get("data", ""))
        op, fin = frame["opcode"], frame.get("fin", True)
        if op == "binary":
            proto.send_binary(data, fin=fin)
        elif op == "text":
            proto.send_text(data, fin=fin)
        elif op == "continuation":
            proto.send_continuation(data, fin=fin)
        elif op == "ping":
            proto.send_ping(data)
        elif op == "pong":
            proto.send_pong(data)
        elif op == "close":
            proto.send_close(frame["code"], frame.get("reason", ""))
        else:
            raise SystemExit(f"unknown opcode {op}")
    sys.stdout.buffer.write(b"".join(proto.data_to_send()))


def main() -> None:
    mode, peer = sys.argv[1], side(sys.argv[2])
    {"decode": decode, "encode": encode}[mode](peer)


main()
