// Node `ws` + `@msgpack/msgpack` as a msgpack-rpc peer of msgwire's `GET /ws`: one
// msgpack-rpc message per binary WebSocket message.
//
//     node node_ws_rpc.mjs ws://HOST:PORT/ws
//
// The same script as py_ws_rpc.py: `add`, `echo` (small and large bin), a server
// stream (`publishEvent`, then `subscribeEvents` replaying it as a `$/item`), and a
// chat between two sockets in one room. Every message received must be binary and
// hold exactly one MessagePack value (`decode` throws on extra bytes). Prints one JSON
// line; exits non-zero on anything unexpected.
import { decode, encode } from "@msgpack/msgpack";
import WebSocket from "ws";

function fail(why) {
  console.error(why);
  process.exit(1);
}

class Peer {
  static open(url) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, ["msgpack-rpc"], { perMessageDeflate: false });
      ws.once("open", () => resolve(new Peer(ws)));
      ws.once("error", reject);
    });
  }

  constructor(ws) {
    if (ws.protocol !== "msgpack-rpc") fail(`subprotocol not accepted: ${ws.protocol}`);
    this.ws = ws;
    this.nextId = 0;
    this.queue = [];
    this.waiting = null;
    this.oneValueEach = true;
    ws.on("message", (data, isBinary) => {
      if (!isBinary) fail(`a text message from the server: ${data}`);
      let message;
      try {
        message = decode(data);
      } catch (e) {
        this.oneValueEach = false;
        fail(`not exactly one MessagePack value: ${e}`);
      }
      if (message[0] === 0 && message[2] === "$/ping") {
        this.send([1, message[1], null, null]);
        return;
      }
      this.queue.push(message);
      if (this.waiting) {
        const wake = this.waiting;
        this.waiting = null;
        wake();
      }
    });
  }

  send(message) {
    this.ws.send(encode(message));
  }

  async recv() {
    while (this.queue.length === 0) {
      await new Promise((resolve, reject) => {
        this.waiting = resolve;
        setTimeout(() => reject(new Error("no message within 20 s")), 20000).unref();
      });
    }
    return this.queue.shift();
  }

  request(method, params) {
    this.nextId += 1;
    this.send([0, this.nextId, method, params]);
    return this.nextId;
  }

  async call(method, params) {
    const id = this.request(method, params);
    for (;;) {
      const message = await this.recv();
      if (message[0] === 1 && message[1] === id) {
        if (message[2] !== null) fail(`${method} failed: ${JSON.stringify(message[2])}`);
        return message[3];
      }
    }
  }

  async item(id) {
    for (;;) {
      const message = await this.recv();
      if (message[0] === 2 && message[1] === "$/item" && message[2][0] === id) {
        return message[2][1];
      }
      if (message[0] === 1 && message[1] === id) fail(`the stream ended early: ${message}`);
    }
  }

  close() {
    return new Promise((resolve) => {
      this.ws.once("close", (code) => resolve(code));
      this.ws.close(1000);
    });
  }
}

function sameBytes(a, b) {
  return a instanceof Uint8Array && a.length === b.length && a.every((x, i) => x === b[i]);
}

const url = process.argv[2];
const summary = {};
const peer = await Peer.open(url);
summary.add = await peer.call("add", [1, 2]);
const small = new Uint8Array([0, 1, 98, 105, 110, 255]);
summary.echo_small = sameBytes(await peer.call("echo", [small]), small);
const large = new Uint8Array(256 * 1024).map((_, i) => i % 256);
summary.echo_large = sameBytes(await peer.call("echo", [large]), large);

const start = Date.now() - 60000;
await peer.call("publishEvent", [4243, "login", { ip: "10.0.0.2" }]);
const sub = peer.request("subscribeEvents", [4243, null, start]);
let event = await peer.item(sub);
while (event.type === "heartbeat") event = await peer.item(sub);
summary.event = event.type;
peer.send([2, "$/cancel", [sub]]);

const alice = await Peer.open(url);
const bob = await Peer.open(url);
const a = alice.request("chat", []);
alice.send([2, "$/send", [a, { user_id: "alice", room_id: "room-1", type: "join", content: "" }]]);
summary.chat_welcome = (await alice.item(a)).content;
const b = bob.request("chat", []);
bob.send([2, "$/send", [b, { user_id: "bob", room_id: "room-1", type: "join", content: "" }]]);
await bob.item(b);
summary.chat_joined = (await alice.item(a)).user_id;
bob.send([2, "$/send", [b, { user_id: "bob", room_id: "room-1", type: "text", content: "hello from bob" }]]);
summary.chat_text = (await alice.item(a)).content;
alice.send([2, "$/send_end", [a]]);
bob.send([2, "$/send_end", [b]]);
summary.every_message_one_value = [peer, alice, bob].every((p) => p.oneValueEach);
for (const p of [peer, alice, bob]) {
  const code = await p.close();
  if (code !== 1000) fail(`close not echoed: ${code}`);
}
console.log(JSON.stringify(summary));
