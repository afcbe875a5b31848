/*
 * Message reassembly and echo queue (see echo.h for why).
 */
#include "echo.h"

#include <stdlib.h>
#include <string.h>

/*
 * Stop reading (lws_rx_flow_control) while this many bytes wait to be echoed, like an
 * application that awaits each send before it reads on: a peer that never reads cannot make the
 * adapter buffer without bound.
 */
#define WSC_PAUSE_BYTES (8u * 1024u * 1024u)

void
wsc_free_msg(struct wsc_msg *m)
{
	if (m) {
		free(m->buf);
		free(m);
	}
}

static int
reserve(struct wsc_conn *c, size_t need)
{
	size_t cap = c->rx_cap ? c->rx_cap : 4096;
	unsigned char *p;

	if (need <= c->rx_cap)
		return 0;
	while (cap < need)
		cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
	p = realloc(c->rx, LWS_PRE + cap);
	if (!p)
		return -1;
	c->rx = p;
	c->rx_cap = cap;
	return 0;
}

enum wsc_rx_result
wsc_receive(struct wsc_conn *c, struct lws *wsi, const void *in, size_t len, struct wsc_msg **out)
{
	/* bytes of the current frame that lws has not delivered yet */
	size_t remaining = lws_remaining_packet_payload(wsi);
	struct wsc_msg *m;

	*out = NULL;
	if (!c->in_message) {
		c->in_message = 1;
		c->rx_binary = lws_frame_is_binary(wsi);
		c->rx_len = 0;
	}
	/* like a library that checks the frame header: refuse as soon as the frame announces too much */
	if (c->rx_len + len + remaining > c->max_size)
		return WSC_RX_TOO_BIG;
	if (reserve(c, c->rx_len + len + remaining))
		return WSC_RX_NO_MEMORY;
	if (len)
		memcpy(c->rx + LWS_PRE + c->rx_len, in, len);
	c->rx_len += len;

	if (!lws_is_final_fragment(wsi))
		return WSC_RX_PARTIAL;

	m = calloc(1, sizeof(*m));
	if (!m)
		return WSC_RX_NO_MEMORY;
	if (!c->rx && reserve(c, 1)) { /* an empty message still needs LWS_PRE headroom */
		free(m);
		return WSC_RX_NO_MEMORY;
	}
	m->buf = c->rx;
	m->len = c->rx_len;
	m->binary = c->rx_binary;
	c->rx = NULL;
	c->rx_cap = c->rx_len = 0;
	c->in_message = 0;
	*out = m;
	return WSC_RX_COMPLETE;
}

void
wsc_enqueue(struct wsc_conn *c, struct lws *wsi, struct wsc_msg *m)
{
	if (c->tail)
		c->tail->next = m;
	else
		c->head = m;
	c->tail = m;
	c->queued_bytes += m->len;
	if (!c->rx_paused && c->queued_bytes > WSC_PAUSE_BYTES) {
		c->rx_paused = 1;
		lws_rx_flow_control(wsi, 0);
	}
	lws_callback_on_writable(wsi);
}

static void
drop_head(struct wsc_conn *c)
{
	struct wsc_msg *m = c->head;

	c->head = m->next;
	if (!c->head)
		c->tail = NULL;
	c->queued_bytes -= m->len;
	wsc_free_msg(m);
}

int
wsc_on_writeable(struct wsc_conn *c, struct lws *wsi)
{
	struct wsc_msg *m;
	int n;

	if (c->head_written) {
		drop_head(c);
		c->head_written = 0;
	}
	m = c->head;
	if (!m) {
		if (c->rx_paused) {
			c->rx_paused = 0;
			lws_rx_flow_control(wsi, 1);
		}
		return 0;
	}
	/*
	 * One lws_write per message: lws frames it (one frame, or compressed fragments with
	 * permessage-deflate) and keeps whatever the socket did not take in its own buffer.
	 */
	n = lws_write(wsi, m->buf + LWS_PRE, m->len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
	if (n < (int)m->len) {
		lwsl_err("lws_write of a %zu byte message returned %d\n", m->len, n);
		return -1;
	}
	c->head_written = 1;
	lws_callback_on_writable(wsi);
	return 0;
}

void
wsc_release(struct wsc_conn *c)
{
	while (c->head)
		drop_head(c);
	free(c->rx);
	c->rx = NULL;
	c->rx_cap = c->rx_len = 0;
	c->head_written = 0;
}
