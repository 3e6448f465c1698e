// SPDX-License-Identifier: ISC
// Source type command: one run of a command per cycle, under a timeout.
#pragma once

#include <uv.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/error.hpp"
#include "source.hpp"
#include "common/uv_handle.hpp"

namespace pme::worker {

using common::UvHandle;

// Most bytes of a command's stderr kept for its error message.
constexpr size_t kStderrKept = 4096;

// Everything needed to run a group's command.
struct CommandSpec {
	std::vector<std::string> argv;   // argv[0] is looked up in the env's PATH
	common::Pairs env;               // the complete environment
	common::Millis timeout{10000};
	uint64_t maxOutput = 1024 * 1024;
	std::string display;             // how messages name the command
};

// base, then service, then group: a later NAME replaces an earlier one in
// place, so that the order stays the order of first appearance.
common::Pairs mergeEnvironment(const common::Pairs &base, const common::Pairs &service,
    const common::Pairs &group);

// The worker's own HOME, USER, LOGNAME, SHELL and PATH (those that are set).
common::Pairs ownEnvironment();

// The spec of a command group: argv as configured (the loader splits a
// string source at blanks), or /bin/sh -c source when shell.
common::Result<CommandSpec> commandSpec(const common::GroupConfig &group,
    const common::Pairs &baseEnv, const common::Pairs &serviceEnv);

// How long a command has between SIGTERM at its timeout and SIGKILL, and
// how long a run waits for end of file once the command has exited: 1s, or
// half the timeout when that is shorter (see command_source.cpp).
common::Millis terminationGrace(common::Millis timeout);

// Runs the command of one group, at most once at a time.  The command gets
// its own session and process group (UV_PROCESS_DETACHED), stdin from
// /dev/null, stdout through a pipe that is closed once more than maxOutput
// bytes came through it, stderr through a pipe of which the first 4 KiB are
// kept.  When the command's main process exits, whatever it left running in
// its process group is killed.  At the timeout the group gets SIGTERM, and
// SIGKILL after terminationGrace().
class CommandSource {
public:
	CommandSource(uv_loop_t *loop, CommandSpec spec);
	~CommandSource();
	CommandSource(const CommandSource &) = delete;
	CommandSource &operator=(const CommandSource &) = delete;

	// Run the command; cb is called once, from the loop, when it has
	// finished, failed to start or timed out.  Not while running().
	void start(SourceCallback cb);
	bool running() const { return running_; }
	// Kill the running command's process group; its callback is dropped.
	void cancel();
	// Process id (and process group id) of the running command, or 0.
	int pid() const { return pid_; }
	const CommandSpec &spec() const { return spec_; }
	// Commands started so far.
	uint64_t runs() const { return runs_; }

private:
	static void onExit(uv_process_t *p, int64_t status, int signal) noexcept;
	static void onAlloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) noexcept;
	static void onRead(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) noexcept;
	static void onTimer(uv_timer_t *t) noexcept;

	void handleExit(int64_t status, int signal);
	void handleRead(bool isStdout, ssize_t nread, const uv_buf_t *buf);
	void handleTimer();
	void spawnFailed(const std::string &why);
	void maybeFinish();
	void conclude();
	void finish(bool deliver);
	void signalGroup(int sig);
	void warnHeldOpen();

	uv_loop_t *loop_;
	CommandSpec spec_;
	SourceCallback cb_;
	bool running_ = false;
	int pid_ = 0;
	uint64_t runs_ = 0;

	std::optional<UvHandle<uv_process_t>> process_;
	std::optional<UvHandle<uv_pipe_t>> stdout_, stderr_;
	// Running: until the timeout.  Terminating: the timeout passed and the
	// group got SIGTERM; the grace runs.  Draining: the main process exited
	// before the timeout; the grace runs for the pipes to reach end of file.
	enum class Phase { Running, Terminating, Draining };

	std::optional<UvHandle<uv_timer_t>> timer_;
	Phase phase_ = Phase::Running;
	bool killed_ = false;  // the grace ran out after SIGTERM
	bool exited_ = false, stdoutOpen_ = false, stderrOpen_ = false;
	int termSignal_ = 0;
	std::optional<std::string> spawnError_;
	SourceRead read_;
	std::string stderrText_;
	std::array<char, 65536> stdoutBuf_;
	std::array<char, 4096> stderrBuf_;
};

} // namespace pme::worker
