// SPDX-License-Identifier: ISC
// Source type command: one run of a command per cycle, under a timeout.
//
// A run ends when three things have happened: the main process has exited
// (libuv reaps it and calls onExit) and both pipes have reached end of file.
// The command runs in a session and process group of its own
// (UV_PROCESS_DETACHED calls setsid() in the child), so that kill(-pid, sig)
// reaches everything it started and nothing else.
//
// Background processes.  When the main process exits, whatever it left
// running in its group is killed (SIGKILL): it would hold the pipes open and
// outlive the command.  A process that left the group (setsid(1), a daemon
// that forks twice) is out of reach, and may keep a pipe open for ever.  So
// once the main process has exited, the run waits at most the grace (below)
// for end of file, then ends with the output read so far and closes its ends
// of the pipes (a later write of that process fails with SIGPIPE), and says
// so in a warning.  That is not an error of the read: the command has
// exited, with a status of its own, and what it wrote is there; the process
// left behind is usually a helper started on the side (an agent, an ssh
// ControlPersist master), which would otherwise make such a command fail on
// every run with nothing in its output wrong.  The warning asks for that
// process's output to be redirected, which is the fix.
//
// Timeout.  At the timeout every process of the group gets SIGTERM, so that
// a command can remove its temporary files or release a lock; what is left
// of the group when the command has exited, or when the grace has run out,
// gets SIGKILL.  At the end of the grace the run ends at once, without
// waiting for the exit: a process stuck in the kernel (D state on a dead NFS
// mount) may take any time to die.  Its process handle is then handed over
// to onExit, which closes it whenever the exit does come, so that the child
// is still reaped.  cancel() kills at once and hands over the same way.
//
// The grace is 1s, or half the timeout when that is shorter.  A command that
// handles SIGTERM needs milliseconds to clean up and exit; one still there
// after a second is not going to, and each second more delays the group's
// result and its next cycle.  Whoever sets a short timeout wants an answer
// near it: half adds at most 50% to it, and still leaves a shell the
// milliseconds its trap needs.  After an exit, the pipes of a group just
// killed close at once: the grace then only matters for a process that does
// not die (D state) or is out of reach, and a run thus ends by timeout + grace
// whatever it started.
//
// max_output.  Once stdout has given more than max_output bytes, its pipe is
// closed: the command's next write gets SIGPIPE (EPIPE where it ignores the
// signal), as when the reader of a pipeline is head(1).  Reading on and
// throwing away would keep a command that writes without end (yes(1)) busy
// until the timeout, and merely not reading would leave it blocked in write()
// until then.  Memory is bounded by max_output and two fixed buffers.  A
// death by SIGPIPE after the cut is ours and not an error, nor is status 141
// (128 + SIGPIPE), which is how a shell reports its command's; any other
// failing status still is, with the cut named in the error, since a program
// that gets EPIPE usually exits with a status of its own.
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

common::Millis terminationGrace(common::Millis timeout)
{
	return std::min(common::Millis(1000), timeout / 2);
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
	phase_ = Phase::Running;
	killed_ = false;
	exited_ = stdoutOpen_ = stderrOpen_ = false;
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
		signalGroup(SIGKILL);
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
	signalGroup(SIGKILL);
	finish(false);
}

void CommandSource::signalGroup(int sig)
{
	if (pid_ > 0 && ::kill(-pid_, sig) != 0 && errno != ESRCH)
		common::log::warn("cannot send signal %d (%s) to process group %d of '%s'", sig,
		    strsignal(sig), pid_, spec_.display.c_str());
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
	if (spawnError_)
		return;  // the zero timer reports it
	if (phase_ == Phase::Running) {
		// Whatever the command left running in its group goes with it.
		// After a timeout the rest of the group got SIGTERM too, and
		// keeps the grace to clean up.
		signalGroup(SIGKILL);
		phase_ = Phase::Draining;
		uv_timer_start(timer_->get(), onTimer,
		    static_cast<uint64_t>(terminationGrace(spec_.timeout).count()), 0);
	}
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
		size_t room = static_cast<size_t>(spec_.maxOutput - read_.content.size());
		read_.content.append(buf->base, std::min(n, room));
		if (n > room) {
			// The cut (see the top of this file): the command's
			// next write gets SIGPIPE.
			read_.truncated = true;
			stdout_.reset();
			stdoutOpen_ = false;
			maybeFinish();
		}
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
	switch (phase_) {
	case Phase::Running:
		phase_ = Phase::Terminating;
		signalGroup(SIGTERM);
		uv_timer_start(timer_->get(), onTimer,
		    static_cast<uint64_t>(terminationGrace(spec_.timeout).count()), 0);
		return;
	case Phase::Terminating:
		killed_ = true;
		conclude();
		return;
	case Phase::Draining:
		warnHeldOpen();
		conclude();
		return;
	}
}

void CommandSource::warnHeldOpen()
{
	const char *what = stdoutOpen_ && stderrOpen_ ? "standard output and error" :
	    stdoutOpen_ ? "standard output" : "standard error";
	common::log::warnx("command '%s' exited, but a process it started still holds its %s "
	    "open, most likely one that left its process group (a daemon, setsid): that "
	    "process is left running, and the output read until then is used; redirect its "
	    "output (>/dev/null 2>&1) to avoid this", spec_.display.c_str(), what);
}

void CommandSource::maybeFinish()
{
	if (!exited_ || stdoutOpen_ || stderrOpen_)
		return;
	conclude();
}

// The run is over: its result, from how it ended.
void CommandSource::conclude()
{
	std::string name = "command '" + spec_.display + "'";
	std::string cut = " at " + std::to_string(spec_.maxOutput) + " bytes (max_output)";
	int32_t st = read_.exitStatus;
	if (phase_ == Phase::Terminating) {
		// What is left of the group, at the end of the grace or once
		// the main process has exited.
		signalGroup(SIGKILL);
		read_.ok = false;
		read_.error = name + " timed out after " + common::formatDuration(spec_.timeout);
		if (killed_)
			read_.error += " and did not end within " +
			    common::formatDuration(terminationGrace(spec_.timeout)) +
			    " of SIGTERM: killed (SIGKILL)";
	} else if (st != 0 && !(read_.truncated && st == 128 + SIGPIPE)) {
		read_.ok = false;
		if (termSignal_ != 0)
			read_.error = name + " was killed by signal " +
			    std::to_string(termSignal_) + " (" + strsignal(termSignal_) + ")";
		else
			read_.error = name + " exited with status " + std::to_string(st);
		if (read_.truncated)
			read_.error += " after its output was cut" + cut;
		std::string_view err = stderrText_;
		size_t nl = err.find('\n');
		std::string_view first = err.substr(0, nl);
		while (!first.empty() && (first.back() == '\r' || first.back() == ' '))
			first.remove_suffix(1);
		if (!first.empty())
			read_.error += ": " + common::shorten(first, 512);
	} else if (read_.truncated) {
		read_.error = "output of '" + spec_.display + "' truncated" + cut;
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
