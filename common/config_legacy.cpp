// SPDX-License-Identifier: ISC
// Reading files in the original PME's dialect.
//
// The original PME, a Python implementation, documents a dialect that
// differs from pme's own keys in places (Compatibility in pme.yml(5)).  A
// file that has at least one key found only in that dialect is read as
// written in it: the tree is rewritten in pme's own keys before the schema
// is read, new nodes taking the positions of the ones they replace, so that
// the loader checks the result as if an operator had written it and its
// messages still point at the line that says it.  Keys of that dialect
// that mean nothing to pme are dropped with a warning each.
//
// Some forms mean one thing in pme and another in that dialect, and are
// read as the dialect's only in a file of it: a `command` given as a string
// is a shell command line there (an argument list split at blanks here); a
// service without `metric_prefix` named its metrics service_group_metric; a
// text filter without a capture tested for presence (1 when it matches).
// A file with no key of the dialect is left exactly as it is.
#include "config_load.hpp"

#include <algorithm>
#include <set>
#include <tuple>

#include "c_deleter.hpp"

namespace pme::common::load {

namespace {

const char *const whyOrder = "pme keeps no order among services, groups or metrics: each "
    "runs on its own schedule, concurrently";
const char *const whyExposed = "pme exposes every group it collects: remove the service, "
    "group or metric to stop collecting it";
const char *const whyLevel = "pmed logs to the journal, to syslog or, with -d, to stderr; "
    "-v adds debug messages";
const char *const whyRotation = "pmed writes no log file of its own: the journal or syslog "
    "keeps and rotates its lines";
const char *const whyFormat = "the journal and syslog stamp each line themselves";
const char *const whyWorkers = "every service runs in a worker process of its own, and its "
    "groups run concurrently";

const std::vector<std::pair<std::string, const char *>> exporterIgnored = {
	{"name", "pme names itself, and exports its version as pme_build_info"},
	{"description", "pme names itself, and exports its version as pme_build_info"},
	{"version", "pme names itself, and exports its version as pme_build_info"},
	{"parallel_collection", whyWorkers},
	{"max_workers", whyWorkers},
	{"failure_threshold", "a failing group shows as pme_source_up 0, and /health reports "
	    "pmed's own state"},
	{"collection_timeout_sec", "each group has its own 'timeout' [10s]"},
};
const std::vector<std::pair<std::string, const char *>> loggingIgnored = {
	{"level", whyLevel}, {"console_level", whyLevel}, {"file_level", whyLevel},
	{"journal_level", whyLevel}, {"max_bytes", whyRotation}, {"backup_count", whyRotation},
	{"format", whyFormat}, {"date_format", whyFormat},
};
const std::vector<std::pair<std::string, const char *>> collectionIgnored = {
	{"max_workers", whyWorkers}, {"parallel_collection", whyWorkers},
	{"failure_threshold", "a failing group shows as pme_source_up 0, and /health reports "
	    "pmed's own state"},
	{"collection_timeout_sec", "each group has its own 'timeout' [10s]"},
};
// Anywhere in a service, its groups and metrics.
const std::vector<std::pair<std::string, const char *>> partIgnored = {
	{"ordinal", whyOrder}, {"expose_metrics", whyExposed},
	{"category", "pme has no categories of metrics: give constant 'labels' to tell them "
	    "apart"},
	{"critical", "pme treats every metric alike: alert on pme_source_up instead"},
	{"retry_attempts", "a failed read is tried again at the next interval; "
	    "'value_on_error' or 'stale_after' say what is exposed meanwhile"},
	{"watch_type", "a file source is read again whenever it changes"},
};
// Keys of a template that apply to the service that refers to it; the
// others apply to each of its groups and standalone metrics.
const std::vector<std::string> serviceLevelKeys = {"name", "description", "metric_prefix",
    "labels", "run_as", "allow_root", "interval", "collection_frequency",
    "collection_frequency_sec", "env", "sandbox", "ordinal", "expose_metrics"};

const char *find(const std::vector<std::pair<std::string, const char *>> &list,
    const std::string &key)
{
	for (const auto &[k, why] : list)
		if (k == key)
			return why;
	return nullptr;
}

std::string keyOf(const YamlNode *k)
{
	return k->isScalar() ? k->value : std::string();
}

class Legacy {
public:
	explicit Legacy(YamlTree &tree) : tree_(tree) {}

	const YamlNode *root(const YamlNode *n);

	size_t certain = 0;   // keys found only in that dialect
	size_t count = 0;     // every key read as that dialect's
	Errors errors, warnings;

private:
	using Node = const YamlNode *;
	using NodePairs = std::vector<std::pair<Node, Node>>;

	// A mapping being written, with the key each pme key came from.
	struct Out {
		YamlNode node;
		std::map<std::string, Node> from;
	};

	YamlTree &tree_;
	std::map<std::string, Node> templates_;
	std::set<Node> counted_;

	static Location at(Node n) { return n->where(); }
	void error(Node n, std::string msg) { errors.emplace_back(at(n), std::move(msg)); }

	// A key of the dialect, counted once however often a template
	// brings it in.
	void legacy(Node k)
	{
		if (counted_.insert(k).second) {
			count++;
			certain++;
		}
	}
	// A key that pme has too, with another meaning: the dialect's only
	// in a file that has a key found only in the dialect.
	void soft(Node k)
	{
		if (counted_.insert(k).second)
			count++;
	}
	void ignore(Node k, const std::string &why)
	{
		if (counted_.count(k))
			return;
		legacy(k);
		warnings.emplace_back(at(k), "'" + keyOf(k) + "' is ignored: " + why);
	}

	Node scalar(const std::string &value, Node where,
	    YamlNode::Style style = YamlNode::Style::Plain)
	{
		YamlNode n;
		n.value = value;
		n.style = style;
		n.file = where->file;
		n.line = where->line;
		n.column = where->column;
		return tree_.make(std::move(n));
	}

	Out begin(Node like)
	{
		Out o;
		o.node.kind = YamlNode::Kind::Mapping;
		o.node.file = like->file;
		o.node.line = like->line;
		o.node.column = like->column;
		return o;
	}

	// Key k (pme's own or the dialect's) as pme key name.
	void put(Out &o, Node k, const std::string &name, Node v)
	{
		if (k->isScalar()) {
			auto [it, fresh] = o.from.emplace(name, k);
			if (!fresh) {
				Node first = it->second;
				error(k, "'" + keyOf(k) + "' sets '" + name + "', which '" + keyOf(first) +
				    "' at " + at(first).str() + " sets already: give one of them");
				return;
			}
		}
		o.node.pairs.emplace_back(k->isScalar() && k->value == name ? k : scalar(name, k), v);
	}
	void keep(Out &o, Node k, Node v) { put(o, k, keyOf(k), v); }

	Node done(Out &o) { return tree_.make(std::move(o.node)); }

	std::optional<int> port(Node v)
	{
		if (v->isScalar() && !v->value.empty() && v->value.size() <= 5 &&
		    allOf(v->value, 0, isDigit)) {
			int p = std::stoi(v->value);
			if (p >= 1 && p <= 65535)
				return p;
		}
		return std::nullopt;
	}

	Node exporter(Node n);
	void logging(Node k, Node v);
	Node services(Node n);
	Node service(Node key, Node n);
	Node group(Node key, Node n, bool standalone, const std::string &part,
	    const NodePairs &defaults);
	Node metric(Node key, Node n, const std::string &part, const std::string &content);
	void presence(Out &o, Node key, Node filter, const std::string &content);
	Node labels(Node n);
	Node withTemplate(Node n, NodePairs *groupDefaults);
	Node splitConstants(Node key, Node &gv);
	static bool readsSomething(Node service);
};

const YamlNode *Legacy::root(Node n)
{
	if (auto [tk, tv] = n->find("service_templates"); tk) {
		legacy(tk);
		if (tv->isMapping()) {
			for (const auto &[k, v] : tv->pairs) {
				if (!v->isMapping()) {
					error(v, "expected a mapping for service template '" + keyOf(k) +
					    "', got something else");
					continue;
				}
				templates_.emplace(keyOf(k), v);
			}
		} else if (!tv->isNull()) {
			error(tv, "expected a mapping of templates for 'service_templates'");
		}
	}
	Out o = begin(n);
	for (const auto &[k, v] : n->pairs) {
		std::string key = keyOf(k);
		if (key == "exporter")
			keep(o, k, exporter(v));
		else if (key == "logging")
			logging(k, v);
		else if (key == "services")
			keep(o, k, services(v));
		else if (key != "service_templates")
			o.node.pairs.emplace_back(k, v);
	}
	return done(o);
}

Legacy::Node Legacy::exporter(Node n)
{
	if (!n->isMapping())
		return n;
	Out o = begin(n);
	for (const auto &[k, v] : n->pairs) {
		std::string key = keyOf(k);
		if (key == "metrics_port" || key == "health_port") {
			legacy(k);
			auto p = port(v);
			if (!p) {
				error(v, "expected a port from 1 to 65535 for '" + key + "'");
				continue;
			}
			std::string addr = ":" + std::to_string(*p);
			bool metrics = key == "metrics_port";
			warnings.emplace_back(at(k), "'" + key + "' listens on every address, as the "
			    "original PME did; to choose the address, write '" +
			    (metrics ? "listen" : "health_listen") + ": \"127.0.0.1" + addr +
			    "\"' (or the address Prometheus scrapes)");
			if (metrics) {
				YamlNode list;
				list.kind = YamlNode::Kind::Sequence;
				list.file = v->file;
				list.line = v->line;
				list.column = v->column;
				list.items.push_back(scalar(addr, v));
				put(o, k, "listen", tree_.make(std::move(list)));
			} else {
				put(o, k, "health_listen", scalar(addr, v));
			}
		} else if (key == "poll_interval_sec") {
			legacy(k);
			put(o, k, "interval", v);
		} else if (key == "collection") {
			certain++;
			if (!v->isMapping() || v->pairs.empty()) {
				ignore(k, "it holds no setting");
				continue;
			}
			for (const auto &[ck, cv] : v->pairs) {
				std::string ckey = keyOf(ck);
				if (ckey == "poll_interval_sec") {
					legacy(ck);
					put(o, ck, "interval", cv);
				} else if (const char *why = find(collectionIgnored, ckey)) {
					ignore(ck, why);
				} else {
					error(ck, "unknown key '" + ckey + "' in exporter.collection (known "
					    "keys: poll_interval_sec, max_workers, parallel_collection, "
					    "failure_threshold, collection_timeout_sec)");
				}
			}
		} else if (key == "logging") {
			logging(k, v);
		} else if (const char *why = find(exporterIgnored, key)) {
			ignore(k, why);
		} else {
			keep(o, k, v);
		}
	}
	return done(o);
}

void Legacy::logging(Node k, Node v)
{
	certain++;
	if (!v->isMapping() || v->pairs.empty()) {
		ignore(k, whyLevel);
		return;
	}
	for (const auto &[lk, lv] : v->pairs) {
		if (const char *why = find(loggingIgnored, keyOf(lk))) {
			ignore(lk, why);
			continue;
		}
		std::string known;
		for (const auto &[name, w] : loggingIgnored)
			known += (known.empty() ? "" : ", ") + name;
		error(lk, "unknown key '" + keyOf(lk) + "' in logging (known keys: " + known + ")");
	}
}

// A service with a command or a source somewhere.
bool Legacy::readsSomething(Node service)
{
	for (const char *part : {"metric_groups", "standalone_metrics"}) {
		Node groups = service->find(part).second;
		if (!groups || !groups->isMapping())
			continue;
		for (const auto &[k, g] : groups->pairs)
			if (g->isMapping() && (g->find("command").first || g->find("source").first ||
			    g->find("template").first))
				return true;
	}
	return false;
}

Legacy::Node Legacy::services(Node n)
{
	if (!n->isMapping())
		return n;
	Out o = begin(n);
	for (const auto &[k, v] : n->pairs) {
		// The original's self-monitoring service, named 'exporter',
		// reads nothing: its metrics were made inside that program.
		if (keyOf(k) == "exporter" && v->isMapping() && !readsSomething(v)) {
			ignore(k, "it is the original PME's self-monitoring service; pmed exports "
			    "its own metrics (pme_*) without one");
			continue;
		}
		o.node.pairs.emplace_back(k, service(k, v));
	}
	return done(o);
}

// The mapping n with the service template it names laid under its own keys.
// For a service, groupDefaults receives the template's keys that are a
// group's.
Legacy::Node Legacy::withTemplate(Node n, NodePairs *groupDefaults)
{
	auto [tk, tv] = n->find("template");
	if (!tk)
		return n;
	legacy(tk);
	Out o = begin(n);
	for (const auto &[k, v] : n->pairs)
		if (keyOf(k) != "template")
			o.node.pairs.emplace_back(k, v);
	auto it = tv->isScalar() ? templates_.find(tv->value) : templates_.end();
	if (it == templates_.end()) {
		std::string names;
		for (const auto &[name, body] : templates_)
			names += (names.empty() ? "" : ", ") + name;
		error(tv, "unknown service template " + (tv->isScalar() ? "'" + tv->value + "'" :
		    std::string("(expected a name)")) + (names.empty() ?
		    " (no template is defined under 'service_templates')" :
		    " (defined templates: " + names + ")"));
		return done(o);
	}
	for (const auto &[k, v] : it->second->pairs) {
		std::string key = keyOf(k);
		if (n->find(key).first)
			continue;
		bool serviceKey = std::count(serviceLevelKeys.begin(), serviceLevelKeys.end(), key);
		if (groupDefaults && !serviceKey)
			groupDefaults->emplace_back(k, v);
		else
			o.node.pairs.emplace_back(k, v);
	}
	return done(o);
}

Legacy::Node Legacy::service(Node key, Node n)
{
	if (!n->isMapping())
		return n;
	NodePairs defaults;
	n = withTemplate(n, &defaults);
	bool prefixed = n->find("metric_prefix").first != nullptr;
	Out o = begin(n);
	// Without a prefix the original named metrics service_group_metric.
	if (!prefixed) {
		std::string prefix;
		for (char c : keyOf(key))
			prefix += (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') ? c : '_';
		if (!prefix.empty() && isDigit(prefix[0]))
			prefix = "_" + prefix;
		put(o, scalar("metric_prefix", key), "metric_prefix",
		    scalar(prefix + "_", key, YamlNode::Style::DoubleQuoted));
	}
	for (const auto &[k, v] : n->pairs) {
		std::string kname = keyOf(k);
		if (const char *why = find(partIgnored, kname)) {
			ignore(k, why);
		} else if (kname == "collection_frequency_sec" || kname == "collection_frequency") {
			legacy(k);
			put(o, k, "interval", v);
		} else if (kname == "run_as" && v->isMapping() && v->find("env").first) {
			Out r = begin(v);
			for (const auto &[rk, rv] : v->pairs) {
				if (keyOf(rk) == "env") {
					legacy(rk);
					put(o, rk, "env", rv);
				} else {
					keep(r, rk, rv);
				}
			}
			if (r.node.pairs.empty())
				continue;
			keep(o, k, done(r));
		} else if (kname == "metric_groups" || kname == "standalone_metrics") {
			if (!v->isMapping()) {
				keep(o, k, v);
				continue;
			}
			bool standalone = kname == "standalone_metrics";
			Out g = begin(v);
			for (const auto &[gk, gv] : v->pairs) {
				std::string part = prefixed || standalone ? "" : keyOf(gk) + "_";
				Node body = gv;
				Node constants = standalone ? nullptr : splitConstants(gk, body);
				g.node.pairs.emplace_back(gk, group(gk, body, standalone, part, defaults));
				if (constants)
					g.node.pairs.emplace_back(scalar(keyOf(gk) + "_static", gk),
					    group(gk, constants, false, part, {}));
			}
			keep(o, k, done(g));
		} else {
			keep(o, k, v);
		}
	}
	return done(o);
}

// The original let a group that reads a source hold constants as well
// (type: static); in pme a group is one source.  The constants of such a
// group are taken out of it (gv is rewritten in place) and returned as a
// static group of their own, which keeps the group's name prefix; null
// when there are none.
Legacy::Node Legacy::splitConstants(Node key, Node &gv)
{
	if (!gv->isMapping() || !(gv->find("command").first || gv->find("source").first))
		return nullptr;
	auto [mk, metrics] = gv->find("metrics");
	if (!metrics || !metrics->isMapping())
		return nullptr;
	Out reading = begin(metrics), constant = begin(metrics);
	for (const auto &[k, v] : metrics->pairs) {
		Node type = v->isMapping() ? v->find("type").second : nullptr;
		bool isStatic = type && type->isScalar() && lower(type->value) == "static";
		(isStatic ? constant : reading).node.pairs.emplace_back(k, v);
	}
	if (constant.node.pairs.empty())
		return nullptr;
	Out group = begin(gv), rest = begin(gv);
	for (const auto &[k, v] : gv->pairs) {
		if (k == mk) {
			rest.node.pairs.emplace_back(k, done(reading));
			continue;
		}
		rest.node.pairs.emplace_back(k, v);
		if (keyOf(k) == "prefix")
			group.node.pairs.emplace_back(k, v);
	}
	group.node.pairs.emplace_back(scalar("source_type", key), scalar("static", key));
	group.node.pairs.emplace_back(mk, done(constant));
	gv = done(rest);
	return done(group);
}

Legacy::Node Legacy::group(Node key, Node n, bool standalone, const std::string &part,
    const NodePairs &defaults)
{
	if (!n->isMapping())
		return n;
	n = withTemplate(n, nullptr);
	NodePairs pairs = n->pairs;
	for (const auto &[k, v] : defaults)
		if (!n->find(keyOf(k)).first)
			pairs.emplace_back(k, v);
	auto value = [&](const char *name) -> std::string {
		for (const auto &[k, v] : pairs)
			if (keyOf(k) == name && v->isScalar())
				return lower(v->value);
		return "";
	};
	std::string content = value("content_type");
	// The original read content_type of each metric: pme reads it of the
	// group, whose metrics share one read.
	std::pair<Node, Node> metricContent{nullptr, nullptr};
	Node metrics = standalone ? nullptr : n->find("metrics").second;
	for (const auto &[mk, mv] : metrics && metrics->isMapping() ? metrics->pairs : NodePairs()) {
		auto [ck, cv] = mv->isMapping() ? mv->find("content_type") :
		    std::pair<Node, Node>{nullptr, nullptr};
		if (!ck || !cv->isScalar())
			continue;
		std::string shared = content.empty() ? metricContent.second ?
		    lower(metricContent.second->value) : "" : content;
		if (!shared.empty() && lower(cv->value) != shared)
			error(cv, "the metrics of a group share one read and one content_type: '" +
			    cv->value + "' differs from the group's '" + shared + "'");
		else if (content.empty() && !metricContent.first)
			metricContent = {ck, cv};
	}
	if (content.empty() && metricContent.first)
		content = lower(metricContent.second->value);
	if (content.empty())
		content = "text";
	bool shellGiven = false, sourceTypeGiven = false;
	for (const auto &[k, v] : pairs) {
		shellGiven = shellGiven || keyOf(k) == "shell";
		sourceTypeGiven = sourceTypeGiven || keyOf(k) == "source_type";
	}
	std::string namePart = part;
	Out o = begin(n);
	for (const auto &[k, v] : pairs) {
		std::string kname = keyOf(k);
		if (kname == "prefix" && !standalone && content != "prometheus") {
			// pme's own key for imports, and an error elsewhere: the
			// dialect's only in a file of it.
			soft(k);
			if (v->isScalar())
				namePart = v->value;
			else
				error(v, "expected a string for the group's metric name 'prefix'");
		}
	}
	for (const auto &[k, v] : pairs) {
		std::string kname = keyOf(k);
		if (const char *why = find(partIgnored, kname)) {
			ignore(k, why);
		} else if (kname == "prefix" && !standalone && content != "prometheus") {
			// read above
		} else if (kname == "command" && v->isScalar() && !v->isNull() && !shellGiven &&
		    (!sourceTypeGiven || value("source_type") == "command")) {
			// A shell command line, as the original ran it.
			soft(k);
			keep(o, k, v);
			put(o, scalar("shell", k), "shell", scalar("true", v));
		} else if (kname == "collection_frequency_sec") {
			legacy(k);
			put(o, k, "interval", v);
		} else if (kname == "type" && !standalone) {
			legacy(k);
			std::string t = v->isScalar() ? lower(v->value) : "";
			if (t == "static")
				put(o, k, "source_type", v);
			else if (t != "dynamic")
				error(v, "unknown group type '" + (v->isScalar() ? v->value : "") +
				    "' (the original PME's groups are dynamic or static)");
		} else if (kname == "type" && v->isScalar() && lower(v->value) == "static") {
			// A standalone constant: pme's static source, a gauge.
			legacy(k);
		} else if (kname == "labels") {
			keep(o, k, labels(v));
		} else if (kname == "metrics" && !standalone && v->isMapping()) {
			Out m = begin(v);
			for (const auto &[mk, mv] : v->pairs)
				m.node.pairs.emplace_back(mk, metric(mk, mv, namePart, content));
			keep(o, k, done(m));
		} else {
			keep(o, k, v);
		}
	}
	if (metricContent.first)
		put(o, scalar("content_type", metricContent.first), "content_type",
		    metricContent.second);
	if (standalone)
		presence(o, key, n->find("filter").second, content);
	return done(o);
}

Legacy::Node Legacy::metric(Node key, Node n, const std::string &part, const std::string &content)
{
	if (!n->isMapping())
		return n;
	Out o = begin(n);
	for (const auto &[k, v] : n->pairs) {
		std::string kname = keyOf(k);
		if (const char *why = find(partIgnored, kname)) {
			ignore(k, why);
		} else if (kname == "type" && v->isScalar() && lower(v->value) == "static") {
			// A constant: pme reads a plain number 'value' as one.
			legacy(k);
		} else if (kname == "content_type") {
			legacy(k); // the group's (Legacy::group)
		} else if (kname == "transform") {
			legacy(k);
			error(k, "'transform' (a Python expression of the original) is not read by "
			    "pme: map the captured text with 'values' or multiply it with 'scale' "
			    "(pme.yml(5))");
		} else if (kname == "labels") {
			keep(o, k, labels(v));
		} else if (kname == "name" && !part.empty() && v->isScalar()) {
			keep(o, k, scalar(part + v->value, v, v->style));
		} else {
			keep(o, k, v);
		}
	}
	if (!part.empty() && !n->find("name").first)
		put(o, scalar("name", key), "name", scalar(part + keyOf(key), key));
	presence(o, key, n->find("filter").second, content);
	return done(o);
}

// Labels, less those the original read with a filter of their own over
// the whole text: each is an error saying how pme gets the same value.
Legacy::Node Legacy::labels(Node n)
{
	if (!n->isMapping())
		return n;
	Out o = begin(n);
	for (const auto &[k, v] : n->pairs) {
		if (v->isMapping() && v->find("filter").second) {
			legacy(k);
			error(k, "label '" + keyOf(k) + "' has a filter of its own, which pme does "
			    "not read: take its value from a capture of the metric's filter, as "
			    "in labels: { " + keyOf(k) + ": \"$2\" } (Capture templates in "
			    "pme.yml(5))");
			continue;
		}
		keep(o, k, v);
	}
	return done(o);
}

// The original read a number from capture 1 of a text filter; a filter
// without one only said whether the text was there.  And a JSON filter was
// a path of dotted keys.
void Legacy::presence(Out &o, Node key, Node filter, const std::string &content)
{
	if (!filter || !filter->isScalar())
		return;
	if (content == "json") {
		const std::string &f = filter->value;
		if (f.empty() || f[0] == '$')
			return;
		for (auto &[k, v] : o.node.pairs)
			if (keyOf(k) == "filter")
				v = scalar(f[0] == '.' ? "$" + f : "$." + f, filter,
				    YamlNode::Style::DoubleQuoted);
		return;
	}
	if (content != "text" || o.from.count("value") || o.from.count("values"))
		return;
	int code = 0;
	PCRE2_SIZE offset = 0;
	CPtr<pcre2_code> re(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(filter->value.data()),
	    filter->value.size(), PCRE2_UTF, &code, &offset, nullptr));
	uint32_t captures = 0;
	if (!re || pcre2_pattern_info(re.get(), PCRE2_INFO_CAPTURECOUNT, &captures) != 0 ||
	    captures > 0)
		return;
	put(o, scalar("value", key), "value", scalar("1", filter, YamlNode::Style::DoubleQuoted));
	if (!o.from.count("value_on_error"))
		put(o, scalar("value_on_error", key), "value_on_error", scalar("0", filter));
}

} // namespace

const YamlNode *Loader::translateLegacy(Node root)
{
	Legacy legacy(tree_);
	Node out = legacy.root(root);
	if (legacy.certain == 0)
		return root;
	errors_.insert(errors_.end(), legacy.errors.begin(), legacy.errors.end());
	notes_.legacyKeys = legacy.count;
	notes_.warnings = std::move(legacy.warnings);
	std::stable_sort(notes_.warnings.begin(), notes_.warnings.end(),
	    [](const Error &a, const Error &b) {
		return std::tuple(a.where.line, a.where.column) <
		    std::tuple(b.where.line, b.where.column);
	});
	return out;
}

} // namespace pme::common::load
