// SPDX-License-Identifier: ISC
// The configuration model's helpers: names of enums, durations, intervals, "did you mean".
#include "config.hpp"

#include "proto/frame.h"

#include <algorithm>
#include <limits>

namespace pme::common {

const char *toString(SourceType t)
{
	switch (t) {
	case SourceType::Command:
		return "command";
	case SourceType::Http:
		return "http";
	case SourceType::File:
		return "file";
	case SourceType::Static:
		return "static";
	}
	return "unknown";
}

const char *toString(ContentType t)
{
	switch (t) {
	case ContentType::Text:
		return "text";
	case ContentType::Json:
		return "json";
	case ContentType::Xml:
		return "xml";
	case ContentType::Prometheus:
		return "prometheus";
	}
	return "unknown";
}

const char *toString(MetricType t)
{
	switch (t) {
	case MetricType::Counter:
		return "counter";
	case MetricType::Gauge:
		return "gauge";
	case MetricType::Histogram:
		return "histogram";
	case MetricType::Summary:
		return "summary";
	case MetricType::Info:
		return "info";
	case MetricType::StateSet:
		return "stateset";
	case MetricType::Untyped:
		return "untyped";
	}
	return "unknown";
}

const ServiceConfig *Config::findService(const std::string &name) const
{
	for (const auto &s : services)
		if (s.name == name)
			return &s;
	return nullptr;
}

Millis roundInterval(Millis override, Millis global)
{
	if (global.count() <= 0)
		return override;
	if (override.count() <= 0)
		return Millis{0};
	auto n = (override.count() + global.count() - 1) / global.count();
	return Millis{n * global.count()};
}

namespace {

struct Unit {
	const char *name;
	int64_t ms;
};

// Largest first: the order a compound duration must be written in.
constexpr Unit units[] = {
	{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1},
};

// Longer than anyone means; small enough that a few multiplications
// (3 x stale_after, rounding up to the global interval) cannot overflow.
constexpr int64_t maxDurationMs = 36500LL * 86400000LL;

bool isDigit(char c)
{
	return c >= '0' && c <= '9';
}

bool isAlpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// digits "." fraction, times unitMs, exactly; false when not a whole number
// of milliseconds or over the limit (*tooLarge tells which).
bool componentMs(const std::string &whole, std::string frac, int64_t unitMs, int64_t &out,
    bool &tooLarge)
{
	tooLarge = false;
	while (!frac.empty() && frac.back() == '0')
		frac.pop_back();
	int64_t w = 0;
	for (char c : whole) {
		if (w > maxDurationMs) {
			tooLarge = true;
			return false;
		}
		w = w * 10 + (c - '0');
	}
	if (w > maxDurationMs / unitMs) {
		tooLarge = true;
		return false;
	}
	out = w * unitMs;
	if (frac.empty())
		return true;
	// A fraction of more than 9 digits is never a whole number of
	// milliseconds of these units but in contrived cases: refuse it.
	if (frac.size() > 9)
		return false;
	uint64_t f = 0, den = 1;
	for (char c : frac) {
		f = f * 10 + static_cast<uint64_t>(c - '0');
		den *= 10;
	}
	uint64_t num = f * static_cast<uint64_t>(unitMs); // < 1e9 * 1e8: fits
	if (num % den != 0)
		return false;
	out += static_cast<int64_t>(num / den);
	return true;
}

} // namespace

Result<Millis> parseDuration(const std::string &text)
{
	const std::string hint = "; write e.g. 500ms, 5s, 2m, 1h, 1d or 1m30s";
	if (text.empty())
		return fail("empty duration" + hint);
	auto bad = [&](const std::string &why) {
		return fail("invalid duration '" + text + "': " + why);
	};
	if (text[0] == '-')
		return bad("a duration cannot be negative");

	size_t pos = 0;
	int64_t total = 0;
	size_t nextUnit = 0; // units[nextUnit..] may still come
	while (pos < text.size()) {
		size_t start = pos;
		std::string whole, frac;
		while (pos < text.size() && isDigit(text[pos]))
			whole += text[pos++];
		bool dot = pos < text.size() && text[pos] == '.';
		if (dot) {
			pos++;
			while (pos < text.size() && isDigit(text[pos]))
				frac += text[pos++];
		}
		if (whole.empty() && frac.empty())
			return bad("expected a number at '" + text.substr(start) + "'" + hint);
		size_t unitStart = pos;
		while (pos < text.size() && isAlpha(text[pos]))
			pos++;
		std::string unit = text.substr(unitStart, pos - unitStart);
		int64_t unitMs = 0;
		size_t unitIndex = std::size(units);
		if (unit.empty()) {
			if (start != 0 || pos != text.size())
				return bad("missing unit after '" +
				    text.substr(start, unitStart - start) + "'" + hint);
			unitMs = 1000; // a plain number is seconds
			unitIndex = 3;
		} else {
			for (size_t i = 0; i < std::size(units); i++)
				if (unit == units[i].name)
					unitIndex = i;
			if (unitIndex == std::size(units))
				return bad("unknown unit '" + unit + "' (use ms, s, m, h or d)");
			unitMs = units[unitIndex].ms;
			if (unitIndex < nextUnit)
				return bad("write the units of a compound duration once each, "
				    "largest first (as in 1h30m)");
		}
		nextUnit = unitIndex + 1;
		int64_t ms = 0;
		bool tooLarge = false;
		if (!componentMs(whole, frac, unitMs, ms, tooLarge)) {
			if (tooLarge)
				return bad("too long (at most 36500d)");
			return bad("not a whole number of milliseconds");
		}
		total += ms;
		if (total > maxDurationMs)
			return bad("too long (at most 36500d)");
	}
	return Millis{total};
}

std::string formatDuration(Millis d)
{
	int64_t ms = d.count();
	if (ms == 0)
		return "0s";
	std::string sign;
	if (ms < 0) {
		sign = "-";
		if (ms == std::numeric_limits<int64_t>::min())
			return "-" + std::to_string(static_cast<uint64_t>(ms)) + "ms";
		ms = -ms;
	}
	// The largest unit that divides exactly...
	std::string single;
	for (const auto &u : units) {
		if (ms % u.ms == 0) {
			single = std::to_string(ms / u.ms) + u.name;
			break;
		}
	}
	// ...or every unit once, whichever is shorter.
	std::string compound;
	int64_t left = ms;
	for (const auto &u : units) {
		if (left >= u.ms) {
			compound += std::to_string(left / u.ms) + u.name;
			left %= u.ms;
		}
	}
	return sign + (compound.size() < single.size() ? compound : single);
}

std::string printableText(const std::string &text)
{
	static const char hex[] = "0123456789abcdef";
	std::string out;
	out.reserve(text.size());
	size_t i = 0;
	while (i < text.size()) {
		auto c = static_cast<unsigned char>(text[i]);
		if (c < 0x20 || c == 0x7f) {
			switch (c) {
			case '\n': out += "\\n"; break;
			case '\t': out += "\\t"; break;
			case '\0': out += "\\0"; break;
			default:
				out += "\\x";
				out += hex[c >> 4];
				out += hex[c & 0xf];
			}
			i++;
			continue;
		}
		if (c < 0x80) {
			out += static_cast<char>(c);
			i++;
			continue;
		}
		// The longest valid UTF-8 sequence starting here, if any.
		size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
		if (len > 0 && i + len <= text.size() &&
		    pme_proto_valid_utf8(text.data() + i, len)) {
			out.append(text, i, len);
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

size_t editDistance(const std::string &a, const std::string &b)
{
	std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
	for (size_t j = 0; j <= b.size(); j++)
		prev[j] = j;
	for (size_t i = 1; i <= a.size(); i++) {
		cur[0] = i;
		for (size_t j = 1; j <= b.size(); j++) {
			size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
			cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
		}
		std::swap(prev, cur);
	}
	return prev[b.size()];
}

std::string closestMatch(const std::string &word, const std::vector<std::string> &candidates)
{
	size_t limit = word.size() <= 3 ? 1 : 2;
	std::string best;
	size_t bestDistance = limit + 1;
	for (const auto &c : candidates) {
		size_t d = editDistance(word, c);
		if (d < bestDistance) {
			best = c;
			bestDistance = d;
		}
	}
	return best;
}

} // namespace pme::common
