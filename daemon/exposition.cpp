// SPDX-License-Identifier: ISC
// Writing the exposition: the text format 0.0.4 and OpenMetrics 1.0, the
// choice between them (Accept), and gzip in pieces (Accept-Encoding).
//
// The store renders every sample line once, in the 0.0.4 format, when a
// result is applied.  OpenMetrics differs from it only in a few places of
// a line (a counter's samples are named x_total and an info's x_info
// whatever the family is called, timestamps are in seconds, le and
// quantile values are canonical numbers), so its lines are made from the
// 0.0.4 ones by the functions here, without going back to the samples:
// what is between the name and the value, labels escaped and all, is
// copied, or edited label by label for le and quantile.  The metadata
// differ more (TYPE, UNIT and HELP in that order, a counter family named
// without _total, HELP escaping double quotes too, types info, stateset
// and unknown written as such) and are written here from scratch.
//
// A scrape's body is the collected families, which change when a result
// arrives, followed by pmed's own metrics, which change on every scrape.
// Compressing the whole body on every scrape would cost the CPU that
// rendering once per change saves, so a gzip member is made of pieces:
// each piece of the families (a family's header, a group's samples) is
// deflated on its own, once per change, and its stream left open on a
// byte boundary (Z_SYNC_FLUSH ends the block with an empty stored block
// and marks nothing final).  A deflate stream may follow another's
// non-final blocks at a byte boundary: it just does not refer back to the
// earlier data, so the pieces one after the other are one valid stream.
// Each scrape ends it with its own small part in stored blocks, the last
// one final, which costs a copy and no z_stream, and writes the trailer
// from the pieces' CRCs (crc32_combine) and the total length.
#include "exposition.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <new>
#include <optional>
#include <stdexcept>

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

namespace {

// `text` with backslash and newline escaped, and double quote if `quote`:
// the runs between them are appended whole, as almost every text has
// nothing to escape.
void appendEscaped(std::string &out, std::string_view text, bool quote)
{
	size_t run = 0;
	for (size_t i = 0; i < text.size(); i++) {
		char c = text[i];
		if (c != '\\' && c != '\n' && !(quote && c == '"'))
			continue;
		out.append(text.data() + run, i - run);
		out += c == '\n' ? "\\n" : c == '"' ? "\\\"" : "\\\\";
		run = i + 1;
	}
	out.append(text.data() + run, text.size() - run);
}

} // namespace

void appendHelp(std::string &out, std::string_view text)
{
	appendEscaped(out, text, false);
}

void appendLabelValue(std::string &out, std::string_view text)
{
	appendEscaped(out, text, true);
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

// ---- negotiation ----

const char *contentType(Format format)
{
	return format == Format::OpenMetrics ?
	    "application/openmetrics-text; version=1.0.0; charset=utf-8" :
	    "text/plain; version=0.0.4; charset=utf-8";
}

const char *formatName(Format format)
{
	return format == Format::OpenMetrics ? "openmetrics" : "text";
}

namespace {

std::string_view trim(std::string_view s)
{
	size_t b = s.find_first_not_of(" \t");
	if (b == std::string_view::npos)
		return {};
	size_t e = s.find_last_not_of(" \t");
	return s.substr(b, e - b + 1);
}

bool iequals(std::string_view a, std::string_view b)
{
	if (a.size() != b.size())
		return false;
	for (size_t i = 0; i < a.size(); i++) {
		char x = a[i], y = b[i];
		if (x >= 'A' && x <= 'Z')
			x = static_cast<char>(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = static_cast<char>(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

// The elements of a comma-separated header list, a comma inside a quoted
// parameter value ("...") not counting; empty elements are skipped.
std::vector<std::string_view> listElements(std::string_view header)
{
	std::vector<std::string_view> out;
	bool quoted = false;
	size_t start = 0;
	for (size_t i = 0; i <= header.size(); i++) {
		char c = i < header.size() ? header[i] : ',';
		if (quoted) {
			if (c == '\\')
				i++;
			else if (c == '"')
				quoted = false;
			continue;
		}
		if (c == '"') {
			quoted = true;
		} else if (c == ',') {
			std::string_view e = trim(header.substr(start, i - start));
			if (!e.empty())
				out.push_back(e);
			start = i + 1;
		}
	}
	return out;
}

// One element of Accept or Accept-Encoding: "type/subtype" or a coding,
// its version parameter and its q (RFC 9110 §12.4.2: 0 to 1, three
// decimals at most).  nullopt when it is malformed: such an element is
// ignored rather than guessed at.
struct Element {
	std::string_view value;
	std::string version;
	bool hasVersion = false;
	double q = 1;
};

std::optional<Element> parseElement(std::string_view text)
{
	Element e;
	size_t semi = text.find(';');
	e.value = trim(text.substr(0, semi));
	if (e.value.empty())
		return std::nullopt;
	while (semi != std::string_view::npos) {
		text.remove_prefix(semi + 1);
		size_t eq = text.find('=');
		if (eq == std::string_view::npos)
			return std::nullopt;
		std::string_view name = trim(text.substr(0, eq));
		text.remove_prefix(eq + 1);
		size_t b = text.find_first_not_of(" \t");
		text.remove_prefix(b == std::string_view::npos ? text.size() : b);
		std::string value;
		if (!text.empty() && text[0] == '"') {
			// A quoted string, which may hold a ';'.
			size_t i = 1;
			for (; i < text.size() && text[i] != '"'; i++) {
				if (text[i] == '\\' && i + 1 < text.size())
					i++;
				value += text[i];
			}
			if (i == text.size())
				return std::nullopt;
			text.remove_prefix(i + 1);
			semi = text.find(';');
			if (!trim(text.substr(0, semi)).empty())
				return std::nullopt;
		} else {
			semi = text.find(';');
			value = std::string(trim(text.substr(0, semi)));
		}
		if (iequals(name, "q")) {
			double q = -1;
			auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), q);
			if (ec != std::errc() || end != value.data() + value.size() || value.size() > 5 ||
			    !(q >= 0 && q <= 1))
				return std::nullopt;
			e.q = q;
		} else if (iequals(name, "version")) {
			e.version = std::move(value);
			e.hasVersion = true;
		}
	}
	return e;
}

} // namespace

Format negotiateFormat(std::string_view accept)
{
	// Highest q (0: none) and position of a range that means OpenMetrics,
	// and of one that the text format satisfies; the first of equals.
	double omQ = 0, textQ = 0;
	size_t omAt = 0, textAt = 0;
	size_t at = 0;
	for (std::string_view element : listElements(accept)) {
		auto e = parseElement(element);
		at++;
		if (!e || e->q <= 0)
			continue;
		size_t slash = e->value.find('/');
		if (slash == std::string_view::npos)
			continue;
		std::string_view type = e->value.substr(0, slash), sub = e->value.substr(slash + 1);
		bool om = iequals(type, "application") && iequals(sub, "openmetrics-text") &&
		    (!e->hasVersion || e->version == "1.0.0" || e->version == "0.0.1");
		bool text = (type == "*" && sub == "*") || (iequals(type, "text") && (sub == "*" ||
		    (iequals(sub, "plain") && (!e->hasVersion || e->version == "0.0.4"))));
		if (om && e->q > omQ) {
			omQ = e->q;
			omAt = at;
		}
		if (text && e->q > textQ) {
			textQ = e->q;
			textAt = at;
		}
	}
	if (omQ > 0 && (omQ > textQ || (omQ == textQ && omAt < textAt)))
		return Format::OpenMetrics;
	return Format::Text;
}

bool acceptsGzip(std::string_view acceptEncoding)
{
	std::optional<double> gzip, any;
	for (std::string_view element : listElements(acceptEncoding)) {
		auto e = parseElement(element);
		if (!e)
			continue;
		if (iequals(e->value, "gzip") || iequals(e->value, "x-gzip"))
			gzip = std::max(gzip.value_or(0), e->q);
		else if (e->value == "*")
			any = std::max(any.value_or(0), e->q);
	}
	return gzip ? *gzip > 0 : any && *any > 0;
}

// ---- OpenMetrics ----

const char *typeNameOm(common::MetricType type)
{
	switch (type) {
	case common::MetricType::Counter: return "counter";
	case common::MetricType::Gauge: return "gauge";
	case common::MetricType::Histogram: return "histogram";
	case common::MetricType::Summary: return "summary";
	case common::MetricType::Info: return "info";
	case common::MetricType::StateSet: return "stateset";
	case common::MetricType::Untyped: return "unknown";
	}
	return "unknown";
}

void appendHelpOm(std::string &out, std::string_view text)
{
	appendEscaped(out, text, true);
}

std::string_view omFamilyName(std::string_view name, common::MetricType type)
{
	std::string_view suffix = type == common::MetricType::Counter ? "_total" :
	    type == common::MetricType::Info ? "_info" : "";
	if (!suffix.empty() && name.size() > suffix.size() && name.ends_with(suffix))
		name.remove_suffix(suffix.size());
	return name;
}

std::vector<std::string> omSampleNames(std::string_view name, common::MetricType type)
{
	std::vector<std::string> out{std::string(name)};
	auto add = [&](std::initializer_list<const char *> suffixes) {
		for (const char *sfx : suffixes)
			out.push_back(std::string(name) + sfx);
	};
	switch (type) {
	case common::MetricType::Counter: add({"_total", "_created"}); break;
	case common::MetricType::Info: add({"_info"}); break;
	case common::MetricType::Histogram: add({"_bucket", "_count", "_sum", "_created"}); break;
	case common::MetricType::Summary: add({"_count", "_sum", "_created"}); break;
	default: break;
	}
	return out;
}

bool omUnitFits(std::string_view name, common::MetricType type, std::string_view unit)
{
	if (unit.empty() || type == common::MetricType::Info || type == common::MetricType::StateSet)
		return false;
	for (char c : unit)
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '_' || c == ':'))
			return false;
	return name.size() > unit.size() + 1 && name.ends_with(unit) &&
	    name[name.size() - unit.size() - 1] == '_';
}

void appendHeaderOm(std::string &out, std::string_view name, std::string_view help,
    common::MetricType type, std::string_view unit)
{
	out += "# TYPE ";
	out += name;
	out += ' ';
	out += typeNameOm(type);
	out += '\n';
	if (omUnitFits(name, type, unit)) {
		out += "# UNIT ";
		out += name;
		out += ' ';
		out += unit;
		out += '\n';
	}
	out += "# HELP ";
	out += name;
	out += ' ';
	appendHelpOm(out, help.empty() ? name : help);
	out += '\n';
}

void appendHeader(std::string &out, std::string_view name, std::string_view help,
    common::MetricType type, Format format)
{
	if (format == Format::OpenMetrics)
		appendHeaderOm(out, omFamilyName(name, type), help, type);
	else
		appendHeader(out, name, help, type);
}

void appendCanonical(std::string &out, double v)
{
	if (!std::isfinite(v)) {
		appendValue(out, v);
		return;
	}
	// Go's %g with the shortest digits switches to an exponent below
	// 1e-4 and from 1e+6 on (strconv: "use precision 6 for this
	// decision"), whatever the number of digits.
	char buf[32];
	auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
	if (ec != std::errc()) {
		out += "NaN";
		return;
	}
	std::string_view sci(buf, static_cast<size_t>(end - buf));
	int exp = 0;
	size_t e = sci.find('e');
	const char *digits = buf + e + 1 + (buf[e + 1] == '+' ? 1 : 0);
	std::from_chars(digits, end, exp);
	if (exp < -4 || exp >= 6) {
		out += sci;
		return;
	}
	auto [fend, fec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
	if (fec != std::errc()) {
		out += "NaN";
		return;
	}
	std::string_view fixed(buf, static_cast<size_t>(fend - buf));
	out += fixed;
	if (fixed.find('.') == std::string_view::npos)
		out += ".0";
}

void appendSeconds(std::string &out, int64_t ms)
{
	// In integers: a double would print 1700000000.123 as
	// 1700000000.1229999.
	uint64_t a = ms < 0 ? 0 - static_cast<uint64_t>(ms) : static_cast<uint64_t>(ms);
	if (ms < 0)
		out += '-';
	char buf[24];
	auto [end, ec] = std::to_chars(buf, buf + sizeof buf, a / 1000);
	out.append(buf, end);
	unsigned frac = static_cast<unsigned>(a % 1000);
	if (frac == 0)
		return;
	char f[4] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
	    static_cast<char>('0' + frac % 10)};
	size_t n = 4;
	while (f[n - 1] == '0')
		n--;
	out.append(f, n);
}

bool parseNumber(std::string_view text, double *out)
{
	bool negative = false;
	if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
		negative = text[0] == '-';
		text.remove_prefix(1);
		// from_chars takes no sign of its own after ours.
		if (!text.empty() && (text[0] == '+' || text[0] == '-'))
			return false;
	}
	if (text.empty())
		return false;
	double v = 0;
	auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
	if (ec != std::errc() || end != text.data() + text.size())
		return false;
	*out = negative ? -v : v;
	return true;
}

namespace {

// The end of the quoted value that starts at labels[at] (just after the
// opening quote): the index of its closing quote.
size_t valueEnd(std::string_view labels, size_t at)
{
	while (at < labels.size() && labels[at] != '"')
		at += labels[at] == '\\' ? 2 : 1;
	return std::min(at, labels.size());
}

} // namespace

void appendLabelsEdited(std::string &out, std::string_view labels, std::string_view name,
    LabelEdit edit)
{
	if (labels.size() < 2 || labels.front() != '{') {
		out += labels;
		return;
	}
	// Labels as appendLabel() writes them: name="value" separated by
	// commas, values escaped, so that a quote ends a value only when no
	// backslash escapes it.
	bool first = true;
	size_t i = 1;
	while (i < labels.size() && labels[i] != '}') {
		size_t eq = labels.find('=', i);
		if (eq == std::string_view::npos || eq + 1 >= labels.size())
			break;
		size_t close = valueEnd(labels, eq + 2);
		std::string_view label = labels.substr(i, close + 1 - i);
		std::string_view value = labels.substr(eq + 2, close - eq - 2);
		bool match = labels.substr(i, eq - i) == name;
		if (!(match && edit == LabelEdit::Drop)) {
			out += first ? '{' : ',';
			first = false;
			double v;
			if (match && value.find('\\') == std::string_view::npos &&
			    parseNumber(value, &v)) {
				out += labels.substr(i, eq + 2 - i);
				appendCanonical(out, v);
				out += '"';
			} else {
				out += label;
			}
		}
		i = close + 1;
		if (i < labels.size() && labels[i] == ',')
			i++;
	}
	if (!first)
		out += '}';
}

namespace {

// Where the value of a sample line starts and ends.
std::pair<size_t, size_t> valueSpan(std::string_view line, bool timestamped)
{
	size_t end = line.size() - 1; // the '\n'
	if (timestamped)
		end = line.rfind(' ', end - 1);
	size_t start = line.rfind(' ', end - 1) + 1;
	return {start, end};
}

} // namespace

std::string_view sampleLabels(std::string_view line, size_t nameLen, bool timestamped)
{
	auto [start, end] = valueSpan(line, timestamped);
	return line.substr(nameLen, start - 1 - nameLen);
}

void appendOmSample(std::string &out, std::string_view line, size_t nameLen,
    std::string_view name, bool timestamped, std::string_view canonical)
{
	auto [start, end] = valueSpan(line, timestamped);
	out += name;
	std::string_view labels = line.substr(nameLen, start - 1 - nameLen);
	if (canonical.empty())
		out += labels;
	else
		appendLabelsEdited(out, labels, canonical, LabelEdit::Canonical);
	out += line.substr(start - 1, end - start + 1);
	if (timestamped) {
		int64_t ms = 0;
		std::string_view ts = line.substr(end + 1, line.size() - end - 2);
		std::from_chars(ts.data(), ts.data() + ts.size(), ms);
		out += ' ';
		appendSeconds(out, ms);
	}
	out += '\n';
}

// ---- gzip ----

namespace {

// Level 1 (GzipFast) first: pieces are compressed on the event loop each
// time their family changes, which for a large exporter whose counters
// move is every cycle, and a scrape that finds them changed waits for it.
// On the 7.9 MB body of 100,000 series (tests/bench/bench_render), the
// fastest level takes a fifth of the CPU of the default level 6 (28
// against 134 ms) for a result 22% larger (0.89 against 0.73 MB).  A
// piece that stays the same while it is served many times is compressed
// again at level 6 (GzipSmall): the CPU is spent once, the bytes saved on
// every answer, which is what bounds a client on a fast link.

// A raw deflate stream (no zlib or gzip framing of its own).
class Deflater {
public:
	explicit Deflater(int level)
	{
		if (deflateInit2(&z_, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			throw std::bad_alloc();
	}
	~Deflater() { deflateEnd(&z_); }
	Deflater(const Deflater &) = delete;
	Deflater &operator=(const Deflater &) = delete;

	// Compress `in` onto `out`, ended by a sync flush, as a stream of
	// its own.
	void run(std::string &out, std::string_view in)
	{
		if (deflateReset(&z_) != Z_OK)
			throw std::logic_error("deflateReset: stream error");
		// What deflate may produce at worst, so that one call does it.
		out.resize(deflateBound(&z_, static_cast<uLong>(in.size())) + 16);
		z_.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data()));
		z_.next_out = reinterpret_cast<Bytef *>(out.data());
		size_t left = in.size(), room = out.size();
		do {
			// avail_in and avail_out are 32 bits wide.
			uInt chunk = static_cast<uInt>(std::min<size_t>(left, 1u << 30));
			z_.avail_in = chunk;
			left -= chunk;
			int mode = left == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH;
			do {
				size_t done = static_cast<size_t>(z_.next_out -
				    reinterpret_cast<Bytef *>(out.data()));
				if (room - done < 64) {
					out.resize(out.size() * 2);
					room = out.size();
					z_.next_out = reinterpret_cast<Bytef *>(out.data()) + done;
				}
				z_.avail_out = static_cast<uInt>(std::min<size_t>(room - done, 1u << 30));
				// Z_STREAM_ERROR only for a broken stream; Z_BUF_ERROR
				// is "no progress" when the output fit exactly.
				if (deflate(&z_, mode) == Z_STREAM_ERROR)
					throw std::logic_error("deflate: stream error");
			} while (z_.avail_out == 0 || z_.avail_in > 0);
		} while (left > 0);
		out.resize(static_cast<size_t>(z_.next_out - reinterpret_cast<Bytef *>(out.data())));
		out.shrink_to_fit();
	}

private:
	z_stream z_{};
};

void appendLe32(std::string &out, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		out += static_cast<char>((v >> (8 * i)) & 0xff);
}

} // namespace

std::string_view gzipHeader()
{
	// RFC 1952: magic, deflate, no flags, no mtime, no extra flags, Unix.
	static constexpr char header[10] = {'\x1f', '\x8b', 8, 0, 0, 0, 0, 0, 0, 3};
	return {header, sizeof header};
}

Deflated deflatePiece(std::string_view text, int level)
{
	// One stream per level for every piece: its memory (some 270 KB) is
	// allocated and set up once, not per piece.
	static Deflater fast(GzipFast), small(GzipSmall);
	Deflated d;
	d.level = level == GzipSmall ? GzipSmall : GzipFast;
	(d.level == GzipSmall ? small : fast).run(d.bytes, text);
	d.crc = static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef *>(text.data()),
	    text.size()));
	return d;
}

uint32_t crc32Combine(uint32_t crcA, uint32_t crcB, uint64_t lengthB)
{
	return static_cast<uint32_t>(crc32_combine(crcA, crcB, static_cast<z_off_t>(lengthB)));
}

std::string gzipTail(uint32_t crc, uint64_t size, std::string_view rest)
{
	// Stored blocks (RFC 1951 3.2.4): a header byte (BFINAL, BTYPE 00)
	// that the previous piece's sync flush left byte-aligned, then LEN
	// and its one's complement, then the bytes.  An empty rest is one
	// empty final block.
	constexpr size_t MaxStored = 65535;
	std::string out;
	out.reserve(rest.size() + (rest.size() / MaxStored + 1) * 5 + 8);
	size_t at = 0;
	do {
		size_t n = std::min(rest.size() - at, MaxStored);
		bool last = at + n == rest.size();
		out += static_cast<char>(last ? 1 : 0);
		out += static_cast<char>(n & 0xff);
		out += static_cast<char>(n >> 8);
		out += static_cast<char>(~n & 0xff);
		out += static_cast<char>((~n >> 8) & 0xff);
		out.append(rest.substr(at, n));
		at += n;
	} while (at < rest.size());
	uLong restCrc = crc32_z(0, reinterpret_cast<const Bytef *>(rest.data()), rest.size());
	appendLe32(out, crc32Combine(crc, static_cast<uint32_t>(restCrc), rest.size()));
	appendLe32(out, static_cast<uint32_t>(size + rest.size()));
	return out;
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
		// Eight ASCII bytes at a time: almost every text is ASCII.
		uint64_t eight;
		if (n - i >= 8 && (std::memcpy(&eight, s + i, 8), (eight & 0x8080808080808080ULL) == 0)) {
			i += 8;
			continue;
		}
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
