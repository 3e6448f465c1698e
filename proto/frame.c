/* SPDX-License-Identifier: ISC */
/* Frame codec: stream decoder, growable writer, bounds-checked reader. */

/*
 * Everything here treats the peer as hostile.  The decoder owns one buffer
 * of exactly header + max_payload bytes, allocated up front: a frame that
 * fits is always complete once that buffer is full, so a caller can loop
 * feed()/next() without ever holding bytes the decoder refused, and a
 * header announcing more than the maximum is rejected before any of its
 * payload is buffered.  Errors stick: after the first bad header the stream
 * is out of sync and nothing after it can be trusted, so every later call
 * returns the same error and the caller drops the connection.
 *
 * The reader applies the same rule to fields: every get first checks that
 * the bytes are there, and the first failure sticks, so a decoder may read
 * all fields of a message and check the error once.
 */
#include "frame.h"
#include "message.h"

#include <stdlib.h>
#include <string.h>

const char *
pme_proto_strerror(int error)
{
	switch (error) {
	case PME_PROTO_OK:
		return "success";
	case PME_PROTO_EMAGIC:
		return "bad frame magic (not a pme frame)";
	case PME_PROTO_EVERSION:
		return "unsupported protocol version";
	case PME_PROTO_ETYPE:
		return "unknown or unexpected message type";
	case PME_PROTO_ETOOBIG:
		return "frame larger than the maximum payload";
	case PME_PROTO_ETRUNCATED:
		return "truncated frame or field";
	case PME_PROTO_ETRAILING:
		return "trailing bytes after the last field";
	case PME_PROTO_EUTF8:
		return "string is not valid UTF-8 or contains NUL";
	case PME_PROTO_ENAME:
		return "invalid metric name";
	case PME_PROTO_ELABEL:
		return "invalid or duplicate label name";
	case PME_PROTO_EVALUE:
		return "field value out of range";
	case PME_PROTO_ENOMEM:
		return "out of memory";
	case PME_PROTO_ELIMIT:
		return "message exceeds the maximum payload";
	}
	return "unknown protocol error";
}

static uint32_t
load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int
pme_proto_type_known(uint8_t type)
{
	switch (type) {
	case PME_MSG_HELLO:
	case PME_MSG_GROUP_BEGIN:
	case PME_MSG_GROUP_DATA:
	case PME_MSG_GROUP_END:
	case PME_MSG_LOG:
	case PME_MSG_BYE:
	case PME_MSG_EXPLAIN:
	case PME_MSG_SERVICE_CONFIG:
	case PME_MSG_START:
	case PME_MSG_STOP:
	case PME_MSG_RELOAD:
	case PME_MSG_WORKER_READY:
	case PME_MSG_WORKER_EXITED:
	case PME_MSG_START_FAILED:
	case PME_MSG_RELOADED:
		return 1;
	}
	return 0;
}

/* Decoder */

/* A decoder's first buffer: most frames fit, and a process with many
 * decoders (the supervisor has one per worker) does not hold the largest
 * frame for each. */
#define DECODER_FIRST_CAP 4096u

int
pme_proto_decoder_init(struct pme_proto_decoder *dec, uint32_t max_payload)
{
	memset(dec, 0, sizeof(*dec));
	if (max_payload == 0 || max_payload > PME_PROTO_HARD_MAX_PAYLOAD) {
		dec->error = PME_PROTO_EVALUE;
		return PME_PROTO_EVALUE;
	}
	dec->cap = PME_PROTO_HEADER_SIZE + (size_t)max_payload;
	if (dec->cap > DECODER_FIRST_CAP)
		dec->cap = DECODER_FIRST_CAP;
	dec->buf = malloc(dec->cap);
	if (dec->buf == NULL) {
		dec->cap = 0;
		dec->error = PME_PROTO_ENOMEM;
		return PME_PROTO_ENOMEM;
	}
	dec->max_payload = max_payload;
	return 0;
}

void
pme_proto_decoder_free(struct pme_proto_decoder *dec)
{
	free(dec->buf);
	memset(dec, 0, sizeof(*dec));
}

/* Check the header at dec->start, if its 8 bytes are in; sets dec->error. */
static int
decoder_check_header(struct pme_proto_decoder *dec, uint32_t *length)
{
	const uint8_t *h = dec->buf + dec->start;

	if (dec->end - dec->start < PME_PROTO_HEADER_SIZE)
		return 0;
	if (h[0] != PME_PROTO_MAGIC0 || h[1] != PME_PROTO_MAGIC1)
		dec->error = PME_PROTO_EMAGIC;
	else if (h[2] != PME_PROTO_VERSION)
		dec->error = PME_PROTO_EVERSION;
	else if (!pme_proto_type_known(h[3]))
		dec->error = PME_PROTO_ETYPE;
	else if ((*length = load_be32(h + 4)) > dec->max_payload)
		dec->error = PME_PROTO_ETOOBIG;
	else
		return 1;
	return dec->error;
}

size_t
pme_proto_decoder_feed(struct pme_proto_decoder *dec, const void *data, size_t len)
{
	size_t n, full;
	uint32_t length;

	if (dec->error != 0 || dec->buf == NULL || len == 0)
		return 0;
	if (dec->start == dec->end) {
		dec->start = dec->end = 0;
	} else if (dec->cap - dec->end < len && dec->start > 0) {
		memmove(dec->buf, dec->buf + dec->start, dec->end - dec->start);
		dec->end -= dec->start;
		dec->start = 0;
	}
	full = PME_PROTO_HEADER_SIZE + (size_t)dec->max_payload;
	if (dec->cap - dec->end < len && dec->cap < full) {
		size_t want = dec->end + len > 2 * dec->cap ? dec->end + len : 2 * dec->cap;
		uint8_t *grown;

		if (want > full)
			want = full;
		if ((grown = realloc(dec->buf, want)) == NULL) {
			dec->error = PME_PROTO_ENOMEM;
			return 0;
		}
		dec->buf = grown;
		dec->cap = want;
	}
	n = dec->cap - dec->end;
	if (n > len)
		n = len;
	memcpy(dec->buf + dec->end, data, n);
	dec->end += n;
	/* Reject a bad header now, not when the payload is complete. */
	(void)decoder_check_header(dec, &length);
	return n;
}

int
pme_proto_decoder_next(struct pme_proto_decoder *dec, struct pme_proto_frame *frame)
{
	uint32_t length = 0;
	int rc;

	if (dec->error != 0)
		return dec->error;
	if (dec->buf == NULL)
		return dec->error = PME_PROTO_EVALUE;
	rc = decoder_check_header(dec, &length);
	if (rc <= 0)
		return rc;
	if (dec->end - dec->start < PME_PROTO_HEADER_SIZE + (size_t)length)
		return 0;
	frame->type = dec->buf[dec->start + 3];
	frame->length = length;
	frame->payload = dec->buf + dec->start + PME_PROTO_HEADER_SIZE;
	dec->start += PME_PROTO_HEADER_SIZE + (size_t)length;
	return 1;
}

size_t
pme_proto_decoder_pending(const struct pme_proto_decoder *dec)
{
	return dec->end - dec->start;
}

/* Writer */

void
pme_proto_writer_init(struct pme_proto_writer *w, uint32_t max_payload)
{
	memset(w, 0, sizeof(*w));
	if (max_payload > PME_PROTO_HARD_MAX_PAYLOAD)
		max_payload = PME_PROTO_HARD_MAX_PAYLOAD;
	w->max_payload = max_payload;
}

void
pme_proto_writer_free(struct pme_proto_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

/* Make room for n more bytes, or set the writer's error. */
static int
writer_reserve(struct pme_proto_writer *w, size_t n)
{
	size_t limit = PME_PROTO_HEADER_SIZE + (size_t)w->max_payload;
	size_t want, cap;
	uint8_t *p;

	if (w->error != 0)
		return 0;
	if (w->len < PME_PROTO_HEADER_SIZE) {
		/* A put without writer_begin(). */
		w->error = PME_PROTO_EVALUE;
		return 0;
	}
	if (n > limit - w->len) {
		w->error = PME_PROTO_ELIMIT;
		return 0;
	}
	want = w->len + n;
	if (want <= w->cap)
		return 1;
	cap = w->cap < 256 ? 256 : w->cap;
	while (cap < want)
		cap = cap > limit / 2 ? limit : cap * 2;
	if (cap > limit)
		cap = limit;
	p = realloc(w->buf, cap);
	if (p == NULL) {
		w->error = PME_PROTO_ENOMEM;
		return 0;
	}
	w->buf = p;
	w->cap = cap;
	return 1;
}

void
pme_proto_writer_begin(struct pme_proto_writer *w, uint8_t type)
{
	size_t first = PME_PROTO_HEADER_SIZE + (size_t)w->max_payload;
	uint8_t *p;

	w->len = 0;
	w->error = 0;
	w->sample_at = 0;
	w->sample_labels = 0;
	if (first > 256)
		first = 256;
	if (w->cap < first) {
		p = realloc(w->buf, first);
		if (p == NULL) {
			w->error = PME_PROTO_ENOMEM;
			return;
		}
		w->buf = p;
		w->cap = first;
	}
	w->buf[0] = PME_PROTO_MAGIC0;
	w->buf[1] = PME_PROTO_MAGIC1;
	w->buf[2] = PME_PROTO_VERSION;
	w->buf[3] = type;
	store_be32(w->buf + 4, 0);
	w->len = PME_PROTO_HEADER_SIZE;
}

static void
put_raw(struct pme_proto_writer *w, const void *data, size_t n)
{
	if (!writer_reserve(w, n))
		return;
	if (n > 0)
		memcpy(w->buf + w->len, data, n);
	w->len += n;
}

void
pme_proto_put_u8(struct pme_proto_writer *w, uint8_t v)
{
	put_raw(w, &v, 1);
}

void
pme_proto_put_u16(struct pme_proto_writer *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	put_raw(w, b, sizeof(b));
}

void
pme_proto_put_u32(struct pme_proto_writer *w, uint32_t v)
{
	uint8_t b[4];

	store_be32(b, v);
	put_raw(w, b, sizeof(b));
}

void
pme_proto_put_i32(struct pme_proto_writer *w, int32_t v)
{
	pme_proto_put_u32(w, (uint32_t)v);
}

void
pme_proto_put_u64(struct pme_proto_writer *w, uint64_t v)
{
	uint8_t b[8];

	store_be32(b, (uint32_t)(v >> 32));
	store_be32(b + 4, (uint32_t)v);
	put_raw(w, b, sizeof(b));
}

void
pme_proto_put_f64(struct pme_proto_writer *w, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	pme_proto_put_u64(w, bits);
}

void
pme_proto_put_str(struct pme_proto_writer *w, const char *s, size_t len)
{
	if (len > UINT32_MAX || len > w->max_payload) {
		if (w->error == 0)
			w->error = PME_PROTO_ELIMIT;
		return;
	}
	pme_proto_put_u32(w, (uint32_t)len);
	put_raw(w, s, len);
}

size_t
pme_proto_writer_payload_len(const struct pme_proto_writer *w)
{
	return w->len < PME_PROTO_HEADER_SIZE ? 0 : w->len - PME_PROTO_HEADER_SIZE;
}

int
pme_proto_writer_finish(struct pme_proto_writer *w)
{
	if (w->error != 0)
		return w->error;
	if (w->len < PME_PROTO_HEADER_SIZE)
		return w->error = PME_PROTO_EVALUE;
	store_be32(w->buf + 4, (uint32_t)(w->len - PME_PROTO_HEADER_SIZE));
	return 0;
}

/* Reader */

void
pme_proto_reader_init(struct pme_proto_reader *r, const struct pme_proto_frame *frame)
{
	r->p = frame->payload;
	r->left = frame->length;
	r->error = 0;
}

/* Take n bytes off the reader: a pointer to them, or NULL with r->error set. */
static const uint8_t *
reader_take(struct pme_proto_reader *r, size_t n)
{
	const uint8_t *p;

	if (r->error != 0)
		return NULL;
	if (n > r->left) {
		r->error = PME_PROTO_ETRUNCATED;
		return NULL;
	}
	p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

int
pme_proto_get_u8(struct pme_proto_reader *r, uint8_t *v)
{
	const uint8_t *p = reader_take(r, 1);

	if (p == NULL)
		return r->error;
	*v = p[0];
	return 0;
}

int
pme_proto_get_u16(struct pme_proto_reader *r, uint16_t *v)
{
	const uint8_t *p = reader_take(r, 2);

	if (p == NULL)
		return r->error;
	*v = (uint16_t)(p[0] << 8 | p[1]);
	return 0;
}

int
pme_proto_get_u32(struct pme_proto_reader *r, uint32_t *v)
{
	const uint8_t *p = reader_take(r, 4);

	if (p == NULL)
		return r->error;
	*v = load_be32(p);
	return 0;
}

int
pme_proto_get_i32(struct pme_proto_reader *r, int32_t *v)
{
	uint32_t u;
	int rc = pme_proto_get_u32(r, &u);

	if (rc != 0)
		return rc;
	memcpy(v, &u, sizeof(*v));
	return 0;
}

int
pme_proto_get_u64(struct pme_proto_reader *r, uint64_t *v)
{
	const uint8_t *p = reader_take(r, 8);

	if (p == NULL)
		return r->error;
	*v = (uint64_t)load_be32(p) << 32 | load_be32(p + 4);
	return 0;
}

int
pme_proto_get_f64(struct pme_proto_reader *r, double *v)
{
	uint64_t bits;
	int rc = pme_proto_get_u64(r, &bits);

	if (rc != 0)
		return rc;
	memcpy(v, &bits, sizeof(*v));
	return 0;
}

int
pme_proto_get_bytes(struct pme_proto_reader *r, struct pme_proto_str *s)
{
	uint32_t len;
	const uint8_t *p;

	if (pme_proto_get_u32(r, &len) != 0)
		return r->error;
	p = reader_take(r, len);
	if (p == NULL)
		return r->error;
	s->ptr = (const char *)p;
	s->len = len;
	return 0;
}

int
pme_proto_get_str(struct pme_proto_reader *r, struct pme_proto_str *s)
{
	if (pme_proto_get_bytes(r, s) != 0)
		return r->error;
	if (!pme_proto_valid_utf8(s->ptr, s->len))
		return r->error = PME_PROTO_EUTF8;
	return 0;
}

int
pme_proto_reader_end(struct pme_proto_reader *r)
{
	if (r->error == 0 && r->left != 0)
		r->error = PME_PROTO_ETRAILING;
	return r->error;
}

/* Validators: 1 when valid, 0 when not. */

int
pme_proto_valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		uint32_t cp, min;
		size_t n, k;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			/* Continuation byte, overlong lead (c0, c1) or > U+10FFFF. */
			return 0;
		}
		if (len - i - 1 < n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

static int
is_alpha_(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int
pme_proto_valid_metric_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > PME_PROTO_MAX_NAME)
		return 0;
	if (!is_alpha_(s[0]) && s[0] != ':')
		return 0;
	for (i = 1; i < len; i++)
		if (!is_alpha_(s[i]) && !is_digit(s[i]) && s[i] != ':')
			return 0;
	return 1;
}

int
pme_proto_valid_label_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > PME_PROTO_MAX_NAME)
		return 0;
	if (!is_alpha_(s[0]))
		return 0;
	if (len >= 2 && s[0] == '_' && s[1] == '_')
		return 0;
	for (i = 1; i < len; i++)
		if (!is_alpha_(s[i]) && !is_digit(s[i]))
			return 0;
	return 1;
}
