'use strict';
/**
 * wsconform client adapter for the `ws` library (Node.js `WebSocket` client).
 *
 * The harness runs the peer as a server and starts this program once per
 * case. It connects to --url offering the --protocols, echoes every message
 * with the same type, completes the closing handshake, and prints what ws'
 * API saw as JSON lines on stdout. Contract (docs/architecture.md): events
 * `open`, `message`, `error`, `close`; exit 0 after `close`; exit 127 for an
 * unsupported scenario (WSCONFORM_SCENARIO).
 *
 * How ws' API maps onto the events:
 *
 * - The WHATWG-style `addEventListener` interface of ws is used for open,
 *   error and close, because its CloseEvent carries `code`, `reason` and
 *   `wasClean` (the EventEmitter `'close'` has no wasClean). `code` is 1005
 *   for a Close frame without a status code and 1006 when no Close frame was
 *   received; wasClean is true only when Close frames went both ways.
 * - Messages come from the EventEmitter `'message'` listener, which gives the
 *   bytes and `isBinary`; they are echoed with `send(data, {binary})`, so the
 *   echo is byte-exact with the same opcode.
 * - `protocols` is passed only when there is at least one: ws would send no
 *   header for an empty array either, but omitting it says so plainly.
 * - `perMessageDeflate: false`: no permessage-deflate offer, as the other
 *   client adapters do (ws' default would offer it), so every client target
 *   is asked the same thing. ws then fails a 101 that carries any
 *   Sec-WebSocket-Extensions header.
 * - `open.extensions` is the raw Sec-WebSocket-Extensions value of the 101
 *   response (from ws' `'upgrade'` event), as the other adapters report it.
 * - ws fires `error` when it fails the connection (invalid handshake
 *   response, protocol violation in a frame), always before `close`. It fires
 *   no `error` when the TCP connection just ends without a Close frame; the
 *   contract (WHATWG "fail the WebSocket connection") wants one before a
 *   close that is not clean, so the adapter reports that case as an error
 *   with a message saying so, like the Python adapters do.
 * - Everything else is ws' default (autoPong, closeTimeout 30 s, maxPayload
 *   100 MiB, UTF-8 validation on, followRedirects false).
 */

const crypto = require('node:crypto');
const { parseArgs } = require('node:util');
const WebSocket = require('ws');

const SAFETY_TIMEOUT_MS = 30000;
const HANDSHAKE_TIMEOUT_MS = 10000;
const UNSUPPORTED = 127;

let closed = false;

/** Print one event; nothing after the close event (the safety timeout may race a late close). */
function emit(event, fields, then) {
  if (closed) return;
  closed = event === 'close';
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`, then);
}

function finish(code, reason, wasClean) {
  emit('close', { code, reason, wasClean }, () => process.exit(0));
}

function main() {
  if (process.env.WSCONFORM_SCENARIO) {
    // No scenario (API-level calls, slow consumer) is implemented in this adapter.
    process.exit(UNSUPPORTED);
  }
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      url: { type: 'string' },
      protocols: { type: 'string', default: '' }
    },
    strict: true
  });
  if (!values.url) {
    process.stderr.write('node-ws client: --url is required\n');
    process.exit(2);
  }
  const protocols = values.protocols.split(',').filter((p) => p.length > 0);

  let sawError = false;
  let extensions = '';

  const safety = setTimeout(() => {
    emit('error', { message: `adapter safety timeout (${SAFETY_TIMEOUT_MS / 1000} s)` });
    finish(1006, '', false);
  }, SAFETY_TIMEOUT_MS);

  let ws;
  try {
    ws = new WebSocket(values.url, protocols.length > 0 ? protocols : undefined, {
      perMessageDeflate: false,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS
    });
  } catch (err) {
    // Invalid URL or protocol list: the constructor throws (a SyntaxError in browsers).
    emit('error', { message: `${err.name}: ${err.message}` });
    clearTimeout(safety);
    finish(1006, '', false);
    return;
  }

  ws.on('upgrade', (response) => {
    extensions = response.headers['sec-websocket-extensions'] || '';
  });
  ws.addEventListener('open', () => {
    emit('open', { protocol: ws.protocol, extensions });
  });
  ws.on('message', (data, isBinary) => {
    const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(data);
    emit('message', {
      type: isBinary ? 'binary' : 'text',
      size: bytes.length,
      sha256: crypto.createHash('sha256').update(bytes).digest('hex')
    });
    ws.send(bytes, { binary: isBinary });
  });
  ws.addEventListener('error', (event) => {
    sawError = true;
    emit('error', { message: event.message || String(event.error) });
  });
  ws.addEventListener('close', (event) => {
    clearTimeout(safety);
    if (!event.wasClean && !sawError) {
      emit('error', { message: `connection closed abnormally (code ${event.code}, no closing handshake)` });
    }
    finish(event.code, event.reason, event.wasClean);
  });
}

main();
