// SPDX-License-Identifier: ISC
// Checking drafts: what depends on more than one key at a time.
#include "config_load.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "c_deleter.hpp"
#include "http_url.hpp"
#include "json_path.hpp"
#include "proto/frame.h"
#include "structured_template.hpp"
#include "xpath.hpp"

namespace pme::common::load {

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
		if (!found && n->use && std::count(n->unresolved.begin(), n->unresolved.end(), name)) {
			error(n, what + " refers to " + ref + ", which is neither a capture of the "
			    "filter nor a var given to the template");
			return;
		}
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
	if (g.sourceType != SourceType::Http)
		for (const auto &[key, node] : gd.httpNodes)
			error(node, "'" + key + "' is only for source_type http");
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
		if (src->isSequence()) {
			if (g.shell) {
				error(src, "'shell: true' runs one string with /bin/sh -c: write '" +
				    key + "' as a string, not a list");
				return;
			}
			for (Node item : src->items)
				if (auto s = getString(item, key))
					g.argv.push_back(*s);
			g.source = join(g.argv);
		} else if (src->isScalar() && !isNull(src)) {
			auto str = getString(src, key);
			if (!str)
				return;
			const std::string &s = *str;
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
		validateHttp(gd, ctx);
		break;
	}
}

void Loader::validateHttp(GroupDraft &gd, const std::string &ctx)
{
	auto &g = gd.g;
	auto &h = g.http;
	if (!gd.sourceNode) {
		if (!gd.misspelt.count("source"))
			error(gd.keyNode, ctx + " needs a 'source': the URL to read, as in "
			    "http://127.0.0.1:8080/status or unix:/run/app.sock:/status");
	} else if (auto url = getNonEmpty(gd.sourceNode, "source")) {
		g.source = *url;
		if (std::string why = checkHttpUrl(*url); !why.empty())
			error(gd.sourceNode, why);
	}
	Node authHeader = nullptr;
	for (size_t i = 0; i < h.headers.size(); i++) {
		const auto &[name, value] = h.headers[i];
		std::string l = lower(name);
		if (!httpToken(name))
			error(gd.headerKeyNodes[i], "invalid HTTP header name '" + name + "'");
		else if (l == "content-length" || l == "transfer-encoding" || l == "connection")
			error(gd.headerKeyNodes[i], "header " + name + " is set by pme and cannot be "
			    "configured");
		else if (hasLineBreak(value))
			error(gd.headerValueNodes[i], "the value of header " + name + " has a line "
			    "break");
		if (l == "authorization")
			authHeader = gd.headerKeyNodes[i];
	}
	Node basic = nullptr, bearer = nullptr;
	for (const auto &[key, node] : gd.httpNodes) {
		if (key == "basic_auth")
			basic = node;
		if (key == "bearer")
			bearer = node;
	}
	if (basic) {
		if (h.username.find(':') != std::string::npos)
			error(basic, "a basic_auth username cannot contain ':'");
		if (!h.password.empty() && !h.passwordFile.empty())
			error(basic, "give basic_auth either 'password' or 'password_file', not both");
		if (!h.passwordFile.empty() && h.passwordFile[0] != '/')
			error(basic, "basic_auth password_file '" + h.passwordFile + "' must be an "
			    "absolute path");
	}
	if (bearer) {
		if (h.token.empty() == h.tokenFile.empty() && !gd.authBad)
			error(bearer, "give bearer either 'token' or 'token_file'" +
			    std::string(h.token.empty() ? "" : ", not both"));
		if (!h.tokenFile.empty() && h.tokenFile[0] != '/')
			error(bearer, "bearer token_file '" + h.tokenFile + "' must be an absolute "
			    "path");
		if (hasLineBreak(h.token))
			error(bearer, "the bearer token has a line break");
	}
	if (basic && bearer)
		error(bearer, "give either basic_auth or bearer, not both");
	if (authHeader && (basic || bearer))
		error(authHeader, "an Authorization header and " + std::string(basic ? "basic_auth" :
		    "bearer") + " would both set Authorization; keep one");
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
			checkSuffixClash(m, nameAt);
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
	if (!m.unit.empty()) {
		// A counter's name ends in _total, after its unit.
		std::string stem = m.name;
		if (m.type == MetricType::Counter && stem.size() > 6 &&
		    stem.compare(stem.size() - 6, 6, "_total") == 0)
			stem.resize(stem.size() - 6);
		std::string suffix = "_" + m.unit;
		if (stem.size() <= suffix.size() ||
		    stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) != 0)
			error(md.unitNode, "metric '" + m.name + "' has unit '" + m.unit + "', so its "
			    "name must end in '" + suffix + "'" + (m.type == MetricType::Counter ?
			    " (before _total)" : "") + ", as OpenMetrics requires");
	}
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
	if (!validateType(gd, md, what))
		return;

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

namespace {

// Which metric types may have which of the type keys.
std::string typeKeyOwner(const std::string &key)
{
	if (key == "observe" || key == "buckets")
		return "histogram";
	if (key == "sum" || key == "count" || key == "cumulative")
		return "histogram read from the source";
	if (key == "states")
		return "stateset";
	return "summary";
}

bool typeKeyAllowed(const MetricConfig &m, const std::string &key)
{
	if (key == "observe")
		return m.type == MetricType::Histogram || m.type == MetricType::Summary;
	if (key == "buckets")
		return m.type == MetricType::Histogram;
	if (key == "sum" || key == "count" || key == "cumulative")
		return m.mappedHistogram();
	if (key == "states")
		return m.type == MetricType::StateSet;
	return m.type == MetricType::Summary;
}

// A '$' that is not part of "$$": a reference to a capture or a node.
bool hasReference(const std::string &t)
{
	for (size_t i = 0; i < t.size(); i++) {
		if (t[i] != '$')
			continue;
		if (i + 1 < t.size() && t[i + 1] == '$')
			i++;
		else
			return true;
	}
	return false;
}

std::string formatNumber(double d)
{
	if (std::isinf(d))
		return d > 0 ? "+Inf" : "-Inf";
	// The shortest form that reads back the same: 10, 0.25, 1e+21.
	char buf[64];
	auto r = std::to_chars(buf, buf + sizeof(buf), d);
	return std::string(buf, r.ptr);
}

} // namespace

// A histogram x is exposed as x_bucket, x_sum and x_count, a summary as x,
// x_sum and x_count: another metric of one of those names would make the
// exposition invalid.
void Loader::checkSuffixClash(const MetricConfig &m, Node nameAt)
{
	static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
	auto owns = [](MetricType t, const std::string &suffix) {
		return t == MetricType::Histogram || (t == MetricType::Summary && suffix != "_bucket");
	};
	for (const char *sfx : suffixes) {
		std::string suffix = sfx;
		if (owns(m.type, suffix)) {
			auto it = names_.find(m.name + suffix);
			if (it != names_.end())
				error(nameAt, std::string("a ") + toString(m.type) + " '" + m.name +
				    "' is exposed as " + m.name + suffix + " too, which metric '" +
				    it->first + "' of service '" + it->second.service + "' at " +
				    it->second.where.str() + " already is; rename one of them");
		}
		if (m.name.size() > suffix.size() &&
		    m.name.compare(m.name.size() - suffix.size(), suffix.size(), suffix) == 0) {
			auto it = names_.find(m.name.substr(0, m.name.size() - suffix.size()));
			if (it != names_.end() && owns(it->second.type, suffix))
				error(nameAt, "metric '" + m.name + "' is also a series of the " +
				    toString(it->second.type) + " '" + it->first + "' of service '" +
				    it->second.service + "' at " + it->second.where.str() +
				    "; rename one of them");
		}
	}
}

// What depends on the type: histograms, summaries and statesets have keys
// of their own and no value_on_error.  False when the rest of the metric's
// checks do not apply (a histogram read field by field has no 'filter').
bool Loader::validateType(const GroupDraft &gd, MetricDraft &md, const std::string &what)
{
	auto &m = md.m;
	if (md.typeBad)
		return true;
	for (const auto &[key, node] : md.typeKeyNodes)
		if (!typeKeyAllowed(m, key))
			error(node, "'" + key + "' is for a " + typeKeyOwner(key) + ", and " + what +
			    " is a " + toString(m.type) + (md.typeNode ? "" : " (the default type)"));
	bool special = m.type == MetricType::Histogram || m.type == MetricType::Summary ||
	    m.type == MetricType::StateSet;
	if (!special)
		return true;
	std::string type = toString(m.type);
	if (md.valueOnErrorNode)
		error(md.valueOnErrorNode, "'value_on_error' is for counters and gauges: a " + type +
		    " that cannot be read keeps its last series until they are stale");
	if (!gd.sourceTypeBad && gd.g.sourceType == SourceType::Static) {
		error(md.typeNode ? md.typeNode : md.keyNode, "a " + type + " is read from a "
		    "source: a static source has only constant values");
		return false;
	}
	if (m.type != MetricType::StateSet) {
		for (size_t i = 0; i < m.labels.size(); i++)
			if (m.labels[i].first == "le" || m.labels[i].first == "quantile")
				error(md.labelKeyNodes[i], "label '" + m.labels[i].first + "' of " + what +
				    " is the " + (m.labels[i].first == "le" ? "buckets'" : "quantiles'") +
				    " own label; choose another name");
	}
	switch (m.type) {
	case MetricType::Histogram:
		if (!md.bucketsNode) {
			error(md.keyNode, what + " needs 'buckets': with observe: true, a list of "
			    "upper bounds such as [0.1, 0.5, 1]; otherwise a mapping of each upper "
			    "bound to the filter that reads its count");
			return !m.mappedHistogram();
		}
		if (!m.observe) {
			if (!md.bucketsMapped && md.bucketsNode->isSequence()) {
				error(md.bucketsNode, "a list of 'buckets' holds the bounds of observed "
				    "values: add observe: true, or map each bound to the filter that "
				    "reads its count");
				return false;
			}
			checkMappedHistogram(gd, md, what);
			return false;
		}
		if (md.bucketsMapped) {
			error(md.bucketsNode, "with observe: true, 'buckets' is a list of upper bounds "
			    "such as [0.1, 0.5, 1]; a mapping of bounds to filters reads a histogram "
			    "the source has counted itself (without observe)");
			break;
		}
		if (m.bucketBounds.empty() && md.bucketsNode->isSequence() &&
		    md.bucketsNode->items.empty())
			error(md.bucketsNode, "'buckets' of " + what + " must list at least one bound");
		for (size_t i = 0; i < m.bucketBounds.size(); i++) {
			double b = m.bucketBounds[i];
			if (!std::isfinite(b)) {
				error(md.bucketsNode, "bucket bound " + formatNumber(b) + " of " + what +
				    " is not a finite number (+Inf is always added)");
				break;
			}
			if (i > 0 && b <= m.bucketBounds[i - 1]) {
				error(md.bucketsNode, "the bucket bounds of " + what + " must increase: " +
				    formatNumber(b) + " comes after " +
				    formatNumber(m.bucketBounds[i - 1]));
				break;
			}
		}
		break;
	case MetricType::Summary: {
		if (m.quantiles.empty() && md.typeKeyNodes.size() > 0)
			for (const auto &[key, node] : md.typeKeyNodes)
				if (key == "quantiles" && node->isSequence() && node->items.empty())
					error(node, "'quantiles' of " + what + " must list at least one "
					    "quantile, such as [0.5, 0.9, 0.99]");
		for (size_t i = 0; i < m.quantiles.size(); i++) {
			double q = m.quantiles[i];
			Node at = md.keyNode;
			for (const auto &[key, node] : md.typeKeyNodes)
				if (key == "quantiles")
					at = node;
			if (!(q >= 0 && q <= 1)) {
				error(at, "quantile " + formatNumber(q) + " of " + what + " is not between "
				    "0 and 1");
				break;
			}
			if (i > 0 && q <= m.quantiles[i - 1]) {
				error(at, "the quantiles of " + what + " must increase: " + formatNumber(q) +
				    " comes after " + formatNumber(m.quantiles[i - 1]));
				break;
			}
		}
		for (const auto &[key, node] : md.typeKeyNodes)
			if (key == "max_age" && m.maxAge.count() < static_cast<int64_t>(m.ageBuckets))
				error(node, "'max_age' of " + what + " must be at least one millisecond "
				    "per age bucket");
		break;
	}
	case MetricType::StateSet: {
		if (m.states.empty()) {
			Node at = md.keyNode;
			for (const auto &[key, node] : md.typeKeyNodes)
				if (key == "states")
					at = node;
			error(at, what + " needs 'states': the list of states its value can take, "
			    "such as [active, inactive, failed]");
		}
		for (size_t i = 0; i < m.states.size(); i++)
			for (size_t k = 0; k < i; k++)
				if (m.states[i] == m.states[k]) {
					for (const auto &[key, node] : md.typeKeyNodes)
						if (key == "states")
							error(node, "state '" + m.states[i] + "' of " + what +
							    " is listed twice");
					break;
				}
		if (md.valuesNode)
			error(md.valuesNode, "a stateset maps its value to one of its 'states': "
			    "remove 'values'");
		// OpenMetrics: the state is in a label named as the family.
		if (validMetricName(m.name) && !validLabelName(m.name))
			error(md.nameNode ? md.nameNode : md.keyNode, "stateset '" + m.name + "' "
			    "names the label that holds its state, and a label name cannot have "
			    "':' nor start with '__'; choose another name");
		for (size_t i = 0; i < m.labels.size(); i++)
			if (m.labels[i].first == m.name)
				error(md.labelKeyNodes[i], "label '" + m.name + "' of " + what + " is "
				    "the label that holds its state; choose another name");
		break;
	}
	default:
		break;
	}
	return true;
}

// A histogram the source has counted: a filter per bucket, sum and count.
void Loader::checkMappedHistogram(const GroupDraft &gd, MetricDraft &md, const std::string &what)
{
	auto &m = md.m;
	if (md.filterNode)
		error(md.filterNode, what + " reads each bucket with its own filter under "
		    "'buckets' (and 'sum', 'count'): remove 'filter', or add observe: true to "
		    "observe the values it matches");
	if (md.valueNode)
		error(md.valueNode, what + " reads its counts with the filters under 'buckets': "
		    "remove 'value'");
	if (md.valueRegexNode)
		error(md.valueRegexNode, what + " reads counts: remove 'value_regex'");
	if (md.valuesNode)
		error(md.valuesNode, what + " reads counts: remove 'values'");
	// In bound order, each node with its bound.
	std::vector<size_t> order(m.bucketFilters.size());
	for (size_t i = 0; i < order.size(); i++)
		order[i] = i;
	std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
		return m.bucketFilters[a].first < m.bucketFilters[b].first;
	});
	std::vector<std::pair<double, std::string>> sorted;
	std::vector<Node> nodes;
	for (size_t i : order) {
		if (!sorted.empty() && sorted.back().first == m.bucketFilters[i].first) {
			error(md.bucketFilterNodes[i], "bucket " + formatNumber(m.bucketFilters[i].first) +
			    " of " + what + " is given twice");
			continue;
		}
		sorted.push_back(m.bucketFilters[i]);
		nodes.push_back(md.bucketFilterNodes[i]);
	}
	m.bucketFilters = std::move(sorted);
	md.bucketFilterNodes = std::move(nodes);
	bool inf = !m.bucketFilters.empty() && std::isinf(m.bucketFilters.back().first);
	if (!m.bucketFilters.empty() && m.bucketFilters.front().first < 0 &&
	    std::isinf(m.bucketFilters.front().first))
		error(md.bucketFilterNodes.front(), "bucket -Inf of " + what + " cannot hold "
		    "anything: remove it");
	if (m.bucketFilters.empty() && md.bucketsNode->isMapping())
		error(md.bucketsNode, "'buckets' of " + what + " must map at least one bound to "
		    "its filter");
	if (!inf && m.countFilter.empty() && !md.countNode)
		error(md.bucketsNode, what + " needs 'count' or a +Inf bucket: the number of "
		    "observations");
	for (size_t i = 0; i < m.labels.size(); i++)
		if (hasReference(m.labels[i].second))
			error(md.labelValueNodes[i], "label '" + m.labels[i].first + "' of " + what +
			    " refers to a match, but each of its buckets is read by a filter of its "
			    "own: its labels are constant (write $$ for a literal $)");
	if (gd.sourceTypeBad || gd.contentBad)
		return;
	for (size_t i = 0; i < m.bucketFilters.size(); i++)
		checkOneFilter(gd, m.bucketFilters[i].second, md.bucketFilterNodes[i]);
	if (!m.sumFilter.empty())
		checkOneFilter(gd, m.sumFilter, md.sumNode);
	if (!m.countFilter.empty())
		checkOneFilter(gd, m.countFilter, md.countNode);
}

// One filter of a histogram read field by field, in the group's language.
void Loader::checkOneFilter(const GroupDraft &gd, const std::string &filter, Node n)
{
	switch (gd.g.contentType) {
	case ContentType::Text: {
		MetricDraft one;
		one.m.filter = filter;
		one.filterNode = n;
		compileFilter(gd, one);
		break;
	}
	case ContentType::Json:
		if (auto q = JsonPath::compile(filter); !q)
			errorAt(n, q.error().message, "invalid JSONPath filter: ");
		break;
	case ContentType::Xml:
		if (auto ok = checkXPath(filter, gd.g.namespaces); !ok)
			errorAt(n, ok.error().message, "invalid XPath filter: ");
		break;
	case ContentType::Prometheus:
		break;
	}
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
		auto startsWith = [&](const char *p) {
			return gd.sourceNode->isScalar() && text(gd.sourceNode).rfind(p, 0) == 0;
		};
		if (gd.commandNode) {
			g.sourceType = SourceType::Command;
		} else if (gd.sourceNode && (startsWith("http://") || startsWith("https://") ||
		    startsWith("unix:"))) {
			// A URL says what it is.
			g.sourceType = SourceType::Http;
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


} // namespace pme::common::load
