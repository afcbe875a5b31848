// Command client is the wsconform client adapter for github.com/gorilla/websocket.
//
// The harness runs the peer as a server and starts this program once per case. It connects to --url
// offering --protocols, echoes every message with the same type, lets the library finish the closing
// handshake, and reports what the library's API saw as JSON lines on stdout (docs/architecture.md):
// {"event":"open",...}, {"event":"message",...}, {"event":"error",...}, {"event":"close",...}.
//
// Why it is shaped this way:
//
//   - websocket.Dialer with the library defaults except Subprotocols and a 10 s HandshakeTimeout;
//     EnableCompression stays false (gorilla's permessage-deflate is not RFC 7692 negotiation).
//   - ReadMessage + WriteMessage: whole messages, same type, in order. Pings are answered and a
//     received close frame is echoed (with its code, without the reason) by gorilla's default
//     handlers, after which ReadMessage returns a *websocket.CloseError: that is a clean close, and
//     the code and reason the server sent are what the API reports. gorilla also turns a lost TCP
//     connection into a CloseError (code 1006), so the adapter wraps the close handler to know
//     whether a close frame really arrived.
//   - Any other ReadMessage error means the connection failed (protocol error: gorilla has already
//     sent close 1002 or 1009 and does not wait for the answer; TCP lost; deadline): an error event,
//     then close 1006 with wasClean false, as the WebSocket API reports a failed connection.
//   - A 30 s safety deadline covers the handshake, every read and every write.
//   - WSCONFORM_SCENARIO (API-level scenarios) is not implemented: exit 127 at once.
//
// The extended contract (docs/adapter-protocol.md; the library-independent half is wsconform.go):
//
//   - --persistent (or WSCONFORM_PERSISTENT=1): a case per JSON line on stdin, each on its own
//     connection, answered by its events and a done line (§1).
//   - Interop mode (WSCONFORM_INTEROP/WSCONFORM_PLAN, §2): the plan's messages are originated with
//     WriteMessage while a reader goroutine reads the echoes; the ping is WriteControl(PingMessage,
//     payload) and its pong awaited through the pong handler; the client's close is
//     WriteControl(CloseMessage, FormatCloseMessage(code, reason)) and the server's answer read as
//     any close. permessage-deflate (EnableCompression) is offered only when the plan asks: gorilla's
//     one offer is "permessage-deflate; server_no_context_takeover; client_no_context_takeover".
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

	"github.com/gorilla/websocket"
)

const (
	safetyTimeout    = 30 * time.Second
	handshakeTimeout = 10 * time.Second
)

func run(url string, protocols []string, maxSize int64) {
	deadline := time.Now().Add(safetyTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	dialer := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: handshakeTimeout}
	conn, resp, err := dialer.DialContext(ctx, url, nil)
	if err != nil {
		failed(fmt.Sprintf("dial: %v", err))
		return
	}
	defer conn.Close()
	extensions := ""
	if resp != nil {
		extensions = resp.Header.Get("Sec-WebSocket-Extensions")
	}
	emit("open", map[string]interface{}{"protocol": conn.Subprotocol(), "extensions": extensions})
	conn.SetReadLimit(maxSize)
	// gorilla reports a lost TCP connection as a *CloseError with code 1006 too, so "a close frame was
	// received" is recorded by wrapping the default close handler (which echoes the close frame).
	closeReceived := false
	echoClose := conn.CloseHandler()
	conn.SetCloseHandler(func(code int, text string) error {
		closeReceived = true
		return echoClose(code, text)
	})
	_ = conn.SetReadDeadline(deadline)
	_ = conn.SetWriteDeadline(deadline)
	for {
		kind, data, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && closeReceived {
				emit("close", map[string]interface{}{"code": ce.Code, "reason": ce.Text, "wasClean": true})
			} else {
				failed(err.Error())
			}
			return
		}
		name := "binary"
		if kind == websocket.TextMessage {
			name = "text"
		}
		sum := sha256.Sum256(data)
		emit("message", map[string]interface{}{"type": name, "size": len(data), "sha256": hex.EncodeToString(sum[:])})
		if err := conn.WriteMessage(kind, data); err != nil {
			failed(fmt.Sprintf("write: %v", err))
			return
		}
	}
}

// -- interop mode (docs/adapter-protocol.md §2) ----------------------------------------------------

// gorillaInterop is the gorilla connection as the interopConn that play drives.
type gorillaInterop struct {
	conn          *websocket.Conn
	deadline      time.Time
	closeReceived bool  // a close frame arrived (set by the close handler, in the reader goroutine)
	end           error // what ReadMessage ended with
	pong          chan struct{}
}

func (g *gorillaInterop) send(m plannedMessage) error {
	kind := websocket.BinaryMessage
	if m.Text {
		kind = websocket.TextMessage
	}
	return g.conn.WriteMessage(kind, m.Payload)
}

func (g *gorillaInterop) receive() (plannedMessage, bool) {
	kind, data, err := g.conn.ReadMessage()
	if err != nil {
		g.end = err
		return plannedMessage{}, false
	}
	return plannedMessage{Text: kind == websocket.TextMessage, Payload: data}, true
}

func (g *gorillaInterop) ping(payload []byte) error {
	if err := g.conn.WriteControl(websocket.PingMessage, payload, g.deadline); err != nil {
		return err
	}
	select {
	case <-g.pong:
	case <-time.After(pongTimeout):
		fmt.Fprintln(os.Stderr, "no pong within the timeout")
	}
	return nil
}

func (g *gorillaInterop) close(code int, reason string) error {
	return g.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), g.deadline)
}

func runInterop(url string, protocols []string, p *plan, maxSize int64) {
	deadline := time.Now().Add(p.budget(safetyTimeout))
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	dialer := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: handshakeTimeout, EnableCompression: p.Deflate}
	conn, resp, err := dialer.DialContext(ctx, url, nil)
	if err != nil {
		failed(fmt.Sprintf("dial: %v", err))
		return
	}
	defer conn.Close()
	extensions := ""
	if resp != nil {
		extensions = resp.Header.Get("Sec-WebSocket-Extensions")
	}
	emit("open", map[string]interface{}{"protocol": conn.Subprotocol(), "extensions": extensions})
	conn.SetReadLimit(maxSize)
	g := &gorillaInterop{conn: conn, deadline: deadline, pong: make(chan struct{}, 1)}
	echoClose := conn.CloseHandler()
	conn.SetCloseHandler(func(code int, text string) error {
		g.closeReceived = true
		return echoClose(code, text) // after our own close this write fails (ErrCloseSent): nothing is sent
	})
	conn.SetPongHandler(func(string) error {
		select {
		case g.pong <- struct{}{}:
		default:
		}
		return nil
	})
	_ = conn.SetReadDeadline(deadline)
	_ = conn.SetWriteDeadline(deadline)
	play(p, g)
	var ce *websocket.CloseError
	if errors.As(g.end, &ce) && g.closeReceived {
		emit("close", map[string]interface{}{"code": ce.Code, "reason": ce.Text, "wasClean": true})
	} else {
		failed(fmt.Sprint(g.end))
	}
}

// -- one case, either mode ----------------------------------------------------------------------------

func runRequest(r *caseRequest, maxSize int64) error {
	if r.Interop != nil {
		runInterop(r.URL, r.Protocols, r.Interop, maxSize)
		return nil
	}
	if r.Scenario != "" {
		return errUnsupported // no scenario (API-level calls, slow consumer) is implemented in this adapter
	}
	run(r.URL, r.Protocols, maxSize)
	return nil
}

func main() {
	url := flag.String("url", "", "ws:// URL to connect to")
	protocols := flag.String("protocols", "", "subprotocols to offer, comma separated")
	maxSize := flag.Int64("max-size", 64*1024*1024, "read limit (bytes per message)")
	persistent := flag.Bool("persistent", false, "cases as JSON lines on stdin (docs/adapter-protocol.md §1)")
	flag.Parse()
	run := func(r *caseRequest) error { return runRequest(r, *maxSize) }
	if persistentRequested(*persistent) {
		os.Exit(servePersistent(run))
	}
	os.Exit(runPerCase(run, *url, *protocols))
}
