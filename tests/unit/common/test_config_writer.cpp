// SPDX-License-Identifier: ISC
// Configuration writer: what writeServiceDocument()/writeConfig() emit loads back equal.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/config_loader.hpp"
#include "common/config_writer.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme::common;

namespace {

std::string sourceRoot()
{
	const char *root = std::getenv("PME_SOURCE_ROOT");
	return root ? root : ".";
}

Config load(const std::string &yaml, const std::string &name = "t.yml")
{
	auto r = loadConfigString(yaml, name);
	if (!r) {
		std::string all;
		for (const auto &e : r.error())
			all += e.str() + "\n";
		FAIL(("unexpected errors:\n" + all + "in:\n" + yaml).c_str());
	}
	return *r;
}

void checkDouble(double want, double got)
{
	if (std::isnan(want)) {
		CHECK_TRUE(std::isnan(got));
		return;
	}
	// Exactly the same bits: -0 stays -0, denormals stay.
	uint64_t a, b;
	std::memcpy(&a, &want, sizeof(a));
	std::memcpy(&b, &got, sizeof(b));
	if (a != b)
		FAIL(("double " + std::to_string(want) + " came back as " +
		    std::to_string(got)).c_str());
}

void checkOptDouble(const std::optional<double> &want, const std::optional<double> &got)
{
	CHECK_EQUAL(want.has_value(), got.has_value());
	if (want && got)
		checkDouble(*want, *got);
}

void checkPairs(const Pairs &want, const Pairs &got)
{
	LONGS_EQUAL(want.size(), got.size());
	for (size_t i = 0; i < want.size() && i < got.size(); i++) {
		STRCMP_EQUAL(want[i].first.c_str(), got[i].first.c_str());
		STRCMP_EQUAL(want[i].second.c_str(), got[i].second.c_str());
	}
}

void checkMetric(const MetricConfig &want, const MetricConfig &got)
{
	STRCMP_EQUAL(want.key.c_str(), got.key.c_str());
	STRCMP_EQUAL(want.name.c_str(), got.name.c_str());
	STRCMP_EQUAL(want.baseName.c_str(), got.baseName.c_str());
	CHECK(want.type == got.type);
	STRCMP_EQUAL(want.description.c_str(), got.description.c_str());
	STRCMP_EQUAL(want.unit.c_str(), got.unit.c_str());
	STRCMP_EQUAL(want.filter.c_str(), got.filter.c_str());
	CHECK_EQUAL(want.valueTemplate.has_value(), got.valueTemplate.has_value());
	if (want.valueTemplate && got.valueTemplate)
		STRCMP_EQUAL(want.valueTemplate->c_str(), got.valueTemplate->c_str());
	checkOptDouble(want.staticValue, got.staticValue);
	checkOptDouble(want.valueOnError, got.valueOnError);
	checkDouble(want.scale, got.scale);
	checkPairs(want.labels, got.labels);
	STRCMP_EQUAL(want.valueRegex.c_str(), got.valueRegex.c_str());
	LONGS_EQUAL(want.values.size(), got.values.size());
	for (size_t i = 0; i < want.values.size() && i < got.values.size(); i++) {
		STRCMP_EQUAL(want.values[i].first.c_str(), got.values[i].first.c_str());
		checkDouble(want.values[i].second, got.values[i].second);
	}
	CHECK_EQUAL(want.observe, got.observe);
	LONGS_EQUAL(want.bucketBounds.size(), got.bucketBounds.size());
	for (size_t i = 0; i < want.bucketBounds.size() && i < got.bucketBounds.size(); i++)
		checkDouble(want.bucketBounds[i], got.bucketBounds[i]);
	LONGS_EQUAL(want.bucketFilters.size(), got.bucketFilters.size());
	for (size_t i = 0; i < want.bucketFilters.size() && i < got.bucketFilters.size(); i++) {
		checkDouble(want.bucketFilters[i].first, got.bucketFilters[i].first);
		STRCMP_EQUAL(want.bucketFilters[i].second.c_str(), got.bucketFilters[i].second.c_str());
	}
	STRCMP_EQUAL(want.sumFilter.c_str(), got.sumFilter.c_str());
	STRCMP_EQUAL(want.countFilter.c_str(), got.countFilter.c_str());
	CHECK_EQUAL(want.cumulative, got.cumulative);
	LONGS_EQUAL(want.quantiles.size(), got.quantiles.size());
	for (size_t i = 0; i < want.quantiles.size() && i < got.quantiles.size(); i++)
		checkDouble(want.quantiles[i], got.quantiles[i]);
	LONGS_EQUAL(want.maxAge.count(), got.maxAge.count());
	LONGS_EQUAL(want.ageBuckets, got.ageBuckets);
	LONGS_EQUAL(want.states.size(), got.states.size());
	for (size_t i = 0; i < want.states.size() && i < got.states.size(); i++)
		STRCMP_EQUAL(want.states[i].c_str(), got.states[i].c_str());
}

void checkGroup(const GroupConfig &want, const GroupConfig &got)
{
	STRCMP_EQUAL(want.key.c_str(), got.key.c_str());
	CHECK_EQUAL(want.standalone, got.standalone);
	CHECK(want.sourceType == got.sourceType);
	STRCMP_EQUAL(want.source.c_str(), got.source.c_str());
	LONGS_EQUAL(want.argv.size(), got.argv.size());
	for (size_t i = 0; i < want.argv.size() && i < got.argv.size(); i++)
		STRCMP_EQUAL(want.argv[i].c_str(), got.argv[i].c_str());
	CHECK_EQUAL(want.shell, got.shell);
	CHECK(want.contentType == got.contentType);
	// The document holds the effective interval, explicitly.
	LONGS_EQUAL(want.effectiveInterval.count(), got.effectiveInterval.count());
	LONGS_EQUAL(want.effectiveInterval.count(), got.interval.value_or(Millis{-1}).count());
	LONGS_EQUAL(want.timeout.count(), got.timeout.count());
	LONGS_EQUAL(want.cacheTtl.count(), got.cacheTtl.count());
	CHECK_EQUAL(want.staleAfter.has_value(), got.staleAfter.has_value());
	LONGS_EQUAL(want.staleAfterOrDefault().count(), got.staleAfterOrDefault().count());
	UNSIGNED_LONGS_EQUAL(want.maxOutput, got.maxOutput);
	CHECK_EQUAL(want.multiline, got.multiline);
	checkPairs(want.env, got.env);
	checkPairs(want.labels, got.labels);
	checkPairs(want.namespaces, got.namespaces);
	STRCMP_EQUAL(want.import.prefix.c_str(), got.import.prefix.c_str());
	CHECK(want.import.include == got.import.include);
	CHECK(want.import.exclude == got.import.exclude);
	CHECK_EQUAL(want.import.honorTimestamps, got.import.honorTimestamps);
	const HttpConfig &wh = want.http, &gh = got.http;
	STRCMP_EQUAL(wh.method.c_str(), gh.method.c_str());
	STRCMP_EQUAL(wh.body.c_str(), gh.body.c_str());
	checkPairs(wh.headers, gh.headers);
	STRCMP_EQUAL(wh.username.c_str(), gh.username.c_str());
	STRCMP_EQUAL(wh.password.c_str(), gh.password.c_str());
	STRCMP_EQUAL(wh.passwordFile.c_str(), gh.passwordFile.c_str());
	STRCMP_EQUAL(wh.token.c_str(), gh.token.c_str());
	STRCMP_EQUAL(wh.tokenFile.c_str(), gh.tokenFile.c_str());
	LONGS_EQUAL(wh.maxRedirects, gh.maxRedirects);
	CHECK_EQUAL(wh.cache, gh.cache);
	LONGS_EQUAL(want.metrics.size(), got.metrics.size());
	for (size_t i = 0; i < want.metrics.size() && i < got.metrics.size(); i++)
		checkMetric(want.metrics[i], got.metrics[i]);
}

void checkService(const ServiceConfig &want, const ServiceConfig &got)
{
	STRCMP_EQUAL(want.key.c_str(), got.key.c_str());
	STRCMP_EQUAL(want.name.c_str(), got.name.c_str());
	STRCMP_EQUAL(want.metricPrefix.c_str(), got.metricPrefix.c_str());
	checkPairs(want.labels, got.labels);
	STRCMP_EQUAL(want.runAs.user.c_str(), got.runAs.user.c_str());
	STRCMP_EQUAL(want.runAs.group.c_str(), got.runAs.group.c_str());
	CHECK_EQUAL(want.allowRoot, got.allowRoot);
	LONGS_EQUAL(want.effectiveInterval.count(), got.effectiveInterval.count());
	LONGS_EQUAL(want.effectiveInterval.count(), got.interval.value_or(Millis{-1}).count());
	checkPairs(want.env, got.env);
	CHECK_EQUAL(want.sandbox.seccomp.has_value(), got.sandbox.seccomp.has_value());
	CHECK_EQUAL(want.sandbox.seccompWanted(), got.sandbox.seccompWanted());
	LONGS_EQUAL(want.sandbox.landlock.size(), got.sandbox.landlock.size());
	for (size_t i = 0; i < want.sandbox.landlock.size() && i < got.sandbox.landlock.size(); i++)
		STRCMP_EQUAL(want.sandbox.landlock[i].c_str(), got.sandbox.landlock[i].c_str());
	LONGS_EQUAL(want.groups.size(), got.groups.size());
	for (size_t i = 0; i < want.groups.size() && i < got.groups.size(); i++)
		checkGroup(want.groups[i], got.groups[i]);
}

// writeServiceDocument() of every service of c, loaded back and compared.
void roundTrip(const Config &c)
{
	for (const auto &s : c.services) {
		std::string doc = writeServiceDocument(c, s);
		Config back = load(doc, "worker");
		LONGS_EQUAL(1, back.services.size());
		LONGS_EQUAL(c.exporter.interval.count(), back.exporter.interval.count());
		checkService(s, back.services[0]);
	}
}

Config full()
{
	auto r = loadConfigFile(sourceRoot() + "/tests/data/config/full.yml");
	if (!r)
		FAIL("full.yml does not load");
	return *r;
}

// Strings that YAML would take for something else, or that need quoting
// or escaping of one kind or another.
const std::vector<std::string> awkward = {
	"", " ", "  leading", "trailing  ", "it's", "say \"hi\"", "back\\slash", "a: b", "a:b",
	"# not a comment", "x # y", "line\nbreak", "ends with newline\n", "\nstarts", "tab\there",
	"cr\rlf\r\n", "yes", "No", "on", "OFF", "true", "y", "n", "~", "null", "NULL", "1", "-1",
	"+1", "1.5", ".5", "1e5", "0x1f", "0o17", ".inf", "-.inf", ".nan", "12:30", "- item",
	"-", "--- doc", "...", "? key", "&anchor", "*alias", "!tag", "!!str", "%directive", "@at",
	"`tick", "{brace", "[bracket", "]", "}", "|", ">", "'", "\"", ",", "a, b", "caf\xc3\xa9",
	"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "emoji \xf0\x9f\x93\x88", "\xe2\x80\xa8sep",
	"nel\xc2\x85", "\xef\xbb\xbf" "bom", "del\x7f", "bell\x07", "<<", "=", ":9999",
	"very long " + std::string(300, 'x'),
};

} // namespace

TEST_GROUP(ConfigWriter) {};

TEST(ConfigWriter, RichServicesRoundTrip)
{
	roundTrip(full());
}

TEST(ConfigWriter, ServiceDocumentHoldsOnlyThatService)
{
	Config c = full();
	std::string doc = writeServiceDocument(c, c.services[1]);
	Config back = load(doc);
	LONGS_EQUAL(1, back.services.size());
	STRCMP_EQUAL("backup", back.services[0].key.c_str());
	CHECK(doc.find("nginx") == std::string::npos);
	// Only the interval of the exporter: the worker has no use for the rest.
	CHECK(doc.find("listen") == std::string::npos);
	CHECK(doc.find("prometheus") == std::string::npos);
}

TEST(ConfigWriter, WholeConfigurationRoundTrips)
{
	Config c = full();
	Config back = load(writeConfig(c));
	LONGS_EQUAL(c.exporter.listen.size(), back.exporter.listen.size());
	for (size_t i = 0; i < c.exporter.listen.size(); i++)
		STRCMP_EQUAL(c.exporter.listen[i].c_str(), back.exporter.listen[i].c_str());
	STRCMP_EQUAL(c.exporter.healthListen.c_str(), back.exporter.healthListen.c_str());
	LONGS_EQUAL(c.exporter.interval.count(), back.exporter.interval.count());
	STRCMP_EQUAL(c.exporter.user.c_str(), back.exporter.user.c_str());
	LONGS_EQUAL(c.services.size(), back.services.size());
	for (size_t i = 0; i < c.services.size(); i++)
		checkService(c.services[i], back.services[i]);
}

TEST(ConfigWriter, EmptyConfigurationRoundTrips)
{
	Config c = load("exporter: { interval: 1500ms }\n");
	Config back = load(writeConfig(c));
	CHECK(back.services.empty());
	LONGS_EQUAL(1500, back.exporter.interval.count());
}

TEST(ConfigWriter, AwkwardStringsRoundTrip)
{
	Config c = load(R"(services:
  app:
    metric_groups:
      g:
        source_type: command
        source: [prog]
        metrics:
          m_seconds:
            filter: '(\d+)'
            value: "$1"
)");
	ServiceConfig &s = c.services[0];
	GroupConfig &g = s.groups[0];
	MetricConfig &m = g.metrics[0];
	for (size_t i = 0; i < awkward.size(); i++) {
		const std::string &a = awkward[i];
		std::string n = std::to_string(i);
		m.labels.emplace_back("l" + n, a);
		m.values.emplace_back(a, static_cast<double>(i));
		g.env.emplace_back("E" + n, a);
		g.argv.push_back(a);
		s.env.emplace_back(a.empty() || a.find('=') != std::string::npos ? "X" + n : a, a);
	}
	m.description = "every\tone: " + awkward[10] + awkward[20];
	m.unit = "seconds";
	m.valueTemplate = "1";   // a template, although a number to look at
	s.name = "name: \"x\" # y\n";
	s.runAs.user = "yes";
	s.runAs.group = "0o17";
	g.source = "";
	for (const auto &arg : g.argv)
		g.source += (g.source.empty() ? "" : " ") + arg;
	// The source of a list is its words joined: compare the argv only.
	std::string doc = writeServiceDocument(c, s);
	Config back = load(doc);
	const ServiceConfig &b = back.services[0];
	checkPairs(s.env, b.env);
	checkPairs(g.env, b.groups[0].env);
	LONGS_EQUAL(g.argv.size(), b.groups[0].argv.size());
	for (size_t i = 0; i < g.argv.size(); i++)
		STRCMP_EQUAL(g.argv[i].c_str(), b.groups[0].argv[i].c_str());
	checkMetric(m, b.groups[0].metrics[0]);
	STRCMP_EQUAL(s.name.c_str(), b.name.c_str());
	STRCMP_EQUAL("yes", b.runAs.user.c_str());
	STRCMP_EQUAL("0o17", b.runAs.group.c_str());
}

TEST(ConfigWriter, AwkwardKeysRoundTrip)
{
	for (const auto &a : awkward) {
		if (a.empty())
			continue; // keys must not be empty
		Config c = load("services:\n  x:\n    metric_groups:\n      g:\n"
		    "        source_type: file\n        source: /f\n"
		    "        metrics: { m: { filter: '.' } }\n");
		c.services[0].key = a;
		c.services[0].groups[0].key = a;
		Config back = load(writeServiceDocument(c, c.services[0]));
		STRCMP_EQUAL(a.c_str(), back.services[0].key.c_str());
		STRCMP_EQUAL(a.c_str(), back.services[0].groups[0].key.c_str());
	}
}

TEST(ConfigWriter, ShellCommandAndFilePathsRoundTrip)
{
	Config c = load(R"(services:
  app:
    standalone_metrics:
      a: { command: "df -P / | awk 'NR==2 {print $5}'", shell: yes, filter: '(\d+)' }
      b: { source_type: file, source: "/var/lib/x y/#state: 1", filter: '(\d+)' }
)");
	roundTrip(c);
}

TEST(ConfigWriter, DoublesAreWrittenExactly)
{
	Config c = load("services:\n  a:\n    standalone_metrics:\n      x: { value: 1 }\n");
	MetricConfig &m = c.services[0].groups[0].metrics[0];
	const double specials[] = {0.1, 1.0 / 3, -0.0, 5e-324, 1.7976931348623157e308, 1e21,
		123456789012345678.0, -2.5e-8, HUGE_VAL, -HUGE_VAL, std::nan("")};
	for (double v : specials) {
		m.staticValue = v;
		m.valueOnError = -v;
		m.values = {{"a", v}, {"b", v * 2}};
		Config back = load(writeServiceDocument(c, c.services[0]));
		checkMetric(m, back.services[0].groups[0].metrics[0]);
	}
}

TEST(ConfigWriter, DurationsAreWrittenInTheirShortestForm)
{
	Config c = load(R"(exporter: { interval: 1500ms }
services:
  a:
    interval: 3s
    standalone_metrics:
      x: { value: 1, interval: 61s, timeout: 90s, cache_ttl: 1d1ms, stale_after: 2h }
)");
	std::string doc = writeServiceDocument(c, c.services[0]);
	STRCMP_CONTAINS("interval: 1500ms\n", doc.c_str());
	STRCMP_CONTAINS("interval: 3s\n", doc.c_str());
	STRCMP_CONTAINS("interval: 61500ms\n", doc.c_str()); // 61s rounded up to 41 x 1.5s
	STRCMP_CONTAINS("timeout: 90s\n", doc.c_str());
	STRCMP_CONTAINS("cache_ttl: 1d1ms\n", doc.c_str());
	STRCMP_CONTAINS("stale_after: 2h\n", doc.c_str());
	roundTrip(c);
}

TEST(ConfigWriter, InvalidUtf8InTheModelIsABug)
{
	Config c = load("services:\n  a:\n    standalone_metrics:\n      x: { value: 1 }\n");
	c.services[0].groups[0].metrics[0].description = "bad \xff byte";
	CHECK_THROWS(std::logic_error, writeServiceDocument(c, c.services[0]));
}

TEST(ConfigWriter, SandboxRoundTripsAndTheDefaultStaysUnwritten)
{
	Config c = load(R"(services:
  default:
    standalone_metrics: { x: { value: 1 } }
  off:
    sandbox: { seccomp: false }
    standalone_metrics: { x: { value: 1 } }
  on:
    sandbox: { seccomp: true, landlock: [/proc, /usr, "/srv/a: b #c", /etc/ld.so.cache] }
    standalone_metrics: { x: { value: 1 } }
  landlock_only:
    sandbox: { landlock: ["/yes", "/1"] }
    standalone_metrics: { x: { value: 1 } }
)");
	roundTrip(c);
	// Unset is not the same as true: a worker refuses to run without an
	// explicit filter, and warns without a default one.
	std::string doc = writeServiceDocument(c, c.services[0]);
	CHECK(doc.find("sandbox") == std::string::npos);
	doc = writeServiceDocument(c, c.services[3]);
	CHECK(doc.find("seccomp") == std::string::npos);
	STRCMP_CONTAINS("seccomp: false", writeServiceDocument(c, c.services[1]).c_str());
	STRCMP_CONTAINS("seccomp: true", writeServiceDocument(c, c.services[2]).c_str());
	Config back = load(writeConfig(c));
	LONGS_EQUAL(4, back.services.size());
	for (size_t i = 0; i < c.services.size(); i++)
		checkService(c.services[i], back.services[i]);
}
