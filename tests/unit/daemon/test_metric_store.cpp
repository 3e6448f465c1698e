// SPDX-License-Identifier: ISC
// MetricStore: checks against the config, counters, histograms and
// summaries, staleness, merging, the rendered exposition in both formats
// and gzip, /health, and series whose keys collide.
#include <jansson.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "common/c_deleter.hpp"
#include "common/config_loader.hpp"
#include "daemon/metric_store.hpp"
#include "daemon/series_key.hpp"
#include "tests/unit/daemon/gunzip.hpp"
#include "pme_build.h"

#include <CppUTest/TestHarness.h>

using namespace pme;
using namespace pme::daemon;
using common::MetricType;

namespace {

common::MetricConfig metric(const std::string &name, MetricType type, const std::string &help = "")
{
	common::MetricConfig m;
	m.key = name;
	m.name = name;
	m.baseName = name;
	m.type = type;
	m.description = help;
	return m;
}

common::GroupConfig group(const std::string &key, std::vector<common::MetricConfig> metrics,
    int intervalSeconds = 5)
{
	common::GroupConfig g;
	g.key = key;
	g.interval = common::Millis(intervalSeconds * 1000);
	g.effectiveInterval = common::Millis(intervalSeconds * 1000);
	g.metrics = std::move(metrics);
	return g;
}

common::ServiceConfig service(const std::string &name, std::vector<common::GroupConfig> groups,
    common::Pairs labels = {})
{
	common::ServiceConfig s;
	s.key = name;
	s.name = name;
	s.labels = std::move(labels);
	s.effectiveInterval = common::Millis(5000);
	s.groups = std::move(groups);
	return s;
}

common::Config config(std::vector<common::ServiceConfig> services)
{
	common::Config c;
	c.path = "test.yml";
	c.services = std::move(services);
	return c;
}

// A config as the operator writes it (SPEC §2), through the real loader.
common::Config load(const std::string &yaml)
{
	auto c = common::loadConfigString(yaml, "test.yml");
	std::string errors;
	if (!c)
		for (const auto &e : c.error())
			errors += e.str() + "\n";
	CHECK_TEXT(c.has_value(), errors.c_str());
	return c ? *c : common::Config();
}

// web: group "status" with a counter and a gauge; db: group "stats" with
// its own counter and gauge.  Every interval is 5s.
common::Config twoServices(const std::string &webExtra = "")
{
	return load(R"(
exporter:
  interval: 5s
services:
  web:
    metric_groups:
      status:
        source_type: static
)" + webExtra + R"(
        metrics:
          web_requests_total: { type: counter, description: Requests served., value: 1 }
          web_active: { type: gauge, description: Open connections., value: 1 }
  db:
    metric_groups:
      stats:
        source_type: static
        metrics:
          db_queries_total: { type: counter, description: Queries., value: 1 }
          db_connections: { type: gauge, value: 1 }
)");
}

common::Sample sample(double v, std::vector<common::Label> labels = {}, std::string suffix = "")
{
	common::Sample s;
	s.value = v;
	s.labels = std::move(labels);
	s.suffix = std::move(suffix);
	return s;
}

common::Family family(const std::string &name, MetricType type, std::vector<common::Sample> samples)
{
	common::Family f;
	f.name = name;
	f.type = type;
	f.samples = std::move(samples);
	return f;
}

common::GroupResult result(const std::string &group, std::vector<common::Family> families,
    bool ok = true)
{
	common::GroupResult r;
	r.group = group;
	r.families = std::move(families);
	r.ok = ok;
	r.duration = 0.25;
	if (!ok)
		r.error = "source failed";
	return r;
}

// The value text of the line starting with `series` followed by a space,
// or "absent".
std::string valueOf(const std::string &text, const std::string &series)
{
	std::string needle = series + " ";
	size_t pos = 0;
	while ((pos = text.find(needle, pos)) != std::string::npos) {
		if (pos == 0 || text[pos - 1] == '\n') {
			size_t start = pos + needle.size();
			return text.substr(start, text.find('\n', start) - start);
		}
		pos++;
	}
	return "absent";
}

size_t count(const std::string &text, const std::string &what)
{
	size_t n = 0;
	for (size_t pos = 0; (pos = text.find(what, pos)) != std::string::npos; pos += what.size())
		n++;
	return n;
}

std::string render(MetricStore &store)
{
	return *store.exposition();
}

void applyOk(MetricStore &store, const std::string &svc, const common::GroupResult &r, double now)
{
	auto applied = store.apply(svc, r, now);
	CHECK_TEXT(applied.has_value(), applied ? "" : applied.error().message.c_str());
}

// Feed the counter one raw value per cycle; return the exposed values.
std::string counterAfter(MetricStore &store, double raw, double now)
{
	applyOk(store, "web", result("status", {family("web_requests_total", MetricType::Counter,
	    {sample(raw)})}), now);
	return valueOf(render(store), "web_requests_total");
}

} // namespace

TEST_GROUP(Counters) {};

TEST(Counters, ADropInTheSourceIsAResetAndTheNewValueIsAdded)
{
	MetricStore store(twoServices());
	STRCMP_EQUAL("10", counterAfter(store, 10, 100).c_str());
	STRCMP_EQUAL("15", counterAfter(store, 15, 105).c_str());
	STRCMP_EQUAL("18", counterAfter(store, 3, 110).c_str());
	STRCMP_EQUAL("23", counterAfter(store, 8, 115).c_str());
}

TEST(Counters, StateSurvivesAWorkerRestart)
{
	MetricStore store(twoServices());
	store.setWorkerState("web", WorkerState::Running, 100, "", 99);
	STRCMP_EQUAL("100", counterAfter(store, 100, 100).c_str());
	store.setWorkerState("web", WorkerState::Restarting, 100, "worker exited", 101);
	store.countRestart("web");
	store.setWorkerState("web", WorkerState::Starting, -1, "", 102);
	store.setWorkerState("web", WorkerState::Running, 200, "", 103);
	// The new worker sees the source where the old one left it...
	STRCMP_EQUAL("104", counterAfter(store, 104, 104).c_str());
	// ... and a source restart after that is still a reset.
	STRCMP_EQUAL("106", counterAfter(store, 2, 109).c_str());
	std::string text = render(store);
	STRCMP_EQUAL("1", valueOf(text, "pme_worker_restarts_total{service=\"web\"}").c_str());
}

TEST(Counters, NaNFromTheSourceIsIgnored)
{
	MetricStore store(twoServices());
	STRCMP_EQUAL("10", counterAfter(store, 10, 100).c_str());
	STRCMP_EQUAL("10", counterAfter(store, std::nan(""), 105).c_str());
	STRCMP_EQUAL("12", counterAfter(store, 12, 110).c_str());
}

TEST(Counters, EachSeriesHasItsOwnState)
{
	MetricStore store(twoServices());
	auto feed = [&](double a, double b, double now) {
		applyOk(store, "web", result("status", {family("web_requests_total",
		    MetricType::Counter, {sample(a, {{"code", "200"}}), sample(b, {{"code", "500"}})})}),
		    now);
	};
	feed(50, 5, 100);
	feed(60, 1, 105); // only the 500 series restarted
	std::string text = render(store);
	STRCMP_EQUAL("60", valueOf(text, "web_requests_total{code=\"200\"}").c_str());
	STRCMP_EQUAL("6", valueOf(text, "web_requests_total{code=\"500\"}").c_str());
}

TEST(Counters, StateIsForgottenSeriesBySeries)
{
	MetricStore store(twoServices());
	auto feed = [&](std::vector<common::Sample> samples, double now) {
		applyOk(store, "web", result("status", {family("web_requests_total",
		    MetricType::Counter, std::move(samples))}), now);
	};
	feed({sample(10, {{"code", "200"}}), sample(5, {{"code", "500"}})}, 100);
	// 500 is not sent any more; 200 is, until long after.
	for (double now = 110; now < 3700; now += 10)
		feed({sample(12, {{"code", "200"}})}, now);
	store.expire(3702);
	// 200 goes on from its state; 500's state was forgotten after an
	// hour, and its 2 is counted anew (kept, it would have been 5 + 2).
	feed({sample(13, {{"code", "200"}}), sample(2, {{"code", "500"}})}, 3705);
	std::string text = render(store);
	STRCMP_EQUAL("13", valueOf(text, "web_requests_total{code=\"200\"}").c_str());
	STRCMP_EQUAL("2", valueOf(text, "web_requests_total{code=\"500\"}").c_str());
}

TEST_GROUP(Apply) {};

TEST(Apply, GaugesReplaceTheirPreviousSamples)
{
	MetricStore store(twoServices());
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(1, {{"vhost", "a"}}), sample(2, {{"vhost", "b"}})})}), 100);
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(3, {{"vhost", "a"}})})}), 105);
	std::string text = render(store);
	STRCMP_EQUAL("3", valueOf(text, "web_active{vhost=\"a\"}").c_str());
	STRCMP_EQUAL("absent", valueOf(text, "web_active{vhost=\"b\"}").c_str());
}

TEST(Apply, AFamilyAbsentFromAResultKeepsItsSamples)
{
	MetricStore store(twoServices());
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(7)})}), 100);
	applyOk(store, "web", result("status", {family("web_requests_total", MetricType::Counter,
	    {sample(1)})}), 105);
	STRCMP_EQUAL("7", valueOf(render(store), "web_active").c_str());
}

TEST(Apply, AnotherServicesFamilyIsRejectedAndNothingIsApplied)
{
	MetricStore store(twoServices());
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(1)})}), 100);
	std::string before = render(store);
	auto r = store.apply("web", result("status", {
	    family("web_active", MetricType::Gauge, {sample(99)}),
	    family("db_connections", MetricType::Gauge, {sample(666)})}, false), 105);
	CHECK_FALSE(r.has_value());
	CHECK(r.error().message.find("db_connections") != std::string::npos);
	std::string after = render(store);
	STRCMP_EQUAL("1", valueOf(after, "web_active").c_str());
	STRCMP_EQUAL("absent", valueOf(after, "db_connections").c_str());
	// Not even the status of the group moved.
	STRCMP_EQUAL("1", valueOf(after, "pme_source_up{service=\"web\",group=\"status\"}").c_str());
	STRCMP_EQUAL("0",
	    valueOf(after, "pme_source_errors_total{service=\"web\",group=\"status\"}").c_str());
}

TEST(Apply, UndeclaredFamilyIsRejected)
{
	MetricStore store(twoServices());
	auto r = store.apply("web", result("status", {
	    family("web_active", MetricType::Gauge, {sample(5)}),
	    family("made_up", MetricType::Gauge, {sample(1)})}), 100);
	CHECK_FALSE(r.has_value());
	std::string text = render(store);
	STRCMP_EQUAL("absent", valueOf(text, "web_active").c_str());
	STRCMP_EQUAL("absent", valueOf(text, "made_up").c_str());
}

TEST(Apply, TypeMismatchIsRejected)
{
	MetricStore store(twoServices());
	auto r = store.apply("web", result("status", {family("web_active", MetricType::Counter,
	    {sample(5)})}), 100);
	CHECK_FALSE(r.has_value());
	STRCMP_EQUAL("absent", valueOf(render(store), "web_active").c_str());
}

TEST(Apply, UnknownServiceOrGroupIsRejected)
{
	MetricStore store(twoServices());
	CHECK_FALSE(store.apply("nope", result("status", {}), 100).has_value());
	CHECK_FALSE(store.apply("web", result("stats", {}), 100).has_value());
}

TEST(Apply, SuffixesAndLabelsThatWouldBreakTheOutputAreRejected)
{
	MetricStore store(twoServices());
	auto bad = [&](common::Sample s) {
		return !store.apply("web", result("status", {family("web_active", MetricType::Gauge,
		    {s})}), 100).has_value();
	};
	CHECK_TRUE(bad(sample(1, {}, "_bucket")));
	CHECK_TRUE(bad(sample(1, {}, "_total")));
	CHECK_TRUE(bad(sample(1, {{"bad-name", "x"}})));
	CHECK_TRUE(bad(sample(1, {{"__name__", "x"}})));
	CHECK_TRUE(bad(sample(1, {{"a", "x"}, {"a", "y"}})));
	CHECK_TRUE(bad(sample(1, {{"a", "\xff"}})));
	STRCMP_EQUAL("absent", valueOf(render(store), "web_active").c_str());
}

TEST(Apply, AMetricErrorKeepsTheOldSamplesAndCountsAnError)
{
	MetricStore store(twoServices());
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(4)})}), 100);
	common::GroupResult r = result("status", {});
	r.metricErrors.emplace_back("web_active", "no match");
	applyOk(store, "web", r, 105);
	std::string text = render(store);
	STRCMP_EQUAL("4", valueOf(text, "web_active").c_str());
	STRCMP_EQUAL("1",
	    valueOf(text, "pme_source_errors_total{service=\"web\",group=\"status\"}").c_str());
}

TEST(Apply, DuplicateSeriesInOneResultKeepsTheFirst)
{
	MetricStore store(twoServices());
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(1, {{"a", "x"}, {"b", "y"}}), sample(2, {{"b", "y"}, {"a", "x"}})})}), 100);
	std::string text = render(store);
	STRCMP_EQUAL("1", valueOf(text, "web_active{a=\"x\",b=\"y\"}").c_str());
	UNSIGNED_LONGS_EQUAL(1, count(text, "\nweb_active{"));
	STRCMP_EQUAL("1", valueOf(text, "pme_series_dropped_total").c_str());
}

TEST(Apply, GroupStatusDurationSkipsAndExitStatus)
{
	MetricStore store(twoServices());
	common::GroupResult r = result("status", {}, false);
	r.duration = 1.5;
	r.skipped = 2;
	r.exitStatus = 3;
	applyOk(store, "web", r, 100);
	std::string text = render(store);
	std::string labels = "{service=\"web\",group=\"status\"}";
	STRCMP_EQUAL("0", valueOf(text, "pme_source_up" + labels).c_str());
	STRCMP_EQUAL("1.5", valueOf(text, "pme_source_duration_seconds" + labels).c_str());
	STRCMP_EQUAL("1", valueOf(text, "pme_source_errors_total" + labels).c_str());
	STRCMP_EQUAL("2", valueOf(text, "pme_source_skipped_total" + labels).c_str());
	STRCMP_EQUAL("3", valueOf(text, "pme_source_exit_status" + labels).c_str());
	STRCMP_EQUAL("0", valueOf(text, "pme_source_last_success_timestamp_seconds" + labels).c_str());
	// The db group never reported an exit status: no line for it.
	STRCMP_EQUAL("absent",
	    valueOf(text, "pme_source_exit_status{service=\"db\",group=\"stats\"}").c_str());

	applyOk(store, "web", result("status", {}), 1700000000.5);
	text = render(store);
	STRCMP_EQUAL("1", valueOf(text, "pme_source_up" + labels).c_str());
	STRCMP_EQUAL("1700000000.5",
	    valueOf(text, "pme_source_last_success_timestamp_seconds" + labels).c_str());
}

TEST(Apply, OutputCutAtMaxOutputIsCountedForSourcesWithOutput)
{
	MetricStore store(load(R"(
services:
  web:
    metric_groups:
      log:
        source_type: file
        source: /var/log/web.log
        metrics:
          web_lines: { type: gauge, filter: '(\d+)' }
      fixed:
        source_type: static
        metrics:
          web_fixed: { type: gauge, value: 1 }
)"));
	common::GroupResult r = result("log", {family("web_lines", MetricType::Gauge, {sample(7)})},
	    false);
	r.truncated = true;
	r.error = "/var/log/web.log truncated at 1048576 bytes (max_output)";
	applyOk(store, "web", r, 100);
	applyOk(store, "web", r, 105);
	applyOk(store, "web", result("log", {}), 110);
	std::string text = render(store);
	STRCMP_EQUAL("2",
	    valueOf(text, "pme_source_truncated_total{service=\"web\",group=\"log\"}").c_str());
	// A static group has no output to cut: no line for it.
	STRCMP_EQUAL("absent",
	    valueOf(text, "pme_source_truncated_total{service=\"web\",group=\"fixed\"}").c_str());
	CHECK(text.find("# TYPE pme_source_truncated_total counter\n") != std::string::npos);
	bool healthy;
	std::string health = store.healthJson(&healthy, 110);
	CHECK_TEXT(health.find("\"truncated\":2") != std::string::npos, health.c_str());
}

TEST(Apply, HttpStatusResponseTimeAndAge)
{
	MetricStore store(twoServices());
	std::string labels = "{service=\"web\",group=\"status\"}";
	std::string text = render(store);
	// Nothing collected yet: no HTTP status, no age.
	STRCMP_EQUAL("absent", valueOf(text, "pme_http_status_code" + labels).c_str());
	STRCMP_EQUAL("absent", valueOf(text, "pme_source_age_seconds" + labels).c_str());

	common::GroupResult r = result("status", {}, false);
	r.httpStatus = 503;
	r.responseSeconds = 0.25;
	applyOk(store, "web", r, 100);
	text = render(store);
	STRCMP_EQUAL("503", valueOf(text, "pme_http_status_code" + labels).c_str());
	STRCMP_EQUAL("0.25", valueOf(text, "pme_http_response_seconds" + labels).c_str());
	STRCMP_EQUAL("absent", valueOf(text, "pme_source_age_seconds" + labels).c_str());

	// A body reused from the cache made no request: the last time stays.
	r = result("status", {});
	r.httpStatus = 200;
	r.responseSeconds = -1;
	timespec ts{};
	::clock_gettime(CLOCK_REALTIME, &ts);
	double now = static_cast<double>(ts.tv_sec) - 30;
	applyOk(store, "web", r, now);
	text = render(store);
	STRCMP_EQUAL("200", valueOf(text, "pme_http_status_code" + labels).c_str());
	STRCMP_EQUAL("0.25", valueOf(text, "pme_http_response_seconds" + labels).c_str());
	double age = std::stod(valueOf(text, "pme_source_age_seconds" + labels));
	CHECK(age >= 30 && age < 90);
	STRCMP_EQUAL("absent",
	    valueOf(text, "pme_http_status_code{service=\"db\",group=\"stats\"}").c_str());
}

TEST(Apply, ConstantLabelsOfTheServiceFollowTheSamplesLabels)
{
	MetricStore store(load(R"(
services:
  web:
    labels: { role: front, dc: x }
    metric_groups:
      status:
        source_type: static
        metrics:
          web_active: { type: gauge, value: 1 }
)"));
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(3, {{"vhost", "a"}}), sample(4)})}), 100);
	std::string text = render(store);
	STRCMP_EQUAL("3", valueOf(text, "web_active{vhost=\"a\",role=\"front\",dc=\"x\"}").c_str());
	STRCMP_EQUAL("4", valueOf(text, "web_active{role=\"front\",dc=\"x\"}").c_str());
}

TEST_GROUP(Lifecycle) {};

TEST(Lifecycle, SamplesAreDroppedOnceStale)
{
	MetricStore store(twoServices("        stale_after: 15s\n"));
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(8)})}), 100);
	store.expire(115);
	std::string text = render(store);
	STRCMP_EQUAL("8", valueOf(text, "web_active").c_str());
	store.expire(115.5);
	text = render(store);
	STRCMP_EQUAL("absent", valueOf(text, "web_active").c_str());
	UNSIGNED_LONGS_EQUAL(0, count(text, "# TYPE web_active"));
	// A group that stopped reporting is not up any more.
	STRCMP_EQUAL("0", valueOf(text, "pme_source_up{service=\"web\",group=\"status\"}").c_str());
}

TEST(Lifecycle, StaleAfterDefaultsToThreeIntervals)
{
	MetricStore store(twoServices()); // 5s groups, no stale_after
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(8)})}), 100);
	store.expire(114);
	STRCMP_EQUAL("8", valueOf(render(store), "web_active").c_str());
	store.expire(116);
	STRCMP_EQUAL("absent", valueOf(render(store), "web_active").c_str());
}

TEST(Lifecycle, AWorkerGoingDownMarksItsGroupsDownButKeepsTheData)
{
	MetricStore store(twoServices());
	store.setWorkerState("web", WorkerState::Running, 10, "", 99);
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(8)})}), 100);
	std::string text = render(store);
	STRCMP_EQUAL("1", valueOf(text, "pme_source_up{service=\"web\",group=\"status\"}").c_str());
	STRCMP_EQUAL("1", valueOf(text, "pme_worker_up{service=\"web\"}").c_str());
	store.setWorkerState("web", WorkerState::Restarting, 10, "worker killed by signal 9", 101);
	text = render(store);
	STRCMP_EQUAL("0", valueOf(text, "pme_source_up{service=\"web\",group=\"status\"}").c_str());
	STRCMP_EQUAL("0", valueOf(text, "pme_worker_up{service=\"web\"}").c_str());
	STRCMP_EQUAL("8", valueOf(text, "web_active").c_str());
}

TEST(Lifecycle, AReloadKeepsWhatTheNewConfigurationStillHas)
{
	MetricStore store(twoServices());
	store.setWorkerState("web", WorkerState::Running, 10, "", 99);
	store.countRestart("db");
	STRCMP_EQUAL("100", counterAfter(store, 100, 100).c_str());
	STRCMP_EQUAL("110", counterAfter(store, 10, 105).c_str());   // a reset
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(8)})}), 105);
	applyOk(store, "db", result("stats", {family("db_queries_total", MetricType::Counter,
	    {sample(50)})}), 105);
	store.countScrape(Format::Text);

	// web is the same; db loses its group; cache is new.
	store.reconfigure(load(R"(
exporter:
  interval: 5s
services:
  web:
    metric_groups:
      status:
        source_type: static
        metrics:
          web_requests_total: { type: counter, description: Requests served., value: 1 }
          web_active: { type: gauge, description: Open connections., value: 1 }
  db:
    metric_groups:
      other:
        source_type: static
        metrics:
          db_other: { type: gauge, value: 1 }
  cache:
    metric_groups:
      g:
        source_type: static
        metrics:
          cache_hits: { type: gauge, value: 1 }
)"));
	store.configReloaded(true, 200);
	std::string text = render(store);
	// Series, status and counts go on; the counter keeps counting from
	// where it was, with its last raw value.
	STRCMP_EQUAL("110", valueOf(text, "web_requests_total").c_str());
	STRCMP_EQUAL("8", valueOf(text, "web_active").c_str());
	STRCMP_EQUAL("1", valueOf(text, "pme_worker_up{service=\"web\"}").c_str());
	STRCMP_EQUAL("1", valueOf(text, "pme_source_up{service=\"web\",group=\"status\"}").c_str());
	STRCMP_EQUAL("1", valueOf(text, "pme_worker_restarts_total{service=\"db\"}").c_str());
	STRCMP_EQUAL("1", valueOf(text, "pme_scrapes_total{format=\"text\"}").c_str());
	STRCMP_EQUAL("1", valueOf(text, "pme_config_last_reload_successful").c_str());
	STRCMP_EQUAL("200", valueOf(text,
	    "pme_config_last_reload_success_timestamp_seconds").c_str());
	STRCMP_EQUAL("115", counterAfter(store, 15, 205).c_str());
	// What the configuration no longer has is gone; what is new is there.
	STRCMP_EQUAL("absent", valueOf(text, "db_queries_total").c_str());
	STRCMP_EQUAL("absent", valueOf(text,
	    "pme_source_up{service=\"db\",group=\"stats\"}").c_str());
	STRCMP_EQUAL("0", valueOf(text, "pme_source_up{service=\"cache\",group=\"g\"}").c_str());
	auto refused = store.apply("db", result("stats", {}), 210);
	CHECK_FALSE(refused.has_value());
	applyOk(store, "cache", result("g", {family("cache_hits", MetricType::Gauge,
	    {sample(3)})}), 210);
	STRCMP_EQUAL("3", valueOf(render(store), "cache_hits").c_str());

	// A failed reload changes only the flag.
	store.configReloaded(false, 300);
	text = render(store);
	STRCMP_EQUAL("0", valueOf(text, "pme_config_last_reload_successful").c_str());
	STRCMP_EQUAL("200", valueOf(text,
	    "pme_config_last_reload_success_timestamp_seconds").c_str());
}

TEST(Lifecycle, AReloadThatChangesConstantLabelsDropsTheRenderedSeries)
{
	MetricStore store(twoServices());
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(8)})}), 100);
	common::Config next = twoServices();
	next.services[0].labels = {{"team", "edge"}};
	store.reconfigure(next);
	STRCMP_EQUAL("absent", valueOf(render(store), "web_active").c_str());
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(9)})}), 101);
	STRCMP_EQUAL("9", valueOf(render(store), "web_active{team=\"edge\"}").c_str());
}

TEST(Lifecycle, AllGroupsReportedIgnoresRefusedServices)
{
	MetricStore store(twoServices());
	CHECK_FALSE(store.allGroupsReported());
	applyOk(store, "web", result("status", {}, false), 100);
	CHECK_FALSE(store.allGroupsReported());
	store.setWorkerState("db", WorkerState::Refused, -1, "needs CAP_SETUID", 100);
	CHECK_TRUE(store.allGroupsReported());
}

TEST_GROUP(Merging) {};

namespace {

common::Config sharedFamily(const std::string &webLabels = "{}", const std::string &dbLabels = "{}")
{
	return load(R"(
services:
  web:
    labels: )" + webLabels + R"(
    metric_groups:
      a:
        source_type: static
        metrics:
          up_seconds: { type: gauge, description: Uptime., value: 1 }
      b:
        source_type: static
        metrics:
          web_only: { type: gauge, value: 1 }
  db:
    labels: )" + dbLabels + R"(
    metric_groups:
      c:
        source_type: static
        metrics:
          up_seconds: { type: gauge, description: Other help., value: 1 }
)");
}

} // namespace

TEST(Merging, OneFamilyFromTwoServicesIsOneContiguousBlock)
{
	MetricStore store(sharedFamily("{ svc: web }", "{ svc: db }"));
	// db reports first, and web's other family sits between in config order.
	applyOk(store, "db", result("c", {family("up_seconds", MetricType::Gauge, {sample(2)})}), 100);
	applyOk(store, "web", result("b", {family("web_only", MetricType::Gauge, {sample(9)})}), 100);
	applyOk(store, "web", result("a", {family("up_seconds", MetricType::Gauge, {sample(1)})}), 100);
	std::string text = render(store);
	UNSIGNED_LONGS_EQUAL(1, count(text, "# HELP up_seconds "));
	UNSIGNED_LONGS_EQUAL(1, count(text, "# TYPE up_seconds gauge"));
	std::string block = "# HELP up_seconds Uptime.\n# TYPE up_seconds gauge\n"
	    "up_seconds{svc=\"web\"} 1\nup_seconds{svc=\"db\"} 2\n";
	CHECK_TEXT(text.find(block) != std::string::npos, text.c_str());
	STRCMP_EQUAL("0", valueOf(text, "pme_series_dropped_total").c_str());
}

TEST(Merging, ASeriesExportedByTwoServicesIsDroppedOnceAndCounted)
{
	MetricStore store(sharedFamily());
	applyOk(store, "web", result("a", {family("up_seconds", MetricType::Gauge,
	    {sample(1, {{"k", "same"}}), sample(5, {{"k", "web"}})})}), 100);
	applyOk(store, "db", result("c", {family("up_seconds", MetricType::Gauge,
	    {sample(2, {{"k", "same"}}), sample(6, {{"k", "db"}})})}), 100);
	std::string text = render(store);
	UNSIGNED_LONGS_EQUAL(1, count(text, "up_seconds{k=\"same\"}"));
	STRCMP_EQUAL("1", valueOf(text, "up_seconds{k=\"same\"}").c_str());
	STRCMP_EQUAL("5", valueOf(text, "up_seconds{k=\"web\"}").c_str());
	STRCMP_EQUAL("6", valueOf(text, "up_seconds{k=\"db\"}").c_str());
	STRCMP_EQUAL("1", valueOf(text, "pme_series_dropped_total").c_str());
}

TEST(Merging, ATypeConflictBetweenServicesNeverReachesTheOutput)
{
	// Built by hand: the config check may refuse this; the store must
	// keep its output valid anyway.
	MetricStore store(config({
	    service("web", {group("a", {metric("x_value", MetricType::Gauge)})}),
	    service("db", {group("c", {metric("x_value", MetricType::Untyped)})}),
	}));
	applyOk(store, "web", result("a", {family("x_value", MetricType::Gauge,
	    {sample(1, {{"s", "web"}})})}), 100);
	applyOk(store, "db", result("c", {family("x_value", MetricType::Untyped,
	    {sample(2, {{"s", "db"}})})}), 100);
	std::string text = render(store);
	UNSIGNED_LONGS_EQUAL(1, count(text, "# TYPE x_value "));
	STRCMP_EQUAL("1", valueOf(text, "x_value{s=\"web\"}").c_str());
	STRCMP_EQUAL("absent", valueOf(text, "x_value{s=\"db\"}").c_str());
}

TEST_GROUP(Rendering) {};

TEST(Rendering, TheSameBodyIsHandedOutUntilSomethingChanges)
{
	MetricStore store(twoServices());
	auto first = store.exposition();
	auto again = store.exposition();
	CHECK(first.get() == again.get());
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(1)})}), 100);
	auto changed = store.exposition();
	CHECK(changed.get() != first.get());
	CHECK(store.exposition().get() == changed.get());
	store.countScrape(Format::Text);
	auto scraped = store.exposition();
	CHECK(scraped.get() != changed.get());
	STRCMP_EQUAL("1", valueOf(*scraped, "pme_scrapes_total{format=\"text\"}").c_str());
	// The old body is intact for whoever still sends it.
	STRCMP_EQUAL("absent", valueOf(*first, "web_active").c_str());
	STRCMP_EQUAL("1", valueOf(*changed, "web_active").c_str());
}

TEST(Rendering, ScrapesShareTheCollectedPartUntilAFamilyChanges)
{
	MetricStore store(twoServices());
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(1)})}), 100);
	auto first = store.expositionParts();
	store.countScrape(Format::Text);
	auto second = store.expositionParts();
	// A scrape renders only the self-metrics; the families are not copied.
	CHECK(first.data.get() == second.data.get());
	CHECK(first.self.get() != second.self.get());
	STRCMP_EQUAL("1", valueOf(*second.self, "pme_scrapes_total{format=\"text\"}").c_str());
	STRCMP_EQUAL("1", valueOf(second.data->str(), "web_active").c_str());
	// The joined body starts with the same families (the process metrics
	// at the end of the self part may have moved since).
	CHECK(store.exposition()->rfind(second.data->str(), 0) == 0);
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(2)})}), 101);
	auto third = store.expositionParts();
	CHECK(third.data.get() != second.data.get());
	STRCMP_EQUAL("2", valueOf(third.data->str(), "web_active").c_str());
	STRCMP_EQUAL("1", valueOf(second.data->str(), "web_active").c_str());
}

TEST(Rendering, AResultThatChangesNothingRendersNothing)
{
	MetricStore store(twoServices());
	auto web = [](double requests, double active) {
		return result("status", {
		    family("web_requests_total", MetricType::Counter,
		        {sample(requests, {{"code", "200"}}), sample(2, {{"code", "500"}})}),
		    family("web_active", MetricType::Gauge, {sample(active)})});
	};
	applyOk(store, "web", web(10, 3), 100);
	applyOk(store, "db", result("stats", {family("db_connections", MetricType::Gauge,
	    {sample(4)})}), 100);
	auto first = store.expositionParts();
	// The same series again: the body, and every piece of it, stay.
	applyOk(store, "web", web(10, 3), 102);
	auto same = store.expositionParts();
	CHECK(same.data.get() == first.data.get());
	// One family changes: a new list, in which only its pieces are new.
	applyOk(store, "web", web(10, 4), 104);
	auto changed = store.expositionParts();
	CHECK(changed.data.get() != first.data.get());
	const auto &a = first.data->pieces, &b = changed.data->pieces;
	LONGS_EQUAL(a.size(), b.size());
	size_t differ = 0;
	for (size_t i = 0; i < a.size(); i++)
		differ += a[i].get() != b[i].get();
	LONGS_EQUAL(1, differ); // web_active's samples; its header stays
	STRCMP_EQUAL("4", valueOf(changed.data->str(), "web_active").c_str());
	STRCMP_EQUAL("10", valueOf(changed.data->str(), "web_requests_total{code=\"200\"}").c_str());
	// A counter that moved changes its line and nothing else.
	applyOk(store, "web", web(11, 4), 106);
	auto moved = store.expositionParts();
	std::string text = moved.data->str();
	STRCMP_EQUAL("11", valueOf(text, "web_requests_total{code=\"200\"}").c_str());
	STRCMP_EQUAL("2", valueOf(text, "web_requests_total{code=\"500\"}").c_str());
	// The body in pieces is the joined body's start, byte for byte.
	CHECK(render(store).rfind(text, 0) == 0);
	UNSIGNED_LONGS_EQUAL(text.size(), moved.data->size);
}

TEST(Rendering, SeriesSentInAnotherOrderOrFewerAreRenderedAsSent)
{
	MetricStore store(twoServices());
	auto active = [](std::vector<std::string> hosts) {
		std::vector<common::Sample> samples;
		for (size_t i = 0; i < hosts.size(); i++)
			samples.push_back(sample(static_cast<double>(i), {{"host", hosts[i]}}));
		return result("status", {family("web_active", MetricType::Gauge, samples)});
	};
	auto lines = [&] {
		std::string t = store.expositionParts().data->str();
		return t.substr(t.find("web_active{"));
	};
	applyOk(store, "web", active({"a", "b", "c", "d"}), 100);
	STRCMP_EQUAL("web_active{host=\"a\"} 0\nweb_active{host=\"b\"} 1\n"
	    "web_active{host=\"c\"} 2\nweb_active{host=\"d\"} 3\n", lines().c_str());
	applyOk(store, "web", active({"a", "b", "c"}), 101);
	STRCMP_EQUAL("web_active{host=\"a\"} 0\nweb_active{host=\"b\"} 1\n"
	    "web_active{host=\"c\"} 2\n", lines().c_str());
	applyOk(store, "web", active({"a", "c", "b", "c", "e"}), 102);
	STRCMP_EQUAL("web_active{host=\"a\"} 0\nweb_active{host=\"c\"} 1\n"
	    "web_active{host=\"b\"} 2\nweb_active{host=\"e\"} 4\n", lines().c_str());
	STRCMP_EQUAL("1", valueOf(*store.expositionParts().self, "pme_series_dropped_total").c_str());
}

TEST(Rendering, DuplicatesAnywhereInALaterGroupAreLeftOut)
{
	MetricStore store(sharedFamily());
	auto up = [](std::vector<std::string> keys, double base) {
		std::vector<common::Sample> samples;
		for (size_t i = 0; i < keys.size(); i++)
			samples.push_back(sample(base + static_cast<double>(i), {{"k", keys[i]}}));
		return family("up_seconds", MetricType::Gauge, samples);
	};
	applyOk(store, "web", result("a", {up({"x", "y", "z"}, 10)}), 100);
	// db repeats web's series at its start, in its middle and at its end.
	applyOk(store, "db", result("c", {up({"x", "p", "y", "q", "z"}, 20)}), 100);
	std::string text = render(store);
	std::string block = "up_seconds{k=\"x\"} 10\nup_seconds{k=\"y\"} 11\n"
	    "up_seconds{k=\"z\"} 12\nup_seconds{k=\"p\"} 21\nup_seconds{k=\"q\"} 23\n";
	CHECK_TEXT(text.find(block) != std::string::npos, text.c_str());
	STRCMP_EQUAL("3", valueOf(text, "pme_series_dropped_total").c_str());
	applyOk(store, "db", result("c", {up({"p", "q", "z"}, 30)}), 101);
	text = render(store);
	block = "up_seconds{k=\"x\"} 10\nup_seconds{k=\"y\"} 11\n"
	    "up_seconds{k=\"z\"} 12\nup_seconds{k=\"p\"} 30\nup_seconds{k=\"q\"} 31\n"
	    "# HELP";
	CHECK_TEXT(text.find(block) != std::string::npos, text.c_str());
	STRCMP_EQUAL("4", valueOf(text, "pme_series_dropped_total").c_str());
}

TEST(Rendering, CachesNoClientUsesAreDropped)
{
	MetricStore store(twoServices());
	// The same result all along: nothing changes but the time.
	auto active = [&](double now) {
		applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
		    {sample(1)})}), now);
		store.expire(now);
	};
	active(100);
	auto om = store.expositionParts(Format::OpenMetrics);
	auto gz = store.expositionParts(Format::Text, true);
	active(400);
	CHECK(store.expositionParts(Format::OpenMetrics).data.get() == om.data.get());
	CHECK(store.expositionParts(Format::Text, true).data.get() == gz.data.get());
	// Ten minutes on without a request for either: both are made anew,
	// the same bytes.
	active(1001);
	auto om2 = store.expositionParts(Format::OpenMetrics);
	auto gz2 = store.expositionParts(Format::Text, true);
	CHECK(om2.data.get() != om.data.get());
	CHECK(gz2.data.get() != gz.data.get());
	CHECK(om2.data->str() == om.data->str());
	CHECK(gz2.data->str() == gz.data->str());
	// What a response still sends is intact.
	STRCMP_EQUAL("1", valueOf(om.data->str(), "web_active").c_str());
}

TEST(Rendering, SelfMetricsAndHelpFromTheConfig)
{
	MetricStore store(twoServices());
	store.countFrames("web", 3);
	store.countProtocolError("db");
	applyOk(store, "web", result("status", {family("web_requests_total", MetricType::Counter,
	    {sample(1)})}), 100);
	std::string text = render(store);
	CHECK(text.find("# HELP web_requests_total Requests served.\n"
	    "# TYPE web_requests_total counter\nweb_requests_total 1\n") != std::string::npos);
	STRCMP_EQUAL("3", valueOf(text, "pme_frames_received_total{service=\"web\"}").c_str());
	STRCMP_EQUAL("1", valueOf(text, "pme_protocol_errors_total{service=\"db\"}").c_str());
	STRCMP_EQUAL("1", valueOf(text, "pme_build_info{version=\"" PME_VERSION "\"}").c_str());
	for (const char *name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
	    "process_virtual_memory_bytes", "process_open_fds", "process_start_time_seconds"}) {
		CHECK_TEXT(valueOf(text, name) != "absent", name);
		CHECK_TEXT(count(text, std::string("# TYPE ") + name + " ") == 1, name);
	}
	CHECK(std::strtod(valueOf(text, "process_resident_memory_bytes").c_str(), nullptr) > 0);
	CHECK(std::strtod(valueOf(text, "process_open_fds").c_str(), nullptr) >= 3);
	double start = std::strtod(valueOf(text, "process_start_time_seconds").c_str(), nullptr);
	CHECK(start > 1e9 && start <= static_cast<double>(time(nullptr)) + 1);
	// A family declared but never reported is not written at all.
	UNSIGNED_LONGS_EQUAL(0, count(text, "db_connections"));
	// Every family has both HELP and TYPE.
	UNSIGNED_LONGS_EQUAL(count(text, "# HELP "), count(text, "# TYPE "));
}

namespace {

// promtool check metrics on the text; -1 when promtool is not installed.
int promtool(const std::string &text, std::string *output)
{
	const char *path = "/usr/bin/promtool";
	if (access(path, X_OK) != 0)
		return -1;
	char file[] = "/tmp/pme-test-exposition-XXXXXX";
	int fd = mkstemp(file);
	if (fd < 0)
		return -2;
	CHECK(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
	close(fd);
	std::string cmd = std::string(path) + " check metrics < " + file + " 2>&1";
	FILE *p = popen(cmd.c_str(), "r");
	if (!p)
		return -2;
	char buf[512];
	while (fgets(buf, sizeof buf, p))
		*output += buf;
	int status = pclose(p);
	unlink(file);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
}

} // namespace

TEST(Rendering, TheOutputPassesPromtoolCheckMetrics)
{
	MetricStore store(load(R"(
services:
  web:
    labels: { role: front }
    metric_groups:
      status:
        source_type: static
        metrics:
          web_requests_total:
            type: counter
            description: "Requests \\ served\nper code."
            value: 1
          web_active: { type: gauge, description: Open connections., value: 1 }
          web_version_info: { type: info, description: Version., value: 1 }
          web_odd: { type: untyped, value: 1 }
  db:
    metric_groups:
      stats:
        source_type: static
        metrics:
          web_active: { type: gauge, description: Open connections., value: 1 }
)"));
	store.setWorkerState("web", WorkerState::Running, 1234, "", 99);
	applyOk(store, "web", result("status", {
	    family("web_requests_total", MetricType::Counter,
	        {sample(3, {{"code", "200"}}), sample(1, {{"code", "500"}})}),
	    family("web_active", MetricType::Gauge,
	        {sample(1e-9, {{"path", "C:\\x \"q\"\nz"}}), sample(NAN, {{"path", "nan"}}),
	         sample(INFINITY, {{"path", "inf"}}), sample(-0.0, {{"path", "zero"}})}),
	    family("web_version_info", MetricType::Info, {sample(1, {{"version", "1.2\xc3\xa9"}})}),
	    family("web_odd", MetricType::Untyped, {sample(1e21)})}), 100);
	applyOk(store, "db", result("stats", {family("web_active", MetricType::Gauge,
	    {sample(2, {{"path", "db"}}), sample(1, {{"path", "nan"}, {"role", "front"}})})}), 100);
	common::GroupResult failed = result("stats", {}, false);
	failed.exitStatus = 2;
	applyOk(store, "db", failed, 101);
	store.countScrape(Format::Text);
	std::string text = render(store);

	std::string output;
	int rc = promtool(text, &output);
	if (rc == -1) {
		printf("\n/usr/bin/promtool not installed: promtool check metrics skipped\n");
		return;
	}
	CHECK_TEXT(rc == 0, (output + "\n---\n" + text).c_str());
	// The duplicate (path=nan, role=front) from db was dropped.
	STRCMP_EQUAL("1", valueOf(text, "pme_series_dropped_total").c_str());
}

TEST_GROUP(Health) {};

namespace {

common::CPtr<json_t> parseHealth(MetricStore &store, bool *healthy, double now)
{
	std::string body = store.healthJson(healthy, now);
	json_error_t err;
	common::CPtr<json_t> j(json_loads(body.c_str(), 0, &err));
	CHECK_TEXT(j != nullptr, body.c_str());
	return j;
}

} // namespace

TEST(Health, DegradedUntilEveryWorkerRunsAndEveryGroupReported)
{
	MetricStore store(twoServices());
	bool healthy = true;
	auto j = parseHealth(store, &healthy, 100);
	CHECK_FALSE(healthy);
	STRCMP_EQUAL("degraded", json_string_value(json_object_get(j.get(), "status")));

	store.setWorkerState("web", WorkerState::Running, 11, "", 100);
	store.setWorkerState("db", WorkerState::Running, 12, "", 100);
	parseHealth(store, &healthy, 100);
	CHECK_FALSE(healthy); // running, but no data yet

	applyOk(store, "web", result("status", {}), 101);
	applyOk(store, "db", result("stats", {}), 101.5);
	j = parseHealth(store, &healthy, 102);
	CHECK_TRUE(healthy);
	STRCMP_EQUAL("ok", json_string_value(json_object_get(j.get(), "status")));
	json_t *web = json_object_get(json_object_get(j.get(), "services"), "web");
	STRCMP_EQUAL("running", json_string_value(json_object_get(web, "state")));
	LONGS_EQUAL(11, json_integer_value(json_object_get(web, "pid")));
	LONGS_EQUAL(0, json_integer_value(json_object_get(web, "restarts")));
	json_t *g = json_object_get(json_object_get(web, "groups"), "status");
	CHECK_TRUE(json_is_true(json_object_get(g, "up")));
	DOUBLES_EQUAL(101, json_real_value(json_object_get(g, "last_success")), 1e-9);
	LONGS_EQUAL(0, json_integer_value(json_object_get(g, "errors")));
	STRCMP_EQUAL("", json_string_value(json_object_get(g, "error")));
}

TEST(Health, AFailingGroupMakesItDegradedWithTheErrorText)
{
	MetricStore store(twoServices());
	store.setWorkerState("web", WorkerState::Running, 11, "", 100);
	store.setWorkerState("db", WorkerState::Running, 12, "", 100);
	applyOk(store, "db", result("stats", {}), 101);
	common::GroupResult r = result("status", {}, false);
	r.error = "curl: \"quoted\"\nsecond line \xff";
	applyOk(store, "web", r, 101);
	bool healthy = true;
	auto j = parseHealth(store, &healthy, 102);
	CHECK_FALSE(healthy);
	json_t *g = json_object_get(json_object_get(json_object_get(json_object_get(j.get(),
	    "services"), "web"), "groups"), "status");
	CHECK_TRUE(json_is_false(json_object_get(g, "up")));
	CHECK_TRUE(json_is_null(json_object_get(g, "last_success")));
	LONGS_EQUAL(1, json_integer_value(json_object_get(g, "errors")));
	STRCMP_EQUAL("curl: \"quoted\" second line ?", json_string_value(json_object_get(g, "error")));
}

TEST(Health, GroupsThatStoppedReportingAreNotUp)
{
	MetricStore store(twoServices());
	store.setWorkerState("web", WorkerState::Running, 11, "", 100);
	store.setWorkerState("db", WorkerState::Running, 12, "", 100);
	applyOk(store, "web", result("status", {}), 100);
	applyOk(store, "db", result("stats", {}), 100);
	bool healthy = false;
	parseHealth(store, &healthy, 110);
	CHECK_TRUE(healthy);
	parseHealth(store, &healthy, 130); // 3 intervals of 5s later
	CHECK_FALSE(healthy);
}

TEST(Health, AStoppedWorkerIsReportedWithItsReason)
{
	MetricStore store(twoServices());
	store.setWorkerState("db", WorkerState::Refused, -1, "needs CAP_SETUID", 100);
	bool healthy = true;
	auto j = parseHealth(store, &healthy, 100);
	CHECK_FALSE(healthy);
	json_t *db = json_object_get(json_object_get(j.get(), "services"), "db");
	STRCMP_EQUAL("refused", json_string_value(json_object_get(db, "state")));
	STRCMP_EQUAL("needs CAP_SETUID", json_string_value(json_object_get(db, "reason")));
	CHECK_TRUE(json_is_null(json_object_get(db, "pid")));
}

TEST_GROUP(Imports)
{
	// "node" imports an exposition; "web" declares web_active as a gauge.
	common::Config imports()
	{
		return load(R"(
services:
  web:
    metric_groups:
      status:
        metrics:
          web_active: { type: gauge, value: 1 }
  node:
    metric_groups:
      textfile:
        source_type: file
        source: /var/lib/node/textfile.prom
        content_type: prometheus
)");
	}
};

TEST(Imports, FamiliesAppearAsTheSourceHasThemWithTheirHelpAndType)
{
	MetricStore store(imports());
	common::Family load1 = family("node_load1", MetricType::Gauge, {sample(0.5)});
	load1.help = "1m load average.";
	common::Family hist = family("http_seconds", MetricType::Histogram, {
	    sample(1, {{"le", "0.1"}}, "_bucket"), sample(3, {{"le", "+Inf"}}, "_bucket"),
	    sample(0.7, {}, "_sum"), sample(3, {}, "_count")});
	applyOk(store, "node", result("textfile", {load1, hist}), 100);
	std::string text = render(store);
	CHECK(text.find("# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\n"
	    "node_load1 0.5\n") != std::string::npos);
	CHECK(text.find("# TYPE http_seconds histogram\n") != std::string::npos);
	STRCMP_EQUAL("3", valueOf(text, "http_seconds_bucket{le=\"+Inf\"}").c_str());
	STRCMP_EQUAL("0",
	    valueOf(text, "pme_source_families_rejected_total{service=\"node\","
	    "group=\"textfile\"}").c_str());

	// The next exposition no longer has node_load1: it is gone with it.
	applyOk(store, "node", result("textfile", {hist}), 105);
	text = render(store);
	CHECK(text.find("node_load1") == std::string::npos);
	CHECK(text.find("http_seconds_count 3\n") != std::string::npos);
	// A failed read keeps everything until it is stale.
	applyOk(store, "node", result("textfile", {}, false), 110);
	CHECK(render(store).find("http_seconds_count 3\n") != std::string::npos);
}

TEST(Imports, AConflictingFamilyIsRefusedAloneAndReported)
{
	MetricStore store(imports());
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(4)})}), 100);
	applyOk(store, "node", result("textfile", {
	    family("web_active", MetricType::Counter, {sample(9)}),
	    family("pme_scrapes_total", MetricType::Counter, {sample(1)}),
	    family("node_up", MetricType::Gauge, {sample(1)})}), 100);
	std::string text = render(store);
	STRCMP_EQUAL("4", valueOf(text, "web_active").c_str());
	LONGS_EQUAL(1, count(text, "# TYPE web_active "));
	STRCMP_EQUAL("1", valueOf(text, "node_up").c_str());
	STRCMP_EQUAL("2",
	    valueOf(text, "pme_source_families_rejected_total{service=\"node\","
	    "group=\"textfile\"}").c_str());
	bool healthy = false;
	std::string health = store.healthJson(&healthy, 100);
	CHECK_TEXT(health.find("\"families_rejected\":2") != std::string::npos, health.c_str());
	CHECK_TEXT(health.find("already exported as a gauge by service web") !=
	    std::string::npos || health.find("pmed's own metrics") != std::string::npos,
	    health.c_str());
}

TEST(Imports, ASameTypedFamilyJoinsTheDeclaredOneAndDuplicatesAreDropped)
{
	MetricStore store(imports());
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(4)})}), 100);
	applyOk(store, "node", result("textfile", {family("web_active", MetricType::Gauge,
	    {sample(7, {{"host", "b"}}), sample(8)})}), 100);
	std::string text = render(store);
	LONGS_EQUAL(1, count(text, "# TYPE web_active gauge"));
	STRCMP_EQUAL("4", valueOf(text, "web_active").c_str());
	STRCMP_EQUAL("7", valueOf(text, "web_active{host=\"b\"}").c_str());
	STRCMP_EQUAL("1", valueOf(text, "pme_series_dropped_total").c_str());
}

TEST(Imports, ImportedCountersKeepTheResetSemantics)
{
	MetricStore store(imports());
	auto feed = [&](double raw, double now) {
		applyOk(store, "node", result("textfile", {family("node_intr_total",
		    MetricType::Counter, {sample(raw)})}), now);
		return valueOf(render(store), "node_intr_total");
	};
	STRCMP_EQUAL("100", feed(100, 100).c_str());
	STRCMP_EQUAL("150", feed(150, 105).c_str());
	STRCMP_EQUAL("160", feed(10, 110).c_str());
}

TEST(Imports, ATypeChangeOfTheSourceIsFollowedWhenNobodyElseExportsTheName)
{
	MetricStore store(imports());
	applyOk(store, "node", result("textfile", {family("node_x", MetricType::Gauge,
	    {sample(5)})}), 100);
	applyOk(store, "node", result("textfile", {family("node_x", MetricType::Counter,
	    {sample(6)})}), 105);
	std::string text = render(store);
	CHECK(text.find("# TYPE node_x counter\nnode_x 6\n") != std::string::npos);
}

TEST(Imports, TimestampsAreWrittenAfterTheValue)
{
	MetricStore store(imports());
	common::Sample s = sample(2);
	s.timestampMs = 1700000000123LL;
	applyOk(store, "node", result("textfile", {family("node_y", MetricType::Gauge, {s})}),
	    100);
	CHECK(render(store).find("node_y 2 1700000000123\n") != std::string::npos);
}

TEST(Imports, ADeclaringGroupStillRefusesUndeclaredFamilies)
{
	MetricStore store(imports());
	CHECK_FALSE(store.apply("web", result("status", {family("node_x", MetricType::Gauge,
	    {sample(1)})}), 100).has_value());
}

TEST(Apply, ASentFamilyWithAMetricErrorReplacesItsSeries)
{
	// json: one node of three is null this cycle; its series is absent.
	MetricStore store(twoServices());
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(1, {{"n", "a"}}), sample(2, {{"n", "b"}})})}), 100);
	common::GroupResult r = result("status", {family("web_active", MetricType::Gauge,
	    {sample(3, {{"n", "a"}})})});
	r.metricErrors.emplace_back("web_active", "$['b']: is null");
	applyOk(store, "web", r, 105);
	std::string text = render(store);
	STRCMP_EQUAL("3", valueOf(text, "web_active{n=\"a\"}").c_str());
	STRCMP_EQUAL("absent", valueOf(text, "web_active{n=\"b\"}").c_str());
}

TEST(Imports, TheBodyFollowsTheConfigWhateverOrderResultsArriveIn)
{
	const char *yaml = R"(
services:
  a:
    metric_groups:
      one: { source_type: file, source: /a, content_type: prometheus }
      two: { source_type: file, source: /b, content_type: prometheus }
)";
	auto body = [&](bool oneFirst) {
		MetricStore store(load(yaml));
		auto one = result("one", {family("x_one", MetricType::Gauge, {sample(1)}),
		    family("y_one", MetricType::Gauge, {sample(2)})});
		auto two = result("two", {family("x_two", MetricType::Gauge, {sample(3)})});
		applyOk(store, "a", oneFirst ? one : two, 100);
		applyOk(store, "a", oneFirst ? two : one, 100);
		std::string text = render(store);
		return text.substr(0, text.find("# HELP pme_"));
	};
	std::string first = body(true);
	STRCMP_EQUAL(first.c_str(), body(false).c_str());
	CHECK(first.find("x_one") < first.find("y_one"));
	CHECK(first.find("y_one") < first.find("x_two"));
}

TEST_GROUP(Histograms)
{
	// web, group "status": http_seconds, a histogram read from the source;
	// job_seconds, one the worker observes; rpc_seconds, a summary.
	common::Config histograms()
	{
		common::MetricConfig observed = metric("job_seconds", MetricType::Histogram);
		observed.observe = true;
		observed.bucketBounds = {0.1, 1};
		return config({service("web", {group("status", {
		    metric("http_seconds", MetricType::Histogram), observed,
		    metric("rpc_seconds", MetricType::Summary)})})});
	}

	// One histogram series with buckets 0.1, 1 and +Inf, then _sum and _count.
	std::vector<common::Sample> series(std::vector<common::Label> labels, double le01,
	    double le1, double inf, double sum, double count)
	{
		auto withLe = [&](const char *le) {
			std::vector<common::Label> l = labels;
			l.push_back({"le", le});
			return l;
		};
		return {sample(le01, withLe("0.1"), "_bucket"), sample(le1, withLe("1"), "_bucket"),
		    sample(inf, withLe("+Inf"), "_bucket"), sample(sum, labels, "_sum"),
		    sample(count, labels, "_count")};
	}

	void feed(MetricStore &store, const std::string &name, std::vector<common::Sample> samples,
	    double now)
	{
		applyOk(store, "web", result("status", {family(name, MetricType::Histogram,
		    std::move(samples))}), now);
	}

	// "le=0.1 le=1 le=+Inf sum count" as exposed for one series; `labels`
	// are its labels but le as the output writes them ("" for none).
	std::string exposed(MetricStore &store, const std::string &name,
	    const std::string &labels = "")
	{
		std::string text = render(store);
		std::string first = labels.empty() ? "" : labels + ",";
		std::string all = labels.empty() ? "" : "{" + labels + "}";
		return valueOf(text, name + "_bucket{" + first + "le=\"0.1\"}") + " " +
		    valueOf(text, name + "_bucket{" + first + "le=\"1\"}") + " " +
		    valueOf(text, name + "_bucket{" + first + "le=\"+Inf\"}") + " " +
		    valueOf(text, name + "_sum" + all) + " " + valueOf(text, name + "_count" + all);
	}
};

TEST(Histograms, AGrowingHistogramIsExposedAsSent)
{
	MetricStore store(histograms());
	feed(store, "http_seconds", series({}, 1, 2, 3, 1.5, 3), 100);
	STRCMP_EQUAL("1 2 3 1.5 3", exposed(store, "http_seconds").c_str());
	feed(store, "http_seconds", series({}, 2, 4, 7, 4.25, 7), 105);
	STRCMP_EQUAL("2 4 7 4.25 7", exposed(store, "http_seconds").c_str());
}

TEST(Histograms, ADropOfTheCountIsAResetOfTheWholeSeries)
{
	MetricStore store(histograms());
	feed(store, "http_seconds", series({}, 1, 3, 5, 10, 5), 100);
	// The source restarted and saw 2 observations, both under 0.1: the
	// le="0.1" bucket went up, yet it is part of the reset too.
	feed(store, "http_seconds", series({}, 2, 2, 2, 0.5, 2), 105);
	STRCMP_EQUAL("3 5 7 10.5 7", exposed(store, "http_seconds").c_str());
	// After the reset the series grows from its new raw values.
	feed(store, "http_seconds", series({}, 3, 4, 4, 1.5, 4), 110);
	STRCMP_EQUAL("4 7 9 11.5 9", exposed(store, "http_seconds").c_str());
}

TEST(Histograms, OneBucketGoingDownIsEnoughForAReset)
{
	MetricStore store(histograms());
	feed(store, "http_seconds", series({}, 3, 4, 5, 5, 5), 100);
	// The count went up, but fewer observations are under 0.1 than before:
	// the source restarted and has seen 6 since.
	feed(store, "http_seconds", series({}, 1, 5, 6, 7, 6), 105);
	STRCMP_EQUAL("4 9 11 12 11", exposed(store, "http_seconds").c_str());
}

TEST(Histograms, ASumGoingDownIsNotAReset)
{
	MetricStore store(histograms());
	feed(store, "http_seconds", series({}, 1, 2, 2, 1, 2), 100);
	// A negative observation: the sum goes down and follows.
	feed(store, "http_seconds", series({}, 2, 3, 3, -4, 3), 105);
	STRCMP_EQUAL("2 3 3 -4 3", exposed(store, "http_seconds").c_str());
	feed(store, "http_seconds", series({}, 2, 3, 4, -2, 4), 110);
	STRCMP_EQUAL("2 3 4 -2 4", exposed(store, "http_seconds").c_str());
}

TEST(Histograms, UnusableCountsAreSkippedAndAnInfiniteSumGoesOutAsSent)
{
	MetricStore store(histograms());
	feed(store, "http_seconds", series({}, 1, 3, 5, 10, 5), 100);
	feed(store, "http_seconds", series({}, 2, 3, 6, INFINITY, std::nan("")), 105);
	STRCMP_EQUAL("2 3 6 +Inf 5", exposed(store, "http_seconds").c_str());
	// A reset whose count could not be read: that count starts from zero
	// at its next value instead of making a second reset.
	feed(store, "http_seconds", series({}, 1, 1, 1, 0.5, std::nan("")), 110);
	STRCMP_EQUAL("3 4 7 10.5 5", exposed(store, "http_seconds").c_str());
	feed(store, "http_seconds", series({}, 1, 1, 2, 1, 2), 115);
	STRCMP_EQUAL("3 4 8 11 7", exposed(store, "http_seconds").c_str());
}

TEST(Histograms, ASummaryResetsItsSumAndCountAndPassesItsQuantiles)
{
	MetricStore store(histograms());
	auto summary = [&](double q5, double q9, double sum, double count, double now) {
		applyOk(store, "web", result("status", {family("rpc_seconds", MetricType::Summary, {
		    sample(q5, {{"quantile", "0.5"}}), sample(q9, {{"quantile", "0.9"}}),
		    sample(sum, {}, "_sum"), sample(count, {}, "_count")})}), now);
		std::string text = render(store);
		return valueOf(text, "rpc_seconds{quantile=\"0.5\"}") + " " +
		    valueOf(text, "rpc_seconds{quantile=\"0.9\"}") + " " +
		    valueOf(text, "rpc_seconds_sum") + " " + valueOf(text, "rpc_seconds_count");
	};
	STRCMP_EQUAL("0.25 0.75 10 20", summary(0.25, 0.75, 10, 20, 100).c_str());
	STRCMP_EQUAL("0.5 0.5 12 24", summary(0.5, 0.5, 12, 24, 105).c_str());
	// The quantiles may go down as they like; the count going down is a
	// reset, which the sum follows although it went up.
	STRCMP_EQUAL("0.125 0.25 27 26", summary(0.125, 0.25, 15, 2, 110).c_str());
}

TEST(Histograms, StateSurvivesAWorkerRestart)
{
	MetricStore store(histograms());
	store.setWorkerState("web", WorkerState::Running, 100, "", 99);
	feed(store, "http_seconds", series({}, 10, 20, 30, 40, 30), 100);
	feed(store, "job_seconds", series({}, 0, 1, 1, 0.5, 1), 100);
	store.setWorkerState("web", WorkerState::Restarting, 100, "worker exited", 101);
	store.countRestart("web");
	store.setWorkerState("web", WorkerState::Starting, -1, "", 102);
	store.setWorkerState("web", WorkerState::Running, 200, "", 103);
	// The new worker reads the source's histogram where the old one left it...
	feed(store, "http_seconds", series({}, 11, 21, 32, 42, 32), 104);
	STRCMP_EQUAL("11 21 32 42 32", exposed(store, "http_seconds").c_str());
	// ... and observes its own from zero: one observation again, in the
	// same bucket, is one more, not the same one.
	feed(store, "job_seconds", series({}, 0, 1, 1, 0.75, 1), 104);
	STRCMP_EQUAL("0 2 2 1.25 2", exposed(store, "job_seconds").c_str());
	feed(store, "job_seconds", series({}, 1, 2, 2, 0.875, 2), 109);
	STRCMP_EQUAL("1 3 3 1.375 3", exposed(store, "job_seconds").c_str());
	// A source restart after that is still a reset.
	feed(store, "http_seconds", series({}, 1, 1, 1, 1, 1), 109);
	STRCMP_EQUAL("12 22 33 43 33", exposed(store, "http_seconds").c_str());
}

// A log is observed whole by the next worker: its counts go on.
TEST(Histograms, AnObservedLogContinuesAcrossAWorkerRestart)
{
	common::MetricConfig observed = metric("backup_seconds", MetricType::Histogram);
	observed.observe = true;
	observed.bucketBounds = {0.1, 1};
	common::GroupConfig g = group("status", {observed});
	g.sourceType = common::SourceType::File;
	g.contentType = common::ContentType::Text;
	MetricStore store(config({service("web", {g})}));
	store.setWorkerState("web", WorkerState::Running, 100, "", 99);
	feed(store, "backup_seconds", series({}, 0, 1, 2, 5.5, 2), 100);
	store.setWorkerState("web", WorkerState::Restarting, 100, "worker exited", 101);
	store.setWorkerState("web", WorkerState::Running, 200, "", 103);
	// The whole log again, with one more line.
	feed(store, "backup_seconds", series({}, 0, 2, 3, 6, 3), 104);
	STRCMP_EQUAL("0 2 3 6 3", exposed(store, "backup_seconds").c_str());
}

TEST(Histograms, EachLabelSetIsResetOnItsOwn)
{
	MetricStore store(histograms());
	auto both = [&](std::vector<common::Sample> a, std::vector<common::Sample> b, double now) {
		a.insert(a.end(), b.begin(), b.end());
		feed(store, "http_seconds", std::move(a), now);
	};
	both(series({{"path", "/a"}}, 1, 2, 3, 3, 3), series({{"path", "/b"}}, 4, 5, 6, 6, 6), 100);
	both(series({{"path", "/a"}}, 1, 1, 1, 1, 1), series({{"path", "/b"}}, 5, 7, 8, 9, 8), 105);
	STRCMP_EQUAL("2 3 4 4 4", exposed(store, "http_seconds", "path=\"/a\"").c_str());
	STRCMP_EQUAL("5 7 8 9 8", exposed(store, "http_seconds", "path=\"/b\"").c_str());
}

TEST(Histograms, ImportedHistogramsKeepTheResetSemantics)
{
	MetricStore store(load(R"(
services:
  node:
    metric_groups:
      textfile:
        source_type: file
        source: /var/lib/node/textfile.prom
        content_type: prometheus
)"));
	auto imported = [&](std::vector<common::Sample> samples, double now) {
		applyOk(store, "node", result("textfile", {family("http_seconds",
		    MetricType::Histogram, std::move(samples))}), now);
	};
	imported(series({}, 1, 3, 5, 10, 5), 100);
	imported(series({}, 2, 2, 2, 12, 2), 105);
	STRCMP_EQUAL("3 5 7 22 7", exposed(store, "http_seconds").c_str());
}

// OpenMetrics, the format Prometheus asks for: each type as OpenMetrics
// writes it, _created, the caches of both formats and gzip.
TEST_GROUP(OpenMetrics)
{
	// One group with a family of each type; _total and _info on some
	// names and not on others.
	common::Config everyType()
	{
		return config({service("app", {group("g", {
		    metric("app_requests_total", MetricType::Counter, "Requests."),
		    metric("app_jobs", MetricType::Counter, "Jobs \"done\".\nAll of them."),
		    metric("app_temp", MetricType::Gauge, "Temp."),
		    metric("app_latency_seconds", MetricType::Histogram, "Latency."),
		    metric("app_rpc_seconds", MetricType::Summary, "RPC."),
		    metric("app_build_info", MetricType::Info, "Build."),
		    metric("app_version", MetricType::Info),
		    metric("app_state", MetricType::StateSet, "State."),
		    metric("app_odd", MetricType::Untyped)})})});
	}

	common::GroupResult everyTypeResult()
	{
		common::Sample temp = sample(21.5);
		temp.timestampMs = 1700000000123;
		return result("g", {
		    family("app_requests_total", MetricType::Counter,
		        {sample(3, {{"code", "200"}}), sample(1, {{"code", "500"}})}),
		    family("app_jobs", MetricType::Counter, {sample(5)}),
		    family("app_temp", MetricType::Gauge, {temp}),
		    // Two series interleaved, and a bucket out of order: as a
		    // source may send them, which 0.0.4 allows.
		    family("app_latency_seconds", MetricType::Histogram, {
		        sample(1, {{"path", "a"}, {"le", "0.5"}}, "_bucket"),
		        sample(2, {{"path", "b"}, {"le", "0.5"}}, "_bucket"),
		        sample(3, {{"path", "a"}, {"le", "+Inf"}}, "_bucket"),
		        sample(4, {{"path", "b"}, {"le", "+Inf"}}, "_bucket"),
		        sample(2, {{"path", "a"}, {"le", "1"}}, "_bucket"),
		        sample(1.5, {{"path", "a"}}, "_sum"), sample(3, {{"path", "a"}}, "_count"),
		        sample(2.5, {{"path", "b"}}, "_sum"), sample(4, {{"path", "b"}}, "_count")}),
		    family("app_rpc_seconds", MetricType::Summary, {
		        sample(0.1, {{"quantile", "0.5"}}), sample(0.4, {{"quantile", "0.99"}}),
		        sample(3, {}, "_sum"), sample(10, {}, "_count")}),
		    family("app_build_info", MetricType::Info, {sample(1, {{"version", "1.2"}})}),
		    family("app_version", MetricType::Info, {sample(1, {{"v", "3"}})}),
		    family("app_state", MetricType::StateSet,
		        {sample(1, {{"app_state", "up"}}), sample(0, {{"app_state", "down"}})}),
		    family("app_odd", MetricType::Untyped, {sample(7)})});
	}

	std::string om(MetricStore &store)
	{
		return store.expositionParts(Format::OpenMetrics).data->str();
	}

	std::string text(MetricStore &store)
	{
		return store.expositionParts(Format::Text).data->str();
	}
};

TEST(OpenMetrics, EveryTypeAsOpenMetricsWritesIt)
{
	MetricStore store(everyType());
	applyOk(store, "app", everyTypeResult(), 100);
	STRCMP_EQUAL(
	    "# TYPE app_requests counter\n"
	    "# HELP app_requests Requests.\n"
	    "app_requests_total{code=\"200\"} 3\n"
	    "app_requests_created{code=\"200\"} 100\n"
	    "app_requests_total{code=\"500\"} 1\n"
	    "app_requests_created{code=\"500\"} 100\n"
	    "# TYPE app_jobs counter\n"
	    "# HELP app_jobs Jobs \\\"done\\\".\\nAll of them.\n"
	    "app_jobs_total 5\n"
	    "app_jobs_created 100\n"
	    "# TYPE app_temp gauge\n"
	    "# HELP app_temp Temp.\n"
	    "app_temp 21.5 1700000000.123\n"
	    "# TYPE app_latency_seconds histogram\n"
	    "# HELP app_latency_seconds Latency.\n"
	    "app_latency_seconds_bucket{path=\"a\",le=\"0.5\"} 1\n"
	    "app_latency_seconds_bucket{path=\"a\",le=\"1.0\"} 2\n"
	    "app_latency_seconds_bucket{path=\"a\",le=\"+Inf\"} 3\n"
	    "app_latency_seconds_count{path=\"a\"} 3\n"
	    "app_latency_seconds_sum{path=\"a\"} 1.5\n"
	    "app_latency_seconds_created{path=\"a\"} 100\n"
	    "app_latency_seconds_bucket{path=\"b\",le=\"0.5\"} 2\n"
	    "app_latency_seconds_bucket{path=\"b\",le=\"+Inf\"} 4\n"
	    "app_latency_seconds_count{path=\"b\"} 4\n"
	    "app_latency_seconds_sum{path=\"b\"} 2.5\n"
	    "app_latency_seconds_created{path=\"b\"} 100\n"
	    "# TYPE app_rpc_seconds summary\n"
	    "# HELP app_rpc_seconds RPC.\n"
	    "app_rpc_seconds{quantile=\"0.5\"} 0.1\n"
	    "app_rpc_seconds{quantile=\"0.99\"} 0.4\n"
	    "app_rpc_seconds_count 10\n"
	    "app_rpc_seconds_sum 3\n"
	    "app_rpc_seconds_created 100\n"
	    "# TYPE app_build info\n"
	    "# HELP app_build Build.\n"
	    "app_build_info{version=\"1.2\"} 1\n"
	    "# TYPE app_version info\n"
	    "# HELP app_version app_version\n"
	    "app_version_info{v=\"3\"} 1\n"
	    "# TYPE app_state stateset\n"
	    "# HELP app_state State.\n"
	    "app_state{app_state=\"up\"} 1\n"
	    "app_state{app_state=\"down\"} 0\n"
	    "# TYPE app_odd unknown\n"
	    "# HELP app_odd app_odd\n"
	    "app_odd 7\n", om(store).c_str());
}

TEST(OpenMetrics, TheTextFormatIsAsBefore)
{
	MetricStore store(everyType());
	applyOk(store, "app", everyTypeResult(), 100);
	// Asking for OpenMetrics first changes nothing in the text format.
	om(store);
	STRCMP_EQUAL(
	    "# HELP app_requests_total Requests.\n"
	    "# TYPE app_requests_total counter\n"
	    "app_requests_total{code=\"200\"} 3\n"
	    "app_requests_total{code=\"500\"} 1\n"
	    "# HELP app_jobs Jobs \"done\".\\nAll of them.\n"
	    "# TYPE app_jobs counter\n"
	    "app_jobs 5\n"
	    "# HELP app_temp Temp.\n"
	    "# TYPE app_temp gauge\n"
	    "app_temp 21.5 1700000000123\n"
	    "# HELP app_latency_seconds Latency.\n"
	    "# TYPE app_latency_seconds histogram\n"
	    "app_latency_seconds_bucket{path=\"a\",le=\"0.5\"} 1\n"
	    "app_latency_seconds_bucket{path=\"b\",le=\"0.5\"} 2\n"
	    "app_latency_seconds_bucket{path=\"a\",le=\"+Inf\"} 3\n"
	    "app_latency_seconds_bucket{path=\"b\",le=\"+Inf\"} 4\n"
	    "app_latency_seconds_bucket{path=\"a\",le=\"1\"} 2\n"
	    "app_latency_seconds_sum{path=\"a\"} 1.5\n"
	    "app_latency_seconds_count{path=\"a\"} 3\n"
	    "app_latency_seconds_sum{path=\"b\"} 2.5\n"
	    "app_latency_seconds_count{path=\"b\"} 4\n"
	    "# HELP app_rpc_seconds RPC.\n"
	    "# TYPE app_rpc_seconds summary\n"
	    "app_rpc_seconds{quantile=\"0.5\"} 0.1\n"
	    "app_rpc_seconds{quantile=\"0.99\"} 0.4\n"
	    "app_rpc_seconds_sum 3\n"
	    "app_rpc_seconds_count 10\n"
	    "# HELP app_build_info Build.\n"
	    "# TYPE app_build_info gauge\n"
	    "app_build_info{version=\"1.2\"} 1\n"
	    "# HELP app_version app_version\n"
	    "# TYPE app_version gauge\n"
	    "app_version{v=\"3\"} 1\n"
	    "# HELP app_state State.\n"
	    "# TYPE app_state gauge\n"
	    "app_state{app_state=\"up\"} 1\n"
	    "app_state{app_state=\"down\"} 0\n"
	    "# HELP app_odd app_odd\n"
	    "# TYPE app_odd untyped\n"
	    "app_odd 7\n", text(store).c_str());
	// pmed --once prints the same.
	CHECK(store.exposition()->rfind(text(store), 0) == 0);
}

TEST(OpenMetrics, SelfMetricsEndWithEofAndCountScrapesByFormat)
{
	MetricStore store(everyType());
	applyOk(store, "app", everyTypeResult(), 100);
	store.countScrape(Format::OpenMetrics);
	store.countScrape(Format::OpenMetrics);
	store.countScrape(Format::Text);
	auto parts = store.expositionParts(Format::OpenMetrics);
	const std::string &self = *parts.self;
	CHECK(self.ends_with("\n# EOF\n"));
	LONGS_EQUAL(1, count(self, "# EOF"));
	CHECK(self.find("# TYPE pme_scrapes counter\n# HELP pme_scrapes Scrapes of the metrics "
	    "endpoint, by the format served: text (0.0.4) or openmetrics.\n") != std::string::npos);
	STRCMP_EQUAL("2", valueOf(self, "pme_scrapes_total{format=\"openmetrics\"}").c_str());
	STRCMP_EQUAL("1", valueOf(self, "pme_scrapes_total{format=\"text\"}").c_str());
	CHECK(self.find("# TYPE pme_source_errors counter\n") != std::string::npos);
	CHECK(self.find("# TYPE process_cpu_seconds counter\n") != std::string::npos);
	CHECK(self.find("# TYPE pme_source_up gauge\n") != std::string::npos);
	CHECK(self.find("pme_source_errors_total{service=\"app\",group=\"g\"} 0\n") !=
	    std::string::npos);
	// The text format has both counts, and no EOF.
	std::string plain = *store.expositionParts(Format::Text).self;
	STRCMP_EQUAL("2", valueOf(plain, "pme_scrapes_total{format=\"openmetrics\"}").c_str());
	STRCMP_EQUAL("1", valueOf(plain, "pme_scrapes_total{format=\"text\"}").c_str());
	CHECK(plain.find("# EOF") == std::string::npos);
	CHECK(plain.find("# TYPE pme_scrapes_total counter\n") != std::string::npos);
}

TEST(OpenMetrics, CreatedIsWhenTheStoreBeganCountingAndASourceResetKeepsIt)
{
	MetricStore store(twoServices());
	auto created = [&] {
		return valueOf(store.expositionParts(Format::OpenMetrics).data->str(),
		    "web_requests_created");
	};
	auto total = [&] {
		return valueOf(store.expositionParts(Format::OpenMetrics).data->str(),
		    "web_requests_total");
	};
	STRCMP_EQUAL("10", counterAfter(store, 10, 100).c_str());
	STRCMP_EQUAL("100", created().c_str());
	STRCMP_EQUAL("15", counterAfter(store, 15, 105.5).c_str());
	STRCMP_EQUAL("100", created().c_str());
	// The source restarted: the exposed counter goes on from 15, so it
	// was not reset and its _created stays (a new _created would tell
	// Prometheus to count all of 18 as new).
	STRCMP_EQUAL("18", counterAfter(store, 3, 110.25).c_str());
	STRCMP_EQUAL("18", total().c_str());
	STRCMP_EQUAL("100", created().c_str());
	// A worker restart changes nothing either.
	store.setWorkerState("web", WorkerState::Restarting, 1, "exited", 111);
	STRCMP_EQUAL("20", counterAfter(store, 2, 112).c_str());
	STRCMP_EQUAL("100", created().c_str());
	// Gone for longer than its state is kept: counted anew from 4, since now.
	store.expire(112 + 3601);
	STRCMP_EQUAL("absent", total().c_str());
	STRCMP_EQUAL("4", counterAfter(store, 4, 3800.5).c_str());
	STRCMP_EQUAL("4", total().c_str());
	STRCMP_EQUAL("3800.5", created().c_str());
}

TEST(OpenMetrics, AHistogramIsCreatedWithItsFirstSamples)
{
	common::Config c = config({service("app", {group("g", {
	    metric("lat_seconds", MetricType::Histogram)})})});
	MetricStore store(c);
	auto apply = [&](double b1, double inf, double now, bool third = false) {
		std::vector<common::Sample> s{sample(b1, {{"le", "0.1"}}, "_bucket"),
		    sample(inf, {{"le", "+Inf"}}, "_bucket"), sample(inf, {}, "_count")};
		if (third)
			s.push_back(sample(b1, {{"le", "1"}}, "_bucket"));
		applyOk(store, "app", result("g", {family("lat_seconds", MetricType::Histogram, s)}),
		    now);
		return store.expositionParts(Format::OpenMetrics).data->str();
	};
	std::string o = apply(1, 2, 100);
	STRCMP_EQUAL("100", valueOf(o, "lat_seconds_created").c_str());
	// A bucket that appears later does not make the histogram younger.
	o = apply(2, 4, 200, true);
	STRCMP_EQUAL("100", valueOf(o, "lat_seconds_created").c_str());
	STRCMP_EQUAL("2", valueOf(o, "lat_seconds_bucket{le=\"1.0\"}").c_str());
	// Nor does a reset of the source: the counts go on.
	o = apply(1, 1, 300, true);
	STRCMP_EQUAL("5", valueOf(o, "lat_seconds_count").c_str());
	STRCMP_EQUAL("100", valueOf(o, "lat_seconds_created").c_str());
	// Buckets by le, then _count, then _created.
	CHECK(o.find("lat_seconds_bucket{le=\"0.1\"} 3\nlat_seconds_bucket{le=\"1.0\"} 3\n"
	    "lat_seconds_bucket{le=\"+Inf\"} 5\nlat_seconds_count 5\nlat_seconds_created 100\n") !=
	    std::string::npos);
}

TEST(OpenMetrics, BothFormatsAreCachedUntilAFamilyChanges)
{
	MetricStore store(everyType());
	applyOk(store, "app", everyTypeResult(), 100);
	auto o1 = store.expositionParts(Format::OpenMetrics);
	auto t1 = store.expositionParts(Format::Text);
	store.countScrape(Format::OpenMetrics);
	auto o2 = store.expositionParts(Format::OpenMetrics);
	auto t2 = store.expositionParts(Format::Text);
	CHECK(o1.data.get() == o2.data.get());
	CHECK(t1.data.get() == t2.data.get());
	CHECK(o1.data.get() != t1.data.get());
	// A status change re-renders the self part, not the families.
	store.setWorkerState("app", WorkerState::Running, 5, "", 101);
	CHECK(store.expositionParts(Format::OpenMetrics).data.get() == o1.data.get());
	applyOk(store, "app", result("g", {family("app_temp", MetricType::Gauge, {sample(30)})}),
	    102);
	auto o3 = store.expositionParts(Format::OpenMetrics);
	CHECK(o3.data.get() != o1.data.get());
	STRCMP_EQUAL("30", valueOf(o3.data->str(), "app_temp").c_str());
	// The old body is intact for whoever still sends it.
	STRCMP_EQUAL("21.5", valueOf(o1.data->str(), "app_temp").substr(0, 4).c_str());
	STRCMP_EQUAL("30", valueOf(text(store), "app_temp").c_str());
}

using pme::test::gunzip;

TEST(OpenMetrics, AGzipBodyServedOftenUnchangedIsCompressedAgainSmaller)
{
	MetricStore store(load(R"(
services:
  node:
    metric_groups:
      textfile:
        source_type: file
        source: /var/lib/node/textfile.prom
        content_type: prometheus
)"));
	auto many = [](double base) {
		std::vector<common::Sample> samples;
		for (int i = 0; i < 3000; i++)
			samples.push_back(sample(base + i % 7, {{"path", "/api/v1/items/" +
			    std::to_string(i % 97)}, {"instance", "host-" + std::to_string(i)}}));
		return family("node_requests", MetricType::Gauge, std::move(samples));
	};
	applyOk(store, "node", result("textfile", {many(1)}), 100);
	auto plain = store.expositionParts(Format::Text);
	auto first = store.expositionParts(Format::Text, true);
	// Answers 2 to 32 share the body the first made, at the fast level.
	for (int i = 2; i < 32; i++)
		CHECK(store.expositionParts(Format::Text, true).data.get() == first.data.get());
	auto again = store.expositionParts(Format::Text, true);
	CHECK(again.data.get() != first.data.get());
	CHECK_TEXT(again.data->size < first.data->size * 95 / 100, (std::to_string(again.data->size) +
	    " bytes, not smaller than " + std::to_string(first.data->size)).c_str());
	bool ok = false;
	std::string body = gunzip(again.data->str() + *again.self, &ok);
	CHECK_TRUE(ok);
	CHECK(body.rfind(plain.data->str(), 0) == 0);
	// From then on, that body; a change starts again at the fast level,
	// where only the changed pieces are compressed again.
	CHECK(store.expositionParts(Format::Text, true).data.get() == again.data.get());
	applyOk(store, "node", result("textfile", {many(2)}), 101);
	auto changed = store.expositionParts(Format::Text, true);
	CHECK(changed.data.get() != again.data.get());
	body = gunzip(changed.data->str() + *changed.self, &ok);
	CHECK_TRUE(ok);
	CHECK(body.rfind(store.expositionParts(Format::Text).data->str(), 0) == 0);
}

TEST(OpenMetrics, GzipIsMadeOncePerChangeAndFormat)
{
	MetricStore store(everyType());
	applyOk(store, "app", everyTypeResult(), 100);
	for (Format f : {Format::Text, Format::OpenMetrics}) {
		auto plain = store.expositionParts(f);
		auto z1 = store.expositionParts(f, true);
		auto z2 = store.expositionParts(f, true);
		// The families are compressed once; each call ends the member anew.
		CHECK(z1.data.get() == z2.data.get());
		CHECK(z1.self.get() != z2.self.get());
		bool ok = false;
		std::string body = gunzip(z2.data->str() + *z2.self, &ok);
		CHECK_TRUE(ok);
		CHECK(body.rfind(plain.data->str(), 0) == 0);
		std::string self = body.substr(plain.data->size);
		CHECK(self.starts_with(f == Format::Text ? "# HELP pme_source_up " :
		    "# TYPE pme_source_up gauge\n"));
		CHECK(self.ends_with(f == Format::Text ? "\n" : "\n# EOF\n"));
		CHECK(body.find(f == Format::Text ? "# TYPE app_state gauge\n" :
		    "# TYPE app_state stateset\n") != std::string::npos);
	}
	auto text1 = store.expositionParts(Format::Text, true);
	auto om1 = store.expositionParts(Format::OpenMetrics, true);
	CHECK(text1.data.get() != om1.data.get());
	applyOk(store, "app", result("g", {family("app_temp", MetricType::Gauge, {sample(30)})}),
	    101);
	auto om2 = store.expositionParts(Format::OpenMetrics, true);
	CHECK(om2.data.get() != om1.data.get());
	bool ok = false;
	std::string body = gunzip(om2.data->str() + *om2.self, &ok);
	CHECK_TRUE(ok);
	STRCMP_EQUAL("30", valueOf(body, "app_temp").c_str());
	// Only what changed was deflated again: app_temp in the text format
	// is a piece of its own (its samples; its header stays).
	auto text2 = store.expositionParts(Format::Text, true);
	const auto &a = text1.data->pieces, &b = text2.data->pieces;
	LONGS_EQUAL(a.size(), b.size());
	size_t differ = 0;
	for (size_t i = 0; i < a.size(); i++)
		differ += a[i].get() != b[i].get();
	LONGS_EQUAL(1, differ);
	body = gunzip(text2.data->str() + *text2.self, &ok);
	CHECK_TRUE(ok);
	CHECK(body.rfind(store.expositionParts(Format::Text).data->str(), 0) == 0);
}

TEST(OpenMetrics, AUnitFromAnImportedFamilyWhereItFitsTheName)
{
	MetricStore store(load(R"(
services:
  node:
    metric_groups:
      textfile:
        source_type: file
        source: /var/lib/node/textfile.prom
        content_type: prometheus
)"));
	common::Family fits = family("node_boot_seconds", MetricType::Gauge, {sample(5)});
	fits.unit = "seconds";
	common::Family counter = family("node_cpu_seconds_total", MetricType::Counter, {sample(9)});
	counter.unit = "seconds";
	common::Family misfit = family("node_memory", MetricType::Gauge, {sample(1)});
	misfit.unit = "bytes";
	applyOk(store, "node", result("textfile", {fits, counter, misfit}), 100);
	std::string o = om(store);
	CHECK_TEXT(o.find("# TYPE node_boot_seconds gauge\n# UNIT node_boot_seconds seconds\n") !=
	    std::string::npos, o.c_str());
	CHECK_TEXT(o.find("# TYPE node_cpu_seconds counter\n# UNIT node_cpu_seconds seconds\n") !=
	    std::string::npos, o.c_str());
	CHECK_TEXT(o.find("# TYPE node_memory gauge\n# HELP node_memory") != std::string::npos,
	    o.c_str());
	LONGS_EQUAL(2, count(o, "# UNIT"));
	// The text format 0.0.4 has no UNIT.
	CHECK(text(store).find("UNIT") == std::string::npos);
	// The source drops the unit: so does OpenMetrics.
	fits.unit.clear();
	applyOk(store, "node", result("textfile", {fits, counter, misfit}), 105);
	LONGS_EQUAL(1, count(om(store), "# UNIT"));
}

TEST(OpenMetrics, TheUnitTheConfigGivesIsWrittenForThatFamilyOnly)
{
	MetricStore store(load(R"(
services:
  app:
    metric_groups:
      g:
        source_type: static
        metrics:
          app_uptime_seconds: {type: gauge, value: 5, unit: seconds}
          app_requests: {type: counter, value: 7}
          app_busy_seconds_total: {type: counter, value: 3, unit: seconds}
)"));
	applyOk(store, "app", result("g", {
	    family("app_uptime_seconds", MetricType::Gauge, {sample(5)}),
	    family("app_requests", MetricType::Counter, {sample(7)}),
	    family("app_busy_seconds_total", MetricType::Counter, {sample(3)})}), 100);
	std::string o = om(store);
	CHECK_TEXT(o.find("# TYPE app_uptime_seconds gauge\n# UNIT app_uptime_seconds seconds\n") !=
	    std::string::npos, o.c_str());
	CHECK_TEXT(o.find("# TYPE app_busy_seconds counter\n# UNIT app_busy_seconds seconds\n") !=
	    std::string::npos, o.c_str());
	LONGS_EQUAL(2, count(o, "# UNIT"));
	CHECK(text(store).find("UNIT") == std::string::npos);
}

TEST(OpenMetrics, AFamilyWhoseNamesClashIsLeftOutOfOpenMetricsOnly)
{
	// A counter x writes x_total and x_created in OpenMetrics: a gauge
	// x_created, and a counter whose name ends in _total beside a gauge
	// of the same name without, cannot be there too.
	MetricStore store(config({service("app", {group("g", {
	    metric("job", MetricType::Counter),
	    metric("job_created", MetricType::Gauge),
	    metric("size", MetricType::Gauge),
	    metric("size_total", MetricType::Counter),
	    metric("pme_scrapes", MetricType::Gauge)})})}));
	applyOk(store, "app", result("g", {
	    family("job", MetricType::Counter, {sample(1)}),
	    family("job_created", MetricType::Gauge, {sample(1600000000)}),
	    family("size", MetricType::Gauge, {sample(2)}),
	    family("size_total", MetricType::Counter, {sample(3)}),
	    family("pme_scrapes", MetricType::Gauge, {sample(4)})}), 100);
	std::string o = om(store);
	CHECK(o.find("job_total 1\njob_created 100\n") != std::string::npos);
	CHECK(o.find("# TYPE job_created") == std::string::npos);
	CHECK(o.find("# TYPE size gauge\nsize 2\n") == std::string::npos);
	CHECK(o.find("size 2\n") != std::string::npos);
	CHECK(o.find("size_total") == std::string::npos);
	// pme's own pme_scrapes_total comes first.
	CHECK(o.find("pme_scrapes 4") == std::string::npos);
	std::string t = text(store);
	STRCMP_EQUAL("1600000000", valueOf(t, "job_created").c_str());
	STRCMP_EQUAL("3", valueOf(t, "size_total").c_str());
	STRCMP_EQUAL("4", valueOf(t, "pme_scrapes").c_str());
}

TEST(OpenMetrics, ADuplicateSeriesIsCountedOnceWhateverTheFormats)
{
	MetricStore two(config({service("a", {group("g", {metric("dup", MetricType::Gauge)})}),
	    service("b", {group("g", {metric("dup", MetricType::Gauge)})})}));
	applyOk(two, "a", result("g", {family("dup", MetricType::Gauge, {sample(1)})}), 100);
	applyOk(two, "b", result("g", {family("dup", MetricType::Gauge, {sample(2)})}), 100);
	std::string o = om(two), t = text(two);
	STRCMP_EQUAL("1", valueOf(o, "dup").c_str());
	STRCMP_EQUAL("1", valueOf(t, "dup").c_str());
	STRCMP_EQUAL("1", valueOf(*two.expositionParts(Format::OpenMetrics).self,
	    "pme_series_dropped_total").c_str());
	// Rendered again after a change: one more.
	applyOk(two, "b", result("g", {family("dup", MetricType::Gauge, {sample(3)})}), 101);
	text(two);
	om(two);
	STRCMP_EQUAL("2", valueOf(*two.expositionParts().self, "pme_series_dropped_total").c_str());
}

TEST(OpenMetrics, RenderingAHundredThousandSeries)
{
	// Not a benchmark (tests/bench is the place for those): it prints how
	// long each step takes, so that a slow one is seen.
	MetricStore store(config({service("bench", {group("g", {
	    metric("bench_bytes", MetricType::Gauge, "Bytes."),
	    metric("bench_requests_total", MetricType::Counter, "Requests.")})})}));
	std::vector<common::Sample> gauges, counters;
	for (int i = 0; i < 50000; i++) {
		std::vector<common::Label> l{{"instance", "host-" + std::to_string(i % 500)},
		    {"path", "/api/v1/item/" + std::to_string(i)}};
		gauges.push_back(sample(i * 1.5 + 0.25, l));
		counters.push_back(sample(i * 7.0, l));
	}
	auto r = result("g", {family("bench_bytes", MetricType::Gauge, gauges),
	    family("bench_requests_total", MetricType::Counter, counters)});
	using Clock = std::chrono::steady_clock;
	auto ms = [](Clock::time_point a, Clock::time_point b) {
		return std::chrono::duration<double, std::milli>(b - a).count();
	};
	auto t0 = Clock::now();
	applyOk(store, "bench", r, 100);
	auto t1 = Clock::now();
	auto text = store.expositionParts(Format::Text);
	auto t2 = Clock::now();
	auto om = store.expositionParts(Format::OpenMetrics);
	auto t3 = Clock::now();
	auto textGz = store.expositionParts(Format::Text, true);
	auto t4 = Clock::now();
	auto again = store.expositionParts(Format::Text, true);
	auto t5 = Clock::now();
	printf("\n100,000 series from scratch: apply (lines rendered) %.1f ms; text joined "
	    "%.1f ms (%zu bytes); OpenMetrics rendered and joined %.1f ms (%zu bytes); gzip "
	    "%.1f ms (%zu bytes); then a gzip scrape %.2f ms\n", ms(t0, t1), ms(t1, t2),
	    text.data->size, ms(t2, t3), om.data->size, ms(t3, t4), textGz.data->size,
	    ms(t4, t5));
	LONGS_EQUAL(100000 + 4, count(text.data->str(), "\n"));
	LONGS_EQUAL(150000 + 4, count(om.data->str(), "\n"));
	CHECK(again.data.get() == textGz.data.get());

	// Every value changes: what each cycle of such an exporter costs.
	for (auto &g : gauges)
		g.value += 1;
	for (auto &c : counters)
		c.value += 1;
	r = result("g", {family("bench_bytes", MetricType::Gauge, gauges),
	    family("bench_requests_total", MetricType::Counter, counters)});
	t0 = Clock::now();
	applyOk(store, "bench", r, 105);
	t1 = Clock::now();
	text = store.expositionParts(Format::Text);
	t2 = Clock::now();
	om = store.expositionParts(Format::OpenMetrics);
	t3 = Clock::now();
	printf("after a change of every value: apply %.1f ms; text %.1f ms; OpenMetrics %.1f ms\n",
	    ms(t0, t1), ms(t1, t2), ms(t2, t3));
	CHECK(text.data->str().find(
	    "bench_requests_total{instance=\"host-1\",path=\"/api/v1/item/1\"} "
	    "8\n") != std::string::npos);
}

// Every series key made the same (seriesKeyMask): what a worker that
// computed labels to hash like another's series would get, and honest
// data once in 2^64 pairs.  The store must tell series apart by their
// text.
TEST_GROUP(Collisions)
{
	void setup() override { seriesKeyMask = 0; }
	void teardown() override { seriesKeyMask = ~0ULL; }

	common::GroupResult hosts(std::vector<std::pair<std::string, double>> values)
	{
		std::vector<common::Sample> samples;
		for (const auto &[host, v] : values)
			samples.push_back(sample(v, {{"host", host}}));
		return result("status", {family("web_active", MetricType::Gauge, samples)});
	}
};

TEST(Collisions, DifferentSeriesOfOneFamilyAreAllExportedWithTheirValues)
{
	MetricStore store(twoServices());
	// A value with a space, a quote and a newline: where the series
	// text of a line ends is found from its end.
	std::string odd = "a b\"c\nd";
	applyOk(store, "web", hosts({{"a", 1}, {"b", 2}, {odd, 3}, {"a", 9}}), 100);
	std::string text = render(store);
	STRCMP_EQUAL("1", valueOf(text, "web_active{host=\"a\"}").c_str());
	STRCMP_EQUAL("2", valueOf(text, "web_active{host=\"b\"}").c_str());
	STRCMP_EQUAL("3", valueOf(text, "web_active{host=\"a b\\\"c\\nd\"}").c_str());
	UNSIGNED_LONGS_EQUAL(3, count(text, "\nweb_active{"));
	// The second host="a" is the same series: dropped, and counted.
	STRCMP_EQUAL("1", valueOf(text, "pme_series_dropped_total").c_str());
	// Another order, then fewer, then the first again: each series
	// keeps its own line.
	applyOk(store, "web", hosts({{odd, 6}, {"b", 5}, {"a", 4}}), 105);
	text = render(store);
	STRCMP_EQUAL("4", valueOf(text, "web_active{host=\"a\"}").c_str());
	STRCMP_EQUAL("5", valueOf(text, "web_active{host=\"b\"}").c_str());
	STRCMP_EQUAL("6", valueOf(text, "web_active{host=\"a b\\\"c\\nd\"}").c_str());
	applyOk(store, "web", hosts({{"b", 7}, {"a", 8}}), 110);
	text = render(store);
	STRCMP_EQUAL("8", valueOf(text, "web_active{host=\"a\"}").c_str());
	STRCMP_EQUAL("7", valueOf(text, "web_active{host=\"b\"}").c_str());
	UNSIGNED_LONGS_EQUAL(2, count(text, "\nweb_active{"));
	STRCMP_EQUAL("1", valueOf(text, "pme_series_dropped_total").c_str());
}

TEST(Collisions, TheSameLabelsInAnotherOrderAreStillOneSeries)
{
	MetricStore store(twoServices());
	applyOk(store, "web", result("status", {family("web_active", MetricType::Gauge,
	    {sample(1, {{"a", "x"}, {"b", "y"}}), sample(2, {{"a", "y"}, {"b", "x"}}),
	    sample(3, {{"b", "y"}, {"a", "x"}})})}), 100);
	std::string text = render(store);
	STRCMP_EQUAL("1", valueOf(text, "web_active{a=\"x\",b=\"y\"}").c_str());
	STRCMP_EQUAL("2", valueOf(text, "web_active{a=\"y\",b=\"x\"}").c_str());
	UNSIGNED_LONGS_EQUAL(2, count(text, "\nweb_active{"));
	STRCMP_EQUAL("1", valueOf(text, "pme_series_dropped_total").c_str());
}

TEST(Collisions, AServicesSeriesIsNotDroppedForAnothersThatCollides)
{
	MetricStore store(sharedFamily());
	applyOk(store, "web", result("a", {family("up_seconds", MetricType::Gauge,
	    {sample(1, {{"k", "forged"}}), sample(5, {{"k", "same"}})})}), 100);
	applyOk(store, "db", result("c", {family("up_seconds", MetricType::Gauge,
	    {sample(2, {{"k", "db"}}), sample(6, {{"k", "same"}})})}), 100);
	std::string text = render(store);
	STRCMP_EQUAL("1", valueOf(text, "up_seconds{k=\"forged\"}").c_str());
	STRCMP_EQUAL("2", valueOf(text, "up_seconds{k=\"db\"}").c_str());
	// A series both export is still the first one's, once.
	STRCMP_EQUAL("5", valueOf(text, "up_seconds{k=\"same\"}").c_str());
	UNSIGNED_LONGS_EQUAL(3, count(text, "\nup_seconds{"));
	STRCMP_EQUAL("1", valueOf(text, "pme_series_dropped_total").c_str());
	// OpenMetrics is made from the same lines.
	std::string om = store.expositionParts(Format::OpenMetrics).data->str();
	CHECK_TEXT(om.find("up_seconds{k=\"db\"} 2\n") != std::string::npos, om.c_str());
}

TEST(Collisions, CollidingCountersKeepTheirOwnStateAcrossAReset)
{
	MetricStore store(twoServices());
	auto requests = [&](double ok, double failed, double now) {
		applyOk(store, "web", result("status", {family("web_requests_total",
		    MetricType::Counter, {sample(ok, {{"code", "200"}}),
		    sample(failed, {{"code", "500"}})})}), now);
		std::string text = render(store);
		return valueOf(text, "web_requests_total{code=\"200\"}") + " " +
		    valueOf(text, "web_requests_total{code=\"500\"}");
	};
	STRCMP_EQUAL("10 100", requests(10, 100, 100).c_str());
	STRCMP_EQUAL("15 105", requests(15, 105, 105).c_str());
	// The source restarted: each adds its new value to its own count.
	STRCMP_EQUAL("18 107", requests(3, 2, 110).c_str());
	STRCMP_EQUAL("20 111", requests(5, 6, 115).c_str());
}

TEST(Collisions, AResultThatChangesNothingStillRendersNothing)
{
	MetricStore store(twoServices());
	applyOk(store, "web", hosts({{"a", 1}, {"b", 2}, {"c", 3}}), 100);
	auto first = store.expositionParts();
	applyOk(store, "web", hosts({{"a", 1}, {"b", 2}, {"c", 3}}), 102);
	CHECK(store.expositionParts().data.get() == first.data.get());
	applyOk(store, "web", hosts({{"a", 1}, {"b", 4}, {"c", 3}}), 104);
	auto changed = store.expositionParts();
	CHECK(changed.data.get() != first.data.get());
	std::string text = changed.data->str();
	STRCMP_EQUAL("1", valueOf(text, "web_active{host=\"a\"}").c_str());
	STRCMP_EQUAL("4", valueOf(text, "web_active{host=\"b\"}").c_str());
	STRCMP_EQUAL("3", valueOf(text, "web_active{host=\"c\"}").c_str());
}
