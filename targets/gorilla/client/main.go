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
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

const (
	safetyTimeout    = 30 * time.Second
	handshakeTimeout = 10 * time.Second
)

func emit(event string, fields map[string]interface{}) {
	out := map[string]interface{}{"event": event}
	for k, v := range fields {
		out[k] = v
	}
	line, err := json.Marshal(out)
	if err != nil {
		line = []byte(fmt.Sprintf(`{"event":"error","message":%q}`, err.Error()))
	}
	os.Stdout.Write(append(line, '\n'))
}

func failed(message string) {
	emit("error", map[string]interface{}{"message": message})
	emit("close", map[string]interface{}{"code": 1006, "reason": "", "wasClean": false})
}

func splitList(value string) []string {
	var out []string
	for _, p := range strings.Split(value, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

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

func main() {
	if os.Getenv("WSCONFORM_SCENARIO") != "" {
		os.Exit(127) // no scenario (API-level calls, slow consumer) is implemented in this adapter
	}
	url := flag.String("url", "", "ws:// URL to connect to")
	protocols := flag.String("protocols", "", "subprotocols to offer, comma separated")
	maxSize := flag.Int64("max-size", 64*1024*1024, "read limit (bytes per message)")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "--url is required")
		os.Exit(2)
	}
	run(*url, splitList(*protocols), *maxSize)
}
