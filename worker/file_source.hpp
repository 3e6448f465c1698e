// SPDX-License-Identifier: ISC
// Source type file: read a file when it changed, reuse its content otherwise.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

#include "source.hpp"

namespace pme::worker {

// What identifies one version of a file's content.
struct FileStamp {
	uint64_t dev = 0, ino = 0, size = 0;
	int64_t mtimeSec = 0, mtimeNsec = 0, ctimeSec = 0, ctimeNsec = 0;
	bool operator==(const FileStamp &) const = default;
};

// Reads one file asynchronously (uv_fs_*, on libuv's thread pool).  Each
// start() stats the file; when device, inode, size, mtime and ctime are those
// of the last successful read, the content of that read is handed back
// without opening the file.  Files on kernel pseudo file systems (/proc,
// /sys, cgroup, debugfs...) report a fixed size and time whatever their
// content, and are therefore read every time.
class FileSource {
public:
	FileSource(uv_loop_t *loop, std::string path, uint64_t maxOutput);
	~FileSource();
	FileSource(const FileSource &) = delete;
	FileSource &operator=(const FileSource &) = delete;

	// Read (or reuse) the file; cb is called once, from the loop.  Not
	// while running().
	void start(SourceCallback cb);
	bool running() const { return op_ != nullptr; }
	// Forget the read in flight: its callback is dropped.
	void cancel();

	const std::string &path() const { return path_; }
	// How many times the file was actually opened and read.
	uint64_t reads() const { return reads_; }

	struct Op;

private:
	friend struct Op;
	void complete(Op *op);

	uv_loop_t *loop_;
	std::string path_;
	uint64_t maxOutput_;
	Op *op_ = nullptr;
	SourceCallback cb_;
	uint64_t reads_ = 0;

	bool cached_ = false;
	FileStamp stamp_;
	std::string content_;
	bool truncated_ = false;
};

} // namespace pme::worker
