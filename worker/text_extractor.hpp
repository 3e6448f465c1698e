// SPDX-License-Identifier: ISC
// Content type text: one PCRE2 filter per metric, one series per match.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "capture_template.hpp"
#include "common/c_deleter.hpp"
#include "common/config.hpp"
#include "common/error.hpp"
#include "common/metric.hpp"

namespace pme::worker {

// Most series one metric may produce in one cycle; a filter that matches
// more often is a metric error rather than a flood.
constexpr size_t kMaxSeriesPerMetric = 10000;
// Longest label value taken from a source.
constexpr size_t kMaxLabelValue = 4096;
// What one match of a filter may cost (PCRE2's match, depth and heap
// limits): a pathological pattern fails its metric, not the worker.
constexpr uint32_t kFilterMatchLimit = 1000000;
constexpr uint32_t kFilterDepthLimit = 10000;
constexpr uint32_t kFilterHeapLimitKiB = 20 * 1024;

// A metric's filter compiled once at startup, with its label and value
// templates resolved against the pattern's captures.
class TextExtractor {
public:
	// Compile metric.filter (PCRE2_UTF, PCRE2_MULTILINE when multiline),
	// JIT-compiled when the kernel allows it.  Fails on a bad pattern or a
	// template naming a capture the pattern does not have.
	static common::Result<TextExtractor> compile(const common::MetricConfig &metric,
	    bool multiline);

	// One family with a sample per match, or the metric error ("filter
	// matched nothing", "value 'abc' is not a number", ...).
	common::Result<common::Family> extract(std::string_view text);

	const common::MetricConfig &metric() const { return metric_; }
	bool jitCompiled() const { return jit_; }

private:
	TextExtractor() = default;
	common::Result<void> addSample(common::Family &family, std::string_view text,
	    const size_t *ovector, int pairs);

	common::MetricConfig metric_;
	common::CPtr<pcre2_code> code_;
	common::CPtr<pcre2_match_data> matchData_;
	common::CPtr<pcre2_match_context> matchContext_;
	common::CPtr<pcre2_jit_stack> jitStack_;
	bool jit_ = false;
	bool crlfNewline_ = false;
	int captureCount_ = 0;
	CaptureTemplate value_;
	std::vector<std::pair<std::string, CaptureTemplate>> labels_;
};

// A value as text -> number: trimmed; the `values` mapping first (exact
// match); then true/false; then the whole text as a number (NaN, +Inf,
// -Inf and exponents accepted, "12abc" rejected).
common::Result<double> parseValue(const common::MetricConfig &metric, std::string_view text);

// The one sample of a failed metric with value_on_error set: labels whose
// template references no capture (text) or no node (json, xml) keep their
// text, the others are "".  Requires metric.valueOnError.
common::Family valueOnErrorFamily(const common::MetricConfig &metric,
    common::ContentType content = common::ContentType::Text);

// The family of a static metric (no source): its value (1 for an info
// metric without one) and its labels as written.
common::Result<common::Family> staticFamily(const common::MetricConfig &metric);

// An empty family carrying the metric's name, type and help.
common::Family emptyFamily(const common::MetricConfig &metric);

} // namespace pme::worker
