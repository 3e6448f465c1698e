// SPDX-License-Identifier: ISC
// The privileged helper: starts workers under their users, nothing else.
//
// Every line of pme that holds a capability is in this file, so that it can
// be audited in one sitting (STYLE §4).  The spawner is forked from pmed
// before pmed has read a single byte from the network or from a worker; it
// inherits the configuration pmed validated and from then on trusts nothing
// the supervisor sends it:
//
//  - it accepts three requests, START, STOP and RELOAD, one per datagram on
//    a SOCK_SEQPACKET socket, and ignores anything else;
//  - START names a service; the spawner looks the name up in its own copy of
//    the configuration and sends the worker that service's definition
//    itself, so a compromised supervisor cannot make a worker run anything
//    that was not configured (SPEC §1 invariant 3);
//  - RELOAD makes it re-read and re-validate the configuration file itself;
//  - under pmed --explain it starts only the service being explained, and
//    gives its worker only the group asked for, whatever START names;
//  - it never parses data that came from a worker or a source: it writes to
//    a worker's socket once (SERVICE_CONFIG) and then hands the socket to
//    the supervisor (SCM_RIGHTS).
//
// Starting a worker (SPEC §1 invariant 4): users and groups are resolved
// before the fork; between fork and exec the child makes only
// async-signal-safe calls: setgroups, setresgid, setresuid, clearing every
// capability set with raw syscalls, PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG
// (after setresuid, which clears it) and a getppid() re-check, then it
// closes every descriptor but its socket and fexecve()s pme-worker from a
// descriptor opened at startup, so the binary need not be reachable by
// path for the service user.  A failing step is reported through a
// close-on-exec pipe as (step, errno), so the operator reads
// "setresuid: Operation not permitted" rather than a silent exit.
//
// The spawner has no event loop library: poll() over the control socket
// and a signalfd is all it needs, and it keeps the audit surface small.
#include "spawner.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <cap-ng.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>

#include "common/channel.hpp"
#include "common/config_loader.hpp"
#include "common/config_writer.hpp"
#include "common/log.hpp"
#include "pme_build.h"
#include "proto/message.h"

namespace pme::daemon {

using common::Error;
using common::fail;
using common::Result;
using common::UniqueFd;
namespace log = common::log;

const char *toString(PrivMode m)
{
	switch (m) {
	case PrivMode::Development: return "development";
	case PrivMode::Capable: return "capabilities";
	case PrivMode::Root: return "root";
	}
	return "?";
}

PrivMode detectPrivMode()
{
	if (geteuid() == 0)
		return PrivMode::Root;
	capng_get_caps_process();
	bool setuid = capng_have_capability(CAPNG_PERMITTED, CAP_SETUID);
	bool setgid = capng_have_capability(CAPNG_PERMITTED, CAP_SETGID);
	return setuid && setgid ? PrivMode::Capable : PrivMode::Development;
}

namespace {

// Look a user up by name or numeric id, with its supplementary groups.
Result<Identity> lookupUser(const std::string &name)
{
	errno = 0;
	struct passwd *pw = getpwnam(name.c_str());
	if (pw == nullptr && !name.empty() &&
	    std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; }))
		pw = getpwuid(static_cast<uid_t>(std::stoul(name)));
	if (pw == nullptr)
		return fail("user '" + name + "' does not exist");
	Identity id;
	id.uid = pw->pw_uid;
	id.gid = pw->pw_gid;
	id.user = pw->pw_name;
	id.home = pw->pw_dir != nullptr ? pw->pw_dir : "/";
	id.shell = pw->pw_shell != nullptr && pw->pw_shell[0] != '\0' ? pw->pw_shell : "/bin/sh";
	int n = 32;
	std::vector<gid_t> groups(static_cast<size_t>(n));
	while (getgrouplist(id.user.c_str(), id.gid, groups.data(), &n) < 0) {
		if (n > 65536)
			return fail("user '" + name + "' has too many groups");
		groups.resize(static_cast<size_t>(n) * 2);
		n = static_cast<int>(groups.size());
	}
	groups.resize(static_cast<size_t>(n));
	std::sort(groups.begin(), groups.end());
	groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
	id.groups = std::move(groups);
	return id;
}

Result<gid_t> lookupGroup(const std::string &name)
{
	struct group *gr = getgrnam(name.c_str());
	if (gr == nullptr && !name.empty() &&
	    std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; }))
		gr = getgrgid(static_cast<gid_t>(std::stoul(name)));
	if (gr == nullptr)
		return fail("group '" + name + "' does not exist");
	return gr->gr_gid;
}

// The credentials of this process, as a worker in development mode gets them.
Identity currentIdentity()
{
	Identity id;
	id.uid = getuid();
	id.gid = getgid();
	struct passwd *pw = getpwuid(id.uid);
	id.user = pw != nullptr ? pw->pw_name : std::to_string(id.uid);
	id.home = pw != nullptr && pw->pw_dir != nullptr ? pw->pw_dir : "/";
	id.shell = pw != nullptr && pw->pw_shell != nullptr && pw->pw_shell[0] != '\0'
	    ? pw->pw_shell : "/bin/sh";
	int n = getgroups(0, nullptr);
	if (n > 0) {
		id.groups.resize(static_cast<size_t>(n));
		n = getgroups(n, id.groups.data());
		id.groups.resize(n > 0 ? static_cast<size_t>(n) : 0);
	}
	std::sort(id.groups.begin(), id.groups.end());
	id.groups.erase(std::unique(id.groups.begin(), id.groups.end()), id.groups.end());
	return id;
}

} // namespace

Result<Identity> supervisorIdentity(const common::Config &config, PrivMode mode)
{
	if (mode != PrivMode::Root)
		return currentIdentity();
	auto id = lookupUser(config.exporter.user);
	if (!id)
		return fail(id.error().message + " (exporter.user): create it with "
		    "systemd-sysusers or useradd --system, or set exporter.user");
	if (id->uid == 0)
		return fail("exporter.user '" + config.exporter.user +
		    "' is root: the supervisor must not run as root");
	return id;
}

Result<Identity> resolveServiceIdentity(const common::ServiceConfig &service,
    const Identity &supervisor, PrivMode mode)
{
	auto refuse = [&](const std::string &msg) {
		return fail(service.runAsWhere.valid() ? service.runAsWhere : service.where,
		    "service '" + service.name + "': " + msg);
	};
	Identity id = supervisor;
	if (!service.runAs.user.empty()) {
		auto u = lookupUser(service.runAs.user);
		if (!u)
			return refuse("run_as: " + u.error().message);
		id = *u;
	}
	if (!service.runAs.group.empty()) {
		auto g = lookupGroup(service.runAs.group);
		if (!g)
			return refuse("run_as: " + g.error().message);
		id.gid = *g;
	}
	if ((id.uid == 0 || id.gid == 0) && !service.allowRoot)
		return refuse("runs as uid " + std::to_string(id.uid) + " gid " +
		    std::to_string(id.gid) + "; root is refused unless the service sets "
		    "'allow_root: true'");
	if (mode == PrivMode::Development && (id.uid != supervisor.uid || id.gid != supervisor.gid))
		return refuse("run_as user '" + id.user + "' needs CAP_SETUID and CAP_SETGID, "
		    "which pmed does not have: start pmed as root or through pmed.service "
		    "(AmbientCapabilities=CAP_SETUID CAP_SETGID CAP_KILL)");
	if (mode == PrivMode::Development)
		id.groups = supervisor.groups;
	return id;
}

std::string defaultWorkerPath()
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		if (std::strcmp(buf, PME_BUILD_PMED) == 0)
			return PME_BUILD_WORKER;
		// A pmed copied somewhere with its worker beside it.
		std::string beside(buf);
		beside = beside.substr(0, beside.rfind('/') + 1) + "pme-worker";
		if (access(beside.c_str(), X_OK) == 0)
			return beside;
	}
	return PME_WORKER_PATH;
}

namespace {

// Clear effective, permitted and inheritable capabilities with one raw
// syscall: async-signal-safe, unlike libcap-ng.
int clearCapabilities() noexcept
{
	struct __user_cap_header_struct hdr {};
	struct __user_cap_data_struct data[2] {};
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	hdr.pid = 0;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	return static_cast<int>(syscall(SYS_capset, &hdr, data));
}

Result<void> verifyNoCapabilities()
{
	FILE *f = fopen("/proc/self/status", "re");
	if (f == nullptr)
		return fail(common::errnoMessage("/proc/self/status"));
	char line[256];
	std::string bad;
	while (fgets(line, sizeof(line), f) != nullptr) {
		for (const char *key : {"CapEff:", "CapPrm:", "CapAmb:"}) {
			size_t k = std::strlen(key);
			if (std::strncmp(line, key, k) != 0)
				continue;
			unsigned long long v = std::strtoull(line + k, nullptr, 16);
			if (v != 0)
				bad += std::string(bad.empty() ? "" : ", ") + key + " " +
				    log::format("%016llx", v);
		}
	}
	fclose(f);
	if (!bad.empty())
		return fail("capabilities left after dropping them: " + bad);
	return {};
}

// Keep CAP_SETUID, CAP_SETGID and CAP_KILL, nothing else; in Root mode
// become the supervisor's user at the same time.
Result<void> restrictSpawner(const SpawnerOptions &opts)
{
	if (opts.mode == PrivMode::Development)
		return {};
	capng_clear(CAPNG_SELECT_BOTH);
	capng_updatev(CAPNG_ADD, static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED),
	    CAP_SETUID, CAP_SETGID, CAP_KILL, -1);
	if (opts.mode == PrivMode::Root) {
		int r = capng_change_id(static_cast<int>(opts.supervisor.uid),
		    static_cast<int>(opts.supervisor.gid),
		    static_cast<capng_flags_t>(CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING));
		if (r != 0)
			return fail("spawner: cannot switch to user '" + opts.supervisor.user +
			    "' keeping CAP_SETUID CAP_SETGID CAP_KILL (capng_change_id " +
			    std::to_string(r) + ")");
	} else if (capng_apply(CAPNG_SELECT_CAPS) != 0) {
		return fail("spawner: cannot restrict capabilities");
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return fail(common::errnoMessage("spawner: clearing ambient capabilities"));
	return {};
}

double monotonicNow()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Steps of the child between fork and exec, reported on failure.
enum ChildStep : int {
	StepSignals = 1, StepFds, StepSetgroups, StepSetresgid, StepSetresuid, StepCaps,
	StepNoNewPrivs, StepDeathSig, StepParent, StepChdir, StepExec,
};

const char *stepName(int step)
{
	switch (step) {
	case StepSignals: return "resetting signals";
	case StepFds: return "arranging descriptors";
	case StepSetgroups: return "setgroups";
	case StepSetresgid: return "setresgid";
	case StepSetresuid: return "setresuid";
	case StepCaps: return "clearing capabilities";
	case StepNoNewPrivs: return "PR_SET_NO_NEW_PRIVS";
	case StepDeathSig: return "PR_SET_PDEATHSIG";
	case StepParent: return "checking the parent";
	case StepChdir: return "chdir /";
	case StepExec: return "executing pme-worker";
	}
	return "starting";
}

struct Worker {
	std::string service;
	pid_t pid = -1;
	double killAt = 0;            // SIGKILL deadline after a STOP, 0: none
};

class Spawner {
public:
	Spawner(const common::Config &config, const SpawnerOptions &opts, int control)
	    : config_(config), opts_(opts), control_(control) {}

	void setWorkerExe(int fd) { workerExe_.reset(fd); }
	[[noreturn]] void run();

private:
	void resolveIdentities();
	void handleRequest();
	void start(const std::string &name);
	Result<pid_t> launch(const common::ServiceConfig &service, const Identity &id,
	    UniqueFd &parentEnd);
	void stop(const std::string &name);
	void reload();
	void reap();
	[[noreturn]] void shutdown();
	void send(common::FrameWriter &w, int fd = -1);

	common::Config config_;
	SpawnerOptions opts_;
	UniqueFd control_;
	UniqueFd signals_;
	UniqueFd workerExe_;
	std::map<std::string, Result<Identity>> identities_;
	std::vector<Worker> workers_;
};

void Spawner::resolveIdentities()
{
	identities_.clear();
	for (const auto &s : config_.services)
		identities_.emplace(s.name, resolveServiceIdentity(s, opts_.supervisor, opts_.mode));
}

void Spawner::send(common::FrameWriter &w, int fd)
{
	Result<void> r = fd >= 0 ? common::sendFrameWithFd(control_.get(), *w, fd)
	    : common::writeFrame(control_.get(), *w);
	// A broken pipe: the supervisor is gone, and the next poll() sees
	// the EOF and stops everything.
	if (!r && r.error().message.find(std::strerror(EPIPE)) == std::string::npos)
		log::warnx("to supervisor: %s", r.error().message.c_str());
}

[[noreturn]] void Spawner::run()
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &mask, nullptr);
	signals_.reset(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
	if (!signals_)
		log::fatal(EX_OSERR, "signalfd");

	resolveIdentities();
	for (;;) {
		double next = 0;
		for (const auto &w : workers_)
			if (w.killAt > 0 && (next == 0 || w.killAt < next))
				next = w.killAt;
		int timeout = -1;
		if (next > 0)
			timeout = std::max(0, static_cast<int>((next - monotonicNow()) * 1000) + 1);
		struct pollfd fds[2] = {{control_.get(), POLLIN, 0}, {signals_.get(), POLLIN, 0}};
		int n = poll(fds, 2, timeout);
		if (n < 0 && errno != EINTR)
			log::fatal(EX_OSERR, "poll");
		double now = monotonicNow();
		for (auto &w : workers_)
			if (w.killAt > 0 && now >= w.killAt) {
				log::warnx("worker %s (pid %d) ignored SIGTERM; killing it",
				    w.service.c_str(), static_cast<int>(w.pid));
				kill(w.pid, SIGKILL);
				w.killAt = 0;
			}
		if (n <= 0)
			continue;
		if (fds[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(signals_.get(), &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
					shutdown();
			}
			reap();
		}
		if (fds[0].revents & (POLLIN | POLLHUP | POLLERR))
			handleRequest();
	}
}

void Spawner::handleRequest()
{
	std::vector<uint8_t> buf;
	std::vector<UniqueFd> fds;
	auto n = common::recvDatagram(control_.get(), buf, fds);
	if (!n) {
		log::warnx("control socket: %s; stopping", n.error().message.c_str());
		shutdown();
	}
	if (*n == 0)
		shutdown();   // the supervisor is gone
	if (!fds.empty()) {
		log::warnx("protocol error: the supervisor passed descriptors; ignored");
		return;
	}
	common::FrameDecoder dec(PME_PROTO_MAX_PAYLOAD);
	pme_proto_frame frame;
	size_t took = pme_proto_decoder_feed(dec.get(), buf.data(), buf.size());
	int r = pme_proto_decoder_next(dec.get(), &frame);
	if (r == 1 && (took != buf.size() || pme_proto_decoder_pending(dec.get()) != 0))
		r = PME_PROTO_ETRAILING;
	if (r != 1) {
		log::warnx("protocol error: request from the supervisor: %s; ignored",
		    r == 0 ? "truncated frame" : pme_proto_strerror(r));
		return;
	}
	pme_proto_name name;
	switch (frame.type) {
	case PME_MSG_START:
		if ((r = pme_proto_decode_name(&frame, &name)) == 0)
			start(common::toString(name.service));
		break;
	case PME_MSG_STOP:
		if ((r = pme_proto_decode_name(&frame, &name)) == 0)
			stop(common::toString(name.service));
		break;
	case PME_MSG_RELOAD:
		if ((r = pme_proto_decode_empty(&frame)) == 0)
			reload();
		break;
	default:
		log::warnx("protocol error: message type 0x%02x is not a request; ignored",
		    frame.type);
		return;
	}
	if (r != 0)
		log::warnx("protocol error: request from the supervisor: %s; ignored",
		    pme_proto_strerror(r));
}

void Spawner::start(const std::string &name)
{
	common::FrameWriter w;
	auto refuse = [&](const std::string &why) {
		log::warnx("not starting service '%s': %s", name.c_str(), why.c_str());
		pme_proto_encode_start_failed(w.get(), name.data(), name.size(), why.data(), why.size());
		send(w);
	};
	const common::ServiceConfig *service = config_.findService(name);
	if (service == nullptr)
		return refuse("no such service in the configuration");
	if (!opts_.explainService.empty() && name != opts_.explainService)
		return refuse("pmed --explain runs only service '" + opts_.explainService + "'");
	// --explain SERVICE/GROUP: the worker is given that group alone.
	common::ServiceConfig explained;
	if (!opts_.explainGroup.empty()) {
		explained = *service;
		std::erase_if(explained.groups, [this](const common::GroupConfig &g) {
			return g.key != opts_.explainGroup;
		});
		if (explained.groups.empty())
			return refuse("it has no group '" + opts_.explainGroup + "'");
		service = &explained;
	}
	for (const auto &wk : workers_)
		if (wk.service == name)
			return refuse("its worker is already running (pid " + std::to_string(wk.pid) + ")");
	auto it = identities_.find(name);
	if (it == identities_.end() || !it->second)
		return refuse(it == identities_.end() ? "no identity" : it->second.error().str());

	UniqueFd parentEnd;
	auto pid = launch(*service, *it->second, parentEnd);
	if (!pid)
		return refuse(pid.error().message);
	workers_.push_back({name, *pid, 0});

	// The worker's definition comes from here, never from the supervisor.
	std::string doc = common::writeServiceDocument(config_, *service);
	common::FrameWriter cfg(PME_PROTO_HARD_MAX_PAYLOAD);
	const Identity &id = *it->second;
	std::vector<uint32_t> groups(id.groups.begin(), id.groups.end());
	pme_proto_encode_service_config(cfg.get(), name.data(), name.size(), id.uid, id.gid,
	    groups.data(), static_cast<uint32_t>(groups.size()), opts_.configFlags,
	    doc.data(), doc.size());
	auto sent = common::writeFrame(parentEnd.get(), *cfg);
	if (!sent) {
		// The worker died at once; its exit is reported by reap().
		log::warnx("service '%s': sending its configuration: %s", name.c_str(),
		    sent.error().message.c_str());
	}
	pme_proto_encode_worker_ready(w.get(), name.data(), name.size(), static_cast<uint32_t>(*pid));
	send(w, parentEnd.get());
	log::debug("started worker %s (pid %d, uid %u, gid %u)", name.c_str(),
	    static_cast<int>(*pid), id.uid, id.gid);
}

// PRIVILEGED: fork and exec one worker under its identity.
Result<pid_t> Spawner::launch(const common::ServiceConfig &service, const Identity &id,
    UniqueFd &parentEnd)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return fail(common::errnoMessage("socketpair"));
	parentEnd.reset(sv[0]);
	UniqueFd childEnd(sv[1]);
	int pp[2];
	if (pipe2(pp, O_CLOEXEC) < 0)
		return fail(common::errnoMessage("pipe"));
	UniqueFd statusRead(pp[0]), statusWrite(pp[1]);
	UniqueFd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
	if (!devnull)
		return fail(common::errnoMessage("/dev/null"));

	// Everything the child needs, prepared before the fork.
	std::string arg0 = "pme-worker", arg1 = service.name;
	char *argv[] = {arg0.data(), arg1.data(), nullptr};
	std::vector<std::string> envs = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + id.home, "USER=" + id.user, "LOGNAME=" + id.user, "SHELL=" + id.shell,
	};
	std::vector<char *> envp;
	for (auto &e : envs)
		envp.push_back(e.data());
	envp.push_back(nullptr);
	bool switchIds = opts_.mode != PrivMode::Development;
	std::vector<gid_t> groups = id.groups;
	uid_t uid = id.uid;
	gid_t gid = id.gid;
	pid_t parent = getpid();
	int exe = workerExe_.get();
	bool keepStderr = opts_.workerStderr;

	pid_t pid = fork();
	if (pid < 0)
		return fail(common::errnoMessage("fork"));
	if (pid == 0) {
		// Child: async-signal-safe calls only, until fexecve.
		int step = StepSignals;
		int err = 0;
		sigset_t none;
		sigemptyset(&none);
		if (sigprocmask(SIG_SETMASK, &none, nullptr) < 0)
			goto failed;
		signal(SIGPIPE, SIG_DFL);
		step = StepFds;
		{
			// Move what we keep out of the way of 0..5, then into place.
			int sock = fcntl(childEnd.get(), F_DUPFD_CLOEXEC, 10);
			int st = fcntl(statusWrite.get(), F_DUPFD_CLOEXEC, 10);
			int ex = fcntl(exe, F_DUPFD_CLOEXEC, 10);
			if (sock < 0 || st < 0 || ex < 0 || dup2(devnull.get(), 0) < 0 ||
			    dup2(devnull.get(), 1) < 0 || (!keepStderr && dup2(devnull.get(), 2) < 0) ||
			    dup2(sock, 3) < 0 ||
			    dup3(st, 4, O_CLOEXEC) < 0 || dup3(ex, 5, O_CLOEXEC) < 0)
				goto failed;
			if (close_range(6, ~0U, 0) < 0)
				goto failed;
		}
		if (setpgid(0, 0) < 0)
			goto failed;
		if (switchIds) {
			step = StepSetgroups;
			if (setgroups(groups.size(), groups.data()) < 0)
				goto failed;
			step = StepSetresgid;
			if (setresgid(gid, gid, gid) < 0)
				goto failed;
			step = StepSetresuid;
			if (setresuid(uid, uid, uid) < 0)
				goto failed;
		}
		step = StepCaps;
		if (clearCapabilities() < 0)
			goto failed;
		step = StepNoNewPrivs;
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			goto failed;
		step = StepDeathSig;
		if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0)
			goto failed;
		step = StepParent;
		if (getppid() != parent) {
			errno = ESRCH;
			goto failed;
		}
		step = StepChdir;
		if (chdir("/") < 0)
			goto failed;
		step = StepExec;
		fexecve(5, argv, envp.data());
	failed:
		err = errno;
		{
			int report[2] = {step, err};
			ssize_t wr = write(4, report, sizeof(report));
			(void)wr;
		}
		_exit(127);
	}

	childEnd.reset();
	statusWrite.reset();
	int report[2] = {0, 0};
	ssize_t n;
	do
		n = read(statusRead.get(), report, sizeof(report));
	while (n < 0 && errno == EINTR);
	if (n == static_cast<ssize_t>(sizeof(report))) {
		int status;
		waitpid(pid, &status, 0);
		return fail(std::string(stepName(report[0])) + ": " + std::strerror(report[1]));
	}
	return pid;
}

void Spawner::stop(const std::string &name)
{
	for (auto &w : workers_)
		if (w.service == name) {
			kill(w.pid, SIGTERM);
			if (w.killAt == 0)
				w.killAt = monotonicNow() + 5;
			return;
		}
	log::debug("stop %s: no worker running", name.c_str());
}

void Spawner::reload()
{
	common::FrameWriter w;
	auto loaded = common::loadConfigFile(opts_.configPath);
	if (!loaded) {
		std::string msg;
		for (const auto &e : loaded.error())
			msg += e.str() + "\n";
		log::warnx("reload: %s: configuration has errors; keeping the old one",
		    opts_.configPath.c_str());
		pme_proto_encode_reloaded(w.get(), 0, msg.data(), msg.size());
		send(w);
		return;
	}
	config_ = std::move(*loaded);
	resolveIdentities();
	// The supervisor loads the file too: the digest tells it whether the
	// two of them read the same thing.
	std::string digest = common::configDigest(config_);
	pme_proto_encode_reloaded(w.get(), 1, digest.data(), digest.size());
	send(w);
}

void Spawner::reap()
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return;
		auto it = std::find_if(workers_.begin(), workers_.end(),
		    [pid](const Worker &w) { return w.pid == pid; });
		if (it == workers_.end())
			continue;
		int32_t code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		int32_t sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
		common::FrameWriter w;
		pme_proto_encode_worker_exited(w.get(), it->service.data(), it->service.size(),
		    static_cast<uint32_t>(pid), code, sig);
		workers_.erase(it);
		send(w);
	}
}

// The supervisor went away or asked us to stop: every worker goes too.
[[noreturn]] void Spawner::shutdown()
{
	for (const auto &w : workers_)
		kill(w.pid, SIGTERM);
	double deadline = monotonicNow() + 5;
	while (!workers_.empty() && monotonicNow() < deadline) {
		struct pollfd p = {signals_.get(), POLLIN, 0};
		poll(&p, 1, 100);
		struct signalfd_siginfo si;
		while (read(signals_.get(), &si, sizeof(si)) == sizeof(si)) {
		}
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);
			if (pid <= 0)
				break;
			std::erase_if(workers_, [pid](const Worker &w) { return w.pid == pid; });
		}
	}
	for (const auto &w : workers_) {
		log::warnx("worker %s (pid %d) did not stop; killing it", w.service.c_str(),
		    static_cast<int>(w.pid));
		kill(w.pid, SIGKILL);
		waitpid(w.pid, nullptr, 0);
	}
	_exit(0);
}

} // namespace

Result<SpawnerHandle> startSpawner(const common::Config &config, const SpawnerOptions &opts)
{
	// Opened now, as the invoking user, so that workers can be executed
	// whatever directories the service users may search.
	UniqueFd exe(open(opts.workerPath.c_str(), O_PATH | O_CLOEXEC));
	if (!exe)
		return fail(common::errnoMessage("worker executable " + opts.workerPath));
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return fail(common::errnoMessage("socketpair"));
	UniqueFd mine(sv[0]), theirs(sv[1]);
	pid_t pid = fork();
	if (pid < 0)
		return fail(common::errnoMessage("fork"));
	if (pid == 0) {
		mine.reset();
		log::setTag("spawner");
		prctl(PR_SET_NAME, "pmed-spawner", 0, 0, 0);
		// Terminal signals go to pmed, which stops us in order.
		setpgid(0, 0);
		if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0)
			log::fatal(EX_OSERR, "PR_SET_PDEATHSIG");
		// Keep stderr for the log, the control socket and the worker
		// executable; everything else pmed had open is closed.
		int keep[] = {theirs.get(), exe.get()};
		std::sort(std::begin(keep), std::end(keep));
		int from = 3;
		for (int fd : keep) {
			if (fd > from)
				close_range(static_cast<unsigned>(from), static_cast<unsigned>(fd - 1), 0);
			from = fd + 1;
		}
		close_range(static_cast<unsigned>(from), ~0U, 0);
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			if (devnull > 2)
				close(devnull);
		}
		auto restricted = restrictSpawner(opts);
		if (!restricted)
			log::fatalx(EX_NOPERM, "%s", restricted.error().message.c_str());
		Spawner spawner(config, opts, theirs.release());
		spawner.setWorkerExe(exe.release());
		spawner.run();
	}
	SpawnerHandle h;
	h.pid = pid;
	h.control = std::move(mine);
	return h;
}

Result<void> dropSupervisorPrivileges(const SpawnerOptions &opts)
{
	if (opts.mode == PrivMode::Root) {
		capng_clear(CAPNG_SELECT_BOTH);
		int r = capng_change_id(static_cast<int>(opts.supervisor.uid),
		    static_cast<int>(opts.supervisor.gid),
		    static_cast<capng_flags_t>(CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING));
		if (r != 0)
			return fail("cannot switch to user '" + opts.supervisor.user +
			    "' (capng_change_id " + std::to_string(r) + ")");
	} else if (opts.mode == PrivMode::Capable) {
		capng_clear(CAPNG_SELECT_CAPS);
		if (capng_apply(CAPNG_SELECT_CAPS) != 0)
			return fail("cannot drop capabilities");
	}
	if (opts.mode != PrivMode::Development &&
	    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return fail(common::errnoMessage("clearing ambient capabilities"));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(common::errnoMessage("PR_SET_NO_NEW_PRIVS"));
	return verifyNoCapabilities();
}

} // namespace pme::daemon
