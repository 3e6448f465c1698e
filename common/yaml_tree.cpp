// SPDX-License-Identifier: ISC
// YAML files as trees of nodes that know where they were written.
//
// libyaml's document API (yaml_parser_load) gives nodes by index, aliases
// resolved to the index of their anchor; they are converted once each
// (memoized by index), so an alias is the same YamlNode as its anchor and
// a document of aliases of aliases ("billion laughs") stays as small as it
// is written.  An alias may point at one of its own ancestors; the result
// is then a graph with a cycle, which the loader copes with because it
// walks a fixed schema rather than the graph.  Conversion recursion is
// bounded by the document's nesting, which is capped.
//
// Merge keys (YAML 1.1 "<<", which libyaml leaves to applications) are
// applied here: the pairs of the merged mapping, or of each mapping of a
// merged list with the first one winning, take the place of the "<<" pair,
// and a key the mapping gives itself overrides a merged one wherever it is
// written.  Merging a mapping that contains the merge (through an alias of
// an ancestor) is an error rather than a loop.
//
// ${env:NAME} is replaced in every scalar as it is converted.  The value
// inserted has its '$' doubled, so that what the loader later reads obeys
// one rule: "$$" is a literal '$', whatever came from where.
#include "yaml_tree.hpp"

#include <yaml.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <unordered_set>

#include "c_deleter.hpp"

namespace pme::common {

namespace {

constexpr int maxDepth = 256;

bool nameStart(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

bool nameChar(char c)
{
	return nameStart(c) || (c >= '0' && c <= '9');
}

const char *systemEnv(const char *name)
{
	return std::getenv(name);
}

} // namespace

std::string substituteEnv(const std::string &text, YamlTree::Environment env, std::string *error)
{
	const std::string mark = "${env:";
	if (text.find(mark) == std::string::npos)
		return text;
	std::string out;
	for (size_t i = 0; i < text.size(); i++) {
		if (text[i] != '$') {
			out += text[i];
			continue;
		}
		if (text.compare(i, 2, "$$") == 0) {
			out += "$$";
			i++;
			continue;
		}
		if (text.compare(i, mark.size(), mark) != 0) {
			out += '$';
			continue;
		}
		size_t close = text.find('}', i);
		if (close == std::string::npos) {
			*error = "'${env:' without its '}' (write $$ for a literal $)";
			return out;
		}
		std::string name = text.substr(i + mark.size(), close - i - mark.size());
		if (name.empty() || !nameStart(name[0]) ||
		    !std::all_of(name.begin(), name.end(), nameChar)) {
			*error = "invalid environment variable name '" + name + "' in ${env:" + name +
			    "}: use letters, digits and '_', not starting with a digit";
			return out;
		}
		const char *value = (env ? env : systemEnv)(name.c_str());
		if (!value) {
			*error = "environment variable " + name + " is not set (referred to as ${env:" +
			    name + "})";
			return out;
		}
		out += escapeDollars(value);
		i = close;
	}
	return out;
}

std::string unescapeDollars(const std::string &text)
{
	if (text.find("$$") == std::string::npos)
		return text;
	std::string out;
	out.reserve(text.size());
	for (size_t i = 0; i < text.size(); i++) {
		out += text[i];
		if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '$')
			i++;
	}
	return out;
}

std::string escapeDollars(const std::string &text)
{
	if (text.find('$') == std::string::npos)
		return text;
	std::string out;
	out.reserve(text.size() + 4);
	for (char c : text) {
		out += c;
		if (c == '$')
			out += '$';
	}
	return out;
}

bool YamlNode::isNull() const
{
	return kind == Kind::Scalar && style == Style::Plain &&
	    (value.empty() || value == "~" || value == "null" || value == "Null" || value == "NULL");
}

Location YamlNode::where() const
{
	return Location{file ? *file : std::string(), line, column};
}

std::pair<const YamlNode *, const YamlNode *> YamlNode::find(const std::string &key) const
{
	for (const auto &[k, v] : pairs)
		if (k->isScalar() && k->value == key)
			return {k, v};
	return {nullptr, nullptr};
}

YamlTree::YamlTree(Environment env) : env_(env ? env : systemEnv) {}

YamlNode *YamlTree::make(YamlNode node)
{
	return &nodes_.emplace_back(std::move(node));
}

const TemplateUse *YamlTree::use(TemplateUse use)
{
	return &uses_.emplace_back(std::move(use));
}

namespace {

// One libyaml document into the tree.
class Converter {
public:
	Converter(YamlTree &tree, yaml_document_t *doc, const std::string *file,
	    YamlTree::Environment env, Errors &errors)
		: tree_(tree), doc_(doc), file_(file), env_(env), errors_(errors)
	{
		size_t n = static_cast<size_t>(doc->nodes.top - doc->nodes.start);
		nodes_.assign(n + 1, nullptr);
	}

	const YamlNode *convert(int index, int depth);

private:
	YamlTree &tree_;
	yaml_document_t *doc_;
	const std::string *file_;
	YamlTree::Environment env_;
	Errors &errors_;
	std::vector<YamlNode *> nodes_;
	std::unordered_set<const YamlNode *> open_; // being converted
	bool tooDeep_ = false;

	void error(const yaml_node_t *n, std::string message)
	{
		errors_.emplace_back(Location{*file_, static_cast<int>(n->start_mark.line) + 1,
		    static_cast<int>(n->start_mark.column) + 1}, std::move(message));
	}
	void scalar(YamlNode &out, const yaml_node_t *n);
	void mapping(YamlNode &out, const yaml_node_t *n, int depth);
	bool isMergeKey(const yaml_node_t *k) const;
	void merge(YamlNode &out, const YamlNode *from, const yaml_node_t *at,
	    const std::set<std::string> &explicitKeys, std::set<std::string> &merged);
};

void Converter::scalar(YamlNode &out, const yaml_node_t *n)
{
	out.value.assign(reinterpret_cast<const char *>(n->data.scalar.value), n->data.scalar.length);
	switch (n->data.scalar.style) {
	case YAML_SINGLE_QUOTED_SCALAR_STYLE: out.style = YamlNode::Style::SingleQuoted; break;
	case YAML_DOUBLE_QUOTED_SCALAR_STYLE: out.style = YamlNode::Style::DoubleQuoted; break;
	case YAML_LITERAL_SCALAR_STYLE: out.style = YamlNode::Style::Literal; break;
	case YAML_FOLDED_SCALAR_STYLE: out.style = YamlNode::Style::Folded; break;
	default: out.style = YamlNode::Style::Plain; break;
	}
	size_t raw = n->end_mark.index - n->start_mark.index;
	size_t len = out.value.size();
	bool oneLine = n->start_mark.line == n->end_mark.line;
	if (out.style == YamlNode::Style::Plain)
		out.literalLine = oneLine && raw == len;
	else if (out.style != YamlNode::Style::Literal && out.style != YamlNode::Style::Folded)
		out.literalLine = oneLine && raw == len + 2;
	// On an error the value is what came before the bad reference, so
	// that it does not cause more errors than its own.
	std::string why;
	std::string value = substituteEnv(out.value, env_, &why);
	if (!why.empty())
		error(n, why);
	if (value != out.value) {
		out.value = std::move(value);
		out.literalLine = false;
	}
}

bool Converter::isMergeKey(const yaml_node_t *k) const
{
	if (k->type != YAML_SCALAR_NODE)
		return false;
	std::string_view v(reinterpret_cast<const char *>(k->data.scalar.value),
	    k->data.scalar.length);
	const char *tag = reinterpret_cast<const char *>(k->tag);
	bool mergeTag = tag && std::string_view(tag) == "tag:yaml.org,2002:merge";
	return mergeTag || (v == "<<" && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
}

void Converter::merge(YamlNode &out, const YamlNode *from, const yaml_node_t *at,
    const std::set<std::string> &explicitKeys, std::set<std::string> &merged)
{
	if (!from->isMapping()) {
		error(at, "a merge key '<<' takes a mapping or a list of mappings (such as "
		    "*defaults or [*a, *b])");
		return;
	}
	if (open_.count(from)) {
		error(at, "a merge key '<<' refers to a mapping that contains it");
		return;
	}
	for (const auto &[k, v] : from->pairs) {
		if (k->isScalar()) {
			if (explicitKeys.count(k->value) || !merged.insert(k->value).second)
				continue;
		}
		out.pairs.emplace_back(k, v);
	}
}

void Converter::mapping(YamlNode &out, const yaml_node_t *n, int depth)
{
	const auto *begin = n->data.mapping.pairs.start, *end = n->data.mapping.pairs.top;
	std::set<std::string> explicitKeys, merged;
	for (const auto *p = begin; p < end; p++) {
		const yaml_node_t *k = yaml_document_get_node(doc_, p->key);
		if (k && k->type == YAML_SCALAR_NODE && !isMergeKey(k))
			explicitKeys.insert(std::string(reinterpret_cast<const char *>(
			    k->data.scalar.value), k->data.scalar.length));
	}
	for (const auto *p = begin; p < end; p++) {
		const yaml_node_t *k = yaml_document_get_node(doc_, p->key);
		const yaml_node_t *v = yaml_document_get_node(doc_, p->value);
		if (!k || !v)
			continue;
		if (!isMergeKey(k)) {
			const YamlNode *key = convert(p->key, depth + 1);
			const YamlNode *value = convert(p->value, depth + 1);
			if (key && value)
				out.pairs.emplace_back(key, value);
			continue;
		}
		const YamlNode *value = convert(p->value, depth + 1);
		if (!value)
			continue;
		if (value->isSequence()) {
			for (size_t i = 0; i < value->items.size(); i++) {
				const yaml_node_t *item = yaml_document_get_node(doc_,
				    v->data.sequence.items.start[i]);
				merge(out, value->items[i], item ? item : v, explicitKeys, merged);
			}
		} else {
			merge(out, value, v, explicitKeys, merged);
		}
	}
}

const YamlNode *Converter::convert(int index, int depth)
{
	if (index <= 0 || static_cast<size_t>(index) >= nodes_.size())
		return nullptr;
	auto i = static_cast<size_t>(index);
	if (nodes_[i])
		return nodes_[i];
	const yaml_node_t *n = yaml_document_get_node(doc_, index);
	if (!n)
		return nullptr;
	if (depth > maxDepth) {
		if (!tooDeep_)
			error(n, "the document is nested more than " + std::to_string(maxDepth) +
			    " levels deep");
		tooDeep_ = true;
		return nullptr;
	}
	YamlNode node;
	node.file = file_;
	node.line = static_cast<int>(n->start_mark.line) + 1;
	node.column = static_cast<int>(n->start_mark.column) + 1;
	YamlNode *out = tree_.make(std::move(node));
	nodes_[i] = out;
	open_.insert(out);
	switch (n->type) {
	case YAML_SCALAR_NODE:
		scalar(*out, n);
		break;
	case YAML_SEQUENCE_NODE:
		out->kind = YamlNode::Kind::Sequence;
		for (auto *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
			if (const YamlNode *item = convert(*it, depth + 1))
				out->items.push_back(item);
		break;
	case YAML_MAPPING_NODE:
		out->kind = YamlNode::Kind::Mapping;
		mapping(*out, n, depth);
		break;
	default:
		break;
	}
	open_.erase(out);
	return out;
}

std::string position(int line, int column)
{
	return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

} // namespace

const YamlNode *YamlTree::parse(const std::string &text, const std::string &file, Errors &errors)
{
	const std::string *name = &files_.emplace_back(file);
	CPtr<yaml_parser_t> parser(new yaml_parser_t{});
	if (!yaml_parser_initialize(parser.get()))
		throw std::bad_alloc();
	yaml_parser_set_input_string(parser.get(),
	    reinterpret_cast<const unsigned char *>(text.data()), text.size());

	auto syntaxError = [&]() -> const YamlNode * {
		const yaml_parser_t &p = *parser;
		Location where{file, static_cast<int>(p.problem_mark.line) + 1,
		    static_cast<int>(p.problem_mark.column) + 1};
		std::string msg = p.problem ? p.problem : "cannot parse";
		if (p.error == YAML_READER_ERROR) {
			// No mark: count lines up to the offending byte.
			size_t off = std::min(p.problem_offset, text.size());
			where.line = 1 + static_cast<int>(std::count(text.begin(),
			    text.begin() + static_cast<std::ptrdiff_t>(off), '\n'));
			size_t nl = text.rfind('\n', off == 0 ? 0 : off - 1);
			where.column = static_cast<int>(nl == std::string::npos || off == 0 ?
			    off + 1 : off - nl);
		} else if (p.error == YAML_MEMORY_ERROR) {
			throw std::bad_alloc();
		}
		if (p.context)
			msg += " (" + std::string(p.context) + " at " +
			    position(static_cast<int>(p.context_mark.line) + 1,
			    static_cast<int>(p.context_mark.column) + 1) + ")";
		errors.emplace_back(where, "YAML syntax error: " + msg);
		return nullptr;
	};

	CPtr<yaml_document_t> doc(new yaml_document_t{});
	if (!yaml_parser_load(parser.get(), doc.get()))
		return syntaxError();
	yaml_node_t *root = yaml_document_get_root_node(doc.get());
	if (!root)
		return nullptr;
	CPtr<yaml_document_t> extra(new yaml_document_t{});
	if (!yaml_parser_load(parser.get(), extra.get()))
		return syntaxError();
	if (yaml_node_t *more = yaml_document_get_root_node(extra.get()))
		errors.emplace_back(Location{file, static_cast<int>(more->start_mark.line) + 1,
		    static_cast<int>(more->start_mark.column) + 1},
		    "a second YAML document: pme reads one document per file; remove the '---'");
	Converter c(*this, doc.get(), name, env_, errors);
	return c.convert(static_cast<int>(root - doc->nodes.start) + 1, 0);
}

} // namespace pme::common
