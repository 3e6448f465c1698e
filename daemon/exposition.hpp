// SPDX-License-Identifier: ISC
// Writing the Prometheus text format 0.0.4: values, escaping, sample lines.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/config.hpp"
#include "common/metric.hpp"

namespace pme::daemon {

using LabelView = std::pair<std::string_view, std::string_view>;

// The shortest text that parses back to exactly v (std::to_chars): "0.1",
// "1e-09", "1e+21"; integers up to 2^53 in full ("42", "1700000000");
// "NaN", "+Inf", "-Inf".
void appendValue(std::string &out, double v);
// HELP text: backslash and newline escaped.
void appendHelp(std::string &out, std::string_view text);
// A label value: backslash, double quote and newline escaped.
void appendLabelValue(std::string &out, std::string_view text);

// The TYPE word of the 0.0.4 format: info and stateset are written as gauge.
const char *typeName004(common::MetricType type);

// "# HELP name text\n# TYPE name type\n"; an empty help is replaced by the
// name, as every family carries a HELP line.
void appendHeader(std::string &out, std::string_view name, std::string_view help,
    common::MetricType type);

// "name{a="x",b="y"} value\n": the sample's own labels first, then the
// constant ones.  No braces when there is no label.
void appendSample(std::string &out, std::string_view name, const std::vector<common::Label> &labels,
    const common::Pairs &constLabels, double value);
void appendSample(std::string &out, std::string_view name, std::initializer_list<LabelView> labels,
    double value);

// Names as the text format accepts them: [a-zA-Z_:][a-zA-Z0-9_:]* for
// metrics, [a-zA-Z_][a-zA-Z0-9_]* (not starting with "__") for labels.
bool validMetricName(std::string_view name);
bool validLabelName(std::string_view name);
bool validUtf8(std::string_view text);

} // namespace pme::daemon
