/* SPDX-License-Identifier: ISC */
/* Message encoders and checked decoders, GROUP_DATA records. */

/*
 * Each decoder reads the fields in wire order through a pme_proto_reader,
 * whose first error sticks, validates each value as soon as it is read, and
 * ends with pme_proto_reader_end() so that a payload longer than its fields
 * is refused.  Strings are never copied: they point into the frame and are
 * not NUL-terminated.
 *
 * GROUP_DATA is a sequence of records.  pme_proto_record_next() checks a
 * SAMPLE record whole (every label name, value and duplicate) before it
 * returns it, then rewinds rec->labels to the first label: a caller that
 * builds its own copy label by label can never see half of a bad sample.
 */
#include "message.h"

#include <math.h>
#include <string.h>

/* Encoders */

void
pme_proto_encode_hello(struct pme_proto_writer *w, uint32_t pid, uint32_t uid,
    uint32_t gid, const char *service, size_t service_len)
{
	pme_proto_writer_begin(w, PME_MSG_HELLO);
	pme_proto_put_u16(w, PME_PROTO_VERSION);
	pme_proto_put_u32(w, pid);
	pme_proto_put_u32(w, uid);
	pme_proto_put_u32(w, gid);
	pme_proto_put_str(w, service, service_len);
}

void
pme_proto_encode_group_begin(struct pme_proto_writer *w, const char *group,
    size_t group_len, uint64_t sequence)
{
	pme_proto_writer_begin(w, PME_MSG_GROUP_BEGIN);
	pme_proto_put_str(w, group, group_len);
	pme_proto_put_u64(w, sequence);
}

void
pme_proto_encode_group_end(struct pme_proto_writer *w, int ok, double duration,
    uint32_t skipped, int32_t exit_status, const char *error, size_t error_len,
    int32_t http_status, double response_seconds, int truncated)
{
	pme_proto_writer_begin(w, PME_MSG_GROUP_END);
	pme_proto_put_u8(w, ok ? 1 : 0);
	pme_proto_put_f64(w, duration);
	pme_proto_put_u32(w, skipped);
	pme_proto_put_i32(w, exit_status);
	pme_proto_put_str(w, error, error_len);
	pme_proto_put_i32(w, http_status);
	pme_proto_put_f64(w, response_seconds);
	pme_proto_put_u8(w, truncated ? 1 : 0);
}

void
pme_proto_encode_log(struct pme_proto_writer *w, uint8_t priority,
    const char *msg, size_t len)
{
	pme_proto_writer_begin(w, PME_MSG_LOG);
	pme_proto_put_u8(w, priority);
	pme_proto_put_str(w, msg, len);
}

void
pme_proto_encode_explain(struct pme_proto_writer *w, const char *text, size_t len)
{
	pme_proto_writer_begin(w, PME_MSG_EXPLAIN);
	pme_proto_put_str(w, text, len);
}

void
pme_proto_encode_empty(struct pme_proto_writer *w, uint8_t type)
{
	pme_proto_writer_begin(w, type);
}

void
pme_proto_encode_name(struct pme_proto_writer *w, uint8_t type,
    const char *service, size_t len)
{
	pme_proto_writer_begin(w, type);
	pme_proto_put_str(w, service, len);
}

void
pme_proto_encode_worker_ready(struct pme_proto_writer *w, const char *service,
    size_t len, uint32_t pid)
{
	pme_proto_writer_begin(w, PME_MSG_WORKER_READY);
	pme_proto_put_str(w, service, len);
	pme_proto_put_u32(w, pid);
}

void
pme_proto_encode_worker_exited(struct pme_proto_writer *w, const char *service,
    size_t len, uint32_t pid, int32_t exit_code, int32_t signal)
{
	pme_proto_writer_begin(w, PME_MSG_WORKER_EXITED);
	pme_proto_put_str(w, service, len);
	pme_proto_put_u32(w, pid);
	pme_proto_put_i32(w, exit_code);
	pme_proto_put_i32(w, signal);
}

void
pme_proto_encode_start_failed(struct pme_proto_writer *w, const char *service,
    size_t len, const char *reason, size_t reason_len)
{
	pme_proto_writer_begin(w, PME_MSG_START_FAILED);
	pme_proto_put_str(w, service, len);
	pme_proto_put_str(w, reason, reason_len);
}

void
pme_proto_encode_reloaded(struct pme_proto_writer *w, int ok, const char *msg, size_t len)
{
	pme_proto_writer_begin(w, PME_MSG_RELOADED);
	pme_proto_put_u8(w, ok ? 1 : 0);
	pme_proto_put_str(w, msg, len);
}

void
pme_proto_encode_service_config(struct pme_proto_writer *w,
    const char *service, size_t service_len, uint32_t uid, uint32_t gid,
    const uint32_t *groups, uint32_t ngroups, uint32_t flags,
    const char *config, size_t config_len)
{
	uint32_t i;

	pme_proto_writer_begin(w, PME_MSG_SERVICE_CONFIG);
	pme_proto_put_str(w, service, service_len);
	pme_proto_put_u32(w, uid);
	pme_proto_put_u32(w, gid);
	pme_proto_put_u32(w, ngroups);
	for (i = 0; i < ngroups && w->error == 0; i++)
		pme_proto_put_u32(w, groups[i]);
	pme_proto_put_u32(w, flags);
	pme_proto_put_str(w, config, config_len);
}

void
pme_proto_put_family(struct pme_proto_writer *w, const char *name, size_t name_len,
    uint8_t type, const char *help, size_t help_len, const char *unit, size_t unit_len)
{
	pme_proto_put_u8(w, PME_REC_FAMILY);
	pme_proto_put_str(w, name, name_len);
	pme_proto_put_u8(w, type);
	pme_proto_put_str(w, help, help_len);
	pme_proto_put_str(w, unit, unit_len);
}

void
pme_proto_put_sample_begin(struct pme_proto_writer *w, const char *suffix, size_t suffix_len)
{
	w->sample_kind_at = w->len;
	pme_proto_put_u8(w, PME_REC_SAMPLE);
	pme_proto_put_str(w, suffix, suffix_len);
	w->sample_at = w->len;
	w->sample_labels = 0;
	pme_proto_put_u16(w, 0);
}

void
pme_proto_put_label(struct pme_proto_writer *w, const char *name, size_t name_len,
    const char *value, size_t value_len)
{
	if (w->error == 0 && w->sample_labels == UINT16_MAX) {
		w->error = PME_PROTO_ELIMIT;
		return;
	}
	pme_proto_put_str(w, name, name_len);
	pme_proto_put_str(w, value, value_len);
	w->sample_labels++;
}

void
pme_proto_put_sample_end(struct pme_proto_writer *w, double value)
{
	if (w->error == 0 && w->sample_at >= PME_PROTO_HEADER_SIZE &&
	    w->sample_at + 2 <= w->len) {
		w->buf[w->sample_at] = (uint8_t)(w->sample_labels >> 8);
		w->buf[w->sample_at + 1] = (uint8_t)w->sample_labels;
	}
	pme_proto_put_f64(w, value);
	w->sample_at = 0;
	w->sample_labels = 0;
}

void
pme_proto_put_sample_end_ts(struct pme_proto_writer *w, double value, int64_t timestamp_ms)
{
	if (w->error == 0 && w->sample_kind_at >= PME_PROTO_HEADER_SIZE &&
	    w->sample_kind_at < w->len)
		w->buf[w->sample_kind_at] = PME_REC_SAMPLE_TS;
	pme_proto_put_sample_end(w, value);
	pme_proto_put_u64(w, (uint64_t)timestamp_ms);
	w->sample_kind_at = 0;
}

void
pme_proto_put_metric_error(struct pme_proto_writer *w, const char *family,
    size_t family_len, const char *msg, size_t msg_len)
{
	pme_proto_put_u8(w, PME_REC_METRIC_ERROR);
	pme_proto_put_str(w, family, family_len);
	pme_proto_put_str(w, msg, msg_len);
}

/* Decoders */

static int
fail(struct pme_proto_reader *r, int error)
{
	if (r->error == 0)
		r->error = error;
	return r->error;
}

/* A name the peer refers to (service, group): non-empty UTF-8. */
static int
get_name(struct pme_proto_reader *r, struct pme_proto_str *s)
{
	if (pme_proto_get_str(r, s) != 0)
		return r->error;
	if (s->len == 0)
		return fail(r, PME_PROTO_EVALUE);
	return 0;
}

static int
get_bool(struct pme_proto_reader *r, uint8_t *v)
{
	if (pme_proto_get_u8(r, v) != 0)
		return r->error;
	if (*v > 1)
		return fail(r, PME_PROTO_EVALUE);
	return 0;
}

/* A process id: 1..INT32_MAX. */
static int
get_pid(struct pme_proto_reader *r, uint32_t *v)
{
	if (pme_proto_get_u32(r, v) != 0)
		return r->error;
	if (*v == 0 || *v > INT32_MAX)
		return fail(r, PME_PROTO_EVALUE);
	return 0;
}

static int
start(struct pme_proto_reader *r, const struct pme_proto_frame *f, uint8_t type)
{
	pme_proto_reader_init(r, f);
	if (f->type != type)
		return r->error = PME_PROTO_ETYPE;
	return 0;
}

int
pme_proto_decode_hello(const struct pme_proto_frame *f, struct pme_proto_hello *m)
{
	struct pme_proto_reader r;

	if (start(&r, f, PME_MSG_HELLO) != 0)
		return r.error;
	if (pme_proto_get_u16(&r, &m->version) == 0 && m->version != PME_PROTO_VERSION)
		return PME_PROTO_EVERSION;
	get_pid(&r, &m->pid);
	pme_proto_get_u32(&r, &m->uid);
	pme_proto_get_u32(&r, &m->gid);
	get_name(&r, &m->service);
	return pme_proto_reader_end(&r);
}

int
pme_proto_decode_group_begin(const struct pme_proto_frame *f, struct pme_proto_group_begin *m)
{
	struct pme_proto_reader r;

	if (start(&r, f, PME_MSG_GROUP_BEGIN) != 0)
		return r.error;
	get_name(&r, &m->group);
	pme_proto_get_u64(&r, &m->sequence);
	return pme_proto_reader_end(&r);
}

int
pme_proto_decode_group_end(const struct pme_proto_frame *f, struct pme_proto_group_end *m)
{
	struct pme_proto_reader r;

	if (start(&r, f, PME_MSG_GROUP_END) != 0)
		return r.error;
	get_bool(&r, &m->ok);
	if (pme_proto_get_f64(&r, &m->duration) == 0 &&
	    (!isfinite(m->duration) || m->duration < 0))
		fail(&r, PME_PROTO_EVALUE);
	pme_proto_get_u32(&r, &m->skipped);
	if (pme_proto_get_i32(&r, &m->exit_status) == 0 && m->exit_status < -1)
		fail(&r, PME_PROTO_EVALUE);
	pme_proto_get_str(&r, &m->error);
	if (pme_proto_get_i32(&r, &m->http_status) == 0 &&
	    m->http_status != 0 && (m->http_status < 100 || m->http_status > 999))
		fail(&r, PME_PROTO_EVALUE);
	if (pme_proto_get_f64(&r, &m->response_seconds) == 0 &&
	    m->response_seconds != -1 && (!isfinite(m->response_seconds) ||
	    m->response_seconds < 0))
		fail(&r, PME_PROTO_EVALUE);
	get_bool(&r, &m->truncated);
	return pme_proto_reader_end(&r);
}

int
pme_proto_decode_log(const struct pme_proto_frame *f, struct pme_proto_log *m)
{
	struct pme_proto_reader r;

	if (start(&r, f, PME_MSG_LOG) != 0)
		return r.error;
	if (pme_proto_get_u8(&r, &m->priority) == 0 && m->priority > 7)
		fail(&r, PME_PROTO_EVALUE);
	pme_proto_get_str(&r, &m->message);
	return pme_proto_reader_end(&r);
}

int
pme_proto_decode_explain(const struct pme_proto_frame *f, struct pme_proto_explain *m)
{
	struct pme_proto_reader r;

	if (start(&r, f, PME_MSG_EXPLAIN) != 0)
		return r.error;
	pme_proto_get_str(&r, &m->text);
	return pme_proto_reader_end(&r);
}

int
pme_proto_decode_service_config(const struct pme_proto_frame *f,
    struct pme_proto_service_config *m)
{
	struct pme_proto_reader r;
	size_t span;

	if (start(&r, f, PME_MSG_SERVICE_CONFIG) != 0)
		return r.error;
	get_name(&r, &m->service);
	pme_proto_get_u32(&r, &m->uid);
	pme_proto_get_u32(&r, &m->gid);
	if (pme_proto_get_u32(&r, &m->ngroups) != 0)
		return r.error;
	if (m->ngroups > 65536)
		return fail(&r, PME_PROTO_EVALUE);
	span = (size_t)m->ngroups * 4;
	if (span > r.left)
		return fail(&r, PME_PROTO_ETRUNCATED);
	m->groups.p = r.p;
	m->groups.left = span;
	m->groups.error = 0;
	r.p += span;
	r.left -= span;
	if (pme_proto_get_u32(&r, &m->flags) == 0 &&
	    (m->flags & ~(PME_CONFIG_ONCE | PME_CONFIG_EXPLAIN)) != 0)
		fail(&r, PME_PROTO_EVALUE);
	pme_proto_get_str(&r, &m->config);
	return pme_proto_reader_end(&r);
}

int
pme_proto_decode_name(const struct pme_proto_frame *f, struct pme_proto_name *m)
{
	struct pme_proto_reader r;

	pme_proto_reader_init(&r, f);
	if (f->type != PME_MSG_START && f->type != PME_MSG_STOP)
		return PME_PROTO_ETYPE;
	get_name(&r, &m->service);
	return pme_proto_reader_end(&r);
}

int
pme_proto_decode_worker_ready(const struct pme_proto_frame *f,
    struct pme_proto_worker_ready *m)
{
	struct pme_proto_reader r;

	if (start(&r, f, PME_MSG_WORKER_READY) != 0)
		return r.error;
	get_name(&r, &m->service);
	get_pid(&r, &m->pid);
	return pme_proto_reader_end(&r);
}

int
pme_proto_decode_worker_exited(const struct pme_proto_frame *f,
    struct pme_proto_worker_exited *m)
{
	struct pme_proto_reader r;

	if (start(&r, f, PME_MSG_WORKER_EXITED) != 0)
		return r.error;
	get_name(&r, &m->service);
	get_pid(&r, &m->pid);
	if (pme_proto_get_i32(&r, &m->exit_code) == 0 &&
	    (m->exit_code < -1 || m->exit_code > 255))
		fail(&r, PME_PROTO_EVALUE);
	if (pme_proto_get_i32(&r, &m->signal) == 0 && (m->signal < 0 || m->signal > 127))
		fail(&r, PME_PROTO_EVALUE);
	return pme_proto_reader_end(&r);
}

int
pme_proto_decode_start_failed(const struct pme_proto_frame *f,
    struct pme_proto_start_failed *m)
{
	struct pme_proto_reader r;

	if (start(&r, f, PME_MSG_START_FAILED) != 0)
		return r.error;
	get_name(&r, &m->service);
	pme_proto_get_str(&r, &m->reason);
	return pme_proto_reader_end(&r);
}

int
pme_proto_decode_reloaded(const struct pme_proto_frame *f, struct pme_proto_reloaded *m)
{
	struct pme_proto_reader r;

	if (start(&r, f, PME_MSG_RELOADED) != 0)
		return r.error;
	get_bool(&r, &m->ok);
	pme_proto_get_str(&r, &m->message);
	return pme_proto_reader_end(&r);
}

int
pme_proto_decode_empty(const struct pme_proto_frame *f)
{
	if (f->type != PME_MSG_BYE && f->type != PME_MSG_RELOAD)
		return PME_PROTO_ETYPE;
	return f->length == 0 ? 0 : PME_PROTO_ETRAILING;
}

/* GROUP_DATA records */

static int
valid_suffix(const struct pme_proto_str *s)
{
	if (s->len == 0)
		return 1;
	/* "_bucket": '_' first, then metric-name characters. */
	return s->ptr[0] == '_' && pme_proto_valid_metric_name(s->ptr, s->len);
}

static int
same_str(const struct pme_proto_str *a, const struct pme_proto_str *b)
{
	return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

/* Check nlabels (name, value) pairs, leaving r after the last one. */
static int
check_labels(struct pme_proto_reader *r, uint16_t nlabels)
{
	struct pme_proto_str names[PME_PROTO_MAX_LABELS];
	struct pme_proto_str value;
	uint16_t i, j;

	for (i = 0; i < nlabels; i++) {
		if (pme_proto_get_bytes(r, &names[i]) != 0)
			return r->error;
		if (!pme_proto_valid_label_name(names[i].ptr, names[i].len))
			return fail(r, PME_PROTO_ELABEL);
		for (j = 0; j < i; j++)
			if (same_str(&names[i], &names[j]))
				return fail(r, PME_PROTO_ELABEL);
		if (pme_proto_get_str(r, &value) != 0)
			return r->error;
	}
	return 0;
}

int
pme_proto_record_next(struct pme_proto_reader *r, struct pme_proto_record *rec)
{
	const uint8_t *labels_at;

	if (r->error != 0)
		return r->error;
	if (r->left == 0)
		return 0;
	memset(rec, 0, sizeof(*rec));
	if (pme_proto_get_u8(r, &rec->kind) != 0)
		return r->error;
	switch (rec->kind) {
	case PME_REC_FAMILY:
		if (pme_proto_get_bytes(r, &rec->name) != 0)
			return r->error;
		if (!pme_proto_valid_metric_name(rec->name.ptr, rec->name.len))
			return fail(r, PME_PROTO_ENAME);
		if (pme_proto_get_u8(r, &rec->type) != 0)
			return r->error;
		if (rec->type < PME_TYPE_COUNTER || rec->type > PME_TYPE_UNTYPED)
			return fail(r, PME_PROTO_EVALUE);
		if (pme_proto_get_str(r, &rec->help) != 0 || pme_proto_get_str(r, &rec->unit) != 0)
			return r->error;
		return 1;
	case PME_REC_SAMPLE:
	case PME_REC_SAMPLE_TS:
		if (pme_proto_get_bytes(r, &rec->suffix) != 0)
			return r->error;
		if (!valid_suffix(&rec->suffix))
			return fail(r, PME_PROTO_ENAME);
		if (pme_proto_get_u16(r, &rec->nlabels) != 0)
			return r->error;
		if (rec->nlabels > PME_PROTO_MAX_LABELS)
			return fail(r, PME_PROTO_EVALUE);
		labels_at = r->p;
		if (check_labels(r, rec->nlabels) != 0)
			return r->error;
		rec->labels.p = labels_at;
		rec->labels.left = (size_t)(r->p - labels_at);
		rec->labels.error = 0;
		if (pme_proto_get_f64(r, &rec->value) != 0)
			return r->error;
		if (rec->kind == PME_REC_SAMPLE_TS) {
			uint64_t ts;
			if (pme_proto_get_u64(r, &ts) != 0)
				return r->error;
			rec->timestamp_ms = (int64_t)ts;
		}
		return 1;
	case PME_REC_METRIC_ERROR:
		if (pme_proto_get_bytes(r, &rec->name) != 0)
			return r->error;
		if (!pme_proto_valid_metric_name(rec->name.ptr, rec->name.len))
			return fail(r, PME_PROTO_ENAME);
		if (pme_proto_get_str(r, &rec->message) != 0)
			return r->error;
		return 1;
	}
	return fail(r, PME_PROTO_EVALUE);
}

int
pme_proto_label_next(struct pme_proto_record *rec, struct pme_proto_str *name,
    struct pme_proto_str *value)
{
	if (rec->labels.error != 0)
		return rec->labels.error;
	if ((rec->kind != PME_REC_SAMPLE && rec->kind != PME_REC_SAMPLE_TS) ||
	    rec->labels.left == 0)
		return 0;
	/* Already validated by record_next. */
	if (pme_proto_get_bytes(&rec->labels, name) != 0 ||
	    pme_proto_get_bytes(&rec->labels, value) != 0)
		return rec->labels.error;
	return 1;
}
