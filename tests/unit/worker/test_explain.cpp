// SPDX-License-Identifier: ISC
// pmed --explain reports: header, read, data, matches, samples and errors.
#include <limits>
#include <string>

#include "common/utf8.hpp"
#include "worker/explain.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme;
using namespace std::string_literals;
using common::ContentType;
using common::GroupConfig;
using common::GroupResult;
using common::MetricConfig;
using common::MetricType;
using common::ServiceConfig;
using common::SourceType;
using worker::Escape;
using worker::ExplainIdentity;
using worker::SourceRead;

namespace {

MetricConfig metric(const std::string &name, const std::string &filter,
    MetricType type = MetricType::Gauge)
{
	MetricConfig m;
	m.key = name;
	m.name = name;
	m.type = type;
	m.filter = filter;
	return m;
}

GroupConfig group(const std::string &key, SourceType source, ContentType content)
{
	GroupConfig g;
	g.key = key;
	g.sourceType = source;
	g.contentType = content;
	return g;
}

ServiceConfig service()
{
	ServiceConfig s;
	s.key = s.name = "app";
	s.labels = {{"team", "core"}};
	return s;
}

ExplainIdentity nobody()
{
	return {65534, 65534, "nobody", "nogroup"};
}

common::Family family(const std::string &name, MetricType type,
    std::vector<common::Sample> samples)
{
	common::Family f;
	f.name = name;
	f.type = type;
	f.samples = std::move(samples);
	return f;
}

bool has(const std::string &report, const std::string &what)
{
	return report.find(what) != std::string::npos;
}

// CHECK_TRUE with the report in the failure message.
#define CHECK_HAS(report, what) \
	CHECK_TEXT(has(report, what), ("missing \"" + std::string(what) + "\" in:\n" + \
	    (report)).c_str())
#define CHECK_HAS_NOT(report, what) \
	CHECK_TEXT(!has(report, what), ("unexpected \"" + std::string(what) + "\" in:\n" + \
	    (report)).c_str())

// Nothing in a report may reach the terminal as a control character.
void checkTerminalSafe(const std::string &report)
{
	CHECK_TRUE(common::validUtf8(report));
	for (size_t i = 0; i < report.size(); i++) {
		auto c = static_cast<unsigned char>(report[i]);
		CHECK_TEXT(c == '\n' || (c >= 0x20 && c != 0x7f), ("control byte at " +
		    std::to_string(i) + " in:\n" + report).c_str());
		if (c == 0xc2 && i + 1 < report.size())
			CHECK_TRUE(static_cast<unsigned char>(report[i + 1]) >= 0xa0);
	}
}

} // namespace

TEST_GROUP(Explain) {};

TEST(Explain, TextMatchesWithNumberedAndNamedCaptures)
{
	GroupConfig g = group("stats", SourceType::Command, ContentType::Text);
	g.argv = {"printf", "temp=21.5 unit=celsius\nrequests=7\n"};
	g.metrics.push_back(metric("app_temperature",
	    R"(temp=(?<value>[-\d.]+) unit=(?<unit>\w+))"));
	g.metrics.push_back(metric("app_requests_total", R"(requests=(\d+))",
	    MetricType::Counter));
	SourceRead read;
	read.content = "temp=21.5 unit=celsius\nrequests=7\n";
	read.exitStatus = 0;
	GroupResult r;
	r.group = "stats";
	r.duration = 0.0125;
	r.families.push_back(family("app_temperature", MetricType::Gauge,
	    {{"", {{"unit", "celsius"}}, 21.5, {}}}));
	r.families.push_back(family("app_requests_total", MetricType::Counter, {{"", {}, 7, {}}}));

	std::string out = worker::explainReport(service(), g, read, r, nobody());
	CHECK_HAS(out, "== app/stats ==");
	CHECK_HAS(out, "source    command printf 'temp=21.5 unit=celsius\\nrequests=7\\n'\n");
	CHECK_HAS(out, "ran as    user nobody (uid 65534), group nogroup (gid 65534)\n");
	CHECK_HAS(out, "result    ok\n");
	CHECK_HAS(out, "exit      0\n");
	CHECK_HAS(out, "read      34 bytes, not truncated\n");
	CHECK_HAS(out, "duration  12.5 ms\n");
	CHECK_HAS(out, "-- data read: 2 lines, 34 bytes --");
	CHECK_HAS(out, "1 | temp=21.5 unit=celsius\n2 | requests=7\n");
	CHECK_HAS(out, "app_temperature (gauge)\n  filter   temp=(?<value>[-\\d.]+) unit=(?<unit>\\w+)\n"
	    "  matched  1 time\n    #1 line 1: \"temp=21.5 unit=celsius\"\n"
	    "        $1 value = \"21.5\"\n        $2 unit = \"celsius\"\n  gave     1 sample\n");
	CHECK_HAS(out, "app_requests_total (counter)\n  filter   requests=(\\d+)\n  matched  1 time\n"
	    "    #1 line 2: \"requests=7\"\n        $1 = \"7\"\n");
	// Samples in exposition style, with the service's labels as pmed adds them.
	CHECK_HAS(out, "-- samples (2) --");
	CHECK_HAS(out, "\napp_temperature{unit=\"celsius\",team=\"core\"} 21.5\n");
	CHECK_HAS(out, "\napp_requests_total{team=\"core\"} 7\n");
	CHECK_HAS(out, "-- errors (0) --");
	CHECK_HAS(out, "no errors\n");
	checkTerminalSafe(out);
}

TEST(Explain, MatchesAreCappedAndCounted)
{
	GroupConfig g = group("disks", SourceType::File, ContentType::Text);
	g.source = "/proc/diskstats";
	g.multiline = true;
	g.metrics.push_back(metric("disk", R"(^d(\d+)$)"));
	SourceRead read;
	for (int i = 1; i <= 25; i++)
		read.content += "d" + std::to_string(i) + "\n";
	GroupResult r;
	r.group = "disks";
	std::string out = worker::explainReport(service(), g, read, r, nobody());
	CHECK_HAS(out, "  matched  25 times\n");
	CHECK_HAS(out, "    #10 line 10: \"d10\"\n");
	CHECK_HAS_NOT(out, "#11");
	CHECK_HAS(out, "    and 15 more\n");
	CHECK_HAS(out, "source    file /proc/diskstats\n");
	CHECK_HAS_NOT(out, "exit      ");
}

TEST(Explain, NoMatchIsSaidPlainly)
{
	GroupConfig g = group("stats", SourceType::File, ContentType::Text);
	g.source = "/tmp/stats";
	g.metrics.push_back(metric("app_missing", R"(nothere=(\d+))"));
	SourceRead read;
	read.content = "requests=7\n";
	GroupResult r;
	r.group = "stats";
	r.metricErrors.emplace_back("app_missing", "filter matched nothing");
	std::string out = worker::explainReport(service(), g, read, r, nobody());
	CHECK_HAS(out, "app_missing (gauge)\n  filter   nothere=(\\d+)\n  matched  nothing\n"
	    "  gave     0 samples\n  ERROR    filter matched nothing\n");
	CHECK_HAS(out, "-- samples (0) --");
	CHECK_HAS(out, "(none)\n");
	CHECK_HAS(out, "-- errors (1) --");
	CHECK_HAS(out, "metric app_missing: filter matched nothing\n");
	CHECK_HAS_NOT(out, "no errors");
}

TEST(Explain, JsonNodesWithTheirPathsAndValues)
{
	GroupConfig g = group("health", SourceType::Http, ContentType::Json);
	g.source = "http://127.0.0.1:9200/_cluster/health";
	g.http.username = "monitor";
	g.http.password = "s3cret";
	g.metrics.push_back(metric("es_status", "$.status"));
	g.metrics.push_back(metric("es_load", "$.nodes.*.load"));
	g.metrics.push_back(metric("es_absent", "$.absent"));
	g.metrics.push_back(metric("es_any", "$.none[*]"));
	SourceRead read;
	read.content = R"({"status": "yellow", "nodes": {"a1": {"load": 0.5}, "a2": {"load": null}}})";
	read.httpStatus = 200;
	read.responseSeconds = 0.004;
	GroupResult r;
	r.group = "health";
	r.httpStatus = 200;
	r.families.push_back(family("es_load", MetricType::Gauge, {{"", {{"node", "a1"}}, 0.5, {}}}));
	r.metricErrors.emplace_back("es_load", "$['nodes']['a2']['load']: is null");
	std::string out = worker::explainReport(service(), g, read, r, nobody());
	CHECK_HAS(out, "source    http GET http://127.0.0.1:9200/_cluster/health "
	    "(basic auth as monitor)\n");
	CHECK_HAS_NOT(out, "s3cret");
	CHECK_HAS(out, "content   json\n");
	CHECK_HAS(out, "http      200, response in 4 ms\n");
	CHECK_HAS(out, "es_status (gauge)\n  filter   $.status\n  selected 1 node\n"
	    "    $['status'] = \"yellow\"\n");
	CHECK_HAS(out, "  selected 2 nodes\n    $['nodes']['a1']['load'] = 0.5\n"
	    "    $['nodes']['a2']['load'] = null\n");
	CHECK_HAS(out, "es_absent (gauge)\n  filter   $.absent\n  selected nothing\n");
	CHECK_HAS(out, "es_any (gauge)\n  filter   $.none[*]\n  selected nothing (for a query "
	    "with wildcards or filters this is not an error)\n");
	CHECK_HAS(out, "es_load{node=\"a1\",team=\"core\"} 0.5\n");
	CHECK_HAS(out, "metric es_load: $['nodes']['a2']['load']: is null\n");
}

TEST(Explain, XmlNodesWithTheirPathsAndStringValues)
{
	GroupConfig g = group("rtmp", SourceType::File, ContentType::Xml);
	g.source = "/tmp/stat.xml";
	g.metrics.push_back(metric("rtmp_clients", "//stream/nclients"));
	g.metrics.push_back(metric("rtmp_streams", "count(//stream)"));
	g.metrics.push_back(metric("rtmp_none", "//nothing"));
	SourceRead read;
	read.content = "<rtmp><server><stream name=\"a\"><nclients> 3 </nclients></stream>"
	    "<stream name=\"b\"><nclients>5</nclients></stream></server></rtmp>";
	GroupResult r;
	r.group = "rtmp";
	std::string out = worker::explainReport(service(), g, read, r, nobody());
	CHECK_HAS(out, "rtmp_clients (gauge)\n  filter   //stream/nclients\n  selected 2 nodes\n"
	    "    /rtmp/server/stream[1]/nclients = \"3\"\n"
	    "    /rtmp/server/stream[2]/nclients = \"5\"\n");
	CHECK_HAS(out, "rtmp_streams (gauge)\n  filter   count(//stream)\n  gives the number 2\n");
	CHECK_HAS(out, "rtmp_none (gauge)\n  filter   //nothing\n  selected nothing");
}

TEST(Explain, DocumentThatDoesNotParse)
{
	GroupConfig g = group("api", SourceType::Command, ContentType::Json);
	g.argv = {"echo", "{\"a\": "};
	g.metrics.push_back(metric("a", "$.a"));
	SourceRead read;
	read.content = "{\"a\": \n";
	read.exitStatus = 0;
	GroupResult r;
	r.group = "api";
	r.ok = false;
	r.error = "invalid JSON at line 2, column 0: unexpected token near end of file";
	std::string out = worker::explainReport(service(), g, read, r, nobody());
	CHECK_HAS(out, "The document does not parse: invalid JSON at line 2");
	CHECK_HAS(out, "  not run: the document does not parse\n");
	CHECK_HAS(out, "group api: invalid JSON at line 2, column 0");
}

TEST(Explain, FailedRead)
{
	GroupConfig g = group("fail", SourceType::Command, ContentType::Text);
	g.shell = true;
	g.source = "echo oops >&2; exit 3";
	g.metrics.push_back(metric("x", "(\\d+)"));
	SourceRead read;
	read.ok = false;
	read.exitStatus = 3;
	read.error = "command exited with status 3: oops";
	GroupResult r;
	r.group = "fail";
	r.ok = false;
	r.exitStatus = 3;
	r.error = read.error;
	std::string out = worker::explainReport(service(), g, read, r, nobody());
	CHECK_HAS(out, "source    command /bin/sh -c 'echo oops >&2; exit 3'\n");
	CHECK_HAS(out, "result    FAILED: command exited with status 3: oops\n");
	CHECK_HAS(out, "exit      3\n");
	CHECK_HAS(out, "-- data read: 0 lines, 0 bytes --");
	CHECK_HAS(out, "(nothing)\n");
	CHECK_HAS(out, "  not run: the read failed\n");
	CHECK_HAS(out, "-- errors (1) --");
	CHECK_HAS(out, "group fail: command exited with status 3: oops\n");

	read.exitStatus = 137;
	out = worker::explainReport(service(), g, read, r, nobody());
	CHECK_HAS(out, "exit      137 (killed by signal 9)\n");
}

TEST(Explain, LongDataIsCutWithWhatWasNotShown)
{
	GroupConfig g = group("big", SourceType::File, ContentType::Text);
	g.source = "/tmp/big";
	SourceRead read;
	for (int i = 1; i <= 100; i++)
		read.content += "line " + std::to_string(i) + "\n";
	GroupResult r;
	r.group = "big";
	std::string out = worker::explainReport(service(), g, read, r, nobody());
	CHECK_HAS(out, "-- data read: 100 lines, 792 bytes --");
	CHECK_HAS(out, "60 | line 60\n");
	CHECK_HAS_NOT(out, "line 61\n");
	// Lines 61..99: 39 lines of 8 bytes ("line NN\n"), and "line 100\n".
	CHECK_HAS(out, "... 40 more lines (321 bytes) not shown\n");

	// One long line: its start, then what is left of it.
	read.content = std::string(5000, 'x') + "\nnext\n";
	out = worker::explainReport(service(), g, read, r, nobody());
	CHECK_HAS(out, "1 | " + std::string(4096, 'x') + " ... (904 bytes more on this line)\n");
	CHECK_HAS(out, "... 1 more line (5 bytes) not shown\n");

	// Cut at max_output.
	g.maxOutput = 12;
	read.content = "abc\ndef\nghij";
	read.truncated = true;
	r.ok = false;
	r.error = "/tmp/big truncated at 12 bytes (max_output)";
	out = worker::explainReport(service(), g, read, r, nobody());
	CHECK_HAS(out, "read      12 bytes, TRUNCATED at max_output 12 bytes\n");
	CHECK_HAS(out, "3 | ghij\n(cut here at max_output)\n");
	CHECK_HAS(out, "group big: /tmp/big truncated at 12 bytes (max_output)\n");
}

TEST(Explain, BytesThatAreNotUtf8AndControlsAreEscaped)
{
	GroupConfig g = group("raw", SourceType::File, ContentType::Text);
	g.source = "/tmp/raw";
	g.metrics.push_back(metric("raw_value", R"(name=(\S+) v=(\d+))"));
	SourceRead read;
	read.content = "\x1b[31mred\x1b[0m caf\xc3\xa9 \xff\xfe\tTAB\r\n"
	    "name=b\xe9\x62\xe9 v=3\n\xc2\x9b" "2J\n"s + "nul\0here\n"s;
	GroupResult r;
	r.group = "raw";
	r.families.push_back(family("raw_value", MetricType::Gauge,
	    {{"", {{"name", "b\xef\xbf\xbd" "b\xef\xbf\xbd"}, {"q", "say \"hi\"\\\n"}}, 3, {}}}));
	std::string out = worker::explainReport(service(), g, read, r, nobody());
	CHECK_HAS(out, "1 | \\x1b[31mred\\x1b[0m caf\xc3\xa9 \\xff\\xfe\\tTAB\\r\n");
	CHECK_HAS(out, "2 | name=b\\xe9b\\xe9 v=3\n");
	CHECK_HAS(out, "3 | \\u009b2J\n");
	CHECK_HAS(out, "4 | nul\\0here\n");
	// The filter runs on repaired text, as the extractor's does.
	CHECK_HAS(out, "    #1 line 2: \"name=b\xef\xbf\xbd" "b\xef\xbf\xbd v=3\"\n");
	CHECK_HAS(out, "raw_value{name=\"b\xef\xbf\xbd" "b\xef\xbf\xbd\",q=\"say \\\"hi\\\"\\\\\\n\","
	    "team=\"core\"} 3\n");
	checkTerminalSafe(out);

	CHECK_EQUAL(std::string("a\\tb\\x1b\\\\\\\"\\n"), worker::explainEscape("a\tb\x1b\\\"\n",
	    Escape::Quoted));
	CHECK_EQUAL(std::string("a\\\"\\n"), worker::explainEscape("a\\\"\n", Escape::Line));
	CHECK_EQUAL(std::string("a\n\\x7f"), worker::explainEscape("a\n\x7f", Escape::Lines));
}

TEST(Explain, StaticAndImportedGroups)
{
	GroupConfig g = group("build_info", SourceType::Static, ContentType::Text);
	g.standalone = true;
	MetricConfig m = metric("app_build_info", "", MetricType::Info);
	m.staticValue = 1;
	g.metrics.push_back(m);
	SourceRead read;
	GroupResult r;
	r.group = "build_info";
	r.families.push_back(family("app_build_info", MetricType::Info,
	    {{"", {{"version", "1.2.3"}}, 1, {}}}));
	std::string out = worker::explainReport(service(), g, read, r, nobody());
	CHECK_HAS(out, "group     build_info (standalone metric)\n");
	CHECK_HAS(out, "source    static (nothing is read)\n");
	CHECK_HAS_NOT(out, "-- data read");
	CHECK_HAS(out, "app_build_info (info)\n  value    1\n  gave     1 sample\n");
	CHECK_HAS(out, "app_build_info{version=\"1.2.3\",team=\"core\"} 1\n");

	// prometheus: the families imported, whatever their type; samples
	// with their suffix and timestamp.
	GroupConfig p = group("node", SourceType::Http, ContentType::Prometheus);
	p.source = "http://127.0.0.1:9100/metrics";
	p.import.include = {"node_.*"};
	read.content = "node_load1 0.5\n";
	GroupResult ri;
	ri.group = "node";
	ri.families.push_back(family("node_load1", MetricType::Gauge, {{"", {}, 0.5, {}}}));
	ri.families.push_back(family("http_seconds", MetricType::Histogram,
	    {{"_bucket", {{"le", "+Inf"}}, 4, {}}, {"_sum", {}, 1.25, {}},
	    {"_count", {}, 4, 1700000000123}}));
	out = worker::explainReport(service(), p, read, ri, nobody());
	CHECK_HAS(out, "-- import --");
	CHECK_HAS(out, "include   node_.*\n");
	CHECK_HAS(out, "imported 2 families:\n  node_load1 (gauge): 1 sample\n"
	    "  http_seconds (histogram): 3 samples\n");
	CHECK_HAS(out, "http_seconds_bucket{le=\"+Inf\",team=\"core\"} 4\n");
	CHECK_HAS(out, "http_seconds_sum{team=\"core\"} 1.25\n");
	CHECK_HAS(out, "http_seconds_count{team=\"core\"} 4 1700000000123\n");
}

TEST(Explain, ChunksEndAtLinesAndCharacters)
{
	std::string report;
	for (int i = 0; i < 200; i++)
		report += "line " + std::to_string(i) + " caf\xc3\xa9\n";
	auto chunks = worker::explainChunks(report, 100);
	std::string joined;
	for (const auto &c : chunks) {
		CHECK_TRUE(c.size() <= 100);
		CHECK_TRUE(common::validUtf8(c));
		CHECK_EQUAL('\n', c.back());
		joined += c;
	}
	CHECK_EQUAL(report, joined);

	// No newline to end at: still whole characters.
	std::string wide;
	for (int i = 0; i < 100; i++)
		wide += "\xe2\x82\xac";   // U+20AC, 3 bytes
	chunks = worker::explainChunks(wide, 64);
	joined.clear();
	for (const auto &c : chunks) {
		CHECK_TRUE(c.size() <= 64);
		CHECK_TRUE(common::validUtf8(c));
		joined += c;
	}
	CHECK_EQUAL(wide, joined);
	CHECK_TRUE(worker::explainChunks("", 64).empty());
}

// A histogram read field by field shows each part's filter and matches.
TEST(Explain, MappedHistogramPartByPart)
{
	GroupConfig g = group("lat", SourceType::Command, ContentType::Json);
	g.source = "lat-stats";
	MetricConfig h = metric("lat_seconds", "");
	h.type = MetricType::Histogram;
	h.bucketFilters = {{0.5, "$.fast"}, {std::numeric_limits<double>::infinity(), "$.n"}};
	h.sumFilter = "$.sum";
	g.metrics.push_back(h);
	SourceRead read;
	read.content = R"({"fast": 3, "n": 4, "sum": 1.5})";
	GroupResult r;
	r.group = "lat";
	std::string out = worker::explainReport(service(), g, read, r, nobody());
	CHECK_HAS(out, "lat_seconds (histogram)\n  bucket le=\"0.5\"\n  filter   $.fast\n"
	    "  selected 1 node\n    $['fast'] = 3\n  bucket le=\"+Inf\"\n  filter   $.n\n");
	CHECK_HAS(out, "  sum\n  filter   $.sum\n  selected 1 node\n    $['sum'] = 1.5\n");
	CHECK_HAS_NOT(out, "  count\n");
}
