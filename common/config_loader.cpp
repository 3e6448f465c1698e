// SPDX-License-Identifier: ISC
// Load pme.yml with libyaml into the typed model, collecting every error.
//
// The file is parsed with libyaml's document API (yaml_parser_load), which
// gives a tree of nodes that each know where they started; the schema is
// then walked by hand.  Walking a fixed schema rather than the document
// keeps recursion bounded by the schema's depth, so aliases (even ones that
// point at their own ancestors) cannot make the loader loop.
//
// Loading happens in two passes per service.  The first reads every key of
// the service's mappings into "drafts", which are the model plus the nodes
// that later messages point at; unknown keys, wrong node kinds and
// unparsable scalars are reported there.  The second validates what needs
// more than one key at a time: a group's source depends on its
// source_type, a filter's captures decide which templates are valid,
// intervals depend on the parent's, metric names on the service's prefix.
// Every error is collected rather than returned at the first, so that an
// operator fixes a file in one round; a field that failed to parse is left
// at its default and checks that would only repeat the same mistake are
// skipped.
//
// Scalars are typed by the field they are in, not by YAML's own resolution:
// a string field takes any scalar as written (`version: 1.2` is "1.2"), a
// bool field takes YAML 1.1 and 1.2 booleans, a number field takes decimal,
// 0x/0o and .inf/.nan forms.  The one field whose meaning depends on the
// scalar's form is a metric's `value`: a plain number is a constant, any
// other scalar (a quoted "1" included) is a template.
#include "config_loader.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <variant>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "c_deleter.hpp"
#include "json_path.hpp"
#include "proto/frame.h"
#include "structured_template.hpp"
#include "xpath.hpp"
#include "unique_fd.hpp"

namespace pme::common {

namespace {

constexpr size_t maxFileSize = 16 * 1024 * 1024;
constexpr uint64_t maxOutputLimit = 1024ULL * 1024 * 1024;

const std::string notSupported = "is not supported by this version of pme";

// ---- scalar forms ----

std::string lower(std::string s)
{
	for (auto &c : s)
		if (c >= 'A' && c <= 'Z')
			c = static_cast<char>(c - 'A' + 'a');
	return s;
}

bool isNullText(const std::string &s)
{
	return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::optional<bool> boolFromText(const std::string &s)
{
	std::string l = lower(s);
	if (l == "true" || l == "yes" || l == "on")
		return true;
	if (l == "false" || l == "no" || l == "off")
		return false;
	return std::nullopt;
}

bool allOf(const std::string &s, size_t from, bool (*pred)(char))
{
	if (from >= s.size())
		return false;
	for (size_t i = from; i < s.size(); i++)
		if (!pred(s[i]))
			return false;
	return true;
}

bool isDigit(char c)
{
	return c >= '0' && c <= '9';
}

bool isHex(char c)
{
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool isOctal(char c)
{
	return c >= '0' && c <= '7';
}

// A YAML number: [-+] then decimal (with fraction and exponent), 0x hex,
// 0o octal, .inf or .nan.  *range is set when the form is right but the
// value does not fit a double.
std::optional<double> numberFromText(const std::string &text, bool *range = nullptr)
{
	if (text.empty())
		return std::nullopt;
	std::string l = lower(text);
	if (l == ".nan")
		return std::nan("");
	if (l == ".inf" || l == "+.inf")
		return HUGE_VAL;
	if (l == "-.inf")
		return -HUGE_VAL;

	size_t i = 0;
	bool negative = false;
	if (l[0] == '-' || l[0] == '+') {
		negative = l[0] == '-';
		i = 1;
	}
	if (l.compare(i, 2, "0x") == 0 || l.compare(i, 2, "0o") == 0) {
		bool hex = l[i + 1] == 'x';
		if (!allOf(l, i + 2, hex ? isHex : isOctal))
			return std::nullopt;
		double v = 0;
		for (size_t j = i + 2; j < l.size(); j++) {
			int d = isDigit(l[j]) ? l[j] - '0' : l[j] - 'a' + 10;
			v = v * (hex ? 16 : 8) + d;
		}
		if (std::isinf(v)) {
			if (range)
				*range = true;
			return std::nullopt;
		}
		return negative ? -v : v;
	}

	// Check the decimal grammar first: from_chars alone would take
	// "inf", "nan" and hex floats.
	size_t j = i, digits = 0;
	while (j < l.size() && isDigit(l[j]))
		j++, digits++;
	if (j < l.size() && l[j] == '.') {
		j++;
		while (j < l.size() && isDigit(l[j]))
			j++, digits++;
	}
	if (digits == 0)
		return std::nullopt;
	if (j < l.size() && l[j] == 'e') {
		j++;
		if (j < l.size() && (l[j] == '-' || l[j] == '+'))
			j++;
		if (!allOf(l, j, isDigit))
			return std::nullopt;
		j = l.size();
	}
	if (j != l.size())
		return std::nullopt;
	double v = 0;
	auto [end, ec] = std::from_chars(l.data() + i, l.data() + l.size(), v);
	if (ec == std::errc::result_out_of_range) {
		if (range)
			*range = true;
		return std::nullopt;
	}
	if (ec != std::errc() || end != l.data() + l.size())
		return std::nullopt;
	return negative ? -v : v;
}

std::vector<std::string> splitWords(const std::string &s)
{
	std::vector<std::string> words;
	std::string cur;
	for (char c : s) {
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
			if (!cur.empty())
				words.push_back(std::move(cur));
			cur.clear();
		} else {
			cur += c;
		}
	}
	if (!cur.empty())
		words.push_back(std::move(cur));
	return words;
}

std::string join(const std::vector<std::string> &words)
{
	std::string out;
	for (const auto &w : words) {
		if (!out.empty())
			out += ' ';
		out += w;
	}
	return out;
}

bool validMetricName(const std::string &s)
{
	return pme_proto_valid_metric_name(s.data(), s.size()) != 0;
}

bool validLabelName(const std::string &s)
{
	return pme_proto_valid_label_name(s.data(), s.size()) != 0;
}

// "host:port", "[v6]:port" or ":port"; empty when fine, else why not.
std::string checkListen(const std::string &addr)
{
	std::string host, port;
	if (!addr.empty() && addr[0] == '[') {
		size_t close = addr.find(']');
		if (close == std::string::npos)
			return "missing ']' after the IPv6 address";
		host = addr.substr(1, close - 1);
		if (host.empty())
			return "empty IPv6 address between '[' and ']'";
		if (close + 1 >= addr.size() || addr[close + 1] != ':')
			return "expected ':port' after ']'";
		port = addr.substr(close + 2);
	} else {
		size_t colon = addr.rfind(':');
		if (colon == std::string::npos)
			return "expected host:port, [IPv6]:port or :port";
		host = addr.substr(0, colon);
		if (host.find(':') != std::string::npos)
			return "write an IPv6 address in brackets, as in [::1]:10064";
		port = addr.substr(colon + 1);
	}
	if (!allOf(port, 0, isDigit) || port.size() > 5 || std::stoul(port) < 1 ||
	    std::stoul(port) > 65535)
		return "the port must be a number from 1 to 65535";
	return "";
}

const std::vector<std::string> topKeys = {"exporter", "services", "templates", "include"};
const std::vector<std::string> exporterKeys = {"listen", "health_listen", "interval", "user",
    "include"};
const std::vector<std::string> serviceKeys = {"name", "metric_prefix", "labels", "run_as",
    "allow_root", "interval", "env", "sandbox", "metric_groups", "standalone_metrics",
    "description"};
const std::vector<std::string> runAsKeys = {"user", "group"};
const std::vector<std::string> sandboxKeys = {"seccomp", "landlock"};
const std::vector<std::string> groupKeys = {"source_type", "source", "command", "shell",
    "content_type", "interval", "collection_frequency", "timeout", "cache_ttl", "stale_after",
    "max_output", "multiline", "env", "metrics", "description", "labels", "namespaces",
    "prefix", "include", "exclude", "honor_timestamps"};
const std::vector<std::string> metricKeys = {"name", "type", "description", "filter", "value",
    "value_on_error", "scale", "labels", "values", "multiline", "value_regex"};

std::vector<std::string> standaloneKeys()
{
	std::vector<std::string> keys;
	for (const auto &k : groupKeys)
		if (k != "metrics" && k != "labels")
			keys.push_back(k);
	for (const auto &k : metricKeys)
		if (std::find(keys.begin(), keys.end(), k) == keys.end())
			keys.push_back(k);
	return keys;
}

std::string listKeys(const std::vector<std::string> &keys)
{
	std::string out;
	for (const auto &k : keys)
		out += (out.empty() ? "" : ", ") + k;
	return out;
}

// The captures of a compiled filter.  A null pointer stands for "no
// captures at all" (static sources, which have no match).
struct Captures {
	uint32_t count = 0;
	std::set<std::string> names;
};

// ---- drafts: the model plus the nodes that messages point at ----

using Node = const yaml_node_t *;

struct MetricDraft {
	MetricConfig m;
	Node keyNode = nullptr;
	Node nameNode = nullptr;
	Node filterNode = nullptr;
	Node valueNode = nullptr;
	Node multilineNode = nullptr;
	Node valueRegexNode = nullptr;
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

private:
	std::string file_;
	yaml_document_t *doc_ = nullptr;
	Errors errors_;
	Config config_;
	std::map<std::string, NameUse> names_; // full metric name -> first use
	std::vector<ServiceDraft> drafts_;

	// ---- nodes and errors ----
	Node node(int index) const { return yaml_document_get_node(doc_, index); }

	Location at(Node n) const
	{
		return Location{file_, static_cast<int>(n->start_mark.line) + 1,
		    static_cast<int>(n->start_mark.column) + 1};
	}

	void error(Node n, std::string msg) { errors_.emplace_back(at(n), std::move(msg)); }

	static std::string text(Node n)
	{
		return std::string(reinterpret_cast<const char *>(n->data.scalar.value),
		    n->data.scalar.length);
	}

	static bool plain(Node n)
	{
		return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	}

	static bool isNull(Node n) { return plain(n) && isNullText(text(n)); }

	static std::string describe(Node n)
	{
		if (n->type == YAML_MAPPING_NODE)
			return "a mapping";
		if (n->type == YAML_SEQUENCE_NODE)
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
		if (n->type == YAML_MAPPING_NODE)
			return true;
		error(n, "expected a mapping for '" + what + "', got " + describe(n));
		return false;
	}

	template <typename Fn>
	void eachPair(Node map, Fn fn)
	{
		std::map<std::string, Node> seen;
		for (auto *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
			Node k = node(p->key), v = node(p->value);
			if (!k || !v)
				continue;
			if (k->type != YAML_SCALAR_NODE) {
				error(k, "expected a name as key, got " + describe(k));
				continue;
			}
			std::string key = text(k);
			auto [it, fresh] = seen.emplace(key, k);
			if (!fresh) {
				error(k, "duplicate key '" + key + "' (first given at " +
				    position(at(it->second)) + ")");
				continue;
			}
			fn(key, k, v);
		}
	}

	std::optional<std::string> getString(Node n, const std::string &what)
	{
		if (n->type != YAML_SCALAR_NODE || isNull(n)) {
			std::string msg = "expected a string for '" + what + "', got " + describe(n);
			if (n->type == YAML_SCALAR_NODE)
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
		if (n->type == YAML_SCALAR_NODE) {
			if (auto b = boolFromText(text(n)))
				return b;
		}
		error(n, "expected true or false for '" + what + "', got " + describe(n));
		return std::nullopt;
	}

	std::optional<double> getNumber(Node n, const std::string &what)
	{
		if (n->type == YAML_SCALAR_NODE) {
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
		if (n->type != YAML_SCALAR_NODE || isNull(n)) {
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
	    std::vector<Node> *valueNodes)
	{
		if (!expectMapping(n, what))
			return;
		eachPair(n, [&](const std::string &key, Node k, Node v) {
			auto value = getString(v, what + "." + key);
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
	    std::vector<Node> *valueNodes)
	{
		size_t first = out.size();
		std::vector<Node> keys, values;
		getPairs(n, what, out, &keys, &values);
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
	void validateMetric(ServiceDraft &sd, GroupDraft &gd, MetricDraft &md,
	    std::map<std::string, Location> &seen);
	std::optional<Captures> compileFilter(const GroupDraft &gd, const MetricDraft &md);
	void checkTemplate(Node n, const std::string &what, const std::string &tmpl,
	    const Captures *caps);

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

std::optional<uint64_t> Loader::getSize(Node n, const std::string &what)
{
	if (n->type != YAML_SCALAR_NODE || isNull(n)) {
		error(n, "expected a size for '" + what + "' (as in 65536, 64KiB or 1MiB), got " +
		    describe(n));
		return std::nullopt;
	}
	std::string t = text(n);
	size_t i = 0;
	while (i < t.size() && isDigit(t[i]))
		i++;
	std::string digits = t.substr(0, i), suffix = t.substr(i);
	uint64_t mult = 0;
	if (suffix.empty() || suffix == "B")
		mult = 1;
	else if (suffix == "k" || suffix == "K" || suffix == "KiB")
		mult = 1024;
	else if (suffix == "M" || suffix == "MiB")
		mult = 1024 * 1024;
	else if (suffix == "G" || suffix == "GiB")
		mult = 1024 * 1024 * 1024;
	if (digits.empty() || mult == 0) {
		error(n, "invalid size '" + t + "' for '" + what +
		    "': write a number of bytes, optionally followed by KiB, MiB or GiB");
		return std::nullopt;
	}
	// Ten digits times 2^30 still fits in 64 bits.
	if (digits.size() > 10 || std::stoull(digits) * mult > maxOutputLimit) {
		error(n, "'" + what + "' " + describe(n) + " is too large (at most 1GiB)");
		return std::nullopt;
	}
	uint64_t v = std::stoull(digits) * mult;
	if (v == 0) {
		error(n, "'" + what + "' must be at least 1 byte");
		return std::nullopt;
	}
	return v;
}

// ---- exporter ----

void Loader::loadExporter(Node n)
{
	if (isNull(n))
		return;
	if (!expectMapping(n, "exporter"))
		return;
	auto &e = config_.exporter;
	eachPair(n, [&](const std::string &key, Node k, Node v) {
		if (key == "listen") {
			std::vector<std::pair<std::string, Node>> addrs;
			if (v->type == YAML_SEQUENCE_NODE) {
				for (auto *it = v->data.sequence.items.start;
				    it < v->data.sequence.items.top; it++) {
					Node item = node(*it);
					if (auto s = getString(item, "listen"))
						addrs.emplace_back(*s, item);
				}
				if (addrs.empty() && v->data.sequence.items.start ==
				    v->data.sequence.items.top)
					error(v, "'listen' needs at least one address");
			} else if (v->type == YAML_SCALAR_NODE && !isNull(v)) {
				addrs.emplace_back(text(v), v);
			} else {
				error(v, "expected an address or a list of addresses for 'listen', "
				    "got " + describe(v));
				return;
			}
			e.listen.clear();
			for (auto &[addr, where] : addrs) {
				std::string why = checkListen(addr);
				if (!why.empty())
					error(where, "invalid listen address '" + addr + "': " + why);
				e.listen.push_back(addr);
			}
		} else if (key == "health_listen") {
			if (auto s = getString(v, key)) {
				std::string why = checkListen(*s);
				if (!why.empty())
					error(v, "invalid health_listen address '" + *s + "': " + why);
				e.healthListen = *s;
			}
		} else if (key == "interval") {
			if (auto d = getDuration(v, key))
				e.interval = *d;
		} else if (key == "user") {
			if (auto s = getNonEmpty(v, "user"))
				e.user = *s;
		} else if (key == "include") {
			error(k, "'include' " + notSupported);
		} else {
			unknownKey(k, key, "exporter", exporterKeys);
		}
	});
}

// ---- services ----

void Loader::loadServices(Node n)
{
	if (isNull(n))
		return;
	if (!expectMapping(n, "services"))
		return;
	eachPair(n, [&](const std::string &key, Node k, Node v) { loadService(key, k, v); });
}

// A metric named by its key, as written at keyNode.
MetricDraft Loader::newMetric(const std::string &key, Node keyNode)
{
	MetricDraft md;
	md.m.key = key;
	md.m.baseName = key;
	md.keyNode = keyNode;
	md.m.where = at(keyNode);
	return md;
}

MetricDraft Loader::loadMetric(const std::string &key, Node keyNode, Node n,
    const std::string &context)
{
	MetricDraft md = newMetric(key, keyNode);
	if (!expectMapping(n, key)) {
		md.broken = true;
		return md;
	}
	eachPair(n, [&](const std::string &k, Node kn, Node v) {
		if (!metricKey(md, k, kn, v))
			md.misspelt.insert(unknownKey(kn, k, context, metricKeys));
	});
	return md;
}

bool Loader::metricKey(MetricDraft &md, const std::string &key, Node, Node v)
{
	auto &m = md.m;
	if (key == "name") {
		md.nameNode = v;
		if (auto s = getString(v, key))
			m.baseName = *s;
	} else if (key == "type") {
		static const std::vector<std::pair<std::string, MetricType>> types = {
			{"counter", MetricType::Counter}, {"gauge", MetricType::Gauge},
			{"histogram", MetricType::Histogram}, {"summary", MetricType::Summary},
			{"info", MetricType::Info}, {"stateset", MetricType::StateSet},
			{"untyped", MetricType::Untyped},
		};
		if (auto t = keyword(v, key, "metric type", types, {MetricType::Counter,
		    MetricType::Gauge, MetricType::Info, MetricType::Untyped},
		    "counter, gauge, info or untyped", &md.typeBad))
			m.type = *t;
	} else if (key == "description") {
		if (auto s = getString(v, key)) {
			m.description = *s;
			md.descriptionGiven = true;
		}
	} else if (key == "filter") {
		md.filterNode = v;
		if (auto s = getNonEmpty(v, key))
			m.filter = *s;
	} else if (key == "value") {
		md.valueNode = v;
		if (v->type == YAML_SCALAR_NODE && !isNull(v)) {
			bool range = false;
			auto num = plain(v) ? numberFromText(text(v), &range) : std::nullopt;
			if (num)
				m.staticValue = num;
			else if (range)
				error(v, "the number " + describe(v) + " for 'value' is out of range");
			else if (auto s = getString(v, key))
				m.valueTemplate = *s;
		} else {
			error(v, "expected a number or a template such as \"$1\" for 'value', "
			    "got " + describe(v));
		}
	} else if (key == "value_on_error") {
		if (auto d = getNumber(v, key))
			m.valueOnError = *d;
	} else if (key == "scale") {
		if (auto d = getNumber(v, key)) {
			if (!std::isfinite(*d) || *d == 0)
				error(v, "'scale' must be a finite number other than 0, got " +
				    describe(v));
			else
				m.scale = *d;
		}
	} else if (key == "labels") {
		getLabels(v, key, m.labels, &md.labelKeyNodes, &md.labelValueNodes);
	} else if (key == "values") {
		if (!expectMapping(v, key))
			return true;
		eachPair(v, [&](const std::string &name, Node, Node num) {
			if (auto d = getNumber(num, "values." + name))
				m.values.emplace_back(name, *d);
		});
	} else if (key == "multiline") {
		md.multilineNode = v;
	} else if (key == "value_regex") {
		md.valueRegexNode = v;
		if (auto s = getNonEmpty(v, key))
			m.valueRegex = *s;
	} else {
		return false;
	}
	return true;
}

bool Loader::groupKey(GroupDraft &gd, const std::string &key, Node k, Node v)
{
	auto &g = gd.g;
	if (key == "source_type") {
		gd.sourceTypeNode = v;
		static const std::vector<std::pair<std::string, SourceType>> types = {
			{"command", SourceType::Command}, {"http", SourceType::Http},
			{"file", SourceType::File}, {"static", SourceType::Static},
		};
		if (auto t = keyword(v, key, "source_type", types, {SourceType::Command,
		    SourceType::File, SourceType::Static}, "command, file or static",
		    &gd.sourceTypeBad)) {
			gd.sourceType = *t;
			g.sourceType = *t;
		}
	} else if (key == "source") {
		gd.sourceNode = v;
	} else if (key == "command") {
		gd.commandNode = v;
	} else if (key == "shell") {
		gd.shellNode = v;
		if (auto b = getBool(v, key))
			g.shell = *b;
	} else if (key == "content_type") {
		static const std::vector<std::pair<std::string, ContentType>> types = {
			{"text", ContentType::Text}, {"json", ContentType::Json},
			{"xml", ContentType::Xml}, {"prometheus", ContentType::Prometheus},
		};
		gd.contentNode = v;
		if (auto t = keyword(v, key, "content_type", types, {ContentType::Text,
		    ContentType::Json, ContentType::Xml, ContentType::Prometheus},
		    "text, json, xml or prometheus", &gd.contentBad))
			g.contentType = *t;
	} else if (key == "interval" || key == "collection_frequency") {
		if (gd.intervalNode) {
			error(k, "give either 'interval' or 'collection_frequency', not both");
			return true;
		}
		gd.intervalNode = v;
		gd.intervalKey = key == "interval" ? "interval" : "collection_frequency";
		if (auto d = getDuration(v, key))
			g.interval = *d;
	} else if (key == "timeout") {
		if (auto d = getDuration(v, key))
			g.timeout = *d;
	} else if (key == "cache_ttl") {
		if (auto d = getDuration(v, key, true))
			g.cacheTtl = *d;
	} else if (key == "stale_after") {
		if (auto d = getDuration(v, key))
			g.staleAfter = *d;
	} else if (key == "max_output") {
		if (auto sz = getSize(v, key))
			g.maxOutput = *sz;
	} else if (key == "multiline") {
		if (auto b = getBool(v, key))
			g.multiline = *b;
	} else if (key == "env") {
		getEnv(v, key, g.env);
	} else if (key == "description") {
		getString(v, key);
	} else if (key == "labels") {
		getLabels(v, key, g.labels, &gd.labelKeyNodes, nullptr);
	} else if (key == "namespaces") {
		gd.namespacesNode = v;
		getPairs(v, key, g.namespaces, &gd.namespaceKeyNodes, nullptr);
	} else if (key == "prefix") {
		gd.importNodes.emplace_back(key, v);
		if (auto s = getString(v, key))
			g.import.prefix = *s;
	} else if (key == "include" || key == "exclude") {
		gd.importNodes.emplace_back(key, v);
		getPatterns(v, key, key == "include" ? g.import.include : g.import.exclude,
		    key == "include" ? gd.includeNodes : gd.excludeNodes);
	} else if (key == "honor_timestamps") {
		gd.importNodes.emplace_back(key, v);
		if (auto b = getBool(v, key))
			g.import.honorTimestamps = *b;
	} else {
		return false;
	}
	return true;
}

// A regular expression or a list of them ('include', 'exclude'), each
// checked as the worker will compile it.
void Loader::getPatterns(Node v, const std::string &key, std::vector<std::string> &out,
    std::vector<Node> &nodes)
{
	auto one = [&](Node item) {
		auto re = getNonEmpty(item, key);
		if (!re)
			return;
		if (auto bad = regexError(*re, 0); !bad.empty())
			errorAt(item, bad, "invalid regular expression in '" + key + "': ");
		out.push_back(*re);
		nodes.push_back(item);
	};
	if (v->type == YAML_SEQUENCE_NODE) {
		for (auto *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++)
			one(node(*it));
	} else if (v->type == YAML_SCALAR_NODE && !isNull(v)) {
		one(v);
	} else {
		error(v, "expected a regular expression or a list of them for '" + key + "', got " +
		    describe(v));
	}
}

// "" when the pattern compiles (as the worker compiles it), else
// "at offset N: message".
std::string Loader::regexError(const std::string &re, uint32_t options)
{
	int code = 0;
	PCRE2_SIZE offset = 0;
	CPtr<pcre2_code> compiled(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re.data()), re.size(),
	    PCRE2_UTF | options, &code, &offset, nullptr));
	if (compiled)
		return "";
	PCRE2_UCHAR buf[256];
	if (pcre2_get_error_message(code, buf, sizeof(buf)) < 0)
		buf[0] = 0;
	return "at offset " + std::to_string(offset) + ": " +
	    std::string(reinterpret_cast<char *>(buf));
}

// An error inside a scalar: message is "at offset N: what" (N a byte offset
// into the scalar's value, as JsonPath, StructuredTemplate and checkXPath
// report).  Where the scalar is written on one line without escapes, the
// error points at the offending character itself; elsewhere at the scalar.
void Loader::errorAt(Node n, const std::string &message, const std::string &what)
{
	size_t offset = 0;
	std::string rest = message;
	const std::string mark = "at offset ";
	if (message.compare(0, mark.size(), mark) == 0) {
		size_t colon = message.find(": ", mark.size());
		auto [p, ec] = std::from_chars(message.data() + mark.size(),
		    message.data() + (colon == std::string::npos ? message.size() : colon), offset);
		if (ec == std::errc() && colon != std::string::npos)
			rest = message.substr(colon + 2) + " (at offset " + std::to_string(offset) + ")";
		else
			offset = 0;
		(void)p;
	}
	Location where = at(n);
	if (n->type == YAML_SCALAR_NODE && n->start_mark.line == n->end_mark.line) {
		size_t raw = n->end_mark.index - n->start_mark.index;
		size_t len = n->data.scalar.length;
		const auto *value = n->data.scalar.value;
		bool ascii = std::all_of(value, value + std::min(offset, len),
		    [](unsigned char c) { return c < 0x80; });
		int quote = -1;
		if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && raw == len)
			quote = 0;
		else if ((n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
		    n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE) && raw == len + 2)
			quote = 1;
		if (quote >= 0 && ascii && offset <= len)
			where.column += quote + static_cast<int>(offset);
	}
	errors_.emplace_back(where, what + rest);
}

GroupDraft Loader::loadGroup(const std::string &key, Node keyNode, Node n, const ServiceDraft &sd)
{
	GroupDraft gd;
	gd.g.key = key;
	gd.keyNode = keyNode;
	gd.g.where = at(keyNode);
	if (!expectMapping(n, key)) {
		gd.broken = true;
		return gd;
	}
	std::string ctx = groupContext(gd, sd);
	Node metricsNode = nullptr;
	eachPair(n, [&](const std::string &k, Node kn, Node v) {
		if (k == "metrics")
			metricsNode = v;
		else if (!groupKey(gd, k, kn, v))
			gd.misspelt.insert(unknownKey(kn, k, ctx, groupKeys));
	});
	gd.metricsNode = metricsNode;
	if (gd.g.contentType == ContentType::Prometheus) {
		if (metricsNode)
			error(metricsNode, ctx + " imports whole families (content_type prometheus): "
			    "remove 'metrics' and choose families with 'include' and 'exclude'");
		return gd;
	}
	if (!metricsNode) {
		if (!gd.misspelt.count("metrics"))
			error(keyNode, ctx + " has no 'metrics'; define at least one metric");
		return gd;
	}
	if (!expectMapping(metricsNode, "metrics"))
		return gd;
	eachPair(metricsNode, [&](const std::string &k, Node kn, Node v) {
		gd.metrics.push_back(loadMetric(k, kn, v, "metric '" + k + "' of group '" + key +
		    "' of service '" + sd.s.key + "'"));
	});
	if (gd.metrics.empty())
		error(metricsNode, ctx + " has no metrics; define at least one");
	return gd;
}

GroupDraft Loader::loadStandalone(const std::string &key, Node keyNode, Node n,
    const ServiceDraft &sd)
{
	GroupDraft gd;
	gd.g.key = key;
	gd.g.standalone = true;
	gd.keyNode = keyNode;
	gd.g.where = at(keyNode);
	MetricDraft md = newMetric(key, keyNode);
	if (!expectMapping(n, key)) {
		gd.broken = true;
		return gd;
	}
	std::string ctx = groupContext(gd, sd);
	static const std::vector<std::string> keys = standaloneKeys();
	eachPair(n, [&](const std::string &k, Node kn, Node v) {
		// description belongs to the metric; multiline is the group's
		// (set below from the metric's node).
		if (k == "metrics")
			error(kn, "a standalone metric is itself the metric: write its keys "
			    "(filter, type...) directly in '" + key + "', without 'metrics', or "
			    "make it a group under metric_groups");
		else if (k == "multiline" || k == "description" || k == "labels" ||
		    !groupKey(gd, k, kn, v))
			if (!metricKey(md, k, kn, v))
				gd.misspelt.insert(unknownKey(kn, k, ctx, keys));
	});
	if (md.multilineNode) {
		if (auto b = getBool(md.multilineNode, "multiline"))
			gd.g.multiline = *b;
		md.multilineNode = nullptr;
	}
	gd.metrics.push_back(std::move(md));
	return gd;
}

void Loader::loadService(const std::string &key, Node keyNode, Node n)
{
	ServiceDraft sd;
	sd.s.key = key;
	sd.s.name = key;
	sd.keyNode = keyNode;
	sd.s.where = at(keyNode);
	sd.s.runAsWhere = sd.s.where;
	if (key.empty())
		error(keyNode, "a service key must not be empty");
	if (!expectMapping(n, key))
		return;
	std::string ctx = "service '" + key + "'";
	eachPair(n, [&](const std::string &k, Node kn, Node v) {
		auto &s = sd.s;
		if (k == "name") {
			sd.nameNode = v;
			if (auto str = getString(v, k))
				s.name = *str;
		} else if (k == "metric_prefix") {
			sd.prefixNode = v;
			if (auto str = getString(v, k))
				s.metricPrefix = *str;
			else
				sd.prefixOk = false;
		} else if (k == "labels") {
			getLabels(v, k, s.labels, nullptr, nullptr);
		} else if (k == "run_as") {
			s.runAsWhere = at(v);
			if (v->type == YAML_SCALAR_NODE) {
				if (auto str = getNonEmpty(v, "run_as"))
					s.runAs.user = *str;
			} else if (v->type == YAML_MAPPING_NODE) {
				eachPair(v, [&](const std::string &rk, Node rkn, Node rv) {
					if (rk == "user") {
						if (auto str = getNonEmpty(rv, "run_as.user"))
							s.runAs.user = *str;
					} else if (rk == "group") {
						if (auto str = getNonEmpty(rv, "run_as.group"))
							s.runAs.group = *str;
					} else {
						unknownKey(rkn, rk, "run_as of " + ctx, runAsKeys);
					}
				});
			} else {
				error(v, "expected a user name or a mapping with 'user' and 'group' "
				    "for 'run_as', got " + describe(v));
			}
		} else if (k == "allow_root") {
			if (auto b = getBool(v, k))
				s.allowRoot = *b;
		} else if (k == "interval") {
			sd.intervalNode = v;
			if (auto d = getDuration(v, k))
				s.interval = *d;
		} else if (k == "env") {
			getEnv(v, k, s.env);
		} else if (k == "sandbox") {
			loadSandbox(v, ctx, s.sandbox);
		} else if (k == "description") {
			getString(v, k);
		} else if (k == "metric_groups" || k == "standalone_metrics") {
			sd.sawGroups = true;
			if (!expectMapping(v, k))
				return;
			eachPair(v, [&](const std::string &gk, Node gkn, Node gv) {
				if (gk.empty()) {
					error(gkn, "a group or metric key must not be empty");
					return;
				}
				if (k == "metric_groups")
					sd.groups.push_back(loadGroup(gk, gkn, gv, sd));
				else
					sd.groups.push_back(loadStandalone(gk, gkn, gv, sd));
			});
		} else {
			std::string close = unknownKey(kn, k, ctx, serviceKeys);
			if (close == "metric_groups" || close == "standalone_metrics")
				sd.sawGroups = true; // do not also say that there are none
		}
	});
	// metric_groups first, then standalone_metrics, whatever the file's order.
	std::stable_partition(sd.groups.begin(), sd.groups.end(),
	    [](const GroupDraft &g) { return !g.g.standalone; });
	if (!sd.sawGroups)
		error(keyNode, ctx + " has neither metric_groups nor standalone_metrics");
	drafts_.push_back(std::move(sd));
}

void Loader::loadSandbox(Node n, const std::string &context, SandboxConfig &out)
{
	if (isNull(n))
		return;
	if (!expectMapping(n, "sandbox"))
		return;
	eachPair(n, [&](const std::string &key, Node k, Node v) {
		if (key == "seccomp") {
			if (auto b = getBool(v, "sandbox.seccomp"))
				out.seccomp = *b;
		} else if (key == "landlock") {
			if (isNull(v))
				return;
			if (v->type != YAML_SEQUENCE_NODE) {
				error(v, "expected a list of absolute paths for 'sandbox.landlock' "
				    "(as in [/usr, /etc/nginx]), got " + describe(v));
				return;
			}
			for (auto *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
			    it++) {
				Node item = node(*it);
				auto path = getNonEmpty(item, "sandbox.landlock");
				if (!path)
					continue;
				if ((*path)[0] != '/')
					error(item, "the Landlock path '" + *path + "' must be absolute "
					    "(start with '/')");
				else
					out.landlock.push_back(*path);
			}
		} else {
			unknownKey(k, key, "sandbox of " + context, sandboxKeys);
		}
	});
}

// ---- validation ----

std::optional<Captures> Loader::compileFilter(const GroupDraft &gd, const MetricDraft &md)
{
	// The worker compiles the same pattern with the same options.
	uint32_t options = PCRE2_UTF | (gd.g.multiline ? PCRE2_MULTILINE : 0);
	int code = 0;
	PCRE2_SIZE offset = 0;
	const auto &f = md.m.filter;
	CPtr<pcre2_code> re(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(f.data()), f.size(),
	    options, &code, &offset, nullptr));
	if (!re) {
		PCRE2_UCHAR buf[256];
		if (pcre2_get_error_message(code, buf, sizeof(buf)) < 0)
			buf[0] = 0;
		error(md.filterNode, "invalid filter: " + std::string(reinterpret_cast<char *>(buf)) +
		    " at offset " + std::to_string(offset) + " of the pattern");
		return std::nullopt;
	}
	Captures caps;
	uint32_t names = 0, entrySize = 0;
	PCRE2_SPTR table = nullptr;
	pcre2_pattern_info(re.get(), PCRE2_INFO_CAPTURECOUNT, &caps.count);
	pcre2_pattern_info(re.get(), PCRE2_INFO_NAMECOUNT, &names);
	pcre2_pattern_info(re.get(), PCRE2_INFO_NAMEENTRYSIZE, &entrySize);
	pcre2_pattern_info(re.get(), PCRE2_INFO_NAMETABLE, &table);
	for (uint32_t i = 0; i < names; i++) {
		// Each entry: the group number in two bytes, then the name.
		caps.names.insert(reinterpret_cast<const char *>(table + i * entrySize + 2));
	}
	return caps;
}

void Loader::checkTemplate(Node n, const std::string &what, const std::string &t,
    const Captures *caps)
{
	const std::string literal = " (write $$ for a literal $)";
	for (size_t i = 0; i < t.size(); i++) {
		if (t[i] != '$')
			continue;
		if (i + 1 == t.size()) {
			error(n, what + " ends with a lone '$'" + literal);
			return;
		}
		char c = t[i + 1];
		if (c == '$') {
			i++;
			continue;
		}
		std::string ref, name;
		if (isDigit(c)) {
			size_t j = i + 1;
			while (j < t.size() && isDigit(t[j]))
				j++;
			name = t.substr(i + 1, j - i - 1);
			ref = "$" + name;
			i = j - 1;
		} else if (c == '{') {
			size_t close = t.find('}', i + 2);
			if (close == std::string::npos) {
				error(n, what + " has a '${' without its '}'" + literal);
				return;
			}
			name = t.substr(i + 2, close - i - 2);
			ref = "${" + name + "}";
			i = close;
			if (name.empty()) {
				error(n, what + " has an empty '${}'" + literal);
				return;
			}
			if (name.find(':') != std::string::npos) {
				error(n, what + " uses " + ref + ": variables in strings are not "
				    "supported by this version of pme" + literal);
				return;
			}
		} else {
			error(n, what + " has a '$' that is not followed by a capture number, "
			    "{name} or '$'" + literal);
			return;
		}
		if (!caps) {
			error(n, what + " refers to capture " + ref +
			    ", but a static source has no captures" + literal);
			return;
		}
		bool found;
		if (allOf(name, 0, isDigit))
			found = name.size() <= 5 && std::stoul(name) <= caps->count;
		else
			found = caps->names.count(name) > 0;
		if (!found) {
			error(n, what + " refers to capture " + ref +
			    ", which the filter does not define");
			return;
		}
	}
}

void Loader::validateSource(GroupDraft &gd, const std::string &ctx)
{
	auto &g = gd.g;
	if (g.sourceType != SourceType::Command) {
		if (gd.commandNode)
			error(gd.commandNode, "'command' is only for source_type command");
		if (gd.shellNode)
			error(gd.shellNode, "'shell' is only for source_type command");
	}
	switch (g.sourceType) {
	case SourceType::Command: {
		Node src = gd.commandNode ? gd.commandNode : gd.sourceNode;
		const std::string key = gd.commandNode ? "command" : "source";
		if (gd.commandNode && gd.sourceNode)
			error(gd.commandNode, "give the command either as 'source' or as 'command', "
			    "not both");
		if (!src) {
			if (!gd.misspelt.count("source") && !gd.misspelt.count("command"))
				error(gd.keyNode, ctx + " needs a 'source': the command to run");
			return;
		}
		if (src->type == YAML_SEQUENCE_NODE) {
			if (g.shell) {
				error(src, "'shell: true' runs one string with /bin/sh -c: write '" +
				    key + "' as a string, not a list");
				return;
			}
			for (auto *it = src->data.sequence.items.start;
			    it < src->data.sequence.items.top; it++) {
				if (auto s = getString(node(*it), key))
					g.argv.push_back(*s);
			}
			g.source = join(g.argv);
		} else if (src->type == YAML_SCALAR_NODE && !isNull(src)) {
			std::string s = text(src);
			if (s.find('\0') != std::string::npos) {
				error(src, "'" + key + "' contains a NUL character");
				return;
			}
			if (g.shell) {
				g.source = s;
				if (splitWords(s).empty())
					error(src, "the shell command is empty");
				return;
			}
			g.argv = splitWords(s);
			g.source = join(g.argv);
		} else {
			error(src, "expected a command (a string or a list of arguments) for '" + key +
			    "', got " + describe(src));
			return;
		}
		if (g.argv.empty())
			error(src, "the command is empty: give at least the program to run");
		else if (g.argv[0].empty())
			error(src, "the program to run (the command's first word) is empty");
		break;
	}
	case SourceType::File:
		if (!gd.sourceNode) {
			if (!gd.misspelt.count("source"))
				error(gd.keyNode, ctx + " needs a 'source': the path of the file to "
				    "read");
		} else if (auto s = getNonEmpty(gd.sourceNode, "source")) {
			g.source = *s;
			if ((*s)[0] != '/')
				error(gd.sourceNode, "the file '" + *s + "' must be given as an "
				    "absolute path");
		}
		break;
	case SourceType::Static:
		if (gd.sourceNode)
			error(gd.sourceNode, "a static source reads nothing: remove 'source' and "
			    "give each metric a 'value'");
		break;
	case SourceType::Http:
		break; // reported where source_type was read
	}
}

void Loader::validateMetric(ServiceDraft &sd, GroupDraft &gd, MetricDraft &md,
    std::map<std::string, Location> &seen)
{
	auto &m = md.m;
	auto &s = sd.s;
	Node nameAt = md.nameNode ? md.nameNode : md.keyNode;
	std::string what = (gd.g.standalone ? "standalone metric '" : "metric '") + m.key + "'";
	if (md.broken)
		return;

	m.name = s.metricPrefix + m.baseName;
	if (m.baseName.empty()) {
		error(nameAt, "the name of " + what + " must not be empty");
	} else if (!validMetricName(m.name)) {
		if (sd.prefixOk)
			error(nameAt, "invalid metric name '" + m.name + "': use letters, digits, "
			    "'_' and ':', not starting with a digit");
	} else if (m.name.compare(0, 4, "pme_") == 0) {
		error(nameAt, "metric name '" + m.name + "': names starting with 'pme_' are "
		    "reserved for pme's own metrics");
	} else {
		auto [it, fresh] = seen.emplace(m.name, at(nameAt));
		if (!fresh) {
			error(nameAt, "metric '" + m.name + "' is already defined in service '" +
			    s.key + "' at " + position(it->second) + "; a name may be used once "
			    "per service");
		} else if (!md.typeBad) {
			auto [use, first] = names_.emplace(m.name,
			    NameUse{m.type, s.key, at(nameAt)});
			if (!first && use->second.type != m.type)
				error(nameAt, "metric '" + m.name + "' is a " + toString(m.type) +
				    " here but a " + toString(use->second.type) + " in service '" +
				    use->second.service + "' at " + use->second.where.str() +
				    "; a metric name has one type across all services");
		}
	}
	if (!md.descriptionGiven)
		m.description = m.name;
	if (md.multilineNode)
		error(md.multilineNode, "'multiline' is a setting of the whole group: set it on "
		    "group '" + gd.g.key + "' instead of on " + what);
	for (size_t i = 0; i < m.labels.size(); i++) {
		for (const auto &[name, value] : s.labels) {
			if (name == m.labels[i].first)
				error(md.labelKeyNodes[i], "label '" + name + "' of " + what +
				    " is already a constant label of service '" + s.key +
				    "'; rename one of them");
		}
	}
	for (const auto &[name, value] : gd.g.labels)
		for (size_t i = 0; i < m.labels.size(); i++)
			if (m.labels[i].first == name)
				error(md.labelKeyNodes[i], "label '" + name + "' of " + what + " is "
				    "already a label of its group '" + gd.g.key + "'; rename one of them");
	if (m.type == MetricType::Info && !m.staticValue && !m.valueTemplate)
		m.staticValue = 1;

	std::optional<Captures> caps; // none for a static source
	if (gd.sourceTypeBad) {
		// Whatever the source was meant to be, a filter given is checked.
		if (m.filter.empty() || gd.contentBad)
			return;
		caps = compileFilter(gd, md);
		if (!caps)
			return;
	} else if (gd.g.sourceType == SourceType::Static) {
		if (!m.staticValue) {
			if (md.valueNode && m.valueTemplate)
				error(md.valueNode, "a static source needs a number as 'value', not "
				    "a string (write it without quotes)");
			else if (!md.valueNode && !misspelt(gd, md, "value"))
				error(md.keyNode, what + " of a static source needs a numeric 'value'");
		}
		if (md.filterNode)
			error(md.filterNode, "a static source has no data to filter: remove "
			    "'filter'");
	} else {
		if (gd.contentBad)
			return;
		ContentType ct = gd.g.contentType;
		if (m.filter.empty()) {
			if (!md.filterNode && !misspelt(gd, md, "filter"))
				error(md.keyNode, what + " needs a 'filter': " + (ct == ContentType::Json ?
				    "the JSONPath query that selects its value" : ct == ContentType::Xml ?
				    "the XPath expression that selects its value" :
				    "the regular expression that finds its value"));
			return;
		}
		if (ct != ContentType::Text) {
			checkStructured(gd, md, what);
			return;
		}
		if (md.valueRegexNode)
			error(md.valueRegexNode, "'value_regex' is for json and xml content; with "
			    "text content the filter's capture is the value");
		caps = compileFilter(gd, md);
		if (!caps)
			return; // its templates cannot be checked
	}
	const Captures *c = caps ? &*caps : nullptr;
	for (size_t i = 0; i < m.labels.size(); i++)
		checkTemplate(md.labelValueNodes[i], "label '" + m.labels[i].first + "'",
		    m.labels[i].second, c);
	if (m.valueTemplate)
		checkTemplate(md.valueNode, "value", *m.valueTemplate, c);
}

// A metric of a json or xml group: its filter, templates and value_regex,
// each error pointing into the string at fault.
void Loader::checkStructured(const GroupDraft &gd, MetricDraft &md, const std::string &what)
{
	auto &m = md.m;
	bool xml = gd.g.contentType == ContentType::Xml;
	bool nodes = true; // the filter selects nodes that templates can refer to
	if (xml) {
		if (auto ok = checkXPath(m.filter, gd.g.namespaces); !ok)
			errorAt(md.filterNode, ok.error().message, "invalid XPath filter: ");
		else if (auto c = compileXPath(m.filter, gd.g.namespaces))
			nodes = c->resultType == XPATH_NODESET;
	} else if (auto q = JsonPath::compile(m.filter); !q) {
		errorAt(md.filterNode, q.error().message, "invalid JSONPath filter: ");
	}
	// In xml, a reference names its namespace prefixes, and refers to a
	// selected node only when the filter selects nodes.
	auto checkRefs = [&](const StructuredTemplate &t, Node n, const std::string &which) {
		if (!xml)
			return;
		for (const auto &part : t.parts()) {
			if (!part.ref)
				continue;
			if (!nodes && !part.ref->fromRoot) {
				error(n, which + " of " + what + " refers to " + part.ref->text +
				    ", but the filter computes a value rather than selecting nodes; "
				    "only ${$...} references are possible");
				return;
			}
			for (const auto &step : part.ref->path) {
				const auto *name = std::get_if<std::string>(&step);
				size_t colon = name ? name->find(':') : std::string::npos;
				if (colon == std::string::npos)
					continue;
				std::string prefix = name->substr(0, colon);
				bool declared = prefix == "xml";
				for (const auto &[p, uri] : gd.g.namespaces)
					declared = declared || p == prefix;
				if (!declared) {
					error(n, which + " of " + what + ": namespace prefix '" + prefix +
					    "' in " + part.ref->text + " is not declared under 'namespaces'");
					return;
				}
			}
		}
	};
	for (size_t i = 0; i < m.labels.size(); i++) {
		auto t = StructuredTemplate::parse(m.labels[i].second, xml);
		if (!t)
			errorAt(md.labelValueNodes[i], t.error().message, "label '" +
			    m.labels[i].first + "' of " + what + ": ");
		else
			checkRefs(*t, md.labelValueNodes[i], "label '" + m.labels[i].first + "'");
	}
	if (m.valueTemplate && m.type == MetricType::Info) {
		error(md.valueNode, "an info metric is always 1: remove 'value' from " + what);
	} else if (m.valueTemplate) {
		auto t = StructuredTemplate::parse(*m.valueTemplate, xml);
		if (t)
			checkRefs(*t, md.valueNode, "'value'");
		if (!t)
			errorAt(md.valueNode, t.error().message, "'value' of " + what + ": ");
		else if (!t->single())
			error(md.valueNode, "'value' of " + what + " must be one reference to a node, "
			    "such as \"${.count}\" or \"${^.total}\", without other text");
	} else if (m.staticValue && md.valueNode && m.type != MetricType::Info) {
		error(md.valueNode, "'value' of " + what + " is read from the " +
		    (xml ? "XML" : "JSON") + ": give a reference such as \"${.count}\", "
		    "not a number");
	}
	if (!m.valueRegex.empty()) {
		if (auto bad = regexError(m.valueRegex, 0); !bad.empty())
			errorAt(md.valueRegexNode, bad, "invalid value_regex: ");
	}
}

void Loader::validateGroup(ServiceDraft &sd, GroupDraft &gd)
{
	auto &g = gd.g;
	const auto &s = sd.s;
	Millis global = config_.exporter.interval;
	std::string ctx = groupContext(gd, sd);
	if (gd.broken) {
		gd.sourceTypeBad = true;
		return;
	}

	if (g.interval && *g.interval < s.effectiveInterval) {
		std::string why = std::string(gd.intervalKey) + " " + formatDuration(*g.interval) +
		    " of " + (g.standalone ? "standalone metric '" : "group '") + g.key +
		    "' is shorter than its service's interval " +
		    formatDuration(s.effectiveInterval);
		if (s.interval && *s.interval != s.effectiveInterval)
			why += " (" + formatDuration(*s.interval) + " rounded up to a multiple of " +
			    "the global interval " + formatDuration(global) + ")";
		error(gd.intervalNode, why + "; use at least " + formatDuration(s.effectiveInterval));
	}
	g.effectiveInterval = roundInterval(g.interval.value_or(s.effectiveInterval), global);

	if (!gd.sourceType && !gd.sourceTypeBad) {
		bool filters = false;
		for (const auto &md : gd.metrics)
			filters = filters || md.filterNode;
		if (gd.commandNode) {
			g.sourceType = SourceType::Command;
		} else if (!gd.sourceNode && !filters) {
			g.sourceType = SourceType::Static;
		} else {
			if (!gd.misspelt.count("source_type"))
				error(gd.keyNode, ctx + " needs a 'source_type': command, file, http "
				    "or static");
			gd.sourceTypeBad = true;
		}
	}
	if (!gd.sourceTypeBad)
		validateSource(gd, ctx);
	validateContent(sd, gd, ctx);
}

// What depends on content_type: group labels, xml namespaces, the import
// settings of a prometheus group.
void Loader::validateContent(ServiceDraft &sd, GroupDraft &gd, const std::string &ctx)
{
	auto &g = gd.g;
	const auto &s = sd.s;
	bool prometheus = g.contentType == ContentType::Prometheus && !gd.contentBad;
	for (size_t i = 0; i < g.labels.size(); i++)
		for (const auto &[name, value] : s.labels)
			if (name == g.labels[i].first)
				error(gd.labelKeyNodes[i], "label '" + name + "' of " + ctx +
				    " is already a constant label of service '" + s.key +
				    "'; rename one of them");
	if (!gd.sourceTypeBad && g.sourceType == SourceType::Static && gd.contentNode &&
	    g.contentType != ContentType::Text)
		error(gd.contentNode, "a static source has no content to parse: remove "
		    "'content_type'");
	if (gd.namespacesNode) {
		if (g.contentType != ContentType::Xml) {
			if (!gd.contentBad)
				error(gd.namespacesNode, "'namespaces' is only for content_type xml");
		} else if (auto ok = checkNamespaces(g.namespaces); !ok) {
			error(gd.namespacesNode, ok.error().message);
		}
	}
	for (const auto &[key, node] : gd.importNodes)
		if (!prometheus && !gd.contentBad)
			error(node, "'" + key + "' is only for content_type prometheus, where it "
			    "selects the imported families");
	if (!prometheus)
		return;
	if (g.standalone) {
		error(gd.contentNode, "content_type prometheus imports a whole exposition: make '" +
		    g.key + "' a group under metric_groups");
		gd.contentBad = true;
		return;
	}
	if (!gd.sourceTypeBad && g.sourceType == SourceType::Static)
		return;
	for (size_t i = 0; i < g.labels.size(); i++)
		if (g.labels[i].first == "le" || g.labels[i].first == "quantile")
			error(gd.labelKeyNodes[i], "label '" + g.labels[i].first + "' of " + ctx +
			    " would replace the buckets' or quantiles' own labels of imported "
			    "histograms and summaries; choose another name");
	Node prefixNode = gd.keyNode;
	for (const auto &[key, node] : gd.importNodes)
		if (key == "prefix")
			prefixNode = node;
	std::string full = s.metricPrefix + g.import.prefix;
	if (!g.import.prefix.empty() && !validMetricName(full)) {
		if (sd.prefixOk)
			error(prefixNode, "invalid prefix '" + g.import.prefix + "': imported names "
			    "would start with '" + full + "'; use letters, digits, '_' and ':', not "
			    "starting with a digit");
	} else if (full.compare(0, 4, "pme_") == 0) {
		error(prefixNode, "prefix '" + full + "': names starting with 'pme_' are reserved "
		    "for pme's own metrics");
	}
}

void Loader::validateService(ServiceDraft &sd, std::map<std::string, Location> &serviceNames)
{
	auto &s = sd.s;
	Node nameAt = sd.nameNode ? sd.nameNode : sd.keyNode;
	if (s.name.empty()) {
		if (sd.nameNode) // else the empty key was reported
			error(nameAt, "the name of service '" + s.key + "' must not be empty");
	} else if (!pme_proto_valid_utf8(s.name.data(), s.name.size())) {
		error(nameAt, "the name of service '" + s.key + "' is not valid UTF-8");
	} else {
		auto [it, fresh] = serviceNames.emplace(s.name, at(nameAt));
		if (!fresh)
			error(nameAt, "service name '" + s.name + "' is already used at " +
			    position(it->second) + "; service names must be unique");
	}
	if (!s.metricPrefix.empty() && !validMetricName(s.metricPrefix)) {
		error(sd.prefixNode, "invalid metric_prefix '" + s.metricPrefix + "': use letters, "
		    "digits, '_' and ':', not starting with a digit");
		sd.prefixOk = false;
	}

	Millis global = config_.exporter.interval;
	if (s.interval && *s.interval < global)
		error(sd.intervalNode, "interval " + formatDuration(*s.interval) + " of service '" +
		    s.key + "' is shorter than the global interval " + formatDuration(global) +
		    "; use at least " + formatDuration(global));
	s.effectiveInterval = roundInterval(s.interval.value_or(global), global);

	std::map<std::string, Location> seen;
	for (auto &gd : sd.groups) {
		validateGroup(sd, gd);
		for (auto &md : gd.metrics)
			validateMetric(sd, gd, md, seen);
		gd.g.metrics.clear();
		for (auto &md : gd.metrics)
			gd.g.metrics.push_back(std::move(md.m));
		s.groups.push_back(std::move(gd.g));
	}
}

ConfigResult Loader::load(const std::string &text)
{
	config_.path = file_;
	CPtr<yaml_parser_t> parser(new yaml_parser_t{});
	if (!yaml_parser_initialize(parser.get()))
		throw std::bad_alloc();
	yaml_parser_set_input_string(parser.get(), reinterpret_cast<const unsigned char *>(
	    text.data()), text.size());

	auto syntaxError = [&]() {
		const yaml_parser_t &p = *parser;
		Location where{file_, static_cast<int>(p.problem_mark.line) + 1,
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
			msg += " (" + std::string(p.context) + " at " + position(Location{file_,
			    static_cast<int>(p.context_mark.line) + 1,
			    static_cast<int>(p.context_mark.column) + 1}) + ")";
		errors_.emplace_back(where, "YAML syntax error: " + msg);
		return tl::unexpected(errors_);
	};

	CPtr<yaml_document_t> doc(new yaml_document_t{});
	if (!yaml_parser_load(parser.get(), doc.get()))
		return syntaxError();
	doc_ = doc.get();
	Node root = yaml_document_get_root_node(doc.get());
	if (!root || isNull(root)) {
		errors_.emplace_back(Location{file_, 1, 1}, "empty configuration: define at least "
		    "'services' (see pme.yml(5))");
		return tl::unexpected(errors_);
	}
	CPtr<yaml_document_t> extra(new yaml_document_t{});
	if (!yaml_parser_load(parser.get(), extra.get()))
		return syntaxError();
	if (Node more = yaml_document_get_root_node(extra.get())) {
		errors_.emplace_back(Location{file_, static_cast<int>(more->start_mark.line) + 1,
		    static_cast<int>(more->start_mark.column) + 1},
		    "a second YAML document: pme reads one document per file; remove the '---'");
	}

	if (root->type != YAML_MAPPING_NODE) {
		error(root, "expected a mapping with 'exporter' and 'services' at the top level, got " +
		    describe(root));
		return tl::unexpected(errors_);
	}
	Node exporter = nullptr, services = nullptr;
	eachPair(root, [&](const std::string &key, Node k, Node v) {
		if (key == "exporter")
			exporter = v;
		else if (key == "services")
			services = v;
		else if (key == "templates" || key == "include")
			error(k, "'" + key + "' " + notSupported);
		else
			unknownKey(k, key, "the top level", topKeys);
	});
	if (exporter)
		loadExporter(exporter);
	if (services)
		loadServices(services);
	std::map<std::string, Location> serviceNames;
	for (auto &sd : drafts_) {
		validateService(sd, serviceNames);
		config_.services.push_back(std::move(sd.s));
	}

	if (!errors_.empty()) {
		std::stable_sort(errors_.begin(), errors_.end(), [](const Error &a, const Error &b) {
			return std::pair(a.where.line, a.where.column) <
			    std::pair(b.where.line, b.where.column);
		});
		return tl::unexpected(errors_);
	}
	return std::move(config_);
}

} // namespace

ConfigResult loadConfigString(const std::string &text, const std::string &name)
{
	ConfigResult r = Loader(name).load(text);
	// Messages quote what the file says, which may be any bytes: they go
	// to logs and, after a failed reload, into a frame that must be UTF-8.
	if (!r)
		for (auto &e : r.error())
			e.message = printableText(e.message);
	return r;
}

ConfigResult loadConfigFile(const std::string &path)
{
	auto unreadable = [&](int err) {
		return tl::unexpected(Errors{Error(Location{path, 0, 0},
		    errnoMessage("cannot read", err))});
	};
	UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
	if (!fd)
		return unreadable(errno);
	std::string text;
	char buf[65536];
	for (;;) {
		ssize_t n = ::read(fd.get(), buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return unreadable(errno);
		if (n == 0)
			break;
		text.append(buf, static_cast<size_t>(n));
		if (text.size() > maxFileSize)
			return unreadable(EFBIG);
	}
	return loadConfigString(text, path);
}

} // namespace pme::common
