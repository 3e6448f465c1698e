// SPDX-License-Identifier: ISC
// GroupResult <-> GROUP_BEGIN / GROUP_DATA... / GROUP_END frames.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>

#include "error.hpp"
#include "metric.hpp"
#include "proto/frame.h"

namespace pme::common {

// Called with each complete frame (header included).
using FrameSink = std::function<Result<void>(const uint8_t *data, size_t len)>;

// Encode a result as frames of at most maxPayload bytes each and hand them
// to sink in order.  Fails if a single sample does not fit in one frame.
Result<void> encodeGroupResult(const GroupResult &result, const FrameSink &sink,
    uint32_t maxPayload = PME_PROTO_MAX_PAYLOAD);

// Reassembles a result from frames, enforcing limits: the receiving side
// of untrusted input.  Any error means the peer broke the protocol.
class GroupResultAssembler {
public:
	struct Limits {
		size_t maxSeries = 100000;     // samples in one result
		size_t maxFamilies = 10000;
		size_t maxErrorText = 4096;    // longer error strings are cut
		size_t maxBytes = 64u << 20;   // names, labels and texts of one result
		// When not empty, the only groups a result may be for, each
		// with the samples it may hold (in place of maxSeries): a peer
		// naming another group, or sending more than its configured
		// share, is refused at the frame that does it.
		std::unordered_map<std::string, size_t> groups;
	};

	GroupResultAssembler() = default;
	explicit GroupResultAssembler(Limits limits) : limits_(limits) {}

	// Feed one frame of type GROUP_BEGIN, GROUP_DATA or GROUP_END.  Returns
	// the finished result on GROUP_END, nothing while one is being built,
	// an Error on any violation (out-of-order frame, bad record, limit).
	Result<std::optional<GroupResult>> feed(const pme_proto_frame &frame);
	bool inProgress() const { return open_; }
	void reset();

private:
	Result<void> addRecords(const pme_proto_frame &frame);

	Limits limits_;
	bool open_ = false;
	GroupResult current_;
	size_t series_ = 0;
	size_t maxSeries_ = 0;  // of the open result
	size_t bytes_ = 0;
	std::unordered_map<std::string, size_t> familyIndex_;
	size_t family_ = 0;     // 1 + index of the family SAMPLEs belong to; 0: none yet
};

} // namespace pme::common
