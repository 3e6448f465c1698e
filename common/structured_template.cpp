// SPDX-License-Identifier: ISC
// Label and value templates of json and xml metrics: the ${...} parser.
//
// A template is literal text with references to nodes of the document.  The
// parser reads it once, at startup, left to right: `$$` is one '$', `${`
// opens a reference that runs to its '}' (a '}' inside a quoted step does not
// close it), and any other '$' is an error.  The strictness is deliberate:
// text content's templates use `$1` and `${name}` for regex captures, and an
// operator who copies such a template into a json or xml group should be
// told what to write instead rather than get a label that is silently empty
// or the literal text "$1".
//
// Inside the braces the grammar is
//
//   ref   = "@" / "$" [steps] / *"^" ("key" / [steps])    (not empty)
//   steps = 1*( "." name / "[" quoted "]" / "[" ["-"] 1*DIGIT "]" )
//
// so `${^}` is the parent node and `${$}` the root.  Every error names the
// byte offset of the character that is wrong, counted from the start of the
// whole template.
#include "common/structured_template.hpp"

#include <limits>

namespace pme::common {

namespace {

bool isAlpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool isDigit(char c)
{
	return c >= '0' && c <= '9';
}

bool nameStart(char c)
{
	return isAlpha(c) || c == '_';
}

bool nameChar(char c)
{
	return isAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == ':';
}

// One character for a message: printable ASCII as is, anything else as a
// hexadecimal byte.
std::string shown(char c)
{
	auto u = static_cast<unsigned char>(c);
	if (u >= 0x20 && u < 0x7f)
		return std::string("'") + c + "'";
	static const char hex[] = "0123456789abcdef";
	return std::string("byte 0x") + hex[u >> 4] + hex[u & 15];
}

class Parser {
public:
	Parser(std::string_view text, bool xml) : s_(text), xml_(xml) {}

	Result<std::vector<StructuredTemplate::Part>> run()
	{
		std::vector<StructuredTemplate::Part> parts;
		std::string lit;
		while (i_ < s_.size()) {
			char c = s_[i_];
			if (c != '$') {
				lit += c;
				i_++;
				continue;
			}
			if (i_ + 1 < s_.size() && s_[i_ + 1] == '$') {
				lit += '$';
				i_ += 2;
				continue;
			}
			if (i_ + 1 < s_.size() && s_[i_ + 1] == '{') {
				auto ref = reference();
				if (!ref)
					return tl::unexpected(ref.error());
				parts.push_back({std::move(lit), std::move(*ref)});
				lit.clear();
				continue;
			}
			if (i_ + 1 < s_.size() && isDigit(s_[i_ + 1])) {
				size_t e = i_ + 1;
				while (e < s_.size() && isDigit(s_[e]))
					e++;
				return captureError(i_, std::string(s_.substr(i_, e - i_)));
			}
			return error(i_, "write $$ for a dollar sign");
		}
		if (!lit.empty())
			parts.push_back({std::move(lit), std::nullopt});
		return parts;
	}

private:
	tl::unexpected<Error> error(size_t at, const std::string &what) const
	{
		return fail("at offset " + std::to_string(at) + ": " + what);
	}

	tl::unexpected<Error> captureError(size_t at, const std::string &written) const
	{
		std::string forms = xml_ ?
		    "${@} (the node's text), ${key}, ${.name} (an attribute or child) "
		    "or ${$.name}" :
		    "${@} (the node), ${key}, ${.name} (a member) or ${$.name}";
		return error(at, written + " refers to a regex capture, which only content_type "
		    "text has; here write " + forms);
	}

	// At "${": parse up to and including the closing '}'.
	Result<NodeRef> reference()
	{
		size_t start = i_;
		i_ += 2;
		// The closing brace outside quotes, to report an unterminated
		// reference before anything inside it.
		if (!closes())
			return error(start, "${ without a closing }");

		NodeRef ref;
		if (peek() == '}')
			return error(start, "empty reference ${}; write ${@} for the matched node");

		// ${1} and ${name}: captures of content type text.
		if (isDigit(peek()) || nameStart(peek())) {
			size_t e = i_;
			while (e < s_.size() && (isAlpha(s_[e]) || isDigit(s_[e]) || s_[e] == '_'))
				e++;
			std::string_view word = s_.substr(i_, e - i_);
			if (e < s_.size() && s_[e] == '}' && word != "key")
				return captureError(start, "${" + std::string(word) + "}");
		}

		if (peek() == '@') {
			i_++;
			ref.kind = NodeRef::Kind::Self;
		} else if (peek() == '$') {
			i_++;
			ref.fromRoot = true;
			if (peek() == '^')
				return error(i_, "^ cannot follow $: the document root has "
				    "no parent");
			if (auto ok = steps(ref); !ok)
				return tl::unexpected(ok.error());
		} else {
			while (peek() == '^') {
				ref.up++;
				i_++;
			}
			bool key = s_.substr(i_, 3) == "key" &&
			    (i_ + 3 >= s_.size() || !nameChar(s_[i_ + 3]));
			if (key) {
				i_ += 3;
				ref.kind = NodeRef::Kind::Key;
			} else if (ref.up == 0 && peek() != '.' && peek() != '[') {
				return error(i_, "expected @, key, ^, $, '.' or '[' after ${, not " +
				    shown(peek()) + " (a member of the node is ${.name})");
			} else if (auto ok = steps(ref); !ok) {
				return tl::unexpected(ok.error());
			}
		}
		if (peek() != '}') {
			bool more = ref.kind == NodeRef::Kind::Path ||
			    (ref.kind == NodeRef::Kind::Self && (ref.fromRoot || ref.up > 0));
			return error(i_, "unexpected " + shown(peek()) +
			    " in a reference; expected " +
			    (more ? "'.', '[' or '}'" : "'}'"));
		}
		i_++;
		ref.text = std::string(s_.substr(start, i_ - start));
		return ref;
	}

	// Is there a '}' ahead, outside quoted steps?
	bool closes() const
	{
		char quote = 0;
		for (size_t j = i_; j < s_.size(); j++) {
			char c = s_[j];
			if (quote) {
				if (c == '\\')
					j++;
				else if (c == quote)
					quote = 0;
			} else if (c == '}') {
				return true;
			} else if ((c == '\'' || c == '"') && j > 0 && s_[j - 1] == '[') {
				quote = c;
			}
		}
		return false;
	}

	char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }

	// Zero or more steps; the kind becomes Path when there is one.
	Result<void> steps(NodeRef &ref)
	{
		while (peek() == '.' || peek() == '[') {
			auto st = step();
			if (!st)
				return tl::unexpected(st.error());
			ref.path.push_back(std::move(*st));
			ref.kind = NodeRef::Kind::Path;
		}
		return {};
	}

	Result<NodeRef::Step> step()
	{
		if (peek() == '.') {
			i_++;
			if (!nameStart(peek()))
				return error(i_, "expected a name after '.' (a letter or '_' first; "
				    "write ['...'] for any other name)");
			size_t b = i_;
			while (i_ < s_.size() && nameChar(s_[i_]))
				i_++;
			return NodeRef::Step(std::string(s_.substr(b, i_ - b)));
		}
		size_t open = i_++;
		if (peek() == '\'' || peek() == '"')
			return quoted();
		if (peek() == '-' || isDigit(peek())) {
			if (xml_)
				return error(open, "an index step [N] is for json arrays; in xml write "
				    "${.name} for the first child of that name");
			bool negative = peek() == '-';
			if (negative)
				i_++;
			if (!isDigit(peek()))
				return error(i_, "expected a digit in the index");
			int64_t n = 0;
			constexpr int64_t max = std::numeric_limits<int64_t>::max() / 10 - 9;
			while (isDigit(peek())) {
				if (n > max)
					return error(open, "index too large");
				n = n * 10 + (peek() - '0');
				i_++;
			}
			if (peek() != ']')
				return error(i_, "expected ']' after the index, not " +
				    shown(peek()));
			i_++;
			return NodeRef::Step(negative ? -n : n);
		}
		return error(i_, "expected a quoted name or an index after '[', not " +
		    shown(peek()));
	}

	// At the opening quote of ['...'] or ["..."].
	Result<NodeRef::Step> quoted()
	{
		char q = s_[i_];
		size_t open = i_++;
		std::string name;
		for (;;) {
			if (i_ >= s_.size())
				return error(open, "unterminated quoted name");
			char c = s_[i_];
			if (c == q)
				break;
			if (c == '\\') {
				char e = i_ + 1 < s_.size() ? s_[i_ + 1] : '\0';
				if (e != '\\' && e != '\'' && e != '"')
					return error(i_, "unknown escape in a quoted name "
					    "(only \\\\, \\' and \\\" are)");
				name += e;
				i_ += 2;
				continue;
			}
			name += c;
			i_++;
		}
		i_++;
		if (peek() != ']')
			return error(i_, "expected ']' after the quoted name, not " +
			    shown(peek()));
		i_++;
		return NodeRef::Step(std::move(name));
	}

	std::string_view s_;
	bool xml_;
	size_t i_ = 0;
};

} // namespace

Result<StructuredTemplate> StructuredTemplate::parse(std::string_view text, bool xml)
{
	auto parts = Parser(text, xml).run();
	if (!parts)
		return tl::unexpected(parts.error());
	StructuredTemplate t;
	t.source_ = std::string(text);
	t.parts_ = std::move(*parts);
	return t;
}

bool StructuredTemplate::hasReference() const
{
	for (const auto &p : parts_)
		if (p.ref)
			return true;
	return false;
}

const NodeRef *StructuredTemplate::single() const
{
	if (parts_.size() != 1 || !parts_[0].ref || !parts_[0].literal.empty())
		return nullptr;
	return &*parts_[0].ref;
}

std::string StructuredTemplate::literal() const
{
	std::string out;
	for (const auto &p : parts_)
		out += p.literal;
	return out;
}

} // namespace pme::common
