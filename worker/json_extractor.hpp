// SPDX-License-Identifier: ISC
// Content type json: one RFC 9535 JSONPath filter per metric, one series per
// selected node, labels from the node's keys and neighbours.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <jansson.h>

#include "common/c_deleter.hpp"
#include "common/config.hpp"
#include "common/error.hpp"
#include "common/json_path.hpp"
#include "common/structured_template.hpp"
#include "structured_value.hpp"

namespace pme::worker {

// A source's output parsed once per cycle and shared by the group's metrics.
class JsonDocument {
public:
	// Any JSON value at the top; "\u0000" in strings is refused, and so
	// is nesting deeper than jansson's limit (2048).  Errors read
	// "invalid JSON at line L, column C: what jansson found".
	static common::Result<JsonDocument> parse(std::string_view text);

	json_t *root() const { return root_.get(); }

private:
	common::CPtr<json_t> root_;
};

// A metric's filter and templates compiled once at startup.
class JsonExtractor {
public:
	// Fails on a bad JSONPath, a bad template, a value template that is
	// not exactly one reference, a bad value_regex, or a type that one
	// json value cannot give (histogram, summary).
	static common::Result<JsonExtractor> compile(const common::MetricConfig &metric);

	// One series per node of the filter's nodelist, with per-series errors.
	Extraction extract(const JsonDocument &doc) const;

	const common::MetricConfig &metric() const { return metric_; }

private:
	JsonExtractor(common::JsonPath filter, ValueReader reader)
	    : filter_(std::move(filter)), reader_(std::move(reader)) {}

	common::MetricConfig metric_;
	common::JsonPath filter_;
	ValueReader reader_;
	std::optional<common::NodeRef> value_;
	std::vector<std::pair<std::string, common::StructuredTemplate>> labels_;
};

} // namespace pme::worker
