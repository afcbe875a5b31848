/*
 * Message reassembly and the echo queue shared by the wsconform server and client adapters.
 *
 * Why it exists: libwebsockets hands the application each data frame in pieces of at most
 * rx_buffer_size bytes (LWS_CALLBACK_RECEIVE / LWS_CALLBACK_CLIENT_RECEIVE) and has no notion of
 * a complete message or of a maximum message size. The adapters echo whole messages, so they
 * reassemble with lws's own fragment APIs (lws_is_final_fragment, lws_frame_is_binary,
 * lws_remaining_packet_payload), and refuse a message above --max-size with 1009, which is what
 * an lws application has to do itself (RFC 6455 §10.4).
 *
 * Writes go out one message per WRITEABLE callback, as lws requires; a written message is freed
 * only at the next WRITEABLE callback because the permessage-deflate extension may still be
 * reading it while it drains its compressed output.
 */
#ifndef WSCONFORM_LWS_ECHO_H
#define WSCONFORM_LWS_ECHO_H

#include <libwebsockets.h>
#include <stddef.h>

struct wsc_msg {
	struct wsc_msg *next;
	unsigned char *buf; /* LWS_PRE bytes of headroom, then len bytes of payload */
	size_t len;
	int binary;
};

struct wsc_conn {
	/* the message being reassembled */
	unsigned char *rx;
	size_t rx_len, rx_cap;
	int rx_binary, in_message;
	size_t max_size;
	/* complete messages waiting to be echoed */
	struct wsc_msg *head, *tail;
	size_t queued_bytes;
	int head_written; /* head was handed to lws_write; free it at the next WRITEABLE */
	int rx_paused;
};

enum wsc_rx_result {
	WSC_RX_PARTIAL,  /* more pieces of the message are coming */
	WSC_RX_COMPLETE, /* *out is a complete message, owned by the caller */
	WSC_RX_TOO_BIG,  /* the message exceeds max_size: close with 1009 */
	WSC_RX_NO_MEMORY
};

/* Add one RECEIVE piece; on WSC_RX_COMPLETE *out is the whole message. */
enum wsc_rx_result wsc_receive(struct wsc_conn *c, struct lws *wsi, const void *in, size_t len,
			       struct wsc_msg **out);

/* Queue a message for echoing (takes ownership) and ask lws for a WRITEABLE callback. */
void wsc_enqueue(struct wsc_conn *c, struct lws *wsi, struct wsc_msg *m);

/* Handle a WRITEABLE callback: echo the next queued message. Returns -1 to close. */
int wsc_on_writeable(struct wsc_conn *c, struct lws *wsi);

/* Free everything the connection still holds (CLOSED callbacks). */
void wsc_release(struct wsc_conn *c);

void wsc_free_msg(struct wsc_msg *m);

#endif
