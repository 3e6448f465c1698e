// SPDX-License-Identifier: ISC
// The worker's optional confinement: a seccomp deny-list and Landlock read-only paths.
#pragma once

#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/error.hpp"

namespace pme::worker {

// What applySandbox() did, for the log.
struct SandboxOutcome {
	bool seccomp = false;          // the filter is loaded
	int landlockAbi = 0;           // the Landlock ABI used; 0: no Landlock domain
	size_t landlockRules = 0;      // paths restricted to (those that exist)
	// Things the operator should hear about that did not stop the worker:
	// a path that does not exist, a default-on filter the kernel refused.
	std::vector<std::string> warnings;
};

// Confine this process, and every process it starts from now on, as the
// service's sandbox: asks.  Both parts are irreversible.  With Landlock
// paths, must be called while the process has one thread (Landlock
// restricts the calling thread only); an error says so otherwise.  The
// seccomp filter is loaded into every thread.
//
// An error is returned when a part the configuration asked for explicitly
// (sandbox.seccomp: true, a non-empty sandbox.landlock) cannot be applied;
// the default-on filter failing is only a warning.
common::Result<SandboxOutcome> applySandbox(const common::SandboxConfig &config);

// The seccomp part alone: load the deny-list filter (EPERM for the
// syscalls of deniedSyscalls(), namespaces refused in clone, clone3
// answered ENOSYS so that the C library falls back to clone, non-native
// architectures killed).  An error when built without libseccomp.
common::Result<void> loadSeccompFilter();

// The names of the syscalls the filter refuses outright (without the
// argument-dependent rules for clone, clone3 and personality).
std::vector<std::string> deniedSyscalls();

// The Landlock ABI of the running kernel; 0 when it has none (not built,
// or not enabled at boot).
int landlockAbi();

// The Landlock part alone: read and execute beneath each path, nothing
// else anywhere, except reading and writing /dev/null.  A path that cannot
// be opened is skipped with a warning; an error when the kernel has no
// Landlock or a rule cannot be added.  Returns the ABI used.
common::Result<int> restrictFilesystem(const std::vector<std::string> &paths,
    std::vector<std::string> &warnings, size_t *rules = nullptr);

} // namespace pme::worker
