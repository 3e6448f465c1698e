/* SPDX-License-Identifier: ISC */
/* Message kinds and their payload layouts, with checked encoders/decoders. */
#ifndef PME_PROTO_MESSAGE_H
#define PME_PROTO_MESSAGE_H

#include "frame.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Message types, one range per direction, so that a frame of the wrong
 * direction is recognisable as such:
 *   0x01-0x1f  worker     -> supervisor
 *   0x20-0x3f  spawner    -> worker
 *   0x40-0x5f  supervisor -> spawner
 *   0x60-0x7f  spawner    -> supervisor
 * Field layouts (all integers big-endian; str = u32 length + bytes, UTF-8,
 * no NUL; f64 = IEEE 754 bits as u64):
 */
enum pme_proto_type {
	/* u16 protocol version, u32 pid, u32 uid, u32 gid, str service */
	PME_MSG_HELLO = 0x01,
	/* str group, u64 sequence: a group result starts */
	PME_MSG_GROUP_BEGIN = 0x02,
	/* records (see enum pme_proto_record_kind) until the payload ends */
	PME_MSG_GROUP_DATA = 0x03,
	/* u8 ok, f64 duration seconds, u32 skipped runs since last result,
	 * i32 exit status (-1: none), str error (empty when ok) */
	PME_MSG_GROUP_END = 0x04,
	/* u8 syslog priority (0-7), str message */
	PME_MSG_LOG = 0x05,
	/* empty: the worker is leaving on purpose */
	PME_MSG_BYE = 0x06,
	/* str text: one piece of a pmed --explain report, sent only under
	 * PME_CONFIG_EXPLAIN, before the result it explains; a long report
	 * comes as several frames, in order */
	PME_MSG_EXPLAIN = 0x07,

	/* str service, u32 uid, u32 gid, u32 ngroups, ngroups x u32,
	 * u32 flags (PME_CONFIG_*), str config (YAML) */
	PME_MSG_SERVICE_CONFIG = 0x20,

	/* str service */
	PME_MSG_START = 0x40,
	/* str service */
	PME_MSG_STOP = 0x41,
	/* empty: re-read and re-validate the configuration file */
	PME_MSG_RELOAD = 0x42,

	/* str service, u32 pid; the worker's socket travels as SCM_RIGHTS */
	PME_MSG_WORKER_READY = 0x60,
	/* str service, u32 pid, i32 exit code (-1 when killed), i32 signal */
	PME_MSG_WORKER_EXITED = 0x61,
	/* str service, str reason */
	PME_MSG_START_FAILED = 0x62,
	/* u8 ok, str message (the errors when not ok) */
	PME_MSG_RELOADED = 0x63,
};

/* SERVICE_CONFIG flags. */
#define PME_CONFIG_ONCE 0x1u     /* run every group at once, no start spread */
#define PME_CONFIG_EXPLAIN 0x2u  /* pmed --explain: report each group's first
                                  * cycle in EXPLAIN frames; implies ONCE */

/* Records inside GROUP_DATA. */
enum pme_proto_record_kind {
	/* str name, u8 metric type (enum pme_proto_metric_type), str help, str unit */
	PME_REC_FAMILY = 1,
	/* str suffix, u16 nlabels, nlabels x (str name, str value), f64 value;
	 * belongs to the last FAMILY record of this group result */
	PME_REC_SAMPLE = 2,
	/* str family name, str message: that metric failed this cycle */
	PME_REC_METRIC_ERROR = 3,
	/* as SAMPLE, then i64 timestamp in milliseconds since the epoch: a
	 * sample imported with its own timestamp (honor_timestamps) */
	PME_REC_SAMPLE_TS = 4,
};

enum pme_proto_metric_type {
	PME_TYPE_COUNTER = 1,
	PME_TYPE_GAUGE = 2,
	PME_TYPE_HISTOGRAM = 3,
	PME_TYPE_SUMMARY = 4,
	PME_TYPE_INFO = 5,
	PME_TYPE_STATESET = 6,
	PME_TYPE_UNTYPED = 7,
};

/* Longest string accepted in a name or label (bytes). */
#define PME_PROTO_MAX_NAME 256
/* Most labels on one sample. */
#define PME_PROTO_MAX_LABELS 64

struct pme_proto_hello {
	uint16_t version;
	uint32_t pid, uid, gid;
	struct pme_proto_str service;
};

struct pme_proto_group_begin {
	struct pme_proto_str group;
	uint64_t sequence;
};

struct pme_proto_group_end {
	uint8_t ok;
	double duration;
	uint32_t skipped;
	int32_t exit_status;
	struct pme_proto_str error;
	int32_t http_status;      /* 0: no HTTP response */
	double response_seconds;  /* -1: no HTTP response */
	uint8_t truncated;        /* the source's output was cut at max_output */
};

struct pme_proto_log {
	uint8_t priority;
	struct pme_proto_str message;
};

struct pme_proto_explain {
	struct pme_proto_str text;
};

struct pme_proto_service_config {
	struct pme_proto_str service;
	uint32_t uid, gid;
	uint32_t ngroups;
	struct pme_proto_reader groups;  /* ngroups x u32, read with get_u32 */
	uint32_t flags;
	struct pme_proto_str config;
};

struct pme_proto_name { struct pme_proto_str service; };   /* START, STOP */

struct pme_proto_worker_ready {
	struct pme_proto_str service;
	uint32_t pid;
};

struct pme_proto_worker_exited {
	struct pme_proto_str service;
	uint32_t pid;
	int32_t exit_code;
	int32_t signal;
};

struct pme_proto_start_failed {
	struct pme_proto_str service;
	struct pme_proto_str reason;
};

struct pme_proto_reloaded {
	uint8_t ok;
	struct pme_proto_str message;
};

/* One record of a GROUP_DATA payload. */
struct pme_proto_record {
	uint8_t kind;
	/* FAMILY */
	struct pme_proto_str name;    /* also METRIC_ERROR's family name */
	uint8_t type;
	struct pme_proto_str help;
	struct pme_proto_str unit;
	/* SAMPLE */
	struct pme_proto_str suffix;
	uint16_t nlabels;
	struct pme_proto_reader labels; /* read with pme_proto_label_next */
	double value;
	int64_t timestamp_ms;           /* SAMPLE_TS only */
	/* METRIC_ERROR */
	struct pme_proto_str message;
};

/*
 * Decoders: check the frame's type, read every field with bounds checks,
 * validate names and UTF-8, and reject trailing bytes.  Return 0 or a
 * negative pme_proto_error.  Strings point into the frame.
 */
int pme_proto_decode_hello(const struct pme_proto_frame *f, struct pme_proto_hello *m);
int pme_proto_decode_group_begin(const struct pme_proto_frame *f, struct pme_proto_group_begin *m);
int pme_proto_decode_group_end(const struct pme_proto_frame *f, struct pme_proto_group_end *m);
int pme_proto_decode_log(const struct pme_proto_frame *f, struct pme_proto_log *m);
int pme_proto_decode_explain(const struct pme_proto_frame *f, struct pme_proto_explain *m);
int pme_proto_decode_service_config(const struct pme_proto_frame *f, struct pme_proto_service_config *m);
int pme_proto_decode_name(const struct pme_proto_frame *f, struct pme_proto_name *m); /* START, STOP */
int pme_proto_decode_worker_ready(const struct pme_proto_frame *f, struct pme_proto_worker_ready *m);
int pme_proto_decode_worker_exited(const struct pme_proto_frame *f, struct pme_proto_worker_exited *m);
int pme_proto_decode_start_failed(const struct pme_proto_frame *f, struct pme_proto_start_failed *m);
int pme_proto_decode_reloaded(const struct pme_proto_frame *f, struct pme_proto_reloaded *m);
/* BYE and RELOAD: 0 when the payload is empty. */
int pme_proto_decode_empty(const struct pme_proto_frame *f);

/* GROUP_DATA iteration: init a reader on the frame, then call record_next
 * until it returns 0 (end of payload); 1 = a record was read, < 0 = error.
 * FAMILY names must be valid metric names, types known, name+suffix a valid
 * metric name, label names valid and not repeated within a sample, all
 * strings UTF-8 and at most PME_PROTO_MAX_NAME bytes for names. */
int pme_proto_record_next(struct pme_proto_reader *r, struct pme_proto_record *rec);
/* Read the next label of a SAMPLE record: 1 = read, 0 = none left, < 0 = error. */
int pme_proto_label_next(struct pme_proto_record *rec,
    struct pme_proto_str *name, struct pme_proto_str *value);

/* Encoders: begin a frame of the type on w and write its fields.  The
 * caller finishes with pme_proto_writer_finish(). */
void pme_proto_encode_hello(struct pme_proto_writer *w, uint32_t pid, uint32_t uid,
    uint32_t gid, const char *service, size_t service_len);
void pme_proto_encode_group_begin(struct pme_proto_writer *w, const char *group,
    size_t group_len, uint64_t sequence);
void pme_proto_encode_group_end(struct pme_proto_writer *w, int ok, double duration,
    uint32_t skipped, int32_t exit_status, const char *error, size_t error_len,
    int32_t http_status, double response_seconds, int truncated);
void pme_proto_encode_log(struct pme_proto_writer *w, uint8_t priority,
    const char *msg, size_t len);
/* The text must be UTF-8 without NUL and fit one frame: a caller with a
 * longer report splits it (at character boundaries) over several frames. */
void pme_proto_encode_explain(struct pme_proto_writer *w, const char *text, size_t len);
void pme_proto_encode_empty(struct pme_proto_writer *w, uint8_t type);
void pme_proto_encode_name(struct pme_proto_writer *w, uint8_t type,
    const char *service, size_t len);
void pme_proto_encode_worker_ready(struct pme_proto_writer *w, const char *service,
    size_t len, uint32_t pid);
void pme_proto_encode_worker_exited(struct pme_proto_writer *w, const char *service,
    size_t len, uint32_t pid, int32_t exit_code, int32_t signal);
void pme_proto_encode_start_failed(struct pme_proto_writer *w, const char *service,
    size_t len, const char *reason, size_t reason_len);
void pme_proto_encode_reloaded(struct pme_proto_writer *w, int ok,
    const char *msg, size_t len);
void pme_proto_encode_service_config(struct pme_proto_writer *w,
    const char *service, size_t service_len, uint32_t uid, uint32_t gid,
    const uint32_t *groups, uint32_t ngroups, uint32_t flags,
    const char *config, size_t config_len);

/* GROUP_DATA building: begin with pme_proto_writer_begin(w, PME_MSG_GROUP_DATA),
 * then append records.  A sample is written as sample_begin, label x n,
 * sample_end (nlabels is patched in by sample_end). */
void pme_proto_put_family(struct pme_proto_writer *w, const char *name, size_t name_len,
    uint8_t type, const char *help, size_t help_len, const char *unit, size_t unit_len);
void pme_proto_put_sample_begin(struct pme_proto_writer *w, const char *suffix,
    size_t suffix_len);
void pme_proto_put_label(struct pme_proto_writer *w, const char *name, size_t name_len,
    const char *value, size_t value_len);
void pme_proto_put_sample_end(struct pme_proto_writer *w, double value);
/* Ends the sample as a SAMPLE_TS record with the given timestamp. */
void pme_proto_put_sample_end_ts(struct pme_proto_writer *w, double value,
    int64_t timestamp_ms);
void pme_proto_put_metric_error(struct pme_proto_writer *w, const char *family,
    size_t family_len, const char *msg, size_t msg_len);

#ifdef __cplusplus
}
#endif

#endif
