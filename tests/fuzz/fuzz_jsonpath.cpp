// SPDX-License-Identifier: ISC
// Fuzz target: the JSONPath parser and evaluator, and content type json as a worker runs it.
//
// Built two ways, as fuzz_frame.c is: a libFuzzer target with
// -DPME_LIBFUZZER -fsanitize=fuzzer, otherwise a meson test whose main()
// runs a bounded deterministic batch.
//
// An input is a JSONPath query, an empty line, and a JSON document (a query
// alone when there is no empty line: "\n\n").  The query is an operator's filter, the
// document what a source returned, and both vary: the seeds are the
// JSONPath compliance suite's queries and documents (the table the unit
// test runs), the filters and documents of the json fixtures under
// tests/data/json/, and documents built with jansson at random (every kind
// of value, keys that need escaping, numbers at the edges, nesting past
// jansson's limit); mutations work on bytes, on the query's tokens, and on
// the document's tree.
//
// What must hold:
//  - a query that does not compile says "at offset N: ..." with N inside
//    it, in valid UTF-8, and the worker's compile of a metric with that
//    filter fails with the same message after "filter: "; one that
//    compiles keeps its text, and compiles as a metric's filter;
//  - every node evaluate() returns is reached from the root by its path;
//    a singular query returns at most one node; a node's normalized path
//    compiles into a singular query that selects exactly that node;
//  - a document that does not parse says "invalid JSON at line L, column
//    C: ..." in valid UTF-8;
//  - the metrics of the fixtures' configurations, and metrics whose filter
//    is the query (labels from the node's key, its parent, a member, an
//    index, the root; value_on_error; value_regex and a values mapping; a
//    value template), give what fuzz_extraction.hpp checks, and their
//    group's result is encoded, reassembled and applied by the supervisor
//    without an error.
//
// Cost: evaluating JSONPath is polynomial in the document with an exponent
// that the query chooses (each descendant segment multiplies by the depth,
// each filter with a query inside by the node count, each union by its
// selectors), by design of the language; pme leaves that to the operator,
// who writes the queries.  So a fuzzed query is evaluated on a document
// only when an upper bound of that cost is small (kMaxCost); compiling it
// is always done, and the fixtures' own filters run on every document.
#include <cmath>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <jansson.h>

#include "common/c_deleter.hpp"
#include "common/config_loader.hpp"
#include "common/json_path.hpp"
#include "common/log.hpp"
#include "common/utf8.hpp"
#include "fuzz_extraction.hpp"
#include "fuzz_util.hpp"
#include "worker/json_extractor.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

using namespace pme;
using common::JsonPath;
using common::MetricConfig;
using fuzz::broken;
using fuzz::check;
using worker::JsonDocument;
using worker::JsonExtractor;

namespace {

// Outcomes, to show how deep a run went.
size_t compiled = 0, refused = 0, evaluated = 0, tooCostly = 0, nodesChecked = 0,
    documents = 0, badDocuments = 0;

constexpr double kMaxCost = 2e6;

// Metrics whose filter is replaced by the fuzzed query; each label
// reaches the node's neighbourhood in another way.
const char *const queryConfig = R"(
services:
  q:
    metric_prefix: q_
    metric_groups:
      query:
        source_type: file
        source: /dev/null
        content_type: json
        metrics:
          value:
            filter: '$'
            labels:
              key: "${key}"
              parent: "${^key}"
              name: "${.name}"
              first: "${[0]}"
              last: "${[-1]}"
              odd: "${['a b'].c}"
              up: "${^^.State}"
              cluster: "${$.cluster_name}"
              both: "at ${key} of ${^key}: $$"
            value_on_error: -1
          info:
            type: info
            filter: '$'
            labels: { key: "${key}", self: "${@}" }
          mapped:
            type: counter
            filter: '$'
            value_regex: '(?<value>[0-9.]+) ?ms'
            values: { green: 0, yellow: 1, red: 2, "": -1 }
            scale: 0.001
            labels: { key: "${key}" }
          member:
            filter: '$'
            value: "${.count}"
            labels: { key: "${key}", name: "${^.name}" }
)";

// The json fixtures: a configuration each, and its document.
const char *const fixtures[][2] = {
	{"tests/data/json/elasticsearch_health/config.yml",
	    "tests/data/json/elasticsearch_health/cluster_health.json"},
	{"tests/data/json/elasticsearch_nodes_stats/config.yml",
	    "tests/data/json/elasticsearch_nodes_stats/nodes_stats.json"},
	{"tests/data/json/docker_containers/config.yml",
	    "tests/data/json/docker_containers/containers.json"},
};

using JsonSetup = fuzz::Setup<JsonExtractor>;

auto compileJson = [](const MetricConfig &m, const common::GroupConfig &) {
	return JsonExtractor::compile(m);
};

// Small documents every compiled query is also evaluated on.
const char *const smallDocuments[] = {
	R"({"store": {"book": [
	  {"category": "reference", "author": "Nigel Rees", "title": "Sayings", "price": 8.95},
	  {"category": "fiction", "author": "Evelyn Waugh", "title": "Sword", "price": 12.99},
	  {"category": "fiction", "title": "Moby Dick", "isbn": "0-553-21311-3", "price": 8.99}],
	  "bicycle": {"color": "red", "price": 399}}})",
	R"({"cluster_name": "c", "a b": {"c": 3}, "nodes": {"n1": {"name": "x", "count": 2,
	  "State": "running", "t": "12 ms"}, "n2": {"name": "y", "count": null, "State": "up"}},
	  "": [0, -0.0, 1e308, 5e-324, 9007199254740993, "caf\u00e9", "\u2028", true, null,
	  [], {}, [[["deep"]]]], "'\\\"\n": {"k": "v"}})",
	R"([1, "two", [3, [4]], {"x": 5, "y": [6, 7]}, null, false, "12ms", "green"])",
};

struct Fixtures {
	std::vector<std::unique_ptr<JsonSetup>> setups;
	std::unique_ptr<JsonSetup> query;
	std::vector<JsonDocument> small;

	Fixtures()
	{
		// The store logs what it refuses: not on stderr, thousands of times.
		common::log::init("fuzz_jsonpath", common::log::Sink::Callback, 0);
		common::log::setCallback([](int, const std::string &) {});
		for (const auto &f : fixtures)
			setups.push_back(std::make_unique<JsonSetup>(fuzz::fixtureConfig(f[0]), f[0],
			    common::ContentType::Json, compileJson));
		query = std::make_unique<JsonSetup>(queryConfig, "query.yml",
		    common::ContentType::Json, compileJson);
		for (const char *text : smallDocuments) {
			auto d = JsonDocument::parse(text);
			if (!d) {
				std::fprintf(stderr, "fuzz_jsonpath: a small document does not parse: "
				    "%s\n", d.error().message.c_str());
				std::exit(1);
			}
			small.push_back(std::move(*d));
		}
	}
};

Fixtures &fixturesOnce()
{
	static Fixtures f;
	return f;
}

// ---- the invariants ----

// "at offset N: message" with N at most the query's length.
void checkCompileError(const std::string &query, const common::Error &e)
{
	const std::string &m = e.message;
	check(common::validUtf8(m), [&] { return "error is not UTF-8: " + fuzz::cLiteral(m); });
	unsigned long offset = 0;
	int used = 0;
	check(std::sscanf(m.c_str(), "at offset %lu: %n", &offset, &used) == 1 && used > 0 &&
	    m.size() > static_cast<size_t>(used), [&] {
		return "error without its offset: " + fuzz::cLiteral(m, 200);
	});
	check(offset <= query.size(), [&] {
		return "offset past the query: " + fuzz::cLiteral(m, 200);
	});
}

struct Shape {
	size_t nodes = 0;
	size_t depth = 0;
};

// Nodes and depth, without recursion: a document may be nested 2048 deep.
Shape shapeOf(json_t *root)
{
	Shape s;
	std::vector<std::pair<json_t *, size_t>> stack{{root, 1}};
	while (!stack.empty()) {
		auto [v, d] = stack.back();
		stack.pop_back();
		s.nodes++;
		s.depth = std::max(s.depth, d);
		if (json_is_array(v)) {
			for (size_t i = 0; i < json_array_size(v); i++)
				stack.emplace_back(json_array_get(v, i), d + 1);
		} else if (json_is_object(v)) {
			const char *k;
			json_t *m;
			json_object_foreach(v, k, m)
				stack.emplace_back(m, d + 1);
		}
	}
	return s;
}

// An upper bound of the nodes evaluate() visits (see the top of the file).
double costOf(const std::string &query, Shape s)
{
	size_t filters = 0, descents = 0, unions = 0;
	for (size_t i = 0; i < query.size(); i++) {
		filters += query[i] == '?';
		unions += query[i] == ',';
		if (query.compare(i, 2, "..") == 0) {
			descents++;
			i++;
		}
	}
	double n = static_cast<double>(s.nodes);
	return n * std::pow(static_cast<double>(s.depth + 1), static_cast<double>(descents)) *
	    std::pow(n, static_cast<double>(filters)) *
	    std::pow(2.0, static_cast<double>(std::min<size_t>(unions, 64)));
}

json_t *walk(json_t *root, const JsonPath::Node &n)
{
	json_t *v = root;
	for (const auto &step : n.path) {
		if (const size_t *i = std::get_if<size_t>(&step))
			v = json_is_array(v) ? json_array_get(v, *i) : nullptr;
		else
			v = json_is_object(v) ? json_object_getn(v, std::get<std::string>(step).data(),
			    std::get<std::string>(step).size()) : nullptr;
		if (!v)
			break;
	}
	return v;
}

void checkNodes(const JsonPath &p, json_t *root)
{
	evaluated++;
	std::vector<JsonPath::Node> nodes = p.evaluate(root);
	check(!p.singular() || nodes.size() <= 1, [&] {
		return "a singular query selects " + std::to_string(nodes.size()) + " nodes";
	});
	for (size_t i = 0; i < nodes.size(); i++) {
		const JsonPath::Node &n = nodes[i];
		check(n.value != nullptr, "a node without a value");
		check(walk(root, n) == n.value, [&] {
			return "node " + std::to_string(i) + " is not at its path " +
			    JsonPath::normalizedPath(n);
		});
		if (i >= 8)
			continue;
		nodesChecked++;
		const std::string np = JsonPath::normalizedPath(n);
		auto back = JsonPath::compile(np);
		check(back.has_value(), [&] {
			return "the normalized path " + fuzz::cLiteral(np, 300) + " does not compile: " +
			    back.error().message;
		});
		check(back->singular(), [&] {
			return "the normalized path " + fuzz::cLiteral(np, 300) + " is not singular";
		});
		auto again = back->evaluate(root);
		check(again.size() == 1 && again[0].value == n.value && again[0].path == n.path, [&] {
			return "the normalized path " + fuzz::cLiteral(np, 300) +
			    " does not select its node";
		});
	}
}

// Every json group of a setup over one document, as the worker runs it.
void runGroups(JsonSetup &setup, const JsonDocument &doc)
{
	for (auto &g : setup.groups) {
		fuzz::context = g.config->key;
		common::GroupResult r;
		r.group = g.config->key;
		for (auto &[m, x] : g.metrics)
			fuzz::addExtraction(r, *m, x.extract(doc), common::ContentType::Json);
		fuzz::apply(*setup.store, g.service, r);
	}
	fuzz::context = {};
}

// The query as the filter of each metric of queryConfig.
void runQueryMetrics(const std::string &query, const JsonDocument *doc,
    const std::optional<common::Error> &refusal)
{
	JsonSetup &setup = *fixturesOnce().query;
	const auto &g = setup.groups.at(0);
	common::GroupResult r;
	r.group = g.config->key;
	for (const auto &entry : g.metrics) {
		MetricConfig metric = *entry.first;
		metric.filter = query;
		fuzz::context = metric.key;
		auto x = JsonExtractor::compile(metric);
		if (refusal) {
			check(!x.has_value(), "a query that does not compile is a metric's filter");
			// An empty filter has a message of its own.
			check(query.empty() || x.error().message == "filter: " + refusal->message, [&] {
				return "the metric's error differs from the query's: " +
				    x.error().message;
			});
			continue;
		}
		check(x.has_value(), [&] {
			return "a query that compiles is not a metric's filter: " + x.error().message;
		});
		if (doc)
			fuzz::addExtraction(r, metric, x->extract(*doc), common::ContentType::Json);
	}
	fuzz::context = {};
	if (doc && !refusal)
		fuzz::apply(*setup.store, g.service, r);
}

void checkDocumentError(const common::Error &e)
{
	const std::string &m = e.message;
	check(common::validUtf8(m), [&] { return "error is not UTF-8: " + fuzz::cLiteral(m); });
	unsigned long line = 0, column = 0;
	check(std::sscanf(m.c_str(), "invalid JSON at line %lu, column %lu: ", &line, &column) == 2,
	    [&] { return "a document error without its position: " + fuzz::cLiteral(m, 200); });
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Fixtures &f = fixturesOnce();
	fuzz::targetName = "fuzz_jsonpath";
	const std::string_view input(reinterpret_cast<const char *>(data), size);
	fuzz::currentInput = input;
	try {
		size_t blank = input.find("\n\n");
		const std::string query(input.substr(0, blank));
		std::optional<JsonDocument> doc;
		if (blank != std::string_view::npos) {
			auto d = JsonDocument::parse(input.substr(blank + 2));
			if (d) {
				documents++;
				doc.emplace(std::move(*d));
				for (auto &setup : f.setups)
					runGroups(*setup, *doc);
			} else {
				badDocuments++;
				checkDocumentError(d.error());
			}
		}

		auto p = JsonPath::compile(query);
		if (!p) {
			refused++;
			checkCompileError(query, p.error());
			runQueryMetrics(query, nullptr, p.error());
			return 0;
		}
		compiled++;
		check(p->text() == query, "the compiled query has another text");
		bool cheap = doc && costOf(query, shapeOf(doc->root())) <= kMaxCost;
		tooCostly += doc && !cheap;
		if (cheap)
			checkNodes(*p, doc->root());
		for (const auto &s : f.small)
			if (costOf(query, shapeOf(s.root())) <= kMaxCost)
				checkNodes(*p, s.root());
		runQueryMetrics(query, cheap ? &*doc : nullptr, std::nullopt);
	} catch (const std::bad_alloc &) {
		// libFuzzer's -rss_limit_mb: exhaustion is not what is tested.
	} catch (const std::exception &e) {
		broken(std::string("exception: ") + e.what());
	}
	return 0;
}

#ifndef PME_LIBFUZZER

namespace {

std::string fixtureText(const char *rel)
{
	std::string text = fuzz::sourceFile(rel);
	if (text.empty()) {
		std::fprintf(stderr, "fuzz_jsonpath: cannot read %s (is PME_SOURCE_ROOT set?)\n",
		    rel);
		std::exit(1);
	}
	return text;
}

// The JSONPath compliance suite, as tests/unit/worker/test_json_path.cpp
// has it: its queries, valid and invalid, and its documents.
using namespace std::string_view_literals;
struct Case {
	std::string_view name;
	std::string_view selector;
	const char *document;
	const char *results;
	const char *paths;
	bool invalid;
};
const Case cts[] = {
#include "tests/unit/worker/json_path_cases.inc"
};

// What a query's token may become.
const std::vector<std::string> queryDict = {
	"$", "@", ".", "..", "*", "[", "]", "[*]", "[?", "?", "(", ")", "'", "\"", ",", ":",
	"::", "::-1", "-1", "0", "1", "-0", "01", "9007199254740991", "9007199254740992",
	"1e3", "1.5", "-1e-3", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "!", "true", "false",
	"null", "length(", "count(", "match(", "search(", "value(", "nodes", "name", "a b",
	"\\'", "\\\"", "\\u00e9", "\\ud83d\\ude00", "\\ud800", "\\n", "\\", " ", "\t", "\n", "\r",
	"caf\xc3\xa9", "\xe2\x98\xba", "['a','b']", "[0:2]", "[?@.State == 'running']",
	"[?@.a && !(@.b || @.c)]", "[?length(@) > 1]", "[?match(@, '[a-z]+')]",
	"[?search(@.x, '\\\\d')]", "[?count(@.*) == 2]", "[?value(@..name) == 'x']",
};

// What a document's token may become.
const std::vector<std::string> jsonDict = {
	"{", "}", "[", "]", ":", ",", "\"", "\\\"", "\\\\", "\\u0000", "\\u00e9", "\\ud800",
	"\\udc00", "\\ud83d\\ude00", "true", "false", "null", "0", "-0", "1e308", "1e309", "-1e-400",
	"9223372036854775807", "9223372036854775808", "-9223372036854775809", "0.1", "1.", ".5",
	"01", "NaN", "Infinity", "\"name\":", "\"count\":", "\"State\":", "\"cluster_name\":",
	"\"a b\":", "\"\":", std::string(1, '\0'), "\xc3", "\xed\xa0\x80", "\xef\xbb\xbf",
};

const std::vector<std::string> keys = {
	"name", "count", "State", "cluster_name", "nodes", "a b", "", "'", "\\", "\"", "\n",
	"\x7f", "caf\xc3\xa9", "0", "-1", "$", "@", "*", "..", "status", "value", "Names",
	"\xf0\x9f\x93\x88",
};

const std::vector<std::string> strings = {
	"", "running", "exited", "green", "yellow", "red", "12ms", "1.5 ms", "12abc", "true",
	"false", "NaN", "+Inf", "-1e3", " 7 ", "caf\xc3\xa9", "\xe2\x80\xa8", "a\tb\nc",
	std::string(5000, 'x'), "0x10",
};

json_t *randomValue(fuzz::Rng &rng, unsigned depth)
{
	switch (depth > 6 ? 2 + rng.below(7) : rng.below(9)) {
	case 0: {
		json_t *o = json_object();
		for (size_t n = rng.below(6); n > 0; n--) {
			const std::string &k = rng.pick(keys);
			json_object_setn_new(o, k.data(), k.size(), randomValue(rng, depth + 1));
		}
		return o;
	}
	case 1: {
		json_t *a = json_array();
		for (size_t n = rng.below(6); n > 0; n--)
			json_array_append_new(a, randomValue(rng, depth + 1));
		return a;
	}
	case 2:
	case 3: {
		const std::string &s = rng.pick(strings);
		return json_stringn(s.data(), s.size());
	}
	case 4: {
		static const json_int_t ints[] = {0, 1, -1, 2, 42, 9007199254740993LL,
			INT64_MAX, INT64_MIN, 1700000000123LL};
		return json_integer(ints[rng.below(std::size(ints))]);
	}
	case 5: {
		static const double reals[] = {0.5, -0.0, 1e308, 5e-324, 93.02325581395348, -2.5e-7,
			1.7976931348623157e308};
		return json_real(reals[rng.below(std::size(reals))]);
	}
	case 6:
		return json_true();
	case 7:
		return json_false();
	default:
		return json_null();
	}
}

std::string dump(json_t *v, fuzz::Rng &rng)
{
	size_t flags = JSON_ENCODE_ANY | (rng.chance(50) ? JSON_COMPACT : JSON_INDENT(2));
	if (rng.chance(20))
		flags |= JSON_ENSURE_ASCII;
	char *s = json_dumps(v, flags);
	std::string out = s ? s : "null";
	free(s);
	return out;
}

// A random document, sometimes nested around the edge of jansson's depth
// limit (2048).
std::string randomDocument(fuzz::Rng &rng)
{
	common::CPtr<json_t> v(randomValue(rng, 0));
	std::string s = dump(v.get(), rng);
	if (rng.chance(5)) {
		size_t depth = 2000 + rng.below(100);
		s = std::string(depth, '[') + s + std::string(depth, ']');
	}
	return s;
}

// A tree level edit of a document that parses: a node replaced by a
// random value or by a copy of another subtree, a member or element
// removed.
bool mutateTree(std::string &doc, fuzz::Rng &rng)
{
	json_error_t err;
	common::CPtr<json_t> root(json_loadb(doc.data(), doc.size(), JSON_DECODE_ANY, &err));
	if (!root)
		return false;
	std::vector<json_t *> containers;
	std::vector<json_t *> stack{root.get()};
	while (!stack.empty() && containers.size() < 5000) {
		json_t *v = stack.back();
		stack.pop_back();
		if (json_is_array(v)) {
			containers.push_back(v);
			for (size_t i = 0; i < json_array_size(v); i++)
				stack.push_back(json_array_get(v, i));
		} else if (json_is_object(v)) {
			containers.push_back(v);
			const char *k;
			json_t *m;
			json_object_foreach(v, k, m)
				stack.push_back(m);
		}
	}
	if (containers.empty())
		return false;
	json_t *c = rng.pick(containers);
	size_t size = json_is_array(c) ? json_array_size(c) : json_object_size(c);
	bool remove = size > 0 && rng.chance(30);
	const std::string &k = rng.pick(keys);
	if (remove && json_is_array(c)) {
		json_array_remove(c, rng.below(size));
	} else if (remove) {
		json_object_deln(c, k.data(), k.size());
	} else {
		json_t *value = rng.chance(30) ? json_deep_copy(rng.pick(containers)) :
		    randomValue(rng, 4);
		if (json_is_array(c))
			json_array_insert_new(c, rng.below(size + 1), value);
		else
			json_object_setn_new(c, k.data(), k.size(), value);
	}
	doc = dump(root.get(), rng);
	return true;
}

// Query level edits: a suffix of another query, a segment repeated, a
// bracketed selector list grown.
void mutateQuery(std::string &q, fuzz::Rng &rng, const std::vector<std::string> &queries)
{
	switch (rng.below(4)) {
	case 0: {
		const std::string &other = rng.pick(queries);
		size_t from = other.find_first_of(".[", rng.below(other.size() + 1));
		if (from != std::string::npos)
			q += other.substr(from);
		break;
	}
	case 1: {
		size_t at = q.find_first_of(".[", rng.below(q.size() + 1));
		if (at != std::string::npos) {
			size_t end = q.find_first_of(".[", at + 1);
			q.insert(at, q.substr(at, end == std::string::npos ? end : end - at));
		}
		break;
	}
	case 2: {
		size_t close = q.rfind(']');
		if (close != std::string::npos)
			q.insert(close, "," + rng.pick(std::vector<std::string>{"0", "-1", "'name'",
			    "*", "1:3", "?@.count > 1", "\"a b\"", "::-1"}));
		break;
	}
	default:
		fuzz::mutateBytes(q, rng, queryDict, rng.pick(queries), 4096);
		break;
	}
}

} // namespace

int main(int argc, char **argv)
{
	fuzz::targetName = "fuzz_jsonpath";
	std::optional<long> batch = fuzz::runArgs(argc, argv, LLVMFuzzerTestOneInput, 2000);
	if (!batch)
		return 0;
	const long runs = *batch;
	fuzz::Rng rng(0x082efa98ec4e6c89ULL);
	Fixtures &f = fixturesOnce();

	std::vector<std::string> queries, docs;
	for (const auto &c : cts) {
		queries.emplace_back(c.selector);
		if (!c.invalid && c.document[0] != '\0')
			docs.emplace_back(c.document);
	}
	for (const auto &s : f.setups)
		for (const auto &g : s->groups)
			for (const auto &[m, x] : g.metrics)
				queries.push_back(m->filter);
	std::vector<std::string> fixtureDocs;
	for (const auto &fx : fixtures)
		fixtureDocs.push_back(fixtureText(fx[1]));
	for (const char *d : smallDocuments)
		docs.emplace_back(d);

	auto run = [](const std::string &q, const std::string &d) {
		std::string input = q + "\n\n" + d;
		LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(input.data()), input.size());
	};
	// The compliance suite as it is, and the fixtures with their filters.
	for (const auto &c : cts)
		run(std::string(c.selector), c.document);
	for (size_t k = 0; k < fixtureDocs.size(); k++) {
		fuzz::saveSeed(f.setups[k]->groups.at(0).metrics.at(0).first->filter + "\n\n" +
		    fixtureDocs[k]);
		for (const auto &g : f.setups[k]->groups)
			for (const auto &[m, x] : g.metrics)
				run(m->filter, fixtureDocs[k]);
		// Cut every few bytes: documents that end anywhere.
		for (size_t len = 0; len < fixtureDocs[k].size(); len += 61)
			run("$..name", fixtureDocs[k].substr(0, len));
	}
	docs.insert(docs.end(), fixtureDocs.begin(), fixtureDocs.end());

	for (long i = 0; i < runs; i++) {
		std::string q = rng.pick(queries), d;
		if (rng.chance(25))
			d = randomDocument(rng);
		else
			d = rng.pick(docs);
		uint32_t kind = rng.below(10);
		if (kind < 4)
			mutateQuery(q, rng, queries);
		if (kind >= 3 && kind < 7) {
			for (size_t n = 1 + rng.below(3); n > 0; n--)
				if (!mutateTree(d, rng))
					fuzz::mutateBytes(d, rng, jsonDict, rng.pick(docs), 1 << 16);
		}
		if (kind >= 7)
			fuzz::mutateBytes(d, rng, jsonDict, rng.pick(docs), 1 << 16);
		if (rng.chance(3)) {
			// No document at all, or random bytes.
			d.clear();
			for (size_t n = rng.below(200); n > 0; n--)
				d += static_cast<char>(rng.next());
		}
		run(q, d);
	}
	std::printf("fuzz_jsonpath: %zu compliance cases, the fixtures and %ld random or "
	    "mutated inputs survived (%zu queries compiled, %zu refused; %zu evaluations, %zu "
	    "skipped as too costly, %zu nodes checked by their normalized path; %zu documents, "
	    "%zu refused)\n", std::size(cts), runs, compiled, refused, evaluated, tooCostly,
	    nodesChecked, documents, badDocuments);
	return 0;
}

#endif
