// SPDX-License-Identifier: ISC
// Fuzz target: the configuration loader, and the writer on whatever it accepts.
//
// Built two ways, as fuzz_frame.c is.  With -DPME_LIBFUZZER -fsanitize=fuzzer
// it is a libFuzzer target; without, main() runs a bounded deterministic
// batch as a meson test: the seeds, every cut of the small seeds, random
// bytes, and mutations of the seeds.  Mutations work at three levels:
// bytes (bit flips, interesting bytes, splices), lines (dropped, repeated,
// moved, re-indented), and YAML values (a value swapped for an awkward one:
// an empty string, a huge number, a NUL escape, an alias).  The value level
// is what keeps enough inputs valid to test the writer, since a random byte
// usually makes the whole file a syntax error.
//
// What must hold, beyond not crashing:
//  - a failed load returns at least one error, each located in "fuzz.yml"
//    at a line of the text (>= 1, <= its line count + 1) and column >= 1,
//    sorted by position, with a message that is valid UTF-8 without NUL
//    (the spawner sends these messages in a RELOADED frame, whose decoder
//    refuses anything else);
//  - a successful load written with writeConfig() loads again, into an
//    equal configuration, and writing that gives the same text: the writer
//    and the loader agree on every value the loader can produce;
//  - writeServiceDocument() of each service loads into a configuration of
//    that one service, equal to it (the worker's copy is the supervisor's).
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/config_loader.hpp"
#include "common/config_writer.hpp"
#include "fuzz_util.hpp"
#include "proto/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

using namespace pme::common;
using pme::fuzz::broken;
using pme::fuzz::check;

namespace {

const std::string fileName = "fuzz.yml";
size_t loaded = 0;  // inputs that loaded, to show how deep a run went

std::string joinErrors(const Errors &errors)
{
	std::string all;
	for (const auto &e : errors)
		all += e.str() + "\n";
	return all;
}

// ---- equality of loaded models, naming the first difference ----

bool sameDouble(double a, double b)
{
	if (std::isnan(a) || std::isnan(b))
		return std::isnan(a) && std::isnan(b);
	uint64_t x, y;
	std::memcpy(&x, &a, sizeof(x));
	std::memcpy(&y, &b, sizeof(y));
	return x == y;
}

struct Diff {
	std::string what;

	bool operator()(bool same, const std::string &field)
	{
		if (!same && what.empty())
			what = field;
		return same;
	}
};

void compareMetric(Diff &d, const MetricConfig &a, const MetricConfig &b, const std::string &at)
{
	d(a.key == b.key, at + ".key");
	d(a.name == b.name, at + ".name");
	d(a.baseName == b.baseName, at + ".baseName");
	d(a.type == b.type, at + ".type");
	d(a.description == b.description, at + ".description");
	d(a.filter == b.filter, at + ".filter");
	d(a.valueTemplate == b.valueTemplate, at + ".valueTemplate");
	d(a.staticValue.has_value() == b.staticValue.has_value() &&
	    (!a.staticValue || sameDouble(*a.staticValue, *b.staticValue)), at + ".staticValue");
	d(a.valueOnError.has_value() == b.valueOnError.has_value() &&
	    (!a.valueOnError || sameDouble(*a.valueOnError, *b.valueOnError)),
	    at + ".valueOnError");
	d(sameDouble(a.scale, b.scale), at + ".scale");
	d(a.labels == b.labels, at + ".labels");
	bool values = a.values.size() == b.values.size();
	for (size_t i = 0; values && i < a.values.size(); i++)
		values = a.values[i].first == b.values[i].first &&
		    sameDouble(a.values[i].second, b.values[i].second);
	d(values, at + ".values");
}

void compareGroup(Diff &d, const GroupConfig &a, const GroupConfig &b, const std::string &at)
{
	d(a.key == b.key, at + ".key");
	d(a.standalone == b.standalone, at + ".standalone");
	d(a.sourceType == b.sourceType, at + ".sourceType");
	d(a.source == b.source, at + ".source");
	d(a.argv == b.argv, at + ".argv");
	d(a.shell == b.shell, at + ".shell");
	d(a.contentType == b.contentType, at + ".contentType");
	d(a.effectiveInterval == b.effectiveInterval, at + ".effectiveInterval");
	d(a.timeout == b.timeout, at + ".timeout");
	d(a.cacheTtl == b.cacheTtl, at + ".cacheTtl");
	d(a.staleAfterOrDefault() == b.staleAfterOrDefault(), at + ".staleAfter");
	d(a.maxOutput == b.maxOutput, at + ".maxOutput");
	d(a.multiline == b.multiline, at + ".multiline");
	d(a.env == b.env, at + ".env");
	if (d(a.metrics.size() == b.metrics.size(), at + ".metrics.size"))
		for (size_t i = 0; i < a.metrics.size(); i++)
			compareMetric(d, a.metrics[i], b.metrics[i], at + ".metrics[" + a.metrics[i].key +
			    "]");
}

void compareService(Diff &d, const ServiceConfig &a, const ServiceConfig &b)
{
	std::string at = "services[" + a.key + "]";
	d(a.key == b.key, at + ".key");
	d(a.name == b.name, at + ".name");
	d(a.metricPrefix == b.metricPrefix, at + ".metricPrefix");
	d(a.labels == b.labels, at + ".labels");
	d(a.runAs.user == b.runAs.user, at + ".runAs.user");
	d(a.runAs.group == b.runAs.group, at + ".runAs.group");
	d(a.allowRoot == b.allowRoot, at + ".allowRoot");
	d(a.effectiveInterval == b.effectiveInterval, at + ".effectiveInterval");
	d(a.env == b.env, at + ".env");
	d(a.sandbox.seccomp == b.sandbox.seccomp, at + ".sandbox.seccomp");
	d(a.sandbox.landlock == b.sandbox.landlock, at + ".sandbox.landlock");
	if (d(a.groups.size() == b.groups.size(), at + ".groups.size"))
		for (size_t i = 0; i < a.groups.size(); i++)
			compareGroup(d, a.groups[i], b.groups[i], at + ".groups[" + a.groups[i].key +
			    "]");
}

// ---- the invariants ----

// Lines of text as YAML counts them: LF, CR, CRLF, and the breaks of
// Unicode (NEL, LS, PS) all end a line.
int lineCount(const std::string &text)
{
	int n = 1;
	for (size_t i = 0; i < text.size(); i++) {
		if (text[i] == '\n')
			n++;
		else if (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] != '\n'))
			n++;
		else if (text.compare(i, 2, "\xc2\x85") == 0 || text.compare(i, 3, "\xe2\x80\xa8") == 0 ||
		    text.compare(i, 3, "\xe2\x80\xa9") == 0)
			n++;
	}
	return n;
}

void checkErrors(const std::string &text, const Errors &errors)
{
	check(!errors.empty(), "a failed load returned no error");
	// libyaml puts the end of the stream on a line of its own when the
	// text does not end with a newline: "line count + 1" is the end.
	const int lines = lineCount(text) + 1;
	for (size_t i = 0; i < errors.size(); i++) {
		const Error &e = errors[i];
		const std::string s = e.str();
		check(e.where.file == fileName, [&] { return "error not located in the file: " + s; });
		check(e.where.line >= 1 && e.where.line <= lines, [&] {
			return "error at line " + std::to_string(e.where.line) + " of a text of " +
			    std::to_string(lines - 1) + " lines: " + s;
		});
		check(e.where.column >= 1, [&] { return "error at column 0: " + s; });
		check(!e.message.empty(), [&] { return "empty error message at " + e.where.str(); });
		check(pme_proto_valid_utf8(s.data(), s.size()), [&] {
			return "error message is not valid UTF-8 without NUL: " +
			    pme::fuzz::cLiteral(s, 300);
		});
		if (i > 0) {
			const Location &p = errors[i - 1].where;
			check(std::pair(p.line, p.column) <= std::pair(e.where.line, e.where.column),
			    [&] { return "errors not sorted by position:\n" + joinErrors(errors); });
		}
	}
}

Config reload(const std::string &text, const std::string &what)
{
	auto r = loadConfigString(text, fileName);
	if (!r)
		broken(what + " does not load:\n" + joinErrors(r.error()) + "document:\n" + text);
	return std::move(*r);
}

void checkRoundTrip(const Config &config)
{
	const std::string first = writeConfig(config);
	Config again = reload(first, "writeConfig() output");

	Diff d;
	const ExporterConfig &a = config.exporter, &b = again.exporter;
	d(a.listen == b.listen, "exporter.listen");
	d(a.healthListen == b.healthListen, "exporter.health_listen");
	d(a.interval == b.interval, "exporter.interval");
	d(a.user == b.user, "exporter.user");
	if (d(config.services.size() == again.services.size(), "services.size"))
		for (size_t i = 0; i < config.services.size(); i++)
			compareService(d, config.services[i], again.services[i]);
	check(d.what.empty(), [&] {
		return "writeConfig() output loads back different in " + d.what + ":\n" + first;
	});

	const std::string second = writeConfig(again);
	check(first == second, [&] {
		return "writeConfig() is not a fixed point:\n--- first\n" + first +
		    "--- second\n" + second;
	});

	for (const auto &s : config.services) {
		const std::string doc = writeServiceDocument(config, s);
		Config one = reload(doc, "writeServiceDocument(" + s.key + ")");
		check(one.services.size() == 1, [&] {
			return "service document of " + s.key + " holds " +
			    std::to_string(one.services.size()) + " services";
		});
		check(one.exporter.interval == config.exporter.interval, [&] {
			return "service document of " + s.key + " has another global interval";
		});
		Diff sd;
		compareService(sd, s, one.services[0]);
		check(sd.what.empty(), [&] {
			return "service document loads back different in " + sd.what + ":\n" + doc;
		});
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const std::string text(reinterpret_cast<const char *>(data), size);
	pme::fuzz::targetName = "fuzz_config";
	pme::fuzz::currentInput = text;
	try {
		auto r = loadConfigString(text, fileName);
		if (!r) {
			checkErrors(text, r.error());
		} else {
			loaded++;
			checkRoundTrip(*r);
		}
	} catch (const std::bad_alloc &) {
		// libFuzzer's -rss_limit_mb: exhaustion is not what is tested.
	} catch (const std::exception &e) {
		broken(std::string("exception: ") + e.what());
	}
	return 0;
}

#ifndef PME_LIBFUZZER

namespace {

// Small valid configurations, each using YAML or pme features the two
// files do not: flow style, anchors and aliases, escapes, every source.
const std::vector<std::string> embeddedSeeds = {
	"services:\n"
	"  s:\n"
	"    standalone_metrics:\n"
	"      up: { source_type: static, value: 1 }\n",

	"exporter: { interval: 1500ms, listen: \"[::1]:9100\" }\n"
	"services:\n"
	"  a:\n"
	"    labels: { role: web }\n"
	"    interval: 3s\n"
	"    metric_groups:\n"
	"      g:\n"
	"        source_type: command\n"
	"        command: [\"/bin/echo\", \"x: 1\", \"\"]\n"
	"        interval: 1m\n"
	"        metrics:\n"
	"          m: &m\n"
	"            filter: 'x: (?<value>\\d+)'\n"
	"            labels: &l { mode: \"caf\\u00e9\", tier: '1' }\n"
	"            value_on_error: .nan\n"
	"          n:\n"
	"            filter: '(\\w+) (\\w+)'\n"
	"            value: \"$2\"\n"
	"            values: { \"yes\": 1, \"no\": 0, \"\": -.inf }\n"
	"            labels: *l\n"
	"            scale: 1e-3\n",

	"services:\n"
	"  \"k\\tey\":\n"
	"    name: other\n"
	"    metric_prefix: \"p:\"\n"
	"    run_as: nobody\n"
	"    env: { A: \"\\x01\\u2028\", B: \"  \" }\n"
	"    sandbox: { seccomp: false, landlock: [/usr, \"/etc/caf\\u00e9\"] }\n"
	"    metric_groups:\n"
	"      f:\n"
	"        source_type: file\n"
	"        source: /proc/loadavg\n"
	"        content_type: text\n"
	"        multiline: yes\n"
	"        cache_ttl: 0s\n"
	"        stale_after: 90s\n"
	"        max_output: 1MiB\n"
	"        metrics:\n"
	"          load: { filter: '^(\\S+)', description: \"one\\nline\" }\n"
	"          info: { type: info, filter: '^\\S+ (\\S+)', value: '1',\n"
	"                  labels: { v: \"${1}$$\" } }\n"
	"    standalone_metrics:\n"
	"      sh:\n"
	"        source_type: command\n"
	"        source: \"echo 1 | cat\"\n"
	"        shell: true\n"
	"        filter: (\\d)\n"
	"        type: counter\n",

	"exporter:\n"
	"  listen:\n"
	"    - 127.0.0.1:10064\n"
	"    - :10066\n"
	"  health_listen: 127.0.0.1:10065\n"
	"  user: nobody\n"
	"services: {}\n",
};

// What a value may be replaced by.
const std::vector<std::string> values = {
	"", "''", "\"\"", "~", "null", "0", "1", "-1", "1.5", "1e309", "-0", ".nan", ".inf", "0x10",
	"0o7", "yes", "off", "5", "5s", "0s", "500ms", "1m30s", "99999999999h", "-5s", "1KiB",
	"0", "4GiB", "[]", "{}", "[a, b]", "{a: b}", "\"\\0\"", "\"\\ud800\"", "\"\\U0010ffff\"",
	"\"\\xff\"", "'$1'", "\"${x}\"", "\"$$\"", "'${'", "'$'", "(\\d+)", "'(?<value>\\d+)'",
	"'(?<a>x)(?<b>y)'", "'\\C'", "'('", "&a x", "*a", "!!str 1", "!!binary AAAA", "|\n  x",
	">-\n  y", "gauge", "counter", "info", "untyped", "histogram", "static", "file", "command",
	"http", "json", "/proc/loadavg", "relative", "\"a\\nb\"", "'caf\xc3\xa9'",
	"\"\xe6\x97\xa5\"", "root", "\"0\"", "\"true\"", std::string(300, 'x'),
	"\"" + std::string(45, 'x') + "\xc3\xa9\xc3\xa9\"",
	"\"" + std::string(36, 'x') + "\xe6\x97\xa5\xe6\x97\xa5\"",
};

// Keys pme.yml knows, and some it does not.
const std::vector<std::string> keys = {
	"exporter", "services", "templates", "include", "listen", "health_listen", "interval",
	"user", "name", "metric_prefix", "labels", "run_as", "allow_root", "env", "metric_groups",
	"standalone_metrics", "description", "group", "source_type", "source", "command", "shell",
	"content_type", "collection_frequency", "timeout", "cache_ttl", "stale_after",
	"max_output", "multiline", "metrics", "type", "filter", "value", "value_on_error",
	"scale", "values", "sandbox", "seccomp", "landlock", "le", "__x", "1a", "<<", "? x",
	"a b", "\"\"",
};

std::vector<std::string> splitLines(const std::string &s)
{
	std::vector<std::string> lines;
	size_t start = 0;
	while (start < s.size()) {
		size_t nl = s.find('\n', start);
		if (nl == std::string::npos)
			nl = s.size() - 1;
		lines.push_back(s.substr(start, nl - start + 1));
		start = nl + 1;
	}
	return lines;
}

std::string joinLines(const std::vector<std::string> &lines)
{
	std::string s;
	for (const auto &l : lines)
		s += l;
	return s;
}

// Line and value level edits: the input mostly stays YAML.
void mutateYaml(std::string &s, pme::fuzz::Rng &rng, const std::vector<std::string> &seeds)
{
	std::vector<std::string> lines = splitLines(s);
	if (lines.empty())
		lines.push_back("services:\n");
	size_t n = 1 + rng.below(3);
	for (size_t k = 0; k < n && !lines.empty(); k++) {
		size_t i = rng.below(lines.size());
		std::string &line = lines[i];
		size_t colon = line.find(": ");
		switch (rng.below(8)) {
		case 0:
		case 1:
		case 2: {
			// A value replaced.
			if (colon == std::string::npos)
				break;
			std::string nl = line.back() == '\n' ? "\n" : "";
			line = line.substr(0, colon + 2) + rng.pick(values) + nl;
			break;
		}
		case 3: {
			// A key replaced, keeping the indentation.
			size_t indent = line.find_first_not_of(" -");
			if (colon == std::string::npos || indent == std::string::npos || indent > colon)
				break;
			line = line.substr(0, indent) + rng.pick(keys) + line.substr(colon);
			break;
		}
		case 4:
			lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(i));
			break;
		case 5:
			lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(rng.below(lines.size())),
			    line);
			break;
		case 6: {
			// A line from another seed, anywhere.
			auto other = splitLines(rng.pick(seeds));
			if (!other.empty())
				lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(i),
				    rng.pick(other));
			break;
		}
		default:
			// Indentation changed.
			if (rng.chance(50))
				line.insert(0, rng.chance(50) ? "  " : "\t");
			else if (line.size() > 2 && line[0] == ' ' && line[1] == ' ')
				line.erase(0, 2);
			break;
		}
	}
	s = joinLines(lines);
}

void run(const std::string &input)
{
	LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(input.data()), input.size());
}

} // namespace

int main(int argc, char **argv)
{
	pme::fuzz::targetName = "fuzz_config";
	std::optional<long> batch = pme::fuzz::runArgs(argc, argv, LLVMFuzzerTestOneInput, 3000);
	if (!batch)
		return 0;
	const long runs = *batch;
	pme::fuzz::Rng rng;
	std::vector<std::string> seeds = embeddedSeeds;
	for (const char *rel : {"tests/data/config/full.yml", "packaging/examples/quickstart.yml"}) {
		std::string text = pme::fuzz::sourceFile(rel);
		if (text.empty()) {
			std::fprintf(stderr, "fuzz_config: cannot read %s (is PME_SOURCE_ROOT set?)\n",
			    rel);
			return 1;
		}
		seeds.push_back(std::move(text));
	}

	// Every seed is a valid configuration: the round trip is tested on them
	// as they are, and a mutation starts from something the loader accepts.
	for (const auto &s : seeds) {
		auto r = loadConfigString(s, fileName);
		if (!r) {
			std::fprintf(stderr, "fuzz_config: a seed does not load:\n%s%s",
			    joinErrors(r.error()).c_str(), s.c_str());
			return 1;
		}
		pme::fuzz::saveSeed(s);
		run(s);
	}
	// The small seeds cut at every byte: syntax errors at every position.
	for (size_t k = 0; k < embeddedSeeds.size(); k++)
		for (size_t len = 0; len < embeddedSeeds[k].size(); len++)
			run(embeddedSeeds[k].substr(0, len));

	std::vector<std::string> dict = keys;
	dict.insert(dict.end(), values.begin(), values.end());
	for (long i = 0; i < runs; i++) {
		std::string input;
		uint32_t kind = rng.below(10);
		if (kind == 0) {
			// Random bytes; half the time only characters YAML cares about.
			static const char yamlish[] = "ab:- \n{}[],'\"&*!|>#?%@`\\$0.";
			size_t len = rng.below(300);
			for (size_t j = 0; j < len; j++)
				input += rng.chance(50) ? static_cast<char>(rng.next()) :
				    yamlish[rng.below(sizeof(yamlish) - 1)];
		} else {
			input = rng.pick(seeds);
			if (kind <= 6)
				mutateYaml(input, rng, seeds);
			if (kind >= 5)
				pme::fuzz::mutateBytes(input, rng, dict, rng.pick(seeds));
		}
		run(input);
	}
	std::printf("fuzz_config: %zu seeds, their cuts and %ld random or mutated inputs survived "
	    "(%zu loaded and round-tripped)\n", seeds.size(), runs, loaded);
	return 0;
}

#endif
