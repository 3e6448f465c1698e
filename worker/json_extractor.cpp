// SPDX-License-Identifier: ISC
// Content type json: JSONPath filters, one series per selected node.
//
// A group's source is parsed once per cycle into a JsonDocument, and each
// metric's filter selects its nodes in it: `$.status` one node, `$.nodes.*`
// one per member, `$[?@.State == 'running']` one per running container.  A
// node is a series.  Its value is the node itself, or the one node its value
// template names relative to it; its labels come from templates whose
// references (common/structured_template.hpp) are resolved against it.
//
// Resolving a reference needs what the RFC's nodelist gives: the node's
// location from the root, as member names and indices (JsonPath::Node::path).
// `${key}` is the last step of it; `${^...}` walks the root down along all but
// the last few steps (jansson values have no parent pointer); `${$...}`
// starts at the root.  Steps below that
// are plain member and index lookups that may find nothing: a missing or
// null label is the empty string, as a Prometheus label that is not set;
// a missing or null value is an error for that series, with the location
// where it was looked for, `$['nodes']['a1']['load']: is null`.
//
// A singular query (only names and indices) names one node the operator
// expects to exist, so matching nothing is an error for the metric; a query
// with wildcards, slices or filters may rightly select nothing (no container
// running), and gives an empty family.
#include "json_extractor.hpp"

#include <charconv>
#include <cstdint>
#include <string>

#include "common/utf8.hpp"
#include "text_extractor.hpp"

namespace pme::worker {

using common::fail;
using common::JsonPath;
using common::MetricConfig;
using common::MetricType;
using common::NodeRef;
using common::Result;
using common::StructuredTemplate;

namespace {

using Path = std::vector<std::variant<std::string, size_t>>;

// What a reference reached in one document, for one selected node.
struct Reached {
	json_t *value = nullptr;   // borrowed; null when nothing is there
	bool isKey = false;        // ${key}: the text is in key
	std::string key;
	Path path;                 // where the value is, or would be
	std::string tail;          // steps past an index that does not exist

	std::string where() const { return JsonPath::normalizedPath({nullptr, path}) + tail; }
};

json_t *child(json_t *v, const std::variant<std::string, size_t> &step)
{
	if (const size_t *i = std::get_if<size_t>(&step))
		return json_is_array(v) ? json_array_get(v, *i) : nullptr;
	const std::string &name = std::get<std::string>(step);
	return json_is_object(v) ? json_object_getn(v, name.data(), name.size()) : nullptr;
}

// One step as a normalized path writes it, without the leading '$'.
std::string stepText(const NodeRef::Step &step)
{
	if (const int64_t *i = std::get_if<int64_t>(&step))
		return "[" + std::to_string(*i) + "]";
	return JsonPath::normalizedPath({nullptr, {std::get<std::string>(step)}}).substr(1);
}

Reached resolve(const NodeRef &ref, const JsonPath::Node &node, json_t *root)
{
	Reached r;
	if (!ref.fromRoot && ref.up > node.path.size()) {
		// Above the root: nothing there.
		r.path = node.path;
		r.tail = " " + ref.text;
		return r;
	}
	size_t depth = ref.fromRoot ? 0 : node.path.size() - ref.up;
	r.value = root;
	for (size_t i = 0; i < depth; i++) {
		r.path.push_back(node.path[i]);
		r.value = child(r.value, node.path[i]);
	}
	switch (ref.kind) {
	case NodeRef::Kind::Self:
		return r;
	case NodeRef::Kind::Key:
		r.isKey = true;
		if (!r.path.empty()) {
			const auto &last = r.path.back();
			const size_t *i = std::get_if<size_t>(&last);
			r.key = i ? std::to_string(*i) : std::get<std::string>(last);
		}
		return r;
	case NodeRef::Kind::Path:
		break;
	}
	for (const auto &step : ref.path) {
		if (!r.tail.empty()) {
			r.tail += stepText(step);
			continue;
		}
		if (const int64_t *i = std::get_if<int64_t>(&step)) {
			int64_t n = *i;
			if (n < 0 && json_is_array(r.value))
				n += static_cast<int64_t>(json_array_size(r.value));
			if (n < 0) {
				r.value = nullptr;
				r.tail = stepText(step);
				continue;
			}
			r.path.emplace_back(static_cast<size_t>(n));
		} else {
			r.path.emplace_back(std::get<std::string>(step));
		}
		r.value = r.value ? child(r.value, r.path.back()) : nullptr;
	}
	return r;
}

// A json number as a label: integers as integers, reals in the shortest
// form that reads back the same.
std::string numberText(const json_t *v)
{
	if (json_is_integer(v))
		return std::to_string(json_integer_value(v));
	char buf[64];
	auto res = std::to_chars(buf, buf + sizeof(buf), json_real_value(v));
	return std::string(buf, res.ptr);
}

// A label's text from what a reference reached; false for an object or an
// array, which have no text.
bool labelText(const Reached &r, std::string &out)
{
	if (r.isKey) {
		out += r.key;
		return true;
	}
	switch (r.value ? json_typeof(r.value) : JSON_NULL) {
	case JSON_STRING:
		out.append(json_string_value(r.value), json_string_length(r.value));
		return true;
	case JSON_INTEGER:
	case JSON_REAL:
		out += numberText(r.value);
		return true;
	case JSON_TRUE:
		out += "true";
		return true;
	case JSON_FALSE:
		out += "false";
		return true;
	case JSON_NULL:
		return true;
	case JSON_OBJECT:
	case JSON_ARRAY:
		break;
	}
	return false;
}

const char *kindName(const json_t *v)
{
	return json_is_object(v) ? "an object" : "an array";
}

} // namespace

Result<JsonDocument> JsonDocument::parse(std::string_view text)
{
	json_error_t err;
	JsonDocument doc;
	doc.root_.reset(json_loadb(text.data(), text.size(), JSON_DECODE_ANY, &err));
	if (!doc.root_)
		// jansson quotes the token it stopped at, which may be any bytes.
		return fail("invalid JSON at line " + std::to_string(err.line) + ", column " +
		    std::to_string(err.column) + ": " + common::sanitizeUtf8(err.text));
	return doc;
}

Result<JsonExtractor> JsonExtractor::compile(const MetricConfig &metric)
{
	if (metric.mappedHistogram())
		return fail("a histogram read from the source has a filter per bucket, not one "
		    "filter");
	if (metric.filter.empty())
		return fail("json content needs a filter, a JSONPath such as $.status");
	auto filter = JsonPath::compile(metric.filter);
	if (!filter)
		return fail("filter: " + filter.error().message);
	auto reader = ValueReader::compile(metric);
	if (!reader)
		return tl::unexpected(reader.error());

	JsonExtractor x(std::move(*filter), std::move(*reader));
	x.metric_ = metric;
	for (const auto &[name, text] : metric.labels) {
		auto t = StructuredTemplate::parse(text, false);
		if (!t)
			return fail("label '" + name + "': " + t.error().message);
		x.labels_.emplace_back(name, std::move(*t));
	}
	auto value = valueReference(metric, false);
	if (!value)
		return tl::unexpected(value.error());
	x.value_ = std::move(*value);
	return x;
}

Extraction JsonExtractor::extract(const JsonDocument &doc) const
{
	SeriesCollector out(metric_);
	json_t *root = doc.root();
	std::vector<JsonPath::Node> nodes = filter_.evaluate(root);
	if (nodes.empty() && filter_.singular() && !metric_.observed())
		out.failMetric("filter matched nothing");

	for (const JsonPath::Node &node : nodes) {
		std::vector<common::Label> labels;
		bool ok = true;
		for (const auto &[name, t] : labels_) {
			std::string text;
			for (const auto &part : t.parts()) {
				text += part.literal;
				if (!part.ref)
					continue;
				Reached r = resolve(*part.ref, node, root);
				if (!labelText(r, text)) {
					out.reject(JsonPath::normalizedPath(node),
					    "label '" + name + "': " + part.ref->text + " is " +
					    kindName(r.value));
					ok = false;
					break;
				}
			}
			if (!ok)
				break;
			labels.push_back({name, std::move(text)});
		}
		if (!ok)
			continue;
		if (metric_.type == MetricType::Info) {
			out.add(std::move(labels), 1);
			continue;
		}

		Reached r = value_ ? resolve(*value_, node, root) :
		    Reached{node.value, false, {}, node.path, {}};
		Result<double> v;
		if (r.isKey)
			v = reader_.fromString(r.key);
		else if (!r.value)
			v = fail("is missing");
		else switch (json_typeof(r.value)) {
		case JSON_INTEGER:
			v = reader_.fromNumber(static_cast<double>(json_integer_value(r.value)));
			break;
		case JSON_REAL:
			v = reader_.fromNumber(json_real_value(r.value));
			break;
		case JSON_TRUE:
			v = reader_.fromBoolean(true);
			break;
		case JSON_FALSE:
			v = reader_.fromBoolean(false);
			break;
		case JSON_STRING:
			v = reader_.fromString({json_string_value(r.value),
			    json_string_length(r.value)});
			break;
		case JSON_NULL:
			v = fail("is null");
			break;
		case JSON_OBJECT:
		case JSON_ARRAY:
			v = fail(std::string("is ") + kindName(r.value) + ", not a value");
			break;
		}
		if (v)
			out.add(std::move(labels), *v);
		else
			out.fail(std::move(labels), r.where(), v.error().message);
	}
	return out.finish();
}

} // namespace pme::worker
