// SPDX-License-Identifier: ISC
// pmed: load the configuration, fork the spawner, drop privileges, serve.
#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <uv.h>

#include "common/config_loader.hpp"
#include "common/config_writer.hpp"
#include "common/log.hpp"
#include "pme_build.h"
#include "proto/message.h"
#include "spawner.hpp"
#include "supervisor.hpp"

#if PME_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace {

using namespace pme;
namespace log = common::log;

void usage(FILE *out)
{
	std::fprintf(out,
	    "usage: pmed [-dnv] [-f file] [--once | --explain service[/group]]\n"
	    "            [--version] [--help]\n"
	    "  -d         stay in the foreground and log to stderr\n"
	    "  -f file    configuration file (default " PME_CONFIG_PATH ")\n"
	    "  -n         check the configuration and exit\n"
	    "  -v         more verbose (debug messages); with -n, print the\n"
	    "             configuration in pme's own keys\n"
	    "  --once     collect every group once, print the exposition, exit\n"
	    "  --explain service[/group]\n"
	    "             run that group (every group of the service without /group)\n"
	    "             once as its user and show the data read, what each filter\n"
	    "             matched, the samples and the errors\n"
	    "  --version  print the version and exit\n"
	    "  --help     print this help and exit\n");
}

bool underSystemd()
{
	return std::getenv("NOTIFY_SOCKET") != nullptr || std::getenv("JOURNAL_STREAM") != nullptr ||
	    std::getenv("INVOCATION_ID") != nullptr;
}

int checkOnly(const common::Config &config, daemon::PrivMode mode,
    const common::LoadNotes &notes, int verbose)
{
	// -n checks what can be checked without starting anything: users and
	// groups exist and root is allowed where used.  Development mode's
	// refusal of other users is a property of how pmed is started, so it
	// is reported as a note, not an error.
	int errors = 0;
	auto checkMode = mode == daemon::PrivMode::Development ? daemon::PrivMode::Capable : mode;
	auto sup = daemon::supervisorIdentity(config, mode);
	if (!sup) {
		// The file is fine; this machine lacks the user.  pmed itself
		// refuses to start until it exists.
		std::fprintf(stderr, "%s: note: %s\n", config.path.c_str(), sup.error().message.c_str());
		daemon::Identity placeholder;
		placeholder.uid = placeholder.gid = 65534;
		placeholder.user = config.exporter.user;
		sup = placeholder;
	}
	for (const auto &s : config.services) {
		auto id = daemon::resolveServiceIdentity(s, *sup, checkMode);
		if (!id) {
			std::fprintf(stderr, "%s\n", id.error().str().c_str());
			errors++;
			continue;
		}
		if (mode == daemon::PrivMode::Development &&
		    !daemon::resolveServiceIdentity(s, *sup, mode))
			std::fprintf(stderr, "%s: note: service '%s' runs as '%s', which needs pmed "
			    "to be started as root or through pmed.service\n",
			    s.runAsWhere.str().c_str(), s.name.c_str(), id->user.c_str());
	}
	if (errors > 0)
		return EX_CONFIG;
	std::string ok = "configuration OK";
	if (notes.legacyKeys > 0)
		ok += " (legacy keys: " + std::to_string(notes.legacyKeys) + ")";
	if (verbose == 0) {
		std::printf("%s\n", ok.c_str());
		return EX_OK;
	}
	// -v: the configuration as pme reads it, in its own keys, to be saved
	// as it is: the verdict is a comment of that document.
	std::printf("# %s\n# %s in pme's own keys (pmed -n -v); see pme.yml(5)\n%s", ok.c_str(),
	    config.path.c_str(), common::writeConfig(config).c_str());
	return EX_OK;
}

std::string joined(const std::vector<std::string> &words)
{
	std::string s;
	for (const auto &w : words)
		s += (s.empty() ? "" : ", ") + w;
	return s;
}

// --explain SERVICE[/GROUP]: the service by name or key, the group by key.
// An unknown one is a usage error that says what exists.
bool explainTarget(const common::Config &config, const std::string &arg,
    daemon::SupervisorOptions &opts)
{
	size_t slash = arg.find('/');
	std::string service = arg.substr(0, slash);
	std::string group = slash == std::string::npos ? "" : arg.substr(slash + 1);
	const common::ServiceConfig *svc = nullptr;
	std::vector<std::string> names;
	for (const auto &s : config.services) {
		names.push_back(s.name);
		if (svc == nullptr && (s.name == service || s.key == service))
			svc = &s;
	}
	if (svc == nullptr) {
		std::string close = common::closestMatch(service, names);
		std::fprintf(stderr, "pmed: --explain: %s has no service '%s'%s\n",
		    config.path.c_str(),
		    service.c_str(), close.empty() ? "" : ("; did you mean '" + close + "'?").c_str());
		std::fprintf(stderr, "services: %s\n", names.empty() ? "(none)" : joined(names).c_str());
		return false;
	}
	std::vector<std::string> groups;
	for (const auto &g : svc->groups)
		groups.push_back(g.key);
	if (slash != std::string::npos &&
	    std::find(groups.begin(), groups.end(), group) == groups.end()) {
		std::string close = common::closestMatch(group, groups);
		std::fprintf(stderr, "pmed: --explain: service '%s' has no group '%s'%s\n",
		    svc->name.c_str(), group.c_str(),
		    close.empty() ? "" : ("; did you mean '" + close + "'?").c_str());
		std::fprintf(stderr, "groups of '%s': %s\n", svc->name.c_str(),
		    groups.empty() ? "(none)" : joined(groups).c_str());
		return false;
	}
	if (groups.empty()) {
		std::fprintf(stderr, "pmed: --explain: service '%s' has no groups\n",
		    svc->name.c_str());
		return false;
	}
	opts.explain = true;
	opts.explainService = svc->name;
	opts.explainGroups = slash == std::string::npos ? groups : std::vector<std::string>{group};
	return true;
}

// Each HTTP connection and each worker takes a descriptor of the
// supervisor: use what the hard limit allows, not the soft 1024 that
// systemd and shells start a process with.  libuv uses epoll, so a
// descriptor above FD_SETSIZE is no problem.
void raiseFileLimit()
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 1 << 20);
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		log::warn("raising the limit of open files to %llu",
		    static_cast<unsigned long long>(rl.rlim_cur));
}

// The listening sockets systemd passed (pmed.socket).  Taken before
// daemon() changes the pid that LISTEN_PID names and before the spawner is
// forked, and the variables removed: no child takes them for its own.
std::vector<int> passedSockets()
{
	std::vector<int> fds;
#if PME_HAVE_SYSTEMD
	int n = sd_listen_fds(1);
	if (n < 0)
		log::fatalx(EX_OSERR, "socket activation: LISTEN_FDS: %s", std::strerror(-n));
	for (int i = 0; i < n; i++)
		fds.push_back(SD_LISTEN_FDS_START + i);
#else
	if (std::getenv("LISTEN_FDS") != nullptr)
		log::warnx("LISTEN_FDS is set, but this pmed was built without libsystemd and "
		    "cannot serve on the sockets systemd passes; it opens exporter.listen itself");
#endif
	return fds;
}

int run(int argc, char **argv)
{
	enum { OptOnce = 1000, OptExplain, OptVersion, OptHelp };
	static const struct option longopts[] = {
		{"once", no_argument, nullptr, OptOnce},
		{"explain", required_argument, nullptr, OptExplain},
		{"version", no_argument, nullptr, OptVersion},
		{"help", no_argument, nullptr, OptHelp},
		{nullptr, 0, nullptr, 0},
	};
	bool foreground = false, check = false, once = false, explain = false;
	int verbose = 0;
	std::string path = PME_CONFIG_PATH;
	std::string explainArg;
	int ch;
	while ((ch = getopt_long(argc, argv, "df:nv", longopts, nullptr)) != -1) {
		switch (ch) {
		case 'd': foreground = true; break;
		case 'f': path = optarg; break;
		case 'n': check = true; break;
		case 'v': verbose++; break;
		case OptOnce: once = true; break;
		case OptExplain: explain = true; explainArg = optarg; break;
		case OptVersion: std::printf("pmed %s\n", PME_VERSION); return EX_OK;
		case OptHelp: usage(stdout); return EX_OK;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind != argc || (explain && (once || check))) {
		if (explain && (once || check))
			std::fprintf(stderr, "pmed: --explain goes with neither --once nor -n\n");
		usage(stderr);
		return EX_USAGE;
	}
	bool stayForeground = foreground || check || once || explain || underSystemd();
	log::init("pmed", log::defaultSink(stayForeground), verbose);
	// --explain is for a terminal: its logs too, wherever pmed was started.
	if (explain || (once && !foreground && std::getenv("JOURNAL_STREAM") == nullptr))
		log::init("pmed", log::Sink::Stderr, verbose);

	common::LoadNotes notes;
	auto loaded = common::loadConfigFile(path, &notes);
	if (!loaded) {
		for (const auto &e : loaded.error())
			std::fprintf(stderr, "%s\n", e.str().c_str());
		std::fprintf(stderr, "%s: %zu error%s\n", path.c_str(), loaded.error().size(),
		    loaded.error().size() == 1 ? "" : "s");
		return EX_CONFIG;
	}
	common::Config config = std::move(*loaded);
	for (const auto &w : notes.warnings)
		log::warnx("%s", w.str().c_str());
	daemon::PrivMode mode = daemon::detectPrivMode();
	if (check)
		return checkOnly(config, mode, notes, verbose);
	daemon::SupervisorOptions opts;
	opts.once = once;
	// Read again on SIGHUP, after daemon() has made / the directory.
	if (!path.empty() && path.front() != '/') {
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof(cwd)) != nullptr)
			path = std::string(cwd) + "/" + path;
	}
	opts.configPath = path;
	if (explain && !explainTarget(config, explainArg, opts))
		return EX_USAGE;

	auto sup = daemon::supervisorIdentity(config, mode);
	if (!sup && (once || explain) && mode == daemon::PrivMode::Root &&
	    config.exporter.user == common::ExporterConfig{}.user) {
		// The package creates the user pme; a one-shot run of a file
		// that names no exporter.user (a configuration of the original
		// PME, say) on a machine without it still runs, as nobody.
		log::warnx("%s; %s runs the supervisor, and services without run_as, as nobody",
		    sup.error().message.c_str(), once ? "--once" : "--explain");
		config.exporter.user = "nobody";
		sup = daemon::supervisorIdentity(config, mode);
	}
	if (!sup)
		log::fatalx(EX_NOUSER, "%s", sup.error().message.c_str());
	if (!once && !explain)
		opts.listenFds = passedSockets();
	if (!stayForeground && ::daemon(0, 0) < 0)
		log::fatal(EX_OSERR, "daemon");

	daemon::SpawnerOptions sopts;
	sopts.configPath = path;
	sopts.workerPath = daemon::defaultWorkerPath();
	sopts.configFlags = once ? PME_CONFIG_ONCE : 0;
	if (explain) {
		sopts.configFlags = PME_CONFIG_ONCE | PME_CONFIG_EXPLAIN;
		sopts.explainService = opts.explainService;
		if (opts.explainGroups.size() == 1)
			sopts.explainGroup = opts.explainGroups.front();
	}
	sopts.mode = mode;
	sopts.supervisor = *sup;
	sopts.verbosity = verbose;
	sopts.workerStderr = foreground || once || explain;
	if (!explain)
		log::info("pme %s starting (%s mode, %zu services)", PME_VERSION,
		    daemon::toString(mode), config.services.size());
	// The spawner is forked before anything else happens.
	auto spawner = daemon::startSpawner(config, sopts);
	if (!spawner)
		log::fatalx(EX_OSERR, "%s", spawner.error().message.c_str());
	// After the fork: the spawner, its workers and their commands keep the
	// usual limit (some programs walk every possible descriptor at start).
	raiseFileLimit();
	auto dropped = daemon::dropSupervisorPrivileges(sopts);
	if (!dropped) {
		kill(spawner->pid, SIGTERM);
		log::fatalx(EX_NOPERM, "%s", dropped.error().message.c_str());
	}
	signal(SIGPIPE, SIG_IGN);

	// The longest timeout of the groups that will run, plus room to start.
	common::Millis longest{0};
	for (const auto &s : config.services)
		for (const auto &g : s.groups)
			if (!explain || (s.name == opts.explainService &&
			    std::find(opts.explainGroups.begin(), opts.explainGroups.end(), g.key) !=
			    opts.explainGroups.end()))
				longest = std::max(longest, g.timeout);
	opts.onceTimeoutMs = static_cast<uint64_t>(longest.count()) + 10000;

	uv_loop_t loop;
	uv_loop_init(&loop);
	int code;
	{
		daemon::Supervisor supervisor(&loop, std::move(config), std::move(*spawner), opts);
		auto started = supervisor.start();
		if (started) {
			uv_run(&loop, UV_RUN_DEFAULT);
			code = supervisor.exitCode();
		} else {
			log::warnx("%s", started.error().message.c_str());
			code = EX_UNAVAILABLE;
		}
	}
	// The handles the supervisor closed are freed by one more run, and
	// the loop's own memory by uv_loop_close(), on every way out.
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return code;
}

} // namespace

int main(int argc, char **argv)
{
	try {
		return run(argc, argv);
	} catch (const std::exception &e) {
		std::fprintf(stderr, "pmed: fatal: %s\n", e.what());
		return EX_SOFTWARE;
	}
}
