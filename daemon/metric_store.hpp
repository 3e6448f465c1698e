// SPDX-License-Identifier: ISC
// Everything the supervisor knows about collected data: per-group fragments,
// counter state, staleness, self-metrics, and the rendered exposition.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/metric.hpp"
#include "daemon/exposition.hpp"
#include "daemon/shared_buffers.hpp"

namespace pme::daemon {

// State of a service's worker, as shown in /health.
enum class WorkerState { Starting, Running, Restarting, Failed, Refused, Stopped };
const char *toString(WorkerState s);

class MetricStore {
public:
	explicit MetricStore(const common::Config &config);
	~MetricStore();
	MetricStore(const MetricStore &) = delete;
	MetricStore &operator=(const MetricStore &) = delete;

	// Apply one result from the worker of `service`.  The result is checked
	// against the supervisor's own config: an unknown group, or a family the
	// group does not declare, is an Error (the caller treats it as a
	// protocol error and stops the worker) and nothing is applied.
	// Counters, and the buckets, sums and counts of histograms and
	// summaries, are accumulated here (SPEC §3: a drop in the source is a
	// reset, the new value is added), so they survive worker restarts.
	common::Result<void> apply(const std::string &service, const common::GroupResult &result,
	    double now);

	// A reload: from now on the store follows `config`, keeping the state
	// of every service, group and family it still has (counters, last
	// series, status, self-metric counts); the rest is forgotten.
	void reconfigure(const common::Config &config);

	// Worker lifecycle, for /health and pme_source_up.  Going down marks
	// every group of the service down; its last data stays until stale.
	void setWorkerState(const std::string &service, WorkerState state, int pid,
	    const std::string &reason, double now);
	void countRestart(const std::string &service);
	// A reload (SIGHUP) went through, or did not: pme_config_last_reload_*.
	void configReloaded(bool ok, double now);

	// Drop samples older than their group's stale_after, and the caches
	// no client used lately (expositionParts()).
	void expire(double now);

	// Text format 0.0.4, rebuilt only when something changed since the
	// last call; the pointer stays valid while the caller holds it.
	std::shared_ptr<const std::string> exposition();
	// A body in two parts for serving: the collected families, and the
	// self-metrics (status of every group and worker, scrape counter,
	// process metrics), which are small and rendered on each call; in
	// OpenMetrics, self ends with "# EOF".  The families are a list of
	// pieces (a family's header, a group's samples of it) shared with the
	// store: a change replaces the pieces it changed and makes a new list,
	// the bytes of the others are not copied.  For the text format,
	// data + self == exposition().  A family's OpenMetrics text is
	// rendered on the first call for OpenMetrics after it changed.  With
	// gzip, data is a gzip header and the pieces each deflated once, and
	// self the rest of one gzip member (exposition.hpp, gzipTail()).
	// The OpenMetrics texts and the deflated pieces of a format are
	// dropped when no call asked for them for ten minutes (expire()).
	struct Parts {
		std::shared_ptr<const SharedBuffers> data;
		std::shared_ptr<const std::string> self;
	};
	Parts expositionParts(Format format = Format::Text, bool gzip = false);
	// /health body; *healthy is false when any service is not running or
	// any group is down.
	std::string healthJson(bool *healthy, double now) const;
	// True once every group of every running service has reported at least
	// once (pmed --once).
	bool allGroupsReported() const;
	// Counters exposed as self-metrics; a scrape is counted under the
	// format it was served in (pme_scrapes_total{format=...}).
	void countScrape(Format format);
	// The HTTP front's counts, summed over its listeners, as of now.
	void setHttpStats(uint64_t evicted, uint64_t refused, uint64_t timedOut);
	void countFrames(const std::string &service, uint64_t n);
	void countProtocolError(const std::string &service);

	struct Impl;

private:
	void adopt(MetricStore &old);

	std::unique_ptr<Impl> impl_;
};

} // namespace pme::daemon
