// SPDX-License-Identifier: ISC
// XPath 1.0 filters of xml groups checked at load, and libxml2 errors captured.
#pragma once

#include <optional>
#include <string>

#include <libxml/xmlerror.h>
#include <libxml/xpath.h>

#include "c_deleter.hpp"
#include "config.hpp"
#include "error.hpp"

namespace pme::common {

// One error reported by libxml2, copied out of its xmlError.
struct XmlError {
	int domain = 0;               // XML_FROM_PARSER, XML_FROM_XPATH...
	int code = 0;
	int level = 0;                // XML_ERR_WARNING, XML_ERR_ERROR, XML_ERR_FATAL
	int line = 0;                 // parser errors: 1-based line
	int column = 0;               // parser errors: 1-based column (xmlError.int2)
	int offset = -1;              // XPath errors: byte offset (xmlError.int1)
	std::string message;          // without its trailing newline
};

// While it lives, every error libxml2 raises on this thread is recorded here
// instead of being printed on stderr; the handlers that were installed
// before are restored by the destructor.  Scopes nest.
class XmlErrorCapture {
public:
	XmlErrorCapture();
	~XmlErrorCapture();
	XmlErrorCapture(const XmlErrorCapture &) = delete;
	XmlErrorCapture &operator=(const XmlErrorCapture &) = delete;

	// The first error (not warning) recorded, preferring a fatal one.
	const std::optional<XmlError> &first() const { return fatal_ ? fatal_ : error_; }
	// Record an error (the structured handlers of a parser context call this).
	void record(const xmlError &e) noexcept;

private:
	std::optional<XmlError> error_;
	std::optional<XmlError> fatal_;
	xmlStructuredErrorFunc savedStructured_;
	void *savedStructuredContext_;
	xmlGenericErrorFunc savedGeneric_;
	void *savedGenericContext_;
};

// Check an xml group's `namespaces:`: every prefix an NCName, declared once,
// not `xmlns`, `xml` only for its own URI; every URI non-empty.
Result<void> checkNamespaces(const Pairs &namespaces);

// Check an XPath 1.0 filter as the worker will compile it, with the group's
// namespaces registered.  Errors read "at offset N: message" (N the 0-based
// byte offset in expr), among them what libxml2 would only notice while
// evaluating: a namespace prefix that is not declared, a function it does
// not know, a variable reference ($x; pme defines none).
// Finally the expression is evaluated once on an empty document, which
// refuses what would fail on any document (count('x'), a function called
// with the wrong number of arguments): "evaluation fails: message".
Result<void> checkXPath(const std::string &expr, const Pairs &namespaces);

// An XPath filter compiled once for the worker, after checkXPath().
struct CompiledXPath {
	CPtr<xmlXPathCompExpr> expr;
	// What it yields on every document: XPath 1.0 is statically typed
	// once variables are excluded (XPATH_NODESET, XPATH_NUMBER,
	// XPATH_BOOLEAN or XPATH_STRING).
	xmlXPathObjectType resultType = XPATH_UNDEFINED;
};
Result<CompiledXPath> compileXPath(const std::string &expr, const Pairs &namespaces);

// The message of a libxml2 error: "at offset N: message" for an XPath
// error with a position, the message alone otherwise.
std::string xpathMessage(const std::optional<XmlError> &error);

} // namespace pme::common
