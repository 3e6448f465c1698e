// SPDX-License-Identifier: ISC
// Blocking frame I/O on a socket, with optional descriptor passing.

// These helpers serve the processes that talk in a straight line and may
// block: the spawner, and a worker before its loop starts.  The supervisor
// reads worker streams through the same decoder on its libuv loop instead.
//
// Writes go through send(MSG_NOSIGNAL) so that a peer that went away is an
// EPIPE error rather than a SIGPIPE; an fd that is not a socket (a pipe in
// a test) falls back to write().  A descriptor that is non-blocking is
// waited for with poll(), so callers need not care how the fd was made.
//
// recvDatagram() takes ownership of every descriptor the kernel installed,
// before looking at anything else: a datagram that was cut short
// (MSG_TRUNC, MSG_CTRUNC) is refused, and its descriptors are closed rather
// than leaked into the spawner or the supervisor.
#include "channel.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace pme::common {

namespace {

// Wait until fd is ready for events; false with errno set on failure.
bool waitFor(int fd, short events)
{
	pollfd p{};
	p.fd = fd;
	p.events = events;
	for (;;) {
		int n = ::poll(&p, 1, -1);
		if (n >= 0)
			return true;
		if (errno != EINTR)
			return false;
	}
}

// Call a receiving op() until it gives a count: again after EINTR, and
// after waiting for fd to be readable when it would block.
template <typename Op>
Result<size_t> receiving(int fd, const char *what, Op op)
{
	for (;;) {
		ssize_t n = op();
		if (n >= 0)
			return static_cast<size_t>(n);
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (!waitFor(fd, POLLIN))
				return fail(errnoMessage("poll"));
			continue;
		}
		return fail(errnoMessage(what));
	}
}

// Most descriptors one datagram may carry; more is a protocol violation
// that recvmsg() reports as MSG_CTRUNC.
constexpr size_t maxPassedFds = 8;

} // namespace

Result<void> writeAll(int fd, const uint8_t *data, size_t len)
{
	bool socket = true;
	while (len > 0) {
		ssize_t n;
		if (socket) {
			n = ::send(fd, data, len, MSG_NOSIGNAL);
			if (n < 0 && errno == ENOTSOCK) {
				socket = false;
				continue;
			}
		} else {
			n = ::write(fd, data, len);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (!waitFor(fd, POLLOUT))
					return fail(errnoMessage("poll"));
				continue;
			}
			return fail(errnoMessage("write"));
		}
		if (n == 0)
			return fail("write: no progress");
		data += n;
		len -= static_cast<size_t>(n);
	}
	return {};
}

Result<void> writeFrame(int fd, pme_proto_writer &w)
{
	if (int rc = pme_proto_writer_finish(&w); rc != 0)
		return fail(std::string("encoding frame: ") + pme_proto_strerror(rc));
	return writeAll(fd, w.buf, w.len);
}

Result<void> sendFrameWithFd(int fd, pme_proto_writer &w, int passFd)
{
	if (int rc = pme_proto_writer_finish(&w); rc != 0)
		return fail(std::string("encoding frame: ") + pme_proto_strerror(rc));

	iovec iov{};
	iov.iov_base = w.buf;
	iov.iov_len = w.len;
	msghdr msg{};
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
	if (passFd >= 0) {
		std::memset(control, 0, sizeof(control));
		msg.msg_control = control;
		msg.msg_controllen = sizeof(control);
		cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		std::memcpy(CMSG_DATA(c), &passFd, sizeof(int));
	}
	for (;;) {
		ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (!waitFor(fd, POLLOUT))
					return fail(errnoMessage("poll"));
				continue;
			}
			return fail(errnoMessage("sendmsg"));
		}
		// A SOCK_SEQPACKET datagram goes whole or not at all.
		if (static_cast<size_t>(n) != w.len)
			return fail("sendmsg: short datagram (" + std::to_string(n) + " of " +
			    std::to_string(w.len) + " bytes)");
		return {};
	}
}

Result<size_t> recvDatagram(int fd, std::vector<uint8_t> &buf, std::vector<UniqueFd> &fds)
{
	// Linux tells a datagram's whole length to recv(MSG_PEEK | MSG_TRUNC):
	// the buffer is sized to what waits, not to the largest frame, so a
	// process that reads many small messages does not fill megabytes for
	// each.  Never more than one byte past the largest frame, so that a
	// datagram too big is seen as such even where MSG_TRUNC is not set.
	const size_t most = PME_PROTO_HEADER_SIZE + PME_PROTO_HARD_MAX_PAYLOAD;
	auto waiting = receiving(fd, "recv", [fd] {
		return ::recv(fd, nullptr, 0, MSG_PEEK | MSG_TRUNC);
	});
	if (!waiting) {
		buf.clear();
		return fail(waiting.error().message);
	}
	buf.resize(std::min(*waiting, most) + 1);
	iovec iov{};
	iov.iov_base = buf.data();
	iov.iov_len = buf.size();
	alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * maxPassedFds)];
	msghdr msg{};
	auto received = receiving(fd, "recvmsg", [&] {
		msg = msghdr{};
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = control;
		msg.msg_controllen = sizeof(control);
		return ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	});
	if (!received) {
		buf.clear();
		return fail(received.error().message);
	}
	size_t n = *received;

	// Own every descriptor first, whatever happens next.
	std::vector<UniqueFd> got;
	for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const unsigned char *p = CMSG_DATA(c);
		for (size_t i = 0; i < count; i++) {
			int passed;
			std::memcpy(&passed, p + i * sizeof(int), sizeof(int));
			got.emplace_back(passed);
		}
	}
	if (msg.msg_flags & MSG_CTRUNC) {
		buf.clear();
		return fail("recvmsg: descriptors were cut off (more than " +
		    std::to_string(maxPassedFds) + " passed)");
	}
	if ((msg.msg_flags & MSG_TRUNC) || n == buf.size()) {
		buf.clear();
		return fail("recvmsg: datagram larger than the largest frame");
	}
	buf.resize(n);
	for (UniqueFd &f : got)
		fds.push_back(std::move(f));
	return n;
}

Result<pme_proto_frame> readFrame(int fd, pme_proto_decoder &dec)
{
	uint8_t chunk[16384];
	for (;;) {
		pme_proto_frame frame;
		int rc = pme_proto_decoder_next(&dec, &frame);
		if (rc == 1)
			return frame;
		if (rc < 0)
			return fail(pme_proto_strerror(rc));

		// No complete frame is buffered, so the decoder has room for at
		// least this much and takes all of it.
		size_t room = PME_PROTO_HEADER_SIZE + dec.max_payload -
		    pme_proto_decoder_pending(&dec);
		if (room > sizeof(chunk))
			room = sizeof(chunk);
		if (room == 0)
			return fail(pme_proto_strerror(PME_PROTO_ETOOBIG));
		ssize_t n = ::read(fd, chunk, room);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (!waitFor(fd, POLLIN))
					return fail(errnoMessage("poll"));
				continue;
			}
			return fail(errnoMessage("read"));
		}
		if (n == 0) {
			if (pme_proto_decoder_pending(&dec) != 0)
				return fail("truncated frame");
			return fail("end of stream");
		}
		size_t taken = pme_proto_decoder_feed(&dec, chunk, static_cast<size_t>(n));
		if (taken != static_cast<size_t>(n)) {
			// Only possible after a header error, reported by next().
			rc = pme_proto_decoder_next(&dec, &frame);
			return fail(pme_proto_strerror(rc < 0 ? rc : PME_PROTO_ETOOBIG));
		}
	}
}

} // namespace pme::common
