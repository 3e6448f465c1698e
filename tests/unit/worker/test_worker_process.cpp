// SPDX-License-Identifier: ISC
// The pme-worker binary end to end, over a socketpair as the spawner starts it.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/channel.hpp"
#include "common/config_loader.hpp"
#include "common/config_writer.hpp"
#include "common/group_result.hpp"
#include "proto/message.h"
#include "worker_launch.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme;
namespace test = pme::worker::test;
using test::TestIdentity;

namespace {

const char *kConfig = R"(
exporter:
  interval: 1s
services:
  e2e:
    metric_prefix: e2e_
    env: { GREETING: hello }
    metric_groups:
      cmd:
        source_type: command
        shell: true
        source: echo requests 42; echo greeting $GREETING; echo fds $(ls /proc/self/fd | wc -l)
        metrics:
          requests:
            type: counter
            description: Requests served
            filter: 'requests (\d+)'
          greeting:
            filter: 'greeting (\w+)'
            value_on_error: -1
          fds:
            filter: 'fds (\d+)'
          missing:
            filter: 'nothing here (\d+)'
    standalone_metrics:
      version_info:
        source_type: static
        type: info
        labels: { version: "1.2" }
        value: 1
)";

class WorkerProcess {
public:
	explicit WorkerProcess(const std::string &service = "e2e")
	{
		int sv[2];
		CHECK_EQUAL(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
		pid_ = test::launchWorker(sv[1], service);
		CHECK(pid_ > 0);
		fd_ = sv[0];
		pme_proto_decoder_init(&dec_, PME_PROTO_MAX_PAYLOAD);
	}

	~WorkerProcess()
	{
		if (pid_ > 0) {
			kill(pid_, SIGKILL);
			waitpid(pid_, nullptr, 0);
		}
		if (fd_ >= 0)
			close(fd_);
		pme_proto_decoder_free(&dec_);
	}

	void sendConfig(const std::string &yaml, const std::string &service, TestIdentity id,
	    uint32_t flags = PME_CONFIG_ONCE)
	{
		common::FrameWriter w(PME_PROTO_HARD_MAX_PAYLOAD);
		pme_proto_encode_service_config(w.get(), service.data(), service.size(), id.uid,
		    id.gid, id.groups.data(), static_cast<uint32_t>(id.groups.size()), flags,
		    yaml.data(), yaml.size());
		CHECK(common::writeFrame(fd_, *w).has_value());
	}

	// The next frame, or nothing at EOF or after 10 seconds.
	std::optional<pme_proto_frame> next()
	{
		auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
		for (;;) {
			pme_proto_frame f;
			int rc = pme_proto_decoder_next(&dec_, &f);
			CHECK(rc >= 0);
			if (rc == 1)
				return f;
			auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
			    deadline - std::chrono::steady_clock::now()).count();
			if (left <= 0)
				return std::nullopt;
			pollfd p{fd_, POLLIN, 0};
			if (poll(&p, 1, static_cast<int>(left)) <= 0)
				continue;
			char buf[65536];
			ssize_t n = read(fd_, buf, sizeof(buf));
			if (n <= 0)
				return std::nullopt;
			size_t off = 0;
			while (off < static_cast<size_t>(n)) {
				size_t took = pme_proto_decoder_feed(&dec_, buf + off,
				    static_cast<size_t>(n) - off);
				off += took;
				if (took == 0) {
					// A whole frame waits: leave the rest for later.
					pending_.append(buf + off, static_cast<size_t>(n) - off);
					break;
				}
			}
			flushPending();
		}
	}

	// Frames until the results of n groups have arrived; LOG lines kept.
	std::map<std::string, common::GroupResult> results(size_t n)
	{
		std::map<std::string, common::GroupResult> out;
		common::GroupResultAssembler assembler;
		while (out.size() < n) {
			auto f = next();
			if (!f)
				break;
			if (f->type == PME_MSG_LOG) {
				logs.push_back(logText(*f));
				continue;
			}
			auto r = assembler.feed(*f);
			if (!r)
				FAIL(("bad group frame: " + r.error().message).c_str());
			if (*r)
				out[(*r)->group] = **r;
		}
		return out;
	}

	std::string logText(const pme_proto_frame &f)
	{
		pme_proto_log m;
		CHECK_EQUAL(0, pme_proto_decode_log(&f, &m));
		levels.push_back(m.priority);
		return common::toString(m.message);
	}

	// Wait for the exit and return its status.
	int wait()
	{
		int status = 0;
		CHECK_EQUAL(pid_, waitpid(pid_, &status, 0));
		pid_ = -1;
		return status;
	}

	int fd() const { return fd_; }
	pid_t pid() const { return pid_; }
	void closeSocket()
	{
		close(fd_);
		fd_ = -1;
	}

	std::vector<std::string> logs;
	std::vector<int> levels;

private:
	void flushPending()
	{
		// Feed what did not fit while a frame was waiting; frames handed out
		// before stay valid until the next feed, which happens only here,
		// on the next call of next().
		if (pending_.empty())
			return;
		size_t took = pme_proto_decoder_feed(&dec_, pending_.data(), pending_.size());
		pending_.erase(0, took);
	}

	pid_t pid_ = -1;
	int fd_ = -1;
	pme_proto_decoder dec_;
	std::string pending_;
};

std::string serviceDocument()
{
	auto config = common::loadConfigString(kConfig, "test");
	if (!config) {
		std::string all;
		for (const auto &e : config.error())
			all += e.str() + "\n";
		FAIL(all.c_str());
	}
	return common::writeServiceDocument(*config, *config->findService("e2e"));
}

const common::Family *family(const common::GroupResult &r, const std::string &name)
{
	for (const auto &f : r.families)
		if (f.name == name)
			return &f;
	return nullptr;
}

} // namespace

TEST_GROUP(WorkerProcess) {};

TEST(WorkerProcess, CollectsAndLeavesOnSigterm)
{
	test::TestIdentity id = test::workerIdentity();
	WorkerProcess w;
	w.sendConfig(serviceDocument(), "e2e", id);

	auto hello = w.next();
	CHECK(hello.has_value());
	LONGS_EQUAL(PME_MSG_HELLO, hello->type);
	pme_proto_hello h;
	CHECK_EQUAL(0, pme_proto_decode_hello(&*hello, &h));
	LONGS_EQUAL(w.pid(), h.pid);
	LONGS_EQUAL(id.uid, h.uid);
	LONGS_EQUAL(id.gid, h.gid);
	STRCMP_EQUAL("e2e", common::toString(h.service).c_str());

	auto results = w.results(2);
	LONGS_EQUAL(2, results.size());

	const common::GroupResult &stat = results["version_info"];
	CHECK(stat.ok);
	LONGS_EQUAL(-1, stat.exitStatus);
	const common::Family *info = family(stat, "e2e_version_info");
	CHECK(info != nullptr);
	CHECK(info->type == common::MetricType::Info);
	STRCMP_EQUAL("version", info->samples[0].labels[0].name.c_str());
	STRCMP_EQUAL("1.2", info->samples[0].labels[0].value.c_str());

	const common::GroupResult &cmd = results["cmd"];
	STRCMP_EQUAL("", cmd.error.c_str());
	CHECK(cmd.ok);
	LONGS_EQUAL(0, cmd.exitStatus);
	LONGS_EQUAL(1, cmd.sequence);
	const common::Family *req = family(cmd, "e2e_requests");
	CHECK(req != nullptr);
	CHECK(req->type == common::MetricType::Counter);
	STRCMP_EQUAL("Requests served", req->help.c_str());
	DOUBLES_EQUAL(42, req->samples[0].value, 0);
	// The service env reached the command: the filter matched "hello",
	// which is not a number, so value_on_error stands in.
	DOUBLES_EQUAL(-1, family(cmd, "e2e_greeting")->samples[0].value, 0);
	// ls sees 0, 1, 2 and its directory: the supervisor socket stayed
	// in the worker.
	DOUBLES_EQUAL(4, family(cmd, "e2e_fds")->samples[0].value, 0);
	LONGS_EQUAL(1, cmd.metricErrors.size());
	STRCMP_EQUAL("e2e_missing", cmd.metricErrors[0].first.c_str());

	kill(w.pid(), SIGTERM);
	bool bye = false;
	while (auto f = w.next()) {
		if (f->type == PME_MSG_BYE)
			bye = true;
	}
	CHECK(bye);
	int status = w.wait();
	CHECK(WIFEXITED(status));
	LONGS_EQUAL(0, WEXITSTATUS(status));
}

TEST(WorkerProcess, LeavesWhenTheSupervisorGoesAway)
{
	WorkerProcess w;
	w.sendConfig(serviceDocument(), "e2e", test::workerIdentity());
	auto hello = w.next();
	CHECK(hello.has_value());
	LONGS_EQUAL(PME_MSG_HELLO, hello->type);
	w.closeSocket();
	int status = w.wait();
	CHECK(WIFEXITED(status));
	LONGS_EQUAL(0, WEXITSTATUS(status));
}

TEST(WorkerProcess, RefusesToRunAsAnotherUserThanExpected)
{
	TestIdentity want = test::workerIdentity();
	TestIdentity wrong = want;
	wrong.uid = want.uid + 1;
	WorkerProcess w;
	w.sendConfig(serviceDocument(), "e2e", wrong);
	auto f = w.next();
	CHECK(f.has_value());
	LONGS_EQUAL(PME_MSG_LOG, f->type);
	std::string line = w.logText(*f);
	LONGS_EQUAL(3, w.levels.back());
	std::string expect = "refusing to run: real uid is " + std::to_string(want.uid) +
	    ", expected " + std::to_string(wrong.uid);
	STRCMP_CONTAINS(expect.c_str(), line.c_str());
	CHECK_FALSE(w.next().has_value());
	int status = w.wait();
	CHECK(WIFEXITED(status));
	LONGS_EQUAL(77, WEXITSTATUS(status));
}

TEST(WorkerProcess, BadConfigurationExitsWithExConfig)
{
	WorkerProcess w;
	w.sendConfig("services: [not, a, mapping]\n", "e2e", test::workerIdentity());
	bool logged = false;
	while (auto f = w.next()) {
		LONGS_EQUAL(PME_MSG_LOG, f->type);
		std::string line = w.logText(*f);
		logged = logged || line.find("service configuration: service e2e:") == 0;
	}
	CHECK(logged);
	int status = w.wait();
	CHECK(WIFEXITED(status));
	LONGS_EQUAL(78, WEXITSTATUS(status));
}

TEST(WorkerProcess, ConfigurationForAnotherServiceIsRefused)
{
	WorkerProcess w("other");
	w.sendConfig(serviceDocument(), "e2e", test::workerIdentity());
	auto f = w.next();
	CHECK(f.has_value());
	STRCMP_CONTAINS("SERVICE_CONFIG is for service 'e2e'", w.logText(*f).c_str());
	int status = w.wait();
	CHECK(WIFEXITED(status));
	LONGS_EQUAL(78, WEXITSTATUS(status));
}

TEST(WorkerProcess, RefusesToBeStartedByHand)
{
	const char *root = std::getenv("PME_BUILD_ROOT");
	std::string cmd = std::string(root ? root : ".") +
	    "/worker/pme-worker e2e 3</dev/null 2>/dev/null";
	int status = std::system(cmd.c_str());
	CHECK(WIFEXITED(status));
	LONGS_EQUAL(64, WEXITSTATUS(status));
}
