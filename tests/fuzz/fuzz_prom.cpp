// SPDX-License-Identifier: ISC
// Fuzz target: the Prometheus exposition parser and importer (content_type prometheus).
//
// Built two ways, as fuzz_frame.c is: a libFuzzer target with
// -DPME_LIBFUZZER -fsanitize=fuzzer, otherwise a meson test whose main()
// runs a bounded deterministic batch.  The seeds are a node_exporter
// exposition and an OpenMetrics one (tests/data/prometheus/) and small
// texts with every construct of both formats; mutations add what breaks
// parsers: cut lines, CRLF, NUL, invalid UTF-8, doubled HELP/TYPE lines,
// repeated labels, numbers in every spelling, many series and families;
// and some mutated texts are made OpenMetrics (empty lines dropped, "# EOF"
// added), so that the OpenMetrics parser accepts some and the importer and
// the store get what it returns.
//
// Each input is parsed as it comes (the format found from its last line),
// as the other format, and with small limits.  A parse that succeeds
// returns what the rest of pme can use: families with valid, distinct
// names, none empty, each sample's suffix one its type has, histogram
// buckets with le, label names valid and not reserved, no label twice in
// a sample, label values, help and unit valid UTF-8, no more series and
// families than the limits.  A parse that fails says "line L, column C:"
// with L and C inside the text, in valid UTF-8.
//
// The importer then runs on the same input, for the groups of a small
// configuration (prefixes, include and exclude, constant labels,
// honor_timestamps), and what it returns must travel as the supervisor
// receives it: encoded with encodeGroupResult, reassembled by
// GroupResultAssembler into the same families, and applied by
// MetricStore::apply() of a store built from that configuration without
// an error; an error there is what stops a worker.
#include <cmath>
#include <cstring>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/config_loader.hpp"
#include "common/group_result.hpp"
#include "common/log.hpp"
#include "common/utf8.hpp"
#include "daemon/metric_store.hpp"
#include "fuzz_extraction.hpp"
#include "fuzz_util.hpp"
#include "proto/frame.h"
#include "proto/message.h"
#include "worker/prom_import.hpp"
#include "worker/prom_text.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

using namespace pme;
using common::Family;
using common::MetricType;
using fuzz::broken;
using fuzz::check;

namespace {

// Outcomes, to show how deep a run went.
size_t parsed = 0, parsedOpenMetrics = 0, refused = 0, imported = 0, logLines = 0;

const char *const configText = R"(
exporter:
  interval: 5s
services:
  src:
    metric_prefix: src_
    labels: { role: fuzz }
    metric_groups:
      all:
        source_type: file
        source: /dev/null
        content_type: prometheus
        labels: { job: pme, instance: "a\"b\\c" }
        honor_timestamps: true
      some:
        source_type: file
        source: /dev/null
        content_type: prometheus
        prefix: some_
        include: ['node_.*', 'go_.*|x.*', 'c(_total)?', '.*_info']
        exclude: ['node_cpu.*', '.*_bucket']
  bare:
    metric_groups:
      raw:
        source_type: file
        source: /dev/null
        content_type: prometheus
)";

struct Setup {
	common::Config config;
	struct Importer {
		std::string service;
		std::string group;
		worker::PromImporter importer;
	};
	std::vector<Importer> importers;

	Setup()
	{
		// The store logs each family it refuses (a pmed name...): count
		// the lines instead of printing thousands.
		common::log::init("fuzz_prom", common::log::Sink::Callback, 0);
		common::log::setCallback([](int, const std::string &line) {
			logLines++;
			check(common::validUtf8(line), "a log line is not valid UTF-8");
		});
		auto c = common::loadConfigString(configText, "fuzz_prom.yml");
		if (!c) {
			std::fprintf(stderr, "fuzz_prom: bad configuration: %s\n",
			    c.error().front().str().c_str());
			std::abort();
		}
		config = std::move(*c);
		for (const auto &s : config.services)
			for (const auto &g : s.groups) {
				auto im = worker::PromImporter::compile(g, s.metricPrefix);
				if (!im) {
					std::fprintf(stderr, "fuzz_prom: group %s: %s\n",
					    g.key.c_str(), im.error().message.c_str());
					std::abort();
				}
				importers.push_back({s.name, g.key, std::move(*im)});
			}
	}
};

bool validName(const std::string &s, bool label)
{
	if (s.empty())
		return false;
	for (size_t i = 0; i < s.size(); i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		    (c == ':' && !label) || (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return !label || s.compare(0, 2, "__") != 0;
}

// The suffixes the supervisor accepts for a type (daemon/metric_store.cpp).
bool suffixAllowed(MetricType t, const std::string &sfx)
{
	switch (t) {
	case MetricType::Histogram:
		return sfx == "_bucket" || sfx == "_sum" || sfx == "_count";
	case MetricType::Summary:
		return sfx.empty() || sfx == "_sum" || sfx == "_count";
	default:
		return sfx.empty();
	}
}

// The names a family puts in an exposition.
std::vector<std::string> exported(const Family &f)
{
	std::set<std::string> sfx{""};
	for (const auto &s : f.samples)
		sfx.insert(s.suffix);
	std::vector<std::string> out;
	for (const auto &x : sfx)
		out.push_back(f.name + x);
	return out;
}

void checkFamilies(const std::vector<Family> &fs, const worker::PromParseLimits &limits)
{
	std::set<std::string> names;
	size_t series = 0;
	check(fs.size() <= limits.maxFamilies, "more families than the limit");
	for (const auto &f : fs) {
		check(validName(f.name, false), [&] {
			return "invalid family name " + fuzz::cLiteral(f.name, 80);
		});
		auto type = static_cast<uint8_t>(f.type);
		check(type >= PME_TYPE_COUNTER && type <= PME_TYPE_UNTYPED, "invalid type");
		check(common::validUtf8(f.help) && common::validUtf8(f.unit),
		    "help or unit is not valid UTF-8");
		check(!f.samples.empty(), "a family without a sample");
		for (const auto &n : exported(f))
			check(names.insert(n).second, [&] {
				return "two families export " + fuzz::cLiteral(n, 80);
			});
		for (const auto &s : f.samples) {
			series++;
			check(suffixAllowed(f.type, s.suffix), [&] {
				return "suffix " + s.suffix + " on a family of type " +
				    std::to_string(type);
			});
			bool le = false;
			std::set<std::string> labels;
			for (const auto &l : s.labels) {
				check(validName(l.name, true), [&] {
					return "invalid label name " + fuzz::cLiteral(l.name, 80);
				});
				check(common::validUtf8(l.value), "label value is not valid UTF-8");
				check(labels.insert(l.name).second, "a label twice in one sample");
				le = le || l.name == "le";
			}
			check(le || f.type != MetricType::Histogram || s.suffix != "_bucket",
			    "a histogram bucket without le");
		}
	}
	check(series <= limits.maxSeries, "more series than the limit");
}

void checkError(std::string_view text, const common::Error &e)
{
	const std::string &m = e.message;
	check(common::validUtf8(m), [&] { return "error is not UTF-8: " + fuzz::cLiteral(m); });
	unsigned long line = 0, column = 0;
	int used = 0;
	check(std::sscanf(m.c_str(), "line %lu, column %lu: %n", &line, &column, &used) == 2 &&
	    used > 0 && m.size() > static_cast<size_t>(used), [&] {
		return "error without its position: " + fuzz::cLiteral(m, 200);
	});
	size_t lines = 1;
	for (char c : text)
		lines += c == '\n';
	check(line >= 1 && line <= lines && column >= 1 && column <= text.size() + 1, [&] {
		return "position outside the text: " + fuzz::cLiteral(m, 200);
	});
}

void runImporters(Setup &setup, std::string_view text)
{
	daemon::MetricStore store(setup.config);
	for (auto &im : setup.importers) {
		fuzz::context = im.group;
		auto r = im.importer.import(text);
		if (!r)
			continue; // the parse error was checked above
		imported++;
		const std::string &prefix = im.importer.prefix();
		for (const auto &f : r->families) {
			check(f.name.compare(0, prefix.size(), prefix) == 0,
			    "a name without the prefix");
			check(f.name.compare(0, 4, "pme_") != 0, "an imported pme_ name");
			check(!f.help.empty(), "an imported family without help");
		}
		for (const auto &e : r->errors)
			check(common::validUtf8(e), "an import error is not valid UTF-8");
		common::GroupResult result;
		result.group = im.group;
		result.families = std::move(r->families);
		common::GroupResult back = fuzz::roundTrip(result);
		// Twice, as two cycles: the second finds the fragments made by
		// the first.
		for (double now : {1000.0, 1005.0}) {
			auto applied = store.apply(im.service, back, now);
			check(applied.has_value(), [&] {
				return "the supervisor refuses an imported result: " +
				    applied.error().message;
			});
		}
	}
	check(store.exposition() != nullptr, "no exposition");
	fuzz::context = {};
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static Setup setup;
	fuzz::targetName = "fuzz_prom";
	const std::string_view text(reinterpret_cast<const char *>(data), size);
	fuzz::currentInput = text;
	try {
		worker::PromParseLimits small;
		small.maxSeries = 50;
		small.maxFamilies = 7;
		worker::PromFormat found = worker::detectPromFormat(text);
		worker::PromFormat other = found == worker::PromFormat::Text ?
		    worker::PromFormat::OpenMetrics : worker::PromFormat::Text;
		bool anyParsed = false;
		for (auto [format, limits] : {std::pair{found, worker::PromParseLimits{}},
		    std::pair{other, worker::PromParseLimits{}}, std::pair{found, small}}) {
			auto r = worker::parsePromText(text, format, limits);
			if (r) {
				parsed++;
				parsedOpenMetrics += format == worker::PromFormat::OpenMetrics;
				anyParsed = true;
				checkFamilies(*r, limits);
			} else {
				refused++;
				checkError(text, r.error());
			}
		}
		if (anyParsed)
			runImporters(setup, text);
	} catch (const std::bad_alloc &) {
		// libFuzzer's -rss_limit_mb: exhaustion is not what is tested.
	} catch (const std::exception &e) {
		broken(std::string("exception: ") + e.what());
	}
	return 0;
}

#ifndef PME_LIBFUZZER

namespace {

const std::vector<std::string> embeddedSeeds = {
	"# HELP x Some \\\\ help\\nwith lines.\n# TYPE x gauge\n"
	"x{a=\"1\",b=\"\\\"q\\\"\"} 1.5 1700000000000\n"
	"x{a=\"2\"}\t-Inf\ny+1\n  # comment\n\n",
	"# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
	"h_sum 0.3\nh_count 2\n"
	"# TYPE s summary\ns{quantile=\"0.5\"} NaN\ns_sum 1e3\ns_count 4\n",
	"x { a = \"b\" , } 1\nx{a=\"c\" b=\"d\"}2\nz{l=\"two\nlines\"} 3\n",
	"# TYPE c counter\n# HELP c Requests.\nc_total{code=\"200\"} 1027 1700000000.5 "
	"# {trace_id=\"a\"} 1 1.5\nc_created{code=\"200\"} 1.7e9\n"
	"# TYPE i info\ni_info{v=\"1.2\"} 1\n# TYPE st stateset\nst{st=\"on\"} 1\n"
	"# TYPE q gaugehistogram\nq_bucket{le=\"+Inf\"} 2\nq_gcount 2\nq_gsum 1\n"
	"# TYPE t_seconds gauge\n# UNIT t_seconds seconds\nt_seconds -1 -5\n# TYPE u unknown\nu 0\n"
	"# EOF\n",
	"node_cpu_seconds_total{cpu=\"0\"} 1\nnode_load1 2\ngo_goroutines 3\nx_bucket{le=\"1\"} 4\n"
	"pme_up 1\nprocess_cpu_seconds_total 5\nbuild_info 1\n",
	"x 1\r\n# HELP y \xc3\xa9t\xc3\xa9\ny{a=\"\xe6\x97\xa5\"} 2\n",
};

// What a token of an exposition may become.
const std::vector<std::string> dict = {
	"# HELP ", "# TYPE ", "# UNIT ", "# EOF\n", "#", " # {", "{", "}", "=\"", "\",", "\"",
	"\\\\", "\\\"", "\\n", "\\", ",", " ", "\t", "\n", "\r\n", "counter", "gauge", "histogram",
	"summary", "untyped", "unknown", "info", "stateset", "gaugehistogram", "_total",
	"_bucket", "_sum", "_count", "_created", "_info", "_gcount", "_gsum", "le=\"+Inf\"",
	"quantile=\"0.5\"", "NaN", "+Inf", "-Inf", "inf", "Infinity", "nan", "1e308", "1e309",
	"-1e-400", "0x1p3", "1_000", ".5", "5.", "-0", "1700000000000", "1700000000.123",
	"9223372036854775808", "__name__", "pme_", "a:b", "9x", std::string(1, '\0'), "\xc3",
	"\xed\xa0\x80", "\xf4\x90\x80\x80", "\xef\xbb\xbf",
};

std::string fixture(const char *name)
{
	std::string text = fuzz::sourceFile(std::string("tests/data/prometheus/") + name);
	if (text.empty()) {
		std::fprintf(stderr, "fuzz_prom: cannot read tests/data/prometheus/%s "
		    "(is PME_SOURCE_ROOT set?)\n", name);
		std::exit(1);
	}
	return text;
}

// Line level edits: repeated lines make second HELP/TYPE lines and split
// families, moved lines a TYPE after samples, many lines the limits.
void mutateLines(std::string &s, fuzz::Rng &rng)
{
	size_t a = s.empty() ? 0 : rng.below(s.size());
	size_t start = s.rfind('\n', a);
	start = start == std::string::npos ? 0 : start + 1;
	size_t end = s.find('\n', a);
	end = end == std::string::npos ? s.size() : end + 1;
	std::string line = s.substr(start, end - start);
	switch (rng.below(5)) {
	case 0:
		s.insert(rng.below(s.size() + 1), line);
		break;
	case 1:
		s.erase(start, end - start);
		s.insert(s.empty() ? 0 : rng.below(s.size()), line);
		break;
	case 2:
		if (rng.chance(10)) {
			std::string many;
			size_t n = 40 + rng.below(30);
			for (size_t i = 0; i < n; i++)
				many += (rng.chance(50) ? "m" : "m" + std::to_string(i % 9)) +
				    "{i=\"" + std::to_string(i) + "\"} " + std::to_string(i) + "\n";
			s.insert(start, many);
		}
		break;
	case 3: {
		// A label repeated, or a second label set.
		size_t brace = line.find('{');
		if (brace != std::string::npos)
			s.insert(start + brace + 1,
			    rng.chance(50) ? "a=\"1\",a=\"2\"," : "b=\"x\",");
		break;
	}
	default:
		s.erase(start, end - start);
		break;
	}
}

// The text with its empty lines dropped and "# EOF" at the end.
std::string asOpenMetrics(const std::string &s)
{
	std::string out;
	size_t start = 0;
	while (start < s.size()) {
		size_t end = s.find('\n', start);
		end = end == std::string::npos ? s.size() : end;
		if (end > start)
			out.append(s, start, end - start).push_back('\n');
		start = end + 1;
	}
	return out + "# EOF\n";
}

} // namespace

int main(int argc, char **argv)
{
	fuzz::targetName = "fuzz_prom";
	std::optional<long> batch = fuzz::runArgs(argc, argv, LLVMFuzzerTestOneInput, 1000);
	if (!batch)
		return 0;
	const long runs = *batch;
	fuzz::Rng rng(0x13198a2e03707344ULL);
	std::vector<std::string> seeds = embeddedSeeds;
	for (const char *name : {"node_exporter.prom", "openmetrics.txt"})
		seeds.push_back(fixture(name));

	auto run = [](const std::string &s) {
		LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(s.data()), s.size());
	};
	for (size_t k = 0; k < seeds.size(); k++) {
		fuzz::saveSeed(seeds[k]);
		run(seeds[k]);
		// Cut everywhere: partial lines and tokens, split UTF-8; the
		// fixtures every few bytes.
		size_t step = k < embeddedSeeds.size() ? 1 : 97;
		for (size_t len = 0; len < seeds[k].size(); len += step)
			run(seeds[k].substr(0, len));
	}
	for (long i = 0; i < runs; i++) {
		std::string input;
		if (rng.chance(10)) {
			size_t len = rng.below(300);
			for (size_t j = 0; j < len; j++)
				input += static_cast<char>(rng.next());
		} else {
			input = rng.pick(seeds);
			if (rng.chance(20))
				input += rng.pick(seeds);
			for (size_t n = rng.below(3); n > 0; n--)
				mutateLines(input, rng);
			// Line edits alone keep more inputs parsable.
			if (rng.chance(70))
				fuzz::mutateBytes(input, rng, dict, rng.pick(seeds), 1 << 18);
			// Make some OpenMetrics, which only a final # EOF does, and
			// without the empty lines it refuses.
			if (rng.chance(30))
				input = asOpenMetrics(input);
		}
		run(input);
	}
	std::printf("fuzz_prom: %zu seeds, their cuts and %ld random or mutated texts survived "
	    "(%zu parses, %zu of them OpenMetrics, %zu refusals, %zu imports, %zu lines logged "
	    "by the store)\n", seeds.size(), runs, parsed, parsedOpenMetrics, refused, imported,
	    logLines);
	return 0;
}

#endif
