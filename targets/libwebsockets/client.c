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
 */
#include "echo.h"

#include <getopt.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RX_BUFFER_SIZE 65536
#define DEFAULT_MAX_SIZE (64u * 1024u * 1024u)
#define SAFETY_TIMEOUT_S 30

struct client_state {
	struct wsc_conn conn;
	char protocol[256];
	char extensions[1024];
	int peer_closed;
	int close_code;
	char close_reason[126];
	size_t close_reason_len;
	int finished; /* the close event was printed */
};

static struct client_state state;
static lws_sorted_usec_list_t safety_sul;

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
		return 0;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		switch (wsc_receive(&state.conn, wsi, in, len, &m)) {
		case WSC_RX_PARTIAL:
			return 0;
		case WSC_RX_COMPLETE:
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
		return wsc_on_writeable(&state.conn, wsi);

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
	(void)sul;
	emit_error("adapter safety timeout (30 s)");
	emit_close(1006, (const unsigned char *)"", 0, 0);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
					     {"protocols", required_argument, NULL, 'p'},
					     {"max-size", required_argument, NULL, 'm'},
					     {NULL, 0, NULL, 0}};
	static struct lws_protocols protocols[] = {
		{"wsconform-client", callback_client, 0, RX_BUFFER_SIZE, 0, NULL, 0},
		{NULL, NULL, 0, 0, 0, NULL, 0}};
	struct lws_context_creation_info info;
	struct lws_client_connect_info ci;
	struct lws_context *context;
	const char *url = NULL, *offer = "", *scheme, *address, *path;
	char url_copy[1024], host[300], full_path[1024];
	size_t max_size = DEFAULT_MAX_SIZE;
	int opt, port;

	if (getenv("WSCONFORM_SCENARIO") && *getenv("WSCONFORM_SCENARIO"))
		return 127; /* no scenario (API-level calls, slow consumer) is implemented */

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
		default:
			fprintf(stderr, "usage: %s --url ws://... [--protocols a,b] [--max-size N]\n",
				argv[0]);
			return 2;
		}
	}
	if (!url || strlen(url) >= sizeof(url_copy)) {
		fprintf(stderr, "--url is required\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	state.conn.max_size = max_size ? max_size : DEFAULT_MAX_SIZE;

	strcpy(url_copy, url);
	if (lws_parse_uri(url_copy, &scheme, &address, &port, &path) || strcmp(scheme, "ws")) {
		emit_error("unsupported URL (only ws:// is implemented)");
		emit_close(1006, (const unsigned char *)"", 0, 0);
		return 0;
	}
	/* lws_parse_uri strips the leading '/'; the Host header value is the application's to give */
	snprintf(full_path, sizeof(full_path), "/%s", path);
	snprintf(host, sizeof(host), port == 80 ? "%s" : "%s:%d", address, port);

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	context = lws_create_context(&info);
	if (!context) {
		emit_error("lws_create_context failed");
		emit_close(1006, (const unsigned char *)"", 0, 0);
		return 0;
	}

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
			 (lws_usec_t)SAFETY_TIMEOUT_S * LWS_US_PER_SEC);
	if (!lws_client_connect_via_info(&ci)) {
		/* lws has usually reported CLIENT_CONNECTION_ERROR already; if not, say so here */
		emit_error("lws_client_connect_via_info failed");
		emit_close(1006, (const unsigned char *)"", 0, 0);
	}

	while (!state.finished)
		if (lws_service(context, 0) < 0)
			break;

	lws_sul_cancel(&safety_sul);
	lws_context_destroy(context);
	return 0;
}
