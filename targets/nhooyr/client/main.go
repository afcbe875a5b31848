// Command client is the wsconform client adapter for nhooyr.io/websocket.
//
// The harness runs the peer as a server and starts this program once per case. It connects to --url
// offering --protocols, echoes every message with the same type, lets the library finish the closing
// handshake, and reports what the library's API saw as JSON lines on stdout (docs/architecture.md):
// {"event":"open",...}, {"event":"message",...}, {"event":"error",...}, {"event":"close",...}.
//
// Why it is shaped this way:
//
//   - websocket.Dial with the library defaults except Subprotocols and --compression (the
//     CompressionMode; the library default no-context-takeover offers permessage-deflate).
//   - Read + Write: whole messages, same type, in order. Pings are answered and a received close frame
//     is echoed (same code and reason) by the library inside Read, which then returns an error
//     wrapping the received websocket.CloseError: that is a clean close, and its code and reason are
//     what the API reports (websocket.CloseStatus gives -1 for every other error).
//   - Any other Read error means the connection failed (protocol error: the library has already sent
//     its close frame and closed TCP; TCP lost; deadline): an error event, then close 1006 with
//     wasClean false, as the WebSocket API reports a failed connection.
//   - A 30 s safety deadline (a context) covers the handshake, every read and every write.
//   - WSCONFORM_SCENARIO (API-level scenarios) is not implemented: exit 127 at once.
//
// The extended contract (docs/adapter-protocol.md; the library-independent half is wsconform.go):
//
//   - --persistent (or WSCONFORM_PERSISTENT=1): a case per JSON line on stdin, each on its own
//     connection, answered by its events and a done line (§1).
//   - Interop mode (WSCONFORM_INTEROP/WSCONFORM_PLAN, §2): the plan's messages are originated with
//     Write while a reader goroutine Reads the echoes; the client's close is Close(code, reason),
//     which waits for the server's answer itself. permessage-deflate is offered only when the plan
//     asks (CompressionDisabled otherwise): "permessage-deflate" alone for an offer without
//     parameters (CompressionContextTakeover), else the library's no-context-takeover offer. A plan
//     with a ping exits 127: Ping(ctx) sends a payload of its own (a counter), never the plan's.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"nhooyr.io/websocket"
)

const (
	safetyTimeout    = 30 * time.Second
	handshakeTimeout = 10 * time.Second
)

var compressionModes = map[string]websocket.CompressionMode{
	"disabled":            websocket.CompressionDisabled,
	"no-context-takeover": websocket.CompressionNoContextTakeover,
	"context-takeover":    websocket.CompressionContextTakeover,
}

func run(url string, protocols []string, maxSize int64, mode websocket.CompressionMode) {
	ctx, cancel := context.WithTimeout(context.Background(), safetyTimeout)
	defer cancel()
	dialCtx, dialCancel := context.WithTimeout(ctx, handshakeTimeout)
	defer dialCancel()
	conn, resp, err := websocket.Dial(dialCtx, url, &websocket.DialOptions{
		Subprotocols:    protocols,
		CompressionMode: mode,
	})
	if err != nil {
		failed(fmt.Sprintf("dial: %v", err))
		return
	}
	defer conn.Close(websocket.StatusInternalError, "")
	extensions := ""
	if resp != nil {
		extensions = resp.Header.Get("Sec-WebSocket-Extensions")
	}
	emit("open", map[string]interface{}{"protocol": conn.Subprotocol(), "extensions": extensions})
	conn.SetReadLimit(maxSize)
	for {
		kind, data, err := conn.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				emit("close", map[string]interface{}{"code": int(ce.Code), "reason": ce.Reason, "wasClean": true})
			} else {
				failed(err.Error())
			}
			return
		}
		name := "binary"
		if kind == websocket.MessageText {
			name = "text"
		}
		sum := sha256.Sum256(data)
		emit("message", map[string]interface{}{"type": name, "size": len(data), "sha256": hex.EncodeToString(sum[:])})
		if err := conn.Write(ctx, kind, data); err != nil {
			failed(fmt.Sprintf("write: %v", err))
			return
		}
	}
}

// -- interop mode (docs/adapter-protocol.md §2) ----------------------------------------------------

// nhooyrInterop is the nhooyr connection as the interopConn that play drives.
type nhooyrInterop struct {
	ctx  context.Context
	conn *websocket.Conn
	end  error // what Read ended with
}

func (n *nhooyrInterop) send(m plannedMessage) error {
	kind := websocket.MessageBinary
	if m.Text {
		kind = websocket.MessageText
	}
	return n.conn.Write(n.ctx, kind, m.Payload)
}

func (n *nhooyrInterop) receive() (plannedMessage, bool) {
	kind, data, err := n.conn.Read(n.ctx)
	if err != nil {
		n.end = err
		return plannedMessage{}, false
	}
	return plannedMessage{Text: kind == websocket.MessageText, Payload: data}, true
}

func (n *nhooyrInterop) ping([]byte) error { return errUnsupported } // refused before dialing

func (n *nhooyrInterop) close(code int, reason string) error {
	return n.conn.Close(websocket.StatusCode(code), reason)
}

// interopCompression is the offer the plan asks for (none unless it has permessage_deflate).
func interopCompression(p *plan) websocket.CompressionMode {
	if !p.Deflate {
		return websocket.CompressionDisabled
	}
	if params := p.offerParameters(); params != nil && len(params) == 0 {
		return websocket.CompressionContextTakeover // offers exactly "permessage-deflate"
	}
	return websocket.CompressionNoContextTakeover
}

func runInterop(url string, protocols []string, p *plan, maxSize int64) error {
	if p.Ping != nil {
		return fmt.Errorf("ping: nhooyr's Ping(ctx) cannot send a chosen payload: %w", errUnsupported)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.budget(safetyTimeout))
	defer cancel()
	dialCtx, dialCancel := context.WithTimeout(ctx, handshakeTimeout)
	defer dialCancel()
	conn, resp, err := websocket.Dial(dialCtx, url, &websocket.DialOptions{
		Subprotocols:    protocols,
		CompressionMode: interopCompression(p),
	})
	if err != nil {
		failed(fmt.Sprintf("dial: %v", err))
		return nil
	}
	defer conn.Close(websocket.StatusInternalError, "")
	extensions := ""
	if resp != nil {
		extensions = resp.Header.Get("Sec-WebSocket-Extensions")
	}
	emit("open", map[string]interface{}{"protocol": conn.Subprotocol(), "extensions": extensions})
	conn.SetReadLimit(maxSize)
	n := &nhooyrInterop{ctx: ctx, conn: conn}
	play(p, n)
	// The Close frame the server sent, or (after our own Close, when the library read the answer
	// itself) the one we sent, which the server echoed: either way the closing handshake completed.
	var ce websocket.CloseError
	if errors.As(n.end, &ce) {
		emit("close", map[string]interface{}{"code": int(ce.Code), "reason": ce.Reason, "wasClean": true})
	} else {
		failed(fmt.Sprint(n.end))
	}
	return nil
}

// -- one case, either mode ----------------------------------------------------------------------------

func runRequest(r *caseRequest, maxSize int64, mode websocket.CompressionMode) error {
	if r.Interop != nil {
		return runInterop(r.URL, r.Protocols, r.Interop, maxSize)
	}
	if r.Scenario != "" {
		return errUnsupported // no scenario (API-level calls, slow consumer) is implemented in this adapter
	}
	run(r.URL, r.Protocols, maxSize, mode)
	return nil
}

func main() {
	url := flag.String("url", "", "ws:// URL to connect to")
	protocols := flag.String("protocols", "", "subprotocols to offer, comma separated")
	maxSize := flag.Int64("max-size", 64*1024*1024, "read limit (bytes per message)")
	compression := flag.String("compression", "no-context-takeover",
		"permessage-deflate mode: disabled, no-context-takeover (library default), context-takeover")
	persistent := flag.Bool("persistent", false, "cases as JSON lines on stdin (docs/adapter-protocol.md §1)")
	flag.Parse()
	mode, ok := compressionModes[*compression]
	if !ok {
		fmt.Fprintln(os.Stderr, "--compression is disabled, no-context-takeover or context-takeover")
		os.Exit(2)
	}
	run := func(r *caseRequest) error { return runRequest(r, *maxSize, mode) }
	if persistentRequested(*persistent) {
		os.Exit(servePersistent(run))
	}
	os.Exit(runPerCase(run, *url, *protocols))
}
