// SPDX-License-Identifier: ISC
// Worker: collects a service's groups on schedule and hands over each result.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/metric.hpp"
#include "source.hpp"

namespace pme::worker {

struct WorkerOptions {
	// PME_CONFIG_ONCE: every group runs at once, without a start spread.
	bool once = false;
	// Used for a group whose effective interval is unset.
	common::Millis globalInterval{5000};
	// The worker's own HOME, USER, LOGNAME, SHELL, PATH: the base of every
	// command's environment.
	common::Pairs baseEnv;
	// pmed --explain: called with each cycle's read and its result, just
	// before the result goes to the sink.
	std::function<void(const common::GroupConfig &, const SourceRead &,
	    const common::GroupResult &)> explain;
};

// When a group first runs, in [0, interval): FNV-1a of "service/group"
// modulo the interval, so that 500 services do not all fire on the same tick
// and a restarted worker keeps its rhythm.
common::Millis startOffset(const std::string &service, const std::string &group,
    common::Millis interval);

// One uv timer per group: first after the start offset, then every
// effective interval.  A group never runs twice at once: a tick that finds
// it still running is skipped and counted in the next result.  Every cycle
// ends in exactly one GroupResult handed to the sink, in the order cycles
// finish.
class Worker {
public:
	using ResultSink = std::function<void(const common::GroupResult &)>;

	Worker(uv_loop_t *loop, common::ServiceConfig service, WorkerOptions options,
	    ResultSink sink);
	~Worker();
	Worker(const Worker &) = delete;
	Worker &operator=(const Worker &) = delete;

	// Arm every group's timer.
	void start();
	// Stop every timer, kill running commands and drop reads in flight; no
	// result is delivered afterwards.  Safe to call from the sink.
	void stop();

	const common::ServiceConfig &service() const { return service_; }

	class Group;

private:
	friend class Group;

	uv_loop_t *loop_;
	common::ServiceConfig service_;
	WorkerOptions options_;
	ResultSink sink_;
	bool stopped_ = false;
	std::vector<std::unique_ptr<Group>> groups_;
};

} // namespace pme::worker
