// SPDX-License-Identifier: ISC
// The YAML tree: positions, shared aliases, merge keys, ${env:NAME} and $$.
#include <cstring>
#include <string>

#include "common/yaml_tree.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme::common;

namespace {

const char *fakeEnv(const char *name)
{
	if (std::strcmp(name, "PORT") == 0)
		return "8080";
	if (std::strcmp(name, "PRICE") == 0)
		return "5$";
	if (std::strcmp(name, "EMPTY") == 0)
		return "";
	return nullptr;
}

struct Parsed {
	YamlTree tree{fakeEnv};
	Errors errors;
	const YamlNode *root = nullptr;
};

void parse(Parsed &p, const std::string &text)
{
	p.root = p.tree.parse(text, "f.yml", p.errors);
}

std::string allErrors(const Errors &errors)
{
	std::string out;
	for (const auto &e : errors)
		out += e.str() + "\n";
	return out;
}

// The value of key in a mapping.
const YamlNode *get(const YamlNode *map, const std::string &key)
{
	auto [k, v] = map->find(key);
	CHECK_TEXT(v != nullptr, ("no key " + key).c_str());
	return v;
}

std::string keys(const YamlNode *map)
{
	std::string out;
	for (const auto &[k, v] : map->pairs)
		out += (out.empty() ? "" : ",") + k->value + "=" + (v->isScalar() ? v->value : "{}");
	return out;
}

} // namespace

TEST_GROUP(YamlTree) {};

TEST(YamlTree, NodesKnowTheirFileLineAndColumn)
{
	Parsed p;
	parse(p, "a:\n  b: [1, two]\n  c: 'x'\n");
	STRCMP_EQUAL("", allErrors(p.errors).c_str());
	const YamlNode *b = get(get(p.root, "a"), "b");
	CHECK(b->isSequence());
	LONGS_EQUAL(2, b->items.size());
	STRCMP_EQUAL("two", b->items[1]->value.c_str());
	STRCMP_EQUAL("f.yml:2:10", b->items[1]->where().str().c_str());
	const YamlNode *c = get(get(p.root, "a"), "c");
	CHECK(c->style == YamlNode::Style::SingleQuoted);
	STRCMP_EQUAL("f.yml:3:6", c->where().str().c_str());
}

TEST(YamlTree, NullIsPlainOnly)
{
	Parsed p;
	parse(p, "a: ~\nb:\nc: ''\nd: null\ne: \"null\"\n");
	CHECK(get(p.root, "a")->isNull());
	CHECK(get(p.root, "b")->isNull());
	CHECK_FALSE(get(p.root, "c")->isNull());
	CHECK(get(p.root, "d")->isNull());
	CHECK_FALSE(get(p.root, "e")->isNull());
}

TEST(YamlTree, LiteralLineOnlyWhenOffsetsMapToColumns)
{
	Parsed p;
	parse(p, "a: plain text\nb: \"quoted\"\nc: \"esc\\tape\"\nd: |\n  block\ne: two\n  lines\n"
	    "f: ${env:PORT}\n");
	CHECK(get(p.root, "a")->literalLine);
	CHECK(get(p.root, "b")->literalLine);
	CHECK_FALSE(get(p.root, "c")->literalLine);
	CHECK_FALSE(get(p.root, "d")->literalLine);
	CHECK_FALSE(get(p.root, "e")->literalLine);
	CHECK_FALSE(get(p.root, "f")->literalLine);
}

TEST(YamlTree, AnAliasIsTheSameNodeAsItsAnchor)
{
	Parsed p;
	parse(p, "a: &x {k: v}\nb: *x\n");
	POINTERS_EQUAL(get(p.root, "a"), get(p.root, "b"));
}

TEST(YamlTree, AliasesOfAliasesStaySmall)
{
	std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
	for (int i = 1; i < 10; i++) {
		std::string prev = "*a" + std::to_string(i - 1);
		text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + prev;
		for (int j = 1; j < 10; j++)
			text += ", " + prev;
		text += "]\n";
	}
	Parsed p;
	parse(p, text);
	STRCMP_EQUAL("", allErrors(p.errors).c_str());
	CHECK(p.tree.size() < 200);
}

TEST(YamlTree, AnAliasOfAnAncestorMakesACycleNotALoop)
{
	Parsed p;
	parse(p, "a: &x\n  b: *x\n");
	STRCMP_EQUAL("", allErrors(p.errors).c_str());
	const YamlNode *a = get(p.root, "a");
	POINTERS_EQUAL(a, get(a, "b"));
}

TEST(YamlTree, MergeKeyBringsTheMappingsPairsWhereItStands)
{
	Parsed p;
	parse(p, "base: &b {x: 1, y: 2}\nm:\n  first: 0\n  <<: *b\n  last: 3\n");
	STRCMP_EQUAL("", allErrors(p.errors).c_str());
	STRCMP_EQUAL("first=0,x=1,y=2,last=3", keys(get(p.root, "m")).c_str());
}

TEST(YamlTree, ExplicitKeysWinOverMergedOnesWhereverWritten)
{
	Parsed p;
	parse(p, "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 9\n");
	STRCMP_EQUAL("x=1,y=9", keys(get(p.root, "m")).c_str());
}

TEST(YamlTree, AListOfMergesTheFirstWins)
{
	Parsed p;
	parse(p, "a: &a {x: 1}\nb: &b {x: 2, z: 3}\nm: {<<: [*a, *b]}\n");
	STRCMP_EQUAL("x=1,z=3", keys(get(p.root, "m")).c_str());
}

TEST(YamlTree, MergesNestThroughMergedMappings)
{
	Parsed p;
	parse(p, "a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nm: {<<: *b, z: 3}\n");
	STRCMP_EQUAL("x=1,y=2,z=3", keys(get(p.root, "m")).c_str());
}

TEST(YamlTree, AQuotedLessLessIsAnOrdinaryKey)
{
	Parsed p;
	parse(p, "m: {\"<<\": 1}\n");
	STRCMP_EQUAL("", allErrors(p.errors).c_str());
	STRCMP_EQUAL("<<=1", keys(get(p.root, "m")).c_str());
}

TEST(YamlTree, MergingAScalarIsAnError)
{
	Parsed p;
	parse(p, "m:\n  <<: text\n");
	LONGS_EQUAL(1, p.errors.size());
	STRCMP_EQUAL("f.yml:2:7: a merge key '<<' takes a mapping or a list of mappings (such as "
	    "*defaults or [*a, *b])", p.errors[0].str().c_str());
}

TEST(YamlTree, MergingAnAncestorIsAnErrorNotALoop)
{
	Parsed p;
	parse(p, "m: &m\n  k: 1\n  <<: *m\n");
	LONGS_EQUAL(1, p.errors.size());
	STRCMP_CONTAINS("refers to a mapping that contains it", p.errors[0].message.c_str());
}

TEST(YamlTree, EnvironmentVariablesAreSubstituted)
{
	Parsed p;
	parse(p, "url: http://127.0.0.1:${env:PORT}/x\nempty: '${env:EMPTY}'\n");
	STRCMP_EQUAL("", allErrors(p.errors).c_str());
	STRCMP_EQUAL("http://127.0.0.1:8080/x", get(p.root, "url")->value.c_str());
	STRCMP_EQUAL("", get(p.root, "empty")->value.c_str());
}

TEST(YamlTree, AnInsertedDollarIsEscapedAndAnEscapeIsKept)
{
	Parsed p;
	parse(p, "a: cost ${env:PRICE}\nb: $${env:PORT} and $$ and $1\n");
	STRCMP_EQUAL("cost 5$$", get(p.root, "a")->value.c_str());
	STRCMP_EQUAL("$${env:PORT} and $$ and $1", get(p.root, "b")->value.c_str());
	STRCMP_EQUAL("cost 5$", unescapeDollars(get(p.root, "a")->value).c_str());
}

TEST(YamlTree, AnUnsetVariableIsAnErrorAtItsScalar)
{
	Parsed p;
	parse(p, "a: 1\nb: x ${env:NOPE}\n");
	LONGS_EQUAL(1, p.errors.size());
	STRCMP_EQUAL("f.yml:2:4: environment variable NOPE is not set (referred to as "
	    "${env:NOPE})", p.errors[0].str().c_str());
}

TEST(YamlTree, BadVariableReferencesAreErrors)
{
	std::string why;
	substituteEnv("${env:1X}", fakeEnv, &why);
	STRCMP_CONTAINS("invalid environment variable name '1X'", why.c_str());
	why.clear();
	substituteEnv("${env:PORT", fakeEnv, &why);
	STRCMP_CONTAINS("without its '}'", why.c_str());
}

TEST(YamlTree, EscapesRoundTrip)
{
	STRCMP_EQUAL("a$$b$$$$", escapeDollars("a$b$$").c_str());
	STRCMP_EQUAL("a$b$$", unescapeDollars(escapeDollars("a$b$$")).c_str());
	STRCMP_EQUAL("$1 $ ${x}", unescapeDollars("$1 $$ ${x}").c_str());
}

TEST(YamlTree, SyntaxErrorsHaveAPosition)
{
	Parsed p;
	parse(p, "a: 1\nb: [1, 2\n");
	CHECK(p.root == nullptr);
	LONGS_EQUAL(1, p.errors.size());
	STRCMP_CONTAINS("f.yml:3:1: YAML syntax error", p.errors[0].str().c_str());
}

TEST(YamlTree, ASecondDocumentIsAnError)
{
	Parsed p;
	parse(p, "a: 1\n---\nb: 2\n");
	LONGS_EQUAL(1, p.errors.size());
	STRCMP_CONTAINS("f.yml:3:1: a second YAML document", p.errors[0].str().c_str());
}

TEST(YamlTree, AnEmptyFileHasNoRootAndNoError)
{
	Parsed p;
	parse(p, "# nothing\n");
	CHECK(p.root == nullptr);
	CHECK(p.errors.empty());
}

TEST(YamlTree, DeepNestingIsRefused)
{
	std::string text(1000, '[');
	text += std::string(1000, ']') + "\n";
	Parsed p;
	parse(p, text);
	LONGS_EQUAL(1, p.errors.size());
	STRCMP_CONTAINS("nested more than 256 levels deep", p.errors[0].message.c_str());
}
