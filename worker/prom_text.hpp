// SPDX-License-Identifier: ISC
// Content type prometheus: parse a whole exposition, text format 0.0.4 or OpenMetrics 1.0.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/metric.hpp"

namespace pme::worker {

enum class PromFormat {
	Text,        // text/plain; version=0.0.4
	OpenMetrics, // application/openmetrics-text; version=1.0.0
};

// OpenMetrics when the last non-empty line is exactly "# EOF", else 0.0.4.
PromFormat detectPromFormat(std::string_view text);

struct PromParseLimits {
	size_t maxSeries = 1000000;  // samples kept, over all families
	size_t maxFamilies = 100000; // families, as exported
};

// The families of an exposition in the order they first appear, each with
// all of its samples (a family whose samples are split over the text is
// joined).  Families without a sample are left out.  An exposition that
// Prometheus 2.x would refuse to ingest is refused whole, with
// "line L, column C: message" (both 1-based, the column in characters).
// See prom_text.cpp for the rules and where pme is stricter.
common::Result<std::vector<common::Family>> parsePromText(std::string_view text,
    const PromParseLimits &limits = {});
common::Result<std::vector<common::Family>> parsePromText(std::string_view text,
    PromFormat format, const PromParseLimits &limits = {});

// A sample value as Prometheus reads it (Go's strconv.ParseFloat without
// hexadecimal forms or underscores): decimal numbers with an optional
// exponent, Inf and Infinity with an optional sign and NaN, in any case.
// Too large is an error; too small is 0.  nullopt when not a number.
std::optional<double> parsePromFloat(std::string_view text);

} // namespace pme::worker
