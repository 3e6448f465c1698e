// SPDX-License-Identifier: ISC
// Content type prometheus: parse a whole exposition, text format 0.0.4 or OpenMetrics 1.0.
//
// What is accepted is what Prometheus 2.x ingests, checked against 2.42
// scraping a test server (model/textparse: promlex.l, openmetricslex.l).
// The format is not announced (a file or a command has no Content-Type),
// so it is read from the text: OpenMetrics when its last non-empty line
// is "# EOF", which OpenMetrics requires and 0.0.4 has no reason to write.
//
// Text format 0.0.4, as Prometheus' lexer reads it:
// - tokens are separated by any run of spaces and tabs, which may also end
//   a line, precede '#', or be all a line has; but a sample line must
//   start with its name (Prometheus makes the blanks part of the name and
//   fails the scrape);
// - "# HELP name text" and "# TYPE name type" (blanks after '#', after the
//   keyword and one after the name); any other line starting with '#' is a
//   comment.  The text is what follows the one character after the name:
//   so "# TYPE x  gauge" (two spaces) is the type " gauge" and an error, a
//   HELP of only blanks is empty, and "# HELP x.y text" is the HELP "y
//   text" of x;
// - the value is the run of characters up to a blank, '{' or the end of
//   the line, so "x{a=\"1\"}1" and even "x+1" are samples; the timestamp
//   is an integer number of milliseconds ("1.5" or "-5" is an error);
// - label pairs may be separated by a comma, a comma and blanks, or only
//   blanks, and a trailing comma is allowed; a label value may span lines
//   (a raw newline is part of it) but a backslash may not end a line;
// - the last line needs no newline.
// OpenMetrics, as Prometheus' OpenMetrics lexer reads it: exactly one
// space between tokens, no blank or empty line, no comment but HELP,
// TYPE, UNIT and the final "# EOF" with nothing after it (not even an
// empty line); no trailing comma in a label set (2.42 refuses it);
// timestamps are seconds as a float (negative allowed); an exemplar
// " # {labels} value [timestamp]" may follow a sample whose name ends in
// _total or _bucket, and is checked and dropped; a UNIT must be a suffix of
// the family name.
// In both: values are Go's ParseFloat minus hexadecimal and underscores
// (parsePromFloat); "\\", "\"" and "\n" are unescaped in label values, and
// in HELP text "\\" and "\n" (and "\"" in OpenMetrics); any other escape
// stays as written, as Prometheus keeps it.  \r is an ordinary character:
// in HELP text, comments and label values it is kept, after a value or a
// timestamp it is an error (Prometheus refuses "x 1\r\n"), reported as
// such so that a file with CRLF line ends is recognised.
//
// Families.  Prometheus itself keeps no families: it ingests series and
// records HELP/TYPE as metadata.  pme exports families, so the parser
// assigns each sample to one, as client_golang's text parser does: the
// family declared (by HELP, TYPE or UNIT) with the sample's exact name if
// that family's type has unsuffixed samples, else the declared family the
// name minus a suffix belongs to if its type has that suffix (_bucket, _sum,
// _count of a histogram, _total of an OpenMetrics counter...), else an
// untyped family named by the sample.  A family's samples are joined
// wherever they appear.  OpenMetrics families are exported under the name
// their samples have: counter x as x_total, info x as x_info.  A gauge
// histogram x, which the text format 0.0.4 cannot say, is exported as the
// histogram x: its x_bucket series keep their names, x_gcount and x_gsum
// become x_count and x_sum, so that the output stays a valid exposition
// (promtool refuses _bucket series outside a histogram) and
// histogram_quantile() works on it as on the original.  _created samples of
// counters, histograms and summaries are dropped.
//
// Where pme is stricter than Prometheus, because what Prometheus takes
// cannot be exported again or is almost certainly a broken exposition:
// invalid UTF-8 and NUL bytes anywhere (Prometheus skips a NUL in label
// values and stops reading at one elsewhere); a second HELP, TYPE or UNIT
// for a family, and a TYPE after samples of its family; a label name
// starting with "__" (reserved for Prometheus, and refused by the frame
// protocol); a histogram bucket without "le"; two families that would
// export the same name (a histogram x and a gauge x_count).
// Errors say "line L, column C: ..." with 1-based numbers, the column
// counted in characters.
//
// Speed: an import of 100,000 series happens every cycle, so the text is
// read once with a cursor, without regular expressions; names are views
// into the text (families and the suffix lookup are keyed by views), label
// pairs of the current line go to a reused buffer, and the only allocations
// per sample are the sample itself.  Consecutive samples of one family are
// recognised by comparing with the previous name, without a lookup.
#include "prom_text.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/config.hpp"
#include "common/utf8.hpp"
#include "text_util.hpp"

namespace pme::worker {

using common::Family;
using common::MetricType;
using common::Result;
using common::Sample;

namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isLabelStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isLabelChar(char c) { return isLabelStart(c) || isDigit(c); }
bool isNameStart(char c) { return isLabelStart(c) || c == ':'; }
bool isNameChar(char c) { return isLabelChar(c) || c == ':'; }
bool isBlank(char c) { return c == ' ' || c == '\t'; }


bool endsWith(std::string_view s, std::string_view end)
{
	return s.size() >= end.size() && s.substr(s.size() - end.size()) == end;
}

// Length of the UTF-8 sequence at s (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF), 0 when it is not one.
size_t utf8Length(const unsigned char *s, const unsigned char *end)
{
	unsigned c = s[0];
	size_t n;
	unsigned lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (static_cast<size_t>(end - s) < n)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

// Text of the source for a message: at most 64 bytes, control
// characters escaped.
std::string quote(std::string_view s)
{
	return "\"" + common::printableText(common::shorten(s, 64)) + "\"";
}

// Label values and HELP text: \\ and \n, and \" where quoteToo; any other
// backslash stays, as strings.Replacer in Prometheus leaves it.
std::string unescape(std::string_view s, bool quoteToo)
{
	std::string out;
	out.reserve(s.size());
	for (size_t i = 0; i < s.size(); i++) {
		char c = s[i];
		if (c == '\\' && i + 1 < s.size()) {
			char n = s[i + 1];
			if (n == '\\' || n == 'n' || (n == '"' && quoteToo)) {
				out += n == 'n' ? '\n' : n;
				i++;
				continue;
			}
		}
		out += c;
	}
	return out;
}

// The decimal exponent of the leading digit of a number that from_chars
// found out of range, plus one: positive for too large, else too small.
long magnitude(std::string_view body)
{
	long exp = 0;
	size_t e = body.find_first_of("eE");
	if (e != std::string_view::npos) {
		bool neg = false;
		size_t i = e + 1;
		if (i < body.size() && (body[i] == '+' || body[i] == '-'))
			neg = body[i++] == '-';
		for (; i < body.size(); i++)
			exp = std::min(exp * 10 + (body[i] - '0'), 1000000000L);
		if (neg)
			exp = -exp;
		body = body.substr(0, e);
	}
	size_t dot = body.find('.');
	long intDigits = static_cast<long>(dot == std::string_view::npos ? body.size() : dot);
	for (size_t i = 0; i < body.size(); i++) {
		if (body[i] == '.' || body[i] == '0')
			continue;
		long pos = static_cast<long>(i);
		// 123 -> 3, 0.05 -> -1
		long lead = pos < intDigits ? intDigits - pos : intDigits - pos + 1;
		return lead + exp;
	}
	return 0;
}

// Kinds of family, as the formats type them.  Untyped is 0.0.4's untyped,
// OpenMetrics' unknown, and a family without TYPE.
enum class Kind : uint8_t {
	Untyped, Counter, Gauge, Histogram, GaugeHistogram, Summary, Info, StateSet
};

enum Suffix : uint8_t {
	SfxNone, SfxTotal, SfxCreated, SfxBucket, SfxSum, SfxCount, SfxGCount, SfxGSum, SfxInfo,
	SfxEnd
};
constexpr std::string_view kSuffix[SfxEnd] = {
	"", "_total", "_created", "_bucket", "_sum", "_count", "_gcount", "_gsum", "_info",
};

constexpr uint32_t bit(Suffix s) { return 1u << s; }

// The sample names a family of this kind has.
uint32_t suffixesOf(Kind k, bool om)
{
	switch (k) {
	case Kind::Untyped:
	case Kind::Gauge:
	case Kind::StateSet:
		return bit(SfxNone);
	case Kind::Counter:
		return om ? bit(SfxTotal) | bit(SfxCreated) : bit(SfxNone);
	case Kind::Histogram:
		return bit(SfxBucket) | bit(SfxSum) | bit(SfxCount) | (om ? bit(SfxCreated) : 0);
	case Kind::GaugeHistogram:
		return bit(SfxBucket) | bit(SfxGCount) | bit(SfxGSum);
	case Kind::Summary:
		return bit(SfxNone) | bit(SfxSum) | bit(SfxCount) | (om ? bit(SfxCreated) : 0);
	case Kind::Info:
		return bit(SfxInfo);
	}
	return 0;
}

struct TypeWord {
	std::string_view word;
	Kind kind;
	bool text, om; // valid in 0.0.4, in OpenMetrics
};

constexpr TypeWord kTypes[] = {
	{"counter", Kind::Counter, true, true},
	{"gauge", Kind::Gauge, true, true},
	{"histogram", Kind::Histogram, true, true},
	{"summary", Kind::Summary, true, true},
	{"untyped", Kind::Untyped, true, false},
	{"gaugehistogram", Kind::GaugeHistogram, false, true},
	{"info", Kind::Info, false, true},
	{"stateset", Kind::StateSet, false, true},
	{"unknown", Kind::Untyped, false, true},
};

const char *kindWord(Kind k, bool om)
{
	for (const auto &t : kTypes)
		if (t.kind == k && (om ? t.om : t.text))
			return t.word.data();
	return "untyped";
}

MetricType metricType(Kind k)
{
	switch (k) {
	case Kind::Untyped: return MetricType::Untyped;
	case Kind::Counter: return MetricType::Counter;
	case Kind::Gauge: return MetricType::Gauge;
	case Kind::Histogram: return MetricType::Histogram;
	case Kind::GaugeHistogram: return MetricType::Histogram;
	case Kind::Summary: return MetricType::Summary;
	case Kind::Info: return MetricType::Info;
	case Kind::StateSet: return MetricType::StateSet;
	}
	return MetricType::Untyped;
}

// A family while the text is read.
struct Fam {
	std::string_view name;       // as declared, or the name of its samples
	Kind kind = Kind::Untyped;
	bool implicit = false;       // made by a sample, not by HELP/TYPE/UNIT
	bool claimed = false;        // its exported names are reserved
	size_t line = 0;             // where it first appeared
	size_t typeLine = 0, helpLine = 0, unitLine = 0, sampleLine = 0;
	std::string help, unit;
	std::vector<Sample> samples;
};

// A label pair of the current line, still as written.
struct RawLabel {
	std::string_view name, value;
	bool escaped;   // the value has a backslash
	const char *at; // the name, for messages
};

constexpr size_t npos = static_cast<size_t>(-1);

class Parser {
public:
	Parser(std::string_view text, bool om, const PromParseLimits &limits)
		: text_(text), p_(text.data()), end_(text.data() + text.size()), om_(om),
		  limits_(limits) {}

	Result<std::vector<Family>> run();

private:
	bool fail(const char *at, std::string message);
	bool failToken(const char *at, const char *end, std::string message);
	std::string position(const char *at) const;

	bool checkText();
	bool parseText();
	bool parseOpenMetrics();
	bool commentText();
	bool commentOpenMetrics(bool &eof);
	bool sample();
	bool labelsText();
	bool labelsOpenMetrics(std::vector<RawLabel> &out);
	bool labelValue(RawLabel &l);
	bool exemplar(std::string_view sampleName);
	bool endOfLine();
	std::optional<int64_t> omTimestamp(const char *at, const char *end, const char *what);

	bool onHelp(const char *nameAt, std::string_view name, std::string_view text);
	bool onType(const char *nameAt, std::string_view name, const char *textAt,
	    std::string_view text);
	bool onUnit(const char *nameAt, std::string_view name, std::string_view text);
	bool again(const char *nameAt, const char *what, std::string_view name, size_t first);
	size_t declared(const char *at, std::string_view name, bool orImplicit);
	size_t newFamily(const char *at, std::string_view name, bool implicit, size_t line);
	bool checkLabels();
	bool resolve(const char *at, std::string_view name, size_t line, size_t &fam, Suffix &sfx);
	bool claim(size_t fam, const char *at);
	std::string describe(const Fam &f) const;
	bool addSample(std::string_view name, const char *nameAt, size_t line, double value,
	    std::optional<int64_t> ts);
	std::vector<Family> finish();

	void skipBlanks()
	{
		while (p_ < end_ && isBlank(*p_))
			p_++;
	}
	std::string_view readName()
	{
		const char *s = p_;
		while (p_ < end_ && isNameChar(*p_))
			p_++;
		return {s, static_cast<size_t>(p_ - s)};
	}
	// The run of characters up to a space or the end of the line, and
	// also a tab (blanks) or a tab and '{' (valueEnd).
	enum Stop { Space, Blanks, ValueEnd };
	std::string_view token(Stop stop)
	{
		const char *s = p_;
		while (p_ < end_) {
			char c = *p_;
			if (c == ' ' || c == '\n' || (stop != Space && (c == '\t' ||
			    (stop == ValueEnd && c == '{'))))
				break;
			p_++;
		}
		return {s, static_cast<size_t>(p_ - s)};
	}
	const char *endOfLineFrom(const char *s) const
	{
		const void *nl = std::memchr(s, '\n', static_cast<size_t>(end_ - s));
		return nl ? static_cast<const char *>(nl) : end_;
	}

	std::string_view text_;
	const char *p_;
	const char *end_;
	bool om_;
	PromParseLimits limits_;
	size_t line_ = 1;
	std::optional<common::Error> error_;

	std::vector<Fam> fams_;
	std::unordered_map<std::string_view, size_t> declared_, implicit_;
	std::unordered_map<std::string, size_t> claims_;  // exported name -> family
	size_t familyCount_ = 0, seriesCount_ = 0;

	std::vector<RawLabel> labels_, exemplarLabels_;
	std::vector<const RawLabel *> sorted_;

	// The previous sample's name and where it went.
	std::string_view lastName_;
	size_t lastFam_ = npos;
	Suffix lastSfx_ = SfxNone;
};

std::string Parser::position(const char *at) const
{
	size_t off = static_cast<size_t>(at - text_.data());
	size_t line = 1 + static_cast<size_t>(std::count(text_.begin(),
	    text_.begin() + static_cast<std::ptrdiff_t>(off), '\n'));
	size_t start = off == 0 ? 0 : text_.rfind('\n', off - 1);
	start = start == std::string_view::npos || off == 0 ? 0 : start + 1;
	size_t column = 1;
	for (size_t i = start; i < off; i++)
		if ((static_cast<unsigned char>(text_[i]) & 0xc0) != 0x80)
			column++;
	return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

bool Parser::fail(const char *at, std::string message)
{
	if (at < end_ && *at == '\r')
		message = "unexpected carriage return: lines must end with \\n alone, not \\r\\n";
	error_ = common::Error(position(at) + ": " + message);
	return false;
}

// An error about the token [at, end): at its \r if it has one, since a
// CRLF line end is the likely cause.
bool Parser::failToken(const char *at, const char *end, std::string message)
{
	const void *cr = std::memchr(at, '\r', static_cast<size_t>(end - at));
	return fail(cr ? static_cast<const char *>(cr) : at, std::move(message));
}

bool Parser::checkText()
{
	auto s = reinterpret_cast<const unsigned char *>(p_);
	auto e = reinterpret_cast<const unsigned char *>(end_);
	constexpr uint64_t ones = 0x0101010101010101, highs = 0x8080808080808080;
	while (s < e) {
		// Eight bytes at a time while they are ASCII without NUL.
		while (e - s >= 8) {
			uint64_t w;
			std::memcpy(&w, s, sizeof(w));
			if ((w & highs) || ((w - ones) & ~w & highs))
				break;
			s += 8;
		}
		if (s == e)
			break;
		if (*s < 0x80) {
			if (*s == 0)
				return fail(reinterpret_cast<const char *>(s), "NUL byte");
			s++;
			continue;
		}
		size_t n = utf8Length(s, e);
		if (n == 0) {
			char hex[8];
			std::snprintf(hex, sizeof(hex), "0x%02x", *s);
			return fail(reinterpret_cast<const char *>(s),
			    std::string("invalid UTF-8 (byte ") + hex + ")");
		}
		s += n;
	}
	return true;
}

Result<std::vector<Family>> Parser::run()
{
	if (!checkText() || !(om_ ? parseOpenMetrics() : parseText()))
		return tl::unexpected(std::move(*error_));
	return finish();
}

bool Parser::endOfLine()
{
	if (p_ == end_)
		return !om_ || fail(p_, "the exposition does not end with # EOF");
	if (*p_ != '\n')
		return fail(p_, "expected the end of the line, not " + quote({p_, 1}));
	p_++;
	line_++;
	return true;
}

bool Parser::parseText()
{
	while (p_ < end_) {
		const char *start = p_;
		skipBlanks();
		if (p_ == end_)
			break;
		char c = *p_;
		if (c == '\n') {
			p_++;
			line_++;
		} else if (c == '#') {
			if (!commentText())
				return false;
		} else if (isNameStart(c)) {
			if (p_ != start)
				return fail(start, "a sample line must start with the metric name, "
				    "not with a space or a tab");
			if (!sample())
				return false;
		} else {
			size_t n = utf8Length(reinterpret_cast<const unsigned char *>(p_),
			    reinterpret_cast<const unsigned char *>(end_));
			return fail(p_, "expected a metric name or '#', not " +
			    quote({p_, n ? n : 1}));
		}
	}
	return true;
}

// "# HELP", "# TYPE", or any other comment.
bool Parser::commentText()
{
	p_++;
	if (p_ == end_ || !isBlank(*p_)) {
		p_ = endOfLineFrom(p_);
		return endOfLine();
	}
	skipBlanks();
	std::string_view rest(p_, static_cast<size_t>(end_ - p_));
	bool help = rest.substr(0, 4) == "HELP", type = rest.substr(0, 4) == "TYPE";
	if ((!help && !type) || rest.size() < 5 || !isBlank(rest[4])) {
		p_ = endOfLineFrom(p_);
		return endOfLine();
	}
	const char *keyword = help ? "HELP" : "TYPE";
	p_ += 4;
	skipBlanks();
	if (p_ == end_ || !isNameStart(*p_))
		return fail(p_, std::string("expected a metric name after ") + keyword);
	const char *nameAt = p_;
	std::string_view name = readName();
	std::string_view text;
	const char *textAt = p_;
	if (p_ < end_ && *p_ != '\n') {
		// The text starts after one byte, whatever it is: "# HELP x.y
		// z" is the HELP "y z" of x for Prometheus.
		bool blank = isBlank(*p_);
		textAt = p_ + 1;
		if (textAt < end_ && (static_cast<unsigned char>(*textAt) & 0xc0) == 0x80)
			return fail(p_, std::string(keyword) + " text of " + std::string(name) +
			    " is not valid UTF-8: the name is followed by " + quote({p_,
			    utf8Length(reinterpret_cast<const unsigned char *>(p_),
			    reinterpret_cast<const unsigned char *>(end_))}) +
			    " instead of a space");
		p_ = endOfLineFrom(p_);
		text = {textAt, static_cast<size_t>(p_ - textAt)};
		// Only blanks after a blank: no text (Prometheus' lexer skips
		// them as whitespace).
		if (blank && std::all_of(text.begin(), text.end(), isBlank))
			text = {};
	}
	if (!(help ? onHelp(nameAt, name, text) : onType(nameAt, name, textAt, text)))
		return false;
	return endOfLine();
}

bool Parser::parseOpenMetrics()
{
	while (p_ < end_) {
		char c = *p_;
		if (c == '#') {
			bool eof = false;
			if (!commentOpenMetrics(eof))
				return false;
			if (eof)
				return true;
		} else if (isNameStart(c)) {
			if (!sample())
				return false;
		} else if (c == '\n') {
			return fail(p_, "empty line (OpenMetrics allows none)");
		} else {
			size_t n = utf8Length(reinterpret_cast<const unsigned char *>(p_),
			    reinterpret_cast<const unsigned char *>(end_));
			return fail(p_, "expected a metric name or '#', not " +
			    quote({p_, n ? n : 1}));
		}
	}
	return fail(p_, "the exposition does not end with # EOF");
}

bool Parser::commentOpenMetrics(bool &eof)
{
	p_++;
	if (p_ == end_ || *p_ != ' ')
		return fail(p_, "expected a space after '#'");
	p_++;
	std::string_view rest(p_, static_cast<size_t>(end_ - p_));
	if (rest.substr(0, 3) == "EOF" && (rest.size() == 3 || rest[3] == '\n')) {
		p_ += 3;
		if (p_ < end_) {
			p_++;
			line_++;
		}
		if (p_ != end_)
			return fail(p_, "unexpected data after # EOF");
		eof = true;
		return true;
	}
	std::string_view keyword = rest.substr(0, 4);
	if ((keyword != "HELP" && keyword != "TYPE" && keyword != "UNIT") || rest.size() < 5 ||
	    rest[4] != ' ')
		return fail(p_, "expected HELP, TYPE, UNIT or EOF after '# ' (OpenMetrics allows "
		    "no other comment)");
	p_ += 5;
	if (p_ == end_ || !isNameStart(*p_))
		return fail(p_, "expected a metric name after " + std::string(keyword));
	const char *nameAt = p_;
	std::string_view name = readName();
	if (p_ == end_ || *p_ != ' ')
		return fail(p_, "expected a space and the " + std::string(keyword == "HELP" ?
		    "text" : keyword == "TYPE" ? "type" : "unit") + " after the metric name");
	const char *textAt = ++p_;
	p_ = endOfLineFrom(p_);
	std::string_view text(textAt, static_cast<size_t>(p_ - textAt));
	bool ok = keyword == "HELP" ? onHelp(nameAt, name, text) :
	    keyword == "TYPE" ? onType(nameAt, name, textAt, text) : onUnit(nameAt, name, text);
	return ok && endOfLine();
}

// The family HELP, TYPE or UNIT of name is about.
size_t Parser::declared(const char *at, std::string_view name, bool orImplicit)
{
	if (auto it = declared_.find(name); it != declared_.end())
		return it->second;
	if (orImplicit)
		if (auto it = implicit_.find(name); it != implicit_.end())
			return it->second;
	size_t f = newFamily(at, name, false, line_);
	if (f != npos)
		declared_.emplace(name, f);
	return f;
}

size_t Parser::newFamily(const char *at, std::string_view name, bool implicit, size_t line)
{
	if (familyCount_ >= limits_.maxFamilies) {
		fail(at, "more than " + std::to_string(limits_.maxFamilies) + " metric families");
		return npos;
	}
	familyCount_++;
	Fam &f = fams_.emplace_back();
	f.name = name;
	f.implicit = implicit;
	f.line = line;
	lastFam_ = npos; // resolutions may change
	return fams_.size() - 1;
}

bool Parser::onHelp(const char *nameAt, std::string_view name, std::string_view text)
{
	size_t fi = declared(nameAt, name, true);
	if (fi == npos)
		return false;
	Fam &f = fams_[fi];
	if (f.helpLine)
		return again(nameAt, "HELP", name, f.helpLine);
	f.helpLine = line_;
	f.help = text.find('\\') == std::string_view::npos ? std::string(text) :
	    unescape(text, om_);
	return true;
}

bool Parser::again(const char *nameAt, const char *what, std::string_view name, size_t first)
{
	return fail(nameAt, std::string("second ") + what + " for " + std::string(name) +
	    " (the first is on line " + std::to_string(first) + ")");
}

bool Parser::onType(const char *nameAt, std::string_view name, const char *textAt,
    std::string_view text)
{
	const TypeWord *type = nullptr;
	for (const auto &t : kTypes)
		if (t.word == text && (om_ ? t.om : t.text))
			type = &t;
	if (!type) {
		std::string words;
		for (const auto &t : kTypes)
			if (om_ ? t.om : t.text)
				words += (words.empty() ? "" : ", ") + std::string(t.word);
		if (text.empty())
			return fail(textAt, "missing type after " + std::string(name) +
			    " (one of " + words + ")");
		return failToken(textAt, textAt + text.size(), "unknown metric type " +
		    quote(text) + " (expected one of " + words + ")");
	}
	size_t fi = declared(nameAt, name, false);
	if (fi == npos)
		return false;
	Fam &f = fams_[fi];
	if (f.typeLine)
		return again(nameAt, "TYPE", name, f.typeLine);
	if (f.sampleLine)
		return fail(nameAt, "TYPE for " + std::string(name) + " after its samples (line " +
		    std::to_string(f.sampleLine) + "); it must come before them");
	uint32_t sfx = suffixesOf(type->kind, om_);
	std::string sampleName(name);
	for (int s = SfxNone; s < SfxEnd; s++) {
		if (!(sfx & bit(static_cast<Suffix>(s))))
			continue;
		sampleName.resize(name.size());
		sampleName += kSuffix[s];
		if (auto it = implicit_.find(sampleName); it != implicit_.end())
			return fail(nameAt, "TYPE for " + std::string(name) +
			    " after its samples " + (s == SfxNone ? "" : sampleName + " ") +
			    "(line " +
			    std::to_string(fams_[it->second].line) + "); it must come before them");
	}
	f.kind = type->kind;
	f.typeLine = line_;
	lastFam_ = npos;
	return true;
}

bool Parser::onUnit(const char *nameAt, std::string_view name, std::string_view text)
{
	if (!text.empty() && (name.size() <= text.size() || !endsWith(name, text) ||
	    name[name.size() - text.size() - 1] != '_'))
		return fail(nameAt, "unit " + quote(text) + " is not a suffix of the metric name " +
		    std::string(name) + " (expected a name ending in _" +
		    common::printableText(common::shorten(text, 64)) + ")");
	size_t fi = declared(nameAt, name, true);
	if (fi == npos)
		return false;
	Fam &f = fams_[fi];
	if (f.unitLine)
		return again(nameAt, "UNIT", name, f.unitLine);
	f.unitLine = line_;
	f.unit = text;
	return true;
}

bool Parser::sample()
{
	const char *nameAt = p_;
	size_t line = line_;
	std::string_view name = readName();
	labels_.clear();
	std::string_view value;
	const char *valueAt;
	bool braces = false;
	if (om_) {
		if (p_ < end_ && *p_ == '{') {
			if (!labelsOpenMetrics(labels_))
				return false;
			braces = true;
		}
		if (p_ == end_ || *p_ != ' ')
			return fail(p_, std::string("expected a space and the value after ") +
			    (braces ? "the labels" : "the metric name"));
		valueAt = ++p_;
		value = token(Space);
	} else {
		skipBlanks();
		if (p_ < end_ && *p_ == '{') {
			if (!labelsText())
				return false;
			braces = true;
		}
		skipBlanks();
		valueAt = p_;
		value = token(ValueEnd);
	}
	if (value.empty())
		return fail(valueAt, std::string("expected a value after ") +
		    (braces ? "the labels" : "the metric name"));
	std::optional<double> v = parsePromFloat(value);
	if (!v)
		return failToken(valueAt, p_, "invalid value " + quote(value));

	std::optional<int64_t> ts;
	if (om_) {
		auto exemplarAhead = [&] {
			return end_ - p_ > 3 && p_[0] == ' ' && p_[1] == '#' && p_[2] == ' ' &&
			    p_[3] == '{';
		};
		if (p_ < end_ && *p_ == ' ' && !exemplarAhead()) {
			const char *tsAt = ++p_;
			std::string_view t = token(Space);
			if (t.empty())
				return fail(tsAt, "expected a timestamp or an exemplar after the "
				    "space");
			ts = omTimestamp(tsAt, p_, "timestamp");
			if (!ts)
				return false;
		}
		if (exemplarAhead() && !exemplar(name))
			return false;
	} else {
		skipBlanks();
		if (p_ < end_ && *p_ != '\n') {
			const char *tsAt = p_;
			std::string_view t = token(Blanks);
			if (!std::all_of(t.begin(), t.end(), isDigit))
				return failToken(tsAt, p_, "invalid timestamp " + quote(t) +
				    ": the text format needs an integer number of milliseconds");
			int64_t ms = 0;
			auto r = std::from_chars(t.data(), t.data() + t.size(), ms);
			if (r.ec != std::errc())
				return fail(tsAt, "timestamp " + quote(t) + " is out of range");
			ts = ms;
			skipBlanks();
			if (p_ < end_ && *p_ != '\n')
				return fail(p_, "expected the end of the line after the timestamp");
		}
	}
	if (!endOfLine())
		return false;
	return addSample(name, nameAt, line, *v, ts);
}

// An OpenMetrics timestamp, seconds as a float, to milliseconds (rounded:
// Prometheus truncates, which makes 1.001 s 1000 ms).
std::optional<int64_t> Parser::omTimestamp(const char *at, const char *end, const char *what)
{
	std::string_view t(at, static_cast<size_t>(end - at));
	std::optional<double> s = parsePromFloat(t);
	if (!s) {
		failToken(at, end, std::string("invalid ") + what + " " + quote(t));
		return std::nullopt;
	}
	if (!std::isfinite(*s)) {
		fail(at, std::string("invalid ") + what + " " + quote(t));
		return std::nullopt;
	}
	double ms = *s * 1000;
	if (!(std::fabs(ms) < 9.2e18)) { // within int64_t
		fail(at, std::string(what) + " " + quote(t) + " is out of range");
		return std::nullopt;
	}
	return static_cast<int64_t>(std::llround(ms));
}

// " # {labels} value [timestamp]" after a sample: checked, then dropped.
bool Parser::exemplar(std::string_view sampleName)
{
	if (!endsWith(sampleName, "_total") && !endsWith(sampleName, "_bucket"))
		return fail(p_ + 1, "exemplar on " + std::string(sampleName) + ": only samples "
		    "whose name ends in _total or _bucket may have one");
	p_ += 3;
	exemplarLabels_.clear();
	if (!labelsOpenMetrics(exemplarLabels_))
		return false;
	if (p_ == end_ || *p_ != ' ')
		return fail(p_, "expected a space and the value after the exemplar's labels");
	const char *valueAt = ++p_;
	std::string_view value = token(Space);
	if (value.empty())
		return fail(valueAt, "expected the exemplar's value");
	if (!parsePromFloat(value))
		return failToken(valueAt, p_, "invalid exemplar value " + quote(value));
	if (p_ < end_ && *p_ == ' ') {
		const char *tsAt = ++p_;
		if (token(Space).empty())
			return fail(tsAt, "expected the exemplar's timestamp");
		if (!omTimestamp(tsAt, p_, "exemplar timestamp"))
			return false;
	}
	return true;
}

bool Parser::labelsText()
{
	p_++;
	for (;;) {
		skipBlanks();
		if (p_ < end_ && *p_ == '}') {
			p_++;
			return true;
		}
		if (p_ == end_ || !isLabelStart(*p_))
			return fail(p_, "expected a label name or '}'");
		RawLabel &l = labels_.emplace_back();
		l.at = p_;
		const char *s = p_;
		while (p_ < end_ && isLabelChar(*p_))
			p_++;
		l.name = {s, static_cast<size_t>(p_ - s)};
		skipBlanks();
		if (p_ == end_ || *p_ != '=')
			return fail(p_, "expected '=' after the label name " + std::string(l.name));
		p_++;
		skipBlanks();
		if (!labelValue(l))
			return false;
		skipBlanks();
		if (p_ < end_ && *p_ == ',')
			p_++;
	}
}

bool Parser::labelsOpenMetrics(std::vector<RawLabel> &out)
{
	p_++;
	if (p_ < end_ && *p_ == '}') {
		p_++;
		return true;
	}
	for (;;) {
		if (p_ == end_ || !isLabelStart(*p_))
			return fail(p_, p_[-1] == ',' ? "expected a label name after ',' "
			    "(OpenMetrics allows no trailing comma)" : "expected a label name");
		RawLabel &l = out.emplace_back();
		l.at = p_;
		const char *s = p_;
		while (p_ < end_ && isLabelChar(*p_))
			p_++;
		l.name = {s, static_cast<size_t>(p_ - s)};
		if (p_ == end_ || *p_ != '=')
			return fail(p_, "expected '=' after the label name " + std::string(l.name));
		p_++;
		if (!labelValue(l))
			return false;
		if (p_ < end_ && *p_ == ',') {
			p_++;
			continue;
		}
		if (p_ < end_ && *p_ == '}') {
			p_++;
			return true;
		}
		return fail(p_, "expected ',' or '}' after the label value");
	}
}

bool Parser::labelValue(RawLabel &l)
{
	if (p_ == end_ || *p_ != '"')
		return fail(p_, "expected a label value in double quotes after '='");
	const char *open = p_;
	const char *q = p_ + 1;
	size_t lines = 0;
	l.escaped = false;
	for (;;) {
		if (q == end_)
			return fail(open, "unterminated label value");
		char c = *q;
		if (c == '"')
			break;
		if (c == '\\') {
			if (q + 1 == end_)
				return fail(open, "unterminated label value");
			if (q[1] == '\n')
				return fail(q, "a backslash ends the line inside a label value");
			l.escaped = true;
			q += 2;
			continue;
		}
		if (c == '\n') {
			if (om_)
				return fail(open, "unterminated label value (the line ends "
				    "inside it; write a newline as \\n)");
			lines++;
		}
		q++;
	}
	l.value = {open + 1, static_cast<size_t>(q - open - 1)};
	line_ += lines;
	p_ = q + 1;
	return true;
}

// Label names of the current sample: none reserved, none twice.
bool Parser::checkLabels()
{
	for (const auto &l : labels_)
		if (l.name.size() >= 2 && l.name[0] == '_' && l.name[1] == '_')
			return fail(l.at, "label name " + std::string(l.name) + " is reserved: "
			    "names starting with __ are for Prometheus' internal use");
	const RawLabel *repeated = nullptr;
	if (labels_.size() <= 16) {
		for (size_t i = 1; i < labels_.size() && !repeated; i++)
			for (size_t j = 0; j < i; j++)
				if (labels_[i].name == labels_[j].name) {
					repeated = &labels_[i];
					break;
				}
	} else {
		sorted_.clear();
		for (const auto &l : labels_)
			sorted_.push_back(&l);
		std::sort(sorted_.begin(), sorted_.end(), [](const RawLabel *a, const RawLabel *b) {
			return a->name != b->name ? a->name < b->name : a->at < b->at;
		});
		for (size_t i = 1; i < sorted_.size(); i++)
			if (sorted_[i]->name == sorted_[i - 1]->name &&
			    (!repeated || sorted_[i]->at < repeated->at))
				repeated = sorted_[i];
	}
	if (repeated)
		return fail(repeated->at, "label " + std::string(repeated->name) +
		    " appears twice in one sample");
	return true;
}

// The family a sample of this name belongs to, and its suffix there.
bool Parser::resolve(const char *at, std::string_view name, size_t line, size_t &fam,
    Suffix &sfx)
{
	if (lastFam_ != npos && name == lastName_) {
		fam = lastFam_;
		sfx = lastSfx_;
		return true;
	}
	fam = npos;
	sfx = SfxNone;
	if (auto it = declared_.find(name); it != declared_.end() &&
	    (suffixesOf(fams_[it->second].kind, om_) & bit(SfxNone)))
		fam = it->second;
	for (int s = SfxNone + 1; s < SfxEnd && fam == npos; s++) {
		std::string_view t = kSuffix[s];
		if (name.size() <= t.size() || !endsWith(name, t))
			continue;
		auto it = declared_.find(name.substr(0, name.size() - t.size()));
		if (it != declared_.end() &&
		    (suffixesOf(fams_[it->second].kind, om_) & bit(static_cast<Suffix>(s)))) {
			fam = it->second;
			sfx = static_cast<Suffix>(s);
		}
	}
	if (fam == npos) {
		if (auto it = implicit_.find(name); it != implicit_.end()) {
			fam = it->second;
		} else {
			fam = newFamily(at, name, true, line);
			if (fam == npos)
				return false;
			implicit_.emplace(name, fam);
		}
	}
	lastName_ = name;
	lastFam_ = fam;
	lastSfx_ = sfx;
	return true;
}

std::string Parser::describe(const Fam &f) const
{
	if (f.implicit)
		return "the samples of " + std::string(f.name) + " (line " +
		    std::to_string(f.line) + ")";
	return std::string(kindWord(f.kind, om_)) + " " + std::string(f.name) + " (line " +
	    std::to_string(f.line) + ")";
}

// A family about to be exported reserves the names it exports; another
// family may not export one of them.
bool Parser::claim(size_t fi, const char *at)
{
	Fam &f = fams_[fi];
	f.claimed = true;
	std::string base(f.name);
	auto one = [&](std::string_view sfx) {
		auto [it, fresh] = claims_.try_emplace(base + std::string(sfx), fi);
		if (fresh || it->second == fi)
			return true;
		return fail(at, "the name " + it->first + " of " + describe(f) +
		    " is already exported by " + describe(fams_[it->second]));
	};
	switch (f.kind) {
	case Kind::Untyped:
	case Kind::Gauge:
	case Kind::StateSet:
		return one("");
	case Kind::Counter:
		return one(om_ ? "_total" : "");
	case Kind::Info:
		return one("_info");
	case Kind::Histogram:
		return one("") && one("_bucket") && one("_sum") && one("_count");
	case Kind::Summary:
		return one("") && one("_sum") && one("_count");
	case Kind::GaugeHistogram:
		// Exported as a histogram x with x_sum and x_count: those names
		// are taken as well as the ones of its own exposition.
		return one("") && one("_bucket") && one("_gcount") && one("_gsum") &&
		    one("_sum") && one("_count");
	}
	return true;
}

bool Parser::addSample(std::string_view name, const char *nameAt, size_t line, double value,
    std::optional<int64_t> ts)
{
	if (!checkLabels())
		return false;
	size_t fi;
	Suffix sfx;
	if (!resolve(nameAt, name, line, fi, sfx))
		return false;
	Fam &f = fams_[fi];
	if (!f.sampleLine)
		f.sampleLine = line;
	if (sfx == SfxCreated)
		return true; // OpenMetrics' creation time: not exported
	if (!f.claimed && !claim(fi, nameAt))
		return false;
	if ((f.kind == Kind::Histogram || f.kind == Kind::GaugeHistogram) && sfx == SfxBucket &&
	    std::none_of(labels_.begin(), labels_.end(),
	    [](const RawLabel &l) { return l.name == "le"; }))
		return fail(nameAt, "histogram bucket " + std::string(name) + " has no le label");
	if (seriesCount_ >= limits_.maxSeries)
		return fail(nameAt, "more than " + std::to_string(limits_.maxSeries) + " series");
	seriesCount_++;

	Sample &s = f.samples.emplace_back();
	switch (f.kind) {
	case Kind::Histogram:
	case Kind::GaugeHistogram:
	case Kind::Summary:
		s.suffix = kSuffix[sfx];
		break;
	default:
		break; // counter x_total and info x_info are their family's name
	}
	s.labels.reserve(labels_.size());
	for (const auto &l : labels_)
		s.labels.push_back({std::string(l.name), l.escaped ? unescape(l.value, true) :
		    std::string(l.value)});
	s.value = value;
	s.timestampMs = ts;
	return true;
}

std::vector<Family> Parser::finish()
{
	std::vector<Family> out;
	out.reserve(fams_.size());
	for (Fam &f : fams_) {
		if (f.samples.empty())
			continue;
		if (f.kind == Kind::GaugeHistogram) {
			for (auto &smp : f.samples) {
				if (smp.suffix == kSuffix[SfxGCount])
					smp.suffix = kSuffix[SfxCount];
				else if (smp.suffix == kSuffix[SfxGSum])
					smp.suffix = kSuffix[SfxSum];
			}
		}
		Family &o = out.emplace_back();
		o.name = f.name;
		if (om_ && f.kind == Kind::Counter)
			o.name += "_total";
		else if (f.kind == Kind::Info)
			o.name += "_info";
		o.type = metricType(f.kind);
		o.help = std::move(f.help);
		o.unit = std::move(f.unit);
		o.samples = std::move(f.samples);
	}
	return out;
}

} // namespace

PromFormat detectPromFormat(std::string_view text)
{
	size_t end = text.find_last_not_of('\n');
	if (end == std::string_view::npos)
		return PromFormat::Text;
	text = text.substr(0, end + 1);
	size_t nl = text.rfind('\n');
	std::string_view last = nl == std::string_view::npos ? text : text.substr(nl + 1);
	return last == "# EOF" ? PromFormat::OpenMetrics : PromFormat::Text;
}

std::optional<double> parsePromFloat(std::string_view s)
{
	std::string_view body = s;
	bool negative = false;
	if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
		negative = body[0] == '-';
		body.remove_prefix(1);
	}
	constexpr double inf = std::numeric_limits<double>::infinity();
	if (equalsNoCase(body, "inf") || equalsNoCase(body, "infinity"))
		return negative ? -inf : inf;
	if (body.size() == s.size() && equalsNoCase(body, "nan"))
		return std::numeric_limits<double>::quiet_NaN();

	// digits [. digits] | . digits, then [eE] [+-] digits
	size_t i = 0, n = body.size(), digits = 0;
	while (i < n && isDigit(body[i]))
		i++;
	digits = i;
	if (i < n && body[i] == '.') {
		size_t f = ++i;
		while (i < n && isDigit(body[i]))
			i++;
		digits += i - f;
	}
	if (digits == 0)
		return std::nullopt;
	if (i < n && (body[i] == 'e' || body[i] == 'E')) {
		i++;
		if (i < n && (body[i] == '+' || body[i] == '-'))
			i++;
		size_t e = i;
		while (i < n && isDigit(body[i]))
			i++;
		if (i == e)
			return std::nullopt;
	}
	if (i != n)
		return std::nullopt;
	double v = 0;
	auto r = std::from_chars(body.data(), body.data() + n, v, std::chars_format::general);
	if (r.ec == std::errc::result_out_of_range) {
		// Go: too large is an error, too small rounds to zero.
		if (magnitude(body) > 0)
			return std::nullopt;
		v = 0;
	} else if (r.ec != std::errc() || r.ptr != body.data() + n) {
		return std::nullopt;
	}
	return negative ? -v : v;
}

Result<std::vector<Family>> parsePromText(std::string_view text, PromFormat format,
    const PromParseLimits &limits)
{
	Parser parser(text, format == PromFormat::OpenMetrics, limits);
	return parser.run();
}

Result<std::vector<Family>> parsePromText(std::string_view text, const PromParseLimits &limits)
{
	return parsePromText(text, detectPromFormat(text), limits);
}

} // namespace pme::worker
