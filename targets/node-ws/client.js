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
 *
 * The extended contract (docs/adapter-protocol.md):
 *
 * - `--persistent` (or WSCONFORM_PERSISTENT=1): one process, one case per
 *   JSON line on stdin, each with its own WebSocket, its events, then
 *   `{"event":"done","case":...,"exit":N}`; EOF on stdin ends the process (§1).
 * - Interop mode (WSCONFORM_INTEROP / WSCONFORM_PLAN, or the line's
 *   `interop`, §2): the adapter originates the plan's messages instead of
 *   echoing: payloads built from the plan's unit and checked against its
 *   sha256, sent in order (`send` awaited), paced by echo or in a burst,
 *   `ws.ping(payload)` after the last echo (its pong awaited), then
 *   `ws.close(code, reason)` or the server's close trigger
 *   (`wsconform:close C R`). A slow reader (`read_delay_ms`) handles one
 *   message per delay and pauses the socket (`ws.pause()`) while messages
 *   wait. permessage-deflate is offered only when the plan asks, with the
 *   offer's parameters mapped onto ws' options (ws' default offer otherwise).
 */

const crypto = require('node:crypto');
const readline = require('node:readline');
const { parseArgs } = require('node:util');
const WebSocket = require('ws');

const SAFETY_TIMEOUT_MS = 30000;
const HANDSHAKE_TIMEOUT_MS = 10000;
const PONG_TIMEOUT_MS = 5000;
const UNSUPPORTED = 127;
const TRIGGER = 'wsconform:close';
const PAUSE_AT = 16; // messages waiting for a slow reader before the socket is paused

/** One case's event lines: nothing after the close event (a safety timeout may race a late close). */
class Events {
  constructor() {
    this.closed = false;
  }

  emit(event, fields, then) {
    if (this.closed) {
      if (then) then();
      return;
    }
    this.closed = event === 'close';
    process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`, then);
  }
}

function sha256(bytes) {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

function toBuffer(data) {
  return Buffer.isBuffer(data) ? data : Buffer.concat(data);
}

/** The conformance echo client: one case, resolved with its exit status once `close` is out. */
function runEcho(request) {
  return new Promise((resolve) => {
    const events = new Events();
    if (request.scenario) {
      // No scenario (API-level calls, slow consumer) is implemented in this adapter.
      resolve(UNSUPPORTED);
      return;
    }
    const finish = (code, reason, wasClean) => events.emit('close', { code, reason, wasClean }, () => resolve(0));
    const protocols = request.protocols;
    let sawError = false;
    let extensions = '';

    let ws;
    const safety = setTimeout(() => {
      events.emit('error', { message: `adapter safety timeout (${SAFETY_TIMEOUT_MS / 1000} s)` });
      finish(1006, '', false);
      if (ws) ws.terminate();
    }, SAFETY_TIMEOUT_MS);

    try {
      ws = new WebSocket(request.url, protocols.length > 0 ? protocols : undefined, {
        perMessageDeflate: false,
        handshakeTimeout: HANDSHAKE_TIMEOUT_MS
      });
    } catch (err) {
      // Invalid URL or protocol list: the constructor throws (a SyntaxError in browsers).
      events.emit('error', { message: `${err.name}: ${err.message}` });
      clearTimeout(safety);
      finish(1006, '', false);
      return;
    }

    ws.on('upgrade', (response) => {
      extensions = response.headers['sec-websocket-extensions'] || '';
    });
    ws.addEventListener('open', () => {
      events.emit('open', { protocol: ws.protocol, extensions });
    });
    ws.on('message', (data, isBinary) => {
      const bytes = toBuffer(data);
      events.emit('message', { type: isBinary ? 'binary' : 'text', size: bytes.length, sha256: sha256(bytes) });
      ws.send(bytes, { binary: isBinary });
    });
    ws.addEventListener('error', (event) => {
      sawError = true;
      events.emit('error', { message: event.message || String(event.error) });
    });
    ws.addEventListener('close', (event) => {
      clearTimeout(safety);
      if (!event.wasClean && !sawError) {
        events.emit('error', { message: `connection closed abnormally (code ${event.code}, no closing handshake)` });
      }
      finish(event.code, event.reason, event.wasClean);
    });
  });
}

// -- interop mode (docs/adapter-protocol.md §2) ---------------------------------------------------

class PlanError extends Error {}

/** `unit` (UTF-8) or `unit_hex` repeated and cut to `size` bytes, checked against `sha256`. */
function buildPayload(spec) {
  const size = Number(spec.size || 0);
  const unit = spec.unit_hex !== undefined ? Buffer.from(String(spec.unit_hex), 'hex') : Buffer.from(String(spec.unit ?? ''), 'utf8');
  if (size < 0 || (size > 0 && unit.length === 0)) throw new PlanError(`cannot build ${size} bytes from an empty unit`);
  const payload = Buffer.alloc(size);
  for (let at = 0; at < size; at += unit.length) unit.copy(payload, at, 0, Math.min(unit.length, size - at));
  if (spec.sha256 && sha256(payload) !== String(spec.sha256).toLowerCase()) {
    throw new PlanError(`the payload built for ${JSON.stringify(spec)} does not hash to the plan's sha256`);
  }
  if (spec.type === 'text' && Buffer.from(payload.toString('utf8'), 'utf8').compare(payload) !== 0) {
    throw new PlanError('a text payload that is not UTF-8 (a cut character?)');
  }
  return payload;
}

function parsePlan(raw) {
  if (!raw || !Array.isArray(raw.messages)) throw new PlanError("a plan is an object with a 'messages' list");
  const messages = raw.messages.map((spec) => {
    if (spec.type !== 'text' && spec.type !== 'binary') throw new PlanError(`message type ${spec.type}`);
    return { binary: spec.type === 'binary', payload: buildPayload(spec) };
  });
  const pace = raw.pace ?? 'echo';
  if (pace !== 'echo' && pace !== 'burst') throw new PlanError(`pace ${pace}`);
  const close = raw.close ?? {};
  const by = close.by ?? 'client';
  if (by !== 'client' && by !== 'server') throw new PlanError(`close.by ${by}`);
  let ping = null;
  if (raw.ping) ping = raw.ping.payload_hex !== undefined ? Buffer.from(raw.ping.payload_hex, 'hex') : Buffer.from(String(raw.ping.payload ?? ''), 'utf8');
  return {
    messages,
    repeat: Number(raw.repeat ?? 1),
    pace,
    protocols: raw.protocols ?? null,
    deflate: raw.permessage_deflate !== undefined && raw.permessage_deflate !== null,
    offer: raw.permessage_deflate?.offer ?? null,
    ping,
    readDelayMs: Number(raw.read_delay_ms ?? 0),
    close: { by, code: Number(close.code ?? 1000), reason: String(close.reason ?? '') }
  };
}

/** ws' perMessageDeflate option for the plan: false (no offer) unless asked; the offer's parameters
 * where ws has a setting for each, else ws' default offer (`true`). */
function deflateOption(plan) {
  if (!plan.deflate) return false;
  if (!plan.offer) return true;
  const [name, ...params] = plan.offer.split(';').map((p) => p.trim()).filter((p) => p);
  if (name !== 'permessage-deflate') return true;
  const option = { clientMaxWindowBits: false };
  for (const param of params) {
    const [key, value] = param.split('=').map((p) => p.trim().replace(/^"|"$/g, ''));
    if (key === 'server_no_context_takeover') option.serverNoContextTakeover = true;
    else if (key === 'client_no_context_takeover') option.clientNoContextTakeover = true;
    else if (key === 'server_max_window_bits' && value) option.serverMaxWindowBits = Number(value);
    else if (key === 'client_max_window_bits') option.clientMaxWindowBits = value ? Number(value) : true;
    else return true;
  }
  return option;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One interop case: resolved with its exit status once `close` is out. */
function runInterop(request, plan) {
  return new Promise((resolve) => {
    const events = new Events();
    const total = plan.messages.length * plan.repeat;
    const budget = SAFETY_TIMEOUT_MS + plan.readDelayMs * total;
    let received = 0;
    let ended = false;
    let waiter = null; // resolves when `received` or `ended` changes
    const changed = () => {
      if (waiter) {
        const w = waiter;
        waiter = null;
        w();
      }
    };
    const echoes = async (count) => {
      while (received < count && !ended) await new Promise((r) => { waiter = r; });
      return received >= count;
    };
    let sawError = false;
    let extensions = '';
    let handling = Promise.resolve();
    let waiting = 0;

    const finish = (code, reason, wasClean) => events.emit('close', { code, reason, wasClean }, () => resolve(0));
    const ws = new WebSocket(request.url, request.protocols.length > 0 ? request.protocols : undefined, {
      perMessageDeflate: deflateOption(plan),
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS
    });
    const safety = setTimeout(() => {
      events.emit('error', { message: `adapter safety timeout (${budget / 1000} s)` });
      finish(1006, '', false);
      ws.terminate();
    }, budget);

    const send = (message) => new Promise((ok, fail) => {
      if (ws.readyState !== WebSocket.OPEN) fail(new Error('connection ended'));
      else ws.send(message.payload, { binary: message.binary }, (err) => (err ? fail(err) : ok()));
    });
    const originate = async () => {
      let sent = 0;
      for (let round = 0; round < plan.repeat; round++) {
        for (const message of plan.messages) {
          await send(message);
          sent += 1;
          if (plan.pace === 'echo' && !(await echoes(sent))) return;
        }
      }
      if (!(await echoes(sent))) return;
      if (plan.ping) {
        const pong = new Promise((r) => { ws.once('pong', r); setTimeout(r, PONG_TIMEOUT_MS); });
        ws.ping(plan.ping);
        await pong;
      }
      if (plan.close.by === 'server') {
        await send({ binary: false, payload: Buffer.from(`${TRIGGER} ${plan.close.code} ${plan.close.reason}`, 'utf8') });
      } else {
        ws.close(plan.close.code, plan.close.reason);
      }
    };

    ws.on('upgrade', (response) => {
      extensions = response.headers['sec-websocket-extensions'] || '';
    });
    ws.addEventListener('open', () => {
      events.emit('open', { protocol: ws.protocol, extensions });
      originate().catch(() => {}); // a send on a closed connection: the close event reports the end
    });
    ws.on('message', (data, isBinary) => {
      const bytes = toBuffer(data);
      waiting += 1;
      if (plan.readDelayMs && waiting >= PAUSE_AT) ws.pause(); // a slow reader stops reading the socket
      handling = handling.then(async () => {
        if (plan.readDelayMs) await sleep(plan.readDelayMs);
        events.emit('message', { type: isBinary ? 'binary' : 'text', size: bytes.length, sha256: sha256(bytes) });
        waiting -= 1;
        if (ws.isPaused && waiting < PAUSE_AT / 2) ws.resume();
        received += 1;
        changed();
      });
    });
    ws.addEventListener('error', (event) => {
      sawError = true;
      events.emit('error', { message: event.message || String(event.error) });
    });
    ws.addEventListener('close', (event) => {
      clearTimeout(safety);
      handling.then(() => {
        ended = true;
        changed();
        if (!event.wasClean && !sawError) {
          events.emit('error', { message: `connection closed abnormally (code ${event.code}, no closing handshake)` });
        }
        finish(event.code, event.reason, event.wasClean);
      });
    });
  });
}

// -- one case, either mode ------------------------------------------------------------------------

function splitProtocols(value) {
  const list = Array.isArray(value) ? value : String(value ?? '').split(',');
  return list.map((p) => String(p).trim()).filter((p) => p.length > 0);
}

/** A case: {url, protocols, scenario, delayMs, plan (the parsed interop plan) | null}. Its exit status. */
function runCase(request) {
  return request.plan ? runInterop(request, request.plan) : runEcho(request);
}

/** The interop block of a case ({scenario, plan} or null), parsed: throws PlanError for a bad plan. */
function withPlan(request, interop) {
  request.plan = interop ? parsePlan(interop.plan) : null;
  if (request.plan && request.plan.protocols) request.protocols = splitProtocols(request.plan.protocols);
  return request;
}

function requestFromEnv(values) {
  const interop = process.env.WSCONFORM_INTEROP || process.env.WSCONFORM_PLAN
    ? { scenario: process.env.WSCONFORM_INTEROP || '', plan: JSON.parse(process.env.WSCONFORM_PLAN || '{}') }
    : null;
  return withPlan({
    case: values.url.split('/').pop(),
    url: values.url,
    protocols: splitProtocols(values.protocols),
    scenario: process.env.WSCONFORM_SCENARIO || null,
    delayMs: Number(process.env.WSCONFORM_DELAY_MS || 0)
  }, interop);
}

function requestFromLine(line) {
  const raw = JSON.parse(line);
  if (!raw || typeof raw.url !== 'string') throw new Error("a case line is a JSON object with a 'url'");
  return withPlan({
    case: String(raw.case || raw.url.split('/').pop()),
    url: raw.url,
    protocols: splitProtocols(raw.protocols),
    scenario: raw.scenario || null,
    delayMs: Number(raw.delay_ms || 0)
  }, raw.interop || null);
}

/** Persistent mode (§1): a case per stdin line, answered by its events and one `done` line. */
async function servePersistent() {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let request;
    try {
      request = requestFromLine(line);
    } catch (err) {
      process.stderr.write(`not a case line (${err.message}): ${line.slice(0, 200)}\n`);
      process.stdout.write('', () => process.exit(2));
      return;
    }
    let code;
    try {
      code = await runCase(request);
    } catch (err) {
      process.stderr.write(`${err.stack || err}\n`);
      code = 1; // as a per-case process that crashed
    }
    await new Promise((r) => process.stdout.write(`${JSON.stringify({ event: 'done', case: request.case, exit: code })}\n`, r));
  }
  process.stdout.write('', () => process.exit(0));
}

function main() {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      url: { type: 'string' },
      protocols: { type: 'string', default: '' },
      persistent: { type: 'boolean', default: false }
    },
    strict: true
  });
  if (values.persistent || process.env.WSCONFORM_PERSISTENT === '1') {
    servePersistent();
    return;
  }
  if (!values.url) {
    process.stderr.write('node-ws client: --url is required\n');
    process.exit(2);
  }
  let request;
  try {
    request = requestFromEnv(values);
  } catch (err) {
    process.stderr.write(`invalid WSCONFORM_PLAN: ${err.message}\n`);
    process.exit(2);
  }
  runCase(request).then(
    (code) => process.stdout.write('', () => process.exit(code)),
    (err) => {
      process.stderr.write(`${err.stack || err}\n`);
      process.exit(1);
    }
  );
}

main();
