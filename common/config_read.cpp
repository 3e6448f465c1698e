// SPDX-License-Identifier: ISC
// Reading pme.yml's schema into drafts: every key, its kind and its form.
#include "config_load.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "c_deleter.hpp"
#include "http_url.hpp"
#include "proto/frame.h"

namespace pme::common::load {


const std::string notSupported = "is not supported by this version of pme";

// ---- scalar forms ----

std::string upper(std::string s)
{
	for (auto &c : s)
		if (c >= 'a' && c <= 'z')
			c = static_cast<char>(c - 'a' + 'A');
	return s;
}

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
std::optional<double> numberFromText(const std::string &text, bool *range)
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
    "max_output", "max_series", "multiline", "env", "metrics", "description", "labels", "namespaces",
    "prefix", "include", "exclude", "honor_timestamps", "method", "body", "headers",
    "basic_auth", "bearer", "max_redirects", "http_cache"};
const std::vector<std::string> basicAuthKeys = {"username", "password", "password_file"};
const std::vector<std::string> bearerKeys = {"token", "token_file"};
const std::vector<std::string> metricKeys = {"name", "type", "description", "unit", "filter", "value",
    "value_on_error", "scale", "labels", "values", "multiline", "value_regex", "observe",
    "buckets", "sum", "count", "cumulative", "quantiles", "max_age", "age_buckets", "states"};

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

std::optional<double> bucketBound(const std::string &text)
{
	std::string t = lower(text);
	if (t == "+inf" || t == "inf" || t == ".inf" || t == "+.inf")
		return std::numeric_limits<double>::infinity();
	auto d = numberFromText(text);
	if (d && std::isnan(*d))
		return std::nullopt;
	return d;
}

std::string listKeys(const std::vector<std::string> &keys)
{
	std::string out;
	for (const auto &k : keys)
		out += (out.empty() ? "" : ", ") + k;
	return out;
}


std::optional<uint64_t> Loader::getSize(Node n, const std::string &what)
{
	if (!n->isScalar() || isNull(n)) {
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
			if (v->isSequence()) {
				for (Node item : v->items)
					if (auto s = getString(item, "listen"))
						addrs.emplace_back(*s, item);
				if (addrs.empty() && v->items.empty())
					error(v, "'listen' needs at least one address");
			} else if (v->isScalar() && !isNull(v)) {
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
			if (includeNode_)
				error(k, "give 'include' either at the top level or under 'exporter', "
				    "not both");
			else
				includeNode_ = v;
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
	eachPair(n, [&](const std::string &key, Node k, Node v) {
		// Within a file eachPair refuses a duplicate; across files, here.
		auto [it, fresh] = serviceKeys_.emplace(key, at(k));
		if (!fresh) {
			error(k, "service '" + key + "' is already defined at " + it->second.str() +
			    "; a service key is unique across the main and included files");
			return;
		}
		loadService(key, k, v);
	});
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

// "$$" pairs are escapes; "${NAME}" is what getString refuses.
bool Loader::checkDollars(Node n, const std::string &t, const std::string &what)
{
	for (size_t i = 0; i + 1 < t.size(); i++) {
		if (t[i] != '$')
			continue;
		if (t[i + 1] == '$') {
			i++;
			continue;
		}
		if (t[i + 1] != '{')
			continue;
		size_t close = t.find('}', i + 2);
		std::string name = t.substr(i + 2, close == std::string::npos ? std::string::npos :
		    close - i - 2);
		if (close == std::string::npos) {
			error(n, "'" + what + "' has a '${' without its '}' (write $$ for a literal $)");
		} else if (n->use && std::count(n->unresolved.begin(), n->unresolved.end(), name)) {
			error(n, "'" + what + "' refers to ${" + name + "}, but the template is given "
			    "no value for it: add '" + name + "' under 'vars' where it is used, or as "
			    "a default under the template's own 'vars'");
		} else {
			error(n, "'" + what + "' refers to ${" + name + "}, which is not a variable "
			    "here: ${env:NAME} reads pmed's environment, ${NAME} is a variable of a "
			    "template; write $${" + name + "} for the text itself");
		}
		return false;
	}
	return true;
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
		md.typeNode = v;
		if (auto t = keyword(v, key, "metric type", types, {MetricType::Counter,
		    MetricType::Gauge, MetricType::Histogram, MetricType::Summary,
		    MetricType::Info, MetricType::StateSet, MetricType::Untyped},
		    "counter, gauge, histogram, summary, info, stateset or untyped", &md.typeBad))
			m.type = *t;
	} else if (key == "description") {
		if (auto s = getString(v, key)) {
			m.description = *s;
			md.descriptionGiven = true;
		}
	} else if (key == "unit") {
		md.unitNode = v;
		if (auto s = getNonEmpty(v, key)) {
			// As OpenMetrics has it: a suffix of the metric's name.
			bool ok = std::all_of(s->begin(), s->end(), [](char c) {
				return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
			});
			if (ok)
				m.unit = *s;
			else
				error(v, "'unit' must be lower-case letters, digits and '_' "
				    "(seconds, bytes, celsius...), got " + describe(v));
		}
	} else if (key == "filter") {
		md.filterNode = v;
		if (auto s = getNonEmpty(v, key))
			m.filter = *s;
	} else if (key == "value") {
		md.valueNode = v;
		if (v->isScalar() && !isNull(v)) {
			bool range = false;
			auto num = plain(v) ? numberFromText(text(v), &range) : std::nullopt;
			if (num)
				m.staticValue = num;
			else if (range)
				error(v, "the number " + describe(v) + " for 'value' is out of range");
			else if (auto s = getRaw(v, key))
				m.valueTemplate = *s;
		} else {
			error(v, "expected a number or a template such as \"$1\" for 'value', "
			    "got " + describe(v));
		}
	} else if (key == "value_on_error") {
		md.valueOnErrorNode = v;
		if (auto d = getNumber(v, key))
			m.valueOnError = *d;
	} else if (key == "scale") {
		md.scaleNode = v;
		if (auto d = getNumber(v, key)) {
			if (!std::isfinite(*d) || *d == 0)
				error(v, "'scale' must be a finite number other than 0, got " +
				    describe(v));
			else
				m.scale = *d;
		}
	} else if (key == "labels") {
		getLabels(v, key, m.labels, &md.labelKeyNodes, &md.labelValueNodes, true);
	} else if (key == "values") {
		md.valuesNode = v;
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
		return typeKey(md, key, v);
	}
	return true;
}

// The keys of histograms, summaries and statesets; which type may have
// which is checked with the rest of the metric.
bool Loader::typeKey(MetricDraft &md, const std::string &key, Node v)
{
	auto &m = md.m;
	if (key == "observe") {
		if (auto b = getBool(v, key))
			m.observe = *b;
	} else if (key == "buckets") {
		md.bucketsNode = v;
		if (v->isSequence()) {
			m.bucketBounds = getNumbers(v, key);
		} else if (v->isMapping()) {
			md.bucketsMapped = true;
			eachPair(v, [&](const std::string &le, Node kn, Node filter) {
				auto bound = bucketBound(le);
				if (!bound) {
					error(kn, "bucket bound '" + le + "' is not a number: write the "
					    "upper bound of the bucket, such as 0.5, 10 or +Inf");
					return;
				}
				if (auto f = getNonEmpty(filter, "buckets." + le)) {
					m.bucketFilters.emplace_back(*bound, *f);
					md.bucketFilterNodes.push_back(filter);
				}
			});
		} else {
			error(v, "expected a list of bucket bounds (observe: true) or a mapping of "
			    "bucket bounds to filters for 'buckets', got " + describe(v));
		}
	} else if (key == "sum" || key == "count") {
		(key == "sum" ? md.sumNode : md.countNode) = v;
		if (auto f = getNonEmpty(v, key))
			(key == "sum" ? m.sumFilter : m.countFilter) = *f;
	} else if (key == "cumulative") {
		if (auto b = getBool(v, key))
			m.cumulative = *b;
	} else if (key == "quantiles") {
		if (v->isSequence())
			m.quantiles = getNumbers(v, key);
		else
			error(v, "expected a list of quantiles such as [0.5, 0.9, 0.99] for "
			    "'quantiles', got " + describe(v));
	} else if (key == "max_age") {
		if (auto d = getDuration(v, key))
			m.maxAge = *d;
	} else if (key == "age_buckets") {
		auto d = getNumber(v, key);
		if (d && (*d < 1 || *d > 100 || *d != std::floor(*d)))
			error(v, "'age_buckets' must be a whole number from 1 to 100, got " +
			    describe(v));
		else if (d)
			m.ageBuckets = static_cast<unsigned>(*d);
	} else if (key == "states") {
		if (!v->isSequence()) {
			error(v, "expected a list of state names for 'states', got " + describe(v));
		} else {
			for (Node item : v->items)
				if (auto st = getNonEmpty(item, "states"))
					m.states.push_back(*st);
		}
	} else {
		return false;
	}
	md.typeKeyNodes.emplace_back(key, v);
	return true;
}

// Each number of a list; the wrong ones are reported.
std::vector<double> Loader::getNumbers(Node list, const std::string &what)
{
	std::vector<double> out;
	for (Node item : list->items)
		if (auto d = getNumber(item, what))
			out.push_back(*d);
	return out;
}

// The keys of an http source's request.
bool Loader::httpKey(GroupDraft &gd, const std::string &key, Node v)
{
	auto &h = gd.g.http;
	if (key == "method") {
		if (auto s = getNonEmpty(v, key)) {
			if (!httpToken(*s))
				error(v, "invalid HTTP method '" + *s + "': use a method name such as "
				    "GET or POST");
			else
				h.method = upper(*s);
		}
	} else if (key == "body") {
		if (auto s = getString(v, key))
			h.body = *s;
	} else if (key == "headers") {
		getPairs(v, key, h.headers, &gd.headerKeyNodes, &gd.headerValueNodes);
	} else if (key == "basic_auth") {
		if (!expectMapping(v, key))
			return true;
		Node user = nullptr;
		eachPair(v, [&](const std::string &k, Node kn, Node val) {
			if (k == "username") {
				user = val;
				if (auto s = getNonEmpty(val, "basic_auth.username"))
					h.username = *s;
			} else if (k == "password") {
				if (auto s = getString(val, "basic_auth.password"))
					h.password = *s;
			} else if (k == "password_file") {
				if (auto s = getNonEmpty(val, "basic_auth.password_file"))
					h.passwordFile = *s;
			} else {
				unknownKey(kn, k, "basic_auth", basicAuthKeys);
				gd.authBad = true;
			}
		});
		if (!user && !gd.authBad)
			error(v, "basic_auth needs a 'username'");
	} else if (key == "bearer") {
		if (!expectMapping(v, key))
			return true;
		eachPair(v, [&](const std::string &k, Node kn, Node val) {
			if (k == "token") {
				if (auto s = getNonEmpty(val, "bearer.token"))
					h.token = *s;
			} else if (k == "token_file") {
				if (auto s = getNonEmpty(val, "bearer.token_file"))
					h.tokenFile = *s;
			} else {
				unknownKey(kn, k, "bearer", bearerKeys);
				gd.authBad = true;
			}
		});
	} else if (key == "max_redirects") {
		if (auto n = getNumber(v, key)) {
			if (*n < 0 || *n > 20 || *n != std::floor(*n))
				error(v, "'max_redirects' must be a whole number from 0 to 20, got " +
				    describe(v));
			else
				h.maxRedirects = static_cast<int>(*n);
		}
	} else if (key == "http_cache") {
		if (auto b = getBool(v, key))
			h.cache = *b;
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
		    SourceType::Http, SourceType::File, SourceType::Static},
		    "command, http, file or static", &gd.sourceTypeBad)) {
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
	} else if (key == "max_series") {
		if (auto n = getNumber(v, key)) {
			if (*n < 1 || *n > static_cast<double>(maxSeriesLimit) || *n != std::floor(*n))
				error(v, "'max_series' must be a whole number from 1 to " +
				    std::to_string(maxSeriesLimit) + ", got " + describe(v));
			else
				g.maxSeries = static_cast<size_t>(*n);
		}
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
	} else if (httpKey(gd, key, v)) {
		gd.httpNodes.emplace_back(key, v);
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
	if (v->isSequence()) {
		for (Node item : v->items)
			one(item);
	} else if (v->isScalar() && !isNull(v)) {
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
	if (n->isScalar() && n->literalLine && !n->use && offset <= n->value.size()) {
		const auto &value = n->value;
		bool ascii = std::all_of(value.begin(), value.begin() +
		    static_cast<std::ptrdiff_t>(offset), [](unsigned char c) { return c < 0x80; });
		int quote = n->style == YamlNode::Style::Plain ? 0 : 1;
		if (ascii)
			where.column += quote + static_cast<int>(offset);
	}
	if (n->use)
		rest += " (in template '" + n->use->name + "' used at " + n->use->usedAt.str() + ")";
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
		else if (k == "use" || k == "vars")
			error(kn, "templates are for groups: make '" + key + "' a group under "
			    "metric_groups to use one");
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
			if (v->isScalar()) {
				if (auto str = getNonEmpty(v, "run_as"))
					s.runAs.user = *str;
			} else if (v->isMapping()) {
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
				if (k == "metric_groups") {
					if (Node body = expandUse(gv))
						sd.groups.push_back(loadGroup(gk, gkn, body, sd));
				} else
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
			if (!v->isSequence()) {
				error(v, "expected a list of absolute paths for 'sandbox.landlock' "
				    "(as in [/usr, /etc/nginx]), got " + describe(v));
				return;
			}
			for (Node item : v->items) {
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


} // namespace pme::common::load
