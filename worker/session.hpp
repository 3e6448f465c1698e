// SPDX-License-Identifier: ISC
// Session: a worker's life on its supervisor socket, from SERVICE_CONFIG to BYE.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/config.hpp"
#include "common/metric.hpp"
#include "common/uv_handle.hpp"
#include "explain.hpp"
#include "worker.hpp"

namespace pme::worker {

using common::UvHandle;

// What pme-worker exits with (sysexits.h values).
enum ExitCode {
	kExitOk = 0,          // asked to stop, or the supervisor went away
	kExitUsage = 64,      // started by hand, or with bad arguments
	kExitSoftware = 70,   // a bug (an exception reached main)
	kExitOsError = 71,    // the event loop could not be set up
	kExitNoPerm = 77,     // the self check failed
	kExitConfig = 78,     // no usable SERVICE_CONFIG
};

// The fd the spawner gives a worker: its stream socket to the supervisor.
constexpr int kSupervisorFd = 3;

// The worker's side of the socket:
//   1. read SERVICE_CONFIG (blocking), load the service from its YAML;
//   2. check its own ids and privileges, refuse to run otherwise;
//   3. send HELLO, then collect on one uv loop, sending GROUP_* frames and
//      LOG frames (every log line goes to the supervisor);
//   4. stop at EOF or a failed write (the supervisor is gone), or at
//      SIGTERM/SIGINT after sending BYE; running commands are killed.
// Under PME_CONFIG_EXPLAIN (pmed --explain) each group's first cycle is
// also described in EXPLAIN frames sent just before its result, and the
// worker stops collecting once every group has been explained.
class Session {
public:
	// fd: the connected supervisor socket (not owned).
	Session(int fd, std::string service);
	~Session();
	Session(const Session &) = delete;
	Session &operator=(const Session &) = delete;

	// Everything above; returns the exit code.
	int run();

private:
	struct Received {
		common::Config config;
		const common::ServiceConfig *service = nullptr;
		uint32_t uid = 0, gid = 0;
		std::vector<uint32_t> groups;
		uint32_t flags = 0;
	};

	std::optional<Received> receiveConfig();
	int serve(const Received &received);
	void sendLog(int level, const std::string &line);
	void sendResult(const common::GroupResult &result);
	void explain(const common::ServiceConfig &service, const common::GroupConfig &group,
	    const SourceRead &read, const common::GroupResult &result);
	void sendFrame(const uint8_t *data, size_t len);
	void shutdown();

	static void onReadable(uv_poll_t *p, int status, int events) noexcept;
	static void onSignal(uv_signal_t *s, int signum) noexcept;
	static void onGrace(uv_timer_t *t) noexcept;
	void readable(int status);

	int fd_;
	std::string service_;
	bool linkBroken_ = false;
	bool inLog_ = false;
	bool stopping_ = false;
	// pmed --explain: who this worker runs as (looked up before the
	// sandbox), and the groups explained so far.
	std::optional<ExplainIdentity> explainAs_;
	std::set<std::string> explained_;
	size_t explainGroups_ = 0;
	uv_loop_t *loop_ = nullptr;
	std::unique_ptr<Worker> worker_;
	std::optional<UvHandle<uv_poll_t>> poll_;
	std::optional<UvHandle<uv_signal_t>> sigterm_, sigint_;
	std::optional<UvHandle<uv_timer_t>> grace_;
};

} // namespace pme::worker
