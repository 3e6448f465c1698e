// SPDX-License-Identifier: ISC
// Content type xml: XPath 1.0 filters on libxml2, one series per selected node.
//
// Parsing.  The document comes from a source the service controls, and
// libxml2 can be asked to do dangerous things on its behalf: fetch a URL,
// read a local file through an external entity (XXE), or expand nested
// entities until memory runs out ("billion laughs").  pme has no use for
// entities at all, so it refuses them instead of trusting each of libxml2's
// defences: the parser context's entity-declaration callbacks stop the
// parse at the first <!ENTITY ...>, before any reference to it is read; the
// options never include XML_PARSE_NOENT, DTDLOAD, DTDATTR or HUGE, the
// external subset callback is removed, XML_PARSE_NONET forbids the network;
// and the finished tree is checked once more for entity declarations and
// entity reference nodes.  Errors go to the parser context's structured
// handler (and, for the few libxml2 raises without a context, to a scoped
// global one, common::XmlErrorCapture), never to stderr, and the first one
// is the message.
//
// Evaluation.  Each metric's filter is compiled once (common::compileXPath,
// which also learns its result type: XPath 1.0 without variables is
// statically typed) and evaluated per cycle in a fresh XPath context at the
// document node, with the group's namespaces registered and an operation
// limit that stops a filter quadratic in the document's size.  A node-set
// is one series per node; references in labels are resolved from that node
// by walking the tree (parents, attributes, first child elements), not by
// XPath, so that a label costs a few pointer steps.  An empty node-set is
// not an error: `//stream` rightly selects nothing when no one publishes;
// an operator who wants an alert on absence writes `count(//stream)`.
#include "xml_extractor.hpp"

#include <climits>
#include <cmath>
#include <new>

#include <libxml/parser.h>
#include <libxml/xpathInternals.h>

#include "common/utf8.hpp"
#include "text_util.hpp"
#include "common/xpath.hpp"
#include "text_extractor.hpp"

namespace pme::worker {

using common::fail;
using common::MetricConfig;
using common::MetricType;
using common::NodeRef;
using common::Result;
using common::StructuredTemplate;

namespace {


constexpr const char *kXmlNamespace = "http://www.w3.org/XML/1998/namespace";
constexpr const char *kEntitiesRefused =
    "XML document declares entities (DTD); pme does not expand entities";

const xmlChar *xc(const char *s)
{
	return reinterpret_cast<const xmlChar *>(s);
}

const char *cc(const xmlChar *s)
{
	return reinterpret_cast<const char *>(s);
}


// --- parsing ---------------------------------------------------------------

struct ParseState {
	common::XmlErrorCapture *capture;
	bool entities = false;
};

ParseState *stateOf(void *ctx)
{
	auto *p = static_cast<xmlParserCtxt *>(ctx);
	return p ? static_cast<ParseState *>(p->_private) : nullptr;
}

void onParserError(void *ctx, xmlErrorPtr error) noexcept
{
	if (ParseState *s = stateOf(ctx); s != nullptr && error != nullptr)
		s->capture->record(*error);
}

void refuseEntities(void *ctx) noexcept
{
	if (ParseState *s = stateOf(ctx); s != nullptr)
		s->entities = true;
	xmlStopParser(static_cast<xmlParserCtxt *>(ctx));
}

void onEntityDecl(void *ctx, const xmlChar *, int, const xmlChar *, const xmlChar *,
    xmlChar *) noexcept
{
	refuseEntities(ctx);
}

void onUnparsedEntityDecl(void *ctx, const xmlChar *, const xmlChar *, const xmlChar *,
    const xmlChar *) noexcept
{
	refuseEntities(ctx);
}

void onReference(void *ctx, const xmlChar *) noexcept
{
	refuseEntities(ctx);
}

bool hasEntities(const xmlDtd *dtd)
{
	return dtd != nullptr && (dtd->entities != nullptr || dtd->pentities != nullptr);
}

// Any entity left in the tree (the callbacks should have stopped the parse).
bool treeHasEntities(xmlDoc *doc)
{
	if (hasEntities(doc->intSubset) || hasEntities(doc->extSubset))
		return true;
	xmlNode *n = doc->children;
	while (n != nullptr) {
		if (n->type == XML_ENTITY_REF_NODE || n->type == XML_ENTITY_DECL ||
		    n->type == XML_ENTITY_NODE)
			return true;
		if (n->type == XML_ELEMENT_NODE && n->children != nullptr) {
			n = n->children;
			continue;
		}
		while (n != nullptr && n->next == nullptr)
			n = n->parent == reinterpret_cast<xmlNode *>(doc) ? nullptr : n->parent;
		if (n != nullptr)
			n = n->next;
	}
	return false;
}

// --- references -------------------------------------------------------------

xmlNode *docNode(xmlDoc *doc)
{
	return reinterpret_cast<xmlNode *>(doc);
}

xmlNode *parentOf(xmlNode *n)
{
	switch (n->type) {
	case XML_NAMESPACE_DECL: {
		// A namespace node of a node-set: libxml2 keeps its element in next.
		auto *parent = reinterpret_cast<xmlNode *>(reinterpret_cast<xmlNs *>(n)->next);
		return parent != nullptr && parent->type == XML_ELEMENT_NODE ? parent : nullptr;
	}
	case XML_DOCUMENT_NODE:
	case XML_HTML_DOCUMENT_NODE:
		return nullptr;
	default:
		return n->parent;
	}
}

bool matches(const xmlChar *name, const xmlNs *ns, const XmlExtractor::Step &step)
{
	if (name == nullptr || step.local != cc(name))
		return false;
	if (!step.uri)
		return true;
	return ns != nullptr && ns->href != nullptr && *step.uri == cc(ns->href);
}

// One name step: the attribute of that name, else the first child element.
xmlNode *stepFrom(xmlNode *n, const XmlExtractor::Step &step)
{
	if (n->type == XML_ELEMENT_NODE)
		for (xmlAttr *a = n->properties; a != nullptr; a = a->next)
			if (matches(a->name, a->ns, step))
				return reinterpret_cast<xmlNode *>(a);
	if (n->type == XML_ELEMENT_NODE || n->type == XML_DOCUMENT_NODE)
		for (xmlNode *c = n->children; c != nullptr; c = c->next)
			if (c->type == XML_ELEMENT_NODE && matches(c->name, c->ns, step))
				return c;
	return nullptr;
}


std::string keyOf(xmlNode *n)
{
	switch (n->type) {
	case XML_ELEMENT_NODE:
	case XML_ATTRIBUTE_NODE:
	case XML_PI_NODE:
		return n->name != nullptr ? cc(n->name) : "";
	case XML_TEXT_NODE:
	case XML_CDATA_SECTION_NODE:
	case XML_COMMENT_NODE:
		return n->parent != nullptr && n->parent->type == XML_ELEMENT_NODE ?
		    cc(n->parent->name) : "";
	case XML_NAMESPACE_DECL: {
		const xmlChar *prefix = reinterpret_cast<xmlNs *>(n)->prefix;
		return prefix != nullptr ? cc(prefix) : "";
	}
	default:
		return "";
	}
}

// The node a reference reaches from `node` (null for a result that is not a
// node-set: only ${$...} is allowed then), or null.
xmlNode *reach(const XmlExtractor::Ref &r, xmlNode *node, xmlDoc *doc)
{
	xmlNode *n = r.ref.fromRoot ? docNode(doc) : node;
	for (unsigned i = 0; i < r.ref.up && n != nullptr; i++)
		n = parentOf(n);
	if (r.ref.kind == NodeRef::Kind::Path)
		for (const auto &step : r.steps) {
			if (n == nullptr)
				break;
			n = stepFrom(n, step);
		}
	return n;
}

std::optional<std::string> resolve(const XmlExtractor::Ref &r, xmlNode *node, xmlDoc *doc)
{
	xmlNode *n = reach(r, node, doc);
	if (n == nullptr)
		return std::nullopt;
	return r.ref.kind == NodeRef::Kind::Key ? keyOf(n) : xmlStringValue(n);
}

// Where a node is, for an error: /rtmp/server/application[2]/live/stream[1].
std::string nodePath(xmlNode *n)
{
	if (n->type == XML_NAMESPACE_DECL) {
		xmlNode *parent = parentOf(n);
		const xmlChar *prefix = reinterpret_cast<xmlNs *>(n)->prefix;
		return (parent != nullptr ? nodePath(parent) : std::string()) + "/namespace::" +
		    (prefix != nullptr ? cc(prefix) : "");
	}
	xmlChar *p = xmlGetNodePath(n);
	if (p == nullptr)
		return "?";
	std::string s = common::shorten(cc(p), 200);
	xmlFree(p);
	return s;
}

const char *typeWords(xmlXPathObjectType t)
{
	switch (t) {
	case XPATH_NUMBER:
		return "a number";
	case XPATH_BOOLEAN:
		return "a boolean";
	case XPATH_STRING:
		return "a string";
	default:
		return "no nodes";
	}
}

// A reference as the extractor uses it, its name steps resolved.
Result<XmlExtractor::Ref> compileRef(const NodeRef &ref, const common::Pairs &namespaces)
{
	XmlExtractor::Ref r;
	r.ref = ref;
	for (const auto &step : ref.path) {
		const std::string *name = std::get_if<std::string>(&step);
		if (name == nullptr)
			return fail(ref.text + ": an index step has no meaning in xml");
		XmlExtractor::Step s;
		size_t colon = name->find(':');
		if (colon == std::string::npos) {
			s.local = *name;
		} else {
			std::string prefix = name->substr(0, colon);
			s.local = name->substr(colon + 1);
			for (const auto &[p, uri] : namespaces)
				if (p == prefix)
					s.uri = uri;
			if (!s.uri && prefix == "xml")
				s.uri = kXmlNamespace;
			if (!s.uri)
				return fail(ref.text + ": namespace prefix '" + prefix +
				    "' is not declared under 'namespaces'");
		}
		r.steps.push_back(std::move(s));
	}
	return r;
}

} // namespace

Result<XmlDocument> XmlDocument::parse(std::string_view text)
{
	if (text.size() > INT_MAX)
		return fail("XML document is larger than 2 GiB");
	common::XmlErrorCapture capture;
	ParseState state{&capture};
	common::CPtr<xmlParserCtxt> ctxt(xmlNewParserCtxt());
	if (!ctxt || ctxt->sax == nullptr)
		throw std::bad_alloc();
	ctxt->_private = &state;
	ctxt->sax->serror = onParserError;
	ctxt->sax->entityDecl = onEntityDecl;
	ctxt->sax->unparsedEntityDecl = onUnparsedEntityDecl;
	ctxt->sax->reference = onReference;
	ctxt->sax->externalSubset = nullptr;

	const int options = XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOCDATA |
	    XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
	XmlDocument doc;
	doc.doc_.reset(xmlCtxtReadMemory(ctxt.get(), text.data(), static_cast<int>(text.size()),
	    nullptr, nullptr, options));
	if (state.entities || (doc.doc_ && treeHasEntities(doc.doc_.get())))
		return fail(kEntitiesRefused);
	if (!doc.doc_) {
		const auto &e = capture.first();
		if (!e)
			return fail("invalid XML");
		return fail("invalid XML at line " + std::to_string(e->line) + ", column " +
		    std::to_string(e->column) + ": " + common::sanitizeUtf8(e->message));
	}
	return doc;
}

Result<XmlExtractor> XmlExtractor::compile(const MetricConfig &metric,
    const common::Pairs &namespaces)
{
	if (metric.mappedHistogram())
		return fail("a histogram read from the source has a filter per bucket, not one "
		    "filter");
	if (metric.filter.empty())
		return fail("xml content needs a filter, an XPath such as /status/connections");
	auto filter = common::compileXPath(metric.filter, namespaces);
	if (!filter)
		return fail("filter: " + filter.error().message);
	auto reader = ValueReader::compile(metric);
	if (!reader)
		return tl::unexpected(reader.error());

	XmlExtractor x;
	x.metric_ = metric;
	x.namespaces_ = namespaces;
	x.filter_ = std::move(filter->expr);
	x.resultType_ = filter->resultType;
	x.reader_.emplace(std::move(*reader));
	const bool nodes = x.resultType_ == XPATH_NODESET;

	for (const auto &[name, text] : metric.labels) {
		auto t = StructuredTemplate::parse(text, true);
		if (!t)
			return fail("label '" + name + "': " + t.error().message);
		Template lt;
		lt.name = name;
		for (const auto &part : t->parts()) {
			if (!part.ref) {
				lt.parts.emplace_back(part.literal, std::nullopt);
				continue;
			}
			if (!nodes && !part.ref->fromRoot)
				return fail("label '" + name + "' refers to " + part.ref->text +
				    ", but filter '" + metric.filter + "' yields " +
				    typeWords(x.resultType_) +
				    ", not nodes: use constant text or ${$...} references");
			auto r = compileRef(*part.ref, namespaces);
			if (!r)
				return fail("label '" + name + "': " + r.error().message);
			lt.parts.emplace_back(part.literal, std::move(*r));
		}
		x.labels_.push_back(std::move(lt));
	}
	auto value = valueReference(metric, true);
	if (!value)
		return tl::unexpected(value.error());
	if (*value && !nodes)
		return fail("value '" + *metric.valueTemplate + "' refers to a node, but "
		    "filter '" + metric.filter + "' yields " + typeWords(x.resultType_) +
		    ", which is the value: remove value");
	if (*value) {
		auto r = compileRef(**value, namespaces);
		if (!r)
			return fail("value: " + r.error().message);
		x.value_ = std::move(*r);
	}
	return x;
}

Extraction XmlExtractor::extract(const XmlDocument &doc) const
{
	SeriesCollector out(metric_);
	xmlDoc *d = doc.get();
	common::XmlErrorCapture capture;
	common::CPtr<xmlXPathContext> ctx(xmlXPathNewContext(d));
	if (!ctx)
		throw std::bad_alloc();
	ctx->node = docNode(d);
	ctx->opLimit = kXPathOpLimit;
	for (const auto &[prefix, uri] : namespaces_)
		if (xmlXPathRegisterNs(ctx.get(), xc(prefix.c_str()), xc(uri.c_str())) != 0)
			throw std::bad_alloc();
	common::CPtr<xmlXPathObject> result(xmlXPathCompiledEval(filter_.get(), ctx.get()));
	if (!result) {
		out.failMetric("filter: " + common::xpathMessage(capture.first()));
		return out.finish();
	}

	auto labelsFor = [&](xmlNode *node) {
		std::vector<common::Label> labels;
		for (const auto &t : labels_) {
			std::string text;
			for (const auto &[literal, ref] : t.parts) {
				text += literal;
				if (ref)
					text += resolve(*ref, node, d).value_or("");
			}
			labels.push_back({t.name, std::move(text)});
		}
		return labels;
	};

	if (result->type != XPATH_NODESET) {
		std::vector<common::Label> labels = labelsFor(nullptr);
		std::string where = common::shorten(metric_.filter, 80);
		if (metric_.type == MetricType::Info) {
			out.add(std::move(labels), 1);
			return out.finish();
		}
		Result<double> v;
		switch (result->type) {
		case XPATH_NUMBER:
			// NaN is what number() makes of text that is not a number.
			if (std::isnan(result->floatval))
				v = fail("is not a number");
			else
				v = reader_->fromNumber(result->floatval);
			break;
		case XPATH_BOOLEAN:
			v = reader_->fromBoolean(result->boolval != 0);
			break;
		case XPATH_STRING:
			v = reader_->fromString(result->stringval ? cc(result->stringval) : "");
			break;
		default:
			v = fail("gives an XPath result of an unexpected type");
			break;
		}
		if (v)
			out.add(std::move(labels), *v);
		else
			out.fail(std::move(labels), where, v.error().message);
		return out.finish();
	}

	xmlNodeSet *set = result->nodesetval;
	int count = set != nullptr ? set->nodeNr : 0;
	for (int i = 0; i < count; i++) {
		xmlNode *node = set->nodeTab[i];
		std::vector<common::Label> labels = labelsFor(node);
		if (metric_.type == MetricType::Info) {
			out.add(std::move(labels), 1);
			continue;
		}
		std::optional<std::string> text;
		if (value_)
			text = resolve(*value_, node, d);
		else
			text = xmlStringValue(node);
		if (!text) {
			out.fail(std::move(labels), nodePath(node),
			    value_->ref.text + " is missing");
			continue;
		}
		auto v = reader_->fromString(*text);
		if (v)
			out.add(std::move(labels), *v);
		else
			out.fail(std::move(labels), nodePath(node), v.error().message);
	}
	return out.finish();
}

// A node's XPath string value, trimmed: what a filter selected reads as.
std::string xmlStringValue(xmlNode *n)
{
	xmlChar *c = xmlNodeGetContent(n);
	if (c == nullptr)
		return {};
	std::string s(trim(cc(c)));
	xmlFree(c);
	return s;
}

} // namespace pme::worker
