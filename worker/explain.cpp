// SPDX-License-Identifier: ISC
// pmed --explain: the report of one group's cycle, as text for a terminal.
//
// `pmed --explain nginx/status` is what an operator runs when a metric is
// missing.  The worker collects the group once, through the same source
// and extractors as always, and this module writes down what happened:
// the command or URL and the user it ran as, how the read went, the data
// read, what each filter selected in it, the samples that resulted and
// every error.
//
// The extractors build samples and stop at the first problem; they do not
// keep what a filter matched.  Rather than teach them to, the report runs
// each filter again on the same content, compiled the same way (PCRE2 in
// UTF mode on repaired text, common::JsonPath on the parsed document,
// common::compileXPath with the group's namespaces), and lists the
// matches with their captures, or the selected nodes with their paths and
// values.  The samples shown are the result's own, so that a difference
// between the two (a value that does not parse) shows as an error, not as
// a made-up sample.  This costs a second parse of the content once, when
// an operator asked for it, and nothing in normal operation.
//
// The report goes to a terminal: everything that came from the source is
// escaped by explainEscape(), which lets valid UTF-8 through and turns
// control characters (an ANSI escape in a command's output, a NUL) and
// invalid bytes into visible \x1b, \0, \xff.  The supervisor filters the
// text again, since it does not trust a worker.
#include "explain.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <optional>

#include <libxml/xpathInternals.h>

#include "common/c_deleter.hpp"
#include "common/json_path.hpp"
#include "common/utf8.hpp"
#include "common/xpath.hpp"
#include "json_extractor.hpp"
#include "observation.hpp"
#include "text_extractor.hpp"
#include "text_util.hpp"
#include "xml_extractor.hpp"

namespace pme::worker {

using common::ContentType;
using common::GroupConfig;
using common::GroupResult;
using common::MetricConfig;
using common::SourceType;

namespace {

// Matches counted before the report says "more than".
constexpr size_t kMaxCounted = 10000;
constexpr size_t kRuleWidth = 72;

const char *cc(const xmlChar *s)
{
	return reinterpret_cast<const char *>(s);
}

// "== title ====" or "-- title ----" to the rule width.
void rule(std::string &out, char c, const std::string &title)
{
	std::string head(2, c);
	head += ' ';
	head += title;
	head += ' ';
	if (head.size() < kRuleWidth)
		head.append(kRuleWidth - head.size(), c);
	out += head;
	out += '\n';
}

// "name      value": a field of the header and read sections.
void field(std::string &out, const char *name, const std::string &value)
{
	std::string n(name);
	n.resize(std::max<size_t>(n.size() + 1, 10), ' ');
	out += n;
	out += value;
	out += '\n';
}

std::string plural(size_t n, const char *one, const char *many)
{
	return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string bytesText(uint64_t n)
{
	if (n >= 1024 && n % (1024 * 1024) == 0)
		return std::to_string(n / (1024 * 1024)) + " MiB";
	if (n >= 1024 && n % 1024 == 0)
		return std::to_string(n / 1024) + " KiB";
	return plural(static_cast<size_t>(n), "byte", "bytes");
}

// A local server answers in well under a millisecond: those read in ms.
std::string seconds(double s)
{
	char buf[32];
	if (s < 1)
		std::snprintf(buf, sizeof(buf), "%.3g ms", s * 1000);
	else
		std::snprintf(buf, sizeof(buf), "%.3f s", s);
	return buf;
}

// A sample value as the exposition writes it.
std::string valueText(double v)
{
	if (std::isnan(v))
		return "NaN";
	if (std::isinf(v))
		return v > 0 ? "+Inf" : "-Inf";
	char buf[32];
	bool integral = std::fabs(v) <= 9007199254740992.0 && v == std::trunc(v);
	auto res = integral ? std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed)
	    : std::to_chars(buf, buf + sizeof(buf), v);
	return std::string(buf, res.ptr);
}

// A value from the source between double quotes, cut to max bytes.
std::string quote(std::string_view text, size_t max)
{
	std::string shown = explainEscape(text.substr(0, std::min(text.size(), max)),
	    Escape::Quoted);
	std::string out = "\"" + shown + "\"";
	if (text.size() > max)
		out += "... (" + bytesText(text.size()) + ")";
	return out;
}

// A command's argument as a shell would need it written.
std::string shellWord(const std::string &arg)
{
	bool plain = !arg.empty() && std::all_of(arg.begin(), arg.end(), [](char c) {
		return std::isalnum(static_cast<unsigned char>(c)) ||
		    std::string_view("-_./=:,+%@").find(c) != std::string_view::npos;
	});
	if (plain)
		return arg;
	std::string out = "'";
	for (char c : arg) {
		if (c == '\'')
			out += "'\\''";
		else
			out += c;
	}
	return out + "'";
}

std::string sourceText(const GroupConfig &g)
{
	switch (g.sourceType) {
	case SourceType::Command: {
		if (g.shell)
			return "command /bin/sh -c " + shellWord(g.source);
		if (g.argv.empty())
			return "command " + g.source;
		std::string s = "command";
		for (const auto &a : g.argv)
			s += " " + shellWord(a);
		return s;
	}
	case SourceType::Http: {
		std::string s = "http " + g.http.method + " " + g.source;
		if (!g.http.username.empty())
			s += " (basic auth as " + g.http.username + ")";
		else if (!g.http.token.empty() || !g.http.tokenFile.empty())
			s += " (bearer token)";
		return s;
	}
	case SourceType::File:
		return "file " + g.source;
	case SourceType::Static:
		return "static (nothing is read)";
	}
	return "?";
}

std::string identityText(const ExplainIdentity &who)
{
	std::string s = "user ";
	s += who.user.empty() ? "?" : who.user;
	s += " (uid " + std::to_string(who.uid) + "), group ";
	s += who.group.empty() ? "?" : who.group;
	s += " (gid " + std::to_string(who.gid) + ")";
	return s;
}

void header(std::string &out, const common::ServiceConfig &service, const GroupConfig &g,
    const ExplainIdentity &who)
{
	rule(out, '=', service.name + "/" + g.key);
	field(out, "service", service.name);
	field(out, "group", g.key + (g.standalone ? " (standalone metric)" : ""));
	field(out, "source", explainEscape(sourceText(g), Escape::Line));
	if (g.sourceType != SourceType::Static)
		field(out, "content", common::toString(g.contentType));
	field(out, "ran as", identityText(who));
	if (g.sourceType != SourceType::Static)
		field(out, "limits", "timeout " + common::formatDuration(g.timeout) +
		    ", max_output " + bytesText(g.maxOutput));
	out += '\n';
}

void readSection(std::string &out, const GroupConfig &g, const SourceRead &read,
    const GroupResult &result)
{
	rule(out, '-', "read");
	if (read.ok)
		field(out, "result", "ok");
	else
		field(out, "result", "FAILED: " + explainEscape(read.error, Escape::Line));
	if (g.sourceType == SourceType::Command) {
		std::string s;
		if (read.exitStatus < 0)
			s = "none (the command did not run to its end)";
		else if (read.exitStatus > 128)
			s = std::to_string(read.exitStatus) + " (killed by signal " +
			    std::to_string(read.exitStatus - 128) + ")";
		else
			s = std::to_string(read.exitStatus);
		field(out, "exit", s);
	}
	if (g.sourceType == SourceType::Http) {
		std::string s = read.httpStatus > 0 ? std::to_string(read.httpStatus) : "no response";
		if (read.responseSeconds >= 0)
			s += ", response in " + seconds(read.responseSeconds);
		field(out, "http", s);
	}
	if (g.sourceType != SourceType::Static) {
		std::string s = bytesText(read.content.size());
		s += read.truncated ? ", TRUNCATED at max_output " + bytesText(g.maxOutput) :
		    ", not truncated";
		field(out, "read", s);
		field(out, "cached", read.cached ?
		    "yes: the content of an earlier read was reused" : "no");
	}
	field(out, "duration", seconds(result.duration));
	out += '\n';
}

void dataSection(std::string &out, const GroupConfig &g, const SourceRead &read,
    const ExplainLimits &limits)
{
	if (g.sourceType == SourceType::Static)
		return;
	std::string_view data = read.content;
	size_t lines = static_cast<size_t>(std::count(data.begin(), data.end(), '\n'));
	bool lastOpen = !data.empty() && data.back() != '\n';
	if (lastOpen)
		lines++;
	rule(out, '-', "data read: " + plural(lines, "line", "lines") + ", " +
	    bytesText(data.size()));
	if (data.empty()) {
		out += "(nothing)\n\n";
		return;
	}
	size_t width = std::to_string(std::min(lines, limits.dataLines)).size();
	size_t pos = 0, line = 0, budget = limits.dataBytes;
	bool cut = false;
	while (pos < data.size() && line < limits.dataLines && budget > 0) {
		size_t nl = data.find('\n', pos);
		size_t end = nl == std::string_view::npos ? data.size() : nl;
		std::string_view text = data.substr(pos, end - pos);
		pos = nl == std::string_view::npos ? data.size() : nl + 1;
		line++;
		std::string number = std::to_string(line);
		out += std::string(width - std::min(width, number.size()), ' ') + number + " | ";
		if (text.size() > budget) {
			// A long line (minified JSON): its start, cut at a
			// character boundary when there is one near.
			size_t n = budget;
			for (size_t k = 0; k < 3 && n > 0 &&
			    (static_cast<unsigned char>(text[n]) & 0xc0) == 0x80; k++)
				n--;
			out += explainEscape(text.substr(0, n), Escape::Lines);
			out += " ... (" + bytesText(text.size() - n) + " more on this line)\n";
			cut = true;
			break;
		}
		out += explainEscape(text, Escape::Lines);
		out += '\n';
		budget -= text.size();
	}
	std::string_view rest = data.substr(pos);
	size_t restLines = static_cast<size_t>(std::count(rest.begin(), rest.end(), '\n')) +
	    (lastOpen && !rest.empty() ? 1 : 0);
	if (restLines > 0)
		out += "... " + plural(restLines, "more line", "more lines") + " (" +
		    bytesText(rest.size()) + ") not shown\n";
	else if (read.truncated)
		out += "(cut here at max_output)\n";
	else if (lastOpen && !cut)
		out += "(no newline at the end)\n";
	out += '\n';
}

// ---- what the filters select ---------------------------------------------

struct TextFilter {
	common::CPtr<pcre2_code> code;
	common::CPtr<pcre2_match_data> data;
	common::CPtr<pcre2_match_context> context;
	std::vector<std::string> names;   // by capture number; "" when unnamed
	bool crlf = false;
};

std::string compileText(TextFilter &f, const MetricConfig &m, bool multiline)
{
	uint32_t options = PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C;
	if (multiline)
		options |= PCRE2_MULTILINE;
	int err = 0;
	PCRE2_SIZE offset = 0;
	f.code.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(m.filter.data()), m.filter.size(),
	    options, &err, &offset, nullptr));
	if (!f.code)
		return pcre2Message(err) + " at offset " + std::to_string(offset);
	f.data.reset(pcre2_match_data_create_from_pattern(f.code.get(), nullptr));
	f.context.reset(pcre2_match_context_create(nullptr));
	if (!f.data || !f.context)
		throw std::bad_alloc();
	pcre2_set_match_limit(f.context.get(), kFilterMatchLimit);
	pcre2_set_depth_limit(f.context.get(), kFilterDepthLimit);
	pcre2_set_heap_limit(f.context.get(), kFilterHeapLimitKiB);

	uint32_t captures = 0, newline = 0, count = 0, size = 0;
	PCRE2_SPTR table = nullptr;
	pcre2_pattern_info(f.code.get(), PCRE2_INFO_CAPTURECOUNT, &captures);
	pcre2_pattern_info(f.code.get(), PCRE2_INFO_NEWLINE, &newline);
	pcre2_pattern_info(f.code.get(), PCRE2_INFO_NAMECOUNT, &count);
	pcre2_pattern_info(f.code.get(), PCRE2_INFO_NAMEENTRYSIZE, &size);
	pcre2_pattern_info(f.code.get(), PCRE2_INFO_NAMETABLE, &table);
	f.crlf = newline == PCRE2_NEWLINE_ANY || newline == PCRE2_NEWLINE_CRLF ||
	    newline == PCRE2_NEWLINE_ANYCRLF;
	f.names.assign(captures + 1, std::string());
	for (uint32_t i = 0; i < count && table != nullptr; i++) {
		PCRE2_SPTR entry = table + static_cast<size_t>(i) * size;
		uint32_t n = (static_cast<uint32_t>(entry[0]) << 8) | entry[1];
		if (n < f.names.size())
			f.names[n] = cc(entry + 2);
	}
	return {};
}

void textMatches(std::string &out, const MetricConfig &m, const GroupConfig &g,
    std::string_view text, const ExplainLimits &limits)
{
	TextFilter f;
	if (std::string err = compileText(f, m, g.multiline); !err.empty()) {
		out += "  the filter does not compile: " + explainEscape(err, Escape::Line) + "\n";
		return;
	}
	auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
	size_t length = text.size(), offset = 0, count = 0;
	size_t line = 1, counted = 0;   // newlines counted up to `counted`
	uint32_t options = 0;
	std::string shown, failure;
	while (offset <= length && count <= kMaxCounted) {
		int rc = pcre2_match(f.code.get(), subject, length, offset,
		    options | PCRE2_NO_UTF_CHECK, f.data.get(), f.context.get());
		if (rc == PCRE2_ERROR_NOMATCH) {
			if (options == 0)
				break;
			// As the extractor: an empty match is not repeated here.
			options = 0;
			size_t next = offset + 1;
			if (f.crlf && offset + 1 < length && text[offset] == '\r' &&
			    text[offset + 1] == '\n')
				next = offset + 2;
			while (next < length && (static_cast<unsigned char>(text[next]) & 0xc0) == 0x80)
				next++;
			offset = next;
			continue;
		}
		if (rc < 0) {
			failure = pcre2Message(rc);
			break;
		}
		const size_t *ov = pcre2_get_ovector_pointer(f.data.get());
		if (ov[0] > ov[1]) {
			failure = "\\K moved the match start past its end";
			break;
		}
		count++;
		if (count <= limits.matches) {
			line += static_cast<size_t>(std::count(text.begin() + static_cast<long>(counted),
			    text.begin() + static_cast<long>(ov[0]), '\n'));
			counted = ov[0];
			shown += "    #" + std::to_string(count) + " line " + std::to_string(line) + ": " +
			    quote(text.substr(ov[0], ov[1] - ov[0]), limits.valueBytes) + "\n";
			for (size_t n = 1; n < f.names.size(); n++) {
				shown += "        $" + std::to_string(n);
				if (!f.names[n].empty())
					shown += " " + f.names[n];
				if (static_cast<int>(n) >= rc || ov[2 * n] == PCRE2_UNSET)
					shown += " (not set)\n";
				else
					shown += " = " + quote(text.substr(ov[2 * n], ov[2 * n + 1] - ov[2 * n]),
					    limits.valueBytes) + "\n";
			}
		}
		options = ov[0] == ov[1] ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
		offset = ov[1];
	}
	if (count == 0 && failure.empty()) {
		out += "  matched  nothing\n";
		return;
	}
	if (count > kMaxCounted)
		out += "  matched  more than " + std::to_string(kMaxCounted) + " times\n";
	else if (count > 0)
		out += "  matched  " + plural(count, "time", "times") + "\n";
	out += shown;
	if (count > limits.matches)
		out += "    and " + (count > kMaxCounted ? "more than " +
		    std::to_string(kMaxCounted - limits.matches) : std::to_string(count - limits.matches)) +
		    " more\n";
	if (!failure.empty())
		out += "  the match stopped: " + explainEscape(failure, Escape::Line) + "\n";
}

void jsonMatches(std::string &out, const MetricConfig &m, json_t *root,
    const ExplainLimits &limits)
{
	auto path = common::JsonPath::compile(m.filter);
	if (!path) {
		out += "  the filter does not compile: " +
		    explainEscape(path.error().message, Escape::Line) + "\n";
		return;
	}
	std::vector<common::JsonPath::Node> nodes = path->evaluate(root);
	if (nodes.empty()) {
		out += std::string("  selected nothing") + (path->singular() ? "" :
		    " (for a query with wildcards or filters this is not an error)") + "\n";
		return;
	}
	out += "  selected " + plural(nodes.size(), "node", "nodes") + "\n";
	for (size_t i = 0; i < nodes.size() && i < limits.matches; i++) {
		std::string text;
		if (char *dump = json_dumps(nodes[i].value, JSON_ENCODE_ANY | JSON_COMPACT)) {
			text = dump;
			free(dump);
		}
		std::string shown = explainEscape(common::shorten(text, limits.valueBytes),
		    Escape::Line);
		out += "    " + explainEscape(common::JsonPath::normalizedPath(nodes[i]), Escape::Line) +
		    " = " + shown + "\n";
	}
	if (nodes.size() > limits.matches)
		out += "    and " + std::to_string(nodes.size() - limits.matches) + " more\n";
}

std::string xmlNodePath(xmlNode *n)
{
	if (n->type == XML_NAMESPACE_DECL) {
		const xmlChar *prefix = reinterpret_cast<xmlNs *>(n)->prefix;
		return std::string("namespace::") + (prefix != nullptr ? cc(prefix) : "");
	}
	xmlChar *p = xmlGetNodePath(n);
	if (p == nullptr)
		return "?";
	std::string s = cc(p);
	xmlFree(p);
	return s;
}

void xmlMatches(std::string &out, const MetricConfig &m, const GroupConfig &g,
    const XmlDocument &doc, const ExplainLimits &limits)
{
	auto compiled = common::compileXPath(m.filter, g.namespaces);
	if (!compiled) {
		out += "  the filter does not compile: " +
		    explainEscape(compiled.error().message, Escape::Line) + "\n";
		return;
	}
	common::XmlErrorCapture capture;
	common::CPtr<xmlXPathContext> ctx(xmlXPathNewContext(doc.get()));
	if (!ctx)
		throw std::bad_alloc();
	ctx->node = reinterpret_cast<xmlNode *>(doc.get());
	ctx->opLimit = kXPathOpLimit;
	for (const auto &[prefix, uri] : g.namespaces)
		if (xmlXPathRegisterNs(ctx.get(), reinterpret_cast<const xmlChar *>(prefix.c_str()),
		    reinterpret_cast<const xmlChar *>(uri.c_str())) != 0)
			throw std::bad_alloc();
	common::CPtr<xmlXPathObject> result(xmlXPathCompiledEval(compiled->expr.get(), ctx.get()));
	if (!result) {
		out += "  the filter fails: " +
		    explainEscape(common::xpathMessage(capture.first()), Escape::Line) + "\n";
		return;
	}
	switch (result->type) {
	case XPATH_NUMBER:
		out += "  gives the number " + valueText(result->floatval) + "\n";
		return;
	case XPATH_BOOLEAN:
		out += std::string("  gives the boolean ") + (result->boolval ? "true" : "false") +
		    "\n";
		return;
	case XPATH_STRING:
		out += "  gives the string " + quote(result->stringval != nullptr ?
		    cc(result->stringval) : "", limits.valueBytes) + "\n";
		return;
	default:
		break;
	}
	xmlNodeSet *set = result->nodesetval;
	size_t count = set != nullptr ? static_cast<size_t>(set->nodeNr) : 0;
	if (count == 0) {
		out += "  selected nothing (an empty node-set is not an error)\n";
		return;
	}
	out += "  selected " + plural(count, "node", "nodes") + "\n";
	for (size_t i = 0; i < count && i < limits.matches; i++) {
		xmlNode *n = set->nodeTab[i];
		out += "    " + explainEscape(xmlNodePath(n), Escape::Line) + " = " +
		    quote(xmlStringValue(n), limits.valueBytes) + "\n";
	}
	if (count > limits.matches)
		out += "    and " + std::to_string(count - limits.matches) + " more\n";
}

const common::Family *findFamily(const GroupResult &r, const std::string &name)
{
	for (const auto &f : r.families)
		if (f.name == name)
			return &f;
	return nullptr;
}

void metricErrorsOf(std::string &out, const GroupResult &r, const std::string &name)
{
	for (const auto &[family, message] : r.metricErrors)
		if (family == name)
			out += "  ERROR    " + explainEscape(message, Escape::Line) + "\n";
}

void importSection(std::string &out, const GroupConfig &g, const GroupResult &r)
{
	const auto &imp = g.import;
	if (!imp.prefix.empty())
		out += "prefix    " + imp.prefix + "\n";
	for (const auto &re : imp.include)
		out += "include   " + explainEscape(re, Escape::Line) + "\n";
	for (const auto &re : imp.exclude)
		out += "exclude   " + explainEscape(re, Escape::Line) + "\n";
	if (r.families.empty()) {
		out += "imported nothing\n";
		return;
	}
	out += "imported " + plural(r.families.size(), "family", "families") + ":\n";
	for (const auto &f : r.families)
		out += "  " + f.name + " (" + common::toString(f.type) + "): " +
		    plural(f.samples.size(), "sample", "samples") + "\n";
}

void metricsSection(std::string &out, const GroupConfig &g, const SourceRead &read,
    const GroupResult &r, const ExplainLimits &limits)
{
	rule(out, '-', g.contentType == ContentType::Prometheus ? "import" : "metrics");
	if (g.contentType == ContentType::Prometheus) {
		importSection(out, g, r);
		out += '\n';
		return;
	}

	// Why the filters did not run, when they did not.
	std::string notRun;
	if (!read.ok)
		notRun = "not run: the read failed";
	else if (read.truncated && g.contentType != ContentType::Text)
		notRun = "not run: the document was cut at max_output";

	std::string repaired;
	std::string_view content = read.content;
	std::optional<JsonDocument> json;
	std::optional<XmlDocument> xml;
	if (notRun.empty() && g.sourceType != SourceType::Static) {
		std::string parseError;
		switch (g.contentType) {
		case ContentType::Text:
			// As the extractor matches: on repaired text.
			if (!common::validUtf8(content)) {
				repaired = common::sanitizeUtf8(content);
				content = repaired;
			}
			break;
		case ContentType::Json:
			if (auto d = JsonDocument::parse(content))
				json.emplace(std::move(*d));
			else
				parseError = d.error().message;
			break;
		case ContentType::Xml:
			if (auto d = XmlDocument::parse(content))
				xml.emplace(std::move(*d));
			else
				parseError = d.error().message;
			break;
		case ContentType::Prometheus:
			break;
		}
		if (!parseError.empty()) {
			out += "The document does not parse: " + explainEscape(parseError, Escape::Line) +
			    "\n\n";
			notRun = "not run: the document does not parse";
		}
	}

	if (g.metrics.empty())
		out += "(no metrics declared)\n";
	for (size_t i = 0; i < g.metrics.size(); i++) {
		const MetricConfig &m = g.metrics[i];
		if (i > 0)
			out += '\n';
		out += m.name + " (" + common::toString(m.type) + ")\n";
		if (g.sourceType == SourceType::Static) {
			out += "  value    " + (m.staticValue ? valueText(*m.staticValue) :
			    std::string("(none)")) + "\n";
		} else {
			// A histogram read field by field has a filter per part.
			std::vector<std::pair<std::string, std::string>> filters;
			if (m.mappedHistogram()) {
				for (const auto &[le, filter] : m.bucketFilters)
					filters.emplace_back("bucket le=\"" + formatLe(le) + "\"", filter);
				if (!m.sumFilter.empty())
					filters.emplace_back("sum", m.sumFilter);
				if (!m.countFilter.empty())
					filters.emplace_back("count", m.countFilter);
			} else {
				filters.emplace_back("", m.filter);
			}
			for (const auto &[part, filter] : filters) {
				if (!part.empty())
					out += "  " + part + "\n";
				out += "  filter   " + (filter.empty() ? std::string("(none)") :
				    explainEscape(filter, Escape::Line)) + "\n";
				MetricConfig one = m;
				one.filter = filter;
				if (!notRun.empty())
					out += "  " + notRun + "\n";
				else if (g.contentType == ContentType::Text)
					textMatches(out, one, g, content, limits);
				else if (json)
					jsonMatches(out, one, json->root(), limits);
				else if (xml)
					xmlMatches(out, one, g, *xml, limits);
			}
		}
		const common::Family *f = findFamily(r, m.name);
		size_t n = f != nullptr ? f->samples.size() : 0;
		out += "  gave     " + plural(n, "sample", "samples") + "\n";
		metricErrorsOf(out, r, m.name);
	}
	out += '\n';
}

void appendLabelValue(std::string &out, std::string_view v)
{
	// The exposition's escapes, then the terminal's for the rest.
	out += explainEscape(v, Escape::Quoted);
}

void samplesSection(std::string &out, const common::ServiceConfig &service,
    const GroupResult &r)
{
	size_t total = 0;
	for (const auto &f : r.families)
		total += f.samples.size();
	rule(out, '-', "samples (" + std::to_string(total) + ")");
	if (total == 0)
		out += "(none)\n";
	for (const auto &f : r.families) {
		for (const auto &s : f.samples) {
			out += f.name + s.suffix;
			bool first = true;
			auto label = [&](const std::string &name, const std::string &value) {
				out += first ? '{' : ',';
				first = false;
				out += name + "=\"";
				appendLabelValue(out, value);
				out += '"';
			};
			for (const auto &l : s.labels)
				label(l.name, l.value);
			// pmed adds the service's labels where a sample has none of
			// that name.
			for (const auto &[name, value] : service.labels)
				if (std::none_of(s.labels.begin(), s.labels.end(),
				    [&](const common::Label &l) { return l.name == name; }))
					label(name, value);
			if (!first)
				out += '}';
			out += ' ' + valueText(s.value);
			if (s.timestampMs)
				out += ' ' + std::to_string(*s.timestampMs);
			out += '\n';
		}
	}
	out += '\n';
}

void errorsSection(std::string &out, const GroupResult &r)
{
	size_t n = r.metricErrors.size() + (!r.ok || !r.error.empty() ? 1 : 0);
	rule(out, '-', "errors (" + std::to_string(n) + ")");
	if (n == 0)
		out += "no errors\n";
	if (!r.ok || !r.error.empty())
		out += "group " + r.group + ": " +
		    explainEscape(r.error.empty() ? "failed" : r.error, Escape::Line) + "\n";
	for (const auto &[name, message] : r.metricErrors)
		out += "metric " + name + ": " + explainEscape(message, Escape::Line) + "\n";
	out += '\n';
}

} // namespace

ExplainIdentity currentExplainIdentity()
{
	ExplainIdentity who;
	who.uid = static_cast<uint32_t>(getuid());
	who.gid = static_cast<uint32_t>(getgid());
	if (struct passwd *pw = getpwuid(getuid()); pw != nullptr && pw->pw_name != nullptr)
		who.user = pw->pw_name;
	if (struct group *gr = getgrgid(getgid()); gr != nullptr && gr->gr_name != nullptr)
		who.group = gr->gr_name;
	return who;
}

std::string explainEscape(std::string_view text, Escape how)
{
	const bool quoted = how == Escape::Quoted;
	static const char hex[] = "0123456789abcdef";
	std::string out;
	out.reserve(text.size());
	size_t i = 0;
	while (i < text.size()) {
		auto c = static_cast<unsigned char>(text[i]);
		if (c < 0x80) {
			i++;
			switch (c) {
			case '\n': out += how == Escape::Lines ? "\n" : "\\n"; continue;
			case '\t': out += "\\t"; continue;
			case '\r': out += "\\r"; continue;
			case '\0': out += "\\0"; continue;
			case '"': out += quoted ? "\\\"" : "\""; continue;
			case '\\': out += quoted ? "\\\\" : "\\"; continue;
			default: break;
			}
			if (c < 0x20 || c == 0x7f) {
				out += "\\x";
				out += hex[c >> 4];
				out += hex[c & 0xf];
			} else {
				out += static_cast<char>(c);
			}
			continue;
		}
		size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
		if (len > 0 && i + len <= text.size() && common::validUtf8(text.substr(i, len))) {
			// U+0080..U+009F are C1 controls (0x9b is CSI on some terminals).
			if (c == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0) {
				out += "\\u00";
				out += hex[static_cast<unsigned char>(text[i + 1]) >> 4];
				out += hex[static_cast<unsigned char>(text[i + 1]) & 0xf];
			} else {
				out.append(text.substr(i, len));
			}
			i += len;
			continue;
		}
		out += "\\x";
		out += hex[c >> 4];
		out += hex[c & 0xf];
		i++;
	}
	return out;
}

std::vector<std::string> explainChunks(std::string_view report, size_t max)
{
	std::vector<std::string> out;
	max = std::max<size_t>(max, 4);
	while (!report.empty()) {
		size_t n = std::min(report.size(), max);
		if (n < report.size()) {
			size_t nl = report.rfind('\n', n - 1);
			if (nl != std::string_view::npos && nl + 1 >= n / 2)
				n = nl + 1;
			else
				while (n > 0 && (static_cast<unsigned char>(report[n]) & 0xc0) == 0x80)
					n--;
		}
		out.emplace_back(report.substr(0, n));
		report.remove_prefix(n);
	}
	return out;
}

std::string explainReport(const common::ServiceConfig &service, const GroupConfig &group,
    const SourceRead &read, const GroupResult &result, const ExplainIdentity &who,
    const ExplainLimits &limits)
{
	std::string out;
	header(out, service, group, who);
	readSection(out, group, read, result);
	dataSection(out, group, read, limits);
	metricsSection(out, group, read, result, limits);
	samplesSection(out, service, result);
	errorsSection(out, result);
	return out;
}

} // namespace pme::worker
