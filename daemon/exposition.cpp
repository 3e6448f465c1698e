// SPDX-License-Identifier: ISC
// Writing the Prometheus text format 0.0.4: values, escaping, sample lines.
#include "exposition.hpp"

#include <charconv>
#include <cmath>

namespace pme::daemon {

void appendValue(std::string &out, double v)
{
	if (std::isnan(v)) {
		out += "NaN";
		return;
	}
	if (std::isinf(v)) {
		out += v > 0 ? "+Inf" : "-Inf";
		return;
	}
	// The shortest round-trip form is at most 24 characters
	// ("-2.2250738585072014e-308").
	char buf[32];
	// Integers that a double holds exactly are written in full
	// ("1700000000", not the shorter "1.7e+09"): easier to read, as exact.
	constexpr double exactIntegers = 9007199254740992.0; // 2^53
	bool integral = std::fabs(v) <= exactIntegers && v == std::trunc(v);
	auto [end, ec] = integral ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed)
	    : std::to_chars(buf, buf + sizeof buf, v);
	if (ec != std::errc()) {
		// Cannot happen with a buffer of this size; keep the line valid.
		out += "NaN";
		return;
	}
	out.append(buf, end);
}

void appendHelp(std::string &out, std::string_view text)
{
	for (char c : text) {
		switch (c) {
		case '\\': out += "\\\\"; break;
		case '\n': out += "\\n"; break;
		default: out += c; break;
		}
	}
}

void appendLabelValue(std::string &out, std::string_view text)
{
	for (char c : text) {
		switch (c) {
		case '\\': out += "\\\\"; break;
		case '"': out += "\\\""; break;
		case '\n': out += "\\n"; break;
		default: out += c; break;
		}
	}
}

const char *typeName004(common::MetricType type)
{
	switch (type) {
	case common::MetricType::Counter: return "counter";
	case common::MetricType::Gauge: return "gauge";
	case common::MetricType::Histogram: return "histogram";
	case common::MetricType::Summary: return "summary";
	case common::MetricType::Info: return "gauge";
	case common::MetricType::StateSet: return "gauge";
	case common::MetricType::Untyped: return "untyped";
	}
	return "untyped";
}

void appendHeader(std::string &out, std::string_view name, std::string_view help,
    common::MetricType type)
{
	out += "# HELP ";
	out += name;
	out += ' ';
	appendHelp(out, help.empty() ? name : help);
	out += "\n# TYPE ";
	out += name;
	out += ' ';
	out += typeName004(type);
	out += '\n';
}

namespace {

void appendLabel(std::string &out, bool &first, std::string_view name, std::string_view value)
{
	out += first ? '{' : ',';
	first = false;
	out += name;
	out += "=\"";
	appendLabelValue(out, value);
	out += '"';
}

void finishSample(std::string &out, bool first, double value)
{
	if (!first)
		out += '}';
	out += ' ';
	appendValue(out, value);
	out += '\n';
}

} // namespace

void appendSample(std::string &out, std::string_view name, const std::vector<common::Label> &labels,
    const common::Pairs &constLabels, double value)
{
	out += name;
	bool first = true;
	for (const auto &l : labels)
		appendLabel(out, first, l.name, l.value);
	for (const auto &[n, v] : constLabels)
		appendLabel(out, first, n, v);
	finishSample(out, first, value);
}

void appendSample(std::string &out, std::string_view name, std::initializer_list<LabelView> labels,
    double value)
{
	out += name;
	bool first = true;
	for (const auto &[n, v] : labels)
		appendLabel(out, first, n, v);
	finishSample(out, first, value);
}

namespace {

bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

} // namespace

bool validMetricName(std::string_view name)
{
	if (name.empty())
		return false;
	for (size_t i = 0; i < name.size(); i++) {
		char c = name[i];
		if (!(isAlpha(c) || c == '_' || c == ':' || (i > 0 && isDigit(c))))
			return false;
	}
	return true;
}

bool validLabelName(std::string_view name)
{
	if (name.empty() || name.starts_with("__"))
		return false;
	for (size_t i = 0; i < name.size(); i++) {
		char c = name[i];
		if (!(isAlpha(c) || c == '_' || (i > 0 && isDigit(c))))
			return false;
	}
	return true;
}

bool validUtf8(std::string_view text)
{
	const auto *s = reinterpret_cast<const unsigned char *>(text.data());
	size_t n = text.size();
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		// Overlong forms, UTF-16 surrogates, beyond U+10FFFF.
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

} // namespace pme::daemon
