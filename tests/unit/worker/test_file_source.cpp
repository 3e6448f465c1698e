// SPDX-License-Identifier: ISC
// Source type file: reads, change detection and errors on a real uv loop.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include "worker/file_source.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme;
using worker::FileSource;
using worker::SourceRead;

namespace {

void writeFile(const std::string &path, const std::string &text)
{
	std::ofstream out(path, std::ios::binary | std::ios::trunc);
	out << text;
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

TEST(FileSource, ChangedMtimeIsReadAgain)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	setMtime(path, 1700000000, 0);
	FileSource source(&loop, path, 1 << 20);
	read(source);
	// Same size, rewritten in place; only the nanoseconds of mtime differ.
	writeFile(path, "queue: 34\n");
	setMtime(path, 1700000000, 1);
	SourceRead r = read(source);
	CHECK_FALSE(r.cached);
	STRCMP_EQUAL("queue: 34\n", r.content.c_str());
	LONGS_EQUAL(2, source.reads());
}

TEST(FileSource, ReplacedFileIsReadAgain)
{
	std::string path = dir + "/status";
	writeFile(path, "queue: 12\n");
	setMtime(path, 1700000000, 0);
	FileSource source(&loop, path, 1 << 20);
	read(source);
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
	LONGS_EQUAL(2, source.reads());
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
