// SPDX-License-Identifier: ISC
// What one source read of a group produced.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace pme::worker {

struct SourceRead {
	bool ok = true;            // the read succeeded (truncated output still counts)
	std::string content;       // the data, at most max_output bytes
	bool truncated = false;    // content was cut at max_output
	int32_t exitStatus = -1;   // command exit code, 128+N for signal N, -1 none
	std::string error;         // why !ok, or the truncation note
	bool cached = false;       // content reused from an earlier read
	int httpStatus = 0;        // http: final status, 0 when no response
	double responseSeconds = -1; // http: time to the complete response, -1 when none
};

// Called once per read, from the event loop.
using SourceCallback = std::function<void(SourceRead)>;

} // namespace pme::worker
