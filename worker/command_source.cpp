// SPDX-License-Identifier: ISC
// Source type command: one run of a command per cycle, under a timeout.
//
// A run ends when three things have happened: the main process has exited
// (libuv reaps it and calls onExit) and both pipes have reached end of file.
// A background process the command left behind would hold the pipes open and
// outlive it; so on exit the command's process group is killed, which closes
// the pipes, and the run ends.  The command runs in a session and process
// group of its own (UV_PROCESS_DETACHED calls setsid() in the child), so that
// kill(-pid, SIGKILL) reaches everything it started and nothing else.
//
// At the timeout the group is killed and the run ends at once, without
// waiting for the exit: a process stuck in the kernel (D state on a dead NFS
// mount) may take any time to die.  Its process handle is then handed over
// to onExit, which closes it whenever the exit does come, so that the child
// is still reaped.  cancel() does the same without calling back.
//
// A command that cannot be started (no such file, not executable) fails in
// uv_spawn(); the error is delivered from a zero timer so that the callback
// never runs inside start().
#include "command_source.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "common/log.hpp"
#include "common/unique_fd.hpp"
#include "common/utf8.hpp"

namespace pme::worker {

using common::fail;
using common::Pairs;
using common::Result;

Pairs mergeEnvironment(const Pairs &base, const Pairs &service, const Pairs &group)
{
	Pairs out;
	for (const Pairs *layer : {&base, &service, &group}) {
		for (const auto &[name, value] : *layer) {
			bool replaced = false;
			for (auto &p : out) {
				if (p.first == name) {
					p.second = value;
					replaced = true;
				}
			}
			if (!replaced)
				out.emplace_back(name, value);
		}
	}
	return out;
}

Pairs ownEnvironment()
{
	Pairs env;
	for (const char *name : {"HOME", "USER", "LOGNAME", "SHELL", "PATH"})
		if (const char *v = std::getenv(name))
			env.emplace_back(name, v);
	return env;
}

Result<CommandSpec> commandSpec(const common::GroupConfig &group, const Pairs &baseEnv,
    const Pairs &serviceEnv)
{
	CommandSpec spec;
	if (group.shell) {
		spec.argv = {"/bin/sh", "-c", group.source};
		spec.display = group.source;
	} else {
		spec.argv = group.argv;
	}
	if (spec.argv.empty() || spec.argv[0].empty())
		return fail("the command is empty");
	if (spec.display.empty()) {
		for (const auto &w : spec.argv)
			spec.display += (spec.display.empty() ? "" : " ") + w;
	}
	spec.env = mergeEnvironment(baseEnv, serviceEnv, group.env);
	spec.timeout = group.timeout;
	spec.maxOutput = group.maxOutput;
	return spec;
}

CommandSource::CommandSource(uv_loop_t *loop, CommandSpec spec)
	: loop_(loop), spec_(std::move(spec))
{
}

CommandSource::~CommandSource()
{
	cancel();
}

void CommandSource::start(SourceCallback cb)
{
	if (running_)
		throw std::logic_error("CommandSource::start while running");
	cb_ = std::move(cb);
	running_ = true;
	runs_++;
	read_ = SourceRead();
	stderrText_.clear();
	spawnError_.reset();
	exited_ = false;
	termSignal_ = 0;

	timer_.emplace();
	uv_timer_init(loop_, timer_->get());
	timer_->initialized();
	timer_->get()->data = this;

	stdout_.emplace();
	stderr_.emplace();
	uv_pipe_init(loop_, stdout_->get(), 0);
	stdout_->initialized();
	stdout_->get()->data = this;
	uv_pipe_init(loop_, stderr_->get(), 0);
	stderr_->initialized();
	stderr_->get()->data = this;

	std::vector<char *> args;
	for (auto &a : spec_.argv)
		args.push_back(a.data());
	args.push_back(nullptr);
	std::vector<std::string> envStrings;
	for (const auto &[name, value] : spec_.env)
		envStrings.push_back(name + "=" + value);
	std::vector<char *> env;
	for (auto &e : envStrings)
		env.push_back(e.data());
	env.push_back(nullptr);

	// Plain pipes rather than libuv's UV_CREATE_PIPE, which makes socket
	// pairs: the only socket a worker holds is the one to its supervisor.
	int outFds[2], errFds[2];
	if (pipe2(outFds, O_CLOEXEC) != 0) {
		spawnFailed("cannot create a pipe: " + std::string(std::strerror(errno)));
		return;
	}
	common::UniqueFd outRead(outFds[0]), outWrite(outFds[1]);
	if (pipe2(errFds, O_CLOEXEC) != 0) {
		spawnFailed("cannot create a pipe: " + std::string(std::strerror(errno)));
		return;
	}
	common::UniqueFd errRead(errFds[0]), errWrite(errFds[1]);

	uv_stdio_container_t stdio[3];
	stdio[0].flags = UV_IGNORE;  // /dev/null
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = outWrite.get();
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = errWrite.get();

	uv_process_options_t options{};
	options.exit_cb = onExit;
	options.file = args[0];
	options.args = args.data();
	options.env = env.data();
	options.flags = UV_PROCESS_DETACHED;
	options.stdio_count = 3;
	options.stdio = stdio;

	process_.emplace();
	process_->get()->data = this;
	int r = uv_spawn(loop_, process_->get(), &options);
	process_->initialized();  // even when uv_spawn failed
	// The child has its copies; the write ends must close here for the
	// reads to see end of file when the command is done.
	outWrite.reset();
	errWrite.reset();
	if (r != 0) {
		spawnFailed(std::strerror(-r));
		return;
	}
	pid_ = process_->get()->pid;
	if ((r = uv_pipe_open(stdout_->get(), outRead.get())) != 0 ||
	    (r = uv_pipe_open(stderr_->get(), errRead.get())) != 0) {
		// Not expected for a fresh pipe; treat it as a failed run.
		killGroup();
		exited_ = false;
		spawnFailed(uv_strerror(r));
		return;
	}
	outRead.release();
	errRead.release();
	stdoutOpen_ = stderrOpen_ = true;
	uv_read_start(reinterpret_cast<uv_stream_t *>(stdout_->get()), onAlloc, onRead);
	uv_read_start(reinterpret_cast<uv_stream_t *>(stderr_->get()), onAlloc, onRead);
	uv_timer_start(timer_->get(), onTimer, static_cast<uint64_t>(spec_.timeout.count()), 0);
}

void CommandSource::spawnFailed(const std::string &why)
{
	spawnError_ = "cannot run '" + spec_.display + "': " + why;
	if (!process_)
		exited_ = true;  // nothing was started
	else if (pid_ == 0)
		exited_ = true;  // uv_spawn failed: nothing to reap
	uv_timer_start(timer_->get(), onTimer, 0, 0);
}

void CommandSource::cancel()
{
	if (!running_)
		return;
	killGroup();
	finish(false);
}

void CommandSource::killGroup()
{
	if (pid_ > 0 && ::kill(-pid_, SIGKILL) != 0 && errno != ESRCH)
		common::log::warn("killing process group %d of '%s'", pid_, spec_.display.c_str());
}

void CommandSource::onExit(uv_process_t *p, int64_t status, int signal) noexcept
{
	auto *self = static_cast<CommandSource *>(p->data);
	if (self == nullptr) {
		// Handed over at a timeout or cancel: the child is reaped now.
		uv_close(reinterpret_cast<uv_handle_t *>(p), UvHandle<uv_process_t>::freeNode);
		return;
	}
	self->handleExit(status, signal);
}

void CommandSource::handleExit(int64_t status, int signal)
{
	exited_ = true;
	termSignal_ = signal;
	if (signal != 0)
		read_.exitStatus = 128 + signal;
	else
		read_.exitStatus = static_cast<int32_t>(status);
	// Whatever the command left running in its group goes with it.
	killGroup();
	maybeFinish();
}

void CommandSource::onAlloc(uv_handle_t *h, size_t, uv_buf_t *buf) noexcept
{
	auto *self = static_cast<CommandSource *>(h->data);
	bool out = self->stdout_ && h == self->stdout_->handle();
	char *base = out ? self->stdoutBuf_.data() : self->stderrBuf_.data();
	size_t len = out ? self->stdoutBuf_.size() : self->stderrBuf_.size();
	*buf = uv_buf_init(base, static_cast<unsigned int>(len));
}

void CommandSource::onRead(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) noexcept
{
	auto *self = static_cast<CommandSource *>(s->data);
	if (self == nullptr)
		return;
	bool out = self->stdout_ &&
	    reinterpret_cast<uv_handle_t *>(s) == self->stdout_->handle();
	self->handleRead(out, nread, buf);
}

void CommandSource::handleRead(bool isStdout, ssize_t nread, const uv_buf_t *buf)
{
	if (nread == 0)
		return;  // EAGAIN
	if (nread < 0) {
		// UV_EOF, or a read error: either way nothing more will come.
		if (isStdout) {
			uv_read_stop(reinterpret_cast<uv_stream_t *>(stdout_->get()));
			stdoutOpen_ = false;
		} else {
			uv_read_stop(reinterpret_cast<uv_stream_t *>(stderr_->get()));
			stderrOpen_ = false;
		}
		maybeFinish();
		return;
	}
	size_t n = static_cast<size_t>(nread);
	if (isStdout) {
		size_t room = spec_.maxOutput > read_.content.size() ?
		    static_cast<size_t>(spec_.maxOutput - read_.content.size()) : 0;
		if (n > room)
			read_.truncated = true;
		read_.content.append(buf->base, std::min(n, room));
	} else if (stderrText_.size() < kStderrKept) {
		stderrText_.append(buf->base, std::min(n, kStderrKept - stderrText_.size()));
	}
}

void CommandSource::onTimer(uv_timer_t *t) noexcept
{
	auto *self = static_cast<CommandSource *>(t->data);
	if (self != nullptr)
		self->handleTimer();
}

void CommandSource::handleTimer()
{
	if (spawnError_) {
		read_.ok = false;
		read_.error = *spawnError_;
		finish(true);
		return;
	}
	killGroup();
	read_.ok = false;
	read_.error = "command '" + spec_.display + "' timed out after " +
	    common::formatDuration(spec_.timeout);
	finish(true);
}

void CommandSource::maybeFinish()
{
	if (!exited_ || stdoutOpen_ || stderrOpen_)
		return;
	int32_t st = read_.exitStatus;
	if (st != 0) {
		read_.ok = false;
		if (termSignal_ != 0)
			read_.error = "command '" + spec_.display + "' was killed by signal " +
			    std::to_string(termSignal_) + " (" + strsignal(termSignal_) + ")";
		else
			read_.error = "command '" + spec_.display + "' exited with status " +
			    std::to_string(st);
		std::string_view err = stderrText_;
		size_t nl = err.find('\n');
		std::string_view first = err.substr(0, nl);
		while (!first.empty() && (first.back() == '\r' || first.back() == ' '))
			first.remove_suffix(1);
		if (!first.empty())
			read_.error += ": " + common::shorten(first, 512);
	} else if (read_.truncated) {
		read_.error = "output of '" + spec_.display + "' truncated at " +
		    std::to_string(spec_.maxOutput) + " bytes (max_output)";
	}
	finish(true);
}

void CommandSource::finish(bool deliver)
{
	timer_.reset();
	stdout_.reset();
	stderr_.reset();
	if (exited_) {
		process_.reset();
	} else {
		// Still running (timeout, cancel): onExit closes the handle
		// when the killed process has been reaped.
		uv_process_t *p = process_->release();
		p->data = nullptr;
		process_.reset();
	}
	pid_ = 0;
	running_ = false;
	SourceCallback cb = std::move(cb_);
	cb_ = nullptr;
	read_.error = common::sanitizeUtf8(read_.error);
	if (deliver && cb)
		cb(std::move(read_));
}

} // namespace pme::worker
