// SPDX-License-Identifier: ISC
// What json and xml metrics share: values read from node text, series
// collected with per-series errors.
//
// Text content fails a metric as a whole, because one regex produces every
// series and an unreadable match means the filter is wrong.  Structured
// content is different: a wildcard over the nodes of a cluster yields one
// series per node, and one node whose load is null (it is restarting) says
// nothing about the others.  So a json or xml metric fails series by series:
// the good ones are exposed, the bad ones are counted, and the first few
// distinct problems (kMaxErrors; a thousand nodes failing the same way make
// one line) go to the supervisor as the metric's error text with "(and N
// more)".  A metric with value_on_error exposes that value for a failed
// series instead, under the labels the series would have had, and that is
// not an error: the operator asked for it.
//
// A series that cannot be told apart from another one (the same label
// values) or whose label cannot be exposed is an error even then: no value
// would make the output valid.
#include "structured_value.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/structured_template.hpp"
#include "common/utf8.hpp"
#include "observation.hpp"
#include "text_util.hpp"
#include "text_extractor.hpp"

namespace pme::worker {

using common::fail;
using common::MetricConfig;
using common::Result;

namespace {

// Distinct error texts kept per metric and cycle.
constexpr size_t kMaxErrors = 5;
// States named in "is not one of ..." before the list is cut.
constexpr size_t kMaxStatesShown = 10;
// Limits of a value_regex match: the subject is one node's text.
constexpr uint32_t kMatchLimit = 100000;
constexpr uint32_t kDepthLimit = 1000;
constexpr uint32_t kHeapLimitKiB = 1024;




std::string quoted(std::string_view text)
{
	return "'" + common::shorten(text, 64) + "'";
}

} // namespace

std::string Extraction::summary() const
{
	if (errors.empty())
		return {};
	if (errorCount <= 1)
		return errors.front();
	return errors.front() + " (and " + std::to_string(errorCount - 1) + " more)";
}

Result<ValueReader> ValueReader::compile(const MetricConfig &metric)
{
	ValueReader r;
	r.scale_ = metric.scale;
	r.values_ = metric.values;
	r.statesOnly_ = metric.type == common::MetricType::StateSet;
	r.regexText_ = metric.valueRegex;
	if (metric.valueRegex.empty())
		return r;

	int err = 0;
	PCRE2_SIZE offset = 0;
	r.regex_.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(metric.valueRegex.data()),
	    metric.valueRegex.size(), PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C, &err, &offset,
	    nullptr));
	if (!r.regex_)
		return fail("value_regex: " + pcre2Message(err) + " at offset " +
		    std::to_string(offset));
	// The interpreter where the kernel refuses executable memory.
	(void)pcre2_jit_compile(r.regex_.get(), PCRE2_JIT_COMPLETE);
	r.matchData_.reset(pcre2_match_data_create_from_pattern(r.regex_.get(), nullptr));
	r.matchContext_.reset(pcre2_match_context_create(nullptr));
	if (!r.matchData_ || !r.matchContext_)
		throw std::bad_alloc();
	pcre2_set_match_limit(r.matchContext_.get(), kMatchLimit);
	pcre2_set_depth_limit(r.matchContext_.get(), kDepthLimit);
	pcre2_set_heap_limit(r.matchContext_.get(), kHeapLimitKiB);

	int named = pcre2_substring_number_from_name(r.regex_.get(),
	    reinterpret_cast<PCRE2_SPTR>("value"));
	uint32_t captures = 0;
	pcre2_pattern_info(r.regex_.get(), PCRE2_INFO_CAPTURECOUNT, &captures);
	r.valueGroup_ = named > 0 ? named : captures >= 1 ? 1 : 0;
	return r;
}

Result<double> ValueReader::fromString(std::string_view raw) const
{
	std::string repaired;
	std::string_view text = trim(raw);
	if (!common::validUtf8(text)) {
		repaired = common::sanitizeUtf8(text);
		text = repaired;
	}

	if (regex_) {
		int rc = pcre2_match(regex_.get(), reinterpret_cast<PCRE2_SPTR>(text.data()),
		    text.size(), 0, PCRE2_NO_UTF_CHECK, matchData_.get(), matchContext_.get());
		if (rc == PCRE2_ERROR_NOMATCH)
			return fail("value " + quoted(text) + " does not match value_regex " +
			    quoted(regexText_));
		if (rc < 0)
			return fail("value_regex on " + quoted(text) + ": " + pcre2Message(rc));
		const size_t *ov = pcre2_get_ovector_pointer(matchData_.get());
		auto g = static_cast<size_t>(valueGroup_);
		size_t b = valueGroup_ < rc ? ov[2 * g] : PCRE2_UNSET;
		size_t e = valueGroup_ < rc ? ov[2 * g + 1] : PCRE2_UNSET;
		if (b == PCRE2_UNSET || b > e)
			return fail("value_regex matched " + quoted(text) +
			    " but captured no value in it");
		text = trim(text.substr(b, e - b));
	}

	for (const auto &[word, number] : values_)
		if (text == word)
			return number;
	if (statesOnly_)
		return tl::unexpected(notAState(text));
	if (equalsNoCase(text, "true"))
		return 1.0;
	if (equalsNoCase(text, "false"))
		return 0.0;
	std::string s(text);
	if (!s.empty()) {
		char *end = nullptr;
		errno = 0;
		double v = std::strtod(s.c_str(), &end);
		if (end == s.c_str() + s.size() && (errno == 0 || errno == ERANGE))
			return fromNumber(v);
	}
	if (values_.empty())
		return fail("value " + quoted(text) + " is not a number");
	return tl::unexpected(notAState(text));
}

common::Error ValueReader::notAState(std::string_view text) const
{
	std::string known;
	for (size_t i = 0; i < values_.size(); i++) {
		if (i == kMaxStatesShown) {
			known += ", ...";
			break;
		}
		known += (i ? ", " : "") + values_[i].first;
	}
	return common::Error("value " + quoted(text) + " is not one of " + known);
}

SeriesCollector::SeriesCollector(const MetricConfig &metric) : metric_(metric)
{
	out_.family = emptyFamily(metric);
}

void SeriesCollector::error(std::string message)
{
	out_.errorCount++;
	if (out_.errors.size() >= kMaxErrors)
		return;
	for (const auto &e : out_.errors)
		if (e == message)
			return;
	out_.errors.push_back(std::move(message));
}

void SeriesCollector::add(std::vector<common::Label> labels, double value)
{
	for (const auto &l : labels) {
		if (l.value.size() > kMaxLabelValue)
			return error("label '" + l.name + "' value is " +
			    std::to_string(l.value.size()) + " bytes long (at most " +
			    std::to_string(kMaxLabelValue) + ")");
		if (!common::validUtf8(l.value))
			return error("label '" + l.name + "' value is not valid UTF-8");
	}
	if (out_.family.samples.size() >= kMaxSeriesPerMetric)
		return error("more than " + std::to_string(kMaxSeriesPerMetric) +
		    " series; the rest are dropped (narrow the filter)");
	std::vector<std::string> key;
	for (const auto &l : labels)
		key.push_back(l.value);
	// Observations may repeat labels; series may not.
	if (!metric_.observed() && !seenKeys_.insert(std::move(key)).second) {
		std::string set;
		for (const auto &l : labels)
			set += (set.empty() ? "" : ",") + l.name + "=\"" +
			    common::shorten(l.value, 64) + "\"";
		return error("two nodes give the same labels {" + set +
		    "}: add a label that tells them apart");
	}
	common::Sample s;
	s.labels = std::move(labels);
	s.value = value;
	out_.family.samples.push_back(std::move(s));
}

void SeriesCollector::fail(std::vector<common::Label> labels, const std::string &where,
    const std::string &problem)
{
	if (metric_.valueOnError)
		return add(std::move(labels), *metric_.valueOnError);
	error(where.empty() ? problem : where + ": " + problem);
}

void SeriesCollector::failMetric(const std::string &problem)
{
	if (!metric_.valueOnError)
		return error(problem);
	// No node: the labels keep their literal text only.
	std::vector<common::Label> labels;
	for (const auto &[name, text] : metric_.labels) {
		auto t = common::StructuredTemplate::parse(text, false);
		labels.push_back({name, t ? t->literal() : std::string()});
	}
	add(std::move(labels), *metric_.valueOnError);
}

void SeriesCollector::reject(const std::string &where, const std::string &problem)
{
	error(where.empty() ? problem : where + ": " + problem);
}

Extraction SeriesCollector::finish()
{
	Extraction out = std::move(out_);
	out_ = Extraction();
	out_.family = emptyFamily(metric_);
	seenKeys_.clear();
	return out;
}

Result<double> ValueReader::fromNumber(double v) const
{
	if (statesOnly_)
		return tl::unexpected(common::Error("value " + formatLe(v) +
		    " is a number, not one of the states"));
	return scaled(v, scale_);
}

Result<double> ValueReader::fromBoolean(bool b) const
{
	if (statesOnly_)
		return fromString(b ? "true" : "false");
	return b ? 1.0 : 0.0;
}

common::Result<std::optional<common::NodeRef>> valueReference(
    const common::MetricConfig &metric, bool xml)
{
	if (!metric.valueTemplate)
		return std::optional<common::NodeRef>();
	if (metric.type == common::MetricType::Info)
		return common::fail("an info metric has no value to read (it is always 1): "
		    "remove value");
	auto t = common::StructuredTemplate::parse(*metric.valueTemplate, xml);
	if (!t)
		return common::fail("value: " + t.error().message);
	if (!t->single())
		return common::fail("value '" + *metric.valueTemplate + "' must be exactly one "
		    "reference, such as ${.count} or ${@}");
	return std::optional<common::NodeRef>(*t->single());
}

} // namespace pme::worker
