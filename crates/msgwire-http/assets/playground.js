// The msgwire playground: calls the reference services from a browser, over the
// server's `/ws` endpoint, which carries msgpack-rpc with one message per binary
// WebSocket message.
//
// The file has two halves. The first, `Connection` and `Stream`, is all the protocol
// there is (docs/PROTOCOL.md section 3, msgpack-rpc, and section 10, streams: `$/item`,
// `$/credit`, `$/send`, `$/send_credit`, `$/cancel`, `$/ping`). The second wires it to
// the page: the call form, the server-stream panel and the chat room. MessagePack
// itself is the vendored `@msgpack/msgpack` bundle, loaded before this script, which
// defines the global `MessagePack`.
"use strict";

(() => {
  const { encode, decode } = window.MessagePack;

  // ---------------------------------------------------------------------------------
  // Protocol
  // ---------------------------------------------------------------------------------

  // Message types: [0, id, method, params], [1, id, error, result], [2, method, params].
  const REQUEST = 0;
  const RESPONSE = 1;
  const NOTIFICATION = 2;

  // Every stream direction starts with this much credit (section 10.4) ...
  const WINDOW_ITEMS = 64;
  const WINDOW_BYTES = 1024 * 1024;
  // ... and a receiver gives back what it has taken once that reaches half of it.
  const GRANT_ITEMS = WINDOW_ITEMS / 2;
  const GRANT_BYTES = WINDOW_BYTES / 2;

  // Items a stream holds for the server while it has no credit for them.
  const MAX_QUEUED_SENDS = 256;

  const UNIMPLEMENTED = 12;

  // An error answer: an integer `code` (section 2.1; null when the connection, not
  // the server, failed the call) and a `message`.
  class RpcError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }

    // The `error` of a response, in any shape a receiver must accept (section 3):
    // [code, message], a bare str, or {code, message}.
    static from(error) {
      if (Array.isArray(error)) return new RpcError(error[0], String(error[1]));
      if (typeof error === "string") return new RpcError(2, error);
      if (error && typeof error === "object") {
        return new RpcError(error.code ?? 2, String(error.message ?? ""));
      }
      return new RpcError(2, String(error));
    }

    toJSON() {
      return { code: this.code, message: this.message };
    }
  }

  // One msgpack-rpc connection over a WebSocket. Calls and streams are multiplexed on
  // it, matched to their answers by id.
  class Connection {
    // `onState(state, detail)` hears "open" and "closed".
    constructor(url, onState) {
      this.nextId = 1; // our own call ids: u32s from 1
      this.calls = new Map(); // id -> {resolve, reject} of a unary call
      this.streams = new Map(); // id -> Stream
      this.onState = onState;
      this.socket = new WebSocket(url);
      this.socket.binaryType = "arraybuffer";
      this.socket.onopen = () => onState("open");
      this.socket.onclose = (event) => this.closed(event);
      this.socket.onmessage = (event) => this.received(new Uint8Array(event.data));
    }

    get isOpen() {
      return this.socket.readyState === WebSocket.OPEN;
    }

    close() {
      this.socket.close(1000);
    }

    // Calls `method` with `params` (an array or an object); resolves with the result,
    // rejects with an RpcError.
    call(method, params) {
      const id = this.takeId();
      return new Promise((resolve, reject) => {
        this.write([REQUEST, id, method, params]); // throws when not connected
        this.calls.set(id, { resolve, reject });
      });
    }

    // Opens a stream (a server stream or a bidirectional one): the request is sent at
    // once, and `handlers` hear what comes back (see Stream). Throws when not
    // connected.
    open(method, params, handlers) {
      const stream = new Stream(this, this.takeId(), handlers);
      this.write([REQUEST, stream.id, method, params]);
      this.streams.set(stream.id, stream);
      return stream;
    }

    takeId() {
      const id = this.nextId;
      this.nextId = id >= 0xffffffff ? 1 : id + 1;
      return id;
    }

    write(message) {
      if (!this.isOpen) throw new RpcError(null, "not connected");
      this.socket.send(encode(message));
    }

    notify(method, params) {
      this.write([NOTIFICATION, method, params]);
    }

    received(bytes) {
      let message;
      try {
        message = decode(bytes);
      } catch (e) {
        console.warn("msgwire: a WebSocket message that is not MessagePack", e);
        return;
      }
      if (!Array.isArray(message)) return;
      switch (message[0]) {
        case RESPONSE:
          this.answered(message[1], message[2], message[3]);
          break;
        case NOTIFICATION:
          this.notified(message[1], message[2], bytes);
          break;
        case REQUEST:
          this.requested(message[1], message[2]);
          break;
      }
    }

    answered(id, error, result) {
      const call = this.calls.get(id);
      if (call) {
        this.calls.delete(id);
        if (error == null) call.resolve(result);
        else call.reject(RpcError.from(error));
        return;
      }
      const stream = this.streams.get(id);
      if (stream) {
        this.streams.delete(id);
        stream.ended(error == null ? null : RpcError.from(error), result);
      }
      // Anything else answers a call we gave up on: dropped.
    }

    notified(method, params, bytes) {
      if (method === "$/error") {
        // An error that belongs to no call (section 2.2).
        console.warn("msgwire: the server reports", params);
        return;
      }
      if (!Array.isArray(params)) return;
      const stream = this.streams.get(params[0]);
      if (!stream) return; // late, or for a stream we cancelled: dropped (section 10.3)
      switch (method) {
        case "$/item":
          stream.item(params[1], itemSize(bytes, params[1]));
          break;
        case "$/item_error":
          stream.itemError(RpcError.from([params[1], params[2]]));
          break;
        case "$/send_credit":
          stream.credited(params[1], params[2]);
          break;
      }
    }

    // The server's requests: `$/ping` is answered nil (section 10.6); we serve no
    // other method.
    requested(id, method) {
      if (method === "$/ping") {
        this.write([RESPONSE, id, null, null]);
      } else {
        this.write([RESPONSE, id, [UNIMPLEMENTED, `the playground has no method ${method}`], null]);
      }
    }

    closed(event) {
      const error = new RpcError(null, "the connection closed");
      for (const call of this.calls.values()) call.reject(error);
      for (const stream of this.streams.values()) stream.ended(error, null);
      this.calls.clear();
      this.streams.clear();
      this.onState("closed", event.reason || `code ${event.code}`);
    }
  }

  // One open stream, seen from the caller. Output items arrive through handlers:
  // `onItem(value)`, `onItemError(rpcError)`, `onEnd(rpcError | null, result)`. Input
  // items go out with `send(value)`, within the credit the server grants.
  class Stream {
    constructor(connection, id, handlers) {
      this.connection = connection;
      this.id = id;
      this.handlers = handlers;
      this.open = true;
      // Output: what we have taken since our last grant.
      this.takenItems = 0;
      this.takenBytes = 0;
      // Input: the credit we have, and what waits for more.
      this.sendItems = WINDOW_ITEMS;
      this.sendBytes = WINDOW_BYTES;
      this.queued = [];
    }

    // An item of the output. The page shows it at once, so it is taken at once, and
    // granted back every half window.
    item(value, size) {
      this.handlers.onItem?.(value);
      this.took(size);
    }

    // A per-item error costs the length of its message in UTF-8 bytes.
    itemError(error) {
      this.handlers.onItemError?.(error);
      this.took(new TextEncoder().encode(error.message).length);
    }

    took(size) {
      this.takenItems += 1;
      this.takenBytes += size;
      if (this.open && (this.takenItems >= GRANT_ITEMS || this.takenBytes >= GRANT_BYTES)) {
        this.connection.notify("$/credit", [this.id, this.takenItems, this.takenBytes]);
        this.takenItems = 0;
        this.takenBytes = 0;
      }
    }

    // Sends `value` as an item of the input, or queues it until the server grants
    // credit for it. Throws when the stream is over or too much is queued.
    send(value) {
      if (!this.open) throw new RpcError(null, "the stream is over");
      if (this.queued.length >= MAX_QUEUED_SENDS) {
        throw new RpcError(null, "the server is not taking items: too many are waiting");
      }
      this.queued.push({ value, size: encode(value).length });
      this.flush();
    }

    // Sends queued items while there is credit: at least one item and more than zero
    // bytes; an item may take the byte credit below zero (section 10.4).
    flush() {
      while (this.open && this.queued.length > 0 && this.sendItems >= 1 && this.sendBytes > 0) {
        const { value, size } = this.queued.shift();
        this.sendItems -= 1;
        this.sendBytes -= size;
        this.connection.notify("$/send", [this.id, value]);
      }
    }

    credited(items, bytes) {
      this.sendItems += Number(items);
      this.sendBytes += Number(bytes);
      this.flush();
    }

    // Gives up on the stream: the server stops and sends no answer (section 10.3).
    cancel() {
      if (!this.open) return;
      this.open = false;
      this.connection.streams.delete(this.id);
      if (this.connection.isOpen) this.connection.notify("$/cancel", [this.id]);
    }

    ended(error, result) {
      this.open = false;
      this.queued = [];
      this.handlers.onEnd?.(error, result);
    }
  }

  // The size of a `$/item`'s value (section 10.4): the bytes of its encoding as it
  // stands in the message [2, "$/item", [id, value]]. The value is the message's last
  // element, so it runs from the end of the id to the end of the message. (Should the
  // envelope be written in a way not foreseen here, the value's own encoding by this
  // page is near enough: a grant need not be exact, only never too small for long.)
  function itemSize(bytes, value) {
    try {
      let pos = intoArray(bytes, 0); // the message
      pos = skipScalar(bytes, pos); // 2
      pos = skipScalar(bytes, pos); // "$/item"
      pos = intoArray(bytes, pos); // the params
      pos = skipScalar(bytes, pos); // the id
      return bytes.length - pos;
    } catch {
      return encode(value).length;
    }
  }

  // The position after an array's header (fixarray, array 16, array 32).
  function intoArray(bytes, pos) {
    const marker = bytes[pos];
    if (marker >= 0x90 && marker <= 0x9f) return pos + 1;
    if (marker === 0xdc) return pos + 3;
    if (marker === 0xdd) return pos + 5;
    throw new Error(`an array was expected at byte ${pos}`);
  }

  // The position after an integer, a str or a bin.
  function skipScalar(bytes, pos) {
    const marker = bytes[pos];
    if (marker <= 0x7f || marker >= 0xe0) return pos + 1; // fixint
    if (marker >= 0xa0 && marker <= 0xbf) return pos + 1 + (marker & 0x1f); // fixstr
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    switch (marker) {
      case 0xcc: case 0xd0: return pos + 2; // u8, i8
      case 0xcd: case 0xd1: return pos + 3; // u16, i16
      case 0xce: case 0xd2: return pos + 5; // u32, i32
      case 0xcf: case 0xd3: return pos + 9; // u64, i64
      case 0xd9: case 0xc4: return pos + 2 + bytes[pos + 1]; // str 8, bin 8
      case 0xda: case 0xc5: return pos + 3 + view.getUint16(pos + 1); // str 16, bin 16
      case 0xdb: case 0xc6: return pos + 5 + view.getUint32(pos + 1); // str 32, bin 32
    }
    throw new Error(`an integer or a str was expected at byte ${pos}`);
  }

  // ---------------------------------------------------------------------------------
  // JSON for people: MessagePack values that JSON lacks are written as the HTTP
  // gateway writes them ({"$bin": base64}, {"$ext": ...}, {"$float": "NaN"}), and
  // {"$bin": base64} in the arguments is sent as a bin.
  // ---------------------------------------------------------------------------------

  function base64(bytes) {
    let text = "";
    for (const byte of bytes) text += String.fromCharCode(byte);
    return btoa(text);
  }

  // `value` as JSON text, indented by `space` (0: on one line).
  function show(value, space = 2) {
    return JSON.stringify(
      value,
      (_key, v) => {
        if (v instanceof Uint8Array) return { $bin: base64(v) };
        if (v instanceof window.MessagePack.ExtData) {
          return { $ext: { type: v.type, data: base64(v.data) } };
        }
        if (typeof v === "bigint") return v.toString();
        if (typeof v === "number" && !Number.isFinite(v)) {
          return { $float: Number.isNaN(v) ? "NaN" : v > 0 ? "inf" : "-inf" };
        }
        return v;
      },
      space,
    );
  }

  function parseArguments(text) {
    const params = JSON.parse(text.trim() === "" ? "[]" : text, (_key, v) => {
      const tagged = v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1;
      if (tagged && typeof v.$bin === "string") {
        return Uint8Array.from(atob(v.$bin), (c) => c.charCodeAt(0));
      }
      return v;
    });
    if (params === null || typeof params !== "object" || params instanceof Uint8Array) {
      throw new Error("the arguments must be a JSON array (positional) or object (named)");
    }
    return params;
  }

  // ---------------------------------------------------------------------------------
  // The page
  // ---------------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  // Each method: an example to start from, and what kind of call it is.
  const METHODS = {
    add: { example: [2, 3] },
    multiply: { example: [6, 7] },
    greet: { example: ["Ada"] },
    echo: { example: [{ hello: ["world", 1, 2.5, true, null] }] },
    getUser: { example: [1] },
    listUsers: { example: ["admin"] },
    getOrder: { example: [1001] },
    listOrders: { example: [1] },
    publishEvent: { example: [1, "login", { ip: "127.0.0.1" }] },
    subscribeEvents: {
      example: [1, ["login", "logout", "profile_update", "password_change"]],
      kind: "server stream",
      hint: "Items appear below as they come. Call publishEvent for user 1 to make some.",
    },
    chat: {
      kind: "bidirectional",
      hint: "chat is a bidirectional stream: join a room in the chat panel below.",
    },
  };

  // Lists on the page keep this many entries, dropping the oldest.
  const MAX_LIST = 500;

  let connection = null;
  let stream = null; // the server stream shown in the stream panel
  let streamMethod = ""; // and its method
  let chat = null; // the chat call, while in a room

  function setState(element, state, text) {
    element.dataset.state = state;
    element.textContent = text;
  }

  // Adds a line to `list` (with `attributes`), keeping it scrolled to the newest.
  function append(list, text, attributes) {
    const entry = document.createElement("li");
    entry.textContent = text;
    for (const [name, value] of Object.entries(attributes)) entry.setAttribute(name, value);
    list.append(entry);
    while (list.children.length > MAX_LIST) list.firstElementChild.remove();
    entry.scrollIntoView({ block: "nearest" });
    return entry;
  }

  // Adds an error line to `list`, marked with `testid`.
  function appendError(list, testid, text) {
    append(list, text, { "data-testid": testid, class: "failed" });
  }

  function connect() {
    const url = new URL("ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    setState($("status"), "connecting", "connecting…");
    $("reconnect").hidden = true;
    connection = new Connection(url, (state, detail) => {
      if (state === "open") {
        setState($("status"), "open", `connected to ${url}`);
      } else {
        setState($("status"), "closed", `disconnected (${detail})`);
        $("reconnect").hidden = false;
      }
      updateControls();
    });
  }

  function updateControls() {
    const open = connection?.isOpen ?? false;
    const method = METHODS[$("method").value];
    $("call").disabled = !open || method.kind === "bidirectional";
    $("params").disabled = method.kind === "bidirectional";
    $("chat-join").disabled = !open || chat !== null;
    $("chat-leave").disabled = chat === null;
    $("chat-text").disabled = chat === null;
    $("chat-send").disabled = chat === null;
    $("cancel").disabled = stream === null;
  }

  function methodChosen() {
    const method = METHODS[$("method").value];
    $("params").value = method.example ? JSON.stringify(method.example) : "";
    $("method-hint").textContent = method.hint ?? "";
    if (method.kind === "bidirectional") $("chat-name").focus();
    updateControls();
  }

  // Shows an answer; `pending` while the call is in flight.
  function showAnswer(method, error, result, pending = false) {
    setState($("answer-method"), pending ? "pending" : error ? "error" : "ok", method);
    $("result").textContent = error ? "" : show(result);
    $("error").textContent = error ? show(error) : "";
  }

  async function callChosen() {
    const method = $("method").value;
    let params;
    try {
      params = parseArguments($("params").value);
    } catch (e) {
      showAnswer(method, new RpcError(null, `bad arguments: ${e.message}`));
      return;
    }
    if (METHODS[method].kind === "server stream") {
      try {
        follow(method, params);
      } catch (e) {
        showAnswer(method, e instanceof RpcError ? e : new RpcError(null, e.message));
      }
      return;
    }
    showAnswer(method, null, "…", true);
    try {
      showAnswer(method, null, await connection.call(method, params));
    } catch (e) {
      showAnswer(method, e instanceof RpcError ? e : new RpcError(null, e.message));
    }
  }

  // Follows a server stream in the stream panel, replacing (and cancelling) the one
  // shown before.
  function follow(method, params) {
    const items = $("stream-items");
    const current = connection.open(method, params, {
      onItem: (value) => append(items, show(value, 0), { "data-testid": "stream-item" }),
      onItemError: (error) =>
        appendError(items, "stream-item-error", `error ${error.code}: ${error.message}`),
      onEnd: (error, result) => {
        if (stream !== current) return;
        stream = null;
        if (error) setState($("stream-state"), "failed", `${method} failed: ${show(error, 0)}`);
        else setState($("stream-state"), "ended", `${method} ended: ${show(result, 0)}`);
        updateControls();
      },
    });
    // Nothing of the new stream can arrive before this function returns.
    stream?.cancel();
    items.replaceChildren();
    stream = current;
    streamMethod = method;
    setState($("stream-state"), "open", `${method} open (call ${current.id})`);
    updateControls();
  }

  function cancelStream() {
    if (!stream) return;
    stream.cancel();
    stream = null;
    setState($("stream-state"), "cancelled", `${streamMethod} cancelled`);
    updateControls();
  }

  // ---- chat: one `chat` call is one member of one room ----

  // Shows one message of the room.
  function chatLine(type, user, text) {
    const attributes = { "data-testid": "chat-message", "data-type": type, "data-user": user };
    return append($("chat-log"), text, attributes);
  }

  // Sends one chat message of `type`; the server fills in who and when.
  function chatSend(type, content) {
    chat.stream.send({ user_id: chat.name, room_id: chat.room, type, content });
  }

  // Joins a room: opens a `chat` call and sends the join message as its first item.
  // The hub's welcome says we are in; a per-item error before it says why not (an
  // empty or reserved name), and the call is given up.
  function joinChat() {
    const name = $("chat-name").value.trim();
    const room = $("chat-room").value.trim();
    const log = $("chat-log");
    const current = { name, room, joined: false, lastTyping: 0 };
    const leftWith = (state, text) => {
      if (chat !== current) return;
      chat = null;
      setState($("chat-state"), state, text);
      updateControls();
    };
    const handlers = {
      onItem: (m) => {
        if (!current.joined && m.type === "system") {
          current.joined = true;
          setState($("chat-state"), "in", `in ${room} as ${name}`);
        }
        $("chat-typing").textContent = m.type === "typing" ? `${m.user_id} is typing…` : "";
        if (m.type === "typing") return;
        const line = m.type === "text" ? `${m.user_id}: ${m.content}` : m.content;
        chatLine(m.type, m.user_id, line);
      },
      onItemError: (error) => {
        appendError(log, "chat-error", `error ${error.code}: ${error.message}`);
        if (!current.joined) {
          current.stream.cancel();
          leftWith("failed", `could not join ${room}: ${error.message}`);
        }
      },
      onEnd: (error) => {
        if (error) leftWith("failed", `out of ${room}: ${error.message}`);
        else leftWith("out", `left ${room}`);
      },
    };
    try {
      current.stream = connection.open("chat", [], handlers);
    } catch (e) {
      setState($("chat-state"), "failed", `could not join ${room}: ${e.message}`);
      return;
    }
    chat = current;
    setState($("chat-state"), "joining", `joining ${room} as ${name}…`);
    updateControls();
    try {
      chatSend("join", "");
    } catch (e) {
      current.stream.cancel();
      leftWith("failed", `could not join ${room}: ${e.message}`);
    }
    $("chat-text").focus();
  }

  function sendChat() {
    const text = $("chat-text").value;
    if (!chat || text === "") return;
    try {
      chatSend("text", text);
      // The room does not echo a member's own messages: show it here.
      chatLine("text", chat.name, `${chat.name}: ${text}`).classList.add("mine");
      $("chat-text").value = "";
    } catch (e) {
      appendError($("chat-log"), "chat-error", e.message);
    }
  }

  // Tells the room we are typing, at most every few seconds.
  function typing() {
    if (!chat || Date.now() - chat.lastTyping < 3000) return;
    chat.lastTyping = Date.now();
    try {
      chatSend("typing", "");
    } catch {
      // Typing notices are a courtesy: one that cannot go is skipped.
    }
  }

  function leaveChat() {
    if (!chat) return;
    try {
      chatSend("leave", "");
    } catch {
      chat.stream.cancel();
      chat = null;
      setState($("chat-state"), "out", "not in a room");
    }
    updateControls();
  }

  function start() {
    $("method").addEventListener("change", methodChosen);
    $("call").addEventListener("click", callChosen);
    $("cancel").addEventListener("click", cancelStream);
    $("reconnect").addEventListener("click", connect);
    $("chat-join").addEventListener("click", joinChat);
    $("chat-leave").addEventListener("click", leaveChat);
    $("chat-send").addEventListener("click", sendChat);
    $("chat-text").addEventListener("input", typing);
    $("chat-text").addEventListener("keydown", (event) => {
      if (event.key === "Enter") sendChat();
    });
    methodChosen();
    connect();
  }

  start();
})();
