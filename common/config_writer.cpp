// SPDX-License-Identifier: ISC
// Write the typed model back as YAML in pme's own keys.
//
// The output goes through libyaml's emitter so that quoting is libyaml's
// business, with two exceptions that depend on how config_loader.cpp reads
// scalars.  A string that a plain scalar would turn into something else
// (empty, null, a boolean, a number: a metric's `value` is a constant when
// it is a plain number and a template otherwise) is written double-quoted,
// and so is every string holding a control character or edge whitespace,
// since double quotes are the one YAML style that escapes everything.
// Numbers are written in their shortest form that reads back to the same
// double, with YAML's .nan/.inf/-.inf; durations with formatDuration().
#include "config_writer.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <new>
#include <stdexcept>

#include "c_deleter.hpp"
#include "fnv.hpp"
#include "yaml_tree.hpp"
#include "proto/frame.h"

namespace pme::common {

namespace {

// Numbers, and .inf/.nan, start with an optional sign, an optional dot
// and a digit (or the i/n of .inf/.nan).
bool startsNumberLike(const std::string &s)
{
	size_t i = 0;
	if (i < s.size() && (s[i] == '+' || s[i] == '-'))
		i++;
	bool dot = i < s.size() && s[i] == '.';
	if (dot)
		i++;
	if (i >= s.size())
		return false;
	char c = s[i];
	return (c >= '0' && c <= '9') || (dot && (c == 'i' || c == 'I' || c == 'n' || c == 'N'));
}

// True when a plain scalar with this text could read back as other than
// this string, or the text is best kept in double quotes.
bool needsDoubleQuotes(const std::string &s)
{
	// "<<" as a plain key would be a merge key.
	if (s.empty() || s.front() == ' ' || s.back() == ' ' || s == "<<")
		return true;
	for (unsigned char c : s)
		if (c < 0x20 || c == 0x7f)
			return true;
	std::string l;
	for (char c : s)
		l += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	static const char *const words[] = {"~", "null", "true", "false", "yes", "no", "on", "off",
		"y", "n"};
	for (const char *w : words)
		if (l == w)
			return true;
	return startsNumberLike(s);
}

std::string numberText(double v)
{
	if (std::isnan(v))
		return ".nan";
	if (std::isinf(v))
		return v > 0 ? ".inf" : "-.inf";
	char buf[64];
	auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
	if (ec != std::errc())
		throw std::logic_error("to_chars failed for a double");
	return std::string(buf, end);
}

class Writer {
public:
	Writer() : emitter_(new yaml_emitter_t{})
	{
		if (!yaml_emitter_initialize(emitter_.get()))
			throw std::bad_alloc();
		yaml_emitter_set_output(emitter_.get(), &Writer::onWrite, this);
		yaml_emitter_set_unicode(emitter_.get(), 1);
		yaml_emitter_set_width(emitter_.get(), -1);
		yaml_emitter_set_indent(emitter_.get(), 2);
		yaml_event_t ev;
		yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
		emit(ev);
		yaml_document_start_event_initialize(&ev, nullptr, nullptr, nullptr, 1);
		emit(ev);
	}

	std::string finish()
	{
		yaml_event_t ev;
		yaml_document_end_event_initialize(&ev, 1);
		emit(ev);
		yaml_stream_end_event_initialize(&ev);
		emit(ev);
		if (!yaml_emitter_flush(emitter_.get()))
			fail();
		return std::move(out_);
	}

	void string(const std::string &s)
	{
		scalar(s, needsDoubleQuotes(s) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE :
		    YAML_ANY_SCALAR_STYLE);
	}

	// Text that must read back as a number, bool or duration.
	// The value of a string field, which the loader reads with "$$" for
	// a '$'; labels and values of metrics are templates, written as they
	// are with string().
	void text(const std::string &s) { string(escapeDollars(s)); }
	void plain(const std::string &s) { scalar(s, YAML_PLAIN_SCALAR_STYLE); }
	void number(double v) { plain(numberText(v)); }
	void boolean(bool b) { plain(b ? "true" : "false"); }
	void duration(Millis d) { plain(formatDuration(d)); }

	void beginMap()
	{
		yaml_event_t ev;
		yaml_mapping_start_event_initialize(&ev, nullptr, nullptr, 1,
		    YAML_BLOCK_MAPPING_STYLE);
		emit(ev);
	}

	void endMap()
	{
		yaml_event_t ev;
		yaml_mapping_end_event_initialize(&ev);
		emit(ev);
	}

	void beginList()
	{
		yaml_event_t ev;
		yaml_sequence_start_event_initialize(&ev, nullptr, nullptr, 1,
		    YAML_BLOCK_SEQUENCE_STYLE);
		emit(ev);
	}

	void endList()
	{
		yaml_event_t ev;
		yaml_sequence_end_event_initialize(&ev);
		emit(ev);
	}

	void pairs(const Pairs &p, bool templates = false)
	{
		beginMap();
		for (const auto &[k, v] : p) {
			string(k);
			if (templates)
				string(v);
			else
				text(v);
		}
		endMap();
	}

private:
	CPtr<yaml_emitter_t> emitter_;
	std::string out_;
	bool outOfMemory_ = false;

	void scalar(const std::string &s, yaml_scalar_style_t style)
	{
		yaml_event_t ev;
		if (!yaml_scalar_event_initialize(&ev, nullptr, nullptr,
		    reinterpret_cast<const yaml_char_t *>(s.data()), static_cast<int>(s.size()),
		    1, 1, style)) {
			// It fails for want of memory or on invalid UTF-8, which the
			// model only holds by a bug.
			if (!pme_proto_valid_utf8(s.data(), s.size()))
				throw std::logic_error("YAML emitter: invalid UTF-8 in '" + s + "'");
			throw std::bad_alloc();
		}
		emit(ev);
	}

	void emit(yaml_event_t &ev)
	{
		if (!yaml_emitter_emit(emitter_.get(), &ev))
			fail();
	}

	[[noreturn]] void fail()
	{
		if (outOfMemory_ || emitter_->error == YAML_MEMORY_ERROR)
			throw std::bad_alloc();
		// The model holds only strings that came from a YAML file or
		// from code: an emitter error is a bug.
		throw std::logic_error(std::string("YAML emitter: ") +
		    (emitter_->problem ? emitter_->problem : "unknown error"));
	}

	static int onWrite(void *data, unsigned char *buffer, size_t size) noexcept
	{
		auto *self = static_cast<Writer *>(data);
		try {
			self->out_.append(reinterpret_cast<const char *>(buffer), size);
		} catch (...) {
			self->outOfMemory_ = true;
			return 0;
		}
		return 1;
	}
};

void numbers(Writer &w, const std::vector<double> &list)
{
	w.beginList();
	for (double d : list)
		w.number(d);
	w.endList();
}

// The keys of histograms, summaries and statesets.
void writeTypeKeys(Writer &w, const MetricConfig &m)
{
	switch (m.type) {
	case MetricType::Histogram:
		if (m.observe) {
			w.string("observe");
			w.boolean(true);
			w.string("buckets");
			numbers(w, m.bucketBounds);
			break;
		}
		w.string("buckets");
		w.beginMap();
		for (const auto &[le, filter] : m.bucketFilters) {
			w.number(le);
			w.text(filter);
		}
		w.endMap();
		if (!m.sumFilter.empty()) {
			w.string("sum");
			w.text(m.sumFilter);
		}
		if (!m.countFilter.empty()) {
			w.string("count");
			w.text(m.countFilter);
		}
		w.string("cumulative");
		w.boolean(m.cumulative);
		break;
	case MetricType::Summary:
		w.string("quantiles");
		numbers(w, m.quantiles);
		w.string("max_age");
		w.duration(m.maxAge);
		w.string("age_buckets");
		w.number(m.ageBuckets);
		break;
	case MetricType::StateSet:
		w.string("states");
		w.beginList();
		for (const auto &state : m.states)
			w.text(state);
		w.endList();
		break;
	default:
		break;
	}
}

void writeMetricKeys(Writer &w, const MetricConfig &m)
{
	w.string("name");
	w.text(m.baseName);
	w.string("type");
	w.string(toString(m.type));
	w.string("description");
	w.text(m.description);
	if (!m.unit.empty()) {
		w.string("unit");
		w.text(m.unit);
	}
	if (!m.filter.empty()) {
		w.string("filter");
		w.text(m.filter);
	}
	if (m.staticValue) {
		w.string("value");
		w.number(*m.staticValue);
	} else if (m.valueTemplate) {
		w.string("value");
		w.string(*m.valueTemplate);
	}
	if (m.valueOnError) {
		w.string("value_on_error");
		w.number(*m.valueOnError);
	}
	if (m.scale != 1) {
		w.string("scale");
		w.number(m.scale);
	}
	if (!m.labels.empty()) {
		w.string("labels");
		w.pairs(m.labels, true);
	}
	if (!m.valueRegex.empty()) {
		w.string("value_regex");
		w.text(m.valueRegex);
	}
	if (!m.values.empty()) {
		w.string("values");
		w.beginMap();
		for (const auto &[k, v] : m.values) {
			w.string(k);
			w.number(v);
		}
		w.endMap();
	}
	writeTypeKeys(w, m);
}

void writeHttpKeys(Writer &w, const HttpConfig &h)
{
	w.string("method");
	w.text(h.method);
	if (!h.body.empty()) {
		w.string("body");
		w.text(h.body);
	}
	if (!h.headers.empty()) {
		w.string("headers");
		w.pairs(h.headers);
	}
	if (!h.username.empty()) {
		w.string("basic_auth");
		w.beginMap();
		w.string("username");
		w.text(h.username);
		w.string(h.passwordFile.empty() ? "password" : "password_file");
		w.text(h.passwordFile.empty() ? h.password : h.passwordFile);
		w.endMap();
	}
	if (!h.token.empty() || !h.tokenFile.empty()) {
		w.string("bearer");
		w.beginMap();
		w.string(h.tokenFile.empty() ? "token" : "token_file");
		w.text(h.tokenFile.empty() ? h.token : h.tokenFile);
		w.endMap();
	}
	w.string("max_redirects");
	w.plain(std::to_string(h.maxRedirects));
	w.string("http_cache");
	w.boolean(h.cache);
}

void writeGroupKeys(Writer &w, const GroupConfig &g)
{
	w.string("source_type");
	w.string(toString(g.sourceType));
	switch (g.sourceType) {
	case SourceType::Command:
		w.string("source");
		if (g.shell) {
			w.text(g.source);
			w.string("shell");
			w.boolean(true);
		} else {
			w.beginList();
			for (const auto &arg : g.argv)
				w.text(arg);
			w.endList();
		}
		break;
	case SourceType::File:
	case SourceType::Http:
		w.string("source");
		w.text(g.source);
		break;
	case SourceType::Static:
		break;
	}
	if (g.sourceType != SourceType::Static) {
		w.string("content_type");
		w.string(toString(g.contentType));
	}
	w.string("interval");
	w.duration(g.effectiveInterval);
	w.string("timeout");
	w.duration(g.timeout);
	w.string("cache_ttl");
	w.duration(g.cacheTtl);
	if (g.staleAfter) {
		w.string("stale_after");
		w.duration(*g.staleAfter);
	}
	w.string("max_output");
	w.plain(std::to_string(g.maxOutput));
	w.string("max_series");
	w.plain(std::to_string(g.maxSeries));
	if (g.multiline) {
		w.string("multiline");
		w.boolean(true);
	}
	if (!g.env.empty()) {
		w.string("env");
		w.pairs(g.env);
	}
	if (!g.labels.empty()) {
		w.string("labels");
		w.pairs(g.labels);
	}
	if (!g.namespaces.empty()) {
		w.string("namespaces");
		w.pairs(g.namespaces);
	}
	if (g.contentType == ContentType::Prometheus) {
		const ImportConfig &i = g.import;
		if (!i.prefix.empty()) {
			w.string("prefix");
			w.text(i.prefix);
		}
		for (const auto *list : {&i.include, &i.exclude}) {
			if (list->empty())
				continue;
			w.string(list == &i.include ? "include" : "exclude");
			w.beginList();
			for (const auto &re : *list)
				w.text(re);
			w.endList();
		}
		w.string("honor_timestamps");
		w.boolean(i.honorTimestamps);
	}
	if (g.sourceType == SourceType::Http)
		writeHttpKeys(w, g.http);
}

void writeService(Writer &w, const ServiceConfig &s)
{
	w.string(s.key);
	w.beginMap();
	w.string("name");
	w.text(s.name);
	if (!s.metricPrefix.empty()) {
		w.string("metric_prefix");
		w.text(s.metricPrefix);
	}
	if (!s.labels.empty()) {
		w.string("labels");
		w.pairs(s.labels);
	}
	if (!s.runAs.user.empty() || !s.runAs.group.empty()) {
		w.string("run_as");
		w.beginMap();
		if (!s.runAs.user.empty()) {
			w.string("user");
			w.text(s.runAs.user);
		}
		if (!s.runAs.group.empty()) {
			w.string("group");
			w.text(s.runAs.group);
		}
		w.endMap();
	}
	w.string("allow_root");
	w.boolean(s.allowRoot);
	w.string("interval");
	w.duration(s.effectiveInterval);
	if (!s.env.empty()) {
		w.string("env");
		w.pairs(s.env);
	}
	// Written only as set: an unset seccomp is the default, which the
	// worker treats differently from an explicit true.
	if (s.sandbox.seccomp || !s.sandbox.landlock.empty()) {
		w.string("sandbox");
		w.beginMap();
		if (s.sandbox.seccomp) {
			w.string("seccomp");
			w.boolean(*s.sandbox.seccomp);
		}
		if (!s.sandbox.landlock.empty()) {
			w.string("landlock");
			w.beginList();
			for (const auto &path : s.sandbox.landlock)
				w.text(path);
			w.endList();
		}
		w.endMap();
	}
	for (bool standalone : {false, true}) {
		bool any = false;
		for (const auto &g : s.groups)
			any = any || g.standalone == standalone;
		if (!any)
			continue;
		w.string(standalone ? "standalone_metrics" : "metric_groups");
		w.beginMap();
		for (const auto &g : s.groups) {
			if (g.standalone != standalone)
				continue;
			w.string(g.key);
			w.beginMap();
			writeGroupKeys(w, g);
			if (standalone) {
				if (g.metrics.size() != 1)
					throw std::logic_error("standalone group without one metric");
				writeMetricKeys(w, g.metrics.front());
			} else if (g.contentType != ContentType::Prometheus) {
				w.string("metrics");
				w.beginMap();
				for (const auto &m : g.metrics) {
					w.string(m.key);
					w.beginMap();
					writeMetricKeys(w, m);
					w.endMap();
				}
				w.endMap();
			}
			w.endMap();
		}
		w.endMap();
	}
	w.endMap();
}

} // namespace

std::string writeServiceDocument(const Config &config, const ServiceConfig &service)
{
	Writer w;
	w.beginMap();
	w.string("exporter");
	w.beginMap();
	w.string("interval");
	w.duration(config.exporter.interval);
	w.endMap();
	w.string("services");
	w.beginMap();
	writeService(w, service);
	w.endMap();
	w.endMap();
	return w.finish();
}

std::string writeConfig(const Config &config)
{
	const auto &e = config.exporter;
	Writer w;
	w.beginMap();
	w.string("exporter");
	w.beginMap();
	w.string("listen");
	w.beginList();
	for (const auto &l : e.listen)
		w.text(l);
	w.endList();
	if (!e.healthListen.empty()) {
		w.string("health_listen");
		w.text(e.healthListen);
	}
	w.string("interval");
	w.duration(e.interval);
	w.string("user");
	w.text(e.user);
	w.endMap();
	w.string("services");
	w.beginMap();
	for (const auto &s : config.services)
		writeService(w, s);
	w.endMap();
	w.endMap();
	return w.finish();
}

std::string configDigest(const Config &config)
{
	char hex[17];
	std::snprintf(hex, sizeof(hex), "%016llx",
	    static_cast<unsigned long long>(fnv1a(writeConfig(config))));
	return hex;
}

} // namespace pme::common
