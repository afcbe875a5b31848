/*
 * wsconform server target: libwebsockets (Debian's libwebsockets-dev), an echo server.
 *
 * Why it is shaped the way it is:
 *
 * - Subprotocols are lws "protocols": one struct lws_protocols per name given with --subprotocols,
 *   all sharing the echo callback. lws itself selects among them (server-ws.c,
 *   lws_process_ws_upgrade): it walks the client's Sec-WebSocket-Protocol list in the client's
 *   order and binds the first name that matches a vhost protocol. A request without the header is
 *   bound to the vhost's default protocol, index 0; here that is an extra protocol with an empty
 *   name, which no offer can match and which lws never names in a response (handshake_0405 only
 *   writes the header for a non-empty name). When the client offers names and none matches, lws
 *   refuses the upgrade ("No supported protocol") and there is no hook to accept without a
 *   protocol instead: that is lws's rule, kept as it is.
 * - LWS_SERVER_OPTION_VALIDATE_UTF8: lws checks text frames and close reasons only with this
 *   documented option (its own echo examples set it); without it lws would echo invalid UTF-8.
 * - permessage-deflate: lws's built-in lws_extension_callback_pm_deflate with its defaults.
 * - --max-size: lws has no message size limit (it delivers frames in rx_buffer_size pieces), so
 *   the reassembly in echo.c enforces it with 1009, as any lws application must (RFC 6455 §10.4).
 * - Listens on 127.0.0.1 only (IPv6 disabled so the socket is a plain AF_INET one), any path.
 * - The close trigger (docs/adapter-protocol.md §2.3): the text message "wsconform:close <code>
 *   <reason>" is not echoed; lws_close_reason(code, reason) and returning -1 make lws send that
 *   Close and wait for the client's answer, the documented way an lws application closes.
 *
 * Prints "ready" once the listening socket exists, logs lws errors and warnings to stderr, and
 * exits 0 on SIGTERM/SIGINT (lws_context_destroy closes open connections).
 */
#include "echo.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RX_BUFFER_SIZE 65536
#define DEFAULT_MAX_SIZE (64u * 1024u * 1024u)

#define TRIGGER "wsconform:close "

static volatile sig_atomic_t interrupted;
static size_t max_size = DEFAULT_MAX_SIZE;

/*
 * The close trigger: "wsconform:close <code> <reason>" as a text message (the reason is the rest
 * after one space, possibly empty). Returns 1 and fills code/reason/reason_len for it, 0 otherwise.
 */
static int
close_trigger(const struct wsc_msg *m, int *code, const unsigned char **reason, size_t *reason_len)
{
	const unsigned char *p = m->buf + LWS_PRE, *end = p + m->len;
	size_t prefix = strlen(TRIGGER);
	int value = 0, digits = 0;

	if (m->binary || m->len < prefix || memcmp(p, TRIGGER, prefix))
		return 0;
	for (p += prefix; p < end && *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
		value = value * 10 + (*p - '0');
	if (!digits || (p < end && *p != ' '))
		return 0;
	if (p < end)
		p++; /* the one space before the reason */
	*code = value;
	*reason = p;
	*reason_len = (size_t)(end - p) > 123 ? 123 : (size_t)(end - p);
	return 1;
}

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int
callback_echo(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct wsc_conn *c = user;
	struct wsc_msg *m;
	const unsigned char *reason_text;
	size_t reason_len;
	int code;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		memset(c, 0, sizeof(*c));
		c->max_size = max_size;
		return 0;

	case LWS_CALLBACK_RECEIVE:
		switch (wsc_receive(c, wsi, in, len, &m)) {
		case WSC_RX_PARTIAL:
			return 0;
		case WSC_RX_COMPLETE:
			if (close_trigger(m, &code, &reason_text, &reason_len)) {
				lws_close_reason(wsi, (enum lws_close_status)code, (unsigned char *)reason_text,
						 reason_len);
				wsc_free_msg(m);
				return -1;
			}
			wsc_enqueue(c, wsi, m);
			return 0;
		case WSC_RX_TOO_BIG:
			lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
					 (unsigned char *)"message too big", 15);
			return -1;
		case WSC_RX_NO_MEMORY:
			lws_close_reason(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
					 (unsigned char *)"out of memory", 13);
			return -1;
		}
		return -1;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		return wsc_on_writeable(c, wsi);

	case LWS_CALLBACK_CLOSED:
		wsc_release(c);
		return 0;

	default:
		/* plain HTTP and everything else: lws's own default handling */
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static struct lws_protocols *
build_protocols(const char *list)
{
	/* index 0: the nameless default protocol for requests without Sec-WebSocket-Protocol */
	size_t count = 1, n = 1;
	struct lws_protocols *p;
	char *copy, *tok, *save = NULL;
	const char *s;

	for (s = list; *s; s++)
		count += *s == ',';
	p = calloc(count + 2, sizeof(*p));
	copy = strdup(list);
	if (!p || !copy)
		return NULL;
	p[0].name = "";
	for (tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
		p[n++].name = tok;
	for (size_t i = 0; i < n; i++) {
		p[i].callback = callback_echo;
		p[i].per_session_data_size = sizeof(struct wsc_conn);
		p[i].rx_buffer_size = RX_BUFFER_SIZE;
	}
	return p; /* terminated by the zeroed entry after the last one */
}

static const struct lws_extension extensions[] = {
	{"permessage-deflate", lws_extension_callback_pm_deflate, "permessage-deflate"},
	{NULL, NULL, NULL}};

int
main(int argc, char **argv)
{
	static const struct option opts[] = {{"port", required_argument, NULL, 'p'},
					     {"subprotocols", required_argument, NULL, 's'},
					     {"max-size", required_argument, NULL, 'm'},
					     {NULL, 0, NULL, 0}};
	struct lws_context_creation_info info;
	struct lws_context *context;
	struct sigaction sa;
	const char *subprotocols = "";
	int port = -1, opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 's':
			subprotocols = optarg;
			break;
		case 'm':
			max_size = (size_t)strtoull(optarg, NULL, 10);
			if (!max_size)
				max_size = DEFAULT_MAX_SIZE;
			break;
		default:
			fprintf(stderr, "usage: %s --port N [--subprotocols a,b] [--max-size BYTES]\n",
				argv[0]);
			return 2;
		}
	}
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "--port is required\n");
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	fprintf(stderr, "libwebsockets %s\n", lws_get_library_version());

	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = "127.0.0.1";
	info.protocols = build_protocols(subprotocols);
	info.extensions = extensions;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
	if (!info.protocols) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}

	context = lws_create_context(&info);
	if (!context) {
		fprintf(stderr, "lws_create_context failed (port %d in use?)\n", port);
		return 1;
	}
	printf("ready: libwebsockets echo server on 127.0.0.1:%d\n", port);
	fflush(stdout);

	while (!interrupted)
		if (lws_service(context, 0) < 0)
			break;

	fprintf(stderr, "shutting down\n");
	lws_context_destroy(context);
	return 0;
}
