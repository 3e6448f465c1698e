// SPDX-License-Identifier: ISC
// Source type file: read a file when it changed, reuse its content otherwise.
#pragma once

#include <uv.h>

#include <cstdint>
#include <optional>
#include <string>

#include "common/uv_handle.hpp"
#include "source.hpp"

namespace pme::worker {

// What identifies one version of a file's content.
struct FileStamp {
	uint64_t dev = 0, ino = 0, size = 0;
	int64_t mtimeSec = 0, mtimeNsec = 0, ctimeSec = 0, ctimeNsec = 0;
	bool operator==(const FileStamp &) const = default;
};

// Reads one file asynchronously (uv_fs_*, on libuv's thread pool), and only
// when it changed.  The file's directory is watched with inotify
// (uv_fs_event); while that watch is up and reported nothing about the file,
// start() hands back the last content without touching the file (but stats
// it at least once a minute).  Without a watch each start() stats the file,
// and reuses the last content when device, inode, size, mtime and ctime are
// those of the last read.  Files on kernel pseudo file systems (/proc, /sys,
// cgroup, debugfs...) report a fixed size and time whatever their content,
// and are therefore read every time.  See file_source.cpp for the details.
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
	// How many times the file was stat()ed to find out whether it changed.
	uint64_t stats() const { return stats_; }
	// Whether changes are seen through an inotify watch (else: stat polling).
	bool watching() const { return watch_.has_value(); }

	struct Op;

private:
	friend struct Op;
	enum class FsKind { Unknown, Local, Pseudo, Remote };

	int launch(Op *op, uint64_t now);
	void complete(Op *op);
	void noteFileSystem(FsKind kind);
	void tryWatch(bool plainPath, uint64_t now);
	void dropWatch();
	void onWatch(const char *filename, int events, int status);
	static void onWatchEvent(uv_fs_event_t *h, const char *filename, int events,
	    int status) noexcept;
	static void onDeferred(uv_check_t *c) noexcept;

	uv_loop_t *loop_;
	std::string path_;
	uint64_t maxOutput_;
	Op *op_ = nullptr;
	SourceCallback cb_;
	uint64_t reads_ = 0;
	uint64_t stats_ = 0;

	bool cached_ = false;
	FileStamp stamp_;
	std::string content_;
	bool truncated_ = false;

	// The watch: the directory, the names its events are matched against,
	// the path as realpath(3) must give it back for the watch to be of use.
	std::string absolute_, dir_, base_, dirBase_;
	FsKind fsKind_ = FsKind::Unknown;
	std::optional<common::UvHandle<uv_fs_event_t>> watch_;
	bool dirty_ = true;          // an event since the last stat or read
	uint64_t checkedMs_ = 0;     // loop time of the last stat or read
	bool tried_ = false;         // a watch was attempted, at triedMs_
	uint64_t triedMs_ = 0;
	// A reuse without stat is decided after the loop's next poll for I/O
	// (check), which the idle handle keeps from blocking.
	std::optional<common::UvHandle<uv_check_t>> check_;
	std::optional<common::UvHandle<uv_idle_t>> idle_;
};

} // namespace pme::worker
