// SPDX-License-Identifier: ISC
// XPath 1.0 filters of xml groups checked at load, and libxml2 errors captured.
//
// libxml2 reports errors through process-wide (per-thread) handlers that
// print on stderr by default.  XmlErrorCapture swaps in handlers that record
// the errors for the scope of one compilation, parse or evaluation and puts
// the previous ones back, so that nothing a document or a filter contains
// reaches the journal unasked and one caller's handler never leaks into the
// next.
//
// xmlXPathCtxtCompile() checks the grammar only.  Three mistakes pass it and
// would fail every collection instead: a namespace prefix that is not
// declared (a name test `a:entry`, a function `a:f()`), a function libxml2
// does not implement, and a variable reference.  Neither the compiled form
// nor its steps are public API, so checkXPath() reads the expression once
// more with the tokenizer rules of XPath 1.0 section 3.7: literals are
// skipped; a name directly after a token that can end an operand is an
// operator name (`and`, `div`); a name followed by `::` is an axis, one
// followed by `(` a node type or a function; any other name is a name test
// whose prefix must be declared.  Functions are looked up in a context like
// the one the worker evaluates in, so the answer is libxml2's own.
//
// Last, the expression is evaluated once on an empty document.  Without
// variables XPath 1.0 is statically typed: every function returns one type
// and a path is always a node-set, so this evaluation tells the worker what
// the filter yields on any document (a node-set, or one number, boolean or
// string).  It also refuses arguments of the wrong type (`count('x')`,
// `1 | //a`) or number.  Such an error can hide behind `and`/`or` on some
// documents, but an expression that fails on an empty one fails on any
// source that is momentarily empty of what it selects: refusing it at load
// is the better outcome.
#include "common/xpath.hpp"

#include <new>
#include <optional>

#include <libxml/globals.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "common/c_deleter.hpp"

namespace pme::common {

namespace {

void onStructuredError(void *data, xmlErrorPtr error) noexcept
{
	if (data != nullptr && error != nullptr)
		static_cast<XmlErrorCapture *>(data)->record(*error);
}

// Called only for the few messages libxml2 prints without going through its
// structured channel; they are dropped.
void onGenericError(void *, const char *, ...) noexcept
{
}

const xmlChar *xc(const char *s)
{
	return reinterpret_cast<const xmlChar *>(s);
}

bool isAsciiAlpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool isDigit(char c)
{
	return c >= '0' && c <= '9';
}

// NCName characters, with every non-ASCII byte taken as a name character
// (libxml2 has checked the grammar already; only the boundaries matter).
bool ncNameStart(char c)
{
	return isAsciiAlpha(c) || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}

bool ncNameChar(char c)
{
	return ncNameStart(c) || isDigit(c) || c == '.' || c == '-';
}

bool xpathSpace(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

constexpr const char *kXmlNamespace = "http://www.w3.org/XML/1998/namespace";

struct ScanError {
	size_t offset;
	std::string message;
};

// The second reading of checkXPath(): see the comment at the top.
class NameScanner {
public:
	NameScanner(const std::string &expr, const Pairs &namespaces, xmlXPathContext *ctx)
	    : s_(expr), namespaces_(namespaces), ctx_(ctx)
	{
	}

	std::optional<ScanError> run()
	{
		// True where an NCName is a name (start, after @ :: ( [ , or an
		// operator), false where it must be an operator name.
		bool operand = true;
		while (i_ < s_.size()) {
			char c = s_[i_];
			if (xpathSpace(c)) {
				i_++;
				continue;
			}
			if (c == '"' || c == '\'') {
				size_t end = s_.find(c, i_ + 1);
				i_ = end == std::string::npos ? s_.size() : end + 1;
				operand = false;
				continue;
			}
			if (isDigit(c) || (c == '.' && i_ + 1 < s_.size() && isDigit(s_[i_ + 1]))) {
				while (i_ < s_.size() && (isDigit(s_[i_]) || s_[i_] == '.'))
					i_++;
				operand = false;
				continue;
			}
			if (c == '$')
				return ScanError{i_, "variable references ($name) are not "
				    "supported: pme defines no XPath variables"};
			if (c == '*') {
				// A name test "*" where an operand may start, else multiply.
				i_++;
				operand = !operand;
				continue;
			}
			if (ncNameStart(c)) {
				if (auto e = name(operand); e)
					return e;
				continue;
			}
			if (c == ':' && i_ + 1 < s_.size() && s_[i_ + 1] == ':') {
				i_ += 2;
				operand = true;
				continue;
			}
			if (c == '.' || c == ')' || c == ']') {
				i_ += (c == '.' && i_ + 1 < s_.size() && s_[i_ + 1] == '.') ? 2 : 1;
				operand = false;
				continue;
			}
			// @ ( [ , and the operators / // | + - = != < <= > >=.
			i_++;
			operand = true;
		}
		return std::nullopt;
	}

private:
	std::optional<ScanError> name(bool &operand)
	{
		size_t start = i_;
		while (i_ < s_.size() && ncNameChar(s_[i_]))
			i_++;
		std::string first = s_.substr(start, i_ - start);
		std::string prefix, local = first;
		bool prefixed = false;
		if (i_ + 1 < s_.size() && s_[i_] == ':' && s_[i_ + 1] != ':') {
			prefixed = true;
			prefix = first;
			i_++;
			size_t ls = i_;
			if (i_ < s_.size() && s_[i_] == '*')
				i_++;
			else
				while (i_ < s_.size() && ncNameChar(s_[i_]))
					i_++;
			local = s_.substr(ls, i_ - ls);
		}
		if (!operand) {
			// and, or, div, mod: an operand follows.
			operand = true;
			return std::nullopt;
		}
		size_t j = i_;
		while (j < s_.size() && xpathSpace(s_[j]))
			j++;
		bool axis = j + 1 < s_.size() && s_[j] == ':' && s_[j + 1] == ':';
		bool call = j < s_.size() && s_[j] == '(';
		if (axis) {
			operand = true;
			return std::nullopt;
		}
		operand = false;
		const char *uri = nullptr;
		if (prefixed) {
			uri = lookup(prefix);
			if (uri == nullptr)
				return ScanError{start, "namespace prefix '" + prefix +
				    "' is not declared under 'namespaces'"};
		}
		if (!call)
			return std::nullopt;
		// A call: `node(` `text(` `comment(` `processing-instruction(` are
		// node tests, anything else a function libxml2 must know.
		if (!prefixed && (local == "node" || local == "text" || local == "comment" ||
		    local == "processing-instruction"))
			return std::nullopt;
		xmlXPathFunction f = prefixed ?
		    xmlXPathFunctionLookupNS(ctx_, xc(local.c_str()), xc(uri)) :
		    xmlXPathFunctionLookup(ctx_, xc(local.c_str()));
		if (f == nullptr)
			return ScanError{start, "unknown XPath function '" + first +
			    (prefixed ? ":" + local : std::string()) + "()'"};
		return std::nullopt;
	}

	const char *lookup(const std::string &prefix) const
	{
		for (const auto &[p, uri] : namespaces_)
			if (p == prefix)
				return uri.c_str();
		if (prefix == "xml")
			return kXmlNamespace;
		return nullptr;
	}

	const std::string &s_;
	const Pairs &namespaces_;
	xmlXPathContext *ctx_;
	size_t i_ = 0;
};

bool isNcName(const std::string &s)
{
	if (s.empty() || !ncNameStart(s[0]))
		return false;
	for (char c : s)
		if (!ncNameChar(c))
			return false;
	return true;
}

} // namespace

XmlErrorCapture::XmlErrorCapture()
    : savedStructured_(xmlStructuredError), savedStructuredContext_(xmlStructuredErrorContext),
      savedGeneric_(xmlGenericError), savedGenericContext_(xmlGenericErrorContext)
{
	xmlSetStructuredErrorFunc(this, onStructuredError);
	xmlSetGenericErrorFunc(this, onGenericError);
}

XmlErrorCapture::~XmlErrorCapture()
{
	xmlSetStructuredErrorFunc(savedStructuredContext_, savedStructured_);
	xmlSetGenericErrorFunc(savedGenericContext_, savedGeneric_);
}

void XmlErrorCapture::record(const xmlError &e) noexcept
{
	if (e.level < XML_ERR_ERROR)
		return;
	std::optional<XmlError> &slot = e.level >= XML_ERR_FATAL ? fatal_ : error_;
	if (slot)
		return;
	try {
		XmlError x;
		x.domain = e.domain;
		x.code = e.code;
		x.level = e.level;
		x.line = e.line;
		x.column = e.int2;
		x.offset = e.domain == XML_FROM_XPATH ? e.int1 : -1;
		x.message = e.message != nullptr ? e.message : "unknown error";
		// One line: "Input is not proper UTF-8 ...\nBytes: 0xFF ..."
		// has a newline inside as well as at the end.
		for (char &c : x.message)
			if (c == '\n' || c == '\r' || c == '\t')
				c = ' ';
		while (!x.message.empty() && x.message.back() == ' ')
			x.message.pop_back();
		slot = std::move(x);
	} catch (...) {
		// Out of memory inside a C callback: the error is lost, the
		// caller still sees the failure itself.
	}
}

Result<void> checkNamespaces(const Pairs &namespaces)
{
	for (size_t i = 0; i < namespaces.size(); i++) {
		const auto &[prefix, uri] = namespaces[i];
		if (!isNcName(prefix))
			return fail("namespace prefix '" + prefix + "' is not an XML name: a "
			    "letter or '_' followed by letters, digits, '.', '-' or '_' (no ':')");
		if (prefix == "xmlns")
			return fail("namespace prefix 'xmlns' is reserved by XML and cannot be "
			    "declared");
		if (prefix == "xml" && uri != kXmlNamespace)
			return fail(std::string("namespace prefix 'xml' is reserved for ") +
			    kXmlNamespace + " (it needs no declaration)");
		if (uri.empty())
			return fail("namespace prefix '" + prefix + "' has an empty URI");
		if (uri.find('\0') != std::string::npos)
			return fail("namespace prefix '" + prefix + "' has a NUL byte in its URI");
		for (size_t j = 0; j < i; j++)
			if (namespaces[j].first == prefix)
				return fail("namespace prefix '" + prefix + "' is declared twice");
	}
	return {};
}

std::string xpathMessage(const std::optional<XmlError> &error)
{
	if (!error)
		return "XPath error";
	if (error->offset >= 0)
		return "at offset " + std::to_string(error->offset) + ": " + error->message;
	return error->message;
}

Result<CompiledXPath> compileXPath(const std::string &expr, const Pairs &namespaces)
{
	if (auto ok = checkNamespaces(namespaces); !ok)
		return tl::unexpected(ok.error());
	if (size_t nul = expr.find('\0'); nul != std::string::npos)
		return fail("at offset " + std::to_string(nul) + ": NUL byte in the expression");

	XmlErrorCapture capture;
	CPtr<xmlDoc> empty(xmlNewDoc(xc("1.0")));
	CPtr<xmlXPathContext> ctx(xmlXPathNewContext(empty.get()));
	if (!empty || !ctx)
		throw std::bad_alloc();
	ctx->node = reinterpret_cast<xmlNode *>(empty.get());
	for (const auto &[prefix, uri] : namespaces)
		if (xmlXPathRegisterNs(ctx.get(), xc(prefix.c_str()), xc(uri.c_str())) != 0)
			throw std::bad_alloc();

	CompiledXPath out;
	out.expr.reset(xmlXPathCtxtCompile(ctx.get(), xc(expr.c_str())));
	if (!out.expr) {
		const auto &e = capture.first();
		if (!e || e->offset < 0)
			return fail("at offset 0: " +
			    (e ? e->message : std::string("invalid XPath")));
		return fail(xpathMessage(e));
	}
	if (auto e = NameScanner(expr, namespaces, ctx.get()).run(); e)
		return fail("at offset " + std::to_string(e->offset) + ": " + e->message);

	CPtr<xmlXPathObject> result(xmlXPathCompiledEval(out.expr.get(), ctx.get()));
	if (!result)
		// The position of an evaluation error is not in the text.
		return fail("evaluation fails: " +
		    (capture.first() ? capture.first()->message : std::string("XPath error")));
	out.resultType = result->type;
	return out;
}

Result<void> checkXPath(const std::string &expr, const Pairs &namespaces)
{
	auto c = compileXPath(expr, namespaces);
	if (!c)
		return tl::unexpected(c.error());
	return {};
}

} // namespace pme::common
