// SPDX-License-Identifier: ISC
// Source type http: real exchanges with a scripted server on the same uv loop.
#include <arpa/inet.h>
#include <unistd.h>
#include <uv.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/uv_handle.hpp"
#include "worker/http_source.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme;
using worker::HttpRequest;
using worker::HttpSource;
using worker::SourceRead;

// STRCMP_CONTAINS for std::string and literals alike.
#define TEXT_CONTAINS(expected, actual) \
	STRCMP_CONTAINS(std::string(expected).c_str(), std::string(actual).c_str())

namespace {

// One request as the test server received it.
struct Received {
	std::string method, target, version;
	common::Pairs headers;  // names in lower case, in order
	std::string body;

	std::string header(const std::string &name) const
	{
		for (const auto &[n, v] : headers)
			if (n == name)
				return v;
		return "(none)";
	}
	int count(const std::string &name) const
	{
		int n = 0;
		for (const auto &h : headers)
			n += h.first == name;
		return n;
	}
};

// How the server answers one request.
struct Reply {
	enum class Kind {
		Send,   // write data, then close (FIN)
		Hang,   // never answer
		Reset,  // write data, 20 ms later close with RST
		Drip,   // write pieces 5 ms apart, then close
	};
	Kind kind = Kind::Send;
	std::string data;
	std::vector<std::string> pieces;
};

Reply send(std::string data)
{
	return Reply{Reply::Kind::Send, std::move(data), {}};
}

Reply ok(const std::string &body, const std::string &extraHeaders = "")
{
	return send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
	    extraHeaders + "\r\n" + body);
}

Reply redirect(int status, const std::string &location)
{
	return send("HTTP/1.1 " + std::to_string(status) + " Moved\r\nLocation: " + location +
	    "\r\nContent-Length: 0\r\n\r\n");
}

union Stream {
	uv_handle_t handle;
	uv_stream_t stream;
	uv_tcp_t tcp;
	uv_pipe_t pipe;
};

bool parseRequest(const std::string &in, Received &out)
{
	size_t end = in.find("\r\n\r\n");
	if (end == std::string::npos)
		return false;
	std::string head = in.substr(0, end + 2);
	size_t eol = head.find("\r\n");
	std::string line = head.substr(0, eol);
	size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
	out.method = line.substr(0, sp1);
	out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
	out.version = line.substr(sp2 + 1);
	out.headers.clear();
	size_t length = 0;
	for (size_t pos = eol + 2; pos < head.size();) {
		size_t next = head.find("\r\n", pos);
		std::string h = head.substr(pos, next - pos);
		pos = next + 2;
		size_t colon = h.find(':');
		std::string name = h.substr(0, colon);
		for (char &c : name)
			c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
		std::string value = h.substr(colon + 1);
		while (!value.empty() && value.front() == ' ')
			value.erase(0, 1);
		if (name == "content-length")
			length = std::stoul(value);
		out.headers.emplace_back(name, value);
	}
	if (in.size() < end + 4 + length)
		return false;
	out.body = in.substr(end + 4, length);
	return true;
}

class TestServer;

struct Conn {
	Stream s{};
	uv_timer_t timer{};
	TestServer *server = nullptr;
	bool tcp = true;
	int open = 2;
	bool closing = false;
	std::string in;
	bool answered = false;
	std::vector<std::string> pieces;
	size_t next = 0;

	void close();
	void reset();
	void write(const std::string &data, bool closeAfter);
	void act(const Reply &r);
	static void onClose(uv_handle_t *h) noexcept
	{
		auto *c = static_cast<Conn *>(h->data);
		if (--c->open == 0)
			delete c;
	}
};

struct ServerWrite {
	uv_write_t req{};
	std::string data;
	Conn *conn;
	bool closeAfter;
};

// A scripted HTTP server on 127.0.0.1 (port 0) or on a Unix socket.
class TestServer {
public:
	using Handler = std::function<Reply(const Received &)>;

	TestServer(uv_loop_t *loop, Handler h, const std::string &socketPath = "")
		: handler(std::move(h)), loop_(loop), listener_(new Stream{})
	{
		listener_->handle.data = this;
		if (socketPath.empty()) {
			uv_tcp_init(loop, &listener_->tcp);
			sockaddr_in sa;
			uv_ip4_addr("127.0.0.1", 0, &sa);
			LONGS_EQUAL(0, uv_tcp_bind(&listener_->tcp,
			    reinterpret_cast<const sockaddr *>(&sa), 0));
			sockaddr_storage ss;
			int len = sizeof ss;
			uv_tcp_getsockname(&listener_->tcp, reinterpret_cast<sockaddr *>(&ss), &len);
			port_ = ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
		} else {
			unix_ = true;
			uv_pipe_init(loop, &listener_->pipe, 0);
			LONGS_EQUAL(0, uv_pipe_bind(&listener_->pipe, socketPath.c_str()));
		}
		LONGS_EQUAL(0, uv_listen(&listener_->stream, 16, onConnection));
	}

	~TestServer()
	{
		listener_->handle.data = nullptr;
		uv_close(&listener_->handle,
		    [](uv_handle_t *h) { delete reinterpret_cast<Stream *>(h); });
		std::set<Conn *> open = conns;
		for (Conn *c : open)
			c->close();
	}

	TestServer(const TestServer &) = delete;
	TestServer &operator=(const TestServer &) = delete;

	int port() const { return port_; }
	std::string url(const std::string &path) const
	{
		return "http://127.0.0.1:" + std::to_string(port_) + path;
	}

	Handler handler;
	std::vector<Received> requests;
	std::set<Conn *> conns;

private:
	static void onConnection(uv_stream_t *s, int status) noexcept
	{
		auto *self = static_cast<TestServer *>(s->data);
		if (self == nullptr || status < 0)
			return;
		auto *c = new Conn;
		c->server = self;
		c->tcp = !self->unix_;
		if (c->tcp)
			uv_tcp_init(self->loop_, &c->s.tcp);
		else
			uv_pipe_init(self->loop_, &c->s.pipe, 0);
		uv_timer_init(self->loop_, &c->timer);
		c->s.handle.data = c;
		c->timer.data = c;
		self->conns.insert(c);
		if (uv_accept(s, &c->s.stream) != 0) {
			c->close();
			return;
		}
		if (c->tcp)
			uv_tcp_nodelay(&c->s.tcp, 1);
		uv_read_start(&c->s.stream,
		    [](uv_handle_t *, size_t suggested, uv_buf_t *buf) {
			    *buf = uv_buf_init(static_cast<char *>(std::malloc(suggested)),
				static_cast<unsigned>(suggested));
		    },
		    [](uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
			    auto *conn = static_cast<Conn *>(st->data);
			    if (nread < 0) {
				    conn->close();
			    } else if (nread > 0) {
				    conn->in.append(buf->base, static_cast<size_t>(nread));
				    Received r;
				    if (!conn->answered && parseRequest(conn->in, r)) {
					    conn->answered = true;
					    TestServer *srv = conn->server;
					    srv->requests.push_back(r);
					    conn->act(srv->handler(r));
				    }
			    }
			    std::free(buf->base);
		    });
	}

	uv_loop_t *loop_;
	Stream *listener_;
	bool unix_ = false;
	int port_ = 0;
};

void Conn::close()
{
	if (closing)
		return;
	closing = true;
	server->conns.erase(this);
	uv_close(&s.handle, onClose);
	uv_close(reinterpret_cast<uv_handle_t *>(&timer), onClose);
}

void Conn::reset()
{
	if (closing)
		return;
	closing = true;
	server->conns.erase(this);
	uv_tcp_close_reset(&s.tcp, onClose);
	uv_close(reinterpret_cast<uv_handle_t *>(&timer), onClose);
}

void Conn::write(const std::string &data, bool closeAfter)
{
	auto *w = new ServerWrite{{}, data, this, closeAfter};
	w->req.data = w;
	uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
	uv_write(&w->req, &s.stream, &b, 1, [](uv_write_t *req, int) {
		auto *sw = static_cast<ServerWrite *>(req->data);
		Conn *c = sw->conn;
		bool closeNow = sw->closeAfter;
		delete sw;
		if (closeNow && !c->closing)
			c->close();
	});
}

void Conn::act(const Reply &r)
{
	switch (r.kind) {
	case Reply::Kind::Send:
		write(r.data, true);
		break;
	case Reply::Kind::Hang:
		break;
	case Reply::Kind::Reset:
		// Later, so that the data is read first: a reset arriving
		// with the data is reported by libuv as end of file.
		write(r.data, false);
		uv_timer_start(&timer, [](uv_timer_t *t) {
			auto *c = static_cast<Conn *>(t->data);
			if (!c->closing)
				c->reset();
		}, 20, 0);
		break;
	case Reply::Kind::Drip:
		pieces = r.pieces;
		uv_timer_start(&timer, [](uv_timer_t *t) {
			auto *c = static_cast<Conn *>(t->data);
			if (c->closing)
				return;
			bool last = c->next + 1 >= c->pieces.size();
			c->write(c->pieces[c->next++], last);
			if (last)
				uv_timer_stop(t);
		}, 5, 5);
		break;
	}
}

// A directory under /tmp for sockets and secret files, removed at the end.
struct TempDir {
	std::string path;
	std::vector<std::string> files;

	TempDir()
	{
		char tmpl[] = "/tmp/pme-http-XXXXXX";
		path = ::mkdtemp(tmpl);
	}
	~TempDir()
	{
		for (const auto &f : files)
			::unlink(f.c_str());
		::rmdir(path.c_str());
	}
	std::string file(const std::string &name, const std::string &content = "")
	{
		std::string p = path + "/" + name;
		if (!content.empty()) {
			std::ofstream(p) << content;
		}
		files.push_back(p);
		return p;
	}
};

HttpRequest request(const std::string &url, int timeoutMs = 1000)
{
	HttpRequest r;
	r.url = url;
	r.timeout = common::Millis(timeoutMs);
	r.userAgent = "pme/test";
	return r;
}

std::string chunked(const std::vector<std::string> &chunks)
{
	std::string s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	for (const auto &c : chunks) {
		char len[16];
		std::snprintf(len, sizeof len, "%zx", c.size());
		s += std::string(len) + "\r\n" + c + "\r\n";
	}
	return s + "0\r\n\r\n";
}

} // namespace

TEST_GROUP(HttpSource)
{
	uv_loop_t loop;

	void setup() override { uv_loop_init(&loop); }

	void teardown() override
	{
		// Everything the sources and servers opened closes by itself.
		uv_run(&loop, UV_RUN_DEFAULT);
		LONGS_EQUAL(0, uv_loop_close(&loop));
	}

	// One read to its end; the callback must come exactly once.
	SourceRead fetch(HttpSource &src)
	{
		std::optional<SourceRead> got;
		int calls = 0;
		src.start([&](SourceRead r) {
			calls++;
			got = std::move(r);
		});
		CHECK(src.running());
		CHECK_FALSE(got.has_value());  // never inside start()
		while (!got && uv_run(&loop, UV_RUN_ONCE) != 0) {
		}
		CHECK(got.has_value());
		CHECK_FALSE(src.running());
		LONGS_EQUAL(1, calls);
		return *got;
	}

	// Run the loop until pred() holds or ms have passed.
	bool runUntil(const std::function<bool()> &pred, uint64_t ms = 2000)
	{
		bool fired = false;
		common::UvHandle<uv_timer_t> t;
		uv_timer_init(&loop, t.get());
		t.initialized();
		t.get()->data = &fired;
		uv_timer_start(t.get(), [](uv_timer_t *h) { *static_cast<bool *>(h->data) = true; },
		    ms, 0);
		while (!fired && !pred())
			uv_run(&loop, UV_RUN_ONCE);
		return pred();
	}

	void runFor(uint64_t ms)
	{
		runUntil([] { return false; }, ms);
	}
};

TEST(HttpSource, GetReturnsBodyStatusAndTiming)
{
	TestServer server(&loop, [](const Received &) { return ok("hello"); });
	HttpSource src(&loop, request(server.url("/x?y=1")));
	SourceRead r = fetch(src);
	CHECK_TRUE(r.ok);
	STRCMP_EQUAL("hello", r.content.c_str());
	STRCMP_EQUAL("", r.error.c_str());
	LONGS_EQUAL(200, r.httpStatus);
	CHECK(r.responseSeconds >= 0 && r.responseSeconds < 1);
	CHECK_FALSE(r.truncated);
	CHECK_FALSE(r.cached);
	LONGS_EQUAL(1, src.requests());

	LONGS_EQUAL(1, server.requests.size());
	const Received &q = server.requests[0];
	STRCMP_EQUAL("GET", q.method.c_str());
	STRCMP_EQUAL("/x?y=1", q.target.c_str());
	STRCMP_EQUAL("HTTP/1.1", q.version.c_str());
	STRCMP_EQUAL(("127.0.0.1:" + std::to_string(server.port())).c_str(),
	    q.header("host").c_str());
	STRCMP_EQUAL("pme/test", q.header("user-agent").c_str());
	STRCMP_EQUAL("*/*", q.header("accept").c_str());
	STRCMP_EQUAL("close", q.header("connection").c_str());
	STRCMP_EQUAL("(none)", q.header("authorization").c_str());
	STRCMP_EQUAL("(none)", q.header("content-length").c_str());
}

TEST(HttpSource, ChunkedBody)
{
	TestServer server(&loop, [](const Received &) {
		return send(chunked({"first ", "second ", std::string(3000, 'x')}));
	});
	HttpSource src(&loop, request(server.url("/")));
	SourceRead r = fetch(src);
	CHECK_TRUE(r.ok);
	STRCMP_EQUAL(("first second " + std::string(3000, 'x')).c_str(), r.content.c_str());
}

TEST(HttpSource, BodyUntilCloseWithoutLength)
{
	TestServer server(&loop, [](const Received &) {
		return send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nline 1\nline 2\n");
	});
	HttpSource src(&loop, request(server.url("/")));
	SourceRead r = fetch(src);
	CHECK_TRUE(r.ok);
	STRCMP_EQUAL("line 1\nline 2\n", r.content.c_str());
}

TEST(HttpSource, InterimResponseIsSkippedAndHeadHasNoBody)
{
	TestServer server(&loop, [](const Received &q) {
		if (q.method == "HEAD")
			return send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
		return send("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
		    "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal");
	});
	HttpSource get(&loop, request(server.url("/")));
	SourceRead r = fetch(get);
	CHECK_TRUE(r.ok);
	LONGS_EQUAL(200, r.httpStatus);
	STRCMP_EQUAL("real", r.content.c_str());

	HttpRequest req = request(server.url("/"));
	req.method = "HEAD";
	HttpSource head(&loop, req);
	r = fetch(head);
	CHECK_TRUE(r.ok);
	STRCMP_EQUAL("", r.content.c_str());
	STRCMP_EQUAL("HEAD", server.requests.back().method.c_str());
}

TEST(HttpSource, ErrorStatusFailsAndKeepsTheBody)
{
	TestServer server(&loop, [](const Received &) {
		return send("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown");
	});
	std::string url = server.url("/x");
	HttpSource src(&loop, request(url));
	SourceRead r = fetch(src);
	CHECK_FALSE(r.ok);
	LONGS_EQUAL(503, r.httpStatus);
	STRCMP_EQUAL(("GET " + url + ": HTTP 503 Service Unavailable").c_str(), r.error.c_str());
	STRCMP_EQUAL("down", r.content.c_str());
	CHECK(r.responseSeconds >= 0);
}

TEST(HttpSource, HeadersArrivingInPieces)
{
	// The status line, a header name and its value are each cut across
	// reads; the Location must still be read whole.
	TestServer server(&loop, [](const Received &q) {
		if (q.target == "/final")
			return ok("done");
		Reply r;
		r.kind = Reply::Kind::Drip;
		r.pieces = {"HTTP/1.1 30", "2 Fo", "und\r\nLoc", "ation: /fi", "nal\r\nCont",
		    "ent-Length: 0\r", "\n\r\n"};
		return r;
	});
	HttpSource src(&loop, request(server.url("/start")));
	SourceRead r = fetch(src);
	CHECK_TRUE(r.ok);
	STRCMP_EQUAL("done", r.content.c_str());
	LONGS_EQUAL(2, server.requests.size());
	STRCMP_EQUAL("/final", server.requests[1].target.c_str());
}

TEST(HttpSource, UnixSocket)
{
	TempDir dir;
	std::string sock = dir.file("http.sock");
	TestServer server(&loop, [](const Received &) { return ok("over unix"); }, sock);
	HttpSource src(&loop, request("unix:" + sock + ":/metrics?a=1"));
	SourceRead r = fetch(src);
	CHECK_TRUE(r.ok);
	STRCMP_EQUAL("over unix", r.content.c_str());
	LONGS_EQUAL(1, server.requests.size());
	STRCMP_EQUAL("/metrics?a=1", server.requests[0].target.c_str());
	STRCMP_EQUAL("localhost", server.requests[0].header("host").c_str());
}

TEST(HttpSource, UnixSocketMissing)
{
	TempDir dir;
	std::string sock = dir.path + "/none.sock";
	HttpSource src(&loop, request("unix:" + sock + ":/"));
	SourceRead r = fetch(src);
	CHECK_FALSE(r.ok);
	STRCMP_EQUAL(("GET unix:" + sock + ":/: cannot connect to " + sock +
	    ": no such file or directory").c_str(), r.error.c_str());
}

TEST(HttpSource, HostNameIsResolved)
{
	TestServer server(&loop, [](const Received &) { return ok("by name"); });
	HttpSource src(&loop, request("http://localhost:" + std::to_string(server.port()) + "/"));
	SourceRead r = fetch(src);
	CHECK_TRUE(r.ok);
	STRCMP_EQUAL("by name", r.content.c_str());
	STRCMP_EQUAL(("localhost:" + std::to_string(server.port())).c_str(),
	    server.requests[0].header("host").c_str());
}

TEST(HttpSource, BasicAuthFromPassword)
{
	TestServer server(&loop, [](const Received &) { return ok(""); });
	HttpRequest req = request(server.url("/"));
	req.username = "alice";
	req.password = "s3cret";
	HttpSource src(&loop, req);
	CHECK_TRUE(fetch(src).ok);
	STRCMP_EQUAL("Basic YWxpY2U6czNjcmV0", server.requests[0].header("authorization").c_str());
}

TEST(HttpSource, BasicAuthFromPasswordFileReadEachTime)
{
	TempDir dir;
	std::string pw = dir.file("pw", "s3cret\r\n");
	TestServer server(&loop, [](const Received &) { return ok(""); });
	HttpRequest req = request(server.url("/"));
	req.username = "alice";
	req.passwordFile = pw;
	HttpSource src(&loop, req);
	CHECK_TRUE(fetch(src).ok);
	STRCMP_EQUAL("Basic YWxpY2U6czNjcmV0", server.requests[0].header("authorization").c_str());

	// Rotated: the next request uses the new one (only one newline is
	// stripped: the second belongs to the password).
	std::ofstream(pw) << "new\n\n";
	CHECK_TRUE(fetch(src).ok);
	STRCMP_EQUAL("Basic YWxpY2U6bmV3Cg==", server.requests[1].header("authorization").c_str());
}

TEST(HttpSource, UnreadablePasswordFileSendsNothing)
{
	TestServer server(&loop, [](const Received &) { return ok(""); });
	HttpRequest req = request(server.url("/"));
	req.username = "alice";
	req.passwordFile = "/nonexistent/pme-pw";
	HttpSource src(&loop, req);
	SourceRead r = fetch(src);
	CHECK_FALSE(r.ok);
	STRCMP_EQUAL(("GET " + req.url + ": cannot read password_file /nonexistent/pme-pw: "
	    "No such file or directory").c_str(), r.error.c_str());
	LONGS_EQUAL(0, r.httpStatus);
	CHECK(r.responseSeconds < 0);
	LONGS_EQUAL(0, src.requests());
	LONGS_EQUAL(0, server.requests.size());
}

TEST(HttpSource, BearerFromTokenFile)
{
	TempDir dir;
	std::string tok = dir.file("token", "tok123\n");
	std::string bad = dir.file("bad", "tok\nmore\n");
	TestServer server(&loop, [](const Received &) { return ok(""); });
	HttpRequest req = request(server.url("/"));
	req.tokenFile = tok;
	HttpSource src(&loop, req);
	CHECK_TRUE(fetch(src).ok);
	STRCMP_EQUAL("Bearer tok123", server.requests[0].header("authorization").c_str());

	req.tokenFile = bad;
	HttpSource badSrc(&loop, req);
	SourceRead r = fetch(badSrc);
	CHECK_FALSE(r.ok);
	TEXT_CONTAINS("token_file " + bad + " has a line break", r.error);
	LONGS_EQUAL(1, server.requests.size());
}

TEST(HttpSource, ConfiguredHeadersOverrideDefaults)
{
	TestServer server(&loop, [](const Received &) { return ok(""); });
	HttpRequest req = request(server.url("/"));
	req.headers = {{"user-agent", "custom/1"}, {"X-Extra", "1"}, {"Accept", "application/json"}};
	HttpSource src(&loop, req);
	CHECK_TRUE(fetch(src).ok);
	const Received &q = server.requests[0];
	STRCMP_EQUAL("custom/1", q.header("user-agent").c_str());
	LONGS_EQUAL(1, q.count("user-agent"));
	STRCMP_EQUAL("application/json", q.header("accept").c_str());
	LONGS_EQUAL(1, q.count("accept"));
	STRCMP_EQUAL("1", q.header("x-extra").c_str());
}

TEST(HttpSource, PostSendsBodyWithLength)
{
	TestServer server(&loop, [](const Received &) { return ok("created"); });
	HttpRequest req = request(server.url("/api"));
	req.method = "POST";
	req.body = "{\"a\":1}";
	req.headers = {{"Content-Type", "application/json"}};
	HttpSource src(&loop, req);
	CHECK_TRUE(fetch(src).ok);
	const Received &q = server.requests[0];
	STRCMP_EQUAL("POST", q.method.c_str());
	STRCMP_EQUAL("7", q.header("content-length").c_str());
	STRCMP_EQUAL("{\"a\":1}", q.body.c_str());
	STRCMP_EQUAL("application/json", q.header("content-type").c_str());

	req.body.clear();
	HttpSource empty(&loop, req);
	CHECK_TRUE(fetch(empty).ok);
	STRCMP_EQUAL("0", server.requests[1].header("content-length").c_str());
}

TEST(HttpSource, BodyCutAtMaxBody)
{
	TestServer server(&loop, [](const Received &q) {
		return q.target == "/exact" ? ok("0123456789") : ok(std::string(100000, 'b'));
	});
	HttpRequest req = request(server.url("/big"));
	req.maxBody = 10;
	HttpSource src(&loop, req);
	SourceRead r = fetch(src);
	CHECK_TRUE(r.ok);
	CHECK_TRUE(r.truncated);
	STRCMP_EQUAL("bbbbbbbbbb", r.content.c_str());
	STRCMP_EQUAL(("GET " + req.url + ": response body cut at 10 bytes (max_output)").c_str(),
	    r.error.c_str());
	LONGS_EQUAL(200, r.httpStatus);

	req.url = server.url("/exact");
	HttpSource exact(&loop, req);
	r = fetch(exact);
	CHECK_TRUE(r.ok);
	CHECK_FALSE(r.truncated);
	STRCMP_EQUAL("0123456789", r.content.c_str());
	STRCMP_EQUAL("", r.error.c_str());
}

TEST(HttpSource, TimeoutCallsBackOnce)
{
	TestServer server(&loop, [](const Received &) { return Reply{Reply::Kind::Hang, "", {}}; });
	HttpRequest req = request(server.url("/slow"), 200);
	HttpSource src(&loop, req);
	int calls = 0;
	std::optional<SourceRead> got;
	auto t0 = std::chrono::steady_clock::now();
	src.start([&](SourceRead r) {
		calls++;
		got = std::move(r);
	});
	CHECK_TRUE(runUntil([&] { return got.has_value(); }));
	std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - t0;
	runFor(300);
	LONGS_EQUAL(1, calls);
	CHECK_FALSE(got->ok);
	STRCMP_EQUAL(("GET " + req.url + ": timed out after 200ms").c_str(), got->error.c_str());
	LONGS_EQUAL(0, got->httpStatus);
	CHECK(got->responseSeconds < 0);
	CHECK(elapsed.count() >= 0.19 && elapsed.count() < 1);
	LONGS_EQUAL(1, server.requests.size());
	// The source closed its side: the server's connection went away.
	CHECK_TRUE(runUntil([&] { return server.conns.empty(); }));
}

TEST(HttpSource, ConnectionRefused)
{
	int port;
	{
		TestServer gone(&loop, [](const Received &) { return ok(""); });
		port = gone.port();
	}
	uv_run(&loop, UV_RUN_NOWAIT);
	std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
	HttpSource src(&loop, request(url));
	SourceRead r = fetch(src);
	CHECK_FALSE(r.ok);
	STRCMP_EQUAL(("GET " + url + ": cannot connect to 127.0.0.1:" + std::to_string(port) +
	    ": connection refused").c_str(), r.error.c_str());
	LONGS_EQUAL(0, r.httpStatus);
}

TEST(HttpSource, ResetBeforeTheEnd)
{
	TestServer server(&loop, [](const Received &) {
		return Reply{Reply::Kind::Reset,
		    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart", {}};
	});
	HttpSource src(&loop, request(server.url("/")));
	SourceRead r = fetch(src);
	CHECK_FALSE(r.ok);
	TEXT_CONTAINS("connection reset by peer before the end of the response", r.error);
}

TEST(HttpSource, ClosedBeforeTheEnd)
{
	TestServer server(&loop, [](const Received &q) {
		if (q.target == "/none")
			return send("");
		return send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart");
	});
	HttpSource src(&loop, request(server.url("/")));
	SourceRead r = fetch(src);
	CHECK_FALSE(r.ok);
	TEXT_CONTAINS(": connection closed before the end of the response", r.error);

	HttpSource none(&loop, request(server.url("/none")));
	r = fetch(none);
	CHECK_FALSE(r.ok);
	TEXT_CONTAINS(": connection closed without a response", r.error);
}

TEST(HttpSource, GarbageResponse)
{
	TestServer server(&loop, [](const Received &) { return send("garbage\r\n\r\n"); });
	std::string url = server.url("/");
	HttpSource src(&loop, request(url));
	SourceRead r = fetch(src);
	CHECK_FALSE(r.ok);
	CHECK_TRUE(r.error.rfind("GET " + url + ": invalid HTTP response: ", 0) == 0);
	LONGS_EQUAL(0, r.httpStatus);
}

TEST(HttpSource, CancelWhileReadingDropsTheCallback)
{
	int answered = 0;
	TestServer server(&loop, [&](const Received &) {
		return answered++ == 0 ? Reply{Reply::Kind::Hang, "", {}} : ok("second");
	});
	HttpSource src(&loop, request(server.url("/")));
	int calls = 0;
	src.start([&](SourceRead) { calls++; });
	CHECK_TRUE(runUntil([&] { return server.requests.size() == 1; }));
	src.cancel();
	CHECK_FALSE(src.running());
	CHECK_TRUE(runUntil([&] { return server.conns.empty(); }));
	runFor(30);
	LONGS_EQUAL(0, calls);
	// The source is usable again.
	SourceRead r = fetch(src);
	CHECK_TRUE(r.ok);
	STRCMP_EQUAL("second", r.content.c_str());
}

TEST(HttpSource, CancelDuringResolveAndConnect)
{
	TestServer server(&loop, [](const Received &) { return ok("x"); });
	int calls = 0;
	// Resolving "localhost" runs in the thread pool; connecting to the
	// address takes a loop iteration.
	std::string byNameUrl = "http://localhost:" + std::to_string(server.port()) + "/";
	HttpSource byName(&loop, request(byNameUrl));
	HttpSource byAddr(&loop, request(server.url("/")));
	byName.start([&](SourceRead) { calls++; });
	byAddr.start([&](SourceRead) { calls++; });
	byName.cancel();
	byAddr.cancel();
	runFor(50);
	LONGS_EQUAL(0, calls);
	LONGS_EQUAL(0, server.requests.size());
}

TEST(HttpSource, DestroyedInFlight)
{
	TempDir dir;
	std::string pw = dir.file("pw", "x\n");
	TestServer server(&loop, [](const Received &) { return Reply{Reply::Kind::Hang, "", {}}; });
	int calls = 0;
	{
		// Reading the password file, resolving, connecting, reading.
		HttpRequest withFile = request(server.url("/"));
		withFile.username = "u";
		withFile.passwordFile = pw;
		HttpSource a(&loop, withFile);
		std::string byName = "http://localhost:" + std::to_string(server.port()) + "/";
		HttpSource b(&loop, request(byName));
		HttpSource c(&loop, request(server.url("/")));
		a.start([&](SourceRead) { calls++; });
		b.start([&](SourceRead) { calls++; });
		c.start([&](SourceRead) { calls++; });
		std::optional<HttpSource> d(std::in_place, &loop, request(server.url("/")));
		d->start([&](SourceRead) { calls++; });
		CHECK_TRUE(runUntil([&] { return server.requests.size() >= 1; }));
		d.reset();
	}
	runFor(50);
	LONGS_EQUAL(0, calls);
}

TEST(HttpSource, CallbackMayDestroyOrRestartTheSource)
{
	TestServer server(&loop, [](const Received &) { return ok("x"); });
	std::optional<HttpSource> src(std::in_place, &loop, request(server.url("/")));
	int calls = 0;
	src->start([&](SourceRead r) {
		calls++;
		CHECK_TRUE(r.ok);
		src.reset();
	});
	CHECK_TRUE(runUntil([&] { return calls == 1; }));

	HttpSource again(&loop, request(server.url("/")));
	std::function<void(SourceRead)> next = [&](SourceRead r) {
		calls++;
		CHECK_TRUE(r.ok);
		if (calls < 4)
			again.start(next);
	};
	again.start(next);
	CHECK_TRUE(runUntil([&] { return calls == 4; }));
	LONGS_EQUAL(3, again.requests());
}

TEST(HttpSource, RedirectsRelativeAndAbsolute)
{
	TempDir dir;
	int port = 0;
	TestServer server(&loop, [&](const Received &q) {
		if (q.target == "/dir/a")
			return redirect(302, "b?x=1");
		if (q.target == "/dir/b?x=1")
			return redirect(301, "http://127.0.0.1:" + std::to_string(port) +
			    "/dir/../c");
		if (q.target == "/c")
			return redirect(308, "/final");
		return ok("arrived at " + q.target);
	});
	port = server.port();
	HttpRequest req = request(server.url("/dir/a"));
	req.token = "t0k";
	HttpSource src(&loop, req);
	SourceRead r = fetch(src);
	CHECK_TRUE(r.ok);
	STRCMP_EQUAL("arrived at /final", r.content.c_str());
	LONGS_EQUAL(200, r.httpStatus);
	LONGS_EQUAL(4, src.requests());
	LONGS_EQUAL(4, server.requests.size());
	// Same host and port: the credentials follow.
	for (const auto &q : server.requests)
		STRCMP_EQUAL("Bearer t0k", q.header("authorization").c_str());
}

TEST(HttpSource, RedirectLoopIsCut)
{
	TestServer server(&loop, [](const Received &) { return redirect(302, "/loop"); });
	HttpRequest req = request(server.url("/loop"));
	HttpSource src(&loop, req);
	SourceRead r = fetch(src);
	CHECK_FALSE(r.ok);
	STRCMP_EQUAL(("GET " + req.url + ": too many redirects (5)").c_str(), r.error.c_str());
	LONGS_EQUAL(302, r.httpStatus);
	LONGS_EQUAL(6, src.requests());

	req.maxRedirects = 0;
	HttpSource noFollow(&loop, req);
	r = fetch(noFollow);
	CHECK_FALSE(r.ok);
	LONGS_EQUAL(302, r.httpStatus);
	STRCMP_EQUAL(("GET " + req.url + ": HTTP 302 Moved").c_str(), r.error.c_str());
	LONGS_EQUAL(1, noFollow.requests());
}

TEST(HttpSource, MethodAfterRedirect)
{
	TestServer server(&loop, [](const Received &q) {
		if (q.target == "/see-other")
			return redirect(303, "/result");
		if (q.target == "/temporary")
			return redirect(307, "/result");
		return ok(q.method + " " + q.body);
	});
	HttpRequest req = request(server.url("/see-other"));
	req.method = "POST";
	req.body = "data";
	HttpSource seeOther(&loop, req);
	SourceRead r = fetch(seeOther);
	CHECK_TRUE(r.ok);
	STRCMP_EQUAL("GET ", r.content.c_str());
	STRCMP_EQUAL("(none)", server.requests[1].header("content-length").c_str());

	req.url = server.url("/temporary");
	HttpSource temporary(&loop, req);
	r = fetch(temporary);
	CHECK_TRUE(r.ok);
	STRCMP_EQUAL("POST data", r.content.c_str());
}

TEST(HttpSource, CredentialsStayWithTheOrigin)
{
	TestServer other(&loop, [](const Received &) { return ok("elsewhere"); });
	TestServer server(&loop, [&](const Received &) { return redirect(302, other.url("/x")); });
	HttpRequest req = request(server.url("/"));
	req.username = "alice";
	req.password = "s3cret";
	req.headers = {{"Cookie", "session=1"}, {"X-Keep", "yes"}};
	HttpSource src(&loop, req);
	SourceRead r = fetch(src);
	CHECK_TRUE(r.ok);
	STRCMP_EQUAL("elsewhere", r.content.c_str());
	STRCMP_EQUAL("Basic YWxpY2U6czNjcmV0", server.requests[0].header("authorization").c_str());
	STRCMP_EQUAL("session=1", server.requests[0].header("cookie").c_str());
	LONGS_EQUAL(1, other.requests.size());
	const Received &q = other.requests[0];
	STRCMP_EQUAL("(none)", q.header("authorization").c_str());
	STRCMP_EQUAL("(none)", q.header("cookie").c_str());
	STRCMP_EQUAL("yes", q.header("x-keep").c_str());
	STRCMP_EQUAL(("127.0.0.1:" + std::to_string(other.port())).c_str(),
	    q.header("host").c_str());
}

TEST(HttpSource, RedirectToHttpsIsRefused)
{
	TestServer server(&loop,
	    [](const Received &) { return redirect(301, "https://example.org/"); });
	HttpSource src(&loop, request(server.url("/")));
	SourceRead r = fetch(src);
	CHECK_FALSE(r.ok);
	TEXT_CONTAINS("redirected to 'https://example.org/', which pme cannot follow: https:// "
	    "is not supported yet", r.error);
	LONGS_EQUAL(1, src.requests());
}

TEST(HttpSource, CacheMaxAgeReusesTheBody)
{
	TestServer server(&loop, [](const Received &q) {
		if (q.target == "/age")
			return ok("aged", "Cache-Control: max-age=60\r\nAge: 60\r\n");
		return ok("fresh", "Cache-Control: public, max-age=60\r\n");
	});
	HttpRequest req = request(server.url("/"));
	req.httpCache = true;
	HttpSource src(&loop, req);
	SourceRead r = fetch(src);
	CHECK_TRUE(r.ok);
	CHECK_FALSE(r.cached);
	r = fetch(src);
	CHECK_TRUE(r.ok);
	CHECK_TRUE(r.cached);
	STRCMP_EQUAL("fresh", r.content.c_str());
	LONGS_EQUAL(200, r.httpStatus);
	LONGS_EQUAL(1, src.requests());
	LONGS_EQUAL(1, server.requests.size());

	// Without http_cache, every read is a request.
	req.httpCache = false;
	HttpSource plain(&loop, req);
	fetch(plain);
	r = fetch(plain);
	CHECK_FALSE(r.cached);
	LONGS_EQUAL(2, plain.requests());

	// Already as old as its max-age: stale at once.
	req.httpCache = true;
	req.url = server.url("/age");
	HttpSource aged(&loop, req);
	fetch(aged);
	r = fetch(aged);
	CHECK_FALSE(r.cached);
	LONGS_EQUAL(2, aged.requests());
}

TEST(HttpSource, CacheRevalidatesWithETagAndLastModified)
{
	const std::string lm = "Wed, 21 Oct 2015 07:28:00 GMT";
	TestServer server(&loop, [&](const Received &q) {
		if (q.target == "/etag") {
			if (q.header("if-none-match") == "\"v1\"")
				return send("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n");
			// The empty header must not swallow the next one.
			return ok("body v1", "X-Empty:\r\nETag: \"v1\"\r\n"
			    "Cache-Control: no-cache, max-age=60\r\n");
		}
		if (q.header("if-modified-since") == lm)
			return send("HTTP/1.1 304 Not Modified\r\n\r\n");
		return ok("dated", "Last-Modified: " + lm + "\r\n");
	});
	HttpRequest req = request(server.url("/etag"));
	req.httpCache = true;
	HttpSource src(&loop, req);
	SourceRead r = fetch(src);
	CHECK_FALSE(r.cached);
	STRCMP_EQUAL("(none)", server.requests[0].header("if-none-match").c_str());
	// no-cache: asked again each time, answered 304, body reused.
	for (int i = 0; i < 2; i++) {
		r = fetch(src);
		CHECK_TRUE(r.ok);
		CHECK_TRUE(r.cached);
		LONGS_EQUAL(304, r.httpStatus);
		STRCMP_EQUAL("body v1", r.content.c_str());
		STRCMP_EQUAL("", r.error.c_str());
	}
	LONGS_EQUAL(3, src.requests());

	req.url = server.url("/dated");
	HttpSource dated(&loop, req);
	fetch(dated);
	r = fetch(dated);
	CHECK_TRUE(r.ok);
	CHECK_TRUE(r.cached);
	STRCMP_EQUAL("dated", r.content.c_str());
	STRCMP_EQUAL(lm.c_str(), server.requests.back().header("if-modified-since").c_str());

	// Without http_cache no validator is sent, and a 304 is no success.
	req.httpCache = false;
	req.headers = {{"If-None-Match", "\"v1\""}};
	req.url = server.url("/etag");
	HttpSource plain(&loop, req);
	r = fetch(plain);
	CHECK_FALSE(r.ok);
	CHECK_FALSE(r.cached);
	LONGS_EQUAL(304, r.httpStatus);
}

TEST(HttpSource, CacheNoStoreForgets)
{
	TestServer server(&loop, [](const Received &) {
		return ok("secret", "Cache-Control: no-store, max-age=60\r\nETag: \"x\"\r\n");
	});
	HttpRequest req = request(server.url("/"));
	req.httpCache = true;
	HttpSource src(&loop, req);
	fetch(src);
	SourceRead r = fetch(src);
	CHECK_FALSE(r.cached);
	LONGS_EQUAL(2, src.requests());
	STRCMP_EQUAL("(none)", server.requests[1].header("if-none-match").c_str());
}

TEST(HttpSource, InvalidRequestFailsWithoutSending)
{
	HttpRequest req = request("https://example.org/");
	HttpSource src(&loop, req);
	SourceRead r = fetch(src);
	CHECK_FALSE(r.ok);
	TEXT_CONTAINS("https:// is not supported yet: pme has no TLS", r.error);
	LONGS_EQUAL(0, src.requests());
}

TEST(HttpSource, CheckHttpUrl)
{
	using common::checkHttpUrl;
	STRCMP_EQUAL("", checkHttpUrl("http://127.0.0.1/nginx_status").c_str());
	STRCMP_EQUAL("", checkHttpUrl("http://example.org:8080").c_str());
	STRCMP_EQUAL("", checkHttpUrl("HTTP://Example.org/a?b=c#frag").c_str());
	STRCMP_EQUAL("", checkHttpUrl("http://[::1]:9100/metrics").c_str());
	STRCMP_EQUAL("", checkHttpUrl("unix:/run/php/fpm.sock:/status?json").c_str());
	TEXT_CONTAINS("https:// is not supported yet: pme has no TLS", checkHttpUrl(
	    "https://example.org/"));
	TEXT_CONTAINS("unix: URL needs ':/' between the socket path and the request path",
	    checkHttpUrl("unix:/run/app.sock"));
	TEXT_CONTAINS("must be absolute", checkHttpUrl("unix:run/app.sock:/x"));
	TEXT_CONTAINS("has no host", checkHttpUrl("http:///path"));
	TEXT_CONTAINS("has no host", checkHttpUrl("http://:80/"));
	TEXT_CONTAINS("invalid port '99999'", checkHttpUrl("http://host:99999/"));
	TEXT_CONTAINS("invalid port 'http'", checkHttpUrl("http://host:http/"));
	TEXT_CONTAINS("invalid port '0'", checkHttpUrl("http://host:0/"));
	TEXT_CONTAINS("invalid IPv6 address", checkHttpUrl("http://[::g]/"));
	TEXT_CONTAINS("without brackets", checkHttpUrl("http://::1:80/"));
	TEXT_CONTAINS("credentials in the URL", checkHttpUrl("http://u:p@host/"));
	TEXT_CONTAINS("percent-encode", checkHttpUrl("http://host/a b"));
	TEXT_CONTAINS("must start with http://", checkHttpUrl("example.org/x"));
	TEXT_CONTAINS("unsupported URL scheme", checkHttpUrl("ftp://example.org/x"));
	TEXT_CONTAINS("the URL is empty", checkHttpUrl(""));
}

TEST(HttpSource, ParsedUrlParts)
{
	auto u = worker::parseHttpUrl("http://[::1]:9100?x");
	CHECK_TRUE(u.has_value());
	STRCMP_EQUAL("::1", u->host.c_str());
	LONGS_EQUAL(9100, u->port);
	STRCMP_EQUAL("/?x", u->target.c_str());
	STRCMP_EQUAL("[::1]:9100", u->hostHeader().c_str());
	STRCMP_EQUAL("http://[::1]:9100/?x", u->str().c_str());

	u = worker::parseHttpUrl("http://Example.ORG:80/p#frag");
	CHECK_TRUE(u.has_value());
	STRCMP_EQUAL("Example.ORG", u->hostHeader().c_str());
	STRCMP_EQUAL("example.org:80", u->origin().c_str());
	STRCMP_EQUAL("/p", u->target.c_str());
}

TEST(HttpSource, LocationResolution)
{
	auto base = *worker::parseHttpUrl("http://h:8080/a/b/c?q=1");
	auto at = [&](const std::string &loc) {
		auto u = worker::resolveLocation(base, loc);
		return u ? u->str() : "error: " + u.error().message;
	};
	STRCMP_EQUAL("http://h:8080/a/b/d", at("d").c_str());
	STRCMP_EQUAL("http://h:8080/a/d", at("../d").c_str());
	STRCMP_EQUAL("http://h:8080/a/b/", at(".").c_str());
	STRCMP_EQUAL("http://h:8080/x/y", at("/x/./y").c_str());
	STRCMP_EQUAL("http://h:8080/a/b/c?z", at("?z").c_str());
	STRCMP_EQUAL("http://other/p", at("//other/p").c_str());
	STRCMP_EQUAL("http://other:81/", at("http://other:81").c_str());
	STRCMP_EQUAL("http://h:8080/up", at("/../../up").c_str());
	TEXT_CONTAINS("which pme cannot follow", at("https://h/"));
	TEXT_CONTAINS("not an http:// URL", at("unix:/run/x.sock:/"));
	TEXT_CONTAINS("not an http:// URL", at("ftp://h/"));

	auto sock = *worker::parseHttpUrl("unix:/run/x.sock:/a/b");
	auto u = worker::resolveLocation(sock, "c");
	CHECK_TRUE(u.has_value());
	STRCMP_EQUAL("unix:/run/x.sock:/a/c", u->str().c_str());
}

TEST(HttpSource, CheckHttpRequest)
{
	HttpRequest r = request("http://h/");
	STRCMP_EQUAL("", worker::checkHttpRequest(r).c_str());
	r.method = "GE T";
	TEXT_CONTAINS("invalid HTTP method", worker::checkHttpRequest(r));
	r.method = "GET";
	r.headers = {{"Content-Length", "5"}};
	TEXT_CONTAINS("header Content-Length is set by pme", worker::checkHttpRequest(r));
	r.headers = {{"X-A", "1\r\nX-Injected: 1"}};
	TEXT_CONTAINS("has a line break", worker::checkHttpRequest(r));
	r.headers = {{"Bad Name", "1"}};
	TEXT_CONTAINS("invalid HTTP header name", worker::checkHttpRequest(r));
	r.headers.clear();
	r.password = "p";
	TEXT_CONTAINS("a password needs a username", worker::checkHttpRequest(r));
	r.username = "u";
	r.token = "t";
	TEXT_CONTAINS("exclusive", worker::checkHttpRequest(r));
}
