// SPDX-License-Identifier: ISC
// Histograms, summaries and statesets made from extracted values.
//
// An extractor yields one number per series and cycle.  Most types expose
// it as it is; the ones here make something else of it.  An observed
// histogram or a summary counts every value it is given, across cycles:
// the state lives in the worker, per label set, for as long as the worker
// runs (a restart starts the counts again, which Prometheus's rate() takes
// as a counter reset).  A mapped histogram and a stateset are made anew
// each cycle from what was read.
//
// Summaries keep the observations themselves, not a sketch: a worker's
// metrics see a few values per cycle, so maxObservations (100,000 a label
// set by default) is far more than a window holds in practice, and an
// exact quantile is easier to explain than a ε-approximate one.  The
// window moves in steps of maxAge / ageBuckets, as in the Go and Java
// clients, so that a quantile does not change between two scrapes merely
// because time passed; expiry compares slot numbers, so a worker that
// renders rarely drops everything that expired in between at once.
#include "observation.hpp"

#include <algorithm>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <system_error>

namespace pme::worker {

using common::fail;
using common::Family;
using common::Label;
using common::Result;
using common::Sample;

namespace {

// {name="value",...} for messages.
std::string labelsText(const std::vector<Label> &labels)
{
	std::string out = "{";
	for (const auto &l : labels) {
		if (out.size() > 1)
			out += ',';
		out += l.name + "=\"" + l.value + '"';
	}
	return out + '}';
}

std::vector<Label> withLabel(const std::vector<Label> &labels, const std::string &name,
    const std::string &value)
{
	std::vector<Label> out = labels;
	out.push_back({name, value});
	return out;
}

// The value of rank ceil(φ·n) among sorted (nearest rank), φ = 0 the
// smallest.  φ·n within rounding of an integer is that integer: 0.07 × 100
// is 7.000000000000001 in doubles, and its rank is 7, not 8.
double quantile(const std::vector<double> &sorted, double phi)
{
	if (sorted.empty())
		return std::nan("");
	double n = static_cast<double>(sorted.size());
	double x = phi * n;
	double nearest = std::round(x);
	double rank = std::fabs(x - nearest) <= 4 * DBL_EPSILON * n ? nearest : std::ceil(x);
	rank = std::clamp(rank, 1.0, n);
	return sorted[static_cast<size_t>(rank) - 1];
}

} // namespace

std::string formatLe(double le)
{
	if (std::isnan(le))
		return "NaN";
	if (std::isinf(le))
		return le > 0 ? "+Inf" : "-Inf";
	// Shortest round-trip digits are at most 17, the exponent 3: 24
	// characters with sign and point.
	char buf[32];
	auto sci = std::to_chars(buf, buf + sizeof buf, le, std::chars_format::scientific);
	if (sci.ec != std::errc())
		throw std::logic_error("to_chars failed for a double");
	std::string_view text(buf, static_cast<size_t>(sci.ptr - buf));
	int exp = 0;
	size_t e = text.find('e');
	// from_chars takes no '+'.
	size_t digits = e + (text[e + 1] == '+' ? 2 : 1);
	std::from_chars(text.data() + digits, text.data() + text.size(), exp);
	if (exp < -4 || exp >= 6)
		return std::string(text);
	auto fixed = std::to_chars(buf, buf + sizeof buf, le, std::chars_format::fixed);
	if (fixed.ec != std::errc())
		throw std::logic_error("to_chars failed for a double");
	return std::string(buf, fixed.ptr);
}

Result<size_t> LabelSetIndex::find(const std::vector<Label> &labels)
{
	// The key is the labels sorted by name, each part length-prefixed
	// so that no value can pass for a separator.
	std::vector<const Label *> sorted;
	sorted.reserve(labels.size());
	for (const auto &l : labels)
		sorted.push_back(&l);
	std::sort(sorted.begin(), sorted.end(),
	    [](const Label *a, const Label *b) { return a->name < b->name; });
	std::string key;
	for (const Label *l : sorted) {
		key += std::to_string(l->name.size()) + ':' + l->name;
		key += std::to_string(l->value.size()) + ':' + l->value;
	}
	auto it = index_.find(key);
	if (it != index_.end())
		return it->second;
	if (index_.size() >= max_)
		return fail("label set " + labelsText(labels) + " not recorded: already " +
		    std::to_string(max_) + " label sets, the most one metric keeps");
	size_t n = index_.size();
	index_.emplace(std::move(key), n);
	return n;
}

ObservedHistogram::ObservedHistogram(std::vector<double> bounds, size_t maxSeries)
    : bounds_(std::move(bounds)), index_(maxSeries)
{
	for (double b : bounds_)
		les_.push_back(formatLe(b));
	les_.push_back("+Inf");
}

Result<void> ObservedHistogram::observe(const std::vector<Label> &labels, double value)
{
	if (std::isnan(value))
		return fail("value NaN of " + labelsText(labels) +
		    " cannot be observed: it falls in no bucket");
	auto n = index_.find(labels);
	if (!n)
		return tl::unexpected(n.error());
	if (*n == series_.size())
		series_.push_back({labels, std::vector<uint64_t>(les_.size()), 0});
	Series &s = series_[*n];
	// The first bound >= value; past the last, the +Inf bucket.
	auto at = std::lower_bound(bounds_.begin(), bounds_.end(), value);
	s.counts[static_cast<size_t>(at - bounds_.begin())]++;
	s.sum += value;
	return {};
}

void ObservedHistogram::render(Family &family) const
{
	for (const auto &s : series_) {
		uint64_t cumulative = 0;
		for (size_t i = 0; i < les_.size(); i++) {
			cumulative += s.counts[i];
			family.samples.push_back({"_bucket", withLabel(s.labels, "le", les_[i]),
			    static_cast<double>(cumulative), {}});
		}
		family.samples.push_back({"_sum", s.labels, s.sum, {}});
		family.samples.push_back({"_count", s.labels, static_cast<double>(cumulative), {}});
	}
}

SlidingSummary::SlidingSummary(Options options)
    : options_(std::move(options)), index_(options_.maxSeries)
{
	if (options_.ageBuckets == 0 || options_.maxAge.count() <= 0)
		throw std::invalid_argument("summary: age buckets and max age must be positive");
	slotMs_ = std::max<uint64_t>(1,
	    static_cast<uint64_t>(options_.maxAge.count()) / options_.ageBuckets);
	for (double q : options_.quantiles)
		quantileLabels_.push_back(formatLe(q));
}

void SlidingSummary::expire(Series &s, uint64_t slot) const
{
	while (!s.runs.empty() && s.runs.front().slot + options_.ageBuckets <= slot) {
		s.values.erase(s.values.begin(),
		    s.values.begin() + static_cast<std::ptrdiff_t>(s.runs.front().count));
		s.runs.pop_front();
	}
}

Result<void> SlidingSummary::observe(const std::vector<Label> &labels, double value,
    uint64_t nowMs)
{
	if (std::isnan(value))
		return fail("value NaN of " + labelsText(labels) +
		    " cannot be observed: it has no rank among the others");
	auto n = index_.find(labels);
	if (!n)
		return tl::unexpected(n.error());
	if (*n == series_.size())
		series_.push_back({labels, {}, {}, 0, 0});
	Series &s = series_[*n];
	uint64_t slot = nowMs / slotMs_;
	expire(s, slot);
	// A clock that went back (it should not) adds to the newest slot.
	if (s.runs.empty() || s.runs.back().slot < slot)
		s.runs.push_back({slot, 0});
	s.runs.back().count++;
	s.values.push_back(value);
	s.sum += value;
	s.count++;
	while (s.values.size() > options_.maxObservations) {
		s.values.pop_front();
		if (--s.runs.front().count == 0)
			s.runs.pop_front();
	}
	return {};
}

void SlidingSummary::render(Family &family, uint64_t nowMs)
{
	uint64_t slot = nowMs / slotMs_;
	std::vector<double> sorted;
	for (auto &s : series_) {
		expire(s, slot);
		sorted.assign(s.values.begin(), s.values.end());
		std::sort(sorted.begin(), sorted.end());
		for (size_t i = 0; i < options_.quantiles.size(); i++)
			family.samples.push_back({"", withLabel(s.labels, "quantile", quantileLabels_[i]),
			    quantile(sorted, options_.quantiles[i]), {}});
		family.samples.push_back({"_sum", s.labels, s.sum, {}});
		family.samples.push_back({"_count", s.labels, static_cast<double>(s.count), {}});
	}
}

Result<void> appendMappedHistogram(Family &family, const std::vector<Label> &labels,
    const MappedHistogram &h)
{
	auto bucketText = [](double le, double value) {
		return "bucket le=\"" + formatLe(le) + "\" (" + formatLe(value) + ")";
	};
	// (le, cumulative count), checked before anything is appended.
	std::vector<std::pair<double, double>> buckets;
	double running = 0;
	for (const auto &[le, value] : h.buckets) {
		if (std::isnan(value) || value < 0)
			return fail(bucketText(le, value) + " is not a count: a count is a number >= 0");
		double cumulative = h.cumulative ? value : running + value;
		if (!buckets.empty() && cumulative < buckets.back().second)
			return fail(bucketText(le, cumulative) + " is below " +
			    bucketText(buckets.back().first, buckets.back().second) +
			    "; if the source counts each bucket alone, set cumulative: false");
		buckets.emplace_back(le, cumulative);
		running = cumulative;
	}
	constexpr double inf = std::numeric_limits<double>::infinity();
	bool readInf = !buckets.empty() && buckets.back().first == inf;
	double count;
	if (h.count) {
		count = *h.count;
		if (std::isnan(count) || count < 0)
			return fail("count (" + formatLe(count) + ") is not a count: a count is a number >= 0");
		if (readInf && count != buckets.back().second)
			return fail("count (" + formatLe(count) + ") differs from " +
			    bucketText(buckets.back().first, buckets.back().second) +
			    ": both count every observation");
		if (!readInf) {
			if (!buckets.empty() && count < buckets.back().second)
				return fail("count (" + formatLe(count) + ") is below " +
				    bucketText(buckets.back().first, buckets.back().second) +
				    ": the count includes every bucket's observations");
			buckets.emplace_back(inf, count);
		}
	} else if (readInf) {
		count = buckets.back().second;
	} else {
		return fail("neither a bucket le=\"+Inf\" nor a count was read: "
		    "one of them is needed for the histogram's _count");
	}
	for (const auto &[le, value] : buckets)
		family.samples.push_back({"_bucket", withLabel(labels, "le", formatLe(le)), value, {}});
	if (h.sum)
		family.samples.push_back({"_sum", labels, *h.sum, {}});
	family.samples.push_back({"_count", labels, count, {}});
	return {};
}

Result<void> expandStateSet(Family &family, const std::vector<std::string> &states)
{
	std::vector<Sample> expanded;
	expanded.reserve(family.samples.size() * states.size());
	for (const auto &s : family.samples) {
		double v = s.value;
		if (!(v >= 0 && v < static_cast<double>(states.size())) || v != std::trunc(v))
			return fail("value " + formatLe(v) + " of " + labelsText(s.labels) +
			    " is not the index of a state" + (states.empty() ? std::string(": there are no states") :
			    " (0 to " + std::to_string(states.size() - 1) + ")"));
		size_t at = static_cast<size_t>(v);
		for (size_t i = 0; i < states.size(); i++) {
			Sample one = s;
			one.labels.push_back({family.name, states[i]});
			one.value = i == at ? 1 : 0;
			expanded.push_back(std::move(one));
		}
	}
	family.samples = std::move(expanded);
	return {};
}

} // namespace pme::worker
