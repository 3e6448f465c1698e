/* SPDX-License-Identifier: ISC */
/* Fuzz target: the frame decoder, every message decoder, GROUP_DATA records. */

/*
 * Built two ways.  With -DPME_LIBFUZZER -fsanitize=fuzzer it is a libFuzzer
 * target.  Without, main() runs a bounded number of deterministic inputs
 * (random bytes, and mutations of valid frames, which get much deeper into
 * the decoders) as a meson test; under -Db_sanitize=address,undefined that
 * catches the out-of-bounds reads a crash test alone would miss.
 *
 * Surviving is not all that is checked.  Whatever a decoder accepts must
 * satisfy what its callers rely on, or abort(): strings lie inside the
 * payload and are valid UTF-8, names are valid, and the message re-encoded
 * with the encoders gives back the very same payload bytes, so a decoder
 * cannot accept something that differs from what the encoder would write.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The file the input came from, if any, for the failure report. */
static const char *current_file;

static void
check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_frame: invariant broken: %s%s%s\n", what,
		    current_file ? ", input from " : "", current_file ? current_file : "");
		abort();
	}
}

static void
check_str(const struct pme_proto_frame *f, const struct pme_proto_str *s, int utf8)
{
	const char *lo = (const char *)f->payload;

	check(s->ptr >= lo && s->ptr + s->len <= lo + f->length, "string inside the payload");
	if (utf8)
		check(pme_proto_valid_utf8(s->ptr, s->len), "string is UTF-8");
}

/* The writer's payload must equal the frame's. */
static void
check_same(struct pme_proto_writer *w, const struct pme_proto_frame *f, const char *what)
{
	check(pme_proto_writer_finish(w) == 0, what);
	check(w->len == PME_PROTO_HEADER_SIZE + (size_t)f->length, what);
	check(w->buf[3] == f->type, what);
	check(memcmp(w->buf + PME_PROTO_HEADER_SIZE, f->payload, f->length) == 0, what);
}

static void
fuzz_group_data(const struct pme_proto_frame *f, struct pme_proto_writer *w)
{
	struct pme_proto_reader r;
	struct pme_proto_record rec;
	struct pme_proto_str name, value;
	int rc, n;

	pme_proto_reader_init(&r, f);
	pme_proto_writer_begin(w, PME_MSG_GROUP_DATA);
	while ((rc = pme_proto_record_next(&r, &rec)) == 1) {
		switch (rec.kind) {
		case PME_REC_FAMILY:
			check_str(f, &rec.name, 1);
			check(pme_proto_valid_metric_name(rec.name.ptr, rec.name.len), "family name");
			check(rec.type >= PME_TYPE_COUNTER && rec.type <= PME_TYPE_UNTYPED, "type");
			check_str(f, &rec.help, 1);
			check_str(f, &rec.unit, 1);
			pme_proto_put_family(w, rec.name.ptr, rec.name.len, rec.type,
			    rec.help.ptr, rec.help.len, rec.unit.ptr, rec.unit.len);
			break;
		case PME_REC_SAMPLE:
		case PME_REC_SAMPLE_TS:
			check_str(f, &rec.suffix, 1);
			check(rec.nlabels <= PME_PROTO_MAX_LABELS, "nlabels");
			pme_proto_put_sample_begin(w, rec.suffix.ptr, rec.suffix.len);
			n = 0;
			while ((rc = pme_proto_label_next(&rec, &name, &value)) == 1) {
				check_str(f, &name, 1);
				check_str(f, &value, 1);
				check(pme_proto_valid_label_name(name.ptr, name.len), "label name");
				pme_proto_put_label(w, name.ptr, name.len, value.ptr, value.len);
				n++;
			}
			check(rc == 0 && n == rec.nlabels, "labels re-read");
			if (rec.kind == PME_REC_SAMPLE_TS)
				pme_proto_put_sample_end_ts(w, rec.value, rec.timestamp_ms);
			else
				pme_proto_put_sample_end(w, rec.value);
			break;
		case PME_REC_METRIC_ERROR:
			check_str(f, &rec.name, 1);
			check(pme_proto_valid_metric_name(rec.name.ptr, rec.name.len), "error name");
			check_str(f, &rec.message, 1);
			pme_proto_put_metric_error(w, rec.name.ptr, rec.name.len,
			    rec.message.ptr, rec.message.len);
			break;
		default:
			check(0, "record kind");
		}
	}
	check(rc <= 0, "record_next result");
	check(pme_proto_record_next(&r, &rec) == rc, "record error sticks");
	if (rc == 0)
		check_same(w, f, "GROUP_DATA re-encodes to the same bytes");
}

/* Run every decoder on the frame; whatever is accepted must re-encode
 * to the same payload. */
static void
fuzz_messages(const struct pme_proto_frame *f, struct pme_proto_writer *w)
{
	struct pme_proto_hello hello;
	struct pme_proto_group_begin gb;
	struct pme_proto_group_end ge;
	struct pme_proto_log log;
	struct pme_proto_service_config sc;
	struct pme_proto_name nm;
	struct pme_proto_worker_ready wr;
	struct pme_proto_worker_exited we;
	struct pme_proto_start_failed sf;
	struct pme_proto_reloaded rl;
	uint32_t groups[64], i;

	if (pme_proto_decode_hello(f, &hello) == 0) {
		check_str(f, &hello.service, 1);
		pme_proto_encode_hello(w, hello.pid, hello.uid, hello.gid,
		    hello.service.ptr, hello.service.len);
		check_same(w, f, "HELLO");
	}
	if (pme_proto_decode_group_begin(f, &gb) == 0) {
		check_str(f, &gb.group, 1);
		pme_proto_encode_group_begin(w, gb.group.ptr, gb.group.len, gb.sequence);
		check_same(w, f, "GROUP_BEGIN");
	}
	if (pme_proto_decode_group_end(f, &ge) == 0) {
		check_str(f, &ge.error, 1);
		pme_proto_encode_group_end(w, ge.ok, ge.duration, ge.skipped, ge.exit_status,
		    ge.error.ptr, ge.error.len, ge.http_status, ge.response_seconds, ge.truncated);
		check_same(w, f, "GROUP_END");
	}
	if (pme_proto_decode_log(f, &log) == 0) {
		check_str(f, &log.message, 1);
		pme_proto_encode_log(w, log.priority, log.message.ptr, log.message.len);
		check_same(w, f, "LOG");
	}
	if (pme_proto_decode_service_config(f, &sc) == 0) {
		check_str(f, &sc.service, 1);
		check_str(f, &sc.config, 1);
		check(sc.groups.left == (size_t)sc.ngroups * 4, "groups span");
		if (sc.ngroups <= 64) {
			for (i = 0; i < sc.ngroups; i++)
				check(pme_proto_get_u32(&sc.groups, &groups[i]) == 0, "group");
			check(pme_proto_reader_end(&sc.groups) == 0, "groups end");
			pme_proto_encode_service_config(w, sc.service.ptr, sc.service.len, sc.uid,
			    sc.gid, groups, sc.ngroups, sc.flags, sc.config.ptr, sc.config.len);
			check_same(w, f, "SERVICE_CONFIG");
		}
	}
	if (pme_proto_decode_name(f, &nm) == 0) {
		check_str(f, &nm.service, 1);
		pme_proto_encode_name(w, f->type, nm.service.ptr, nm.service.len);
		check_same(w, f, "START/STOP");
	}
	if (pme_proto_decode_worker_ready(f, &wr) == 0) {
		check_str(f, &wr.service, 1);
		pme_proto_encode_worker_ready(w, wr.service.ptr, wr.service.len, wr.pid);
		check_same(w, f, "WORKER_READY");
	}
	if (pme_proto_decode_worker_exited(f, &we) == 0) {
		check_str(f, &we.service, 1);
		pme_proto_encode_worker_exited(w, we.service.ptr, we.service.len, we.pid,
		    we.exit_code, we.signal);
		check_same(w, f, "WORKER_EXITED");
	}
	if (pme_proto_decode_start_failed(f, &sf) == 0) {
		check_str(f, &sf.service, 1);
		check_str(f, &sf.reason, 1);
		pme_proto_encode_start_failed(w, sf.service.ptr, sf.service.len,
		    sf.reason.ptr, sf.reason.len);
		check_same(w, f, "START_FAILED");
	}
	if (pme_proto_decode_reloaded(f, &rl) == 0) {
		check_str(f, &rl.message, 1);
		pme_proto_encode_reloaded(w, rl.ok, rl.message.ptr, rl.message.len);
		check_same(w, f, "RELOADED");
	}
	if (pme_proto_decode_empty(f) == 0)
		check(f->length == 0, "empty message");
	if (f->type == PME_MSG_GROUP_DATA)
		fuzz_group_data(f, w);
}

static const uint8_t all_types[] = {
	PME_MSG_HELLO, PME_MSG_GROUP_BEGIN, PME_MSG_GROUP_DATA, PME_MSG_GROUP_END,
	PME_MSG_LOG, PME_MSG_BYE, PME_MSG_SERVICE_CONFIG, PME_MSG_START, PME_MSG_STOP,
	PME_MSG_RELOAD, PME_MSG_WORKER_READY, PME_MSG_WORKER_EXITED,
	PME_MSG_START_FAILED, PME_MSG_RELOADED,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pme_proto_decoder dec;
	struct pme_proto_writer w;
	struct pme_proto_frame f;
	size_t off = 0, taken, chunk, i;
	int rc;

	pme_proto_writer_init(&w, PME_PROTO_HARD_MAX_PAYLOAD);

	/* 1. The bytes as a stream, fed in chunks sized by the first byte. */
	if (pme_proto_decoder_init(&dec, 4096) != 0)
		abort();
	chunk = size > 0 ? (size_t)data[0] % 64 + 1 : 1;
	for (;;) {
		taken = pme_proto_decoder_feed(&dec, data + off,
		    size - off < chunk ? size - off : chunk);
		off += taken;
		check(pme_proto_decoder_pending(&dec) <= dec.cap, "decoder bounded");
		while ((rc = pme_proto_decoder_next(&dec, &f)) == 1) {
			check(f.length <= 4096, "frame bounded");
			check(pme_proto_type_known(f.type), "known type");
			fuzz_messages(&f, &w);
		}
		if (rc < 0) {
			check(pme_proto_decoder_next(&dec, &f) == rc, "decoder error sticks");
			check(pme_proto_decoder_feed(&dec, data, size) == 0, "no feed after error");
			break;
		}
		if (off == size)
			break;
		check(taken > 0, "feed makes progress");
	}
	pme_proto_decoder_free(&dec);

	/* 2. The bytes as the payload of every message type. */
	for (i = 0; i < sizeof(all_types); i++) {
		f.type = all_types[i];
		f.length = (uint32_t)(size > PME_PROTO_HARD_MAX_PAYLOAD ?
		    PME_PROTO_HARD_MAX_PAYLOAD : size);
		f.payload = data;
		fuzz_messages(&f, &w);
	}
	pme_proto_writer_free(&w);
	return 0;
}

#ifndef PME_LIBFUZZER

/* xorshift64*: deterministic, so a failure is reproducible by its index. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

struct corpus {
	uint8_t *frames[32];
	size_t len[32];
	size_t n;
};

static void
keep_frame(struct corpus *c, struct pme_proto_writer *w)
{
	if (pme_proto_writer_finish(w) != 0 || c->n == 32)
		abort();
	c->frames[c->n] = malloc(w->len);
	if (c->frames[c->n] == NULL)
		abort();
	memcpy(c->frames[c->n], w->buf, w->len);
	c->len[c->n++] = w->len;
}

/* One valid frame of each kind, to mutate. */
static void
make_corpus(struct corpus *c)
{
	static const uint32_t groups[] = { 4, 27, 100 };
	struct pme_proto_writer w;

	c->n = 0;
	pme_proto_writer_init(&w, PME_PROTO_MAX_PAYLOAD);
	pme_proto_encode_hello(&w, 1234, 33, 33, "nginx", 5);
	keep_frame(c, &w);
	pme_proto_encode_group_begin(&w, "status", 6, 42);
	keep_frame(c, &w);
	pme_proto_writer_begin(&w, PME_MSG_GROUP_DATA);
	pme_proto_put_family(&w, "http_seconds", 12, PME_TYPE_HISTOGRAM, "Latency", 7, "seconds", 7);
	pme_proto_put_sample_begin(&w, "_bucket", 7);
	pme_proto_put_label(&w, "path", 4, "/caf\xc3\xa9", 6);
	pme_proto_put_label(&w, "le", 2, "0.5", 3);
	pme_proto_put_sample_end(&w, 3);
	pme_proto_put_sample_begin(&w, "_sum", 4);
	pme_proto_put_sample_end(&w, 1.25);
	pme_proto_put_metric_error(&w, "nginx_up", 8, "no match", 8);
	keep_frame(c, &w);
	pme_proto_encode_group_end(&w, 0, 0.5, 1, 2, "exit 2", 6, 0, -1, 1);
	keep_frame(c, &w);
	pme_proto_encode_log(&w, 4, "warning", 7);
	keep_frame(c, &w);
	pme_proto_encode_empty(&w, PME_MSG_BYE);
	keep_frame(c, &w);
	pme_proto_encode_service_config(&w, "nginx", 5, 33, 33, groups, 3, PME_CONFIG_ONCE,
	    "services: {}\n", 13);
	keep_frame(c, &w);
	pme_proto_encode_name(&w, PME_MSG_START, "db", 2);
	keep_frame(c, &w);
	pme_proto_encode_empty(&w, PME_MSG_RELOAD);
	keep_frame(c, &w);
	pme_proto_encode_worker_ready(&w, "db", 2, 99);
	keep_frame(c, &w);
	pme_proto_encode_worker_exited(&w, "db", 2, 99, -1, 9);
	keep_frame(c, &w);
	pme_proto_encode_start_failed(&w, "db", 2, "no user", 7);
	keep_frame(c, &w);
	pme_proto_encode_reloaded(&w, 1, "", 0);
	keep_frame(c, &w);
	pme_proto_writer_free(&w);
}

static size_t
mutate(const struct corpus *c, uint8_t *buf, size_t cap)
{
	size_t len = 0, k, n, pos;
	uint32_t kind = rng() % 8;

	if (kind == 0) {
		/* Random bytes, sometimes behind a valid-looking header. */
		len = rng() % 600;
		for (k = 0; k < len; k++)
			buf[k] = (uint8_t)rng();
		if (len >= 8 && rng() % 2) {
			buf[0] = PME_PROTO_MAGIC0;
			buf[1] = PME_PROTO_MAGIC1;
			buf[2] = PME_PROTO_VERSION;
			buf[3] = c->frames[rng() % c->n][3];
			n = len - 8;
			buf[4] = 0;
			buf[5] = (uint8_t)(n >> 16);
			buf[6] = (uint8_t)(n >> 8);
			buf[7] = (uint8_t)n;
		}
		return len;
	}
	/* One to four valid frames back to back. */
	n = 1 + rng() % 4;
	for (k = 0; k < n; k++) {
		size_t i = rng() % c->n;
		if (len + c->len[i] > cap)
			break;
		memcpy(buf + len, c->frames[i], c->len[i]);
		len += c->len[i];
	}
	if (len == 0)
		return 0;
	n = 1 + rng() % 4;
	for (k = 0; k < n; k++) {
		pos = rng() % len;
		switch (rng() % 6) {
		case 0:         /* flip a bit */
			buf[pos] ^= (uint8_t)(1u << (rng() % 8));
			break;
		case 1:         /* set a byte to an interesting value */
			buf[pos] = (uint8_t[]){ 0, 1, 0x7f, 0x80, 0xc0, 0xed, 0xff, '_' }[rng() % 8];
			break;
		case 2:         /* truncate */
			len = pos;
			break;
		case 3:         /* drop a byte */
			memmove(buf + pos, buf + pos + 1, len - pos - 1);
			len--;
			break;
		case 4:         /* insert a byte */
			if (len < cap) {
				memmove(buf + pos + 1, buf + pos, len - pos);
				buf[pos] = (uint8_t)rng();
				len++;
			}
			break;
		default:        /* a 32-bit field set to a large or small count */
			if (pos + 4 <= len) {
				uint32_t v = (uint32_t[]){ 0, 1, 64, 65, 65536, 0x7fffffff,
				    0xffffffff, (uint32_t)len }[rng() % 8];
				buf[pos] = (uint8_t)(v >> 24);
				buf[pos + 1] = (uint8_t)(v >> 16);
				buf[pos + 2] = (uint8_t)(v >> 8);
				buf[pos + 3] = (uint8_t)v;
			}
			break;
		}
		if (len == 0)
			break;
	}
	return len;
}

/* With PME_FUZZ_CORPUS=dir in the environment, the seed frames are also
 * written there, one file each: a start corpus for the libFuzzer build. */
static void
save_seed(const uint8_t *data, size_t len)
{
	static unsigned n;
	const char *dir = getenv("PME_FUZZ_CORPUS");
	char path[4096];
	FILE *f;

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/seed-%u", dir, n++);
	if ((f = fopen(path, "wb")) == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "fuzz_frame: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static void
run_file(const char *path)
{
	static uint8_t data[1 << 20];
	FILE *f;
	size_t len;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "fuzz_frame: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	len = fread(data, 1, sizeof(data), f);
	fclose(f);
	current_file = path;
	LLVMFuzzerTestOneInput(data, len);
	current_file = NULL;
	printf("fuzz_frame: %s (%zu bytes) survived\n", path, len);
}

static int
compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of a directory, in name order. */
static void
run_directory(const char *dir)
{
	char **names = NULL, path[4096];
	size_t n = 0, i;
	struct dirent *e;
	struct stat st;
	DIR *d;

	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "fuzz_frame: %s: %s\n", dir, strerror(errno));
		exit(1);
	}
	while ((e = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if ((names = realloc(names, (n + 1) * sizeof(*names))) == NULL ||
		    (names[n++] = strdup(path)) == NULL)
			abort();
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), compare_names);
	for (i = 0; i < n; i++) {
		run_file(names[i]);
		free(names[i]);
	}
	free(names);
}

/*
 * Arguments: [RUNS] [FILE | DIRECTORY]..., as the C++ targets take them
 * (fuzz_util.hpp, runArgs): the files first, a directory's in name order,
 * a path that does not exist skipped with a note; then RUNS generated
 * inputs, none when there are files and no RUNS.
 */
int
main(int argc, char **argv)
{
	static uint8_t buf[8192];
	struct corpus c;
	struct stat st;
	long i, runs = 20000;
	int first = 1;
	size_t k, len;

	if (argc > 1 && argv[1][0] != '\0' && strspn(argv[1], "0123456789") == strlen(argv[1])) {
		runs = strtol(argv[1], NULL, 10);
		first = 2;
	} else if (argc > 1) {
		runs = -1;
	}
	for (i = first; i < argc; i++) {
		if (stat(argv[i], &st) != 0)
			printf("fuzz_frame: %s does not exist, nothing to run\n", argv[i]);
		else if (S_ISDIR(st.st_mode))
			run_directory(argv[i]);
		else
			run_file(argv[i]);
	}
	if (runs < 0)
		return 0;

	make_corpus(&c);
	/* Each valid frame alone, and cut at every length. */
	for (k = 0; k < c.n; k++) {
		save_seed(c.frames[k], c.len[k]);
		for (len = 0; len <= c.len[k]; len++)
			LLVMFuzzerTestOneInput(c.frames[k], len);
	}
	for (i = 0; i < runs; i++) {
		len = mutate(&c, buf, sizeof(buf));
		LLVMFuzzerTestOneInput(buf, len);
	}
	for (k = 0; k < c.n; k++)
		free(c.frames[k]);
	printf("fuzz_frame: %ld mutated inputs and every cut of %zu valid frames survived\n",
	    runs, c.n);
	return 0;
}

#endif
