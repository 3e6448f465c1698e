// SPDX-License-Identifier: ISC
// Source type file: reads, change detection and errors on a real uv loop.
//
// Two libuv functions are interposed (the test executable's definitions win
// over libuv's): uv_fs_event_start, to refuse a watch as the kernel does when
// the inotify watch limit is reached (running as root, an unreadable
// directory cannot be had), and uv_now, to move the clock past a minute.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>

#include "worker/file_source.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme;
using worker::FileSource;
using worker::SourceRead;

namespace {

// What uv_fs_event_start returns instead of watching (0: watch).
int refuseWatch = 0;
// Added to the loop's clock as FileSource sees it.
uint64_t clockSkewMs = 0;

template <typename F>
F next(const char *name)
{
	void *sym = dlsym(RTLD_NEXT, name);
	if (sym == nullptr)
		std::abort();
	F f;
	std::memcpy(&f, &sym, sizeof f);
	return f;
}

} // namespace

extern "C" int uv_fs_event_start(uv_fs_event_t *handle, uv_fs_event_cb cb, const char *path,
    unsigned int flags)
{
	static auto real = next<int (*)(uv_fs_event_t *, uv_fs_event_cb, const char *,
	    unsigned int)>("uv_fs_event_start");
	if (refuseWatch != 0)
		return refuseWatch;
	return real(handle, cb, path, flags);
}

extern "C" uint64_t uv_now(const uv_loop_t *loop)
{
	static auto real = next<uint64_t (*)(const uv_loop_t *)>("uv_now");
	return real(loop) + clockSkewMs;
}

namespace {

void writeFile(const std::string &path, const std::string &text)
{
	std::ofstream out(path, std::ios::binary | std::ios::trunc);
	out << text;
}

void appendFile(const std::string &path, const std::string &text)
{
	std::ofstream out(path, std::ios::binary | std::ios::app);
	out << text;
}

// A field of a /proc/self file of "name: number" lines.
long procField(const char *file, const char *field)
{
	std::ifstream in(std::string("/proc/self/") + file);
	std::string line;
	size_t len = std::strlen(field);
	while (std::getline(in, line))
		if (line.compare(0, len, field) == 0 && line[len] == ':')
			return std::atol(line.c_str() + len + 1);
	FAIL("field not found in /proc/self");
	return 0;
}

void setMtime(const std::string &path, time_t sec, long nsec)
{
	struct timespec ts[2];
	ts[0].tv_sec = sec;
	ts[0].tv_nsec = nsec;
	ts[1] = ts[0];
	CHECK_EQUAL(0, utimensat(AT_FDCWD, path.c_str(), ts, 0));
}

} // namespace

TEST_GROUP(FileSource)
{
	uv_loop_t loop;
	std::string dir;

	void setup() override
	{
		uv_loop_init(&loop);
		char tmpl[] = "/tmp/pme-file-source-XXXXXX";
		CHECK(mkdtemp(tmpl) != nullptr);
		dir = tmpl;
	}

	void teardown() override
	{
		refuseWatch = 0;
		clockSkewMs = 0;
		uv_run(&loop, UV_RUN_DEFAULT);
		LONGS_EQUAL(0, uv_loop_close(&loop));
		std::string cmd = "rm -rf '" + dir + "'";
		CHECK_EQUAL(0, std::system(cmd.c_str()));
	}

	SourceRead read(FileSource &source)
	{
		std::optional<SourceRead> got;
		source.start([&](SourceRead r) { got = std::move(r); });
		while (!got && uv_run(&loop, UV_RUN_ONCE) != 0) {
		}
		CHECK(got.has_value());
		return *got;
	}

	// Run the loop for a few milliseconds, so that pending events are
	// delivered (the watch alone does not keep the loop running).
	void settle()
	{
		uv_timer_t t;
		uv_timer_init(&loop, &t);
		uv_timer_start(&t, [](uv_timer_t *) noexcept {}, 10, 0);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_close(reinterpret_cast<uv_handle_t *>(&t), nullptr);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
};

TEST(FileSource, ReadsTheWholeFile)
{
	std::string path = dir + "/status";
	writeFile(path, "state: up\nqueue: 12\n");
	FileSource source(&loop, path, 1 << 20);
	SourceRead r = read(source);
	CHECK(r.ok);
	STRCMP_EQUAL("state: up\nqueue: 12\n", r.content.c_str());
	CHECK_FALSE(r.cached);
	CHECK_FALSE(r.truncated);
	LONGS_EQUAL(-1, r.exitStatus);
	LONGS_EQUAL(1, source.reads());
}

TEST(FileSource, UnchangedFileIsNotReadAgain)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	FileSource source(&loop, path, 1 << 20);
	read(source);
	for (int i = 0; i < 3; i++) {
		SourceRead r = read(source);
		CHECK(r.ok);
		CHECK(r.cached);
		STRCMP_EQUAL("queue: 12\n", r.content.c_str());
	}
	LONGS_EQUAL(1, source.reads());
}

TEST(FileSource, UnchangedWatchedFileIsNeitherStatNorRead)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	FileSource source(&loop, path, 1 << 20);
	CHECK_FALSE(source.watching());
	CHECK(read(source).ok);
	CHECK(source.watching());
	uint64_t stats = source.stats();
	CHECK(stats >= 1);
	for (int i = 0; i < 3; i++) {
		settle();
		SourceRead r = read(source);
		CHECK(r.ok);
		CHECK(r.cached);
		STRCMP_EQUAL("queue: 12\n", r.content.c_str());
	}
	LONGS_EQUAL(stats, source.stats());
	LONGS_EQUAL(1, source.reads());
}

TEST(FileSource, AppendIsSeenAtTheNextStart)
{
	std::string path = dir + "/app.log";
	writeFile(path, "line 1\n");
	FileSource source(&loop, path, 1 << 20);
	read(source);
	CHECK(source.watching());
	appendFile(path, "line 2\n");
	settle();
	SourceRead r = read(source);
	CHECK_FALSE(r.cached);
	STRCMP_EQUAL("line 1\nline 2\n", r.content.c_str());
	LONGS_EQUAL(2, source.reads());
	// And the one after that.
	appendFile(path, "line 3\n");
	settle();
	STRCMP_EQUAL("line 1\nline 2\nline 3\n", read(source).content.c_str());
	LONGS_EQUAL(3, source.reads());
}

TEST(FileSource, WatchedFileReplacedByRenameIsSeen)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	setMtime(path, 1700000000, 0);
	FileSource source(&loop, path, 1 << 20);
	read(source);
	CHECK(source.watching());
	// What an editor or a configuration tool does.
	writeFile(path + ".tmp", "queue: 56\n");
	setMtime(path + ".tmp", 1700000000, 0);
	CHECK_EQUAL(0, std::rename((path + ".tmp").c_str(), path.c_str()));
	settle();
	SourceRead r = read(source);
	CHECK_FALSE(r.cached);
	STRCMP_EQUAL("queue: 56\n", r.content.c_str());
	// The watch is on the directory: it still sees the new file change.
	CHECK(source.watching());
	appendFile(path, "queue: 78\n");
	settle();
	STRCMP_EQUAL("queue: 56\nqueue: 78\n", read(source).content.c_str());
	LONGS_EQUAL(3, source.reads());
}

TEST(FileSource, WatchedFileDeletedIsAnErrorAndRecreatedIsSeen)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	FileSource source(&loop, path, 1 << 20);
	CHECK(read(source).ok);
	CHECK_EQUAL(0, unlink(path.c_str()));
	settle();
	SourceRead gone = read(source);
	CHECK_FALSE(gone.ok);
	STRCMP_EQUAL(("cannot read " + path + ": No such file or directory").c_str(),
	    gone.error.c_str());
	CHECK(source.watching());
	writeFile(path, "queue: 34\n");
	settle();
	SourceRead back = read(source);
	CHECK(back.ok);
	CHECK_FALSE(back.cached);
	STRCMP_EQUAL("queue: 34\n", back.content.c_str());
	// Cached again from there on.
	uint64_t stats = source.stats();
	CHECK(read(source).cached);
	LONGS_EQUAL(stats, source.stats());
	LONGS_EQUAL(2, source.reads());
}

TEST(FileSource, OtherFilesInTheDirectoryDoNotCauseAStat)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	FileSource source(&loop, path, 1 << 20);
	read(source);
	uint64_t stats = source.stats();
	writeFile(dir + "/other", "noise\n");
	writeFile(dir + "/status.bak", "noise\n");
	settle();
	CHECK(read(source).cached);
	LONGS_EQUAL(stats, source.stats());
}

TEST(FileSource, ChangeJustBeforeStartIsSeenWithoutRunningTheLoop)
{
	// The event is queued when write() returns; the reuse is decided
	// after the loop polled for it.
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	FileSource source(&loop, path, 1 << 20);
	read(source);
	settle();
	CHECK(source.watching());
	writeFile(path, "queue: 13\n");
	SourceRead r = read(source);
	CHECK_FALSE(r.cached);
	STRCMP_EQUAL("queue: 13\n", r.content.c_str());
}

TEST(FileSource, WatchedFileIsStillCheckedEveryMinute)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	FileSource source(&loop, path, 1 << 20);
	read(source);
	CHECK(source.watching());
	uint64_t stats = source.stats();
	CHECK(read(source).cached);
	LONGS_EQUAL(stats, source.stats());
	clockSkewMs += 61 * 1000;
	CHECK(read(source).cached);
	LONGS_EQUAL(stats + 1, source.stats());
	// Checked: a minute of peace again.
	CHECK(read(source).cached);
	LONGS_EQUAL(stats + 1, source.stats());
	LONGS_EQUAL(1, source.reads());
}

TEST(FileSource, SymlinkSwappedAboveTheFileIsSeen)
{
	// A Kubernetes ConfigMap: the file is reached through a link that is
	// swapped for a new one; nothing happens to the file or its directory.
	CHECK_EQUAL(0, mkdir((dir + "/v1").c_str(), 0755));
	CHECK_EQUAL(0, mkdir((dir + "/v2").c_str(), 0755));
	writeFile(dir + "/v1/status", "queue: 12\n");
	writeFile(dir + "/v2/status", "queue: 34\n");
	CHECK_EQUAL(0, symlink("v1", (dir + "/data").c_str()));
	FileSource source(&loop, dir + "/data/status", 1 << 20);
	STRCMP_EQUAL("queue: 12\n", read(source).content.c_str());
	CHECK_FALSE(source.watching());
	CHECK_EQUAL(0, symlink("v2", (dir + "/data.new").c_str()));
	CHECK_EQUAL(0, std::rename((dir + "/data.new").c_str(), (dir + "/data").c_str()));
	settle();
	STRCMP_EQUAL("queue: 34\n", read(source).content.c_str());
}

TEST(FileSource, DirectoryMovedAwayIsWatchedAnew)
{
	std::string sub = dir + "/run";
	CHECK_EQUAL(0, mkdir(sub.c_str(), 0755));
	writeFile(sub + "/status", "queue: 12\n");
	FileSource source(&loop, sub + "/status", 1 << 20);
	read(source);
	CHECK(source.watching());
	// The directory is replaced by another one.
	CHECK_EQUAL(0, std::rename(sub.c_str(), (dir + "/run.old").c_str()));
	CHECK_EQUAL(0, mkdir(sub.c_str(), 0755));
	writeFile(sub + "/status", "queue: 34\n");
	settle();
	STRCMP_EQUAL("queue: 34\n", read(source).content.c_str());
	CHECK(source.watching());
	// The new directory is the one watched, not the old one.
	appendFile(sub + "/status", "queue: 56\n");
	appendFile(dir + "/run.old/status", "stale\n");
	settle();
	STRCMP_EQUAL("queue: 34\nqueue: 56\n", read(source).content.c_str());
}

TEST(FileSource, RefusedWatchFallsBackToStatAndIsRetriedAfterAMinute)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	refuseWatch = UV_ENOSPC;
	FileSource source(&loop, path, 1 << 20);
	read(source);
	CHECK_FALSE(source.watching());
	// Every start() stats; the content is still reused.
	uint64_t stats = source.stats();
	CHECK(read(source).cached);
	LONGS_EQUAL(stats + 1, source.stats());
	writeFile(path, "queue: 1234\n");
	SourceRead r = read(source);
	CHECK_FALSE(r.cached);
	STRCMP_EQUAL("queue: 1234\n", r.content.c_str());
	// The limit was raised: not retried within the minute...
	refuseWatch = 0;
	read(source);
	CHECK_FALSE(source.watching());
	// ...but after it.
	clockSkewMs += 61 * 1000;
	CHECK(read(source).cached);
	CHECK(source.watching());
	stats = source.stats();
	CHECK(read(source).cached);
	LONGS_EQUAL(stats, source.stats());
	LONGS_EQUAL(2, source.reads());
}

TEST(FileSource, FileInADirectoryNotThereYetIsCheckedWithStat)
{
	std::string sub = dir + "/later";
	std::string path = sub + "/status";
	FileSource source(&loop, path, 1 << 20);
	CHECK_FALSE(read(source).ok);
	CHECK_FALSE(source.watching());
	CHECK_EQUAL(0, mkdir(sub.c_str(), 0755));
	writeFile(path, "queue: 12\n");
	setMtime(path, 1700000000, 0);
	STRCMP_EQUAL("queue: 12\n", read(source).content.c_str());
	CHECK_FALSE(source.watching());
	writeFile(path, "queue: 34\n");
	setMtime(path, 1700000000, 1);
	uint64_t stats = source.stats();
	SourceRead r = read(source);
	CHECK_FALSE(r.cached);
	STRCMP_EQUAL("queue: 34\n", r.content.c_str());
	LONGS_EQUAL(stats + 1, source.stats());
	CHECK(read(source).cached);
	LONGS_EQUAL(stats + 2, source.stats());
	LONGS_EQUAL(2, source.reads());
}

TEST(FileSource, ChangedSizeIsReadAgain)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	FileSource source(&loop, path, 1 << 20);
	read(source);
	writeFile(path, "queue: 1234\n");
	SourceRead r = read(source);
	CHECK_FALSE(r.cached);
	STRCMP_EQUAL("queue: 1234\n", r.content.c_str());
	LONGS_EQUAL(2, source.reads());
}

TEST(FileSource, WithoutWatchChangedMtimeIsReadAgain)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	setMtime(path, 1700000000, 0);
	refuseWatch = UV_ENOSPC;
	FileSource source(&loop, path, 1 << 20);
	read(source);
	CHECK_FALSE(source.watching());
	// Same size, rewritten in place; only the nanoseconds of mtime differ.
	writeFile(path, "queue: 34\n");
	setMtime(path, 1700000000, 1);
	SourceRead r = read(source);
	CHECK_FALSE(r.cached);
	STRCMP_EQUAL("queue: 34\n", r.content.c_str());
	LONGS_EQUAL(2, source.reads());
}

TEST(FileSource, WithoutWatchReplacedFileIsReadAgain)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	setMtime(path, 1700000000, 0);
	refuseWatch = UV_ENOSPC;
	FileSource source(&loop, path, 1 << 20);
	read(source);
	CHECK_FALSE(source.watching());
	// A new inode of the same size and mtime, renamed over the old one.
	writeFile(path + ".new", "queue: 56\n");
	setMtime(path + ".new", 1700000000, 0);
	CHECK_EQUAL(0, std::rename((path + ".new").c_str(), path.c_str()));
	SourceRead r = read(source);
	CHECK_FALSE(r.cached);
	STRCMP_EQUAL("queue: 56\n", r.content.c_str());
	LONGS_EQUAL(2, source.reads());
}

TEST(FileSource, MissingFileNamesThePathAndTheError)
{
	std::string path = dir + "/missing";
	FileSource source(&loop, path, 1 << 20);
	SourceRead r = read(source);
	CHECK_FALSE(r.ok);
	STRCMP_EQUAL(("cannot read " + path + ": No such file or directory").c_str(),
	    r.error.c_str());
	LONGS_EQUAL(0, source.reads());
}

TEST(FileSource, FileThatDisappearsIsAnErrorNotItsOldContent)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	FileSource source(&loop, path, 1 << 20);
	CHECK(read(source).ok);
	CHECK_EQUAL(0, unlink(path.c_str()));
	SourceRead r = read(source);
	CHECK_FALSE(r.ok);
	STRCMP_CONTAINS("No such file or directory", r.error.c_str());
}

TEST(FileSource, DirectoryIsAnError)
{
	FileSource source(&loop, dir, 1 << 20);
	SourceRead r = read(source);
	CHECK_FALSE(r.ok);
	STRCMP_EQUAL(("cannot read " + dir + ": Is a directory").c_str(), r.error.c_str());
}

TEST(FileSource, ProcFilesAreReadEveryTime)
{
	// /proc reports size 0 and a fixed mtime: its stamp says nothing.
	FileSource source(&loop, "/proc/self/stat", 1 << 20);
	SourceRead a = read(source);
	SourceRead b = read(source);
	CHECK(a.ok && b.ok);
	CHECK_FALSE(b.cached);
	CHECK(!b.content.empty());
	CHECK_FALSE(source.watching());
	settle();
	CHECK_FALSE(read(source).cached);
	CHECK_FALSE(source.watching());
	LONGS_EQUAL(3, source.reads());
}

TEST(FileSource, ContentOverMaxOutputIsTruncated)
{
	std::string path = dir + "/big";
	writeFile(path, std::string(200000, 'x'));
	FileSource source(&loop, path, 100000);
	SourceRead r = read(source);
	CHECK(r.ok);
	CHECK(r.truncated);
	LONGS_EQUAL(100000, r.content.size());
	STRCMP_CONTAINS("truncated at 100000 bytes (max_output)", r.error.c_str());
	// Exactly max_output bytes is not truncated.
	std::string exact = dir + "/exact";
	writeFile(exact, std::string(100000, 'y'));
	FileSource whole(&loop, exact, 100000);
	SourceRead e = read(whole);
	CHECK_FALSE(e.truncated);
	LONGS_EQUAL(100000, e.content.size());
}

TEST(FileSource, GibibyteFileIsCutWithoutReadingIt)
{
	std::string path = dir + "/huge";
	int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK_EQUAL(0, ftruncate(fd, 1L << 30));  // sparse: no disk space
	close(fd);
	FileSource source(&loop, path, 1 << 20);
	// Bytes read by the whole process (the pool threads too), and the
	// peak resident size from now on (the kernel resets it to the current).
	long readBefore = procField("io", "rchar");
	std::ofstream("/proc/self/clear_refs") << "5";
	long peakBefore = procField("status", "VmHWM");
	uint64_t t0 = uv_hrtime();
	SourceRead r = read(source);
	double took = static_cast<double>(uv_hrtime() - t0) / 1e9;
	long readBytes = procField("io", "rchar") - readBefore;
	long peakGrowthKb = procField("status", "VmHWM") - peakBefore;
	CHECK(r.ok);
	CHECK(r.truncated);
	LONGS_EQUAL(1 << 20, r.content.size());
	CHECK(r.content == std::string(1 << 20, '\0'));
	STRCMP_EQUAL((path + " truncated at 1048576 bytes (max_output)").c_str(), r.error.c_str());
	// max_output and a byte, and the /proc files above: not the 1 GiB.
	CHECK_COMPARE(readBytes, <, 2 << 20);
	CHECK_COMPARE(took, <, 2);
	CHECK_COMPARE(peakGrowthKb, <, 8 * 1024);
}

TEST(FileSource, CancelDropsTheCallback)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	bool called = false;
	{
		FileSource source(&loop, path, 1 << 20);
		source.start([&](SourceRead) { called = true; });
		source.cancel();
		CHECK_FALSE(source.running());
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_FALSE(called);
}

TEST(FileSource, CancelOfAReuseDropsTheCallback)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	FileSource source(&loop, path, 1 << 20);
	read(source);
	CHECK(source.watching());
	bool called = false;
	source.start([&](SourceRead) { called = true; });
	CHECK(source.running());
	source.cancel();
	CHECK_FALSE(source.running());
	settle();
	CHECK_FALSE(called);
	CHECK(read(source).cached);
}

TEST(FileSource, WatchDoesNotKeepTheLoopRunning)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	bool alive;
	{
		FileSource source(&loop, path, 1 << 20);
		read(source);
		read(source);
		CHECK(source.watching());
		alive = uv_loop_alive(&loop) != 0;
	}
	CHECK_FALSE(alive);
}

TEST(FileSource, DestroyedSourceHearsNoMoreEvents)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	{
		FileSource source(&loop, path, 1 << 20);
		read(source);
		CHECK(source.watching());
	}
	// An event for the closed watch must not reach the freed source (the
	// sanitizer build would see it); teardown checks the handles closed.
	appendFile(path, "queue: 34\n");
	settle();
}
