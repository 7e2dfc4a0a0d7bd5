"""Makes calls over three transports, then scrapes /metrics and parses it with the
Prometheus project's own Python client parser (prometheus_client).

    py_metrics.py RPC_HOST:PORT HTTP_HOST:PORT

Calls made: over TCP (msgpack-rpc, stock msgpack + socket) add x3 and getUser(99)
(NOT_FOUND); over WebSocket (websockets, one msgpack-rpc message per binary message)
add x2 and multiply x1; over HTTP (urllib) POST /rpc/add x4 and GET /api/users/1.
Prints one JSON object: every sample of the families msgwire exports, keyed so the
Rust test can compare counts.
"""

import json
import socket
import sys
import urllib.request

import msgpack
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect


def tcp_calls(host, port):
    sock = socket.create_connection((host, port))
    unpacker = msgpack.Unpacker(raw=False)
    answers = {}
    calls = [(1, "add", [1, 2]), (2, "add", [3, 4]), (3, "add", [5, 6]), (4, "getUser", [99])]
    for msgid, method, params in calls:
        sock.sendall(msgpack.packb([0, msgid, method, params]))
    while len(answers) < len(calls):
        data = sock.recv(65536)
        if not data:
            raise SystemExit("the TCP connection closed early")
        unpacker.feed(data)
        for message in unpacker:
            answers[message[1]] = message
    sock.close()
    assert answers[1][3] == 3 and answers[3][3] == 11, answers
    assert answers[4][2][0] == 5, answers[4]  # NOT_FOUND
    return len(calls)


def ws_calls(http):
    with connect(f"ws://{http}/ws", max_size=None) as ws:
        for msgid, method, params, want in [(1, "add", [2, 2], 4), (2, "add", [1, 1], 2),
                                            (3, "multiply", [3, 4], 12)]:
            ws.send(msgpack.packb([0, msgid, method, params]))
            answer = msgpack.unpackb(ws.recv())
            assert answer == [1, msgid, None, want], answer
    return 3


def http_calls(http):
    for a in range(4):
        request = urllib.request.Request(
            f"http://{http}/rpc/add", data=json.dumps([a, 1]).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request) as answer:
            assert json.load(answer) == a + 1
    with urllib.request.urlopen(f"http://{http}/api/users/1") as answer:
        assert json.load(answer)["name"] == "Alice"
    return 5


def main():
    rpc_host, rpc_port = sys.argv[1].rsplit(":", 1)
    http = sys.argv[2]
    made = {"tcp": tcp_calls(rpc_host, int(rpc_port)), "websocket": ws_calls(http),
            "http": http_calls(http)}
    with urllib.request.urlopen(f"http://{http}/metrics") as answer:
        content_type = answer.headers["Content-Type"]
        text = answer.read().decode()
    samples = {}
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    print(json.dumps({"made": made, "content_type": content_type, "families": families,
                      "samples": samples}))


if __name__ == "__main__":
    main()
