// SPDX-License-Identifier: ISC
// Label and value templates of json and xml metrics: every form, every error.
#include <string>

#include "common/structured_template.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme;
using common::NodeRef;
using common::StructuredTemplate;

namespace {

StructuredTemplate parse(const std::string &text, bool xml = false)
{
	auto t = StructuredTemplate::parse(text, xml);
	if (!t)
		FAIL(("parse of '" + text + "' failed: " + t.error().message).c_str());
	return std::move(*t);
}

std::string parseError(const std::string &text, bool xml = false)
{
	auto t = StructuredTemplate::parse(text, xml);
	if (t)
		FAIL(("parse of '" + text + "' succeeded where it should fail").c_str());
	return t.error().message;
}

// The one reference of a template that is only that reference.
NodeRef single(const std::string &text, bool xml = false)
{
	StructuredTemplate t = parse(text, xml);
	const NodeRef *r = t.single();
	if (!r) {
		FAIL(("'" + text + "' is not a single reference").c_str());
		return {};
	}
	return *r;
}

std::string name(const NodeRef &r, size_t i)
{
	CHECK(i < r.path.size());
	const std::string *s = std::get_if<std::string>(&r.path.at(i));
	if (!s) {
		FAIL("step is not a name");
		return "";
	}
	return *s;
}

int64_t index(const NodeRef &r, size_t i)
{
	CHECK(i < r.path.size());
	const int64_t *n = std::get_if<int64_t>(&r.path.at(i));
	if (!n) {
		FAIL("step is not an index");
		return 0;
	}
	return *n;
}

} // namespace

TEST_GROUP(StructuredTemplate) {};

TEST(StructuredTemplate, SelfIsTheMatchedNode)
{
	NodeRef r = single("${@}");
	CHECK(r.kind == NodeRef::Kind::Self);
	CHECK_FALSE(r.fromRoot);
	UNSIGNED_LONGS_EQUAL(0, r.up);
	STRCMP_EQUAL("${@}", r.text.c_str());
}

TEST(StructuredTemplate, KeyIsTheNameOfTheNode)
{
	NodeRef r = single("${key}");
	CHECK(r.kind == NodeRef::Kind::Key);
	UNSIGNED_LONGS_EQUAL(0, r.up);
	CHECK(r.path.empty());
	STRCMP_EQUAL("${key}", r.text.c_str());
}

TEST(StructuredTemplate, DottedPathBelowTheNode)
{
	NodeRef r = single("${.a.b_c.d-e.ns:x}");
	CHECK(r.kind == NodeRef::Kind::Path);
	UNSIGNED_LONGS_EQUAL(4, r.path.size());
	STRCMP_EQUAL("a", name(r, 0).c_str());
	STRCMP_EQUAL("b_c", name(r, 1).c_str());
	STRCMP_EQUAL("d-e", name(r, 2).c_str());
	STRCMP_EQUAL("ns:x", name(r, 3).c_str());
	STRCMP_EQUAL("${.a.b_c.d-e.ns:x}", r.text.c_str());
}

TEST(StructuredTemplate, IndexSteps)
{
	NodeRef r = single("${[0]}");
	CHECK(r.kind == NodeRef::Kind::Path);
	UNSIGNED_LONGS_EQUAL(1, r.path.size());
	LONGS_EQUAL(0, index(r, 0));

	r = single("${.Names[-1][12]}");
	UNSIGNED_LONGS_EQUAL(3, r.path.size());
	STRCMP_EQUAL("Names", name(r, 0).c_str());
	LONGS_EQUAL(-1, index(r, 1));
	LONGS_EQUAL(12, index(r, 2));
}

TEST(StructuredTemplate, QuotedNamesWithEscapes)
{
	NodeRef r = single("${['a b']}");
	UNSIGNED_LONGS_EQUAL(1, r.path.size());
	STRCMP_EQUAL("a b", name(r, 0).c_str());

	r = single("${.Labels['com.docker.compose.service']}");
	UNSIGNED_LONGS_EQUAL(2, r.path.size());
	STRCMP_EQUAL("com.docker.compose.service", name(r, 1).c_str());

	r = single(R"(${["it's"]['say \'hi\''][" \\ \" "]['}']})");
	UNSIGNED_LONGS_EQUAL(4, r.path.size());
	STRCMP_EQUAL("it's", name(r, 0).c_str());
	STRCMP_EQUAL("say 'hi'", name(r, 1).c_str());
	STRCMP_EQUAL(" \\ \" ", name(r, 2).c_str());
	STRCMP_EQUAL("}", name(r, 3).c_str());
}

TEST(StructuredTemplate, UpLevels)
{
	NodeRef r = single("${^key}");
	CHECK(r.kind == NodeRef::Kind::Key);
	UNSIGNED_LONGS_EQUAL(1, r.up);

	r = single("${^^.cluster_name}");
	CHECK(r.kind == NodeRef::Kind::Path);
	UNSIGNED_LONGS_EQUAL(2, r.up);
	STRCMP_EQUAL("cluster_name", name(r, 0).c_str());

	r = single("${^}");
	CHECK(r.kind == NodeRef::Kind::Self);
	UNSIGNED_LONGS_EQUAL(1, r.up);

	r = single("${^^^[2]}");
	UNSIGNED_LONGS_EQUAL(3, r.up);
	LONGS_EQUAL(2, index(r, 0));
}

TEST(StructuredTemplate, FromTheRoot)
{
	NodeRef r = single("${$.cluster_name}");
	CHECK(r.fromRoot);
	CHECK(r.kind == NodeRef::Kind::Path);
	UNSIGNED_LONGS_EQUAL(0, r.up);
	STRCMP_EQUAL("cluster_name", name(r, 0).c_str());

	r = single("${$}");
	CHECK(r.fromRoot);
	CHECK(r.kind == NodeRef::Kind::Self);
	CHECK(r.path.empty());

	r = single("${$['a'][1]}");
	CHECK(r.fromRoot);
	UNSIGNED_LONGS_EQUAL(2, r.path.size());
}

TEST(StructuredTemplate, LiteralsAroundReferences)
{
	StructuredTemplate t = parse("node ${key} of ${$.cluster} costs $$5");
	STRCMP_EQUAL("node ${key} of ${$.cluster} costs $$5", t.source().c_str());
	CHECK(t.hasReference());
	CHECK(t.single() == nullptr);
	UNSIGNED_LONGS_EQUAL(3, t.parts().size());
	STRCMP_EQUAL("node ", t.parts()[0].literal.c_str());
	CHECK(t.parts()[0].ref->kind == NodeRef::Kind::Key);
	STRCMP_EQUAL(" of ", t.parts()[1].literal.c_str());
	STRCMP_EQUAL("${$.cluster}", t.parts()[1].ref->text.c_str());
	STRCMP_EQUAL(" costs $5", t.parts()[2].literal.c_str());
	CHECK_FALSE(t.parts()[2].ref);
	STRCMP_EQUAL("node  of  costs $5", t.literal().c_str());
}

TEST(StructuredTemplate, ConstantTemplates)
{
	StructuredTemplate t = parse("production");
	CHECK_FALSE(t.hasReference());
	CHECK(t.single() == nullptr);
	STRCMP_EQUAL("production", t.literal().c_str());

	t = parse("");
	CHECK_FALSE(t.hasReference());
	CHECK(t.parts().empty());
	STRCMP_EQUAL("", t.literal().c_str());

	t = parse("a } b { c $$");
	STRCMP_EQUAL("a } b { c $", t.literal().c_str());
}

TEST(StructuredTemplate, SingleNeedsNoLiteralText)
{
	CHECK(parse("${.a}").single() != nullptr);
	CHECK(parse("x${.a}").single() == nullptr);
	CHECK(parse("${.a}x").single() == nullptr);
	CHECK(parse("${.a}${.b}").single() == nullptr);
}

TEST(StructuredTemplate, XmlNamesAndAttributes)
{
	NodeRef r = single("${.ns:server.state}", true);
	UNSIGNED_LONGS_EQUAL(2, r.path.size());
	STRCMP_EQUAL("ns:server", name(r, 0).c_str());
	r = single("${^['odd name']}", true);
	UNSIGNED_LONGS_EQUAL(1, r.up);
}

TEST(StructuredTemplate, LoneDollarIsRefused)
{
	STRCMP_EQUAL("at offset 5: write $$ for a dollar sign", parseError("cost $").c_str());
	STRCMP_EQUAL("at offset 0: write $$ for a dollar sign", parseError("$x").c_str());
	STRCMP_EQUAL("at offset 3: write $$ for a dollar sign", parseError("$$ $ ${@}").c_str());
}

TEST(StructuredTemplate, CapturesAreForTextContent)
{
	STRCMP_EQUAL("at offset 3: $12 refers to a regex capture, which only content_type text "
	    "has; here write ${@} (the node), ${key}, ${.name} (a member) or ${$.name}",
	    parseError("id-$12").c_str());
	STRCMP_EQUAL("at offset 0: ${1} refers to a regex capture, which only content_type text "
	    "has; here write ${@} (the node), ${key}, ${.name} (a member) or ${$.name}",
	    parseError("${1}").c_str());
	STRCMP_EQUAL("at offset 2: ${name} refers to a regex capture, which only content_type "
	    "text has; here write ${@} (the node's text), ${key}, ${.name} (an attribute or "
	    "child) or ${$.name}",
	    parseError("x ${name}", true).c_str());
	// "key" is a reference of its own, "keys" is not.
	STRCMP_CONTAINS("${keys} refers to a regex capture", parseError("${keys}").c_str());
}

TEST(StructuredTemplate, UnterminatedReference)
{
	STRCMP_EQUAL("at offset 4: ${ without a closing }", parseError("abc ${.a").c_str());
	STRCMP_EQUAL("at offset 0: ${ without a closing }", parseError("${").c_str());
	// A brace inside quotes does not close the reference.
	STRCMP_EQUAL("at offset 0: ${ without a closing }", parseError("${['a}").c_str());
}

TEST(StructuredTemplate, EmptyReference)
{
	STRCMP_EQUAL("at offset 2: empty reference ${}; write ${@} for the matched node",
	    parseError("a ${}").c_str());
}

TEST(StructuredTemplate, BadSteps)
{
	STRCMP_EQUAL("at offset 3: expected a name after '.' (a letter or '_' first; write "
	    "['...'] for any other name)", parseError("${.}").c_str());
	STRCMP_EQUAL("at offset 5: expected a name after '.' (a letter or '_' first; write "
	    "['...'] for any other name)", parseError("${.a.1x}").c_str());
	STRCMP_EQUAL("at offset 3: expected a quoted name or an index after '[', not 'x'",
	    parseError("${[x]}").c_str());
	STRCMP_EQUAL("at offset 4: expected ']' after the index, not 'a'",
	    parseError("${[1a]}").c_str());
	STRCMP_EQUAL("at offset 4: expected a digit in the index", parseError("${[-]}").c_str());
	STRCMP_EQUAL("at offset 6: expected ']' after the quoted name, not '}'",
	    parseError("${['a'}").c_str());
	STRCMP_EQUAL("at offset 4: unknown escape in a quoted name (only \\\\, \\' and \\\" are)",
	    parseError("${['\\n']}").c_str());
	STRCMP_EQUAL("at offset 2: index too large",
	    parseError("${[99999999999999999999]}").c_str());
	STRCMP_EQUAL("at offset 2: expected @, key, ^, $, '.' or '[' after ${, not 'a' "
	    "(a member of the node is ${.name})", parseError("${a.b}").c_str());
}

TEST(StructuredTemplate, CaretAfterDollar)
{
	STRCMP_EQUAL("at offset 3: ^ cannot follow $: the document root has no parent",
	    parseError("${$^.a}").c_str());
}

TEST(StructuredTemplate, TrailingJunkInBraces)
{
	STRCMP_EQUAL("at offset 3: unexpected '.' in a reference; expected '}'",
	    parseError("${@.a}").c_str());
	STRCMP_EQUAL("at offset 5: unexpected '.' in a reference; expected '}'",
	    parseError("${key.y}").c_str());
	STRCMP_EQUAL("at offset 4: unexpected ' ' in a reference; expected '.', '[' or '}'",
	    parseError("${.a }").c_str());
	STRCMP_EQUAL("at offset 3: unexpected '@' in a reference; expected '.', '[' or '}'",
	    parseError("${^@}").c_str());
	STRCMP_EQUAL("at offset 3: unexpected 'k' in a reference; expected '.', '[' or '}'",
	    parseError("${$key}").c_str());
}

TEST(StructuredTemplate, IndexStepsAreJsonOnly)
{
	STRCMP_EQUAL("at offset 9: an index step [N] is for json arrays; in xml write ${.name} "
	    "for the first child of that name", parseError("${.server[2]}", true).c_str());
	// Quoted names are fine in xml.
	parse("${['server']}", true);
}

TEST(StructuredTemplate, ErrorOffsetsCountFromTheTemplateStart)
{
	STRCMP_EQUAL("at offset 12: expected a name after '.' (a letter or '_' first; write "
	    "['...'] for any other name)", parseError("${@} - ${.a.}").c_str());
}
