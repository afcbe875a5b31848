// The half of the client adapter contract that does not depend on the library under test, shared by
// the Go client adapters (gorilla, nhooyr): each client folder links this file (a symbolic link to
// targets/_go/, so a container build, which copies only the target folder, still gets it) and
// compiles it into its own package main.
//
// It holds what docs/targets.md and docs/adapter-protocol.md say about the process rather than about
// WebSockets: the JSON event lines on stdout (nothing after close), what a case asks for (argv and
// the environment per case, or one stdin line in persistent mode), the persistent loop with its done
// lines, the interop plan (payloads built from the unit, checked against sha256) and the driver that
// plays a plan over a library connection: messages in order, paced by echo or in a burst while a
// reader collects the echoes, a slow reader, a ping, then the client's close or the server's close
// trigger.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

const (
	exitUnsupported = 127
	triggerPrefix   = "wsconform:close"
	pongTimeout     = 5 * time.Second
	caseLineLimit   = 64 << 20
)

// errUnsupported: the case asks for what the library's API cannot do (exit 127, UNIMPLEMENTED).
var errUnsupported = errors.New("unsupported by this adapter")

// -- events -------------------------------------------------------------------------------------------

var events struct {
	sync.Mutex
	closed bool
}

func writeLine(obj map[string]interface{}) {
	line, err := json.Marshal(obj)
	if err != nil {
		line = []byte(fmt.Sprintf(`{"event":"error","message":%q}`, err.Error()))
	}
	os.Stdout.Write(append(line, '\n'))
}

// emit prints one event of the case in flight; nothing after its close event.
func emit(event string, fields map[string]interface{}) {
	events.Lock()
	defer events.Unlock()
	if events.closed {
		return
	}
	events.closed = event == "close"
	out := map[string]interface{}{"event": event}
	for k, v := range fields {
		out[k] = v
	}
	writeLine(out)
}

func failed(message string) {
	emit("error", map[string]interface{}{"message": message})
	emit("close", map[string]interface{}{"code": 1006, "reason": "", "wasClean": false})
}

func emitMessage(text bool, data []byte) {
	kind := "binary"
	if text {
		kind = "text"
	}
	sum := sha256.Sum256(data)
	emit("message", map[string]interface{}{"type": kind, "size": len(data), "sha256": hex.EncodeToString(sum[:])})
}

// -- what a case asks for -----------------------------------------------------------------------------

// caseRequest is one case: where to connect, what to offer, and the scenario or interop plan.
type caseRequest struct {
	Case      string
	URL       string
	Protocols []string
	Scenario  string
	DelayMs   int
	Interop   *plan
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

func requestFromEnv(url, protocols string) (*caseRequest, error) {
	r := &caseRequest{Case: url[strings.LastIndex(url, "/")+1:], URL: url, Protocols: splitList(protocols),
		Scenario: os.Getenv("WSCONFORM_SCENARIO")}
	fmt.Sscan(os.Getenv("WSCONFORM_DELAY_MS"), &r.DelayMs)
	if os.Getenv("WSCONFORM_INTEROP") != "" || os.Getenv("WSCONFORM_PLAN") != "" {
		p, err := parsePlan(os.Getenv("WSCONFORM_INTEROP"), []byte(os.Getenv("WSCONFORM_PLAN")))
		if err != nil {
			return nil, err
		}
		r.Interop = p
		if p.Protocols != nil {
			r.Protocols = p.Protocols
		}
	}
	return r, nil
}

func requestFromLine(line []byte) (*caseRequest, error) {
	var raw struct {
		Case      string   `json:"case"`
		URL       string   `json:"url"`
		Protocols []string `json:"protocols"`
		Scenario  *string  `json:"scenario"`
		DelayMs   int      `json:"delay_ms"`
		Interop   *struct {
			Scenario string          `json:"scenario"`
			Plan     json.RawMessage `json:"plan"`
		} `json:"interop"`
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return nil, err
	}
	if raw.URL == "" {
		return nil, errors.New("a case line is a JSON object with a 'url'")
	}
	r := &caseRequest{Case: raw.Case, URL: raw.URL, DelayMs: raw.DelayMs}
	if r.Case == "" {
		r.Case = raw.URL[strings.LastIndex(raw.URL, "/")+1:]
	}
	for _, p := range raw.Protocols {
		if p = strings.TrimSpace(p); p != "" {
			r.Protocols = append(r.Protocols, p)
		}
	}
	if raw.Scenario != nil {
		r.Scenario = *raw.Scenario
	}
	if raw.Interop != nil {
		p, err := parsePlan(raw.Interop.Scenario, raw.Interop.Plan)
		if err != nil {
			return nil, err
		}
		r.Interop = p
		if p.Protocols != nil {
			r.Protocols = p.Protocols
		}
	}
	return r, nil
}

// -- the two modes ------------------------------------------------------------------------------------

// runner runs one case; errUnsupported means exit 127.
type runner func(*caseRequest) error

func runOne(run runner, r *caseRequest) int {
	events.Lock()
	events.closed = false
	events.Unlock()
	if err := run(r); err != nil {
		fmt.Fprintf(os.Stderr, "unsupported: %v\n", err)
		return exitUnsupported
	}
	return 0
}

// runPerCase is per-case mode: the case of argv and the environment; its exit status.
func runPerCase(run runner, url, protocols string) int {
	if url == "" {
		fmt.Fprintln(os.Stderr, "--url is required (or --persistent)")
		return 2
	}
	r, err := requestFromEnv(url, protocols)
	if err != nil {
		fmt.Fprintf(os.Stderr, "invalid WSCONFORM_PLAN: %v\n", err)
		return 2
	}
	return runOne(run, r)
}

// persistentRequested: --persistent in argv, or WSCONFORM_PERSISTENT=1 (what the harness sets).
func persistentRequested(flag bool) bool {
	return flag || os.Getenv("WSCONFORM_PERSISTENT") == "1"
}

// servePersistent is persistent mode (docs/adapter-protocol.md §1): a case per stdin line, its events,
// then one done line; EOF ends it with 0, a line that is not a case with 2.
func servePersistent(run runner) int {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), caseLineLimit)
	for in.Scan() {
		line := bytes.TrimSpace(in.Bytes())
		if len(line) == 0 {
			continue
		}
		r, err := requestFromLine(line)
		if err != nil {
			fmt.Fprintf(os.Stderr, "not a case line (%v): %.200q\n", err, line)
			return 2
		}
		code := runOne(run, r)
		events.Lock()
		events.closed = true // nothing of this case may print into the next one
		writeLine(map[string]interface{}{"event": "done", "case": r.Case, "exit": code})
		events.Unlock()
	}
	return 0
}

// -- interop plans (docs/adapter-protocol.md §2.1) -----------------------------------------------------

type plannedMessage struct {
	Text    bool
	Payload []byte
}

type plan struct {
	Scenario  string
	Messages  []plannedMessage
	Repeat    int
	Burst     bool
	Protocols []string // nil: the plan does not say
	Deflate   bool
	Offer     string
	Ping      []byte // nil: no ping
	ReadDelay time.Duration
	CloseBy   string
	CloseCode int
	Reason    string
}

func (p *plan) total() int { return len(p.Messages) * p.Repeat }

// budget is how long the whole scenario may take: base plus the reader's prescribed sleeps.
func (p *plan) budget(base time.Duration) time.Duration {
	return base + p.ReadDelay*time.Duration(p.total())
}

// offerParameters: the exact offer's parameters (value "" for a value-less one); nil without one.
func (p *plan) offerParameters() map[string]string {
	if p.Offer == "" {
		return nil
	}
	parts := strings.Split(p.Offer, ";")
	out := map[string]string{}
	for _, part := range parts[1:] {
		if part = strings.TrimSpace(part); part != "" {
			k, v, _ := strings.Cut(part, "=")
			out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return out
}

func buildPayload(size int, unit []byte, digest string) ([]byte, error) {
	if size < 0 || (size > 0 && len(unit) == 0) {
		return nil, fmt.Errorf("cannot build %d bytes from an empty unit", size)
	}
	out := make([]byte, 0, size)
	for len(out) < size {
		out = append(out, unit[:min(len(unit), size-len(out))]...)
	}
	if digest != "" {
		sum := sha256.Sum256(out)
		if hex.EncodeToString(sum[:]) != strings.ToLower(digest) {
			return nil, fmt.Errorf("the payload built (%d bytes) does not hash to the plan's sha256", size)
		}
	}
	return out, nil
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func parsePlan(scenario string, data []byte) (*plan, error) {
	var raw struct {
		Protocols []string `json:"protocols"`
		Deflate   *struct {
			Offer string `json:"offer"`
		} `json:"permessage_deflate"`
		Messages []struct {
			Type    string  `json:"type"`
			Size    int     `json:"size"`
			Unit    *string `json:"unit"`
			UnitHex *string `json:"unit_hex"`
			Sha256  string  `json:"sha256"`
		} `json:"messages"`
		Repeat *int   `json:"repeat"`
		Pace   string `json:"pace"`
		Ping   *struct {
			Payload    string  `json:"payload"`
			PayloadHex *string `json:"payload_hex"`
		} `json:"ping"`
		ReadDelayMs int `json:"read_delay_ms"`
		Close       *struct {
			By     string `json:"by"`
			Code   *int   `json:"code"`
			Reason string `json:"reason"`
		} `json:"close"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	if raw.Messages == nil {
		return nil, errors.New("a plan is an object with a 'messages' list")
	}
	p := &plan{Scenario: scenario, Repeat: 1, Protocols: raw.Protocols, ReadDelay: time.Duration(raw.ReadDelayMs) * time.Millisecond,
		CloseBy: "client", CloseCode: 1000}
	for _, m := range raw.Messages {
		if m.Type != "text" && m.Type != "binary" {
			return nil, fmt.Errorf("message type %q", m.Type)
		}
		var unit []byte
		if m.UnitHex != nil {
			var err error
			if unit, err = hex.DecodeString(*m.UnitHex); err != nil {
				return nil, err
			}
		} else if m.Unit != nil {
			unit = []byte(*m.Unit)
		}
		payload, err := buildPayload(m.Size, unit, m.Sha256)
		if err != nil {
			return nil, err
		}
		if m.Type == "text" && !utf8.Valid(payload) {
			return nil, errors.New("a text payload that is not UTF-8 (a cut character?)")
		}
		p.Messages = append(p.Messages, plannedMessage{Text: m.Type == "text", Payload: payload})
	}
	if raw.Repeat != nil {
		p.Repeat = *raw.Repeat
	}
	switch raw.Pace {
	case "", "echo":
	case "burst":
		p.Burst = true
	default:
		return nil, fmt.Errorf("pace %q", raw.Pace)
	}
	if raw.Deflate != nil {
		p.Deflate, p.Offer = true, raw.Deflate.Offer
	}
	if raw.Ping != nil {
		p.Ping = []byte(raw.Ping.Payload)
		if raw.Ping.PayloadHex != nil {
			var err error
			if p.Ping, err = hex.DecodeString(*raw.Ping.PayloadHex); err != nil {
				return nil, err
			}
		}
	}
	if raw.Close != nil {
		if raw.Close.By != "" {
			p.CloseBy = raw.Close.By
		}
		if raw.Close.Code != nil {
			p.CloseCode = *raw.Close.Code
		}
		p.Reason = raw.Close.Reason
	}
	if p.CloseBy != "client" && p.CloseBy != "server" {
		return nil, fmt.Errorf("close.by %q", p.CloseBy)
	}
	return p, nil
}

// trigger is the text message that asks a server adapter to close with code and reason (§2.3).
func trigger(code int, reason string) plannedMessage {
	return plannedMessage{Text: true, Payload: []byte(fmt.Sprintf("%s %d %s", triggerPrefix, code, reason))}
}

// -- playing a plan -------------------------------------------------------------------------------------

// interopConn is a library connection as play drives it. receive returns the next data message, or
// ok false once the connection is closing or closed (the adapter keeps the close details); send,
// ping and close return an error once the connection is gone. ping returns when the ping is sent,
// or when its pong came if the adapter can wait for it.
type interopConn interface {
	send(m plannedMessage) error
	receive() (m plannedMessage, ok bool)
	ping(payload []byte) error
	close(code int, reason string) error
}

// play plays p over conn: a reader goroutine receives (with the plan's read delay) and reports every
// message while this goroutine sends, so a burst larger than the socket buffers cannot deadlock the
// pair. It returns when the reader has seen the end of the connection.
func play(p *plan, conn interopConn) {
	var mu sync.Mutex
	changed := sync.NewCond(&mu)
	received, ended := 0, false
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, ok := conn.receive()
			if !ok {
				break
			}
			if p.ReadDelay > 0 {
				time.Sleep(p.ReadDelay)
			}
			emitMessage(m.Text, m.Payload)
			mu.Lock()
			received++
			changed.Broadcast()
			mu.Unlock()
		}
		mu.Lock()
		ended = true
		changed.Broadcast()
		mu.Unlock()
	}()
	echoes := func(n int) bool {
		mu.Lock()
		defer mu.Unlock()
		for received < n && !ended {
			changed.Wait()
		}
		return received >= n
	}
	originate := func() {
		sent := 0
		for round := 0; round < p.Repeat; round++ {
			for _, m := range p.Messages {
				if conn.send(m) != nil {
					return
				}
				sent++
				if !p.Burst && !echoes(sent) {
					return
				}
			}
		}
		if !echoes(sent) {
			return
		}
		if p.Ping != nil && conn.ping(p.Ping) != nil {
			return
		}
		if p.CloseBy == "server" {
			conn.send(trigger(p.CloseCode, p.Reason))
		} else {
			conn.close(p.CloseCode, p.Reason)
		}
	}
	originate()
	<-done
}
