// SPDX-License-Identifier: ISC
// Label and value templates of json and xml metrics: text with ${...}
// references to the matched node, its parents and the document root.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "error.hpp"

namespace pme::common {

// One ${...} reference (pme.yml(5), "Labels from structure"):
//
//   ${@}            the matched node itself
//   ${key}          the member name (json) or element/attribute name (xml)
//                   under which the node was found; an array index (json)
//                   as a decimal number
//   ${.a.b} ${[0]} ${['a b']}   a node below the matched one
//   ${^key} ${^.a} ${^}         the same, one level up; each ^ one more
//   ${$.a.b} ${$}   a node from the document root
//
// Path steps: `.name` (letters, digits, '_', '-' and ':', not starting with
// a digit, '-' or ':'), `['any text']` or `["any text"]` (with \\, \' and
// \" escapes), and `[N]` (an array index, negative from the end; json only).
// In xml a name step selects the attribute of that name when the element
// has one, else its first child element of that name; `prefix:name` uses a
// namespace declared under the group's `namespaces`.
struct NodeRef {
	enum class Kind { Self, Key, Path };
	using Step = std::variant<std::string, int64_t>;

	bool fromRoot = false;    // ${$...}
	unsigned up = 0;          // number of ^
	Kind kind = Kind::Self;
	std::vector<Step> path;   // Kind::Path: the steps, in order
	std::string text;         // the reference as written, "${^.name}"
};

class StructuredTemplate {
public:
	struct Part {
		std::string literal;           // text before the reference (or the rest)
		std::optional<NodeRef> ref;    // none for trailing text
	};

	// Parse a template; `$$` is one '$'.  Errors read "at offset N: ..."
	// with N the 0-based byte offset into text.  xml: refuse [N] steps.
	static Result<StructuredTemplate> parse(std::string_view text, bool xml);

	const std::string &source() const { return source_; }
	const std::vector<Part> &parts() const { return parts_; }
	bool hasReference() const;
	// Exactly one reference and no literal text (a value template).
	const NodeRef *single() const;
	// The text with every reference replaced by "" (value_on_error labels
	// where no node exists).
	std::string literal() const;

private:
	std::string source_;
	std::vector<Part> parts_;
};

} // namespace pme::common
