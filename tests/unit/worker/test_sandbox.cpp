// SPDX-License-Identifier: ISC
// Worker sandbox: the seccomp filter, Landlock, PCRE2 without executable memory.
//
// A seccomp filter or a Landlock domain cannot be removed, so everything
// sandboxed runs in a forked child, which reports through a pipe: an empty
// report is success, anything else is the list of what went wrong.  The
// child never touches CppUTest.  The last tests run the real pme-worker.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/io_uring.h>
#include <linux/kcmp.h>
#include <linux/keyctl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/channel.hpp"
#include "common/config_loader.hpp"
#include "common/config_writer.hpp"
#include "common/group_result.hpp"
#include "pme_build.h"
#include "proto/message.h"
#include "worker_launch.hpp"
#include "worker/sandbox.hpp"
#include "worker/text_extractor.hpp"

#if PME_HAVE_SECCOMP
#include <seccomp.h>
#endif

#include <CppUTest/TestHarness.h>

using namespace pme;
namespace test = pme::worker::test;
using worker::applySandbox;

extern char **environ;

namespace {

// ---- children ----

struct ChildResult {
	int status = 0;
	std::string report;
};

// Run body in a forked child; what it returns comes back as the report.
ChildResult inChild(const std::function<std::string()> &body)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		FAIL("pipe2");
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork");
	if (pid == 0) {
		close(p[0]);
		std::string r;
		try {
			r = body();
		} catch (const std::exception &e) {
			r = std::string("exception: ") + e.what();
		}
		size_t off = 0;
		while (off < r.size()) {
			ssize_t n = write(p[1], r.data() + off, r.size() - off);
			if (n <= 0)
				_exit(3);
			off += static_cast<size_t>(n);
		}
		_exit(0);
	}
	close(p[1]);
	ChildResult c;
	char buf[4096];
	ssize_t n;
	while ((n = read(p[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			c.report.append(buf, static_cast<size_t>(n));
	close(p[0]);
	waitpid(pid, &c.status, 0);
	return c;
}

// The child exited 0 with an empty report.
void expectClean(const ChildResult &c)
{
	STRCMP_EQUAL("", c.report.c_str());
	CHECK_TRUE(WIFEXITED(c.status));
	LONGS_EQUAL(0, WEXITSTATUS(c.status));
}

std::string errnoName(int e)
{
	if (e == 0)
		return "success";
	const char *name = strerrordesc_np(e);
	return std::to_string(e) + " (" + (name ? name : "?") + ")";
}

// A line for the report unless got == want.
std::string expectErrno(const std::string &what, int got, int want)
{
	if (got == want)
		return "";
	return what + ": got " + errnoName(got) + ", expected " + errnoName(want) + "\n";
}

// errno of a call returning -1 on failure, 0 when it succeeded.
int errnoOf(long rc)
{
	return rc < 0 ? errno : 0;
}

// Exit status of a program run with fork and execve (-1: not run, 128+n:
// killed by signal n).
int runProgram(const std::vector<std::string> &args, char **envp = environ)
{
	std::vector<char *> argv;
	for (const auto &a : args)
		argv.push_back(const_cast<char *>(a.c_str()));
	argv.push_back(nullptr);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		execve(argv[0], argv.data(), envp);
		_exit(127);
	}
	int status = 0;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#if PME_HAVE_SECCOMP
// ---- probes: calls the filter must refuse ----

int tryClone(unsigned long flags)
{
	long pid = syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
	if (pid == 0)
		_exit(0);
	if (pid < 0)
		return errno;
	waitpid(static_cast<pid_t>(pid), nullptr, 0);
	return 0;
}

int tryIoUring()
{
	io_uring_params params{};
	long fd = syscall(SYS_io_uring_setup, 1, &params);
	if (fd >= 0)
		close(static_cast<int>(fd));
	return errnoOf(fd);
}

int tryUserfaultfd()
{
	long fd = syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */);
	if (fd >= 0)
		close(static_cast<int>(fd));
	return errnoOf(fd);
}

int tryProcessVmReadv()
{
	char from[8] = "secret", to[8] = {};
	iovec local{to, sizeof(to)}, remote{from, sizeof(from)};
	return errnoOf(process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kLeakChecked = true;
#else
constexpr bool kLeakChecked = false;
#endif

struct Probe {
	const char *name;
	int filtered;          // the errno the filter answers
	bool alwaysWorks;      // succeeds for anyone without the filter
	int (*run)();
};

const Probe kProbes[] = {
	{"personality(ADDR_NO_RANDOMIZE)", EPERM, true, [] {
		return errnoOf(personality(static_cast<unsigned long>(PER_LINUX) | ADDR_NO_RANDOMIZE));
	}},
	{"unshare(CLONE_NEWUTS)", EPERM, false, [] { return errnoOf(unshare(CLONE_NEWUTS)); }},
	{"unshare(CLONE_NEWUSER)", EPERM, false, [] { return errnoOf(unshare(CLONE_NEWUSER)); }},
	{"clone(CLONE_NEWUSER)", EPERM, false, [] { return tryClone(CLONE_NEWUSER); }},
	{"clone(CLONE_NEWNET)", EPERM, false, [] { return tryClone(CLONE_NEWNET); }},
	// Its arguments are invalid: EINVAL without the filter.
	{"clone3", ENOSYS, false, [] { return errnoOf(syscall(SYS_clone3, nullptr, 0)); }},
	{"mount", EPERM, false, [] {
		return errnoOf(mount("none", "/nonexistent/pme", "pme-no-such-fs", 0, nullptr));
	}},
	{"bpf", EPERM, false, [] { return errnoOf(syscall(SYS_bpf, 0xffff, nullptr, 0)); }},
	{"io_uring_setup", EPERM, false, tryIoUring},
	{"userfaultfd", EPERM, false, tryUserfaultfd},
	{"keyctl", EPERM, false, [] {
		return errnoOf(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 0));
	}},
	{"process_vm_readv", EPERM, true, tryProcessVmReadv},
	{"kcmp", EPERM, false, [] {
		return errnoOf(syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, 0, 0));
	}},
	// Left to LeakSanitizer in a build with AddressSanitizer (sandbox.cpp).
	{"ptrace(PTRACE_TRACEME)", kLeakChecked ? 0 : EPERM, true,
	    [] { return errnoOf(ptrace(PTRACE_TRACEME, 0, nullptr, nullptr)); }},
};

// The errno of one probe, run in a process of its own so that one
// probe's success (a new namespace) does not change what the next sees;
// -1 when that process did not exit.
int runProbe(const Probe &p)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(p.run());
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

// name -> errno, for every probe.
std::map<std::string, int> runProbes()
{
	std::map<std::string, int> out;
	for (const auto &p : kProbes)
		out[p.name] = runProbe(p);
	return out;
}

// "name errno\n" lines and back.
std::string formatProbes(const std::map<std::string, int> &results)
{
	std::string s;
	for (const auto &[name, err] : results)
		s += name + " " + std::to_string(err) + "\n";
	return s;
}

std::map<std::string, int> parseProbes(const std::string &text)
{
	std::map<std::string, int> out;
	size_t pos = 0;
	while (pos < text.size()) {
		size_t nl = text.find('\n', pos);
		std::string line = text.substr(pos, nl - pos);
		size_t sp = line.rfind(' ');
		out[line.substr(0, sp)] = std::atoi(line.c_str() + sp + 1);
		pos = nl == std::string::npos ? text.size() : nl + 1;
	}
	return out;
}

// Run as a command (the test binary re-executed with PME_SANDBOX_PROBE
// set): exit with the number of probes the filter would have answered
// differently, so 0 means "filtered like the worker".
const int kProbeMode = [] {
	if (std::getenv("PME_SANDBOX_PROBE") == nullptr)
		return 0;
	int wrong = 0;
	for (const auto &p : kProbes)
		wrong += runProbe(p) != p.filtered;
	_exit(wrong);
}();

std::string selfExe()
{
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0)
		FAIL("readlink /proc/self/exe");
	return std::string(buf, static_cast<size_t>(n));
}

// The probes as a command: its exit status.
int runProbeCommand(const std::string &exe)
{
	char probe[] = "PME_SANDBOX_PROBE=1";
	char *envp[] = {probe, nullptr};
	return runProgram({exe}, envp);
}

// ---- fake kernels, with a filter of the test's own ----

// ENOSYS from the Landlock calls, as on a kernel built without it.
std::string fakeKernelWithoutLandlock()
{
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
	int rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(landlock_create_ruleset), 0);
	if (rc == 0)
		rc = seccomp_load(f);
	seccomp_release(f);
	return rc == 0 ? "" : "cannot load the fake kernel's filter\n";
}

// ENOSYS from seccomp() and EINVAL from prctl(PR_SET_SECCOMP), as on a
// kernel built without seccomp filters.
std::string fakeKernelWithoutSeccomp()
{
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
	int rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(seccomp), 0);
	if (rc == 0)
		rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EINVAL), SCMP_SYS(prctl), 1,
		    SCMP_A0(SCMP_CMP_EQ, PR_SET_SECCOMP));
	if (rc == 0)
		rc = seccomp_load(f);
	seccomp_release(f);
	return rc == 0 ? "" : "cannot load the fake kernel's filter\n";
}

// No executable memory, as systemd's MemoryDenyWriteExecute=yes, and
// stricter: PROT_EXEC is refused in mmap even without PROT_WRITE, so that a
// JIT that maps the same memory twice (writable, then executable) is
// refused too.
std::string denyExecutableMemory()
{
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
	int rc = 0;
	for (int nr : {SCMP_SYS(mmap), SCMP_SYS(mprotect), SCMP_SYS(pkey_mprotect)})
		if (rc == 0)
			rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), nr, 1,
			    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
	if (rc == 0)
		rc = seccomp_load(f);
	seccomp_release(f);
	return rc == 0 ? "" : "cannot load the W^X filter\n";
}
#endif

// ---- files ----

class TempTree {
public:
	// dir/allowed/data and dir/outside/data hold "value 42" and "value 7";
	// everything readable by everyone and dir/allowed writable by everyone
	// (the worker may run as nobody), so that a refusal is the sandbox's.
	TempTree()
	{
		char tmpl[] = "/tmp/pme-sandbox-XXXXXX";
		if (!mkdtemp(tmpl))
			FAIL("mkdtemp");
		dir = tmpl;
		chmod(dir.c_str(), 0755);
		for (const char *sub : {"allowed", "outside"}) {
			std::string d = dir + "/" + sub;
			mkdir(d.c_str(), 0755);
			chmod(d.c_str(), sub[0] == 'a' ? 0777 : 0755);
		}
		write(dir + "/allowed/data", "value 42\n");
		write(dir + "/outside/data", "value 7\n");
	}
	~TempTree()
	{
		std::error_code ec;
		std::filesystem::remove_all(dir, ec);
	}

	static void write(const std::string &path, const std::string &text)
	{
		FILE *f = std::fopen(path.c_str(), "w");
		if (!f)
			FAIL(("cannot write " + path).c_str());
		std::fputs(text.c_str(), f);
		std::fclose(f);
		chmod(path.c_str(), 0644);
	}

	std::string dir;
};

// The contents of a file, or nothing with errno set.
std::optional<std::string> readFile(const std::string &path)
{
	int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return std::nullopt;
	std::string out;
	char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		out.append(buf, static_cast<size_t>(n));
	close(fd);
	return out;
}

// What a command of a service needs on Debian: its binaries and libraries.
const std::vector<std::string> kSystemPaths = {"/usr", "/lib", "/lib64", "/bin",
    "/etc/ld.so.cache"};

#if PME_HAVE_SECCOMP
common::MetricConfig metricWithFilter(const std::string &filter)
{
	common::MetricConfig m;
	m.key = m.name = m.baseName = m.description = "requests";
	m.type = common::MetricType::Gauge;
	m.filter = filter;
	m.labels = {{"path", "$1"}};
	m.valueTemplate = "$2";
	return m;
}

// Compile and run a filter over two matches; a report line on any error.
std::string extractTwoRequests(bool expectJit)
{
	auto x = worker::TextExtractor::compile(metricWithFilter("GET (\\S+) (\\d+)"), false);
	if (!x)
		return "compile: " + x.error().message + "\n";
	std::string report;
	if (x->jitCompiled() != expectJit)
		report += std::string("JIT ") + (x->jitCompiled() ? "used" : "not used") +
		    ", expected the opposite\n";
	auto fam = x->extract("GET /a 42\nGET /b 7\n");
	if (!fam)
		return report + "extract: " + fam.error().message + "\n";
	if (fam->samples.size() != 2)
		return report + "expected 2 samples, got " + std::to_string(fam->samples.size()) + "\n";
	if (fam->samples[0].value != 42 || fam->samples[1].value != 7 ||
	    fam->samples[0].labels[0].value != "/a" || fam->samples[1].labels[0].value != "/b")
		report += "wrong samples\n";
	return report;
}

bool pcre2HasJit()
{
	uint32_t jit = 0;
	pcre2_config(PCRE2_CONFIG_JIT, &jit);
	return jit != 0;
}

#endif

} // namespace

// ---- seccomp ----

TEST_GROUP(SeccompFilter) {};

#if PME_HAVE_SECCOMP

TEST(SeccompFilter, RefusesWhatNoCollectorNeeds)
{
	auto control = parseProbes(inChild([] { return formatProbes(runProbes()); }).report);
	ChildResult c = inChild([] {
		if (auto ok = worker::loadSeccompFilter(); !ok)
			return "load: " + ok.error().message;
		return formatProbes(runProbes());
	});
	auto filtered = parseProbes(c.report);
	LONGS_EQUAL(std::size(kProbes), filtered.size());
	std::string wrong;
	for (const auto &p : kProbes) {
		wrong += expectErrno(std::string("filtered ") + p.name, filtered[p.name], p.filtered);
		// The probes that work for anyone show that the refusal is the
		// filter's doing.
		if (p.alwaysWorks)
			wrong += expectErrno(std::string("unfiltered ") + p.name, control[p.name], 0);
	}
	wrong += expectErrno("unfiltered clone3 with bad arguments", control["clone3"], EINVAL);
	STRCMP_EQUAL("", wrong.c_str());
}

TEST(SeccompFilter, OrdinaryWorkGoesOn)
{
	expectClean(inChild([] {
		if (auto ok = worker::loadSeccompFilter(); !ok)
			return "load: " + ok.error().message;
		std::string r;
		if (!readFile("/proc/self/status"))
			r += "cannot read /proc/self/status\n";
		if (int st = runProgram({"/bin/true"}); st != 0)
			r += "fork and exec /bin/true: status " + std::to_string(st) + "\n";
		// posix_spawn and threads go through clone3 first, then clone.
		pid_t pid;
		char arg0[] = "/bin/true";
		char *argv[] = {arg0, nullptr};
		int status = -1;
		if (int e = posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ); e != 0)
			r += "posix_spawn: " + errnoName(e) + "\n";
		else if (waitpid(pid, &status, 0) != pid || status != 0)
			r += "posix_spawn'd /bin/true: status " + std::to_string(status) + "\n";
		bool ran = false;
		std::thread([&ran] { ran = true; }).join();
		if (!ran)
			r += "thread did not run\n";
		int sv[2];
		char c = 0;
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || ::write(sv[0], "x", 1) != 1 ||
		    ::read(sv[1], &c, 1) != 1 || c != 'x')
			r += "socketpair: " + errnoName(errno) + "\n";
		// Setting the personality it already has is allowed.
		r += expectErrno("personality(PER_LINUX)", errnoOf(personality(PER_LINUX)), 0);
		// The JIT still gets its executable memory.
		r += extractTwoRequests(pcre2HasJit());
		return r;
	}));
}

TEST(SeccompFilter, CommandsInheritIt)
{
	std::string exe = selfExe();
	// Without the filter the probe command sees calls succeed...
	ChildResult control = inChild([&exe] {
		int st = runProbeCommand(exe);
		return st > 0 && st < 100 ? std::string() : "unfiltered probe: status " +
		    std::to_string(st);
	});
	expectClean(control);
	// ... and run by a filtered process, every one is refused.
	expectClean(inChild([&exe] {
		if (auto ok = worker::loadSeccompFilter(); !ok)
			return "load: " + ok.error().message;
		int st = runProbeCommand(exe);
		return st == 0 ? std::string() : std::to_string(st) + " probes not refused in the "
		    "command";
	}));
}

#if defined(__x86_64__)
namespace {
long i386Getpid()
{
	long ret;
	// getpid is 20 in the i386 table.
	asm volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
	return ret;
}
} // namespace

TEST(SeccompFilter, OtherArchitecturesAreKilled)
{
	ChildResult control = inChild([] {
		return i386Getpid() == getpid() ? std::string() : "i386 getpid failed";
	});
	if (!WIFEXITED(control.status) || !control.report.empty()) {
		std::printf("\n  (this kernel runs no i386 syscalls: the check that the filter "
		    "kills them is skipped)\n");
		return;
	}
	ChildResult c = inChild([] {
		if (auto ok = worker::loadSeccompFilter(); !ok)
			return "load: " + ok.error().message;
		i386Getpid();
		return std::string("survived an i386 syscall");
	});
	STRCMP_EQUAL("", c.report.c_str());
	CHECK_TRUE(WIFSIGNALED(c.status));
	LONGS_EQUAL(SIGSYS, WTERMSIG(c.status));
}
#endif

TEST(SeccompFilter, DeniedListNamesTheKernelAttackSurface)
{
	auto names = worker::deniedSyscalls();
	for (const char *n : {"mount", "unshare", "setns", "bpf", "io_uring_setup",
	    "userfaultfd", "keyctl", "init_module", "kexec_load", "open_by_handle_at"})
		CHECK_TEXT(std::find(names.begin(), names.end(), n) != names.end(), n);
	CHECK_EQUAL(!kLeakChecked, std::find(names.begin(), names.end(), "ptrace") != names.end());
	// What collectors use stays out of it.
	for (const char *n : {"execve", "clone", "socket", "connect", "inotify_add_watch",
	    "adjtimex", "quotactl", "mbind", "seccomp", "landlock_restrict_self"})
		CHECK_TEXT(std::find(names.begin(), names.end(), n) == names.end(), n);
}

#else

TEST(SeccompFilter, WithoutLibseccompOnlyAnExplicitRequestIsAnError)
{
	common::SandboxConfig config;
	auto def = applySandbox(config);
	CHECK_TRUE(def.has_value());
	CHECK_FALSE(def->seccomp);
	LONGS_EQUAL(1, def->warnings.size());
	STRCMP_CONTAINS("built without libseccomp", def->warnings[0].c_str());
	config.seccomp = true;
	auto explicitOn = applySandbox(config);
	CHECK_FALSE(explicitOn.has_value());
	STRCMP_CONTAINS("sandbox.seccomp: this pme-worker was built without libseccomp",
	    explicitOn.error().message.c_str());
}

#endif

// ---- Landlock ----

TEST_GROUP(Landlock)
{
	bool supported()
	{
		if (worker::landlockAbi() > 0)
			return true;
		std::printf("\n  (this kernel has no Landlock: %s skipped)\n",
		    UtestShell::getCurrent()->getName().asCharString());
		return false;
	}
};

TEST(Landlock, ReadOnlyBeneathTheListedPaths)
{
	if (!supported())
		return;
	TempTree tree;
	const std::string d = tree.dir;
	expectClean(inChild([&d] {
		std::vector<std::string> paths = kSystemPaths;
		paths.push_back(d + "/allowed");
		paths.push_back(d + "/missing");
		std::vector<std::string> warnings;
		size_t rules = 0;
		auto abi = worker::restrictFilesystem(paths, warnings, &rules);
		if (!abi)
			return "restrict: " + abi.error().message;
		std::string r;
		if (warnings.size() != 1 || warnings[0].find(d + "/missing skipped: No such file") ==
		    std::string::npos)
			r += "expected one warning about " + d + "/missing\n";
		// Every listed path but the missing one (on a merged /usr,
		// /lib, /lib64 and /bin are symbolic links into it).
		if (rules != paths.size() - 1)
			r += "rules: " + std::to_string(rules) + "\n";

		auto data = readFile(d + "/allowed/data");
		if (!data || *data != "value 42\n")
			r += "cannot read beneath an allowed path: " + errnoName(errno) + "\n";
		r += expectErrno("read outside", errnoOf(open((d + "/outside/data").c_str(),
		    O_RDONLY)), EACCES);
		r += expectErrno("list outside", opendir((d + "/outside").c_str()) ? 0 : errno,
		    EACCES);
		r += expectErrno("read /etc/passwd", errnoOf(open("/etc/passwd", O_RDONLY)), EACCES);
		r += expectErrno("write beneath", errnoOf(open((d + "/allowed/data").c_str(),
		    O_WRONLY)), EACCES);
		r += expectErrno("create beneath", errnoOf(open((d + "/allowed/new").c_str(),
		    O_WRONLY | O_CREAT, 0644)), EACCES);
		r += expectErrno("mkdir beneath", errnoOf(mkdir((d + "/allowed/sub").c_str(), 0755)),
		    EACCES);
		r += expectErrno("unlink beneath", errnoOf(unlink((d + "/allowed/data").c_str())),
		    EACCES);
		r += expectErrno("write /dev/null", errnoOf(open("/dev/null",
		    O_WRONLY | O_TRUNC)), 0);
		// Commands inherit the domain: cat reads one file and not the other.
		if (int st = runProgram({"/bin/true"}); st != 0)
			r += "exec /bin/true: status " + std::to_string(st) + "\n";
		if (int st = runProgram({"/bin/cat", d + "/allowed/data"}); st != 0)
			r += "cat beneath: status " + std::to_string(st) + "\n";
		if (int st = runProgram({"/bin/cat", d + "/outside/data"}); st != 1)
			r += "cat outside: status " + std::to_string(st) + ", expected 1\n";
		return r;
	}));
}

TEST(Landlock, WithoutSystemPathsNothingCanBeExecuted)
{
	if (!supported())
		return;
	TempTree tree;
	const std::string d = tree.dir;
	expectClean(inChild([&d] {
		std::vector<std::string> warnings;
		if (auto abi = worker::restrictFilesystem({d + "/allowed"}, warnings); !abi)
			return "restrict: " + abi.error().message;
		// execve fails in the child: 127.
		int st = runProgram({"/bin/true"});
		return st == 127 ? std::string() : "exec /bin/true: status " + std::to_string(st);
	}));
}

TEST(Landlock, RefusedWithMoreThanOneThread)
{
	if (!supported())
		return;
	expectClean(inChild([] {
		int p[2];
		if (pipe(p) != 0)
			return std::string("pipe");
		std::thread t([&p] {
			char c;
			(void)!::read(p[0], &c, 1);
		});
		common::SandboxConfig config;
		config.seccomp = false;
		config.landlock = {"/usr"};
		auto r = applySandbox(config);
		(void)!::write(p[1], "x", 1);
		t.join();
		if (r)
			return std::string("applied with two threads");
		if (r.error().message.find("the worker has 2 threads") == std::string::npos)
			return "error: " + r.error().message;
		return std::string();
	}));
}

// ---- applySandbox: what is fatal and what is a warning ----

TEST_GROUP(SandboxPolicy) {};

TEST(SandboxPolicy, NothingAskedNothingDone)
{
	common::SandboxConfig config;
	config.seccomp = false;
	auto r = applySandbox(config);   // safe here: it does nothing
	CHECK_TRUE(r.has_value());
	CHECK_FALSE(r->seccomp);
	LONGS_EQUAL(0, r->landlockAbi);
	CHECK_TRUE(r->warnings.empty());
}

#if PME_HAVE_SECCOMP
TEST(SandboxPolicy, BothApplied)
{
	if (worker::landlockAbi() == 0) {
		std::printf("\n  (this kernel has no Landlock: BothApplied skipped)\n");
		return;
	}
	expectClean(inChild([] {
		common::SandboxConfig config;
		config.landlock = kSystemPaths;
		auto r = applySandbox(config);
		if (!r)
			return "apply: " + r.error().message;
		std::string out;
		if (!r->seccomp || r->landlockAbi != worker::landlockAbi() || !r->warnings.empty())
			out += "outcome wrong\n";
		out += expectErrno("unshare", errnoOf(unshare(CLONE_NEWUSER)), EPERM);
		out += expectErrno("read /etc/passwd", errnoOf(open("/etc/passwd", O_RDONLY)),
		    EACCES);
		return out;
	}));
}

TEST(SandboxPolicy, DefaultSeccompOnAKernelWithoutItIsAWarning)
{
	expectClean(inChild([] {
		if (auto f = fakeKernelWithoutSeccomp(); !f.empty())
			return f;
		common::SandboxConfig config;
		auto r = applySandbox(config);
		if (!r)
			return "apply: " + r.error().message;
		if (r->seccomp || r->warnings.size() != 1 ||
		    r->warnings[0].find("sandbox.seccomp: this kernel cannot take the filter") != 0 ||
		    r->warnings[0].find("Linux 4.14 or later, built with CONFIG_SECCOMP_FILTER): "
		    "Function not implemented; collecting without the filter") == std::string::npos)
			return std::string("expected one warning, got ") +
			    (r->warnings.empty() ? "none" : r->warnings[0]);
		return std::string();
	}));
}

TEST(SandboxPolicy, ExplicitSeccompOnAKernelWithoutItIsAnError)
{
	expectClean(inChild([] {
		if (auto f = fakeKernelWithoutSeccomp(); !f.empty())
			return f;
		common::SandboxConfig config;
		config.seccomp = true;
		auto r = applySandbox(config);
		if (r)
			return std::string("applied");
		if (r.error().message.find("sandbox.seccomp: this kernel cannot take the filter") !=
		    0 || r.error().message.find("): Function not implemented") == std::string::npos)
			return "error: " + r.error().message;
		return std::string();
	}));
}

TEST(SandboxPolicy, LandlockPathsOnAKernelWithoutItAreAnError)
{
	expectClean(inChild([] {
		if (auto f = fakeKernelWithoutLandlock(); !f.empty())
			return f;
		if (worker::landlockAbi() != 0)
			return std::string("the fake kernel still has Landlock");
		common::SandboxConfig config;
		config.landlock = {"/usr"};
		auto r = applySandbox(config);
		if (r)
			return std::string("applied");
		if (r.error().message.find("sandbox.landlock: this kernel has no Landlock") != 0)
			return "error: " + r.error().message;
		// Without paths, Landlock is not asked for.
		config.landlock.clear();
		auto again = applySandbox(config);
		if (!again || !again->seccomp)
			return std::string("seccomp alone failed");
		return std::string();
	}));
}

// ---- PCRE2 ----

TEST_GROUP(Pcre2WithoutExecutableMemory) {};

TEST(Pcre2WithoutExecutableMemory, TheInterpreterTakesOver)
{
	// Where the library has a JIT, it is used when memory may be executable.
	STRCMP_EQUAL("", extractTwoRequests(pcre2HasJit()).c_str());
	if (!pcre2HasJit())
		std::printf("\n  (this PCRE2 has no JIT: only the interpreter is tested)\n");
	expectClean(inChild([] {
		// The JIT keeps freed executable memory for reuse, and the child
		// inherits it: give it back, so that the JIT must ask again.
		pcre2_jit_free_unused_memory(nullptr);
		if (auto f = denyExecutableMemory(); !f.empty())
			return f;
		void *m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m != MAP_FAILED)
			return std::string("executable memory was mapped");
		return extractTwoRequests(false);
	}));
}
#endif

// ---- the real pme-worker ----

namespace {

enum class FakeKernel { None, WithoutLandlock, WithoutSeccomp };

// pme-worker started as the spawner starts it, given one configuration.
class WorkerRun {
public:
	WorkerRun(const std::string &yaml, FakeKernel fake = FakeKernel::None)
	{
		int sv[2];
		CHECK_EQUAL(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
		test::TestIdentity id = test::workerIdentity();
		pid_ = test::launchWorker(sv[1], "box", [fake] {
#if PME_HAVE_SECCOMP
			if (fake == FakeKernel::WithoutLandlock && !fakeKernelWithoutLandlock().empty())
				_exit(125);
			if (fake == FakeKernel::WithoutSeccomp && !fakeKernelWithoutSeccomp().empty())
				_exit(125);
#else
			(void)fake;
#endif
		});
		CHECK(pid_ > 0);
		fd_ = sv[0];
		pme_proto_decoder_init(&dec_, PME_PROTO_MAX_PAYLOAD);

		auto config = common::loadConfigString(yaml, "test");
		if (!config) {
			std::string all;
			for (const auto &e : config.error())
				all += e.str() + "\n";
			FAIL(all.c_str());
		}
		std::string doc = common::writeServiceDocument(*config, *config->findService("box"));
		common::FrameWriter w(PME_PROTO_HARD_MAX_PAYLOAD);
		pme_proto_encode_service_config(w.get(), "box", 3, id.uid, id.gid, id.groups.data(),
		    static_cast<uint32_t>(id.groups.size()), PME_CONFIG_ONCE, doc.data(), doc.size());
		CHECK(common::writeFrame(fd_, *w).has_value());
	}

	~WorkerRun()
	{
		if (pid_ > 0) {
			kill(pid_, SIGKILL);
			waitpid(pid_, nullptr, 0);
		}
		close(fd_);
		pme_proto_decoder_free(&dec_);
	}

	// Results until n groups have reported or the worker has gone quiet
	// for 10 seconds or away; LOG lines collected in logs.
	std::map<std::string, common::GroupResult> results(size_t n)
	{
		std::map<std::string, common::GroupResult> out;
		common::GroupResultAssembler assembler;
		while (out.size() < n) {
			auto f = next();
			if (!f)
				break;
			if (f->type == PME_MSG_LOG) {
				pme_proto_log m;
				CHECK_EQUAL(0, pme_proto_decode_log(&*f, &m));
				logs += common::toString(m.message) + "\n";
				continue;
			}
			if (f->type == PME_MSG_HELLO || f->type == PME_MSG_BYE)
				continue;
			auto r = assembler.feed(*f);
			if (!r)
				FAIL(("bad group frame: " + r.error().message).c_str());
			if (*r)
				out[(*r)->group] = **r;
		}
		return out;
	}

	// Its exit status after SIGTERM (if it is still running), the rest of
	// its stream read to the end for the logs.
	int finish()
	{
		kill(pid_, SIGTERM);
		results(SIZE_MAX);
		int status = 0;
		CHECK_EQUAL(pid_, waitpid(pid_, &status, 0));
		pid_ = -1;
		return status;
	}

	std::string logs;

private:
	// The next frame, or nothing at EOF or after 10 seconds of silence.
	std::optional<pme_proto_frame> next()
	{
		for (;;) {
			pme_proto_frame f;
			int rc = pme_proto_decoder_next(&dec_, &f);
			CHECK(rc >= 0);
			if (rc == 1)
				return f;
			if (!pending_.empty()) {
				size_t took = pme_proto_decoder_feed(&dec_, pending_.data(),
				    pending_.size());
				pending_.erase(0, took);
				continue;
			}
			pollfd p{fd_, POLLIN, 0};
			if (poll(&p, 1, 10000) <= 0)
				return std::nullopt;
			char buf[65536];
			ssize_t n = read(fd_, buf, sizeof(buf));
			if (n <= 0)
				return std::nullopt;
			pending_.append(buf, static_cast<size_t>(n));
			size_t took = pme_proto_decoder_feed(&dec_, pending_.data(), pending_.size());
			pending_.erase(0, took);
		}
	}

	pid_t pid_ = -1;
	int fd_ = -1;
	pme_proto_decoder dec_;
	std::string pending_;
};

// A service reading two files and running three commands; sandbox: as given.
std::string boxConfig(const std::string &dir, const std::string &sandbox)
{
	return "exporter: { interval: 1s }\n"
	    "services:\n"
	    "  box:\n" +
	    (sandbox.empty() ? "" : "    sandbox: " + sandbox + "\n") +
	    "    metric_groups:\n"
	    "      file_in: { source_type: file, source: " + dir + "/allowed/data,\n"
	    "                 metrics: { a: { filter: 'value (\\d+)' } } }\n"
	    "      file_out: { source_type: file, source: " + dir + "/outside/data,\n"
	    "                  metrics: { b: { filter: 'value (\\d+)' } } }\n"
	    "      cat_in: { command: [cat, " + dir + "/allowed/data],\n"
	    "                metrics: { c: { filter: 'value (\\d+)' } } }\n"
	    "      cat_out: { command: [cat, " + dir + "/outside/data],\n"
	    "                 metrics: { d: { filter: 'value (\\d+)' } } }\n"
	    "      shell: { shell: true, command: 'setarch $(uname -m) -R true 2>/dev/null;\n"
	    "                 echo aslr $?; echo x 2>/dev/null >" + dir + "/allowed/new;\n"
	    "                 echo write $?',\n"
	    "               metrics: { aslr: { filter: 'aslr (\\d+)' },\n"
	    "                          write: { filter: 'write (\\d+)' } } }\n";
}

double valueOf(const common::GroupResult &r, const std::string &family)
{
	for (const auto &f : r.families)
		if (f.name == family && !f.samples.empty())
			return f.samples[0].value;
	FAIL(("no sample of " + family + " in group " + r.group + ": " + r.error).c_str());
	return 0;
}

} // namespace

TEST_GROUP(SandboxedWorker) {};

TEST(SandboxedWorker, UnconfinedTheServiceReadsEverything)
{
	// The control for the next test: the same service without a sandbox.
	TempTree tree;
	WorkerRun w(boxConfig(tree.dir, "{ seccomp: false }"));
	auto r = w.results(5);
	LONGS_EQUAL(5, r.size());
	DOUBLES_EQUAL(42, valueOf(r["file_in"], "a"), 0);
	DOUBLES_EQUAL(7, valueOf(r["file_out"], "b"), 0);
	DOUBLES_EQUAL(42, valueOf(r["cat_in"], "c"), 0);
	DOUBLES_EQUAL(7, valueOf(r["cat_out"], "d"), 0);
	DOUBLES_EQUAL(0, valueOf(r["shell"], "aslr"), 0);
	DOUBLES_EQUAL(0, valueOf(r["shell"], "write"), 0);
	int status = w.finish();
	CHECK_TRUE(WIFEXITED(status));
	LONGS_EQUAL(0, WEXITSTATUS(status));
}

TEST(SandboxedWorker, LandlockAndSeccompConfineTheWorkerAndItsCommands)
{
	if (worker::landlockAbi() == 0 || !PME_HAVE_SECCOMP) {
		std::printf("\n  (no Landlock in this kernel or no libseccomp in this build: "
		    "skipped)\n");
		return;
	}
	TempTree tree;
	std::string paths;
	for (const auto &p : kSystemPaths)
		paths += p + ", ";
	WorkerRun w(boxConfig(tree.dir, "{ landlock: [" + paths + tree.dir + "/allowed, "
	    "/nonexistent/pme] }"));
	auto r = w.results(5);
	LONGS_EQUAL(5, r.size());
	DOUBLES_EQUAL(42, valueOf(r["file_in"], "a"), 0);
	CHECK_FALSE(r["file_out"].ok);
	STRCMP_CONTAINS("Permission denied", r["file_out"].error.c_str());
	DOUBLES_EQUAL(42, valueOf(r["cat_in"], "c"), 0);
	CHECK_FALSE(r["cat_out"].ok);
	LONGS_EQUAL(1, r["cat_out"].exitStatus);
	// seccomp (on by default): no personality change for a command;
	// Landlock: no writing beneath a read-only path.
	CHECK(valueOf(r["shell"], "aslr") != 0);
	CHECK(valueOf(r["shell"], "write") != 0);
	CHECK_FALSE(std::filesystem::exists(tree.dir + "/allowed/new"));
	int status = w.finish();
	CHECK_TRUE(WIFEXITED(status));
	LONGS_EQUAL(0, WEXITSTATUS(status));
	STRCMP_CONTAINS("Landlock path /nonexistent/pme skipped: No such file or directory",
	    w.logs.c_str());
}

#if PME_HAVE_SECCOMP
TEST(SandboxedWorker, LandlockAskedForOnAKernelWithoutItStopsTheWorker)
{
	TempTree tree;
	WorkerRun w(boxConfig(tree.dir, "{ landlock: [/usr] }"), FakeKernel::WithoutLandlock);
	auto r = w.results(5);
	LONGS_EQUAL(0, r.size());
	int status = w.finish();
	CHECK_TRUE(WIFEXITED(status));
	LONGS_EQUAL(78, WEXITSTATUS(status));
	STRCMP_CONTAINS("refusing to run: sandbox.landlock: this kernel has no Landlock",
	    w.logs.c_str());
}

TEST(SandboxedWorker, DefaultSeccompOnAKernelWithoutItWarnsAndCollects)
{
	TempTree tree;
	WorkerRun w(boxConfig(tree.dir, ""), FakeKernel::WithoutSeccomp);
	auto r = w.results(5);
	LONGS_EQUAL(5, r.size());
	DOUBLES_EQUAL(7, valueOf(r["cat_out"], "d"), 0);
	DOUBLES_EQUAL(0, valueOf(r["shell"], "aslr"), 0);
	STRCMP_CONTAINS("sandbox.seccomp: this kernel cannot take the filter", w.logs.c_str());
	int status = w.finish();
	CHECK_TRUE(WIFEXITED(status));
	LONGS_EQUAL(0, WEXITSTATUS(status));
}

TEST(SandboxedWorker, ExplicitSeccompOnAKernelWithoutItStopsTheWorker)
{
	TempTree tree;
	WorkerRun w(boxConfig(tree.dir, "{ seccomp: true }"), FakeKernel::WithoutSeccomp);
	auto r = w.results(5);
	LONGS_EQUAL(0, r.size());
	int status = w.finish();
	CHECK_TRUE(WIFEXITED(status));
	LONGS_EQUAL(78, WEXITSTATUS(status));
	STRCMP_CONTAINS("refusing to run: sandbox.seccomp: this kernel cannot take the filter",
	    w.logs.c_str());
}
#endif
