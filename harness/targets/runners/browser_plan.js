// Interop plans for browser adapters (docs/adapter-protocol.md §2.1). harness/targets/runners/browser.py
// loads this, after browser_reporter.js and before the target's adapter script, so both browser
// adapters build the plan the same way the process adapters do.
//
// wsconformPlan(raw) returns a Promise of the plan, its payloads built, never shipped: `unit` (UTF-8)
// or `unit_hex` repeated and cut to `size` bytes, each checked against its `sha256` (crypto.subtle:
// the adapter page is a secure context), or rejects with the reason the plan cannot be played as
// written. The plan:
//   {messages: [{text, bytes, data}], repeat, burst, protocols (null: not given), deflate, ping
//    (Uint8Array | null), readDelayMs, close: {by, code, reason}, total}
// `data` is what send() / a stream writer takes: a string for text, an ArrayBuffer for binary.
"use strict";

async function wsconformPlan(raw) {
  const hex = (s) => Uint8Array.from(String(s).match(/../g) || [], (b) => parseInt(b, 16));
  const sha256 = async (bytes) => {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  };
  if (!raw || !Array.isArray(raw.messages)) throw new Error("a plan is an object with a 'messages' list");
  const messages = [];
  for (const spec of raw.messages) {
    if (spec.type !== "text" && spec.type !== "binary") throw new Error(`message type ${spec.type}`);
    const unit = spec.unit_hex !== undefined ? hex(spec.unit_hex) : new TextEncoder().encode(String(spec.unit ?? ""));
    const size = Number(spec.size || 0);
    if (size < 0 || (size > 0 && unit.length === 0)) throw new Error(`cannot build ${size} bytes from an empty unit`);
    const bytes = new Uint8Array(size);
    for (let at = 0; at < size; at += unit.length) bytes.set(unit.subarray(0, Math.min(unit.length, size - at)), at);
    if (spec.sha256 && (await sha256(bytes)) !== String(spec.sha256).toLowerCase()) {
      throw new Error(`the payload built for ${JSON.stringify(spec)} does not hash to the plan's sha256`);
    }
    const text = spec.type === "text";
    let data = bytes.buffer;
    if (text) {
      try {
        data = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch (e) {
        throw new Error("a text payload that is not UTF-8 (a cut character?)");
      }
    }
    messages.push({ text, bytes, data });
  }
  const pace = raw.pace ?? "echo";
  if (pace !== "echo" && pace !== "burst") throw new Error(`pace ${pace}`);
  const close = raw.close ?? {};
  const by = close.by ?? "client";
  if (by !== "client" && by !== "server") throw new Error(`close.by ${by}`);
  let ping = null;
  if (raw.ping) {
    ping = raw.ping.payload_hex !== undefined ? hex(raw.ping.payload_hex) : new TextEncoder().encode(String(raw.ping.payload ?? ""));
  }
  const repeat = Number(raw.repeat ?? 1);
  return {
    messages,
    repeat,
    burst: pace === "burst",
    protocols: raw.protocols ?? null,
    deflate: raw.permessage_deflate !== undefined && raw.permessage_deflate !== null,
    ping,
    readDelayMs: Number(raw.read_delay_ms ?? 0),
    close: { by, code: Number(close.code ?? 1000), reason: String(close.reason ?? "") },
    total: messages.length * repeat,
  };
}

// The close a WebSocket API client may ask for: close(code, reason) throws for a code that is
// neither 1000 nor 3000-4999 and for a reason over 123 UTF-8 bytes (WHATWG WebSockets, "close()").
function wsconformApiCanClose(close) {
  const codeOk = close.code === 1000 || (close.code >= 3000 && close.code <= 4999);
  return codeOk && new TextEncoder().encode(close.reason).length <= 123;
}

// The text message that asks a server adapter to close with code and reason (§2.3).
function wsconformTrigger(close) {
  return `wsconform:close ${close.code} ${close.reason}`;
}
