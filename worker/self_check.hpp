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
	int noNewPrivs = 0;
	// Whether setresuid(0, 0, 0) worked; unset when it was not tried.
	std::optional<bool> becameRoot;
};

// What the spawner says it made of the worker (SERVICE_CONFIG).
struct ExpectedIdentity {
	uid_t uid = 0;
	gid_t gid = 0;
	std::vector<gid_t> groups;
};

// Parse the Uid, Gid, Groups, CapEff, CapPrm, CapAmb and NoNewPrivs lines of
// a /proc/PID/status text.  A missing or malformed line is an error.
common::Result<ProcessIdentity> parseProcStatus(std::string_view text);

// Every check that fails, each as one phrase naming it ("CapEff is
// 0000000000000020, expected 0"); empty when the identity is as expected.
// Pure: a function of its arguments only.
std::vector<std::string> checkIdentity(const ProcessIdentity &id, const ExpectedIdentity &want);

// The live process: /proc/self/status for capabilities and NoNewPrivs,
// getresuid/getresgid/getgroups for the ids, and, only when tryRoot,
// an attempt at setresuid(0, 0, 0).
common::Result<ProcessIdentity> readProcessIdentity(bool tryRoot);

// readProcessIdentity + checkIdentity: an error "refusing to run: ..."
// listing every failed check.  setresuid(0, ...) is tried only when the
// expected uid is not 0.
common::Result<void> selfCheck(const ExpectedIdentity &want);

} // namespace pme::worker
