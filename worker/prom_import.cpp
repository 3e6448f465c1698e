// SPDX-License-Identifier: ISC
// Content type prometheus: the families of an exposition, selected, renamed and labelled.
//
// The parser (prom_text.cpp) decides what an exposition means; this module
// decides what of it the group exports.  Selection runs on the names as
// the source has them, so that an operator writes the patterns against
// what curl shows, whatever prefix the service and group add.  What the
// frame protocol cannot carry (proto/message.h: names and label names of
// at most 256 bytes, at most 64 labels, a family header and one sample in
// one 64 KiB frame) is found here, family by family: a source with one
// odd family still has the others exported, where a result that failed to
// encode would lose the whole group.  HELP text is cut to kMaxHelp bytes
// for the same reason.  And one result may not exceed what the supervisor
// accepts from a worker (GroupResultAssembler's limits: 100,000 series,
// 10,000 families): the families in excess, the last ones, are left out
// with one error, where the whole result would be a protocol error.
#include "prom_import.hpp"

#include <algorithm>
#include <new>

#include "common/group_result.hpp"
#include "common/utf8.hpp"
#include "text_util.hpp"
#include "proto/frame.h"
#include "proto/message.h"

namespace pme::worker {

using common::CPtr;
using common::fail;
using common::Family;
using common::Result;

namespace {

constexpr size_t kMaxHelp = 16 * 1024;
// Names are short: a pattern that needs more is not selecting names.
constexpr uint32_t kMatchLimit = 100000;
constexpr uint32_t kDepthLimit = 1000;


Result<void> compileAll(const std::vector<std::string> &patterns, const char *key,
    std::vector<CPtr<pcre2_code>> &out)
{
	for (const auto &re : patterns) {
		int err = 0;
		PCRE2_SIZE offset = 0;
		CPtr<pcre2_code> code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re.data()),
		    re.size(), PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED, &err, &offset,
		    nullptr));
		if (!code)
			return fail(std::string(key) + " pattern '" + re + "': " +
			    pcre2Message(err) + " at offset " + std::to_string(offset));
		// The interpreter does the same where the kernel refuses the
		// JIT executable memory.
		pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE);
		out.push_back(std::move(code));
	}
	return {};
}

// Bytes of a family header and of a sample in a GROUP_DATA frame
// (common/group_result.cpp: a string is a 4-byte length and its bytes).
size_t familyBytes(const Family &f)
{
	return 1 + 4 + f.name.size() + 1 + 4 + f.help.size() + 4 + f.unit.size();
}

size_t sampleBytes(const common::Sample &s)
{
	size_t n = 1 + 4 + s.suffix.size() + 2 + 8 + 8;
	for (const auto &l : s.labels)
		n += 8 + l.name.size() + l.value.size();
	return n;
}

size_t longestSuffix(common::MetricType t)
{
	switch (t) {
	case common::MetricType::Histogram: return 7; // _bucket
	case common::MetricType::Summary: return 6;   // _count
	default: return 0;
	}
}

// What the supervisor's GroupResultAssembler takes in one result, counted
// as it counts: a result over any of its limits is a protocol error, and
// the worker that sent it is stopped.
struct Budget {
	static inline const common::GroupResultAssembler::Limits kLimits{};
	size_t families = 0, series = 0, bytes = 64; // the group's name, and a margin

	bool take(const Family &f)
	{
		size_t b = f.name.size() + f.help.size() + f.unit.size();
		for (const auto &s : f.samples) {
			b += s.suffix.size() + 8;
			for (const auto &l : s.labels)
				b += l.name.size() + l.value.size();
		}
		if (families + 1 > kLimits.maxFamilies ||
		    series + f.samples.size() > kLimits.maxSeries || bytes + b > kLimits.maxBytes)
			return false;
		families++;
		series += f.samples.size();
		bytes += b;
		return true;
	}
};

} // namespace

Result<PromImporter> PromImporter::compile(const common::GroupConfig &group,
    const std::string &metricPrefix)
{
	PromImporter im;
	im.prefix_ = metricPrefix + group.import.prefix;
	if (!im.prefix_.empty() &&
	    !pme_proto_valid_metric_name(im.prefix_.data(), im.prefix_.size()))
		return fail("prefix '" + im.prefix_ + "' is not the start of a valid metric name");
	if (auto r = compileAll(group.import.include, "include", im.include_); !r)
		return tl::unexpected(r.error());
	if (auto r = compileAll(group.import.exclude, "exclude", im.exclude_); !r)
		return tl::unexpected(r.error());
	im.matchContext_.reset(pcre2_match_context_create(nullptr));
	if (!im.matchContext_)
		throw std::bad_alloc();
	pcre2_set_match_limit(im.matchContext_.get(), kMatchLimit);
	pcre2_set_depth_limit(im.matchContext_.get(), kDepthLimit);
	im.labels_ = group.labels;
	im.honorTimestamps_ = group.import.honorTimestamps;
	return im;
}

bool PromImporter::selected(const std::string &name, pcre2_match_data *match) const
{
	auto run = [&](const CPtr<pcre2_code> &code) {
		return pcre2_match(code.get(), reinterpret_cast<PCRE2_SPTR>(name.data()),
		    name.size(), 0, 0, match, matchContext_.get());
	};
	// A pattern that fails (a match limit) includes nothing and excludes
	// everything: a family is exported only when the patterns say so.
	if (!include_.empty() && std::none_of(include_.begin(), include_.end(),
	    [&](const auto &code) { return run(code) >= 0; }))
		return false;
	return std::none_of(exclude_.begin(), exclude_.end(),
	    [&](const auto &code) { return run(code) != PCRE2_ERROR_NOMATCH; });
}

// Why the protocol could not carry f, or "".
std::string PromImporter::check(const Family &f) const
{
	if (f.name.size() + longestSuffix(f.type) > PME_PROTO_MAX_NAME)
		return "the name is longer than " + std::to_string(PME_PROTO_MAX_NAME) + " bytes";
	size_t header = familyBytes(f);
	for (const auto &s : f.samples) {
		if (s.labels.size() > PME_PROTO_MAX_LABELS)
			return "a sample has " + std::to_string(s.labels.size()) +
			    " labels (at most " + std::to_string(PME_PROTO_MAX_LABELS) + ")";
		for (const auto &l : s.labels)
			if (l.name.size() > PME_PROTO_MAX_NAME)
				return "a label name is longer than " +
				    std::to_string(PME_PROTO_MAX_NAME) + " bytes";
		size_t bytes = header + sampleBytes(s);
		if (bytes > PME_PROTO_MAX_PAYLOAD - 64)
			return "a sample of " + std::to_string(bytes) + " bytes does not fit in " +
			    "one " + std::to_string(PME_PROTO_MAX_PAYLOAD) + "-byte frame";
	}
	return {};
}

Result<Imported> PromImporter::import(std::string_view text) const
{
	auto parsed = parsePromText(text, limits_);
	if (!parsed)
		return tl::unexpected(parsed.error());
	Imported out;
	CPtr<pcre2_match_data> match(pcre2_match_data_create(1, nullptr));
	if (!match)
		throw std::bad_alloc();
	out.families.reserve(parsed->size());
	Budget budget;
	bool full = false;
	for (Family &f : *parsed) {
		if (!selected(f.name, match.get()))
			continue;
		f.name.insert(0, prefix_);
		if (f.name.compare(0, 4, "pme_") == 0) {
			out.errors.push_back("family " + f.name + " is not exported: names "
			    "starting with pme_ are reserved for pme's own metrics (set "
			    "import.prefix, or exclude it)");
			continue;
		}
		if (f.help.empty())
			f.help = f.name;
		else if (f.help.size() > kMaxHelp)
			f.help = common::shorten(f.help, kMaxHelp - 3); // and "..."
		for (auto &s : f.samples) {
			if (!honorTimestamps_)
				s.timestampMs.reset();
			for (const auto &constant : labels_) {
				auto it = std::find_if(s.labels.begin(), s.labels.end(),
				    [&](const common::Label &l) {
					    return l.name == constant.first;
				    });
				if (it != s.labels.end())
					it->value = constant.second;
				else
					s.labels.push_back({constant.first, constant.second});
			}
		}
		if (std::string why = check(f); !why.empty()) {
			out.errors.push_back("family " + f.name + " is not exported: " + why);
			continue;
		}
		if (!full && !budget.take(f))
			full = true;
		if (full)
			continue;
		out.families.push_back(std::move(f));
	}
	if (full)
		out.errors.push_back("families are missing: the result of a group carries at "
		    "most " + std::to_string(Budget::kLimits.maxSeries) + " series, " +
		    std::to_string(Budget::kLimits.maxFamilies) + " families and " +
		    std::to_string(Budget::kLimits.maxBytes >> 20) + " MiB; the families after "
		    "those are left out (choose fewer with import.include and import.exclude)");
	return out;
}

} // namespace pme::worker
