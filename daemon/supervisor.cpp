// SPDX-License-Identifier: ISC
// The supervisor: reads worker frames, merges, serves HTTP, restarts workers.
//
// One libuv loop carries everything: the HTTP listeners, the spawner's
// control socket, one stream socket per worker, signals and timers.  The
// supervisor holds no capability; it asks the spawner to START or STOP a
// service by name and receives each worker's socket back over SCM_RIGHTS.
//
// Every byte a worker sends is untrusted.  A WorkerLink decodes frames with
// a bounded decoder, dispatches them through one table, and on the first
// violation logs "protocol error: ...", closes the link and asks the spawner
// to stop that worker; the store keeps that service's last data (marked by
// pme_source_up 0) and every other service is untouched.  A worker that
// exits is restarted with exponential backoff.
//
// pmed --explain runs like --once with one service (the spawner refuses any
// other): no listener, no restart.  Its worker sends EXPLAIN frames, the
// report of each group, before the group's result; they are written to
// stdout as they come, made safe for a terminal once more here (a worker is
// not trusted to have done it) and bounded in total.  The tick ends the run
// when every group asked for has reported, or at once when the worker could
// not start or died, saying so on stdout after the reports.
#include "supervisor.hpp"

#include <malloc.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

#include "common/channel.hpp"
#include "common/config_loader.hpp"
#include "common/config_writer.hpp"
#include "common/group_result.hpp"
#include "common/log.hpp"
#include "common/uv_handle.hpp"
#include "http_server.hpp"
#include "metric_store.hpp"
#include "pme_build.h"
#include "proto/message.h"

#if PME_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace pme::daemon {

using common::fail;
using common::Result;
using common::UvHandle;
namespace log = common::log;

namespace {

double wallNow()
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// A worker's LOG text, made safe for one log line.
std::string sanitize(const std::string &s, size_t max)
{
	std::string out;
	out.reserve(std::min(s.size(), max));
	for (unsigned char c : s) {
		if (out.size() >= max) {
			out += "...";
			break;
		}
		out += c < 0x20 || c == 0x7f ? ' ' : static_cast<char>(c);
	}
	return out;
}

constexpr uint64_t kBackoffFirstMs = 1000;
constexpr uint64_t kBackoffMaxMs = 300000;
constexpr double kHealthyAfter = 60;   // seconds of running that reset backoff
// Deaths before a first result, in a row, that mark a service failed: it is
// then retried at the slowest rate.  With the backoff doubling from 1s,
// the fifth comes about 30s after the first start.
constexpr int kEarlyDeathsFailed = 5;
// Most report text one worker may send under --explain.
constexpr size_t kMaxExplainBytes = 1024 * 1024;
// --explain's exit status when a group failed or had a metric error.
constexpr int kExitExplainFailed = 1;
// How often free heap pages go back to the system.  Results, renderings,
// reloads and worker restarts free memory in the middle of the heap, which
// malloc keeps: without this, the resident size creeps up to the largest
// the heap ever was, though nothing is leaked.
constexpr uint64_t kTrimEveryMs = 10000;
// After a result of this many series, sooner (malloc_trim takes 1-3 ms at
// 100,000 series), but not more often than this.
constexpr size_t kTrimAfterSeries = 10000;
constexpr uint64_t kTrimLargeEveryMs = 1000;
// A worker sends one result per group per interval; a cycle that ran late
// lets the next come sooner, so a few more are allowed in a burst.  More
// than that is a worker flooding the supervisor.
constexpr double kResultBurst = 4;
// LOG lines: a worker logs a group's failure or a metric's error once, not
// every cycle; this much is far beyond what a sound worker writes.
constexpr double kLogBurst = 200;
constexpr double kLogPerSecond = 20;

// A token bucket: `capacity` tokens, refilled at `perMs` a millisecond.
class Budget {
public:
	Budget(double capacity, double perMs) : capacity_(capacity), perMs_(perMs), tokens_(capacity) {}
	bool take(uint64_t nowMs)
	{
		tokens_ = std::min(capacity_, tokens_ + static_cast<double>(nowMs - lastMs_) * perMs_);
		lastMs_ = nowMs;
		if (tokens_ < 1)
			return false;
		tokens_ -= 1;
		return true;
	}

private:
	double capacity_, perMs_, tokens_;
	uint64_t lastMs_ = 0;
};

// EXPLAIN text for a terminal: the frame decoder let only UTF-8 without NUL
// through; C0 controls but newline, DEL, and C1 controls (U+0080..U+009F,
// CSI among them) are written as visible escapes.
std::string terminalText(std::string_view s)
{
	static const char hex[] = "0123456789abcdef";
	std::string out;
	out.reserve(s.size());
	for (size_t i = 0; i < s.size(); i++) {
		auto c = static_cast<unsigned char>(s[i]);
		if ((c < 0x20 && c != '\n') || c == 0x7f) {
			out += "\\x";
			out += hex[c >> 4];
			out += hex[c & 0xf];
		} else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xa0) {
			auto d = static_cast<unsigned char>(s[++i]);
			out += "\\u00";
			out += hex[d >> 4];
			out += hex[d & 0xf];
		} else {
			out += static_cast<char>(c);
		}
	}
	return out;
}

} // namespace

struct ServiceRuntime;

// One connected worker: its socket, decoder and result assembler.
class WorkerLink {
public:
	WorkerLink(Supervisor::Impl &sup, ServiceRuntime &svc, int fd, pid_t pid);
	~WorkerLink();
	WorkerLink(const WorkerLink &) = delete;
	WorkerLink &operator=(const WorkerLink &) = delete;

	Result<void> open();
	pid_t pid() const { return pid_; }
	// Process what the worker wrote before it exited (its last LOG lines
	// and results), without waiting for the loop to notice.  Returns false
	// when that ended the link (this object is then gone).
	bool drain();

private:
	static void onAlloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) noexcept;
	static void onRead(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) noexcept;
	bool received(const char *data, size_t len);
	Result<void> dispatch(const pme_proto_frame &f);
	Result<void> onHello(const pme_proto_frame &f);
	Result<void> onGroup(const pme_proto_frame &f);
	Result<void> onLog(const pme_proto_frame &f);
	Result<void> onExplain(const pme_proto_frame &f);
	Result<void> onBye(const pme_proto_frame &f);

	Supervisor::Impl &sup_;
	ServiceRuntime &svc_;
	int fd_;
	pid_t pid_;
	UvHandle<uv_pipe_t> pipe_;
	bool pipeOwnsFd_ = false;
	common::FrameDecoder decoder_{PME_PROTO_MAX_PAYLOAD};
	common::GroupResultAssembler assembler_;
	bool hello_ = false;
	bool bye_ = false;
	uint64_t frames_ = 0;
	size_t explainBytes_ = 0;
	std::unordered_map<std::string, Budget> results_; // group -> results it may send
	Budget logs_{kLogBurst, kLogPerSecond / 1000};
};

struct ServiceRuntime {
	Supervisor::Impl *sup = nullptr;
	// Its own copy: a reload replaces the configuration while the worker
	// of a service that is gone from it may still be running.
	std::shared_ptr<const common::ServiceConfig> config;
	// A reload changed the service: start the worker with this one once
	// the old worker has exited.  Or removed it: forget the service then.
	std::shared_ptr<const common::ServiceConfig> next;
	bool removed = false;
	bool awaitingReady = false;   // a START was sent, no WORKER_READY yet
	std::unique_ptr<WorkerLink> link;
	pid_t pid = -1;
	WorkerState state = WorkerState::Starting;
	UvHandle<uv_timer_t> restart;
	uint64_t backoffMs = kBackoffFirstMs;
	double startedAt = 0;
	bool stopping = false;        // a STOP was sent; its exit is expected
	uint64_t lastFrameMs = 0;     // uv_now() when the worker last sent a frame
	bool reported = false;        // the current worker delivered a result
	int earlyDeaths = 0;          // workers in a row that died before a result

	// A worker that sends nothing for this long is hung: every group
	// reports at least once per interval, and a cycle may last until the
	// group's timeout.  Three intervals leave room for a slow machine.
	uint64_t hangAfterMs() const
	{
		int64_t interval = INT64_MAX, timeout = 0;
		for (const auto &g : config->groups) {
			interval = std::min<int64_t>(interval, g.effectiveInterval.count());
			timeout = std::max<int64_t>(timeout, g.timeout.count());
		}
		if (interval == INT64_MAX)
			interval = 0;
		return static_cast<uint64_t>(3 * interval + timeout);
	}
};

struct Supervisor::Impl {
	uv_loop_t *loop;
	common::Config config;
	SpawnerHandle spawner;
	SupervisorOptions opts;
	MetricStore store;
	std::map<std::string, ServiceRuntime> services;
	std::vector<char> readBuf = std::vector<char>(64 * 1024); // WorkerLink::onAlloc
	struct Listener {
		std::string address;
		bool healthOnly;
		std::unique_ptr<HttpServer> server;
		bool passed = false;   // a socket from systemd, kept through reloads
	};
	std::vector<Listener> servers;
	// The counts of listeners a reload closed, so that the counters go on.
	uint64_t closedHttp[3] = {0, 0, 0};
	UvHandle<uv_poll_t> spawnerPoll;
	// Datagrams for the spawner not yet sent.  The supervisor never blocks
	// on the spawner: at start, or when a reload starts hundreds of
	// services, the spawner may be blocked itself sending WORKER_READY
	// into a queue only the loop empties, so what the socket does not
	// take now waits here, sent in order when it is writable again.
	std::deque<std::vector<uint8_t>> toSpawner;
	UvHandle<uv_signal_t> sigterm, sigint, sighup, sigchld;
	UvHandle<uv_timer_t> tick;
	UvHandle<uv_timer_t> watchdog;   // WATCHDOG=1 to systemd, when it asks
	UvHandle<uv_timer_t> shutdownTimer;
	bool shuttingDown = false;
	bool spawnerGone = false;
	int exitCode = 0;
	double onceDeadline = 0;
	uint64_t trimmedMs = 0;   // uv_now() of the last malloc_trim()
	// --explain: each group asked for that reported, and whether it
	// succeeded without a metric error; why the run cannot complete.
	std::map<std::string, bool> explained;
	std::string explainProblem;
	// SIGHUP: the configuration loaded and sent for the spawner to load
	// too, waiting for its RELOADED; its digest; retries when the two
	// read different files.
	std::unique_ptr<common::Config> reloading;
	std::string reloadingDigest;
	int reloadRetries = 0;

	Impl(uv_loop_t *l, common::Config c, SpawnerHandle s, SupervisorOptions o)
	    : loop(l), config(std::move(c)), spawner(std::move(s)), opts(o), store(config)
	{
		for (const auto &svc : config.services) {
			services[svc.name].config = std::make_shared<const common::ServiceConfig>(svc);
			services[svc.name].sup = this;
		}
	}

	Result<void> start();
	void sendToSpawner(uint8_t type, const std::string &service);
	Result<void> queueToSpawner(pme_proto_writer &w);
	void flushToSpawner();
	void startService(ServiceRuntime &svc);
	void stopService(ServiceRuntime &svc, const std::string &why);
	void scheduleRestart(ServiceRuntime &svc);
	void onSpawnerReadable();
	void onSpawnerMessage(const pme_proto_frame &f, std::vector<common::UniqueFd> &fds);
	void linkFailed(ServiceRuntime &svc, const std::string &why);
	void onTick();
	void trimHeap(uint64_t everyMs);
	void checkHung();
	void finishExplain(double now);
	void explainResult(const common::GroupResult &r);
	void explainFailed(const std::string &why);
	void reapSpawner();
	Result<std::unique_ptr<HttpServer>> listen(const std::string &address, bool healthOnly);
	void reload();
	void reloaded(const pme_proto_reloaded &m);
	void applyConfig(common::Config next);
	void relisten(const common::Config &next);
	void sendReloadStatus(bool done, const std::string &failure = "");
	std::string servingStatus() const;
	void startWatchdog();
	void serviceExited(ServiceRuntime &svc);
	void shutdown(int code);
	void finish();
	HttpResponse route(const HttpRequest &req, bool healthOnly);
};

// ---- WorkerLink -------------------------------------------------------------

namespace {

// What one worker may send: results for its own groups only, each within
// the group's max_series (and the value_on_error samples that stand in for
// a read refused for exceeding it).
common::GroupResultAssembler::Limits linkLimits(const common::ServiceConfig &svc)
{
	common::GroupResultAssembler::Limits l;
	for (const auto &g : svc.groups)
		l.groups[g.key] = g.maxSeries + g.metrics.size();
	return l;
}

} // namespace

WorkerLink::WorkerLink(Supervisor::Impl &sup, ServiceRuntime &svc, int fd, pid_t pid)
    : sup_(sup), svc_(svc), fd_(fd), pid_(pid), assembler_(linkLimits(*svc.config))
{
}

WorkerLink::~WorkerLink()
{
	pipe_.close();   // closes fd_ once the pipe owns it
	if (!pipeOwnsFd_ && fd_ >= 0)
		::close(fd_);
}

Result<void> WorkerLink::open()
{
	if (!decoder_.ok())
		return fail("out of memory");
	uv_pipe_init(sup_.loop, pipe_.get(), 0);
	pipe_.initialized();
	pipe_.get()->data = this;
	int r = uv_pipe_open(pipe_.get(), fd_);
	pipeOwnsFd_ = r == 0;
	if (r == 0)
		r = uv_read_start(reinterpret_cast<uv_stream_t *>(pipe_.get()), onAlloc, onRead);
	if (r != 0)
		return fail(std::string("worker socket: ") + uv_strerror(r));
	return {};
}

void WorkerLink::onAlloc(uv_handle_t *h, size_t, uv_buf_t *buf) noexcept
{
	auto *self = static_cast<WorkerLink *>(h->data);
	if (self == nullptr) {
		*buf = uv_buf_init(nullptr, 0);
		return;
	}
	// One buffer for every worker: libuv calls onRead right after onAlloc,
	// and received() copies what it keeps into the link's decoder.
	*buf = uv_buf_init(self->sup_.readBuf.data(),
	    static_cast<unsigned>(self->sup_.readBuf.size()));
}

void WorkerLink::onRead(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) noexcept
{
	auto *self = static_cast<WorkerLink *>(s->data);
	if (self == nullptr || n == 0)
		return;
	ServiceRuntime &svc = self->svc_;
	Supervisor::Impl &sup = self->sup_;
	if (n < 0) {
		std::string why;
		if (n != UV_EOF)
			why = std::string("reading its socket: ") + uv_strerror(static_cast<int>(n));
		else if (pme_proto_decoder_pending(self->decoder_.get()) != 0)
			why = "protocol error: truncated frame at end of stream";
		// A plain EOF: the worker is exiting; WORKER_EXITED tells why.
		if (!why.empty())
			sup.linkFailed(svc, why);
		else
			svc.link.reset();
		return;
	}
	try {
		self->received(buf->base, static_cast<size_t>(n));
	} catch (const std::bad_alloc &) {
		sup.linkFailed(svc, "out of memory decoding its frames");
	}
}

bool WorkerLink::drain()
{
	// Not the shared read buffer: a drain may come while another link's
	// onRead is still working through it.
	char chunk[16384];
	for (;;) {
		ssize_t n = recv(fd_, chunk, sizeof(chunk), MSG_DONTWAIT);
		if (n <= 0)
			return true;
		if (!received(chunk, static_cast<size_t>(n)))
			return false;
	}
}

// False when the link failed and was destroyed.
bool WorkerLink::received(const char *data, size_t len)
{
	ServiceRuntime &svc = svc_;
	Supervisor::Impl &sup = sup_;
	svc.lastFrameMs = uv_now(sup.loop);
	while (len > 0) {
		size_t took = pme_proto_decoder_feed(decoder_.get(), data, len);
		data += took;
		len -= took;
		uint64_t frames = 0;
		pme_proto_frame f;
		int r;
		while ((r = pme_proto_decoder_next(decoder_.get(), &f)) == 1) {
			frames++;
			auto ok = dispatch(f);
			if (!ok) {
				sup.store.countFrames(svc.config->name, frames);
				// Destroys this link: return at once.
				sup.linkFailed(svc, "protocol error: " + ok.error().message);
				return false;
			}
		}
		sup.store.countFrames(svc.config->name, frames);
		if (r < 0) {
			sup.linkFailed(svc, std::string("protocol error: ") + pme_proto_strerror(r));
			return false;
		}
		if (took == 0 && len > 0) {
			sup.linkFailed(svc, "protocol error: decoder made no progress");
			return false;
		}
	}
	return true;
}

Result<void> WorkerLink::dispatch(const pme_proto_frame &f)
{
	using Handler = Result<void> (WorkerLink::*)(const pme_proto_frame &);
	static const std::map<uint8_t, Handler> table = {
		{PME_MSG_HELLO, &WorkerLink::onHello},
		{PME_MSG_GROUP_BEGIN, &WorkerLink::onGroup},
		{PME_MSG_GROUP_DATA, &WorkerLink::onGroup},
		{PME_MSG_GROUP_END, &WorkerLink::onGroup},
		{PME_MSG_LOG, &WorkerLink::onLog},
		{PME_MSG_EXPLAIN, &WorkerLink::onExplain},
		{PME_MSG_BYE, &WorkerLink::onBye},
	};
	frames_++;
	auto it = table.find(f.type);
	if (it == table.end())
		return fail(log::format("message type 0x%02x is not one a worker sends", f.type));
	if (!hello_ && f.type != PME_MSG_HELLO && f.type != PME_MSG_LOG)
		return fail("a frame came before HELLO");
	if (bye_)
		return fail("a frame came after BYE");
	return (this->*(it->second))(f);
}

Result<void> WorkerLink::onHello(const pme_proto_frame &f)
{
	// The decoder refuses any protocol version but ours.
	pme_proto_hello m;
	int r = pme_proto_decode_hello(&f, &m);
	if (r != 0)
		return fail(std::string("HELLO: ") + pme_proto_strerror(r));
	if (hello_)
		return fail("a second HELLO");
	if (static_cast<pid_t>(m.pid) != pid_)
		return fail("HELLO: pid " + std::to_string(m.pid) + ", but the spawner started pid " +
		    std::to_string(pid_));
	if (common::toString(m.service) != svc_.config->name)
		return fail("HELLO: service '" + sanitize(common::toString(m.service), 64) +
		    "', expected '" + svc_.config->name + "'");
	hello_ = true;
	svc_.state = WorkerState::Running;
	sup_.store.setWorkerState(svc_.config->name, WorkerState::Running, pid_, "", wallNow());
	log::debug("worker[%s]: running as uid %u gid %u (pid %d)", svc_.config->name.c_str(),
	    m.uid, m.gid, static_cast<int>(pid_));
	return {};
}

Result<void> WorkerLink::onGroup(const pme_proto_frame &f)
{
	auto r = assembler_.feed(f);
	if (!r)
		return tl::unexpected(r.error());
	if (!*r)
		return {};
	auto applied = sup_.store.apply(svc_.config->name, **r, wallNow());
	if (!applied)
		return fail("group '" + sanitize((*r)->group, 64) + "': " + applied.error().message);
	const std::string &group = (*r)->group;
	auto budget = results_.find(group);
	if (budget == results_.end()) {
		double intervalMs = 1000;
		for (const auto &g : svc_.config->groups)
			if (g.key == group)
				intervalMs = std::max<double>(1, static_cast<double>(g.effectiveInterval.count()));
		budget = results_.emplace(group, Budget(kResultBurst, 1 / intervalMs)).first;
	}
	if (!budget->second.take(uv_now(sup_.loop)))
		return fail("group '" + group + "' sent results faster than its interval allows");
	if (!svc_.reported) {
		svc_.reported = true;
		svc_.earlyDeaths = 0;
	}
	if (sup_.opts.explain)
		sup_.explainResult(**r);
	// A large result, decoded, is tens of MiB that malloc keeps once freed;
	// given back now, they do not stay resident until the next tick.
	size_t series = 0;
	for (const auto &fam : (*r)->families)
		series += fam.samples.size();
	if (series >= kTrimAfterSeries) {
		r->reset();
		sup_.trimHeap(kTrimLargeEveryMs);
	}
	return {};
}

Result<void> WorkerLink::onExplain(const pme_proto_frame &f)
{
	if (!sup_.opts.explain)
		return fail("EXPLAIN, which a worker sends only under pmed --explain");
	pme_proto_explain m;
	int r = pme_proto_decode_explain(&f, &m);
	if (r != 0)
		return fail(std::string("EXPLAIN: ") + pme_proto_strerror(r));
	explainBytes_ += m.text.len;
	if (explainBytes_ > kMaxExplainBytes)
		return fail("EXPLAIN: more than " + std::to_string(kMaxExplainBytes) +
		    " bytes of report");
	std::string text = terminalText({m.text.ptr, m.text.len});
	fwrite(text.data(), 1, text.size(), stdout);
	fflush(stdout);
	return {};
}

Result<void> WorkerLink::onLog(const pme_proto_frame &f)
{
	pme_proto_log m;
	int r = pme_proto_decode_log(&f, &m);
	if (r != 0)
		return fail(std::string("LOG: ") + pme_proto_strerror(r));
	if (!logs_.take(uv_now(sup_.loop)))
		return fail(log::format("more LOG lines than %.0f at once or %.0f a second",
		    kLogBurst, kLogPerSecond));
	int level = std::clamp<int>(m.priority, log::Error, log::Debug);
	log::relay("worker[" + svc_.config->name + "]", level,
	    sanitize(common::toString(m.message), 2048));
	return {};
}

Result<void> WorkerLink::onBye(const pme_proto_frame &f)
{
	int r = pme_proto_decode_empty(&f);
	if (r != 0)
		return fail(std::string("BYE: ") + pme_proto_strerror(r));
	bye_ = true;
	return {};
}

// ---- Supervisor::Impl -------------------------------------------------------

namespace {

// Every address to serve on, and whether it serves /health alone.
// With sockets from systemd, those stand for exporter.listen; pmed still
// opens health_listen itself.
std::vector<std::pair<std::string, bool>> listenersOf(const common::Config &config,
    bool socketActivated)
{
	std::vector<std::pair<std::string, bool>> out;
	for (const auto &a : config.exporter.listen)
		if (!socketActivated)
			out.emplace_back(a, false);
	if (!config.exporter.healthListen.empty())
		out.emplace_back(config.exporter.healthListen, true);
	return out;
}

} // namespace

Result<std::unique_ptr<HttpServer>> Supervisor::Impl::listen(const std::string &address,
    bool healthOnly)
{
	auto server = std::make_unique<HttpServer>(loop,
	    [this, healthOnly](const HttpRequest &req) { return route(req, healthOnly); });
	auto r = server->listen(address);
	if (!r)
		return fail("listen " + address + ": " + r.error().message);
	log::info("listening on %s%s", address.c_str(), healthOnly ? " (health only)" : "");
	return server;
}

void Supervisor::Impl::sendToSpawner(uint8_t type, const std::string &service)
{
	common::FrameWriter w;
	pme_proto_encode_name(w.get(), type, service.data(), service.size());
	if (auto r = queueToSpawner(*w); !r)
		log::warnx("to spawner: %s", r.error().message.c_str());
}

Result<void> Supervisor::Impl::queueToSpawner(pme_proto_writer &w)
{
	if (spawnerGone || !spawner.control)
		return fail("the spawner is gone");
	if (int rc = pme_proto_writer_finish(&w); rc != 0)
		return fail(std::string("encoding frame: ") + pme_proto_strerror(rc));
	toSpawner.emplace_back(w.buf, w.buf + w.len);
	flushToSpawner();
	return {};
}

void Supervisor::Impl::flushToSpawner()
{
	while (!toSpawner.empty() && !spawnerGone) {
		const auto &d = toSpawner.front();
		ssize_t n = send(spawner.control.get(), d.data(), d.size(),
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		// A socket error means the spawner is gone: the read side
		// sees it and shuts pmed down.
		if (n < 0)
			log::warnx("to spawner: %s", common::errnoMessage("send").c_str());
		toSpawner.pop_front();
	}
	if (spawnerPoll && spawnerPoll.isInitialized() && !spawnerGone)
		uv_poll_start(spawnerPoll.get(), UV_READABLE | UV_DISCONNECT |
		    (toSpawner.empty() ? 0 : UV_WRITABLE), [](uv_poll_t *p, int, int events) noexcept {
			auto *self = static_cast<Impl *>(p->data);
			if (self == nullptr)
				return;
			if (events & UV_WRITABLE)
				self->flushToSpawner();
			if (events & (UV_READABLE | UV_DISCONNECT))
				self->onSpawnerReadable();
		});
}

void Supervisor::Impl::startService(ServiceRuntime &svc)
{
	svc.state = WorkerState::Starting;
	svc.stopping = false;
	svc.awaitingReady = true;
	svc.reported = false;
	svc.startedAt = wallNow();
	store.setWorkerState(svc.config->name, WorkerState::Starting, -1, "", svc.startedAt);
	sendToSpawner(PME_MSG_START, svc.config->name);
}

void Supervisor::Impl::stopService(ServiceRuntime &svc, const std::string &why)
{
	svc.link.reset();
	if (svc.pid > 0 && !svc.stopping) {
		svc.stopping = true;
		sendToSpawner(PME_MSG_STOP, svc.config->name);
	}
	if (!why.empty())
		log::warnx("worker[%s]: %s; stopping it", svc.config->name.c_str(), why.c_str());
}

void Supervisor::Impl::linkFailed(ServiceRuntime &svc, const std::string &why)
{
	if (opts.explain)
		explainFailed("the link to its worker failed: " + why);
	if (why.rfind("protocol error", 0) == 0)
		store.countProtocolError(svc.config->name);
	stopService(svc, why);
	svc.state = WorkerState::Restarting;
	store.setWorkerState(svc.config->name, WorkerState::Restarting, svc.pid, why, wallNow());
}

void Supervisor::Impl::scheduleRestart(ServiceRuntime &svc)
{
	if (shuttingDown || opts.once || opts.explain)
		return;
	double ran = wallNow() - svc.startedAt;
	if (ran >= kHealthyAfter && svc.reported)
		svc.backoffMs = kBackoffFirstMs;
	uint64_t delay = svc.backoffMs;
	svc.backoffMs = std::min(svc.backoffMs * 2, kBackoffMaxMs);
	if (!svc.restart.isInitialized()) {
		uv_timer_init(loop, svc.restart.get());
		svc.restart.initialized();
		svc.restart.get()->data = &svc;
	}
	uv_timer_start(svc.restart.get(), [](uv_timer_t *t) noexcept {
		auto *s = static_cast<ServiceRuntime *>(t->data);
		if (s != nullptr && !s->sup->shuttingDown)
			s->sup->startService(*s);
	}, delay, 0);
	store.countRestart(svc.config->name);
	log::info("worker[%s]: restarting in %.0fs", svc.config->name.c_str(),
	    static_cast<double>(delay) / 1000);
}

// ---- Reload ------------------------------------------------------------------
//
// SIGHUP: the supervisor loads and checks the file, then asks the spawner
// to do the same (it trusts only its own copy: SPEC §1, invariant 3).  Only
// when the spawner answers RELOADED with the digest of the same
// configuration is the new one applied; an error on either side keeps the
// old one running, every error logged with its file:line:column.  Applying
// compares each service's definition as its worker would receive it: a
// service whose definition is the same keeps its worker, untouched; a
// changed one has its worker stopped and started again with the new
// definition; a new one is started; a removed one is stopped.  The store
// keeps every counter and series the new configuration still has.

void Supervisor::Impl::reload()
{
	if (reloading) {
		log::warnx("SIGHUP: a reload is already in progress; ignored");
		return;
	}
	// Not again when the file changed under the first read: systemd
	// counts one reload.
	if (reloadRetries == 0)
		sendReloadStatus(false);
	common::LoadNotes notes;
	auto loaded = common::loadConfigFile(opts.configPath, &notes);
	for (const auto &w : notes.warnings)
		log::warnx("reload: %s", w.str().c_str());
	if (!loaded) {
		for (const auto &e : loaded.error())
			log::warnx("reload: %s", e.str().c_str());
		log::warnx("reload: %s: %zu error%s; still running the previous configuration",
		    opts.configPath.c_str(), loaded.error().size(),
		    loaded.error().size() == 1 ? "" : "s");
		store.configReloaded(false, wallNow());
		reloadRetries = 0;
		sendReloadStatus(true, log::format("%zu error%s, the first: %s",
		    loaded.error().size(), loaded.error().size() == 1 ? "" : "s",
		    loaded.error().front().str().c_str()));
		return;
	}
	reloading = std::make_unique<common::Config>(std::move(*loaded));
	reloadingDigest = common::configDigest(*reloading);
	common::FrameWriter w;
	pme_proto_writer_begin(w.get(), PME_MSG_RELOAD);
	auto sent = queueToSpawner(*w);
	if (!sent) {
		log::warnx("reload: %s; still running the previous configuration",
		    sent.error().message.c_str());
		reloading.reset();
		reloadRetries = 0;
		store.configReloaded(false, wallNow());
		sendReloadStatus(true, sent.error().message);
	}
}

// systemd's reload protocol: RELOADING=1 when it starts, with the time
// (systemd 253's Type=notify-reload requires it, an older one ignores
// it), and READY=1 when done, whether the new configuration was applied or
// not: pmed serves either way.  STATUS= says which, in systemctl status.
void Supervisor::Impl::sendReloadStatus(bool done, const std::string &failure)
{
#if PME_HAVE_SYSTEMD
	std::string msg;
	if (!done) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		msg = log::format("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
		    static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL +
		    static_cast<unsigned long long>(ts.tv_nsec) / 1000, opts.configPath.c_str());
	} else if (!failure.empty()) {
		msg = "READY=1\nSTATUS=reload failed: " + sanitize(failure, 400) +
		    "; running the previous configuration";
	} else {
		msg = "READY=1\nSTATUS=" + servingStatus();
	}
	sd_notify(0, msg.c_str());
#else
	(void)done;
	(void)failure;
#endif
}

// "serving 3 services on 127.0.0.1:10064, 127.0.0.1:10065 (health only)"
std::string Supervisor::Impl::servingStatus() const
{
	std::string where;
	for (const auto &l : servers)
		where += (where.empty() ? "" : ", ") + l.address +
		    (l.healthOnly ? " (health only)" : l.passed ? " (from systemd)" : "");
	return log::format("serving %zu service%s on %s", config.services.size(),
	    config.services.size() == 1 ? "" : "s", where.c_str());
}

// WATCHDOG=1 from this loop, at half the interval systemd asks for
// (WatchdogSec=): a loop that stalls, and so stops answering scrapes, has
// pmed killed and restarted.  The spawner needs no watchdog of its own:
// pmed stops when it dies, and the workers are watched by pmed.
void Supervisor::Impl::startWatchdog()
{
#if PME_HAVE_SYSTEMD
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return;
	uint64_t everyMs = std::max<uint64_t>(usec / 2000, 1);
	uv_timer_init(loop, watchdog.get());
	watchdog.initialized();
	watchdog.get()->data = this;
	uv_timer_start(watchdog.get(), [](uv_timer_t *t) noexcept {
		if (t->data != nullptr)
			sd_notify(0, "WATCHDOG=1");
	}, everyMs, everyMs);
	log::debug("systemd watchdog: every %llu ms", static_cast<unsigned long long>(everyMs));
#endif
}

void Supervisor::Impl::reloaded(const pme_proto_reloaded &m)
{
	if (!reloading) {
		log::warnx("protocol error: RELOADED from the spawner, which was not asked");
		return;
	}
	auto next = std::move(reloading);
	std::string message = sanitize(common::toString(m.message), 4096);
	if (!m.ok) {
		log::warnx("reload: the spawner refused the configuration: %s; still running "
		    "the previous configuration", message.c_str());
		reloadRetries = 0;
		store.configReloaded(false, wallNow());
		sendReloadStatus(true, "the spawner refused the configuration: " + message);
		return;
	}
	if (message != reloadingDigest) {
		// The file changed between the two reads.  Applying either
		// would leave the two processes on different configurations.
		if (++reloadRetries <= 3) {
			log::warnx("reload: %s changed while it was being read; reading it again",
			    opts.configPath.c_str());
			reload();
			return;
		}
		log::warnx("reload: %s keeps changing; the spawner has the newest, pmed "
		    "the previous configuration: send SIGHUP again once it is written",
		    opts.configPath.c_str());
		reloadRetries = 0;
		store.configReloaded(false, wallNow());
		sendReloadStatus(true, opts.configPath + " kept changing while it was read");
		return;
	}
	reloadRetries = 0;
	applyConfig(std::move(*next));
	store.configReloaded(true, wallNow());
	sendReloadStatus(true);
}

void Supervisor::Impl::applyConfig(common::Config next)
{
	relisten(next);
	if (next.exporter.user != config.exporter.user)
		log::warnx("reload: exporter.user changed from '%s' to '%s': that takes a restart "
		    "of pmed", config.exporter.user.c_str(), next.exporter.user.c_str());

	// Decide against the old configuration, then switch.
	enum class Change { Kept, Changed, Added };
	std::vector<std::pair<Change, std::shared_ptr<const common::ServiceConfig>>> plan;
	std::set<std::string> present;
	for (const auto &sc : next.services) {
		auto cfg = std::make_shared<const common::ServiceConfig>(sc);
		present.insert(sc.name);
		auto it = services.find(sc.name);
		if (it == services.end()) {
			plan.emplace_back(Change::Added, cfg);
			continue;
		}
		const ServiceRuntime &svc = it->second;
		const common::ServiceConfig &now = svc.next ? *svc.next : *svc.config;
		bool same = !svc.removed && common::writeServiceDocument(config, now) ==
		    common::writeServiceDocument(next, sc);
		plan.emplace_back(same ? Change::Kept : Change::Changed, cfg);
	}
	config = std::move(next);
	store.reconfigure(config);

	size_t kept = 0, changed = 0, added = 0, removed = 0;
	for (auto &[change, cfg] : plan) {
		ServiceRuntime &svc = services[cfg->name];
		switch (change) {
		case Change::Added:
			added++;
			svc.sup = this;
			svc.config = cfg;
			log::info("reload: service %s added", cfg->name.c_str());
			startService(svc);
			break;
		case Change::Kept:
			kept++;
			(svc.next ? svc.next : svc.config) = cfg;
			break;
		case Change::Changed:
			changed++;
			svc.removed = false;
			log::info("reload: service %s changed; restarting its worker", cfg->name.c_str());
			svc.next = cfg;
			if (svc.pid > 0)
				stopService(svc, "");
			else if (!svc.awaitingReady)
				serviceExited(svc);
			// else: WORKER_READY or START_FAILED comes, and acts on next
			break;
		}
	}
	std::vector<std::string> gone;
	for (auto &[name, svc] : services) {
		if (present.contains(name) || svc.removed)
			continue;
		removed++;
		log::info("reload: service %s removed", name.c_str());
		svc.removed = true;
		svc.next.reset();
		if (svc.pid > 0)
			stopService(svc, "");
		else if (!svc.awaitingReady)
			gone.push_back(name);
	}
	for (const auto &name : gone)
		services.erase(name);
	log::info("reload: %s: %zu service%s unchanged, %zu changed, %zu added, %zu removed",
	    opts.configPath.c_str(), kept, kept == 1 ? "" : "s", changed, added, removed);
}

// The worker of a service that a reload changed or removed is gone (or was
// never started): start the new definition, or forget the service.
void Supervisor::Impl::serviceExited(ServiceRuntime &svc)
{
	if (svc.removed) {
		services.erase(svc.config->name);
		return;
	}
	svc.config = std::move(svc.next);
	svc.next.reset();
	if (svc.restart.isInitialized() && svc.restart.get() != nullptr)
		uv_timer_stop(svc.restart.get());   // a restart was pending: start now
	svc.backoffMs = kBackoffFirstMs;
	svc.earlyDeaths = 0;
	startService(svc);
}

// New listen addresses are opened before old ones are closed, and an
// address in both keeps its socket (and its connections).  If one cannot be
// opened, pmed goes on serving where it did: the rest of the reload applies.
// Sockets from systemd are kept whatever the file says: pmed could not
// open them again.
void Supervisor::Impl::relisten(const common::Config &next)
{
	bool socketActivated = !opts.listenFds.empty();
	if (socketActivated && next.exporter.listen != config.exporter.listen)
		log::warnx("reload: exporter.listen changed, but pmed serves on the sockets systemd "
		    "passed: change ListenStream= in pmed.socket and restart both instead");
	auto wanted = listenersOf(next, socketActivated);
	auto current = [&](const std::pair<std::string, bool> &w) {
		return std::find_if(servers.begin(), servers.end(), [&](const Listener &l) {
			return !l.passed && l.address == w.first && l.healthOnly == w.second;
		});
	};
	std::vector<Listener> opened;
	for (const auto &w : wanted) {
		if (current(w) != servers.end())
			continue;
		auto server = listen(w.first, w.second);
		if (!server) {
			log::warnx("reload: %s; still listening where pmed did",
			    server.error().message.c_str());
			for (auto &l : opened)
				l.server->close();
			return;
		}
		opened.push_back({w.first, w.second, std::move(*server)});
	}
	std::vector<Listener> now;
	for (auto it = servers.begin(); it != servers.end();) {
		if (it->passed) {
			now.push_back(std::move(*it));
			it = servers.erase(it);
		} else {
			++it;
		}
	}
	for (const auto &w : wanted) {
		auto it = current(w);
		if (it != servers.end()) {
			now.push_back(std::move(*it));
			servers.erase(it);
		} else {
			auto o = std::find_if(opened.begin(), opened.end(), [&](const Listener &l) {
				return l.address == w.first && l.healthOnly == w.second;
			});
			now.push_back(std::move(*o));
			opened.erase(o);
		}
	}
	for (auto &l : servers) {
		log::info("no longer listening on %s", l.address.c_str());
		closedHttp[0] += l.server->connectionsEvicted();
		closedHttp[1] += l.server->connectionsRefused();
		closedHttp[2] += l.server->requestsTimedOut();
		l.server->close();
	}
	servers = std::move(now);
}

void Supervisor::Impl::onSpawnerReadable()
{
	for (;;) {
		std::vector<uint8_t> buf;
		std::vector<common::UniqueFd> fds;
		ssize_t peek = recv(spawner.control.get(), nullptr, 0, MSG_DONTWAIT | MSG_PEEK);
		if (peek < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		auto n = common::recvDatagram(spawner.control.get(), buf, fds);
		if (!n || *n == 0) {
			if (!shuttingDown)
				log::warnx("the spawner closed its socket%s%s",
				    n ? "" : ": ", n ? "" : n.error().message.c_str());
			spawnerGone = true;
			spawnerPoll.close();
			if (!shuttingDown)
				shutdown(EX_SOFTWARE);
			return;
		}
		common::FrameDecoder dec(PME_PROTO_MAX_PAYLOAD);
		pme_proto_frame f;
		size_t took = pme_proto_decoder_feed(dec.get(), buf.data(), buf.size());
		int r = pme_proto_decoder_next(dec.get(), &f);
		if (r != 1 || took != buf.size() || pme_proto_decoder_pending(dec.get()) != 0) {
			log::warnx("protocol error: from the spawner: %s",
			    r < 0 ? pme_proto_strerror(r) : "incomplete datagram");
			continue;
		}
		onSpawnerMessage(f, fds);
	}
}

void Supervisor::Impl::onSpawnerMessage(const pme_proto_frame &f,
    std::vector<common::UniqueFd> &fds)
{
	int r = 0;
	switch (f.type) {
	case PME_MSG_WORKER_READY: {
		pme_proto_worker_ready m;
		if ((r = pme_proto_decode_worker_ready(&f, &m)) != 0)
			break;
		auto it = services.find(common::toString(m.service));
		if (it == services.end() || fds.size() != 1) {
			log::warnx("protocol error: WORKER_READY for '%s' with %zu descriptors",
			    sanitize(common::toString(m.service), 64).c_str(), fds.size());
			return;
		}
		ServiceRuntime &svc = it->second;
		svc.awaitingReady = false;
		svc.pid = static_cast<pid_t>(m.pid);
		svc.lastFrameMs = uv_now(loop);
		svc.link = std::make_unique<WorkerLink>(*this, svc, fds[0].release(), svc.pid);
		auto opened = svc.link->open();
		if (!opened)
			linkFailed(svc, opened.error().message);
		else if (shuttingDown || svc.next || svc.removed)
			stopService(svc, ""); // started from the configuration before a reload
		return;
	}
	case PME_MSG_WORKER_EXITED: {
		pme_proto_worker_exited m;
		if ((r = pme_proto_decode_worker_exited(&f, &m)) != 0)
			break;
		auto it = services.find(common::toString(m.service));
		if (it == services.end())
			return;
		ServiceRuntime &svc = it->second;
		std::string how = m.signal != 0
		    ? log::format("was killed by signal %d (%s)", m.signal, strsignal(m.signal))
		    : log::format("exited with status %d", m.exit_code);
		if (svc.link && svc.link->drain())
			svc.link.reset();
		svc.pid = -1;
		bool expected = svc.stopping || shuttingDown;
		svc.stopping = false;
		if (expected) {
			log::debug("worker[%s] (pid %u) %s", svc.config->name.c_str(), m.pid, how.c_str());
			if (svc.removed || svc.next) {
				serviceExited(svc); // may erase it
				return;
			}
		} else {
			const char *hint = m.exit_code == EX_NOPERM ? " (its self check failed)"
			    : m.exit_code == EX_CONFIG ? " (it rejected its configuration)" : "";
			log::warnx("worker[%s] (pid %u) %s%s", svc.config->name.c_str(), m.pid,
			    how.c_str(), hint);
		}
		// A worker that never delivered a result, again and again, will
		// not get better by being restarted every few seconds.
		svc.earlyDeaths = svc.reported ? 0 : svc.earlyDeaths + 1;
		bool failed = svc.earlyDeaths >= kEarlyDeathsFailed;
		svc.state = failed ? WorkerState::Failed : WorkerState::Restarting;
		std::string reason = "worker " + how;
		if (failed) {
			reason = log::format("%d workers in a row died before their first result, "
			    "the last one %s", svc.earlyDeaths, how.c_str());
			svc.backoffMs = kBackoffMaxMs;
			if (svc.earlyDeaths == kEarlyDeathsFailed && !shuttingDown)
				log::warnx("worker[%s]: %s; marked failed, retrying every %.0f minutes",
				    svc.config->name.c_str(), reason.c_str(),
				    static_cast<double>(kBackoffMaxMs) / 60000);
		}
		store.setWorkerState(svc.config->name, svc.state, -1, reason, wallNow());
		if (opts.explain && !expected)
			explainFailed("its worker (pid " + std::to_string(m.pid) + ") " + how +
			    (m.exit_code == EX_NOPERM ? " (its self check failed)" :
			    m.exit_code == EX_CONFIG ? " (it rejected its configuration)" : ""));
		scheduleRestart(svc);
		return;
	}
	case PME_MSG_START_FAILED: {
		pme_proto_start_failed m;
		if ((r = pme_proto_decode_start_failed(&f, &m)) != 0)
			break;
		auto it = services.find(common::toString(m.service));
		if (it == services.end())
			return;
		ServiceRuntime &svc = it->second;
		svc.awaitingReady = false;
		if (svc.removed || svc.next) {
			serviceExited(svc); // it was refused with the old configuration
			return;
		}
		std::string reason = sanitize(common::toString(m.reason), 1024);
		log::warnx("service '%s' not started: %s", it->first.c_str(), reason.c_str());
		it->second.state = WorkerState::Refused;
		store.setWorkerState(it->first, WorkerState::Refused, -1, reason, wallNow());
		if (opts.explain)
			explainFailed("its worker was not started: " + reason);
		return;
	}
	case PME_MSG_RELOADED: {
		pme_proto_reloaded m;
		if ((r = pme_proto_decode_reloaded(&f, &m)) != 0)
			break;
		reloaded(m);
		return;
	}
	default:
		log::warnx("protocol error: message type 0x%02x from the spawner", f.type);
		return;
	}
	log::warnx("protocol error: from the spawner: %s", pme_proto_strerror(r));
}

void Supervisor::Impl::explainResult(const common::GroupResult &r)
{
	const auto &want = opts.explainGroups;
	if (std::find(want.begin(), want.end(), r.group) == want.end())
		return;
	// Only a group's first cycle is explained; a later one changes nothing.
	explained.emplace(r.group, r.ok && r.metricErrors.empty());
}

void Supervisor::Impl::explainFailed(const std::string &why)
{
	if (explainProblem.empty() && explained.size() < opts.explainGroups.size())
		explainProblem = why;
}

// Called from the tick, never from a link's callback: shutting down
// destroys the links.
void Supervisor::Impl::finishExplain(double now)
{
	bool done = explained.size() == opts.explainGroups.size();
	if (!done && explainProblem.empty() && now < onceDeadline)
		return;
	if (!done) {
		std::string missing;
		for (const auto &g : opts.explainGroups)
			if (!explained.contains(g))
				missing += (missing.empty() ? "" : ", ") + g;
		std::string why = !explainProblem.empty() ? explainProblem : log::format(
		    "no report within %.0fs (the longest timeout, plus 10s)",
		    static_cast<double>(opts.onceTimeoutMs) / 1000);
		std::printf("== %s: not explained ==\nservice %s: %s\ngroups without a report: %s\n",
		    opts.explainService.c_str(), opts.explainService.c_str(),
		    terminalText(why).c_str(), missing.c_str());
		fflush(stdout);
	}
	if (done && opts.explainGroups.size() > 1) {
		std::string summary;
		for (const auto &g : opts.explainGroups)
			summary += (summary.empty() ? "" : ", ") + g +
			    (explained[g] ? " ok" : " FAILED");
		std::printf("== %s: %s ==\n", opts.explainService.c_str(), summary.c_str());
		fflush(stdout);
	}
	bool ok = done && std::all_of(explained.begin(), explained.end(),
	    [](const auto &e) { return e.second; });
	shutdown(ok ? 0 : kExitExplainFailed);
}

// A worker that stopped sending frames (deadlocked, stopped, spinning) is
// stopped like one that broke the protocol, and restarted.
void Supervisor::Impl::checkHung()
{
	uint64_t nowMs = uv_now(loop);
	for (auto &[name, svc] : services) {
		if (!svc.link || svc.stopping)
			continue;
		uint64_t limit = svc.hangAfterMs();
		if (nowMs - svc.lastFrameMs <= limit)
			continue;
		linkFailed(svc, log::format("hung: no frame for %.0fs (3 times its shortest "
		    "interval plus its longest timeout)", static_cast<double>(nowMs - svc.lastFrameMs) /
		    1000));
	}
}

// Free heap pages are given back to the kernel, at most once every everyMs:
// what a reload or a large result freed would otherwise stay resident.
void Supervisor::Impl::trimHeap(uint64_t everyMs)
{
	if (uint64_t nowMs = uv_now(loop); nowMs - trimmedMs >= everyMs) {
		malloc_trim(0);
		trimmedMs = nowMs;
	}
}

void Supervisor::Impl::onTick()
{
	double now = wallNow();
	store.expire(now);
	if (!opts.once && !opts.explain) {
		checkHung();
		trimHeap(kTrimEveryMs);
	}
	if (opts.explain) {
		finishExplain(now);
		return;
	}
	if (!opts.once)
		return;
	bool done = store.allGroupsReported();
	if (!done && now < onceDeadline)
		return;
	auto body = store.exposition();
	fwrite(body->data(), 1, body->size(), stdout);
	fflush(stdout);
	if (!done)
		log::warnx("--once: not every group reported within %.0fs",
		    static_cast<double>(opts.onceTimeoutMs) / 1000);
	bool refused = false;
	for (const auto &[name, s] : services)
		refused = refused || s.state == WorkerState::Refused;
	shutdown(done && !refused ? 0 : EX_UNAVAILABLE);
}

void Supervisor::Impl::reapSpawner()
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != spawner.pid)
			continue;
		spawner.pid = -1;
		spawnerGone = true;
		if (!shuttingDown) {
			log::warnx("the spawner (pid %d) exited unexpectedly (%s %d); stopping",
			    static_cast<int>(pid), WIFSIGNALED(status) ? "signal" : "status",
			    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			shutdown(EX_SOFTWARE);
		}
	}
	if (shuttingDown && spawner.pid < 0)
		finish();
}

// Stop serving, let the spawner take every worker down, then leave the loop.
void Supervisor::Impl::shutdown(int code)
{
	if (shuttingDown)
		return;
	shuttingDown = true;
	exitCode = code;
#if PME_HAVE_SYSTEMD
	sd_notify(0, "STOPPING=1\nSTATUS=stopping the workers");
#endif
	for (auto &l : servers)
		l.server->close();
	tick.close();
	watchdog.close();
	for (auto &[name, svc] : services) {
		svc.link.reset();
		svc.restart.close();
	}
	// EOF on its control socket makes the spawner stop every worker and exit.
	spawnerPoll.close();
	spawner.control.reset();
	if (spawner.pid < 0) {
		finish();
		return;
	}
	uv_timer_init(loop, shutdownTimer.get());
	shutdownTimer.initialized();
	shutdownTimer.get()->data = this;
	uv_timer_start(shutdownTimer.get(), [](uv_timer_t *t) noexcept {
		auto *self = static_cast<Impl *>(t->data);
		if (self == nullptr || self->spawner.pid < 0)
			return;
		log::warnx("the spawner did not exit; killing it");
		kill(self->spawner.pid, SIGKILL);
	}, 10000, 0);
}

void Supervisor::Impl::finish()
{
	shutdownTimer.close();
	sigterm.close();
	sigint.close();
	sighup.close();
	sigchld.close();
	servers.clear();
}

HttpResponse Supervisor::Impl::route(const HttpRequest &req, bool healthOnly)
{
	HttpResponse res;
	auto text = [&](int status, std::string body) {
		res.status = status;
		res.body = std::make_shared<const std::string>(std::move(body));
	};
	if (req.path == "/metrics" && !healthOnly) {
		// A header sent more than once is one comma-separated list
		// (RFC 9110 §5.3).
		auto joined = [&](const std::string &name) {
			std::string all;
			for (const auto &[n, v] : req.headers) {
				if (n != name)
					continue;
				if (!all.empty())
					all += ',';
				all += v;
			}
			return all;
		};
		Format format = negotiateFormat(joined("accept"));
		bool gzip = acceptsGzip(joined("accept-encoding"));
		store.countScrape(format);
		uint64_t evicted = 0, refused = 0, timedOut = 0;
		for (const auto &l : servers) {
			evicted += l.server->connectionsEvicted();
			refused += l.server->connectionsRefused();
			timedOut += l.server->requestsTimedOut();
		}
		store.setHttpStats(evicted + closedHttp[0], refused + closedHttp[1],
		    timedOut + closedHttp[2]);
		res.contentType = contentType(format);
		// Whatever was chosen: a cache must tell requests apart by both.
		res.headers.emplace_back("Vary", "Accept, Accept-Encoding");
		if (gzip)
			res.headers.emplace_back("Content-Encoding", "gzip");
		auto parts = store.expositionParts(format, gzip);
		res.pieces = std::move(parts.data);
		res.tail = std::move(parts.self);
	} else if (req.path == "/health") {
		bool healthy = false;
		res.contentType = "application/json";
		text(0, store.healthJson(&healthy, wallNow()));
		res.status = healthy ? 200 : 503;
	} else if (req.path == "/-/healthy") {
		text(200, "OK\n");
	} else if (req.path == "/-/ready") {
		bool ready = store.allGroupsReported();
		text(ready ? 200 : 503, ready ? "Ready\n" : "Not ready: not every group has reported\n");
	} else if (req.path == "/" && !healthOnly) {
		res.contentType = "text/html; charset=utf-8";
		text(200, "<!DOCTYPE html>\n<html><head><title>pme</title></head><body>\n"
		    "<h1>pme " PME_VERSION "</h1>\n<p>Privilege-separated Prometheus exporter.</p>\n"
		    "<ul>\n<li><a href=\"/metrics\">/metrics</a></li>\n"
		    "<li><a href=\"/health\">/health</a></li>\n</ul>\n</body></html>\n");
	} else {
		text(404, "Not Found\n");
	}
	return res;
}

Result<void> Supervisor::Impl::start()
{
	if (!opts.once && !opts.explain) {
		// Sockets from systemd serve everything; a health-only one
		// could not be told apart.
		for (int fd : opts.listenFds) {
			auto server = std::make_unique<HttpServer>(loop,
			    [this](const HttpRequest &req) { return route(req, false); });
			auto addr = server->adopt(fd);
			if (!addr)
				return fail("socket from systemd: " + addr.error().message);
			log::info("listening on %s (socket from systemd)", addr->c_str());
			servers.push_back({*addr, false, std::move(server), true});
		}
		if (!opts.listenFds.empty()) {
			std::string configured;
			for (const auto &a : config.exporter.listen)
				configured += (configured.empty() ? "" : ", ") + a;
			log::info("exporter.listen (%s) is not opened: pmed serves on the socket%s "
			    "systemd passed", configured.c_str(), opts.listenFds.size() == 1 ? "" : "s");
		}
		for (const auto &[addr, healthOnly] : listenersOf(config, !opts.listenFds.empty())) {
			auto server = listen(addr, healthOnly);
			if (!server)
				return tl::unexpected(server.error());
			servers.push_back({addr, healthOnly, std::move(*server)});
		}
	} else {
		onceDeadline = wallNow() + static_cast<double>(opts.onceTimeoutMs) / 1000;
	}

	uv_poll_init(loop, spawnerPoll.get(), spawner.control.get());
	spawnerPoll.initialized();
	spawnerPoll.get()->data = this;
	flushToSpawner();

	auto onSignal = [](uv_signal_t *s, int signum) noexcept {
		auto *self = static_cast<Impl *>(s->data);
		if (self == nullptr)
			return;
		if (signum == SIGCHLD) {
			self->reapSpawner();
		} else if (signum == SIGHUP) {
			if (self->opts.once || self->opts.explain || self->shuttingDown)
				return;
			log::info("SIGHUP: reloading %s", self->opts.configPath.c_str());
			self->reload();
		} else {
			log::info("%s: shutting down", strsignal(signum));
			self->shutdown(0);
		}
	};
	for (auto [h, sig] : {std::pair{&sigterm, SIGTERM}, {&sigint, SIGINT}, {&sighup, SIGHUP},
	    {&sigchld, SIGCHLD}}) {
		uv_signal_init(loop, h->get());
		h->initialized();
		h->get()->data = this;
		uv_signal_start(h->get(), onSignal, sig);
	}
	// The spawner may have died before the handler was installed.
	reapSpawner();

	uv_timer_init(loop, tick.get());
	tick.initialized();
	tick.get()->data = this;
	uv_timer_start(tick.get(), [](uv_timer_t *t) noexcept {
		if (auto *self = static_cast<Impl *>(t->data))
			self->onTick();
	}, opts.once || opts.explain ? 100 : 1000, opts.once || opts.explain ? 100 : 1000);

	for (auto &[name, svc] : services)
		if (!opts.explain || name == opts.explainService)
			startService(svc);
#if PME_HAVE_SYSTEMD
	std::string status = opts.once || opts.explain ? "collecting once" : servingStatus();
	sd_notify(0, ("READY=1\nSTATUS=" + status).c_str());
#endif
	startWatchdog();
	return {};
}

// ---- Supervisor ---------------------------------------------------------------

Supervisor::Supervisor(uv_loop_t *loop, common::Config config, SpawnerHandle spawner,
    SupervisorOptions opts)
    : impl_(std::make_unique<Impl>(loop, std::move(config), std::move(spawner), opts))
{
}

Supervisor::~Supervisor() = default;

Result<void> Supervisor::start() { return impl_->start(); }

int Supervisor::exitCode() const { return impl_->exitCode; }

} // namespace pme::daemon
