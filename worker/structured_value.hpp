// SPDX-License-Identifier: ISC
// What json and xml metrics share: reading a value out of a node's text, and
// collecting one metric's series with per-series errors.
#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/c_deleter.hpp"
#include "common/config.hpp"
#include "common/error.hpp"
#include "common/metric.hpp"
#include "common/structured_template.hpp"

namespace pme::worker {

// One metric's outcome for one cycle of a json or xml group.
struct Extraction {
	common::Family family;            // the series read (may be empty)
	std::vector<std::string> errors;  // the first few distinct problems
	size_t errorCount = 0;            // every problem, including those not kept

	// The family goes to the supervisor when it has series or when nothing
	// went wrong (a wildcard that matched nothing: the family is empty).
	bool sendFamily() const { return !family.samples.empty() || errorCount == 0; }
	// The METRIC_ERROR text: the first error, "(and N more)" when there are.
	std::string summary() const;
};

// A node's text to a number, in this order: value_regex (the capture named
// `value`, else capture 1, else the whole match; no match is an error),
// then the `values` mapping (exact match), then true/false (1/0), then the
// text as a number (NaN, +Inf, exponents; "12abc" is an error).  Blank space
// around the text is ignored.  A text that is none of these is an error
// naming it, and naming the known states when there is a mapping.  Numbers
// are multiplied by scale; mapped states and booleans are not.
class ValueReader {
public:
	static common::Result<ValueReader> compile(const common::MetricConfig &metric);

	common::Result<double> fromString(std::string_view text) const;
	// A stateset's value is one of its states, never a number or a
	// boolean: those are errors there (a boolean is matched as its word).
	common::Result<double> fromNumber(double v) const;
	common::Result<double> fromBoolean(bool b) const;

private:
	ValueReader() = default;
	common::CPtr<pcre2_code> regex_;
	common::CPtr<pcre2_match_data> matchData_;
	common::CPtr<pcre2_match_context> matchContext_;
	int valueGroup_ = 0;
	double scale_ = 1;
	bool statesOnly_ = false; // stateset: values_ maps each state to its index
	common::Error notAState(std::string_view text) const;
	std::string regexText_;
	std::vector<std::pair<std::string, double>> values_;
};

// The reference of a json or xml metric's value template: none without
// one; an Error for an info metric (always 1), a template that does not
// parse, or one that is not exactly one reference.
common::Result<std::optional<common::NodeRef>> valueReference(
    const common::MetricConfig &metric, bool xml);

// Collects the series of one metric: label values checked (valid UTF-8, at
// most kMaxLabelValue bytes), at most kMaxSeriesPerMetric series, a second
// series with the same labels refused, and a series whose value is missing
// or bad replaced by value_on_error when the metric has one (an error
// otherwise, and the series is absent this cycle).
class SeriesCollector {
public:
	explicit SeriesCollector(const common::MetricConfig &metric);

	void add(std::vector<common::Label> labels, double value);
	// where: the node's location ($['a'][0], /status/server[2]);
	// problem: "is null", "value 'purple' is not one of green, red".
	void fail(std::vector<common::Label> labels, const std::string &where,
	    const std::string &problem);
	// The metric as a whole (a singular query that matched nothing).
	void failMetric(const std::string &problem);
	// A series that cannot be exposed whatever its value (a label taken
	// from an object): an error even when the metric has value_on_error.
	void reject(const std::string &where, const std::string &problem);

	Extraction finish();

private:
	void error(std::string message);
	const common::MetricConfig &metric_;
	Extraction out_;
	std::set<std::vector<std::string>> seenKeys_;
};

} // namespace pme::worker
