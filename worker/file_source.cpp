// SPDX-License-Identifier: ISC
// Source type file: read a file when it changed, reuse its content otherwise.
//
// One read is a chain of uv_fs requests run on libuv's thread pool, so that
// a slow disk or a hung network file system never blocks the loop:
//
//   stat -> (unchanged: reuse) -> statfs -> open -> fstat -> read... -> close
//
// The chain lives in an Op on the heap.  A request in the thread pool cannot
// be taken back, so cancel() only cuts the Op loose from its source; the Op
// then finishes on its own (closing what it opened) and frees itself.
//
// The stamp recorded is the one of the descriptor actually read (fstat), so
// a file replaced between stat and open is recognised as changed next time.
// The file is opened O_NONBLOCK: a FIFO without a writer reads as empty
// instead of holding a pool thread forever.
#include "file_source.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>

#include <cstring>
#include <stdexcept>
#include <vector>

#include "common/utf8.hpp"

namespace pme::worker {

namespace {

constexpr size_t kChunk = 64 * 1024;

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef TRACEFS_MAGIC
#define TRACEFS_MAGIC 0x74726163
#endif

// File systems whose files do not change size or times with their content.
bool pseudoFileSystem(uint64_t type)
{
	switch (type) {
	case PROC_SUPER_MAGIC:
	case SYSFS_MAGIC:
	case CGROUP_SUPER_MAGIC:
	case CGROUP2_SUPER_MAGIC:
	case DEBUGFS_MAGIC:
	case TRACEFS_MAGIC:
	case SECURITYFS_MAGIC:
		return true;
	default:
		return false;
	}
}

FileStamp stampOf(const uv_stat_t &st)
{
	FileStamp s;
	s.dev = st.st_dev;
	s.ino = st.st_ino;
	s.size = st.st_size;
	s.mtimeSec = st.st_mtim.tv_sec;
	s.mtimeNsec = st.st_mtim.tv_nsec;
	s.ctimeSec = st.st_ctim.tv_sec;
	s.ctimeNsec = st.st_ctim.tv_nsec;
	return s;
}

} // namespace

struct FileSource::Op {
	enum class Step { Stat, Statfs, Open, Fstat, Read, Close };

	FileSource *owner;
	uv_loop_t *loop;
	std::string path;
	uint64_t maxOutput;
	uv_fs_t req{};
	Step step = Step::Stat;
	uv_file fd = -1;
	FileStamp stamp;
	bool cacheable = true;
	bool reused = false;
	std::string content;
	bool truncated = false;
	std::string error;
	std::vector<char> buf;

	static void onFs(uv_fs_t *req) noexcept;
	void next(ssize_t result);
	void fail(const char *what, ssize_t result);
	void readMore();
	void close();
	void done();
};

void FileSource::Op::onFs(uv_fs_t *req) noexcept
{
	auto *op = static_cast<Op *>(req->data);
	op->next(req->result);
}

void FileSource::Op::fail(const char *what, ssize_t result)
{
	error = std::string(what) + " " + path + ": " + std::strerror(static_cast<int>(-result));
}

void FileSource::Op::readMore()
{
	step = Step::Read;
	// One byte more than may be kept tells whether there is more.
	size_t want = kChunk;
	uint64_t left = maxOutput + 1 - content.size();
	if (left < want)
		want = static_cast<size_t>(left);
	buf.resize(want);
	uv_buf_t b = uv_buf_init(buf.data(), static_cast<unsigned int>(want));
	req.data = this;
	uv_fs_read(loop, &req, fd, &b, 1, -1, onFs);
}

void FileSource::Op::close()
{
	step = Step::Close;
	req.data = this;
	uv_fs_close(loop, &req, fd, onFs);
}

void FileSource::Op::next(ssize_t result)
{
	// Take what the finished request returned, then release it.
	uv_stat_t st = req.statbuf;
	uint64_t fsType = 0;
	if (step == Step::Statfs && result == 0 && req.ptr != nullptr)
		fsType = static_cast<uv_statfs_t *>(req.ptr)->f_type;
	uv_fs_req_cleanup(&req);
	req.data = this;

	switch (step) {
	case Step::Stat:
		if (result < 0) {
			fail("cannot read", result);
			return done();
		}
		stamp = stampOf(st);
		if (owner != nullptr && owner->cached_ && owner->stamp_ == stamp) {
			reused = true;
			return done();
		}
		step = Step::Statfs;
		uv_fs_statfs(loop, &req, path.c_str(), onFs);
		return;
	case Step::Statfs:
		// Unknown (statfs failed): do not trust the stamp.
		cacheable = result == 0 && !pseudoFileSystem(fsType);
		step = Step::Open;
		uv_fs_open(loop, &req, path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0,
		    onFs);
		return;
	case Step::Open:
		if (result < 0) {
			fail("cannot open", result);
			return done();
		}
		fd = static_cast<uv_file>(result);
		step = Step::Fstat;
		uv_fs_fstat(loop, &req, fd, onFs);
		return;
	case Step::Fstat:
		if (result < 0) {
			fail("cannot stat", result);
			return close();
		}
		stamp = stampOf(st);
		if (!S_ISREG(st.st_mode))
			cacheable = false;
		return readMore();
	case Step::Read:
		if (result < 0) {
			fail("cannot read", result);
			return close();
		}
		if (result == 0)
			return close();
		content.append(buf.data(), static_cast<size_t>(result));
		if (content.size() > maxOutput) {
			content.resize(static_cast<size_t>(maxOutput));
			truncated = true;
			return close();
		}
		return readMore();
	case Step::Close:
		fd = -1;
		return done();
	}
}

void FileSource::Op::done()
{
	if (owner == nullptr) {
		delete this;
		return;
	}
	owner->complete(this);
}

FileSource::FileSource(uv_loop_t *loop, std::string path, uint64_t maxOutput)
	: loop_(loop), path_(std::move(path)), maxOutput_(maxOutput)
{
}

FileSource::~FileSource()
{
	cancel();
}

void FileSource::start(SourceCallback cb)
{
	if (op_ != nullptr)
		throw std::logic_error("FileSource::start while running");
	cb_ = std::move(cb);
	op_ = new Op{this, loop_, path_, maxOutput_};
	op_->req.data = op_;
	int r = uv_fs_stat(loop_, &op_->req, path_.c_str(), Op::onFs);
	if (r < 0)
		throw std::runtime_error("uv_fs_stat: " + std::string(uv_strerror(r)));
}

void FileSource::cancel()
{
	if (op_ == nullptr)
		return;
	op_->owner = nullptr;
	op_ = nullptr;
	cb_ = nullptr;
}

void FileSource::complete(Op *op)
{
	SourceRead read;
	if (op->reused) {
		read.content = content_;
		read.truncated = truncated_;
		read.cached = true;
	} else if (!op->error.empty()) {
		read.ok = false;
		read.error = common::sanitizeUtf8(op->error);
	} else {
		reads_++;
		read.content = std::move(op->content);
		read.truncated = op->truncated;
		cached_ = op->cacheable;
		stamp_ = op->stamp;
		content_ = cached_ ? read.content : std::string();
		truncated_ = read.truncated;
	}
	if (!read.ok)
		cached_ = false;
	if (read.truncated)
		read.error = common::sanitizeUtf8(path_ + " truncated at " + std::to_string(maxOutput_) +
		    " bytes (max_output)");
	op_ = nullptr;
	delete op;
	SourceCallback cb = std::move(cb_);
	cb_ = nullptr;
	if (cb)
		cb(std::move(read));
}

} // namespace pme::worker
