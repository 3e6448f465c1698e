// SPDX-License-Identifier: ISC
// The worker's optional confinement: a seccomp deny-list and Landlock read-only paths.
//
// Both parts are inherited by everything the worker starts: a seccomp filter
// and a Landlock domain survive fork and execve, and cannot be lifted.  That
// decides the shape of each.
//
// The seccomp filter is a deny-list with "allow" as its default action, not
// the allow-list one would write for pme-worker alone: the commands a worker
// runs are whatever programs the operator configured (df, a database client,
// a JVM, a shell script), and an allow-list of the worker's own syscalls would
// break them in ways nobody could predict.  What it refuses is what no
// collector needs and what makes up most of the kernel's attack surface for
// an unprivileged process: mounts, namespaces (in unshare, setns and clone's
// flags; clone3 keeps its flags behind a pointer the filter cannot read, so
// it is answered ENOSYS and the C library falls back to clone), access to
// other processes (the worker runs as the service's user: ptrace would reach
// the service itself), io_uring (its I/O is done by the kernel out of the
// filter's sight), BPF, perf, userfaultfd, the keyring, module loading, and
// a handful of administrative calls that need capabilities a worker never
// has, refused so that a kernel bug in a capability check is not enough.
// Refused calls fail with EPERM, so a command sees an ordinary error.
// Syscalls of another architecture (i386 through int 0x80, x32) kill the
// process: they would otherwise go around the native filter.  The list, with
// a reason per group, is kDenied below; pme-worker(8) repeats it.  The
// filter is compiled by libseccomp, which knows every architecture's syscall
// numbers and argument layout; a BPF program written by hand would not.
//
// Landlock is configured by paths: beneath each, reading files, listing
// directories and executing; everywhere, nothing else the kernel's Landlock
// ABI can restrict on a file system (writing, creating, removing, renaming,
// truncating, device ioctls).  The rights handled are those of the running
// kernel's ABI, so that an older kernel is not asked for rights it does not
// know.  /dev/null stays readable and writable: libuv opens it as a
// command's standard input, and shells write to it.  A path that does not
// exist when the worker starts is skipped with a warning, as a service may
// be configured before it is installed.  Landlock restricts the calling
// thread only, so the sandbox is applied while the worker has one thread
// (before its event loop starts libuv's thread pool), and this is checked.
//
// A build with AddressSanitizer (-Db_sanitize=address) runs LeakSanitizer
// at exit, which stops the process's threads with ptrace and lists them in
// /proc: such a build leaves ptrace out of the filter and /proc readable
// under Landlock.  Release builds are not affected.
#include "sandbox.hpp"

#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "common/unique_fd.hpp"
#include "pme_build.h"

#if PME_HAVE_SECCOMP
#include <seccomp.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define PME_LEAK_CHECKED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PME_LEAK_CHECKED 1
#endif
#endif

namespace pme::worker {

using common::errnoMessage;
using common::fail;
using common::Result;
using common::UniqueFd;

namespace {

// ---- seccomp ----

// Refused with EPERM, whatever the arguments.
const char *const kDenied[] = {
	// Mounts and the root directory: a worker reads the file system, it
	// never changes what it looks like.
	"mount", "umount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount",
	"fspick", "move_mount", "open_tree", "mount_setattr",
	// Namespaces: user namespaces are how an unprivileged process reaches
	// kernel code otherwise reserved to root.  (clone: see below.)
	"unshare", "setns",
	// Other processes: the worker runs as the service's user, so these
	// would reach the service's own processes (read its memory, its fds).
	"ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd",
	"kcmp", "migrate_pages", "move_pages",
	// Kernel interfaces a collector has no use for, and that have been a
	// steady source of privilege escalations: io_uring (whose operations
	// the kernel performs without passing this filter), BPF, perf events,
	// userfaultfd (used to win kernel races), the keyring, fanotify.
	"io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "perf_event_open",
	"userfaultfd", "keyctl", "add_key", "request_key", "fanotify_init",
	// Kernel code and the machine: modules, kexec, reboot, swap, process
	// accounting (each needs a capability a worker never has).
	"init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
	"swapon", "swapoff", "acct",
	// Setting the clock, host and domain names, reading the kernel log,
	// hanging up terminals (capabilities again); reading the clock's
	// discipline (adjtimex, clock_adjtime with modes 0) stays allowed for
	// time-sync collectors.
	"settimeofday", "clock_settime", "stime", "sethostname", "setdomainname", "syslog",
	"vhangup",
	// Raw hardware and legacy interfaces: I/O ports, the LDT (x86
	// segment tricks), vm86, a.out libraries, file handles by number
	// (open_by_handle_at walks past directory permissions), long-removed
	// calls that old kernels still carry.
	"ioperm", "iopl", "modify_ldt", "vm86", "vm86old", "uselib", "open_by_handle_at",
	"lookup_dcookie", "nfsservctl", "_sysctl",
};

// Whether the filter refuses this entry of kDenied (see the top).
bool denied(const char *name)
{
#ifdef PME_LEAK_CHECKED
	return std::strcmp(name, "ptrace") != 0;
#else
	(void)name;
	return true;
#endif
}

#if PME_HAVE_SECCOMP

struct FilterDeleter {
	void operator()(void *ctx) const noexcept { seccomp_release(ctx); }
};
using Filter = std::unique_ptr<void, FilterDeleter>;

scmp_arg_cmp argCmp(unsigned int arg, scmp_compare op, uint64_t a, uint64_t b = 0)
{
	scmp_arg_cmp c{};
	c.arg = arg;
	c.op = op;
	c.datum_a = a;
	c.datum_b = b;
	return c;
}

Result<void> check(int rc, const std::string &what)
{
	if (rc < 0)
		return fail(errnoMessage(what, -rc));
	return {};
}

// Whether the kernel takes this filter: seccomp(2) with filters and the
// kill-process action, Linux 4.14 or later built with CONFIG_SECCOMP_FILTER.
// Asked first because libseccomp, on a kernel without it, reports errors
// that do not say so.
Result<void> kernelTakesFilters()
{
	uint32_t action = SECCOMP_RET_KILL_PROCESS;
	if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0)
		return {};
	return fail(errnoMessage("this kernel cannot take the filter (it needs seccomp(2) with "
	    "SECCOMP_RET_KILL_PROCESS: Linux 4.14 or later, built with CONFIG_SECCOMP_FILTER)"));
}

#endif

// ---- Landlock ----

// Rights of later ABIs than the headers of Debian 12 (Linux 6.1) know.
constexpr uint64_t kFsTruncate = 1ULL << 14;   // ABI 3
constexpr uint64_t kFsIoctlDev = 1ULL << 15;   // ABI 5

// Every file-system right of a Landlock ABI: these are refused unless a
// rule allows them.
uint64_t handledRights(int abi)
{
	uint64_t rights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
	    LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
	    LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
	    LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
	    LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
	    LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
	    LANDLOCK_ACCESS_FS_MAKE_SYM;
	if (abi >= 2)
		rights |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		rights |= kFsTruncate;
	if (abi >= 5)
		rights |= kFsIoctlDev;
	return rights;
}

// Beneath a configured directory; a configured file gets the rights that
// apply to files (the kernel refuses directory rights on a file).
constexpr uint64_t kReadDir = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
    LANDLOCK_ACCESS_FS_EXECUTE;
constexpr uint64_t kReadFile = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_EXECUTE;
constexpr uint64_t kDevNull = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
    kFsTruncate;

// The number of threads of this process, or 0 when /proc does not say.
int threadCount()
{
	UniqueFd fd(::open("/proc/self/status", O_RDONLY | O_CLOEXEC));
	if (!fd)
		return 0;
	std::string text;
	char buf[4096];
	ssize_t n;
	while ((n = ::read(fd.get(), buf, sizeof(buf))) > 0)
		text.append(buf, static_cast<size_t>(n));
	size_t at = text.find("\nThreads:");
	if (at == std::string::npos)
		return 0;
	return std::atoi(text.c_str() + at + 9);
}

} // namespace

std::vector<std::string> deniedSyscalls()
{
	std::vector<std::string> names;
	for (const char *name : kDenied)
		if (denied(name))
			names.emplace_back(name);
	return names;
}

Result<void> loadSeccompFilter()
{
#if !PME_HAVE_SECCOMP
	return fail("this pme-worker was built without libseccomp");
#else
	if (auto ok = kernelTakesFilters(); !ok)
		return ok;
	Filter filter(seccomp_init(SCMP_ACT_ALLOW));
	if (!filter)
		return fail("seccomp_init failed");
	void *ctx = filter.get();
	// Return the kernel's errno from seccomp_load rather than ECANCELED.
	if (auto ok = check(seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1), "seccomp"); !ok)
		return ok;
	if (auto ok = check(seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS),
	    "seccomp: action for other architectures"); !ok)
		return ok;
	// Every thread, should there be any (there should not).
	if (auto ok = check(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1),
	    "seccomp: thread synchronisation"); !ok)
		return ok;

	for (const char *name : kDenied) {
		// Negative: unknown to libseccomp, or not a syscall of this
		// architecture (vm86 on x86_64).
		int nr = seccomp_syscall_resolve_name(name);
		if (nr < 0 || !denied(name))
			continue;
		if (auto ok = check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0),
		    std::string("seccomp rule for ") + name); !ok)
			return ok;
	}

	// clone with a namespace flag: one rule per flag, as a rule's
	// comparisons are joined by "and".  The flags are the first argument
	// except on s390, where the stack comes first.
	uint32_t arch = seccomp_arch_native();
	unsigned int flagsArg = arch == SCMP_ARCH_S390 || arch == SCMP_ARCH_S390X ? 1 : 0;
	for (uint64_t flag : {CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
	    CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET}) {
		scmp_arg_cmp c = argCmp(flagsArg, SCMP_CMP_MASKED_EQ, flag, flag);
		if (auto ok = check(seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EPERM),
		    SCMP_SYS(clone), 1, &c), "seccomp rule for clone"); !ok)
			return ok;
	}
	if (auto ok = check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0),
	    "seccomp rule for clone3"); !ok)
		return ok;

	// personality: only the current one (normally PER_LINUX), as
	// systemd's LockPersonality=; no ASLR-off or READ_IMPLIES_EXEC for
	// the commands.  The whole 64-bit argument must match, so that bits
	// above the 32 the kernel reads cannot smuggle another value.
	// Under systemd's LockPersonality= even the query fails with EPERM:
	// the personality is locked already, and there is nothing to add.
	int current = personality(0xffffffff);
	if (current < 0 && errno != EPERM)
		return fail(errnoMessage("personality"));
	if (current >= 0) {
		scmp_arg_cmp c = argCmp(0, SCMP_CMP_NE, static_cast<uint32_t>(current));
		if (auto ok = check(seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EPERM),
		    SCMP_SYS(personality), 1, &c), "seccomp rule for personality"); !ok)
			return ok;
	}

	return check(seccomp_load(ctx), "cannot load the seccomp filter");
#endif
}

int landlockAbi()
{
	long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);
	return abi > 0 ? static_cast<int>(abi) : 0;
}

Result<int> restrictFilesystem(const std::vector<std::string> &paths,
    std::vector<std::string> &warnings, size_t *rules)
{
	long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);
	if (abi <= 0) {
		int err = errno;
		if (err == ENOSYS || err == EOPNOTSUPP)
			return fail("this kernel has no Landlock (it needs Linux 5.13 or later, "
			    "with landlock in its lsm= list: " + std::string(std::strerror(err)) +
			    "); remove sandbox.landlock or enable Landlock");
		return fail(errnoMessage("landlock_create_ruleset", err));
	}
	uint64_t handled = handledRights(static_cast<int>(abi));

	landlock_ruleset_attr attr{};
	attr.handled_access_fs = handled;
	UniqueFd ruleset(static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr,
	    sizeof(attr), 0)));
	if (!ruleset)
		return fail(errnoMessage("landlock_create_ruleset"));

	size_t added = 0;
	auto allow = [&](const std::string &path, uint64_t dirRights,
	    uint64_t fileRights) -> Result<void> {
		UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
		if (!fd) {
			warnings.push_back(errnoMessage("Landlock path " + path + " skipped"));
			return {};
		}
		struct stat st;
		if (fstat(fd.get(), &st) != 0)
			return fail(errnoMessage("Landlock path " + path));
		landlock_path_beneath_attr rule{};
		rule.allowed_access = (S_ISDIR(st.st_mode) ? dirRights : fileRights) & handled;
		rule.parent_fd = fd.get();
		if (syscall(SYS_landlock_add_rule, ruleset.get(), LANDLOCK_RULE_PATH_BENEATH,
		    &rule, 0) != 0)
			return fail(errnoMessage("Landlock rule for " + path));
		added++;
		return {};
	};
	for (const auto &path : paths) {
		if (auto ok = allow(path, kReadDir, kReadFile); !ok)
			return tl::unexpected(ok.error());
	}
	size_t configured = added;
	if (auto ok = allow("/dev/null", 0, kDevNull); !ok)
		return tl::unexpected(ok.error());
#ifdef PME_LEAK_CHECKED
	if (auto ok = allow("/proc", kReadDir, kReadFile); !ok)
		return tl::unexpected(ok.error());
#endif

	// Required unless the caller has CAP_SYS_ADMIN; the worker has it set
	// already (pme-worker(8)).
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return fail(errnoMessage("PR_SET_NO_NEW_PRIVS"));
	if (syscall(SYS_landlock_restrict_self, ruleset.get(), 0) != 0)
		return fail(errnoMessage("landlock_restrict_self"));
	if (rules)
		*rules = configured;
	return static_cast<int>(abi);
}

Result<SandboxOutcome> applySandbox(const common::SandboxConfig &config)
{
	SandboxOutcome out;
	bool landlock = !config.landlock.empty();
	if (!landlock && !config.seccompWanted())
		return out;
	if (landlock) {
		if (int n = threadCount(); n > 1)
			return fail("cannot apply the sandbox: the worker has " + std::to_string(n) +
			    " threads, and Landlock would restrict only one");
		auto abi = restrictFilesystem(config.landlock, out.warnings, &out.landlockRules);
		if (!abi)
			return tl::unexpected(abi.error().context("sandbox.landlock"));
		out.landlockAbi = *abi;
	}
	if (config.seccompWanted()) {
		auto loaded = loadSeccompFilter();
		if (loaded) {
			out.seccomp = true;
		} else if (config.seccomp) {
			return tl::unexpected(loaded.error().context("sandbox.seccomp"));
		} else {
			out.warnings.push_back("sandbox.seccomp: " + loaded.error().message +
			    "; collecting without the filter (set sandbox.seccomp: false to say "
			    "so, or true to refuse to run without it)");
		}
	}
	return out;
}

} // namespace pme::worker
