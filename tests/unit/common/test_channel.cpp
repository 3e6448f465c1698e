// SPDX-License-Identifier: ISC
// Blocking channel: frames over stream sockets, fd passing over SOCK_SEQPACKET.
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/channel.hpp"
#include "proto/message.h"

#include <CppUTest/TestHarness.h>

using namespace pme::common;

namespace {

struct Pair {
	UniqueFd a, b;
	explicit Pair(int type)
	{
		int sv[2];
		LONGS_EQUAL(0, socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv));
		a.reset(sv[0]);
		b.reset(sv[1]);
	}
};

size_t openFds()
{
	size_t n = 0;
	DIR *d = opendir("/proc/self/fd");
	CHECK(d != nullptr);
	while (readdir(d) != nullptr)
		n++;
	closedir(d);
	return n;
}

std::vector<uint8_t> logFrame(const std::string &msg)
{
	FrameWriter w;
	pme_proto_encode_log(w.get(), 6, msg.data(), msg.size());
	LONGS_EQUAL(0, pme_proto_writer_finish(w.get()));
	return std::vector<uint8_t>(w.get()->buf, w.get()->buf + w.get()->len);
}

std::string logText(const pme_proto_frame &f)
{
	pme_proto_log m;
	LONGS_EQUAL(0, pme_proto_decode_log(&f, &m));
	return toString(m.message);
}

} // namespace

TEST_GROUP(FdPassing) {};

TEST(FdPassing, PassedDescriptorWorksAndIsCloseOnExec)
{
	Pair sp(SOCK_SEQPACKET);
	int pipefd[2];
	LONGS_EQUAL(0, pipe2(pipefd, O_CLOEXEC));
	UniqueFd readEnd(pipefd[0]), writeEnd(pipefd[1]);

	FrameWriter w;
	pme_proto_encode_worker_ready(w.get(), "nginx", 5, 4321);
	auto sent = sendFrameWithFd(sp.a.get(), *w, writeEnd.get());
	CHECK_TEXT(sent.has_value(), sent ? "" : sent.error().message.c_str());
	writeEnd.reset();   // only the passed copy is left

	std::vector<uint8_t> buf;
	std::vector<UniqueFd> fds;
	auto n = recvDatagram(sp.b.get(), buf, fds);
	CHECK_TEXT(n.has_value(), n ? "" : n.error().message.c_str());
	LONGS_EQUAL(PME_PROTO_HEADER_SIZE + 4 + 5 + 4, *n);
	LONGS_EQUAL(*n, buf.size());
	LONGS_EQUAL(1, fds.size());
	CHECK(fcntl(fds[0].get(), F_GETFD) & FD_CLOEXEC);

	// The datagram is one whole frame.
	FrameDecoder dec;
	LONGS_EQUAL(buf.size(), pme_proto_decoder_feed(dec.get(), buf.data(), buf.size()));
	pme_proto_frame f;
	LONGS_EQUAL(1, pme_proto_decoder_next(dec.get(), &f));
	pme_proto_worker_ready m;
	LONGS_EQUAL(0, pme_proto_decode_worker_ready(&f, &m));
	STRCMP_EQUAL("nginx", toString(m.service).c_str());
	LONGS_EQUAL(4321, m.pid);

	// Writing to the received descriptor reaches the pipe.
	LONGS_EQUAL(5, write(fds[0].get(), "hello", 5));
	char got[8] = {};
	LONGS_EQUAL(5, read(readEnd.get(), got, sizeof(got)));
	STRCMP_EQUAL("hello", got);
	fds.clear();
	LONGS_EQUAL(0, read(readEnd.get(), got, sizeof(got)));   // last writer closed
}

TEST(FdPassing, DatagramsWithoutDescriptorsAndEndOfFile)
{
	Pair sp(SOCK_SEQPACKET);
	FrameWriter w;
	pme_proto_encode_empty(w.get(), PME_MSG_RELOAD);
	CHECK(sendFrameWithFd(sp.a.get(), *w, -1).has_value());
	pme_proto_encode_name(w.get(), PME_MSG_START, "db", 2);
	CHECK(sendFrameWithFd(sp.a.get(), *w, -1).has_value());
	sp.a.reset();

	std::vector<uint8_t> buf;
	std::vector<UniqueFd> fds;
	auto n = recvDatagram(sp.b.get(), buf, fds);
	CHECK(n.has_value());
	LONGS_EQUAL(PME_PROTO_HEADER_SIZE, *n);
	LONGS_EQUAL(PME_MSG_RELOAD, buf[3]);
	n = recvDatagram(sp.b.get(), buf, fds);
	CHECK(n.has_value());
	LONGS_EQUAL(PME_PROTO_HEADER_SIZE + 6, *n);   // one datagram, one frame
	LONGS_EQUAL(PME_MSG_START, buf[3]);
	n = recvDatagram(sp.b.get(), buf, fds);
	CHECK(n.has_value());
	LONGS_EQUAL(0, *n);
	LONGS_EQUAL(0, fds.size());
}

TEST(FdPassing, TooManyDescriptorsAreRefusedAndClosed)
{
	Pair sp(SOCK_SEQPACKET);
	constexpr int count = 12;
	int fds[count];
	for (int &fd : fds)
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	auto frame = logFrame("x");
	iovec iov{frame.data(), frame.size()};
	alignas(cmsghdr) char control[CMSG_SPACE(sizeof(fds))] = {};
	msghdr msg{};
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control;
	msg.msg_controllen = sizeof(control);
	cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	LONGS_EQUAL(frame.size(), sendmsg(sp.a.get(), &msg, 0));
	for (int fd : fds)
		close(fd);

	size_t before = openFds();
	std::vector<uint8_t> buf;
	std::vector<UniqueFd> got;
	auto n = recvDatagram(sp.b.get(), buf, got);
	CHECK_FALSE(n.has_value());
	STRCMP_CONTAINS("descriptors were cut off", n.error().message.c_str());
	LONGS_EQUAL(0, got.size());
	LONGS_EQUAL(before, openFds());   // nothing leaked
}

TEST_GROUP(StreamChannel) {};

TEST(StreamChannel, ReadFrameReturnsFramesWrittenInOneGoOrByteByByte)
{
	Pair sp(SOCK_STREAM);
	auto one = logFrame("first");
	auto two = logFrame("second");
	std::vector<uint8_t> both(one);
	both.insert(both.end(), two.begin(), two.end());
	CHECK(writeAll(sp.a.get(), both.data(), both.size()).has_value());

	FrameDecoder dec;
	auto f = readFrame(sp.b.get(), *dec);
	CHECK(f.has_value());
	STRCMP_EQUAL("first", logText(*f).c_str());
	f = readFrame(sp.b.get(), *dec);
	CHECK(f.has_value());
	STRCMP_EQUAL("second", logText(*f).c_str());

	// A writer thread dribbling one byte per write().
	std::thread writer([&] {
		for (int i = 0; i < 3; i++)
			for (uint8_t byte : both)
				if (write(sp.a.get(), &byte, 1) != 1)
					return;
	});
	for (int i = 0; i < 3; i++) {
		f = readFrame(sp.b.get(), *dec);
		CHECK_TEXT(f.has_value(), f ? "" : f.error().message.c_str());
		STRCMP_EQUAL("first", logText(*f).c_str());
		f = readFrame(sp.b.get(), *dec);
		CHECK(f.has_value());
		STRCMP_EQUAL("second", logText(*f).c_str());
	}
	writer.join();
	LONGS_EQUAL(0, pme_proto_decoder_pending(dec.get()));
}

TEST(StreamChannel, EndOfStreamCleanOrTruncated)
{
	{
		Pair sp(SOCK_STREAM);
		sp.a.reset();
		FrameDecoder dec;
		auto f = readFrame(sp.b.get(), *dec);
		CHECK_FALSE(f.has_value());
		STRCMP_EQUAL("end of stream", f.error().message.c_str());
	}
	{
		Pair sp(SOCK_STREAM);
		auto frame = logFrame("cut short");
		CHECK(writeAll(sp.a.get(), frame.data(), frame.size() - 3).has_value());
		sp.a.reset();
		FrameDecoder dec;
		auto f = readFrame(sp.b.get(), *dec);
		CHECK_FALSE(f.has_value());
		STRCMP_EQUAL("truncated frame", f.error().message.c_str());
	}
}

TEST(StreamChannel, GarbageAndOversizeAreProtocolErrors)
{
	Pair sp(SOCK_STREAM);
	const char *garbage = "GET / HTTP/1.1\r\n\r\n";
	CHECK(writeAll(sp.a.get(), reinterpret_cast<const uint8_t *>(garbage),
	    strlen(garbage)).has_value());
	FrameDecoder dec;
	auto f = readFrame(sp.b.get(), *dec);
	CHECK_FALSE(f.has_value());
	STRCMP_EQUAL(pme_proto_strerror(PME_PROTO_EMAGIC), f.error().message.c_str());

	// A header announcing more than the decoder takes: refused at once,
	// without waiting for a payload that never comes.
	Pair sp2(SOCK_STREAM);
	const uint8_t header[] = {'P', 'M', PME_PROTO_VERSION, PME_MSG_LOG, 0, 1, 0, 0};
	CHECK(writeAll(sp2.a.get(), header, sizeof(header)).has_value());
	FrameDecoder small(1024);
	f = readFrame(sp2.b.get(), *small);
	CHECK_FALSE(f.has_value());
	STRCMP_EQUAL(pme_proto_strerror(PME_PROTO_ETOOBIG), f.error().message.c_str());
}

TEST(StreamChannel, WriteFrameOverAPipeAndToAClosedPeer)
{
	// A pipe is not a socket: writeAll falls back to write().  1 MiB does
	// not fit in the pipe, so this also covers short writes.
	int p[2];
	LONGS_EQUAL(0, pipe2(p, O_CLOEXEC));
	UniqueFd rd(p[0]), wr(p[1]);
	FrameWriter w(PME_PROTO_HARD_MAX_PAYLOAD);
	std::string yaml(1 << 20, 'y');
	pme_proto_encode_service_config(w.get(), "s", 1, 1, 1, nullptr, 0, 0, yaml.data(),
	    yaml.size());
	Result<void> written;
	std::thread writer([&] { written = writeFrame(wr.get(), *w); });
	FrameDecoder dec(PME_PROTO_HARD_MAX_PAYLOAD);
	auto f = readFrame(rd.get(), *dec);
	writer.join();
	CHECK(written.has_value());
	CHECK(f.has_value());
	pme_proto_service_config c;
	LONGS_EQUAL(0, pme_proto_decode_service_config(&*f, &c));
	LONGS_EQUAL(yaml.size(), c.config.len);

	// A peer that went away: EPIPE as an error, no SIGPIPE.
	Pair sp(SOCK_STREAM);
	sp.b.reset();
	pme_proto_encode_log(w.get(), 1, "x", 1);
	auto r = writeFrame(sp.a.get(), *w);
	CHECK_FALSE(r.has_value());
	STRCMP_CONTAINS("Broken pipe", r.error().message.c_str());

	// A frame over the writer's limit is not written at all.
	FrameWriter tiny(4);
	pme_proto_encode_log(tiny.get(), 1, "too long", 8);
	Pair sp2(SOCK_STREAM);
	r = writeFrame(sp2.a.get(), *tiny);
	CHECK_FALSE(r.has_value());
	STRCMP_CONTAINS("encoding frame", r.error().message.c_str());
}
