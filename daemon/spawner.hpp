// SPDX-License-Identifier: ISC
// The privileged helper: starts workers under their users, nothing else.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace pme::daemon {

// How pmed was started, which decides what the spawner can do.
enum class PrivMode {
	Development,  // ordinary user, no capabilities: workers run as that user
	Capable,      // CAP_SETUID and CAP_SETGID granted (systemd Ambient...)
	Root,         // euid 0: both processes switch to exporter.user
};
const char *toString(PrivMode m);

// PRIVILEGED: decides from the process's own credentials.
PrivMode detectPrivMode();

// A resolved user: looked up before any fork (SPEC §1 invariant 4).
struct Identity {
	uid_t uid = 0;
	gid_t gid = 0;
	std::vector<gid_t> groups;    // supplementary groups, from getgrouplist
	std::string user;
	std::string home;
	std::string shell;
};

// The identity this process runs as now (Development) or will switch to
// (Root: exporter.user).  Fails when exporter.user does not exist.
common::Result<Identity> supervisorIdentity(const common::Config &config, PrivMode mode);

// The identity a service's worker gets: run_as, or the supervisor's
// identity when unset.  Refuses uid/gid 0 without allow_root, unknown users
// and groups, and in Development mode any user other than the current one.
// Errors carry the run_as location.
common::Result<Identity> resolveServiceIdentity(const common::ServiceConfig &service,
    const Identity &supervisor, PrivMode mode);

// The supervisor's end of a running spawner.
struct SpawnerHandle {
	pid_t pid = -1;
	common::UniqueFd control;     // SOCK_SEQPACKET, START/STOP/RELOAD out
};

struct SpawnerOptions {
	std::string configPath;       // re-read by the spawner on RELOAD
	std::string workerPath;       // pme-worker executable
	uint32_t configFlags = 0;     // PME_CONFIG_* for every SERVICE_CONFIG
	PrivMode mode = PrivMode::Development;
	Identity supervisor;          // who both processes run as afterwards
	int verbosity = 0;
	// Workers log through LOG frames; their stderr is /dev/null unless
	// pmed runs in the foreground (-d), where a crash message helps.
	bool workerStderr = false;
	// pmed --explain: the one service START may name, and when not empty
	// the one group its worker is given.
	std::string explainService;
	std::string explainGroup;
};

// PRIVILEGED: fork the spawner.  The child switches to opts.supervisor
// keeping only CAP_SETUID, CAP_SETGID and CAP_KILL, closes every other
// descriptor and serves requests until its control socket closes; it never
// returns.  The parent gets the control socket.
common::Result<SpawnerHandle> startSpawner(const common::Config &config,
    const SpawnerOptions &opts);

// PRIVILEGED: the supervisor gives up everything after startSpawner():
// switches to opts.supervisor (Root mode) and clears every capability set,
// ambient included, then verifies that CapEff/CapPrm/CapAmb are zero.
common::Result<void> dropSupervisorPrivileges(const SpawnerOptions &opts);

// The path of pme-worker: the build tree's when pmed runs from the build
// tree, else the installed one.
std::string defaultWorkerPath();

} // namespace pme::daemon
