// SPDX-License-Identifier: ISC
// pme-worker: collects one service's metrics for pmed (see pme-worker(8)).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "common/log.hpp"
#include "worker/session.hpp"

namespace {

void usage()
{
	std::fprintf(stderr, "usage: pme-worker SERVICE\n"
	    "pme-worker is started by pmed(8) with its socket on fd %d; see pme-worker(8).\n",
	    pme::worker::kSupervisorFd);
}

// Descriptors 0-2 closed by whoever started us would be reused by the first
// pipes and sockets opened; keep them pointing at /dev/null.
void openStandardFds()
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n >= 0 && n != fd) {
			dup2(n, fd);
			close(n);
		}
	}
}

} // namespace

int main(int argc, char **argv)
{
	using namespace pme::worker;
	if (argc != 2 || argv[1][0] == '-' || argv[1][0] == '\0') {
		usage();
		return kExitUsage;
	}
	openStandardFds();
	struct stat st;
	if (fstat(kSupervisorFd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
		std::fprintf(stderr, "pme-worker: fd %d is not a socket: pme-worker is started by "
		    "pmed(8), not by hand\n", kSupervisorFd);
		return kExitUsage;
	}
	// Commands must not inherit the supervisor socket.
	fcntl(kSupervisorFd, F_SETFD, FD_CLOEXEC);
	// A write to a supervisor that went away fails with EPIPE and ends the
	// session; libuv restores the default disposition in commands.
	std::signal(SIGPIPE, SIG_IGN);

	try {
		Session session(kSupervisorFd, argv[1]);
		int code = session.run();
		pme::common::log::init("pme-worker", pme::common::log::Sink::Stderr, 0);
		return code;
	} catch (const std::exception &e) {
		pme::common::log::init("pme-worker", pme::common::log::Sink::Stderr, 0);
		pme::common::log::warnx("internal error: %s", e.what());
		return kExitSoftware;
	}
}
