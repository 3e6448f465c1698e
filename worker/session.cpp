// SPDX-License-Identifier: ISC
// Session: a worker's life on its supervisor socket, from SERVICE_CONFIG to BYE.
//
// Writes to the socket are plain blocking writes (common::writeAll): frames
// are small, the supervisor reads every worker on its loop, and a result is
// written whole or not at all.  A result is encoded into memory first, so a
// sample too large for a frame can be replaced by an error result without
// leaving a half-sent group on the wire.  The socket is also watched with a
// uv_poll for end of file, the sign that the supervisor went away;
// uv_poll_init makes the descriptor non-blocking, which is undone at once
// (the poll only needs readiness, and reads use MSG_DONTWAIT).
//
// pmed --explain (PME_CONFIG_EXPLAIN): the report of a group's first cycle
// (explain.cpp) goes out as EXPLAIN frames right before that cycle's
// result, so the supervisor has the whole report when the result tells it
// the group is done.  Later cycles are not explained, and once every group
// has been, the worker stops collecting: a group with a short interval
// would otherwise run again while a slow one is still being waited for.
//
// Shutting down closes every handle and kills running commands; the loop
// then drains.  Should something hold it (a file read stuck in the kernel
// on a thread of libuv's pool), a grace timer gives up after two seconds
// and the process leaves with _exit(), which does not wait for the pool.
#include "session.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <vector>

#include "command_source.hpp"
#include "common/channel.hpp"
#include "common/config_loader.hpp"
#include "common/group_result.hpp"
#include "common/log.hpp"
#include "proto/message.h"
#include "sandbox.hpp"
#include "self_check.hpp"
#include "common/utf8.hpp"

namespace pme::worker {

namespace log = common::log;

namespace {

constexpr size_t kMaxLogLine = 4000;
// One EXPLAIN frame's text: well under a worker frame's payload.
constexpr size_t kExplainChunk = 16 * 1024;
constexpr uint64_t kGraceMs = 2000;

} // namespace

Session::Session(int fd, std::string service) : fd_(fd), service_(std::move(service))
{
}

Session::~Session() = default;

void Session::sendFrame(const uint8_t *data, size_t len)
{
	if (linkBroken_)
		return;
	if (!common::writeAll(fd_, data, len)) {
		linkBroken_ = true;
		shutdown();
	}
}

void Session::sendLog(int level, const std::string &line)
{
	if (linkBroken_ || inLog_)
		return;
	inLog_ = true;
	std::string msg = common::shorten(line, kMaxLogLine);
	common::FrameWriter w;
	pme_proto_encode_log(w.get(), static_cast<uint8_t>(level & 7), msg.data(), msg.size());
	if (!common::writeFrame(fd_, *w)) {
		linkBroken_ = true;
		shutdown();
	}
	inLog_ = false;
}

void Session::sendResult(const common::GroupResult &result)
{
	std::vector<uint8_t> wire;
	auto collect = [&wire](const uint8_t *data, size_t len) -> common::Result<void> {
		wire.insert(wire.end(), data, data + len);
		return {};
	};
	auto encoded = common::encodeGroupResult(result, collect);
	if (!encoded) {
		log::warnx("group %s: result not sent: %s", result.group.c_str(),
		    encoded.error().message.c_str());
		common::GroupResult failed;
		failed.group = result.group;
		failed.sequence = result.sequence;
		failed.ok = false;
		failed.duration = result.duration;
		failed.skipped = result.skipped;
		failed.exitStatus = result.exitStatus;
		failed.error = "result not sent: " + encoded.error().message;
		wire.clear();
		if (!common::encodeGroupResult(failed, collect))
			return;
	}
	sendFrame(wire.data(), wire.size());
}

void Session::explain(const common::ServiceConfig &service, const common::GroupConfig &group,
    const SourceRead &read, const common::GroupResult &result)
{
	if (!explainAs_ || !explained_.insert(group.key).second)
		return;
	std::string report = explainReport(service, group, read, result, *explainAs_);
	for (const auto &chunk : explainChunks(report, kExplainChunk)) {
		common::FrameWriter w;
		pme_proto_encode_explain(w.get(), chunk.data(), chunk.size());
		if (!common::writeFrame(fd_, *w)) {
			linkBroken_ = true;
			shutdown();
			return;
		}
	}
}

std::optional<Session::Received> Session::receiveConfig()
{
	common::FrameDecoder dec(PME_PROTO_HARD_MAX_PAYLOAD);
	if (!dec.ok()) {
		log::warnx("cannot set up a frame decoder");
		return std::nullopt;
	}
	auto frame = common::readFrame(fd_, *dec);
	if (!frame) {
		log::warnx("no service configuration: %s", frame.error().message.c_str());
		return std::nullopt;
	}
	pme_proto_service_config m{};
	int rc = pme_proto_decode_service_config(&*frame, &m);
	if (rc < 0) {
		log::warnx("first frame is not a valid SERVICE_CONFIG: %s", pme_proto_strerror(rc));
		return std::nullopt;
	}
	Received r;
	std::string name = common::toString(m.service);
	if (name != service_) {
		log::warnx("SERVICE_CONFIG is for service '%s', but I was started for '%s'",
		    name.c_str(), service_.c_str());
		return std::nullopt;
	}
	r.uid = m.uid;
	r.gid = m.gid;
	r.flags = m.flags;
	for (uint32_t i = 0; i < m.ngroups; i++) {
		uint32_t g = 0;
		if (pme_proto_get_u32(&m.groups, &g) < 0) {
			log::warnx("SERVICE_CONFIG: truncated group list");
			return std::nullopt;
		}
		r.groups.push_back(g);
	}
	auto loaded = common::loadConfigString(common::toString(m.config), "service " + name);
	if (!loaded) {
		for (const auto &e : loaded.error())
			log::warnx("service configuration: %s", e.str().c_str());
		return std::nullopt;
	}
	r.config = std::move(*loaded);
	return r;
}

int Session::run()
{
	log::init("worker[" + service_ + "]", log::Sink::Callback, 0);
	log::setCallback([this](int level, const std::string &line) { sendLog(level, line); });

	auto received = receiveConfig();
	if (!received)
		return linkBroken_ ? kExitOk : kExitConfig;
	const common::ServiceConfig *service = received->config.findService(service_);
	if (service == nullptr) {
		log::warnx("the configuration received has no service '%s'", service_.c_str());
		return kExitConfig;
	}

	ExpectedIdentity want;
	want.uid = received->uid;
	want.gid = received->gid;
	want.groups.assign(received->groups.begin(), received->groups.end());
	if (auto ok = selfCheck(want); !ok) {
		log::line(log::Error, ok.error().message);
		return kExitNoPerm;
	}
	// The user and group databases may be out of the sandbox's reach.
	if ((received->flags & PME_CONFIG_EXPLAIN) != 0)
		explainAs_ = currentExplainIdentity();
	// Before anything is collected, and while the worker has one thread
	// (the event loop's thread pool starts later): see sandbox.cpp.
	auto sandbox = applySandbox(service->sandbox);
	if (!sandbox) {
		log::line(log::Error, "refusing to run: " + sandbox.error().message);
		return kExitConfig;
	}
	for (const auto &warning : sandbox->warnings)
		log::warnx("%s", warning.c_str());
	if (sandbox->seccomp)
		log::debug("sandbox: seccomp filter loaded");
	if (sandbox->landlockAbi > 0)
		log::debug("sandbox: Landlock ABI %d, read-only beneath %zu paths",
		    sandbox->landlockAbi, sandbox->landlockRules);

	common::FrameWriter w;
	pme_proto_encode_hello(w.get(), static_cast<uint32_t>(getpid()),
	    static_cast<uint32_t>(getuid()), static_cast<uint32_t>(getgid()),
	    service_.data(), service_.size());
	if (!common::writeFrame(fd_, *w))
		return kExitOk;  // the supervisor is already gone
	return serve(*received);
}

int Session::serve(const Received &received)
{
	uv_loop_t loop;
	if (int r = uv_loop_init(&loop); r != 0) {
		log::warnx("uv_loop_init: %s", uv_strerror(r));
		return kExitOsError;
	}
	loop_ = &loop;

	const common::ServiceConfig *service = received.config.findService(service_);
	WorkerOptions options;
	options.once = (received.flags & (PME_CONFIG_ONCE | PME_CONFIG_EXPLAIN)) != 0;
	options.globalInterval = received.config.exporter.interval;
	options.baseEnv = ownEnvironment();
	if (explainAs_) {
		explainGroups_ = service->groups.size();
		options.explain = [this, service](const common::GroupConfig &g,
		    const SourceRead &read, const common::GroupResult &r) {
			explain(*service, g, read, r);
		};
	}
	worker_ = std::make_unique<Worker>(&loop, *service, options,
	    [this](const common::GroupResult &r) {
		sendResult(r);
		if (explainAs_ && explained_.size() == explainGroups_ && worker_)
			worker_->stop();
	});

	poll_.emplace();
	uv_poll_init(&loop, poll_->get(), fd_);
	poll_->initialized();
	poll_->get()->data = this;
	int flags = fcntl(fd_, F_GETFL);
	if (flags >= 0)
		fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
	uv_poll_start(poll_->get(), UV_READABLE | UV_DISCONNECT, onReadable);

	sigterm_.emplace();
	sigint_.emplace();
	for (auto *h : {&*sigterm_, &*sigint_}) {
		uv_signal_init(&loop, h->get());
		h->initialized();
		h->get()->data = this;
	}
	uv_signal_start(sigterm_->get(), onSignal, SIGTERM);
	uv_signal_start(sigint_->get(), onSignal, SIGINT);

	log::debug("collecting %zu groups", service->groups.size());
	worker_->start();
	if (stopping_) {
		// The link broke while this was being set up (a log line that
		// could not be written): shut down what exists now.
		stopping_ = false;
		shutdown();
	}
	uv_run(&loop, UV_RUN_DEFAULT);

	if (uv_loop_alive(&loop)) {
		// The grace timer fired with work still pending (see above).
		_exit(kExitOk);
	}
	worker_.reset();
	grace_.reset();
	uv_run(&loop, UV_RUN_DEFAULT);  // close callbacks
	uv_loop_close(&loop);
	loop_ = nullptr;
	return kExitOk;
}

void Session::shutdown()
{
	if (stopping_)
		return;
	stopping_ = true;
	if (loop_ == nullptr)
		return;
	if (worker_)
		worker_->stop();
	poll_.reset();
	sigterm_.reset();
	sigint_.reset();
	grace_.emplace();
	uv_timer_init(loop_, grace_->get());
	grace_->initialized();
	grace_->get()->data = this;
	uv_timer_start(grace_->get(), onGrace, kGraceMs, 0);
	uv_unref(grace_->handle());
}

void Session::onReadable(uv_poll_t *p, int status, int) noexcept
{
	auto *self = static_cast<Session *>(p->data);
	if (self != nullptr)
		self->readable(status);
}

void Session::readable(int status)
{
	if (status < 0) {
		linkBroken_ = true;
		shutdown();
		return;
	}
	for (;;) {
		char buf[4096];
		ssize_t n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			// Nothing is expected from the supervisor yet.
			log::debug("ignoring %zd bytes from the supervisor", n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		// End of file or a socket error: the supervisor is gone.
		linkBroken_ = true;
		shutdown();
		return;
	}
}

void Session::onSignal(uv_signal_t *s, int signum) noexcept
{
	auto *self = static_cast<Session *>(s->data);
	if (self == nullptr)
		return;
	log::debug("signal %d: leaving", signum);
	common::FrameWriter w;
	pme_proto_encode_empty(w.get(), PME_MSG_BYE);
	if (pme_proto_writer_finish(w.get()) == 0)
		self->sendFrame(w.get()->buf, w.get()->len);
	self->shutdown();
}

void Session::onGrace(uv_timer_t *t) noexcept
{
	auto *self = static_cast<Session *>(t->data);
	if (self != nullptr && self->loop_ != nullptr)
		uv_stop(self->loop_);
}

} // namespace pme::worker
