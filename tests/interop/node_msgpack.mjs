// Node `@msgpack/msgpack` as a peer for msgwire's interop tests.
//
// Reads a stream msgwire wrote on stdin, decodes it with @msgpack/msgpack, re-encodes
// every value with `encode` and writes the new stream to stdout; prints the number of
// values to stderr.
//
//   node node_msgpack.mjs length   [u32 BE length][msgpack value] ...
//   node node_msgpack.mjs stream   msgpack values back to back (decodeMulti)
import { decode, decodeMulti, encode } from "@msgpack/msgpack";

const mode = process.argv[2];
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const data = Buffer.concat(chunks);
const options = { useBigInt64: true };
const values = [];
const out = [];
if (mode === "length") {
  let pos = 0;
  while (pos < data.length) {
    const length = data.readUInt32BE(pos);
    pos += 4;
    if (pos + length > data.length) throw new Error(`truncated frame at ${pos - 4}`);
    values.push(decode(data.subarray(pos, pos + length), options));
    pos += length;
  }
  for (const v of values) {
    const payload = encode(v, options);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(payload.length);
    out.push(head, payload);
  }
} else if (mode === "stream") {
  for (const v of decodeMulti(data, options)) values.push(v);
  for (const v of values) out.push(encode(v, options));
} else {
  throw new Error(`unknown mode ${mode}`);
}
process.stdout.write(Buffer.concat(out.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))));
process.stderr.write(`${values.length}\n`);
