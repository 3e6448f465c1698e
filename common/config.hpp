// SPDX-License-Identifier: ISC
// The typed configuration model (pme.yml(5)), with every default of SPEC §2.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "error.hpp"

namespace pme::common {

using Millis = std::chrono::milliseconds;

enum class SourceType { Command, Http, File, Static };
enum class ContentType { Text, Json, Xml, Prometheus };
// Values match enum pme_proto_metric_type (proto/message.h).
enum class MetricType : uint8_t {
	Counter = 1, Gauge = 2, Histogram = 3, Summary = 4, Info = 5, StateSet = 6, Untyped = 7,
};

const char *toString(SourceType t);
const char *toString(ContentType t);
const char *toString(MetricType t);

// An ordered list of (name, value) pairs: label sets and environments keep
// the order the operator wrote.
using Pairs = std::vector<std::pair<std::string, std::string>>;

struct MetricConfig {
	std::string key;              // the key under metrics: (or standalone_metrics:)
	std::string name;             // full exposed name: service prefix + baseName
	std::string baseName;         // name: as written [key]
	MetricType type = MetricType::Gauge;
	std::string description;      // HELP text; defaults to the name
	std::string unit;             // OpenMetrics UNIT ("seconds"); the name ends in _<unit>
	std::string filter;           // regex (text), JSONPath, XPath
	std::optional<std::string> valueTemplate;  // value: "${used}" (text) ...
	std::optional<double> staticValue;         // value: 1 (static sources)
	std::optional<double> valueOnError;
	double scale = 1;             // multiplies numbers read from the source
	Pairs labels;                 // label name -> template ("$1", "${name}", "literal")
	std::vector<std::pair<std::string, double>> values;  // value mapping {UP: 1}
	std::string valueRegex;       // json/xml: the number inside a string ("12ms")
	// histogram fed by observation (observe: true): each value the filter
	// yields is one observation into these bounds (ascending; +Inf implied).
	bool observe = false;
	std::vector<double> bucketBounds;
	// histogram mapped from source fields: le -> filter (le may be +Inf),
	// sum and count filters (either may be empty), cumulative counts or not.
	std::vector<std::pair<double, std::string>> bucketFilters;
	std::string sumFilter;
	std::string countFilter;
	bool cumulative = true;
	// summary: quantiles of the observations of the last maxAge, which
	// expire ageBuckets at a time.
	std::vector<double> quantiles{0.5, 0.9, 0.99};
	Millis maxAge{600000};
	unsigned ageBuckets = 5;
	// stateset: the possible states, in output order.
	std::vector<std::string> states;
	Location where;

	bool mappedHistogram() const { return type == MetricType::Histogram && !observe; }
	// Each value read is an observation: many or none per cycle is normal.
	bool observed() const
	{
		return (type == MetricType::Histogram && observe) || type == MetricType::Summary;
	}
};

// content_type: prometheus: what of an imported exposition is kept.
struct ImportConfig {
	std::string prefix;           // after the service's metric_prefix
	std::vector<std::string> include; // regexes over the source's names, anchored
	std::vector<std::string> exclude;
	bool honorTimestamps = false; // keep the source's sample timestamps
};

// source_type http: what is asked of the server.
struct HttpConfig {
	std::string method = "GET";   // in capitals
	std::string body;
	Pairs headers;                // in order, names as written
	std::string username;         // basic_auth, when not empty
	std::string password;
	std::string passwordFile;     // read at each request, as the service's user
	std::string token;            // bearer
	std::string tokenFile;
	int maxRedirects = 5;
	bool cache = false;           // http_cache: Cache-Control, ETag, Last-Modified
};

struct GroupConfig {
	std::string key;              // group key (standalone: the metric key)
	bool standalone = false;
	SourceType sourceType = SourceType::Static;
	std::string source;           // command line, URL or path
	std::vector<std::string> argv; // command as a list (empty: split source)
	bool shell = false;           // source is run by /bin/sh -c
	ContentType contentType = ContentType::Text;
	std::optional<Millis> interval; // as configured
	Millis effectiveInterval{0};  // rounded up to a multiple of the global one
	Millis timeout{10000};        // [10s]
	Millis cacheTtl{0};
	std::optional<Millis> staleAfter; // [3 x effectiveInterval]
	uint64_t maxOutput = 1024 * 1024; // [1 MiB]
	size_t maxSeries = 10000;     // samples one read may yield [10,000]
	bool multiline = false;       // regex: ^ and $ match at line ends
	Pairs env;                    // group-level additions to the service env
	Pairs labels;                 // constant labels on every series of the group
	Pairs namespaces;             // xml: prefix -> namespace URI for XPath
	ImportConfig import;          // content_type: prometheus
	HttpConfig http;              // source_type: http
	std::vector<MetricConfig> metrics; // empty for content_type: prometheus
	Location where;

	Millis staleAfterOrDefault() const { return staleAfter.value_or(effectiveInterval * 3); }
};

struct RunAs {
	std::string user;             // empty: the supervisor's user
	std::string group;            // empty: the user's primary group
};

// The worker's confinement (pme-worker(8)), inherited by its commands.
struct SandboxConfig {
	// Unset: on where the kernel supports it, a warning where it does
	// not; true: on, and a worker that cannot load it refuses to run;
	// false: off.
	std::optional<bool> seccomp;
	// Landlock: the worker and its commands may read and execute only
	// beneath these absolute paths, and write nowhere.  Empty: no Landlock.
	std::vector<std::string> landlock;

	bool seccompWanted() const { return seccomp.value_or(true); }
};

struct ServiceConfig {
	std::string key;              // key under services:
	std::string name;             // [key]
	std::string metricPrefix;
	Pairs labels;                 // constant labels on every series
	RunAs runAs;
	Location runAsWhere;          // for errors about the user or group
	bool allowRoot = false;
	std::optional<Millis> interval;
	Millis effectiveInterval{0};
	Pairs env;
	SandboxConfig sandbox;
	std::vector<GroupConfig> groups; // metric_groups then standalone_metrics
	Location where;
};

struct ExporterConfig {
	std::vector<std::string> listen{"127.0.0.1:10064"};
	std::string healthListen;     // empty: /health on the main listeners only
	Millis interval{5000};
	std::string user = "pme";
	std::vector<std::string> include;
};

struct Config {
	std::string path;             // the file it was loaded from
	ExporterConfig exporter;
	std::vector<ServiceConfig> services;

	const ServiceConfig *findService(const std::string &name) const;
};

// ceil(override / global) * global (SPEC §2).
Millis roundInterval(Millis override, Millis global);

// Parse "500ms", "5s", "2m", "1h", "1m30s" or a plain number of seconds.
Result<Millis> parseDuration(const std::string &text);
// Shortest exact form: 5000ms -> "5s", 1500ms -> "1500ms".
std::string formatDuration(Millis d);

// Text from a configuration file made safe to show in a message: valid
// UTF-8 passes, control characters become \n, \t, \0 or \xNN, and bytes
// that are not UTF-8 become \xNN.
std::string printableText(const std::string &text);

// Levenshtein distance, for "did you mean".
size_t editDistance(const std::string &a, const std::string &b);
// The closest candidate within a small distance, or empty.
std::string closestMatch(const std::string &word, const std::vector<std::string> &candidates);

} // namespace pme::common
