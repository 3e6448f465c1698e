/* SPDX-License-Identifier: ISC */
/* Frame codec: fixed header + bounded payload, used on every pme socket. */
#ifndef PME_PROTO_FRAME_H
#define PME_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A frame is an 8-byte header followed by its payload.  Every multi-byte
 * integer on the wire is big-endian (network order).
 *
 *   offset 0  u8[2]  magic "PM" (0x50 0x4d)
 *   offset 2  u8     protocol version (PME_PROTO_VERSION)
 *   offset 3  u8     message type (enum pme_proto_type, message.h)
 *   offset 4  u32    payload length in bytes
 *
 * A decoder is created with the largest payload it will accept; a header
 * announcing more is an error before a single payload byte is buffered.
 */
#define PME_PROTO_MAGIC0 0x50
#define PME_PROTO_MAGIC1 0x4d
#define PME_PROTO_VERSION 1
#define PME_PROTO_HEADER_SIZE 8
/* Largest payload of a worker frame (results are chunked to fit). */
#define PME_PROTO_MAX_PAYLOAD (64u * 1024u)
/* Largest payload any decoder may be configured for (SERVICE_CONFIG). */
#define PME_PROTO_HARD_MAX_PAYLOAD (4u * 1024u * 1024u)

/* Error codes: negative, so that a return >= 0 is never an error. */
enum pme_proto_error {
	PME_PROTO_OK = 0,
	PME_PROTO_EMAGIC = -1,     /* header does not start with "PM" */
	PME_PROTO_EVERSION = -2,   /* unsupported protocol version */
	PME_PROTO_ETYPE = -3,      /* unknown message type */
	PME_PROTO_ETOOBIG = -4,    /* payload length over the decoder's maximum */
	PME_PROTO_ETRUNCATED = -5, /* a field overruns the payload, or EOF mid-frame */
	PME_PROTO_ETRAILING = -6,  /* bytes left over after the last field */
	PME_PROTO_EUTF8 = -7,      /* string is not valid UTF-8, or contains NUL */
	PME_PROTO_ENAME = -8,      /* invalid metric name */
	PME_PROTO_ELABEL = -9,     /* invalid label name */
	PME_PROTO_EVALUE = -10,    /* field value out of its range */
	PME_PROTO_ENOMEM = -11,    /* allocation failed */
	PME_PROTO_ELIMIT = -12,    /* message would exceed the maximum payload */
};

/* Human-readable text for an error code; never NULL. */
const char *pme_proto_strerror(int error);

/* A decoded frame.  payload points into the decoder's buffer and stays
 * valid until the next call to pme_proto_decoder_feed(). */
struct pme_proto_frame {
	uint8_t type;
	uint32_t length;
	const uint8_t *payload;
};

/* Stream decoder: feed it bytes as they arrive, take frames out. */
struct pme_proto_decoder {
	uint8_t *buf;
	size_t cap;      /* allocated: grows as needed, up to the largest frame */
	size_t start;    /* first unconsumed byte */
	size_t end;      /* one past the last buffered byte */
	uint32_t max_payload;
	int error;       /* sticky: once set, every call returns it */
};

/* max_payload must be in 1..PME_PROTO_HARD_MAX_PAYLOAD.  Returns 0 or a
 * negative pme_proto_error.  The buffer starts small and grows to what the
 * frames need, never past PME_PROTO_HEADER_SIZE + max_payload. */
int pme_proto_decoder_init(struct pme_proto_decoder *dec, uint32_t max_payload);
void pme_proto_decoder_free(struct pme_proto_decoder *dec);

/* Copy up to len bytes into the decoder; returns how many were taken (0 only
 * when a complete frame is waiting to be taken out with _next, or after an
 * error: PME_PROTO_ENOMEM when the buffer could not grow).  It takes all
 * of them when they fit beside what is pending in the largest frame.
 * Frames returned earlier by _next become invalid. */
size_t pme_proto_decoder_feed(struct pme_proto_decoder *dec,
    const void *data, size_t len);

/* Take the next complete frame out: returns 1 and fills *frame, 0 when more
 * bytes are needed, or a negative pme_proto_error (sticky).  The header is
 * checked (magic, version, known type, length <= max) as soon as its 8 bytes
 * are in, before the payload arrives. */
int pme_proto_decoder_next(struct pme_proto_decoder *dec,
    struct pme_proto_frame *frame);

/* Bytes buffered that do not yet form a frame: non-zero at EOF means the
 * peer sent a truncated frame. */
size_t pme_proto_decoder_pending(const struct pme_proto_decoder *dec);

/* True for the message types of message.h. */
int pme_proto_type_known(uint8_t type);

/* Growable frame writer.  begin() reserves the header; the put functions
 * append payload fields; finish() fills in the length.  A put that would
 * take the payload over max_payload sets error = PME_PROTO_ELIMIT and the
 * frame is unusable; the caller checks once, at finish(). */
struct pme_proto_writer {
	uint8_t *buf;
	size_t len;      /* bytes written, header included */
	size_t cap;
	uint32_t max_payload;
	int error;
	size_t sample_at;     /* offset of the open sample's label count */
	size_t sample_kind_at; /* offset of the open sample's record kind */
	uint16_t sample_labels;
};

void pme_proto_writer_init(struct pme_proto_writer *w, uint32_t max_payload);
void pme_proto_writer_free(struct pme_proto_writer *w);
/* Start a frame of the given type (discarding anything written before). */
void pme_proto_writer_begin(struct pme_proto_writer *w, uint8_t type);
void pme_proto_put_u8(struct pme_proto_writer *w, uint8_t v);
void pme_proto_put_u16(struct pme_proto_writer *w, uint16_t v);
void pme_proto_put_u32(struct pme_proto_writer *w, uint32_t v);
void pme_proto_put_i32(struct pme_proto_writer *w, int32_t v);
void pme_proto_put_u64(struct pme_proto_writer *w, uint64_t v);
void pme_proto_put_f64(struct pme_proto_writer *w, double v); /* IEEE 754 bits as u64 */
/* u32 length followed by the bytes (no NUL terminator on the wire). */
void pme_proto_put_str(struct pme_proto_writer *w, const char *s, size_t len);
/* Payload bytes written so far in the current frame. */
size_t pme_proto_writer_payload_len(const struct pme_proto_writer *w);
/* Fill in the header; returns 0 or the writer's error.  The complete frame
 * is then w->buf[0 .. w->len). */
int pme_proto_writer_finish(struct pme_proto_writer *w);

/* A string inside a payload: not NUL-terminated. */
struct pme_proto_str {
	const char *ptr;
	uint32_t len;
};

/* Bounds-checked cursor over a payload.  Every get fails with
 * PME_PROTO_ETRUNCATED rather than read past the end; the first error
 * sticks in r->error and later gets return it too. */
struct pme_proto_reader {
	const uint8_t *p;
	size_t left;
	int error;
};

void pme_proto_reader_init(struct pme_proto_reader *r,
    const struct pme_proto_frame *frame);
int pme_proto_get_u8(struct pme_proto_reader *r, uint8_t *v);
int pme_proto_get_u16(struct pme_proto_reader *r, uint16_t *v);
int pme_proto_get_u32(struct pme_proto_reader *r, uint32_t *v);
int pme_proto_get_i32(struct pme_proto_reader *r, int32_t *v);
int pme_proto_get_u64(struct pme_proto_reader *r, uint64_t *v);
int pme_proto_get_f64(struct pme_proto_reader *r, double *v);
/* A string that must be valid UTF-8 without NUL bytes. */
int pme_proto_get_str(struct pme_proto_reader *r, struct pme_proto_str *s);
/* A string of arbitrary bytes (e.g. a YAML document is still UTF-8 checked
 * by get_str; this one is for opaque data). */
int pme_proto_get_bytes(struct pme_proto_reader *r, struct pme_proto_str *s);
/* PME_PROTO_ETRAILING if bytes are left, else the reader's error. */
int pme_proto_reader_end(struct pme_proto_reader *r);

/* Validators shared by every layer. */
int pme_proto_valid_utf8(const char *s, size_t len);          /* no NUL, no overlongs/surrogates */
int pme_proto_valid_metric_name(const char *s, size_t len);   /* [a-zA-Z_:][a-zA-Z0-9_:]* */
int pme_proto_valid_label_name(const char *s, size_t len);    /* [a-zA-Z_][a-zA-Z0-9_]*, not "__" prefixed */

#ifdef __cplusplus
}
#endif

#endif
