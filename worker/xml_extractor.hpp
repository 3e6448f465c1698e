// SPDX-License-Identifier: ISC
// Content type xml: one XPath 1.0 filter per metric, one series per selected
// node, labels from the node's names, attributes and neighbours.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "common/c_deleter.hpp"
#include "common/config.hpp"
#include "common/error.hpp"
#include "common/structured_template.hpp"
#include "structured_value.hpp"

namespace pme::worker {

// Node visits one evaluation may make (libxml2's opLimit): a linear filter
// on a few MiB of XML stays far below, `//*[count(//*) > 0]` on a large
// document does not.
constexpr unsigned long kXPathOpLimit = 20000000;

// A source's output parsed once per cycle and shared by the group's metrics.
class XmlDocument {
public:
	// Parsed without network access, without loading any DTD and without
	// expanding entities.  A document that declares entities (or refers
	// to one) is refused outright: "XML document declares entities (DTD);
	// pme does not expand entities" (XXE, billion laughs).  Other errors
	// read "invalid XML at line L, column C: message".
	static common::Result<XmlDocument> parse(std::string_view text);

	xmlDoc *get() const { return doc_.get(); }

private:
	common::CPtr<xmlDoc> doc_;
};

// A metric's filter and templates compiled once at startup.
//
// The filter is evaluated at the document node.  A node-set gives one
// series per node (element, attribute, text...), its value the node's
// string value (or the node the value template names); an empty node-set
// gives no series and no error.  A number, boolean or string result gives
// one series, and its labels can only be constant text or ${$...}.
//
// Label references (common/structured_template.hpp), in xml:
//   ${@}      the node's string value, trimmed of white space
//   ${key}    its local name; a text node's: its element's
//   ${.a.b}   from the node, each step the attribute of that name if the
//             element has one, else its first child element of that name;
//             `p:name` matches namespace URI and local name, `name` the
//             local name in any namespace
//   ${^...}   from the parent (an attribute's is its element)
//   ${$.a.b}  from the document node: ${$.status} is the root <status>
// A reference that reaches nothing gives an empty label; as the value, an
// error for that series ("is missing").
class XmlExtractor {
public:
	// Fails on a bad XPath (common::compileXPath), an undeclared prefix in
	// a template, a value template that is not exactly one reference, a
	// bad value_regex, node references with a filter that yields no nodes,
	// or a type one node cannot give (histogram, summary).
	static common::Result<XmlExtractor> compile(const common::MetricConfig &metric,
	    const common::Pairs &namespaces);

	// The series of one cycle, with per-series errors.
	Extraction extract(const XmlDocument &doc) const;

	const common::MetricConfig &metric() const { return metric_; }

	// A name step resolved against the group's namespaces.
	struct Step {
		std::string local;
		std::optional<std::string> uri;   // none: any namespace
	};
	// A template part's reference with its steps resolved.
	struct Ref {
		common::NodeRef ref;
		std::vector<Step> steps;
	};
	struct Template {
		std::string name;                 // the label name
		std::vector<std::pair<std::string, std::optional<Ref>>> parts;
	};

private:
	XmlExtractor() = default;

	common::MetricConfig metric_;
	common::Pairs namespaces_;
	common::CPtr<xmlXPathCompExpr> filter_;
	xmlXPathObjectType resultType_ = XPATH_UNDEFINED;
	std::optional<ValueReader> reader_;
	std::optional<Ref> value_;
	std::vector<Template> labels_;
};

// A node's string value as XPath defines it, trimmed.
std::string xmlStringValue(xmlNode *n);

} // namespace pme::worker
