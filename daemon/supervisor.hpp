// SPDX-License-Identifier: ISC
// The supervisor: reads worker frames, merges, serves HTTP, restarts workers.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/error.hpp"
#include "spawner.hpp"

namespace pme::daemon {

struct SupervisorOptions {
	bool once = false;            // --once: print one exposition and exit
	uint64_t onceTimeoutMs = 0;   // give up waiting for groups after this (--explain too)
	// --explain: start only this service, print the EXPLAIN text its
	// worker sends, exit when these groups have reported: 0 when each
	// succeeded without a metric error, 1 otherwise.
	bool explain = false;
	std::string explainService;
	std::vector<std::string> explainGroups;
	std::string configPath;       // read again on SIGHUP
	// Listening sockets systemd passed (pmed.socket): served instead of
	// exporter.listen, for as long as pmed runs.
	std::vector<int> listenFds;
};

class Supervisor {
public:
	Supervisor(uv_loop_t *loop, common::Config config, SpawnerHandle spawner,
	    SupervisorOptions opts);
	~Supervisor();
	Supervisor(const Supervisor &) = delete;
	Supervisor &operator=(const Supervisor &) = delete;

	// Listen, watch the spawner and signals, and start every service.
	common::Result<void> start();
	// The process exit status once the loop has ended.
	int exitCode() const;

	struct Impl;

private:
	std::unique_ptr<Impl> impl_;
};

} // namespace pme::daemon
