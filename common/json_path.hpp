// SPDX-License-Identifier: ISC
// RFC 9535 JSONPath queries compiled once and evaluated on jansson documents.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <jansson.h>

#include "common/error.hpp"

namespace pme::common {

namespace jsonpath {
struct Query;
}

class JsonPath
{
public:
	// One selected node: the value (borrowed from the document) and its
	// location as member names and array indices from the root.
	struct Node {
		json_t *value;
		std::vector<std::variant<std::string, size_t>> path;
	};

	// Parses and type-checks a whole query.  Errors read
	// "at offset N: what was expected" with N a 0-based byte offset.
	static common::Result<JsonPath> compile(const std::string &query);

	// The nodelist in RFC 9535 order.  `root` stays owned by the caller and
	// must outlive the returned nodes.
	std::vector<Node> evaluate(json_t *root) const;

	// The RFC 9535 normalized path of a node: $['a'][0].
	static std::string normalizedPath(const Node &node);

	const std::string &text() const { return text_; }
	// RFC 9535 section 2.3.5.1: only name and index selectors, one per
	// child segment; such a query selects at most one node.
	bool singular() const;

private:
	std::string text_;
	std::shared_ptr<const jsonpath::Query> query_;
};

} // namespace pme::common
