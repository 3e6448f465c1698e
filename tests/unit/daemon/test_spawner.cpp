// SPDX-License-Identifier: ISC
// The spawner against a compromised supervisor: forged requests start nothing.
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "common/channel.hpp"
#include "common/config_loader.hpp"
#include "daemon/spawner.hpp"
#include "proto/message.h"

#include <CppUTest/TestHarness.h>

using namespace pme;

namespace {

const char *kConfig = R"(exporter:
  interval: 1s
services:
  good:
    metric_groups:
      g:
        source_type: command
        source: [echo, "41"]
        metrics:
          good_value: { filter: '(\d+)' }
)";

std::string buildRoot()
{
	const char *root = std::getenv("PME_BUILD_ROOT");
	return root ? root : ".";
}

// Children of pid, from /proc.
std::vector<pid_t> childrenOf(pid_t parent)
{
	std::vector<pid_t> out;
	DIR *d = opendir("/proc");
	while (struct dirent *e = d ? readdir(d) : nullptr) {
		char *end;
		long pid = std::strtol(e->d_name, &end, 10);
		if (*end != '\0' || pid <= 0)
			continue;
		FILE *in = std::fopen((std::string("/proc/") + e->d_name + "/stat").c_str(), "re");
		if (in == nullptr)
			continue;
		char line[1024] = {};
		bool read = std::fgets(line, sizeof(line), in) != nullptr;
		std::fclose(in);
		if (!read)
			continue;
		std::string stat(line);
		size_t close = stat.rfind(')');
		if (close == std::string::npos)
			continue;
		char state;
		long ppid;
		if (std::sscanf(stat.c_str() + close + 2, "%c %ld", &state, &ppid) == 2 &&
		    ppid == parent && state != 'Z')
			out.push_back(static_cast<pid_t>(pid));
	}
	if (d)
		closedir(d);
	return out;
}

// The test plays the supervisor: it holds the spawner's control socket.
class SpawnerUnderTest {
public:
	SpawnerUnderTest()
	{
		char tmpl[] = "/tmp/pme-spawner-XXXXXX";
		int fd = mkstemp(tmpl);
		CHECK(fd >= 0);
		path_ = tmpl;
		CHECK(write(fd, kConfig, std::strlen(kConfig)) == static_cast<ssize_t>(std::strlen(kConfig)));
		// The spawner re-reads it as the supervisor's user.
		fchmod(fd, 0644);
		close(fd);
		auto config = common::loadConfigFile(path_);
		CHECK_TRUE(config.has_value());

		daemon::SpawnerOptions opts;
		opts.configPath = path_;
		opts.workerPath = buildRoot() + "/worker/pme-worker";
		opts.mode = daemon::detectPrivMode();
		opts.workerStderr = true;
		if (opts.mode == daemon::PrivMode::Root) {
			// As root both processes become an ordinary user.
			config->exporter.user = "nobody";
		}
		auto sup = daemon::supervisorIdentity(*config, opts.mode);
		CHECK_TRUE(sup.has_value());
		opts.supervisor = *sup;
		auto h = daemon::startSpawner(*config, opts);
		CHECK_TRUE(h.has_value());
		pid_ = h->pid;
		control_ = std::move(h->control);
	}

	~SpawnerUnderTest()
	{
		control_.reset();   // the spawner stops its workers and exits
		int status = 0;
		waitpid(pid_, &status, 0);
		unlink(path_.c_str());
	}

	pid_t pid() const { return pid_; }
	const std::string &path() const { return path_; }

	void sendRaw(const void *data, size_t len, int passFd = -1)
	{
		msghdr msg{};
		iovec iov{const_cast<void *>(data), len};
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
		if (passFd >= 0) {
			msg.msg_control = control;
			msg.msg_controllen = sizeof(control);
			cmsghdr *c = CMSG_FIRSTHDR(&msg);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			std::memcpy(CMSG_DATA(c), &passFd, sizeof(int));
		}
		CHECK(sendmsg(control_.get(), &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(len));
	}

	void send(common::FrameWriter &w)
	{
		CHECK_EQUAL(0, pme_proto_writer_finish(w.get()));
		sendRaw(w.get()->buf, w.get()->len);
	}

	void request(uint8_t type, const std::string &service)
	{
		common::FrameWriter w;
		pme_proto_encode_name(w.get(), type, service.data(), service.size());
		send(w);
	}

	// The next answer within timeoutMs, or type 0 when none came.
	struct Answer {
		uint8_t type = 0;
		std::vector<uint8_t> payload;
		std::vector<common::UniqueFd> fds;
	};
	Answer answer(int timeoutMs = 1000)
	{
		Answer a;
		pollfd p{control_.get(), POLLIN, 0};
		if (poll(&p, 1, timeoutMs) != 1)
			return a;
		std::vector<uint8_t> buf;
		auto n = common::recvDatagram(control_.get(), buf, a.fds);
		CHECK_TRUE(n.has_value());
		if (!n || *n < PME_PROTO_HEADER_SIZE)
			return a;
		a.type = buf[3];
		a.payload.assign(buf.begin() + PME_PROTO_HEADER_SIZE, buf.end());
		return a;
	}

	pme_proto_frame frameOf(const Answer &a)
	{
		return pme_proto_frame{a.type, static_cast<uint32_t>(a.payload.size()),
		    a.payload.data()};
	}

private:
	std::string path_;
	pid_t pid_ = -1;
	common::UniqueFd control_;
};

} // namespace

TEST_GROUP(Spawner) {};

TEST(Spawner, ForgedRequestsStartNothing)
{
	SpawnerUnderTest s;

	// A service the spawner's own configuration does not have.
	s.request(PME_MSG_START, "evil");
	auto a = s.answer();
	LONGS_EQUAL(PME_MSG_START_FAILED, a.type);
	pme_proto_start_failed failed;
	auto f = s.frameOf(a);
	LONGS_EQUAL(0, pme_proto_decode_start_failed(&f, &failed));
	STRCMP_EQUAL("evil", common::toString(failed.service).c_str());
	STRCMP_CONTAINS("no such service", common::toString(failed.reason).c_str());

	// A forged service definition: only the spawner sends SERVICE_CONFIG.
	{
		const std::string doc = "services:\n  good:\n    metric_groups:\n      g:\n"
		    "        source_type: command\n        source: [touch, /tmp/pwned]\n";
		common::FrameWriter w(PME_PROTO_HARD_MAX_PAYLOAD);
		pme_proto_encode_service_config(w.get(), "good", 4, 0, 0, nullptr, 0, 0,
		    doc.data(), doc.size());
		s.send(w);
	}
	// Garbage, a frame of the wrong direction, trailing bytes, a name that
	// is not UTF-8, a request carrying a descriptor, an oversized frame.
	const uint8_t garbage[] = {0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7};
	s.sendRaw(garbage, sizeof(garbage));
	{
		common::FrameWriter w;
		pme_proto_encode_worker_ready(w.get(), "good", 4, 1);
		s.send(w);
	}
	{
		common::FrameWriter w;
		pme_proto_encode_name(w.get(), PME_MSG_START, "good", 4);
		pme_proto_put_u32(w.get(), 0x41414141);
		s.send(w);
	}
	{
		const uint8_t bad[] = {'P', 'M', PME_PROTO_VERSION, PME_MSG_START, 0, 0, 0, 8,
		    0, 0, 0, 4, 'g', 'o', 0xc3, 0x28};
		s.sendRaw(bad, sizeof(bad));
	}
	{
		common::FrameWriter w;
		pme_proto_encode_name(w.get(), PME_MSG_START, "good", 4);
		CHECK_EQUAL(0, pme_proto_writer_finish(w.get()));
		s.sendRaw(w.get()->buf, w.get()->len, STDIN_FILENO);
	}
	{
		std::vector<uint8_t> big(PME_PROTO_HEADER_SIZE + PME_PROTO_MAX_PAYLOAD + 16, 'A');
		const uint8_t head[] = {'P', 'M', PME_PROTO_VERSION, PME_MSG_START, 0, 1, 0, 16};
		std::memcpy(big.data(), head, sizeof(head));
		s.sendRaw(big.data(), big.size());
	}

	// None of it is answered, and nothing was started.
	LONGS_EQUAL(0, s.answer(500).type);
	LONGS_EQUAL(0, childrenOf(s.pid()).size());
	CHECK(access("/tmp/pwned", F_OK) != 0);

	// The spawner still serves a real request, with its own definition:
	// the worker reports HELLO and the configured command's value.
	s.request(PME_MSG_START, "good");
	a = s.answer(5000);
	LONGS_EQUAL(PME_MSG_WORKER_READY, a.type);
	LONGS_EQUAL(1, a.fds.size());
	LONGS_EQUAL(1, childrenOf(s.pid()).size());
	common::FrameDecoder dec;
	auto hello = common::readFrame(a.fds[0].get(), *dec);
	CHECK_TRUE(hello.has_value());
	LONGS_EQUAL(PME_MSG_HELLO, hello->type);

	// A second START of a running service is refused.  (The worker's
	// socket stays open in `a`: closing it would end the worker.)
	s.request(PME_MSG_START, "good");
	auto again = s.answer();
	LONGS_EQUAL(PME_MSG_START_FAILED, again.type);
	LONGS_EQUAL(1, childrenOf(s.pid()).size());
}

TEST(Spawner, ReloadRereadsTheFileItself)
{
	SpawnerUnderTest s;
	// A broken file is refused with its errors; the old config stays.
	{
		std::ofstream out(s.path());
		out << "services:\n  good:\n    metric_prefx: x\n";
	}
	common::FrameWriter w;
	pme_proto_encode_empty(w.get(), PME_MSG_RELOAD);
	s.send(w);
	auto a = s.answer(5000);
	LONGS_EQUAL(PME_MSG_RELOADED, a.type);
	pme_proto_reloaded r;
	auto f = s.frameOf(a);
	LONGS_EQUAL(0, pme_proto_decode_reloaded(&f, &r));
	LONGS_EQUAL(0, r.ok);
	STRCMP_CONTAINS(":3:5: unknown key 'metric_prefx'", common::toString(r.message).c_str());
	s.request(PME_MSG_START, "good");
	auto good = s.answer(5000);   // holds the worker's socket open
	LONGS_EQUAL(PME_MSG_WORKER_READY, good.type);

	// A valid new file: the spawner knows only the services it names now.
	{
		std::ofstream out(s.path());
		out << "services:\n  fresh:\n    standalone_metrics:\n"
		    "      m: { source_type: static, value: 1 }\n";
	}
	common::FrameWriter again;
	pme_proto_encode_empty(again.get(), PME_MSG_RELOAD);
	s.send(again);
	a = s.answer(5000);
	f = s.frameOf(a);
	LONGS_EQUAL(0, pme_proto_decode_reloaded(&f, &r));
	LONGS_EQUAL(1, r.ok);
	s.request(PME_MSG_START, "fresh");
	auto fresh = s.answer(5000);
	LONGS_EQUAL(PME_MSG_WORKER_READY, fresh.type);
	s.request(PME_MSG_STOP, "good");
	s.request(PME_MSG_START, "good");
	a = s.answer(5000);
	// Either the exit of the stopped worker or the refusal comes first.
	while (a.type == PME_MSG_WORKER_EXITED)
		a = s.answer(5000);
	LONGS_EQUAL(PME_MSG_START_FAILED, a.type);
}

TEST(Spawner, ItsWorkersGoWhenTheSupervisorDoes)
{
	pid_t spawner, worker;
	{
		SpawnerUnderTest s;
		spawner = s.pid();
		s.request(PME_MSG_START, "good");
		auto ready = s.answer(5000);
		LONGS_EQUAL(PME_MSG_WORKER_READY, ready.type);
		auto kids = childrenOf(spawner);
		LONGS_EQUAL(1, kids.size());
		worker = kids[0];
	}
	// The destructor closed the control socket and reaped the spawner.
	CHECK(kill(spawner, 0) != 0);
	for (int i = 0; i < 50 && kill(worker, 0) == 0; i++)
		usleep(100000);
	CHECK(kill(worker, 0) != 0);
}
