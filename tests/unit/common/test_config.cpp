// SPDX-License-Identifier: ISC
// Durations, interval rounding, enum names and "did you mean" of common/config.
#include <string>
#include <vector>

#include "common/config.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme::common;
using namespace std::chrono_literals;

namespace {

long long ms(const std::string &text)
{
	auto d = parseDuration(text);
	if (!d)
		FAIL(("unexpected error for '" + text + "': " + d.error().message).c_str());
	return d->count();
}

// The error message for text, which must not parse.
std::string bad(const std::string &text)
{
	auto d = parseDuration(text);
	if (d)
		FAIL(("'" + text + "' parsed as " + std::to_string(d->count()) + "ms").c_str());
	return d.error().message;
}

} // namespace

TEST_GROUP(Durations) {};

TEST(Durations, SingleUnits)
{
	LONGS_EQUAL(500, ms("500ms"));
	LONGS_EQUAL(5000, ms("5s"));
	LONGS_EQUAL(120000, ms("2m"));
	LONGS_EQUAL(3600000, ms("1h"));
	LONGS_EQUAL(86400000, ms("1d"));
	LONGS_EQUAL(0, ms("0s"));
}

TEST(Durations, Compound)
{
	LONGS_EQUAL(90000, ms("1m30s"));
	LONGS_EQUAL(5400000, ms("1h30m"));
	LONGS_EQUAL(93784005, ms("1d2h3m4s5ms"));
	LONGS_EQUAL(1500, ms("1s500ms"));
}

TEST(Durations, PlainNumbersAreSeconds)
{
	LONGS_EQUAL(30000, ms("30"));
	LONGS_EQUAL(1500, ms("1.5"));
	LONGS_EQUAL(1500, ms("1.5s"));
	LONGS_EQUAL(90000, ms("1.5m"));
	LONGS_EQUAL(250, ms("0.25"));
	LONGS_EQUAL(1000, ms("1.000000s"));
}

TEST(Durations, RejectsEmpty)
{
	STRCMP_CONTAINS("empty duration", bad("").c_str());
}

TEST(Durations, RejectsNegative)
{
	STRCMP_EQUAL("invalid duration '-5s': a duration cannot be negative", bad("-5s").c_str());
}

TEST(Durations, RejectsUnknownUnit)
{
	STRCMP_EQUAL("invalid duration '5x': unknown unit 'x' (use ms, s, m, h or d)",
	    bad("5x").c_str());
	STRCMP_CONTAINS("unknown unit 'sec'", bad("5sec").c_str());
	STRCMP_CONTAINS("unknown unit 'S'", bad("5S").c_str());
}

TEST(Durations, RejectsGarbage)
{
	STRCMP_CONTAINS("invalid duration 'abc': expected a number at 'abc'", bad("abc").c_str());
	STRCMP_CONTAINS("invalid duration '5 s'", bad("5 s").c_str());
	STRCMP_CONTAINS("missing unit after '30'", bad("1m30").c_str());
	STRCMP_CONTAINS("'+5s'", bad("+5s").c_str());
	STRCMP_CONTAINS("'.'", bad(".").c_str());
	STRCMP_CONTAINS("largest first", bad("30s1m").c_str());
	STRCMP_CONTAINS("largest first", bad("1m1m").c_str());
}

TEST(Durations, RejectsFractionsOfAMillisecond)
{
	STRCMP_CONTAINS("not a whole number of milliseconds", bad("1.5ms").c_str());
	STRCMP_CONTAINS("not a whole number of milliseconds", bad("0.0001").c_str());
}

TEST(Durations, RejectsOverflow)
{
	STRCMP_CONTAINS("invalid duration '99999999999999999999999s': too long",
	    bad("99999999999999999999999s").c_str());
	STRCMP_CONTAINS("too long", bad("36501d").c_str());
	STRCMP_CONTAINS("too long", bad("36500d1ms").c_str());
	LONGS_EQUAL(36500LL * 86400000LL, ms("36500d"));
}

TEST(Durations, FormatShortestExact)
{
	STRCMP_EQUAL("5s", formatDuration(5000ms).c_str());
	STRCMP_EQUAL("1500ms", formatDuration(1500ms).c_str());
	STRCMP_EQUAL("65s", formatDuration(65s).c_str());
	STRCMP_EQUAL("2m", formatDuration(2min).c_str());
	STRCMP_EQUAL("1h", formatDuration(1h).c_str());
	STRCMP_EQUAL("1d", formatDuration(24h).c_str());
	STRCMP_EQUAL("0s", formatDuration(0ms).c_str());
	STRCMP_EQUAL("1d1ms", formatDuration(Millis{86400001}).c_str());
}

TEST(Durations, FormatReadsBack)
{
	for (long long v : {1LL, 999LL, 1000LL, 61001LL, 3599999LL, 86400001LL, 90061001LL})
		LONGS_EQUAL(v, ms(formatDuration(Millis{v})));
}

TEST_GROUP(Intervals) {};

TEST(Intervals, RoundedUpToAMultipleOfTheGlobal)
{
	LONGS_EQUAL(65000, roundInterval(65s, 5s).count());
	LONGS_EQUAL(65000, roundInterval(63s, 5s).count());
	LONGS_EQUAL(5000, roundInterval(5s, 5s).count());
	LONGS_EQUAL(5000, roundInterval(1s, 5s).count());
	LONGS_EQUAL(30000, roundInterval(30s, 5s).count());
	LONGS_EQUAL(10000, roundInterval(5001ms, 5s).count());
	LONGS_EQUAL(3000, roundInterval(2500ms, 1500ms).count());
}

TEST_GROUP(Names) {};

TEST(Names, EnumsHaveTheirConfigSpelling)
{
	STRCMP_EQUAL("command", toString(SourceType::Command));
	STRCMP_EQUAL("http", toString(SourceType::Http));
	STRCMP_EQUAL("file", toString(SourceType::File));
	STRCMP_EQUAL("static", toString(SourceType::Static));
	STRCMP_EQUAL("text", toString(ContentType::Text));
	STRCMP_EQUAL("prometheus", toString(ContentType::Prometheus));
	STRCMP_EQUAL("counter", toString(MetricType::Counter));
	STRCMP_EQUAL("gauge", toString(MetricType::Gauge));
	STRCMP_EQUAL("info", toString(MetricType::Info));
	STRCMP_EQUAL("stateset", toString(MetricType::StateSet));
	STRCMP_EQUAL("untyped", toString(MetricType::Untyped));
}

TEST(Names, EditDistance)
{
	LONGS_EQUAL(0, editDistance("interval", "interval"));
	LONGS_EQUAL(1, editDistance("intervall", "interval"));
	LONGS_EQUAL(2, editDistance("intreval", "interval")); // a swap is two edits
	LONGS_EQUAL(3, editDistance("kitten", "sitting"));
	LONGS_EQUAL(5, editDistance("", "hello"));
	LONGS_EQUAL(5, editDistance("hello", ""));
}

TEST(Names, ClosestMatch)
{
	std::vector<std::string> keys = {"source_type", "source", "interval", "timeout", "env"};
	STRCMP_EQUAL("interval", closestMatch("intervall", keys).c_str());
	STRCMP_EQUAL("interval", closestMatch("intreval", keys).c_str());
	STRCMP_EQUAL("source", closestMatch("sourc", keys).c_str());
	STRCMP_EQUAL("", closestMatch("frequency", keys).c_str());
	// Short words: one edit at most.
	STRCMP_EQUAL("env", closestMatch("enf", keys).c_str());
	STRCMP_EQUAL("", closestMatch("ab", keys).c_str());
	// Ties go to the first candidate.
	STRCMP_EQUAL("abcd", closestMatch("abcx", {"abcd", "abce"}).c_str());
	STRCMP_EQUAL("", closestMatch("x", {}).c_str());
}
