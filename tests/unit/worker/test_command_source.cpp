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
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "common/log.hpp"
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

double seconds(common::Millis d)
{
	return static_cast<double>(d.count()) / 1000;
}

std::string fileText(const std::string &path)
{
	std::string text;
	if (FILE *f = std::fopen(path.c_str(), "r")) {
		char buf[256];
		size_t n;
		while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
			text.append(buf, n);
		std::fclose(f);
	}
	return text;
}

// A line of /proc/self/status, in kB.
long statusKb(const char *field)
{
	std::ifstream in("/proc/self/status");
	std::string line;
	size_t len = std::strlen(field);
	while (std::getline(in, line))
		if (line.compare(0, len, field) == 0 && line[len] == ':')
			return std::atol(line.c_str() + len + 1);
	FAIL("no such field in /proc/self/status");
	return 0;
}

// The peak resident size from now on: the kernel resets VmHWM to VmRSS.
long resetPeakRssKb()
{
	std::ofstream("/proc/self/clear_refs") << "5";
	return statusKb("VmHWM");
}

// A directory for the files commands leave, removed at the end of the test.
struct TempDir {
	std::string path;

	TempDir()
	{
		char tmpl[] = "/tmp/pme-command-source-XXXXXX";
		CHECK(mkdtemp(tmpl) != nullptr);
		path = tmpl;
	}
	~TempDir()
	{
		std::string cmd = "rm -rf '" + path + "'";
		CHECK_EQUAL(0, std::system(cmd.c_str()));
	}
};

// Warnings logged while it lives.
struct LogCapture {
	std::string lines;

	LogCapture()
	{
		common::log::setCallback([this](int, const std::string &line) {
			lines += line + "\n";
		});
	}
	~LogCapture()
	{
		common::log::setCallback(nullptr);
		common::log::init("test", common::log::Sink::Stderr, 0);
	}
};

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
	STRCMP_EQUAL("command 'sleep 100 & echo $!; echo $$; sleep 100' timed out after 300ms",
	    r.error.c_str());
	// SIGTERM ended it: its status is known, and no SIGKILL was needed.
	LONGS_EQUAL(128 + SIGTERM, r.exitStatus);
	CHECK(took < 5);
	pid_t grandchild = 0, child = 0;
	CHECK_EQUAL(2, std::sscanf(r.content.c_str(), "%d\n%d", &grandchild, &child));
	CHECK(grandchild > 0 && child > 0);
	CHECK(waitGone(grandchild));
	CHECK(waitGone(child));
}

TEST(CommandSource, CommandIgnoringSigtermIsKilledWithItsGroupAfterTheGrace)
{
	common::Millis timeout(400);
	double grace = seconds(worker::terminationGrace(timeout));
	double took = 0;
	// sh, its background sleep and its foreground sleep all ignore SIGTERM.
	SourceRead r = runOnce(shell("trap '' TERM; sleep 100 & echo $!; echo $$; sleep 100",
	    timeout), &took);
	CHECK_FALSE(r.ok);
	STRCMP_EQUAL("command 'trap '' TERM; sleep 100 & echo $!; echo $$; sleep 100' timed out "
	    "after 400ms and did not end within 200ms of SIGTERM: killed (SIGKILL)",
	    r.error.c_str());
	LONGS_EQUAL(-1, r.exitStatus);
	// The grace was given, and no more than that.
	CHECK(took >= 0.4 + grace - 0.02);
	CHECK(took < 0.4 + grace + 0.5);
	pid_t background = 0, main = 0;
	CHECK_EQUAL(2, std::sscanf(r.content.c_str(), "%d\n%d", &background, &main));
	CHECK(waitGone(background));
	CHECK(waitGone(main));
}

TEST(CommandSource, CommandHandlingSigtermCleansUpAndIsNotKilled)
{
	TempDir dir;
	std::string mark = dir.path + "/cleaned";
	common::Millis timeout(400);
	double took = 0;
	// The foreground sleep dies of the group's SIGTERM; then sh runs its trap.
	SourceRead r = runOnce(shell("trap 'echo cleaned > " + mark + "; exit 7' TERM; sleep 100",
	    timeout), &took);
	CHECK_FALSE(r.ok);
	STRCMP_EQUAL(("command 'trap 'echo cleaned > " + mark + "; exit 7' TERM; sleep 100' timed "
	    "out after 400ms").c_str(), r.error.c_str());
	// Its own status, from its trap: not killed by SIGKILL (137, or -1
	// when the run ends before the exit).
	LONGS_EQUAL(7, r.exitStatus);
	STRCMP_EQUAL("cleaned\n", fileText(mark).c_str());
	CHECK(took < 0.4 + seconds(worker::terminationGrace(timeout)));
}

TEST(CommandSource, WhatACommandLeavesBehindIsKilledWhenItExits)
{
	TempDir dir;
	std::string pidFile = dir.path + "/pid";
	double took = 0;
	// sh exits at once, its background sleep still holds stdout open.
	SourceRead r = runOnce(shell("sleep 1000 & echo $! > " + pidFile + "; echo 1"), &took);
	CHECK(r.ok);
	STRCMP_EQUAL("1\n", r.content.c_str());
	LONGS_EQUAL(0, r.exitStatus);
	// Killing the group closed the pipe: no wait for the grace (1s).
	CHECK(took < 0.8);
	pid_t background = std::atoi(fileText(pidFile).c_str());
	CHECK(background > 0);
	CHECK(waitGone(background));
}

TEST(CommandSource, ProcessOutsideTheGroupHoldingStdoutDelaysTheRunByTheGraceOnly)
{
	TempDir dir;
	std::string pidFile = dir.path + "/pid";
	common::Millis timeout(5000);
	double grace = seconds(worker::terminationGrace(timeout));
	LogCapture log;
	double took = 0;
	// The sleep has its own session, out of reach of the group kill; sh
	// waits until it is there, so that the kill cannot catch it first.
	SourceRead r = runOnce(shell("setsid sh -c 'echo $$ > " + pidFile + "; exec sleep 1000' & "
	    "while [ ! -s " + pidFile + " ]; do sleep 0.01; done; echo 1", timeout), &took);
	pid_t escaped = std::atoi(fileText(pidFile).c_str());
	CHECK(escaped > 0);
	::kill(escaped, SIGKILL);
	CHECK(waitGone(escaped));
	// Not an error: the command exited 0 and its output is there.
	CHECK(r.ok);
	STRCMP_EQUAL("1\n", r.content.c_str());
	LONGS_EQUAL(0, r.exitStatus);
	STRCMP_EQUAL("", r.error.c_str());
	CHECK(took >= grace - 0.02);
	CHECK(took < grace + 1);
	STRCMP_CONTAINS("command 'setsid sh -c ", log.lines.c_str());
	STRCMP_CONTAINS("exited, but a process it started still holds its standard output and "
	    "error open", log.lines.c_str());
}

TEST(CommandSource, OutputOverMaxOutputIsCutAndTheCommandDiesOfSigpipe)
{
	// 220,000 bytes: more than the pipe holds, so that sh is still
	// writing when the pipe is closed.
	CommandSpec spec = shell("i=0; while [ $i -lt 20000 ]; do echo 0123456789; i=$((i+1)); "
	    "done; echo finished >&2; exit 0");
	spec.maxOutput = 1000;
	SourceRead r = runOnce(spec);
	// The SIGPIPE is ours, not a failure of the command.
	CHECK(r.ok);
	CHECK(r.truncated);
	LONGS_EQUAL(1000, r.content.size());
	STRCMP_EQUAL("0123456789\n", r.content.substr(0, 11).c_str());
	LONGS_EQUAL(128 + SIGPIPE, r.exitStatus);
	STRCMP_EQUAL("output of 'i=0; while [ $i -lt 20000 ]; do echo 0123456789; "
	    "i=$((i+1)); done; echo finished >&2; exit 0' truncated at 1000 bytes (max_output)",
	    r.error.c_str());
}

TEST(CommandSource, EndlessOutputIsCutAtMaxOutputPromptlyInBoundedMemory)
{
	CommandSpec spec;
	spec.argv = {"yes"};
	spec.display = "yes";
	spec.env = {{"PATH", "/usr/bin:/bin"}};
	spec.maxOutput = 1 << 20;
	long before = resetPeakRssKb();
	double took = 0;
	SourceRead r = runOnce(spec, &took);
	long growth = statusKb("VmHWM") - before;
	CHECK(r.ok);
	CHECK(r.truncated);
	LONGS_EQUAL(1 << 20, r.content.size());
	std::string yes;
	for (int i = 0; i < (1 << 19); i++)
		yes += "y\n";
	CHECK(r.content == yes);
	LONGS_EQUAL(128 + SIGPIPE, r.exitStatus);
	STRCMP_EQUAL("output of 'yes' truncated at 1048576 bytes (max_output)", r.error.c_str());
	// Not at the timeout (10s).
	CHECK(took < 2);
	// The content (1 MiB), copies of it, and what the loop needs.
	CHECK_COMPARE(growth, <, 8 * 1024);
}

TEST(CommandSource, GibibyteOfOutputIsCutAtMaxOutput)
{
	// sh does not die of head's SIGPIPE, but passes it on as status 141.
	CommandSpec spec = shell("head -c 1G /dev/zero; exit $?");
	spec.maxOutput = 1 << 20;
	double took = 0;
	SourceRead r = runOnce(spec, &took);
	CHECK(r.ok);
	CHECK(r.truncated);
	CHECK(r.content == std::string(1 << 20, '\0'));
	LONGS_EQUAL(128 + SIGPIPE, r.exitStatus);
	CHECK(took < 2);
}

TEST(CommandSource, MillionLinesAreCutAtTheDefaultMaxOutput)
{
	CommandSpec spec;
	spec.argv = {"seq", "1000000"};
	spec.display = "seq 1000000";
	spec.env = {{"PATH", "/usr/bin:/bin"}};
	double took = 0;
	SourceRead r = runOnce(spec, &took);
	CHECK(r.ok);
	CHECK(r.truncated);
	LONGS_EQUAL(1024 * 1024, r.content.size());
	STRCMP_EQUAL("1\n2\n3\n", r.content.substr(0, 6).c_str());
	// Stopped by the cut, not drained to its end.
	LONGS_EQUAL(128 + SIGPIPE, r.exitStatus);
	STRCMP_CONTAINS("truncated at 1048576 bytes (max_output)", r.error.c_str());
	CHECK(took < 5);
}

TEST(CommandSource, CommandIgnoringSigpipeFailsWithItsStatusAndTheCut)
{
	// yes then gets EPIPE, says so and exits 1.
	CommandSpec spec = shell("trap '' PIPE; yes");
	spec.maxOutput = 4096;
	double took = 0;
	SourceRead r = runOnce(spec, &took);
	CHECK_FALSE(r.ok);
	CHECK(r.truncated);
	LONGS_EQUAL(4096, r.content.size());
	LONGS_EQUAL(1, r.exitStatus);
	STRCMP_EQUAL("command 'trap '' PIPE; yes' exited with status 1 after its output was cut at "
	    "4096 bytes (max_output): yes: standard output: Broken pipe", r.error.c_str());
	CHECK(took < 2);
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
