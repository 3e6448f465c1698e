// SPDX-License-Identifier: ISC
// Start the built pme-worker the way the spawner does, for end-to-end tests.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace pme::worker::test {

struct TestIdentity {
	uid_t uid;
	gid_t gid;
	std::vector<uint32_t> groups;
};

// Who the worker runs as: nobody when the test runs as root (a worker
// refuses to run with capabilities), else the test's own user.
inline TestIdentity workerIdentity()
{
	if (geteuid() == 0)
		return {65534, 65534, {}};
	TestIdentity id{getuid(), getgid(), {}};
	int n = getgroups(0, nullptr);
	std::vector<gid_t> g(static_cast<size_t>(n > 0 ? n : 0));
	if (n > 0)
		n = getgroups(n, g.data());
	for (int i = 0; i < n; i++)
		id.groups.push_back(g[static_cast<size_t>(i)]);
	return id;
}

// Fork and exec $PME_BUILD_ROOT/worker/pme-worker SERVICE as the spawner
// does it, in short: childEnd on descriptor 3, /dev/null on 0 and 1, every
// other descriptor closed, the ids of workerIdentity() when root, no
// ambient capabilities, NoNewPrivs, a parent-death signal, cwd /.
// beforeExec runs in the child last (a test's own seccomp filter, say).
// Returns the pid (or -1); childEnd is closed in the parent.
inline pid_t launchWorker(int childEnd, const std::string &service,
    const std::function<void()> &beforeExec = {})
{
	const char *root = std::getenv("PME_BUILD_ROOT");
	std::string binary = std::string(root ? root : ".") + "/worker/pme-worker";
	TestIdentity id = workerIdentity();
	pid_t pid = fork();
	if (pid == 0) {
		dup2(childEnd, 3);
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		dup2(devnull, 0);
		dup2(devnull, 1);
		// Every other descriptor (this test's, and whatever its own
		// parent leaked into it) closed, as the spawner does.
		close_range(4, ~0U, 0);
		if (geteuid() == 0 && (setgroups(0, nullptr) != 0 ||
		    setresgid(id.gid, id.gid, id.gid) != 0 || setresuid(id.uid, id.uid, id.uid) != 0))
			_exit(126);
		prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (chdir("/") != 0)
			_exit(126);
		if (beforeExec)
			beforeExec();
		char *argv[] = {const_cast<char *>("pme-worker"), const_cast<char *>(service.c_str()),
		    nullptr};
		char *envp[] = {const_cast<char *>("PATH=/usr/bin:/bin"),
		    const_cast<char *>("HOME=/nonexistent"), const_cast<char *>("USER=nobody"),
		    const_cast<char *>("LOGNAME=nobody"), const_cast<char *>("SHELL=/bin/sh"),
		    nullptr};
		execve(binary.c_str(), argv, envp);
		_exit(127);
	}
	close(childEnd);
	return pid;
}

} // namespace pme::worker::test
