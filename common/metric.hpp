// SPDX-License-Identifier: ISC
// Samples and families as collected by a worker and merged by the supervisor.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config.hpp"

namespace pme::common {

struct Label {
	std::string name;
	std::string value;
	bool operator==(const Label &) const = default;
};

struct Sample {
	std::string suffix;           // "", "_bucket", "_sum", "_count", ...
	std::vector<Label> labels;
	double value = 0;
	std::optional<int64_t> timestampMs; // imported with honor_timestamps
};

struct Family {
	std::string name;
	MetricType type = MetricType::Gauge;
	std::string help;
	std::string unit;
	std::vector<Sample> samples;
};

// One group's result for one cycle (GROUP_BEGIN, GROUP_DATA..., GROUP_END).
struct GroupResult {
	std::string group;
	uint64_t sequence = 0;
	std::vector<Family> families;
	// Metrics that failed this cycle: (family name, message).
	std::vector<std::pair<std::string, std::string>> metricErrors;
	bool ok = true;
	double duration = 0;
	uint32_t skipped = 0;
	int32_t exitStatus = -1;
	std::string error;
	int32_t httpStatus = 0;       // http sources: the last response's status, 0 none
	double responseSeconds = -1;  // and how long it took, -1 none (or reused)
	bool truncated = false;       // the source's output was cut at max_output
};

} // namespace pme::common
