// SPDX-License-Identifier: ISC
// Fuzz target: the supervisor's untrusted path, worker bytes to /metrics.
//
// Built two ways, as fuzz_frame.c is: a libFuzzer target with
// -DPME_LIBFUZZER -fsanitize=fuzzer, otherwise a meson test whose main()
// runs a bounded deterministic batch.
//
// An input is one byte choosing the service and how the stream is cut into
// reads, then the bytes a worker of that service sends.  They go through
// what WorkerLink does in the supervisor: a pme_proto_decoder with the 64 KiB
// limit, GROUP_BEGIN/DATA/END frames into a GroupResultAssembler, each
// finished result into MetricStore::apply() of a store built from a small
// fixed configuration; frames of other types (HELLO, LOG, BYE) are skipped,
// as they do not reach the store.  A protocol error (decoder, assembler or
// store) is handled as the supervisor does, counted and the worker marked
// restarting, and then the harness goes on where the supervisor would not:
// a new link for the same service resumes at the next frame magic, so that
// one corrupted frame does not hide the rest of the input.
//
// Every time the exposition changes it is parsed and must be a valid text
// exposition 0.0.4: each line a HELP, a TYPE or `name{labels} value`; names
// and label names valid, label values valid UTF-8 with only the three
// escapes; one HELP and one TYPE per family, before its samples; all of a
// family's samples contiguous; no series twice.  Beyond the format:
//  - a counter series never decreases while it stays exposed (SPEC §3);
//  - an apply that fails changes no collected family, and one that succeeds
//    changes only families the service declares (a worker cannot write
//    another service's series);
//  - a family of one service carries that service's constant labels.
// The same data in the other forms /metrics serves must agree with it: the
// text format in pieces is a prefix of the exposition; OpenMetrics has one
// "# EOF", at the end, and only comment, sample or blank-free lines; each
// gzip body inflates (zlib, trailer checked) to exactly its plain body.
//
// The seeds are real encodings of results for the configuration, also
// mutated as results before encoding (a family of another service, a
// suffix, a shadowing label, a NaN counter...) so that inputs reach the
// store's checks, then as frames (dropped, repeated, swapped, spliced) and
// as bytes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/config_loader.hpp"
#include "common/group_result.hpp"
#include "daemon/metric_store.hpp"
#include "fuzz_util.hpp"
#include "tests/unit/daemon/gunzip.hpp"
#include "proto/frame.h"
#include "proto/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

using namespace pme;
using common::Family;
using common::GroupResult;
using common::MetricType;
using fuzz::broken;
using fuzz::check;

namespace {

const char *const configText = R"(
exporter:
  interval: 5s
services:
  web:
    metric_prefix: web_
    labels: { role: web }
    metric_groups:
      status:
        source_type: file
        source: /proc/loadavg
        metrics:
          connections:
            description: "Open connections,\nby state \\ kind"
            filter: '(?<state>\w+) (?<value>\d+)'
            labels: { state: "${state}" }
          requests_total:
            type: counter
            filter: 'requests (\d+)'
          version_info:
            type: info
            filter: 'version (\S+)'
            value: "1"
            labels: { version: "$1" }
    standalone_metrics:
      up:
        source_type: static
        value: 1
  db:
    labels: { role: db, zone: "a\"b\\c\n" }
    metric_groups:
      stats:
        source_type: file
        source: /proc/meminfo
        metrics:
          shared_bytes:
            filter: '(?<kind>\w+) (?<value>\d+)'
            labels: { kind: "${kind}" }
          queries_total:
            type: counter
            filter: 'queries (\d+)'
          raw:
            type: untyped
            filter: 'raw (\S+)'
  cache:
    metric_groups:
      stats:
        source_type: file
        source: /proc/meminfo
        metrics:
          shared_bytes:
            filter: '(?<kind>\w+) (?<value>\d+)'
            labels: { kind: "${kind}" }
          hits_total:
            type: counter
            filter: '(\w+) hits (\d+)'
            value: "$2"
            labels: { kind: "$1" }
)";

const common::Config &config()
{
	static const common::Config c = [] {
		auto r = common::loadConfigString(configText, "fuzz_results.yml");
		if (!r) {
			for (const auto &e : r.error())
				std::fprintf(stderr, "fuzz_results: %s\n", e.str().c_str());
			std::abort();
		}
		return std::move(*r);
	}();
	return c;
}

// Families each service declares, and the owner of those only one declares.
struct Registry {
	std::map<std::string, std::set<std::string>> declared; // service -> families
	std::map<std::string, const common::ServiceConfig *> owner; // family -> sole service

	Registry()
	{
		std::map<std::string, int> users;
		for (const auto &s : config().services)
			for (const auto &g : s.groups)
				for (const auto &m : g.metrics)
					if (declared[s.name].insert(m.name).second)
						users[m.name]++;
		for (const auto &s : config().services)
			for (const auto &name : declared[s.name])
				if (users[name] == 1)
					owner[name] = &s;
	}
};

const Registry &registry()
{
	static const Registry r;
	return r;
}

// The families pmed writes itself.
bool selfFamily(const std::string &name)
{
	return name.rfind("pme_", 0) == 0 || name.rfind("process_", 0) == 0;
}

// ---- the exposition checker ----

bool metricNameChar(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	    (!first && c >= '0' && c <= '9');
}

bool validMetricName(std::string_view s)
{
	if (s.empty())
		return false;
	for (size_t i = 0; i < s.size(); i++)
		if (!metricNameChar(s[i], i == 0))
			return false;
	return true;
}

bool validLabelName(std::string_view s)
{
	return validMetricName(s) && s.find(':') == std::string_view::npos &&
	    s.rfind("__", 0) != 0;
}

// -?digits[.digits][e[+-]digits], NaN, +Inf, -Inf: what appendValue() writes.
bool validValue(std::string_view v)
{
	if (v == "NaN" || v == "+Inf" || v == "-Inf")
		return true;
	size_t i = 0;
	auto digits = [&] {
		size_t from = i;
		while (i < v.size() && v[i] >= '0' && v[i] <= '9')
			i++;
		return i > from;
	};
	if (i < v.size() && v[i] == '-')
		i++;
	if (!digits())
		return false;
	if (i < v.size() && v[i] == '.') {
		i++;
		if (!digits())
			return false;
	}
	if (i < v.size() && v[i] == 'e') {
		i++;
		if (i < v.size() && (v[i] == '+' || v[i] == '-'))
			i++;
		if (!digits())
			return false;
	}
	return i == v.size();
}

// What the checker throws: the line and what is wrong with it.
struct BadExposition : std::runtime_error {
	using std::runtime_error::runtime_error;
};

struct Parsed {
	std::map<std::string, std::string> blocks;     // collected family -> its lines
	std::map<std::string, double> counters;        // counter series -> value
};

class ExpositionChecker {
public:
	explicit ExpositionChecker(const std::string &text) : text_(text) {}

	Parsed parse()
	{
		if (text_.empty() || text_.back() != '\n')
			bad("the exposition does not end with a newline");
		size_t start = 0;
		while (start < text_.size()) {
			size_t nl = text_.find('\n', start);
			line_ = std::string_view(text_).substr(start, nl - start);
			lineNo_++;
			if (line_.rfind("# ", 0) == 0)
				comment();
			else
				sample();
			start = nl + 1;
		}
		return std::move(out_);
	}

private:
	const std::string &text_;
	std::string_view line_;
	size_t lineNo_ = 0;
	Parsed out_;
	std::map<std::string, std::string> types_;
	std::set<std::string> helps_;
	std::string current_;                 // family of the lines being read
	std::set<std::string> finished_;      // families whose lines are over
	std::set<std::string> hasSample_;     // families with a sample line, but current_
	bool currentHasSample_ = false;
	std::unordered_set<std::string> series_;
	std::string *block_ = nullptr;        // where lines of current_ are kept

	[[noreturn]] void bad(const std::string &why)
	{
		throw BadExposition("line " + std::to_string(lineNo_) + ": " + why + "\n  " +
		    std::string(line_));
	}

	// The lines of `family` start or go on here.
	void enter(const std::string &family)
	{
		if (family == current_)
			return;
		if (finished_.count(family))
			bad("lines of family " + family + " are not contiguous");
		if (!current_.empty())
			finished_.insert(current_);
		if (currentHasSample_)
			hasSample_.insert(current_);
		currentHasSample_ = false;
		current_ = family;
		block_ = selfFamily(family) ? nullptr : &out_.blocks[family];
	}

	void keep()
	{
		if (block_) {
			*block_ += line_;
			*block_ += '\n';
		}
	}

	void comment()
	{
		std::string_view rest = line_.substr(2);
		bool help = rest.rfind("HELP ", 0) == 0;
		if (!help && rest.rfind("TYPE ", 0) != 0)
			bad("a comment that is neither HELP nor TYPE");
		rest.remove_prefix(5);
		size_t sp = rest.find(' ');
		if (sp == std::string_view::npos)
			bad("HELP or TYPE without its text");
		std::string name(rest.substr(0, sp));
		std::string_view arg = rest.substr(sp + 1);
		if (!validMetricName(name))
			bad("invalid metric name in HELP or TYPE");
		if (hasSample_.count(name) || (name == current_ && currentHasSample_))
			bad("HELP or TYPE of " + name + " after its samples");
		enter(name);
		if (help) {
			if (!helps_.insert(name).second)
				bad("a second HELP for " + name);
			for (size_t i = 0; i < arg.size(); i++)
				if (arg[i] == '\\' && (i + 1 == arg.size() ||
				    (arg[i + 1] != '\\' && arg[i + 1] != 'n')))
					bad("an escape other than \\\\ and \\n in HELP");
				else if (arg[i] == '\\')
					i++;
			if (!pme_proto_valid_utf8(arg.data(), arg.size()))
				bad("HELP is not valid UTF-8");
		} else {
			static const std::set<std::string_view> words = {"counter", "gauge", "histogram",
				"summary", "untyped"};
			if (!words.count(arg))
				bad("unknown TYPE " + std::string(arg));
			if (!types_.emplace(name, arg).second)
				bad("a second TYPE for " + name);
		}
		keep();
	}

	// The family a sample name belongs to: _bucket, _sum and _count belong
	// to a histogram or summary declared without them.
	std::string familyOf(const std::string &name)
	{
		if (types_.count(name))
			return name;
		for (const char *sfx : {"_bucket", "_sum", "_count"}) {
			size_t n = std::strlen(sfx);
			if (name.size() > n && name.compare(name.size() - n, n, sfx) == 0) {
				auto it = types_.find(name.substr(0, name.size() - n));
				if (it != types_.end() && (it->second == "histogram" ||
				    (it->second == "summary" && std::strcmp(sfx, "_bucket") != 0)))
					return it->first;
			}
		}
		return name;
	}

	void sample()
	{
		size_t i = 0;
		while (i < line_.size() && metricNameChar(line_[i], i == 0))
			i++;
		if (i == 0)
			bad("a line that is not a sample");
		std::string name(line_.substr(0, i));
		std::vector<std::pair<std::string, std::string>> labels;
		if (i < line_.size() && line_[i] == '{') {
			i++;
			for (;;) {
				size_t from = i;
				while (i < line_.size() && line_[i] != '=')
					i++;
				std::string lname(line_.substr(from, i - from));
				if (!validLabelName(lname))
					bad("invalid label name '" + lname + "'");
				if (i + 1 >= line_.size() || line_[i + 1] != '"')
					bad("label " + lname + " without a quoted value");
				i += 2;
				std::string value;
				while (i < line_.size() && line_[i] != '"') {
					if (line_[i] == '\\') {
						if (i + 1 >= line_.size())
							bad("a label value ends in a backslash");
						char e = line_[i + 1];
						if (e != '\\' && e != '"' && e != 'n')
							bad("an escape other than \\\\, \\\" and \\n in a label value");
						value += e == 'n' ? '\n' : e;
						i += 2;
					} else {
						value += line_[i++];
					}
				}
				if (i >= line_.size())
					bad("an unterminated label value");
				if (!pme_proto_valid_utf8(value.data(), value.size()))
					bad("label " + lname + " is not valid UTF-8");
				for (const auto &l : labels)
					if (l.first == lname)
						bad("label " + lname + " twice in one sample");
				labels.emplace_back(lname, value);
				i++;
				if (i < line_.size() && line_[i] == ',') {
					i++;
					continue;
				}
				if (i < line_.size() && line_[i] == '}') {
					i++;
					break;
				}
				bad("labels not separated by ',' or closed by '}'");
			}
		}
		if (i >= line_.size() || line_[i] != ' ')
			bad("no space before the value");
		std::string_view value = line_.substr(i + 1);
		if (!validValue(value))
			bad("invalid value '" + std::string(value) + "'");

		std::string family = familyOf(name);
		enter(family);
		currentHasSample_ = true;
		std::sort(labels.begin(), labels.end());
		std::string key = name;
		for (const auto &[n, v] : labels)
			key += "|" + n + "=" + std::to_string(v.size()) + ":" + v;
		if (!series_.insert(key).second)
			bad("the same series twice");
		keep();

		auto t = types_.find(family);
		if (t != types_.end() && t->second == "counter")
			out_.counters[key] = value == "NaN" ? NAN : std::strtod(std::string(value).c_str(),
			    nullptr);
		// A family one service declares carries that service's labels.
		auto owner = registry().owner.find(family);
		if (owner != registry().owner.end())
			for (const auto &constant : owner->second->labels) {
				auto it = std::find_if(labels.begin(), labels.end(),
				    [&](const auto &l) { return l.first == constant.first; });
				if (it == labels.end() || it->second != constant.second)
					bad("a sample of " + family + " without the constant label " +
					    constant.first + " of service " + owner->second->name);
			}
	}
};

// ---- the link: what WorkerLink does ----

struct Run {
	daemon::MetricStore store{config()};
	std::string service;
	double now = 1000;
	std::shared_ptr<const std::string> shown;  // the exposition last checked
	Parsed last;
	size_t applied = 0;

	// Check the exposition if it changed; `changedBy`: the service whose
	// successful apply this follows ("" after a failed one: nothing may
	// change; nullptr: anything may, as after expire()).
	void verify(const std::string *changedBy)
	{
		auto text = store.exposition();
		check(text != nullptr, "exposition() returned nothing");
		if (text == shown)
			return;
		Parsed cur;
		try {
			cur = ExpositionChecker(*text).parse();
		} catch (const BadExposition &e) {
			broken(std::string("invalid exposition, ") + e.what() + "\nwhole exposition:\n" +
			    *text);
		}
		for (const auto &counter : cur.counters) {
			auto old = last.counters.find(counter.first);
			double v = counter.second;
			if (old != last.counters.end() && !std::isnan(old->second))
				check(!std::isnan(v) && v >= old->second, [&] {
					return "counter series " + counter.first + " went down from " +
					    std::to_string(old->second) + " to " + std::to_string(v) +
					    "\nexposition:\n" + *text;
				});
		}
		if (changedBy) {
			std::set<std::string> names;
			for (const auto &b : last.blocks)
				names.insert(b.first);
			for (const auto &b : cur.blocks)
				names.insert(b.first);
			const auto &mine = registry().declared.at(service);
			for (const auto &name : names) {
				auto a = last.blocks.find(name), b = cur.blocks.find(name);
				bool same = (a == last.blocks.end()) == (b == cur.blocks.end()) &&
				    (a == last.blocks.end() || a->second == b->second);
				if (same)
					continue;
				check(!changedBy->empty(), [&] {
					return "a failed apply changed family " + name;
				});
				check(mine.count(name) > 0, [&] {
					return "a result of " + service + " changed family " + name +
					    ", which it does not declare";
				});
			}
		}
		otherForms(*text);
		shown = std::move(text);
		last = std::move(cur);
	}

	// The bodies /metrics would serve in the other formats and encodings.
	void otherForms(const std::string &text)
	{
		using daemon::Format;
		auto plain = store.expositionParts(Format::Text, false);
		std::string data = plain.data->str();
		check(text.compare(0, data.size(), data) == 0, [&] {
			return "the text format in pieces is not the start of the exposition:\n" + data;
		});
		for (Format f : {Format::Text, Format::OpenMetrics}) {
			auto p = store.expositionParts(f, false);
			std::string body = p.data->str() + *p.self;
			auto z = store.expositionParts(f, true);
			bool ok = false;
			std::string inflated = pme::test::gunzip(z.data->str() + *z.self, &ok);
			check(ok, [&] { return std::string("a gzip body that zlib refuses, format ") +
			    daemon::formatName(f); });
			// The self-metrics differ from one call to the next (the
			// scrape counter): the collected part must be the same.
			std::string collected = p.data->str();
			check(inflated.compare(0, collected.size(), collected) == 0, [&] {
				return std::string("a gzip body that does not inflate to the plain one, "
				    "format ") + daemon::formatName(f);
			});
			if (f != Format::OpenMetrics)
				continue;
			check(body.size() >= 6 && body.compare(body.size() - 6, 6, "# EOF\n") == 0 &&
			    body.find("# EOF\n") == body.size() - 6, [&] {
				return "OpenMetrics without one # EOF at its end:\n" + body;
			});
			size_t at = 0;
			while (at < body.size()) {
				size_t nl = body.find('\n', at);
				check(nl != std::string::npos && nl > at, [&] {
					return "OpenMetrics with an empty or unterminated line:\n" + body;
				});
				std::string_view line(body.data() + at, nl - at);
				bool comment = line.starts_with("# TYPE ") || line.starts_with("# HELP ") ||
				    line.starts_with("# UNIT ") || line == "# EOF";
				check(comment || line[0] != '#', [&] {
					return "OpenMetrics with an unknown comment: " + std::string(line);
				});
				at = nl + 1;
			}
		}
	}

	void protocolError(const std::string &why)
	{
		static const bool verbose = std::getenv("PME_FUZZ_VERBOSE") != nullptr;
		if (verbose)
			std::fprintf(stderr, "fuzz_results: %s: protocol error: %s\n", service.c_str(),
			    why.c_str());
		store.countProtocolError(service);
		store.setWorkerState(service, daemon::WorkerState::Restarting, 0, "protocol error", now);
		static const std::string none;
		verify(&none);
		store.setWorkerState(service, daemon::WorkerState::Running, 42, "", now);
	}

	// One result out of the assembler.
	void apply(const GroupResult &r)
	{
		now += 1;
		auto ok = store.apply(service, r, now);
		if (!ok) {
			check(!ok.error().message.empty(), "apply() failed without a message");
			protocolError(ok.error().message);
			return;
		}
		applied++;
		verify(&service);
		if (applied % 4 == 0) {
			now += 7;
			store.expire(now);
			verify(nullptr);
		}
	}

	// The stream from one worker link: returns where it broke, or size.
	size_t link(const uint8_t *data, size_t size, size_t chunk)
	{
		pme_proto_decoder dec;
		if (pme_proto_decoder_init(&dec, PME_PROTO_MAX_PAYLOAD) != 0)
			std::abort();
		common::GroupResultAssembler assembler;
		size_t off = 0;
		bool failed = false;
		std::string why;
		while (off < size && !failed) {
			size_t took = pme_proto_decoder_feed(&dec, data + off,
			    std::min(chunk, size - off));
			off += took;
			pme_proto_frame f;
			int rc = 0;
			while (!failed && (rc = pme_proto_decoder_next(&dec, &f)) == 1) {
				check(f.length <= PME_PROTO_MAX_PAYLOAD, "frame over the limit");
				if (f.type != PME_MSG_GROUP_BEGIN && f.type != PME_MSG_GROUP_DATA &&
				    f.type != PME_MSG_GROUP_END)
					continue;
				auto r = assembler.feed(f);
				if (!r) {
					check(!assembler.inProgress(), "assembler still open after an error");
					failed = true;
					why = r.error().message;
				} else if (*r) {
					check(!assembler.inProgress(), "assembler open after GROUP_END");
					apply(**r);
				}
			}
			if (!failed && rc < 0) {
				failed = true;
				why = pme_proto_strerror(rc);
			}
			if (!failed && took == 0) {
				failed = true;
				why = "decoder made no progress";
			}
		}
		pme_proto_decoder_free(&dec);
		if (failed)
			protocolError(why);
		return failed ? off : size;
	}
};

// Where the next frame could start: the magic and version.
size_t nextMagic(const uint8_t *data, size_t size, size_t from)
{
	for (size_t i = from; i + 2 < size; i++)
		if (data[i] == PME_PROTO_MAGIC0 && data[i + 1] == PME_PROTO_MAGIC1 &&
		    data[i + 2] == PME_PROTO_VERSION)
			return i;
	return size;
}

size_t resultsApplied = 0, protocolErrors = 0; // to show how deep a run went

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz::targetName = "fuzz_results";
	fuzz::currentInput = std::string_view(reinterpret_cast<const char *>(data), size);
	if (size == 0)
		return 0;
	const auto &services = config().services;
	try {
		Run run;
		run.service = services[(data[0] & 3u) % services.size()].name;
		// Reads of 1, 2, 4 ... bytes, or all at once.
		unsigned shift = (data[0] >> 2) % 18;
		size_t chunk = shift == 17 ? size : size_t{1} << shift;
		run.store.setWorkerState(run.service, daemon::WorkerState::Running, 42, "", run.now);
		run.verify(nullptr);
		size_t off = 1;
		while (off < size) {
			size_t broke = off + run.link(data + off, size - off, chunk);
			if (broke >= size)
				break;
			protocolErrors++;
			// A restarted worker; resume at the next frame.
			off = nextMagic(data, size, std::max(broke, off + 1));
		}
		resultsApplied += run.applied;
	} catch (const std::bad_alloc &) {
		// libFuzzer's -rss_limit_mb: exhaustion is not what is tested.
	} catch (const std::exception &e) {
		broken(std::string("exception: ") + e.what());
	}
	return 0;
}

#ifndef PME_LIBFUZZER

namespace {

common::Label label(const std::string &n, const std::string &v)
{
	return {n, v};
}

common::Sample sample(std::vector<common::Label> labels, double v, const std::string &sfx = "")
{
	common::Sample s;
	s.suffix = sfx;
	s.labels = std::move(labels);
	s.value = v;
	return s;
}

Family family(const std::string &name, MetricType type, std::vector<common::Sample> samples)
{
	Family f;
	f.name = name;
	f.type = type;
	f.help = "help of " + name;
	f.samples = std::move(samples);
	return f;
}

GroupResult result(const std::string &group, std::vector<Family> families)
{
	GroupResult r;
	r.group = group;
	r.families = std::move(families);
	r.duration = 0.25;
	r.exitStatus = 0;
	return r;
}

// Valid results of each service, indexed as config().services.
std::vector<std::vector<GroupResult>> validResults()
{
	std::map<std::string, std::vector<GroupResult>> by;
	auto &web = by["web"], &db = by["db"], &cache = by["cache"];
	const auto G = MetricType::Gauge, C = MetricType::Counter;
	web.push_back(result("status", {
		family("web_connections", G, {sample({label("state", "active")}, 3),
		    sample({label("state", "reading")}, 0.5),
		    sample({label("state", "caf\xc3\xa9 \"q\" \\ \n")}, -2)}),
		family("web_requests_total", C, {sample({}, 100)}),
		family("web_version_info", MetricType::Info, {sample({label("version", "1.25")}, 1)}),
	}));
	web.push_back(result("status", {
		family("web_requests_total", C, {sample({}, 40)}),   // a reset
		family("web_connections", G, {sample({label("state", "active"),
		    label("role", "imposter")}, 4)}),
	}));
	web.back().metricErrors.emplace_back("web_version_info", "filter matched nothing");
	web.push_back(result("up", {family("web_up", G, {sample({}, 1)})}));
	GroupResult down = result("status", {});
	down.ok = false;
	down.error = "command exited with status 2\n\xe2\x9a\xa0";
	down.exitStatus = 2;
	down.skipped = 3;
	web.push_back(down);

	GroupResult big = result("stats", {});
	Family shared = family("shared_bytes", G, {});
	// Over 64 KiB: the result spans two GROUP_DATA frames.
	for (int i = 0; i < 160; i++)
		shared.samples.push_back(sample({label("kind", "k" + std::to_string(i) +
		    std::string(420, 'x'))}, i));
	big.families.push_back(std::move(shared));
	big.families.push_back(family("queries_total", C, {sample({}, 1e15)}));
	db.push_back(std::move(big));
	db.push_back(result("stats", {
		family("shared_bytes", G, {sample({label("kind", "heap")}, 1),
		    sample({label("kind", "heap")}, 2)}),      // a duplicate series
		family("raw", MetricType::Untyped, {sample({}, NAN), sample({label("x", "1")}, -0.0)}),
		family("queries_total", C, {sample({}, NAN)}),
	}));
	db.push_back(result("stats", {
		family("queries_total", C, {sample({}, 1e308), sample({label("a", "b")}, -1)}),
		family("raw", MetricType::Untyped, {sample({}, 1e-300), sample({label("x", "1")}, 1e21)}),
	}));

	cache.push_back(result("stats", {
		family("shared_bytes", G, {sample({label("kind", "heap"), label("role", "db"),
		    label("zone", "a\"b\\c\n")}, 7), sample({label("kind", "heap")}, 8)}),
		family("hits_total", C, {sample({label("kind", "get")}, 5),
		    sample({label("kind", "set")}, HUGE_VAL)}),
	}));
	cache.push_back(result("stats", {
		family("hits_total", C, {sample({label("kind", "get")}, 3),
		    sample({label("kind", "set")}, 2)}),
		family("shared_bytes", G, {}),
	}));
	std::vector<std::vector<GroupResult>> all;
	for (const auto &svc : config().services)
		all.push_back(by.at(svc.name));
	return all;
}

size_t seriesOf(const GroupResult &r)
{
	size_t n = 0;
	for (const auto &f : r.families)
		n += f.samples.size();
	return n;
}

// Edits of a result that the encoder still accepts, aimed at the store's
// checks: names, types, suffixes, labels, values, errors.
void mutateResult(GroupResult &r, fuzz::Rng &rng)
{
	static const std::vector<std::string> names = {"web_connections", "web_requests_total",
		"web_version_info", "web_up", "shared_bytes", "queries_total", "raw", "hits_total",
		"pme_source_up", "process_open_fds", "web_connections_total", "x"};
	static const std::vector<std::string> groups = {"status", "up", "stats", "", "STATS",
		"stats\xc3\xa9"};
	static const std::vector<std::string> suffixes = {"_bucket", "_sum", "_count", "_total",
		"_created", "_"};
	static const std::vector<std::string> labelNames = {"role", "zone", "le", "quantile",
		"kind", "state", "a", "_"};
	static const std::vector<double> values = {NAN, HUGE_VAL, -HUGE_VAL, -1, 0, -0.0, 1e308,
		-1e308, 4.9e-324, 9007199254740993.0, 0.1, 1e21};
	for (size_t n = 1 + rng.below(3); n > 0; n--) {
		Family *f = r.families.empty() ? nullptr : &r.families[rng.below(r.families.size())];
		common::Sample *s = f && !f->samples.empty() ?
		    &f->samples[rng.below(f->samples.size())] : nullptr;
		switch (rng.below(12)) {
		case 0:
			r.group = rng.pick(groups);
			break;
		case 1:
			if (f)
				f->name = rng.pick(names);
			break;
		case 2:
			if (f)
				f->type = static_cast<MetricType>(1 + rng.below(7));
			break;
		case 3:
			if (s)
				s->suffix = rng.pick(suffixes);
			break;
		case 4:
			if (s)
				s->labels.push_back(label(rng.pick(labelNames), rng.chance(50) ? "0.5" : ""));
			break;
		case 5:
			if (s)
				s->value = rng.pick(values);
			break;
		case 6:
			if (f && s)
				f->samples.push_back(*s);
			break;
		case 7:
			r.metricErrors.emplace_back(rng.pick(names), "no match \x01");
			break;
		case 8:
			r.ok = !r.ok;
			r.error = std::string(rng.below(600), 'e') + "\xc3\xa9";
			break;
		case 9:
			r.duration = rng.pick(values);
			r.exitStatus = static_cast<int32_t>(rng.next());
			r.skipped = rng.next();
			break;
		case 10:
			if (f)
				r.families.push_back(*f);
			break;
		default:
			if (f && s)
				s->labels.clear();
			break;
		}
	}
}

// The frames of r, each one a string; empty when the encoder refuses r.
std::vector<std::string> encode(const GroupResult &r, uint32_t maxPayload)
{
	std::vector<std::string> frames;
	auto ok = common::encodeGroupResult(r, [&](const uint8_t *d, size_t n) -> common::Result<void> {
		frames.emplace_back(reinterpret_cast<const char *>(d), n);
		return {};
	}, maxPayload);
	if (!ok)
		frames.clear();
	return frames;
}

// Frames a worker sends that are not part of a result.
std::vector<std::string> otherFrames()
{
	std::vector<std::string> out;
	pme_proto_writer w;
	pme_proto_writer_init(&w, PME_PROTO_MAX_PAYLOAD);
	auto keep = [&] {
		if (pme_proto_writer_finish(&w) != 0)
			std::abort();
		out.emplace_back(reinterpret_cast<const char *>(w.buf), w.len);
	};
	pme_proto_encode_hello(&w, 42, 33, 33, "web", 3);
	keep();
	pme_proto_encode_log(&w, 4, "warning", 7);
	keep();
	pme_proto_encode_empty(&w, PME_MSG_BYE);
	keep();
	pme_proto_encode_group_begin(&w, "status", 6, 1);
	keep();
	pme_proto_encode_group_end(&w, 1, 0.1, 0, -1, "", 0, 0, -1, 0);
	keep();
	pme_proto_writer_free(&w);
	return out;
}

// The checker itself must tell valid from invalid, or the target proves
// nothing.
bool checkerWorks()
{
	static const char *const bad[] = {
		"a 1",                                          // no final newline
		"\n",
		"# EOF\n",
		"# HELP a x\n# HELP a y\na 1\n",
		"# TYPE a gauge\n# TYPE a counter\na 1\n",
		"# TYPE a wibble\na 1\n",
		"a 1\nb 1\na 2\n",                              // a not contiguous
		"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nx 1\nh_sum 1\n",
		"a 1\n# TYPE a gauge\n",                        // TYPE after samples
		"a{x=\"1\",x=\"2\"} 1\n",
		"a{x=\"1\"} 1\na{x=\"1\"} 2\n",                 // the same series twice
		"a{x=\"\\t\"} 1\n",                             // an escape 0.0.4 lacks
		"a{x=\"\xff\"} 1\n",
		"a{x=\"1} 1\n",
		"a{x=\"1\",} 1\n",
		"a{1x=\"1\"} 1\n",
		"a{__x=\"1\"} 1\n",
		"a{x=\"1\"}1\n",
		"1a 1\n",
		"a 0x1\n",
		"a 1.\n",
		"a inf\n",
		"a 1 1700000000\n",
	};
	const std::string good = "# HELP a x \\\\ y\\n\n# TYPE a gauge\na 1\n"
	    "a{b=\"\\\\\\\"\\n\",c=\"caf\xc3\xa9\"} -1.5e-07\n# TYPE h histogram\n"
	    "h_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 1\nc NaN\nd +Inf\ne -0\n"
	    "# TYPE f counter\nf 1e+21\n";
	try {
		Parsed p = ExpositionChecker(good).parse();
		if (p.counters.size() != 1 || p.counters.begin()->second != 1e21)
			return false;
	} catch (const BadExposition &e) {
		std::fprintf(stderr, "fuzz_results: the checker refuses a valid exposition: %s\n",
		    e.what());
		return false;
	}
	for (const char *text : bad) {
		try {
			ExpositionChecker(text).parse();
			std::fprintf(stderr, "fuzz_results: the checker accepts %s\n",
			    fuzz::cLiteral(text).c_str());
			return false;
		} catch (const BadExposition &) {
		}
	}
	return true;
}

} // namespace

int main(int argc, char **argv)
{
	if (!checkerWorks())
		return 1;
	fuzz::targetName = "fuzz_results";
	std::optional<long> batch = fuzz::runArgs(argc, argv, LLVMFuzzerTestOneInput, 500);
	if (!batch)
		return 0;
	const long runs = *batch;
	fuzz::Rng rng(0x452821e638d01377ULL);
	const auto valid = validResults();
	const auto others = otherFrames();
	static const uint32_t payloads[] = {PME_PROTO_MAX_PAYLOAD, PME_PROTO_MAX_PAYLOAD, 300, 1000,
		64};

	auto run = [](uint8_t head, const std::string &stream, bool seed = false) {
		std::string input(1, static_cast<char>(head));
		input += stream;
		if (seed)
			fuzz::saveSeed(input);
		LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(input.data()), input.size());
	};
	// The result over 64 KiB is slow to check under the sanitizers: not too often.
	auto pick = [&rng](const std::vector<GroupResult> &results) -> const GroupResult & {
		const GroupResult *r = &rng.pick(results);
		for (int tries = 0; tries < 3 && seriesOf(*r) > 100; tries++)
			r = &rng.pick(results);
		return *r;
	};
	auto join = [](const std::vector<std::string> &frames) {
		std::string s;
		for (const auto &f : frames)
			s += f;
		return s;
	};

	// Each valid result alone, read whole and byte by byte: all must apply.
	for (size_t svc = 0; svc < valid.size(); svc++) {
		for (const auto &r : valid[svc]) {
			auto frames = encode(r, PME_PROTO_MAX_PAYLOAD);
			if (frames.empty()) {
				std::fprintf(stderr, "fuzz_results: a seed result does not encode\n");
				return 1;
			}
			size_t before = resultsApplied;
			run(static_cast<uint8_t>(svc | (17 << 2)), join(frames), true);
			run(static_cast<uint8_t>(svc), join(frames));
			if (resultsApplied != before + 2) {
				std::fprintf(stderr, "fuzz_results: a seed result of service %zu is not "
				    "applied\n", svc);
				return 1;
			}
		}
	}

	for (long i = 0; i < runs; i++) {
		size_t svc = rng.below(valid.size());
		std::vector<std::string> frames;
		for (size_t n = 1 + rng.below(4); n > 0; n--) {
			// Mostly this service's results, sometimes another's.
			size_t from = rng.chance(85) ? svc : rng.below(valid.size());
			GroupResult r = pick(valid[from]);
			if (rng.chance(50))
				mutateResult(r, rng);
			auto more = encode(r, payloads[rng.below(std::size(payloads))]);
			if (more.empty())
				more = encode(pick(valid[from]), PME_PROTO_MAX_PAYLOAD);
			frames.insert(frames.end(), more.begin(), more.end());
		}
		// Frame level: drop, repeat, swap, insert a foreign frame.
		if (rng.chance(40)) {
			for (size_t n = 1 + rng.below(3); n > 0 && !frames.empty(); n--) {
				auto at = frames.begin() + static_cast<std::ptrdiff_t>(rng.below(frames.size()));
				switch (rng.below(4)) {
				case 0:
					frames.erase(at);
					break;
				case 1:
					frames.insert(at, *at);
					break;
				case 2:
					std::swap(*at, frames[rng.below(frames.size())]);
					break;
				default:
					frames.insert(at, rng.pick(others));
					break;
				}
			}
		}
		std::string stream = join(frames);
		if (rng.chance(35)) {
			std::string other = join(encode(pick(rng.pick(valid)), 300));
			fuzz::mutateBytes(stream, rng, {}, other, 1 << 20);
		}
		uint8_t head = static_cast<uint8_t>(svc | (rng.below(18) << 2));
		if (rng.chance(3))
			head = static_cast<uint8_t>(rng.next());
		run(head, stream);
	}
	std::printf("fuzz_results: %ld worker streams survived (%zu results applied, %zu "
	    "protocol errors)\n", runs, resultsApplied, protocolErrors);
	return 0;
}

#endif
