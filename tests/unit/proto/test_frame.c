/* SPDX-License-Identifier: ISC */
/* Frame codec: decoder over a real socketpair(), writer, reader, validators. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/frame.h"
#include "proto/message.h"
#include "wire.h"

/* Frames as received, copied out of the decoder. */
struct got {
	size_t n;
	uint8_t type[64];
	uint32_t length[64];
	uint8_t *payload[64];
};

static void
collect(const struct pme_proto_frame *frame, void *arg)
{
	struct got *g = arg;

	assert_true(g->n < 64);
	g->type[g->n] = frame->type;
	g->length[g->n] = frame->length;
	g->payload[g->n] = malloc(frame->length + 1);
	assert_non_null(g->payload[g->n]);
	memcpy(g->payload[g->n], frame->payload, frame->length);
	g->n++;
}

static void
got_free(struct got *g)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		free(g->payload[i]);
	g->n = 0;
}

/* A stream of three frames: LOG "hello", BYE (empty), GROUP_DATA of 300 bytes. */
struct stream {
	uint8_t bytes[1024];
	size_t len;
};

static void
append_frame(struct stream *s, struct pme_proto_writer *w)
{
	assert_int_equal(pme_proto_writer_finish(w), 0);
	assert_true(s->len + w->len <= sizeof(s->bytes));
	memcpy(s->bytes + s->len, w->buf, w->len);
	s->len += w->len;
}

static void
make_stream(struct stream *s)
{
	struct pme_proto_writer w;
	int i;

	s->len = 0;
	pme_proto_writer_init(&w, PME_PROTO_MAX_PAYLOAD);
	pme_proto_encode_log(&w, 6, "hello", 5);
	append_frame(s, &w);
	pme_proto_encode_empty(&w, PME_MSG_BYE);
	append_frame(s, &w);
	pme_proto_writer_begin(&w, PME_MSG_GROUP_DATA);
	for (i = 0; i < 300; i++)
		pme_proto_put_u8(&w, (uint8_t)i);
	append_frame(s, &w);
	pme_proto_writer_free(&w);
}

static void
check_stream(struct got *g)
{
	int i;

	assert_int_equal(g->n, 3);
	assert_int_equal(g->type[0], PME_MSG_LOG);
	assert_int_equal(g->length[0], 1 + 4 + 5);
	assert_int_equal(g->payload[0][0], 6);
	assert_memory_equal(g->payload[0] + 5, "hello", 5);
	assert_int_equal(g->type[1], PME_MSG_BYE);
	assert_int_equal(g->length[1], 0);
	assert_int_equal(g->type[2], PME_MSG_GROUP_DATA);
	assert_int_equal(g->length[2], 300);
	for (i = 0; i < 300; i++)
		assert_int_equal(g->payload[2][i], (uint8_t)i);
}

static void
test_byte_by_byte(void **state)
{
	struct stream s;
	struct wire w;
	struct pme_proto_decoder dec;
	struct got g = { 0 };

	(void)state;
	make_stream(&s);
	wire_open(&w);
	assert_int_equal(pme_proto_decoder_init(&dec, PME_PROTO_MAX_PAYLOAD), 0);
	/* One write() per byte, and a read() + feed after each. */
	assert_int_equal(wire_pump(&w, s.bytes, s.len, 1, &dec, collect, &g), 0);
	check_stream(&g);
	assert_int_equal(pme_proto_decoder_pending(&dec), 0);
	got_free(&g);
	pme_proto_decoder_free(&dec);
	wire_close(&w);
}

static void
test_split_at_every_byte(void **state)
{
	struct stream s;
	struct wire w;
	struct pme_proto_decoder dec;
	struct got g = { 0 };
	size_t cut;

	(void)state;
	make_stream(&s);
	wire_open(&w);
	for (cut = 1; cut < s.len; cut++) {
		assert_int_equal(pme_proto_decoder_init(&dec, PME_PROTO_MAX_PAYLOAD), 0);
		assert_int_equal(wire_pump(&w, s.bytes, cut, cut, &dec, collect, &g), 0);
		/* Only the frames wholly before the cut are out. */
		assert_true(g.n <= 2);
		assert_int_equal(wire_pump(&w, s.bytes + cut, s.len - cut, s.len, &dec,
		    collect, &g), 0);
		check_stream(&g);
		assert_int_equal(pme_proto_decoder_pending(&dec), 0);
		got_free(&g);
		pme_proto_decoder_free(&dec);
	}
	wire_close(&w);
}

static void
test_several_frames_in_one_read(void **state)
{
	struct stream s;
	struct wire w;
	struct pme_proto_decoder dec;
	struct pme_proto_frame f;
	uint8_t buf[2048];
	ssize_t n;

	(void)state;
	make_stream(&s);
	wire_open(&w);
	assert_int_equal(write(w.tx, s.bytes, s.len), (ssize_t)s.len);
	n = read(w.rx, buf, sizeof(buf));
	assert_int_equal(n, (ssize_t)s.len);
	assert_int_equal(pme_proto_decoder_init(&dec, PME_PROTO_MAX_PAYLOAD), 0);
	assert_int_equal(pme_proto_decoder_feed(&dec, buf, (size_t)n), (size_t)n);
	assert_int_equal(pme_proto_decoder_next(&dec, &f), 1);
	assert_int_equal(f.type, PME_MSG_LOG);
	assert_int_equal(pme_proto_decoder_next(&dec, &f), 1);
	assert_int_equal(f.type, PME_MSG_BYE);
	assert_int_equal(pme_proto_decoder_next(&dec, &f), 1);
	assert_int_equal(f.type, PME_MSG_GROUP_DATA);
	assert_int_equal(f.length, 300);
	assert_int_equal(pme_proto_decoder_next(&dec, &f), 0);
	assert_int_equal(pme_proto_decoder_pending(&dec), 0);
	pme_proto_decoder_free(&dec);
	wire_close(&w);
}

/* A decoder smaller than one read: feed takes what fits, the caller loops. */
static void
test_feed_takes_what_fits(void **state)
{
	struct pme_proto_writer wr;
	struct pme_proto_decoder dec;
	struct pme_proto_frame f;
	struct wire w;
	struct got g = { 0 };
	uint8_t all[40 * 24], buf[sizeof(all)];
	size_t len = 0, taken, off;
	int i, j, frames = 0;
	ssize_t n;

	(void)state;
	pme_proto_writer_init(&wr, 16);
	for (i = 0; i < 40; i++) {
		pme_proto_writer_begin(&wr, PME_MSG_GROUP_DATA);
		for (j = 0; j < 16; j++)
			pme_proto_put_u8(&wr, (uint8_t)(i + j));
		assert_int_equal(pme_proto_writer_finish(&wr), 0);
		memcpy(all + len, wr.buf, wr.len);
		len += wr.len;
	}
	pme_proto_writer_free(&wr);

	wire_open(&w);
	assert_int_equal(write(w.tx, all, len), (ssize_t)len);
	n = read(w.rx, buf, sizeof(buf));
	assert_int_equal(n, (ssize_t)len);
	assert_int_equal(pme_proto_decoder_init(&dec, 16), 0);
	taken = pme_proto_decoder_feed(&dec, buf, (size_t)n);
	/* Never more than one header + max payload buffered. */
	assert_int_equal(taken, PME_PROTO_HEADER_SIZE + 16);
	assert_int_equal(pme_proto_decoder_feed(&dec, buf + taken, (size_t)n - taken), 0);
	for (off = taken, i = 0; off < (size_t)n || pme_proto_decoder_pending(&dec) > 0; i++) {
		assert_true(i < 1000);
		off += pme_proto_decoder_feed(&dec, buf + off, (size_t)n - off);
		assert_true(pme_proto_decoder_pending(&dec) <= PME_PROTO_HEADER_SIZE + 16);
		while (pme_proto_decoder_next(&dec, &f) == 1) {
			assert_int_equal(f.length, 16);
			assert_int_equal(f.payload[0], (uint8_t)frames);
			assert_int_equal(f.payload[15], (uint8_t)(frames + 15));
			frames++;
		}
	}
	assert_int_equal(frames, 40);
	pme_proto_decoder_free(&dec);

	/* Same bytes through the helper's loop, written in odd-sized chunks. */
	assert_int_equal(pme_proto_decoder_init(&dec, 16), 0);
	assert_int_equal(wire_pump(&w, all, len, 37, &dec, collect, &g), 0);
	assert_int_equal(g.n, 40);
	assert_int_equal(g.payload[39][0], 39);
	got_free(&g);
	pme_proto_decoder_free(&dec);
	wire_close(&w);
}

static void
put_header(uint8_t *h, uint8_t m0, uint8_t m1, uint8_t version, uint8_t type, uint32_t len)
{
	h[0] = m0;
	h[1] = m1;
	h[2] = version;
	h[3] = type;
	h[4] = (uint8_t)(len >> 24);
	h[5] = (uint8_t)(len >> 16);
	h[6] = (uint8_t)(len >> 8);
	h[7] = (uint8_t)len;
}

/* Send only a header and check the decoder rejects it with `want`. */
static void
check_bad_header(const uint8_t *h, uint32_t max, int want)
{
	struct pme_proto_decoder dec;
	struct pme_proto_frame f;
	struct wire w;
	uint8_t more[4] = { 0 };

	wire_open(&w);
	assert_int_equal(pme_proto_decoder_init(&dec, max), 0);
	/* Byte by byte: nothing is wrong until the 8th byte is in. */
	assert_int_equal(wire_pump(&w, h, PME_PROTO_HEADER_SIZE, 1, &dec, NULL, NULL), want);
	/* Sticky: no more bytes taken, same error. */
	assert_int_equal(pme_proto_decoder_feed(&dec, more, sizeof(more)), 0);
	assert_int_equal(pme_proto_decoder_next(&dec, &f), want);
	assert_int_equal(pme_proto_decoder_next(&dec, &f), want);
	assert_int_equal(pme_proto_decoder_pending(&dec), PME_PROTO_HEADER_SIZE);
	pme_proto_decoder_free(&dec);
	wire_close(&w);
}

static void
test_oversize_rejected_before_payload(void **state)
{
	uint8_t h[8];

	(void)state;
	put_header(h, 'P', 'M', PME_PROTO_VERSION, PME_MSG_GROUP_DATA, 1025);
	check_bad_header(h, 1024, PME_PROTO_ETOOBIG);
	put_header(h, 'P', 'M', PME_PROTO_VERSION, PME_MSG_LOG, 0xffffffffu);
	check_bad_header(h, PME_PROTO_MAX_PAYLOAD, PME_PROTO_ETOOBIG);
}

static void
test_exact_max_accepted(void **state)
{
	struct pme_proto_writer wr;
	struct pme_proto_decoder dec;
	struct wire w;
	struct got g = { 0 };
	int i;

	(void)state;
	pme_proto_writer_init(&wr, 1024);
	pme_proto_writer_begin(&wr, PME_MSG_GROUP_DATA);
	for (i = 0; i < 1024; i++)
		pme_proto_put_u8(&wr, 0xab);
	assert_int_equal(pme_proto_writer_finish(&wr), 0);
	wire_open(&w);
	assert_int_equal(pme_proto_decoder_init(&dec, 1024), 0);
	assert_int_equal(wire_pump(&w, wr.buf, wr.len, 100, &dec, collect, &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.length[0], 1024);
	assert_int_equal(g.payload[0][1023], 0xab);
	got_free(&g);
	pme_proto_decoder_free(&dec);
	pme_proto_writer_free(&wr);
	wire_close(&w);
}

/* The buffer starts small and grows to the largest frame, whole or in
 * pieces, with a partial frame pending; never past it. */
static void
test_decoder_grows_to_the_largest_frame(void **state)
{
	struct pme_proto_writer wr;
	struct pme_proto_decoder dec;
	struct pme_proto_frame f;
	uint8_t *all;
	size_t len = 0, off, sizes[] = { 10, PME_PROTO_MAX_PAYLOAD, 3000, PME_PROTO_MAX_PAYLOAD };
	size_t i, j, chunk, got;

	(void)state;
	all = malloc(4 * (PME_PROTO_HEADER_SIZE + PME_PROTO_MAX_PAYLOAD));
	assert_non_null(all);
	pme_proto_writer_init(&wr, PME_PROTO_MAX_PAYLOAD);
	for (i = 0; i < 4; i++) {
		pme_proto_writer_begin(&wr, PME_MSG_GROUP_DATA);
		for (j = 0; j < sizes[i]; j++)
			pme_proto_put_u8(&wr, (uint8_t)(i * 7 + j));
		assert_int_equal(pme_proto_writer_finish(&wr), 0);
		memcpy(all + len, wr.buf, wr.len);
		len += wr.len;
	}
	pme_proto_writer_free(&wr);

	for (chunk = 1000; chunk <= len; chunk *= 7) {
		assert_int_equal(pme_proto_decoder_init(&dec, PME_PROTO_MAX_PAYLOAD), 0);
		assert_true(dec.cap < PME_PROTO_MAX_PAYLOAD);
		for (off = 0, got = 0; off < len || pme_proto_decoder_pending(&dec) > 0;) {
			size_t n = len - off < chunk ? len - off : chunk;

			off += pme_proto_decoder_feed(&dec, all + off, n);
			assert_true(dec.cap <= PME_PROTO_HEADER_SIZE + PME_PROTO_MAX_PAYLOAD);
			while (pme_proto_decoder_next(&dec, &f) == 1) {
				assert_true(got < 4);
				assert_int_equal(f.length, sizes[got]);
				for (j = 0; j < f.length; j++)
					assert_int_equal(f.payload[j], (uint8_t)(got * 7 + j));
				got++;
			}
		}
		assert_int_equal(got, 4);
		pme_proto_decoder_free(&dec);
	}
	free(all);
}

static void
test_bad_magic_version_type(void **state)
{
	uint8_t h[8];

	(void)state;
	put_header(h, 'X', 'M', PME_PROTO_VERSION, PME_MSG_LOG, 0);
	check_bad_header(h, 64, PME_PROTO_EMAGIC);
	put_header(h, 'P', 'N', PME_PROTO_VERSION, PME_MSG_LOG, 0);
	check_bad_header(h, 64, PME_PROTO_EMAGIC);
	put_header(h, 'P', 'M', 2, PME_MSG_LOG, 0);
	check_bad_header(h, 64, PME_PROTO_EVERSION);
	put_header(h, 'P', 'M', 0, PME_MSG_LOG, 0);
	check_bad_header(h, 64, PME_PROTO_EVERSION);
	put_header(h, 'P', 'M', PME_PROTO_VERSION, 0x00, 0);
	check_bad_header(h, 64, PME_PROTO_ETYPE);
	put_header(h, 'P', 'M', PME_PROTO_VERSION, 0x1f, 0);
	check_bad_header(h, 64, PME_PROTO_ETYPE);
	put_header(h, 'P', 'M', PME_PROTO_VERSION, 0xff, 0);
	check_bad_header(h, 64, PME_PROTO_ETYPE);
}

/* A good frame then garbage: the good one comes out, then the error sticks. */
static void
test_garbage_after_frame(void **state)
{
	struct stream s;
	struct pme_proto_decoder dec;
	struct wire w;
	struct got g = { 0 };
	size_t first;

	(void)state;
	make_stream(&s);
	first = PME_PROTO_HEADER_SIZE + 10;     /* the LOG frame */
	memcpy(s.bytes + first, "GET / HTTP/1.0\r\n", 16);
	wire_open(&w);
	assert_int_equal(pme_proto_decoder_init(&dec, PME_PROTO_MAX_PAYLOAD), 0);
	assert_int_equal(wire_pump(&w, s.bytes, s.len, 7, &dec, collect, &g),
	    PME_PROTO_EMAGIC);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.type[0], PME_MSG_LOG);
	got_free(&g);
	pme_proto_decoder_free(&dec);
	wire_close(&w);
}

static void
test_truncated_at_eof(void **state)
{
	struct stream s;
	struct pme_proto_decoder dec;
	struct pme_proto_frame f;
	struct wire w;
	struct got g = { 0 };
	uint8_t buf[64];

	(void)state;
	make_stream(&s);
	wire_open(&w);
	assert_int_equal(pme_proto_decoder_init(&dec, PME_PROTO_MAX_PAYLOAD), 0);
	/* LOG and BYE whole, then the header and 100 of 300 payload bytes. */
	assert_int_equal(wire_pump(&w, s.bytes, 18 + 8 + 8 + 100, 5, &dec, collect, &g), 0);
	assert_int_equal(g.n, 2);
	close(w.tx);
	w.tx = -1;
	assert_int_equal(read(w.rx, buf, sizeof(buf)), 0); /* EOF */
	assert_int_equal(pme_proto_decoder_next(&dec, &f), 0);
	assert_int_equal(pme_proto_decoder_pending(&dec), 108);
	got_free(&g);
	pme_proto_decoder_free(&dec);

	/* A half header is pending too. */
	wire_open(&w);
	assert_int_equal(pme_proto_decoder_init(&dec, PME_PROTO_MAX_PAYLOAD), 0);
	assert_int_equal(wire_pump(&w, s.bytes, 3, 1, &dec, NULL, NULL), 0);
	assert_int_equal(pme_proto_decoder_next(&dec, &f), 0);
	assert_int_equal(pme_proto_decoder_pending(&dec), 3);
	pme_proto_decoder_free(&dec);
	wire_close(&w);
}

static void
test_decoder_init_bounds(void **state)
{
	struct pme_proto_decoder dec;

	(void)state;
	assert_int_not_equal(pme_proto_decoder_init(&dec, 0), 0);
	pme_proto_decoder_free(&dec);
	assert_int_not_equal(pme_proto_decoder_init(&dec, PME_PROTO_HARD_MAX_PAYLOAD + 1), 0);
	pme_proto_decoder_free(&dec);
	assert_int_equal(pme_proto_decoder_init(&dec, PME_PROTO_HARD_MAX_PAYLOAD), 0);
	assert_true(dec.cap < 65536);   /* starts small, grows as frames need */
	pme_proto_decoder_free(&dec);
}

static void
test_writer_layout(void **state)
{
	static const uint8_t want[] = {
		'P', 'M', PME_PROTO_VERSION, PME_MSG_GROUP_DATA, 0, 0, 0, 34,
		0xab,
		0x12, 0x34,
		0xde, 0xad, 0xbe, 0xef,
		0xff, 0xff, 0xff, 0xfe,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x3f, 0xf8, 0, 0, 0, 0, 0, 0,          /* 1.5 */
		0, 0, 0, 3, 'a', 'b', 'c',
	};
	struct pme_proto_writer w;

	(void)state;
	pme_proto_writer_init(&w, PME_PROTO_MAX_PAYLOAD);
	pme_proto_writer_begin(&w, PME_MSG_GROUP_DATA);
	pme_proto_put_u8(&w, 0xab);
	pme_proto_put_u16(&w, 0x1234);
	pme_proto_put_u32(&w, 0xdeadbeef);
	pme_proto_put_i32(&w, -2);
	pme_proto_put_u64(&w, 0x0102030405060708ull);
	pme_proto_put_f64(&w, 1.5);
	pme_proto_put_str(&w, "abc", 3);
	assert_int_equal(pme_proto_writer_payload_len(&w), 34);
	assert_int_equal(pme_proto_writer_finish(&w), 0);
	assert_int_equal(w.len, sizeof(want));
	assert_memory_equal(w.buf, want, sizeof(want));
	pme_proto_writer_free(&w);
}

static void
test_writer_limit(void **state)
{
	struct pme_proto_writer w;
	uint8_t big[100];
	int i;

	(void)state;
	memset(big, 'x', sizeof(big));
	pme_proto_writer_init(&w, 1000);
	pme_proto_writer_begin(&w, PME_MSG_LOG);
	for (i = 0; i < 10; i++)
		pme_proto_put_u8(&w, 1);
	assert_int_equal(pme_proto_writer_payload_len(&w), 10);
	/* 10 + 9 * 104 = 946 fits, the tenth string does not. */
	for (i = 0; i < 9; i++)
		pme_proto_put_str(&w, (const char *)big, sizeof(big));
	assert_int_equal(w.error, 0);
	assert_int_equal(pme_proto_writer_payload_len(&w), 946);
	pme_proto_put_str(&w, (const char *)big, sizeof(big));
	assert_int_equal(w.error, PME_PROTO_ELIMIT);
	/* Sticky: even a byte that would fit is refused now. */
	pme_proto_put_u8(&w, 1);
	assert_int_equal(pme_proto_writer_finish(&w), PME_PROTO_ELIMIT);
	assert_true(w.cap <= PME_PROTO_HEADER_SIZE + 1000);
	/* begin() starts afresh. */
	pme_proto_writer_begin(&w, PME_MSG_LOG);
	pme_proto_put_u8(&w, 1);
	assert_int_equal(pme_proto_writer_finish(&w), 0);
	assert_int_equal(w.len, PME_PROTO_HEADER_SIZE + 1);
	pme_proto_writer_free(&w);

	/* A tiny writer never allocates past header + its maximum. */
	pme_proto_writer_init(&w, 4);
	pme_proto_writer_begin(&w, PME_MSG_LOG);
	pme_proto_put_u32(&w, 7);
	assert_int_equal(pme_proto_writer_finish(&w), 0);
	assert_true(w.cap <= PME_PROTO_HEADER_SIZE + 4);
	pme_proto_put_u8(&w, 1);
	assert_int_equal(pme_proto_writer_finish(&w), PME_PROTO_ELIMIT);
	pme_proto_writer_free(&w);

	/* A put before begin() is a caller bug, reported at finish(). */
	pme_proto_writer_init(&w, 1000);
	pme_proto_put_u8(&w, 1);
	assert_int_not_equal(pme_proto_writer_finish(&w), 0);
	pme_proto_writer_free(&w);
}

static void
test_writer_grows_to_hard_max(void **state)
{
	struct pme_proto_writer w;
	char *big = malloc(PME_PROTO_HARD_MAX_PAYLOAD);

	(void)state;
	assert_non_null(big);
	memset(big, 'y', PME_PROTO_HARD_MAX_PAYLOAD);
	pme_proto_writer_init(&w, PME_PROTO_HARD_MAX_PAYLOAD);
	pme_proto_writer_begin(&w, PME_MSG_SERVICE_CONFIG);
	pme_proto_put_str(&w, big, PME_PROTO_HARD_MAX_PAYLOAD - 4);
	assert_int_equal(pme_proto_writer_finish(&w), 0);
	assert_int_equal(w.len, PME_PROTO_HEADER_SIZE + PME_PROTO_HARD_MAX_PAYLOAD);
	pme_proto_put_u8(&w, 0);
	assert_int_equal(pme_proto_writer_finish(&w), PME_PROTO_ELIMIT);
	pme_proto_writer_free(&w);
	free(big);
}

static void
test_reader_bounds(void **state)
{
	static const uint8_t payload[] = {
		0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xfe,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x3f, 0xf8, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 3, 'a', 'b', 'c',
		0, 0, 0, 9, 'x',
	};
	struct pme_proto_frame f = { PME_MSG_GROUP_DATA, sizeof(payload), payload };
	struct pme_proto_reader r;
	struct pme_proto_str s;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	int32_t i32;
	uint64_t u64;
	double d;

	(void)state;
	pme_proto_reader_init(&r, &f);
	assert_int_equal(pme_proto_get_u8(&r, &u8), 0);
	assert_int_equal(u8, 0xab);
	assert_int_equal(pme_proto_get_u16(&r, &u16), 0);
	assert_int_equal(u16, 0x1234);
	assert_int_equal(pme_proto_get_u32(&r, &u32), 0);
	assert_int_equal(u32, 0xdeadbeef);
	assert_int_equal(pme_proto_get_i32(&r, &i32), 0);
	assert_int_equal(i32, -2);
	assert_int_equal(pme_proto_get_u64(&r, &u64), 0);
	assert_true(u64 == 0x0102030405060708ull);
	assert_int_equal(pme_proto_get_f64(&r, &d), 0);
	assert_true(d == 1.5);
	assert_int_equal(pme_proto_get_str(&r, &s), 0);
	assert_int_equal(s.len, 3);
	assert_memory_equal(s.ptr, "abc", 3);
	assert_int_equal(pme_proto_reader_end(&r), PME_PROTO_ETRAILING);
	/* A string announcing 9 bytes with 1 left. */
	pme_proto_reader_init(&r, &f);
	r.p += 34;
	r.left -= 34;
	assert_int_equal(pme_proto_get_str(&r, &s), PME_PROTO_ETRUNCATED);
	assert_int_equal(r.left, 1);
	/* Sticky, even for a get that would fit. */
	assert_int_equal(pme_proto_get_u8(&r, &u8), PME_PROTO_ETRUNCATED);
	assert_int_equal(pme_proto_reader_end(&r), PME_PROTO_ETRUNCATED);
	/* Every get past the end. */
	f.length = 0;
	pme_proto_reader_init(&r, &f);
	assert_int_equal(pme_proto_reader_end(&r), 0);
	assert_int_equal(pme_proto_get_u64(&r, &u64), PME_PROTO_ETRUNCATED);
	f.length = 3;
	pme_proto_reader_init(&r, &f);
	assert_int_equal(pme_proto_get_u32(&r, &u32), PME_PROTO_ETRUNCATED);
	pme_proto_reader_init(&r, &f);
	assert_int_equal(pme_proto_get_f64(&r, &d), PME_PROTO_ETRUNCATED);
	f.length = 1;
	pme_proto_reader_init(&r, &f);
	assert_int_equal(pme_proto_get_u16(&r, &u16), PME_PROTO_ETRUNCATED);
}

static void
test_get_str_utf8(void **state)
{
	static const uint8_t payload[] = { 0, 0, 0, 2, 0xc0, 0x80 };
	struct pme_proto_frame f = { PME_MSG_LOG, sizeof(payload), payload };
	struct pme_proto_reader r;
	struct pme_proto_str s;

	(void)state;
	pme_proto_reader_init(&r, &f);
	assert_int_equal(pme_proto_get_str(&r, &s), PME_PROTO_EUTF8);
	/* get_bytes takes the same string as opaque bytes. */
	pme_proto_reader_init(&r, &f);
	assert_int_equal(pme_proto_get_bytes(&r, &s), 0);
	assert_int_equal(s.len, 2);
	assert_int_equal(pme_proto_reader_end(&r), 0);
}

static void
test_utf8_validator(void **state)
{
	static const struct {
		const char *s;
		size_t len;
		int valid;
	} cases[] = {
		{ "", 0, 1 },
		{ "plain ascii", 11, 1 },
		{ "caf\xc3\xa9", 5, 1 },                    /* U+00E9 */
		{ "\xc2\x80", 2, 1 },                       /* U+0080, smallest 2-byte */
		{ "\xe0\xa0\x80", 3, 1 },                   /* U+0800 */
		{ "\xe2\x82\xac", 3, 1 },                   /* euro sign */
		{ "\xed\x9f\xbf", 3, 1 },                   /* U+D7FF */
		{ "\xee\x80\x80", 3, 1 },                   /* U+E000 */
		{ "\xef\xbf\xbf", 3, 1 },                   /* U+FFFF */
		{ "\xf0\x90\x80\x80", 4, 1 },               /* U+10000 */
		{ "\xf4\x8f\xbf\xbf", 4, 1 },               /* U+10FFFF */
		{ "a\0b", 3, 0 },                           /* NUL */
		{ "\xc0\x80", 2, 0 },                       /* overlong NUL */
		{ "\xc1\xbf", 2, 0 },                       /* overlong */
		{ "\xe0\x80\x80", 3, 0 },                   /* overlong 3-byte */
		{ "\xe0\x9f\xbf", 3, 0 },                   /* overlong U+07FF */
		{ "\xf0\x80\x80\x80", 4, 0 },               /* overlong 4-byte */
		{ "\xf0\x8f\xbf\xbf", 4, 0 },               /* overlong U+FFFF */
		{ "\xed\xa0\x80", 3, 0 },                   /* surrogate U+D800 */
		{ "\xed\xbf\xbf", 3, 0 },                   /* surrogate U+DFFF */
		{ "\xf4\x90\x80\x80", 4, 0 },               /* U+110000 */
		{ "\xf5\x80\x80\x80", 4, 0 },
		{ "\xff", 1, 0 },
		{ "\x80", 1, 0 },                           /* lone continuation */
		{ "ab\xe2\x82", 4, 0 },                     /* truncated at end */
		{ "\xe2\x82z", 3, 0 },                      /* truncated mid-string */
		{ "\xf0\x90\x80", 3, 0 },
		{ "\xc3", 1, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (pme_proto_valid_utf8(cases[i].s, cases[i].len) != cases[i].valid)
			fail_msg("case %zu: expected %s", i, cases[i].valid ? "valid" : "invalid");
	}
}

static void
test_name_validators(void **state)
{
	char longname[PME_PROTO_MAX_NAME + 2];

	(void)state;
	assert_true(pme_proto_valid_metric_name("http_requests_total", 19));
	assert_true(pme_proto_valid_metric_name(":a:b_9", 6));
	assert_true(pme_proto_valid_metric_name("_x", 2));
	assert_true(pme_proto_valid_metric_name("__x", 3));
	assert_false(pme_proto_valid_metric_name("", 0));
	assert_false(pme_proto_valid_metric_name("9lives", 6));
	assert_false(pme_proto_valid_metric_name("a-b", 3));
	assert_false(pme_proto_valid_metric_name("a.b", 3));
	assert_false(pme_proto_valid_metric_name("a b", 3));
	assert_false(pme_proto_valid_metric_name("caf\xc3\xa9", 5));
	assert_false(pme_proto_valid_metric_name("ab\0", 3));

	assert_true(pme_proto_valid_label_name("le", 2));
	assert_true(pme_proto_valid_label_name("_x", 2));
	assert_true(pme_proto_valid_label_name("a_9", 3));
	assert_false(pme_proto_valid_label_name("", 0));
	assert_false(pme_proto_valid_label_name("__name__", 8));
	assert_false(pme_proto_valid_label_name("__", 2));
	assert_false(pme_proto_valid_label_name("a:b", 3));
	assert_false(pme_proto_valid_label_name("1a", 2));
	assert_false(pme_proto_valid_label_name("a-b", 3));

	memset(longname, 'a', sizeof(longname));
	assert_true(pme_proto_valid_metric_name(longname, PME_PROTO_MAX_NAME));
	assert_false(pme_proto_valid_metric_name(longname, PME_PROTO_MAX_NAME + 1));
	assert_true(pme_proto_valid_label_name(longname, PME_PROTO_MAX_NAME));
	assert_false(pme_proto_valid_label_name(longname, PME_PROTO_MAX_NAME + 1));
}

static void
test_strerror(void **state)
{
	int e;

	(void)state;
	for (e = PME_PROTO_ELIMIT; e <= 0; e++) {
		assert_non_null(pme_proto_strerror(e));
		assert_string_not_equal(pme_proto_strerror(e), "unknown protocol error");
	}
	assert_string_equal(pme_proto_strerror(-100), "unknown protocol error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_split_at_every_byte),
		cmocka_unit_test(test_several_frames_in_one_read),
		cmocka_unit_test(test_feed_takes_what_fits),
		cmocka_unit_test(test_oversize_rejected_before_payload),
		cmocka_unit_test(test_exact_max_accepted),
		cmocka_unit_test(test_decoder_grows_to_the_largest_frame),
		cmocka_unit_test(test_bad_magic_version_type),
		cmocka_unit_test(test_garbage_after_frame),
		cmocka_unit_test(test_truncated_at_eof),
		cmocka_unit_test(test_decoder_init_bounds),
		cmocka_unit_test(test_writer_layout),
		cmocka_unit_test(test_writer_limit),
		cmocka_unit_test(test_writer_grows_to_hard_max),
		cmocka_unit_test(test_reader_bounds),
		cmocka_unit_test(test_get_str_utf8),
		cmocka_unit_test(test_utf8_validator),
		cmocka_unit_test(test_name_validators),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests_name("Frame codec", tests, NULL, NULL);
}
