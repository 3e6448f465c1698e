// SPDX-License-Identifier: ISC
// Content type text: one PCRE2 filter per metric, one series per match.
//
// Each metric's filter is compiled once, when the worker starts, in UTF
// mode.  A source may print bytes that are not UTF-8 (a Latin-1 file name in
// `df` output); such text is repaired first, every invalid byte and every
// NUL becoming U+FFFD, so that the match never fails on it and every capture
// is valid UTF-8 for the frame.  PCRE2_MATCH_INVALID_UTF would avoid the
// copy, but the JIT of PCRE2 10.42 (Debian 12) then fails to match
// multi-byte characters with \S, \D or \W (PCRE2 issue #224, fixed in
// 10.43).  The text being known valid, matches run with PCRE2_NO_UTF_CHECK
// (otherwise each of a thousand matches would re-check the whole text).
// \C, which could split a character, is refused.
// The JIT is used when pcre2_jit_compile() succeeds; when the kernel refuses
// executable memory (a hardened system, a seccomp filter) the interpreter
// does the same work more slowly.  Match, depth and heap limits bound what a
// pathological pattern can cost on a large output.
//
// Matches are iterated over the whole text as pcre2demo does: after an
// empty match the next attempt at the same offset must be non-empty and
// anchored, and if that fails the scan moves on by one character (two for
// CRLF under a CRLF newline convention), so that `^` in multiline mode or a
// pattern like `x*` neither loops forever nor skips a match.
//
// A metric fails as a whole: one unparsable value among ten matches is an
// error for the metric, not a silently missing series.
#include "text_extractor.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <set>

#include "common/structured_template.hpp"
#include "common/utf8.hpp"
#include "text_util.hpp"

namespace pme::worker {

using common::fail;
using common::Family;
using common::MetricConfig;
using common::MetricType;
using common::Result;

namespace {

constexpr size_t kJitStackStart = 32 * 1024;
constexpr size_t kJitStackMax = 512 * 1024;




// A histogram the source counted is read bucket by bucket, each bucket
// with a filter of its own (the worker compiles those as gauges).
bool typeReadable(const MetricConfig &m)
{
	return !m.mappedHistogram();
}

Result<void> checkLabelValue(const std::string &name, const std::string &value)
{
	if (value.size() > kMaxLabelValue)
		return fail("label '" + name + "' value is " + std::to_string(value.size()) +
		    " bytes long (at most " + std::to_string(kMaxLabelValue) + ")");
	// Captures come from repaired text; a template's literal parts come
	// from the configuration, which is UTF-8.  Checked all the same: the
	// supervisor stops a worker that sends a bad string.
	if (!common::validUtf8(value))
		return fail("label '" + name + "' value is not valid UTF-8");
	return {};
}

} // namespace

Family emptyFamily(const MetricConfig &metric)
{
	Family f;
	f.name = metric.name;
	f.type = metric.type;
	f.help = metric.description.empty() ? metric.name : metric.description;
	f.unit = metric.unit;
	return f;
}

Result<double> parseValue(const MetricConfig &metric, std::string_view text)
{
	std::string_view t = trim(text);
	for (const auto &[word, number] : metric.values)
		if (t == word)
			return number;
	if (metric.type == MetricType::StateSet) {
		// The worker maps each state to its index: nothing else is one.
		std::string known;
		for (const auto &[word, number] : metric.values)
			known += (known.empty() ? "" : ", ") + word;
		return fail("value '" + common::shorten(t, 64) + "' is not one of " + known);
	}
	if (equalsNoCase(t, "true"))
		return 1.0;
	if (equalsNoCase(t, "false"))
		return 0.0;
	std::string s(t);
	// strtod also reads hexadecimal ("0x1f"); Prometheus does not write it,
	// but a source may, and the value is unambiguous.
	if (!s.empty()) {
		char *end = nullptr;
		errno = 0;
		double v = std::strtod(s.c_str(), &end);
		if (end == s.c_str() + s.size() && (errno == 0 || errno == ERANGE))
			return scaled(v, metric.scale);
	}
	return fail("value '" + common::shorten(t, 64) + "' is not a number");
}

Family valueOnErrorFamily(const MetricConfig &metric, common::ContentType content)
{
	Family f = emptyFamily(metric);
	common::Sample s;
	bool structured = content == common::ContentType::Json ||
	    content == common::ContentType::Xml;
	for (const auto &[name, text] : metric.labels) {
		if (structured) {
			auto t = common::StructuredTemplate::parse(text,
			    content == common::ContentType::Xml);
			s.labels.push_back({name, t && !t->hasReference() ? t->literal() :
			    std::string()});
			continue;
		}
		CaptureTemplate t = CaptureTemplate::parse(text);
		s.labels.push_back({name, t.hasReference() ? std::string() : t.literal()});
	}
	s.value = metric.valueOnError.value_or(NAN);
	f.samples.push_back(std::move(s));
	return f;
}

Result<Family> staticFamily(const MetricConfig &metric)
{
	std::optional<double> v = metric.staticValue;
	if (!v && metric.type == MetricType::Info)
		v = 1.0;
	if (!v)
		return fail("static metric has no value");
	Family f = emptyFamily(metric);
	common::Sample s;
	// A static source has no captures: a label is its literal ($$ a '$').
	for (const auto &[name, text] : metric.labels)
		s.labels.push_back({name, CaptureTemplate::parse(text).literal()});
	s.value = *v;
	f.samples.push_back(std::move(s));
	return f;
}

Result<TextExtractor> TextExtractor::compile(const MetricConfig &metric, bool multiline)
{
	TextExtractor x;
	x.metric_ = metric;
	if (!typeReadable(metric))
		return fail("a histogram read from the source has a filter per bucket, not one "
		    "filter");
	if (metric.filter.empty())
		return fail("text content needs a filter");

	uint32_t options = PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C;
	if (multiline)
		options |= PCRE2_MULTILINE;
	int err = 0;
	PCRE2_SIZE offset = 0;
	x.code_.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(metric.filter.data()),
	    metric.filter.size(), options, &err, &offset, nullptr));
	if (!x.code_)
		return fail("filter: " + pcre2Message(err) + " at offset " + std::to_string(offset));

	x.jit_ = pcre2_jit_compile(x.code_.get(), PCRE2_JIT_COMPLETE) == 0;
	x.matchData_.reset(pcre2_match_data_create_from_pattern(x.code_.get(), nullptr));
	x.matchContext_.reset(pcre2_match_context_create(nullptr));
	if (!x.matchData_ || !x.matchContext_)
		throw std::bad_alloc();
	pcre2_set_match_limit(x.matchContext_.get(), kFilterMatchLimit);
	pcre2_set_depth_limit(x.matchContext_.get(), kFilterDepthLimit);
	pcre2_set_heap_limit(x.matchContext_.get(), kFilterHeapLimitKiB);
	if (x.jit_) {
		x.jitStack_.reset(pcre2_jit_stack_create(kJitStackStart, kJitStackMax, nullptr));
		if (x.jitStack_)
			pcre2_jit_stack_assign(x.matchContext_.get(), nullptr, x.jitStack_.get());
	}

	uint32_t captures = 0, newline = 0;
	pcre2_pattern_info(x.code_.get(), PCRE2_INFO_CAPTURECOUNT, &captures);
	pcre2_pattern_info(x.code_.get(), PCRE2_INFO_NEWLINE, &newline);
	x.captureCount_ = static_cast<int>(captures);
	x.crlfNewline_ = newline == PCRE2_NEWLINE_ANY || newline == PCRE2_NEWLINE_CRLF ||
	    newline == PCRE2_NEWLINE_ANYCRLF;

	pcre2_code *code = x.code_.get();
	auto lookup = [code](const std::string &name) {
		int n = pcre2_substring_number_from_name(code,
		    reinterpret_cast<PCRE2_SPTR>(name.c_str()));
		return n < 0 ? -1 : n;
	};
	if (metric.valueTemplate) {
		x.value_ = CaptureTemplate::parse(*metric.valueTemplate);
		std::string bad = x.value_.resolve(lookup, x.captureCount_);
		if (!bad.empty())
			return fail("value refers to " + bad + ", which the filter does not capture");
	} else {
		int named = lookup("value");
		x.value_ = CaptureTemplate::parse(named >= 0 ? "${value}" :
		    x.captureCount_ >= 1 ? "$1" : "$0");
		x.value_.resolve(lookup, x.captureCount_);
	}
	for (const auto &[name, text] : metric.labels) {
		CaptureTemplate t = CaptureTemplate::parse(text);
		std::string bad = t.resolve(lookup, x.captureCount_);
		if (!bad.empty())
			return fail("label '" + name + "' refers to " + bad +
			    ", which the filter does not capture");
		x.labels_.emplace_back(name, std::move(t));
	}
	return x;
}

Result<void> TextExtractor::addSample(Family &family, std::string_view text,
    const size_t *ovector, int pairs)
{
	auto capture = [&](int n) -> std::string_view {
		if (n >= pairs || ovector[2 * n] == PCRE2_UNSET)
			return {};
		return text.substr(ovector[2 * n], ovector[2 * n + 1] - ovector[2 * n]);
	};
	common::Sample s;
	for (const auto &[name, t] : labels_) {
		std::string value = t.expand(capture);
		if (auto ok = checkLabelValue(name, value); !ok)
			return tl::unexpected(ok.error());
		s.labels.push_back({name, std::move(value)});
	}
	// An info metric is 1 (or its constant value) unless its value is a
	// template: its captures are for its labels.
	if (metric_.type == MetricType::Info && !metric_.valueTemplate) {
		s.value = metric_.staticValue.value_or(1);
		family.samples.push_back(std::move(s));
		return {};
	}
	auto v = parseValue(metric_, value_.expand(capture));
	if (!v)
		return tl::unexpected(v.error());
	s.value = *v;
	family.samples.push_back(std::move(s));
	return {};
}

Result<Family> TextExtractor::extract(std::string_view raw)
{
	std::string repaired;
	std::string_view text = raw;
	if (!common::validUtf8(raw)) {
		repaired = common::sanitizeUtf8(raw);
		text = repaired;
	}
	Family family = emptyFamily(metric_);
	auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
	size_t length = text.size();
	size_t offset = 0;
	uint32_t options = 0;
	std::set<std::vector<std::string>> seen;

	while (offset <= length) {
		int rc = pcre2_match(code_.get(), subject, length, offset,
		    options | PCRE2_NO_UTF_CHECK, matchData_.get(), matchContext_.get());
		if (rc == PCRE2_ERROR_NOMATCH) {
			if (options == 0)
				break;
			// The empty match could not be followed by a non-empty one
			// here: step over one character and search on.
			options = 0;
			size_t next = offset + 1;
			if (crlfNewline_ && offset + 1 < length && text[offset] == '\r' &&
			    text[offset + 1] == '\n')
				next = offset + 2;
			while (next < length && (static_cast<unsigned char>(text[next]) & 0xc0) == 0x80)
				next++;
			offset = next;
			continue;
		}
		if (rc < 0)
			return fail("filter: " + pcre2Message(rc));
		const size_t *ov = pcre2_get_ovector_pointer(matchData_.get());
		if (ov[0] > ov[1])
			return fail("filter: \\K moved the match start past its end");
		if (family.samples.size() >= kMaxSeriesPerMetric)
			return fail("filter matched more than " + std::to_string(kMaxSeriesPerMetric) +
			    " times");
		if (auto ok = addSample(family, text, ov, rc); !ok)
			return tl::unexpected(ok.error());

		std::vector<std::string> key;
		for (const auto &l : family.samples.back().labels)
			key.push_back(l.value);
		// Observations may repeat: two log lines with the same labels.
		if (!metric_.observed() && !seen.insert(std::move(key)).second) {
			std::string set;
			for (const auto &l : family.samples.back().labels)
				set += (set.empty() ? "" : ",") + l.name + "=\"" + common::shorten(l.value, 64) + "\"";
			return fail("filter matched twice with the same labels {" + set +
			    "}: add a label that tells the matches apart, or make the filter match once");
		}

		options = ov[0] == ov[1] ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
		offset = ov[1];
	}
	// A metric fed by observation observes nothing in a cycle without
	// a match (no new line in a log): that is not an error.
	if (family.samples.empty() && !metric_.observed())
		return fail("filter matched nothing");
	return family;
}

} // namespace pme::worker
