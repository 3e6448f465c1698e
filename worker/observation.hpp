// SPDX-License-Identifier: ISC
// Histograms, summaries and statesets made from extracted values.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/metric.hpp"

namespace pme::worker {

// A bucket bound or a quantile as its label shows it, the way the Go
// client writes it (strconv.FormatFloat(v, 'g', -1, 64)): the shortest
// digits that read back as v, in exponent form only when the exponent is
// below -4 or at least 6 ("0.0001", "2.5", "300", "100000", "1e+06",
// "1e-05"); "+Inf" and "-Inf" for the infinities.
std::string formatLe(double le);

// The label sets of one metric, numbered in the order first seen, at most
// max of them.  Two lists of the same labels in another order are the
// same set.
class LabelSetIndex {
public:
	explicit LabelSetIndex(size_t max) : max_(max) {}

	// The number of labels' set, a new one (size() before the call) when
	// it was not seen before; an error naming it past max.
	common::Result<size_t> find(const std::vector<common::Label> &labels);
	size_t size() const { return index_.size(); }

private:
	size_t max_;
	std::unordered_map<std::string, size_t> index_;
};

// Histograms fed by observation (type histogram, observe: true): one
// histogram per distinct label set, at most maxSeries of them.  A value
// falls in the first bucket whose bound is at least the value (le is
// inclusive); +Inf falls in the +Inf bucket only and makes _sum +Inf, as
// in the Prometheus client libraries.
class ObservedHistogram {
public:
	// bounds: finite, strictly increasing (the loader checked it); +Inf is implicit.
	ObservedHistogram(std::vector<double> bounds, size_t maxSeries);

	// One observation.  NaN is refused with an error naming the value; a
	// label set beyond maxSeries too.
	common::Result<void> observe(const std::vector<common::Label> &labels, double value);

	// For every label set, in the order first seen: _bucket samples with
	// the labels plus le (cumulative counts, bounds ascending, "+Inf"
	// last), then _sum, then _count.  Appended to family.samples.
	void render(common::Family &family) const;
	size_t series() const { return series_.size(); }

private:
	struct Series {
		std::vector<common::Label> labels;
		std::vector<uint64_t> counts; // per bucket, not cumulative; +Inf last
		double sum = 0;
	};

	std::vector<double> bounds_;
	std::vector<std::string> les_; // bounds_ formatted, then "+Inf"
	LabelSetIndex index_;
	std::vector<Series> series_;
};

// Summaries over a sliding window (type summary): quantiles of the
// observations of the last maxAge, which expire ageBuckets at a time
// (every maxAge / ageBuckets the oldest bucket of observations is dropped,
// as Prometheus client libraries do); _sum and _count over all time.
//
// The clock (nowMs, monotonic) is cut into slots of maxAge / ageBuckets
// milliseconds (at least 1), counted from 0; an observation belongs to the
// slot of its time and stays in the window while its slot is one of the
// ageBuckets last ones.  It is therefore kept between maxAge - maxAge /
// ageBuckets and maxAge: with maxAge 10s and 5 buckets, a value observed
// at 0s is gone at 10s, one observed at 5s is there until 14s.
//
// The φ-quantile is exact over the kept observations: the value of rank
// ceil(φ·n) among the n sorted (nearest rank; φ = 0 is the minimum, φ = 1
// the maximum), NaN for an empty window.  At most maxObservations are kept
// per label set; beyond, the oldest go first.
class SlidingSummary {
public:
	struct Options {
		std::vector<double> quantiles;   // each in [0, 1], ascending
		common::Millis maxAge{600000};
		unsigned ageBuckets = 5;
		size_t maxSeries = 10000;
		size_t maxObservations = 100000; // kept per label set in the window; beyond, the oldest go first
	};

	// Throws std::invalid_argument for ageBuckets 0 or maxAge not
	// positive, which the loader refuses.
	explicit SlidingSummary(Options options);

	// One observation at nowMs.  NaN is refused (it has no rank), as is a
	// label set beyond maxSeries.
	common::Result<void> observe(const std::vector<common::Label> &labels, double value,
	    uint64_t nowMs);

	// For every label set (first-seen order): one sample per quantile with
	// the labels plus quantile (formatLe form) and suffix "", value the
	// quantile of the window at nowMs (NaN when the window is empty), then
	// _sum and _count.  Drops what has expired at nowMs.
	void render(common::Family &family, uint64_t nowMs);
	size_t series() const { return series_.size(); }

private:
	// The observations of one slot are a run at the front of the next
	// ones: values is ordered by time, runs says how many belong to which
	// slot, oldest first.
	struct Run {
		uint64_t slot;
		size_t count;
	};
	struct Series {
		std::vector<common::Label> labels;
		std::deque<double> values;
		std::deque<Run> runs;
		double sum = 0;
		uint64_t count = 0;
	};

	void expire(Series &s, uint64_t slot) const;

	Options options_;
	uint64_t slotMs_;
	std::vector<std::string> quantileLabels_;
	LabelSetIndex index_;
	std::vector<Series> series_;
};

// A histogram read from source fields (type histogram with buckets:
// {le: filter}, sum, count).
struct MappedHistogram {
	std::vector<std::pair<double, double>> buckets; // (le, value) as read, le ascending, may include +Inf last
	std::optional<double> sum;
	std::optional<double> count;
	bool cumulative = true;   // false: each value counts its bucket alone, the cumulative counts are their running sum
};

// Appends _bucket (cumulative, "+Inf" last), _sum (when known) and _count
// for one label set.  +Inf, when not read, is the count; the count, when
// not read, is the +Inf bucket; neither: error.  Errors name the bucket:
// a negative or NaN count, cumulative counts that decrease, a count that
// differs from the +Inf bucket.  Nothing is appended on error.
common::Result<void> appendMappedHistogram(common::Family &family,
    const std::vector<common::Label> &labels, const MappedHistogram &h);

// Stateset: each sample's value is the index of its state in `states`
// (the extractor mapped the text to it); each becomes one sample per
// state, with the family's name as an extra label holding the state name,
// value 1 for the sample's state and 0 for the others, states in the order
// given.  A value that is not an index of states is an error naming it,
// and the family is left as it was.
common::Result<void> expandStateSet(common::Family &family, const std::vector<std::string> &states);

} // namespace pme::worker
