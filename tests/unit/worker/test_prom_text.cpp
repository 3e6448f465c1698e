// SPDX-License-Identifier: ISC
// Content type prometheus: the exposition parser, 0.0.4 and OpenMetrics, against Prometheus 2.42.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "worker/prom_text.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme;
using common::Family;
using common::MetricType;
using common::Sample;
using worker::parsePromFloat;
using worker::parsePromText;
using worker::PromFormat;

namespace {

std::vector<Family> parse(std::string_view text, const worker::PromParseLimits &limits = {})
{
	auto r = parsePromText(text, limits);
	if (!r)
		FAIL(("refused: " + r.error().message).c_str());
	return *r;
}

// The error, which must start with "line L, column C: ".
std::string refuse(std::string_view text, const worker::PromParseLimits &limits = {})
{
	auto r = parsePromText(text, limits);
	if (r)
		FAIL(("accepted: " + std::string(text)).c_str());
	return r.error().message;
}

// Refused at that position with a message containing what.
void refusedAt(std::string_view text, const char *where, const char *what)
{
	std::string e = refuse(text);
	std::string prefix = std::string(where) + ": ";
	if (e.compare(0, prefix.size(), prefix) != 0 || e.find(what) == std::string::npos)
		FAIL(("expected \"" + prefix + "...'" + what + "'...\", got \"" + e + "\"")
		    .c_str());
}

const Family &family(const std::vector<Family> &fs, const std::string &name)
{
	for (const auto &f : fs)
		if (f.name == name)
			return f;
	FAIL(("no family " + name).c_str());
	return fs.front();
}

bool hasFamily(const std::vector<Family> &fs, const std::string &name)
{
	for (const auto &f : fs)
		if (f.name == name)
			return true;
	return false;
}

std::string label(const Sample &s, const std::string &name)
{
	for (const auto &l : s.labels)
		if (l.name == name)
			return l.value;
	FAIL(("no label " + name).c_str());
	return "";
}

double value(std::string_view text)
{
	auto v = parsePromFloat(text);
	if (!v)
		FAIL(("not a number: " + std::string(text)).c_str());
	return *v;
}

std::string fixture(const std::string &name)
{
	const char *root = std::getenv("PME_SOURCE_ROOT");
	std::string path = std::string(root ? root : ".") + "/tests/data/prometheus/" + name;
	std::ifstream in(path, std::ios::binary);
	if (!in)
		FAIL(("cannot open fixture " + path).c_str());
	std::stringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

} // namespace

TEST_GROUP(PromText) {};

// ---- formats ----

TEST(PromText, OpenMetricsIsRecognisedByItsFinalEof)
{
	CHECK(worker::detectPromFormat("x 1\n# EOF\n") == PromFormat::OpenMetrics);
	CHECK(worker::detectPromFormat("x 1\n# EOF") == PromFormat::OpenMetrics);
	CHECK(worker::detectPromFormat("# EOF\n") == PromFormat::OpenMetrics);
	// The last non-empty line decides: the empty one after it is then an
	// error of OpenMetrics, as Prometheus reports it.
	CHECK(worker::detectPromFormat("x 1\n# EOF\n\n") == PromFormat::OpenMetrics);
	CHECK(worker::detectPromFormat("x 1\n# EOF \n") == PromFormat::Text);
	CHECK(worker::detectPromFormat("# EOF\nx 1\n") == PromFormat::Text);
	CHECK(worker::detectPromFormat("") == PromFormat::Text);
	CHECK(worker::detectPromFormat("x 1\n") == PromFormat::Text);
}

TEST(PromText, EmptyTextsAndCommentsHaveNoFamilies)
{
	LONGS_EQUAL(0, parse("").size());
	LONGS_EQUAL(0, parse("\n\n  \n\t\n").size());
	LONGS_EQUAL(0, parse("# just a comment\n#\n  # indented\n").size());
	LONGS_EQUAL(0, parse("# EOF\n").size());
	// HELP and TYPE without samples export nothing.
	LONGS_EQUAL(0, parse("# HELP x X.\n# TYPE x gauge\n").size());
}

TEST(PromText, NodeExporterExposition)
{
	auto fs = parse(fixture("node_exporter.prom"));
	LONGS_EQUAL(34, fs.size());
	size_t samples = 0;
	for (const auto &f : fs)
		samples += f.samples.size();
	LONGS_EQUAL(98, samples);
	STRCMP_EQUAL("go_gc_duration_seconds", fs[0].name.c_str());
	STRCMP_EQUAL("prometheus_http_response_size_bytes", fs.back().name.c_str());

	const Family &gc = family(fs, "go_gc_duration_seconds");
	CHECK(gc.type == MetricType::Summary);
	STRCMP_EQUAL("A summary of the pause duration of garbage collection cycles.",
	    gc.help.c_str());
	LONGS_EQUAL(7, gc.samples.size());
	STRCMP_EQUAL("", gc.samples[0].suffix.c_str());
	STRCMP_EQUAL("0.25", label(gc.samples[1], "quantile").c_str());
	STRCMP_EQUAL("_sum", gc.samples[5].suffix.c_str());
	STRCMP_EQUAL("_count", gc.samples[6].suffix.c_str());

	const Family &h = family(fs, "prometheus_http_request_duration_seconds");
	CHECK(h.type == MetricType::Histogram);
	LONGS_EQUAL(12, h.samples.size());
	for (size_t i = 0; i < 10; i++)
		STRCMP_EQUAL("_bucket", h.samples[i].suffix.c_str());
	STRCMP_EQUAL("1", label(h.samples[3], "le").c_str());
	STRCMP_EQUAL("+Inf", label(h.samples[9], "le").c_str());
	STRCMP_EQUAL("/metrics", label(h.samples[9], "handler").c_str());
	STRCMP_EQUAL("_sum", h.samples[10].suffix.c_str());
	DOUBLES_EQUAL(0.008942561, h.samples[10].value, 0);
	STRCMP_EQUAL("_count", h.samples[11].suffix.c_str());
	DOUBLES_EQUAL(4, h.samples[11].value, 0);

	const Family &cpu = family(fs, "node_cpu_seconds_total");
	CHECK(cpu.type == MetricType::Counter);
	LONGS_EQUAL(16, cpu.samples.size());
	const Family &load = family(fs, "node_load1");
	CHECK(load.type == MetricType::Gauge);
	STRCMP_EQUAL("1m load average.", load.help.c_str());
	DOUBLES_EQUAL(3.22, load.samples[0].value, 0);
	CHECK(family(fs, "node_netstat_Icmp_InMsgs").type == MetricType::Untyped);
	const Family &uname = family(fs, "node_uname_info");
	STRCMP_EQUAL("#1 SMP PREEMPT_DYNAMIC @0", label(uname.samples[0], "version").c_str());
	for (const auto &f : fs)
		for (const auto &s : f.samples)
			CHECK_FALSE(s.timestampMs);
}

TEST(PromText, OpenMetricsExposition)
{
	auto fs = parse(fixture("openmetrics.txt"));
	// python, process_cpu_seconds, http_requests, request_latency_seconds,
	// rpc_duration_seconds, queue_wait_seconds (a histogram), door,
	// temperature_celsius, legacy.
	LONGS_EQUAL(9, fs.size());

	const Family &info = fs[0];
	STRCMP_EQUAL("python_info", info.name.c_str());
	CHECK(info.type == MetricType::Info);
	STRCMP_EQUAL("Python platform information.", info.help.c_str());
	STRCMP_EQUAL("3.11.2", label(info.samples[0], "version").c_str());
	STRCMP_EQUAL("", info.samples[0].suffix.c_str());

	const Family &cpu = family(fs, "process_cpu_seconds_total");
	CHECK(cpu.type == MetricType::Counter);
	STRCMP_EQUAL("seconds", cpu.unit.c_str());
	DOUBLES_EQUAL(1.52, cpu.samples[0].value, 0);

	// _created is dropped, the exemplar too.
	const Family &req = family(fs, "http_requests_total");
	LONGS_EQUAL(2, req.samples.size());
	DOUBLES_EQUAL(1027, req.samples[0].value, 0);
	STRCMP_EQUAL("200", label(req.samples[0], "code").c_str());
	LONGS_EQUAL(2, req.samples[0].labels.size());
	CHECK_FALSE(req.samples[0].timestampMs);

	const Family &lat = family(fs, "request_latency_seconds");
	CHECK(lat.type == MetricType::Histogram);
	STRCMP_EQUAL("seconds", lat.unit.c_str());
	LONGS_EQUAL(6, lat.samples.size());
	STRCMP_EQUAL("+Inf", label(lat.samples[3], "le").c_str());
	DOUBLES_EQUAL(10, lat.samples[3].value, 0);
	STRCMP_EQUAL("_count", lat.samples[4].suffix.c_str());
	STRCMP_EQUAL("_sum", lat.samples[5].suffix.c_str());

	const Family &rpc = family(fs, "rpc_duration_seconds");
	CHECK(rpc.type == MetricType::Summary);
	LONGS_EQUAL(4, rpc.samples.size());
	STRCMP_EQUAL("0.99", label(rpc.samples[1], "quantile").c_str());

	const Family &queue = family(fs, "queue_wait_seconds");
	CHECK(queue.type == MetricType::Histogram);
	LONGS_EQUAL(4, queue.samples.size());
	STRCMP_EQUAL("_bucket", queue.samples[0].suffix.c_str());
	STRCMP_EQUAL("1.0", label(queue.samples[0], "le").c_str());
	STRCMP_EQUAL("Time items have been waiting in the queue.", queue.help.c_str());
	STRCMP_EQUAL("_count", queue.samples[2].suffix.c_str());
	DOUBLES_EQUAL(5, queue.samples[2].value, 0);
	DOUBLES_EQUAL(7.5, queue.samples[3].value, 0);
	CHECK_FALSE(hasFamily(fs, "queue_wait_seconds_gcount"));

	const Family &door = family(fs, "door");
	CHECK(door.type == MetricType::StateSet);
	LONGS_EQUAL(3, door.samples.size());
	STRCMP_EQUAL("closed", label(door.samples[1], "door").c_str());

	const Family &temp = family(fs, "temperature_celsius");
	STRCMP_EQUAL("celsius", temp.unit.c_str());
	STRCMP_EQUAL("Room temperature, \"measured\" with a backslash \\ and\na newline.",
	    temp.help.c_str());
	CHECK(temp.samples[0].timestampMs == 1700000000250);
	CHECK(temp.samples[1].timestampMs == 1700000001000);
	DOUBLES_EQUAL(-3, temp.samples[1].value, 0);

	CHECK(family(fs, "legacy").type == MetricType::Untyped);
}

// ---- accepted as Prometheus accepts it ----

TEST(PromText, TabsAndSeveralSpacesSeparateTokens)
{
	auto fs = parse("x\t{a=\"1\"}\t 2 \t 1700000000000  \nx  {a=\"2\"}   3\n");
	const Family &f = family(fs, "x");
	LONGS_EQUAL(2, f.samples.size());
	DOUBLES_EQUAL(2, f.samples[0].value, 0);
	CHECK(f.samples[0].timestampMs == 1700000000000);
	DOUBLES_EQUAL(3, f.samples[1].value, 0);
}

TEST(PromText, LabelPairsWithTrailingCommaBlanksOrNoComma)
{
	auto fs = parse("x{a=\"1\",} 1\n"
	    "y{ a = \"1\" , b= \"2\" , } 2\n"
	    "z{a=\"1\" b=\"2\"} 3\n");
	LONGS_EQUAL(1, family(fs, "x").samples[0].labels.size());
	const Sample &y = family(fs, "y").samples[0];
	LONGS_EQUAL(2, y.labels.size());
	STRCMP_EQUAL("2", label(y, "b").c_str());
	// Prometheus 2.x accepts label pairs separated by blanks alone.
	const Sample &z = family(fs, "z").samples[0];
	STRCMP_EQUAL("1", label(z, "a").c_str());
	STRCMP_EQUAL("2", label(z, "b").c_str());
}

TEST(PromText, LabelsKeepTheirOrder)
{
	auto fs = parse("x{z=\"1\",a=\"2\",m=\"3\"} 1\n");
	const Sample &s = fs[0].samples[0];
	STRCMP_EQUAL("z", s.labels[0].name.c_str());
	STRCMP_EQUAL("a", s.labels[1].name.c_str());
	STRCMP_EQUAL("m", s.labels[2].name.c_str());
}

TEST(PromText, EmptyLabelSets)
{
	auto fs = parse("x{} 1\ny { } 2\n");
	LONGS_EQUAL(0, family(fs, "x").samples[0].labels.size());
	LONGS_EQUAL(0, family(fs, "y").samples[0].labels.size());
	fs = parse("x{} 1\n# EOF\n");
	LONGS_EQUAL(0, fs[0].samples[0].labels.size());
}

TEST(PromText, ValueRightAfterTheNameOrTheLabels)
{
	// Prometheus' lexer ends the name at the first character that cannot
	// be part of it, and the value needs no blank before it.
	auto fs = parse("x{a=\"1\"}7\ny+1\nz-2.5e1\n");
	DOUBLES_EQUAL(7, family(fs, "x").samples[0].value, 0);
	DOUBLES_EQUAL(1, family(fs, "y").samples[0].value, 0);
	DOUBLES_EQUAL(-25, family(fs, "z").samples[0].value, 0);
}

TEST(PromText, NaNAndInfinitiesInEveryCaseGoAccepts)
{
	CHECK(std::isnan(value("NaN")));
	CHECK(std::isnan(value("nan")));
	CHECK(std::isnan(value("NAN")));
	DOUBLES_EQUAL(INFINITY, value("+Inf"), 0);
	DOUBLES_EQUAL(INFINITY, value("Inf"), 0);
	DOUBLES_EQUAL(INFINITY, value("inf"), 0);
	DOUBLES_EQUAL(INFINITY, value("INF"), 0);
	DOUBLES_EQUAL(INFINITY, value("Infinity"), 0);
	DOUBLES_EQUAL(-INFINITY, value("-Inf"), 0);
	DOUBLES_EQUAL(-INFINITY, value("-infinity"), 0);
	auto fs = parse("a NaN\nb +Inf\nc -Inf\nd Inf\n");
	CHECK(std::isnan(fs[0].samples[0].value));
	DOUBLES_EQUAL(INFINITY, fs[1].samples[0].value, 0);
	DOUBLES_EQUAL(-INFINITY, fs[2].samples[0].value, 0);
	DOUBLES_EQUAL(INFINITY, fs[3].samples[0].value, 0);
}

TEST(PromText, DecimalFormsAndExponents)
{
	DOUBLES_EQUAL(1000, value("1e3"), 0);
	DOUBLES_EQUAL(0.0015, value("1.5E-3"), 0);
	DOUBLES_EQUAL(500, value("+.5e+3"), 0);
	DOUBLES_EQUAL(5, value("5."), 0);
	DOUBLES_EQUAL(0.5, value(".5"), 0);
	DOUBLES_EQUAL(12, value("0012"), 0);
	DOUBLES_EQUAL(1.7976931348623157e308, value("1.7976931348623157e308"), 0);
	DOUBLES_EQUAL(4.9406564584124654e-324, value("5e-324"), 0);
	CHECK(std::signbit(value("-0")));
	// Too small rounds to zero, as in Go; too large is an error.
	DOUBLES_EQUAL(0, value("1e-400"), 0);
	CHECK(std::signbit(value("-1e-400")));
	DOUBLES_EQUAL(0, value("0.0000001e-330"), 0);
	auto fs = parse("x 1.5E-3\n");
	DOUBLES_EQUAL(0.0015, fs[0].samples[0].value, 0);
}

TEST(PromText, StrtodExtensionsAreNotNumbers)
{
	for (const char *bad : {"0x1p3", "0x10", "0X1P-2", "1_000", "nan(123)", "+nan", "-NaN",
	    "infin", "infinityx", "1e", "1e+", "e3", ".", "", " 1", "1 ", "1.5.5", "1e400",
	    "-1e400", "1000000e303", "true", "1,5", "١"})
		CHECK_FALSE_TEXT(parsePromFloat(bad), bad);
	refusedAt("x 0x1p3\n", "line 1, column 3", "invalid value \"0x1p3\"");
	refusedAt("x 1e400\n", "line 1, column 3", "invalid value");
}

TEST(PromText, MissingFinalNewline)
{
	auto fs = parse("# HELP x X.\n# TYPE x gauge\nx 1");
	DOUBLES_EQUAL(1, fs[0].samples[0].value, 0);
	fs = parse("x{a=\"b\"} 2 1700000000000");
	CHECK(fs[0].samples[0].timestampMs == 1700000000000);
	LONGS_EQUAL(1, parse("x 1\n# a comment").size());
	LONGS_EQUAL(0, parse("# HELP x X.").size());
	LONGS_EQUAL(1, parse("x 1\n# EOF").size());
}

TEST(PromText, TimestampsAreMillisecondsInTextFormat)
{
	auto fs = parse("x 1 1700000000123\ny 2 0123\nz 3 9223372036854775807\nw 4\n");
	CHECK(fs[0].samples[0].timestampMs == 1700000000123);
	CHECK(fs[1].samples[0].timestampMs == 123);
	CHECK(fs[2].samples[0].timestampMs == INT64_MAX);
	CHECK_FALSE(fs[3].samples[0].timestampMs);
}

TEST(PromText, TimestampsAreSecondsInOpenMetrics)
{
	auto fs = parse("a 1 1700000000.25\nb 1 1.001\nc 1 -5\nd 1 1e3\ne 1 1700000000\n# EOF\n");
	CHECK(fs[0].samples[0].timestampMs == 1700000000250);
	// Rounded: Prometheus truncates 1.001 * 1000 to 1000.
	CHECK(fs[1].samples[0].timestampMs == 1001);
	CHECK(fs[2].samples[0].timestampMs == -5000);
	CHECK(fs[3].samples[0].timestampMs == 1000000);
	CHECK(fs[4].samples[0].timestampMs == 1700000000000);
}

TEST(PromText, LabelValueEscapes)
{
	auto fs = parse(R"(x{a="back\\slash",b="\"q\"",c="new\nline",d="tab\t",e="\\n"} 1)"
	    "\n");
	const Sample &s = fs[0].samples[0];
	STRCMP_EQUAL("back\\slash", label(s, "a").c_str());
	STRCMP_EQUAL("\"q\"", label(s, "b").c_str());
	STRCMP_EQUAL("new\nline", label(s, "c").c_str());
	// Unknown escapes stay as written, as Prometheus keeps them.
	STRCMP_EQUAL("tab\\t", label(s, "d").c_str());
	STRCMP_EQUAL("\\n", label(s, "e").c_str());
	fs = parse("x{a=\"\\\"\\\\\\n\"} 1\n# EOF\n");
	STRCMP_EQUAL("\"\\\n", label(fs[0].samples[0], "a").c_str());
}

TEST(PromText, LabelValuesKeepUnicode)
{
	auto fs = parse("x{city=\"Z\xc3\xbcrich\",emoji=\"\xf0\x9f\x93\x88\"} 1\n");
	STRCMP_EQUAL("Z\xc3\xbcrich", label(fs[0].samples[0], "city").c_str());
	STRCMP_EQUAL("\xf0\x9f\x93\x88", label(fs[0].samples[0], "emoji").c_str());
}

TEST(PromText, RawNewlineInsideATextFormatLabelValue)
{
	// Prometheus' 0.0.4 lexer takes any character but \ and " in a value.
	auto fs = parse("x{a=\"two\nlines\"} 1\ny 2\n");
	STRCMP_EQUAL("two\nlines", label(family(fs, "x").samples[0], "a").c_str());
	// ... and the lines after it are counted right.
	refusedAt("x{a=\"two\nlines\"} 1\ny ?\n", "line 3, column 3", "invalid value");
}

TEST(PromText, HelpEscapesInTextFormat)
{
	auto fs = parse("# HELP x A \\\\ backslash,\\na newline, \\\"quotes\\\" and \\t.\nx 1\n");
	STRCMP_EQUAL("A \\ backslash,\na newline, \\\"quotes\\\" and \\t.", fs[0].help.c_str());
}

TEST(PromText, HelpTextIsWhatFollowsOneBlank)
{
	auto fs = parse("# HELP a   three spaces\na 1\n"
	    "# HELP b\tafter a tab\nb 1\n"
	    "# HELP c\nc 1\n"
	    "# HELP d \t \nd 1\n"
	    "#   HELP   e   text\ne 1\n");
	STRCMP_EQUAL("  three spaces", family(fs, "a").help.c_str());
	STRCMP_EQUAL("after a tab", family(fs, "b").help.c_str());
	STRCMP_EQUAL("", family(fs, "c").help.c_str());
	STRCMP_EQUAL("", family(fs, "d").help.c_str());
	STRCMP_EQUAL("  text", family(fs, "e").help.c_str());
}

TEST(PromText, CommentsThatLookLikeHelpOrType)
{
	// "#HELP" (no blank), "# HELPx", "# HELP" alone and "# TYPE" alone
	// are comments; "#\tTYPE" is a TYPE.
	auto fs = parse("#HELP x not help\n# HELPx not help\n# HELP\n# TYPE\n"
	    "#\tTYPE x counter\nx 1\n# Hrandom comment\n");
	const Family &x = family(fs, "x");
	CHECK(x.type == MetricType::Counter);
	STRCMP_EQUAL("", x.help.c_str());
}

TEST(PromText, BlanksBeforeCommentsAndOnEmptyLines)
{
	auto fs = parse("  # HELP x X.\n\t# TYPE x gauge\n \t \n\nx 1\n   \n");
	STRCMP_EQUAL("X.", fs[0].help.c_str());
	CHECK(fs[0].type == MetricType::Gauge);
}

TEST(PromText, CarriageReturnInHelpAndLabelValuesIsKept)
{
	auto fs = parse("# HELP x a\r\nx{l=\"v\r\"} 1\n");
	STRCMP_EQUAL("a\r", fs[0].help.c_str());
	STRCMP_EQUAL("v\r", label(fs[0].samples[0], "l").c_str());
}

TEST(PromText, SamplesOfAFamilyAreJoinedWhereverTheyAre)
{
	auto fs = parse("# TYPE x gauge\nx{a=\"1\"} 1\ny 2\nx{a=\"2\"} 3\n"
	    "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nz 1\nh_count 1\nh_sum 0.5\n");
	LONGS_EQUAL(4, fs.size());
	STRCMP_EQUAL("x", fs[0].name.c_str());
	LONGS_EQUAL(2, fs[0].samples.size());
	STRCMP_EQUAL("2", label(fs[0].samples[1], "a").c_str());
	STRCMP_EQUAL("y", fs[1].name.c_str());
	STRCMP_EQUAL("h", fs[2].name.c_str());
	LONGS_EQUAL(3, fs[2].samples.size());
	STRCMP_EQUAL("z", fs[3].name.c_str());
}

TEST(PromText, UntypedSamplesWithoutType)
{
	auto fs = parse("# HELP with_help Helpful.\nwith_help 1\nbare 2\nbare{a=\"b\"} 3\n");
	const Family &h = family(fs, "with_help");
	CHECK(h.type == MetricType::Untyped);
	STRCMP_EQUAL("Helpful.", h.help.c_str());
	const Family &b = family(fs, "bare");
	CHECK(b.type == MetricType::Untyped);
	STRCMP_EQUAL("", b.help.c_str());
	LONGS_EQUAL(2, b.samples.size());
	CHECK(family(parse("# TYPE u untyped\nu 1\n"), "u").type == MetricType::Untyped);
	CHECK(family(parse("# TYPE u unknown\nu 1\n# EOF\n"), "u").type == MetricType::Untyped);
}

TEST(PromText, HelpAfterSamplesJoinsTheirFamily)
{
	auto fs = parse("x 1\n# HELP x Late help.\nx{a=\"b\"} 2\n");
	LONGS_EQUAL(1, fs.size());
	STRCMP_EQUAL("Late help.", fs[0].help.c_str());
	LONGS_EQUAL(2, fs[0].samples.size());
}

TEST(PromText, TextFormatCountersKeepTheirName)
{
	auto fs = parse("# TYPE requests_total counter\nrequests_total 5\n"
	    "# TYPE errors counter\nerrors 1\n");
	CHECK(family(fs, "requests_total").type == MetricType::Counter);
	CHECK(family(fs, "errors").type == MetricType::Counter);
	STRCMP_EQUAL("", family(fs, "requests_total").samples[0].suffix.c_str());
}

TEST(PromText, ASampleOutsideItsTypedFamilyIsUntyped)
{
	// A 0.0.4 counter x has samples named x: x_total is another family.
	auto fs = parse("# TYPE x counter\nx_total 1\n");
	LONGS_EQUAL(1, fs.size());
	STRCMP_EQUAL("x_total", fs[0].name.c_str());
	CHECK(fs[0].type == MetricType::Untyped);
	// An OpenMetrics counter x has samples x_total: x is another family,
	// and so is an info family's sample without _info.
	fs = parse("# TYPE x counter\nx 1\n# TYPE i info\ni 1\n# EOF\n");
	LONGS_EQUAL(2, fs.size());
	STRCMP_EQUAL("x", fs[0].name.c_str());
	CHECK(fs[0].type == MetricType::Untyped);
	STRCMP_EQUAL("i", fs[1].name.c_str());
	CHECK(fs[1].type == MetricType::Untyped);
	// _created in 0.0.4 is an ordinary name.
	fs = parse("# TYPE x summary\nx_count 1\nx_sum 2\nx_created 3\n");
	CHECK(family(fs, "x_created").type == MetricType::Untyped);
}

TEST(PromText, HistogramAndSummaryInTextFormat)
{
	auto fs = parse("# TYPE h histogram\n"
	    "h_bucket{le=\"1\"} 1\nh_bucket{le=\"1.0\"} 2\nh_bucket{le=\"+Inf\"} 3\n"
	    "h_sum 4.5\nh_count 3\n"
	    "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.50\"} 1\n"
	    "s_sum 2\ns_count 3\n");
	const Family &h = family(fs, "h");
	CHECK(h.type == MetricType::Histogram);
	LONGS_EQUAL(5, h.samples.size());
	// le and quantile are kept as written.
	STRCMP_EQUAL("1", label(h.samples[0], "le").c_str());
	STRCMP_EQUAL("1.0", label(h.samples[1], "le").c_str());
	STRCMP_EQUAL("_sum", h.samples[3].suffix.c_str());
	const Family &s = family(fs, "s");
	CHECK(s.type == MetricType::Summary);
	STRCMP_EQUAL("0.50", label(s.samples[1], "quantile").c_str());
	STRCMP_EQUAL("", s.samples[0].suffix.c_str());
	STRCMP_EQUAL("_count", s.samples[3].suffix.c_str());
}

TEST(PromText, OpenMetricsCreatedSamplesAreDropped)
{
	auto fs = parse("# TYPE c counter\nc_total 1\nc_created 1.7e9\n"
	    "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 1\nh_created 1.7e9\n"
	    "# TYPE s summary\ns_count 1\ns_sum 1\ns_created 1.7e9\n# EOF\n");
	LONGS_EQUAL(3, fs.size());
	LONGS_EQUAL(1, family(fs, "c_total").samples.size());
	LONGS_EQUAL(3, family(fs, "h").samples.size());
	LONGS_EQUAL(2, family(fs, "s").samples.size());
	// A counter with only _created exports nothing.
	LONGS_EQUAL(0, parse("# TYPE c counter\nc_created 1\n# EOF\n").size());
}

TEST(PromText, OpenMetricsExemplarsAreDropped)
{
	auto fs = parse("# TYPE c counter\n"
	    "c_total 5 # {trace_id=\"abc\"} 1\n"
	    "c_total{a=\"b\"} 6 1700000000 # {} 2 1700000000.5\n"
	    "# TYPE h histogram\n"
	    "h_bucket{le=\"+Inf\"} 1 # {trace_id=\"x\",span=\"\\\"y\\\"\"} 0.5\n"
	    "h_count 1\n# EOF\n");
	const Family &c = family(fs, "c_total");
	LONGS_EQUAL(2, c.samples.size());
	DOUBLES_EQUAL(5, c.samples[0].value, 0);
	LONGS_EQUAL(0, c.samples[0].labels.size());
	CHECK(c.samples[1].timestampMs == 1700000000000);
	LONGS_EQUAL(1, family(fs, "h").samples[0].labels.size());
}

TEST(PromText, OpenMetricsInfoAndStateSet)
{
	auto fs = parse("# TYPE build info\n# HELP build Build.\nbuild_info{version=\"1.2\"} 1\n"
	    "# TYPE mode stateset\nmode{mode=\"a\"} 1\nmode{mode=\"b\"} 0\n# EOF\n");
	const Family &b = family(fs, "build_info");
	CHECK(b.type == MetricType::Info);
	STRCMP_EQUAL("Build.", b.help.c_str());
	const Family &m = family(fs, "mode");
	CHECK(m.type == MetricType::StateSet);
	LONGS_EQUAL(2, m.samples.size());
}

TEST(PromText, OpenMetricsGaugeHistogramBecomesAHistogram)
{
	auto fs = parse("# TYPE q gaugehistogram\n# HELP q Queue.\n"
	    "q_bucket{le=\"1\"} 1\nq_bucket{le=\"+Inf\"} 2\nq_gcount 2\nq_gsum 3\n# EOF\n");
	LONGS_EQUAL(1, fs.size());
	STRCMP_EQUAL("q", fs[0].name.c_str());
	CHECK(fs[0].type == MetricType::Histogram);
	STRCMP_EQUAL("Queue.", fs[0].help.c_str());
	LONGS_EQUAL(4, fs[0].samples.size());
	STRCMP_EQUAL("_bucket", fs[0].samples[1].suffix.c_str());
	STRCMP_EQUAL("_count", fs[0].samples[2].suffix.c_str());
	STRCMP_EQUAL("_sum", fs[0].samples[3].suffix.c_str());
	DOUBLES_EQUAL(3, fs[0].samples[3].value, 0);
	STRCMP_EQUAL("line 3, column 1: histogram bucket q_bucket has no le label",
	    refuse("# TYPE q gaugehistogram\nq_gcount 1\nq_bucket 1\n# EOF\n").c_str());
}

TEST(PromText, OpenMetricsUnitAndHelpEscapes)
{
	auto fs = parse("# TYPE t_seconds gauge\n# UNIT t_seconds seconds\n"
	    "# HELP t_seconds Say \\\"hi\\\" \\\\ \\n.\nt_seconds 1\n"
	    "# UNIT u \nu 1\n# EOF\n");
	STRCMP_EQUAL("seconds", fs[0].unit.c_str());
	STRCMP_EQUAL("Say \"hi\" \\ \n.", fs[0].help.c_str());
	STRCMP_EQUAL("", fs[1].unit.c_str());
}

TEST(PromText, LabelNamesStartingWithOneUnderscore)
{
	auto fs = parse("_x{_l=\"1\"} 1\na:b:c 2\n");
	STRCMP_EQUAL("1", label(family(fs, "_x").samples[0], "_l").c_str());
	DOUBLES_EQUAL(2, family(fs, "a:b:c").samples[0].value, 0);
}

TEST(PromText, ManyLabelsWithoutRepetition)
{
	std::string text = "x{";
	for (int i = 0; i < 40; i++)
		text += "l" + std::to_string(i) + "=\"" + std::to_string(i) + "\",";
	text += "} 1\n";
	auto fs = parse(text);
	LONGS_EQUAL(40, fs[0].samples[0].labels.size());
	STRCMP_EQUAL("39", label(fs[0].samples[0], "l39").c_str());
}

TEST(PromText, DuplicateSeriesAreLeftToTheSupervisor)
{
	// Prometheus keeps the first and counts the others; so does pmed.
	auto fs = parse("x 1\nx 2\n");
	LONGS_EQUAL(2, fs[0].samples.size());
}

TEST(PromText, LimitsThatHold)
{
	worker::PromParseLimits limits;
	limits.maxSeries = 3;
	limits.maxFamilies = 2;
	auto fs = parse("a 1\na 2\nb 3\n", limits);
	LONGS_EQUAL(2, fs.size());
}

// ---- refused, with the line and column ----

TEST(PromText, RepeatedLabelName)
{
	refusedAt("x{a=\"1\",a=\"2\"} 1\n", "line 1, column 9", "label a appears twice");
	refusedAt("ok 1\nx{a=\"1\", b=\"2\", a=\"3\"} 1\n", "line 2, column 17",
	    "label a appears twice");
	refusedAt("x{a=\"1\",a=\"2\"} 1\n# EOF\n", "line 1, column 9", "appears twice");
	// Counted in characters: the é is one column.
	refusedAt("x{a=\"\xc3\xa9\",a=\"2\"} 1\n", "line 1, column 9", "appears twice");
	// Many labels are checked another way, with the same answer.
	std::string text = "x{";
	for (int i = 0; i < 30; i++)
		text += "l" + std::to_string(i) + "=\"\",";
	text += "l7=\"\",l3=\"\"} 1\n";
	refusedAt(text, "line 1, column 203", "label l7 appears twice");
	// In a _created sample too, although it is dropped.
	refusedAt("# TYPE c counter\nc_created{a=\"1\",a=\"1\"} 1\n# EOF\n", "line 2, column 17",
	    "appears twice");
}

TEST(PromText, InvalidUtf8Anywhere)
{
	refusedAt("x{a=\"\xff\"} 1\n", "line 1, column 6", "invalid UTF-8 (byte 0xff)");
	refusedAt("x 1\n# comment \xc3\x28\n", "line 2, column 11", "invalid UTF-8 (byte 0xc3)");
	refusedAt("# HELP x caf\xc3\n", "line 1, column 13", "invalid UTF-8");
	// Overlong forms, surrogates and code points past U+10FFFF.
	refusedAt("x{a=\"\xc0\xaf\"} 1\n", "line 1, column 6", "invalid UTF-8");
	refusedAt("x{a=\"\xed\xa0\x80\"} 1\n", "line 1, column 6", "invalid UTF-8");
	refusedAt("x{a=\"\xf4\x90\x80\x80\"} 1\n", "line 1, column 6", "invalid UTF-8");
	refusedAt("x{a=\"\xe2\x82\"} 1\n", "line 1, column 6", "invalid UTF-8");
}

TEST(PromText, NulByte)
{
	refusedAt(std::string_view("x{a=\"a\0b\"} 1\n", 13), "line 1, column 7", "NUL byte");
	refusedAt(std::string_view("x 1\n\0y 2\n", 9), "line 2, column 1", "NUL byte");
}

TEST(PromText, InvalidMetricNames)
{
	refusedAt("1x 1\n", "line 1, column 1", "expected a metric name or '#', not \"1\"");
	refusedAt("{a=\"b\"} 1\n", "line 1, column 1", "expected a metric name");
	refusedAt("ok 1\n\xc3\xa9t\xc3\xa9 1\n", "line 2, column 1", "not \"\xc3\xa9\"");
	refusedAt("x-y 1\n", "line 1, column 2", "invalid value \"-y\"");
	refusedAt("# HELP 1x text\n", "line 1, column 8", "expected a metric name after HELP");
	refusedAt("# TYPE 1x gauge\n# EOF\n", "line 1, column 8",
	    "expected a metric name after TYPE");
	refusedAt("# HELP \n", "line 1, column 8", "expected a metric name after HELP");
}

TEST(PromText, InvalidLabelNames)
{
	refusedAt("x{1a=\"b\"} 1\n", "line 1, column 3", "expected a label name or '}'");
	refusedAt("x{a-b=\"c\"} 1\n", "line 1, column 4", "expected '=' after the label name a");
	refusedAt("x{a:b=\"c\"} 1\n", "line 1, column 4", "expected '='");
	refusedAt("x{,} 1\n", "line 1, column 3", "expected a label name");
	refusedAt("x{a=\"1\",,} 1\n", "line 1, column 9", "expected a label name");
	refusedAt("x{a='1'} 1\n", "line 1, column 5", "expected a label value in double quotes");
	refusedAt("x{a=b} 1\n", "line 1, column 5", "expected a label value in double quotes");
}

TEST(PromText, ReservedLabelNames)
{
	// Prometheus takes them; pme refuses: the frame protocol cannot carry
	// them and they are Prometheus' own.
	refusedAt("x{__name__=\"y\"} 1\n", "line 1, column 3", "label name __name__ is reserved");
	refusedAt("x{a=\"1\",__x=\"2\"} 1\n", "line 1, column 9", "reserved");
}

TEST(PromText, HexadecimalAndOtherStrtodFormsAsValues)
{
	refusedAt("x 0x10\n", "line 1, column 3", "invalid value \"0x10\"");
	refusedAt("x 1_000\n", "line 1, column 3", "invalid value");
	refusedAt("x nan(1)\n", "line 1, column 3", "invalid value");
	refusedAt("x +nan\n", "line 1, column 3", "invalid value");
	refusedAt("x 1 # {} 1\n# EOF\n", "line 1, column 5", "only samples whose name ends in "
	    "_total or _bucket");
}

TEST(PromText, TextFormatTimestampsAreIntegers)
{
	refusedAt("x 1 1.5\n", "line 1, column 5", "invalid timestamp \"1.5\": the text format "
	    "needs an integer number of milliseconds");
	refusedAt("x 1 -5\n", "line 1, column 5", "invalid timestamp");
	refusedAt("x 1 +5\n", "line 1, column 5", "invalid timestamp");
	refusedAt("x 1 1e3\n", "line 1, column 5", "invalid timestamp");
	refusedAt("x 1 9223372036854775808\n", "line 1, column 5", "out of range");
	refusedAt("x 1 2 3\n", "line 1, column 7", "expected the end of the line after the "
	    "timestamp");
}

TEST(PromText, OpenMetricsTimestampsThatAreNotTimes)
{
	refusedAt("x 1 NaN\n# EOF\n", "line 1, column 5", "invalid timestamp");
	refusedAt("x 1 +Inf\n# EOF\n", "line 1, column 5", "invalid timestamp \"+Inf\"");
	refusedAt("x 1 1e300\n# EOF\n", "line 1, column 5", "out of range");
	refusedAt("x 1 abc\n# EOF\n", "line 1, column 5", "invalid timestamp \"abc\"");
}

TEST(PromText, SecondTypeOrHelp)
{
	refusedAt("# TYPE x counter\n# TYPE x gauge\nx 1\n", "line 2, column 8",
	    "second TYPE for x (the first is on line 1)");
	refusedAt("# HELP x a\nx 1\n# HELP x b\n", "line 3, column 8",
	    "second HELP for x (the first is on line 1)");
	refusedAt("# TYPE x gauge\n# TYPE x gauge\nx 1\n# EOF\n", "line 2, column 8",
	    "second TYPE");
	refusedAt("# UNIT x_s s\n# UNIT x_s s\nx_s 1\n# EOF\n", "line 2, column 8",
	    "second UNIT");
}

TEST(PromText, TypeAfterSamples)
{
	refusedAt("x 1\n# TYPE x gauge\n", "line 2, column 8",
	    "TYPE for x after its samples (line 1)");
	refusedAt("# HELP x X.\nx 1\n# TYPE x gauge\n", "line 3, column 8",
	    "TYPE for x after its samples (line 2)");
	refusedAt("ok 1\nx_sum 1\n# TYPE x summary\n", "line 3, column 8",
	    "TYPE for x after its samples x_sum (line 2)");
	refusedAt("x_total 1\n# TYPE x counter\n# EOF\n", "line 2, column 8",
	    "after its samples x_total");
}

TEST(PromText, UnknownTypes)
{
	refusedAt("# TYPE x foo\n", "line 1, column 10", "unknown metric type \"foo\" (expected "
	    "one of counter, gauge, histogram, summary, untyped)");
	refusedAt("# TYPE x info\n", "line 1, column 10", "unknown metric type \"info\"");
	refusedAt("# TYPE x untyped\nx 1\n# EOF\n", "line 1, column 10",
	    "unknown metric type \"untyped\"");
	refusedAt("# TYPE x\n", "line 1, column 9", "missing type after x");
	refusedAt("# TYPE x \n", "line 1, column 10", "missing type after x");
	// Exactly one blank before the type, none after.
	refusedAt("# TYPE x  gauge\n", "line 1, column 10", "unknown metric type \" gauge\"");
	refusedAt("# TYPE x gauge \n", "line 1, column 10", "unknown metric type \"gauge \"");
}

TEST(PromText, UnterminatedLabelValue)
{
	refusedAt("x{a=\"b} 1\n", "line 1, column 5", "unterminated label value");
	refusedAt("x{a=\"b\\\"} 1", "line 1, column 5", "unterminated label value");
	refusedAt("x{a=\"b\\\n\"} 1\n", "line 1, column 7", "a backslash ends the line");
	refusedAt("x{a=\"b\n\"} 1\n# EOF\n", "line 1, column 5",
	    "unterminated label value (the line ends inside it");
	refusedAt("x{a=\"b\"", "line 1, column 8", "expected a label name or '}'");
	refusedAt("x{a=\"b\"\n} 1\n", "line 1, column 8", "expected a label name or '}'");
}

TEST(PromText, MissingOrBadValue)
{
	refusedAt("x\n", "line 1, column 2", "expected a value after the metric name");
	refusedAt("x{a=\"b\"}\n", "line 1, column 9", "expected a value after the labels");
	refusedAt("x {a=\"b\"} {c=\"d\"} 1\n", "line 1, column 11", "expected a value");
	refusedAt("x one\n", "line 1, column 3", "invalid value \"one\"");
	refusedAt("ok 1\n  x 1\n", "line 2, column 1", "must start with the metric name");
	refusedAt("x 1 # {a=\"b\"} 1\n", "line 1, column 5", "invalid timestamp \"#\"");
}

TEST(PromText, CarriageReturnAtTheEndOfASample)
{
	refusedAt("x 1\r\n", "line 1, column 4", "unexpected carriage return: lines must end "
	    "with \\n alone");
	refusedAt("# HELP x X.\r\nx{a=\"b\"} 1 1700000000000\r\n", "line 2, column 25",
	    "carriage return");
	refusedAt("# TYPE x gauge\r\n", "line 1, column 15", "carriage return");
	refusedAt("x 1\r\n# EOF\n", "line 1, column 4", "carriage return");
}

TEST(PromText, HelpNameFollowedByAnotherCharacter)
{
	// Prometheus reads "# HELP x-y text" as the HELP "y text" of x: the
	// name ends where a name cannot go on, and one character follows.
	auto fs = parse("# HELP x-y text\n# TYPE x.gauge\nx 1\n# HELP z.  \nz 2\n");
	STRCMP_EQUAL("y text", family(fs, "x").help.c_str());
	CHECK(family(fs, "x").type == MetricType::Gauge);
	STRCMP_EQUAL("  ", family(fs, "z").help.c_str());
	// ... which makes invalid UTF-8 of a character of several bytes.
	refusedAt("# HELP x\xc3\xa9t\xc3\xa9 text\n", "line 1, column 9",
	    "HELP text of x is not valid UTF-8");
}

TEST(PromText, HistogramBucketWithoutLe)
{
	refusedAt("# TYPE h histogram\nh_bucket{a=\"b\"} 1\n", "line 2, column 1",
	    "histogram bucket h_bucket has no le label");
}

TEST(PromText, TwoFamiliesExportingOneName)
{
	refusedAt("# TYPE x histogram\nx_bucket{le=\"1\"} 1\n# TYPE x_sum gauge\nx_sum 1\n",
	    "line 4, column 1", "the name x_sum of gauge x_sum (line 3) is already exported by "
	    "histogram x (line 1)");
	refusedAt("# TYPE x summary\nx_count 1\n# TYPE x_count gauge\nx_count 2\n",
	    "line 4, column 1", "the name x_count of gauge x_count (line 3) is already exported "
	    "by summary x (line 1)");
	// A histogram x and untyped samples named x.
	refusedAt("x 1\n# TYPE x histogram\nx_count 1\n", "line 3, column 1",
	    "already exported by the samples of x (line 1)");
}

TEST(PromText, LimitsThatAreExceeded)
{
	worker::PromParseLimits limits;
	limits.maxSeries = 3;
	std::string e = refuse("a 1\nb 2\na 3\nc 4\n", limits);
	STRCMP_EQUAL("line 4, column 1: more than 3 series", e.c_str());
	limits = {};
	limits.maxFamilies = 2;
	STRCMP_EQUAL("line 3, column 1: more than 2 metric families",
	    refuse("a 1\nb 2\nc 3\n", limits).c_str());
	STRCMP_EQUAL("line 3, column 8: more than 2 metric families",
	    refuse("# HELP a A.\n# HELP b B.\n# HELP c C.\n", limits).c_str());
}

TEST(PromText, ExemplarsInTextFormat)
{
	refusedAt("# TYPE c counter\nc_total 1 # {a=\"b\"} 1\n", "line 2, column 11",
	    "invalid timestamp \"#\"");
}

// ---- OpenMetrics' stricter syntax ----

TEST(PromText, OpenMetricsSeparatorsAreSingleSpaces)
{
	refusedAt("x  1\n# EOF\n", "line 1, column 3", "expected a value after the metric name");
	refusedAt("x\t1\n# EOF\n", "line 1, column 2", "expected a space and the value after the "
	    "metric name");
	refusedAt("x {a=\"b\"} 1\n# EOF\n", "line 1, column 3", "invalid value");
	refusedAt("x{a=\"b\"}1\n# EOF\n", "line 1, column 9", "expected a space and the value "
	    "after the labels");
	refusedAt("x{a=\"1\", b=\"2\"} 1\n# EOF\n", "line 1, column 9", "expected a label name");
	refusedAt("x{a=\"1\"b=\"2\"} 1\n# EOF\n", "line 1, column 8", "expected ',' or '}'");
	refusedAt("x 1 \n# EOF\n", "line 1, column 5", "expected a timestamp or an exemplar");
	refusedAt("# TYPE  x gauge\n# EOF\n", "line 1, column 8", "expected a metric name");
	refusedAt("# TYPE x  gauge\n# EOF\n", "line 1, column 10", "unknown metric type");
}

TEST(PromText, OpenMetricsTrailingComma)
{
	// Prometheus 2.42's OpenMetrics parser refuses it.
	refusedAt("x{a=\"1\",} 1\n# EOF\n", "line 1, column 9", "no trailing comma");
}

TEST(PromText, OpenMetricsEmptyLinesAndComments)
{
	refusedAt("x 1\n\ny 2\n# EOF\n", "line 2, column 1", "empty line");
	refusedAt("# a comment\nx 1\n# EOF\n", "line 1, column 3", "expected HELP, TYPE, UNIT or "
	    "EOF");
	refusedAt("#\tTYPE x gauge\n# EOF\n", "line 1, column 2", "expected a space after '#'");
	refusedAt(" x 1\n# EOF\n", "line 1, column 1", "expected a metric name or '#'");
	refusedAt("# HELP x\nx 1\n# EOF\n", "line 1, column 9", "expected a space and the text");
}

TEST(PromText, OpenMetricsNothingAfterEof)
{
	refusedAt("x 1\n# EOF\n\n", "line 3, column 1", "unexpected data after # EOF");
	refusedAt("x 1\n# EOF\n# EOF\n", "line 3, column 1", "unexpected data after # EOF");
	// An OpenMetrics parse of text without # EOF.
	auto r = parsePromText("x 1\n", PromFormat::OpenMetrics);
	CHECK_FALSE(r);
	STRCMP_EQUAL("line 2, column 1: the exposition does not end with # EOF",
	    r.error().message.c_str());
}

TEST(PromText, OpenMetricsUnitMustEndTheName)
{
	refusedAt("# UNIT x seconds\nx 1\n# EOF\n", "line 1, column 8",
	    "unit \"seconds\" is not a suffix of the metric name x");
	refusedAt("# UNIT xseconds seconds\n# EOF\n", "line 1, column 8", "not a suffix");
	LONGS_EQUAL(1, parse("# UNIT x_seconds seconds\nx_seconds 1\n# EOF\n").size());
}

TEST(PromText, OpenMetricsExemplars)
{
	refusedAt("# TYPE g gauge\ng 1 # {a=\"b\"} 1\n# EOF\n", "line 2, column 5",
	    "exemplar on g");
	refusedAt("c_total 1 # {a=\"b\"}\n# EOF\n", "line 1, column 20",
	    "expected a space and the value after the exemplar's labels");
	refusedAt("c_total 1 # {a=\"b\"} x\n# EOF\n", "line 1, column 21",
	    "invalid exemplar value \"x\"");
	refusedAt("c_total 1 # {a=\"b\"} 1 2 3\n# EOF\n", "line 1, column 24",
	    "expected the end of the line");
	refusedAt("c_total 1 # {a=\"b\"} 1 NaN\n# EOF\n", "line 1, column 23",
	    "invalid exemplar timestamp");
	refusedAt("c_total 1  # {a=\"b\"} 1\n# EOF\n", "line 1, column 11",
	    "expected a timestamp or an exemplar");
	refusedAt("c_total 1 # {a=b} 1\n# EOF\n", "line 1, column 16", "expected a label value");
	// Exemplars are not checked further: repeated names are accepted.
	LONGS_EQUAL(1, parse("c_total 1 # {a=\"b\",a=\"c\"} 1\n# EOF\n").size());
}

TEST(PromText, ErrorsQuoteTheTextSafely)
{
	std::string e = refuse("x \x1b[31mred\n");
	STRCMP_EQUAL("line 1, column 3: invalid value \"\\x1b[31mred\"", e.c_str());
	e = refuse("x " + std::string(200, '9') + "z\n");
	CHECK(e.size() < 150);
}
