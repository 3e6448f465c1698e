// SPDX-License-Identifier: ISC
// JsonPath against the JSONPath Compliance Test Suite and hand-written cases.
#include <string>
#include <string_view>
#include <vector>

#include "common/c_deleter.hpp"
#include "common/json_path.hpp"

#include <CppUTest/TestHarness.h>

using namespace std::literals;
using pme::common::CPtr;
using pme::common::JsonPath;

namespace {

struct Case {
	std::string_view name;
	std::string_view selector;
	const char *document;
	const char *results;	// array of allowed nodelists
	const char *paths;	// array of allowed normalized path lists, same order
	bool invalid;
};

const Case kCases[] = {
#include "json_path_cases.inc"
};

CPtr<json_t> parse(const char *text)
{
	json_error_t e;
	return CPtr<json_t>(json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e));
}

// Empty when the case passes, else why it failed.
std::string runCase(const Case &c)
{
	auto jp = JsonPath::compile(std::string(c.selector));
	if (c.invalid) {
		if (jp)
			return "compiled an invalid query";
		if (jp.error().message.rfind("at offset ", 0) != 0)
			return "error without offset: " + jp.error().message;
		return "";
	}
	if (!jp)
		return "compile failed: " + jp.error().message;
	auto doc = parse(c.document);
	auto results = parse(c.results);
	auto paths = parse(c.paths);
	if (!doc || !results || !paths)
		return "bad test data";
	auto nodes = jp->evaluate(doc.get());
	CPtr<json_t> got(json_array());
	CPtr<json_t> gotPaths(json_array());
	for (const auto &n : nodes) {
		json_array_append(got.get(), n.value);
		json_array_append_new(gotPaths.get(),
		    json_string(JsonPath::normalizedPath(n).c_str()));
	}
	for (size_t i = 0; i < json_array_size(results.get()); i++) {
		if (!json_equal(got.get(), json_array_get(results.get(), i)))
			continue;
		json_t *want = json_array_get(paths.get(), i);
		if (!want || json_equal(gotPaths.get(), want))
			return "";
		return "paths differ";
	}
	char *s = json_dumps(got.get(), JSON_ENCODE_ANY | JSON_COMPACT);
	std::string r = "got " + std::string(s ? s : "?");
	free(s);
	return r;
}

std::string errorOf(const std::string &q)
{
	auto jp = JsonPath::compile(q);
	return jp ? "compiled" : jp.error().message;
}

std::vector<std::string> pathsOf(const char *query, const char *document)
{
	auto doc = parse(document);
	auto jp = JsonPath::compile(query);
	std::vector<std::string> out;
	if (!jp || !doc)
		return {"failed"};
	for (const auto &n : jp->evaluate(doc.get()))
		out.push_back(JsonPath::normalizedPath(n));
	return out;
}

} // namespace

TEST_GROUP(JsonPath){};

TEST(JsonPath, ComplianceSuite)
{
	size_t total = sizeof kCases / sizeof kCases[0];
	CHECK(total >= 200);
	std::string failures;
	size_t passed = 0;
	for (const auto &c : kCases) {
		std::string why = runCase(c);
		if (why.empty())
			passed++;
		else
			failures += std::string(c.name) + " [" + std::string(c.selector) + "]: " + why + "\n";
	}
	if (!failures.empty())
		FAIL((std::to_string(total - passed) + " of " + std::to_string(total) +
		    " cases failed:\n" + failures).c_str());
}

TEST(JsonPath, ErrorOffsets)
{
	STRCMP_CONTAINS("at offset 5: expected ']' or ','", errorOf("$.a[1").c_str());
	STRCMP_CONTAINS("at offset 2: leading zeros", errorOf("$[01]").c_str());
	STRCMP_CONTAINS("at offset 1: unexpected character", errorOf("$ ").c_str());
	STRCMP_CONTAINS("at offset 0: expected '$'", errorOf("a.b").c_str());
	STRCMP_CONTAINS("at offset 3: function result must be compared",
	    errorOf("$[?length(@.a)]").c_str());
	STRCMP_CONTAINS("at offset 3: a compared query must be singular",
	    errorOf("$[?@.*==1]").c_str());
	STRCMP_CONTAINS("at offset 2: integer out of range",
	    errorOf("$[9007199254740992]").c_str());
	STRCMP_CONTAINS("at offset 4: unpaired high surrogate",
	    errorOf("$['a\\uD800']").c_str());
	STRCMP_CONTAINS("at offset 3: unknown function 'foo'", errorOf("$[?foo(@)]").c_str());
	STRCMP_CONTAINS("at offset 4: invalid UTF-8", errorOf("$['a\xff']").c_str());
	// The message starts with the offset, for the config loader to turn into
	// line:column.
	STRCMP_EQUAL("at offset 3: expected a literal, a query or a function",
	    errorOf("$[?]").c_str());
}

TEST(JsonPath, NormalizedPathEscaping)
{
	auto got = pathsOf("$[\"a'b\"]['\\u0001\\\\\\n'][1]", R"({"a'b": {"\u0001\\\n": [0, 1]}})");
	CHECK_EQUAL(1U, got.size());
	STRCMP_EQUAL("$['a\\'b']['\\u0001\\\\\\n'][1]", got[0].c_str());

	JsonPath::Node n{nullptr, {"\x1f\t\"x"s, size_t(3)}};
	STRCMP_EQUAL("$['\\u001f\\t\"x'][3]", JsonPath::normalizedPath(n).c_str());
}

TEST(JsonPath, DescendantOrder)
{
	auto got = pathsOf("$..b", R"({"a": [{"b": 1}, {"c": {"b": 2}}], "b": 3})");
	CHECK_EQUAL(3U, got.size());
	STRCMP_EQUAL("$['b']", got[0].c_str());
	STRCMP_EQUAL("$['a'][0]['b']", got[1].c_str());
	STRCMP_EQUAL("$['a'][1]['c']['b']", got[2].c_str());
}

TEST(JsonPath, DeepDocument)
{
	const size_t depth = 3000;
	CPtr<json_t> doc(json_object());
	json_t *cur = doc.get();
	for (size_t i = 0; i < depth; i++) {
		json_t *next = json_array();
		json_object_set_new(cur, "k", json_array());
		json_array_append_new(json_object_get(cur, "k"), next);
		json_t *obj = json_object();
		json_array_append_new(next, obj);
		cur = obj;
	}
	json_object_set_new(cur, "leaf", json_integer(42));
	auto jp = JsonPath::compile("$..[?@.leaf == 42].leaf");
	CHECK_TRUE(jp.has_value());
	auto nodes = jp->evaluate(doc.get());
	CHECK_EQUAL(1U, nodes.size());
	CHECK_EQUAL(42, json_integer_value(nodes[0].value));
	CHECK_EQUAL(depth * 3 + 1, nodes[0].path.size());
}

TEST(JsonPath, FilterFunctionsAndPaths)
{
	auto doc = parse(R"({"svc": [{"name": "a\nb", "up": true, "n": [1, 2]},
	    {"name": "web-01", "up": false, "n": []}]})");
	auto jp = JsonPath::compile("$.svc[?match(@.name, 'web-[0-9]+') && count(@.n[*]) == 0].up");
	CHECK_TRUE(jp.has_value());
	auto nodes = jp->evaluate(doc.get());
	CHECK_EQUAL(1U, nodes.size());
	CHECK_TRUE(json_is_false(nodes[0].value));
	STRCMP_EQUAL("$['svc'][1]['up']", JsonPath::normalizedPath(nodes[0]).c_str());
	// I-Regexp: '.' does not match a newline.
	jp = JsonPath::compile("$.svc[?search(@.name, 'a.b')]");
	CHECK_TRUE(jp.has_value());
	CHECK_EQUAL(0U, jp->evaluate(doc.get()).size());
}

TEST(JsonPath, IRegexpAndLength)
{
	auto doc = parse(R"(["a", "A", "7", "\u00e9\u20ac", "abc"])");
	auto count = [&](const char *q) {
		auto jp = JsonPath::compile(q);
		return jp ? long(jp->evaluate(doc.get()).size()) : -1L;
	};
	// PCRE-only syntax is outside I-Regexp: the function is false.
	CHECK_EQUAL(0, count("$[?match(@, '(?i)a')]"));
	CHECK_EQUAL(0, count("$[?match(@, '\\\\d')]"));
	CHECK_EQUAL(0, count("$[?search(@, 'a*+')]"));
	CHECK_EQUAL(1, count("$[?match(@, '\\\\p{Lu}')]"));
	CHECK_EQUAL(2, count("$[?search(@, '[a-c]')]"));
	// length() counts Unicode scalar values, not bytes.
	CHECK_EQUAL(1, count("$[?length(@) == 2]"));
}

TEST(JsonPath, NestingLimit)
{
	std::string q = "$[?" + std::string(100, '(') + "@" + std::string(100, ')') + "]";
	STRCMP_CONTAINS("nested too deeply", errorOf(q).c_str());
	q = "$[?" + std::string(20, '(') + "@.a" + std::string(20, ')') + "]";
	STRCMP_EQUAL("compiled", errorOf(q).c_str());
}
