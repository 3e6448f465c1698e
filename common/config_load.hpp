// SPDX-License-Identifier: ISC
// The configuration loader's insides, shared by the files that read,
// check and compose pme.yml: scalar forms, drafts and the Loader class.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "config.hpp"
#include "config_loader.hpp"
#include "yaml_tree.hpp"

namespace pme::common::load {

constexpr size_t maxFileSize = 16 * 1024 * 1024;
constexpr uint64_t maxOutputLimit = 1024ULL * 1024 * 1024;
// The most max_series may be: what the supervisor accepts from one result.
constexpr size_t maxSeriesLimit = 1000000;

extern const std::string notSupported;

// ---- scalar forms (config_read.cpp) ----
std::string lower(std::string s);
std::string upper(std::string s);
std::optional<bool> boolFromText(const std::string &s);
bool allOf(const std::string &s, size_t from, bool (*pred)(char));
bool isDigit(char c);
// A YAML number: [-+] then decimal (with fraction and exponent), 0x hex,
// 0o octal, .inf or .nan.  *range is set when the form is right but the
// value does not fit a double.
std::optional<double> numberFromText(const std::string &text, bool *range = nullptr);
std::vector<std::string> splitWords(const std::string &s);
std::string join(const std::vector<std::string> &words);
bool validMetricName(const std::string &s);
bool validLabelName(const std::string &s);
// "host:port", "[v6]:port" or ":port"; empty when fine, else why not.
std::string checkListen(const std::string &addr);

// A configuration file's text, size-capped (config_loader.cpp).
Result<std::string> readConfigText(const std::string &path);

extern const std::vector<std::string> topKeys, exporterKeys, serviceKeys, runAsKeys,
    sandboxKeys, groupKeys, metricKeys, basicAuthKeys, bearerKeys;
std::vector<std::string> standaloneKeys();
std::string listKeys(const std::vector<std::string> &keys);
// A histogram bucket's upper bound: a number, or +Inf (inf, .inf).
std::optional<double> bucketBound(const std::string &text);

// The captures of a compiled filter.  A null pointer stands for "no
// captures at all" (static sources, which have no match).
struct Captures {
	uint32_t count = 0;
	std::set<std::string> names;
};

// ---- drafts: the model plus the nodes that messages point at ----

using Node = const YamlNode *;

struct MetricDraft {
	MetricConfig m;
	Node keyNode = nullptr;
	Node nameNode = nullptr;
	Node filterNode = nullptr;
	Node valueNode = nullptr;
	Node multilineNode = nullptr;
	Node valueRegexNode = nullptr;
	Node typeNode = nullptr;
	Node valueOnErrorNode = nullptr;
	Node scaleNode = nullptr;
	Node valuesNode = nullptr;
	Node unitNode = nullptr;
	// The keys of histograms, summaries and statesets, for checks of
	// which type may have which.
	std::vector<std::pair<std::string, Node>> typeKeyNodes;
	std::vector<Node> bucketFilterNodes;   // parallel to m.bucketFilters
	Node sumNode = nullptr;
	Node countNode = nullptr;
	Node bucketsNode = nullptr;
	bool bucketsMapped = false;            // buckets: was a mapping
	bool descriptionGiven = false;
	bool typeBad = false;           // unknown or unsupported: no type checks
	std::vector<Node> labelKeyNodes, labelValueNodes; // parallel to m.labels
	std::set<std::string> misspelt; // keys suggested for unknown ones
	bool broken = false;            // not a mapping: already reported
};

struct GroupDraft {
	GroupConfig g;
	Node keyNode = nullptr;
	std::optional<SourceType> sourceType;
	Node sourceTypeNode = nullptr;
	bool sourceTypeBad = false;   // unknown or unsupported: skip source checks
	bool contentBad = false;      // content type unsupported: skip filter checks
	Node sourceNode = nullptr;
	Node commandNode = nullptr;
	Node shellNode = nullptr;
	Node intervalNode = nullptr;
	const char *intervalKey = nullptr;
	Node contentNode = nullptr;
	Node metricsNode = nullptr;
	Node namespacesNode = nullptr;
	std::vector<Node> labelKeyNodes;           // parallel to g.labels
	std::vector<Node> namespaceKeyNodes;       // parallel to g.namespaces
	std::vector<std::pair<std::string, Node>> importNodes; // prefix, include, ...
	std::vector<std::pair<std::string, Node>> httpNodes;   // method, headers, ...
	std::vector<Node> headerKeyNodes, headerValueNodes;   // parallel to g.http.headers
	bool authBad = false;         // an unknown key in basic_auth or bearer
	std::vector<Node> includeNodes, excludeNodes; // parallel to g.import lists
	std::vector<MetricDraft> metrics;
	std::set<std::string> misspelt;
	bool broken = false;
};

struct ServiceDraft {
	ServiceConfig s;
	Node keyNode = nullptr;
	Node nameNode = nullptr;
	Node prefixNode = nullptr;
	Node intervalNode = nullptr;
	bool prefixOk = true;
	std::vector<GroupDraft> groups; // metric_groups then standalone_metrics
	bool sawGroups = false;
};

// What a metric name was first seen as, across services.
struct NameUse {
	MetricType type;
	std::string service;
	Location where;
};

class Loader {
public:
	explicit Loader(std::string file) : file_(std::move(file)) {}

	ConfigResult load(const std::string &text);
	const LoadNotes &notes() const { return notes_; }

private:
	std::string file_;
	YamlTree tree_;
	Errors errors_;
	Config config_;
	std::map<std::string, NameUse> names_; // full metric name -> first use
	std::vector<ServiceDraft> drafts_;
	// Composition (config_compose.cpp).
	struct Template {
		Node key = nullptr;
		Node body = nullptr;
	};
	std::map<std::string, Template> templates_;
	std::map<std::string, Location> serviceKeys_; // across files
	Node includeNode_ = nullptr;      // exporter.include or include
	std::vector<std::string> fileOrder_; // main file, then included ones
	LoadNotes notes_;

	// The original PME's dialect (config_compose.cpp): the root in pme's
	// own keys, or root itself when it has no key of that dialect.
	Node translateLegacy(Node root);

	// ---- nodes and errors ----
	static Location at(Node n) { return n->where(); }

	// A message about a node copied from a template also says where the
	// template was used.
	void error(Node n, std::string msg)
	{
		if (n->use)
			msg += " (in template '" + n->use->name + "' used at " + n->use->usedAt.str() +
			    ")";
		errors_.emplace_back(at(n), std::move(msg));
	}

	static const std::string &text(Node n) { return n->value; }

	static bool plain(Node n)
	{
		return n->isScalar() && n->style == YamlNode::Style::Plain;
	}

	static bool isNull(Node n) { return n->isNull(); }

	static std::string describe(Node n)
	{
		if (n->isMapping())
			return "a mapping";
		if (n->isSequence())
			return "a list";
		if (isNull(n))
			return "nothing";
		std::string t = text(n);
		if (t.size() > 40) {
			// Cut on a character boundary.
			size_t cut = 37;
			while (cut > 0 && (static_cast<unsigned char>(t[cut]) & 0xc0) == 0x80)
				cut--;
			t = t.substr(0, cut) + "...";
		}
		return "'" + t + "'";
	}

	static std::string position(const Location &l)
	{
		return "line " + std::to_string(l.line) + ", column " + std::to_string(l.column);
	}

	// Returns the key suggested instead, if any: a check for that key's
	// absence would only repeat the mistake.
	std::string unknownKey(Node k, const std::string &key, const std::string &context,
	    const std::vector<std::string> &keys)
	{
		std::string msg = "unknown key '" + key + "' in " + context;
		std::string close = closestMatch(key, keys);
		if (!close.empty())
			msg += "; did you mean '" + close + "'?";
		else
			msg += " (known keys: " + listKeys(keys) + ")";
		error(k, msg);
		return close;
	}

	// ---- typed accessors: report and return nullopt on a wrong value ----
	bool expectMapping(Node n, const std::string &what)
	{
		if (n->isMapping())
			return true;
		error(n, "expected a mapping for '" + what + "', got " + describe(n));
		return false;
	}

	template <typename Fn>
	void eachPair(Node map, Fn fn)
	{
		std::map<std::string, Node> seen;
		for (const auto &[k, v] : map->pairs) {
			if (!k->isScalar()) {
				error(k, "expected a name as key, got " + describe(k));
				continue;
			}
			const std::string &key = text(k);
			auto [it, fresh] = seen.emplace(key, k);
			if (!fresh) {
				error(k, "duplicate key '" + key + "' (first given at " +
				    position(at(it->second)) + ")");
				continue;
			}
			fn(key, k, v);
		}
	}

	// Any string field: "$$" is a '$', and a "${NAME}" left over (neither
	// an environment variable nor a template's) is a mistake.
	std::optional<std::string> getString(Node n, const std::string &what)
	{
		auto raw = getRaw(n, what);
		if (!raw || !checkDollars(n, *raw, what))
			return std::nullopt;
		return unescapeDollars(*raw);
	}
	bool checkDollars(Node n, const std::string &text, const std::string &what);

	// A scalar as written: the labels and value of a metric, which are
	// templates with their own '$' syntax.
	std::optional<std::string> getRaw(Node n, const std::string &what)
	{
		if (!n->isScalar() || isNull(n)) {
			std::string msg = "expected a string for '" + what + "', got " + describe(n);
			if (n->isScalar())
				msg += " (write '' for an empty string)";
			error(n, msg);
			return std::nullopt;
		}
		std::string t = text(n);
		if (t.find('\0') != std::string::npos) {
			error(n, "'" + what + "' contains a NUL character");
			return std::nullopt;
		}
		return t;
	}

	// A word from a closed list, case-insensitive: an unknown word is
	// reported with the closest known one, a known word this version does
	// not implement as such.  *bad is set on either; a known word is
	// returned even when unsupported, so later checks still know it.
	template <typename T>
	std::optional<T> keyword(Node v, const std::string &key, const std::string &what,
	    const std::vector<std::pair<std::string, T>> &words, const std::vector<T> &supported,
	    const std::string &use, bool *bad)
	{
		auto s = getString(v, key);
		if (!s) {
			*bad = true;
			return std::nullopt;
		}
		std::vector<std::string> names;
		for (const auto &[name, value] : words) {
			names.push_back(name);
			if (lower(*s) != name)
				continue;
			if (std::find(supported.begin(), supported.end(), value) == supported.end()) {
				error(v, what + " " + name + " " + notSupported + " (use " + use + ")");
				*bad = true;
			}
			return value;
		}
		std::string close = closestMatch(lower(*s), names);
		error(v, "unknown " + what + " '" + *s + "'" +
		    (close.empty() ? " (use " + use + ")" : "; did you mean '" + close + "'?"));
		*bad = true;
		return std::nullopt;
	}

	std::optional<std::string> getNonEmpty(Node n, const std::string &what)
	{
		auto s = getString(n, what);
		if (s && s->empty()) {
			error(n, "'" + what + "' must not be empty");
			return std::nullopt;
		}
		return s;
	}

	std::optional<bool> getBool(Node n, const std::string &what)
	{
		if (n->isScalar()) {
			if (auto b = boolFromText(text(n)))
				return b;
		}
		error(n, "expected true or false for '" + what + "', got " + describe(n));
		return std::nullopt;
	}

	std::optional<double> getNumber(Node n, const std::string &what)
	{
		if (n->isScalar()) {
			bool range = false;
			if (auto v = numberFromText(text(n), &range))
				return v;
			if (range) {
				error(n, "the number " + describe(n) + " for '" + what +
				    "' is out of range");
				return std::nullopt;
			}
		}
		error(n, "expected a number for '" + what + "', got " + describe(n));
		return std::nullopt;
	}

	// A duration; positive unless zero is allowed.
	std::optional<Millis> getDuration(Node n, const std::string &what, bool zeroOk = false)
	{
		if (!n->isScalar() || isNull(n)) {
			error(n, "expected a duration for '" + what + "' (as in 5s or 1m30s), got " +
			    describe(n));
			return std::nullopt;
		}
		auto d = parseDuration(text(n));
		if (!d) {
			error(n, what + ": " + d.error().message);
			return std::nullopt;
		}
		if (!zeroOk && d->count() == 0) {
			error(n, what + " must be longer than 0");
			return std::nullopt;
		}
		return *d;
	}

	std::optional<uint64_t> getSize(Node n, const std::string &what);

	// A mapping of strings to strings, in order, with its nodes.
	void getPairs(Node n, const std::string &what, Pairs &out, std::vector<Node> *keyNodes,
	    std::vector<Node> *valueNodes, bool templates = false)
	{
		if (!expectMapping(n, what))
			return;
		eachPair(n, [&](const std::string &key, Node k, Node v) {
			auto value = templates ? getRaw(v, what + "." + key) :
			    getString(v, what + "." + key);
			if (!value)
				return;
			out.emplace_back(key, *value);
			if (keyNodes)
				keyNodes->push_back(k);
			if (valueNodes)
				valueNodes->push_back(v);
		});
	}

	void getLabels(Node n, const std::string &what, Pairs &out, std::vector<Node> *keyNodes,
	    std::vector<Node> *valueNodes, bool templates = false)
	{
		size_t first = out.size();
		std::vector<Node> keys, values;
		getPairs(n, what, out, &keys, &values, templates);
		for (size_t i = first, j = 0; i < out.size(); i++, j++) {
			if (!validLabelName(out[i].first))
				error(keys[j], "invalid label name '" + out[i].first +
				    "': use letters, digits and '_', not starting with a digit "
				    "nor with '__'");
		}
		if (keyNodes)
			keyNodes->insert(keyNodes->end(), keys.begin(), keys.end());
		if (valueNodes)
			valueNodes->insert(valueNodes->end(), values.begin(), values.end());
	}

	void getEnv(Node n, const std::string &what, Pairs &out)
	{
		size_t first = out.size();
		std::vector<Node> keys;
		getPairs(n, what, out, &keys, nullptr);
		for (size_t i = first, j = 0; i < out.size(); i++, j++) {
			const auto &name = out[i].first;
			if (name.empty() || name.find('=') != std::string::npos)
				error(keys[j], "invalid environment variable name '" + name +
				    "': it must not be empty nor contain '='");
		}
	}

	// ---- the schema ----
	void loadExporter(Node n);
	void loadServices(Node n);
	void loadIncludes(Node patterns, std::vector<Node> &services,
	    std::vector<Node> &templates);
	void loadTemplates(Node n);
	Node expandUse(Node group);
	void sortErrors();
	void loadService(const std::string &key, Node keyNode, Node n);
	void loadSandbox(Node n, const std::string &context, SandboxConfig &out);
	bool groupKey(GroupDraft &d, const std::string &key, Node k, Node v);
	void validateContent(ServiceDraft &sd, GroupDraft &gd, const std::string &ctx);
	void checkStructured(const GroupDraft &gd, MetricDraft &md, const std::string &what);
	void getPatterns(Node v, const std::string &key, std::vector<std::string> &out,
	    std::vector<Node> &nodes);
	static std::string regexError(const std::string &re, uint32_t options);
	void errorAt(Node n, const std::string &message, const std::string &what);
	bool metricKey(MetricDraft &d, const std::string &key, Node k, Node v);
	bool typeKey(MetricDraft &md, const std::string &key, Node v);
	std::vector<double> getNumbers(Node list, const std::string &what);
	GroupDraft loadGroup(const std::string &key, Node keyNode, Node n, const ServiceDraft &sd);
	GroupDraft loadStandalone(const std::string &key, Node keyNode, Node n,
	    const ServiceDraft &sd);
	MetricDraft newMetric(const std::string &key, Node keyNode);
	MetricDraft loadMetric(const std::string &key, Node keyNode, Node n,
	    const std::string &context);

	// ---- validation ----
	void validateService(ServiceDraft &sd, std::map<std::string, Location> &serviceNames);
	void validateGroup(ServiceDraft &sd, GroupDraft &gd);
	void validateSource(GroupDraft &gd, const std::string &ctx);
	void validateHttp(GroupDraft &gd, const std::string &ctx);
	bool httpKey(GroupDraft &gd, const std::string &key, Node v);
	void validateMetric(ServiceDraft &sd, GroupDraft &gd, MetricDraft &md,
	    std::map<std::string, Location> &seen);
	std::optional<Captures> compileFilter(const GroupDraft &gd, const MetricDraft &md);
	void checkTemplate(Node n, const std::string &what, const std::string &tmpl,
	    const Captures *caps);
	void checkSuffixClash(const MetricConfig &m, Node nameAt);
	bool validateType(const GroupDraft &gd, MetricDraft &md, const std::string &what);
	void checkMappedHistogram(const GroupDraft &gd, MetricDraft &md, const std::string &what);
	void checkOneFilter(const GroupDraft &gd, const std::string &filter, Node n);

	static bool misspelt(const GroupDraft &gd, const MetricDraft &md, const std::string &key)
	{
		return md.misspelt.count(key) || (gd.g.standalone && gd.misspelt.count(key));
	}

	static std::string groupContext(const GroupDraft &gd, const ServiceDraft &sd)
	{
		return (gd.g.standalone ? "standalone metric '" : "group '") + gd.g.key +
		    "' of service '" + sd.s.key + "'";
	}
};

} // namespace pme::common::load
