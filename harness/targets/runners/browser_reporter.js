// The reporting half of the client adapter contract, for browser adapters. harness/targets/browser.py
// loads this before the target's own adapter script, so every browser adapter reports the same way.
//
// wsconformReporter() returns:
//   queue(step)          run step (sync or async) after every report queued before it, so events keep
//                        the order in which the API produced them even when a report needs an await
//   emit(event, fields)  one JSON event line to the harness (open, message, error, close, exception, call)
//   exit(code)           end the case once queued reports are out (127: scenario not supported)
//   attempt(what, call)  run an API call that may throw; report `exception` {name} or `call` {threw: false}
//   sleep(ms), sha256(bytes) -> hex
"use strict";

function wsconformReporter() {
  let chain = Promise.resolve();
  let exited = false;
  const queue = (step) => {
    chain = chain.then(step);
  };
  const emit = (event, fields) => queue(() => window.__wsconformEmit(JSON.stringify({ event, ...fields })));
  const exit = (code) =>
    queue(() => {
      if (!exited) {
        exited = true;
        window.__wsconformExit(code);
      }
    });
  const attempt = (what, call) => {
    try {
      call();
      emit("call", { what, threw: false });
    } catch (e) {
      emit("exception", { name: e.name, message: String(e.message), during: what });
    }
  };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const sha256 = async (bytes) => {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  };
  return { queue, emit, exit, attempt, sleep, sha256 };
}
