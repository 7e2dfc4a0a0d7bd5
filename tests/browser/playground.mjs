// The playground page of a running `msgwire serve`, driven in headless Chromium with
// playwright-core, as a person would use it:
//
//   node playground.mjs HTTP_URL RPC_HOST RPC_PORT ARTIFACT_DIR
//
// 1. a call: add(2, 3) shows 5; getUser(99) shows its error, code 5 and message;
// 2. a server stream: subscribeEvents replays 100 events published beforehand (more
//    than one window of credit, so the page must grant credit for it not to stall),
//    then shows live events one by one as publishEvent calls from the page make them,
//    and Cancel stops it while the connection goes on;
// 3. a chat room: two pages join one room and each sees the other's message.
//
// The 100 events are published by a plain msgpack-rpc client on RPC_HOST:RPC_PORT.
// Screenshots go to ARTIFACT_DIR (their paths are printed). The page must log no
// error or warning (a Content-Security-Policy violation would be one). One line per
// check, then one JSON line with what was seen; exits non-zero on any failure.
//
// Packages come from NODE_PATH (the Rust test sets it to tests/interop/node_modules);
// ES `import` ignores NODE_PATH, so they are loaded with `require`.
import net from "node:net";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");
const { encode, decodeMultiStream } = require("@msgpack/msgpack");

const [baseUrl, rpcHost, rpcPort, artifactDir] = process.argv.slice(2);
if (!artifactDir) {
  console.error("usage: node playground.mjs HTTP_URL RPC_HOST RPC_PORT ARTIFACT_DIR");
  process.exit(2);
}

// Only a guard against hangs: nothing is asserted about how long anything takes.
const PATIENCE = 30_000;
const CHROMIUM = process.env.MSGWIRE_CHROMIUM || "/usr/bin/chromium";
// Without the background-networking flags Chromium tries to reach Google's services,
// which this machine's closed network refuses.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const EVENT_USER = 100_000 + process.pid; // a user of its own: no other events show up
const REPLAYED = 100;
const LIVE = 3;

const summary = { screenshots: [] };
const problems = []; // console errors and warnings, uncaught exceptions

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
  console.log(`ok ${what}`);
}

// publishEvent REPLAYED times over msgpack-rpc on the RPC port, pipelined; resolves
// once every call is answered.
async function publishOverRpc(count) {
  const socket = net.connect(Number(rpcPort), rpcHost);
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  for (let n = 1; n <= count; n++) {
    socket.write(encode([0, n, "publishEvent", [EVENT_USER, "login", { n }]]));
  }
  let answered = 0;
  for await (const message of decodeMultiStream(socket)) {
    const [type, , error] = message;
    if (type !== 1) continue;
    if (error != null) throw new Error(`publishEvent failed: ${JSON.stringify(error)}`);
    if (++answered === count) break;
  }
  socket.destroy();
  return answered;
}

async function openPage(browser, name) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 1300 } });
  page.setDefaultTimeout(PATIENCE);
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") {
      const where = message.location().url;
      problems.push(`${name}: console ${message.type()}: ${message.text()}${where ? ` (${where})` : ""}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`${name}: uncaught: ${error.message}`));
  const response = await page.goto(baseUrl);
  check(response.status() === 200, `${name}: GET ${baseUrl} is 200`);
  await page.locator('[data-testid=status][data-state=open]').waitFor();
  check(true, `${name}: the page connected over /ws`);
  return page;
}

async function screenshot(page, name) {
  const file = path.resolve(artifactDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  summary.screenshots.push(file);
  console.log(`screenshot ${file}`);
}

// Picks `method`, types `params`, presses Call and waits for the answer; returns the
// result and error panels' text.
async function call(page, method, params) {
  await page.selectOption("[data-testid=method]", method);
  await page.fill("[data-testid=params]", JSON.stringify(params));
  await page.click("[data-testid=call]");
  await page.locator("[data-testid=answer-method]:not([data-state=pending])").waitFor();
  return {
    result: await page.textContent("[data-testid=result]"),
    error: await page.textContent("[data-testid=error]"),
  };
}

const streamItems = (page) => page.locator("[data-testid=stream-item]");

async function waitForCount(locator, count, what) {
  await locator.nth(count - 1).waitFor();
  const seen = await locator.count();
  check(seen === count, `${what}: ${seen} shown`);
}

async function calls(page) {
  const sum = await call(page, "add", [2, 3]);
  check(sum.result === "5" && sum.error === "", `add [2, 3] shows 5 (got ${JSON.stringify(sum)})`);
  summary.add = JSON.parse(sum.result);

  const missing = await call(page, "getUser", [99]);
  const error = JSON.parse(missing.error);
  check(
    missing.result === "" && error.code === 5 && /not found/.test(error.message),
    `getUser [99] shows code 5 and ${JSON.stringify(error.message)}`,
  );
  summary.not_found = error;

  const alice = JSON.parse((await call(page, "getUser", { id: 1 })).result);
  check(alice.name === "Alice" && alice.role === "admin", `getUser {"id": 1} shows Alice, admin`);
  await screenshot(page, "call");
}

async function stream(page) {
  const published = await publishOverRpc(REPLAYED);
  check(published === REPLAYED, `${REPLAYED} events published over msgpack-rpc`);

  await page.selectOption("[data-testid=method]", "subscribeEvents");
  await page.fill("[data-testid=params]", JSON.stringify([EVENT_USER, null, 0]));
  await page.click("[data-testid=call]");
  await page.locator("[data-testid=stream-state][data-state=open]").waitFor();
  await waitForCount(streamItems(page), REPLAYED, `subscribeEvents replays ${REPLAYED} events, past the 64-item window`);
  const replayed = await streamItems(page).allTextContents();
  const ns = replayed.map((text) => JSON.parse(text).data?.n);
  check(
    ns.every((n, i) => n === i + 1),
    "the replayed events are the published ones, in order",
  );

  for (let live = 1; live <= LIVE; live++) {
    const answer = await call(page, "publishEvent", [EVENT_USER, "logout", { live }]);
    check(answer.error === "", `publishEvent from the page answered ${answer.result.replace(/\s+/g, " ")}`);
    await waitForCount(streamItems(page), REPLAYED + live, `live event ${live} appears in the open stream`);
    const last = JSON.parse(await streamItems(page).last().textContent());
    check(last.type === "logout" && last.data.live === live, `live event ${live} is the one just published`);
  }
  summary.stream_items = await streamItems(page).count();
  await screenshot(page, "stream");

  await page.click("[data-testid=cancel]");
  await page.locator("[data-testid=stream-state][data-state=cancelled]").waitFor();
  check(await page.isDisabled("[data-testid=cancel]"), "Cancel ends the stream on the page");
  const after = await call(page, "multiply", [6, 7]);
  check(after.result === "42", "the connection goes on after the cancel: multiply [6, 7] shows 42");
  summary.cancelled = true;
}

async function join(page, name, room) {
  await page.fill("[data-testid=chat-name]", name);
  await page.fill("[data-testid=chat-room]", room);
  await page.click("[data-testid=chat-join]");
  await page.locator("[data-testid=chat-state][data-state=in]").waitFor();
  const welcome = page.locator("[data-testid=chat-message][data-type=system]").first();
  check((await welcome.textContent()) === `Welcome to ${room}, ${name}`, `${name} joins ${room} and is welcomed`);
}

async function say(page, text) {
  await page.fill("[data-testid=chat-text]", text);
  await page.click("[data-testid=chat-send]");
}

// Waits for `page` to show a text message from `user`; returns its line.
async function heard(page, user, text) {
  const line = page.locator(`[data-testid=chat-message][data-type=text][data-user="${user}"]`, { hasText: text });
  await line.first().waitFor();
  return line.first().textContent();
}

async function chat(browser) {
  const room = `browser-${process.pid}`;
  const alice = await openPage(browser, "alice");
  const bob = await openPage(browser, "bob");
  await join(alice, "alice", room);
  await join(bob, "bob", room);
  const notice = alice.locator("[data-testid=chat-message][data-type=join]");
  await notice.first().waitFor();
  check((await notice.first().textContent()) === `bob joined ${room}`, "alice sees bob join");

  await say(alice, "hello from alice");
  const bobSaw = await heard(bob, "alice", "hello from alice");
  check(bobSaw === "alice: hello from alice", "bob sees alice's message");
  await say(bob, "hi alice, bob here");
  const aliceSaw = await heard(alice, "bob", "hi alice, bob here");
  check(aliceSaw === "bob: hi alice, bob here", "alice sees bob's message");
  summary.chat = { room, bob_saw: bobSaw, alice_saw: aliceSaw };
  await screenshot(alice, "chat-alice");
  await screenshot(bob, "chat-bob");

  await bob.click("[data-testid=chat-leave]");
  await bob.locator("[data-testid=chat-state][data-state=out]").waitFor();
  const left = alice.locator("[data-testid=chat-message][data-type=leave]");
  await left.first().waitFor();
  check((await left.first().textContent()) === `bob left ${room}`, "alice sees bob leave");
}

async function main() {
  fs.mkdirSync(artifactDir, { recursive: true });
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run scripts/test`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = await openPage(browser, "playground");
    await calls(page);
    await stream(page);
    await chat(browser);
  } finally {
    await browser.close();
  }
  check(problems.length === 0, `the pages logged no error or warning ${JSON.stringify(problems)}`);
  console.log(JSON.stringify(summary));
}

main().catch((error) => {
  console.error(error.stack || String(error));
  if (problems.length > 0) console.error(`the pages logged:\n${problems.join("\n")}`);
  process.exit(1);
});
