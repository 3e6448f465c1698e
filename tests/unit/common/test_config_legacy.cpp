// SPDX-License-Identifier: ISC
// The original PME's configuration dialect, read in pme's own keys (Compatibility in pme.yml(5)).
#include <string>
#include <vector>

#include "common/config_loader.hpp"
#include "common/config_writer.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme::common;

namespace {

Config load(const std::string &yaml, LoadNotes *notes)
{
	auto r = loadConfigString(yaml, "t.yml", notes);
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

// The one warning at line:column that contains text.
void expectWarning(const LoadNotes &notes, int line, int column, const std::string &text)
{
	std::string all;
	for (const auto &w : notes.warnings) {
		if (w.where.line == line && w.where.column == column &&
		    w.message.find(text) != std::string::npos) {
			STRCMP_EQUAL("t.yml", w.where.file.c_str());
			return;
		}
		all += "  " + w.str() + "\n";
	}
	FAIL(("no warning at " + std::to_string(line) + ":" + std::to_string(column) +
	    " with '" + text + "'; warnings:\n" + all).c_str());
}

const GroupConfig &groupOf(const ServiceConfig &s, const std::string &key)
{
	for (const auto &g : s.groups)
		if (g.key == key)
			return g;
	FAIL(("no group " + key).c_str());
	return s.groups.front();
}

// The complete example of the original's docs/configuration.md.
const char *const guideExample = R"Y(exporter:
  metrics_port: 9101
  health_port: 9102
  poll_interval_sec: 5

services:
  example:
    name: "Example Service"
    metric_prefix: "example_"
    run_as:
      user: service_user
      group: service_group

    metric_groups:
      status:
        command: "systemctl status example.service"
        metrics:
          running:
            name: "is_running"
            type: "gauge"
            description: "Service running status"
            filter: "Active: active"

    standalone_metrics:
      disk_usage:
        name: "data_size_bytes"
        type: "gauge"
        description: "Data directory size"
        command: "du -sb /var/lib/example"
        filter: "^(\\d+)"
        collection_frequency_sec: 300
)Y";

// The original's shipped src/prometheus_metrics_exporter.yml.
const char *const shippedExample = R"Y(exporter:
    metrics_port: 9101
    collection:
        poll_interval_sec: 5 # Global polling interval
    logging:
        level: "DEBUG"

services:
    algorand_node:
        description: "Algorand node services"
        run_as: algorand
        metric_groups:
            status:
                command: "/usr/bin/goal node status -d /var/lib/algorand"
                metrics:
                    sync_time:
                        description: "Node synchronization time in seconds"
                        filter: "Sync Time: ([0-9.]+)s"
                        value_on_error: 999
            data_store:
                command: "du -sb /var/lib/algorand"
                metrics:
                    bytes:
                        description: "Algorand data storage directory size"
                        filter: "^(\\d+)"
)Y";

} // namespace

TEST_GROUP(LegacyDialect) {};

TEST(LegacyDialect, GuideExampleReadsInPmeKeys)
{
	LoadNotes notes;
	Config c = load(guideExample, &notes);
	// metrics_port, health_port, poll_interval_sec, two commands,
	// collection_frequency_sec.
	UNSIGNED_LONGS_EQUAL(6, notes.legacyKeys);
	CHECK(c.exporter.listen == std::vector<std::string>{":9101"});
	STRCMP_EQUAL(":9102", c.exporter.healthListen.c_str());
	LONGS_EQUAL(5000, c.exporter.interval.count());
	UNSIGNED_LONGS_EQUAL(2, notes.warnings.size());
	expectWarning(notes, 2, 3, "'metrics_port' listens on every address");
	expectWarning(notes, 3, 3, "health_listen: \"127.0.0.1:9102\"");

	const auto &s = c.services.at(0);
	STRCMP_EQUAL("Example Service", s.name.c_str());
	STRCMP_EQUAL("service_user", s.runAs.user.c_str());
	STRCMP_EQUAL("service_group", s.runAs.group.c_str());
	const auto &status = groupOf(s, "status");
	CHECK(status.sourceType == SourceType::Command);
	CHECK(status.shell);
	STRCMP_EQUAL("systemctl status example.service", status.source.c_str());
	const auto &running = status.metrics.at(0);
	STRCMP_EQUAL("example_is_running", running.name.c_str());
	// A filter without a capture tests for presence: 1 when found, 0 not.
	CHECK(running.valueTemplate && *running.valueTemplate == "1");
	CHECK(running.valueOnError && *running.valueOnError == 0);

	const auto &disk = groupOf(s, "disk_usage");
	CHECK(disk.standalone);
	CHECK(disk.shell);
	STRCMP_EQUAL("du -sb /var/lib/example", disk.source.c_str());
	LONGS_EQUAL(300000, disk.interval->count());
	STRCMP_EQUAL("example_data_size_bytes", disk.metrics.at(0).name.c_str());
	CHECK(!disk.metrics.at(0).valueTemplate);
	CHECK(!disk.metrics.at(0).valueOnError);
}

TEST(LegacyDialect, ShippedExampleNamesServiceGroupMetric)
{
	LoadNotes notes;
	Config c = load(shippedExample, &notes);
	// metrics_port, collection.poll_interval_sec, logging.level, two commands.
	UNSIGNED_LONGS_EQUAL(5, notes.legacyKeys);
	UNSIGNED_LONGS_EQUAL(2, notes.warnings.size());
	expectWarning(notes, 2, 5, "'metrics_port' listens on every address");
	expectWarning(notes, 6, 9, "'level' is ignored: pmed logs to the journal");
	LONGS_EQUAL(5000, c.exporter.interval.count());
	const auto &s = c.services.at(0);
	STRCMP_EQUAL("algorand", s.runAs.user.c_str());
	STRCMP_EQUAL("algorand_node_", s.metricPrefix.c_str());
	const auto &status = groupOf(s, "status");
	STRCMP_EQUAL("algorand_node_status_sync_time", status.metrics.at(0).name.c_str());
	CHECK(status.metrics.at(0).valueOnError && *status.metrics.at(0).valueOnError == 999);
	CHECK(status.shell);
	STRCMP_EQUAL("algorand_node_data_store_bytes",
	    groupOf(s, "data_store").metrics.at(0).name.c_str());
}

TEST(LegacyDialect, RewriteLoadsAsPmeOwnWithTheSameMetrics)
{
	for (const char *yaml : {guideExample, shippedExample}) {
		LoadNotes notes;
		Config legacy = load(yaml, &notes);
		std::string rewritten = writeConfig(legacy);
		LoadNotes again;
		Config modern = load(rewritten, &again);
		UNSIGNED_LONGS_EQUAL(0, again.legacyKeys);
		UNSIGNED_LONGS_EQUAL(0, again.warnings.size());
		CHECK(rewritten.find("metrics_port") == std::string::npos);
		CHECK(rewritten.find("poll_interval_sec") == std::string::npos);
		STRCMP_EQUAL(writeConfig(legacy).c_str(), writeConfig(modern).c_str());
	}
}

TEST(LegacyDialect, IgnoredKeysWarnOnceEachWithWhy)
{
	LoadNotes notes;
	load(R"Y(exporter:
  metrics_port: 9101
  parallel_collection: true
  max_workers: 4
logging:
  level: DEBUG
  max_bytes: 10485760
services:
  web:
    metric_prefix: web_
    ordinal: 1
    expose_metrics: true
    metric_groups:
      status:
        prefix: "status_"
        ordinal: 2
        command: "echo 3"
        metrics:
          up:
            category: health
            filter: "(\\d+)"
)Y", &notes);
	// metrics_port, 2 + 2 ignored, ordinal, expose_metrics, prefix,
	// ordinal, command, category.
	UNSIGNED_LONGS_EQUAL(11, notes.legacyKeys);
	expectWarning(notes, 3, 3, "'parallel_collection' is ignored: every service runs in a "
	    "worker process of its own");
	expectWarning(notes, 4, 3, "'max_workers' is ignored");
	expectWarning(notes, 6, 3, "'level' is ignored");
	expectWarning(notes, 7, 3, "'max_bytes' is ignored: pmed writes no log file");
	expectWarning(notes, 11, 5, "'ordinal' is ignored: pme keeps no order");
	expectWarning(notes, 12, 5, "'expose_metrics' is ignored");
	expectWarning(notes, 16, 9, "'ordinal' is ignored");
	expectWarning(notes, 20, 13, "'category' is ignored");
	UNSIGNED_LONGS_EQUAL(9, notes.warnings.size());
}

TEST(LegacyDialect, GroupPrefixGoesBetweenServicePrefixAndName)
{
	LoadNotes notes;
	Config c = load(R"Y(exporter: {poll_interval_sec: 5}
services:
  web:
    metric_prefix: web_
    metric_groups:
      status:
        prefix: "status_"
        command: "echo 3"
        metrics:
          up: {filter: "(\\d+)"}
          load: {name: load_ratio, filter: "(\\d+)"}
)Y", &notes);
	const auto &g = c.services.at(0).groups.at(0);
	STRCMP_EQUAL("web_status_up", g.metrics.at(0).name.c_str());
	STRCMP_EQUAL("web_status_load_ratio", g.metrics.at(1).name.c_str());
}

TEST(LegacyDialect, UnknownKeysAreStillErrors)
{
	Errors e = errorsOf(R"Y(exporter:
  metrics_port: 9101
  metrics_prot: 9102
services:
  web:
    metric_groups:
      g:
        command: "echo 1"
        colection_frequency_sec: 5
        metrics:
          one: {filter: "(\\d)"}
)Y");
	UNSIGNED_LONGS_EQUAL(2, e.size());
	LONGS_EQUAL(3, e[0].where.line);
	LONGS_EQUAL(3, e[0].where.column);
	CHECK(e[0].message.find("unknown key 'metrics_prot' in exporter") != std::string::npos);
	LONGS_EQUAL(9, e[1].where.line);
	LONGS_EQUAL(9, e[1].where.column);
	CHECK(e[1].message.find("unknown key 'colection_frequency_sec'") != std::string::npos);

	Errors l = errorsOf("exporter:\n  logging:\n    levle: DEBUG\nservices: {}\n");
	UNSIGNED_LONGS_EQUAL(1, l.size());
	LONGS_EQUAL(3, l[0].where.line);
	LONGS_EQUAL(5, l[0].where.column);
	CHECK(l[0].message.find("unknown key 'levle' in logging") != std::string::npos);
}

TEST(LegacyDialect, LabelFiltersAndTransformsSayHowPmeDoesIt)
{
	// The original's later examples read labels with filters of their own
	// and mapped values with Python: one error each, saying what to write.
	Errors e = errorsOf(R"Y(exporter:
  metrics_port: 9101
services:
  node:
    metric_groups:
      status:
        command: "goal node status"
        labels:
          genesis_id:
            filter: "(?m)^Genesis ID: (.+?)$"
          site: paris
        metrics:
          ready:
            filter: "supported: (true|false)"
            transform: "value.lower() == 'true' and 1 or 0"
)Y");
	UNSIGNED_LONGS_EQUAL(2, e.size());
	LONGS_EQUAL(9, e[0].where.line);
	LONGS_EQUAL(11, e[0].where.column);
	CHECK_TEXT(e[0].message.find("label 'genesis_id' has a filter of its own") !=
	    std::string::npos, e[0].message.c_str());
	CHECK(e[0].message.find("genesis_id: \"$2\"") != std::string::npos);
	LONGS_EQUAL(15, e[1].where.line);
	LONGS_EQUAL(13, e[1].where.column);
	CHECK_TEXT(e[1].message.find("'transform' (a Python expression of the original) is not "
	    "read by pme: map the captured text with 'values'") != std::string::npos,
	    e[1].message.c_str());
}

TEST(LegacyDialect, BadAndConflictingValuesAreErrorsWhereWritten)
{
	Errors e = errorsOf("exporter:\n  metrics_port: 70000\nservices: {}\n");
	UNSIGNED_LONGS_EQUAL(1, e.size());
	LONGS_EQUAL(2, e[0].where.line);
	LONGS_EQUAL(17, e[0].where.column);
	CHECK(e[0].message.find("port from 1 to 65535") != std::string::npos);

	Errors c = errorsOf(R"Y(exporter:
  metrics_port: 9101
  listen: "127.0.0.1:9101"
services: {}
)Y");
	UNSIGNED_LONGS_EQUAL(1, c.size());
	LONGS_EQUAL(3, c[0].where.line);
	CHECK(c[0].message.find("'listen' sets 'listen', which 'metrics_port' at t.yml:2:3 "
	    "sets already") != std::string::npos);

	// An interval shorter than the service's: pme's check, at the
	// legacy key's value.
	Errors i = errorsOf(R"Y(exporter: {poll_interval_sec: 5}
services:
  web:
    collection_frequency_sec: 60
    standalone_metrics:
      one:
        command: "echo 1"
        filter: "(\\d)"
        collection_frequency_sec: 30
)Y");
	UNSIGNED_LONGS_EQUAL(1, i.size());
	LONGS_EQUAL(9, i[0].where.line);
	LONGS_EQUAL(35, i[0].where.column);
	CHECK(i[0].message.find("shorter than its service's interval 1m") != std::string::npos);
}

TEST(LegacyDialect, PmeOwnFileIsLeftAsItIs)
{
	LoadNotes notes;
	Config c = load(R"Y(services:
  web:
    metric_groups:
      g:
        command: "echo 'a b'"
        metrics:
          one: {filter: "(a)", value: "1"}
)Y", &notes);
	UNSIGNED_LONGS_EQUAL(0, notes.legacyKeys);
	UNSIGNED_LONGS_EQUAL(0, notes.warnings.size());
	const auto &g = c.services.at(0).groups.at(0);
	CHECK(!g.shell);
	CHECK(g.argv == (std::vector<std::string>{"echo", "'a", "b'"}));
	STRCMP_EQUAL("one", g.metrics.at(0).name.c_str());
	STRCMP_EQUAL("", c.services.at(0).metricPrefix.c_str());
}

TEST(LegacyDialect, StaticMetricsAreConstants)
{
	LoadNotes notes;
	Config c = load(R"Y(exporter: {metrics_port: 9101}
services:
  node:
    metric_prefix: node_
    metric_groups:
      constants:
        type: "static"
        metrics:
          version: {description: "Node version", value: 1.0}
          feature_flag: {type: static, value: 0.0}
    standalone_metrics:
      answer: {type: static, value: 42}
)Y", &notes);
	// metrics_port, group type, one metric type, the standalone's type.
	UNSIGNED_LONGS_EQUAL(4, notes.legacyKeys);
	const auto &s = c.services.at(0);
	const auto &g = groupOf(s, "constants");
	CHECK(g.sourceType == SourceType::Static);
	CHECK(g.metrics.at(0).staticValue && *g.metrics.at(0).staticValue == 1);
	CHECK(g.metrics.at(1).type == MetricType::Gauge);
	CHECK(g.metrics.at(1).staticValue && *g.metrics.at(1).staticValue == 0);
	const auto &a = groupOf(s, "answer");
	CHECK(a.sourceType == SourceType::Static);
	STRCMP_EQUAL("node_answer", a.metrics.at(0).name.c_str());
	CHECK(a.metrics.at(0).staticValue && *a.metrics.at(0).staticValue == 42);
}

TEST(LegacyDialect, ServiceTemplatesAndRunAsEnv)
{
	LoadNotes notes;
	Config c = load(R"Y(exporter: {poll_interval_sec: 5}
service_templates:
  api_metrics:
    collection_frequency: 30
    content_type: "json"
    retry_attempts: 3
services:
  api:
    template: api_metrics
    metric_prefix: api_
    run_as:
      user: nobody
      env:
        LANG: C
    metric_groups:
      stats:
        command: "echo '{\"a\": {\"b\": 7}}'"
        metrics:
          b: {filter: "a.b"}
)Y", &notes);
	const auto &s = c.services.at(0);
	LONGS_EQUAL(30000, s.interval->count());
	CHECK(s.env == (Pairs{{"LANG", "C"}}));
	STRCMP_EQUAL("nobody", s.runAs.user.c_str());
	const auto &g = s.groups.at(0);
	CHECK(g.contentType == ContentType::Json);
	// A dotted path of keys is a JSONPath from the root.
	STRCMP_EQUAL("$.a.b", g.metrics.at(0).filter.c_str());
	expectWarning(notes, 6, 5, "'retry_attempts' is ignored");
	// poll_interval_sec, service_templates, template, retry_attempts,
	// collection_frequency, env, command.
	UNSIGNED_LONGS_EQUAL(7, notes.legacyKeys);

	Errors e = errorsOf(R"Y(service_templates: {api: {collection_frequency: 30}}
services:
  web:
    template: apo
    standalone_metrics:
      one: {command: "echo 1", filter: "(\\d)"}
)Y");
	UNSIGNED_LONGS_EQUAL(1, e.size());
	LONGS_EQUAL(4, e[0].where.line);
	CHECK(e[0].message.find("unknown service template 'apo' (defined templates: api)") !=
	    std::string::npos);
}

TEST(LegacyDialect, SelfMonitoringServiceIsIgnored)
{
	LoadNotes notes;
	Config c = load(R"Y(exporter: {metrics_port: 9101}
services:
  exporter:
    metric_prefix: "exporter_"
    ordinal: 1
    metric_groups:
      status:
        metrics:
          uptime: {name: uptime_seconds, type: gauge}
  web:
    standalone_metrics:
      one: {command: "echo 1", filter: "(\\d)"}
)Y", &notes);
	UNSIGNED_LONGS_EQUAL(1, c.services.size());
	STRCMP_EQUAL("web", c.services.at(0).key.c_str());
	expectWarning(notes, 3, 3, "self-monitoring service");
}

TEST(LegacyDialect, ConstantsOfAReadingGroupBecomeAStaticGroup)
{
	LoadNotes notes;
	Config c = load(R"Y(exporter: {poll_interval_sec: 5}
services:
  node:
    metric_groups:
      status:
        command: "echo 5"
        metrics:
          n: {filter: "(\\d+)"}
          version: {type: static, value: 2.5}
)Y", &notes);
	const auto &s = c.services.at(0);
	const auto &status = groupOf(s, "status");
	UNSIGNED_LONGS_EQUAL(1, status.metrics.size());
	STRCMP_EQUAL("node_status_n", status.metrics.at(0).name.c_str());
	const auto &constants = groupOf(s, "status_static");
	CHECK(constants.sourceType == SourceType::Static);
	STRCMP_EQUAL("node_status_version", constants.metrics.at(0).name.c_str());
	CHECK(constants.metrics.at(0).staticValue && *constants.metrics.at(0).staticValue == 2.5);
}

TEST(LegacyDialect, ContentTypeOfMetricsIsTheGroups)
{
	LoadNotes notes;
	Config c = load(R"Y(exporter: {poll_interval_sec: 5}
services:
  api:
    metric_prefix: api_
    metric_groups:
      stats:
        command: "echo '{\"a\": 1, \"b\": 2}'"
        metrics:
          a: {filter: ".a", content_type: json}
          b: {filter: "b", content_type: "JSON"}
)Y", &notes);
	const auto &g = c.services.at(0).groups.at(0);
	CHECK(g.contentType == ContentType::Json);
	STRCMP_EQUAL("$.a", g.metrics.at(0).filter.c_str());
	STRCMP_EQUAL("$.b", g.metrics.at(1).filter.c_str());

	Errors e = errorsOf(R"Y(exporter: {poll_interval_sec: 5}
services:
  api:
    metric_groups:
      stats:
        command: "echo 1"
        metrics:
          a: {filter: ".a", content_type: json}
          b: {filter: ".b", content_type: text}
)Y");
	UNSIGNED_LONGS_EQUAL(1, e.size());
	LONGS_EQUAL(9, e[0].where.line);
	LONGS_EQUAL(43, e[0].where.column);
	CHECK(e[0].message.find("share one read and one content_type") != std::string::npos);
}
