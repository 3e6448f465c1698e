/* SPDX-License-Identifier: ISC */
/* Test helper: push bytes through a real socketpair() into a decoder. */
#ifndef PME_TEST_WIRE_H
#define PME_TEST_WIRE_H

#include <stddef.h>

#include "proto/frame.h"

/* A connected AF_UNIX stream pair: bytes written to tx arrive on rx. */
struct wire {
	int tx;
	int rx;
};

typedef void (*wire_frame_fn)(const struct pme_proto_frame *frame, void *arg);

/* Open (both ends non-blocking) and close the pair; abort on failure. */
void wire_open(struct wire *w);
void wire_close(struct wire *w);

/*
 * Write len bytes to tx, `chunk` bytes per write() call, and after every
 * write feed whatever read() returns on rx to dec, calling fn for each frame
 * that comes out.  Returns 0, or the decoder's (negative) error as soon as
 * it reports one.
 */
int wire_pump(struct wire *w, const void *data, size_t len, size_t chunk,
    struct pme_proto_decoder *dec, wire_frame_fn fn, void *arg);

/* Read whatever is waiting on rx and feed it, as in wire_pump(). */
int wire_drain(struct wire *w, struct pme_proto_decoder *dec, wire_frame_fn fn, void *arg);

#endif
