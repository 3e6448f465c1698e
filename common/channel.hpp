// SPDX-License-Identifier: ISC
// Blocking frame I/O on a socket, with optional descriptor passing.
#pragma once

#include <cstdint>
#include <vector>

#include "error.hpp"
#include "proto/frame.h"
#include "unique_fd.hpp"

namespace pme::common {

// Write a whole buffer, retrying on EINTR and short writes.
Result<void> writeAll(int fd, const uint8_t *data, size_t len);
// Finish the writer's frame and write it.
Result<void> writeFrame(int fd, pme_proto_writer &w);
// Send the writer's frame as one sendmsg() carrying passFd as SCM_RIGHTS
// (for SOCK_SEQPACKET sockets: one frame per datagram).
Result<void> sendFrameWithFd(int fd, pme_proto_writer &w, int passFd);

// Receive one datagram of a SOCK_SEQPACKET socket into buf, with any
// descriptors passed alongside appended to fds.  Returns the byte count
// (0 at EOF).  Descriptors arrive close-on-exec.
Result<size_t> recvDatagram(int fd, std::vector<uint8_t> &buf, std::vector<UniqueFd> &fds);

// Read from a stream socket until the decoder yields a frame (blocking).
// Fails at EOF, on a read error or a protocol error.
Result<pme_proto_frame> readFrame(int fd, pme_proto_decoder &dec);

// RAII for the C writer and decoder.
class FrameWriter {
public:
	explicit FrameWriter(uint32_t maxPayload = PME_PROTO_MAX_PAYLOAD) { pme_proto_writer_init(&w_, maxPayload); }
	~FrameWriter() { pme_proto_writer_free(&w_); }
	FrameWriter(const FrameWriter &) = delete;
	FrameWriter &operator=(const FrameWriter &) = delete;
	pme_proto_writer *get() { return &w_; }
	pme_proto_writer &operator*() { return w_; }

private:
	pme_proto_writer w_;
};

class FrameDecoder {
public:
	explicit FrameDecoder(uint32_t maxPayload = PME_PROTO_MAX_PAYLOAD) { ok_ = pme_proto_decoder_init(&d_, maxPayload) == 0; }
	~FrameDecoder() { pme_proto_decoder_free(&d_); }
	FrameDecoder(const FrameDecoder &) = delete;
	FrameDecoder &operator=(const FrameDecoder &) = delete;
	bool ok() const { return ok_; }
	pme_proto_decoder *get() { return &d_; }
	pme_proto_decoder &operator*() { return d_; }

private:
	pme_proto_decoder d_;
	bool ok_ = false;
};

// std::string view of a proto string.
inline std::string toString(const pme_proto_str &s) { return std::string(s.ptr, s.len); }

} // namespace pme::common
