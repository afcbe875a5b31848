// wsconform client adapter: Chromium's WebSocket API (WHATWG WebSockets Standard).
//
// harness/targets/browser.py serves this script in a fresh page per case and calls
// wsconformRun(url, protocols, scenario, delayMs). The adapter echoes every message with the same type,
// lets the browser answer the closing handshake, and reports what the API saw through
// __wsconformEmit(JSON) (events open, message, error, close, exception: the JSON-lines contract of
// docs/architecture.md) and ends with __wsconformExit(code); 127 = scenario not supported.
//
// Scenarios exercise API rules a server cannot see (WHATWG WebSockets, "The WebSocket interface"):
//   close-999 / close-5000   close(code) with a code that is neither 1000 nor 3000-4999: InvalidAccessError
//   close-long-reason        close(1000, reason) with a reason longer than 123 UTF-8 bytes: SyntaxError
//   duplicate-protocols      new WebSocket(url, ["chat", "chat"]): SyntaxError
//   slow-reader              handle each message only after delayMs (the API cannot push back)
// After the call that must throw, the adapter goes on as the plain echo client, so the case also shows
// that the failed call had no effect on the connection.
//
// Interop mode (docs/adapter-protocol.md §2; `interop` = {scenario, plan}, payloads built by
// browser_plan.js): the page originates the plan's messages with send(), paced by echo or in a burst,
// handles each received message after readDelayMs (the API cannot stop the socket: the browser keeps
// reading), then close(code, reason) or the server's close trigger. What the WebSocket API cannot do
// exits 127 before connecting: a ping (the API has no ping), a close code other than 1000 and
// 3000-4999 or a reason over 123 bytes (close() throws). It cannot choose an extension offer either:
// Chromium offers "permessage-deflate; client_max_window_bits" on every connection, asked or not.
"use strict";

const SAFETY_TIMEOUT_MS = 30000;
const SCENARIOS = ["", "close-999", "close-5000", "close-long-reason", "duplicate-protocols", "slow-reader"];

function wsconformRun(url, protocols, scenario, delayMs, interop) {
  if (interop) {
    wsconformInterop(url, protocols, interop);
    return;
  }
  const { queue, emit, exit, attempt, sleep, sha256 } = wsconformReporter();  // browser_reporter.js

  if (!SCENARIOS.includes(scenario)) {
    exit(127);
    return;
  }
  if (scenario === "duplicate-protocols") {
    attempt("new WebSocket(url, ['chat', 'chat'])", () => new WebSocket(url, ["chat", "chat"]));
  }
  let ws;
  try {
    ws = new WebSocket(url, protocols);
  } catch (e) {
    emit("exception", { name: e.name, message: String(e.message), during: "new WebSocket" });
    emit("error", { message: `constructor threw ${e.name}` });
    emit("close", { code: 1006, reason: "", wasClean: false });
    exit(0);
    return;
  }
  ws.binaryType = "arraybuffer";
  let handling = Promise.resolve();

  ws.onopen = () => {
    emit("open", { protocol: ws.protocol, extensions: ws.extensions });
    if (scenario === "close-999") attempt("close(999)", () => ws.close(999));
    if (scenario === "close-5000") attempt("close(5000)", () => ws.close(5000));
    if (scenario === "close-long-reason") attempt("close(1000, 124-byte reason)", () => ws.close(1000, "x".repeat(124)));
  };
  ws.onmessage = (event) => {
    const data = event.data;
    const text = typeof data === "string";
    const bytes = text ? new TextEncoder().encode(data) : new Uint8Array(data);
    if (scenario === "slow-reader") {
      handling = handling.then(() => sleep(delayMs)).then(() => ws.send(data));
    } else {
      ws.send(data); // at once, in arrival order
    }
    queue(async () => {
      const digest = await sha256(bytes);
      window.__wsconformEmit(
        JSON.stringify({ event: "message", type: text ? "text" : "binary", size: bytes.length, sha256: digest }),
      );
    });
  };
  ws.onerror = () => emit("error", { message: "error event" });
  ws.onclose = (event) => {
    handling.then(() => {
      emit("close", { code: event.code, reason: event.reason, wasClean: event.wasClean });
      exit(0);
    });
  };
  setTimeout(() => {
    emit("error", { message: `adapter safety timeout (${SAFETY_TIMEOUT_MS} ms)` });
    emit("close", { code: 1006, reason: "", wasClean: false });
    exit(0);
  }, SAFETY_TIMEOUT_MS);
}

async function wsconformInterop(url, protocols, interop) {
  const { queue, emit, exit, sleep, sha256 } = wsconformReporter();  // browser_reporter.js
  let plan;
  try {
    plan = await wsconformPlan(interop.plan);  // browser_plan.js
  } catch (e) {
    emit("error", { message: `invalid interop plan: ${e.message}` });
    exit(2);
    return;
  }
  if (plan.ping || (plan.close.by === "client" && !wsconformApiCanClose(plan.close))) {
    exit(127);  // the WebSocket API has no ping; close() accepts only 1000 and 3000-4999
    return;
  }
  const safety = setTimeout(() => {
    emit("error", { message: `adapter safety timeout (${SAFETY_TIMEOUT_MS} ms)` });
    emit("close", { code: 1006, reason: "", wasClean: false });
    exit(0);
  }, SAFETY_TIMEOUT_MS + plan.readDelayMs * plan.total);
  let ws;
  try {
    ws = new WebSocket(url, plan.protocols ?? protocols);
  } catch (e) {
    emit("exception", { name: e.name, message: String(e.message), during: "new WebSocket" });
    emit("error", { message: `constructor threw ${e.name}` });
    emit("close", { code: 1006, reason: "", wasClean: false });
    exit(0);
    return;
  }
  ws.binaryType = "arraybuffer";
  let received = 0;
  let ended = false;
  let wake = () => {};
  const echoes = async (count) => {
    while (received < count && !ended) await new Promise((resolve) => { wake = resolve; });
    return received >= count;
  };
  let handling = Promise.resolve();
  const originate = async () => {
    let sent = 0;
    for (let round = 0; round < plan.repeat; round++) {
      for (const message of plan.messages) {
        if (ws.readyState !== WebSocket.OPEN) return;
        ws.send(message.data);
        sent += 1;
        if (!plan.burst && !(await echoes(sent))) return;
      }
    }
    if (!(await echoes(sent)) || ws.readyState !== WebSocket.OPEN) return;
    if (plan.close.by === "server") ws.send(wsconformTrigger(plan.close));
    else ws.close(plan.close.code, plan.close.reason);
  };
  ws.onopen = () => {
    emit("open", { protocol: ws.protocol, extensions: ws.extensions });
    originate();
  };
  ws.onmessage = (event) => {
    const data = event.data;
    const text = typeof data === "string";
    const bytes = text ? new TextEncoder().encode(data) : new Uint8Array(data);
    handling = handling.then(async () => {
      if (plan.readDelayMs) await sleep(plan.readDelayMs);
      const digest = await sha256(bytes);
      queue(() => window.__wsconformEmit(
        JSON.stringify({ event: "message", type: text ? "text" : "binary", size: bytes.length, sha256: digest }),
      ));
      received += 1;
      wake();
    });
  };
  ws.onerror = () => emit("error", { message: "error event" });
  ws.onclose = (event) => {
    handling.then(() => {
      ended = true;
      wake();
      clearTimeout(safety);
      emit("close", { code: event.code, reason: event.reason, wasClean: event.wasClean });
      exit(0);
    });
  };
}
