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

func main() {
	if os.Getenv("WSCONFORM_SCENARIO") != "" {
		os.Exit(127) // no scenario (API-level calls, slow consumer) is implemented in this adapter
	}
	url := flag.String("url", "", "ws:// URL to connect to")
	protocols := flag.String("protocols", "", "subprotocols to offer, comma separated")
	maxSize := flag.Int64("max-size", 64*1024*1024, "read limit (bytes per message)")
	compression := flag.String("compression", "no-context-takeover",
		"permessage-deflate mode: disabled, no-context-takeover (library default), context-takeover")
	flag.Parse()
	mode, ok := compressionModes[*compression]
	if *url == "" || !ok {
		fmt.Fprintln(os.Stderr, "--url is required; --compression is disabled, no-context-takeover or context-takeover")
		os.Exit(2)
	}
	run(*url, splitList(*protocols), *maxSize, mode)
}
