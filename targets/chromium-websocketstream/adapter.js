// wsconform client adapter: Chromium's WebSocketStream API (WHATWG WebSockets Standard,
// "The WebSocketStream interface"), reading with a ReadableStream reader and writing with a
// WritableStream writer, so the Streams API's backpressure applies: the next read is only issued
// after the echo of the previous message has been accepted by the writer.
//
// Same contract as ../chromium-websocket/adapter.js: wsconformRun(url, protocols, scenario, delayMs),
// events through __wsconformEmit(JSON), end with __wsconformExit(code); 127 = scenario not supported.
// Mapping of the stream API onto the events: `opened` resolving -> open {protocol, extensions};
// each chunk read -> message; `opened` or a read/write rejecting -> error; `closed` resolving ->
// close {code: closeCode, reason, wasClean: true}; `closed` rejecting -> close {code: 1006 or the
// WebSocketError's closeCode, wasClean: false}.
//
// Scenarios:
//   close-999 / close-5000   close({closeCode}) outside 1000 and 3000-4999: InvalidAccessError
//   close-long-reason        close({closeCode: 1000, reason}) with a reason over 123 UTF-8 bytes: SyntaxError
//   duplicate-protocols      new WebSocketStream(url, {protocols: ["chat", "chat"]}): SyntaxError
//   abort-before-open        the AbortSignal given to the constructor is aborted 300 ms after it (the
//                            peer answers the handshake later): `opened` rejects with AbortError and
//                            no connection is established
//   slow-reader              wait delayMs before each read (a slow consumer: the stream stops reading)
//
// Interop mode (docs/adapter-protocol.md §2; `interop` = {scenario, plan}, payloads built by
// browser_plan.js): a writer sends the plan's messages (each write awaited), paced by echo or in a
// burst, while a reader reads the echoes, waiting readDelayMs before each read (the Streams API's
// backpressure then reaches the socket); then close({closeCode, reason}) or the server's close
// trigger, and `closed` gives the code and reason. What the API cannot do exits 127 before
// connecting: a ping (WebSocketStream has none), a close code other than 1000 and 3000-4999 or a
// reason over 123 bytes (close() throws). The extension offer is the browser's: Chromium offers
// "permessage-deflate; client_max_window_bits" on every connection, asked or not.
"use strict";

const SAFETY_TIMEOUT_MS = 30000;
const SCENARIOS = [
  "", "close-999", "close-5000", "close-long-reason", "duplicate-protocols", "abort-before-open", "slow-reader",
];

async function wsconformRun(url, protocols, scenario, delayMs, interop) {
  if (interop) {
    await wsconformInterop(url, protocols, interop);
    return;
  }
  const { queue, emit, exit, attempt, sleep, sha256 } = wsconformReporter();  // browser_reporter.js
  const safety = setTimeout(() => {
    emit("error", { message: `adapter safety timeout (${SAFETY_TIMEOUT_MS} ms)` });
    emit("close", { code: 1006, reason: "", wasClean: false });
    exit(0);
  }, SAFETY_TIMEOUT_MS);
  const finish = () => {
    clearTimeout(safety);
    exit(0);
  };

  if (!SCENARIOS.includes(scenario)) {
    exit(127);
    return;
  }
  if (typeof WebSocketStream !== "function") {
    emit("error", { message: "WebSocketStream is not available in this browser" });
    exit(127);
    return;
  }
  if (scenario === "duplicate-protocols") {
    attempt("new WebSocketStream(url, {protocols: ['chat', 'chat']})",
      () => new WebSocketStream(url, { protocols: ["chat", "chat"] }));
  }
  const controller = new AbortController();
  const options = { signal: controller.signal };
  if (protocols.length) options.protocols = protocols;
  let wss;
  try {
    wss = new WebSocketStream(url, options);
  } catch (e) {
    emit("exception", { name: e.name, message: String(e.message), during: "new WebSocketStream" });
    emit("error", { message: `constructor threw ${e.name}` });
    emit("close", { code: 1006, reason: "", wasClean: false });
    finish();
    return;
  }
  if (scenario === "abort-before-open") setTimeout(() => controller.abort(), 300);

  const reportClosed = async () => {
    try {
      const { closeCode, reason } = await wss.closed;
      emit("close", { code: closeCode ?? 1005, reason: reason ?? "", wasClean: true });
    } catch (e) {
      // A rejected `closed` is how the stream API says the connection failed: the WebSocket API's
      // error event, then close.
      emit("error", { message: `closed rejected: ${e.name}: ${e.message}` });
      emit("close", { code: e.closeCode ?? 1006, reason: e.reason ?? "", wasClean: false });
    }
  };

  let opened;
  try {
    opened = await wss.opened;
  } catch (e) {
    emit("exception", { name: e.name, message: String(e.message), during: "opened" });
    emit("error", { message: `opened rejected: ${e.name}: ${e.message}` });
    await reportClosed();
    finish();
    return;
  }
  emit("open", { protocol: opened.protocol, extensions: opened.extensions });
  if (scenario === "close-999") attempt("close({closeCode: 999})", () => wss.close({ closeCode: 999 }));
  if (scenario === "close-5000") attempt("close({closeCode: 5000})", () => wss.close({ closeCode: 5000 }));
  if (scenario === "close-long-reason") {
    attempt("close({closeCode: 1000, reason: 124 bytes})", () => wss.close({ closeCode: 1000, reason: "x".repeat(124) }));
  }
  const reader = opened.readable.getReader();
  const writer = opened.writable.getWriter();
  try {
    for (;;) {
      if (scenario === "slow-reader") await sleep(delayMs);
      const { value, done } = await reader.read();
      if (done) break;
      const text = typeof value === "string";
      const bytes = text ? new TextEncoder().encode(value) : new Uint8Array(value);
      await writer.write(value);
      const digest = await sha256(bytes);
      emit("message", { type: text ? "text" : "binary", size: bytes.length, sha256: digest });
    }
  } catch (e) {
    emit("error", { message: `stream failed: ${e.name}: ${e.message}` });
  }
  await reportClosed();
  finish();
}

async function wsconformInterop(url, protocols, interop) {
  const { emit, exit, sleep, sha256 } = wsconformReporter();  // browser_reporter.js
  let plan;
  try {
    plan = await wsconformPlan(interop.plan);  // browser_plan.js
  } catch (e) {
    emit("error", { message: `invalid interop plan: ${e.message}` });
    exit(2);
    return;
  }
  if (plan.ping || (plan.close.by === "client" && !wsconformApiCanClose(plan.close))) {
    exit(127);  // WebSocketStream has no ping; close() accepts only 1000 and 3000-4999
    return;
  }
  if (typeof WebSocketStream !== "function") {
    emit("error", { message: "WebSocketStream is not available in this browser" });
    exit(127);
    return;
  }
  const safety = setTimeout(() => {
    emit("error", { message: `adapter safety timeout (${SAFETY_TIMEOUT_MS} ms)` });
    emit("close", { code: 1006, reason: "", wasClean: false });
    exit(0);
  }, SAFETY_TIMEOUT_MS + plan.readDelayMs * plan.total);
  const finish = () => {
    clearTimeout(safety);
    exit(0);
  };
  const chosen = plan.protocols ?? protocols;
  let wss;
  try {
    wss = new WebSocketStream(url, chosen.length ? { protocols: chosen } : {});
  } catch (e) {
    emit("exception", { name: e.name, message: String(e.message), during: "new WebSocketStream" });
    emit("error", { message: `constructor threw ${e.name}` });
    emit("close", { code: 1006, reason: "", wasClean: false });
    finish();
    return;
  }
  const reportClosed = async () => {
    try {
      const { closeCode, reason } = await wss.closed;
      emit("close", { code: closeCode ?? 1005, reason: reason ?? "", wasClean: true });
    } catch (e) {
      emit("error", { message: `closed rejected: ${e.name}: ${e.message}` });
      emit("close", { code: e.closeCode ?? 1006, reason: e.reason ?? "", wasClean: false });
    }
  };
  let opened;
  try {
    opened = await wss.opened;
  } catch (e) {
    emit("error", { message: `opened rejected: ${e.name}: ${e.message}` });
    await reportClosed();
    finish();
    return;
  }
  emit("open", { protocol: opened.protocol, extensions: opened.extensions });
  const reader = opened.readable.getReader();
  const writer = opened.writable.getWriter();
  let received = 0;
  let ended = false;
  let wake = () => {};
  const echoes = async (count) => {
    while (received < count && !ended) await new Promise((resolve) => { wake = resolve; });
    return received >= count;
  };
  const reading = (async () => {
    try {
      for (;;) {
        if (plan.readDelayMs) await sleep(plan.readDelayMs);
        const { value, done } = await reader.read();
        if (done) break;
        const text = typeof value === "string";
        const bytes = text ? new TextEncoder().encode(value) : new Uint8Array(value);
        emit("message", { type: text ? "text" : "binary", size: bytes.length, sha256: await sha256(bytes) });
        received += 1;
        wake();
      }
    } catch (e) {
      emit("error", { message: `stream failed: ${e.name}: ${e.message}` });
    } finally {
      ended = true;
      wake();
    }
  })();
  try {
    let sent = 0;
    let complete = true;
    for (let round = 0; round < plan.repeat && complete; round++) {
      for (const message of plan.messages) {
        await writer.write(message.text ? message.data : message.bytes);
        sent += 1;
        if (!plan.burst && !(await echoes(sent))) {
          complete = false;
          break;
        }
      }
    }
    if (complete && (await echoes(sent))) {
      if (plan.close.by === "server") await writer.write(wsconformTrigger(plan.close));
      else wss.close({ closeCode: plan.close.code, reason: plan.close.reason });
    }
  } catch (e) {
    emit("error", { message: `writing failed: ${e.name}: ${e.message}` });
  }
  await reading;
  await reportClosed();
  finish();
}
