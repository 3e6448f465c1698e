// SPDX-License-Identifier: ISC
// The worker's self check over synthetic /proc/self/status texts.
#include <unistd.h>

#include <string>
#include <vector>

#include "worker/self_check.hpp"

#include <fcntl.h>

#include <algorithm>

#include <CppUTest/TestHarness.h>

using namespace pme::worker;

namespace {

// A status text as Linux 6.1 writes it for a well-dropped worker running
// as uid 33 / gid 33 with supplementary groups 4 and 1001.
std::string status(const std::string &uid = "33\t33\t33\t33",
    const std::string &gid = "33\t33\t33\t33", const std::string &groups = "4 1001 ",
    const std::string &capEff = "0000000000000000", const std::string &capPrm = "0000000000000000",
    const std::string &capAmb = "0000000000000000", const std::string &nnp = "1")
{
	return "Name:\tpme-worker\n"
	    "Umask:\t0022\n"
	    "State:\tS (sleeping)\n"
	    "Tgid:\t4242\n"
	    "Pid:\t4242\n"
	    "PPid:\t4200\n"
	    "Uid:\t" + uid + "\n"
	    "Gid:\t" + gid + "\n"
	    "FDSize:\t64\n"
	    "Groups:\t" + groups + "\n"
	    "VmRSS:\t    4096 kB\n"
	    "CapInh:\t0000000000000000\n"
	    "CapPrm:\t" + capPrm + "\n"
	    "CapEff:\t" + capEff + "\n"
	    "CapBnd:\t000001ffffffffff\n"
	    "CapAmb:\t" + capAmb + "\n"
	    "NoNewPrivs:\t" + nnp + "\n"
	    "Seccomp:\t0\n";
}

ExpectedIdentity expected()
{
	ExpectedIdentity want;
	want.uid = 33;
	want.gid = 33;
	want.groups = {1001, 4};
	return want;
}

std::vector<std::string> check(const std::string &text, ExpectedIdentity want = expected())
{
	auto id = parseProcStatus(text);
	if (!id)
		FAIL(("parse failed: " + id.error().message).c_str());
	return checkIdentity(*id, want);
}

void checkOnly(const std::vector<std::string> &failed, const char *message)
{
	LONGS_EQUAL(1, failed.size());
	STRCMP_EQUAL(message, failed[0].c_str());
}

} // namespace

TEST_GROUP(SelfCheck) {};

TEST(SelfCheck, WellDroppedWorkerPasses)
{
	auto id = parseProcStatus(status());
	CHECK(id.has_value());
	LONGS_EQUAL(33, id->uid[2]);
	LONGS_EQUAL(2, id->groups.size());
	LONGS_EQUAL(1, id->noNewPrivs);
	CHECK(checkIdentity(*id, expected()).empty());
}

TEST(SelfCheck, GroupOrderDoesNotMatter)
{
	CHECK(check(status("33\t33\t33\t33", "33\t33\t33\t33", "1001 4")).empty());
}

TEST(SelfCheck, EachUidIsNamed)
{
	checkOnly(check(status("0\t33\t33\t33")), "real uid is 0, expected 33");
	checkOnly(check(status("33\t1000\t33\t33")), "effective uid is 1000, expected 33");
	checkOnly(check(status("33\t33\t0\t33")), "saved uid is 0, expected 33");
}

TEST(SelfCheck, EachGidIsNamed)
{
	checkOnly(check(status("33\t33\t33\t33", "0\t33\t33\t33")), "real gid is 0, expected 33");
	checkOnly(check(status("33\t33\t33\t33", "33\t50\t33\t33")),
	    "effective gid is 50, expected 33");
	checkOnly(check(status("33\t33\t33\t33", "33\t33\t0\t33")), "saved gid is 0, expected 33");
}

TEST(SelfCheck, SupplementaryGroupsMustBeExactlyTheExpectedSet)
{
	checkOnly(check(status("33\t33\t33\t33", "33\t33\t33\t33", "0 4 1001")),
	    "supplementary groups are 0,4,1001, expected 4,1001");
	checkOnly(check(status("33\t33\t33\t33", "33\t33\t33\t33", "4")),
	    "supplementary groups are 4, expected 4,1001");
	checkOnly(check(status("33\t33\t33\t33", "33\t33\t33\t33", "")),
	    "supplementary groups are none, expected 4,1001");
}

TEST(SelfCheck, EachCapabilitySetIsNamed)
{
	const std::string id = "33\t33\t33\t33";
	const std::string zero = "0000000000000000";
	checkOnly(check(status(id, id, "4 1001", "0000000000000020")),
	    "CapEff is 0000000000000020, expected 0");
	checkOnly(check(status(id, id, "4 1001", zero, "00000000000000c0")),
	    "CapPrm is 00000000000000c0, expected 0");
	checkOnly(check(status(id, id, "4 1001", zero, zero, "0000000000000400")),
	    "CapAmb is 0000000000000400, expected 0");
}

TEST(SelfCheck, InheritableCapabilitiesAreRefusedToo)
{
	std::string text = status();
	text.replace(text.find("CapInh:\t0000000000000000"), 24, "CapInh:\t0000000000000080");
	checkOnly(check(text), "CapInh is 0000000000000080, expected 0");
}

TEST(SelfCheck, AParentDeathSignalMustBeSet)
{
	auto id = parseProcStatus(status());
	CHECK(id.has_value());
	id->deathSignal = 15;
	CHECK(checkIdentity(*id, expected()).empty());
	id->deathSignal = 0;
	checkOnly(checkIdentity(*id, expected()),
	    "no parent-death signal is set (PR_SET_PDEATHSIG)");
}

TEST(SelfCheck, InheritedDescriptorsAreNamed)
{
	auto id = parseProcStatus(status());
	CHECK(id.has_value());
	id->strayFds = {"4 (/etc/hostname)", "9 (socket:[1234])"};
	checkOnly(checkIdentity(*id, expected()),
	    "descriptors inherited besides the socket: 4 (/etc/hostname), 9 (socket:[1234])");
}

TEST(SelfCheck, ServiceManagerVariablesAreRefused)
{
	CHECK_TRUE(forbiddenVariable("NOTIFY_SOCKET"));
	CHECK_TRUE(forbiddenVariable("LISTEN_FDS"));
	CHECK_TRUE(forbiddenVariable("LISTEN_PID"));
	CHECK_TRUE(forbiddenVariable("WATCHDOG_USEC"));
	CHECK_FALSE(forbiddenVariable("HOME"));
	CHECK_FALSE(forbiddenVariable("NOTIFY"));
	CHECK_FALSE(forbiddenVariable("MY_LISTEN_FDS"));
	auto id = parseProcStatus(status());
	CHECK(id.has_value());
	id->forbiddenEnv = {"NOTIFY_SOCKET", "WATCHDOG_USEC"};
	checkOnly(checkIdentity(*id, expected()),
	    "the environment holds NOTIFY_SOCKET, WATCHDOG_USEC");
}

TEST(SelfCheck, LiveProcessSeesAnOpenedDescriptorAndTheEnvironment)
{
	int null = open("/dev/null", O_RDONLY);
	int fd = fcntl(null, F_DUPFD, 10);
	close(null);
	CHECK(fd >= 10);
	setenv("LISTEN_FDS", "1", 1);
	auto id = readProcessIdentity(false, -1);
	unsetenv("LISTEN_FDS");
	close(fd);
	CHECK(id.has_value());
	bool found = false;
	for (const auto &f : id->strayFds)
		found = found || f == std::to_string(fd) + " (/dev/null)";
	CHECK_TRUE(found);
	CHECK(std::find(id->forbiddenEnv.begin(), id->forbiddenEnv.end(), "LISTEN_FDS") !=
	    id->forbiddenEnv.end());
	CHECK(id->deathSignal >= 0);
}

TEST(SelfCheck, NoNewPrivsMustBeSet)
{
	const std::string id = "33\t33\t33\t33";
	const std::string zero = "0000000000000000";
	checkOnly(check(status(id, id, "4 1001", zero, zero, zero, "0")),
	    "NoNewPrivs is 0, expected 1");
}

TEST(SelfCheck, BecomingRootAgainIsRefused)
{
	auto id = parseProcStatus(status());
	CHECK(id.has_value());
	id->becameRoot = false;
	CHECK(checkIdentity(*id, expected()).empty());
	id->becameRoot = true;
	checkOnly(checkIdentity(*id, expected()), "setresuid(0, 0, 0) succeeded, expected it to fail");
}

TEST(SelfCheck, EveryFailureIsListed)
{
	auto failed = check(status("0\t0\t0\t0", "0\t0\t0\t0", "0", "000001ffffffffff",
	    "000001ffffffffff", "0000000000000000", "0"));
	// 3 uids, 3 gids, groups, CapEff, CapPrm, NoNewPrivs.
	LONGS_EQUAL(10, failed.size());
	STRCMP_EQUAL("CapEff is 000001ffffffffff, expected 0", failed[7].c_str());
}

TEST(SelfCheck, MissingOrMalformedLinesAreErrors)
{
	std::string noAmb = status();
	noAmb.erase(noAmb.find("CapAmb:"), noAmb.find("NoNewPrivs:") - noAmb.find("CapAmb:"));
	auto a = parseProcStatus(noAmb);
	CHECK_FALSE(a);
	STRCMP_EQUAL("/proc/self/status has no CapAmb line", a.error().message.c_str());

	auto b = parseProcStatus(status("33\t33"));
	CHECK_FALSE(b);
	STRCMP_CONTAINS("cannot read the Uid line", b.error().message.c_str());
	CHECK_FALSE(parseProcStatus(status("33\t33\t33\t33", "33\t33\t33\t33", "4 x")));
	CHECK_FALSE(parseProcStatus(status("33\t33\t33\t33", "33\t33\t33\t33", "4",
	    "zz")));
	CHECK_FALSE(parseProcStatus(status("33\t33\t33\t33", "33\t33\t33\t33", "4",
	    "0000000000000000", "0000000000000000", "0000000000000000", "2")));
	CHECK_FALSE(parseProcStatus(""));
}

TEST(SelfCheck, LiveProcessReadsItsOwnIds)
{
	auto id = readProcessIdentity(false);
	CHECK(id.has_value());
	LONGS_EQUAL(getuid(), id->uid[0]);
	LONGS_EQUAL(geteuid(), id->uid[1]);
	LONGS_EQUAL(getgid(), id->gid[0]);
	CHECK_FALSE(id->becameRoot.has_value());
	// This test process has not set NoNewPrivs... unless its parent did; so
	// only the ids are compared with what the system calls say.
	ExpectedIdentity want;
	want.uid = getuid();
	want.gid = getgid();
	want.groups = id->groups;
	for (const auto &f : checkIdentity(*id, want))
		CHECK(f.rfind("real", 0) != 0 && f.rfind("effective", 0) != 0 &&
		    f.rfind("saved", 0) != 0 && f.rfind("supplementary", 0) != 0);
}
