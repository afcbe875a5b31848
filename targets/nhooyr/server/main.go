// Command server is the wsconform server adapter for nhooyr.io/websocket.
//
// Why it is shaped this way:
//
//   - Any path is accepted with websocket.Accept; the handshake checks are the library's own and the
//     HTTP parsing is Go's net/http server, which nhooyr.io/websocket relies on.
//   - Subprotocols: the library picks in *server* preference order. The harness contract is "the first
//     protocol the client offered that we support", so the AcceptOptions of each request list the
//     supported protocols in the client's order; the library still does the matching and the header.
//   - InsecureSkipVerify accepts every Origin: the library's default answers 403 when the Origin host
//     differs from Host, and origin policy is not what a conformance run tests (tornado's adapter
//     does the same).
//   - --compression picks the CompressionMode; the library default is no-context-takeover
//     (permessage-deflate negotiated whenever the first permessage-deflate offer has only parameters
//     the library knows).
//   - --max-size is SetReadLimit (library default 32 KiB): the limit applies to the reassembled (and
//     decompressed) message, and the library closes with 1009 when it is exceeded.
//   - The echo is Read + Write with the same message type: whole messages, in order, one at a time.
//     Pings are answered and close frames echoed by the library while Read runs. The handler defers
//     c.Close(StatusInternalError, "") as the library's own examples and test echo loop do, so a
//     connection the library left open after an error is still closed.
//   - The close trigger (docs/adapter-protocol.md §2.3): the text message "wsconform:close <code>
//     <reason>" is not echoed; Close(code, reason) closes with that code and reason instead (the
//     library waits for the client's answer itself).
//
// It listens on 127.0.0.1 only, prints "ready" once listening, logs to stderr, and on SIGTERM/SIGINT
// sends close 1001 to open connections, gives them one second, and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"nhooyr.io/websocket"
)

const (
	shutdownGrace = time.Second
	triggerPrefix = "wsconform:close "
)

// closeTrigger parses "wsconform:close <code> <reason>" (the reason is the rest after one space,
// possibly empty); ok is false for any other message.
func closeTrigger(kind websocket.MessageType, data []byte) (code int, reason string, ok bool) {
	if kind != websocket.MessageText || !strings.HasPrefix(string(data), triggerPrefix) {
		return 0, "", false
	}
	digits, reason, _ := strings.Cut(string(data[len(triggerPrefix):]), " ")
	code, err := strconv.Atoi(digits)
	if err != nil || digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, "", false
	}
	return code, reason, true
}

var compressionModes = map[string]websocket.CompressionMode{
	"disabled":            websocket.CompressionDisabled,
	"no-context-takeover": websocket.CompressionNoContextTakeover,
	"context-takeover":    websocket.CompressionContextTakeover,
}

type echoServer struct {
	supported   map[string]bool
	maxSize     int64
	compression websocket.CompressionMode

	mu   sync.Mutex
	live map[*websocket.Conn]struct{}
}

// clientOrder lists the protocols the client offered that we support, in the client's order, so that
// the library's server-order selection picks the client's first supported protocol.
func (s *echoServer) clientOrder(r *http.Request) []string {
	var out []string
	for _, value := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(value, ",") {
			if p = strings.TrimSpace(p); s.supported[p] {
				out = append(out, p)
			}
		}
	}
	return out
}

func (s *echoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:       s.clientOrder(r),
		InsecureSkipVerify: true,
		CompressionMode:    s.compression,
	})
	if err != nil {
		log.Printf("handshake refused for %s %s: %v", r.Method, r.URL, err)
		return
	}
	s.track(conn, true)
	defer s.track(conn, false)
	defer conn.Close(websocket.StatusInternalError, "")
	conn.SetReadLimit(s.maxSize)
	ctx := context.Background()
	for {
		kind, data, err := conn.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == -1 {
				log.Printf("connection ended: %v", err)
			}
			return
		}
		if code, reason, ok := closeTrigger(kind, data); ok {
			if err := conn.Close(websocket.StatusCode(code), reason); err != nil {
				log.Printf("close trigger: %v", err)
			}
			return
		}
		if err := conn.Write(ctx, kind, data); err != nil {
			log.Printf("write failed: %v", err)
			return
		}
	}
}

func (s *echoServer) track(conn *websocket.Conn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		s.live[conn] = struct{}{}
	} else {
		delete(s.live, conn)
	}
}

// goAway starts the closing handshake (1001) on every open connection.
func (s *echoServer) goAway() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for conn := range s.live {
		go conn.Close(websocket.StatusGoingAway, "")
	}
	return len(s.live)
}

func (s *echoServer) open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

func splitList(value string) map[string]bool {
	out := map[string]bool{}
	for _, p := range strings.Split(value, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out[p] = true
		}
	}
	return out
}

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1")
	subprotocols := flag.String("subprotocols", "", "supported subprotocols, comma separated")
	maxSize := flag.Int64("max-size", 64*1024*1024, "read limit (bytes per message)")
	compression := flag.String("compression", "no-context-takeover",
		"permessage-deflate mode: disabled, no-context-takeover (library default), context-takeover")
	flag.Parse()
	log.SetOutput(os.Stderr)
	log.SetPrefix("nhooyr-server ")
	if *port <= 0 {
		log.Fatal("--port is required")
	}
	mode, ok := compressionModes[*compression]
	if !ok {
		log.Fatalf("unknown --compression %q", *compression)
	}

	srv := &echoServer{
		supported:   splitList(*subprotocols),
		maxSize:     *maxSize,
		compression: mode,
		live:        map[*websocket.Conn]struct{}{},
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	httpServer := &http.Server{Handler: srv, ErrorLog: log.Default()}
	go func() {
		if err := httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("serve: %v", err)
		}
	}()
	log.Printf("listening on %s", ln.Addr())
	fmt.Println("ready")

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	log.Printf("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	_ = httpServer.Shutdown(ctx) // stops listening; hijacked WebSocket connections are ours to close
	if n := srv.goAway(); n > 0 {
		deadline := time.Now().Add(shutdownGrace)
		for srv.open() > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if left := srv.open(); left > 0 {
			log.Printf("%d connection(s) still open after %v; dropping them", left, shutdownGrace)
		}
	}
}
