'use strict';
/**
 * wsconform server target: the `ws` library for Node.js (WebSocketServer).
 *
 * Why this adapter is shaped the way it is:
 *
 * - `new WebSocketServer({host: '127.0.0.1', port})`: ws creates its own
 *   http.Server and answers every upgrade request on any path (no `path`
 *   option); plain HTTP requests get ws' own 426 answer.
 * - Echo: the `'message'` listener receives `(data, isBinary)` with the
 *   reassembled message as a Buffer; `send(data, {binary: isBinary})` sends
 *   the same bytes with the same opcode. Text is never decoded and
 *   re-encoded, so the echo is byte-exact.
 * - `handleProtocols` is given: ws' default picks the first protocol the
 *   client offers whatever the server supports. The harness contract is "the
 *   first protocol offered by the client that we support, else no
 *   Sec-WebSocket-Protocol header" (returning false omits the header; the
 *   handshake is never refused for that).
 * - `perMessageDeflate: true`: ws' default server settings (offer accepted
 *   when the client makes one, threshold 1024 bytes, context takeover on).
 *   ws' own default is off; the policy declares it on, as for the other
 *   targets.
 * - `maxPayload` comes from --max-size (ws' default is 100 MiB); ws applies it
 *   to frames and to reassembled messages (1009).
 * - An `'error'` listener on every connection: without one, a protocol error
 *   (which ws reports as an `'error'` event after it has already sent its
 *   Close frame) would be an uncaught exception that kills the process.
 * - No `wsClientError` listener: with one, ws would leave the answer to an
 *   invalid handshake to us; without it, ws answers itself (what we test).
 * - The close trigger (docs/adapter-protocol.md §2.3): the text message
 *   `wsconform:close <code> <reason>` is not echoed; `ws.close(code, reason)`
 *   closes the connection with that code and reason instead.
 * - Everything else is ws' default (autoPong, closeTimeout 30 s,
 *   maxFragments 16384, maxBufferedChunks, skipUTF8Validation false,
 *   allowSynchronousEvents): we test the library, not the adapter.
 *
 * It listens on 127.0.0.1 only, prints `ready` once listening, logs to
 * stderr, and on SIGTERM/SIGINT closes open connections with 1001, drops the
 * ones still open after 1 s, and exits with status 0.
 */

const { parseArgs } = require('node:util');
const { WebSocketServer } = require('ws');

const HOST = '127.0.0.1';
const SHUTDOWN_GRACE_MS = 1000;
const TRIGGER = 'wsconform:close ';

/**
 * [code, reason] of the close trigger, `wsconform:close <code> <reason>` (a text message; the
 * reason is the rest after one space, possibly empty); null for any other message.
 */
function closeTrigger(data, isBinary) {
  if (isBinary || data.length < TRIGGER.length || data.toString('latin1', 0, TRIGGER.length) !== TRIGGER) {
    return null;
  }
  const rest = data.toString('utf8', TRIGGER.length);
  const space = rest.indexOf(' ');
  const code = space < 0 ? rest : rest.slice(0, space);
  return /^[0-9]+$/.test(code) ? [Number(code), space < 0 ? '' : rest.slice(space + 1)] : null;
}

function log(message) {
  process.stderr.write(`${new Date().toISOString()} node-ws server: ${message}\n`);
}

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      subprotocols: { type: 'string', default: '' },
      'max-size': { type: 'string', default: '0' }
    },
    strict: true
  });
  const port = Number(values.port);
  const maxSize = Number(values['max-size']);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`--port must be a TCP port, got ${values.port}`);
  }
  if (!Number.isInteger(maxSize) || maxSize < 0) {
    throw new Error(`--max-size must be a byte count, got ${values['max-size']}`);
  }
  const supported = values.subprotocols
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  return { port, maxSize, supported };
}

/** First protocol in the *client's* order that we support; false: no header. */
function makeSelector(supported) {
  return (offered) => {
    for (const protocol of offered) {
      if (supported.includes(protocol)) return protocol;
    }
    return false;
  };
}

function main() {
  let options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    log(err.message);
    process.exit(2);
  }

  const serverOptions = {
    host: HOST,
    port: options.port,
    handleProtocols: makeSelector(options.supported),
    perMessageDeflate: true
  };
  // 0 (no policy): keep ws' default limit rather than "unlimited".
  if (options.maxSize > 0) serverOptions.maxPayload = options.maxSize;

  const wss = new WebSocketServer(serverOptions);

  wss.on('listening', () => {
    log(`listening on ${HOST}:${options.port}`);
    process.stdout.write('ready\n');
  });

  wss.on('error', (err) => {
    log(`server error: ${err.message}`);
    process.exit(1);
  });

  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      const trigger = closeTrigger(data, isBinary);
      if (trigger === null) {
        ws.send(data, { binary: isBinary });
        return;
      }
      try {
        ws.close(trigger[0], trigger[1]);
      } catch (err) {
        log(`close trigger refused by ws: ${err.message}`);
      }
    });
    ws.on('error', (err) => {
      // ws has already failed the connection (Close frame sent); just record why.
      log(`connection error: ${err.message}`);
    });
  });

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    log('shutting down');
    wss.close(() => process.exit(0)); // stop listening; called once every connection is gone
    for (const ws of wss.clients) ws.close(1001);
    setTimeout(() => {
      if (wss.clients.size) log(`${wss.clients.size} connection(s) still open; dropping them`);
      for (const ws of wss.clients) ws.terminate();
      process.exit(0);
    }, SHUTDOWN_GRACE_MS).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
