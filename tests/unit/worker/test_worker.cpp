// SPDX-License-Identifier: ISC
// Worker: schedules, one read per cycle, results and their errors.
#include <unistd.h>
#include <uv.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "worker/worker.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme;
using common::GroupConfig;
using common::GroupResult;
using common::MetricConfig;
using common::Millis;
using worker::Worker;

namespace {

MetricConfig metric(const std::string &name, const std::string &filter)
{
	MetricConfig m;
	m.key = name;
	m.name = "svc_" + name;
	m.baseName = name;
	m.description = name;
	m.filter = filter;
	return m;
}

GroupConfig commandGroup(const std::string &key, const std::string &script)
{
	GroupConfig g;
	g.key = key;
	g.sourceType = common::SourceType::Command;
	g.shell = true;
	g.source = script;
	g.effectiveInterval = Millis(5000);
	return g;
}

const common::Family *family(const GroupResult &r, const std::string &name)
{
	for (const auto &f : r.families)
		if (f.name == name)
			return &f;
	return nullptr;
}

std::string slurp(const std::string &path)
{
	std::ifstream in(path);
	std::stringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

} // namespace

TEST_GROUP(Worker)
{
	uv_loop_t loop;
	common::ServiceConfig service;
	worker::WorkerOptions options;
	std::vector<GroupResult> results;

	void setup() override
	{
		uv_loop_init(&loop);
		service.key = service.name = "svc";
		options.once = true;
		options.baseEnv = {{"PATH", "/usr/bin:/bin"}};
	}

	void teardown() override
	{
		uv_run(&loop, UV_RUN_DEFAULT);
		LONGS_EQUAL(0, uv_loop_close(&loop));
	}

	// Run until n results have arrived, then stop the worker.
	void collect(size_t n)
	{
		Worker w(&loop, service, options, [&](const GroupResult &r) {
			results.push_back(r);
			if (results.size() >= n)
				w.stop();
		});
		w.start();
		uv_run(&loop, UV_RUN_DEFAULT);
		LONGS_EQUAL(n, results.size());
	}
};

TEST(Worker, StaticGroupReportsItsValues)
{
	GroupConfig g;
	g.key = "version_info";
	g.standalone = true;
	MetricConfig m;
	m.name = "svc_version_info";
	m.type = common::MetricType::Info;
	m.labels = {{"version", "1.2"}};
	m.staticValue = 1;
	g.metrics.push_back(m);
	service.groups.push_back(g);
	collect(1);
	const GroupResult &r = results[0];
	STRCMP_EQUAL("version_info", r.group.c_str());
	LONGS_EQUAL(1, r.sequence);
	CHECK(r.ok);
	LONGS_EQUAL(-1, r.exitStatus);
	LONGS_EQUAL(1, r.families.size());
	CHECK(r.families[0].type == common::MetricType::Info);
	STRCMP_EQUAL("1.2", r.families[0].samples[0].labels[0].value.c_str());
}

TEST(Worker, OneCommandRunFeedsEveryMetric)
{
	std::string counter = "/tmp/pme-worker-test-" + std::to_string(getpid());
	GroupConfig g = commandGroup("status",
	    "echo run >> " + counter + "; printf 'Active connections: 7\\nReading: 1 Writing: 2\\n'");
	g.metrics.push_back(metric("active", R"(Active connections:\s+(\d+))"));
	g.metrics.push_back(metric("reading", R"(Reading: (\d+))"));
	g.metrics.push_back(metric("writing", R"(Writing: (\d+))"));
	service.groups.push_back(g);
	collect(1);
	const GroupResult &r = results[0];
	CHECK(r.ok);
	LONGS_EQUAL(0, r.exitStatus);
	CHECK(r.duration > 0 && r.duration < 5);
	LONGS_EQUAL(3, r.families.size());
	DOUBLES_EQUAL(7, family(r, "svc_active")->samples[0].value, 0);
	DOUBLES_EQUAL(1, family(r, "svc_reading")->samples[0].value, 0);
	DOUBLES_EQUAL(2, family(r, "svc_writing")->samples[0].value, 0);
	std::string all = slurp(counter);
	std::remove(counter.c_str());
	STRCMP_EQUAL("run\n", all.c_str());
}

TEST(Worker, MetricErrorsDoNotFailTheGroup)
{
	GroupConfig g = commandGroup("g", "echo 'up 1'");
	g.metrics.push_back(metric("up", R"(up (\d+))"));
	g.metrics.push_back(metric("down", R"(down (\d+))"));
	MetricConfig fallback = metric("other", R"(other (\d+))");
	fallback.valueOnError = -1;
	g.metrics.push_back(fallback);
	service.groups.push_back(g);
	collect(1);
	const GroupResult &r = results[0];
	CHECK(r.ok);
	STRCMP_EQUAL("", r.error.c_str());
	LONGS_EQUAL(2, r.families.size());
	DOUBLES_EQUAL(-1, family(r, "svc_other")->samples[0].value, 0);
	LONGS_EQUAL(1, r.metricErrors.size());
	STRCMP_EQUAL("svc_down", r.metricErrors[0].first.c_str());
	STRCMP_EQUAL("filter matched nothing", r.metricErrors[0].second.c_str());
}

TEST(Worker, FailedSourceFailsTheGroupAndOnlyValueOnErrorRemains)
{
	GroupConfig g = commandGroup("g", "echo 'up 1'; echo 'no route to host' >&2; exit 2");
	g.metrics.push_back(metric("up", R"(up (\d+))"));
	MetricConfig fallback = metric("reachable", R"(up (\d+))");
	fallback.valueOnError = 0;
	g.metrics.push_back(fallback);
	service.groups.push_back(g);
	collect(1);
	const GroupResult &r = results[0];
	CHECK_FALSE(r.ok);
	LONGS_EQUAL(2, r.exitStatus);
	STRCMP_CONTAINS("exited with status 2: no route to host", r.error.c_str());
	LONGS_EQUAL(1, r.families.size());
	DOUBLES_EQUAL(0, family(r, "svc_reachable")->samples[0].value, 0);
	LONGS_EQUAL(0, r.metricErrors.size());
}

TEST(Worker, TruncatedOutputIsParsedButReported)
{
	GroupConfig g = commandGroup("g", "echo 'value 5'; head -c 5000 /dev/zero");
	g.maxOutput = 100;
	g.metrics.push_back(metric("v", R"(value (\d+))"));
	service.groups.push_back(g);
	collect(1);
	const GroupResult &r = results[0];
	CHECK_FALSE(r.ok);
	STRCMP_CONTAINS("truncated at 100 bytes", r.error.c_str());
	DOUBLES_EQUAL(5, family(r, "svc_v")->samples[0].value, 0);
}

TEST(Worker, MoreSeriesThanMaxSeriesFailTheReadWhole)
{
	// 30 lines, 10 series per metric, 30 in all: over a max_series of 25.
	GroupConfig g = commandGroup("g", "for i in $(seq 10); do echo \"a$i 1\"; echo \"b$i 2\"; "
	    "echo \"c$i 3\"; done");
	g.maxSeries = 25;
	g.metrics.push_back(metric("a", R"(^a(?<n>\d+) (\d+)$)"));
	g.metrics.back().labels = {{"n", "${n}"}};
	g.metrics.push_back(metric("b", R"(^b(?<n>\d+) (\d+)$)"));
	g.metrics.back().labels = {{"n", "${n}"}};
	MetricConfig c = metric("c", R"(^c(?<n>\d+) (\d+)$)");
	c.labels = {{"n", "${n}"}};
	c.valueOnError = -1;
	g.metrics.push_back(c);
	g.multiline = true;
	service.groups.push_back(g);
	collect(1);
	const GroupResult &r = results[0];
	CHECK_FALSE(r.ok);
	STRCMP_EQUAL("the read gave 30 series, more than max_series (25); none is kept",
	    r.error.c_str());
	// Only value_on_error stands in, as for any failed read.
	LONGS_EQUAL(1, r.families.size());
	DOUBLES_EQUAL(-1, family(r, "svc_c")->samples[0].value, 0);

	// At the limit, everything is kept.
	service.groups[0].maxSeries = 30;
	results.clear();
	collect(1);
	CHECK_TEXT(results[0].ok, results[0].error.c_str());
	LONGS_EQUAL(3, results[0].families.size());
	LONGS_EQUAL(10, family(results[0], "svc_a")->samples.size());
}

TEST(Worker, FileGroupReadsTheFile)
{
	GroupConfig g;
	g.key = "load";
	g.sourceType = common::SourceType::File;
	const char *root = std::getenv("PME_SOURCE_ROOT");
	g.source = std::string(root ? root : ".") + "/tests/data/text/loadavg.txt";
	g.metrics.push_back(metric("load1", R"(^(\S+))"));
	service.groups.push_back(g);
	collect(1);
	CHECK(results[0].ok);
	DOUBLES_EQUAL(0.52, family(results[0], "svc_load1")->samples[0].value, 0);
}

TEST(Worker, JsonGroupParsesOnceAndReportsNullsPerSeries)
{
	GroupConfig g = commandGroup("j", "echo '{\"nodes\": {\"a\": {\"load\": 2}, "
	    "\"b\": {\"load\": null}, \"c\": {\"load\": \"3\"}}, \"state\": \"up\"}'");
	g.contentType = common::ContentType::Json;
	g.labels = {{"site", "lab"}};
	MetricConfig load = metric("load", "$.nodes.*.load");
	load.labels = {{"node", "${^key}"}};
	g.metrics.push_back(load);
	MetricConfig state = metric("state", "$.state");
	state.values = {{"up", 1}, {"down", 0}};
	g.metrics.push_back(state);
	service.groups.push_back(g);
	collect(1);
	CHECK(results[0].ok);
	const common::Family *f = family(results[0], "svc_load");
	CHECK(f != nullptr);
	LONGS_EQUAL(2, f->samples.size());
	STRCMP_EQUAL("a", f->samples[0].labels[0].value.c_str());
	STRCMP_EQUAL("site", f->samples[0].labels[1].name.c_str());
	DOUBLES_EQUAL(3, f->samples[1].value, 0);
	LONGS_EQUAL(1, results[0].metricErrors.size());
	STRCMP_CONTAINS("is null", results[0].metricErrors[0].second.c_str());
	DOUBLES_EQUAL(1, family(results[0], "svc_state")->samples[0].value, 0);
}

TEST(Worker, ADocumentThatDoesNotParseFailsTheGroup)
{
	GroupConfig g = commandGroup("j", "echo '{\"a\": '");
	g.contentType = common::ContentType::Json;
	MetricConfig m = metric("x", "$.a");
	m.valueOnError = -1;
	g.metrics.push_back(m);
	GroupConfig x = commandGroup("x", "echo '<a><b>1</b>'");
	x.contentType = common::ContentType::Xml;
	x.metrics.push_back(metric("b", "/a/b"));
	service.groups.push_back(g);
	service.groups.push_back(x);
	collect(2);
	for (const auto &r : results) {
		CHECK_FALSE(r.ok);
		if (r.group == "j") {
			STRCMP_CONTAINS("invalid JSON at line", r.error.c_str());
			DOUBLES_EQUAL(-1, family(r, "svc_x")->samples[0].value, 0);
		} else {
			STRCMP_CONTAINS("invalid XML", r.error.c_str());
			LONGS_EQUAL(0, r.families.size());
		}
	}
}

TEST(Worker, XmlGroupSelectsNodesAndComputesNumbers)
{
	GroupConfig g = commandGroup("x", "echo '<s><app name=\"live\"><c>3</c><c>4</c></app></s>'");
	g.contentType = common::ContentType::Xml;
	MetricConfig c = metric("clients", "//c");
	c.labels = {{"app", "${^.name}"}, {"i", "${@}"}};
	g.metrics.push_back(c);
	g.metrics.push_back(metric("count", "count(//c)"));
	service.groups.push_back(g);
	collect(1);
	CHECK(results[0].ok);
	const common::Family *f = family(results[0], "svc_clients");
	LONGS_EQUAL(2, f->samples.size());
	STRCMP_EQUAL("live", f->samples[1].labels[0].value.c_str());
	DOUBLES_EQUAL(4, f->samples[1].value, 0);
	DOUBLES_EQUAL(2, family(results[0], "svc_count")->samples[0].value, 0);
}

TEST(Worker, PrometheusGroupImportsTheExposition)
{
	GroupConfig g = commandGroup("p", "printf '# TYPE up gauge\\nup 1\\n# TYPE go_x gauge\\n"
	    "go_x 2\\nreqs_total{code=\"200\"} 5\\n'");
	g.contentType = common::ContentType::Prometheus;
	service.metricPrefix = "svc_";
	g.import.prefix = "app_";
	g.import.exclude = {"go_.*"};
	g.labels = {{"origin", "cmd"}};
	service.groups.push_back(g);
	collect(1);
	CHECK_TEXT(results[0].ok, results[0].error.c_str());
	LONGS_EQUAL(2, results[0].families.size());
	const common::Family *up = family(results[0], "svc_app_up");
	CHECK(up != nullptr);
	STRCMP_EQUAL("origin", up->samples[0].labels[0].name.c_str());
	CHECK(family(results[0], "svc_app_reqs_total")->type == common::MetricType::Untyped);

	GroupConfig bad = commandGroup("q", "echo 'up 0x1p3'");
	bad.contentType = common::ContentType::Prometheus;
	service.groups = {bad};
	results.clear();
	collect(1);
	CHECK_FALSE(results[0].ok);
	STRCMP_CONTAINS("line 1", results[0].error.c_str());
}

TEST(Worker, BadFilterIsAMetricErrorEveryCycle)
{
	GroupConfig g = commandGroup("g", "echo 1");
	g.metrics.push_back(metric("bad", "(unclosed"));
	service.groups.push_back(g);
	collect(1);
	CHECK(results[0].ok);
	LONGS_EQUAL(1, results[0].metricErrors.size());
	STRCMP_CONTAINS("missing closing parenthesis", results[0].metricErrors[0].second.c_str());
}

TEST(Worker, ATickWhileRunningIsSkippedAndCounted)
{
	options.once = false;
	GroupConfig g = commandGroup("slow", "sleep 0.45; echo 1");
	g.effectiveInterval = Millis(100);
	g.metrics.push_back(metric("one", R"(\d+)"));
	service.groups.push_back(g);
	collect(2);
	LONGS_EQUAL(1, results[0].sequence);
	LONGS_EQUAL(2, results[1].sequence);
	// About four ticks fall into each run of 450ms; fewer on a loaded
	// machine, where the loop wakes late and libuv runs a late timer once.
	CHECK(results[0].skipped >= 1 && results[0].skipped <= 5);
	CHECK(results[1].skipped >= 1 && results[1].skipped <= 5);
	CHECK(results[0].ok && results[1].ok);
}

TEST(Worker, CacheTtlReusesAYoungRead)
{
	options.once = false;
	std::string counter = "/tmp/pme-worker-ttl-" + std::to_string(getpid());
	GroupConfig g = commandGroup("cached", "echo run >> " + counter + "; echo 1");
	g.effectiveInterval = Millis(50);
	g.cacheTtl = Millis(60000);
	g.metrics.push_back(metric("one", R"(\d+)"));
	service.groups.push_back(g);
	collect(3);
	std::string all = slurp(counter);
	std::remove(counter.c_str());
	STRCMP_EQUAL("run\n", all.c_str());
	for (const auto &r : results)
		DOUBLES_EQUAL(1, r.families[0].samples[0].value, 0);
}

TEST(Worker, GroupsAreSpreadOverTheirInterval)
{
	Millis a = worker::startOffset("nginx", "status", Millis(60000));
	CHECK(a == worker::startOffset("nginx", "status", Millis(60000)));
	CHECK(a.count() >= 0 && a.count() < 60000);
	// 100 groups over a minute do not land on a handful of ticks.
	std::vector<bool> second(60);
	for (int i = 0; i < 100; i++)
		second[static_cast<size_t>(worker::startOffset("svc", "g" + std::to_string(i),
		    Millis(60000)).count() / 1000)] = true;
	int used = 0;
	for (bool b : second)
		used += b;
	CHECK(used > 30);
	LONGS_EQUAL(0, worker::startOffset("a", "b", Millis(0)).count());
}

TEST(Worker, StopKillsARunningCommand)
{
	std::string pidfile = "/tmp/pme-worker-stop-" + std::to_string(getpid());
	GroupConfig g = commandGroup("hang", "echo $$ > " + pidfile + "; sleep 100");
	g.metrics.push_back(metric("x", R"(\d+)"));
	service.groups.push_back(g);
	{
		Worker w(&loop, service, options, [&](const GroupResult &r) { results.push_back(r); });
		w.start();
		uv_timer_t t;
		uv_timer_init(&loop, &t);
		t.data = &w;
		uv_timer_start(&t, [](uv_timer_t *h) noexcept {
			static_cast<Worker *>(h->data)->stop();
			uv_close(reinterpret_cast<uv_handle_t *>(h), nullptr);
		}, 300, 0);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	LONGS_EQUAL(0, results.size());
	std::ifstream in(pidfile);
	pid_t pid = 0;
	in >> pid;
	std::remove(pidfile.c_str());
	CHECK(pid > 0);
	bool gone = false;
	for (int i = 0; i < 200 && !gone; i++) {
		std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
		std::string line;
		std::getline(st, line);
		size_t p = line.rfind(')');
		gone = line.empty() || (p != std::string::npos && line[p + 2] == 'Z');
		if (!gone)
			usleep(10000);
	}
	CHECK(gone);
}

namespace {

// The value of the sample of f with suffix and label name=value.
double sampleValue(const common::Family &f, const std::string &suffix,
    const std::string &name = "", const std::string &value = "")
{
	for (const auto &s : f.samples) {
		if (s.suffix != suffix)
			continue;
		for (const auto &l : s.labels)
			if (name.empty() || (l.name == name && l.value == value))
				return s.value;
		if (name.empty())
			return s.value;
	}
	FAIL(("no sample " + f.name + suffix + "{" + name + "=" + value + "}").c_str());
	return 0;
}

} // namespace

TEST(Worker, StateSetGivesASeriesPerState)
{
	GroupConfig g = commandGroup("unit", "printf 'ActiveState=failed\\nSubState=odd\\n'");
	g.multiline = true;
	MetricConfig state = metric("state", R"(^ActiveState=(\S+))");
	state.type = common::MetricType::StateSet;
	state.states = {"active", "failed", "inactive"};
	g.metrics.push_back(state);
	MetricConfig sub = metric("sub", R"(^SubState=(\S+))");
	sub.type = common::MetricType::StateSet;
	sub.states = {"running", "dead"};
	g.metrics.push_back(sub);
	service.groups.push_back(g);
	collect(1);
	const common::Family *f = family(results[0], "svc_state");
	CHECK(f != nullptr);
	CHECK(f->type == common::MetricType::StateSet);
	LONGS_EQUAL(3, f->samples.size());
	DOUBLES_EQUAL(0, sampleValue(*f, "", "svc_state", "active"), 0);
	DOUBLES_EQUAL(1, sampleValue(*f, "", "svc_state", "failed"), 0);
	DOUBLES_EQUAL(0, sampleValue(*f, "", "svc_state", "inactive"), 0);
	// A state not listed is the metric's error, not a wrong series.
	CHECK(family(results[0], "svc_sub") == nullptr);
	LONGS_EQUAL(1, results[0].metricErrors.size());
	STRCMP_CONTAINS("'odd'", results[0].metricErrors[0].second.c_str());
}

TEST(Worker, MappedHistogramReadsEachBucket)
{
	GroupConfig g = commandGroup("lat", "echo '{\"le1\": 2, \"le5\": 3, \"n\": 7, \"sum\": 2000}'");
	g.contentType = common::ContentType::Json;
	MetricConfig h = metric("latency_seconds", "");
	h.type = common::MetricType::Histogram;
	h.bucketFilters = {{1, "$.le1"}, {5, "$.le5"}};
	h.countFilter = "$.n";
	h.sumFilter = "$.sum";
	h.scale = 0.001; // the sum is in milliseconds
	h.cumulative = false;
	h.labels = {{"path", "/"}};
	g.metrics.push_back(h);
	service.groups.push_back(g);
	collect(1);
	const common::Family *f = family(results[0], "svc_latency_seconds");
	CHECK(f != nullptr);
	CHECK(f->type == common::MetricType::Histogram);
	DOUBLES_EQUAL(2, sampleValue(*f, "_bucket", "le", "1"), 0);
	DOUBLES_EQUAL(5, sampleValue(*f, "_bucket", "le", "5"), 0);
	DOUBLES_EQUAL(7, sampleValue(*f, "_bucket", "le", "+Inf"), 0);
	DOUBLES_EQUAL(2, sampleValue(*f, "_sum"), 1e-12);
	DOUBLES_EQUAL(7, sampleValue(*f, "_count"), 0);
	LONGS_EQUAL(0, results[0].metricErrors.size());
}

TEST(Worker, MappedHistogramPartThatFailsIsTheMetricError)
{
	GroupConfig g = commandGroup("lat", "echo '{\"le1\": 9, \"n\": 7}'");
	g.contentType = common::ContentType::Json;
	MetricConfig h = metric("latency_seconds", "");
	h.type = common::MetricType::Histogram;
	h.bucketFilters = {{1, "$.le1"}, {5, "$.le5"}};
	h.countFilter = "$.n";
	g.metrics.push_back(h);
	service.groups.push_back(g);
	collect(1);
	CHECK(family(results[0], "svc_latency_seconds") == nullptr);
	LONGS_EQUAL(1, results[0].metricErrors.size());
	STRCMP_CONTAINS("bucket le=\"5\": filter matched nothing",
	    results[0].metricErrors[0].second.c_str());
}

// A log is observed line by line: what was observed is not observed again.
TEST(Worker, ObservedHistogramSeesEachLogLineOnce)
{
	options.once = false;
	std::string log = "/tmp/pme-worker-observe-" + std::to_string(getpid());
	{
		std::ofstream out(log);
		out << "backup finished in 30s\nbackup finished in 400s\nbackup fini";
	}
	GroupConfig g;
	g.key = "backup";
	g.sourceType = common::SourceType::File;
	g.source = log;
	g.effectiveInterval = Millis(50);
	MetricConfig h = metric("duration_seconds", R"(finished in (\d+)s)");
	h.type = common::MetricType::Histogram;
	h.observe = true;
	h.bucketBounds = {60, 600};
	g.metrics.push_back(h);
	service.groups.push_back(g);
	Worker w(&loop, service, options, [&](const GroupResult &r) {
		results.push_back(r);
		if (results.size() == 1) {
			// The cut line ends, and one more comes.
			std::ofstream out(log, std::ios::app);
			out << "shed in 50s\nbackup finished in 20s\n";
		}
		if (results.size() >= 3)
			w.stop();
	});
	w.start();
	uv_run(&loop, UV_RUN_DEFAULT);
	std::remove(log.c_str());
	const common::Family *first = family(results[0], "svc_duration_seconds");
	CHECK(first != nullptr);
	DOUBLES_EQUAL(2, sampleValue(*first, "_count"), 0);
	DOUBLES_EQUAL(1, sampleValue(*first, "_bucket", "le", "60"), 0);
	const common::Family *last = family(results[2], "svc_duration_seconds");
	DOUBLES_EQUAL(4, sampleValue(*last, "_count"), 0);
	DOUBLES_EQUAL(3, sampleValue(*last, "_bucket", "le", "60"), 0);
	DOUBLES_EQUAL(4, sampleValue(*last, "_bucket", "le", "600"), 0);
	DOUBLES_EQUAL(500, sampleValue(*last, "_sum"), 0);
	LONGS_EQUAL(0, results[2].metricErrors.size());
}

// Any other source is observed whole at each read.
TEST(Worker, SummaryObservesEachRead)
{
	options.once = false;
	GroupConfig g = commandGroup("req", "echo 'took 1s took 2s took 3s'");
	g.effectiveInterval = Millis(50);
	MetricConfig m = metric("request_seconds", R"(took (\d+)s)");
	m.type = common::MetricType::Summary;
	m.quantiles = {0.5, 1};
	g.metrics.push_back(m);
	service.groups.push_back(g);
	collect(2);
	const common::Family *f = family(results[1], "svc_request_seconds");
	CHECK(f != nullptr);
	DOUBLES_EQUAL(2, sampleValue(*f, "", "quantile", "0.5"), 0);
	DOUBLES_EQUAL(3, sampleValue(*f, "", "quantile", "1"), 0);
	DOUBLES_EQUAL(6, sampleValue(*f, "_count"), 0);
	DOUBLES_EQUAL(12, sampleValue(*f, "_sum"), 0);
}
