// SPDX-License-Identifier: ISC
// pmed --explain: the report of one group's cycle, as text for a terminal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "common/metric.hpp"
#include "source.hpp"

namespace pme::worker {

// Who the worker runs as, for the report's header.  The names are empty
// when the user or group database has none for the id.
struct ExplainIdentity {
	uint32_t uid = 0;
	uint32_t gid = 0;
	std::string user;
	std::string group;
};

// The identity of this process, looked up in the user and group databases
// (call it before the sandbox, which may hide /etc/passwd).
ExplainIdentity currentExplainIdentity();

// How much of the data read a report shows, and how many filter matches
// or selected nodes per metric.
struct ExplainLimits {
	size_t dataLines = 60;
	size_t dataBytes = 4096;
	size_t matches = 10;
	size_t valueBytes = 200;      // one matched text, capture or node value
};

// The report of one cycle: what was run and as whom, how the read went,
// the data read (cut to the limits), what each metric's filter selected in
// it (the filters are compiled and run again here, as the extractors do,
// but to show every match and capture rather than to build samples), the
// samples of the result and its errors.  Everything that came from the
// source is escaped (explainEscape), so the report is valid UTF-8 and
// holds no control character but newlines.
std::string explainReport(const common::ServiceConfig &service,
    const common::GroupConfig &group, const SourceRead &read,
    const common::GroupResult &result, const ExplainIdentity &who,
    const ExplainLimits &limits = {});

// How explainEscape() treats newlines, quotes and backslashes.
enum class Escape {
	Lines,    // data shown as lines: newlines stay
	Line,     // one line (a filter, a message): newlines become \n
	Quoted,   // between double quotes: also \" and \\, as in a label value
};

// Text made safe for a terminal: valid UTF-8 passes, except C0 and C1
// control characters and DEL, which become \t, \r, \0, \xNN or \u00NN;
// bytes that are not UTF-8 become \xNN.
std::string explainEscape(std::string_view text, Escape how);

// A report split into pieces of at most max bytes (max >= 4), each ending
// at a newline when one is near enough, and never inside a UTF-8
// character: the EXPLAIN frames it is sent in.
std::vector<std::string> explainChunks(std::string_view report, size_t max);

} // namespace pme::worker
