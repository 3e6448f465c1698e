// SPDX-License-Identifier: ISC
// Fuzz target: XML documents, XPath filters, and content type xml as a worker runs it.
//
// Built two ways, as fuzz_frame.c is: a libFuzzer target with
// -DPME_LIBFUZZER -fsanitize=fuzzer, otherwise a meson test whose main()
// runs a bounded deterministic batch.
//
// An input is an XPath filter, an empty line, and an XML document (a filter
// alone when there is no empty line: "\n\n").  The filter is an operator's,
// checked when the configuration loads and compiled by the worker; the
// document is what a source returned.  The seeds are the xml fixtures
// under tests/data/xml/ with their configurations' filters, documents that
// try what libxml2 must not do for pme (internal and external entities,
// billion laughs, an external DTD, XInclude), namespaces declared,
// redeclared, defaulted and undeclared, nesting around libxml2's depth
// limit, and random documents built from those pieces; mutations work on
// bytes, on the filter's tokens and on the document's markup.
//
// What must hold:
//  - a document that parses holds no entity of any kind, declared or
//    referenced, in its tree or its attributes, and has no external
//    subset; one that does not parse says why: "invalid XML at line L,
//    column C: ...", or that pme refuses entities;
//  - a filter that common::checkXPath() refuses says "at offset N: ..."
//    with N inside it, or "evaluation fails: ...", in valid UTF-8 when the
//    filter is (as one from pme.yml always is); one it
//    accepts, common::compileXPath() compiles too, with a static result
//    type, and so does the worker for a metric without node references;
//    a metric with them compiles exactly when that type is a node-set;
//  - the metrics of the fixtures' configurations, and metrics whose filter
//    is the fuzzed one (labels from the node's name, its parent, an
//    attribute or child, a namespaced child, its text, the root; a value
//    template, value_regex and a values mapping), give what
//    fuzz_extraction.hpp checks, and their group's result is encoded,
//    reassembled and applied by the supervisor without an error.
// XPath evaluation is bounded by the extractor's operation limit
// (kXPathOpLimit), so every filter is evaluated on every document.
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <libxml/tree.h>

#include "common/log.hpp"
#include "common/utf8.hpp"
#include "common/xpath.hpp"
#include "fuzz_extraction.hpp"
#include "fuzz_util.hpp"
#include "worker/xml_extractor.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

using namespace pme;
using common::MetricConfig;
using fuzz::broken;
using fuzz::check;
using worker::XmlDocument;
using worker::XmlExtractor;

namespace {

// Outcomes, to show how deep a run went.
size_t accepted = 0, refused = 0, nodeSets = 0, documents = 0, badDocuments = 0,
    entitiesRefused = 0;

// Metrics whose filter is replaced by the fuzzed one.  The first three
// reference nodes and need a node-set; `scalar` references only the root
// and takes any filter.
const char *const queryConfig = R"(
services:
  q:
    metric_prefix: q_
    metric_groups:
      query:
        source_type: file
        source: /dev/null
        content_type: xml
        namespaces:
          dav: "DAV:"
          oc: "http://owncloud.org/ns"
          a: "http://www.w3.org/2005/Atom"
          s: "http://schemas.xmlsoap.org/soap/envelope/"
        metrics:
          nodes:
            filter: '/*'
            labels:
              key: "${key}"
              parent: "${^key}"
              name: "${.name}"
              href: "${.dav:href}"
              self: "${@}"
              deep: "${.a.b.c}"
              up: "${^^.id}"
              server: "${$.rtmp.nginx_version}"
              both: "${key} in ${^key}: $$"
            value_on_error: -1
          info:
            type: info
            filter: '/*'
            labels: { key: "${key}", id: "${.id}", lang: "${.xml:lang}" }
          mapped:
            type: counter
            filter: '/*'
            value: "${.size}"
            value_regex: '(?<value>[0-9.]+) ?(ms|KiB)?'
            values: { "yes": 1, "no": 0, "": -1 }
            scale: 1024
            labels: { key: "${key}" }
          scalar:
            filter: 'count(/*)'
            labels: { server: "${$.rtmp.nginx_version}", fixed: "yes" }
)";
// Whether a metric of queryConfig has node references.
bool referencesNodes(const MetricConfig &m)
{
	return m.key != "scalar";
}

// The xml fixtures: a configuration each, and its documents.
struct Fixture {
	const char *config;
	std::vector<const char *> documents;
};
const Fixture fixtures[] = {
	{"tests/data/xml/libvirt/config.yml",
	    {"tests/data/xml/libvirt/domain.xml", "tests/data/xml/libvirt/capabilities.xml"}},
	{"tests/data/xml/nginx_rtmp/config.yml", {"tests/data/xml/nginx_rtmp/stat.xml"}},
	{"tests/data/xml/webdav_quota/config.yml", {"tests/data/xml/webdav_quota/propfind.xml"}},
};

using XmlSetup = fuzz::Setup<XmlExtractor>;

auto compileXml = [](const MetricConfig &m, const common::GroupConfig &g) {
	return XmlExtractor::compile(m, g.namespaces);
};

// Small documents every filter is also evaluated on.
const char *const smallDocuments[] = {
	"<rtmp><nginx_version>1.22.1</nginx_version><server><application><name>live</name>"
	"<live><stream><name>cam1</name><nclients>3</nclients><bw_in>4718592</bw_in>"
	"<client id=\"14\"><publishing/></client></stream></live></application></server></rtmp>",
	"<?xml version=\"1.0\"?><d:multistatus xmlns:d=\"DAV:\" xmlns:oc=\"http://owncloud.org/ns\">"
	"<d:response><d:href>/a b/</d:href><d:propstat><d:prop><oc:size>12 KiB</oc:size>"
	"</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>",
	"<a xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"en\" id=\"7\"><!-- c --><?pi x?>"
	"<b size=\"yes\"><c>caf\xc3\xa9</c><![CDATA[<raw>]]></b><b size=\"2.5 ms\"/>&#x1F4C8;"
	"<name>x</name></a>",
};

struct Fixtures {
	std::vector<std::unique_ptr<XmlSetup>> setups;
	std::unique_ptr<XmlSetup> query;
	std::vector<XmlDocument> small;

	Fixtures()
	{
		// The store logs what it refuses: not on stderr, thousands of times.
		common::log::init("fuzz_xml", common::log::Sink::Callback, 0);
		common::log::setCallback([](int, const std::string &) {});
		for (const auto &f : fixtures)
			setups.push_back(std::make_unique<XmlSetup>(fuzz::fixtureConfig(f.config), f.config,
			    common::ContentType::Xml, compileXml));
		query = std::make_unique<XmlSetup>(queryConfig, "query.yml",
		    common::ContentType::Xml, compileXml);
		for (const char *text : smallDocuments) {
			auto d = XmlDocument::parse(text);
			if (!d) {
				std::fprintf(stderr, "fuzz_xml: a small document does not parse: %s\n",
				    d.error().message.c_str());
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

bool entityNode(const xmlNode *n)
{
	return n->type == XML_ENTITY_REF_NODE || n->type == XML_ENTITY_NODE ||
	    n->type == XML_ENTITY_DECL || n->type == XML_XINCLUDE_START ||
	    n->type == XML_XINCLUDE_END;
}

// Every node, attributes and their children included, without recursion.
void checkTree(xmlDoc *doc)
{
	check(doc->extSubset == nullptr, "a document with an external subset");
	if (doc->intSubset) {
		check(doc->intSubset->entities == nullptr && doc->intSubset->pentities == nullptr,
		    "a document that declares entities");
		for (xmlNode *n = doc->intSubset->children; n; n = n->next)
			check(!entityNode(n), "an entity in the internal subset");
	}
	std::vector<xmlNode *> stack;
	for (xmlNode *n = doc->children; n; n = n->next)
		stack.push_back(n);
	while (!stack.empty()) {
		xmlNode *n = stack.back();
		stack.pop_back();
		check(!entityNode(n), [&] {
			return "an entity node of type " + std::to_string(n->type) + " in the tree";
		});
		if (n->type != XML_ELEMENT_NODE && n->type != XML_ATTRIBUTE_NODE)
			continue;
		for (xmlNode *c = n->children; c; c = c->next)
			stack.push_back(c);
		if (n->type == XML_ELEMENT_NODE)
			for (xmlAttr *a = n->properties; a; a = a->next)
				stack.push_back(reinterpret_cast<xmlNode *>(a));
	}
}

void checkDocumentError(const common::Error &e)
{
	const std::string &m = e.message;
	if (m.find("entities") != std::string::npos && m.rfind("XML document declares", 0) == 0) {
		entitiesRefused++;
		return;
	}
	unsigned long line = 0, column = 0;
	check(m == "invalid XML" ||
	    std::sscanf(m.c_str(), "invalid XML at line %lu, column %lu: ", &line, &column) == 2,
	    [&] { return "a document error that says neither where nor why: " +
		fuzz::cLiteral(m, 200); });
}

void checkXPathError(const std::string &expr, const common::Error &e)
{
	const std::string &m = e.message;
	// A filter from pme.yml is valid UTF-8 (libyaml sees to it); one that
	// is not may be quoted as it is.
	check(!common::validUtf8(expr) || common::validUtf8(m), [&] {
		return "error is not UTF-8: " + fuzz::cLiteral(m);
	});
	if (m.rfind("evaluation fails: ", 0) == 0)
		return;
	unsigned long offset = 0;
	int used = 0;
	check(std::sscanf(m.c_str(), "at offset %lu: %n", &offset, &used) == 1 && used > 0 &&
	    m.size() > static_cast<size_t>(used), [&] {
		return "error without its offset: " + fuzz::cLiteral(m, 200);
	});
	check(offset <= expr.size(), [&] {
		return "offset past the filter: " + fuzz::cLiteral(m, 200);
	});
}

// Every xml group of a setup over one document, as the worker runs it.
void runGroups(XmlSetup &setup, const XmlDocument &doc)
{
	for (auto &g : setup.groups) {
		fuzz::context = g.config->key;
		common::GroupResult r;
		r.group = g.config->key;
		for (auto &[m, x] : g.metrics)
			fuzz::addExtraction(r, *m, x.extract(doc), common::ContentType::Xml);
		fuzz::apply(*setup.store, g.service, r);
	}
	fuzz::context = {};
}

// The filter on its own, then as the filter of each metric of queryConfig,
// over the document and the small ones.
void runFilter(const std::string &expr, const XmlDocument *doc)
{
	Fixtures &f = fixturesOnce();
	XmlSetup &setup = *f.query;
	const auto &g = setup.groups.at(0);
	const common::Pairs &ns = g.config->namespaces;

	auto checked = common::checkXPath(expr, ns);
	if (!checked) {
		refused++;
		checkXPathError(expr, checked.error());
		return;
	}
	accepted++;
	auto compiled = common::compileXPath(expr, ns);
	check(compiled.has_value(), [&] {
		return "a filter the configuration accepts does not compile: " +
		    compiled.error().message;
	});
	xmlXPathObjectType type = compiled->resultType;
	check(type == XPATH_NODESET || type == XPATH_NUMBER || type == XPATH_BOOLEAN ||
	    type == XPATH_STRING, [&] { return "result type " + std::to_string(type); });
	nodeSets += type == XPATH_NODESET;

	std::vector<const XmlDocument *> docs;
	if (doc)
		docs.push_back(doc);
	for (const auto &s : f.small)
		docs.push_back(&s);
	std::vector<std::pair<MetricConfig, XmlExtractor>> metrics;
	for (const auto &entry : g.metrics) {
		MetricConfig metric = *entry.first;
		metric.filter = expr;
		fuzz::context = metric.key;
		auto x = XmlExtractor::compile(metric, ns);
		bool expected = !referencesNodes(metric) || type == XPATH_NODESET;
		check(x.has_value() == expected, [&] {
			return std::string("the metric ") + (x ? "compiles" : "does not compile: " +
			    x.error().message) + ", for a result of type " + std::to_string(type);
		});
		if (x)
			metrics.emplace_back(std::move(metric), std::move(*x));
	}
	for (const XmlDocument *d : docs) {
		common::GroupResult r;
		r.group = g.config->key;
		for (const auto &[metric, x] : metrics) {
			fuzz::context = metric.key;
			fuzz::addExtraction(r, metric, x.extract(*d), common::ContentType::Xml);
		}
		fuzz::apply(*setup.store, g.service, r);
	}
	fuzz::context = {};
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Fixtures &f = fixturesOnce();
	fuzz::targetName = "fuzz_xml";
	const std::string_view input(reinterpret_cast<const char *>(data), size);
	fuzz::currentInput = input;
	try {
		size_t blank = input.find("\n\n");
		const std::string expr(input.substr(0, blank));
		std::optional<XmlDocument> doc;
		if (blank != std::string_view::npos) {
			auto d = XmlDocument::parse(input.substr(blank + 2));
			if (d) {
				documents++;
				checkTree(d->get());
				doc.emplace(std::move(*d));
				for (auto &setup : f.setups)
					runGroups(*setup, *doc);
			} else {
				badDocuments++;
				checkDocumentError(d.error());
			}
		}
		runFilter(expr, doc ? &*doc : nullptr);
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
		std::fprintf(stderr, "fuzz_xml: cannot read %s (is PME_SOURCE_ROOT set?)\n", rel);
		std::exit(1);
	}
	return text;
}

// Documents that try what pme refuses or what libxml2 handles specially.
const std::vector<std::string> hostileDocuments = {
	"<!DOCTYPE r [<!ENTITY a \"x\">]><r>&a;</r>",
	"<!DOCTYPE r [<!ENTITY a \"x\">]><r a=\"&a;\"/>",
	"<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>",
	"<!DOCTYPE r [<!ENTITY % p SYSTEM \"http://127.0.0.1:1/x.dtd\"> %p;]><r/>",
	"<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
	"<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><r>&c;</r>",
	"<!DOCTYPE r SYSTEM \"http://127.0.0.1:1/r.dtd\"><r>&undeclared;</r>",
	"<!DOCTYPE r PUBLIC \"-//X//Y\" \"r.dtd\"><r/>",
	"<!DOCTYPE r [<!ATTLIST r id ID #IMPLIED a CDATA \"default\">]><r id=\"x\"/>",
	"<!DOCTYPE r [<!NOTATION n SYSTEM \"x\"><!ENTITY u SYSTEM \"x\" NDATA n>]><r/>",
	"<r xmlns:xi=\"http://www.w3.org/2001/XInclude\"><xi:include href=\"/etc/passwd\" "
	"parse=\"text\"/></r>",
	"<r>&lt;&gt;&amp;&apos;&quot;&#65;&#x10FFFF;&#0;</r>",
	"<r>&#xD800;</r>",
	"<r><![CDATA[]]>]]></r>",
	"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r>caf\xe9</r>",
	"<?xml version=\"1.0\" encoding=\"UTF-16\"?><r/>",
	"\xef\xbb\xbf<r/>",
	std::string("\xff\xfe<\0r\0/\0>\0", 10),
	"<?xml version=\"1.1\"?><r>\x01</r>",
	"<p:r xmlns:p=\"urn:p\"><p:a xmlns:p=\"urn:q\"><p:b/></p:a><q:c/></p:r>",
	"<r xmlns=\"urn:d\"><a xmlns=\"\"><b/></a></r>",
	"<r xmlns:xml=\"http://www.w3.org/XML/1998/namespace\" xml:lang=\"de\"/>",
	"<r xmlns:a=\"urn:a\" xmlns:b=\"urn:a\" a:x=\"1\" b:x=\"2\"/>",
	"<r a=\"1\" a=\"2\"/>",
	"<r><a></b></r>",
	"<r/><r/>",
	"",
};

// What a filter's token may become.
const std::vector<std::string> xpathDict = {
	"/", "//", "@", "*", "..", ".", "[", "]", "(", ")", "|", " and ", " or ", "not(", "count(",
	"sum(", "string(", "name(", "local-name(", "namespace-uri(", "starts-with(", "contains(",
	"substring(", "substring-before(", "concat(", "translate(", "normalize-space(",
	"number(", "boolean(", "round(", "floor(", "string-length(", "position()", "last()",
	"text()", "node()", "comment()", "processing-instruction(", "ancestor::", "ancestor-or-self::",
	"descendant::", "descendant-or-self::", "following::", "following-sibling::", "preceding::",
	"preceding-sibling::", "namespace::", "attribute::", "child::", "self::", "parent::",
	" div ", " mod ", "=", "!=", "<", "<=", ">", ">=", "+", "-", "'", "\"", ",", "$x", "dav:",
	"oc:", "a:", "zz:", "xml:", "1", "-1", "0.5", "1e3", "NaN", "id(", "lang(", "document(",
	"key(", "true()", "false()", "stream", "name", "client", "response", "*:x",
	std::string(1, '\0'), "\xc3\xa9", "\xff",
};

// What a document's token may become.
const std::vector<std::string> markupDict = {
	"<", ">", "</", "/>", "<!--", "-->", "<![CDATA[", "]]>", "<?", "?>", "<!DOCTYPE r [", "]>",
	"<!ENTITY e \"v\">", "&e;", "&amp;", "&lt;", "&#10;", "&#x0;", "&#xFFFE;", "&#1114112;",
	"xmlns=\"urn:x\"", "xmlns:p=\"urn:p\"", "xmlns:p=\"\"", "p:", "xml:lang=\"en\"",
	" id=\"1\"", " a=\"", "\"", "'", "=", "<stream>", "</stream>", "<name>", "</name>",
	"<d:href>", "</d:href>", "<oc:size>12</oc:size>", "\r\n", "\t", std::string(1, '\0'),
	"\xc3", "\xed\xa0\x80", "\xef\xbf\xbe", "\xef\xbb\xbf",
};

const std::vector<std::string> names = {
	"stream", "name", "client", "nclients", "application", "server", "rtmp", "domain",
	"disk", "target", "size", "id", "a", "b", "c", "p:x", "d:response", "d:href", "oc:size",
	"undeclared:x", "caf\xc3\xa9", "_", "x-y.z",
};
const std::vector<std::string> texts = {
	"", "1", "-1.5e3", "NaN", "yes", "no", "12 KiB", "2.5 ms", "caf\xc3\xa9", "a&amp;b",
	"&#x1F4C8;", " spaced ", "<![CDATA[x<y]]>", std::string(5000, 'y'),
};

void randomElement(std::string &out, fuzz::Rng &rng, unsigned depth, size_t &budget)
{
	const std::string &name = rng.pick(names);
	out += "<" + name;
	if (rng.chance(20))
		out += rng.chance(50) ? " xmlns=\"urn:d\"" : " xmlns:p=\"urn:p\" xmlns:d=\"DAV:\"";
	for (size_t n = rng.below(3); n > 0; n--) {
		std::string value = rng.pick(texts).substr(0, 40);
		if (value.find('<') != std::string::npos)
			value = "x";
		out += " " + rng.pick(std::vector<std::string>{"id", "name", "size", "p:a", "xml:lang"}) +
		    "=\"" + value + "\"";
	}
	if (rng.chance(20) || budget == 0 || depth > 12) {
		out += "/>";
		return;
	}
	out += ">";
	for (size_t n = rng.below(5); n > 0 && budget > 0; n--, budget--) {
		switch (rng.below(6)) {
		case 0:
		case 1:
			randomElement(out, rng, depth + 1, budget);
			break;
		case 2:
			out += rng.pick(texts);
			break;
		case 3:
			out += "<!-- " + rng.pick(texts).substr(0, 20) + " -->";
			break;
		case 4:
			out += "<?pi " + rng.pick(texts).substr(0, 20) + "?>";
			break;
		default:
			out += "<![CDATA[" + rng.pick(texts).substr(0, 40) + "]]>";
			break;
		}
	}
	out += "</" + name + ">";
}

// A random document, sometimes nested around libxml2's depth limit (256).
std::string randomDocument(fuzz::Rng &rng)
{
	std::string out;
	if (rng.chance(30))
		out += "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";
	size_t budget = 200;
	size_t depth = rng.chance(10) ? 240 + rng.below(30) : 0;
	for (size_t i = 0; i < depth; i++)
		out += "<d:n xmlns:d=\"DAV:\">";
	randomElement(out, rng, 0, budget);
	for (size_t i = 0; i < depth; i++)
		out += "</d:n>";
	return out;
}

// Markup level edits that keep most documents well-formed: an element's
// start tag copied, as an empty element, after another tag; the document
// wrapped in elements that declare namespaces (sometimes past libxml2's
// depth limit); a DOCTYPE added.
void mutateMarkup(std::string &doc, fuzz::Rng &rng)
{
	switch (rng.below(3)) {
	case 0: {
		size_t open = doc.find('<', rng.below(doc.size() + 1));
		size_t close = open == std::string::npos ? open : doc.find('>', open);
		size_t after = close == std::string::npos ? close : doc.find('>', close + 1);
		if (after == std::string::npos || doc[open + 1] == '/' || doc[open + 1] == '?' ||
		    doc[open + 1] == '!')
			break;
		std::string tag = doc.substr(open, close - open);
		if (tag.back() == '/')
			tag.pop_back();
		doc.insert(after + 1, tag + "/>");
		break;
	}
	case 1: {
		size_t start = doc.find("?>");
		start = start == std::string::npos ? 0 : start + 2;
		size_t n = rng.chance(20) ? 250 + rng.below(10) : 1 + rng.below(4);
		std::string open, close;
		for (size_t i = 0; i < n; i++) {
			bool prefixed = rng.chance(50);
			open += prefixed ? "<p:w xmlns:p=\"urn:p\">" : "<w xmlns=\"urn:w\">";
			close.insert(0, prefixed ? "</p:w>" : "</w>");
		}
		doc = doc.substr(0, start) + open + doc.substr(start) + close;
		break;
	}
	default:
		doc = rng.pick(std::vector<std::string>{"<!DOCTYPE rtmp>",
		    "<!DOCTYPE rtmp [<!ELEMENT rtmp ANY>]>",
		    "<!DOCTYPE rtmp [<!ENTITY e \"x\">]>"}) + doc;
		break;
	}
}

void mutateFilter(std::string &f, fuzz::Rng &rng, const std::vector<std::string> &filters)
{
	switch (rng.below(3)) {
	case 0: {
		// A step or predicate of another filter appended.
		const std::string &other = rng.pick(filters);
		size_t from = other.find_first_of("/[", rng.below(other.size() + 1));
		if (from != std::string::npos)
			f += other.substr(from);
		break;
	}
	case 1:
		f = rng.pick(std::vector<std::string>{"count(", "sum(", "boolean(", "string(",
		    "name(", "not("}) + f + ")";
		break;
	default:
		fuzz::mutateBytes(f, rng, xpathDict, rng.pick(filters), 4096);
		break;
	}
}

} // namespace

int main(int argc, char **argv)
{
	fuzz::targetName = "fuzz_xml";
	std::optional<long> batch = fuzz::runArgs(argc, argv, LLVMFuzzerTestOneInput, 2000);
	if (!batch)
		return 0;
	const long runs = *batch;
	fuzz::Rng rng(0xa4093822299f31d0ULL);
	Fixtures &f = fixturesOnce();

	std::vector<std::string> filters = {
		"//*", "/*", "//@*", "//text()", "//comment()", "//processing-instruction()",
		"//namespace::*", "/rtmp/server/application[live]/name", "sum(//bw_in) div 8",
		"//stream[position() = last()]", "string(/*/@id)", "boolean(//publishing)",
		"//*[lang('en')]", "name(/*)", "/descendant::*[3]", "//b[1]/following::*",
		"substring-before(//name, ':')", "//a:b | //b", "//dav:response[dav:href]/dav:href",
		"//oc:size", "count(//*[local-name() = 'stream'])", "//*[@size > 1]",
		"id('x')", "//zz:undeclared", "$x", "document('x')", "count('x')", "//*[",
		"/..", "//node()[not(self::*)]", "//@xml:lang", "1 div 0", "-(1)",
	};
	std::vector<std::string> docs;
	for (const char *d : smallDocuments)
		docs.emplace_back(d);
	std::vector<std::string> fixtureDocs;
	for (const auto &fx : fixtures)
		for (const char *rel : fx.documents)
			fixtureDocs.push_back(fixtureText(rel));
	for (const auto &s : f.setups)
		for (const auto &g : s->groups)
			for (const auto &[m, x] : g.metrics)
				filters.push_back(m->filter);

	auto run = [](const std::string &expr, const std::string &d) {
		std::string input = expr + "\n\n" + d;
		LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(input.data()), input.size());
	};
	for (const auto &d : hostileDocuments)
		run("//*", d);
	for (const auto &d : fixtureDocs) {
		fuzz::saveSeed("//*\n\n" + d);
		run("//*", d);
		// Cut every few bytes: documents that end anywhere.
		for (size_t len = 0; len < d.size(); len += 53)
			run("count(//*)", d.substr(0, len));
	}
	for (const auto &expr : filters)
		run(expr, rng.pick(fixtureDocs));
	docs.insert(docs.end(), fixtureDocs.begin(), fixtureDocs.end());

	for (long i = 0; i < runs; i++) {
		std::string expr = rng.pick(filters), d;
		uint32_t from = rng.below(4);
		d = from == 0 ? randomDocument(rng) : from == 1 ? rng.pick(hostileDocuments) :
		    rng.pick(docs);
		uint32_t kind = rng.below(10);
		if (kind < 4)
			mutateFilter(expr, rng, filters);
		if (kind >= 3 && kind < 8) {
			for (size_t n = 1 + rng.below(2); n > 0; n--)
				mutateMarkup(d, rng);
		}
		if (kind >= 8)
			fuzz::mutateBytes(d, rng, markupDict, rng.pick(docs), 1 << 16);
		if (rng.chance(3)) {
			d.clear();
			for (size_t n = rng.below(200); n > 0; n--)
				d += static_cast<char>(rng.next());
		}
		run(expr, d);
	}
	std::printf("fuzz_xml: %zu hostile documents, the fixtures and %ld random or mutated "
	    "inputs survived (%zu filters accepted, %zu node-sets, %zu refused; %zu documents, "
	    "%zu refused, %zu for their entities)\n", hostileDocuments.size(), runs, accepted,
	    nodeSets, refused, documents, badDocuments, entitiesRefused);
	return 0;
}

#endif
