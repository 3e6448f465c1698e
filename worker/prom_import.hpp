// SPDX-License-Identifier: ISC
// Content type prometheus: the families of an exposition, selected, renamed and labelled.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/c_deleter.hpp"
#include "common/config.hpp"
#include "common/error.hpp"
#include "common/metric.hpp"
#include "prom_text.hpp"

namespace pme::worker {

// One import: the families to send, and why others were left out.
struct Imported {
	std::vector<common::Family> families;
	// One line per family not exported ("family pme_up: ..."), the same
	// text every cycle for the same cause, so that it can be logged once.
	std::vector<std::string> errors;
};

// A group's import settings compiled once, when the worker starts.
//
// A family is kept when its name matches one of import.include (or include
// is empty) and none of import.exclude.  The patterns are PCRE2, anchored
// at both ends, matched against the family's name as the source exports
// it, before any prefix: a histogram or summary by its base name
// (http_request_duration_seconds, not ..._bucket), an OpenMetrics counter
// with _total, an info with _info.  A kept family is renamed to
// metric_prefix + import.prefix + name; a name that then starts with pme_
// (reserved for pme's own metrics) or is too long for the frame protocol
// is not exported and is listed in Imported::errors, as is a family with a
// sample the protocol cannot carry (more than 64 labels, a label name over
// 256 bytes, a sample over one frame), and the families past what the
// supervisor takes in one result (100,000 series, 10,000 families): these
// are left out with one error.  The group's constant labels are
// added to every sample; where the source has a label of the same name,
// the group's value replaces it (the operator's configuration wins, as a
// target label wins over a scraped one in Prometheus).  The source's
// timestamps are kept only with import.honor_timestamps.  A family without
// HELP gets its name as help.
class PromImporter {
public:
	// Fails on a pattern that does not compile.
	static common::Result<PromImporter> compile(const common::GroupConfig &group,
	    const std::string &metricPrefix);

	// The exposition's families as exported, or the parse error when the
	// text is not an exposition Prometheus would ingest.
	common::Result<Imported> import(std::string_view text) const;

	const std::string &prefix() const { return prefix_; }

	// For tests: fewer series or families per import than the default.
	void setLimits(const PromParseLimits &limits) { limits_ = limits; }

private:
	PromImporter() = default;
	bool selected(const std::string &name, pcre2_match_data *match) const;
	std::string check(const common::Family &f) const;

	std::string prefix_;
	std::vector<common::CPtr<pcre2_code>> include_, exclude_;
	common::CPtr<pcre2_match_context> matchContext_;
	common::Pairs labels_;
	bool honorTimestamps_ = false;
	PromParseLimits limits_;
};

} // namespace pme::worker
