// SPDX-License-Identifier: ISC
// Source type command: real commands on a real uv loop.
#include <signal.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "worker/command_source.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme;
using worker::CommandSource;
using worker::CommandSpec;
using worker::SourceRead;

namespace {

CommandSpec shell(const std::string &script, common::Millis timeout = common::Millis(10000))
{
	CommandSpec spec;
	spec.argv = {"/bin/sh", "-c", script};
	spec.display = script;
	spec.env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"}};
	spec.timeout = timeout;
	return spec;
}

// Run one command to its end on a loop of its own.
SourceRead runOnce(const CommandSpec &spec, double *seconds = nullptr)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	std::optional<SourceRead> got;
	auto t0 = std::chrono::steady_clock::now();
	{
		CommandSource source(&loop, spec);
		source.start([&](SourceRead r) { got = std::move(r); });
		CHECK(source.running());
		while (!got && uv_run(&loop, UV_RUN_ONCE) != 0) {
		}
		CHECK_FALSE(source.running());
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	LONGS_EQUAL(0, uv_loop_close(&loop));
	if (seconds)
		*seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	CHECK(got.has_value());
	return *got;
}

// A process is gone when kill() cannot find it, or when it is a zombie
// waiting for a parent (here: PID 1 of a container, which may never reap).
bool processGone(pid_t pid)
{
	if (::kill(pid, 0) != 0)
		return true;
	std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
	std::string all;
	std::getline(in, all);
	size_t paren = all.rfind(')');
	return paren != std::string::npos && paren + 2 < all.size() &&
	    (all[paren + 2] == 'Z' || all[paren + 2] == 'X');
}

bool waitGone(pid_t pid)
{
	for (int i = 0; i < 200; i++) {
		if (processGone(pid))
			return true;
		std::this_thread::sleep_for(std::chrono::milliseconds(10));
	}
	return false;
}

} // namespace

TEST_GROUP(CommandSource) {};

TEST(CommandSource, StdoutIsCaptured)
{
	CommandSpec spec;
	spec.argv = {"printf", "a 1\\nb 2\\n"};
	spec.display = "printf";
	spec.env = {{"PATH", "/usr/bin:/bin"}};
	SourceRead r = runOnce(spec);
	CHECK(r.ok);
	STRCMP_EQUAL("a 1\nb 2\n", r.content.c_str());
	LONGS_EQUAL(0, r.exitStatus);
	CHECK_FALSE(r.truncated);
	STRCMP_EQUAL("", r.error.c_str());
}

TEST(CommandSource, StdinIsDevNull)
{
	SourceRead r = runOnce(shell("cat; echo done"));
	CHECK(r.ok);
	STRCMP_EQUAL("done\n", r.content.c_str());
}

TEST(CommandSource, NonZeroExitKeepsTheStatusAndTheFirstStderrLine)
{
	SourceRead r = runOnce(shell("echo partial; echo 'disk on fire' >&2; echo more >&2; exit 3"));
	CHECK_FALSE(r.ok);
	LONGS_EQUAL(3, r.exitStatus);
	STRCMP_EQUAL("command 'echo partial; echo 'disk on fire' >&2; echo more >&2; exit 3' "
	    "exited with status 3: disk on fire", r.error.c_str());
	STRCMP_EQUAL("partial\n", r.content.c_str());
}

TEST(CommandSource, DeathBySignalIsReported)
{
	SourceRead r = runOnce(shell("kill -TERM $$"));
	CHECK_FALSE(r.ok);
	LONGS_EQUAL(128 + SIGTERM, r.exitStatus);
	STRCMP_CONTAINS("was killed by signal 15", r.error.c_str());
}

TEST(CommandSource, ExitCodeAbove128IsNotASignal)
{
	SourceRead r = runOnce(shell("exit 130"));
	LONGS_EQUAL(130, r.exitStatus);
	STRCMP_CONTAINS("exited with status 130", r.error.c_str());
}

TEST(CommandSource, TimeoutKillsTheWholeProcessGroup)
{
	double took = 0;
	SourceRead r = runOnce(shell("sleep 100 & echo $!; echo $$; sleep 100",
	    common::Millis(300)), &took);
	CHECK_FALSE(r.ok);
	STRCMP_CONTAINS("timed out after 300ms", r.error.c_str());
	CHECK(took < 5);
	pid_t grandchild = 0, child = 0;
	CHECK_EQUAL(2, std::sscanf(r.content.c_str(), "%d\n%d", &grandchild, &child));
	CHECK(grandchild > 0 && child > 0);
	CHECK(waitGone(grandchild));
	CHECK(waitGone(child));
}

TEST(CommandSource, WhatACommandLeavesBehindIsKilledWhenItExits)
{
	double took = 0;
	// sh exits at once, its background sleep still holds stdout open.
	SourceRead r = runOnce(shell("sleep 100 & echo $!"), &took);
	CHECK(r.ok);
	LONGS_EQUAL(0, r.exitStatus);
	CHECK(took < 5);
	pid_t grandchild = std::atoi(r.content.c_str());
	CHECK(grandchild > 0);
	CHECK(waitGone(grandchild));
}

TEST(CommandSource, OutputOverMaxOutputIsTruncatedAndDrained)
{
	CommandSpec spec = shell("i=0; while [ $i -lt 2000 ]; do echo 0123456789; i=$((i+1)); done; "
	    "echo finished >&2; exit 0");
	spec.maxOutput = 1000;
	SourceRead r = runOnce(spec);
	CHECK(r.ok);
	CHECK(r.truncated);
	LONGS_EQUAL(1000, r.content.size());
	STRCMP_EQUAL("0123456789\n", r.content.substr(0, 11).c_str());
	LONGS_EQUAL(0, r.exitStatus);
	STRCMP_CONTAINS("truncated at 1000 bytes (max_output)", r.error.c_str());
}

TEST(CommandSource, EnvironmentIsCleanPlusServiceAndGroupEnv)
{
	::setenv("PME_TEST_SECRET", "leaked", 1);
	common::GroupConfig g;
	g.sourceType = common::SourceType::Command;
	g.source = "env";
	g.argv = {"env"};
	g.env = {{"LANG", "C"}, {"MODE", "group"}};
	common::Pairs base = {{"HOME", "/var/lib/svc"}, {"USER", "svc"}, {"LOGNAME", "svc"},
	    {"SHELL", "/bin/sh"}, {"PATH", "/usr/bin:/bin"}};
	common::Pairs service = {{"MODE", "service"}, {"TZ", "UTC"}};
	auto spec = worker::commandSpec(g, base, service);
	CHECK(spec.has_value());
	SourceRead r = runOnce(*spec);
	::unsetenv("PME_TEST_SECRET");
	CHECK(r.ok);
	STRCMP_EQUAL("HOME=/var/lib/svc\nUSER=svc\nLOGNAME=svc\nSHELL=/bin/sh\nPATH=/usr/bin:/bin\n"
	    "MODE=group\nTZ=UTC\nLANG=C\n", r.content.c_str());
}

TEST(CommandSource, OwnEnvironmentHasOnlyTheUserVariables)
{
	::setenv("PME_TEST_SECRET", "leaked", 1);
	common::Pairs env = worker::ownEnvironment();
	::unsetenv("PME_TEST_SECRET");
	for (const auto &[name, value] : env)
		CHECK(name == "HOME" || name == "USER" || name == "LOGNAME" || name == "SHELL" ||
		    name == "PATH");
}

TEST(CommandSource, CommandNotFoundNamesTheCommand)
{
	CommandSpec spec;
	spec.argv = {"/nonexistent/pme-no-such-command", "-x"};
	spec.display = "/nonexistent/pme-no-such-command -x";
	SourceRead r = runOnce(spec);
	CHECK_FALSE(r.ok);
	LONGS_EQUAL(-1, r.exitStatus);
	STRCMP_EQUAL("cannot run '/nonexistent/pme-no-such-command -x': No such file or directory",
	    r.error.c_str());
	// Looked up in the command's PATH, not the worker's.
	spec.argv = {"sh", "-c", "true"};
	spec.display = "sh -c true";
	spec.env = {{"PATH", "/nonexistent"}};
	r = runOnce(spec);
	CHECK_FALSE(r.ok);
	STRCMP_EQUAL("cannot run 'sh -c true': No such file or directory", r.error.c_str());
}

TEST(CommandSource, CommandsStartWithDefaultSignalDispositions)
{
	// The worker ignores SIGPIPE; its commands must not inherit that.
	void (*old)(int) = std::signal(SIGPIPE, SIG_IGN);
	SourceRead r = runOnce(shell("grep SigIgn /proc/self/status"));
	std::signal(SIGPIPE, old);
	CHECK(r.ok);
	STRCMP_EQUAL("SigIgn:\t0000000000000000\n", r.content.c_str());
}

TEST(CommandSource, CancelKillsTheCommandAndDropsTheCallback)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	bool called = false;
	pid_t pid = 0;
	{
		CommandSource source(&loop, shell("sleep 100"));
		source.start([&](SourceRead) { called = true; });
		pid = source.pid();
		CHECK(pid > 0);
		source.cancel();
		CHECK_FALSE(source.running());
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	LONGS_EQUAL(0, uv_loop_close(&loop));
	CHECK_FALSE(called);
	CHECK(waitGone(pid));
}

TEST(CommandSource, OneSourceRunsAgainAfterEachRun)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	int done = 0;
	std::string outputs;
	{
		CommandSource source(&loop, shell("echo run"));
		std::function<void(SourceRead)> next = [&](SourceRead r) {
			outputs += r.content;
			if (++done < 3)
				source.start(next);
		};
		source.start(next);
		uv_run(&loop, UV_RUN_DEFAULT);
		LONGS_EQUAL(3, source.runs());
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	LONGS_EQUAL(0, uv_loop_close(&loop));
	STRCMP_EQUAL("run\nrun\nrun\n", outputs.c_str());
}

TEST(CommandSource, SpecFromGroupConfig)
{
	common::GroupConfig g;
	g.sourceType = common::SourceType::Command;
	g.source = "df -P /";
	g.argv = {"df", "-P", "/"};
	g.timeout = common::Millis(2000);
	g.maxOutput = 4096;
	auto spec = worker::commandSpec(g, {}, {});
	CHECK(spec.has_value());
	LONGS_EQUAL(3, spec->argv.size());
	STRCMP_EQUAL("df -P /", spec->display.c_str());
	LONGS_EQUAL(2000, spec->timeout.count());
	LONGS_EQUAL(4096, spec->maxOutput);
	g.shell = true;
	g.source = "df -P | tail -n +2";
	spec = worker::commandSpec(g, {}, {});
	LONGS_EQUAL(3, spec->argv.size());
	STRCMP_EQUAL("/bin/sh", spec->argv[0].c_str());
	STRCMP_EQUAL("df -P | tail -n +2", spec->argv[2].c_str());
	g.shell = false;
	g.argv = {"/usr/bin/stat", "-c", "%s %n", "/etc/hostname"};
	spec = worker::commandSpec(g, {}, {});
	LONGS_EQUAL(4, spec->argv.size());
	STRCMP_EQUAL("%s %n", spec->argv[2].c_str());
	g.argv.clear();
	CHECK_FALSE(worker::commandSpec(g, {}, {}));
}
