// SPDX-License-Identifier: ISC
// Text format 0.0.4 writing: values, escaping, headers and sample lines.
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "daemon/exposition.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme;
using namespace pme::daemon;

namespace {

std::string value(double v)
{
	std::string s;
	appendValue(s, v);
	return s;
}

// What Prometheus does with a value: strtod must give the same bits back.
void checkRoundTrip(double v)
{
	std::string s = value(v);
	double back = std::strtod(s.c_str(), nullptr);
	CHECK_TEXT(back == v, s.c_str());
	CHECK_EQUAL(std::signbit(v), std::signbit(back));
}

} // namespace

TEST_GROUP(ValueFormatting) {};

TEST(ValueFormatting, IntegersAreWrittenWithoutExponentOrFraction)
{
	STRCMP_EQUAL("0", value(0).c_str());
	STRCMP_EQUAL("42", value(42).c_str());
	STRCMP_EQUAL("-7", value(-7).c_str());
	STRCMP_EQUAL("1700000000", value(1700000000).c_str());
	STRCMP_EQUAL("-123456789012", value(-123456789012.0).c_str());
	STRCMP_EQUAL("9007199254740992", value(9007199254740992.0).c_str());
}

TEST(ValueFormatting, NegativeZeroKeepsItsSign)
{
	STRCMP_EQUAL("-0", value(-0.0).c_str());
	checkRoundTrip(-0.0);
}

TEST(ValueFormatting, ShortestExactForms)
{
	STRCMP_EQUAL("0.1", value(0.1).c_str());
	STRCMP_EQUAL("1e-09", value(1e-9).c_str());
	STRCMP_EQUAL("1e+21", value(1e21).c_str());
	STRCMP_EQUAL("0.3333333333333333", value(1.0 / 3).c_str());
	STRCMP_EQUAL("0.30000000000000004", value(0.1 + 0.2).c_str());
}

TEST(ValueFormatting, LargeIntegersBeyondDoublePrecisionRoundTrip)
{
	// Past 2^53 the shortest form is used, exponent and all.
	STRCMP_EQUAL("9007199254740994", value(9007199254740994.0).c_str());
	STRCMP_EQUAL("18446744073709551616", value(18446744073709551616.0).c_str());
	STRCMP_EQUAL("1.2345678901234568e+25", value(12345678901234567890123456.0).c_str());
	checkRoundTrip(9007199254740994.0);
	checkRoundTrip(18446744073709551616.0);
	checkRoundTrip(std::numeric_limits<double>::max());
	checkRoundTrip(std::numeric_limits<double>::denorm_min());
	checkRoundTrip(-std::numeric_limits<double>::min());
	checkRoundTrip(123456.789e-300);
}

TEST(ValueFormatting, SpecialValuesAsPrometheusSpellsThem)
{
	STRCMP_EQUAL("NaN", value(std::nan("")).c_str());
	STRCMP_EQUAL("NaN", value(-std::nan("")).c_str());
	STRCMP_EQUAL("+Inf", value(INFINITY).c_str());
	STRCMP_EQUAL("-Inf", value(-INFINITY).c_str());
}

TEST(ValueFormatting, AppendsToWhatIsThere)
{
	std::string s = "x ";
	appendValue(s, 2.5);
	STRCMP_EQUAL("x 2.5", s.c_str());
}

TEST_GROUP(Escaping) {};

TEST(Escaping, HelpEscapesBackslashAndNewlineOnly)
{
	std::string s;
	appendHelp(s, "a\\b\nc \"quoted\"");
	STRCMP_EQUAL("a\\\\b\\nc \"quoted\"", s.c_str());
}

TEST(Escaping, LabelValueEscapesBackslashQuoteAndNewline)
{
	std::string s;
	appendLabelValue(s, "C:\\dir \"x\"\nnext");
	STRCMP_EQUAL("C:\\\\dir \\\"x\\\"\\nnext", s.c_str());
}

TEST(Escaping, Utf8PassesThroughUnchanged)
{
	std::string s;
	appendLabelValue(s, "caf\xc3\xa9 \xe2\x82\xac");
	STRCMP_EQUAL("caf\xc3\xa9 \xe2\x82\xac", s.c_str());
}

TEST_GROUP(SampleLines) {};

TEST(SampleLines, NoLabelsNoBraces)
{
	std::string s;
	appendSample(s, "up", {}, 1);
	STRCMP_EQUAL("up 1\n", s.c_str());
}

TEST(SampleLines, OwnLabelsThenConstantLabels)
{
	std::string s;
	std::vector<common::Label> own{{"path", "/a\"b"}, {"code", "200"}};
	common::Pairs constant{{"role", "web"}};
	appendSample(s, "http_requests_total", own, constant, 12);
	STRCMP_EQUAL("http_requests_total{path=\"/a\\\"b\",code=\"200\",role=\"web\"} 12\n", s.c_str());
}

TEST(SampleLines, OnlyConstantLabels)
{
	std::string s;
	appendSample(s, "x", std::vector<common::Label>{}, common::Pairs{{"a", "1"}}, 0.5);
	STRCMP_EQUAL("x{a=\"1\"} 0.5\n", s.c_str());
}

TEST(SampleLines, InlineLabelsForSelfMetrics)
{
	std::string s;
	appendSample(s, "pme_source_up", {{"service", "nginx"}, {"group", "status"}}, 0);
	STRCMP_EQUAL("pme_source_up{service=\"nginx\",group=\"status\"} 0\n", s.c_str());
}

TEST(SampleLines, HeaderWithEscapedHelpAndType)
{
	std::string s;
	appendHeader(s, "disk_used_bytes", "Used\nbytes \\ total", common::MetricType::Gauge);
	STRCMP_EQUAL("# HELP disk_used_bytes Used\\nbytes \\\\ total\n"
	    "# TYPE disk_used_bytes gauge\n", s.c_str());
}

TEST(SampleLines, EmptyHelpBecomesTheName)
{
	std::string s;
	appendHeader(s, "jobs_total", "", common::MetricType::Counter);
	STRCMP_EQUAL("# HELP jobs_total jobs_total\n# TYPE jobs_total counter\n", s.c_str());
}

TEST(SampleLines, TypesOfFormat004)
{
	using common::MetricType;
	STRCMP_EQUAL("counter", typeName004(MetricType::Counter));
	STRCMP_EQUAL("gauge", typeName004(MetricType::Gauge));
	STRCMP_EQUAL("histogram", typeName004(MetricType::Histogram));
	STRCMP_EQUAL("summary", typeName004(MetricType::Summary));
	STRCMP_EQUAL("untyped", typeName004(MetricType::Untyped));
	// 0.0.4 has no info or stateset: both are gauges there.
	STRCMP_EQUAL("gauge", typeName004(MetricType::Info));
	STRCMP_EQUAL("gauge", typeName004(MetricType::StateSet));
}

TEST_GROUP(Names) {};

TEST(Names, MetricNames)
{
	CHECK_TRUE(validMetricName("node_cpu_seconds_total"));
	CHECK_TRUE(validMetricName("job:rate5m"));
	CHECK_TRUE(validMetricName("_x"));
	CHECK_FALSE(validMetricName(""));
	CHECK_FALSE(validMetricName("1abc"));
	CHECK_FALSE(validMetricName("a-b"));
	CHECK_FALSE(validMetricName("a b"));
}

TEST(Names, LabelNames)
{
	CHECK_TRUE(validLabelName("le"));
	CHECK_TRUE(validLabelName("_a1"));
	CHECK_FALSE(validLabelName("__name__"));
	CHECK_FALSE(validLabelName("a:b"));
	CHECK_FALSE(validLabelName("9a"));
	CHECK_FALSE(validLabelName(""));
}

TEST(Names, Utf8Validation)
{
	CHECK_TRUE(validUtf8("plain"));
	CHECK_TRUE(validUtf8("caf\xc3\xa9 \xf0\x9f\x98\x80"));
	CHECK_FALSE(validUtf8("\xc3"));              // truncated
	CHECK_FALSE(validUtf8("\xc0\xaf"));          // overlong '/'
	CHECK_FALSE(validUtf8("\xed\xa0\x80"));      // surrogate
	CHECK_FALSE(validUtf8("\xf4\x90\x80\x80"));  // beyond U+10FFFF
	CHECK_FALSE(validUtf8("\xff"));
}
