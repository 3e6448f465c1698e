// SPDX-License-Identifier: ISC
// Writing the exposition: values, escaping, headers and sample lines of
// 0.0.4 and OpenMetrics, the negotiation between them, and gzip in parts.
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "daemon/exposition.hpp"
#include "tests/unit/daemon/gunzip.hpp"

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

TEST_GROUP(Negotiation) {};

// What Prometheus 2.42 sends by default (scrape_config without
// scrape_protocols, native histograms off).
static const char *const prometheus242 = "application/openmetrics-text;version=1.0.0,"
    "application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

TEST(Negotiation, PrometheusGetsOpenMetrics)
{
	CHECK(negotiateFormat(prometheus242) == Format::OpenMetrics);
	// Prometheus 3, and 2.x with native histograms (protobuf first, which
	// pmed does not serve).
	CHECK(negotiateFormat("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;"
	    "q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;"
	    "escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2") ==
	    Format::OpenMetrics);
	CHECK(negotiateFormat("application/vnd.google.protobuf;proto=io.prometheus.client."
	    "MetricFamily;encoding=delimited;q=0.8,application/openmetrics-text;version=1.0.0;"
	    "q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1") == Format::OpenMetrics);
}

TEST(Negotiation, BrowsersCurlAndNothingGetText)
{
	CHECK(negotiateFormat("") == Format::Text);
	CHECK(negotiateFormat("*/*") == Format::Text);          // curl
	CHECK(negotiateFormat("text/plain") == Format::Text);
	CHECK(negotiateFormat("text/plain;version=0.0.4") == Format::Text);
	CHECK(negotiateFormat("text/html,application/xhtml+xml,application/xml;q=0.9,"
	    "image/avif,image/webp,*/*;q=0.8") == Format::Text);
}

TEST(Negotiation, OpenMetricsVersionsPmedServes)
{
	CHECK(negotiateFormat("application/openmetrics-text") == Format::OpenMetrics);
	CHECK(negotiateFormat("application/openmetrics-text; version=0.0.1") == Format::OpenMetrics);
	CHECK(negotiateFormat("application/openmetrics-text;version=\"1.0.0\"") ==
	    Format::OpenMetrics);
	CHECK(negotiateFormat("Application/OpenMetrics-Text;Version=1.0.0") == Format::OpenMetrics);
	// A version pmed does not write is not OpenMetrics 1.0.
	CHECK(negotiateFormat("application/openmetrics-text;version=2.0.0") == Format::Text);
	CHECK(negotiateFormat("application/*") == Format::Text);
}

TEST(Negotiation, TheHighestQWinsAndTheFirstOfATie)
{
	CHECK(negotiateFormat("text/plain;q=0.5,application/openmetrics-text;q=0.6") ==
	    Format::OpenMetrics);
	CHECK(negotiateFormat("text/plain;q=0.7,application/openmetrics-text;q=0.6") ==
	    Format::Text);
	CHECK(negotiateFormat("text/plain,application/openmetrics-text") == Format::Text);
	CHECK(negotiateFormat("application/openmetrics-text,text/plain") == Format::OpenMetrics);
	// */* stands for the text format too.
	CHECK(negotiateFormat("application/openmetrics-text;q=0.5,*/*") == Format::Text);
	CHECK(negotiateFormat("*/*;q=0.1,application/openmetrics-text") == Format::OpenMetrics);
	CHECK(negotiateFormat("text/*;q=0.9,application/openmetrics-text;q=0.8") == Format::Text);
	// A text version pmed does not write does not compete.
	CHECK(negotiateFormat("text/plain;version=1.0.0,application/openmetrics-text;q=0.2") ==
	    Format::OpenMetrics);
}

TEST(Negotiation, QZeroAndMalformedRangesAreNotChoices)
{
	CHECK(negotiateFormat("application/openmetrics-text;q=0") == Format::Text);
	CHECK(negotiateFormat("application/openmetrics-text;q=0.000,*/*;q=0.1") == Format::Text);
	CHECK(negotiateFormat("application/openmetrics-text;q=2") == Format::Text);
	CHECK(negotiateFormat("application/openmetrics-text;q=x") == Format::Text);
	CHECK(negotiateFormat("application/openmetrics-text;version") == Format::Text);
	CHECK(negotiateFormat("application/openmetrics-text;version=\"1.0.0") == Format::Text);
	CHECK(negotiateFormat(",, application/openmetrics-text ;  q=0.3 ,") == Format::OpenMetrics);
	// A quoted comma does not split the list.
	CHECK(negotiateFormat("text/plain;x=\"a,application/openmetrics-text\"") == Format::Text);
}

TEST(Negotiation, Gzip)
{
	CHECK_TRUE(acceptsGzip("gzip"));
	CHECK_TRUE(acceptsGzip("gzip, deflate, br"));          // curl --compressed
	CHECK_TRUE(acceptsGzip("deflate, GZIP;q=0.5"));
	CHECK_TRUE(acceptsGzip("x-gzip"));
	CHECK_TRUE(acceptsGzip("*"));
	CHECK_TRUE(acceptsGzip("identity, *;q=0.1"));
	CHECK_FALSE(acceptsGzip(""));
	CHECK_FALSE(acceptsGzip("identity"));                  // Python's http.client
	CHECK_FALSE(acceptsGzip("br, deflate"));
	CHECK_FALSE(acceptsGzip("gzip;q=0"));
	CHECK_FALSE(acceptsGzip("*;q=0"));
	CHECK_FALSE(acceptsGzip("gzip;q=0, *"));               // refused by name
	CHECK_FALSE(acceptsGzip("gzip;q=bad"));
}

TEST(Negotiation, ContentTypesAndNames)
{
	STRCMP_EQUAL("text/plain; version=0.0.4; charset=utf-8", contentType(Format::Text));
	STRCMP_EQUAL("application/openmetrics-text; version=1.0.0; charset=utf-8",
	    contentType(Format::OpenMetrics));
	STRCMP_EQUAL("text", formatName(Format::Text));
	STRCMP_EQUAL("openmetrics", formatName(Format::OpenMetrics));
}

TEST_GROUP(OpenMetricsWriting) {};

namespace {

std::string canonical(double v)
{
	std::string s;
	appendCanonical(s, v);
	return s;
}

std::string seconds(int64_t ms)
{
	std::string s;
	appendSeconds(s, ms);
	return s;
}

std::string edited(std::string_view labels, std::string_view name, LabelEdit edit)
{
	std::string s;
	appendLabelsEdited(s, labels, name, edit);
	return s;
}

} // namespace

TEST(OpenMetricsWriting, CanonicalNumbersAsTheSpecificationLists)
{
	// OpenMetrics 1.0, "Considerations: Canonical Numbers".
	const char *const upToTen[] = {"0.0", "0.001", "0.002", "0.01", "0.1", "0.9", "0.95",
	    "0.99", "0.999", "1.0", "1.7", "10.0"};
	const double upToTenValues[] = {0, 0.001, 0.002, 0.01, 0.1, 0.9, 0.95, 0.99, 0.999, 1, 1.7,
	    10};
	for (size_t i = 0; i < std::size(upToTen); i++)
		STRCMP_EQUAL(upToTen[i], canonical(upToTenValues[i]).c_str());
	const char *const powers[] = {"1e-10", "1e-09", "1e-05", "0.0001", "0.1", "1.0", "100000.0",
	    "1e+06", "1e+10"};
	const double powerValues[] = {1e-10, 1e-9, 1e-5, 1e-4, 0.1, 1, 1e5, 1e6, 1e10};
	for (size_t i = 0; i < std::size(powers); i++)
		STRCMP_EQUAL(powers[i], canonical(powerValues[i]).c_str());
	STRCMP_EQUAL("+Inf", canonical(INFINITY).c_str());
	STRCMP_EQUAL("-Inf", canonical(-INFINITY).c_str());
	STRCMP_EQUAL("NaN", canonical(NAN).c_str());
	STRCMP_EQUAL("-2.5", canonical(-2.5).c_str());
	STRCMP_EQUAL("123456.0", canonical(123456).c_str());
	STRCMP_EQUAL("1.234567e+06", canonical(1234567).c_str());
}

TEST(OpenMetricsWriting, TimestampsInSeconds)
{
	STRCMP_EQUAL("1700000000.123", seconds(1700000000123).c_str());
	STRCMP_EQUAL("1700000000.12", seconds(1700000000120).c_str());
	STRCMP_EQUAL("1700000000", seconds(1700000000000).c_str());
	STRCMP_EQUAL("0.005", seconds(5).c_str());
	STRCMP_EQUAL("0", seconds(0).c_str());
	STRCMP_EQUAL("-1.5", seconds(-1500).c_str());
	STRCMP_EQUAL("-9223372036854775.808", seconds(std::numeric_limits<int64_t>::min()).c_str());
}

TEST(OpenMetricsWriting, HelpEscapesQuotesToo)
{
	std::string s;
	appendHelpOm(s, "a\\b\nc \"quoted\"");
	STRCMP_EQUAL("a\\\\b\\nc \\\"quoted\\\"", s.c_str());
}

TEST(OpenMetricsWriting, FamilyNamesWithoutTheSampleSuffix)
{
	using common::MetricType;
	STRCMP_EQUAL("http_requests", std::string(omFamilyName("http_requests_total",
	    MetricType::Counter)).c_str());
	STRCMP_EQUAL("http_requests", std::string(omFamilyName("http_requests",
	    MetricType::Counter)).c_str());
	STRCMP_EQUAL("build", std::string(omFamilyName("build_info", MetricType::Info)).c_str());
	STRCMP_EQUAL("version", std::string(omFamilyName("version", MetricType::Info)).c_str());
	STRCMP_EQUAL("x_total", std::string(omFamilyName("x_total", MetricType::Gauge)).c_str());
	STRCMP_EQUAL("_total", std::string(omFamilyName("_total", MetricType::Counter)).c_str());
}

TEST(OpenMetricsWriting, NamesAFamilyTakes)
{
	using common::MetricType;
	auto names = [](std::string_view name, MetricType type) {
		std::string all;
		for (const auto &n : omSampleNames(name, type))
			all += n + " ";
		return all;
	};
	STRCMP_EQUAL("x x_total x_created ", names("x", MetricType::Counter).c_str());
	STRCMP_EQUAL("x x_bucket x_count x_sum x_created ",
	    names("x", MetricType::Histogram).c_str());
	STRCMP_EQUAL("x x_count x_sum x_created ", names("x", MetricType::Summary).c_str());
	STRCMP_EQUAL("x x_info ", names("x", MetricType::Info).c_str());
	STRCMP_EQUAL("x ", names("x", MetricType::Gauge).c_str());
	STRCMP_EQUAL("x ", names("x", MetricType::StateSet).c_str());
	STRCMP_EQUAL("x ", names("x", MetricType::Untyped).c_str());
}

TEST(OpenMetricsWriting, TypeWords)
{
	using common::MetricType;
	STRCMP_EQUAL("counter", typeNameOm(MetricType::Counter));
	STRCMP_EQUAL("gauge", typeNameOm(MetricType::Gauge));
	STRCMP_EQUAL("histogram", typeNameOm(MetricType::Histogram));
	STRCMP_EQUAL("summary", typeNameOm(MetricType::Summary));
	STRCMP_EQUAL("info", typeNameOm(MetricType::Info));
	STRCMP_EQUAL("stateset", typeNameOm(MetricType::StateSet));
	STRCMP_EQUAL("unknown", typeNameOm(MetricType::Untyped));
}

TEST(OpenMetricsWriting, HeaderTypeUnitHelpAndAUnitOnlyWhereItFits)
{
	using common::MetricType;
	std::string s;
	appendHeaderOm(s, "rpc_seconds", "Time \"spent\".", MetricType::Histogram, "seconds");
	STRCMP_EQUAL("# TYPE rpc_seconds histogram\n# UNIT rpc_seconds seconds\n"
	    "# HELP rpc_seconds Time \\\"spent\\\".\n", s.c_str());
	s.clear();
	// Not a suffix of the name: the line would be invalid, so it is left out.
	appendHeaderOm(s, "rpc_latency", "", MetricType::Gauge, "seconds");
	STRCMP_EQUAL("# TYPE rpc_latency gauge\n# HELP rpc_latency rpc_latency\n", s.c_str());
	CHECK_FALSE(omUnitFits("xseconds", MetricType::Gauge, "seconds"));
	CHECK_FALSE(omUnitFits("seconds", MetricType::Gauge, "seconds"));
	CHECK_FALSE(omUnitFits("a_seconds", MetricType::Info, "seconds"));
	CHECK_FALSE(omUnitFits("a_seconds", MetricType::StateSet, "seconds"));
	CHECK_FALSE(omUnitFits("a_b c", MetricType::Gauge, "b c"));
	CHECK_FALSE(omUnitFits("a_seconds", MetricType::Gauge, ""));
	CHECK_TRUE(omUnitFits("a_seconds", MetricType::Counter, "seconds"));
	// In either format: counters lose _total in OpenMetrics' metadata.
	s.clear();
	appendHeader(s, "jobs_total", "Jobs.", MetricType::Counter, Format::OpenMetrics);
	STRCMP_EQUAL("# TYPE jobs counter\n# HELP jobs Jobs.\n", s.c_str());
	s.clear();
	appendHeader(s, "jobs_total", "Jobs.", MetricType::Counter, Format::Text);
	STRCMP_EQUAL("# HELP jobs_total Jobs.\n# TYPE jobs_total counter\n", s.c_str());
}

TEST(OpenMetricsWriting, LabelsEditedOneByOne)
{
	STRCMP_EQUAL("{a=\"x\",le=\"1.0\"}", edited("{a=\"x\",le=\"1\"}", "le",
	    LabelEdit::Canonical).c_str());
	STRCMP_EQUAL("{le=\"+Inf\",a=\"x\"}", edited("{le=\"+Inf\",a=\"x\"}", "le",
	    LabelEdit::Canonical).c_str());
	STRCMP_EQUAL("{le=\"1e-05\"}", edited("{le=\"0.00001\"}", "le",
	    LabelEdit::Canonical).c_str());
	// Not a number: left as it is.
	STRCMP_EQUAL("{le=\"fast\"}", edited("{le=\"fast\"}", "le", LabelEdit::Canonical).c_str());
	// Values holding what separates labels do not confuse the editor.
	STRCMP_EQUAL("{a=\"q\\\",le=\\\"2\",b=\"}\"}", edited("{a=\"q\\\",le=\\\"2\",le=\"3\","
	    "b=\"}\"}", "le", LabelEdit::Drop).c_str());
	STRCMP_EQUAL("{a=\"1\"}", edited("{a=\"1\",quantile=\"0.5\"}", "quantile",
	    LabelEdit::Drop).c_str());
	STRCMP_EQUAL("", edited("{le=\"1\"}", "le", LabelEdit::Drop).c_str());
	STRCMP_EQUAL("", edited("", "le", LabelEdit::Drop).c_str());
	// A label whose name only ends like it is another label.
	STRCMP_EQUAL("{ale=\"1\"}", edited("{ale=\"1\"}", "le", LabelEdit::Drop).c_str());
}

TEST(OpenMetricsWriting, SampleLinesFromTheirTextFormLines)
{
	std::string s;
	appendOmSample(s, "jobs_total{a=\"x y\"} 7\n", 10, "jobs_total", false);
	appendOmSample(s, "jobs{a=\"1 2\"} 7 1700000000123\n", 4, "jobs_total", true);
	appendOmSample(s, "lat_bucket{le=\"1\"} 3\n", 10, "lat_bucket", false, "le");
	appendOmSample(s, "up 1 -5\n", 2, "up", true);
	STRCMP_EQUAL("jobs_total{a=\"x y\"} 7\n"
	    "jobs_total{a=\"1 2\"} 7 1700000000.123\n"
	    "lat_bucket{le=\"1.0\"} 3\n"
	    "up 1 -0.005\n", s.c_str());
	STRCMP_EQUAL("{a=\"1 2\"}", std::string(sampleLabels("jobs{a=\"1 2\"} 7 17\n", 4,
	    true)).c_str());
	STRCMP_EQUAL("", std::string(sampleLabels("up NaN\n", 2, false)).c_str());
}

TEST(OpenMetricsWriting, ParsesNumbersAsPrometheusWritesThem)
{
	double v = 0;
	CHECK_TRUE(parseNumber("+Inf", &v));
	CHECK(std::isinf(v) && v > 0);
	CHECK_TRUE(parseNumber("-Inf", &v));
	CHECK(std::isinf(v) && v < 0);
	CHECK_TRUE(parseNumber("NaN", &v));
	CHECK(std::isnan(v));
	CHECK_TRUE(parseNumber("0.25", &v));
	CHECK_EQUAL(0.25, v);
	CHECK_TRUE(parseNumber("1e3", &v));
	CHECK_EQUAL(1000.0, v);
	CHECK_FALSE(parseNumber("", &v));
	CHECK_FALSE(parseNumber("+", &v));
	CHECK_FALSE(parseNumber("+-1", &v));
	CHECK_FALSE(parseNumber("1x", &v));
	CHECK_FALSE(parseNumber(" 1", &v));
}

TEST_GROUP(Gzip) {};

namespace {

using pme::test::gunzip;

std::string repetitive(size_t lines)
{
	std::string s;
	for (size_t i = 0; i < lines; i++)
		s += "http_requests_total{path=\"/api/" + std::to_string(i % 97) + "\",code=\"" +
		    std::to_string(200 + i % 5) + "\"} " + std::to_string(i * 7919 % 100003) + "\n";
	return s;
}

} // namespace

// A gzip member as pmed serves one: the header, each piece deflated on
// its own, and a tail of stored blocks and the trailer.
std::string member(const std::vector<std::string> &pieces, const std::string &rest)
{
	std::string out(gzipHeader());
	uint32_t crc = 0;
	uint64_t size = 0;
	for (const auto &p : pieces) {
		Deflated d = deflatePiece(p);
		out += d.bytes;
		crc = crc32Combine(crc, d.crc, p.size());
		size += p.size();
	}
	return out + gzipTail(crc, size, rest);
}

TEST(Gzip, PiecesAndTailInflateToExactlyTheText)
{
	std::string data = repetitive(20000), rest = "pme_scrapes_total 1\n# EOF\n";
	std::string head(gzipHeader());
	BYTES_EQUAL(0x1f, head[0]);
	BYTES_EQUAL(0x8b, head[1]);
	BYTES_EQUAL(8, head[2]);
	Deflated d = deflatePiece(data);
	CHECK(d.bytes.size() < data.size() / 5);
	bool ok = false;
	std::string back = gunzip(head + d.bytes + gzipTail(d.crc, data.size(), rest), &ok);
	CHECK_TRUE(ok);
	CHECK(back == data + rest);
	// The pieces are reused with another tail, as scrapes do.
	back = gunzip(head + d.bytes + gzipTail(d.crc, data.size(), "pme_scrapes_total 2\n"), &ok);
	CHECK_TRUE(ok);
	CHECK(back == data + "pme_scrapes_total 2\n");
	// The pieces alone are not a whole member: nothing in them is final.
	gunzip(head + d.bytes, &ok);
	CHECK_FALSE(ok);
	// Several pieces, each deflated alone, make one stream.
	std::string a = data.substr(0, 7777), b = data.substr(7777, 20000), c = data.substr(27777);
	back = gunzip(member({a, b, c}, rest), &ok);
	CHECK_TRUE(ok);
	CHECK(back == data + rest);
}

TEST(Gzip, TheTailIsStoredBlocksSplitAtTheirLimit)
{
	// Not compressed: each block is its header byte, LEN and NLEN, then
	// the bytes as they are; a rest longer than 65535 takes two blocks.
	std::string rest(70000, 'x');
	std::string tail = gzipTail(0, 0, rest);
	UNSIGNED_LONGS_EQUAL(rest.size() + 2 * 5 + 8, tail.size());
	BYTES_EQUAL(0, tail[0]);    // not final
	BYTES_EQUAL(0xff, tail[1]); // 65535
	BYTES_EQUAL(0xff, tail[2]);
	BYTES_EQUAL(0, tail[3]);
	BYTES_EQUAL(0, tail[4]);
	BYTES_EQUAL(1, tail[5 + 65535]); // final
	bool ok = false;
	CHECK(gunzip(std::string(gzipHeader()) + tail, &ok) == rest);
	CHECK_TRUE(ok);
	// Exactly 65535 bytes: one block.
	UNSIGNED_LONGS_EQUAL(65535 + 5 + 8, gzipTail(0, 0, std::string(65535, 'y')).size());
}

TEST(Gzip, ATailForOtherPiecesFailsTheCheck)
{
	Deflated a = deflatePiece("aaaa\n"), b = deflatePiece("bbbb\n");
	bool ok = true;
	gunzip(std::string(gzipHeader()) + a.bytes + gzipTail(b.crc, 5, "x\n"), &ok);
	CHECK_FALSE(ok);
}

TEST(Gzip, EmptyParts)
{
	bool ok = false;
	CHECK(gunzip(member({}, "tail\n"), &ok) == "tail\n");
	CHECK_TRUE(ok);
	CHECK(gunzip(member({"data\n"}, ""), &ok) == "data\n");
	CHECK_TRUE(ok);
	CHECK(gunzip(member({}, ""), &ok).empty());
	CHECK_TRUE(ok);
	CHECK(gunzip(member({"", "data\n", ""}, ""), &ok) == "data\n");
	CHECK_TRUE(ok);
}

TEST(Gzip, BinaryAndIncompressibleData)
{
	std::string data;
	uint32_t x = 2463534242u;
	for (int i = 0; i < 300000; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		data += static_cast<char>(x & 0xff);
	}
	bool ok = false;
	std::string rest(1, '\0');
	CHECK(gunzip(member({data.substr(0, 100000), data.substr(100000)}, rest), &ok) ==
	    data + rest);
	CHECK_TRUE(ok);
}
