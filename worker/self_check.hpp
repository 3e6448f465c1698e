// SPDX-License-Identifier: ISC
// The worker's check of its own identity and privileges (SPEC §1, invariant 5).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace pme::worker {

// What the process is, as /proc/self/status and the id calls tell it.
struct ProcessIdentity {
	uid_t uid[3] = {0, 0, 0};     // real, effective, saved
	gid_t gid[3] = {0, 0, 0};
	std::vector<gid_t> groups;    // supplementary groups
	uint64_t capEff = 0, capPrm = 0, capAmb = 0;
	uint64_t capInh = 0;
	int noNewPrivs = 0;
	int deathSignal = -1;         // PR_GET_PDEATHSIG; -1 when not read
	// Descriptors open besides 0-2 and the socket, as "7 (/etc/hostname)".
	std::vector<std::string> strayFds;
	// Variables of the service manager that must not reach a worker.
	std::vector<std::string> forbiddenEnv;
	// Whether setresuid(0, 0, 0) worked; unset when it was not tried.
	std::optional<bool> becameRoot;
};

// What the spawner says it made of the worker (SERVICE_CONFIG).
struct ExpectedIdentity {
	uid_t uid = 0;
	gid_t gid = 0;
	std::vector<gid_t> groups;
};

// Parse the Uid, Gid, Groups, CapInh, CapEff, CapPrm, CapAmb and NoNewPrivs lines of
// a /proc/PID/status text.  A missing or malformed line is an error.
common::Result<ProcessIdentity> parseProcStatus(std::string_view text);

// Every check that fails, each as one phrase naming it ("CapEff is
// 0000000000000020, expected 0"); empty when the identity is as expected.
// Pure: a function of its arguments only.
std::vector<std::string> checkIdentity(const ProcessIdentity &id, const ExpectedIdentity &want);

// The live process: /proc/self/status for capabilities and NoNewPrivs,
// getresuid/getresgid/getgroups for the ids, PR_GET_PDEATHSIG, the open
// descriptors (socketFd is the one expected), the environment, and, only
// when tryRoot, an attempt at setresuid(0, 0, 0).
common::Result<ProcessIdentity> readProcessIdentity(bool tryRoot, int socketFd = 3);

// readProcessIdentity + checkIdentity: an error "refusing to run: ..."
// listing every failed check.  setresuid(0, ...) is tried only when the
// expected uid is not 0.  Runs before the event loop exists, so that every
// descriptor but 0-2 and socketFd counts as inherited.
common::Result<void> selfCheck(const ExpectedIdentity &want, int socketFd = 3);

// True for NOTIFY_SOCKET, LISTEN_* and WATCHDOG_* variable names.
bool forbiddenVariable(std::string_view name);

} // namespace pme::worker
