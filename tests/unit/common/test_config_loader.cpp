// SPDX-License-Identifier: ISC
// Configuration loading: the pme.yml(5) schema, its defaults, and every error with its position.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/config_loader.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme::common;

namespace {

std::string sourceRoot()
{
	const char *root = std::getenv("PME_SOURCE_ROOT");
	return root ? root : ".";
}

Config load(const std::string &yaml)
{
	auto r = loadConfigString(yaml, "t.yml");
	if (!r) {
		std::string all;
		for (const auto &e : r.error())
			all += e.str() + "\n";
		FAIL(("unexpected errors:\n" + all).c_str());
	}
	return *r;
}

Errors errorsOf(const std::string &yaml)
{
	auto r = loadConfigString(yaml, "t.yml");
	if (r)
		FAIL("the configuration loaded without error");
	return r.error();
}

std::string listErrors(const Errors &errors)
{
	std::string all;
	for (const auto &e : errors)
		all += "  " + e.str() + "\n";
	return all;
}

// The one error of yaml, at line:column, containing text.
void expectError(const std::string &yaml, int line, int column, const std::string &text)
{
	Errors errors = errorsOf(yaml);
	if (errors.size() != 1)
		FAIL(("expected one error, got:\n" + listErrors(errors)).c_str());
	const Error &e = errors[0];
	STRCMP_EQUAL("t.yml", e.where.file.c_str());
	if (e.where.line != line || e.where.column != column || e.message.find(text) ==
	    std::string::npos)
		FAIL(("expected t.yml:" + std::to_string(line) + ":" + std::to_string(column) +
		    ": ..." + text + "..., got " + e.str()).c_str());
}

// A service wrapped around one metric group body (indented 6 spaces).
std::string withGroup(const std::string &body)
{
	return "services:\n"
	    "  svc:\n"
	    "    metric_groups:\n"
	    "      g:\n" + body;
}

} // namespace

TEST_GROUP(Defaults) {};

TEST(Defaults, MinimalConfigurationGetsEveryDefault)
{
	Config c = load(R"(services:
  app:
    metric_groups:
      load:
        source_type: file
        source: /proc/loadavg
        metrics:
          load1:
            filter: '^(\S+)'
)");
	STRCMP_EQUAL("t.yml", c.path.c_str());
	LONGS_EQUAL(1, c.exporter.listen.size());
	STRCMP_EQUAL("127.0.0.1:10064", c.exporter.listen[0].c_str());
	STRCMP_EQUAL("", c.exporter.healthListen.c_str());
	LONGS_EQUAL(5000, c.exporter.interval.count());
	STRCMP_EQUAL("pme", c.exporter.user.c_str());
	CHECK(c.exporter.include.empty());

	LONGS_EQUAL(1, c.services.size());
	const ServiceConfig &s = c.services[0];
	STRCMP_EQUAL("app", s.key.c_str());
	STRCMP_EQUAL("app", s.name.c_str());
	STRCMP_EQUAL("", s.metricPrefix.c_str());
	CHECK(s.labels.empty());
	STRCMP_EQUAL("", s.runAs.user.c_str());
	STRCMP_EQUAL("", s.runAs.group.c_str());
	CHECK_FALSE(s.allowRoot);
	CHECK_FALSE(s.interval.has_value());
	LONGS_EQUAL(5000, s.effectiveInterval.count());
	CHECK(s.env.empty());
	LONGS_EQUAL(2, s.where.line);
	LONGS_EQUAL(3, s.where.column);

	LONGS_EQUAL(1, s.groups.size());
	const GroupConfig &g = s.groups[0];
	STRCMP_EQUAL("load", g.key.c_str());
	CHECK_FALSE(g.standalone);
	CHECK(g.sourceType == SourceType::File);
	STRCMP_EQUAL("/proc/loadavg", g.source.c_str());
	CHECK(g.argv.empty());
	CHECK_FALSE(g.shell);
	CHECK(g.contentType == ContentType::Text);
	CHECK_FALSE(g.interval.has_value());
	LONGS_EQUAL(5000, g.effectiveInterval.count());
	LONGS_EQUAL(10000, g.timeout.count());
	LONGS_EQUAL(0, g.cacheTtl.count());
	CHECK_FALSE(g.staleAfter.has_value());
	LONGS_EQUAL(15000, g.staleAfterOrDefault().count());
	LONGS_EQUAL(1024 * 1024, g.maxOutput);
	CHECK_FALSE(g.multiline);
	CHECK(g.env.empty());
	LONGS_EQUAL(4, g.where.line);
	LONGS_EQUAL(7, g.where.column);

	LONGS_EQUAL(1, g.metrics.size());
	const MetricConfig &m = g.metrics[0];
	STRCMP_EQUAL("load1", m.key.c_str());
	STRCMP_EQUAL("load1", m.name.c_str());
	STRCMP_EQUAL("load1", m.baseName.c_str());
	CHECK(m.type == MetricType::Gauge);
	STRCMP_EQUAL("load1", m.description.c_str());
	STRCMP_EQUAL("^(\\S+)", m.filter.c_str());
	CHECK_FALSE(m.valueTemplate.has_value());
	CHECK_FALSE(m.staticValue.has_value());
	CHECK_FALSE(m.valueOnError.has_value());
	DOUBLES_EQUAL(1.0, m.scale, 0);
	CHECK(m.labels.empty());
	CHECK(m.values.empty());
	STRCMP_EQUAL("t.yml", m.where.file.c_str());
	LONGS_EQUAL(8, m.where.line);
	LONGS_EQUAL(11, m.where.column);
}

TEST(Defaults, NoServicesIsAValidConfiguration)
{
	Config c = load("exporter:\n  interval: 15s\n");
	CHECK(c.services.empty());
	LONGS_EQUAL(15000, c.exporter.interval.count());
	c = load("services:\n");
	CHECK(c.services.empty());
}

TEST(Defaults, StaticGroupNeedsNoSourceType)
{
	Config c = load(R"(services:
  app:
    standalone_metrics:
      build_info: { type: info, labels: { version: "1.2" } }
      answer: { value: 42 }
)");
	const auto &groups = c.services[0].groups;
	LONGS_EQUAL(2, groups.size());
	CHECK(groups[0].sourceType == SourceType::Static);
	CHECK(groups[0].metrics[0].type == MetricType::Info);
	// An info metric is 1 unless told otherwise.
	DOUBLES_EQUAL(1.0, *groups[0].metrics[0].staticValue, 0);
	DOUBLES_EQUAL(42.0, *groups[1].metrics[0].staticValue, 0);
}

TEST(Defaults, CommandKeyImpliesACommandSource)
{
	Config c = load(R"(services:
  app:
    standalone_metrics:
      users:
        command: [who, -q]
        filter: 'users=(\d+)'
)");
	const GroupConfig &g = c.services[0].groups[0];
	CHECK(g.sourceType == SourceType::Command);
	LONGS_EQUAL(2, g.argv.size());
	STRCMP_EQUAL("who", g.argv[0].c_str());
	STRCMP_EQUAL("-q", g.argv[1].c_str());
	STRCMP_EQUAL("who -q", g.source.c_str());
}

TEST_GROUP(FullConfiguration)
{
	Config c;

	void setup() override
	{
		std::string path = sourceRoot() + "/tests/data/config/full.yml";
		auto r = loadConfigFile(path);
		if (!r)
			FAIL(("full.yml: " + listErrors(r.error())).c_str());
		c = *r;
		STRCMP_EQUAL(path.c_str(), c.path.c_str());
	}
};

TEST(FullConfiguration, Exporter)
{
	const auto &e = c.exporter;
	LONGS_EQUAL(3, e.listen.size());
	STRCMP_EQUAL("127.0.0.1:10064", e.listen[0].c_str());
	STRCMP_EQUAL("[::1]:10064", e.listen[1].c_str());
	STRCMP_EQUAL(":9999", e.listen[2].c_str());
	STRCMP_EQUAL("127.0.0.1:10065", e.healthListen.c_str());
	LONGS_EQUAL(10000, e.interval.count());
	STRCMP_EQUAL("prometheus", e.user.c_str());
}

TEST(FullConfiguration, Service)
{
	LONGS_EQUAL(3, c.services.size());
	const ServiceConfig &s = c.services[0];
	STRCMP_EQUAL("nginx", s.key.c_str());
	STRCMP_EQUAL("web", s.name.c_str());
	CHECK(c.findService("web") == &s);
	CHECK(c.findService("nginx") == nullptr);
	STRCMP_EQUAL("nginx_", s.metricPrefix.c_str());
	LONGS_EQUAL(2, s.labels.size());
	STRCMP_EQUAL("role", s.labels[0].first.c_str());
	STRCMP_EQUAL("web", s.labels[0].second.c_str());
	STRCMP_EQUAL("tier", s.labels[1].first.c_str());
	STRCMP_EQUAL("1", s.labels[1].second.c_str());
	STRCMP_EQUAL("www-data", s.runAs.user.c_str());
	STRCMP_EQUAL("adm", s.runAs.group.c_str());
	LONGS_EQUAL(13, s.runAsWhere.line);
	LONGS_EQUAL(13, s.runAsWhere.column);
	CHECK_TRUE(s.allowRoot);
	LONGS_EQUAL(30000, s.interval->count());
	LONGS_EQUAL(30000, s.effectiveInterval.count());
	LONGS_EQUAL(2, s.env.size());
	STRCMP_EQUAL("LANG", s.env[0].first.c_str());
	STRCMP_EQUAL("C", s.env[0].second.c_str());
	STRCMP_EQUAL("TZ", s.env[1].first.c_str());
	// metric_groups in file order, then standalone_metrics.
	LONGS_EQUAL(4, s.groups.size());
	STRCMP_EQUAL("status", s.groups[0].key.c_str());
	STRCMP_EQUAL("state", s.groups[1].key.c_str());
	STRCMP_EQUAL("version_info", s.groups[2].key.c_str());
	STRCMP_EQUAL("uptime", s.groups[3].key.c_str());

	const ServiceConfig &b = c.services[1];
	STRCMP_EQUAL("backup", b.name.c_str());
	STRCMP_EQUAL("backup", b.runAs.user.c_str());
	STRCMP_EQUAL("", b.runAs.group.c_str());
	LONGS_EQUAL(10000, b.effectiveInterval.count());
}

TEST(FullConfiguration, CommandGroup)
{
	const GroupConfig &g = c.services[0].groups[0];
	CHECK_FALSE(g.standalone);
	CHECK(g.sourceType == SourceType::Command);
	LONGS_EQUAL(3, g.argv.size());
	STRCMP_EQUAL("/usr/bin/curl", g.argv[0].c_str());
	STRCMP_EQUAL("http://127.0.0.1/nginx_status", g.argv[2].c_str());
	CHECK_FALSE(g.shell);
	CHECK(g.contentType == ContentType::Text);
	LONGS_EQUAL(63000, g.interval->count());
	// 63s rounded up to a multiple of the global 10s.
	LONGS_EQUAL(70000, g.effectiveInterval.count());
	LONGS_EQUAL(2000, g.timeout.count());
	LONGS_EQUAL(1000, g.cacheTtl.count());
	LONGS_EQUAL(300000, g.staleAfter->count());
	LONGS_EQUAL(300000, g.staleAfterOrDefault().count());
	LONGS_EQUAL(64 * 1024, g.maxOutput);
	CHECK_TRUE(g.multiline);
	LONGS_EQUAL(1, g.env.size());
	STRCMP_EQUAL("CURL_HOME", g.env[0].first.c_str());

	LONGS_EQUAL(2, g.metrics.size());
	const MetricConfig &a = g.metrics[0];
	STRCMP_EQUAL("active_connections", a.key.c_str());
	STRCMP_EQUAL("connections_active", a.baseName.c_str());
	STRCMP_EQUAL("nginx_connections_active", a.name.c_str());
	CHECK(a.type == MetricType::Gauge);
	STRCMP_EQUAL("Open client connections", a.description.c_str());
	STRCMP_EQUAL("^Active connections:\\s+(\\d+)", a.filter.c_str());
	DOUBLES_EQUAL(-1.0, *a.valueOnError, 0);
	DOUBLES_EQUAL(1024.0, a.scale, 0);

	const MetricConfig &r = g.metrics[1];
	STRCMP_EQUAL("nginx_requests", r.name.c_str());
	STRCMP_EQUAL("nginx_requests", r.description.c_str());
	CHECK(r.type == MetricType::Counter);
	STRCMP_EQUAL("${total}", r.valueTemplate->c_str());
	CHECK_FALSE(r.staticValue.has_value());
	LONGS_EQUAL(1, r.labels.size());
	STRCMP_EQUAL("kind", r.labels[0].first.c_str());
	STRCMP_EQUAL("$1 ${handled} $$", r.labels[0].second.c_str());
}

TEST(FullConfiguration, FileGroupWithValueMapping)
{
	const GroupConfig &g = c.services[0].groups[1];
	CHECK(g.sourceType == SourceType::File);
	STRCMP_EQUAL("/run/nginx.state", g.source.c_str());
	LONGS_EQUAL(60000, g.effectiveInterval.count());
	LONGS_EQUAL(180000, g.staleAfterOrDefault().count());
	const auto &values = g.metrics[0].values;
	LONGS_EQUAL(3, values.size());
	STRCMP_EQUAL("UP", values[0].first.c_str());
	DOUBLES_EQUAL(1.0, values[0].second, 0);
	STRCMP_EQUAL("DOWN", values[1].first.c_str());
	DOUBLES_EQUAL(0.0, values[1].second, 0);
	STRCMP_EQUAL("maybe", values[2].first.c_str());
	DOUBLES_EQUAL(0.5, values[2].second, 0);
}

TEST(FullConfiguration, StructuredContent)
{
	const ServiceConfig &s = c.services[2];
	LONGS_EQUAL(5, s.groups.size());
	const GroupConfig &json = s.groups[0], &xml = s.groups[1], &prom = s.groups[2];
	CHECK(json.contentType == ContentType::Json);
	CHECK(json.labels == Pairs({{"cluster", "main"}}));
	STRCMP_EQUAL("${^^^key}", json.metrics[0].labels[1].second.c_str());
	STRCMP_EQUAL("([0-9.]+)ms", json.metrics[1].valueRegex.c_str());
	CHECK(xml.contentType == ContentType::Xml);
	CHECK(xml.namespaces == Pairs({{"r", "urn:example:rtmp"}}));
	CHECK(prom.contentType == ContentType::Prometheus);
	CHECK(prom.metrics.empty());
	STRCMP_EQUAL("upstream_", prom.import.prefix.c_str());
	LONGS_EQUAL(2, prom.import.include.size());
	LONGS_EQUAL(1, prom.import.exclude.size());
	CHECK(prom.import.honorTimestamps);
}

TEST(FullConfiguration, StandaloneMetrics)
{
	const GroupConfig &v = c.services[0].groups[2];
	CHECK_TRUE(v.standalone);
	CHECK(v.sourceType == SourceType::Static);
	LONGS_EQUAL(30000, v.effectiveInterval.count());
	LONGS_EQUAL(1, v.metrics.size());
	STRCMP_EQUAL("version_info", v.metrics[0].key.c_str());
	STRCMP_EQUAL("nginx_version_info", v.metrics[0].name.c_str());
	CHECK(v.metrics[0].type == MetricType::Info);
	STRCMP_EQUAL("1.25", v.metrics[0].labels[0].second.c_str());
	DOUBLES_EQUAL(1.0, *v.metrics[0].staticValue, 0);

	const GroupConfig &u = c.services[0].groups[3];
	CHECK(u.sourceType == SourceType::Command);
	CHECK_TRUE(u.shell);
	STRCMP_EQUAL("uptime", u.source.c_str());
	CHECK(u.argv.empty());
	CHECK_TRUE(u.multiline);
	STRCMP_EQUAL("Days since boot", u.metrics[0].description.c_str());

	// A command string is split on whitespace; quotes mean nothing.
	const GroupConfig &l = c.services[1].groups[0];
	LONGS_EQUAL(3, l.argv.size());
	STRCMP_EQUAL("/usr/local/bin/backup-status", l.argv[0].c_str());
	STRCMP_EQUAL("--last", l.argv[1].c_str());
	STRCMP_EQUAL("--epoch", l.argv[2].c_str());
	CHECK(l.metrics[0].type == MetricType::Untyped);
}

TEST(FullConfiguration, TheManualsExampleLoads)
{
	// The literal block under EXAMPLES in man/pme.yml.5, unescaped.
	std::ifstream in(sourceRoot() + "/man/pme.yml.5");
	CHECK_TRUE(in.good());
	std::string line, yaml;
	bool examples = false, inBlock = false;
	while (std::getline(in, line)) {
		if (line == ".Sh EXAMPLES")
			examples = true;
		else if (examples && line.rfind(".Bd -literal", 0) == 0)
			inBlock = true;
		else if (inBlock && line == ".Ed")
			break;
		else if (inBlock) {
			for (size_t at; (at = line.find("\\e")) != std::string::npos;)
				line.replace(at, 2, "\\");
			yaml += line + "\n";
		}
	}
	Config m = load(yaml);
	LONGS_EQUAL(2, m.services.size());
	LONGS_EQUAL(15000, m.exporter.interval.count());
	const GroupConfig &status = m.services[0].groups[0];
	LONGS_EQUAL(3, status.argv.size());
	STRCMP_EQUAL("nginx_requests", status.metrics[1].name.c_str());
	CHECK(status.metrics[1].type == MetricType::Counter);
	STRCMP_EQUAL("Active connections:\\s+(\\d+)", status.metrics[0].filter.c_str());
	const GroupConfig &info = m.services[1].groups[1];
	CHECK(info.sourceType == SourceType::Static);
	DOUBLES_EQUAL(1.0, *info.metrics[0].staticValue, 0);
}

TEST_GROUP(Scalars) {};

TEST(Scalars, BooleansOfYaml11And12)
{
	for (const char *t : {"true", "True", "TRUE", "yes", "Yes", "on", "ON"})
		CHECK_TRUE(load(std::string("services:\n  a:\n    allow_root: ") + t +
		    "\n    standalone_metrics: { x: { value: 1 } }\n").services[0].allowRoot);
	for (const char *t : {"false", "False", "no", "NO", "off", "Off"})
		CHECK_FALSE(load(std::string("services:\n  a:\n    allow_root: ") + t +
		    "\n    standalone_metrics: { x: { value: 1 } }\n").services[0].allowRoot);
}

TEST(Scalars, Numbers)
{
	auto value = [](const std::string &text) {
		Config c = load("services:\n  a:\n    standalone_metrics:\n      x: { value: " + text +
		    " }\n");
		return *c.services[0].groups[0].metrics[0].staticValue;
	};
	DOUBLES_EQUAL(42, value("42"), 0);
	DOUBLES_EQUAL(-1.5, value("-1.5"), 0);
	DOUBLES_EQUAL(1e10, value("1e10"), 0);
	DOUBLES_EQUAL(0.25, value("+.25"), 0);
	DOUBLES_EQUAL(255, value("0xff"), 0);
	DOUBLES_EQUAL(8, value("0o10"), 0);
	CHECK(std::isinf(value(".inf")) && value(".inf") > 0);
	CHECK(std::isinf(value("-.Inf")) && value("-.Inf") < 0);
	CHECK(std::isnan(value(".NaN")));
}

TEST(Scalars, QuotedValueIsATemplate)
{
	Config c = load(R"(services:
  a:
    standalone_metrics:
      x: { source_type: file, source: /f, filter: '(\d)', value: "1" }
)");
	const MetricConfig &m = c.services[0].groups[0].metrics[0];
	CHECK_FALSE(m.staticValue.has_value());
	STRCMP_EQUAL("1", m.valueTemplate->c_str());
}

TEST(Scalars, AliasesAreFollowed)
{
	Config c = load(R"(services:
  a:
    labels: &common { site: paris }
    standalone_metrics:
      x: { value: 1, labels: { zone: b } }
  b:
    labels: *common
    standalone_metrics:
      y: { value: 1 }
)");
	STRCMP_EQUAL("paris", c.services[1].labels[0].second.c_str());
}

TEST_GROUP(Errors) {};

TEST(Errors, UnreadableFile)
{
	auto r = loadConfigFile("/nonexistent/pme.yml");
	CHECK_FALSE(r.has_value());
	LONGS_EQUAL(1, r.error().size());
	STRCMP_EQUAL("/nonexistent/pme.yml: cannot read: No such file or directory",
	    r.error()[0].str().c_str());
	r = loadConfigFile(sourceRoot() + "/tests/data/config");
	CHECK_FALSE(r.has_value());
	STRCMP_CONTAINS("cannot read: Is a directory", r.error()[0].str().c_str());
}

TEST(Errors, YamlSyntax)
{
	expectError("services:\n  a: [1, 2\n", 3, 1,
	    "YAML syntax error: did not find expected ',' or ']'");
	expectError("services:\n  a: b\n c: d\n", 3, 2, "YAML syntax error: ");
	expectError("services:\n  a: *nowhere\n", 2, 6, "YAML syntax error: found undefined alias");
	expectError("services:\n  a: \"\xff\"\n", 2, 7, "YAML syntax error: invalid");
	expectError("services:\n\ta: 1\n", 2, 1, "YAML syntax error: found character that "
	    "cannot start any token");
}

TEST(Errors, EmptyConfiguration)
{
	expectError("", 1, 1, "empty configuration");
	expectError("# nothing but a comment\n", 1, 1, "empty configuration");
	expectError("---\n", 1, 1, "empty configuration");
}

TEST(Errors, TopLevelMustBeAMapping)
{
	expectError("- a\n- b\n", 1, 1, "expected a mapping with 'exporter' and 'services' at "
	    "the top level, got a list");
	expectError("services: {}\n---\nservices: {}\n", 3, 1, "a second YAML document");
}

TEST(Errors, UnknownKeysSuggestTheClosest)
{
	expectError("exporter:\n  intervall: 5s\n", 2, 3,
	    "unknown key 'intervall' in exporter; did you mean 'interval'?");
	expectError("servics: {}\n", 1, 1,
	    "unknown key 'servics' in the top level; did you mean 'services'?");
	expectError(withGroup("        source_typ: file\n        source: /f\n"
	    "        metrics: { m: { filter: x } }\n"), 5, 9,
	    "unknown key 'source_typ' in group 'g' of service 'svc'; did you mean 'source_type'?");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        metrics:\n          m:\n            filtre: x\n            filter: y\n"),
	    9, 13, "unknown key 'filtre' in metric 'm' of group 'g' of service 'svc'; "
	    "did you mean 'filter'?");
	expectError("services:\n  a:\n    run_as: { usr: x }\n    standalone_metrics: "
	    "{ x: { value: 1 } }\n", 3, 15,
	    "unknown key 'usr' in run_as of service 'a'; did you mean 'user'?");
	expectError("services:\n  a:\n    standalone_metrics:\n      x: { value: 1, "
	    "intervl: 5s }\n", 4, 22,
	    "unknown key 'intervl' in standalone metric 'x' of service 'a'; "
	    "did you mean 'interval'?");
}

TEST(Errors, UnknownKeyFarFromAnyListsTheKnownOnes)
{
	expectError("exporter:\n  port: 80\n", 2, 3, "unknown key 'port' in exporter (known keys: "
	    "listen, health_listen, interval, user, include)");
}

TEST(Errors, DuplicateKey)
{
	expectError("exporter:\n  interval: 5s\n  interval: 10s\n", 3, 3,
	    "duplicate key 'interval' (first given at line 2, column 3)");
}

TEST(Errors, WrongNodeKinds)
{
	expectError("services:\n  a:\n    metric_groups: [x]\n", 3, 20,
	    "expected a mapping for 'metric_groups', got a list");
	expectError("services:\n  a:\n    name: { x: 1 }\n    standalone_metrics: "
	    "{ x: { value: 1 } }\n", 3, 11, "expected a string for 'name', got a mapping");
	expectError("services:\n  a:\n    name:\n    standalone_metrics: { x: { value: 1 } }\n",
	    3, 10, "expected a string for 'name', got nothing (write '' for an empty string)");
	expectError("services:\n  a:\n    allow_root: maybe\n    standalone_metrics: "
	    "{ x: { value: 1 } }\n", 3, 17,
	    "expected true or false for 'allow_root', got 'maybe'");
	expectError("services:\n  a:\n    standalone_metrics:\n      x: { value: 1, "
	    "value_on_error: low }\n", 4, 38,
	    "expected a number for 'value_on_error', got 'low'");
	expectError("services:\n  a:\n    standalone_metrics:\n      x: { value: 1e999 }\n", 4, 19,
	    "the number '1e999' for 'value' is out of range");
	expectError("services:\n  a:\n    standalone_metrics:\n      x: { value: 1, "
	    "values: { UP: high } }\n", 4, 36, "expected a number for 'values.UP', got 'high'");
	expectError("services:\n  a:\n    labels: [a]\n    standalone_metrics: "
	    "{ x: { value: 1 } }\n", 3, 13, "expected a mapping for 'labels', got a list");
	expectError("services: [a]\n", 1, 11, "expected a mapping for 'services', got a list");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        metrics: { m: }\n"), 7, 23, "expected a mapping for 'm', got nothing");
	expectError("services:\n  a:\n    metric_groups: { g: 1 }\n", 3, 25,
	    "expected a mapping for 'g', got '1'");
	expectError("services:\n  a:\n    standalone_metrics: { x: [] }\n", 3, 30,
	    "expected a mapping for 'x', got a list");
	expectError("services:\n  a:\n    run_as: [x]\n    standalone_metrics: "
	    "{ x: { value: 1 } }\n", 3, 13,
	    "expected a user name or a mapping with 'user' and 'group' for 'run_as'");
}

TEST(Errors, BadDuration)
{
	expectError("exporter:\n  interval: 5 sec\n", 2, 13,
	    "interval: invalid duration '5 sec'");
	expectError("exporter:\n  interval: 0s\n", 2, 13, "interval must be longer than 0");
	expectError("exporter:\n  interval: -5s\n", 2, 13,
	    "interval: invalid duration '-5s': a duration cannot be negative");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        timeout: 2x\n        metrics: { m: { filter: x } }\n"), 7, 18,
	    "timeout: invalid duration '2x': unknown unit 'x'");
}

TEST(Errors, MessagesQuoteAnyBytesPrintably)
{
	// A NUL and a control character written as escapes in a YAML string.
	Errors errors = errorsOf("services:\n  a:\n    env: \"a\\0b\\x01\"\n");
	LONGS_EQUAL(2, errors.size());
	STRCMP_EQUAL("t.yml:3:10: expected a mapping for 'env', got 'a\\0b\\x01'",
	    errors[1].str().c_str());
	// A long value is cut on a character boundary, never inside one.
	std::string longValue(36, 'x');
	errors = errorsOf("services:\n  a:\n    env: \"" + longValue +
	    "\xe6\x97\xa5\xe6\x97\xa5\"\n");
	LONGS_EQUAL(2, errors.size());
	STRCMP_CONTAINS(("got '" + longValue + "...'").c_str(), errors[1].message.c_str());
	STRCMP_EQUAL("tab\\there \\xff\\x7f \xe6\x97\xa5", printableText("tab\there \xff\x7f \xe6\x97\xa5").c_str());
}

TEST(Errors, BadScale)
{
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        metrics:\n          m: { filter: '(\\d+)', scale: 0 }\n"), 8, 40,
	    "'scale' must be a finite number other than 0");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        metrics:\n          m: { filter: '(\\d+)', scale: kilo }\n"), 8, 40,
	    "scale");
}

TEST(Errors, BadSize)
{
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        max_output: 1TB\n        metrics: { m: { filter: x } }\n"), 7, 21,
	    "invalid size '1TB' for 'max_output'");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        max_output: 2GiB\n        metrics: { m: { filter: x } }\n"), 7, 21,
	    "is too large (at most 1GiB)");
}

TEST(Errors, IntervalShorterThanItsParent)
{
	expectError(R"(services:
  a:
    interval: 2s
    standalone_metrics: { x: { value: 1 } }
)", 3, 15, "interval 2s of service 'a' is shorter than the global interval 5s; "
	    "use at least 5s");
	expectError(R"(services:
  a:
    interval: 30s
    metric_groups:
      x:
        source_type: file
        source: /f
        interval: 2s
        metrics: { m: { filter: x } }
)", 8, 19, "interval 2s of group 'x' is shorter than its service's interval 30s");
	expectError(R"(exporter: { interval: 10s }
services:
  a:
    interval: 25s
    standalone_metrics:
      x: { value: 1, collection_frequency: 28s }
)", 6, 44, "collection_frequency 28s of standalone metric 'x' is shorter than its "
	    "service's interval 30s (25s rounded up to a multiple of the global interval 10s)");
	expectError(R"(services:
  a:
    standalone_metrics:
      x: { value: 1, interval: 5s, collection_frequency: 10s }
)", 4, 36, "give either 'interval' or 'collection_frequency', not both");
}

TEST(Errors, DuplicateMetricNameInAService)
{
	expectError(R"(services:
  a:
    metric_prefix: a_
    metric_groups:
      g:
        source_type: file
        source: /f
        metrics:
          used: { filter: 'x(\d)' }
    standalone_metrics:
      total: { value: 1, name: used }
)", 11, 32, "metric 'a_used' is already defined in service 'a' at line 9, column 11");
}

TEST(Errors, InvalidMetricName)
{
	expectError(R"(services:
  a:
    standalone_metrics:
      x: { value: 1, name: 'bad-name' }
)", 4, 28, "invalid metric name 'bad-name'");
	expectError(R"(services:
  a:
    standalone_metrics:
      9lives: { value: 1 }
)", 4, 7, "invalid metric name '9lives'");
	expectError(R"(services:
  a:
    metric_prefix: 'my-app_'
    standalone_metrics:
      x: { value: 1 }
)", 3, 20, "invalid metric_prefix 'my-app_'");
	expectError(R"(services:
  a:
    standalone_metrics:
      pme_source_up: { value: 1 }
)", 4, 7, "names starting with 'pme_' are reserved");
}

TEST(Errors, InvalidLabelName)
{
	expectError(R"(services:
  a:
    labels: { 'data-center': x }
    standalone_metrics: { x: { value: 1 } }
)", 3, 15, "invalid label name 'data-center'");
	expectError(R"(services:
  a:
    standalone_metrics:
      x: { value: 1, labels: { __name__: x } }
)", 4, 32, "invalid label name '__name__'");
}

TEST(Errors, MetricLabelShadowsAServiceLabel)
{
	expectError(R"(services:
  a:
    labels: { role: web }
    standalone_metrics:
      x: { value: 1, labels: { role: db } }
)", 5, 32, "label 'role' of standalone metric 'x' is already a constant label of "
	    "service 'a'");
}

TEST(Errors, TypeConflictAcrossServices)
{
	expectError(R"(services:
  a:
    standalone_metrics:
      jobs: { value: 1, type: counter }
  b:
    standalone_metrics:
      jobs: { value: 1 }
      other: { value: 1, type: counter }
  c:
    standalone_metrics:
      other: { value: 2, type: counter }
)", 7, 7, "metric 'jobs' is a gauge here but a counter in service 'a' at t.yml:4:7");
}

TEST(Errors, DuplicateServiceName)
{
	expectError(R"(services:
  a:
    standalone_metrics: { x: { value: 1 } }
  b:
    name: a
    standalone_metrics: { y: { value: 1 } }
)", 5, 11, "service name 'a' is already used at line 2, column 3");
	expectError(R"(services:
  a:
    name: ''
    standalone_metrics: { x: { value: 1 } }
)", 3, 11, "the name of service 'a' must not be empty");
}

TEST(Errors, ServiceWithoutGroups)
{
	expectError("services:\n  a:\n    name: x\n", 2, 3,
	    "service 'a' has neither metric_groups nor standalone_metrics");
	expectError(withGroup("        source_type: file\n        source: /f\n"), 4, 7,
	    "group 'g' of service 'svc' has no 'metrics'");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        metrics: {}\n"), 7, 18, "group 'g' of service 'svc' has no metrics");
}

TEST(Errors, EmptyKeys)
{
	expectError("services:\n  '':\n    standalone_metrics: { x: { value: 1 } }\n", 2, 3,
	    "a service key must not be empty");
	expectError("services:\n  a:\n    standalone_metrics: { '': { value: 1 } }\n", 3, 27,
	    "a group or metric key must not be empty");
}

TEST(Errors, MetricsInsideAStandaloneMetric)
{
	expectError("services:\n  a:\n    standalone_metrics:\n      x:\n        value: 1\n"
	    "        metrics: { y: { value: 1 } }\n", 6, 9,
	    "a standalone metric is itself the metric");
}

TEST(Errors, BadRegexWithOffset)
{
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        metrics:\n          m: { filter: 'a(b' }\n"), 8, 24,
	    "invalid filter: missing closing parenthesis at offset 3 of the pattern");
}

TEST(Errors, UnknownCaptureReference)
{
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        metrics:\n          m:\n            filter: '(?<mount>\\S+) (\\d+)'\n"
	    "            labels: { mount: '${mnt}' }\n"), 10, 30,
	    "label 'mount' refers to capture ${mnt}, which the filter does not define");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        metrics:\n          m:\n            filter: '(\\S+) (\\d+)'\n"
	    "            labels: { a: '$2', b: '$3' }\n"), 10, 35,
	    "label 'b' refers to capture $3, which the filter does not define");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        metrics:\n          m:\n            filter: '(\\d+)'\n"
	    "            value: '${2}'\n"), 10, 20,
	    "value refers to capture ${2}, which the filter does not define");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        metrics:\n          m:\n            filter: '(\\d+)'\n"
	    "            labels: { price: '5$' }\n"), 10, 30,
	    "label 'price' ends with a lone '$' (write $$ for a literal $)");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        metrics:\n          m:\n            filter: '(\\d+)'\n"
	    "            labels: { host: '${env:PME_TEST_SURELY_UNSET}' }\n"), 10, 29,
	    "environment variable PME_TEST_SURELY_UNSET is not set");
	expectError(R"(services:
  a:
    standalone_metrics:
      x: { value: 1, labels: { v: '$1' } }
)", 4, 35, "label 'v' refers to capture $1, but a static source has no captures");
}

TEST(Errors, StaticWithoutValue)
{
	expectError(R"(services:
  a:
    standalone_metrics:
      x: { source_type: static, type: gauge }
)", 4, 7, "standalone metric 'x' of a static source needs a numeric 'value'");
	expectError(R"(services:
  a:
    standalone_metrics:
      x: { source_type: static, value: "3" }
)", 4, 40, "a static source needs a number as 'value', not a string");
	expectError(R"(services:
  a:
    standalone_metrics:
      x: { source_type: static, value: 1, source: /etc/x }
)", 4, 51, "a static source reads nothing");
}

TEST(Errors, SourcesAndFilters)
{
	expectError(withGroup("        source_type: command\n"
	    "        metrics: { m: { filter: x } }\n"), 4, 7,
	    "group 'g' of service 'svc' needs a 'source': the command to run");
	expectError(withGroup("        source_type: command\n        source: []\n"
	    "        metrics: { m: { filter: x } }\n"), 6, 17, "the command is empty");
	expectError(withGroup("        source_type: command\n        source: [sh, -c, x]\n"
	    "        shell: true\n        metrics: { m: { filter: x } }\n"), 6, 17,
	    "'shell: true' runs one string with /bin/sh -c");
	expectError(withGroup("        source_type: file\n        source: relative/path\n"
	    "        metrics: { m: { filter: x } }\n"), 6, 17, "must be given as an absolute path");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        metrics: { m: { type: gauge } }\n"), 7, 20,
	    "metric 'm' needs a 'filter'");
	expectError(withGroup("        source: /f\n        metrics: { m: { filter: x } }\n"), 4, 7,
	    "needs a 'source_type': command, file, http or static");
	expectError(withGroup("        source_type: comand\n        source: /f\n"
	    "        metrics: { m: { filter: x } }\n"), 5, 22,
	    "unknown source_type 'comand'; did you mean 'command'?");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        command: ls\n        metrics: { m: { filter: x } }\n"), 7, 18,
	    "'command' is only for source_type command");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        metrics:\n          m: { filter: x, multiline: true }\n"), 8, 38,
	    "'multiline' is a setting of the whole group");
}

TEST(Errors, AUrlIsAnHttpSource)
{
	Config c = load(withGroup("        source: http://127.0.0.1:8080/status\n"
	    "        metrics: { m: { filter: '(\\d+)' } }\n"));
	CHECK(c.services[0].groups[0].sourceType == SourceType::Http);
	c = load(withGroup("        source: unix:/run/app.sock:/metrics\n"
	    "        content_type: prometheus\n"));
	CHECK(c.services[0].groups[0].sourceType == SourceType::Http);
	expectError(withGroup("        source: https://example.org/status\n"
	    "        metrics: { m: { filter: x } }\n"), 5, 17, "https");
}

TEST(Errors, MaxSeriesIsAWholeNumberWithinTheSupervisorsLimit)
{
	std::string group = "        source: /f\n        source_type: file\n"
	    "        metrics: { m: { filter: x } }\n";
	Config c = load(withGroup(group));
	LONGS_EQUAL(10000, c.services[0].groups[0].maxSeries);
	c = load(withGroup(group + "        max_series: 250000\n"));
	LONGS_EQUAL(250000, c.services[0].groups[0].maxSeries);
	expectError(withGroup(group + "        max_series: 0\n"), 8, 21,
	    "'max_series' must be a whole number from 1 to 1000000, got '0'");
	expectError(withGroup(group + "        max_series: 2000000\n"), 8, 21,
	    "'max_series' must be a whole number from 1 to 1000000");
	expectError(withGroup(group + "        max_series: 1.5\n"), 8, 21,
	    "'max_series' must be a whole number");
}

TEST_GROUP(MetricTypes) {};

// A text file group with one metric whose body is given.
static std::string typed(const std::string &metric, const std::string &content = "text")
{
	return withGroup("        source_type: file\n        source: /var/log/x.log\n"
	    "        content_type: " + content + "\n        metrics:\n          m:\n" + metric);
}

TEST(MetricTypes, ObservedHistogram)
{
	Config c = load(typed("            type: histogram\n            observe: true\n"
	    "            buckets: [0.5, 1, 60]\n            filter: 'took (\\d+)s'\n"));
	const MetricConfig &m = c.services[0].groups[0].metrics[0];
	CHECK(m.type == MetricType::Histogram);
	CHECK(m.observe);
	CHECK(m.observed());
	CHECK_FALSE(m.mappedHistogram());
	LONGS_EQUAL(3, m.bucketBounds.size());
	DOUBLES_EQUAL(60, m.bucketBounds[2], 0);
}

TEST(MetricTypes, MappedHistogramIsSortedByBound)
{
	Config c = load(typed("            type: histogram\n"
	    "            buckets: { +Inf: '$.n', 1: '$.le1', 0.5: '$.le05' }\n"
	    "            sum: '$.sum'\n            cumulative: false\n"
	    "            labels: { path: '/' }\n", "json"));
	const MetricConfig &m = c.services[0].groups[0].metrics[0];
	CHECK(m.mappedHistogram());
	LONGS_EQUAL(3, m.bucketFilters.size());
	DOUBLES_EQUAL(0.5, m.bucketFilters[0].first, 0);
	STRCMP_EQUAL("$.le05", m.bucketFilters[0].second.c_str());
	CHECK(std::isinf(m.bucketFilters[2].first));
	STRCMP_EQUAL("$.sum", m.sumFilter.c_str());
	STRCMP_EQUAL("", m.countFilter.c_str());
	CHECK_FALSE(m.cumulative);
}

TEST(MetricTypes, SummaryDefaultsAndSettings)
{
	Config c = load(typed("            type: summary\n            filter: 'took (\\d+)s'\n"));
	const MetricConfig &d = c.services[0].groups[0].metrics[0];
	LONGS_EQUAL(3, d.quantiles.size());
	DOUBLES_EQUAL(0.99, d.quantiles[2], 0);
	LONGS_EQUAL(600000, d.maxAge.count());
	LONGS_EQUAL(5, d.ageBuckets);
	c = load(typed("            type: summary\n            filter: 'took (\\d+)s'\n"
	    "            quantiles: [0, 0.25, 1]\n            max_age: 2m\n"
	    "            age_buckets: 4\n"));
	const MetricConfig &m = c.services[0].groups[0].metrics[0];
	LONGS_EQUAL(3, m.quantiles.size());
	DOUBLES_EQUAL(0.25, m.quantiles[1], 0);
	LONGS_EQUAL(120000, m.maxAge.count());
	LONGS_EQUAL(4, m.ageBuckets);
}

TEST(MetricTypes, StateSet)
{
	Config c = load(typed("            type: stateset\n"
	    "            states: [active, inactive, failed]\n"
	    "            filter: '^ActiveState=(\\S+)'\n"));
	const MetricConfig &m = c.services[0].groups[0].metrics[0];
	CHECK(m.type == MetricType::StateSet);
	LONGS_EQUAL(3, m.states.size());
	STRCMP_EQUAL("failed", m.states[2].c_str());
}

TEST(MetricTypes, HistogramErrors)
{
	expectError("services:\n  a:\n    standalone_metrics:\n"
	    "      x: { value: 1, type: histogram, observe: true, buckets: [1] }\n", 4, 28,
	    "a histogram is read from a source: a static source has only constant values");
	expectError(typed("            type: histogram\n            filter: x\n"), 9, 11,
	    "metric 'm' needs 'buckets'");
	expectError(typed("            type: histogram\n            filter: x\n"
	    "            buckets: [1, 2]\n"), 12, 22, "add observe: true");
	expectError(typed("            type: histogram\n            filter: x\n"
	    "            observe: true\n            buckets: { 1: x }\n"), 13, 22,
	    "with observe: true, 'buckets' is a list of upper bounds");
	expectError(typed("            type: histogram\n            filter: x\n"
	    "            observe: true\n            buckets: [1, 5, 2]\n"), 13, 22,
	    "must increase: 2 comes after 5");
	expectError(typed("            type: histogram\n            filter: x\n"
	    "            observe: true\n            buckets: [0.25, 10, 5]\n"), 13, 22,
	    "must increase: 5 comes after 10");
	expectError(typed("            type: histogram\n            filter: x\n"
	    "            observe: true\n            buckets: [1, .inf]\n"), 13, 22,
	    "+Inf is always added");
	expectError(typed("            type: histogram\n            filter: x\n"
	    "            buckets: { 1: a, +Inf: b }\n"), 11, 21, "remove 'filter'");
	expectError(typed("            type: histogram\n"
	    "            buckets: { 1: a, 2: b }\n"), 11, 22,
	    "needs 'count' or a +Inf bucket");
	expectError(typed("            type: histogram\n"
	    "            buckets: { 1: a, 1.0: b, +Inf: c }\n"), 11, 35, "bucket 1 of metric 'm' "
	    "is given twice");
	expectError(typed("            type: histogram\n"
	    "            buckets: { one: a, +Inf: c }\n"), 11, 24, "bucket bound 'one' is not "
	    "a number");
	expectError(typed("            type: histogram\n"
	    "            buckets: { 1: 'a(', +Inf: c }\n"), 11, 27, "invalid filter: missing "
	    "closing parenthesis");
	expectError(typed("            type: histogram\n"
	    "            buckets: { 1: '$.a[', +Inf: '$.n' }\n", "json"), 11, 32,
	    "invalid JSONPath filter");
	expectError(typed("            type: histogram\n"
	    "            buckets: { 1: 'a(\\d)', +Inf: 'n(\\d)' }\n"
	    "            labels: { n: '$1' }\n"), 12, 26, "its labels are constant");
	expectError(typed("            type: histogram\n            observe: true\n"
	    "            buckets: [1]\n            filter: '(\\d+)'\n"
	    "            value_on_error: 0\n"), 14, 29, "'value_on_error' is for counters and "
	    "gauges");
	expectError(typed("            type: histogram\n            observe: true\n"
	    "            buckets: [1]\n            filter: '(\\d+)'\n"
	    "            labels: { le: x }\n"), 14, 23, "label 'le' of metric 'm' is the "
	    "buckets' own label");
}

TEST(MetricTypes, SummaryAndStateSetErrors)
{
	expectError(typed("            type: summary\n            filter: x\n"
	    "            quantiles: [0.5, 1.5]\n"), 12, 24, "quantile 1.5 of metric 'm' is not "
	    "between 0 and 1");
	expectError(typed("            type: summary\n            filter: x\n"
	    "            quantiles: [0.9, 0.5]\n"), 12, 24, "must increase: 0.5 comes after 0.9");
	expectError(typed("            type: summary\n            filter: x\n"
	    "            age_buckets: 0\n"), 12, 26, "a whole number from 1 to 100");
	expectError(typed("            type: stateset\n            filter: x\n"), 9, 11,
	    "metric 'm' needs 'states'");
	expectError(typed("            type: stateset\n            filter: x\n"
	    "            states: [a, b, a]\n"), 12, 21, "state 'a' of metric 'm' is listed twice");
	expectError(typed("            type: stateset\n            filter: x\n"
	    "            states: [a]\n            values: { a: 1 }\n"), 13, 21,
	    "remove 'values'");
	expectError(typed("            name: unit:state\n            type: stateset\n"
	    "            filter: x\n            states: [a]\n"), 10, 19,
	    "a label name cannot have ':'");
	expectError(typed("            filter: x\n            states: [a]\n"), 11, 21,
	    "'states' is for a stateset, and metric 'm' is a gauge (the default type)");
	expectError(typed("            type: counter\n            filter: x\n"
	    "            quantiles: [0.5]\n"), 12, 24, "'quantiles' is for a summary, and "
	    "metric 'm' is a counter");
}

// A histogram x is exposed as x_bucket, x_sum and x_count.
TEST(MetricTypes, SuffixClash)
{
	expectError("services:\n  a:\n    metric_groups:\n      g:\n"
	    "        source_type: file\n        source: /f\n        metrics:\n"
	    "          x: { type: summary, filter: 'a(\\d)' }\n"
	    "          x_count: { filter: 'b(\\d)' }\n", 9, 11,
	    "metric 'x_count' is also a series of the summary 'x'");
	expectError("services:\n  a:\n    metric_groups:\n      g:\n"
	    "        source_type: file\n        source: /f\n        metrics:\n"
	    "          x_bucket: { filter: 'b(\\d)' }\n"
	    "          x: { type: histogram, observe: true, buckets: [1], filter: 'a(\\d)' }\n",
	    9, 11, "a histogram 'x' is exposed as x_bucket too");
}

TEST_GROUP(StructuredContent) {};

TEST(StructuredContent, JsonGroupKeepsItsQueriesAndTemplates)
{
	Config c = load(withGroup(
	    "        source_type: file\n"
	    "        source: /var/lib/es/health.json\n"
	    "        content_type: json\n"
	    "        labels: { cluster: prod }\n"
	    "        metrics:\n"
	    "          heap: { filter: '$.nodes.*.jvm.mem.heap_used_in_bytes',\n"
	    "                  labels: { node: '${^^^.name}', id: '${^^^key}' } }\n"
	    "          latency: { filter: '$.took', value_regex: '([0-9.]+)ms' }\n"
	    "          docs: { filter: '$.indices[*]', value: '${.docs.count}',\n"
	    "                  labels: { index: '${key}' } }\n"));
	const auto &g = c.services[0].groups[0];
	CHECK(g.contentType == ContentType::Json);
	CHECK(g.labels == Pairs({{"cluster", "prod"}}));
	LONGS_EQUAL(3, g.metrics.size());
	STRCMP_EQUAL("$.nodes.*.jvm.mem.heap_used_in_bytes", g.metrics[0].filter.c_str());
	STRCMP_EQUAL("([0-9.]+)ms", g.metrics[1].valueRegex.c_str());
	STRCMP_EQUAL("${.docs.count}", g.metrics[2].valueTemplate->c_str());
}

TEST(StructuredContent, JsonErrorsPointIntoTheString)
{
	// '$.a[' fails at offset 4: column 38 is the quote's 33 + 1 + 4.
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        content_type: json\n"
	    "        metrics: { m: { filter: '$.a[' } }\n"), 8, 38, "invalid JSONPath filter");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        content_type: json\n"
	    "        metrics: { m: { filter: '$.a', labels: { x: '${.b' } } }\n"), 8, 54,
	    "label 'x' of metric 'm'");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        content_type: json\n"
	    "        metrics: { m: { filter: '$.a', value: 'n=${.b}' } }\n"), 8, 47,
	    "must be one reference");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        content_type: json\n"
	    "        metrics: { m: { filter: '$.a', value: 3 } }\n"), 8, 47,
	    "give a reference");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        content_type: json\n"
	    "        metrics: { m: { filter: '$.a', value_regex: '(' } }\n"), 8, 55,
	    "invalid value_regex");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        content_type: json\n"
	    "        metrics: { m: { } }\n"), 8, 20, "the JSONPath query");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        metrics: { m: { filter: 'x', value_regex: 'y' } }\n"), 7, 51,
	    "'value_regex' is for json and xml");
}

TEST(StructuredContent, XmlNamespacesAndXPath)
{
	Config c = load(withGroup(
	    "        source_type: file\n        source: /f.xml\n"
	    "        content_type: xml\n"
	    "        namespaces: { a: 'http://www.w3.org/2005/Atom' }\n"
	    "        metrics:\n"
	    "          entries: { filter: 'count(//a:entry)' }\n"
	    "          streams: { filter: '//stream/nclients', labels: { app: '${^^^.name}' } }\n"));
	const auto &g = c.services[0].groups[0];
	CHECK(g.namespaces == Pairs({{"a", "http://www.w3.org/2005/Atom"}}));
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        content_type: xml\n"
	    "        metrics: { m: { filter: '//b:x' } }\n"), 8, 36,
	    "namespace prefix 'b'");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        content_type: xml\n"
	    "        metrics: { m: { filter: '//x[' } }\n"), 8, 38, "invalid XPath filter");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        content_type: xml\n"
	    "        metrics: { m: { filter: '//x', labels: { i: '${[0]}' } } }\n"), 8, 56,
	    "label 'i'");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        content_type: xml\n"
	    "        metrics: { m: { filter: '//x', labels: { n: '${^.q:name}' } } }\n"), 8, 53,
	    "namespace prefix 'q' in ${^.q:name} is not declared");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        content_type: xml\n"
	    "        metrics: { m: { filter: 'count(//x)', labels: { n: '${.a}' } } }\n"), 8, 60,
	    "the filter computes a value");
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        content_type: json\n"
	    "        namespaces: { a: 'urn:x' }\n"
	    "        metrics: { m: { filter: '$.x' } }\n"), 8, 21,
	    "'namespaces' is only for content_type xml");
}

TEST(StructuredContent, PrometheusImportNeedsNoMetrics)
{
	Config c = load("services:\n  node:\n    metric_prefix: host_\n    metric_groups:\n"
	    "      textfile:\n"
	    "        source_type: file\n        source: /var/lib/node/x.prom\n"
	    "        content_type: prometheus\n"
	    "        prefix: node_\n"
	    "        include: ['node_.*', 'go_gc_.*']\n"
	    "        exclude: '.*_created'\n"
	    "        honor_timestamps: true\n"
	    "        labels: { origin: textfile }\n");
	const auto &g = c.services[0].groups[0];
	CHECK(g.contentType == ContentType::Prometheus);
	CHECK(g.metrics.empty());
	STRCMP_EQUAL("node_", g.import.prefix.c_str());
	CHECK(g.import.include == std::vector<std::string>({"node_.*", "go_gc_.*"}));
	CHECK(g.import.exclude == std::vector<std::string>({".*_created"}));
	CHECK(g.import.honorTimestamps);
	CHECK(g.labels == Pairs({{"origin", "textfile"}}));

	std::string head = "services:\n  s:\n    metric_groups:\n      g:\n"
	    "        source_type: file\n        source: /f\n";
	expectError(head + "        content_type: prometheus\n        metrics: { m: { filter: x } }\n",
	    8, 18, "remove 'metrics'");
	expectError(head + "        content_type: prometheus\n        include: '(x'\n", 8, 21,
	    "invalid regular expression in 'include'");
	expectError(head + "        content_type: prometheus\n        prefix: pme_\n", 8, 17,
	    "reserved");
	expectError(head + "        content_type: prometheus\n        prefix: 9x\n", 8, 17,
	    "invalid prefix");
	expectError(head + "        content_type: prometheus\n        labels: { le: x }\n", 8, 19,
	    "would replace the buckets'");
	expectError(head + "        content_type: text\n        prefix: x_\n"
	    "        metrics: { m: { filter: x } }\n", 8, 17, "only for content_type prometheus");
	expectError("services:\n  s:\n    standalone_metrics:\n      x:\n"
	    "        source_type: file\n        source: /f\n        content_type: prometheus\n",
	    7, 23, "make 'x' a group");
}

TEST(StructuredContent, GroupLabelsDoNotRepeatOtherLabels)
{
	expectError("services:\n  s:\n    labels: { role: web }\n    metric_groups:\n"
	    "      g:\n        labels: { role: db }\n"
	    "        metrics: { m: { value: 1 } }\n", 6, 19, "already a constant label");
	expectError("services:\n  s:\n    metric_groups:\n"
	    "      g:\n        labels: { role: db }\n"
	    "        metrics: { m: { value: 1, labels: { role: x } } }\n", 6, 45,
	    "already a label of its group");
}

TEST(Errors, ExporterValues)
{
	expectError("exporter:\n  listen: [\"127.0.0.1:0\"]\n", 2, 12,
	    "invalid listen address '127.0.0.1:0': the port must be a number from 1 to 65535");
	expectError("exporter:\n  listen: \"::1:80\"\n", 2, 11,
	    "write an IPv6 address in brackets");
	expectError("exporter:\n  listen: localhost\n", 2, 11,
	    "expected host:port, [IPv6]:port or :port");
	expectError("exporter:\n  listen: []\n", 2, 11, "'listen' needs at least one address");
	expectError("exporter:\n  health_listen: \"[::1]:70000\"\n", 2, 18,
	    "invalid health_listen address");
	expectError("exporter:\n  user: ''\n", 2, 9, "'user' must not be empty");
}

TEST(Errors, AllErrorsAreReportedInFileOrder)
{
	Errors errors = errorsOf(R"(exporter:
  interval: soon
services:
  a:
    intrval: 5s
    standalone_metrics:
      x: { value: 1, type: gauges }
  b:
    metric_groups:
      g:
        source_type: file
        source: /f
        metrics:
          m: { filter: '(' }
)");
	if (errors.size() != 4)
		FAIL(("expected 4 errors, got:\n" + listErrors(errors)).c_str());
	STRCMP_CONTAINS("t.yml:2:13: interval: invalid duration 'soon'", errors[0].str().c_str());
	STRCMP_CONTAINS("t.yml:5:5: unknown key 'intrval'", errors[1].str().c_str());
	STRCMP_CONTAINS("t.yml:7:28: unknown metric type 'gauges'; did you mean 'gauge'?",
	    errors[2].str().c_str());
	STRCMP_CONTAINS("t.yml:14:24: invalid filter: missing closing parenthesis at offset 1",
	    errors[3].str().c_str());
}

TEST_GROUP(Sandbox)
{
	// A service with one static metric and the given line under it.
	static std::string service(const std::string &line)
	{
		return "services:\n  a:\n" + line + "    standalone_metrics: { x: { value: 1 } }\n";
	}
};

TEST(Sandbox, DefaultIsTheFilterWhereTheKernelHasItAndNoLandlock)
{
	SandboxConfig sb = load(service("")).services[0].sandbox;
	CHECK_FALSE(sb.seccomp.has_value());
	CHECK_TRUE(sb.seccompWanted());
	CHECK_TRUE(sb.landlock.empty());
	SandboxConfig empty = load(service("    sandbox:\n")).services[0].sandbox;
	CHECK_FALSE(empty.seccomp.has_value());
	CHECK_TRUE(empty.landlock.empty());
}

TEST(Sandbox, KeysAsWritten)
{
	SandboxConfig sb = load(service("    sandbox:\n      seccomp: no\n"
	    "      landlock: [/proc, /usr, \"/etc/nginx\", /etc/ld.so.cache]\n"))
	    .services[0].sandbox;
	CHECK_TRUE(sb.seccomp.has_value());
	CHECK_FALSE(*sb.seccomp);
	CHECK_FALSE(sb.seccompWanted());
	LONGS_EQUAL(4, sb.landlock.size());
	STRCMP_EQUAL("/proc", sb.landlock[0].c_str());
	STRCMP_EQUAL("/etc/nginx", sb.landlock[2].c_str());
	STRCMP_EQUAL("/etc/ld.so.cache", sb.landlock[3].c_str());

	SandboxConfig on = load(service("    sandbox: { seccomp: true, landlock: [] }\n"))
	    .services[0].sandbox;
	CHECK_TRUE(on.seccomp.value_or(false));
	CHECK_TRUE(on.landlock.empty());
	CHECK_TRUE(load(service("    sandbox: { landlock: }\n")).services[0].sandbox
	    .landlock.empty());
}

TEST(Sandbox, Errors)
{
	expectError(service("    sandbox: { landlock: [/usr, etc/nginx] }\n"), 3, 33,
	    "the Landlock path 'etc/nginx' must be absolute (start with '/')");
	expectError(service("    sandbox:\n      landlock:\n        - /usr\n        - ./x\n"), 6, 11,
	    "the Landlock path './x' must be absolute");
	expectError(service("    sandbox: { landlock: [''] }\n"), 3, 27,
	    "'sandbox.landlock' must not be empty");
	expectError(service("    sandbox: { landlock: [[/usr]] }\n"), 3, 27,
	    "expected a string for 'sandbox.landlock', got a list");
	expectError(service("    sandbox: { landlock: /usr }\n"), 3, 26,
	    "expected a list of absolute paths for 'sandbox.landlock' (as in [/usr, /etc/nginx]), "
	    "got '/usr'");
	expectError(service("    sandbox: { seccomp: maybe }\n"), 3, 25,
	    "expected true or false for 'sandbox.seccomp', got 'maybe'");
	expectError(service("    sandbox: [seccomp]\n"), 3, 14,
	    "expected a mapping for 'sandbox', got a list");
	expectError(service("    sandbox: { landlok: [/usr] }\n"), 3, 16,
	    "unknown key 'landlok' in sandbox of service 'a'; did you mean 'landlock'?");
	expectError(service("    sandbx: { seccomp: false }\n"), 3, 5,
	    "unknown key 'sandbx' in service 'a'; did you mean 'sandbox'?");
}

TEST_GROUP(HttpSources) {};

TEST(HttpSources, EveryKeyOfTheRequestIsRead)
{
	Config c = load(withGroup(R"(        source_type: http
        source: http://127.0.0.1:9200/_cluster/health
        method: post
        body: '{"level": "indices"}'
        headers: { Content-Type: application/json, X-Trace: on }
        basic_auth: { username: monitor, password_file: /etc/pme/es.secret }
        max_redirects: 0
        http_cache: yes
        timeout: 2s
        content_type: json
        metrics: { status: { filter: '$.status', values: { green: 0 } } }
)"));
	const GroupConfig &g = c.services[0].groups[0];
	CHECK(g.sourceType == SourceType::Http);
	STRCMP_EQUAL("http://127.0.0.1:9200/_cluster/health", g.source.c_str());
	STRCMP_EQUAL("POST", g.http.method.c_str());
	STRCMP_EQUAL("{\"level\": \"indices\"}", g.http.body.c_str());
	LONGS_EQUAL(2, g.http.headers.size());
	STRCMP_EQUAL("Content-Type", g.http.headers[0].first.c_str());
	STRCMP_EQUAL("monitor", g.http.username.c_str());
	STRCMP_EQUAL("/etc/pme/es.secret", g.http.passwordFile.c_str());
	LONGS_EQUAL(0, g.http.maxRedirects);
	CHECK(g.http.cache);
	LONGS_EQUAL(2000, g.timeout.count());
}

TEST(HttpSources, DefaultsAreAPlainGet)
{
	Config c = load(withGroup("        source_type: http\n"
	    "        source: unix:/run/docker.sock:/containers/json\n"
	    "        content_type: json\n        metrics: { n: { filter: '$[*].Created' } }\n"));
	const HttpConfig &h = c.services[0].groups[0].http;
	STRCMP_EQUAL("GET", h.method.c_str());
	CHECK(h.headers.empty());
	LONGS_EQUAL(5, h.maxRedirects);
	CHECK_FALSE(h.cache);
}

TEST(HttpSources, BadRequestsAreRefusedWhereWritten)
{
	const std::string head = "        source_type: http\n";
	const std::string tail = "        metrics: { m: { filter: '(\\d+)' } }\n";
	expectError(withGroup(head + "        source: https://example.com/\n" + tail), 6, 17,
	    "https:// is not supported yet: pme has no TLS");
	expectError(withGroup(head + "        source: ftp://example.com/\n" + tail), 6, 17,
	    "unsupported URL scheme");
	expectError(withGroup(head + "        source: http://host:99999/\n" + tail), 6, 17,
	    "invalid port '99999'");
	expectError(withGroup(head + tail), 4, 7, "needs a 'source': the URL to read");
	expectError(withGroup(head + "        source: http://h/\n        method: 'GE T'\n" +
	    tail), 7, 17, "invalid HTTP method 'GE T'");
	expectError(withGroup(head + "        source: http://h/\n"
	    "        headers: { Content-Length: 5 }\n" + tail), 7, 20,
	    "header Content-Length is set by pme");
	expectError(withGroup(head + "        source: http://h/\n"
	    "        headers: { 'X Bad': 1 }\n" + tail), 7, 20,
	    "invalid HTTP header name 'X Bad'");
	expectError(withGroup(head + "        source: http://h/\n"
	    "        basic_auth: { username: u, password: p, password_file: /f }\n" + tail), 7,
	    21, "either 'password' or 'password_file', not both");
	expectError(withGroup(head + "        source: http://h/\n"
	    "        basic_auth: { password: p }\n" + tail), 7, 21,
	    "basic_auth needs a 'username'");
	expectError(withGroup(head + "        source: http://h/\n"
	    "        bearer: { token_file: relative/path }\n" + tail), 7, 17,
	    "must be an absolute path");
	expectError(withGroup(head + "        source: http://h/\n"
	    "        bearer: { tokn: x }\n" + tail), 7, 19,
	    "unknown key 'tokn' in bearer; did you mean 'token'?");
	expectError(withGroup(head + "        source: http://h/\n"
	    "        max_redirects: 50\n" + tail), 7, 24,
	    "'max_redirects' must be a whole number from 0 to 20");
	expectError(withGroup(head + "        source: http://h/\n"
	    "        headers: { Authorization: x }\n        bearer: { token: t }\n" + tail),
	    7, 20, "an Authorization header and bearer would both set Authorization");
}

TEST(HttpSources, RequestKeysAreOnlyForHttp)
{
	expectError(withGroup("        source_type: file\n        source: /f\n"
	    "        method: POST\n        metrics: { m: { filter: x } }\n"), 7, 17,
	    "'method' is only for source_type http");
}

TEST_GROUP(Unit) {};

TEST(Unit, ASuffixOfTheNameBeforeTotal)
{
	Config c = load(withGroup(
	    "        source_type: static\n"
	    "        metrics:\n"
	    "          took_seconds: { value: 1, unit: seconds }\n"
	    "          read_bytes_total: { type: counter, value: 1, unit: bytes }\n"));
	STRCMP_EQUAL("seconds", c.services[0].groups[0].metrics[0].unit.c_str());
	STRCMP_EQUAL("bytes", c.services[0].groups[0].metrics[1].unit.c_str());
}

TEST(Unit, ANameWithoutItIsRefused)
{
	expectError(withGroup(
	    "        source_type: static\n"
	    "        metrics:\n"
	    "          took: { value: 1, unit: seconds }\n"), 7, 35,
	    "metric 'took' has unit 'seconds', so its name must end in '_seconds'");
	expectError(withGroup(
	    "        source_type: static\n"
	    "        metrics:\n"
	    "          bytes_total: { type: counter, value: 1, unit: bytes }\n"), 7, 57,
	    "must end in '_bytes' (before _total)");
	expectError(withGroup(
	    "        source_type: static\n"
	    "        metrics:\n"
	    "          took_Seconds: { value: 1, unit: Seconds }\n"), 7, 43,
	    "'unit' must be lower-case letters, digits and '_'");
}
