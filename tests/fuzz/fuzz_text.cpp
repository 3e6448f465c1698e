// SPDX-License-Identifier: ISC
// Fuzz target: the worker's text extraction (PCRE2 filters, capture templates, values).
//
// Built two ways, as fuzz_frame.c is: a libFuzzer target with
// -DPME_LIBFUZZER -fsanitize=fuzzer, otherwise a meson test whose main()
// runs a bounded deterministic batch.  The filters are fixed and realistic
// (df -P, /proc/meminfo, /proc/loadavg, labels from named captures, value
// templates, a values mapping, empty matches, CRLF newline conventions,
// Unicode properties); the text is what varies: random bytes, and mutations
// of real outputs with invalid UTF-8, NUL bytes, CRs, duplicated lines and
// numbers in every awkward form.
//
// What a worker extracts is sent to the supervisor, which stops a worker
// whose frames it cannot decode.  So beyond not crashing: a family that
// extract() returns has the metric's name, type and labels in order, at
// most kMaxSeriesPerMetric samples told apart by their labels, label values
// that are valid UTF-8 and at most kMaxLabelValue bytes; and every outcome
// (the family, the metric error, the value_on_error family) encodes with
// encodeGroupResult() and reassembles, with GroupResultAssembler, into what
// was encoded.
#include <cmath>
#include <cstring>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/group_result.hpp"
#include "fuzz_util.hpp"
#include "proto/frame.h"
#include "proto/message.h"
#include "worker/text_extractor.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

using namespace pme;
using common::Family;
using common::MetricConfig;
using common::MetricType;
using fuzz::broken;
using fuzz::check;
using worker::TextExtractor;

namespace {

size_t families = 0, metricErrors = 0; // outcomes, to show how deep a run went

struct Pattern {
	MetricConfig metric;
	bool multiline;
};

MetricConfig metric(const std::string &name, const std::string &filter, common::Pairs labels = {},
    std::optional<std::string> value = std::nullopt)
{
	MetricConfig m;
	m.key = name;
	m.name = "fuzz_" + name;
	m.baseName = m.name;
	m.description = "Fuzzed " + name;
	m.filter = filter;
	m.labels = std::move(labels);
	m.valueTemplate = std::move(value);
	return m;
}

std::vector<Pattern> patterns()
{
	std::vector<Pattern> p;
	MetricConfig df = metric("df_used",
	    R"(^(?<device>/\S+)\s+(?<size>\d+)\s+(?<used>\d+)\s+)"
	    R"((?<avail>\d+)\s+(?<pct>\d+)%\s+(?<mount>.+)$)",
	    {{"device", "${device}"}, {"mountpoint", "${mount}"}}, "${used}");
	df.scale = 1024;
	p.push_back({df, true});

	MetricConfig mem = metric("meminfo", R"(^(\w+):\s+(\d+) kB$)", {{"field", "$1"}}, "$2");
	mem.scale = 1024;
	mem.valueOnError = -1;
	p.push_back({mem, true});

	p.push_back({metric("loadavg", R"((?<value>\d+)/(?<total>\d+))"), false});
	p.push_back({metric("load1", R"(^(\S+))"), false});

	// Labels from named captures with literals and $$ around them, and a
	// values mapping that an empty value hits.
	MetricConfig kv = metric("state", R"((?<key>[^=\s]+)=(?<val>\S*))",
	    {{"key", "${key}"}, {"note", "$$${key}-$1 ${2}$"}, {"kind", "static"}}, "${val}");
	kv.values = {{"UP", 1}, {"DOWN", 0}, {"", -1}, {"caf\xc3\xa9", 0.5}};
	kv.valueOnError = std::nan("");
	p.push_back({kv, false});

	// A value built from pieces.
	p.push_back({metric("pieces", R"((\d+)\.(\d+))", {{"whole", "$1"}}, "$2.$1"), false});

	// Any line as a label: arbitrary text, long values, duplicates.
	p.push_back({metric("lines", R"(^(.*)$)", {{"line", "$1"}}, "1"), true});

	// Empty matches everywhere, anchored and not.
	p.push_back({metric("empty", R"(x*)", {{"x", "$0"}}, "1"), false});
	p.push_back({metric("empty_lines", R"(^(\S*)$)", {{"line", "$1"}}, "1"), true});

	// Newline conventions set by the pattern: CR, LF, CRLF, any.
	p.push_back({metric("crlf", R"((*CRLF)^(\S*)$)", {{"l", "$1"}}, "1"), true});
	p.push_back({metric("anycrlf", R"((*ANYCRLF)^(.?)(\d*)$)", {{"c", "$1"}}, "$2"), true});
	p.push_back({metric("any_newline", R"((*ANY)$)", {}, "1"), true});
	p.push_back({metric("cr", R"((*CR)^)", {{"n", "x"}}, "0"), true});

	// Unicode: letters in any script, grapheme clusters, \R.
	p.push_back({metric("city", R"((?<city>\p{L}+|\S+):\s*(?<value>\S+))", {{"city", "${city}"}}),
	    false});
	p.push_back({metric("grapheme", R"((\X)(\X)?\R)", {{"a", "$1"}, {"b", "$2"}}, "7"), false});

	MetricConfig info = metric("version_info", R"((?<name>\S+) version (?<v>\S+))",
	    {{"name", "${name}"}, {"version", "${v}"}}, "1");
	info.type = MetricType::Info;
	p.push_back({info, false});

	MetricConfig counter = metric("requests_total", R"(requests (\d+))");
	counter.type = MetricType::Counter;
	p.push_back({counter, true});

	// Lookbehind, \K, and a possessive loop: matches that do not start
	// where the scan is.
	p.push_back({metric("after_nl", R"((?<=\n)(\d+))", {{"at", "x$1"}}), false});
	p.push_back({metric("keep", R"(v=\K(\d+))"), false});
	p.push_back({metric("backtrack", R"(^(\w+\s?)*$)", {}, "1"), false});
	return p;
}

struct Compiled {
	std::vector<TextExtractor> extractors;

	Compiled()
	{
		for (const auto &p : patterns()) {
			auto x = TextExtractor::compile(p.metric, p.multiline);
			if (!x) {
				std::fprintf(stderr, "fuzz_text: pattern of %s does not compile: %s\n",
				    p.metric.name.c_str(), x.error().message.c_str());
				std::abort();
			}
			extractors.push_back(std::move(*x));
		}
	}
};

bool sameBits(double a, double b)
{
	uint64_t x, y;
	std::memcpy(&x, &a, sizeof(x));
	std::memcpy(&y, &b, sizeof(y));
	return x == y || (std::isnan(a) && std::isnan(b));
}

// Encode, reassemble as the supervisor does, and compare.
void roundTrip(const common::GroupResult &result)
{
	common::GroupResultAssembler assembler;
	std::optional<common::GroupResult> back;
	auto sink = [&](const uint8_t *data, size_t len) -> common::Result<void> {
		pme_proto_decoder dec;
		if (pme_proto_decoder_init(&dec, PME_PROTO_MAX_PAYLOAD) != 0)
			std::abort();
		size_t took = pme_proto_decoder_feed(&dec, data, len);
		pme_proto_frame f;
		int rc = pme_proto_decoder_next(&dec, &f);
		check(took == len && rc == 1, [&] {
			return std::string("the decoder refuses an encoded frame: ") +
			    pme_proto_strerror(rc);
		});
		auto r = assembler.feed(f);
		pme_proto_decoder_free(&dec);
		check(r.has_value(), [&] {
			return "the assembler refuses an encoded frame: " + r.error().message;
		});
		if (*r)
			back = std::move(**r);
		return {};
	};
	auto encoded = common::encodeGroupResult(result, sink);
	check(encoded.has_value(), [&] {
		return "encodeGroupResult fails: " + encoded.error().message;
	});
	check(back.has_value(), "no result came out of the assembler");
	check(back->families.size() == result.families.size(), "families differ after decoding");
	for (size_t i = 0; i < result.families.size(); i++) {
		const Family &a = result.families[i], &b = back->families[i];
		check(a.name == b.name && a.type == b.type && a.help == b.help &&
		    a.samples.size() == b.samples.size(), "a family differs after decoding");
		for (size_t j = 0; j < a.samples.size(); j++)
			check(a.samples[j].suffix == b.samples[j].suffix &&
			    a.samples[j].labels == b.samples[j].labels &&
			    sameBits(a.samples[j].value, b.samples[j].value),
			    "a sample differs after decoding");
	}
	check(back->metricErrors == result.metricErrors, "metric errors differ after decoding");
}

void checkFamily(const TextExtractor &x, const Family &f)
{
	const MetricConfig &m = x.metric();
	check(f.name == m.name && f.type == m.type, "family name or type changed");
	check(!f.samples.empty(), "success without a sample");
	check(f.samples.size() <= worker::kMaxSeriesPerMetric, "more than kMaxSeriesPerMetric");
	std::set<std::vector<std::string>> seen;
	for (const auto &s : f.samples) {
		check(s.suffix.empty(), "a suffix on a sample read from text");
		check(s.labels.size() == m.labels.size(), "label count differs from the config");
		for (size_t i = 0; i < s.labels.size(); i++) {
			const auto &l = s.labels[i];
			check(l.name == m.labels[i].first, "labels out of order");
			check(pme_proto_valid_utf8(l.value.data(), l.value.size()), [&] {
				return "label " + l.name + " is not valid UTF-8: " +
				    fuzz::cLiteral(l.value, 200);
			});
			check(l.value.size() <= worker::kMaxLabelValue, [&] {
				return "label " + l.name + " longer than kMaxLabelValue";
			});
		}
		std::vector<std::string> values;
		for (const auto &l : s.labels)
			values.push_back(l.value);
		check(seen.insert(std::move(values)).second, "two samples with the same labels");
	}
	common::GroupResult r;
	r.group = "text";
	r.families.push_back(f);
	roundTrip(r);
}

void checkError(const TextExtractor &x, const common::Error &e)
{
	const MetricConfig &m = x.metric();
	check(!e.message.empty(), "a metric error without a message");
	check(pme_proto_valid_utf8(e.message.data(), e.message.size()), [&] {
		return "the metric error is not valid UTF-8: " + fuzz::cLiteral(e.message, 300);
	});
	common::GroupResult r;
	r.group = "text";
	r.ok = true;
	r.metricErrors.emplace_back(m.name, e.message);
	if (m.valueOnError)
		r.families.push_back(worker::valueOnErrorFamily(m));
	roundTrip(r);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static Compiled compiled;
	fuzz::targetName = "fuzz_text";
	const std::string_view text(reinterpret_cast<const char *>(data), size);
	fuzz::currentInput = text;
	try {
		for (auto &x : compiled.extractors) {
			fuzz::context = x.metric().name;
			auto f = x.extract(text);
			if (f) {
				families++;
				checkFamily(x, *f);
			} else {
				metricErrors++;
				checkError(x, f.error());
			}
		}
		fuzz::context = {};
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
	"web=UP db=DOWN cache= x=caf\xc3\xa9 y=7 z=-1.5e3\n",
	"nginx version 1.25.3\nopenssl version 3.0.11\n",
	"requests 10\r\nrequests 11\r\n\r\nv=42 v=43\n",
	"Z\xc3\xbcrich: 5\n\xd0\x9c\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb0: 7\n"
	"\xe6\x9d\xb1\xe4\xba\xac: 9\ne\xcc\x81\r\n\xf0\x9f\x87\xab\xf0\x9f\x87\xb7\n",
	"12.5 3.25\n1.0\n\n\n",
	"a\rb\r\nc\n\r\xc2\x85\xe2\x80\xa8" "d",
};

// What a number or a word in the text may become.
const std::vector<std::string> dict = {
	"NaN", "nan", "+Inf", "-Inf", "inf", "1e309", "-1e309", "4.9e-324", "-0", "0x1f", "0x",
	"1_000", " 12 ", "12abc", "", "true", "FALSE", "UP", "DOWN", "caf\xc3\xa9", "\xd9\xa1\xd9\xa2",
	"\xef\xbc\x91", "=", "%", "/", "/dev/sda1 ", " kB", ":", "version ", "requests ", "v=",
	"x", "xxxx", "\r\n", "\n\n", std::string(1, '\0'), "\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	"\xe2\x80\xa8", "\xc2\x85", "$1", "${key}", "$$",
};

std::string fixture(const char *name)
{
	std::string text = fuzz::sourceFile(std::string("tests/data/text/") + name);
	if (text.empty()) {
		std::fprintf(stderr, "fuzz_text: cannot read tests/data/text/%s "
		    "(is PME_SOURCE_ROOT set?)\n", name);
		std::exit(1);
	}
	return text;
}

// Line level edits: repeated lines make duplicate series, a very long line
// a label over the limit, many lines the series limit.
void mutateLines(std::string &s, fuzz::Rng &rng)
{
	size_t a = s.empty() ? 0 : rng.below(s.size());
	size_t start = s.rfind('\n', a);
	start = start == std::string::npos ? 0 : start + 1;
	size_t end = s.find('\n', a);
	end = end == std::string::npos ? s.size() : end + 1;
	std::string line = s.substr(start, end - start);
	switch (rng.below(4)) {
	case 0:
		s.insert(start, line);
		break;
	case 1:
		s.insert(start, std::string(worker::kMaxLabelValue - 8 + rng.below(16), 'y') + " 1\n");
		break;
	case 2:
		if (rng.chance(10)) {
			std::string many;
			size_t n = worker::kMaxSeriesPerMetric - 2 + rng.below(4);
			for (size_t i = 0; i < n; i++)
				many += "k" + std::to_string(i) + "=" + std::to_string(i % 3) + "\n";
			s += many;
		}
		break;
	default:
		s.erase(start, end - start);
		break;
	}
}

} // namespace

int main(int argc, char **argv)
{
	fuzz::targetName = "fuzz_text";
	std::optional<long> batch = fuzz::runArgs(argc, argv, LLVMFuzzerTestOneInput, 1000);
	if (!batch)
		return 0;
	const long runs = *batch;
	fuzz::Rng rng(0x243f6a8885a308d3ULL);
	std::vector<std::string> seeds = embeddedSeeds;
	for (const char *name : {"df-P.txt", "meminfo.txt", "loadavg.txt"})
		seeds.push_back(fixture(name));

	auto run = [](const std::string &s) {
		LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(s.data()), s.size());
	};
	for (size_t k = 0; k < seeds.size(); k++) {
		fuzz::saveSeed(seeds[k]);
		run(seeds[k]);
		// Cut everywhere: partial lines, split UTF-8 sequences, lone CRs;
		// the larger fixtures every few bytes.
		size_t step = k < embeddedSeeds.size() ? 1 : 11;
		for (size_t len = 0; len < seeds[k].size(); len += step)
			run(seeds[k].substr(0, len));
	}
	for (long i = 0; i < runs; i++) {
		std::string input;
		if (rng.chance(15)) {
			size_t len = rng.below(400);
			for (size_t j = 0; j < len; j++)
				input += static_cast<char>(rng.next());
		} else {
			input = rng.pick(seeds);
			if (rng.chance(30))
				input += rng.pick(seeds);
			if (rng.chance(25))
				mutateLines(input, rng);
			fuzz::mutateBytes(input, rng, dict, rng.pick(seeds), 1 << 20);
		}
		run(input);
	}
	std::printf("fuzz_text: %zu seeds, their cuts and %ld random or mutated texts survived "
	    "every filter (%zu families, %zu metric errors)\n", seeds.size(), runs, families,
	    metricErrors);
	return 0;
}

#endif
