// SPDX-License-Identifier: ISC
// Observed histograms, sliding summaries, mapped histograms and statesets, sample by sample.
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "worker/observation.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme;
using common::Family;
using common::Label;
using worker::appendMappedHistogram;
using worker::expandStateSet;
using worker::formatLe;
using worker::MappedHistogram;
using worker::ObservedHistogram;
using worker::SlidingSummary;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// One line per sample, "suffix{name="value",...} value", in order: what a
// scrape would show, less the family's name.
std::string text(const Family &family)
{
	std::string out;
	for (const auto &s : family.samples) {
		out += s.suffix + "{";
		for (size_t i = 0; i < s.labels.size(); i++)
			out += (i ? "," : "") + s.labels[i].name + "=\"" + s.labels[i].value + "\"";
		out += "} " + formatLe(s.value) + "\n";
	}
	return out;
}

void observe(ObservedHistogram &h, const std::vector<Label> &labels, double v)
{
	auto r = h.observe(labels, v);
	if (!r)
		FAIL(("observe failed: " + r.error().message).c_str());
}

void observe(SlidingSummary &s, const std::vector<Label> &labels, double v, uint64_t nowMs)
{
	auto r = s.observe(labels, v, nowMs);
	if (!r)
		FAIL(("observe failed: " + r.error().message).c_str());
}

std::string render(const ObservedHistogram &h)
{
	Family f;
	h.render(f);
	return text(f);
}

std::string render(SlidingSummary &s, uint64_t nowMs)
{
	Family f;
	s.render(f, nowMs);
	return text(f);
}

SlidingSummary::Options windowOf10s(std::vector<double> quantiles = {0, 1})
{
	SlidingSummary::Options o;
	o.quantiles = std::move(quantiles);
	o.maxAge = common::Millis(10000);
	o.ageBuckets = 5;
	return o;
}

// The window's minimum and maximum, and the all-time sum and count, of a
// summary with quantiles 0 and 1 and no labels.
std::string window(double min, double max, double sum, double count)
{
	return "{quantile=\"0\"} " + formatLe(min) + "\n{quantile=\"1\"} " + formatLe(max) +
	    "\n_sum{} " + formatLe(sum) + "\n_count{} " + formatLe(count) + "\n";
}

std::string mapped(const MappedHistogram &h, const std::vector<Label> &labels = {})
{
	Family f;
	auto r = appendMappedHistogram(f, labels, h);
	if (!r)
		FAIL(("appendMappedHistogram failed: " + r.error().message).c_str());
	return text(f);
}

// The error of a histogram that must be refused; nothing may be appended.
std::string mappedError(const MappedHistogram &h)
{
	Family f;
	auto r = appendMappedHistogram(f, {}, h);
	CHECK_FALSE(r.has_value());
	LONGS_EQUAL(0, f.samples.size());
	return r ? "" : r.error().message;
}

} // namespace

TEST_GROUP(ObservedHistogramsAndSummaries)
{
};

TEST(ObservedHistogramsAndSummaries, LeIsWrittenAsTheGoClientWritesIt)
{
	STRCMP_EQUAL("0.1", formatLe(0.1).c_str());
	STRCMP_EQUAL("1", formatLe(1).c_str());
	STRCMP_EQUAL("2.5", formatLe(2.5).c_str());
	STRCMP_EQUAL("300", formatLe(300).c_str());
	STRCMP_EQUAL("0", formatLe(0).c_str());
	STRCMP_EQUAL("-1", formatLe(-1).c_str());
	STRCMP_EQUAL("0.005", formatLe(0.005).c_str());
	STRCMP_EQUAL("0.99", formatLe(0.99).c_str());
	STRCMP_EQUAL("0.999", formatLe(0.999).c_str());
	// Fixed up to an exponent of 5, where to_chars alone would say 1e+05.
	STRCMP_EQUAL("100000", formatLe(100000).c_str());
	STRCMP_EQUAL("123456", formatLe(123456).c_str());
	STRCMP_EQUAL("1e+06", formatLe(1e6).c_str());
	STRCMP_EQUAL("1.5e+06", formatLe(1.5e6).c_str());
	STRCMP_EQUAL("1.23456789e+08", formatLe(123456789).c_str());
	// Fixed down to an exponent of -4, where to_chars alone would say 1e-04.
	STRCMP_EQUAL("0.0001", formatLe(0.0001).c_str());
	STRCMP_EQUAL("0.00025", formatLe(0.00025).c_str());
	STRCMP_EQUAL("1e-05", formatLe(0.00001).c_str());
	STRCMP_EQUAL("+Inf", formatLe(kInf).c_str());
	STRCMP_EQUAL("-Inf", formatLe(-kInf).c_str());
}

TEST(ObservedHistogramsAndSummaries, ObservedHistogramCountsCumulatively)
{
	ObservedHistogram h({0.5, 1, 2.5}, 10);
	// 0.5 is in le="0.5": a bound includes its own value.
	for (double v : {0.25, 0.5, 0.75, 2.0, 3.0})
		observe(h, {}, v);
	LONGS_EQUAL(1, h.series());
	STRCMP_EQUAL("_bucket{le=\"0.5\"} 2\n"
	    "_bucket{le=\"1\"} 3\n"
	    "_bucket{le=\"2.5\"} 4\n"
	    "_bucket{le=\"+Inf\"} 5\n"
	    "_sum{} 6.5\n"
	    "_count{} 5\n", render(h).c_str());
}

TEST(ObservedHistogramsAndSummaries, InfinityFallsInTheInfBucketAndMakesTheSumInfinite)
{
	ObservedHistogram h({1}, 10);
	observe(h, {{"path", "/"}}, 0.5);
	observe(h, {{"path", "/"}}, kInf);
	observe(h, {{"path", "/"}}, -kInf);
	STRCMP_EQUAL("_bucket{path=\"/\",le=\"1\"} 2\n"
	    "_bucket{path=\"/\",le=\"+Inf\"} 3\n"
	    "_sum{path=\"/\"} NaN\n"
	    "_count{path=\"/\"} 3\n", render(h).c_str());

	ObservedHistogram up({1}, 10);
	observe(up, {}, kInf);
	STRCMP_EQUAL("_bucket{le=\"1\"} 0\n"
	    "_bucket{le=\"+Inf\"} 1\n"
	    "_sum{} +Inf\n"
	    "_count{} 1\n", render(up).c_str());
}

TEST(ObservedHistogramsAndSummaries, ObservedHistogramsKeepLabelSetsInTheOrderFirstSeen)
{
	ObservedHistogram h({1}, 10);
	observe(h, {{"code", "500"}, {"method", "GET"}}, 2);
	observe(h, {{"code", "200"}, {"method", "GET"}}, 0.5);
	// The same set with its labels in another order is the same series.
	observe(h, {{"method", "GET"}, {"code", "500"}}, 0.25);
	LONGS_EQUAL(2, h.series());
	STRCMP_EQUAL("_bucket{code=\"500\",method=\"GET\",le=\"1\"} 1\n"
	    "_bucket{code=\"500\",method=\"GET\",le=\"+Inf\"} 2\n"
	    "_sum{code=\"500\",method=\"GET\"} 2.25\n"
	    "_count{code=\"500\",method=\"GET\"} 2\n"
	    "_bucket{code=\"200\",method=\"GET\",le=\"1\"} 1\n"
	    "_bucket{code=\"200\",method=\"GET\",le=\"+Inf\"} 1\n"
	    "_sum{code=\"200\",method=\"GET\"} 0.5\n"
	    "_count{code=\"200\",method=\"GET\"} 1\n", render(h).c_str());
}

TEST(ObservedHistogramsAndSummaries, ObservedHistogramRefusesNaN)
{
	ObservedHistogram h({1}, 10);
	observe(h, {}, 0.5);
	auto r = h.observe({{"disk", "sda"}}, std::nan(""));
	CHECK_FALSE(r.has_value());
	STRCMP_EQUAL("value NaN of {disk=\"sda\"} cannot be observed: it falls in no bucket",
	    r.error().message.c_str());
	LONGS_EQUAL(1, h.series());
	STRCMP_EQUAL("_bucket{le=\"1\"} 1\n_bucket{le=\"+Inf\"} 1\n_sum{} 0.5\n_count{} 1\n",
	    render(h).c_str());
}

TEST(ObservedHistogramsAndSummaries, ObservedHistogramRefusesLabelSetsBeyondMaxSeries)
{
	ObservedHistogram h({1}, 2);
	observe(h, {{"disk", "sda"}}, 1);
	observe(h, {{"disk", "sdb"}}, 1);
	auto r = h.observe({{"disk", "sdc"}}, 1);
	CHECK_FALSE(r.has_value());
	STRCMP_EQUAL("label set {disk=\"sdc\"} not recorded: already 2 label sets, "
	    "the most one metric keeps", r.error().message.c_str());
	// The sets already seen are still observed.
	observe(h, {{"disk", "sda"}}, 3);
	LONGS_EQUAL(2, h.series());
	STRCMP_EQUAL("_bucket{disk=\"sda\",le=\"1\"} 1\n"
	    "_bucket{disk=\"sda\",le=\"+Inf\"} 2\n"
	    "_sum{disk=\"sda\"} 4\n"
	    "_count{disk=\"sda\"} 2\n"
	    "_bucket{disk=\"sdb\",le=\"1\"} 1\n"
	    "_bucket{disk=\"sdb\",le=\"+Inf\"} 1\n"
	    "_sum{disk=\"sdb\"} 1\n"
	    "_count{disk=\"sdb\"} 1\n", render(h).c_str());
}

TEST(ObservedHistogramsAndSummaries, SummaryQuantilesAreNearestRank)
{
	SlidingSummary s(windowOf10s({0, 0.07, 0.5, 0.9, 0.99, 1}));
	// 1..100 in a scrambled order (37 is prime to 100).
	for (int i = 0; i < 100; i++)
		observe(s, {{"job", "a"}}, (i * 37) % 100 + 1, 1000);
	LONGS_EQUAL(1, s.series());
	// 0.07 × 100 is 7.000000000000001 in doubles: still rank 7.
	STRCMP_EQUAL("{job=\"a\",quantile=\"0\"} 1\n"
	    "{job=\"a\",quantile=\"0.07\"} 7\n"
	    "{job=\"a\",quantile=\"0.5\"} 50\n"
	    "{job=\"a\",quantile=\"0.9\"} 90\n"
	    "{job=\"a\",quantile=\"0.99\"} 99\n"
	    "{job=\"a\",quantile=\"1\"} 100\n"
	    "_sum{job=\"a\"} 5050\n"
	    "_count{job=\"a\"} 100\n", render(s, 1000).c_str());

	SlidingSummary few(windowOf10s({0.25, 0.34, 0.5, 0.67}));
	for (double v : {30.0, 10.0, 20.0})
		observe(few, {}, v, 0);
	// Ranks ceil(0.75) = 1, ceil(1.02) = 2, ceil(1.5) = 2, ceil(2.01) = 3.
	STRCMP_EQUAL("{quantile=\"0.25\"} 10\n"
	    "{quantile=\"0.34\"} 20\n"
	    "{quantile=\"0.5\"} 20\n"
	    "{quantile=\"0.67\"} 30\n"
	    "_sum{} 60\n"
	    "_count{} 3\n", render(few, 0).c_str());
}

TEST(ObservedHistogramsAndSummaries, SummaryLabelSetsInTheOrderFirstSeen)
{
	SlidingSummary s(windowOf10s({0.5}));
	observe(s, {{"q", "b"}}, 2, 0);
	observe(s, {{"q", "a"}}, 1, 0);
	observe(s, {{"q", "b"}}, 4, 0);
	STRCMP_EQUAL("{q=\"b\",quantile=\"0.5\"} 2\n"
	    "_sum{q=\"b\"} 6\n"
	    "_count{q=\"b\"} 2\n"
	    "{q=\"a\",quantile=\"0.5\"} 1\n"
	    "_sum{q=\"a\"} 1\n"
	    "_count{q=\"a\"} 1\n", render(s, 0).c_str());
}

TEST(ObservedHistogramsAndSummaries, SummaryWindowExpiresABucketAtATime)
{
	// maxAge 10s in 5 buckets of 2s: [0s, 2s) leaves the window at 10s,
	// [4s, 6s) at 14s.
	SlidingSummary s(windowOf10s());
	observe(s, {}, 1, 0);
	observe(s, {}, 2, 5000);
	STRCMP_EQUAL(window(1, 2, 3, 2).c_str(), render(s, 9999).c_str());
	STRCMP_EQUAL(window(2, 2, 3, 2).c_str(), render(s, 10000).c_str());
	STRCMP_EQUAL(window(2, 2, 3, 2).c_str(), render(s, 12000).c_str());
	STRCMP_EQUAL(window(2, 2, 3, 2).c_str(), render(s, 13999).c_str());
	// An empty window has no quantiles; _sum and _count are of all time.
	STRCMP_EQUAL(window(NAN, NAN, 3, 2).c_str(), render(s, 14000).c_str());

	// One observation per bucket: each render drops the oldest.
	SlidingSummary r(windowOf10s());
	for (int i = 0; i < 5; i++)
		observe(r, {}, i + 1, static_cast<uint64_t>(i) * 2000 + 1500);
	STRCMP_EQUAL(window(1, 5, 15, 5).c_str(), render(r, 9999).c_str());
	STRCMP_EQUAL(window(2, 5, 15, 5).c_str(), render(r, 10000).c_str());
	STRCMP_EQUAL(window(3, 5, 15, 5).c_str(), render(r, 12000).c_str());
	STRCMP_EQUAL(window(5, 5, 15, 5).c_str(), render(r, 16000).c_str());
	// Observing also expires, without a render in between.
	observe(r, {}, 9, 19000);
	STRCMP_EQUAL(window(9, 9, 24, 6).c_str(), render(r, 19000).c_str());
}

TEST(ObservedHistogramsAndSummaries, SummaryDropsEverythingExpiredAfterALongGap)
{
	SlidingSummary s(windowOf10s());
	for (int t = 0; t < 10000; t += 500)
		observe(s, {}, t, static_cast<uint64_t>(t));
	STRCMP_EQUAL(window(0, 9500, 95000, 20).c_str(), render(s, 9999).c_str());
	// An hour later, in one call: nothing of the old window is left.
	observe(s, {}, 7, 3600000);
	STRCMP_EQUAL(window(7, 7, 95007, 21).c_str(), render(s, 3600000).c_str());
	STRCMP_EQUAL(window(NAN, NAN, 95007, 21).c_str(), render(s, 7200000).c_str());
}

TEST(ObservedHistogramsAndSummaries, SummaryKeepsAtMostMaxObservations)
{
	auto o = windowOf10s();
	o.maxObservations = 3;
	SlidingSummary s(o);
	observe(s, {}, 1, 0);
	observe(s, {}, 2, 0);
	observe(s, {}, 3, 2000);
	observe(s, {}, 4, 2000);
	// 1 went first; _sum and _count still count it.
	STRCMP_EQUAL(window(2, 4, 10, 4).c_str(), render(s, 2000).c_str());
	// 2, alone left of the bucket at 0s, expires with it.
	STRCMP_EQUAL(window(3, 4, 10, 4).c_str(), render(s, 10000).c_str());
	observe(s, {}, 5, 10000);
	observe(s, {}, 6, 10000);
	STRCMP_EQUAL(window(4, 6, 21, 6).c_str(), render(s, 10000).c_str());
	STRCMP_EQUAL(window(5, 6, 21, 6).c_str(), render(s, 12000).c_str());

	// A bucket emptied by the limit takes no later observation with it.
	o.maxObservations = 2;
	SlidingSummary t(o);
	observe(t, {}, 1, 0);
	observe(t, {}, 2, 2000);
	observe(t, {}, 3, 2000);
	observe(t, {}, 4, 2000);
	STRCMP_EQUAL(window(3, 4, 10, 4).c_str(), render(t, 10000).c_str());
	STRCMP_EQUAL(window(NAN, NAN, 10, 4).c_str(), render(t, 12000).c_str());
}

TEST(ObservedHistogramsAndSummaries, SummaryRefusesNaNAndLabelSetsBeyondMaxSeries)
{
	auto o = windowOf10s();
	o.maxSeries = 1;
	SlidingSummary s(o);
	auto nan = s.observe({}, std::nan(""), 0);
	CHECK_FALSE(nan.has_value());
	STRCMP_EQUAL("value NaN of {} cannot be observed: it has no rank among the others",
	    nan.error().message.c_str());
	LONGS_EQUAL(0, s.series());
	observe(s, {{"a", "1"}}, 1, 0);
	auto full = s.observe({{"a", "2"}}, 1, 0);
	CHECK_FALSE(full.has_value());
	STRCMP_EQUAL("label set {a=\"2\"} not recorded: already 1 label sets, "
	    "the most one metric keeps", full.error().message.c_str());
	LONGS_EQUAL(1, s.series());
}

TEST(ObservedHistogramsAndSummaries, SummaryRefusesAWindowOfNoBuckets)
{
	auto o = windowOf10s();
	o.ageBuckets = 0;
	CHECK_THROWS(std::invalid_argument, SlidingSummary{o});
	o.ageBuckets = 5;
	o.maxAge = common::Millis(0);
	CHECK_THROWS(std::invalid_argument, SlidingSummary{o});
}

TEST(ObservedHistogramsAndSummaries, MappedCumulativeHistogramTakesInfFromTheCount)
{
	MappedHistogram h;
	h.buckets = {{0.5, 2}, {1, 5}, {2.5, 5}};
	h.sum = 12.5;
	h.count = 9;
	STRCMP_EQUAL("_bucket{pool=\"www\",le=\"0.5\"} 2\n"
	    "_bucket{pool=\"www\",le=\"1\"} 5\n"
	    "_bucket{pool=\"www\",le=\"2.5\"} 5\n"
	    "_bucket{pool=\"www\",le=\"+Inf\"} 9\n"
	    "_sum{pool=\"www\"} 12.5\n"
	    "_count{pool=\"www\"} 9\n", mapped(h, {{"pool", "www"}}).c_str());
}

TEST(ObservedHistogramsAndSummaries, MappedHistogramTakesTheCountFromInf)
{
	MappedHistogram h;
	h.buckets = {{1, 3}, {kInf, 4}};
	// No sum read: no _sum.
	STRCMP_EQUAL("_bucket{le=\"1\"} 3\n"
	    "_bucket{le=\"+Inf\"} 4\n"
	    "_count{} 4\n", mapped(h).c_str());

	// Both read, and equal.
	h.count = 4;
	STRCMP_EQUAL("_bucket{le=\"1\"} 3\n"
	    "_bucket{le=\"+Inf\"} 4\n"
	    "_count{} 4\n", mapped(h).c_str());

	// No finite bucket at all.
	MappedHistogram countOnly;
	countOnly.count = 6;
	countOnly.sum = 1.5;
	STRCMP_EQUAL("_bucket{le=\"+Inf\"} 6\n_sum{} 1.5\n_count{} 6\n", mapped(countOnly).c_str());
}

TEST(ObservedHistogramsAndSummaries, MappedNonCumulativeHistogramIsSummedUp)
{
	MappedHistogram h;
	h.cumulative = false;
	h.buckets = {{0.5, 2}, {1, 3}, {2.5, 0}, {kInf, 2}};
	h.sum = 20;
	STRCMP_EQUAL("_bucket{le=\"0.5\"} 2\n"
	    "_bucket{le=\"1\"} 5\n"
	    "_bucket{le=\"2.5\"} 5\n"
	    "_bucket{le=\"+Inf\"} 7\n"
	    "_sum{} 20\n"
	    "_count{} 7\n", mapped(h).c_str());

	// Without +Inf, the observations above the last bound are the count's rest.
	h.buckets.pop_back();
	h.count = 10;
	STRCMP_EQUAL("_bucket{le=\"0.5\"} 2\n"
	    "_bucket{le=\"1\"} 5\n"
	    "_bucket{le=\"2.5\"} 5\n"
	    "_bucket{le=\"+Inf\"} 10\n"
	    "_sum{} 20\n"
	    "_count{} 10\n", mapped(h).c_str());
}

TEST(ObservedHistogramsAndSummaries, MappedHistogramErrorsNameTheBucket)
{
	MappedHistogram h;
	h.buckets = {{0.5, 7}, {1, 5}, {kInf, 9}};
	STRCMP_EQUAL("bucket le=\"1\" (5) is below bucket le=\"0.5\" (7); "
	    "if the source counts each bucket alone, set cumulative: false",
	    mappedError(h).c_str());

	h.buckets = {{0.5, 1}, {1, -2}, {kInf, 9}};
	STRCMP_EQUAL("bucket le=\"1\" (-2) is not a count: a count is a number >= 0",
	    mappedError(h).c_str());
	h.cumulative = false;
	STRCMP_EQUAL("bucket le=\"1\" (-2) is not a count: a count is a number >= 0",
	    mappedError(h).c_str());
	h.cumulative = true;

	h.buckets = {{0.5, std::nan("")}, {kInf, 9}};
	STRCMP_EQUAL("bucket le=\"0.5\" (NaN) is not a count: a count is a number >= 0",
	    mappedError(h).c_str());

	h.buckets = {{0.5, 1}, {kInf, 9}};
	h.count = 8;
	STRCMP_EQUAL("count (8) differs from bucket le=\"+Inf\" (9): both count every observation",
	    mappedError(h).c_str());

	h.buckets = {{0.5, 1}, {2, 9}};
	h.count = 8;
	STRCMP_EQUAL("count (8) is below bucket le=\"2\" (9): "
	    "the count includes every bucket's observations", mappedError(h).c_str());

	h.count = -1;
	STRCMP_EQUAL("count (-1) is not a count: a count is a number >= 0", mappedError(h).c_str());
	h.count = std::nan("");
	STRCMP_EQUAL("count (NaN) is not a count: a count is a number >= 0", mappedError(h).c_str());

	h.count.reset();
	STRCMP_EQUAL("neither a bucket le=\"+Inf\" nor a count was read: "
	    "one of them is needed for the histogram's _count", mappedError(h).c_str());
}

TEST(ObservedHistogramsAndSummaries, StateSetHasOneSamplePerState)
{
	Family f;
	f.name = "raid_state";
	f.samples.push_back({"", {{"md", "md0"}}, 1, {}});
	f.samples.push_back({"", {{"md", "md1"}}, 0, {}});
	auto r = expandStateSet(f, {"clean", "degraded", "resyncing"});
	CHECK_TRUE(r.has_value());
	STRCMP_EQUAL("{md=\"md0\",raid_state=\"clean\"} 0\n"
	    "{md=\"md0\",raid_state=\"degraded\"} 1\n"
	    "{md=\"md0\",raid_state=\"resyncing\"} 0\n"
	    "{md=\"md1\",raid_state=\"clean\"} 1\n"
	    "{md=\"md1\",raid_state=\"degraded\"} 0\n"
	    "{md=\"md1\",raid_state=\"resyncing\"} 0\n", text(f).c_str());
}

TEST(ObservedHistogramsAndSummaries, StateSetRefusesAValueThatIsNoStateIndex)
{
	for (double bad : {3.0, -1.0, 1.5, std::nan("")}) {
		Family f;
		f.name = "raid_state";
		f.samples.push_back({"", {{"md", "md0"}}, 1, {}});
		f.samples.push_back({"", {{"md", "md1"}}, bad, {}});
		auto r = expandStateSet(f, {"clean", "degraded", "resyncing"});
		CHECK_FALSE(r.has_value());
		STRCMP_EQUAL(("value " + formatLe(bad) + " of {md=\"md1\"} is not the index of "
		    "a state (0 to 2)").c_str(), r.error().message.c_str());
		// The family is left as it was.
		STRCMP_EQUAL(("{md=\"md0\"} 1\n{md=\"md1\"} " + formatLe(bad) + "\n").c_str(),
		    text(f).c_str());
	}
}
