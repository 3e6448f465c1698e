/* SPDX-License-Identifier: ISC */
/* Test helper: push bytes through a real socketpair() into a decoder. */
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void
die(const char *what)
{
	perror(what);
	abort();
}

void
wire_open(struct wire *w)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		die("socketpair");
	w->tx = sv[0];
	w->rx = sv[1];
}

void
wire_close(struct wire *w)
{
	if (w->tx >= 0)
		close(w->tx);
	if (w->rx >= 0)
		close(w->rx);
	w->tx = w->rx = -1;
}

/* Feed n bytes, taking frames out whenever the decoder is full. */
static int
feed_all(struct pme_proto_decoder *dec, const unsigned char *p, size_t n,
    wire_frame_fn fn, void *arg)
{
	struct pme_proto_frame frame;
	size_t taken;
	int rc;

	for (;;) {
		taken = pme_proto_decoder_feed(dec, p, n);
		p += taken;
		n -= taken;
		while ((rc = pme_proto_decoder_next(dec, &frame)) == 1)
			if (fn != NULL)
				fn(&frame, arg);
		if (rc < 0)
			return rc;
		if (n == 0)
			return 0;
		if (taken == 0) {
			/* feed() refused bytes although no frame was waiting. */
			fprintf(stderr, "decoder took nothing and yielded nothing\n");
			abort();
		}
	}
}

int
wire_drain(struct wire *w, struct pme_proto_decoder *dec, wire_frame_fn fn, void *arg)
{
	unsigned char buf[65536];
	ssize_t n;
	int rc;

	for (;;) {
		n = read(w->rx, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			die("read");
		if (n == 0)
			return 0;
		rc = feed_all(dec, buf, (size_t)n, fn, arg);
		if (rc < 0)
			return rc;
	}
}

int
wire_pump(struct wire *w, const void *data, size_t len, size_t chunk,
    struct pme_proto_decoder *dec, wire_frame_fn fn, void *arg)
{
	const unsigned char *p = data;
	size_t off = 0, n;
	ssize_t wr;
	int rc;

	while (off < len) {
		n = len - off < chunk ? len - off : chunk;
		wr = write(w->tx, p + off, n);
		if (wr < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			die("write");
		if (wr > 0)
			off += (size_t)wr;
		rc = wire_drain(w, dec, fn, arg);
		if (rc < 0)
			return rc;
	}
	return wire_drain(w, dec, fn, arg);
}
