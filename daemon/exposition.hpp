// SPDX-License-Identifier: ISC
// Writing the exposition: the text format 0.0.4 and OpenMetrics 1.0, the
// choice between them (Accept), and gzip in pieces (Accept-Encoding).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/config.hpp"
#include "common/metric.hpp"

namespace pme::daemon {

using LabelView = std::pair<std::string_view, std::string_view>;

// The formats /metrics is served in.
enum class Format : uint8_t { Text, OpenMetrics };
constexpr size_t FormatCount = 2;
// "text/plain; version=0.0.4; charset=utf-8" or
// "application/openmetrics-text; version=1.0.0; charset=utf-8".
const char *contentType(Format format);
// "text" or "openmetrics": the format label of pme_scrapes_total.
const char *formatName(Format format);

// The format an Accept header asks for: OpenMetrics when a media range
// application/openmetrics-text (version 1.0.0, 0.0.1 or none) has the
// highest q of the ranges pmed can serve, the first one listed winning a
// tie (text/plain of version 0.0.4 or none, text/* and */* stand for the
// text format); else, and when the header is absent or malformed, the
// text format 0.0.4.
Format negotiateFormat(std::string_view accept);
// Whether an Accept-Encoding header allows gzip: gzip (or x-gzip) with a
// q above 0, or, when gzip is not named, * with a q above 0.
bool acceptsGzip(std::string_view acceptEncoding);

// The shortest text that parses back to exactly v (std::to_chars): "0.1",
// "1e-09", "1e+21"; integers up to 2^53 in full ("42", "1700000000");
// "NaN", "+Inf", "-Inf".  Valid in both formats.
void appendValue(std::string &out, double v);
// HELP text of the 0.0.4 format: backslash and newline escaped.
void appendHelp(std::string &out, std::string_view text);
// HELP text of OpenMetrics: backslash, newline and double quote escaped.
void appendHelpOm(std::string &out, std::string_view text);
// A label value: backslash, double quote and newline escaped.
void appendLabelValue(std::string &out, std::string_view text);

// The TYPE word of the 0.0.4 format: info and stateset are written as gauge.
const char *typeName004(common::MetricType type);
// The TYPE word of OpenMetrics: untyped is "unknown".
const char *typeNameOm(common::MetricType type);

// "# HELP name text\n# TYPE name type\n"; an empty help is replaced by the
// name, as every family carries a HELP line.
void appendHeader(std::string &out, std::string_view name, std::string_view help,
    common::MetricType type);
// The same in either format; in OpenMetrics, `name` is the name of the
// family's samples in 0.0.4 and the header uses omFamilyName().
void appendHeader(std::string &out, std::string_view name, std::string_view help,
    common::MetricType type, Format format);

// "name{a="x",b="y"} value\n": the sample's own labels first, then the
// constant ones.  No braces when there is no label.
void appendSample(std::string &out, std::string_view name, const std::vector<common::Label> &labels,
    const common::Pairs &constLabels, double value);
void appendSample(std::string &out, std::string_view name, std::initializer_list<LabelView> labels,
    double value);

// ---- OpenMetrics ----

// The OpenMetrics name of a family that the 0.0.4 format calls `name`:
// without "_total" for a counter and without "_info" for an info, whose
// samples OpenMetrics writes with that suffix; the name itself otherwise.
std::string_view omFamilyName(std::string_view name, common::MetricType type);
// The family's own OpenMetrics name and every sample name it may write
// (x, x_total and x_created for a counter x): OpenMetrics forbids another
// family of the exposition any of them.
std::vector<std::string> omSampleNames(std::string_view name, common::MetricType type);
// Whether "# UNIT name unit" is valid for the family of OpenMetrics name
// `name`: a unit made of name characters, the name ending in "_" and the
// unit, and a type that may have one (not info, not stateset).
bool omUnitFits(std::string_view name, common::MetricType type, std::string_view unit);
// "# TYPE name type\n", "# UNIT name unit\n" when the unit fits,
// "# HELP name text\n" (an empty help is replaced by the name), in the
// order OpenMetrics recommends; `name` is the OpenMetrics name.
void appendHeaderOm(std::string &out, std::string_view name, std::string_view help,
    common::MetricType type, std::string_view unit = {});
// A number as OpenMetrics wants the values of le and quantile labels
// ("Canonical Numbers"): Go's shortest %g with ".0" added when there is
// neither a point nor an exponent: "0.5", "1.0", "100000.0", "1e+06",
// "1e-05", "+Inf".
void appendCanonical(std::string &out, double v);
// A timestamp of the 0.0.4 format (milliseconds) in the seconds that
// OpenMetrics uses: 1700000000123 -> "1700000000.123", 5000 -> "5".
void appendSeconds(std::string &out, int64_t ms);
// A number as Prometheus reads one ("+Inf", "NaN", "0.25", "1e3"); false
// when the whole text is not one.
bool parseNumber(std::string_view text, double *out);

// What to do with one label of a rendered label list.
enum class LabelEdit {
	Canonical, // its value, when it is a number, as appendCanonical() writes it
	Drop,      // leave it out (braces and all when it was the only one)
};
// `labels` as appendSample() wrote them ("" or "{a="x",le="1"}") with
// the label `name` edited.
void appendLabelsEdited(std::string &out, std::string_view labels, std::string_view name,
    LabelEdit edit);
// One sample line of the 0.0.4 format, as appendSample() wrote it
// (followed by a timestamp in milliseconds when `timestamped`), in
// OpenMetrics: named `name` instead of its first nameLen bytes, the value
// of the label `canonical` (le, quantile; none when empty) made canonical,
// the timestamp in seconds.
void appendOmSample(std::string &out, std::string_view line, size_t nameLen,
    std::string_view name, bool timestamped, std::string_view canonical = {});
// The label text of such a line: "" or "{...}".
std::string_view sampleLabels(std::string_view line, size_t nameLen, bool timestamped);

// ---- gzip ----

// A body served with gzip is one gzip member (RFC 1952): gzipHeader(),
// the pieces of the body that stay the same from one scrape to the next,
// each deflated once (deflatePiece()), and gzipTail() for the part made
// on each request.
std::string_view gzipHeader();
// One piece as raw deflate ended by a sync flush (byte-aligned, nothing
// final), so that another piece or the tail can follow it, and its CRC-32.
struct Deflated {
	std::string bytes;
	uint32_t crc = 0;
	int level = 0;
};
// zlib's fastest level, for a piece just changed, and its default level,
// for a piece served so often unchanged that fewer bytes are worth the
// CPU (MetricStore::expositionParts()).
constexpr int GzipFast = 1;
constexpr int GzipSmall = 6;
Deflated deflatePiece(std::string_view text, int level = GzipFast);
// The CRC-32 of a text A followed by B, from theirs and B's length.
uint32_t crc32Combine(uint32_t crcA, uint32_t crcB, uint64_t lengthB);
// The end of a member whose pieces so far inflate to `size` bytes of
// CRC-32 `crc`: `rest` in stored blocks (not compressed), the last one
// final, then the trailer.
std::string gzipTail(uint32_t crc, uint64_t size, std::string_view rest);

// Names as the text format accepts them: [a-zA-Z_:][a-zA-Z0-9_:]* for
// metrics, [a-zA-Z_][a-zA-Z0-9_]* (not starting with "__") for labels.
bool validMetricName(std::string_view name);
bool validLabelName(std::string_view name);
bool validUtf8(std::string_view text);

} // namespace pme::daemon
