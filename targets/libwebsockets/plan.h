/*
 * Interop plans (docs/adapter-protocol.md §2.1) for the libwebsockets client adapter.
 *
 * Why it exists: in interop mode the client originates the traffic, so the plan the harness sends
 * (JSON, parsed with Debian's jansson) becomes payloads built here, never shipped: `unit` (UTF-8)
 * or `unit_hex` repeated and cut to `size` bytes, checked against the plan's `sha256` (OpenSSL) so
 * that a wrong builder cannot look like a server corrupting data.
 */
#ifndef WSCONFORM_LWS_PLAN_H
#define WSCONFORM_LWS_PLAN_H

#include <jansson.h>
#include <stddef.h>

struct plan_msg {
	unsigned char *data;
	size_t len;
	int binary;
};

struct plan {
	struct plan_msg *msgs;
	size_t count;
	int repeat;
	int burst;       /* pace: burst (else echo) */
	int deflate;     /* the plan has a permessage_deflate block */
	char *protocols; /* comma-separated; NULL when the plan does not say */
	unsigned char *ping;
	size_t ping_len;
	int has_ping;
	int read_delay_ms;
	int close_by_server;
	int close_code;
	char *close_reason;
};

/* The plan object of a case; NULL with a message in err when it cannot be played as written. */
struct plan *plan_from_json(json_t *obj, char *err, size_t errlen);

void plan_free(struct plan *p);

#endif
