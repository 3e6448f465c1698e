// SPDX-License-Identifier: ISC
// Source type file: read a file when it changed, reuse its content otherwise.
//
// One read is a chain of uv_fs requests run on libuv's thread pool, so that
// a slow disk or a hung network file system never blocks the loop:
//
//   [realpath -> statfs -> watch] -> stat -> (unchanged: reuse) -> statfs ->
//   open -> fstat -> read... -> close
//
// The chain lives in an Op on the heap.  A request in the thread pool cannot
// be taken back, so cancel() only cuts the Op loose from its source; the Op
// then finishes on its own (closing what it opened) and frees itself.
//
// The stamp recorded is the one of the descriptor actually read (fstat), so
// a file replaced between stat and open is recognised as changed next time.
// The file is opened O_NONBLOCK: a FIFO without a writer reads as empty
// instead of holding a pool thread forever.
//
// Change notification.  A stat per cycle is cheap, but a group collected
// every second from a hundred files is still a hundred syscalls a second for
// nothing, so the file's directory is watched with inotify (uv_fs_event).
// The directory and not the file: editors, configuration management and log
// rotation replace a file by renaming a new one over it, and a watch on the
// old inode would neither report that nor ever fire again.  Events are
// matched by name against the file's; one for it, one without a name, or a
// move or removal of the directory itself (libuv then names the directory)
// marks the content dirty.  A move or removal of the directory also drops
// the watch, since a directory moved away is no longer the one the path
// names; the next start() tries to set up a new one.
//
// While a watch is up and nothing was reported since the last stat or read,
// start() hands back the last content without asking the kernel anything.
// That is decided from the loop, in a check callback, so after the loop
// polled for I/O (an idle handle keeps that poll from blocking): whatever
// changed before start() was called has been reported by then, as inotify
// queues the event before write() or rename() returns.  A dirty content is checked by stat as before, which
// also covers events for a name that did not change the content (an
// attribute, a sibling renamed like the directory): they cost a stat, never
// a stale read.  The price of watching a directory is that every batch of
// events in it, for whatever file, wakes the worker: cheap, but not nothing
// for a busy /var/log.
//
// What inotify does not see, and how each case is handled:
// - changes behind a symbolic link anywhere in the path (a Kubernetes
//   ConfigMap swaps its "..data" link, not the file): the watch is only set
//   up when realpath(3) gives the path back unchanged, else the file is
//   stat()ed every time;
// - changes made by other hosts on NFS, SMB, 9p, Ceph, AFS, cluster and FUSE
//   file systems: such files are not watched but stat()ed every time, as
//   the value read must not lag behind what the other host wrote;
// - pseudo file systems report neither events nor stamps: read every time;
// - an event lost to a full inotify queue (libuv drops IN_Q_OVERFLOW),
//   a watch removed by the kernel, anything else unforeseen: even while
//   watching, the file is stat()ed when the last check is a minute old.
//
// Setting up a watch is a synchronous inotify_add_watch() on the loop, so
// it is attempted only once realpath and statfs, run in the pool, showed the
// path to be plain and local (a hung NFS server then holds a pool thread,
// not the worker).  That happens at the first start(); a watch that could
// not be set up (no inotify, the watch limit reached: ENOSPC, a directory
// the service user may not read, a path not there yet) is retried at a
// later start(), at most once a minute, with stat polling meanwhile;
// watching() tells which.  The watch is started before the file is stat()ed
// and read, so nothing changed between the read and the watch goes unseen.
//
// The watch handle is unreferenced: it never keeps the loop running by
// itself.  The destructor closes it (common::UvHandle clears its data
// pointer first), so no event reaches a destroyed source.
#include "file_source.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "common/log.hpp"
#include "common/utf8.hpp"

namespace pme::worker {

namespace log = common::log;

namespace {

constexpr size_t kChunk = 64 * 1024;
// Even while watching, stat when the last check is older than this.
constexpr uint64_t kRecheckMs = 60 * 1000;
// A watch that could not be set up is tried again after this.
constexpr uint64_t kRetryMs = 60 * 1000;

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef TRACEFS_MAGIC
#define TRACEFS_MAGIC 0x74726163
#endif
#ifndef GFS2_MAGIC
#define GFS2_MAGIC 0x01161970
#endif
#ifndef LUSTRE_SUPER_MAGIC
#define LUSTRE_SUPER_MAGIC 0x0bd00bd0
#endif
#ifndef GPFS_SUPER_MAGIC
#define GPFS_SUPER_MAGIC 0x47504653
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

// File systems where files change without the local kernel knowing, so
// that inotify misses changes.
bool remoteFileSystem(uint64_t type)
{
	switch (type) {
	case NFS_SUPER_MAGIC:
	case SMB_SUPER_MAGIC:
	case CIFS_SUPER_MAGIC:
	case SMB2_SUPER_MAGIC:
	case V9FS_MAGIC:
	case CEPH_SUPER_MAGIC:
	case CODA_SUPER_MAGIC:
	case AFS_SUPER_MAGIC:
	case AFS_FS_MAGIC:
	case OCFS2_SUPER_MAGIC:
	case GFS2_MAGIC:
	case LUSTRE_SUPER_MAGIC:
	case GPFS_SUPER_MAGIC:
	case FUSE_SUPER_MAGIC:
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
	// Reuse: waiting for onDeferred(), no request in flight.
	enum class Step { Reuse, Realpath, Statfs, Stat, Open, Fstat, Read, Close };

	FileSource *owner;
	uv_loop_t *loop;
	std::string path;
	uint64_t maxOutput;
	uv_fs_t req{};
	Step step = Step::Stat;
	uint64_t startedMs = 0;
	// A watch is to be set up once realpath and statfs have answered.
	bool probe = false;
	bool plainPath = false;
	bool fsKnown = false;
	uv_file fd = -1;
	FileStamp stamp;
	bool cacheable = true;
	bool reused = false;
	std::string content;
	bool truncated = false;
	std::string error;
	std::vector<char> buf;

	static void onFs(uv_fs_t *req) noexcept;
	int first();
	void next(ssize_t result);
	int stat();
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

// Issue the first request of the chain.
int FileSource::Op::first()
{
	req.data = this;
	if (probe) {
		step = Step::Realpath;
		return uv_fs_realpath(loop, &req, path.c_str(), onFs);
	}
	return stat();
}

int FileSource::Op::stat()
{
	step = Step::Stat;
	if (owner != nullptr)
		owner->stats_++;
	return uv_fs_stat(loop, &req, path.c_str(), onFs);
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
	if (step == Step::Realpath && result == 0 && req.ptr != nullptr && owner != nullptr)
		plainPath = owner->absolute_ == static_cast<const char *>(req.ptr);
	uv_fs_req_cleanup(&req);
	req.data = this;

	switch (step) {
	case Step::Reuse:
		break;
	case Step::Realpath:
		// Whatever the answer, statfs tells where the file is.
		step = Step::Statfs;
		uv_fs_statfs(loop, &req, path.c_str(), onFs);
		return;
	case Step::Statfs: {
		// Unknown (statfs failed): do not trust the stamp.
		FsKind kind = result != 0 ? FsKind::Unknown :
		    pseudoFileSystem(fsType) ? FsKind::Pseudo :
		    remoteFileSystem(fsType) ? FsKind::Remote : FsKind::Local;
		cacheable = kind != FsKind::Unknown && kind != FsKind::Pseudo;
		fsKnown = true;
		if (owner != nullptr) {
			owner->noteFileSystem(kind);
			if (probe)
				owner->tryWatch(plainPath, uv_now(loop));
		}
		if (probe) {
			// The watch (if any) is up: what changes from now on
			// is reported, what changed before is seen by stat.
			probe = false;
			stat();
			return;
		}
		step = Step::Open;
		uv_fs_open(loop, &req, path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0,
		    onFs);
		return;
	}
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
		if (fsKnown) {
			step = Step::Open;
			uv_fs_open(loop, &req, path.c_str(),
			    O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0, onFs);
			return;
		}
		step = Step::Statfs;
		uv_fs_statfs(loop, &req, path.c_str(), onFs);
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
	// What to watch, worked out lexically; realpath checks it later.  A
	// path that names no file (empty, ending in '/') is never watched.
	namespace fs = std::filesystem;
	std::error_code ec;
	fs::path p(path_);
	if (p.is_relative())
		p = fs::absolute(p, ec);
	p = p.lexically_normal();
	if (!ec && p.has_filename() && p.has_parent_path()) {
		absolute_ = p.string();
		base_ = p.filename().string();
		dir_ = p.parent_path().string();
		dirBase_ = p.parent_path().filename().string();
	}
}

FileSource::~FileSource()
{
	cancel();
	// The handles close themselves; their callbacks then see no owner.
}

void FileSource::start(SourceCallback cb)
{
	if (op_ != nullptr)
		throw std::logic_error("FileSource::start while running");
	uint64_t now = uv_now(loop_);
	auto *op = new Op{this, loop_, path_, maxOutput_};
	if (watching() && !dirty_ && cached_ && now - checkedMs_ < kRecheckMs) {
		// Decided in onDeferred(), once pending events are read.
		op->step = Op::Step::Reuse;
		if (!check_) {
			check_.emplace();
			uv_check_init(loop_, check_->get());
			check_->initialized();
			check_->get()->data = this;
			idle_.emplace();
			uv_idle_init(loop_, idle_->get());
			idle_->initialized();
		}
		uv_check_start(check_->get(), onDeferred);
		uv_idle_start(idle_->get(), [](uv_idle_t *) noexcept {});
	} else if (int r = launch(op, now); r < 0) {
		// Only for arguments libuv refuses: a bug.
		delete op;
		throw std::runtime_error("uv_fs request on " + path_ + ": " + uv_strerror(r));
	}
	op_ = op;
	cb_ = std::move(cb);
}

// Start the chain of requests: the file is to be checked, and what was
// reported so far is in what it will find.
int FileSource::launch(Op *op, uint64_t now)
{
	dirty_ = false;
	op->step = Op::Step::Stat;
	op->startedMs = now;
	op->probe = !watching() && !base_.empty() && fsKind_ != FsKind::Pseudo &&
	    fsKind_ != FsKind::Remote && (!tried_ || now - triedMs_ >= kRetryMs);
	return op->first();
}

void FileSource::onDeferred(uv_check_t *c) noexcept
{
	auto *self = static_cast<FileSource *>(c->data);
	if (self == nullptr)
		return;
	uv_check_stop(self->check_->get());
	uv_idle_stop(self->idle_->get());
	Op *op = self->op_;
	if (op == nullptr || op->step != Op::Step::Reuse)
		return;
	if (self->watching() && !self->dirty_) {
		op->reused = true;
		self->complete(op);
		return;
	}
	// The poll just read an event for the file (or lost the watch).
	if (int r = self->launch(op, uv_now(self->loop_)); r < 0) {
		op->error = "cannot read " + self->path_ + ": " + uv_strerror(r);
		self->complete(op);
	}
}

void FileSource::cancel()
{
	if (op_ == nullptr)
		return;
	if (op_->step == Op::Step::Reuse) {
		// Nothing in the thread pool: the Op is ours to free.
		uv_check_stop(check_->get());
		uv_idle_stop(idle_->get());
		delete op_;
	} else {
		op_->owner = nullptr;
	}
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
		if (op->step != Op::Step::Reuse)
			checkedMs_ = op->startedMs;
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
		checkedMs_ = op->startedMs;
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

// What statfs said about the file: never watch what inotify cannot see.
void FileSource::noteFileSystem(FsKind kind)
{
	fsKind_ = kind;
	if (kind == FsKind::Pseudo || kind == FsKind::Remote)
		dropWatch();
}

// Set up the watch on the file's directory, or say why not (debug only:
// stat polling is a fallback that works, not something to act on).
void FileSource::tryWatch(bool plainPath, uint64_t now)
{
	tried_ = true;
	triedMs_ = now;
	if (fsKind_ != FsKind::Local)
		return;
	if (!plainPath) {
		log::debug("%s: not watched (missing, or reached through a symbolic link); "
		    "checked with stat", path_.c_str());
		return;
	}
	watch_.emplace();
	uv_fs_event_t *h = watch_->get();
	int r = uv_fs_event_init(loop_, h);
	if (r == 0) {
		watch_->initialized();
		h->data = this;
		r = uv_fs_event_start(h, onWatchEvent, dir_.c_str(), 0);
	}
	if (r < 0) {
		log::debug("%s: cannot watch %s: %s; checked with stat", path_.c_str(),
		    dir_.c_str(), uv_strerror(r));
		watch_.reset();
		return;
	}
	uv_unref(watch_->handle());
}

// Back to stat polling; the next start() may try a new watch.
void FileSource::dropWatch()
{
	if (!watch_)
		return;
	watch_.reset();
	dirty_ = true;
	tried_ = false;
}

void FileSource::onWatchEvent(uv_fs_event_t *h, const char *filename, int events,
    int status) noexcept
{
	auto *self = static_cast<FileSource *>(h->data);
	if (self != nullptr)
		self->onWatch(filename, events, status);
}

void FileSource::onWatch(const char *filename, int events, int status)
{
	if (status < 0) {
		log::debug("%s: watch failed: %s; checked with stat", path_.c_str(),
		    uv_strerror(status));
		dropWatch();
		return;
	}
	if (filename == nullptr || *filename == '\0') {
		dirty_ = true;
		if ((events & UV_RENAME) != 0)
			dropWatch();
		return;
	}
	if (base_ == filename) {
		dirty_ = true;
		return;
	}
	// The directory itself moved or went away (or a sibling of the same
	// name did: that costs a new watch, nothing else).
	if ((events & UV_RENAME) != 0 && dirBase_ == filename)
		dropWatch();
}

} // namespace pme::worker
