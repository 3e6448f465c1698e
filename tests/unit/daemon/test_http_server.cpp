// SPDX-License-Identifier: ISC
// HttpServer against real loopback clients: responses, keep-alive,
// pipelining, limits and timeouts.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "daemon/http_server.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme::daemon;

namespace {

// ---- a blocking client, run in a thread while the test runs the loop ----

int connectTo(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	timeval tv{5, 0}; // a broken server fails the test instead of hanging it
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	sockaddr_in sa{};
	sa.sin_family = AF_INET;
	sa.sin_port = htons(static_cast<uint16_t>(port));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

bool sendAll(int fd, const std::string &data)
{
	size_t off = 0;
	while (off < data.size()) {
		ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
		if (n <= 0)
			return false;
		off += static_cast<size_t>(n);
	}
	return true;
}

struct Response {
	bool complete = false;
	int status = 0;
	std::string head;   // status line and headers
	std::string body;

	std::string header(const std::string &name) const
	{
		std::string needle = "\r\n" + name + ": ";
		size_t p = head.find(needle);
		if (p == std::string::npos)
			return "";
		p += needle.size();
		return head.substr(p, head.find("\r\n", p) - p);
	}
};

// Reads one response; `buffer` keeps bytes read past it (pipelining).
// HEAD responses carry Content-Length but no body.
Response readResponse(int fd, std::string &buffer, bool head = false)
{
	Response r;
	char chunk[16384];
	size_t end;
	while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
		ssize_t n = recv(fd, chunk, sizeof chunk, 0);
		if (n <= 0)
			return r;
		buffer.append(chunk, static_cast<size_t>(n));
	}
	r.head = buffer.substr(0, end + 2);
	buffer.erase(0, end + 4);
	if (r.head.size() > 12 && r.head.compare(0, 9, "HTTP/1.1 ") == 0)
		r.status = std::atoi(r.head.c_str() + 9);
	size_t length = head ? 0 : std::strtoul(r.header("Content-Length").c_str(), nullptr, 10);
	while (buffer.size() < length) {
		ssize_t n = recv(fd, chunk, sizeof chunk, 0);
		if (n <= 0)
			return r;
		buffer.append(chunk, static_cast<size_t>(n));
	}
	r.body = buffer.substr(0, length);
	buffer.erase(0, length);
	r.complete = true;
	return r;
}

// True when the server closed the connection (EOF or reset) before the
// receive timeout, with nothing more to read.
bool closedByServer(int fd, std::string *extra = nullptr)
{
	char chunk[4096];
	for (;;) {
		ssize_t n = recv(fd, chunk, sizeof chunk, 0);
		if (n == 0)
			return true;
		if (n < 0)
			return errno == ECONNRESET;
		if (extra)
			extra->append(chunk, static_cast<size_t>(n));
	}
}

std::string get(const std::string &path, const std::string &extraHeaders = "")
{
	return "GET " + path + " HTTP/1.1\r\nHost: test\r\n" + extraHeaders + "\r\n";
}

// ---- the server side ----

struct Seen {
	std::string method;
	std::string path;
	std::string target;
	std::string userAgent;
};

class Harness {
public:
	explicit Harness(HttpLimits limits = {}, const std::string &address = "127.0.0.1:0")
	{
		uv_loop_init(&loop_);
		server_ = std::make_unique<HttpServer>(&loop_,
		    [this](const HttpRequest &req) { return handle(req); }, limits);
		auto r = server_->listen(address);
		CHECK_TEXT(r.has_value(), r ? "" : r.error().message.c_str());
		port_ = server_->port();
		CHECK(port_ > 0);
	}

	~Harness()
	{
		server_.reset();
		uv_run(&loop_, UV_RUN_DEFAULT);
		uv_loop_close(&loop_);
	}

	// Run the loop while `client` runs in a thread; when the client is
	// done the server is closed, and the loop must then finish by itself.
	void run(const std::function<void(int port)> &client)
	{
		uv_async_init(&loop_, &done_, [](uv_async_t *a) noexcept {
			auto *self = static_cast<Harness *>(a->data);
			self->server_->close();
			uv_close(reinterpret_cast<uv_handle_t *>(a), nullptr);
		});
		done_.data = this;
		std::thread t([&] {
			client(port_);
			uv_async_send(&done_);
		});
		uv_run(&loop_, UV_RUN_DEFAULT);
		t.join();
		CHECK_EQUAL(0, uv_loop_alive(&loop_));
		LONGS_EQUAL(0, server_->connections());
	}

	HttpServer &server() { return *server_; }
	std::vector<Seen> seen;
	std::shared_ptr<const std::string> big;

private:
	HttpResponse handle(const HttpRequest &req)
	{
		const std::string *ua = req.header("user-agent");
		seen.push_back({req.method, req.path, req.target, ua ? *ua : ""});
		HttpResponse res;
		if (req.path == "/big" && big) {
			res.body = big;
		} else if (req.path == "/split") {
			res.body = std::make_shared<const std::string>("data part\n");
			res.tail = std::make_shared<const std::string>("self part\n");
		} else if (req.path == "/missing") {
			res.status = 404;
			res.body = std::make_shared<const std::string>("Not Found\n");
		} else if (req.path == "/throw") {
			throw std::runtime_error("handler failed");
		} else {
			res.contentType = "text/plain; version=0.0.4; charset=utf-8";
			res.headers.emplace_back("Vary", "Accept-Encoding");
			res.body = std::make_shared<const std::string>("body of " + req.path + "\n");
		}
		return res;
	}

	uv_loop_t loop_;
	uv_async_t done_;
	std::unique_ptr<HttpServer> server_;
	int port_ = -1;
};

} // namespace

TEST_GROUP(HttpServing) {};

TEST(HttpServing, GetAnswersWithTheHandlersBodyAndHeaders)
{
	Harness h;
	Response r;
	h.run([&](int port) {
		int fd = connectTo(port);
		std::string buf;
		sendAll(fd, get("/metrics?x=1", "User-Agent: Prometheus/2.45\r\n"));
		r = readResponse(fd, buf);
		close(fd);
	});
	CHECK_TRUE(r.complete);
	LONGS_EQUAL(200, r.status);
	STRCMP_EQUAL("body of /metrics\n", r.body.c_str());
	STRCMP_EQUAL("17", r.header("Content-Length").c_str());
	STRCMP_EQUAL("text/plain; version=0.0.4; charset=utf-8", r.header("Content-Type").c_str());
	STRCMP_EQUAL("Accept-Encoding", r.header("Vary").c_str());
	CHECK(!r.header("Date").empty());
	LONGS_EQUAL(1, h.seen.size());
	STRCMP_EQUAL("GET", h.seen[0].method.c_str());
	STRCMP_EQUAL("/metrics", h.seen[0].path.c_str());
	STRCMP_EQUAL("/metrics?x=1", h.seen[0].target.c_str());
	// Header names reach the handler lower-cased.
	STRCMP_EQUAL("Prometheus/2.45", h.seen[0].userAgent.c_str());
}

TEST(HttpServing, HeadHasTheSameHeadersAndNoBody)
{
	Harness h;
	Response head, after;
	h.run([&](int port) {
		int fd = connectTo(port);
		std::string buf;
		sendAll(fd, "HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
		head = readResponse(fd, buf, true);
		// Had a body been sent, it would be read here as the next response.
		sendAll(fd, get("/next"));
		after = readResponse(fd, buf);
		close(fd);
	});
	CHECK_TRUE(head.complete);
	LONGS_EQUAL(200, head.status);
	STRCMP_EQUAL("17", head.header("Content-Length").c_str());
	CHECK_TRUE(after.complete);
	LONGS_EQUAL(200, after.status);
	STRCMP_EQUAL("body of /next\n", after.body.c_str());
}

TEST(HttpServing, BodyAndTailGoOutAsOneBody)
{
	Harness h;
	Response r, head, after;
	h.run([&](int port) {
		int fd = connectTo(port);
		std::string buf;
		sendAll(fd, get("/split"));
		r = readResponse(fd, buf);
		sendAll(fd, "HEAD /split HTTP/1.1\r\nHost: t\r\n\r\n");
		head = readResponse(fd, buf, true);
		sendAll(fd, get("/next"));
		after = readResponse(fd, buf);
		close(fd);
	});
	CHECK_TRUE(r.complete);
	STRCMP_EQUAL("data part\nself part\n", r.body.c_str());
	STRCMP_EQUAL("20", r.header("Content-Length").c_str());
	STRCMP_EQUAL("20", head.header("Content-Length").c_str());
	STRCMP_EQUAL("body of /next\n", after.body.c_str());
}

TEST(HttpServing, NotFoundFromTheHandlerAndMethodNotAllowedFromTheServer)
{
	Harness h;
	Response missing, post, afterPost;
	h.run([&](int port) {
		int fd = connectTo(port);
		std::string buf;
		sendAll(fd, get("/missing"));
		missing = readResponse(fd, buf);
		sendAll(fd, "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
		post = readResponse(fd, buf);
		// The body was consumed: the connection goes on.
		sendAll(fd, get("/after"));
		afterPost = readResponse(fd, buf);
		close(fd);
	});
	LONGS_EQUAL(404, missing.status);
	STRCMP_EQUAL("Not Found\n", missing.body.c_str());
	LONGS_EQUAL(405, post.status);
	STRCMP_EQUAL("GET, HEAD", post.header("Allow").c_str());
	LONGS_EQUAL(200, afterPost.status);
	// The handler never saw the POST.
	LONGS_EQUAL(2, h.seen.size());
}

TEST(HttpServing, AHandlerExceptionIsA500)
{
	Harness h;
	Response r;
	h.run([&](int port) {
		int fd = connectTo(port);
		std::string buf;
		sendAll(fd, get("/throw"));
		r = readResponse(fd, buf);
		close(fd);
	});
	LONGS_EQUAL(500, r.status);
}

TEST(HttpServing, KeepAliveServesTwoRequestsOnOneConnection)
{
	Harness h;
	Response a, b;
	h.run([&](int port) {
		int fd = connectTo(port);
		std::string buf;
		sendAll(fd, get("/a"));
		a = readResponse(fd, buf);
		sendAll(fd, get("/b"));
		b = readResponse(fd, buf);
		close(fd);
	});
	CHECK_TRUE(a.complete);
	CHECK_TRUE(b.complete);
	STRCMP_EQUAL("body of /a\n", a.body.c_str());
	STRCMP_EQUAL("body of /b\n", b.body.c_str());
	STRCMP_EQUAL("", a.header("Connection").c_str());
	LONGS_EQUAL(2, h.server().requestsServed());
}

TEST(HttpServing, PipelinedRequestsAreAnsweredInOrder)
{
	Harness h;
	std::vector<Response> rs;
	h.run([&](int port) {
		int fd = connectTo(port);
		std::string buf, all;
		for (int i = 0; i < 20; i++)
			all += get("/p" + std::to_string(i));
		sendAll(fd, all);
		for (int i = 0; i < 20; i++)
			rs.push_back(readResponse(fd, buf));
		close(fd);
	});
	LONGS_EQUAL(20, rs.size());
	for (int i = 0; i < 20; i++) {
		std::string want = "body of /p" + std::to_string(i) + "\n";
		CHECK_TRUE(rs[static_cast<size_t>(i)].complete);
		STRCMP_EQUAL(want.c_str(), rs[static_cast<size_t>(i)].body.c_str());
	}
}

TEST(HttpServing, LargeSharedBodiesArriveWholeAndInOrder)
{
	Harness h;
	std::string body(4 << 20, 'x');
	for (size_t i = 0; i < body.size(); i += 4096)
		body[i] = static_cast<char>('a' + (i / 4096) % 26);
	h.big = std::make_shared<const std::string>(body);
	Response one, two, small;
	h.run([&](int port) {
		int fd = connectTo(port);
		std::string buf;
		sendAll(fd, get("/big") + get("/big") + get("/small"));
		one = readResponse(fd, buf);
		two = readResponse(fd, buf);
		small = readResponse(fd, buf);
		close(fd);
	});
	CHECK_TRUE(one.body == body);
	CHECK_TRUE(two.body == body);
	STRCMP_EQUAL("body of /small\n", small.body.c_str());
}

TEST(HttpServing, ConnectionCloseAndHttp10AreHonoured)
{
	Harness h;
	Response r11, r10, r10ka, r10ka2;
	bool closed11 = false, closed10 = false;
	h.run([&](int port) {
		std::string buf;
		int fd = connectTo(port);
		sendAll(fd, get("/c", "Connection: close\r\n"));
		r11 = readResponse(fd, buf);
		closed11 = closedByServer(fd);
		close(fd);

		buf.clear();
		fd = connectTo(port);
		sendAll(fd, "GET /old HTTP/1.0\r\n\r\n");
		r10 = readResponse(fd, buf);
		closed10 = closedByServer(fd);
		close(fd);

		buf.clear();
		fd = connectTo(port);
		sendAll(fd, "GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
		r10ka = readResponse(fd, buf);
		sendAll(fd, "GET /ka2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
		r10ka2 = readResponse(fd, buf);
		close(fd);
	});
	LONGS_EQUAL(200, r11.status);
	STRCMP_EQUAL("close", r11.header("Connection").c_str());
	CHECK_TRUE(closed11);
	LONGS_EQUAL(200, r10.status);
	STRCMP_EQUAL("close", r10.header("Connection").c_str());
	CHECK_TRUE(closed10);
	STRCMP_EQUAL("keep-alive", r10ka.header("Connection").c_str());
	STRCMP_EQUAL("body of /ka2\n", r10ka2.body.c_str());
}

TEST(HttpServing, MalformedRequestIsA400AndTheConnectionIsClosed)
{
	Harness h;
	Response r;
	bool closed = false;
	h.run([&](int port) {
		int fd = connectTo(port);
		std::string buf;
		sendAll(fd, "GET / HTTP/1.1\r\nHost: t\r\nBad Header Line\r\n\r\n");
		r = readResponse(fd, buf);
		closed = closedByServer(fd);
		close(fd);
	});
	LONGS_EQUAL(400, r.status);
	STRCMP_EQUAL("close", r.header("Connection").c_str());
	CHECK_TRUE(closed);
	LONGS_EQUAL(0, h.seen.size());
}

TEST(HttpServing, OversizedHeadersAre431)
{
	HttpLimits limits;
	limits.maxHeaderBytes = 1024;
	Harness h(limits);
	Response r, ok;
	bool closed = false;
	h.run([&](int port) {
		std::string buf;
		int fd = connectTo(port);
		// Just under the limit is fine...
		sendAll(fd, get("/", "X-Fill: " + std::string(900, 'a') + "\r\n"));
		ok = readResponse(fd, buf);
		// ... over it is not, even split over many header lines.
		std::string headers;
		for (int i = 0; i < 40; i++)
			headers += "X-H" + std::to_string(i) + ": " + std::string(30, 'b') + "\r\n";
		sendAll(fd, get("/", headers));
		r = readResponse(fd, buf);
		closed = closedByServer(fd);
		close(fd);
	});
	LONGS_EQUAL(200, ok.status);
	LONGS_EQUAL(431, r.status);
	CHECK_TRUE(closed);
}

TEST(HttpServing, OversizedRequestLineIs414)
{
	HttpLimits limits;
	limits.maxHeaderBytes = 1024;
	Harness h(limits);
	Response r;
	bool closed = false;
	h.run([&](int port) {
		std::string buf;
		int fd = connectTo(port);
		// Never finished: the server must answer as soon as the line is too long.
		sendAll(fd, "GET /" + std::string(4000, 'a'));
		r = readResponse(fd, buf);
		closed = closedByServer(fd);
		close(fd);
	});
	LONGS_EQUAL(414, r.status);
	CHECK_TRUE(closed);
}

TEST(HttpServing, OversizedBodyIs413)
{
	Harness h;
	Response declared, chunked;
	bool closed = false;
	h.run([&](int port) {
		std::string buf;
		int fd = connectTo(port);
		sendAll(fd, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n");
		declared = readResponse(fd, buf);
		closed = closedByServer(fd);
		close(fd);

		buf.clear();
		fd = connectTo(port);
		std::string req = "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
		for (int i = 0; i < 20; i++)
			req += "1000\r\n" + std::string(4096, 'z') + "\r\n";
		sendAll(fd, req);
		chunked = readResponse(fd, buf);
		close(fd);
	});
	LONGS_EQUAL(413, declared.status);
	CHECK_TRUE(closed);
	LONGS_EQUAL(413, chunked.status);
}

TEST(HttpServing, ConnectionsOverTheLimitAreClosedAtOnce)
{
	HttpLimits limits;
	limits.maxConnections = 2;
	Harness h(limits);
	Response r1, r2, r4;
	bool thirdClosed = false;
	std::string thirdData;
	h.run([&](int port) {
		std::string b1, b2, b4;
		int c1 = connectTo(port);
		int c2 = connectTo(port);
		sendAll(c1, get("/1"));
		r1 = readResponse(c1, b1);
		sendAll(c2, get("/2"));
		r2 = readResponse(c2, b2);
		int c3 = connectTo(port);
		thirdClosed = closedByServer(c3, &thirdData);
		close(c3);
		// Once one leaves, a new client gets in.
		close(c1);
		for (int attempt = 0; attempt < 100 && !r4.complete; attempt++) {
			b4.clear();
			int c4 = connectTo(port);
			sendAll(c4, get("/4"));
			r4 = readResponse(c4, b4);
			close(c4);
			if (!r4.complete)
				std::this_thread::sleep_for(std::chrono::milliseconds(10));
		}
		close(c2);
	});
	LONGS_EQUAL(200, r1.status);
	LONGS_EQUAL(200, r2.status);
	CHECK_TRUE(thirdClosed);
	STRCMP_EQUAL("", thirdData.c_str());
	CHECK_TRUE(r4.complete);
	LONGS_EQUAL(200, r4.status);
}

TEST(HttpServing, IdleKeepAliveConnectionsAreClosed)
{
	HttpLimits limits;
	limits.idleTimeoutMs = 100;
	Harness h(limits);
	Response r;
	bool closed = false;
	double waited = 0;
	h.run([&](int port) {
		std::string buf;
		int fd = connectTo(port);
		sendAll(fd, get("/"));
		r = readResponse(fd, buf);
		auto t0 = std::chrono::steady_clock::now();
		closed = closedByServer(fd);
		waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
		close(fd);
	});
	LONGS_EQUAL(200, r.status);
	CHECK_TRUE(closed);
	CHECK(waited >= 0.05 && waited < 3);
}

TEST(HttpServing, SlowRequestsTimeOut)
{
	HttpLimits limits;
	limits.requestTimeoutMs = 150;
	limits.idleTimeoutMs = 60000;
	Harness h(limits);
	Response r;
	bool closed = false, silentClosed = false;
	h.run([&](int port) {
		std::string buf;
		int fd = connectTo(port);
		sendAll(fd, "GET / HTTP/1.1\r\nHost: t\r\n"); // never finished
		r = readResponse(fd, buf);
		closed = closedByServer(fd);
		close(fd);
		// A client that connects and sends nothing is not kept either.
		fd = connectTo(port);
		std::string extra;
		silentClosed = closedByServer(fd, &extra);
		close(fd);
	});
	LONGS_EQUAL(408, r.status);
	CHECK_TRUE(closed);
	CHECK_TRUE(silentClosed);
}

TEST(HttpServing, CloseEndsOpenConnections)
{
	Harness h;
	Response r;
	int kept = -1;
	// The client leaves its connection open; close() from the loop must
	// end it, and the loop must then finish (Harness::run checks both).
	h.run([&](int port) {
		std::string buf;
		kept = connectTo(port);
		sendAll(kept, get("/"));
		r = readResponse(kept, buf);
	});
	LONGS_EQUAL(200, r.status);
	CHECK_TRUE(closedByServer(kept));
	close(kept);
}

TEST(HttpServing, AnyAddressListenerAcceptsIpv4Clients)
{
	// ":port" is every address: IPv6 and IPv4 (dual stack), or IPv4 alone
	// on a host without IPv6.
	Harness h({}, ":0");
	Response r;
	h.run([&](int port) {
		std::string buf;
		int fd = connectTo(port);
		sendAll(fd, get("/any"));
		r = readResponse(fd, buf);
		close(fd);
	});
	LONGS_EQUAL(200, r.status);
}

TEST_GROUP(ListenAddresses) {};

TEST(ListenAddresses, Forms)
{
	sockaddr_storage ss;
	CHECK_TRUE(parseListenAddress("127.0.0.1:10064", &ss).has_value());
	LONGS_EQUAL(AF_INET, ss.ss_family);
	LONGS_EQUAL(10064, ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port));
	CHECK_TRUE(parseListenAddress("[::1]:9", &ss).has_value());
	LONGS_EQUAL(AF_INET6, ss.ss_family);
	CHECK_TRUE(IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_addr));
	CHECK_TRUE(parseListenAddress(":10064", &ss).has_value());
	LONGS_EQUAL(AF_INET6, ss.ss_family);
	CHECK_TRUE(IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_addr));
	CHECK_TRUE(parseListenAddress("localhost:1", &ss).has_value());
	LONGS_EQUAL(AF_INET, ss.ss_family);
}

TEST(ListenAddresses, Errors)
{
	sockaddr_storage ss;
	CHECK_FALSE(parseListenAddress("", &ss).has_value());
	CHECK_FALSE(parseListenAddress("127.0.0.1", &ss).has_value());
	CHECK_FALSE(parseListenAddress("127.0.0.1:", &ss).has_value());
	CHECK_FALSE(parseListenAddress("127.0.0.1:65536", &ss).has_value());
	CHECK_FALSE(parseListenAddress("127.0.0.1:-1", &ss).has_value());
	CHECK_FALSE(parseListenAddress("127.0.0.1:80x", &ss).has_value());
	CHECK_FALSE(parseListenAddress("::1:80", &ss).has_value());
	CHECK_FALSE(parseListenAddress("[::1]80", &ss).has_value());
	CHECK_FALSE(parseListenAddress("example.com:80", &ss).has_value());
	CHECK_FALSE(parseListenAddress("999.1.1.1:80", &ss).has_value());
}

TEST(ListenAddresses, APortInUseIsAnError)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	{
		HttpServer a(&loop, [](const HttpRequest &) { return HttpResponse(); });
		HttpServer b(&loop, [](const HttpRequest &) { return HttpResponse(); });
		CHECK_TRUE(a.listen("127.0.0.1:0").has_value());
		auto r = b.listen("127.0.0.1:" + std::to_string(a.port()));
		CHECK_FALSE(r.has_value());
		LONGS_EQUAL(-1, b.port());
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	LONGS_EQUAL(0, uv_loop_close(&loop));
}
