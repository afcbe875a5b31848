// Command server is the wsconform server adapter for github.com/gorilla/websocket.
//
// Why it is shaped this way:
//
//   - Any path is upgraded with websocket.Upgrader.Upgrade; the handshake checks (method, Upgrade,
//     Connection, Sec-WebSocket-Version, Sec-WebSocket-Key) are the library's own, and the HTTP parsing
//     is Go's net/http server, which gorilla relies on.
//   - Subprotocols: gorilla picks in *server* preference order. The harness contract is "the first
//     protocol the client offered that we support", so the Upgrader of each request lists the
//     supported protocols in the client's order; the library still does the matching and the header.
//   - CheckOrigin accepts every Origin: gorilla's default answers 403 when the Origin host differs from
//     Host, and origin policy is not what a conformance run tests (tornado's adapter does the same).
//   - EnableCompression stays false (the default): gorilla's permessage-deflate ignores every offer
//     parameter (server_max_window_bits, client_max_window_bits, unknown ones) and always answers
//     "server_no_context_takeover; client_no_context_takeover", which is not RFC 7692 negotiation.
//     --compression turns it on for experiments only; target.yaml does not use it.
//   - --max-size is SetReadLimit: gorilla counts every frame of a message against it and sends close
//     1009 when it is exceeded.
//   - The echo is ReadMessage + WriteMessage with the same message type: whole messages, in order,
//     one at a time. Pings are answered and close frames echoed by gorilla's default handlers while
//     ReadMessage runs. Gorilla never closes the TCP connection itself, so the handler does it when
//     ReadMessage returns an error (close received, protocol error, read limit, EOF): the server
//     closes TCP first, as RFC 6455 §7.1.1 asks.
//   - The close trigger (docs/adapter-protocol.md §2.3): the text message "wsconform:close <code>
//     <reason>" is not echoed; WriteControl(CloseMessage, FormatCloseMessage(code, reason)) closes
//     with that code and reason instead, and the loop reads on until the client's answer.
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

	"github.com/gorilla/websocket"
)

const (
	shutdownGrace = time.Second
	triggerPrefix = "wsconform:close "
)

// closeTrigger parses "wsconform:close <code> <reason>" (the reason is the rest after one space,
// possibly empty); ok is false for any other message.
func closeTrigger(kind int, data []byte) (code int, reason string, ok bool) {
	if kind != websocket.TextMessage || !strings.HasPrefix(string(data), triggerPrefix) {
		return 0, "", false
	}
	digits, reason, _ := strings.Cut(string(data[len(triggerPrefix):]), " ")
	code, err := strconv.Atoi(digits)
	if err != nil || digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, "", false
	}
	return code, reason, true
}

type echoServer struct {
	supported   map[string]bool
	maxSize     int64
	compression bool

	mu   sync.Mutex
	live map[*websocket.Conn]struct{}
}

// clientOrder lists the protocols the client offered that we support, in the client's order, so that
// gorilla's server-order selection picks the client's first supported protocol.
func (s *echoServer) clientOrder(r *http.Request) []string {
	var out []string
	for _, p := range websocket.Subprotocols(r) {
		if s.supported[p] {
			out = append(out, p)
		}
	}
	return out
}

func (s *echoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	upgrader := websocket.Upgrader{
		Subprotocols:      s.clientOrder(r),
		CheckOrigin:       func(*http.Request) bool { return true },
		EnableCompression: s.compression,
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		log.Printf("handshake refused for %s %s: %v", r.Method, r.URL, err)
		return
	}
	s.track(conn, true)
	defer s.track(conn, false)
	defer conn.Close()
	conn.SetReadLimit(s.maxSize)
	for {
		kind, data, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				log.Printf("connection ended: %v", err)
			}
			return
		}
		if code, reason, ok := closeTrigger(kind, data); ok {
			msg := websocket.FormatCloseMessage(code, reason)
			if err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(shutdownGrace)); err != nil {
				log.Printf("close trigger: %v", err)
			}
			continue // ReadMessage returns the client's answer as a CloseError
		}
		if err := conn.WriteMessage(kind, data); err != nil {
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

// goAway sends close 1001 to every open connection; their handlers close TCP when the peer answers.
func (s *echoServer) goAway() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "")
	for conn := range s.live {
		_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(shutdownGrace))
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
	compression := flag.Bool("compression", false, "enable gorilla's permessage-deflate (experimental)")
	flag.Parse()
	log.SetOutput(os.Stderr)
	log.SetPrefix("gorilla-server ")
	if *port <= 0 {
		log.Fatal("--port is required")
	}

	srv := &echoServer{
		supported:   splitList(*subprotocols),
		maxSize:     *maxSize,
		compression: *compression,
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
