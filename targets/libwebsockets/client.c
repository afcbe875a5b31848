/*
 * wsconform client target: libwebsockets (Debian's libwebsockets-dev), an echo client.
 *
 * The harness plays the server and starts this program once per case. It connects to --url
 * offering --protocols (sent verbatim as lws's connect_info.protocol), echoes every message with
 * its own type, lets lws answer pings and the server's Close, and reports what the lws API showed
 * as JSON lines on stdout (docs/architecture.md, the client adapter contract):
 *
 *   {"event":"open","protocol":...,"extensions":...}   LWS_CALLBACK_CLIENT_ESTABLISHED, with the
 *       Sec-WebSocket-Protocol/-Extensions response values copied in CLIENT_FILTER_PRE_ESTABLISH
 *       (lws drops the header table before ESTABLISHED)
 *   {"event":"message","type":"text|binary","size":N,"sha256":hex}   one per reassembled message
 *       (OpenSSL's SHA-256)
 *   {"event":"error","message":...}   CLIENT_CONNECTION_ERROR (lws's reason string), or a close
 *       without a Close frame from the server
 *   {"event":"close","code":N,"reason":...,"wasClean":bool}   the code and reason of the server's
 *       Close as lws passed them to LWS_CALLBACK_WS_PEER_INITIATED_CLOSE (1005 when empty), or
 *       1006/false when no Close frame reached the application
 *
 * Exit 0 after the close event; 127 at once when WSCONFORM_SCENARIO is set (no scenario is
 * implemented); a 30 s safety timeout reports an error and 1006. No extension is offered
 * (info.extensions stays NULL), like the other client adapters.
 *
 * The extended contract (docs/adapter-protocol.md):
 *
 * - --persistent (or WSCONFORM_PERSISTENT=1): a case per JSON line on stdin (parsed with jansson),
 *   each with its own lws context and connection, answered by its events and a "done" line (§1);
 *   EOF ends the process with 0.
 * - Interop mode (WSCONFORM_INTEROP/WSCONFORM_PLAN, or the line's "interop", §2; plan.c builds the
 *   payloads): the client originates the plan's messages, one lws_write per CLIENT_WRITEABLE
 *   (each from its own copy: lws masks in place and permessage-deflate may still read it until
 *   the next WRITEABLE), paced by echo or in a burst; a slow reader holds received messages and
 *   stops the socket (lws_rx_flow_control) while they wait out read_delay_ms on an lws timer; the
 *   ping is lws_write(LWS_WRITE_PING) and its pong awaited (CLIENT_RECEIVE_PONG); the client's
 *   close is lws_close_reason + returning -1, after which lws reads the server's answer itself and
 *   hides it from the application, so that close event reports the code and reason the client
 *   sent (see interop_report_answer). permessage-deflate is offered (lws's built-in extension,
 *   its own offer) only when the plan asks.
 */
#include "echo.h"
#include "plan.h"

#include <getopt.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RX_BUFFER_SIZE 65536
#define DEFAULT_MAX_SIZE (64u * 1024u * 1024u)
#define SAFETY_TIMEOUT_S 30
#define PONG_TIMEOUT_US (5 * LWS_US_PER_SEC)
#define UNSUPPORTED 127

/* Interop progress of the case in flight (state.plan != NULL). */
struct interop {
	struct plan *plan;
	struct lws *wsi;
	size_t total, sent, received;
	unsigned char *inflight; /* the copy handed to lws_write last; freed at the next WRITEABLE */
	struct wsc_msg *held, *held_tail; /* received, waiting out the read delay */
	int ping_sent, pong_seen, trigger_sent, close_sent;
	lws_sorted_usec_list_t delay_sul, pong_sul;
};

struct client_state {
	struct wsc_conn conn;
	char protocol[256];
	char extensions[1024];
	int peer_closed;
	int close_code;
	char close_reason[126];
	size_t close_reason_len;
	int finished; /* the close event was printed */
	struct lws_context *context;
	struct interop *interop;
};

static struct client_state state;
static lws_sorted_usec_list_t safety_sul;
static int safety_timeout_s = SAFETY_TIMEOUT_S;

/* JSON string: escapes quotes, backslashes and control bytes; invalid UTF-8 becomes U+FFFD. */
static void
put_json_string(const unsigned char *s, size_t len)
{
	size_t i = 0;

	putchar('"');
	while (i < len) {
		unsigned char ch = s[i];
		size_t need = ch < 0x80 ? 0 : (ch & 0xe0) == 0xc0 ? 1 : (ch & 0xf0) == 0xe0 ? 2
				     : (ch & 0xf8) == 0xf0 ? 3 : 4;
		size_t k;
		int ok = need < 4 && i + need < len;

		for (k = 1; ok && k <= need; k++)
			ok = (s[i + k] & 0xc0) == 0x80;
		if (ok && need) { /* reject overlong forms, surrogates and values above U+10FFFF */
			unsigned int cp = ch & (0x3f >> need);
			for (k = 1; k <= need; k++)
				cp = (cp << 6) | (s[i + k] & 0x3f);
			ok = !(cp < (need == 1 ? 0x80u : need == 2 ? 0x800u : 0x10000u) ||
			       (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff);
		}
		if (!ok) {
			fputs("\\ufffd", stdout);
			i++;
		} else if (need) {
			fwrite(s + i, 1, need + 1, stdout);
			i += need + 1;
		} else {
			if (ch == '"' || ch == '\\')
				printf("\\%c", ch);
			else if (ch < 0x20 || ch == 0x7f)
				printf("\\u%04x", ch);
			else
				putchar(ch);
			i++;
		}
	}
	putchar('"');
}

static void
emit_error(const char *message)
{
	if (state.finished)
		return;
	fputs("{\"event\":\"error\",\"message\":", stdout);
	put_json_string((const unsigned char *)message, strlen(message));
	fputs("}\n", stdout);
	fflush(stdout);
}

static void
emit_close(int code, const unsigned char *reason, size_t reason_len, int clean)
{
	if (state.finished)
		return;
	state.finished = 1;
	printf("{\"event\":\"close\",\"code\":%d,\"reason\":", code);
	put_json_string(reason, reason_len);
	printf(",\"wasClean\":%s}\n", clean ? "true" : "false");
	fflush(stdout);
}

static void
emit_message(const struct wsc_msg *m)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0, i;

	if (!EVP_Digest(m->buf + LWS_PRE, m->len, md, &md_len, EVP_sha256(), NULL))
		md_len = 0;
	printf("{\"event\":\"message\",\"type\":\"%s\",\"size\":%zu,\"sha256\":\"",
	       m->binary ? "binary" : "text", m->len);
	for (i = 0; i < md_len; i++)
		printf("%02x", md[i]);
	fputs("\"}\n", stdout);
	fflush(stdout);
}

static void
copy_header(struct lws *wsi, enum lws_token_indexes token, char *out, size_t size)
{
	out[0] = '\0';
	if (lws_hdr_total_length(wsi, token) > 0 && lws_hdr_copy(wsi, out, (int)size, token) < 0)
		out[0] = '\0';
}

/* -- interop mode ------------------------------------------------------------------------------- */

static void
interop_free(struct interop *io)
{
	struct wsc_msg *m;

	if (!io)
		return;
	lws_sul_cancel(&io->delay_sul);
	lws_sul_cancel(&io->pong_sul);
	while ((m = io->held)) {
		io->held = m->next;
		wsc_free_msg(m);
	}
	free(io->inflight);
	plan_free(io->plan);
	free(io);
}

/* A held message has waited out the read delay: report it, then the next one or resume reading. */
static void
on_read_delay(lws_sorted_usec_list_t *sul)
{
	struct interop *io = lws_container_of(sul, struct interop, delay_sul);
	struct wsc_msg *m = io->held;

	if (!m)
		return;
	io->held = m->next;
	if (!io->held)
		io->held_tail = NULL;
	emit_message(m);
	wsc_free_msg(m);
	io->received++;
	if (io->held)
		lws_sul_schedule(state.context, 0, &io->delay_sul, on_read_delay,
				 (lws_usec_t)io->plan->read_delay_ms * LWS_US_PER_MS);
	else
		lws_rx_flow_control(io->wsi, 1);
	lws_callback_on_writable(io->wsi);
}

static void
interop_received(struct lws *wsi, struct wsc_msg *m)
{
	struct interop *io = state.interop;

	if (!io->plan->read_delay_ms) {
		emit_message(m);
		wsc_free_msg(m);
		io->received++;
		lws_callback_on_writable(wsi);
		return;
	}
	/* a slow reader: hold the message, stop reading the socket while any is held */
	m->next = NULL;
	if (io->held_tail)
		io->held_tail->next = m;
	else
		io->held = m;
	io->held_tail = m;
	lws_rx_flow_control(wsi, 0);
	if (!lws_dll2_is_detached(&io->delay_sul.list))
		return; /* the timer runs already */
	lws_sul_schedule(state.context, 0, &io->delay_sul, on_read_delay,
			 (lws_usec_t)io->plan->read_delay_ms * LWS_US_PER_MS);
}

static void
on_pong_timeout(lws_sorted_usec_list_t *sul)
{
	struct interop *io = lws_container_of(sul, struct interop, pong_sul);

	fprintf(stderr, "no pong within the timeout\n");
	io->pong_seen = 1;
	lws_callback_on_writable(io->wsi);
}

/* One lws_write of a copy of data (lws masks the buffer in place; the copy lives until the next
 * WRITEABLE, as echo.c keeps an echoed message). */
static int
interop_write(struct lws *wsi, const unsigned char *data, size_t len, enum lws_write_protocol kind)
{
	struct interop *io = state.interop;
	unsigned char *copy = malloc(LWS_PRE + len + 1);

	if (!copy)
		return -1;
	memcpy(copy + LWS_PRE, data, len);
	io->inflight = copy;
	if (lws_write(wsi, copy + LWS_PRE, len, kind) < (int)len) {
		lwsl_err("lws_write of a %zu byte message failed\n", len);
		return -1;
	}
	return 0;
}

/* WRITEABLE in interop mode: the next thing the plan sends, when its time has come. */
static int
interop_writeable(struct lws *wsi)
{
	struct interop *io = state.interop;
	struct plan *p = io->plan;
	char trigger[160];

	free(io->inflight);
	io->inflight = NULL;
	if (io->sent < io->total) {
		const struct plan_msg *m = &p->msgs[io->sent % p->count];
		if (!p->burst && io->received < io->sent)
			return 0; /* pace: echo; the echo's arrival asks for WRITEABLE again */
		if (interop_write(wsi, m->data, m->len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT))
			return -1;
		io->sent++;
		if (p->burst)
			lws_callback_on_writable(wsi);
		return 0;
	}
	if (io->received < io->total)
		return 0;
	if (p->has_ping && !io->ping_sent) {
		io->ping_sent = 1;
		lws_sul_schedule(state.context, 0, &io->pong_sul, on_pong_timeout, PONG_TIMEOUT_US);
		return interop_write(wsi, p->ping, p->ping_len, LWS_WRITE_PING);
	}
	if (p->has_ping && !io->pong_seen)
		return 0;
	if (p->close_by_server) {
		if (io->trigger_sent)
			return 0;
		io->trigger_sent = 1;
		snprintf(trigger, sizeof(trigger), "wsconform:close %d %s", p->close_code, p->close_reason);
		return interop_write(wsi, (unsigned char *)trigger, strlen(trigger), LWS_WRITE_TEXT);
	}
	if (!io->close_sent) {
		io->close_sent = 1;
		lws_close_reason(wsi, (enum lws_close_status)p->close_code, (unsigned char *)p->close_reason,
				 strlen(p->close_reason));
		return -1; /* lws sends the Close and waits for the server's answer */
	}
	return 0;
}

/*
 * CLIENT_CLOSED after our own Close. lws reads the server's answer itself and does not pass it to
 * the application (client-parser.c: "seen server's close ack", then close, no callback), nor keep
 * it (lws_get_close_payload holds the Close we sent). So the close event reports the code and
 * reason this client sent, which is what a server echoes (RFC 6455 §5.5.1: an endpoint "typically
 * echos the status code it received"); the relay sees the real answer.
 */
static void
interop_report_answer(struct lws *wsi)
{
	const struct plan *p = state.interop->plan;

	(void)wsi;
	emit_close(p->close_code, (const unsigned char *)p->close_reason, strlen(p->close_reason), 1);
}

static int
callback_client(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct wsc_msg *m;
	const unsigned char *p = in;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		emit_error(in ? (const char *)in : "connection error");
		emit_close(1006, (const unsigned char *)"", 0, 0);
		return 0;

	case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH:
		copy_header(wsi, WSI_TOKEN_PROTOCOL, state.protocol, sizeof(state.protocol));
		copy_header(wsi, WSI_TOKEN_EXTENSIONS, state.extensions, sizeof(state.extensions));
		return 0;

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		fputs("{\"event\":\"open\",\"protocol\":", stdout);
		put_json_string((unsigned char *)state.protocol, strlen(state.protocol));
		fputs(",\"extensions\":", stdout);
		put_json_string((unsigned char *)state.extensions, strlen(state.extensions));
		fputs("}\n", stdout);
		fflush(stdout);
		if (state.interop) {
			state.interop->wsi = wsi;
			lws_callback_on_writable(wsi);
		}
		return 0;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		switch (wsc_receive(&state.conn, wsi, in, len, &m)) {
		case WSC_RX_PARTIAL:
			return 0;
		case WSC_RX_COMPLETE:
			if (state.interop) {
				interop_received(wsi, m);
				return 0;
			}
			emit_message(m);
			wsc_enqueue(&state.conn, wsi, m);
			return 0;
		case WSC_RX_TOO_BIG:
			emit_error("message larger than --max-size");
			lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
					 (unsigned char *)"message too big", 15);
			return -1;
		case WSC_RX_NO_MEMORY:
			emit_error("out of memory");
			return -1;
		}
		return -1;

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (state.interop)
			return interop_writeable(wsi);
		return wsc_on_writeable(&state.conn, wsi);

	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		if (state.interop && state.interop->ping_sent && !state.interop->pong_seen) {
			state.interop->pong_seen = 1;
			lws_sul_cancel(&state.interop->pong_sul);
			lws_callback_on_writable(wsi);
		}
		return 0;

	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/*
		 * lws answers with a Close itself once we return 0. It calls this again for a second
		 * Close frame; the code and reason are those of the first (RFC 6455 §7.1.5).
		 */
		if (state.peer_closed)
			return 0;
		state.peer_closed = 1;
		state.close_code = len >= 2 ? (p[0] << 8) | p[1] : 1005;
		if (len > 2) {
			state.close_reason_len = len - 2 < sizeof(state.close_reason)
							 ? len - 2 : sizeof(state.close_reason);
			memcpy(state.close_reason, p + 2, state.close_reason_len);
		}
		return 0;

	case LWS_CALLBACK_CLIENT_CLOSED:
		if (state.peer_closed) {
			emit_close(state.close_code, (unsigned char *)state.close_reason,
				   state.close_reason_len, 1);
		} else if (state.interop && state.interop->close_sent) {
			interop_report_answer(wsi);
		} else {
			emit_error("connection closed without a Close frame from the server");
			emit_close(1006, (const unsigned char *)"", 0, 0);
		}
		wsc_release(&state.conn);
		return 0;

	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static void
on_safety_timeout(lws_sorted_usec_list_t *sul)
{
	char message[64];

	(void)sul;
	snprintf(message, sizeof(message), "adapter safety timeout (%d s)", safety_timeout_s);
	emit_error(message);
	emit_close(1006, (const unsigned char *)"", 0, 0);
}

static const struct lws_extension deflate_offer[] = {
	{"permessage-deflate", lws_extension_callback_pm_deflate, "permessage-deflate"},
	{NULL, NULL, NULL}};

/*
 * One case on its own lws context: connect to url offering the protocols, then the echo client or
 * (plan != NULL, which the case takes over) the interop plan, until the close event is out.
 */
static void
run_case(const char *url, const char *offer, struct plan *plan, size_t max_size)
{
	static struct lws_protocols protocols[] = {
		{"wsconform-client", callback_client, 0, RX_BUFFER_SIZE, 0, NULL, 0},
		{NULL, NULL, 0, 0, 0, NULL, 0}};
	struct lws_context_creation_info info;
	struct lws_client_connect_info ci;
	struct lws_context *context;
	const char *scheme, *address, *path;
	char url_copy[1024], host[300], full_path[1024];
	int port;

	memset(&state, 0, sizeof(state));
	state.conn.max_size = max_size ? max_size : DEFAULT_MAX_SIZE;
	safety_timeout_s = SAFETY_TIMEOUT_S;
	if (plan) {
		state.interop = calloc(1, sizeof(*state.interop));
		if (!state.interop) {
			plan_free(plan);
			emit_error("out of memory");
			emit_close(1006, (const unsigned char *)"", 0, 0);
			return;
		}
		state.interop->plan = plan;
		state.interop->total = plan->count * (size_t)(plan->repeat > 0 ? plan->repeat : 0);
		safety_timeout_s += (int)((plan->read_delay_ms * (long long)state.interop->total + 999) / 1000);
		if (plan->protocols)
			offer = plan->protocols;
	}

	if (strlen(url) >= sizeof(url_copy)) {
		emit_error("URL too long");
		emit_close(1006, (const unsigned char *)"", 0, 0);
		goto out;
	}
	strcpy(url_copy, url);
	if (lws_parse_uri(url_copy, &scheme, &address, &port, &path) || strcmp(scheme, "ws")) {
		emit_error("unsupported URL (only ws:// is implemented)");
		emit_close(1006, (const unsigned char *)"", 0, 0);
		goto out;
	}
	/* lws_parse_uri strips the leading '/'; the Host header value is the application's to give */
	snprintf(full_path, sizeof(full_path), "/%s", path);
	snprintf(host, sizeof(host), port == 80 ? "%s" : "%s:%d", address, port);

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	if (plan && plan->deflate)
		info.extensions = deflate_offer; /* interop only: the conformance client offers none */
	context = lws_create_context(&info);
	if (!context) {
		emit_error("lws_create_context failed");
		emit_close(1006, (const unsigned char *)"", 0, 0);
		goto out;
	}
	state.context = context;

	memset(&ci, 0, sizeof(ci));
	ci.context = context;
	ci.address = address;
	ci.port = port;
	ci.path = full_path;
	ci.host = host;
	ci.protocol = *offer ? offer : NULL;
	ci.local_protocol_name = protocols[0].name;
	ci.ietf_version_or_minus_one = -1;
	lws_sul_schedule(context, 0, &safety_sul, on_safety_timeout,
			 (lws_usec_t)safety_timeout_s * LWS_US_PER_SEC);
	if (!lws_client_connect_via_info(&ci)) {
		/* lws has usually reported CLIENT_CONNECTION_ERROR already; if not, say so here */
		emit_error("lws_client_connect_via_info failed");
		emit_close(1006, (const unsigned char *)"", 0, 0);
	}

	while (!state.finished)
		if (lws_service(context, 0) < 0)
			break;

	lws_sul_cancel(&safety_sul);
	if (state.interop) {
		lws_sul_cancel(&state.interop->delay_sul);
		lws_sul_cancel(&state.interop->pong_sul);
	}
	lws_context_destroy(context);
	wsc_release(&state.conn);
out:
	interop_free(state.interop);
	state.interop = NULL;
	state.context = NULL;
}

/* The interop plan of WSCONFORM_PLAN or a case line's "interop" object; exits 2 on a bad plan. */
static struct plan *
parse_plan_or_exit(json_t *obj)
{
	char err[256] = "";
	struct plan *p = plan_from_json(obj, err, sizeof(err));

	if (!p) {
		fprintf(stderr, "invalid interop plan: %s\n", err[0] ? err : "out of memory");
		exit(2);
	}
	return p;
}

static void
emit_done(const char *name, int code)
{
	fputs("{\"event\":\"done\",\"case\":", stdout);
	put_json_string((const unsigned char *)name, strlen(name));
	printf(",\"exit\":%d}\n", code);
	fflush(stdout);
}

/* Persistent mode (§1): a case per stdin line, its events, then one done line. */
static int
serve_persistent(size_t max_size)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, stdin)) >= 0) {
		json_error_t jerr;
		json_t *req, *v, *interop;
		const char *url, *name, *scenario;
		char offer[1024] = "";
		struct plan *plan = NULL;
		size_t i;

		if (strspn(line, " \t\r\n") == (size_t)n)
			continue;
		req = json_loads(line, 0, &jerr);
		url = json_string_value(json_object_get(req, "url"));
		if (!req || !url) {
			fprintf(stderr, "not a case line (%s): %.200s", req ? "no url" : jerr.text, line);
			json_decref(req);
			free(line);
			return 2;
		}
		name = json_string_value(json_object_get(req, "case"));
		if (!name)
			name = strrchr(url, '/') ? strrchr(url, '/') + 1 : url;
		json_array_foreach(json_object_get(req, "protocols"), i, v) {
			if (i && strlen(offer) + 1 < sizeof(offer))
				strcat(offer, ",");
			if (json_string_value(v) && strlen(offer) + json_string_length(v) < sizeof(offer))
				strcat(offer, json_string_value(v));
		}
		scenario = json_string_value(json_object_get(req, "scenario"));
		interop = json_object_get(req, "interop");
		if (json_is_object(interop))
			plan = parse_plan_or_exit(json_object_get(interop, "plan"));
		if (!plan && scenario && *scenario) {
			emit_done(name, UNSUPPORTED); /* no scenario is implemented */
		} else {
			run_case(url, offer, plan, max_size);
			emit_done(name, 0);
		}
		json_decref(req);
	}
	free(line);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
					     {"protocols", required_argument, NULL, 'p'},
					     {"max-size", required_argument, NULL, 'm'},
					     {"persistent", no_argument, NULL, 'P'},
					     {NULL, 0, NULL, 0}};
	const char *url = NULL, *offer = "", *env;
	size_t max_size = DEFAULT_MAX_SIZE;
	struct plan *plan = NULL;
	int opt, persistent = 0;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			url = optarg;
			break;
		case 'p':
			offer = optarg;
			break;
		case 'm':
			max_size = (size_t)strtoull(optarg, NULL, 10);
			break;
		case 'P':
			persistent = 1;
			break;
		default:
			fprintf(stderr, "usage: %s --url ws://... [--protocols a,b] [--max-size N] | --persistent\n",
				argv[0]);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	if (persistent || ((env = getenv("WSCONFORM_PERSISTENT")) && !strcmp(env, "1")))
		return serve_persistent(max_size);
	if (!url) {
		fprintf(stderr, "--url is required (or --persistent)\n");
		return 2;
	}
	if (((env = getenv("WSCONFORM_INTEROP")) && *env) || ((env = getenv("WSCONFORM_PLAN")) && *env)) {
		json_error_t jerr;
		json_t *obj = json_loads(getenv("WSCONFORM_PLAN") ? getenv("WSCONFORM_PLAN") : "", 0, &jerr);
		plan = parse_plan_or_exit(obj);
		json_decref(obj);
	} else if ((env = getenv("WSCONFORM_SCENARIO")) && *env) {
		return UNSUPPORTED; /* no scenario (API-level calls, slow consumer) is implemented */
	}
	run_case(url, offer, plan, max_size);
	return 0;
}
