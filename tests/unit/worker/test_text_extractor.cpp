// SPDX-License-Identifier: ISC
// Content type text: filters, captures, templates, value parsing.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "worker/text_extractor.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme;
using common::Family;
using common::MetricConfig;
using worker::TextExtractor;

namespace {

MetricConfig metric(const std::string &filter, common::Pairs labels = {})
{
	MetricConfig m;
	m.key = "m";
	m.name = "test_metric";
	m.baseName = "test_metric";
	m.description = "A test metric";
	m.filter = filter;
	m.labels = std::move(labels);
	return m;
}

TextExtractor compile(const MetricConfig &m, bool multiline = false)
{
	auto x = TextExtractor::compile(m, multiline);
	if (!x)
		FAIL(("compile failed: " + x.error().message).c_str());
	return std::move(*x);
}

Family extract(const MetricConfig &m, const std::string &text, bool multiline = false)
{
	TextExtractor x = compile(m, multiline);
	auto f = x.extract(text);
	if (!f)
		FAIL(("extract failed: " + f.error().message).c_str());
	return *f;
}

std::string extractError(const MetricConfig &m, const std::string &text, bool multiline = false)
{
	TextExtractor x = compile(m, multiline);
	auto f = x.extract(text);
	if (f)
		FAIL("extract succeeded where it should fail");
	return f.error().message;
}

std::string label(const common::Sample &s, const std::string &name)
{
	for (const auto &l : s.labels)
		if (l.name == name)
			return l.value;
	FAIL(("no label " + name).c_str());
	return "";
}

std::string fixture(const std::string &name)
{
	const char *root = std::getenv("PME_SOURCE_ROOT");
	std::string path = std::string(root ? root : ".") + "/tests/data/text/" + name;
	std::ifstream in(path);
	if (!in)
		FAIL(("cannot open fixture " + path).c_str());
	std::stringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

} // namespace

TEST_GROUP(TextExtraction) {};

TEST(TextExtraction, EachMatchBecomesOneSeriesInTextOrder)
{
	Family f = extract(metric(R"((\w+)=(?<value>\d+))", {{"key", "$1"}}), "a=1 b=22 c=333");
	STRCMP_EQUAL("test_metric", f.name.c_str());
	STRCMP_EQUAL("A test metric", f.help.c_str());
	CHECK(f.type == common::MetricType::Gauge);
	LONGS_EQUAL(3, f.samples.size());
	STRCMP_EQUAL("a", label(f.samples[0], "key").c_str());
	DOUBLES_EQUAL(1, f.samples[0].value, 0);
	STRCMP_EQUAL("b", label(f.samples[1], "key").c_str());
	DOUBLES_EQUAL(22, f.samples[1].value, 0);
	STRCMP_EQUAL("c", label(f.samples[2], "key").c_str());
	DOUBLES_EQUAL(333, f.samples[2].value, 0);
	STRCMP_EQUAL("", f.samples[0].suffix.c_str());
}

TEST(TextExtraction, NamedAndNumberedCapturesNameTheSameText)
{
	Family f = extract(metric(R"((?<dev>\S+) (?<mount>\S+) (?<value>\d+))",
	    {{"n1", "$1"}, {"n2", "${2}"}, {"dev", "${dev}"}, {"mount", "${mount}"}}),
	    "sda1 /boot 5");
	LONGS_EQUAL(1, f.samples.size());
	STRCMP_EQUAL("sda1", label(f.samples[0], "n1").c_str());
	STRCMP_EQUAL("/boot", label(f.samples[0], "n2").c_str());
	STRCMP_EQUAL("sda1", label(f.samples[0], "dev").c_str());
	STRCMP_EQUAL("/boot", label(f.samples[0], "mount").c_str());
	// With no `value` capture and no template, capture 1 is the value:
	// here "sda1", which is not a number.
	MetricConfig m = metric(R"((?<dev>\S+) (\d+))");
	STRCMP_EQUAL("value 'sda1' is not a number", extractError(m, "sda1 5").c_str());
}

TEST(TextExtraction, ValueCaptureWinsOverCaptureOne)
{
	Family f = extract(metric(R"((\w+): (?<value>\d+) of (\d+))", {{"what", "$1"}}),
	    "disk: 40 of 100");
	LONGS_EQUAL(1, f.samples.size());
	DOUBLES_EQUAL(40, f.samples[0].value, 0);
	STRCMP_EQUAL("disk", label(f.samples[0], "what").c_str());
}

TEST(TextExtraction, CaptureOneIsTheValueWithoutAValueCapture)
{
	Family f = extract(metric(R"(Active connections:\s+(\d+))"),
	    "Active connections: 291 \nserver accepts handled requests\n");
	LONGS_EQUAL(1, f.samples.size());
	DOUBLES_EQUAL(291, f.samples[0].value, 0);
	LONGS_EQUAL(0, f.samples[0].labels.size());
}

TEST(TextExtraction, WholeMatchIsTheValueWithoutCaptures)
{
	Family f = extract(metric(R"(\d+\.\d+)"), "load is 0.75 now");
	DOUBLES_EQUAL(0.75, f.samples[0].value, 0);
}

TEST(TextExtraction, ValueTemplatePicksAnotherCapture)
{
	MetricConfig m = metric(R"((?<size>\d+) (?<used>\d+) (\d+))");
	m.valueTemplate = "${used}";
	DOUBLES_EQUAL(20, extract(m, "100 20 80").samples[0].value, 0);
	m.valueTemplate = "$3";
	DOUBLES_EQUAL(80, extract(m, "100 20 80").samples[0].value, 0);
	// Templates may build the number from several pieces.
	m = metric(R"((\d+)\.(\d+))");
	m.valueTemplate = "$2.$1";
	DOUBLES_EQUAL(5.12, extract(m, "12.5").samples[0].value, 1e-12);
}

TEST(TextExtraction, LabelTemplatesExpandCapturesLiteralsAndDollars)
{
	Family f = extract(metric(R"((?<dev>\S+) (?<mount>\S+) (?<value>\d+))",
	    {{"device", "$1"}, {"mount", "${mount}"}, {"kind", "disk"},
	     {"price", "$$5 for $1"}, {"odd", "a$b${"}}),
	    "sda1 /boot 5");
	const auto &s = f.samples[0];
	STRCMP_EQUAL("sda1", label(s, "device").c_str());
	STRCMP_EQUAL("/boot", label(s, "mount").c_str());
	STRCMP_EQUAL("disk", label(s, "kind").c_str());
	STRCMP_EQUAL("$5 for sda1", label(s, "price").c_str());
	STRCMP_EQUAL("a$b${", label(s, "odd").c_str());
	// Labels keep the order the operator wrote.
	STRCMP_EQUAL("device", s.labels[0].name.c_str());
	STRCMP_EQUAL("odd", s.labels[4].name.c_str());
}

TEST(TextExtraction, UnsetCaptureExpandsToEmpty)
{
	Family f = extract(metric(R"((\d+)(?: (\w+))?)", {{"unit", "$2"}}), "5 kB\n7\n");
	LONGS_EQUAL(2, f.samples.size());
	STRCMP_EQUAL("kB", label(f.samples[0], "unit").c_str());
	STRCMP_EQUAL("", label(f.samples[1], "unit").c_str());
	DOUBLES_EQUAL(7, f.samples[1].value, 0);
}

TEST(TextExtraction, TemplateNamingAMissingCaptureIsACompileError)
{
	auto x = TextExtractor::compile(metric(R"((\d+))", {{"mount", "${mount}"}}), false);
	CHECK_FALSE(x);
	STRCMP_EQUAL("label 'mount' refers to ${mount}, which the filter does not capture",
	    x.error().message.c_str());
	auto y = TextExtractor::compile(metric(R"((\d+))", {{"x", "$2"}}), false);
	CHECK_FALSE(y);
	STRCMP_CONTAINS("refers to $2", y.error().message.c_str());
	MetricConfig m = metric(R"((\d+))");
	m.valueTemplate = "${used}";
	auto z = TextExtractor::compile(m, false);
	CHECK_FALSE(z);
	STRCMP_EQUAL("value refers to ${used}, which the filter does not capture",
	    z.error().message.c_str());
}

TEST(TextExtraction, BadPatternIsACompileErrorWithItsOffset)
{
	auto x = TextExtractor::compile(metric(R"((\d+)"), false);
	CHECK_FALSE(x);
	STRCMP_CONTAINS("filter: missing closing parenthesis", x.error().message.c_str());
	STRCMP_CONTAINS("at offset 4", x.error().message.c_str());
}

TEST(TextExtraction, MultilineMakesAnchorsMatchAtLineEnds)
{
	const std::string text = "requests 10\nerrors 2\n";
	MetricConfig m = metric(R"(^(\w+) (\d+)$)", {{"kind", "$1"}});
	m.valueTemplate = "$2";
	Family f = extract(m, text, true);
	LONGS_EQUAL(2, f.samples.size());
	STRCMP_EQUAL("requests", label(f.samples[0], "kind").c_str());
	STRCMP_EQUAL("errors", label(f.samples[1], "kind").c_str());
	DOUBLES_EQUAL(2, f.samples[1].value, 0);
	// Without multiline ^ is the start of the text and $ its end.
	STRCMP_EQUAL("filter matched nothing", extractError(m, text, false).c_str());
	MetricConfig first = metric(R"(^(\w+) (\d+))", {{"kind", "$1"}});
	first.valueTemplate = "$2";
	Family one = extract(first, text, false);
	LONGS_EQUAL(1, one.samples.size());
	STRCMP_EQUAL("requests", label(one.samples[0], "kind").c_str());
}

TEST(TextExtraction, NoMatchIsAMetricError)
{
	STRCMP_EQUAL("filter matched nothing",
	    extractError(metric(R"(Active connections: (\d+))"), "502 Bad Gateway").c_str());
	STRCMP_EQUAL("filter matched nothing", extractError(metric(R"(\d+)"), "").c_str());
}

TEST(TextExtraction, ValueOnErrorKeepsLiteralLabelsAndBlanksCapturedOnes)
{
	MetricConfig m = metric(R"((\S+) (\d+))",
	    {{"mount", "$1"}, {"kind", "disk"}, {"note", "$$1 and $1"}, {"cost", "$$5"}});
	m.valueOnError = -1;
	Family f = worker::valueOnErrorFamily(m);
	STRCMP_EQUAL("test_metric", f.name.c_str());
	LONGS_EQUAL(1, f.samples.size());
	DOUBLES_EQUAL(-1, f.samples[0].value, 0);
	STRCMP_EQUAL("", label(f.samples[0], "mount").c_str());
	STRCMP_EQUAL("disk", label(f.samples[0], "kind").c_str());
	STRCMP_EQUAL("", label(f.samples[0], "note").c_str());
	STRCMP_EQUAL("$5", label(f.samples[0], "cost").c_str());
}

TEST(TextExtraction, ValuesMappingTurnsWordsIntoNumbers)
{
	MetricConfig m = metric(R"((\w+): (\w+))", {{"service", "$1"}});
	m.valueTemplate = "$2";
	m.values = {{"UP", 1}, {"DOWN", 0}, {"DEGRADED", 0.5}, {"7", 70}};
	Family f = extract(m, "web: UP\ndb: DOWN\ncache: DEGRADED\nq: 7\nr: 8\n");
	LONGS_EQUAL(5, f.samples.size());
	DOUBLES_EQUAL(1, f.samples[0].value, 0);
	DOUBLES_EQUAL(0, f.samples[1].value, 0);
	DOUBLES_EQUAL(0.5, f.samples[2].value, 0);
	// The mapping is consulted before the text is read as a number.
	DOUBLES_EQUAL(70, f.samples[3].value, 0);
	DOUBLES_EQUAL(8, f.samples[4].value, 0);
	// Mapping is exact: case matters.
	STRCMP_EQUAL("value 'up' is not a number", extractError(m, "web: up").c_str());
}

TEST(TextExtraction, ScaleMultipliesSourceNumbersOnly)
{
	MetricConfig m = metric(R"((\w+):\s+(\w+))", {{"field", "$1"}});
	m.valueTemplate = "$2";
	m.scale = 1024;
	m.values = {{"UP", 1}};
	Family f = extract(m, "MemTotal: 2048\nstate: UP\nflag: true\n", true);
	LONGS_EQUAL(3, f.samples.size());
	DOUBLES_EQUAL(2048.0 * 1024, f.samples[0].value, 0);
	DOUBLES_EQUAL(1, f.samples[1].value, 0);
	DOUBLES_EQUAL(1, f.samples[2].value, 0);
}

TEST(TextExtraction, AScaleThatIsAnInverseDividesExactly)
{
	MetricConfig m = metric(R"(v=(\S+))");
	m.scale = 0.001;
	// 180325 * 0.001 is 180.32500000000002; 180325 / 1000 is 180.325.
	DOUBLES_EQUAL(180.325, extract(m, "v=180325").samples[0].value, 0);
	m.scale = 0.125;
	DOUBLES_EQUAL(2.5, extract(m, "v=20").samples[0].value, 0);
	m.scale = 0.3;
	DOUBLES_EQUAL(10 * 0.3, extract(m, "v=10").samples[0].value, 0);
}

TEST(TextExtraction, BooleansAreOneAndZero)
{
	MetricConfig m = metric(R"(enabled=(\w+))");
	DOUBLES_EQUAL(1, extract(m, "enabled=true").samples[0].value, 0);
	DOUBLES_EQUAL(0, extract(m, "enabled=false").samples[0].value, 0);
	DOUBLES_EQUAL(1, extract(m, "enabled=True").samples[0].value, 0);
}

TEST(TextExtraction, NumbersInEveryFormPrometheusKnows)
{
	MetricConfig m = metric(R"(v=(\S+))");
	DOUBLES_EQUAL(1500, extract(m, "v=1.5e3").samples[0].value, 0);
	DOUBLES_EQUAL(-0.25, extract(m, "v=-0.25").samples[0].value, 0);
	CHECK(std::isnan(extract(m, "v=NaN").samples[0].value));
	double inf = extract(m, "v=+Inf").samples[0].value;
	CHECK(std::isinf(inf) && inf > 0);
	double ninf = extract(m, "v=-Inf").samples[0].value;
	CHECK(std::isinf(ninf) && ninf < 0);
	// Spaces around the value are trimmed.
	MetricConfig spaced = metric(R"(v=(.*)$)");
	DOUBLES_EQUAL(42, extract(spaced, "v=  42  ").samples[0].value, 0);
}

TEST(TextExtraction, UnparsableValueIsAMetricErrorQuotingIt)
{
	MetricConfig m = metric(R"(v=(\S*))");
	STRCMP_EQUAL("value '12abc' is not a number", extractError(m, "v=12abc").c_str());
	STRCMP_EQUAL("value '' is not a number", extractError(m, "v=").c_str());
	// One bad value fails the metric as a whole.
	STRCMP_EQUAL("value 'x' is not a number",
	    extractError(metric(R"((\w)=(?<value>\w))", {{"k", "$1"}}), "a=1 b=x c=3").c_str());
	// A very long value is shortened in the message.
	std::string msg = extractError(m, "v=" + std::string(500, 'z'));
	CHECK(msg.size() < 100);
	STRCMP_CONTAINS("...' is not a number", msg.c_str());
}

TEST(TextExtraction, Utf8TextAndInvalidBytes)
{
	Family f = extract(metric(R"((?<city>\w+|\S+): (?<value>\d+))", {{"city", "${city}"}}),
	    "Zürich: 5\nМосква: 7\n東京: 9\n");
	LONGS_EQUAL(3, f.samples.size());
	STRCMP_EQUAL("Zürich", label(f.samples[0], "city").c_str());
	STRCMP_EQUAL("Москва", label(f.samples[1], "city").c_str());
	STRCMP_EQUAL("東京", label(f.samples[2], "city").c_str());
	// Bytes that are not UTF-8 (here Latin-1 "é") become U+FFFD and do
	// not stop the text from matching.
	Family g = extract(metric(R"((\S+) (?<value>\d+))", {{"name", "$1"}}),
	    "caf\xe9 1\nbar 2\n");
	LONGS_EQUAL(2, g.samples.size());
	STRCMP_EQUAL("caf\xef\xbf\xbd", label(g.samples[0], "name").c_str());
	STRCMP_EQUAL("bar", label(g.samples[1], "name").c_str());
	// The dot is a character, not a byte.
	MetricConfig dot = metric(R"(^(.)(?<value>\d)$)", {{"c", "$1"}});
	Family h = extract(dot, "é5", true);
	STRCMP_EQUAL("é", label(h.samples[0], "c").c_str());
}

TEST(TextExtraction, EmptyMatchesAdvanceByOneCharacter)
{
	MetricConfig m = metric(R"(^(\S*)$)", {{"line", "$1"}});
	m.valueTemplate = "1";
	Family f = extract(m, "é\n\nü\nx", true);
	LONGS_EQUAL(4, f.samples.size());
	STRCMP_EQUAL("é", label(f.samples[0], "line").c_str());
	STRCMP_EQUAL("", label(f.samples[1], "line").c_str());
	STRCMP_EQUAL("ü", label(f.samples[2], "line").c_str());
	STRCMP_EQUAL("x", label(f.samples[3], "line").c_str());
	// A pattern that matches the empty string everywhere terminates, and
	// the matches it does produce are told apart by nothing: an error.
	MetricConfig star = metric(R"(x*)");
	star.valueTemplate = "1";
	STRCMP_CONTAINS("matched twice with the same labels",
	    extractError(star, "abc").c_str());
}

TEST(TextExtraction, DuplicateSeriesAreAMetricError)
{
	std::string msg = extractError(metric(R"((\w+)=(?<value>\d+))", {{"k", "$1"}}), "a=1 a=2");
	STRCMP_CONTAINS("matched twice with the same labels {k=\"a\"}", msg.c_str());
}

TEST(TextExtraction, TooManyMatchesAreAMetricError)
{
	std::string text;
	for (size_t i = 0; i <= worker::kMaxSeriesPerMetric; i++)
		text += std::to_string(i) + "\n";
	std::string msg = extractError(metric(R"((\d+))", {{"n", "$1"}}), text);
	STRCMP_EQUAL("filter matched more than 10000 times", msg.c_str());
}

TEST(TextExtraction, MappedHistogramHasNoSingleFilter)
{
	MetricConfig m = metric(R"((\d+))");
	m.type = common::MetricType::Histogram;
	auto x = TextExtractor::compile(m, false);
	CHECK_FALSE(x);
	STRCMP_EQUAL("a histogram read from the source has a filter per bucket, not one filter",
	    x.error().message.c_str());
}

// Observations repeat labels and may be absent: neither is an error.
TEST(TextExtraction, ObservationsMayRepeatAndBeAbsent)
{
	MetricConfig m = metric(R"(took (\d+)s)", {{"job", "backup"}});
	m.type = common::MetricType::Histogram;
	m.observe = true;
	Family f = extract(m, "took 5s\ntook 7s\n");
	LONGS_EQUAL(2, f.samples.size());
	DOUBLES_EQUAL(7, f.samples[1].value, 0);
	f = extract(m, "nothing new\n");
	LONGS_EQUAL(0, f.samples.size());
	m.type = common::MetricType::Summary;
	m.observe = false;
	LONGS_EQUAL(2, extract(m, "took 1s took 1s").samples.size());
	// A gauge with the same filter refuses both.
	m.type = common::MetricType::Gauge;
	STRCMP_CONTAINS("matched twice", extractError(m, "took 1s took 1s").c_str());
	STRCMP_EQUAL("filter matched nothing", extractError(m, "nothing").c_str());
}

TEST(TextExtraction, CountersCarryTheRawSourceValue)
{
	MetricConfig m = metric(R"(requests (\d+))");
	m.type = common::MetricType::Counter;
	Family f = extract(m, "requests 12345");
	CHECK(f.type == common::MetricType::Counter);
	DOUBLES_EQUAL(12345, f.samples[0].value, 0);
}

TEST(TextExtraction, DfPortableOutput)
{
	MetricConfig m = metric(
	    R"(^(?<device>/\S+)\s+(?<size>\d+)\s+(?<used>\d+)\s+(?<avail>\d+)\s+(?<pct>\d+)%\s+(?<mount>.+)$)",
	    {{"device", "${device}"}, {"mountpoint", "${mount}"}});
	m.valueTemplate = "${used}";
	Family f = extract(m, fixture("df-P.txt"), true);
	// udev and tmpfs do not start with '/': three real file systems.
	LONGS_EQUAL(3, f.samples.size());
	STRCMP_EQUAL("/dev/nvme0n1p2", label(f.samples[0], "device").c_str());
	STRCMP_EQUAL("/", label(f.samples[0], "mountpoint").c_str());
	DOUBLES_EQUAL(312517136, f.samples[0].value, 0);
	STRCMP_EQUAL("/boot/efi", label(f.samples[1], "mountpoint").c_str());
	DOUBLES_EQUAL(6216, f.samples[1].value, 0);
	STRCMP_EQUAL("/srv/backup", label(f.samples[2], "mountpoint").c_str());
	DOUBLES_EQUAL(987654321, f.samples[2].value, 0);

	MetricConfig pct = m;
	pct.valueTemplate = "${pct}";
	DOUBLES_EQUAL(55, extract(pct, fixture("df-P.txt"), true).samples[2].value, 0);
}

TEST(TextExtraction, ProcLoadavg)
{
	std::string text = fixture("loadavg.txt");
	DOUBLES_EQUAL(0.52, extract(metric(R"(^(\S+))"), text).samples[0].value, 0);
	MetricConfig five = metric(R"(^\S+ (\S+))");
	DOUBLES_EQUAL(0.58, extract(five, text).samples[0].value, 0);
	MetricConfig running = metric(R"((?<value>\d+)/(?<total>\d+))");
	DOUBLES_EQUAL(2, extract(running, text).samples[0].value, 0);
	running.valueTemplate = "${total}";
	DOUBLES_EQUAL(1291, extract(running, text).samples[0].value, 0);
}

TEST(TextExtraction, ProcMeminfo)
{
	std::string text = fixture("meminfo.txt");
	MetricConfig all = metric(R"(^(\w+):\s+(\d+) kB$)", {{"field", "$1"}});
	all.valueTemplate = "$2";
	Family f = extract(all, text, true);
	// The three HugePages lines without "kB" are not matched.
	LONGS_EQUAL(11, f.samples.size());
	STRCMP_EQUAL("MemTotal", label(f.samples[0], "field").c_str());
	DOUBLES_EQUAL(16275296, f.samples[0].value, 0);
	STRCMP_EQUAL("Hugepagesize", label(f.samples[10], "field").c_str());

	Family avail = extract(metric(R"(^MemAvailable:\s+(\d+))"), text, true);
	LONGS_EQUAL(1, avail.samples.size());
	DOUBLES_EQUAL(9284412, avail.samples[0].value, 0);
}

TEST(TextExtraction, StaticMetricsUseTheirValueAndLiteralLabels)
{
	MetricConfig m;
	m.name = "app_version_info";
	m.type = common::MetricType::Info;
	m.labels = {{"version", "1.2"}, {"raw", "$$1"}};
	auto f = worker::staticFamily(m);
	CHECK(f.has_value());
	DOUBLES_EQUAL(1, f->samples[0].value, 0);
	STRCMP_EQUAL("1.2", label(f->samples[0], "version").c_str());
	STRCMP_EQUAL("$1", label(f->samples[0], "raw").c_str());
	m.type = common::MetricType::Gauge;
	m.staticValue = 3.5;
	DOUBLES_EQUAL(3.5, worker::staticFamily(m)->samples[0].value, 0);
	m.staticValue.reset();
	CHECK_FALSE(worker::staticFamily(m));
}

// The captures of an info metric are its labels; its value is 1.
TEST(TextExtraction, InfoFromTextIsOne)
{
	MetricConfig m = metric(R"(^SubState=(\S+)$)", {{"sub_state", "$1"}});
	m.type = common::MetricType::Info;
	m.staticValue = 1; // as the loader sets it
	Family f = extract(m, "SubState=running", true);
	LONGS_EQUAL(1, f.samples.size());
	DOUBLES_EQUAL(1, f.samples[0].value, 0);
	STRCMP_EQUAL("running", label(f.samples[0], "sub_state").c_str());
}

// A stateset's value is one of its states (mapped to their indexes by
// the worker), never a number that would pass for an index.
TEST(TextExtraction, StateSetValueIsAState)
{
	MetricConfig m = metric(R"(^State=(\S+)$)");
	m.type = common::MetricType::StateSet;
	m.values = {{"up", 0}, {"down", 1}};
	DOUBLES_EQUAL(1, extract(m, "State=down", true).samples[0].value, 0);
	STRCMP_EQUAL("value '1' is not one of up, down", extractError(m, "State=1", true).c_str());
	STRCMP_EQUAL("value 'true' is not one of up, down",
	    extractError(m, "State=true", true).c_str());
}

TEST(TextExtraction, NulBytesBecomeReplacementCharacters)
{
	std::string text("a");
	text += '\0';
	text += "b 1";
	Family f = extract(metric(R"((\S+) (?<value>\d+))", {{"name", "$1"}}), text);
	STRCMP_EQUAL("a\xef\xbf\xbd" "b", label(f.samples[0], "name").c_str());
}

TEST(TextExtraction, CatastrophicBacktrackingHitsTheMatchLimit)
{
	MetricConfig m = metric(R"(^(\w+\s?)*$)");
	m.valueTemplate = "1";
	std::string text(40, 'a');
	text += "!";
	std::string msg = extractError(m, text);
	STRCMP_CONTAINS("filter: match limit exceeded", msg.c_str());
}
