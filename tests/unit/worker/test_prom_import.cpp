// SPDX-License-Identifier: ISC
// Content type prometheus: selection, renaming, labels and timestamps of an imported exposition.
#include <string>

#include "common/group_result.hpp"
#include "worker/prom_import.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme;
using common::Family;
using common::GroupConfig;
using common::MetricType;
using worker::Imported;
using worker::PromImporter;

namespace {

const char *const kExposition =
    "# HELP node_load1 1m load average.\n"
    "# TYPE node_load1 gauge\n"
    "node_load1 0.5 1700000000000\n"
    "# TYPE node_load15 gauge\n"
    "node_load15 0.25\n"
    "# TYPE node_cpu_seconds_total counter\n"
    "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 100\n"
    "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 20\n"
    "# TYPE http_duration_seconds histogram\n"
    "http_duration_seconds_bucket{le=\"1\"} 1\n"
    "http_duration_seconds_bucket{le=\"+Inf\"} 2\n"
    "http_duration_seconds_sum 1.5\n"
    "http_duration_seconds_count 2\n"
    "go_goroutines{job=\"source\"} 7\n";

GroupConfig group(std::vector<std::string> include = {}, std::vector<std::string> exclude = {})
{
	GroupConfig g;
	g.key = "import";
	g.contentType = common::ContentType::Prometheus;
	g.import.include = std::move(include);
	g.import.exclude = std::move(exclude);
	return g;
}

PromImporter compile(const GroupConfig &g, const std::string &prefix = "")
{
	auto im = PromImporter::compile(g, prefix);
	if (!im)
		FAIL(("compile failed: " + im.error().message).c_str());
	return std::move(*im);
}

Imported importText(const PromImporter &im, std::string_view text = kExposition)
{
	auto r = im.import(text);
	if (!r)
		FAIL(("import failed: " + r.error().message).c_str());
	return std::move(*r);
}

std::string names(const Imported &r)
{
	std::string out;
	for (const auto &f : r.families)
		out += (out.empty() ? "" : " ") + f.name;
	return out;
}

const Family &family(const Imported &r, const std::string &name)
{
	for (const auto &f : r.families)
		if (f.name == name)
			return f;
	FAIL(("no family " + name).c_str());
	return r.families.front();
}

std::string label(const common::Sample &s, const std::string &name)
{
	for (const auto &l : s.labels)
		if (l.name == name)
			return l.value;
	return "<none>";
}

} // namespace

TEST_GROUP(PromImport) {};

TEST(PromImport, EverythingWithoutSettings)
{
	Imported r = importText(compile(group()));
	STRCMP_EQUAL("node_load1 node_load15 node_cpu_seconds_total http_duration_seconds "
	    "go_goroutines", names(r).c_str());
	LONGS_EQUAL(0, r.errors.size());
	CHECK(family(r, "http_duration_seconds").type == MetricType::Histogram);
	LONGS_EQUAL(4, family(r, "http_duration_seconds").samples.size());
}

TEST(PromImport, ServiceAndGroupPrefixes)
{
	GroupConfig g = group();
	g.import.prefix = "host_";
	PromImporter im = compile(g, "svc_");
	STRCMP_EQUAL("svc_host_", im.prefix().c_str());
	Imported r = importText(im);
	STRCMP_EQUAL("svc_host_node_load1 svc_host_node_load15 svc_host_node_cpu_seconds_total "
	    "svc_host_http_duration_seconds svc_host_go_goroutines", names(r).c_str());
	// The source's help is kept; without one, the help is the name.
	STRCMP_EQUAL("1m load average.", family(r, "svc_host_node_load1").help.c_str());
	STRCMP_EQUAL("svc_host_node_load15", family(r, "svc_host_node_load15").help.c_str());
	// Suffixes stay on the samples.
	const Family &h = family(r, "svc_host_http_duration_seconds");
	STRCMP_EQUAL("_bucket", h.samples[0].suffix.c_str());
}

TEST(PromImport, IncludeIsAnchoredAtBothEnds)
{
	// "node_load1" does not take node_load15; alternatives are anchored as
	// a whole.
	Imported r = importText(compile(group({"node_load1", "go_.*|http_duration_seconds"})));
	STRCMP_EQUAL("node_load1 http_duration_seconds go_goroutines", names(r).c_str());
	r = importText(compile(group({"load"})));
	STRCMP_EQUAL("", names(r).c_str());
	r = importText(compile(group({"node_.*"})));
	STRCMP_EQUAL("node_load1 node_load15 node_cpu_seconds_total", names(r).c_str());
}

TEST(PromImport, ExcludeWinsOverInclude)
{
	Imported r = importText(compile(group({"node_.*"}, {"node_load.*"})));
	STRCMP_EQUAL("node_cpu_seconds_total", names(r).c_str());
	r = importText(compile(group({}, {"node_load1", "go_goroutines"})));
	STRCMP_EQUAL("node_load15 node_cpu_seconds_total http_duration_seconds", names(r).c_str());
}

TEST(PromImport, PatternsSeeTheSourceNamesBeforeThePrefix)
{
	GroupConfig g = group({"node_load1", "http_duration_seconds"}, {"svc_.*"});
	g.import.prefix = "x_";
	Imported r = importText(compile(g, "svc_"));
	// Histograms by their family name, not by _bucket.
	STRCMP_EQUAL("svc_x_node_load1 svc_x_http_duration_seconds", names(r).c_str());
	r = importText(compile(group({"http_duration_seconds_bucket"})));
	STRCMP_EQUAL("", names(r).c_str());
	// OpenMetrics counters with _total, infos with _info.
	const char *om = "# TYPE reqs counter\nreqs_total 1\n# TYPE build info\n"
	    "build_info{v=\"1\"} 1\n# EOF\n";
	r = importText(compile(group({"reqs_total", "build_info"})), om);
	STRCMP_EQUAL("reqs_total build_info", names(r).c_str());
	r = importText(compile(group({"reqs", "build"})), om);
	STRCMP_EQUAL("", names(r).c_str());
}

TEST(PromImport, GroupLabelsOnEverySampleAndTheirValueWins)
{
	GroupConfig g = group({"go_goroutines", "node_load1"});
	g.labels = {{"job", "pme"}, {"env", "prod"}};
	Imported r = importText(compile(g));
	const auto &go = family(r, "go_goroutines").samples[0];
	// The source's job="source" is replaced, not repeated.
	LONGS_EQUAL(2, go.labels.size());
	STRCMP_EQUAL("pme", label(go, "job").c_str());
	STRCMP_EQUAL("prod", label(go, "env").c_str());
	const auto &load = family(r, "node_load1").samples[0];
	STRCMP_EQUAL("job", load.labels[0].name.c_str());
	STRCMP_EQUAL("env", load.labels[1].name.c_str());
}

TEST(PromImport, TimestampsOnlyWithHonorTimestamps)
{
	Imported r = importText(compile(group({"node_load1"})));
	CHECK_FALSE(r.families[0].samples[0].timestampMs);
	GroupConfig g = group({"node_load1"});
	g.import.honorTimestamps = true;
	r = importText(compile(g));
	CHECK(r.families[0].samples[0].timestampMs == 1700000000000);
	g.import.include.clear();
	r = importText(compile(g), "x 1 1700000000.5\n# EOF\n");
	LONGS_EQUAL(1, r.families.size());
	CHECK(r.families[0].samples[0].timestampMs == 1700000000500);
}

TEST(PromImport, PmeNamesAreNotImported)
{
	const char *text = "pme_source_up 1\npme_build_info{version=\"x\"} 1\nother 2\n";
	Imported r = importText(compile(group()), text);
	STRCMP_EQUAL("other", names(r).c_str());
	LONGS_EQUAL(2, r.errors.size());
	STRCMP_EQUAL("family pme_source_up is not exported: names starting with pme_ are "
	    "reserved for pme's own metrics (set import.prefix, or exclude it)",
	    r.errors[0].c_str());
	// A prefix that makes pme_ out of a source name is caught too; one that
	// puts them elsewhere makes them importable.
	GroupConfig g = group();
	g.import.prefix = "pm";
	r = importText(compile(g), "e_x 1\n");
	STRCMP_EQUAL("", names(r).c_str());
	LONGS_EQUAL(1, r.errors.size());
	r = importText(compile(group(), "other_"), text);
	STRCMP_EQUAL("other_pme_source_up other_pme_build_info other_other", names(r).c_str());
	// Excluded families are not errors.
	r = importText(compile(group({}, {"pme_.*"})), text);
	LONGS_EQUAL(0, r.errors.size());
}

TEST(PromImport, ParseErrorsFailTheImport)
{
	auto r = compile(group()).import("ok 1\nbad{a=\"1\",a=\"2\"} 1\n");
	CHECK_FALSE(r);
	STRCMP_EQUAL("line 2, column 11: label a appears twice in one sample",
	    r.error().message.c_str());
}

TEST(PromImport, BadPatternsFailToCompile)
{
	auto im = PromImporter::compile(group({"node_(load"}), "");
	CHECK_FALSE(im);
	CHECK(im.error().message.rfind("include pattern 'node_(load': ", 0) == 0);
	im = PromImporter::compile(group({}, {"["}), "");
	CHECK_FALSE(im);
	CHECK(im.error().message.rfind("exclude pattern '[': ", 0) == 0);
	im = PromImporter::compile(group(), "9bad");
	CHECK_FALSE(im);
}

TEST(PromImport, FamiliesTheProtocolCannotCarryAreLeftOut)
{
	std::string many = "many{";
	for (int i = 0; i < 65; i++)
		many += "l" + std::to_string(i) + "=\"v\",";
	many += "} 1\n";
	std::string longName = "x" + std::string(260, 'y') + " 1\n";
	std::string bigLabel = "big{l=\"" + std::string(70000, 'v') + "\"} 1\n";
	std::string histogram = "# TYPE h" + std::string(250, 'h') + " histogram\n"
	    "h" + std::string(250, 'h') + "_count 1\n";
	Imported r = importText(compile(group()),
	    many + longName + bigLabel + histogram + "fine 1\n");
	STRCMP_EQUAL("fine", names(r).c_str());
	LONGS_EQUAL(4, r.errors.size());
	STRCMP_EQUAL("family many is not exported: a sample has 65 labels (at most 64)",
	    r.errors[0].c_str());
	CHECK(r.errors[1].find("the name is longer than 256 bytes") != std::string::npos);
	CHECK(r.errors[2].find("does not fit in one 65536-byte frame") != std::string::npos);
	// With _bucket, a 251-byte histogram name is too long.
	CHECK(r.errors[3].find("the name is longer than 256 bytes") != std::string::npos);
	// Group labels count.
	GroupConfig g = group();
	g.labels = {{"extra", "1"}};
	std::string sixtyFour = "x{";
	for (int i = 0; i < 64; i++)
		sixtyFour += "l" + std::to_string(i) + "=\"v\",";
	sixtyFour += "} 1\n";
	LONGS_EQUAL(1, importText(compile(group()), sixtyFour).families.size());
	LONGS_EQUAL(0, importText(compile(g), sixtyFour).families.size());
}

TEST(PromImport, LongHelpIsCut)
{
	std::string text = "# HELP x " + std::string(100000, 'h') + "\nx 1\n";
	Imported r = importText(compile(group()), text);
	LONGS_EQUAL(1, r.families.size());
	CHECK(r.families[0].help.size() <= 16 * 1024);
	CHECK(r.families[0].help.size() > 16000);
}

TEST(PromImport, WhatIsImportedCanBeSent)
{
	GroupConfig g = group();
	g.labels = {{"job", "pme"}};
	g.import.honorTimestamps = true;
	Imported r = importText(compile(g, "svc_"), std::string(kExposition) +
	    "z{a=\"\xc3\xa9\\n\"} NaN 5\n");
	common::GroupResult result;
	result.group = "import";
	result.families = r.families;
	size_t frames = 0;
	auto sent = common::encodeGroupResult(result, [&](const uint8_t *, size_t) {
		frames++;
		return common::Result<void>();
	});
	CHECK_TRUE(sent.has_value());
	CHECK(frames >= 3);
}

TEST(PromImport, SettingsFromTheConfigAreCompiledOnce)
{
	// The importer is reused every cycle: the same input gives the same
	// result, and a limit set for a test applies.
	PromImporter im = compile(group({"node_.*"}));
	Imported a = importText(im), b = importText(im);
	STRCMP_EQUAL(names(a).c_str(), names(b).c_str());
	worker::PromParseLimits limits;
	limits.maxSeries = 2;
	im.setLimits(limits);
	auto r = im.import(kExposition);
	CHECK_FALSE(r);
	STRCMP_EQUAL("line 7, column 1: more than 2 series", r.error().message.c_str());
}

TEST(PromImport, OneResultStaysWithinWhatTheSupervisorTakes)
{
	// 100,000 series are the most one result may carry: the family that
	// would exceed them, and those after it, are left out with one error.
	std::string text;
	text.reserve(2u << 20);
	for (int i = 0; i < 99999; i++)
		text += "a{i=\"" + std::to_string(i) + "\"} 1\n";
	text += "b{i=\"1\"} 1\nb{i=\"2\"} 2\nc 3\n";
	Imported r = importText(compile(group()), text);
	STRCMP_EQUAL("a", names(r).c_str());
	LONGS_EQUAL(99999, r.families[0].samples.size());
	LONGS_EQUAL(1, r.errors.size());
	CHECK(r.errors[0].rfind("families are missing: the result of a group carries at most "
	    "100000 series, 10000 families", 0) == 0);
	// Exactly 100,000 pass, and excluded families do not count.
	r = importText(compile(group({}, {"b"})), text);
	STRCMP_EQUAL("a c", names(r).c_str());
	LONGS_EQUAL(0, r.errors.size());
	// And 10,000 families.
	text.clear();
	for (int i = 0; i < 10001; i++)
		text += "f" + std::to_string(i) + " 1\n";
	r = importText(compile(group()), text);
	LONGS_EQUAL(10000, r.families.size());
	LONGS_EQUAL(1, r.errors.size());
}
