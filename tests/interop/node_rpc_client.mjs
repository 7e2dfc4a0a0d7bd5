// Node peers as clients of `msgwire serve`.
//
//   node node_rpc_client.mjs HOST PORT msgpack5rpc   add(1, 2) via msgpack5rpc (msgpack-rpc)
//   node node_rpc_client.mjs HOST PORT framed-map    add/greet via @msgpack/msgpack over framed-map
//
// Prints one JSON line with the results.
import net from "node:net";
import { createRequire } from "node:module";
import { decode, encode } from "@msgpack/msgpack";

const [host, portText, mode] = process.argv.slice(2);
const port = Number(portText);

function connect() {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host, () => resolve(socket));
    socket.on("error", reject);
  });
}

async function viaMsgpack5rpc() {
  const require = createRequire(import.meta.url);
  const Session = require("msgpack5rpc");
  const socket = await connect();
  const session = new Session();
  session.attach(socket, socket);
  const call = (method, args) =>
    new Promise((resolve, reject) =>
      session.request(method, args, (err, result) => (err ? reject(new Error(JSON.stringify(err))) : resolve(result))),
    );
  const add = await call("add", [1, 2]);
  const greet = await call("greet", ["msgpack5rpc"]);
  let error = null;
  try {
    await call("noSuchMethod", []);
  } catch (e) {
    error = e.message;
  }
  session.detach();
  socket.destroy();
  return { add, greet, error };
}

async function viaFramedMap() {
  const socket = await connect();
  let buffer = Buffer.alloc(0);
  const pending = new Map();
  socket.on("data", (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 4) {
      const length = buffer.readUInt32BE(0);
      if (buffer.length < 4 + length) break;
      const body = decode(buffer.subarray(4, 4 + length));
      buffer = buffer.subarray(4 + length);
      const done = pending.get(body.id);
      pending.delete(body.id);
      done(body);
    }
  });
  let nextId = 1;
  const call = (method, params) =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      const body = encode({ method, params, id });
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length);
      socket.write(Buffer.concat([head, Buffer.from(body)]));
    });
  const [add, greet, named, missing] = await Promise.all([
    call("add", [20, 22]),
    call("greet", ["node"]),
    call("multiply", { a: 6, b: 7 }),
    call("getOrder", [4242]),
  ]);
  socket.destroy();
  return { add: add.result, greet: greet.result, named: named.result, missing: missing.error };
}

const result = mode === "msgpack5rpc" ? await viaMsgpack5rpc() : await viaFramedMap();
process.stdout.write(JSON.stringify(result) + "\n");
