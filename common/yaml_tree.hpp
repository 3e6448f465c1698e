// SPDX-License-Identifier: ISC
// YAML files as trees of nodes that know where they were written, with
// aliases shared, merge keys (<<) applied and ${env:NAME} substituted.
#pragma once

#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "error.hpp"

namespace pme::common {

// Where a node copied out of a template was put to use, for messages that
// point at both places.
struct TemplateUse {
	std::string name;
	Location usedAt;
};

struct YamlNode {
	enum class Kind { Scalar, Sequence, Mapping };
	enum class Style { Plain, SingleQuoted, DoubleQuoted, Literal, Folded };

	Kind kind = Kind::Scalar;
	Style style = Style::Plain;
	std::string value;            // a scalar's text, ${env:NAME} substituted
	const std::string *file = nullptr;
	int line = 0, column = 0;     // 1-based, where the node starts
	// The scalar is written on one line and value is exactly what is
	// written there (no escape, fold or substitution): a byte offset into
	// value is a column offset from the start of the text.  The text
	// starts after the opening quote when quoted.
	bool literalLine = false;
	// Mappings: every pair in order, the pairs of merge keys (<<) in
	// place of the key, a key given explicitly overriding a merged one.
	std::vector<std::pair<const YamlNode *, const YamlNode *>> pairs;
	std::vector<const YamlNode *> items;
	// Copied from a template (null for nodes read from a file).
	const TemplateUse *use = nullptr;
	// Template copies: the ${NAME} references the copy found no variable
	// for, which only labels and values may keep (as their own references).
	std::vector<std::string> unresolved;

	bool isScalar() const { return kind == Kind::Scalar; }
	bool isMapping() const { return kind == Kind::Mapping; }
	bool isSequence() const { return kind == Kind::Sequence; }
	// A plain null (~, null, empty); a quoted "" is a string.
	bool isNull() const;
	Location where() const;
	// The pair of a key in a mapping, or nulls.
	std::pair<const YamlNode *, const YamlNode *> find(const std::string &key) const;
};

// Owns every node of every file read into it, and of every node made from
// them; pointers stay valid for the tree's life.
class YamlTree {
public:
	// How ${env:NAME} is resolved; the default reads pmed's environment.
	using Environment = const char *(*)(const char *name);

	explicit YamlTree(Environment env = nullptr);
	YamlTree(const YamlTree &) = delete;
	YamlTree &operator=(const YamlTree &) = delete;

	// Parse one document.  Errors (syntax, a bad merge key, an unset
	// environment variable...) are appended to errors with the file's
	// name; the root is returned when there is one, even with errors in
	// some of its scalars.  A file with no document gives a null root
	// and no error.
	const YamlNode *parse(const std::string &text, const std::string &file, Errors &errors);

	// A new node, owned by the tree.
	YamlNode *make(YamlNode node);
	const TemplateUse *use(TemplateUse use);

	size_t size() const { return nodes_.size(); }

private:
	Environment env_;
	std::deque<YamlNode> nodes_;
	std::deque<std::string> files_;
	std::deque<TemplateUse> uses_;
};

// "${env:NAME}" in text, replaced through env; "$$" is kept as it is, and
// so is a value inserted ('$' doubled), so that whoever reads the text next
// sees one escape convention.  *error is set (and the text returned so far)
// when a variable is unset or the reference is malformed.
std::string substituteEnv(const std::string &text, YamlTree::Environment env,
    std::string *error);

// "$$" -> "$": the text of a string field as the operator meant it.
std::string unescapeDollars(const std::string &text);
// '$' -> "$$": a string written back so that it loads as itself.
std::string escapeDollars(const std::string &text);

} // namespace pme::common
