// SPDX-License-Identifier: ISC
// Composing a configuration: included files, templates and their variables.
//
// Both happen on the YAML tree, before the schema is read, so that what the
// loader reads and checks is exactly what an operator would have written
// by hand, and every message still points into the file that says it.
//
// include: patterns (glob(3), relative to the main file's directory) name
// more files holding `services` and `templates`.  They are read in pattern
// order, the matches of one pattern sorted, each file once; a pattern
// without wildcards must name a file that exists, a wildcard may match
// nothing (an empty conf.d).  A service key defined twice, in whichever
// files, is an error that names both places.
//
// A group under metric_groups that says `use: NAME` is replaced by a copy of
// template NAME in which every ${VAR} is replaced by the value of VAR from
// the group's `vars`, else from the template's own `vars` (defaults); the
// group's other keys are then laid over the copy, `metrics`, `labels`, `env`
// and `headers` merged key by key, anything else replaced.  Copies remember
// the use, so that a message about them names the template's line and
// where it was used.  A ${VAR} the copy cannot resolve stays as written:
// labels and values of metrics may mean a capture or a node by it, and
// every other field refuses it when read (Loader::checkDollars).  A var
// given that the template never refers to is refused, since it is most
// often a misspelling.  A copy is bounded in size: a template of aliases of
// aliases cannot make the loader allocate without end.
#include "config_load.hpp"

#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>

namespace pme::common::load {

namespace {

constexpr size_t maxIncludedFiles = 1000;
constexpr size_t maxCopiedNodes = 100000;
constexpr int maxCopyDepth = 64;

const std::vector<std::string> includedKeys = {"services", "templates"};
// Keys whose mappings a group's own and the template's are merged.
const std::vector<std::string> mergedKeys = {"metrics", "labels", "env", "headers"};

bool varChar(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '_';
}

std::string directoryOf(const std::string &path)
{
	size_t slash = path.rfind('/');
	if (slash == std::string::npos)
		return ".";
	return slash == 0 ? "/" : path.substr(0, slash);
}

// The same file, however it is named.
std::string identity(const std::string &path)
{
	struct stat st{};
	if (::stat(path.c_str(), &st) == 0)
		return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
	return path;
}

// One use of a template: copies its nodes, substituting variables.
class Copier {
public:
	Copier(YamlTree &tree, const TemplateUse *use, const std::map<std::string, std::string> &vars)
		: tree_(tree), use_(use), vars_(vars) {}

	// Null when the copy exceeded its bounds (the reason in *error).
	Node copy(Node n, int depth = 0);

	std::set<std::string> referenced;   // vars substituted
	std::set<std::string> mentioned;    // every ${NAME} seen
	std::string error;

private:
	YamlTree &tree_;
	const TemplateUse *use_;
	const std::map<std::string, std::string> &vars_;
	size_t copied_ = 0;

	void substitute(YamlNode &c);
};

void Copier::substitute(YamlNode &c)
{
	const std::string &t = c.value;
	if (t.find("${") == std::string::npos)
		return;
	std::string out;
	for (size_t i = 0; i < t.size(); i++) {
		if (t[i] != '$' || i + 1 >= t.size()) {
			out += t[i];
			continue;
		}
		if (t[i + 1] == '$') {
			out += "$$";
			i++;
			continue;
		}
		size_t close = t[i + 1] == '{' ? t.find('}', i + 2) : std::string::npos;
		std::string name = close == std::string::npos ? "" : t.substr(i + 2, close - i - 2);
		if (name.empty() || !std::all_of(name.begin(), name.end(), varChar)) {
			out += t[i];
			continue;
		}
		mentioned.insert(name);
		auto it = vars_.find(name);
		if (it == vars_.end()) {
			c.unresolved.push_back(name);
			out.append(t, i, close - i + 1);
		} else {
			referenced.insert(name);
			out += it->second;
		}
		i = close;
	}
	if (out != t) {
		c.value = std::move(out);
		c.literalLine = false;
	}
}

Node Copier::copy(Node n, int depth)
{
	if (!error.empty())
		return nullptr;
	if (depth > maxCopyDepth) {
		error = "it is nested more than " + std::to_string(maxCopyDepth) + " levels deep "
		    "(an alias that contains itself?)";
		return nullptr;
	}
	if (++copied_ > maxCopiedNodes) {
		error = "it expands to more than " + std::to_string(maxCopiedNodes) + " nodes";
		return nullptr;
	}
	YamlNode c;
	c.kind = n->kind;
	c.style = n->style;
	c.value = n->value;
	c.file = n->file;
	c.line = n->line;
	c.column = n->column;
	c.literalLine = n->literalLine;
	c.use = use_;
	if (c.isScalar())
		substitute(c);
	for (const auto &[k, v] : n->pairs) {
		Node ck = copy(k, depth + 1), cv = copy(v, depth + 1);
		if (!ck || !cv)
			return nullptr;
		c.pairs.emplace_back(ck, cv);
	}
	for (Node item : n->items) {
		Node ci = copy(item, depth + 1);
		if (!ci)
			return nullptr;
		c.items.push_back(ci);
	}
	return tree_.make(std::move(c));
}

} // namespace

void Loader::loadIncludes(Node patterns, std::vector<Node> &services, std::vector<Node> &templates)
{
	std::vector<std::pair<std::string, Node>> list;
	if (patterns->isSequence()) {
		for (Node item : patterns->items)
			if (auto p = getNonEmpty(item, "include"))
				list.emplace_back(*p, item);
	} else if (patterns->isScalar() && !isNull(patterns)) {
		if (auto p = getNonEmpty(patterns, "include"))
			list.emplace_back(*p, patterns);
	} else if (!isNull(patterns)) {
		error(patterns, "expected a file pattern or a list of them for 'include' (as in "
		    "/etc/pme/conf.d/*.yml), got " + describe(patterns));
		return;
	}
	for (const auto &p : list)
		config_.exporter.include.push_back(p.first);

	std::string dir = directoryOf(file_);
	std::set<std::string> seen{identity(file_)};
	size_t files = 0;
	for (const auto &[pattern, where] : list) {
		std::string full = pattern[0] == '/' ? pattern : dir + "/" + pattern;
		bool wild = full.find_first_of("*?[") != std::string::npos;
		glob_t g{};
		int rc = ::glob(full.c_str(), 0, nullptr, &g);
		if (rc == GLOB_NOMATCH) {
			if (!wild)
				error(where, "included file " + full + ": cannot read: No such file or "
				    "directory");
			::globfree(&g);
			continue;
		}
		if (rc != 0) {
			error(where, "include '" + pattern + "': " + (rc == GLOB_NOSPACE ?
			    "out of memory" : "a directory on the way cannot be read"));
			::globfree(&g);
			continue;
		}
		for (size_t i = 0; i < g.gl_pathc; i++) {
			std::string path = g.gl_pathv[i];
			struct stat st{};
			if (wild && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
				continue;
			if (!seen.insert(identity(path)).second)
				continue;
			if (++files > maxIncludedFiles) {
				error(where, "more than " + std::to_string(maxIncludedFiles) +
				    " included files");
				::globfree(&g);
				return;
			}
			auto text = readConfigText(path);
			if (!text) {
				error(where, "included file " + path + ": " + text.error().message);
				continue;
			}
			fileOrder_.push_back(path);
			Node root = tree_.parse(*text, path, errors_);
			if (!root || isNull(root))
				continue;
			if (!root->isMapping()) {
				error(root, "expected a mapping with 'services' or 'templates' in an "
				    "included file, got " + describe(root));
				continue;
			}
			eachPair(root, [&](const std::string &key, Node k, Node v) {
				if (key == "services")
					services.push_back(v);
				else if (key == "templates")
					templates.push_back(v);
				else if (key == "exporter" || key == "include")
					error(k, "'" + key + "' can only be given in the main configuration "
					    "file (" + file_ + "), not in an included one");
				else
					unknownKey(k, key, "an included file", includedKeys);
			});
		}
		::globfree(&g);
	}
}

void Loader::loadTemplates(Node n)
{
	if (isNull(n) || !expectMapping(n, "templates"))
		return;
	eachPair(n, [&](const std::string &key, Node k, Node v) {
		auto [it, fresh] = templates_.emplace(key, Template{k, v});
		if (!fresh) {
			error(k, "template '" + key + "' is already defined at " +
			    it->second.key->where().str());
			return;
		}
		if (!v->isMapping()) {
			error(v, "expected a mapping for template '" + key + "' (the keys of a metric "
			    "group), got " + describe(v));
			return;
		}
		if (auto [uk, uv] = v->find("use"); uk)
			error(uk, "template '" + key + "' cannot itself use a template");
	});
}

// The group as it is meant: itself, or the template it uses with its own
// keys laid over.  Null when the use cannot be expanded (reported).
Node Loader::expandUse(Node group)
{
	if (!group->isMapping())
		return group;
	auto [useKey, useNode] = group->find("use");
	auto [varsKey, varsNode] = group->find("vars");
	if (!useNode) {
		if (varsKey)
			error(varsKey, "'vars' gives values to a template's variables: add 'use' "
			    "with the template's name");
		return varsKey ? nullptr : group;
	}
	auto name = getString(useNode, "use");
	if (!name)
		return nullptr;
	auto it = templates_.find(*name);
	if (it == templates_.end()) {
		std::vector<std::string> names;
		for (const auto &t : templates_)
			names.push_back(t.first);
		std::string close = closestMatch(*name, names);
		error(useNode, "unknown template '" + *name + "'" + (close.empty() ?
		    names.empty() ? " (no template is defined under 'templates')" :
		    " (defined templates: " + listKeys(names) + ")" :
		    "; did you mean '" + close + "'?"));
		return nullptr;
	}
	Node body = it->second.body;
	if (!body->isMapping() || body->find("use").first)
		return nullptr; // reported with the template

	std::map<std::string, std::string> vars;
	std::map<std::string, Node> given;
	auto readVars = [&](Node map, bool use) {
		if (!map || isNull(map) || !expectMapping(map, "vars"))
			return;
		eachPair(map, [&](const std::string &key, Node k, Node v) {
			if (key.empty() || !std::all_of(key.begin(), key.end(), varChar)) {
				error(k, "invalid variable name '" + key + "': use letters, digits and "
				    "'_'");
				return;
			}
			if (auto value = getRaw(v, "vars." + key)) {
				vars[key] = *value;
				if (use)
					given[key] = k;
			}
		});
	};
	readVars(body->find("vars").second, false);
	readVars(varsNode, true);

	const TemplateUse *use = tree_.use(TemplateUse{*name, at(useNode)});
	Copier copier(tree_, use, vars);
	YamlNode out;
	out.kind = YamlNode::Kind::Mapping;
	out.file = group->file;
	out.line = group->line;
	out.column = group->column;
	for (const auto &[k, v] : body->pairs) {
		if (k->isScalar() && k->value == "vars")
			continue;
		Node ck = copier.copy(k), cv = copier.copy(v);
		if (!ck || !cv)
			break;
		out.pairs.emplace_back(ck, cv);
	}
	if (!copier.error.empty()) {
		error(useNode, "template '" + *name + "' cannot be used: " + copier.error);
		return nullptr;
	}
	for (const auto &[k, v] : group->pairs) {
		if (k->isScalar() && (k->value == "use" || k->value == "vars"))
			continue;
		auto same = std::find_if(out.pairs.begin(), out.pairs.end(), [&](const auto &p) {
			return k->isScalar() && p.first->isScalar() && p.first->value == k->value;
		});
		if (same == out.pairs.end()) {
			out.pairs.emplace_back(k, v);
			continue;
		}
		bool merge = std::count(mergedKeys.begin(), mergedKeys.end(), k->value) &&
		    v->isMapping() && same->second->isMapping();
		if (!merge) {
			*same = {k, v};
			continue;
		}
		YamlNode m = *same->second;
		for (const auto &[mk, mv] : v->pairs) {
			auto old = std::find_if(m.pairs.begin(), m.pairs.end(), [&](const auto &p) {
				return mk->isScalar() && p.first->isScalar() &&
				    p.first->value == mk->value;
			});
			if (old == m.pairs.end())
				m.pairs.emplace_back(mk, mv);
			else
				*old = {mk, mv};
		}
		same->second = tree_.make(std::move(m));
	}
	for (const auto &[var, keyNode] : given) {
		if (copier.referenced.count(var))
			continue;
		std::vector<std::string> names(copier.mentioned.begin(), copier.mentioned.end());
		std::string close = closestMatch(var, names);
		error(keyNode, "template '" + *name + "' has no ${" + var + "}" + (close.empty() ?
		    "" : "; did you mean '" + close + "'?"));
	}
	return tree_.make(std::move(out));
}

} // namespace pme::common::load
