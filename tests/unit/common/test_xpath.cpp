// SPDX-License-Identifier: ISC
// XPath filters and namespaces of xml groups, as the config loader checks them.
#include <string>

#include <libxml/globals.h>
#include <libxml/xpath.h>

#include "common/xpath.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme;
using common::checkNamespaces;
using common::checkXPath;
using common::Pairs;

namespace {

const Pairs kAtom = {{"a", "http://www.w3.org/2005/Atom"}};

std::string xpathError(const std::string &expr, const Pairs &ns = {})
{
	auto r = checkXPath(expr, ns);
	if (r)
		FAIL(("accepted: " + expr).c_str());
	return r.error().message;
}

void accepted(const std::string &expr, const Pairs &ns = {})
{
	auto r = checkXPath(expr, ns);
	if (!r)
		FAIL((expr + ": " + r.error().message).c_str());
}

} // namespace

TEST_GROUP(XPathCheck)
{
};

TEST(XPathCheck, AcceptsWhatOperatorsWrite)
{
	accepted("/rtmp/server/application/live/stream");
	accepted("//stream[name='cam1']/bw_in");
	accepted("count(//stream)");
	accepted("sum(//disk/@size) div 1024");
	accepted("//server[@status = 'up' and @weight > 1] | //backup");
	accepted("string(/status/state)");
	accepted("boolean(//error)");
	accepted("/domain/devices/disk/@type");
	accepted("//a:entry/a:title/text()", kAtom);
	accepted("count(//a:*)", kAtom);
	accepted("//a:entry[@xml:lang = 'en']", kAtom);
	accepted("child::a:feed/descendant-or-self::node()/attribute::href", kAtom);
	accepted("2 * 3 mod 2");
	accepted("//*[local-name() = 'div']");
	accepted("//or/and/div");  // element names that look like operators
	accepted("//x[. = 'p:q']");  // a colon inside a literal is no prefix
	accepted("//x[. = \"p:q\"]");
	accepted("processing-instruction('xml-stylesheet')");
	accepted("ancestor::*[1]");
}

TEST(XPathCheck, SyntaxErrorsNameTheirOffset)
{
	STRCMP_EQUAL("at offset 8: Invalid expression", xpathError("/status/").c_str());
	std::string e = xpathError("//stream[name='cam1'");
	STRCMP_CONTAINS("at offset 20:", e.c_str());
	e = xpathError("count(//a");
	STRCMP_CONTAINS("at offset 9:", e.c_str());
	e = xpathError("//a[@x = 'open]");
	STRCMP_CONTAINS("Unfinished literal", e.c_str());
	e = xpathError("");
	STRCMP_CONTAINS("at offset 0:", e.c_str());
	e = xpathError("/a/b)");
	STRCMP_CONTAINS("at offset 4:", e.c_str());
	// No trailing newline from libxml2's message.
	CHECK(e.back() != '\n');
}

TEST(XPathCheck, UndeclaredPrefixIsRefusedAtItsOffset)
{
	STRCMP_EQUAL("at offset 2: namespace prefix 'a' is not declared under 'namespaces'",
	    xpathError("//a:entry").c_str());
	STRCMP_EQUAL("at offset 10: namespace prefix 'b' is not declared under 'namespaces'",
	    xpathError("//a:entry/b:title", kAtom).c_str());
	STRCMP_EQUAL("at offset 10: namespace prefix 'x' is not declared under 'namespaces'",
	    xpathError("//a:entry/x:*", kAtom).c_str());
	STRCMP_EQUAL("at offset 5: namespace prefix 'q' is not declared under 'namespaces'",
	    xpathError("//e/@q:id").c_str());
	STRCMP_EQUAL("at offset 17: namespace prefix 'p' is not declared under 'namespaces'",
	    xpathError("//x[. = 'p:q' or p:q]").c_str());
	STRCMP_EQUAL("at offset 7: namespace prefix 'soap' is not declared under 'namespaces'",
	    xpathError("child::soap:Envelope").c_str());
	// Declared: the same expressions pass.
	accepted("//a:entry/a:title", kAtom);
	accepted("//e/@q:id", {{"q", "urn:q"}});
}

TEST(XPathCheck, UnknownFunctionsAndVariablesAreRefused)
{
	STRCMP_EQUAL("at offset 0: unknown XPath function 'cont()'",
	    xpathError("cont(//a)").c_str());
	STRCMP_EQUAL("at offset 7: unknown XPath function 'a:count()'",
	    xpathError("1 + 2 *a:count(//x)", kAtom).c_str());
	STRCMP_EQUAL("at offset 4: namespace prefix 'f' is not declared under 'namespaces'",
	    xpathError("//x[f:g()]").c_str());
	std::string e = xpathError("//x[. = $limit]");
	STRCMP_CONTAINS("at offset 8: variable references", e.c_str());
}

TEST(XPathCheck, WhatFailsOnEveryDocumentIsRefused)
{
	STRCMP_EQUAL("evaluation fails: Invalid type", xpathError("count('x')").c_str());
	STRCMP_EQUAL("evaluation fails: Invalid number of arguments",
	    xpathError("count()").c_str());
	STRCMP_EQUAL("evaluation fails: Invalid number of arguments",
	    xpathError("substring('abc')").c_str());
}

TEST(XPathCheck, ResultTypeIsKnownAtCompile)
{
	auto type = [](const std::string &expr) {
		auto c = common::compileXPath(expr, kAtom);
		if (!c)
			FAIL((expr + ": " + c.error().message).c_str());
		return c->resultType;
	};
	LONGS_EQUAL(XPATH_NODESET, type("//a:entry"));
	LONGS_EQUAL(XPATH_NODESET, type("/x | /y"));
	LONGS_EQUAL(XPATH_NUMBER, type("count(//a:entry)"));
	LONGS_EQUAL(XPATH_NUMBER, type("sum(//x) div 2"));
	LONGS_EQUAL(XPATH_BOOLEAN, type("//x = 'up'"));
	LONGS_EQUAL(XPATH_BOOLEAN, type("not(//x)"));
	LONGS_EQUAL(XPATH_STRING, type("string(/status/state)"));
	LONGS_EQUAL(XPATH_STRING, type("concat('a', 'b')"));
}

TEST(XPathCheck, NamespacesAreChecked)
{
	CHECK(checkNamespaces({}).has_value());
	CHECK(checkNamespaces({{"a", "urn:a"}, {"s_1.x-y", "urn:s"}}).has_value());
	CHECK(checkNamespaces({{"xml", "http://www.w3.org/XML/1998/namespace"}}).has_value());

	auto r = checkNamespaces({{"a:b", "urn:x"}});
	CHECK(!r);
	STRCMP_CONTAINS("'a:b' is not an XML name", r.error().message.c_str());
	r = checkNamespaces({{"1a", "urn:x"}});
	CHECK(!r);
	r = checkNamespaces({{"", "urn:x"}});
	CHECK(!r);
	r = checkNamespaces({{"a", ""}});
	CHECK(!r);
	STRCMP_EQUAL("namespace prefix 'a' has an empty URI", r.error().message.c_str());
	r = checkNamespaces({{"xmlns", "urn:x"}});
	CHECK(!r);
	r = checkNamespaces({{"xml", "urn:x"}});
	CHECK(!r);
	r = checkNamespaces({{"a", "urn:x"}, {"a", "urn:y"}});
	CHECK(!r);
	STRCMP_EQUAL("namespace prefix 'a' is declared twice", r.error().message.c_str());
	// checkXPath refuses bad namespaces as well.
	CHECK(!checkXPath("//a:x", {{"a", ""}}).has_value());
}

TEST(XPathCheck, HandlersAreRestoredAndNothingLeaks)
{
	xmlStructuredErrorFunc before = xmlStructuredError;
	void *beforeContext = xmlStructuredErrorContext;
	xpathError("/status/");
	xpathError("//a:x");
	accepted("/x");
	CHECK(before == xmlStructuredError);
	CHECK(beforeContext == xmlStructuredErrorContext);
}
