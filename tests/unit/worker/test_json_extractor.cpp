// SPDX-License-Identifier: ISC
// Content type json: documents, filters, label templates, values, per-series
// errors; and the value reader and series collector that xml shares.
#include <cmath>
#include <string>

#include "common/utf8.hpp"
#include "worker/json_extractor.hpp"
#include "worker/text_extractor.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme;
using common::MetricConfig;
using common::MetricType;
using worker::Extraction;
using worker::JsonDocument;
using worker::JsonExtractor;
using worker::SeriesCollector;
using worker::ValueReader;

namespace {

// GET /_cluster/health of Elasticsearch, shortened.
const char *kClusterHealth = R"({
  "cluster_name": "prod",
  "status": "yellow",
  "timed_out": false,
  "number_of_nodes": 3,
  "active_primary_shards": 12,
  "unassigned_shards": 4,
  "active_shards_percent_as_number": 87.5,
  "task_max_waiting_in_queue_millis": 0
})";

// GET /_nodes/stats, shortened: node b2 is restarting and reports no load.
const char *kNodesStats = R"({
  "_nodes": {"total": 3, "successful": 3, "failed": 0},
  "cluster_name": "prod",
  "nodes": {
    "a1": {"name": "es-1", "host": "10.0.0.1", "roles": ["data", "master"],
           "load": 1.5, "jvm": {"mem": {"heap_used_percent": 41}}},
    "b2": {"name": "es-2", "host": "10.0.0.2", "roles": ["data"],
           "load": null, "jvm": {"mem": {"heap_used_percent": 77}}},
    "c3": {"name": "es-3", "host": "10.0.0.3", "roles": ["ingest"],
           "load": 0.25, "jvm": {"mem": {"heap_used_percent": 12}}}
  }
})";

// GET /containers/json?all=1 of Docker, shortened.
const char *kContainers = R"([
  {"Id": "8dfafdbc3a40", "Names": ["/web-1"], "Image": "nginx:1.25",
   "State": "running", "SizeRw": 12288,
   "Labels": {"com.docker.compose.service": "web"}},
  {"Id": "9cd87474be90", "Names": ["/db-1", "/db"], "Image": "postgres:16",
   "State": "running", "SizeRw": 4096,
   "Labels": {"com.docker.compose.service": "db"}},
  {"Id": "1a2b3c4d5e6f", "Names": ["/old-job"], "Image": "busybox",
   "State": "exited", "SizeRw": 0, "Labels": {}}
])";

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

JsonDocument document(const std::string &text)
{
	auto d = JsonDocument::parse(text);
	if (!d)
		FAIL(("parse failed: " + d.error().message).c_str());
	return std::move(*d);
}

std::string compileError(const MetricConfig &m)
{
	auto x = JsonExtractor::compile(m);
	if (x)
		FAIL("compile succeeded where it should fail");
	return x ? std::string() : x.error().message;
}

Extraction extract(const MetricConfig &m, const std::string &json)
{
	auto x = JsonExtractor::compile(m);
	if (!x) {
		FAIL(("compile failed: " + x.error().message).c_str());
		return {};
	}
	return x->extract(document(json));
}

// An extraction that must have gone without error.
Extraction clean(const MetricConfig &m, const std::string &json)
{
	Extraction e = extract(m, json);
	if (e.errorCount)
		FAIL(("unexpected error: " + e.summary()).c_str());
	return e;
}

double value(const MetricConfig &m, const std::string &json)
{
	Extraction e = clean(m, json);
	UNSIGNED_LONGS_EQUAL(1, e.family.samples.size());
	return e.family.samples.at(0).value;
}

std::string label(const common::Sample &s, const std::string &name)
{
	for (const auto &l : s.labels)
		if (l.name == name)
			return l.value;
	FAIL(("no label " + name).c_str());
	return "";
}

const common::Sample &sample(const Extraction &e, size_t i)
{
	CHECK(i < e.family.samples.size());
	return e.family.samples.at(i);
}

} // namespace

TEST_GROUP(JsonDocument) {};

TEST(JsonDocument, AnyValueAtTheTop)
{
	CHECK(json_is_object(document("{}").root()));
	CHECK(json_is_array(document("[1]").root()));
	CHECK(json_is_integer(document(" 42 ").root()));
	CHECK(json_is_string(document("\"up\"").root()));
}

TEST(JsonDocument, InvalidJsonSaysWhere)
{
	auto d = JsonDocument::parse("{\n  \"a\": 1,\n  \"b\": }\n");
	CHECK_FALSE(d);
	STRCMP_EQUAL("invalid JSON at line 3, column 8: unexpected token near '}'",
	    d.error().message.c_str());

	d = JsonDocument::parse("");
	CHECK_FALSE(d);
	STRCMP_CONTAINS("invalid JSON at line 1, column 0: ", d.error().message.c_str());

	// Trailing garbage after the value.
	d = JsonDocument::parse("{} x");
	CHECK_FALSE(d);
	STRCMP_CONTAINS("invalid JSON at line 1, column 4: end of file expected",
	    d.error().message.c_str());
}

TEST(JsonDocument, NulAndBadUtf8AreRefused)
{
	auto d = JsonDocument::parse("[\"a\\u0000b\"]");
	CHECK_FALSE(d);
	STRCMP_CONTAINS("\\u0000 is not allowed", d.error().message.c_str());

	d = JsonDocument::parse(std::string("[\"a\0b\"]", 7));
	CHECK_FALSE(d);
	STRCMP_CONTAINS("invalid JSON at line 1", d.error().message.c_str());

	d = JsonDocument::parse("[\"\xff\"]");
	CHECK_FALSE(d);
	// jansson's message quotes the bad bytes; the error is still UTF-8.
	CHECK(common::validUtf8(d.error().message));
}

TEST(JsonDocument, NestingIsBounded)
{
	std::string deep(5000, '[');
	auto d = JsonDocument::parse(deep + std::string(5000, ']'));
	CHECK_FALSE(d);
	STRCMP_CONTAINS("maximum parsing depth reached", d.error().message.c_str());
}

TEST_GROUP(JsonExtraction) {};

TEST(JsonExtraction, ClusterHealthScalars)
{
	DOUBLES_EQUAL(3, value(metric("$.number_of_nodes"), kClusterHealth), 0);
	DOUBLES_EQUAL(87.5, value(metric("$.active_shards_percent_as_number"), kClusterHealth), 0);
	DOUBLES_EQUAL(0, value(metric("$['task_max_waiting_in_queue_millis']"), kClusterHealth), 0);
	DOUBLES_EQUAL(0, value(metric("$.timed_out"), kClusterHealth), 0);

	Extraction e = clean(metric("$.unassigned_shards"), kClusterHealth);
	STRCMP_EQUAL("test_metric", e.family.name.c_str());
	STRCMP_EQUAL("A test metric", e.family.help.c_str());
	CHECK(e.family.type == MetricType::Gauge);
	CHECK(e.family.samples.at(0).labels.empty());
	CHECK(e.sendFamily());
}

TEST(JsonExtraction, StatusMappedToNumbers)
{
	MetricConfig m = metric("$.status", {{"cluster", "${$.cluster_name}"}});
	m.values = {{"green", 0}, {"yellow", 1}, {"red", 2}};
	m.scale = 100; // states are not scaled
	Extraction e = clean(m, kClusterHealth);
	DOUBLES_EQUAL(1, sample(e, 0).value, 0);
	STRCMP_EQUAL("prod", label(sample(e, 0), "cluster").c_str());
}

TEST(JsonExtraction, UnmappedStatusIsAnError)
{
	MetricConfig m = metric("$.status");
	m.values = {{"green", 0}, {"yellow", 1}, {"red", 2}};
	Extraction e = extract(m, R"({"status": "purple"})");
	UNSIGNED_LONGS_EQUAL(1, e.errorCount);
	STRCMP_EQUAL("$['status']: value 'purple' is not one of green, yellow, red",
	    e.summary().c_str());
	CHECK(e.family.samples.empty());
	CHECK_FALSE(e.sendFamily());
}

TEST(JsonExtraction, NodesStatsOneSeriesPerNode)
{
	MetricConfig m = metric("$.nodes.*", {
	    {"node", "${key}"}, {"name", "${.name}"}, {"cluster", "${$.cluster_name}"},
	    {"where", "${.host}/${^^.cluster_name}"}});
	m.valueTemplate = "${.jvm.mem.heap_used_percent}";
	Extraction e = clean(m, kNodesStats);
	UNSIGNED_LONGS_EQUAL(3, e.family.samples.size());
	const char *ids[] = {"a1", "b2", "c3"};
	const char *names[] = {"es-1", "es-2", "es-3"};
	const double heap[] = {41, 77, 12};
	for (size_t i = 0; i < 3; i++) {
		const common::Sample &s = sample(e, i);
		STRCMP_EQUAL(ids[i], label(s, "node").c_str());
		STRCMP_EQUAL(names[i], label(s, "name").c_str());
		STRCMP_EQUAL("prod", label(s, "cluster").c_str());
		DOUBLES_EQUAL(heap[i], s.value, 0);
	}
	STRCMP_EQUAL("10.0.0.2/prod", label(sample(e, 1), "where").c_str());
	// Labels keep the order they were written in.
	STRCMP_EQUAL("node", sample(e, 0).labels.at(0).name.c_str());
	STRCMP_EQUAL("where", sample(e, 0).labels.at(3).name.c_str());
}

TEST(JsonExtraction, AncestorLabels)
{
	MetricConfig m = metric("$.nodes.*.jvm.mem.heap_used_percent", {
	    {"node", "${^^^key}"}, {"name", "${^^^.name}"}, {"parent", "${^key}"},
	    {"self", "${key}"}});
	Extraction e = clean(m, kNodesStats);
	UNSIGNED_LONGS_EQUAL(3, e.family.samples.size());
	STRCMP_EQUAL("c3", label(sample(e, 2), "node").c_str());
	STRCMP_EQUAL("es-3", label(sample(e, 2), "name").c_str());
	STRCMP_EQUAL("mem", label(sample(e, 2), "parent").c_str());
	STRCMP_EQUAL("heap_used_percent", label(sample(e, 2), "self").c_str());
	DOUBLES_EQUAL(12, sample(e, 2).value, 0);
}

TEST(JsonExtraction, NullValueIsASeriesError)
{
	MetricConfig m = metric("$.nodes.*", {{"node", "${key}"}});
	m.valueTemplate = "${.load}";
	Extraction e = extract(m, kNodesStats);
	// The other nodes are still exposed.
	UNSIGNED_LONGS_EQUAL(2, e.family.samples.size());
	STRCMP_EQUAL("a1", label(sample(e, 0), "node").c_str());
	DOUBLES_EQUAL(1.5, sample(e, 0).value, 0);
	STRCMP_EQUAL("c3", label(sample(e, 1), "node").c_str());
	DOUBLES_EQUAL(0.25, sample(e, 1).value, 0);
	UNSIGNED_LONGS_EQUAL(1, e.errorCount);
	STRCMP_EQUAL("$['nodes']['b2']['load']: is null", e.summary().c_str());
	CHECK(e.sendFamily());
}

TEST(JsonExtraction, NullValueWithValueOnError)
{
	MetricConfig m = metric("$.nodes.*", {{"node", "${key}"}});
	m.valueTemplate = "${.load}";
	m.valueOnError = -1;
	Extraction e = clean(m, kNodesStats);
	UNSIGNED_LONGS_EQUAL(3, e.family.samples.size());
	STRCMP_EQUAL("b2", label(sample(e, 1), "node").c_str());
	DOUBLES_EQUAL(-1, sample(e, 1).value, 0);
	DOUBLES_EQUAL(1.5, sample(e, 0).value, 0);
}

TEST(JsonExtraction, MissingValueSaysWhereItWasLookedFor)
{
	MetricConfig m = metric("$.nodes.*");
	m.valueTemplate = "${.os.cpu.percent}";
	Extraction e = extract(m, kNodesStats);
	CHECK(e.family.samples.empty());
	UNSIGNED_LONGS_EQUAL(3, e.errorCount);
	UNSIGNED_LONGS_EQUAL(3, e.errors.size());
	STRCMP_EQUAL("$['nodes']['a1']['os']['cpu']['percent']: is missing", e.errors[0].c_str());
	STRCMP_EQUAL("$['nodes']['a1']['os']['cpu']['percent']: is missing (and 2 more)",
	    e.summary().c_str());
	CHECK_FALSE(e.sendFamily());

	m.valueTemplate = "${.roles[-4]}";
	e = extract(m, kNodesStats);
	STRCMP_EQUAL("$['nodes']['a1']['roles'][-4]: is missing", e.errors.at(0).c_str());
	m.valueTemplate = "${.roles[5].x}";
	e = extract(m, kNodesStats);
	STRCMP_EQUAL("$['nodes']['a1']['roles'][5]['x']: is missing", e.errors.at(0).c_str());
}

TEST(JsonExtraction, DockerContainers)
{
	MetricConfig m = metric("$[*]", {
	    {"name", "${.Names[0]}"},
	    {"service", "${.Labels['com.docker.compose.service']}"},
	    {"state", "${.State}"},
	    {"index", "${key}"}});
	m.type = MetricType::Info;
	Extraction e = clean(m, kContainers);
	CHECK(e.family.type == MetricType::Info);
	UNSIGNED_LONGS_EQUAL(3, e.family.samples.size());
	STRCMP_EQUAL("/web-1", label(sample(e, 0), "name").c_str());
	STRCMP_EQUAL("web", label(sample(e, 0), "service").c_str());
	STRCMP_EQUAL("db", label(sample(e, 1), "service").c_str());
	STRCMP_EQUAL("1", label(sample(e, 1), "index").c_str());
	// No compose label: the label is empty, not an error.
	STRCMP_EQUAL("", label(sample(e, 2), "service").c_str());
	STRCMP_EQUAL("exited", label(sample(e, 2), "state").c_str());
	for (const auto &s : e.family.samples)
		DOUBLES_EQUAL(1, s.value, 0);
}

TEST(JsonExtraction, FilterExpressionSelectsRunningContainers)
{
	MetricConfig m = metric("$[?@.State == 'running']", {
	    {"name", "${.Names[-1]}"}, {"image", "${.Image}"}});
	m.valueTemplate = "${.SizeRw}";
	Extraction e = clean(m, kContainers);
	UNSIGNED_LONGS_EQUAL(2, e.family.samples.size());
	STRCMP_EQUAL("/web-1", label(sample(e, 0), "name").c_str());
	DOUBLES_EQUAL(12288, sample(e, 0).value, 0);
	STRCMP_EQUAL("/db", label(sample(e, 1), "name").c_str());
	STRCMP_EQUAL("postgres:16", label(sample(e, 1), "image").c_str());
}

TEST(JsonExtraction, NonSingularFilterMayMatchNothing)
{
	MetricConfig m = metric("$[?@.State == 'paused']", {{"name", "${.Names[0]}"}});
	Extraction e = clean(m, kContainers);
	CHECK(e.family.samples.empty());
	CHECK(e.sendFamily());
	STRCMP_EQUAL("test_metric", e.family.name.c_str());
	STRCMP_EQUAL("", e.summary().c_str());

	e = clean(metric("$.nodes.*.missing"), kNodesStats);
	CHECK(e.family.samples.empty());
	CHECK(e.sendFamily());
}

TEST(JsonExtraction, SingularFilterMustMatch)
{
	Extraction e = extract(metric("$.nodes.z9.load"), kNodesStats);
	CHECK(e.family.samples.empty());
	UNSIGNED_LONGS_EQUAL(1, e.errorCount);
	STRCMP_EQUAL("filter matched nothing", e.summary().c_str());
	CHECK_FALSE(e.sendFamily());

	e = extract(metric("$[7]"), kContainers);
	STRCMP_EQUAL("filter matched nothing", e.summary().c_str());

	// With value_on_error: one series, the labels' literal text only.
	MetricConfig m = metric("$.nodes.z9.load", {{"node", "z9"}, {"name", "n-${.name}"}});
	m.valueOnError = -1;
	e = clean(m, kNodesStats);
	UNSIGNED_LONGS_EQUAL(1, e.family.samples.size());
	DOUBLES_EQUAL(-1, sample(e, 0).value, 0);
	STRCMP_EQUAL("z9", label(sample(e, 0), "node").c_str());
	STRCMP_EQUAL("n-", label(sample(e, 0), "name").c_str());
}

TEST(JsonExtraction, DuplicateLabelsAreRefused)
{
	MetricConfig m = metric("$.nodes.*", {{"cluster", "${$.cluster_name}"}});
	m.valueTemplate = "${.jvm.mem.heap_used_percent}";
	Extraction e = extract(m, kNodesStats);
	UNSIGNED_LONGS_EQUAL(1, e.family.samples.size());
	DOUBLES_EQUAL(41, sample(e, 0).value, 0);
	UNSIGNED_LONGS_EQUAL(2, e.errorCount);
	UNSIGNED_LONGS_EQUAL(1, e.errors.size());
	STRCMP_EQUAL("two nodes give the same labels {cluster=\"prod\"}: add a label that "
	    "tells them apart (and 1 more)", e.summary().c_str());

	// Even value_on_error cannot make them different.
	m.valueOnError = 0;
	e = extract(m, kNodesStats);
	UNSIGNED_LONGS_EQUAL(2, e.errorCount);

	// No labels at all under a wildcard.
	e = extract(metric("$.nodes.*.jvm.mem.heap_used_percent"), kNodesStats);
	STRCMP_CONTAINS("the same labels {}", e.summary().c_str());
}

TEST(JsonExtraction, ValueRegexStripsUnits)
{
	const char *doc = R"({"took": "12.5ms", "p99": " 1.25 s ", "state": "ok"})";
	MetricConfig m = metric("$.took");
	m.valueRegex = "([0-9.]+)ms";
	DOUBLES_EQUAL(12.5, value(m, doc), 1e-12);
	m.scale = 0.001;
	DOUBLES_EQUAL(0.0125, value(m, doc), 1e-12);

	m = metric("$.p99");
	m.valueRegex = "^(?<value>[0-9.]+) (?<unit>s|ms)$";
	DOUBLES_EQUAL(1.25, value(m, doc), 0);

	m = metric("$.state");
	m.valueRegex = "([0-9.]+)ms";
	Extraction e = extract(m, doc);
	STRCMP_EQUAL("$['state']: value 'ok' does not match value_regex '([0-9.]+)ms'",
	    e.summary().c_str());
}

TEST(JsonExtraction, NumbersInStrings)
{
	const char *doc = R"({"a": "42", "b": "1e3", "c": "12abc", "d": "", "e": "NaN"})";
	MetricConfig m = metric("$.a");
	m.scale = 2;
	DOUBLES_EQUAL(84, value(m, doc), 0);
	DOUBLES_EQUAL(1000, value(metric("$.b"), doc), 0);
	CHECK(std::isnan(value(metric("$.e"), doc)));
	STRCMP_EQUAL("$['c']: value '12abc' is not a number",
	    extract(metric("$.c"), doc).summary().c_str());
	STRCMP_EQUAL("$['d']: value '' is not a number",
	    extract(metric("$.d"), doc).summary().c_str());
}

TEST(JsonExtraction, Booleans)
{
	const char *doc = R"({"up": true, "degraded": false, "flag": "TRUE", "off": "false"})";
	MetricConfig m = metric("$.up");
	m.scale = 1000; // booleans are not scaled
	DOUBLES_EQUAL(1, value(m, doc), 0);
	DOUBLES_EQUAL(0, value(metric("$.degraded"), doc), 0);
	DOUBLES_EQUAL(1, value(metric("$.flag"), doc), 0);
	DOUBLES_EQUAL(0, value(metric("$.off"), doc), 0);
}

TEST(JsonExtraction, Scale)
{
	MetricConfig m = metric("$.task_max_waiting_in_queue_millis");
	m.scale = 0.001;
	DOUBLES_EQUAL(0, value(m, kClusterHealth), 0);
	m = metric("$.nodes.a1.jvm.mem.heap_used_percent");
	m.scale = 0.01;
	DOUBLES_EQUAL(0.41, value(m, kNodesStats), 1e-12);
}

TEST(JsonExtraction, ObjectOrArrayAsValue)
{
	Extraction e = extract(metric("$.nodes.a1.jvm"), kNodesStats);
	STRCMP_EQUAL("$['nodes']['a1']['jvm']: is an object, not a value", e.summary().c_str());
	e = extract(metric("$.nodes.a1.roles"), kNodesStats);
	STRCMP_EQUAL("$['nodes']['a1']['roles']: is an array, not a value", e.summary().c_str());
	// value_on_error covers it as any other bad value.
	MetricConfig m = metric("$.nodes.a1.jvm");
	m.valueOnError = 7;
	DOUBLES_EQUAL(7, value(m, kNodesStats), 0);
}

TEST(JsonExtraction, InfoDoesNotReadTheNode)
{
	MetricConfig m = metric("$.nodes.*", {{"name", "${.name}"}, {"roles", "${.roles[0]}"}});
	m.type = MetricType::Info;
	Extraction e = clean(m, kNodesStats);
	UNSIGNED_LONGS_EQUAL(3, e.family.samples.size());
	DOUBLES_EQUAL(1, sample(e, 1).value, 0);
	STRCMP_EQUAL("data", label(sample(e, 1), "roles").c_str());
}

TEST(JsonExtraction, LabelFormatting)
{
	const char *doc = R"({"items": [
	    {"id": 7, "ratio": 0.1, "big": 1e21, "whole": 2.0, "neg": -3,
	     "ok": true, "no": false, "none": null, "s": "x y"}]})";
	MetricConfig m = metric("$.items[*]", {
	    {"id", "${.id}"}, {"ratio", "${.ratio}"}, {"big", "${.big}"},
	    {"whole", "${.whole}"}, {"neg", "${.neg}"}, {"ok", "${.ok}"}, {"no", "${.no}"},
	    {"none", "[${.none}]"}, {"s", "${.s}"}, {"missing", "${.nope.deeper}"},
	    {"index", "#${key}"}, {"list", "${^key}"}, {"root", "${^^key}"},
	    {"above", "${^^^^.x}"}, {"self", "${.s}=${@}"}});
	m.type = MetricType::Info;
	Extraction e = extract(m, doc);
	// ${@} is the item, an object: that series is refused.
	STRCMP_EQUAL("$['items'][0]: label 'self': ${@} is an object", e.summary().c_str());

	m.labels.pop_back();
	e = clean(m, doc);
	const common::Sample &s = sample(e, 0);
	STRCMP_EQUAL("7", label(s, "id").c_str());
	STRCMP_EQUAL("0.1", label(s, "ratio").c_str());
	STRCMP_EQUAL("1e+21", label(s, "big").c_str());
	STRCMP_EQUAL("2", label(s, "whole").c_str());
	STRCMP_EQUAL("-3", label(s, "neg").c_str());
	STRCMP_EQUAL("true", label(s, "ok").c_str());
	STRCMP_EQUAL("false", label(s, "no").c_str());
	STRCMP_EQUAL("[]", label(s, "none").c_str());
	STRCMP_EQUAL("x y", label(s, "s").c_str());
	STRCMP_EQUAL("", label(s, "missing").c_str());
	STRCMP_EQUAL("#0", label(s, "index").c_str());
	STRCMP_EQUAL("items", label(s, "list").c_str());
	STRCMP_EQUAL("", label(s, "root").c_str());
	STRCMP_EQUAL("", label(s, "above").c_str());
}

TEST(JsonExtraction, LabelFromAnObjectIsAnErrorEvenWithValueOnError)
{
	MetricConfig m = metric("$.nodes.*", {{"name", "${.name}"}, {"jvm", "${.jvm}"}});
	m.valueTemplate = "${.load}";
	m.valueOnError = -1;
	Extraction e = extract(m, kNodesStats);
	CHECK(e.family.samples.empty());
	UNSIGNED_LONGS_EQUAL(3, e.errorCount);
	STRCMP_EQUAL("$['nodes']['a1']: label 'jvm': ${.jvm} is an object", e.errors.at(0).c_str());
	STRCMP_EQUAL("$['nodes']['b2']: label 'jvm': ${.jvm} is an object", e.errors.at(1).c_str());

	m.labels = {{"roles", "${.roles}"}};
	e = extract(m, kNodesStats);
	STRCMP_EQUAL("$['nodes']['a1']: label 'roles': ${.roles} is an array",
	    e.errors.at(0).c_str());
}

TEST(JsonExtraction, RootAndKeyOfTheRoot)
{
	MetricConfig m = metric("$", {{"key", "${key}"}, {"up", "${^}"}});
	DOUBLES_EQUAL(5, value(m, "5"), 0);
	Extraction e = clean(m, "5");
	STRCMP_EQUAL("", label(sample(e, 0), "key").c_str());
	STRCMP_EQUAL("", label(sample(e, 0), "up").c_str());
}

TEST(JsonExtraction, ValueFromTheKey)
{
	MetricConfig m = metric("$.codes.*", {{"count", "${@}"}});
	m.valueTemplate = "${key}";
	Extraction e = clean(m, R"({"codes": {"200": 17, "404": 2}})");
	UNSIGNED_LONGS_EQUAL(2, e.family.samples.size());
	DOUBLES_EQUAL(404, sample(e, 1).value, 0);
	STRCMP_EQUAL("2", label(sample(e, 1), "count").c_str());
}

TEST(JsonExtraction, LongLabelValueIsRefused)
{
	std::string big(worker::kMaxLabelValue + 1, 'x');
	MetricConfig m = metric("$.a", {{"big", "${.b}"}});
	m.valueTemplate = "${.v}";
	Extraction e = extract(m, R"({"a": {"v": 1, "b": ")" + big + R"("}})");
	CHECK(e.family.samples.empty());
	STRCMP_EQUAL("label 'big' value is 4097 bytes long (at most 4096)", e.summary().c_str());
}

TEST(JsonExtraction, SeriesAreBounded)
{
	std::string doc = "[0";
	for (size_t i = 1; i <= worker::kMaxSeriesPerMetric; i++)
		doc += "," + std::to_string(i);
	doc += "]";
	Extraction e = extract(metric("$[*]", {{"i", "${key}"}}), doc);
	UNSIGNED_LONGS_EQUAL(worker::kMaxSeriesPerMetric, e.family.samples.size());
	UNSIGNED_LONGS_EQUAL(1, e.errorCount);
	STRCMP_EQUAL("more than 10000 series; the rest are dropped (narrow the filter)",
	    e.summary().c_str());
}

TEST(JsonExtraction, AtMostFiveDistinctErrorsAreKept)
{
	std::string doc = R"({"a": null, "b": null, "c": "x", "d": "x", "e": [], "f": {},
	    "g": "y", "h": null, "i": 3})";
	Extraction e = extract(metric("$.*", {{"k", "${key}"}}), doc);
	UNSIGNED_LONGS_EQUAL(1, e.family.samples.size());
	UNSIGNED_LONGS_EQUAL(8, e.errorCount);
	UNSIGNED_LONGS_EQUAL(5, e.errors.size());
	STRCMP_EQUAL("$['a']: is null", e.errors[0].c_str());
	STRCMP_EQUAL("$['e']: is an array, not a value", e.errors[4].c_str());
	STRCMP_EQUAL("$['a']: is null (and 7 more)", e.summary().c_str());
}

TEST(JsonExtraction, OneExtractorManyDocuments)
{
	auto x = JsonExtractor::compile(metric("$.n"));
	CHECK(x.has_value());
	Extraction a = x->extract(document(R"({"n": 1})"));
	Extraction b = x->extract(document(R"({"n": 2})"));
	DOUBLES_EQUAL(1, sample(a, 0).value, 0);
	DOUBLES_EQUAL(2, sample(b, 0).value, 0);
}

TEST(JsonExtraction, BadConfigurationIsRefused)
{
	STRCMP_EQUAL("label 'id': at offset 0: $1 refers to a regex capture, which only "
	    "content_type text has; here write ${@} (the node), ${key}, ${.name} (a member) or "
	    "${$.name}", compileError(metric("$.*", {{"id", "$1"}})).c_str());
	STRCMP_EQUAL("label 'id': at offset 3: write $$ for a dollar sign",
	    compileError(metric("$.*", {{"id", "US $"}})).c_str());

	MetricConfig m = metric("$.*");
	m.valueTemplate = "${.a} ms";
	STRCMP_EQUAL("value '${.a} ms' must be exactly one reference, such as ${.count} or ${@}",
	    compileError(m).c_str());
	m.valueTemplate = "${.a";
	STRCMP_EQUAL("value: at offset 0: ${ without a closing }", compileError(m).c_str());
	m.valueTemplate = "5";
	STRCMP_CONTAINS("must be exactly one reference", compileError(m).c_str());

	STRCMP_CONTAINS("filter: at offset ", compileError(metric("$.a[")).c_str());
	STRCMP_EQUAL("json content needs a filter, a JSONPath such as $.status",
	    compileError(metric("")).c_str());

	m = metric("$.a");
	m.type = MetricType::Histogram;
	STRCMP_EQUAL("a histogram read from the source has a filter per bucket, not one filter",
	    compileError(m).c_str());
	m.type = MetricType::Summary; // observes each value selected
	CHECK(JsonExtractor::compile(m).has_value());

	m = metric("$.a");
	m.valueRegex = "(";
	STRCMP_EQUAL("value_regex: missing closing parenthesis at offset 1",
	    compileError(m).c_str());

	m = metric("$.a");
	m.type = MetricType::Info;
	m.valueTemplate = "${.b}";
	STRCMP_CONTAINS("an info metric has no value", compileError(m).c_str());
}

TEST_GROUP(ValueReader) {};

TEST(ValueReader, Order)
{
	MetricConfig m = metric("x");
	m.valueRegex = "state=(\\w+)";
	m.values = {{"up", 1}, {"down", 0}};
	auto r = ValueReader::compile(m);
	CHECK(r.has_value());
	DOUBLES_EQUAL(1, *r->fromString("  state=up  "), 0);
	DOUBLES_EQUAL(0, *r->fromString("state=down;"), 0);
	auto bad = r->fromString("state=sideways");
	CHECK_FALSE(bad);
	STRCMP_EQUAL("value 'sideways' is not one of up, down", bad.error().message.c_str());
	// A number or a boolean that is not a state is read as such.
	DOUBLES_EQUAL(5, *r->fromString("state=5"), 0);
	DOUBLES_EQUAL(1, *r->fromString("state=true"), 0);
}

TEST(ValueReader, PlainNumbersAndBooleans)
{
	MetricConfig m = metric("x");
	m.scale = 10;
	auto r = ValueReader::compile(m);
	CHECK(r.has_value());
	DOUBLES_EQUAL(25, *r->fromString(" 2.5\n"), 0);
	DOUBLES_EQUAL(-1e4, *r->fromString("-1e3"), 0);
	CHECK(std::isinf(*r->fromString("+Inf")));
	DOUBLES_EQUAL(1, *r->fromString("True"), 0);
	DOUBLES_EQUAL(30, *r->fromNumber(3), 0);
	// Bytes that are not UTF-8 do not reach the message as they are.
	auto bad = r->fromString("\xff\xfe");
	CHECK_FALSE(bad);
	CHECK(common::validUtf8(bad.error().message));
}

TEST(ValueReader, StateSetTakesOnlyItsStates)
{
	MetricConfig m = metric("x");
	m.type = MetricType::StateSet;
	m.values = {{"green", 0}, {"true", 1}};
	auto r = ValueReader::compile(m);
	CHECK(r.has_value());
	DOUBLES_EQUAL(0, *r->fromString("green"), 0);
	DOUBLES_EQUAL(1, *r->fromBoolean(true), 0);
	STRCMP_EQUAL("value 'false' is not one of green, true",
	    r->fromBoolean(false).error().message.c_str());
	STRCMP_EQUAL("value 1 is a number, not one of the states",
	    r->fromNumber(1).error().message.c_str());
	STRCMP_EQUAL("value '1' is not one of green, true",
	    r->fromString("1").error().message.c_str());
}

TEST(ValueReader, WholeMatchWithoutCaptures)
{
	MetricConfig m = metric("x");
	m.valueRegex = "[0-9]+";
	auto r = ValueReader::compile(m);
	CHECK(r.has_value());
	DOUBLES_EQUAL(300, *r->fromString("took 300 ms"), 0);
	// A capture group that did not take part in the match.
	m.valueRegex = "a(\\d+)?";
	r = ValueReader::compile(m);
	CHECK(r.has_value());
	auto bad = r->fromString("a");
	CHECK_FALSE(bad);
	STRCMP_EQUAL("value_regex matched 'a' but captured no value in it",
	    bad.error().message.c_str());
}

TEST(ValueReader, MatchLimitsHold)
{
	MetricConfig m = metric("x");
	m.valueRegex = "(a+)+$";
	auto r = ValueReader::compile(m);
	CHECK(r.has_value());
	auto bad = r->fromString(std::string(40, 'a') + "b");
	CHECK_FALSE(bad);
	STRCMP_CONTAINS("value_regex on ", bad.error().message.c_str());
}

TEST_GROUP(SeriesCollector) {};

TEST(SeriesCollector, FailWithoutAndWithValueOnError)
{
	MetricConfig m = metric("x");
	SeriesCollector c(m);
	c.add({{"server", "a"}}, 1);
	c.fail({{"server", "b"}}, "/status/server[2]/@state",
	    "value 'purple' is not one of green, yellow, red");
	Extraction e = c.finish();
	UNSIGNED_LONGS_EQUAL(1, e.family.samples.size());
	STRCMP_EQUAL("/status/server[2]/@state: value 'purple' is not one of green, yellow, red",
	    e.summary().c_str());

	m.valueOnError = 42;
	SeriesCollector d(m);
	d.fail({{"server", "b"}}, "/x", "is missing");
	e = d.finish();
	UNSIGNED_LONGS_EQUAL(0, e.errorCount);
	UNSIGNED_LONGS_EQUAL(1, e.family.samples.size());
	DOUBLES_EQUAL(42, sample(e, 0).value, 0);
	STRCMP_EQUAL("b", label(sample(e, 0), "server").c_str());
}

TEST(SeriesCollector, FailMetricWithValueOnErrorKeepsLiteralLabels)
{
	MetricConfig m = metric("x", {{"role", "db"}, {"node", "n-${.name}-$$"}});
	m.valueOnError = -1;
	SeriesCollector c(m);
	c.failMetric("filter matched nothing");
	Extraction e = c.finish();
	UNSIGNED_LONGS_EQUAL(0, e.errorCount);
	STRCMP_EQUAL("db", label(sample(e, 0), "role").c_str());
	STRCMP_EQUAL("n--$", label(sample(e, 0), "node").c_str());
}

TEST(SeriesCollector, InvalidUtf8LabelIsRefused)
{
	MetricConfig m = metric("x");
	SeriesCollector c(m);
	c.add({{"name", "a\xc3"}}, 1);
	Extraction e = c.finish();
	CHECK(e.family.samples.empty());
	STRCMP_EQUAL("label 'name' value is not valid UTF-8", e.summary().c_str());
}
