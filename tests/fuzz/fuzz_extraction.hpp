// SPDX-License-Identifier: ISC
// Shared by fuzz_jsonpath and fuzz_xml: a group run as a worker runs it, then sent and applied.
//
// A worker parses the document once, runs each metric's extractor on it,
// turns each Extraction into a family and a METRIC_ERROR the way
// worker.cpp's Group::addExtraction does, and sends the group's result as
// frames; the supervisor reassembles them and MetricStore::apply() checks
// them against its own configuration.  An error anywhere on that path
// stops the worker, so for the fuzz targets it is a broken invariant: a
// document, however hostile, may fail a metric but must not produce a
// result the supervisor refuses.
#pragma once

#include <cmath>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/config_loader.hpp"
#include "common/group_result.hpp"
#include "common/metric.hpp"
#include "common/utf8.hpp"
#include "daemon/metric_store.hpp"
#include "fuzz_util.hpp"
#include "proto/frame.h"
#include "worker/structured_value.hpp"
#include "worker/text_extractor.hpp"

namespace pme::fuzz {

// What any extraction must be, whatever the document: the metric's name and
// type; at most kMaxSeriesPerMetric samples, without suffix, labelled as
// the metric is, in order, with values that are valid UTF-8 without NUL and
// at most kMaxLabelValue bytes, no two with the same labels, 1 for an info
// metric; errors counted at least as often as kept, and summarised.
inline void checkExtraction(const common::MetricConfig &m, const worker::Extraction &x)
{
	const common::Family &f = x.family;
	check(f.name == m.name && f.type == m.type, "family name or type changed");
	check(f.samples.size() <= worker::kMaxSeriesPerMetric, "more than kMaxSeriesPerMetric");
	check(x.errors.size() <= x.errorCount && x.errors.empty() == (x.errorCount == 0),
	    "errors kept and errors counted disagree");
	std::set<std::vector<std::string>> seen;
	for (const auto &s : f.samples) {
		check(s.suffix.empty(), "a suffix on a sample of a json or xml metric");
		check(s.labels.size() == m.labels.size(), "label count differs from the config");
		std::vector<std::string> values;
		for (size_t i = 0; i < s.labels.size(); i++) {
			const auto &l = s.labels[i];
			check(l.name == m.labels[i].first, "labels out of order");
			check(pme_proto_valid_utf8(l.value.data(), l.value.size()), [&] {
				return "label " + l.name + " is not valid UTF-8 without NUL: " +
				    cLiteral(l.value, 200);
			});
			check(l.value.size() <= worker::kMaxLabelValue, [&] {
				return "label " + l.name + " longer than kMaxLabelValue";
			});
			values.push_back(l.value);
		}
		check(seen.insert(std::move(values)).second, "two samples with the same labels");
		check(m.type != common::MetricType::Info || s.value == 1, "an info sample is not 1");
	}
	for (const auto &e : x.errors)
		check(!e.empty(), "an empty error");
	check(x.errorCount == 0 || !x.summary().empty(), "errors without a summary");
}

inline bool sameBits(double a, double b)
{
	uint64_t x, y;
	std::memcpy(&x, &a, sizeof(x));
	std::memcpy(&y, &b, sizeof(y));
	return x == y || (std::isnan(a) && std::isnan(b));
}

// Encode, reassemble as the supervisor does, compare; the result as the
// supervisor has it.
inline common::GroupResult roundTrip(const common::GroupResult &result)
{
	common::GroupResultAssembler assembler;
	std::optional<common::GroupResult> back;
	pme_proto_decoder dec;
	if (pme_proto_decoder_init(&dec, PME_PROTO_MAX_PAYLOAD) != 0)
		std::abort();
	auto sink = [&](const uint8_t *data, size_t len) -> common::Result<void> {
		size_t took = pme_proto_decoder_feed(&dec, data, len);
		pme_proto_frame f;
		int rc = pme_proto_decoder_next(&dec, &f);
		check(took == len && rc == 1, [&] {
			return std::string("the decoder refuses an encoded frame: ") +
			    pme_proto_strerror(rc);
		});
		auto r = assembler.feed(f);
		check(r.has_value(), [&] {
			return "the assembler refuses a result: " + r.error().message;
		});
		if (*r)
			back = std::move(**r);
		return {};
	};
	auto encoded = common::encodeGroupResult(result, sink);
	pme_proto_decoder_free(&dec);
	check(encoded.has_value(), [&] {
		return "a result does not encode: " + encoded.error().message;
	});
	check(back.has_value(), "no result came out of the assembler");
	check(back->families.size() == result.families.size(), "families differ after decoding");
	for (size_t i = 0; i < result.families.size(); i++) {
		const common::Family &a = result.families[i], &b = back->families[i];
		check(a.name == b.name && a.type == b.type && a.help == b.help &&
		    a.unit == b.unit && a.samples.size() == b.samples.size(),
		    "a family differs after decoding");
		for (size_t j = 0; j < a.samples.size(); j++)
			check(a.samples[j].suffix == b.samples[j].suffix &&
			    a.samples[j].labels == b.samples[j].labels &&
			    a.samples[j].timestampMs == b.samples[j].timestampMs &&
			    sameBits(a.samples[j].value, b.samples[j].value),
			    "a sample differs after decoding");
	}
	check(back->metricErrors == result.metricErrors, "metric errors differ after decoding");
	return std::move(*back);
}

// The metrics an extractor serves: gauges, counters, untyped and info.
// Statesets, observed histograms and summaries are built by the worker
// from extractions in ways of their own, and a mapped histogram has a
// filter per bucket.
inline bool plainMetric(const common::MetricConfig &m)
{
	return !m.observed() && !m.mappedHistogram() && m.type != common::MetricType::StateSet;
}

// A fixture's configuration (tests/data/<format>/<case>/config.yml), with
// its @DATA@ made the absolute path of its directory as the integration
// tests make it; the files are never read.
inline std::string fixtureConfig(const std::string &rel)
{
	std::string text = sourceFile(rel);
	if (text.empty()) {
		std::fprintf(stderr, "%s: cannot read %s (is PME_SOURCE_ROOT set?)\n", targetName,
		    rel.c_str());
		std::exit(1);
	}
	const std::string dir = "/" + rel.substr(0, rel.rfind('/'));
	for (size_t at; (at = text.find("@DATA@")) != std::string::npos;)
		text.replace(at, 6, dir);
	return text;
}

// One json or xml group with the extractor of each of its plain metrics.
template <typename Extractor>
struct Group {
	std::string service;
	const common::GroupConfig *config;
	std::vector<std::pair<const common::MetricConfig *, Extractor>> metrics;
};

// A configuration, its groups of one content type compiled as a worker
// compiles them, and the supervisor's store for it.
template <typename Extractor>
struct Setup {
	common::Config config;
	std::vector<Group<Extractor>> groups;
	std::optional<daemon::MetricStore> store;

	// text: a pme.yml; compile(metric, group) -> Result<Extractor>.
	template <typename Compile>
	Setup(const std::string &text, const std::string &name, common::ContentType content,
	    Compile compile)
	{
		auto c = common::loadConfigString(text, name);
		if (!c) {
			std::fprintf(stderr, "%s: %s does not load: %s\n", targetName, name.c_str(),
			    c.error().front().str().c_str());
			std::exit(1);
		}
		config = std::move(*c);
		for (const auto &s : config.services)
			for (const auto &g : s.groups) {
				if (g.contentType != content)
					continue;
				Group<Extractor> group{s.name, &g, {}};
				for (const auto &m : g.metrics) {
					if (!plainMetric(m))
						continue;
					auto x = compile(m, g);
					if (!x) {
						std::fprintf(stderr, "%s: %s: metric %s does not compile: "
						    "%s\n", targetName, name.c_str(), m.key.c_str(),
						    x.error().message.c_str());
						std::exit(1);
					}
					group.metrics.emplace_back(&m, std::move(*x));
				}
				groups.push_back(std::move(group));
			}
		store.emplace(config);
	}
};

// One extraction into the group's result, as worker.cpp's
// Group::addExtraction does.
inline void addExtraction(common::GroupResult &r, const common::MetricConfig &m,
    worker::Extraction x, common::ContentType content)
{
	checkExtraction(m, x);
	if (x.errorCount > 0)
		r.metricErrors.emplace_back(m.name, common::sanitizeUtf8(x.summary()));
	if (x.sendFamily())
		r.families.push_back(std::move(x.family));
	else if (m.valueOnError)
		r.families.push_back(worker::valueOnErrorFamily(m, content));
}

// A finished result through the frames into the store: the supervisor
// must take it.  Twice, as two cycles: the second meets what the first
// left (counters, the previous series).
inline void apply(daemon::MetricStore &store, const std::string &service,
    const common::GroupResult &result)
{
	common::GroupResult back = roundTrip(result);
	for (double now : {1000.0, 1005.0}) {
		auto applied = store.apply(service, back, now);
		check(applied.has_value(), [&] {
			return "the supervisor refuses a worker's result: " + applied.error().message;
		});
	}
}

} // namespace pme::fuzz
