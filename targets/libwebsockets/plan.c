/*
 * Interop plans: parsing and payload building (see plan.h for why).
 */
#include "plan.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int
from_hex(const char *hex, unsigned char **out, size_t *len)
{
	size_t n = strlen(hex), i;
	unsigned char *b;

	if (n % 2)
		return -1;
	b = malloc(n / 2 + 1);
	if (!b)
		return -1;
	for (i = 0; i < n / 2; i++) {
		unsigned int v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
			free(b);
			return -1;
		}
		b[i] = (unsigned char)v;
	}
	*out = b;
	*len = n / 2;
	return 0;
}

static int
sha256_matches(const unsigned char *data, size_t len, const char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0, i;
	char got[2 * EVP_MAX_MD_SIZE + 1];

	if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL))
		return 0;
	for (i = 0; i < md_len; i++)
		sprintf(got + 2 * i, "%02x", md[i]);
	got[2 * md_len] = '\0';
	return !strcasecmp(got, hex);
}

/* The unit repeated and cut to size bytes (one spare byte so that an empty payload is not NULL). */
static unsigned char *
build(const unsigned char *unit, size_t unit_len, size_t size)
{
	unsigned char *out = malloc(size + 1);
	size_t at;

	if (!out)
		return NULL;
	for (at = 0; at < size; at += unit_len)
		memcpy(out + at, unit, size - at < unit_len ? size - at : unit_len);
	return out;
}

static int
valid_utf8(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t need = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 4;
		size_t k;
		if (need == 4 || i + need >= len) /* not a lead byte, or a character cut at the end */
			return 0;
		for (k = 1; k <= need; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
		i += need + 1;
	}
	return 1;
}

static int
add_message(struct plan *p, json_t *spec, char *err, size_t errlen)
{
	const char *type = json_string_value(json_object_get(spec, "type"));
	json_t *unit_hex = json_object_get(spec, "unit_hex"), *unit = json_object_get(spec, "unit");
	const char *digest = json_string_value(json_object_get(spec, "sha256"));
	json_int_t size = json_integer_value(json_object_get(spec, "size"));
	unsigned char *u = NULL, *payload;
	size_t unit_len = 0;
	struct plan_msg *m;

	if (!type || (strcmp(type, "text") && strcmp(type, "binary"))) {
		snprintf(err, errlen, "message type %s", type ? type : "(none)");
		return -1;
	}
	if (json_is_string(unit_hex)) {
		if (from_hex(json_string_value(unit_hex), &u, &unit_len)) {
			snprintf(err, errlen, "unit_hex is not hex");
			return -1;
		}
	} else if (json_is_string(unit)) {
		unit_len = json_string_length(unit);
		u = malloc(unit_len + 1);
		if (!u)
			return -1;
		memcpy(u, json_string_value(unit), unit_len);
	}
	if (size < 0 || (size > 0 && !unit_len)) {
		free(u);
		snprintf(err, errlen, "cannot build %lld bytes from an empty unit", (long long)size);
		return -1;
	}
	payload = build(u, unit_len, (size_t)size);
	free(u);
	if (!payload)
		return -1;
	if (digest && !sha256_matches(payload, (size_t)size, digest)) {
		free(payload);
		snprintf(err, errlen, "the payload built (%lld bytes) does not hash to the plan's sha256", (long long)size);
		return -1;
	}
	if (!strcmp(type, "text") && !valid_utf8(payload, (size_t)size)) {
		free(payload);
		snprintf(err, errlen, "a text payload that is not UTF-8 (a cut character?)");
		return -1;
	}
	m = realloc(p->msgs, (p->count + 1) * sizeof(*m));
	if (!m) {
		free(payload);
		return -1;
	}
	p->msgs = m;
	m[p->count].data = payload;
	m[p->count].len = (size_t)size;
	m[p->count].binary = !strcmp(type, "binary");
	p->count++;
	return 0;
}

struct plan *
plan_from_json(json_t *obj, char *err, size_t errlen)
{
	json_t *messages = json_object_get(obj, "messages"), *v, *close, *ping, *protocols;
	struct plan *p;
	size_t i;

	if (!json_is_object(obj) || !json_is_array(messages)) {
		snprintf(err, errlen, "a plan is an object with a 'messages' list");
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->repeat = 1;
	p->close_code = 1000;
	json_array_foreach(messages, i, v) {
		if (add_message(p, v, err, errlen))
			goto bad;
	}
	if ((v = json_object_get(obj, "repeat")))
		p->repeat = (int)json_integer_value(v);
	if ((v = json_object_get(obj, "pace")) && json_is_string(v)) {
		if (!strcmp(json_string_value(v), "burst"))
			p->burst = 1;
		else if (strcmp(json_string_value(v), "echo")) {
			snprintf(err, errlen, "pace %s", json_string_value(v));
			goto bad;
		}
	}
	v = json_object_get(obj, "permessage_deflate");
	p->deflate = v && !json_is_null(v);
	protocols = json_object_get(obj, "protocols");
	if (json_is_array(protocols)) {
		size_t total = 1;
		json_array_foreach(protocols, i, v)
			total += json_string_length(v) + 1;
		p->protocols = calloc(1, total);
		if (!p->protocols)
			goto bad;
		json_array_foreach(protocols, i, v) {
			if (i)
				strcat(p->protocols, ",");
			strcat(p->protocols, json_string_value(v) ? json_string_value(v) : "");
		}
	}
	ping = json_object_get(obj, "ping");
	if (json_is_object(ping)) {
		p->has_ping = 1;
		if (json_is_string(v = json_object_get(ping, "payload_hex"))) {
			if (from_hex(json_string_value(v), &p->ping, &p->ping_len)) {
				snprintf(err, errlen, "ping.payload_hex is not hex");
				goto bad;
			}
		} else {
			const char *s = json_string_value(json_object_get(ping, "payload"));
			p->ping_len = s ? strlen(s) : 0;
			p->ping = (unsigned char *)strdup(s ? s : "");
		}
	}
	if ((v = json_object_get(obj, "read_delay_ms")))
		p->read_delay_ms = (int)json_integer_value(v);
	close = json_object_get(obj, "close");
	if (json_is_object(close)) {
		const char *by = json_string_value(json_object_get(close, "by"));
		const char *reason = json_string_value(json_object_get(close, "reason"));
		if (by && strcmp(by, "client") && strcmp(by, "server")) {
			snprintf(err, errlen, "close.by %s", by);
			goto bad;
		}
		p->close_by_server = by && !strcmp(by, "server");
		if ((v = json_object_get(close, "code")))
			p->close_code = (int)json_integer_value(v);
		p->close_reason = strdup(reason ? reason : "");
	} else {
		p->close_reason = strdup("");
	}
	return p;
bad:
	plan_free(p);
	return NULL;
}

void
plan_free(struct plan *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->count; i++)
		free(p->msgs[i].data);
	free(p->msgs);
	free(p->protocols);
	free(p->ping);
	free(p->close_reason);
	free(p);
}
