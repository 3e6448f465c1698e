// SPDX-License-Identifier: ISC
// The worker's check of its own identity and privileges (SPEC §1, invariant 5).
//
// The spawner drops privileges before exec; this is the second pair of eyes.
// It costs a few system calls once per worker start, and it turns a bug in
// the spawner (a forgotten capability set, an unexpected kernel or container
// behaviour) into a refusal with a precise message instead of commands run
// with more rights than the operator granted.  The check is split into a
// pure part over parsed values, tested with synthetic status texts, and a
// reader of the live process.
#include "self_check.hpp"

#include <dirent.h>
#include <grp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace pme::worker {

using common::fail;
using common::Result;

namespace {

std::string_view trimSpace(std::string_view s)
{
	while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
		s.remove_prefix(1);
	while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
		s.remove_suffix(1);
	return s;
}

std::vector<std::string_view> fields(std::string_view s)
{
	std::vector<std::string_view> out;
	size_t i = 0;
	while (i < s.size()) {
		while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
			i++;
		size_t b = i;
		while (i < s.size() && s[i] != ' ' && s[i] != '\t')
			i++;
		if (i > b)
			out.push_back(s.substr(b, i - b));
	}
	return out;
}

bool parseUnsigned(std::string_view s, int base, uint64_t *out)
{
	if (s.empty() || s.size() > 20)
		return false;
	std::string t(s);
	char *end = nullptr;
	errno = 0;
	unsigned long long v = std::strtoull(t.c_str(), &end, base);
	if (errno != 0 || end != t.c_str() + t.size() || t[0] == '-' || t[0] == '+')
		return false;
	*out = v;
	return true;
}

std::string hex16(uint64_t v)
{
	char buf[32];
	std::snprintf(buf, sizeof(buf), "%016" PRIx64, v);
	return buf;
}

std::string joinIds(const std::vector<gid_t> &ids)
{
	if (ids.empty())
		return "none";
	std::string out;
	for (gid_t g : ids)
		out += (out.empty() ? "" : ",") + std::to_string(g);
	return out;
}

std::vector<gid_t> sortedUnique(std::vector<gid_t> v)
{
	std::sort(v.begin(), v.end());
	v.erase(std::unique(v.begin(), v.end()), v.end());
	return v;
}

} // namespace

Result<ProcessIdentity> parseProcStatus(std::string_view text)
{
	ProcessIdentity id;
	enum { kUid, kGid, kGroups, kCapInh, kCapEff, kCapPrm, kCapAmb, kNoNewPrivs, kCount };
	const char *names[kCount] = {"Uid", "Gid", "Groups", "CapInh", "CapEff", "CapPrm",
	    "CapAmb", "NoNewPrivs"};
	bool seen[kCount] = {};

	size_t pos = 0;
	while (pos < text.size()) {
		size_t nl = text.find('\n', pos);
		std::string_view line = text.substr(pos, nl == std::string_view::npos ?
		    std::string_view::npos : nl - pos);
		pos = nl == std::string_view::npos ? text.size() : nl + 1;
		size_t colon = line.find(':');
		if (colon == std::string_view::npos)
			continue;
		std::string_view key = line.substr(0, colon);
		std::string_view value = trimSpace(line.substr(colon + 1));
		int which = -1;
		for (int i = 0; i < kCount; i++)
			if (key == names[i])
				which = i;
		if (which < 0)
			continue;
		auto bad = [&]() {
			return fail(std::string("/proc/self/status: cannot read the ") + names[which] +
			    " line '" + std::string(line) + "'");
		};
		std::vector<std::string_view> f = fields(value);
		uint64_t v = 0;
		switch (which) {
		case kUid:
		case kGid:
			// real, effective, saved, filesystem
			if (f.size() != 4)
				return bad();
			for (int i = 0; i < 3; i++) {
				if (!parseUnsigned(f[static_cast<size_t>(i)], 10, &v) || v > UINT32_MAX)
					return bad();
				if (which == kUid)
					id.uid[i] = static_cast<uid_t>(v);
				else
					id.gid[i] = static_cast<gid_t>(v);
			}
			break;
		case kGroups:
			for (std::string_view g : f) {
				if (!parseUnsigned(g, 10, &v) || v > UINT32_MAX)
					return bad();
				id.groups.push_back(static_cast<gid_t>(v));
			}
			break;
		case kCapInh:
		case kCapEff:
		case kCapPrm:
		case kCapAmb:
			if (f.size() != 1 || !parseUnsigned(f[0], 16, &v))
				return bad();
			(which == kCapInh ? id.capInh : which == kCapEff ? id.capEff :
			    which == kCapPrm ? id.capPrm : id.capAmb) = v;
			break;
		case kNoNewPrivs:
			if (f.size() != 1 || !parseUnsigned(f[0], 10, &v) || v > 1)
				return bad();
			id.noNewPrivs = static_cast<int>(v);
			break;
		}
		seen[which] = true;
	}
	for (int i = 0; i < kCount; i++)
		if (!seen[i])
			return fail(std::string("/proc/self/status has no ") + names[i] + " line");
	return id;
}

std::vector<std::string> checkIdentity(const ProcessIdentity &id, const ExpectedIdentity &want)
{
	std::vector<std::string> failed;
	const char *which[3] = {"real", "effective", "saved"};
	for (int i = 0; i < 3; i++)
		if (id.uid[i] != want.uid)
			failed.push_back(std::string(which[i]) + " uid is " + std::to_string(id.uid[i]) +
			    ", expected " + std::to_string(want.uid));
	for (int i = 0; i < 3; i++)
		if (id.gid[i] != want.gid)
			failed.push_back(std::string(which[i]) + " gid is " + std::to_string(id.gid[i]) +
			    ", expected " + std::to_string(want.gid));
	std::vector<gid_t> have = sortedUnique(id.groups), expect = sortedUnique(want.groups);
	if (have != expect)
		failed.push_back("supplementary groups are " + joinIds(have) + ", expected " +
		    joinIds(expect));
	auto cap = [&](const char *name, uint64_t v) {
		if (v != 0)
			failed.push_back(std::string(name) + " is " + hex16(v) + ", expected 0");
	};
	cap("CapInh", id.capInh);
	cap("CapEff", id.capEff);
	cap("CapPrm", id.capPrm);
	cap("CapAmb", id.capAmb);
	if (id.noNewPrivs != 1)
		failed.push_back("NoNewPrivs is " + std::to_string(id.noNewPrivs) + ", expected 1");
	if (id.deathSignal == 0)
		failed.push_back("no parent-death signal is set (PR_SET_PDEATHSIG)");
	if (!id.strayFds.empty()) {
		std::string list;
		for (const auto &fd : id.strayFds)
			list += (list.empty() ? "" : ", ") + fd;
		failed.push_back("descriptors inherited besides the socket: " + list);
	}
	if (!id.forbiddenEnv.empty()) {
		std::string list;
		for (const auto &v : id.forbiddenEnv)
			list += (list.empty() ? "" : ", ") + v;
		failed.push_back("the environment holds " + list);
	}
	if (id.becameRoot.value_or(false))
		failed.push_back("setresuid(0, 0, 0) succeeded, expected it to fail");
	return failed;
}

Result<ProcessIdentity> readProcessIdentity(bool tryRoot, int socketFd)
{
	std::stringstream ss;
	{
		// Closed before the descriptors are listed.
		std::ifstream in("/proc/self/status");
		if (!in)
			return fail(common::errnoMessage("/proc/self/status"));
		ss << in.rdbuf();
	}
	auto id = parseProcStatus(ss.str());
	if (!id)
		return id;

	// The ids from the system calls themselves rather than their image.
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0)
		return fail(common::errnoMessage("getresuid"));
	id->uid[0] = ru, id->uid[1] = eu, id->uid[2] = su;
	id->gid[0] = rg, id->gid[1] = eg, id->gid[2] = sg;
	int n = getgroups(0, nullptr);
	if (n < 0)
		return fail(common::errnoMessage("getgroups"));
	std::vector<gid_t> groups(static_cast<size_t>(n));
	if (n > 0 && (n = getgroups(n, groups.data())) < 0)
		return fail(common::errnoMessage("getgroups"));
	groups.resize(static_cast<size_t>(n));
	id->groups = std::move(groups);

	int sig = 0;
	if (prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) != 0)
		return fail(common::errnoMessage("PR_GET_PDEATHSIG"));
	id->deathSignal = sig;

	DIR *dir = opendir("/proc/self/fd");
	if (dir == nullptr)
		return fail(common::errnoMessage("/proc/self/fd"));
	while (struct dirent *e = readdir(dir)) {
		uint64_t fd = 0;
		if (!parseUnsigned(e->d_name, 10, &fd) || fd <= 2 ||
		    static_cast<int>(fd) == socketFd || static_cast<int>(fd) == dirfd(dir))
			continue;
		char target[256];
		std::string link = "/proc/self/fd/" + std::string(e->d_name);
		ssize_t len = readlink(link.c_str(), target, sizeof(target) - 1);
		target[len > 0 ? len : 0] = '\0';
		id->strayFds.push_back(std::string(e->d_name) + " (" + target + ")");
	}
	closedir(dir);

	for (char **env = environ; *env != nullptr; env++) {
		std::string_view entry(*env);
		std::string_view name = entry.substr(0, entry.find('='));
		if (forbiddenVariable(name))
			id->forbiddenEnv.emplace_back(name);
	}

	if (tryRoot)
		id->becameRoot = setresuid(0, 0, 0) == 0;
	return id;
}

bool forbiddenVariable(std::string_view name)
{
	return name == "NOTIFY_SOCKET" || name.rfind("LISTEN_", 0) == 0 ||
	    name.rfind("WATCHDOG_", 0) == 0;
}

Result<void> selfCheck(const ExpectedIdentity &want, int socketFd)
{
	auto id = readProcessIdentity(want.uid != 0, socketFd);
	if (!id)
		return fail("refusing to run: " + id.error().message);
	std::vector<std::string> failed = checkIdentity(*id, want);
	if (failed.empty())
		return {};
	std::string msg = "refusing to run: ";
	for (size_t i = 0; i < failed.size(); i++)
		msg += (i ? "; " : "") + failed[i];
	return fail(msg);
}

} // namespace pme::worker
