/* SPDX-License-Identifier: ISC */
/* Message codec: every message and GROUP_DATA record through a socketpair(). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/message.h"
#include "wire.h"

/* The frame last received; the payload is copied out of the decoder. */
struct received {
	int count;
	struct pme_proto_frame frame;
	uint8_t *copy;
};

static void
keep(const struct pme_proto_frame *frame, void *arg)
{
	struct received *rx = arg;

	free(rx->copy);
	rx->copy = malloc(frame->length + 1);
	assert_non_null(rx->copy);
	memcpy(rx->copy, frame->payload, frame->length);
	rx->frame = *frame;
	rx->frame.payload = rx->copy;
	rx->count++;
}

struct fixture {
	struct pme_proto_writer w;
	struct received rx;
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	pme_proto_writer_init(&fx->w, PME_PROTO_HARD_MAX_PAYLOAD);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	pme_proto_writer_free(&fx->w);
	free(fx->rx.copy);
	free(fx);
	return 0;
}

/* Finish the writer's frame, send it over a socketpair, return it decoded. */
static const struct pme_proto_frame *
send_recv(struct fixture *fx)
{
	struct pme_proto_decoder dec;
	struct wire wire;

	assert_int_equal(pme_proto_writer_finish(&fx->w), 0);
	fx->rx.count = 0;
	wire_open(&wire);
	assert_int_equal(pme_proto_decoder_init(&dec, PME_PROTO_HARD_MAX_PAYLOAD), 0);
	assert_int_equal(wire_pump(&wire, fx->w.buf, fx->w.len, 4096, &dec, keep, &fx->rx), 0);
	assert_int_equal(fx->rx.count, 1);
	assert_int_equal(pme_proto_decoder_pending(&dec), 0);
	pme_proto_decoder_free(&dec);
	wire_close(&wire);
	return &fx->rx.frame;
}

static void
assert_str(struct pme_proto_str s, const char *want)
{
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.ptr, want, s.len);
}

static void
test_hello(void **state)
{
	struct fixture *fx = *state;
	struct pme_proto_hello m;
	const struct pme_proto_frame *f;

	pme_proto_encode_hello(&fx->w, 4242, 33, 34, "nginx", 5);
	f = send_recv(fx);
	assert_int_equal(f->type, PME_MSG_HELLO);
	assert_int_equal(pme_proto_decode_hello(f, &m), 0);
	assert_int_equal(m.version, PME_PROTO_VERSION);
	assert_int_equal(m.pid, 4242);
	assert_int_equal(m.uid, 33);
	assert_int_equal(m.gid, 34);
	assert_str(m.service, "nginx");
}

static void
test_group_begin_end(void **state)
{
	struct fixture *fx = *state;
	struct pme_proto_group_begin b;
	struct pme_proto_group_end e;

	pme_proto_encode_group_begin(&fx->w, "status", 6, 0x1122334455667788ull);
	assert_int_equal(pme_proto_decode_group_begin(send_recv(fx), &b), 0);
	assert_str(b.group, "status");
	assert_true(b.sequence == 0x1122334455667788ull);

	pme_proto_encode_group_end(&fx->w, 0, 0.25, 3, 2, "curl: timed out", 15, 0, -1, 0);
	assert_int_equal(pme_proto_decode_group_end(send_recv(fx), &e), 0);
	assert_int_equal(e.ok, 0);
	assert_true(e.duration == 0.25);
	assert_int_equal(e.skipped, 3);
	assert_int_equal(e.exit_status, 2);
	assert_str(e.error, "curl: timed out");

	pme_proto_encode_group_end(&fx->w, 1, 0, 0, -1, "", 0, 0, -1, 0);
	assert_int_equal(pme_proto_decode_group_end(send_recv(fx), &e), 0);
	assert_int_equal(e.ok, 1);
	assert_int_equal(e.exit_status, -1);
	assert_int_equal(e.error.len, 0);
	assert_int_equal(e.http_status, 0);
	assert_true(e.response_seconds == -1);

	/* An HTTP source's status and response time. */
	pme_proto_encode_group_end(&fx->w, 1, 0.5, 0, -1, "", 0, 204, 0.125, 0);
	assert_int_equal(pme_proto_decode_group_end(send_recv(fx), &e), 0);
	assert_int_equal(e.http_status, 204);
	assert_true(e.response_seconds == 0.125);
	assert_int_equal(e.truncated, 0);

	/* Output cut at max_output: the result says so. */
	pme_proto_encode_group_end(&fx->w, 0, 0.5, 0, 0, "cut", 3, 0, -1, 1);
	assert_int_equal(pme_proto_decode_group_end(send_recv(fx), &e), 0);
	assert_int_equal(e.truncated, 1);

	/* A status that is no HTTP status, a negative or infinite time. */
	pme_proto_encode_group_end(&fx->w, 1, 0, 0, -1, "", 0, 42, 0, 0);
	assert_int_equal(pme_proto_decode_group_end(send_recv(fx), &e), PME_PROTO_EVALUE);
	pme_proto_encode_group_end(&fx->w, 1, 0, 0, -1, "", 0, 200, -0.5, 0);
	assert_int_equal(pme_proto_decode_group_end(send_recv(fx), &e), PME_PROTO_EVALUE);
	pme_proto_encode_group_end(&fx->w, 1, 0, 0, -1, "", 0, 200, INFINITY, 0);
	assert_int_equal(pme_proto_decode_group_end(send_recv(fx), &e), PME_PROTO_EVALUE);
}

static void
test_log_bye_reload(void **state)
{
	struct fixture *fx = *state;
	struct pme_proto_log l;
	const struct pme_proto_frame *f;

	pme_proto_encode_log(&fx->w, 3, "disk \xc3\xa9tat", 10);
	assert_int_equal(pme_proto_decode_log(send_recv(fx), &l), 0);
	assert_int_equal(l.priority, 3);
	assert_str(l.message, "disk \xc3\xa9tat");

	pme_proto_encode_empty(&fx->w, PME_MSG_BYE);
	f = send_recv(fx);
	assert_int_equal(f->type, PME_MSG_BYE);
	assert_int_equal(pme_proto_decode_empty(f), 0);
	pme_proto_encode_empty(&fx->w, PME_MSG_RELOAD);
	f = send_recv(fx);
	assert_int_equal(f->type, PME_MSG_RELOAD);
	assert_int_equal(pme_proto_decode_empty(f), 0);
}

static void
test_service_config(void **state)
{
	static const uint32_t groups[] = { 4, 24, 1000, 0xfffffffe };
	static const char yaml[] = "services:\n  nginx:\n    run_as: www-data\n";
	struct fixture *fx = *state;
	struct pme_proto_service_config m;
	uint32_t g;
	size_t i;

	pme_proto_encode_service_config(&fx->w, "nginx", 5, 33, 33, groups, 4,
	    PME_CONFIG_ONCE, yaml, strlen(yaml));
	assert_int_equal(pme_proto_decode_service_config(send_recv(fx), &m), 0);
	assert_str(m.service, "nginx");
	assert_int_equal(m.uid, 33);
	assert_int_equal(m.gid, 33);
	assert_int_equal(m.ngroups, 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pme_proto_get_u32(&m.groups, &g), 0);
		assert_int_equal(g, groups[i]);
	}
	assert_int_equal(pme_proto_reader_end(&m.groups), 0);
	assert_int_equal(m.flags, PME_CONFIG_ONCE);
	assert_str(m.config, yaml);

	pme_proto_encode_service_config(&fx->w, "x", 1, 0, 0, NULL, 0, 0, "", 0);
	assert_int_equal(pme_proto_decode_service_config(send_recv(fx), &m), 0);
	assert_int_equal(m.ngroups, 0);
	assert_int_equal(pme_proto_get_u32(&m.groups, &g), PME_PROTO_ETRUNCATED);
}

/* A configuration of 3 MiB: bigger than the socket buffer, under the hard max. */
static void
test_service_config_large(void **state)
{
	struct fixture *fx = *state;
	struct pme_proto_service_config m;
	size_t len = 3u << 20;
	char *yaml = malloc(len);

	assert_non_null(yaml);
	memset(yaml, '#', len);
	pme_proto_encode_service_config(&fx->w, "big", 3, 1, 1, NULL, 0, 0, yaml, len);
	assert_int_equal(pme_proto_decode_service_config(send_recv(fx), &m), 0);
	assert_int_equal(m.config.len, len);
	assert_int_equal(m.config.ptr[len - 1], '#');
	free(yaml);
}

static void
test_spawner_messages(void **state)
{
	struct fixture *fx = *state;
	struct pme_proto_name n;
	struct pme_proto_worker_ready r;
	struct pme_proto_worker_exited x;
	struct pme_proto_start_failed s;
	struct pme_proto_reloaded rl;
	const struct pme_proto_frame *f;

	pme_proto_encode_name(&fx->w, PME_MSG_START, "backup", 6);
	f = send_recv(fx);
	assert_int_equal(f->type, PME_MSG_START);
	assert_int_equal(pme_proto_decode_name(f, &n), 0);
	assert_str(n.service, "backup");
	pme_proto_encode_name(&fx->w, PME_MSG_STOP, "backup", 6);
	f = send_recv(fx);
	assert_int_equal(f->type, PME_MSG_STOP);
	assert_int_equal(pme_proto_decode_name(f, &n), 0);

	pme_proto_encode_worker_ready(&fx->w, "nginx", 5, 777);
	assert_int_equal(pme_proto_decode_worker_ready(send_recv(fx), &r), 0);
	assert_str(r.service, "nginx");
	assert_int_equal(r.pid, 777);

	pme_proto_encode_worker_exited(&fx->w, "nginx", 5, 777, -1, 9);
	assert_int_equal(pme_proto_decode_worker_exited(send_recv(fx), &x), 0);
	assert_str(x.service, "nginx");
	assert_int_equal(x.pid, 777);
	assert_int_equal(x.exit_code, -1);
	assert_int_equal(x.signal, 9);

	pme_proto_encode_start_failed(&fx->w, "db", 2, "no such user: postgres", 22);
	assert_int_equal(pme_proto_decode_start_failed(send_recv(fx), &s), 0);
	assert_str(s.service, "db");
	assert_str(s.reason, "no such user: postgres");

	pme_proto_encode_reloaded(&fx->w, 0, "pme.yml:3:5: bad", 16);
	assert_int_equal(pme_proto_decode_reloaded(send_recv(fx), &rl), 0);
	assert_int_equal(rl.ok, 0);
	assert_str(rl.message, "pme.yml:3:5: bad");
	pme_proto_encode_reloaded(&fx->w, 1, "", 0);
	assert_int_equal(pme_proto_decode_reloaded(send_recv(fx), &rl), 0);
	assert_int_equal(rl.ok, 1);
}

static void
test_wrong_type_refused(void **state)
{
	struct fixture *fx = *state;
	const struct pme_proto_frame *f;
	struct pme_proto_hello h;
	struct pme_proto_name n;
	struct pme_proto_reader r;
	struct pme_proto_record rec;

	pme_proto_encode_log(&fx->w, 1, "x", 1);
	f = send_recv(fx);
	assert_int_equal(pme_proto_decode_hello(f, &h), PME_PROTO_ETYPE);
	assert_int_equal(pme_proto_decode_name(f, &n), PME_PROTO_ETYPE);
	assert_int_equal(pme_proto_decode_empty(f), PME_PROTO_ETYPE);
	/* A LOG frame is not GROUP_DATA, whatever its bytes look like. */
	pme_proto_encode_name(&fx->w, PME_MSG_STOP, "s", 1);
	f = send_recv(fx);
	pme_proto_reader_init(&r, f);
	assert_int_not_equal(pme_proto_record_next(&r, &rec), 1);
}

/* A timestamped sample (honor_timestamps) keeps its labels and value, and a
 * negative timestamp survives the u64 on the wire. */
static void
test_group_data_timestamped_sample(void **state)
{
	struct fixture *fx = *state;
	struct pme_proto_reader r;
	struct pme_proto_record rec;
	struct pme_proto_str name, value;
	struct pme_proto_writer *w = &fx->w;

	pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
	pme_proto_put_family(w, "up", 2, PME_TYPE_GAUGE, "", 0, "", 0);
	pme_proto_put_sample_begin(w, "", 0);
	pme_proto_put_label(w, "job", 3, "node", 4);
	pme_proto_put_sample_end_ts(w, 1.5, 1700000000123LL);
	pme_proto_put_sample_begin(w, "", 0);
	pme_proto_put_sample_end_ts(w, 2, -5);
	pme_proto_put_sample_begin(w, "", 0);
	pme_proto_put_sample_end(w, 3);
	pme_proto_reader_init(&r, send_recv(fx));

	assert_int_equal(pme_proto_record_next(&r, &rec), 1);
	assert_int_equal(rec.kind, PME_REC_FAMILY);
	assert_int_equal(pme_proto_record_next(&r, &rec), 1);
	assert_int_equal(rec.kind, PME_REC_SAMPLE_TS);
	assert_true(rec.value == 1.5);
	assert_true(rec.timestamp_ms == 1700000000123LL);
	assert_int_equal(pme_proto_label_next(&rec, &name, &value), 1);
	assert_str(name, "job");
	assert_str(value, "node");
	assert_int_equal(pme_proto_label_next(&rec, &name, &value), 0);
	assert_int_equal(pme_proto_record_next(&r, &rec), 1);
	assert_int_equal(rec.kind, PME_REC_SAMPLE_TS);
	assert_true(rec.timestamp_ms == -5);
	assert_int_equal(pme_proto_record_next(&r, &rec), 1);
	assert_int_equal(rec.kind, PME_REC_SAMPLE);
	assert_true(rec.value == 3);
	assert_int_equal(pme_proto_record_next(&r, &rec), 0);
	assert_int_equal(pme_proto_reader_end(&r), 0);
}

static void
test_group_data_records(void **state)
{
	struct fixture *fx = *state;
	struct pme_proto_reader r;
	struct pme_proto_record rec;
	struct pme_proto_str name, value;
	struct pme_proto_writer *w = &fx->w;

	pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
	pme_proto_put_family(w, "http_request_seconds", 20, PME_TYPE_HISTOGRAM,
	    "Request latency", 15, "seconds", 7);
	pme_proto_put_sample_begin(w, "_bucket", 7);
	pme_proto_put_label(w, "path", 4, "/caf\xc3\xa9", 6);
	pme_proto_put_label(w, "le", 2, "+Inf", 4);
	pme_proto_put_sample_end(w, INFINITY);
	pme_proto_put_sample_begin(w, "", 0);
	pme_proto_put_sample_end(w, NAN);
	pme_proto_put_metric_error(w, "nginx_up", 8, "regex did not match", 19);
	pme_proto_reader_init(&r, send_recv(fx));

	assert_int_equal(pme_proto_record_next(&r, &rec), 1);
	assert_int_equal(rec.kind, PME_REC_FAMILY);
	assert_str(rec.name, "http_request_seconds");
	assert_int_equal(rec.type, PME_TYPE_HISTOGRAM);
	assert_str(rec.help, "Request latency");
	assert_str(rec.unit, "seconds");

	assert_int_equal(pme_proto_record_next(&r, &rec), 1);
	assert_int_equal(rec.kind, PME_REC_SAMPLE);
	assert_str(rec.suffix, "_bucket");
	assert_int_equal(rec.nlabels, 2);
	assert_true(isinf(rec.value) && rec.value > 0);
	/* The labels were checked; the iterator reads them again from the start. */
	assert_int_equal(pme_proto_label_next(&rec, &name, &value), 1);
	assert_str(name, "path");
	assert_str(value, "/caf\xc3\xa9");
	assert_int_equal(pme_proto_label_next(&rec, &name, &value), 1);
	assert_str(name, "le");
	assert_str(value, "+Inf");
	assert_int_equal(pme_proto_label_next(&rec, &name, &value), 0);

	assert_int_equal(pme_proto_record_next(&r, &rec), 1);
	assert_int_equal(rec.kind, PME_REC_SAMPLE);
	assert_int_equal(rec.suffix.len, 0);
	assert_int_equal(rec.nlabels, 0);
	assert_true(isnan(rec.value));
	assert_int_equal(pme_proto_label_next(&rec, &name, &value), 0);

	assert_int_equal(pme_proto_record_next(&r, &rec), 1);
	assert_int_equal(rec.kind, PME_REC_METRIC_ERROR);
	assert_str(rec.name, "nginx_up");
	assert_str(rec.message, "regex did not match");

	assert_int_equal(pme_proto_record_next(&r, &rec), 0);
	assert_int_equal(pme_proto_reader_end(&r), 0);
}

/* Build a GROUP_DATA frame with one sample and return record_next's verdict
 * on the first record after an optional valid FAMILY. */
static int
first_error(struct fixture *fx)
{
	struct pme_proto_reader r;
	struct pme_proto_record rec;
	int rc;

	pme_proto_reader_init(&r, send_recv(fx));
	while ((rc = pme_proto_record_next(&r, &rec)) == 1)
		;
	/* Sticky. */
	assert_int_equal(pme_proto_record_next(&r, &rec), rc);
	return rc;
}

static void
sample_with_label(struct pme_proto_writer *w, const char *suffix, const char *name,
    size_t name_len, const char *value, size_t value_len)
{
	pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
	pme_proto_put_family(w, "up", 2, PME_TYPE_GAUGE, "", 0, "", 0);
	pme_proto_put_sample_begin(w, suffix, strlen(suffix));
	pme_proto_put_label(w, name, name_len, value, value_len);
	pme_proto_put_sample_end(w, 1);
}

static void
test_invalid_metric_names(void **state)
{
	static const char *bad[] = { "", "9lives", "a-b", "a.b", "a b", "caf\xc3\xa9" };
	struct fixture *fx = *state;
	struct pme_proto_writer *w = &fx->w;
	char longname[PME_PROTO_MAX_NAME + 1];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
		pme_proto_put_family(w, bad[i], strlen(bad[i]), PME_TYPE_GAUGE, "", 0, "", 0);
		assert_int_equal(first_error(fx), PME_PROTO_ENAME);
		pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
		pme_proto_put_metric_error(w, bad[i], strlen(bad[i]), "x", 1);
		assert_int_equal(first_error(fx), PME_PROTO_ENAME);
	}
	memset(longname, 'a', sizeof(longname));
	pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
	pme_proto_put_family(w, longname, sizeof(longname), PME_TYPE_GAUGE, "", 0, "", 0);
	assert_int_equal(first_error(fx), PME_PROTO_ENAME);

	/* Suffixes: empty or "_" followed by metric-name characters. */
	sample_with_label(w, "bucket", "le", 2, "1", 1);
	assert_int_equal(first_error(fx), PME_PROTO_ENAME);
	sample_with_label(w, "_b-x", "le", 2, "1", 1);
	assert_int_equal(first_error(fx), PME_PROTO_ENAME);
	sample_with_label(w, "_sum:x9", "le", 2, "1", 1);
	assert_int_equal(first_error(fx), 0);
}

static void
test_invalid_family_type(void **state)
{
	struct fixture *fx = *state;
	struct pme_proto_writer *w = &fx->w;

	pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
	pme_proto_put_family(w, "x", 1, 0, "", 0, "", 0);
	assert_int_equal(first_error(fx), PME_PROTO_EVALUE);
	pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
	pme_proto_put_family(w, "x", 1, 8, "", 0, "", 0);
	assert_int_equal(first_error(fx), PME_PROTO_EVALUE);
	pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
	pme_proto_put_family(w, "x", 1, PME_TYPE_UNTYPED, "", 0, "", 0);
	assert_int_equal(first_error(fx), 0);
	/* Unknown record kind. */
	pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
	pme_proto_put_u8(w, PME_REC_SAMPLE_TS + 1);
	assert_int_equal(first_error(fx), PME_PROTO_EVALUE);
}

static void
test_invalid_label_names(void **state)
{
	static const char *bad[] = { "", "__name__", "1a", "a-b", "a:b", "a.b" };
	struct fixture *fx = *state;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sample_with_label(&fx->w, "", bad[i], strlen(bad[i]), "v", 1);
		assert_int_equal(first_error(fx), PME_PROTO_ELABEL);
	}
	sample_with_label(&fx->w, "", "_ok9", 4, "v", 1);
	assert_int_equal(first_error(fx), 0);
}

static void
test_invalid_utf8(void **state)
{
	struct fixture *fx = *state;
	struct pme_proto_writer *w = &fx->w;
	struct pme_proto_log l;
	struct pme_proto_group_end e;

	sample_with_label(w, "", "path", 4, "\xed\xa0\x80", 3);  /* surrogate */
	assert_int_equal(first_error(fx), PME_PROTO_EUTF8);
	sample_with_label(w, "", "path", 4, "a\0b", 3);
	assert_int_equal(first_error(fx), PME_PROTO_EUTF8);
	pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
	pme_proto_put_family(w, "up", 2, PME_TYPE_GAUGE, "\xc0\xaf", 2, "", 0);
	assert_int_equal(first_error(fx), PME_PROTO_EUTF8);
	pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
	pme_proto_put_family(w, "up", 2, PME_TYPE_GAUGE, "", 0, "\xff", 1);
	assert_int_equal(first_error(fx), PME_PROTO_EUTF8);
	pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
	pme_proto_put_metric_error(w, "up", 2, "\xe2\x82", 2);
	assert_int_equal(first_error(fx), PME_PROTO_EUTF8);

	pme_proto_encode_log(w, 4, "bad \xf4\x90\x80\x80", 8);
	assert_int_equal(pme_proto_decode_log(send_recv(fx), &l), PME_PROTO_EUTF8);
	pme_proto_encode_group_end(w, 0, 1, 0, 1, "\xc1\x81", 2, 0, -1, 0);
	assert_int_equal(pme_proto_decode_group_end(send_recv(fx), &e), PME_PROTO_EUTF8);
}

static void
test_duplicate_labels(void **state)
{
	struct fixture *fx = *state;
	struct pme_proto_writer *w = &fx->w;

	pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
	pme_proto_put_family(w, "up", 2, PME_TYPE_GAUGE, "", 0, "", 0);
	pme_proto_put_sample_begin(w, "", 0);
	pme_proto_put_label(w, "a", 1, "1", 1);
	pme_proto_put_label(w, "b", 1, "2", 1);
	pme_proto_put_label(w, "a", 1, "3", 1);
	pme_proto_put_sample_end(w, 1);
	assert_int_equal(first_error(fx), PME_PROTO_ELABEL);

	/* The same name in two different samples is fine. */
	pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
	pme_proto_put_family(w, "up", 2, PME_TYPE_GAUGE, "", 0, "", 0);
	pme_proto_put_sample_begin(w, "", 0);
	pme_proto_put_label(w, "a", 1, "1", 1);
	pme_proto_put_sample_end(w, 1);
	pme_proto_put_sample_begin(w, "", 0);
	pme_proto_put_label(w, "a", 1, "2", 1);
	pme_proto_put_sample_end(w, 2);
	assert_int_equal(first_error(fx), 0);
}

static void
test_too_many_labels(void **state)
{
	struct fixture *fx = *state;
	struct pme_proto_writer *w = &fx->w;
	struct pme_proto_reader r;
	struct pme_proto_record rec;
	char name[8];
	int i, n;

	for (n = PME_PROTO_MAX_LABELS; n <= PME_PROTO_MAX_LABELS + 1; n++) {
		pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
		pme_proto_put_family(w, "up", 2, PME_TYPE_GAUGE, "", 0, "", 0);
		pme_proto_put_sample_begin(w, "", 0);
		for (i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "l%d", i);
			pme_proto_put_label(w, name, strlen(name), "v", 1);
		}
		pme_proto_put_sample_end(w, 1);
		pme_proto_reader_init(&r, send_recv(fx));
		assert_int_equal(pme_proto_record_next(&r, &rec), 1);
		if (n == PME_PROTO_MAX_LABELS) {
			assert_int_equal(pme_proto_record_next(&r, &rec), 1);
			assert_int_equal(rec.nlabels, PME_PROTO_MAX_LABELS);
		} else {
			assert_int_equal(pme_proto_record_next(&r, &rec), PME_PROTO_EVALUE);
		}
	}
}

static void
test_trailing_bytes(void **state)
{
	struct fixture *fx = *state;
	struct pme_proto_writer *w = &fx->w;
	struct pme_proto_hello h;
	struct pme_proto_name n;
	struct pme_proto_log l;
	struct pme_proto_service_config c;

	pme_proto_encode_hello(w, 1, 2, 3, "s", 1);
	pme_proto_put_u8(w, 0);
	assert_int_equal(pme_proto_decode_hello(send_recv(fx), &h), PME_PROTO_ETRAILING);
	pme_proto_encode_name(w, PME_MSG_STOP, "s", 1);
	pme_proto_put_u32(w, 0);
	assert_int_equal(pme_proto_decode_name(send_recv(fx), &n), PME_PROTO_ETRAILING);
	pme_proto_encode_log(w, 1, "m", 1);
	pme_proto_put_str(w, "", 0);
	assert_int_equal(pme_proto_decode_log(send_recv(fx), &l), PME_PROTO_ETRAILING);
	pme_proto_encode_service_config(w, "s", 1, 0, 0, NULL, 0, 0, "", 0);
	pme_proto_put_u8(w, 0);
	assert_int_equal(pme_proto_decode_service_config(send_recv(fx), &c), PME_PROTO_ETRAILING);
	pme_proto_encode_empty(w, PME_MSG_BYE);
	pme_proto_put_u8(w, 0);
	assert_int_equal(pme_proto_decode_empty(send_recv(fx)), PME_PROTO_ETRAILING);

	/* In GROUP_DATA, bytes after the last record are a truncated record. */
	sample_with_label(w, "", "a", 1, "b", 1);
	pme_proto_put_u8(w, PME_REC_SAMPLE);
	assert_int_equal(first_error(fx), PME_PROTO_ETRUNCATED);
}

/* Every message cut short at every length fails cleanly. */
static void
test_truncated_fields(void **state)
{
	struct fixture *fx = *state;
	struct pme_proto_writer *w = &fx->w;
	struct pme_proto_frame f;
	struct pme_proto_hello h;
	struct pme_proto_group_end e;
	struct pme_proto_worker_exited x;
	uint32_t len;

	pme_proto_encode_hello(w, 1, 2, 3, "svc", 3);
	f = *send_recv(fx);
	for (len = 0; len < f.length; len++) {
		struct pme_proto_frame cut = { f.type, len, f.payload };
		assert_int_equal(pme_proto_decode_hello(&cut, &h), PME_PROTO_ETRUNCATED);
	}
	pme_proto_encode_group_end(w, 0, 1.5, 0, 3, "err", 3, 0, -1, 0);
	f = *send_recv(fx);
	for (len = 0; len < f.length; len++) {
		struct pme_proto_frame cut = { f.type, len, f.payload };
		assert_int_equal(pme_proto_decode_group_end(&cut, &e), PME_PROTO_ETRUNCATED);
	}
	pme_proto_encode_worker_exited(w, "svc", 3, 10, 1, 0);
	f = *send_recv(fx);
	for (len = 0; len < f.length; len++) {
		struct pme_proto_frame cut = { f.type, len, f.payload };
		assert_int_equal(pme_proto_decode_worker_exited(&cut, &x), PME_PROTO_ETRUNCATED);
	}
}

static void
test_ngroups_overrun(void **state)
{
	static const uint32_t groups[] = { 1, 2 };
	struct fixture *fx = *state;
	struct pme_proto_writer *w = &fx->w;
	struct pme_proto_service_config c;

	/* Announces 5 groups, carries 2, then flags and a config string. */
	pme_proto_writer_begin(w, PME_MSG_SERVICE_CONFIG);
	pme_proto_put_str(w, "s", 1);
	pme_proto_put_u32(w, 0);
	pme_proto_put_u32(w, 0);
	pme_proto_put_u32(w, 5);
	pme_proto_put_u32(w, groups[0]);
	pme_proto_put_u32(w, groups[1]);
	pme_proto_put_u32(w, 0);
	pme_proto_put_str(w, "", 0);
	assert_int_equal(pme_proto_decode_service_config(send_recv(fx), &c),
	    PME_PROTO_ETRUNCATED);

	/* A count that would overflow a 32-bit multiplication. */
	pme_proto_writer_begin(w, PME_MSG_SERVICE_CONFIG);
	pme_proto_put_str(w, "s", 1);
	pme_proto_put_u32(w, 0);
	pme_proto_put_u32(w, 0);
	pme_proto_put_u32(w, 0x40000001u);
	pme_proto_put_u32(w, 0);
	pme_proto_put_str(w, "", 0);
	assert_int_not_equal(pme_proto_decode_service_config(send_recv(fx), &c), 0);

	/* More than 65536 groups even if the bytes are there. */
	pme_proto_writer_begin(w, PME_MSG_SERVICE_CONFIG);
	pme_proto_put_str(w, "s", 1);
	pme_proto_put_u32(w, 0);
	pme_proto_put_u32(w, 0);
	pme_proto_put_u32(w, 65537);
	for (uint32_t i = 0; i < 65537; i++)
		pme_proto_put_u32(w, i);
	pme_proto_put_u32(w, 0);
	pme_proto_put_str(w, "", 0);
	assert_int_equal(pme_proto_decode_service_config(send_recv(fx), &c), PME_PROTO_EVALUE);

	/* Unknown flags. */
	pme_proto_encode_service_config(w, "s", 1, 0, 0, groups, 2, 0x80, "", 0);
	assert_int_equal(pme_proto_decode_service_config(send_recv(fx), &c), PME_PROTO_EVALUE);
}

static void
test_field_ranges(void **state)
{
	struct fixture *fx = *state;
	struct pme_proto_writer *w = &fx->w;
	struct pme_proto_log l;
	struct pme_proto_group_end e;
	struct pme_proto_reloaded rl;
	struct pme_proto_worker_exited x;
	struct pme_proto_worker_ready r;
	struct pme_proto_hello h;
	struct pme_proto_group_begin b;
	struct pme_proto_name n;

	pme_proto_encode_log(w, 8, "m", 1);
	assert_int_equal(pme_proto_decode_log(send_recv(fx), &l), PME_PROTO_EVALUE);
	pme_proto_encode_group_end(w, 1, -1, 0, 0, "", 0, 0, -1, 0);
	assert_int_equal(pme_proto_decode_group_end(send_recv(fx), &e), PME_PROTO_EVALUE);
	pme_proto_encode_group_end(w, 1, NAN, 0, 0, "", 0, 0, -1, 0);
	assert_int_equal(pme_proto_decode_group_end(send_recv(fx), &e), PME_PROTO_EVALUE);
	pme_proto_encode_group_end(w, 1, 0, 0, -2, "", 0, 0, -1, 0);
	assert_int_equal(pme_proto_decode_group_end(send_recv(fx), &e), PME_PROTO_EVALUE);
	/* truncated is a boolean: 0 or 1. */
	pme_proto_writer_begin(w, PME_MSG_GROUP_END);
	pme_proto_put_u8(w, 1);
	pme_proto_put_f64(w, 0);
	pme_proto_put_u32(w, 0);
	pme_proto_put_i32(w, -1);
	pme_proto_put_str(w, "", 0);
	pme_proto_put_i32(w, 0);
	pme_proto_put_f64(w, -1);
	pme_proto_put_u8(w, 2);
	assert_int_equal(pme_proto_decode_group_end(send_recv(fx), &e), PME_PROTO_EVALUE);
	pme_proto_writer_begin(w, PME_MSG_RELOADED);
	pme_proto_put_u8(w, 2);
	pme_proto_put_str(w, "", 0);
	assert_int_equal(pme_proto_decode_reloaded(send_recv(fx), &rl), PME_PROTO_EVALUE);
	pme_proto_encode_worker_exited(w, "s", 1, 5, 256, 0);
	assert_int_equal(pme_proto_decode_worker_exited(send_recv(fx), &x), PME_PROTO_EVALUE);
	pme_proto_encode_worker_exited(w, "s", 1, 5, -1, -3);
	assert_int_equal(pme_proto_decode_worker_exited(send_recv(fx), &x), PME_PROTO_EVALUE);
	pme_proto_encode_worker_ready(w, "s", 1, 0);
	assert_int_equal(pme_proto_decode_worker_ready(send_recv(fx), &r), PME_PROTO_EVALUE);
	pme_proto_encode_worker_ready(w, "", 0, 5);
	assert_int_equal(pme_proto_decode_worker_ready(send_recv(fx), &r), PME_PROTO_EVALUE);
	pme_proto_encode_group_begin(w, "", 0, 1);
	assert_int_equal(pme_proto_decode_group_begin(send_recv(fx), &b), PME_PROTO_EVALUE);
	pme_proto_encode_name(w, PME_MSG_START, "", 0);
	assert_int_equal(pme_proto_decode_name(send_recv(fx), &n), PME_PROTO_EVALUE);

	/* A HELLO of another protocol version. */
	pme_proto_writer_begin(w, PME_MSG_HELLO);
	pme_proto_put_u16(w, PME_PROTO_VERSION + 1);
	pme_proto_put_u32(w, 1);
	pme_proto_put_u32(w, 0);
	pme_proto_put_u32(w, 0);
	pme_proto_put_str(w, "s", 1);
	assert_int_equal(pme_proto_decode_hello(send_recv(fx), &h), PME_PROTO_EVERSION);
}

/* A sample and its labels are built in place: nlabels is patched at the end. */
static void
test_sample_builder(void **state)
{
	static const uint8_t want[] = {
		PME_REC_SAMPLE, 0, 0, 0, 4, '_', 's', 'u', 'm',
		0, 1,
		0, 0, 0, 1, 'k', 0, 0, 0, 1, 'v',
		0x40, 0x45, 0, 0, 0, 0, 0, 0,     /* 42.0 */
	};
	struct fixture *fx = *state;
	struct pme_proto_writer *w = &fx->w;

	pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
	pme_proto_put_sample_begin(w, "_sum", 4);
	pme_proto_put_label(w, "k", 1, "v", 1);
	pme_proto_put_sample_end(w, 42.0);
	assert_int_equal(pme_proto_writer_finish(w), 0);
	assert_int_equal(pme_proto_writer_payload_len(w), sizeof(want));
	assert_memory_equal(w->buf + PME_PROTO_HEADER_SIZE, want, sizeof(want));
}

/* EXPLAIN: text that is UTF-8 (control characters are the supervisor's
 * business), refused when not, and the EXPLAIN config flag. */
static void
test_explain(void **state)
{
	static const char text[] = "== app/stats ==\n  | caf\xc3\xa9\ttab\n";
	struct fixture *fx = *state;
	struct pme_proto_writer *w = &fx->w;
	const struct pme_proto_frame *f;
	struct pme_proto_explain m;
	struct pme_proto_service_config c;
	struct pme_proto_log l;
	char *big;
	size_t max;

	pme_proto_encode_explain(w, text, strlen(text));
	f = send_recv(fx);
	assert_int_equal(f->type, PME_MSG_EXPLAIN);
	assert_int_equal(pme_proto_decode_explain(f, &m), 0);
	assert_str(m.text, text);
	/* Not a LOG, and a LOG is not an EXPLAIN. */
	assert_int_equal(pme_proto_decode_log(f, &l), PME_PROTO_ETYPE);
	pme_proto_encode_log(w, 6, "x", 1);
	assert_int_equal(pme_proto_decode_explain(send_recv(fx), &m), PME_PROTO_ETYPE);

	pme_proto_encode_explain(w, "", 0);
	assert_int_equal(pme_proto_decode_explain(send_recv(fx), &m), 0);
	assert_int_equal(m.text.len, 0);

	pme_proto_encode_explain(w, "bad \xff byte", 10);
	assert_int_equal(pme_proto_decode_explain(send_recv(fx), &m), PME_PROTO_EUTF8);
	pme_proto_encode_explain(w, "nul\0", 4);
	assert_int_equal(pme_proto_decode_explain(send_recv(fx), &m), PME_PROTO_EUTF8);
	pme_proto_encode_explain(w, "ok", 2);
	pme_proto_put_u8(w, 0);
	assert_int_equal(pme_proto_decode_explain(send_recv(fx), &m), PME_PROTO_ETRAILING);

	/* A piece must fit a worker frame: one byte more is refused by the
	 * writer, so the sender has to split. */
	max = PME_PROTO_MAX_PAYLOAD - 4;
	big = malloc(max + 1);
	assert_non_null(big);
	memset(big, 'x', max + 1);
	pme_proto_writer_free(w);
	pme_proto_writer_init(w, PME_PROTO_MAX_PAYLOAD);
	pme_proto_encode_explain(w, big, max);
	assert_int_equal(pme_proto_decode_explain(send_recv(fx), &m), 0);
	assert_int_equal(m.text.len, max);
	pme_proto_encode_explain(w, big, max + 1);
	assert_int_equal(pme_proto_writer_finish(w), PME_PROTO_ELIMIT);
	free(big);

	pme_proto_writer_free(w);
	pme_proto_writer_init(w, PME_PROTO_HARD_MAX_PAYLOAD);
	pme_proto_encode_service_config(w, "s", 1, 0, 0, NULL, 0,
	    PME_CONFIG_ONCE | PME_CONFIG_EXPLAIN, "", 0);
	assert_int_equal(pme_proto_decode_service_config(send_recv(fx), &c), 0);
	assert_int_equal(c.flags, PME_CONFIG_ONCE | PME_CONFIG_EXPLAIN);
	pme_proto_encode_service_config(w, "s", 1, 0, 0, NULL, 0, 0x4, "", 0);
	assert_int_equal(pme_proto_decode_service_config(send_recv(fx), &c), PME_PROTO_EVALUE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_begin_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_bye_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_explain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service_config_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spawner_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_type_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_data_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_data_timestamped_sample, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_invalid_metric_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_family_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_label_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trailing_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ngroups_overrun, setup, teardown),
		cmocka_unit_test_setup_teardown(test_field_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sample_builder, setup, teardown),
	};

	return cmocka_run_group_tests_name("Message codec", tests, NULL, NULL);
}
