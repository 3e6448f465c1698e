// SPDX-License-Identifier: ISC
// Minimal HTTP/1.1 server on libuv + llhttp: GET/HEAD, keep-alive, limits.
//
// Each accepted client is a Connection on the heap owning its uv_tcp_t, a
// uv_timer_t and its llhttp_t; it is deleted by the close callback of the
// last of its two handles, never before.  A connection answers one request
// at a time: when llhttp completes a message, the handler runs, the
// response is queued with uv_write, and the parser is paused (the
// on_message_complete callback returns HPE_PAUSED) and reading stopped.
// Bytes already received after that message (pipelined requests) are kept
// and parsed when the write callback reports the response sent, so
// pipelined requests are answered in order and a client that sends without
// reading cannot make the server queue responses without bound.
//
// A connection is in one of three phases, and its one timer enforces the
// limit of that phase against slow clients:
//   Waiting     it owes us a request: just accepted, idle between
//               keep-alive requests, or partway through a request.  The
//               request timeout runs from the accept, or on a kept-alive
//               connection from the first byte of the request; before that
//               byte, the idle timeout.
//   Responding  a response is being written and reading is stopped; the
//               write timeout runs.
//   Lingering   the last response is written and the connection shut down
//               for writing; what the client still sends is read and
//               dropped until it closes, LingerMs at most.  Closing at once
//               with unread bytes would make the kernel send a reset, and
//               a client still sending (a request line too long, say) would
//               see "connection reset" instead of our 414.
// Size limits are checked in the llhttp data callbacks, before anything is
// buffered, and turn into 414, 431 or 413 followed by closing.
//
// The connection cap must not let slow clients lock out a scraper: 1,000
// slowloris connections would otherwise hold every slot for a request
// timeout each, again and again.  So at the cap a newcomer takes the place
// of an open connection when one can be spared, and only when none can is
// it refused (accepted, sent a 503 if the socket takes it at once, and
// closed: never queued).  The connections that can be spared are, in this
// order, a lingering one (it has had its answer) and then the one that
// has been Waiting the longest: a slow client's request is older than a
// scraper's, which arrives whole.  The two kinds are kept in intrusive
// lists in the order they entered their phase, so the choice costs
// nothing.  A Responding connection is never evicted: it has done its
// part, and the write timeout bounds it.  Nor is a connection Waiting for
// less than EvictionGraceMs: in a burst, the loop accepts every pending
// connection before it reads any of them, and a request sitting unread in
// the kernel's buffer is not a slow one; the newcomer is refused instead,
// so that a burst is served first come, first served.
#include "http_server.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <llhttp.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <unordered_set>

#include "common/log.hpp"

namespace pme::daemon {

const std::string *HttpRequest::header(const std::string &lowerName) const
{
	for (const auto &[n, v] : headers)
		if (n == lowerName)
			return &v;
	return nullptr;
}

namespace {

constexpr size_t MaxBodyBytes = 64 * 1024;
constexpr size_t ReadBufferBytes = 64 * 1024;
// Long enough for the loop to have read a connection accepted in the same
// burst as the newcomer; short enough that a flood must open more than
// maxConnections connections per this many milliseconds to get a
// scraper refused.
constexpr uint64_t EvictionGraceMs = 10;
// Long enough for a client on a slow link to finish sending and read our
// answer; a lingering connection is the first to be evicted anyway.
constexpr uint64_t LingerMs = 2000;
// Between two warnings that accept(2) failed, which under a flood would
// otherwise be one line per connection.
constexpr uint64_t AcceptWarningIntervalMs = 60000;

const char *reasonPhrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
	}
}

std::string httpDate()
{
	time_t now = ::time(nullptr);
	tm t{};
	::gmtime_r(&now, &t);
	char buf[64];
	size_t n = ::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &t);
	return std::string(buf, n);
}

bool iequals(const std::string &a, const char *b)
{
	size_t n = std::char_traits<char>::length(b);
	if (a.size() != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (std::tolower(static_cast<unsigned char>(a[i])) != b[i])
			return false;
	return true;
}

// Header text from the handler must not break the framing.
bool safeHeaderText(const std::string &s)
{
	return s.find_first_of("\r\n") == std::string::npos;
}

std::shared_ptr<const std::string> textBody(int status)
{
	return std::make_shared<const std::string>(std::string(reasonPhrase(status)) + "\n");
}

// Told to a refused or evicted client that is owed an answer, if its
// socket takes it without waiting: the connection is closed right after,
// and nothing is kept to finish the write.
void tryWriteBusy(uv_tcp_t *tcp)
{
	static const std::string busy = [] {
		std::string body = "too many connections, try again\n";
		return "HTTP/1.1 503 Service Unavailable\r\n"
		    "Content-Type: text/plain; charset=utf-8\r\n"
		    "Content-Length: " + std::to_string(body.size()) + "\r\n"
		    "Connection: close\r\n\r\n" + body;
	}();
	// uv_buf_t is not const; libuv only reads from it.
	uv_buf_t buf = uv_buf_init(const_cast<char *>(busy.data()), static_cast<unsigned>(busy.size()));
	uv_try_write(reinterpret_cast<uv_stream_t *>(tcp), &buf, 1);
}

struct Listener {
	uv_tcp_t tcp;
	HttpServer::Impl *server;
};

// A client refused at the connection cap: accepted, then closed at once.
struct Rejected {
	uv_tcp_t tcp;
};

struct Connection;

struct WriteReq {
	uv_write_t req;
	Connection *conn;
	std::string head;
	std::shared_ptr<const std::string> body;
	std::shared_ptr<const SharedBuffers> pieces;
	std::shared_ptr<const std::string> tail;
};

// Connections in the order they entered a phase, oldest first.
struct ConnList {
	Connection *head = nullptr;
	Connection *tail = nullptr;

	void push(Connection *c);
	void remove(Connection *c);
};

} // namespace

struct HttpServer::Impl {
	uv_loop_t *loop;
	Handler handler;
	HttpLimits limits;
	std::vector<Listener *> listeners;
	std::unordered_set<Connection *> conns;
	ConnList waiting;   // Waiting connections, by the time they began to wait
	ConnList lingering; // Lingering connections, by the time they began to linger
	uint64_t served = 0;
	uint64_t evicted = 0;
	uint64_t refused = 0;
	uint64_t timedOut = 0;
	uint64_t lastAcceptWarning = 0;
	bool acceptWarned = false;
	bool closed = false;

	Impl(uv_loop_t *l, Handler h, HttpLimits lim) : loop(l), handler(std::move(h)), limits(lim) {}
	void closeAll();
	bool evictOne();
	void refuse(uv_stream_t *listener);
	void acceptFailed(int status);
	static void onConnection(uv_stream_t *stream, int status) noexcept;
};

namespace {

enum class Phase {
	Waiting,    // for a request: new, idle, or partway through one
	Responding, // a response is being written
	Lingering,  // answered and shut down for writing, until the client closes
	Closed,     // uv_close called, deleted when both handles are closed
};

struct Connection {
	HttpServer::Impl *server; // null once closed
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shutdownReq;
	int openHandles = 0;
	llhttp_t parser;

	HttpRequest req;
	std::string field;
	std::string value;
	size_t urlBytes = 0;
	size_t headerBytes = 0;
	size_t bodyBytes = 0;
	int refuse = 0;         // status chosen by a callback that stopped the parser
	bool keepAlive = true;
	bool http10 = false;

	Phase phase = Phase::Waiting;
	uint64_t since = 0;     // loop time at which the phase began
	ConnList *list = nullptr; // the server's list for the phase, if it has one
	Connection *prev = nullptr;
	Connection *next = nullptr;

	bool inRequest = false; // bytes of a request seen since the last response
	bool answered = false;  // a response has been sent
	bool closeAfterWrite = false;
	bool peerClosed = false; // the client has shut down its side
	bool reading = false;
	std::string pending;    // received after a complete message, not parsed yet

	explicit Connection(HttpServer::Impl *s) : server(s) {}

	void start();
	void enter(Phase p);
	void close();
	void evict();
	void linger();
	void arm(uint64_t ms);
	void startReading();
	void stopReading();
	void execute(const char *data, size_t len);
	void dispatch();
	void send(const HttpResponse &resp, bool headOnly, bool closeAfter);
	void sendError(int status);
	void writeDone(int status);
	void timeout();

	static const llhttp_settings_t *settings();
	static Connection *of(llhttp_t *p) { return static_cast<Connection *>(p->data); }

	static int onMessageBegin(llhttp_t *p) noexcept;
	static int onUrl(llhttp_t *p, const char *at, size_t len) noexcept;
	static int onHeaderField(llhttp_t *p, const char *at, size_t len) noexcept;
	static int onHeaderValue(llhttp_t *p, const char *at, size_t len) noexcept;
	static int onHeaderValueComplete(llhttp_t *p) noexcept;
	static int onHeadersComplete(llhttp_t *p) noexcept;
	static int onBody(llhttp_t *p, const char *at, size_t len) noexcept;
	static int onMessageComplete(llhttp_t *p) noexcept;

	static void onAlloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) noexcept;
	static void onRead(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) noexcept;
	static void onWrite(uv_write_t *w, int status) noexcept;
	static void onShutdown(uv_shutdown_t *req, int status) noexcept;
	static void onTimer(uv_timer_t *t) noexcept;
	static void onClose(uv_handle_t *h) noexcept;
};

void ConnList::push(Connection *c)
{
	c->list = this;
	c->prev = tail;
	c->next = nullptr;
	if (tail)
		tail->next = c;
	else
		head = c;
	tail = c;
}

void ConnList::remove(Connection *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		tail = c->prev;
	c->list = nullptr;
	c->prev = c->next = nullptr;
}

const llhttp_settings_t *Connection::settings()
{
	static const llhttp_settings_t s = [] {
		llhttp_settings_t v;
		llhttp_settings_init(&v);
		v.on_message_begin = onMessageBegin;
		v.on_url = onUrl;
		v.on_header_field = onHeaderField;
		v.on_header_value = onHeaderValue;
		v.on_header_value_complete = onHeaderValueComplete;
		v.on_headers_complete = onHeadersComplete;
		v.on_body = onBody;
		v.on_message_complete = onMessageComplete;
		return v;
	}();
	return &s;
}

void Connection::start()
{
	llhttp_init(&parser, HTTP_REQUEST, settings());
	parser.data = this;
	uv_tcp_nodelay(&tcp, 1);
	enter(Phase::Waiting);
	arm(server->limits.requestTimeoutMs);
	startReading();
}

// Moves the connection to the end of its new phase's list: the lists stay
// sorted by `since` because the loop's clock does not go back.
void Connection::enter(Phase p)
{
	if (list)
		list->remove(this);
	phase = p;
	if (!server)
		return;
	since = uv_now(server->loop);
	if (p == Phase::Waiting)
		server->waiting.push(this);
	else if (p == Phase::Lingering)
		server->lingering.push(this);
}

void Connection::close()
{
	if (phase == Phase::Closed)
		return;
	enter(Phase::Closed);
	if (server) {
		server->conns.erase(this);
		server = nullptr;
	}
	uv_close(reinterpret_cast<uv_handle_t *>(&tcp), onClose);
	uv_close(reinterpret_cast<uv_handle_t *>(&timer), onClose);
}

// Makes room for a new connection (see the top of the file).
void Connection::evict()
{
	// An idle keep-alive connection is closed as its idle timeout would;
	// a client we owe an answer is told why.
	if (phase == Phase::Waiting && (inRequest || !answered))
		tryWriteBusy(&tcp);
	common::log::debug("http: %zu connections open, evicting one %s for a new one",
	    server->conns.size(),
	    phase == Phase::Lingering ? "that is closing" :
	    inRequest ? "partway through a request" : "waiting for a request");
	close();
}

void Connection::linger()
{
	if (peerClosed) {
		close();
		return;
	}
	enter(Phase::Lingering);
	int r = uv_shutdown(&shutdownReq, reinterpret_cast<uv_stream_t *>(&tcp), onShutdown);
	if (r < 0) {
		close();
		return;
	}
	arm(LingerMs);
	startReading();
}

void Connection::arm(uint64_t ms)
{
	uv_timer_start(&timer, onTimer, ms, 0);
}

void Connection::startReading()
{
	if (reading || phase == Phase::Closed)
		return;
	int r = uv_read_start(reinterpret_cast<uv_stream_t *>(&tcp), onAlloc, onRead);
	if (r < 0) {
		common::log::debug("http: read: %s", uv_strerror(r));
		close();
		return;
	}
	reading = true;
}

void Connection::stopReading()
{
	if (!reading)
		return;
	uv_read_stop(reinterpret_cast<uv_stream_t *>(&tcp));
	reading = false;
}

void Connection::execute(const char *data, size_t len)
{
	llhttp_errno_t err = llhttp_execute(&parser, data, len);
	if (phase == Phase::Closed)
		return;
	if (err == HPE_OK)
		return;
	if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
		// A response is on its way; keep what follows for later.
		const char *pos = llhttp_get_error_pos(&parser);
		if (err == HPE_PAUSED_UPGRADE)
			closeAfterWrite = true;
		if (!closeAfterWrite && pos && pos >= data && pos < data + len)
			pending.assign(pos, static_cast<size_t>(data + len - pos));
		stopReading();
		return;
	}
	common::log::debug("http: bad request: %s (%s)", llhttp_errno_name(err),
	    llhttp_get_error_reason(&parser) ? llhttp_get_error_reason(&parser) : "");
	sendError(refuse ? refuse : 400);
}

void Connection::dispatch()
{
	HttpResponse resp;
	bool head = req.method == "HEAD";
	if (req.method != "GET" && !head) {
		resp.status = 405;
		resp.body = textBody(405);
		resp.headers.emplace_back("Allow", "GET, HEAD");
	} else {
		try {
			resp = server->handler(req);
		} catch (const std::exception &e) {
			common::log::warnx("http: %s %s: %s", req.method.c_str(), req.path.c_str(),
			    e.what());
			resp = HttpResponse();
			resp.status = 500;
			resp.body = textBody(500);
		}
	}
	bool closeAfter = !keepAlive || llhttp_get_upgrade(&parser) || server->closed;
	send(resp, head, closeAfter);
}

void Connection::send(const HttpResponse &resp, bool headOnly, bool closeAfter)
{
	auto *w = new WriteReq;
	w->conn = this;
	size_t length = (resp.body ? resp.body->size() : 0) + (resp.pieces ? resp.pieces->size : 0) +
	    (resp.tail ? resp.tail->size() : 0);
	std::string &h = w->head;
	h.reserve(256);
	h += "HTTP/1.1 ";
	h += std::to_string(resp.status);
	h += ' ';
	h += reasonPhrase(resp.status);
	h += "\r\nContent-Type: ";
	h += safeHeaderText(resp.contentType) ? resp.contentType : "application/octet-stream";
	h += "\r\nContent-Length: ";
	h += std::to_string(length);
	h += "\r\nDate: ";
	h += httpDate();
	h += "\r\n";
	for (const auto &[name, val] : resp.headers) {
		if (iequals(name, "content-length") || iequals(name, "connection") ||
		    iequals(name, "content-type") || iequals(name, "date") ||
		    !safeHeaderText(name) || !safeHeaderText(val) || name.empty())
			continue;
		h += name;
		h += ": ";
		h += val;
		h += "\r\n";
	}
	if (closeAfter)
		h += "Connection: close\r\n";
	else if (http10)
		h += "Connection: keep-alive\r\n";
	h += "\r\n";

	// uv_buf_t is not const; libuv only reads from it, and copies the
	// array itself.
	std::vector<uv_buf_t> bufs;
	bufs.reserve(2 + (resp.pieces && !headOnly ? resp.pieces->pieces.size() : 0));
	bufs.push_back(uv_buf_init(h.data(), static_cast<unsigned>(h.size())));
	auto add = [&](const std::string &piece) {
		if (!piece.empty())
			bufs.push_back(uv_buf_init(const_cast<char *>(piece.data()),
			    static_cast<unsigned>(piece.size())));
	};
	if (!headOnly && resp.body) {
		w->body = resp.body;
		add(*w->body);
	}
	if (!headOnly && resp.pieces) {
		w->pieces = resp.pieces;
		for (const auto &p : w->pieces->pieces)
			add(*p);
	}
	if (!headOnly && resp.tail) {
		w->tail = resp.tail;
		add(*w->tail);
	}
	w->req.data = w;
	closeAfterWrite = closeAfterWrite || closeAfter;
	answered = true;
	enter(Phase::Responding);
	int r = uv_write(&w->req, reinterpret_cast<uv_stream_t *>(&tcp), bufs.data(),
	    static_cast<unsigned>(bufs.size()), onWrite);
	if (r < 0) {
		delete w;
		common::log::debug("http: write: %s", uv_strerror(r));
		close();
		return;
	}
	arm(server->limits.writeTimeoutMs);
	server->served++;
}

void Connection::sendError(int status)
{
	HttpResponse resp;
	resp.status = status;
	resp.body = textBody(status);
	inRequest = false;
	stopReading();
	send(resp, false, true);
}

void Connection::writeDone(int status)
{
	if (phase == Phase::Closed)
		return;
	if (status < 0) {
		close();
		return;
	}
	if (closeAfterWrite) {
		linger();
		return;
	}
	// Ready for the next request.
	enter(Phase::Waiting);
	arm(server->limits.idleTimeoutMs);
	llhttp_resume(&parser);
	if (!pending.empty()) {
		std::string data = std::move(pending);
		pending.clear();
		execute(data.data(), data.size());
		if (phase != Phase::Waiting)
			return;
	}
	startReading();
}

void Connection::timeout()
{
	switch (phase) {
	case Phase::Waiting:
		if (inRequest || !answered)
			server->timedOut++;
		if (inRequest) {
			common::log::debug("http: request not complete in time, closing");
			sendError(408);
			return;
		}
		break;
	case Phase::Responding:
		common::log::debug("http: response not taken in time, closing");
		break;
	case Phase::Lingering:
	case Phase::Closed:
		break;
	}
	close();
}

int Connection::onMessageBegin(llhttp_t *p) noexcept
{
	Connection *c = of(p);
	c->req = HttpRequest();
	c->field.clear();
	c->value.clear();
	c->urlBytes = c->headerBytes = c->bodyBytes = 0;
	c->refuse = 0;
	if (!c->inRequest) {
		c->inRequest = true;
		// A new connection's budget runs from the accept: sending a
		// first byte late must not buy more time.
		if (c->answered)
			c->arm(c->server->limits.requestTimeoutMs);
	}
	return 0;
}

int Connection::onUrl(llhttp_t *p, const char *at, size_t len) noexcept
{
	Connection *c = of(p);
	c->urlBytes += len;
	if (c->urlBytes > c->server->limits.maxHeaderBytes) {
		c->refuse = 414;
		llhttp_set_error_reason(p, "request line too long");
		return HPE_USER;
	}
	c->req.target.append(at, len);
	return 0;
}

int Connection::onHeaderField(llhttp_t *p, const char *at, size_t len) noexcept
{
	Connection *c = of(p);
	c->headerBytes += len;
	if (c->urlBytes + c->headerBytes > c->server->limits.maxHeaderBytes) {
		c->refuse = 431;
		llhttp_set_error_reason(p, "headers too large");
		return HPE_USER;
	}
	c->field.append(at, len);
	return 0;
}

int Connection::onHeaderValue(llhttp_t *p, const char *at, size_t len) noexcept
{
	Connection *c = of(p);
	c->headerBytes += len;
	if (c->urlBytes + c->headerBytes > c->server->limits.maxHeaderBytes) {
		c->refuse = 431;
		llhttp_set_error_reason(p, "headers too large");
		return HPE_USER;
	}
	c->value.append(at, len);
	return 0;
}

int Connection::onHeaderValueComplete(llhttp_t *p) noexcept
{
	Connection *c = of(p);
	c->headerBytes += 4; // ": " and CRLF
	for (char &ch : c->field)
		ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
	c->req.headers.emplace_back(std::move(c->field), std::move(c->value));
	c->field.clear();
	c->value.clear();
	return 0;
}

int Connection::onHeadersComplete(llhttp_t *p) noexcept
{
	Connection *c = of(p);
	c->req.method = llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(p)));
	size_t q = c->req.target.find('?');
	c->req.path = c->req.target.substr(0, q);
	c->keepAlive = llhttp_should_keep_alive(p) != 0;
	c->http10 = llhttp_get_http_major(p) == 1 && llhttp_get_http_minor(p) == 0;
	if ((p->flags & F_CONTENT_LENGTH) && p->content_length > MaxBodyBytes) {
		c->refuse = 413;
		llhttp_set_error_reason(p, "request body too large");
		return -1;
	}
	return 0;
}

int Connection::onBody(llhttp_t *p, const char * /*at*/, size_t len) noexcept
{
	Connection *c = of(p);
	c->bodyBytes += len;
	if (c->bodyBytes > MaxBodyBytes) {
		c->refuse = 413;
		llhttp_set_error_reason(p, "request body too large");
		return HPE_USER;
	}
	return 0;
}

int Connection::onMessageComplete(llhttp_t *p) noexcept
{
	Connection *c = of(p);
	c->inRequest = false;
	c->dispatch();
	// Parse nothing more until the response is written.
	return HPE_PAUSED;
}

void Connection::onAlloc(uv_handle_t * /*h*/, size_t /*suggested*/, uv_buf_t *buf) noexcept
{
	// The loop runs one read callback right after each allocation, so
	// one buffer serves every connection of the thread.
	static thread_local char storage[ReadBufferBytes];
	*buf = uv_buf_init(storage, sizeof storage);
}

void Connection::onRead(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) noexcept
{
	Connection *c = static_cast<Connection *>(s->data);
	if (c->phase == Phase::Closed)
		return;
	if (nread < 0) {
		// End of the client's requests: finish what is being written.
		c->peerClosed = true;
		c->stopReading();
		if (c->phase == Phase::Responding)
			c->closeAfterWrite = true;
		else
			c->close();
		return;
	}
	if (nread == 0 || c->phase == Phase::Lingering)
		return;
	c->execute(buf->base, static_cast<size_t>(nread));
}

void Connection::onWrite(uv_write_t *w, int status) noexcept
{
	auto *req = static_cast<WriteReq *>(w->data);
	Connection *c = req->conn;
	delete req;
	c->writeDone(status);
}

void Connection::onShutdown(uv_shutdown_t *req, int status) noexcept
{
	// UV_ECANCELED: the connection is being closed already.
	if (status < 0 && status != UV_ECANCELED)
		static_cast<Connection *>(req->handle->data)->close();
}

void Connection::onTimer(uv_timer_t *t) noexcept
{
	static_cast<Connection *>(t->data)->timeout();
}

void Connection::onClose(uv_handle_t *h) noexcept
{
	Connection *c = static_cast<Connection *>(h->data);
	if (--c->openHandles == 0)
		delete c;
}

void closeListener(uv_handle_t *h) noexcept
{
	delete static_cast<Listener *>(h->data);
}

void closeRejected(uv_handle_t *h) noexcept
{
	delete static_cast<Rejected *>(h->data);
}

} // namespace

bool HttpServer::Impl::evictOne()
{
	Connection *victim = lingering.head;
	if (!victim && waiting.head && uv_now(loop) - waiting.head->since >= EvictionGraceMs)
		victim = waiting.head;
	if (!victim)
		return false;
	evicted++;
	victim->evict();
	return true;
}

void HttpServer::Impl::refuse(uv_stream_t *listener)
{
	refused++;
	common::log::debug("http: %zu connections open, none can be evicted, refusing one more",
	    conns.size());
	auto *r = new (std::nothrow) Rejected;
	if (!r)
		return;
	uv_tcp_init(loop, &r->tcp);
	r->tcp.data = r;
	if (uv_accept(listener, reinterpret_cast<uv_stream_t *>(&r->tcp)) == 0)
		tryWriteBusy(&r->tcp);
	uv_close(reinterpret_cast<uv_handle_t *>(&r->tcp), closeRejected);
}

void HttpServer::Impl::acceptFailed(int status)
{
	// With EMFILE or ENFILE, libuv has accepted and closed the connection
	// to keep the listener from spinning: a client was refused.
	refused++;
	uint64_t now = uv_now(loop);
	if (acceptWarned && now - lastAcceptWarning < AcceptWarningIntervalMs)
		return;
	acceptWarned = true;
	lastAcceptWarning = now;
	common::log::warnx("http: accept: %s (%zu connections open, limit %zu); clients are "
	    "refused until descriptors are free: raise RLIMIT_NOFILE or lower the connection limit",
	    uv_strerror(status), conns.size(), limits.maxConnections);
}

void HttpServer::Impl::onConnection(uv_stream_t *stream, int status) noexcept
{
	auto *l = static_cast<Listener *>(stream->data);
	Impl *self = l->server;
	if (status < 0) {
		self->acceptFailed(status);
		return;
	}
	if (self->conns.size() >= self->limits.maxConnections && !self->evictOne()) {
		self->refuse(stream);
		return;
	}
	auto *c = new (std::nothrow) Connection(self);
	if (!c)
		return;
	uv_tcp_init(self->loop, &c->tcp);
	uv_timer_init(self->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->openHandles = 2;
	self->conns.insert(c);
	int r = uv_accept(stream, reinterpret_cast<uv_stream_t *>(&c->tcp));
	if (r < 0) {
		common::log::debug("http: accept: %s", uv_strerror(r));
		c->close();
		return;
	}
	c->start();
}

void HttpServer::Impl::closeAll()
{
	closed = true;
	for (Listener *l : listeners)
		uv_close(reinterpret_cast<uv_handle_t *>(&l->tcp), closeListener);
	listeners.clear();
	std::vector<Connection *> open(conns.begin(), conns.end());
	for (Connection *c : open)
		c->close();
}

HttpServer::HttpServer(uv_loop_t *loop, Handler handler, HttpLimits limits)
    : impl_(std::make_unique<Impl>(loop, std::move(handler), limits))
{
}

HttpServer::~HttpServer()
{
	impl_->closeAll();
}

common::Result<void> parseListenAddress(const std::string &address, sockaddr_storage *out)
{
	std::string host, port;
	if (!address.empty() && address[0] == '[') {
		size_t end = address.find("]:");
		if (end == std::string::npos)
			return common::fail("expected [IPv6 address]:port");
		host = address.substr(1, end - 1);
		port = address.substr(end + 2);
		if (host.empty())
			return common::fail("empty IPv6 address in brackets");
	} else {
		size_t colon = address.rfind(':');
		if (colon == std::string::npos)
			return common::fail("expected host:port, [IPv6]:port or :port");
		host = address.substr(0, colon);
		port = address.substr(colon + 1);
		if (host.find(':') != std::string::npos)
			return common::fail("write an IPv6 address in brackets, as [::1]:10064");
	}
	unsigned portNum = 0;
	auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), portNum);
	if (port.empty() || port.size() > 5 || ec != std::errc() || p != port.data() + port.size() ||
	    portNum > 65535)
		return common::fail("invalid port \"" + port + "\"");
	int port_ = static_cast<int>(portNum);

	*out = sockaddr_storage{};
	if (host.empty() || host == "*") {
		auto *sa6 = reinterpret_cast<sockaddr_in6 *>(out);
		sa6->sin6_family = AF_INET6;
		sa6->sin6_port = htons(static_cast<uint16_t>(port_));
		sa6->sin6_addr = in6addr_any;
		return {};
	}
	if (host == "localhost")
		host = "127.0.0.1";
	if (address[0] == '[') {
		if (uv_ip6_addr(host.c_str(), port_, reinterpret_cast<sockaddr_in6 *>(out)) == 0)
			return {};
	} else if (uv_ip4_addr(host.c_str(), port_, reinterpret_cast<sockaddr_in *>(out)) == 0) {
		return {};
	}
	return common::fail("\"" + host + "\" is not a numeric IP address");
}

common::Result<void> HttpServer::listen(const std::string &address)
{
	sockaddr_storage ss;
	if (auto r = parseListenAddress(address, &ss); !r)
		return r;
	if (impl_->closed)
		return common::fail("the server is closed");
	bool anyV6 = ss.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_addr);

	auto attempt = [&](const sockaddr *sa) -> int {
		auto *l = new Listener;
		l->server = impl_.get();
		uv_tcp_init(impl_->loop, &l->tcp);
		l->tcp.data = l;
		// libuv sets SO_REUSEADDR on the socket it binds.
		int r = uv_tcp_bind(&l->tcp, sa, 0);
		if (r == 0)
			r = uv_listen(reinterpret_cast<uv_stream_t *>(&l->tcp), SOMAXCONN,
			    Impl::onConnection);
		if (r < 0) {
			uv_close(reinterpret_cast<uv_handle_t *>(&l->tcp), closeListener);
			return r;
		}
		impl_->listeners.push_back(l);
		return 0;
	};
	int r = attempt(reinterpret_cast<const sockaddr *>(&ss));
	if (r < 0 && anyV6 && (r == UV_EAFNOSUPPORT || r == UV_EADDRNOTAVAIL)) {
		// No IPv6 on this host: all IPv4 addresses then.
		sockaddr_in sa4{};
		sa4.sin_family = AF_INET;
		sa4.sin_port = reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port;
		sa4.sin_addr.s_addr = htonl(INADDR_ANY);
		r = attempt(reinterpret_cast<const sockaddr *>(&sa4));
	}
	if (r < 0)
		return common::fail(uv_strerror(r));
	return {};
}

common::Result<std::string> HttpServer::adopt(int fd)
{
	std::string which = "descriptor " + std::to_string(fd);
	auto refuse = [&](std::string why) {
		::close(fd);
		return common::fail(std::move(why));
	};
	if (impl_->closed)
		return refuse("the server is closed");
	sockaddr_storage ss{};
	socklen_t sslen = sizeof ss;
	int type = 0, accepting = 0;
	socklen_t len = sizeof type;
	if (getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &sslen) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0)
		return refuse(common::errnoMessage(which));
	// Connections are uv_tcp_t: a Unix socket (ListenStream=/path) or a
	// datagram socket would need handles of another kind.
	if ((ss.ss_family != AF_INET && ss.ss_family != AF_INET6) || type != SOCK_STREAM)
		return refuse(which + " is not a TCP socket: pmed serves HTTP only on "
		    "ListenStream= sockets with an IP address and a port");
	if (!accepting)
		return refuse(which + " is a TCP socket that is not listening");
	char host[INET6_ADDRSTRLEN] = "";
	int port;
	if (ss.ss_family == AF_INET) {
		auto *sa = reinterpret_cast<sockaddr_in *>(&ss);
		uv_ip4_name(sa, host, sizeof host);
		port = ntohs(sa->sin_port);
	} else {
		auto *sa = reinterpret_cast<sockaddr_in6 *>(&ss);
		uv_ip6_name(sa, host, sizeof host);
		port = ntohs(sa->sin6_port);
	}
	std::string address = ss.ss_family == AF_INET6
	    ? "[" + std::string(host) + "]:" + std::to_string(port)
	    : std::string(host) + ":" + std::to_string(port);

	auto *l = new Listener;
	l->server = impl_.get();
	uv_tcp_init(impl_->loop, &l->tcp);
	l->tcp.data = l;
	int r = uv_tcp_open(&l->tcp, fd);
	if (r < 0) {
		uv_close(reinterpret_cast<uv_handle_t *>(&l->tcp), closeListener);
		return refuse(which + ": " + uv_strerror(r));
	}
	// listen(2) again on a listening socket only sets its backlog; libuv
	// needs this call to watch the socket.
	r = uv_listen(reinterpret_cast<uv_stream_t *>(&l->tcp), SOMAXCONN, Impl::onConnection);
	if (r < 0) {
		uv_close(reinterpret_cast<uv_handle_t *>(&l->tcp), closeListener); // closes fd
		return common::fail(which + ": " + uv_strerror(r));
	}
	impl_->listeners.push_back(l);
	return address;
}

void HttpServer::close()
{
	impl_->closeAll();
}

size_t HttpServer::connections() const
{
	return impl_->conns.size();
}

uint64_t HttpServer::requestsServed() const
{
	return impl_->served;
}

uint64_t HttpServer::connectionsEvicted() const
{
	return impl_->evicted;
}

uint64_t HttpServer::connectionsRefused() const
{
	return impl_->refused;
}

uint64_t HttpServer::requestsTimedOut() const
{
	return impl_->timedOut;
}

int HttpServer::port(size_t listener) const
{
	if (listener >= impl_->listeners.size())
		return -1;
	sockaddr_storage ss{};
	int len = sizeof ss;
	if (uv_tcp_getsockname(&impl_->listeners[listener]->tcp, reinterpret_cast<sockaddr *>(&ss),
	    &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port);
	return -1;
}

} // namespace pme::daemon
