// SPDX-License-Identifier: ISC
// HttpServer against real loopback clients: responses, keep-alive,
// pipelining, limits, timeouts, and who gets a slot at the connection cap.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "daemon/exposition.hpp"
#include "daemon/http_server.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme::daemon;

namespace {

// ---- a blocking client, run in a thread while the test runs the loop ----

// rcvbuf: a small receive buffer, for a client that does not read to
// leave the server's write pending with little data in flight.
int connectTo(int port, int rcvbuf = 0)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	timeval tv{5, 0}; // a broken server fails the test instead of hanging it
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
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

// True when the server ended the connection with a FIN after everything
// it sent, as opposed to a reset, which can destroy an answer not read yet.
bool closedCleanly(int fd)
{
	char chunk[4096];
	ssize_t n;
	while ((n = recv(fd, chunk, sizeof chunk, 0)) > 0)
		;
	return n == 0;
}

// What a refused or evicted client that is owed an answer reads.
bool isBusy(const Response &r)
{
	return r.complete && r.status == 503 && r.header("Connection") == "close" &&
	    r.body == "too many connections, try again\n";
}

double secondsSince(std::chrono::steady_clock::time_point t0)
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void pause(int ms)
{
	std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// A body much larger than loopback socket buffers (4 MiB on the sending
// side at most by default), so that a client that does not read keeps its
// response being written.
std::shared_ptr<const std::string> bigBody()
{
	std::string body(16 << 20, 'x');
	for (size_t i = 0; i < body.size(); i += 4096)
		body[i] = static_cast<char>('a' + (i / 4096) % 26);
	return std::make_shared<const std::string>(std::move(body));
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
		} else if (req.path == "/slowbig" && big) {
			// Blocks the loop, so that clients pile up in the backlog.
			pause(300);
			res.body = big;
		} else if (req.path == "/split") {
			res.body = std::make_shared<const std::string>("data part\n");
			res.tail = std::make_shared<const std::string>("self part\n");
		} else if (req.path == "/pieces") {
			// More pieces than one writev takes (IOV_MAX, 1024).
			auto pieces = std::make_shared<SharedBuffers>();
			for (int i = 0; i < 3000; i++)
				pieces->add(std::make_shared<const std::string>(std::to_string(i) + ","));
			pieces->add(std::make_shared<const std::string>(""));
			res.body = std::make_shared<const std::string>("[");
			res.pieces = pieces;
			res.tail = std::make_shared<const std::string>("]\n");
		} else if (req.path == "/gzip") {
			// As pmed answers a scrape that accepts gzip: the header and
			// pieces deflated once, and a tail made for the request.
			auto pieces = std::make_shared<SharedBuffers>();
			pieces->add(std::make_shared<const std::string>(gzipHeader()));
			uint32_t crc = 0;
			for (const char *text : {"data ", "part\n"}) {
				auto d = std::make_shared<const Deflated>(deflatePiece(text));
				pieces->add(std::shared_ptr<const std::string>(d, &d->bytes));
				crc = crc32Combine(crc, d->crc, std::strlen(text));
			}
			res.contentType = contentType(Format::OpenMetrics);
			res.headers.emplace_back("Vary", "Accept, Accept-Encoding");
			res.headers.emplace_back("Content-Encoding", "gzip");
			res.pieces = pieces;
			res.tail = std::make_shared<const std::string>(gzipTail(crc, 10, "self part\n"));
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

TEST(HttpServing, BodyPiecesAndTailGoOutAsOneBody)
{
	Harness h;
	Response r, head, after;
	h.run([&](int port) {
		int fd = connectTo(port);
		std::string buf;
		sendAll(fd, get("/pieces"));
		r = readResponse(fd, buf);
		sendAll(fd, "HEAD /pieces HTTP/1.1\r\nHost: t\r\n\r\n");
		head = readResponse(fd, buf, true);
		sendAll(fd, get("/next"));
		after = readResponse(fd, buf);
		close(fd);
	});
	std::string want = "[";
	for (int i = 0; i < 3000; i++)
		want += std::to_string(i) + ",";
	want += "]\n";
	CHECK_TRUE(r.complete);
	CHECK(r.body == want);
	STRCMP_EQUAL(std::to_string(want.size()).c_str(), r.header("Content-Length").c_str());
	STRCMP_EQUAL(std::to_string(want.size()).c_str(), head.header("Content-Length").c_str());
	STRCMP_EQUAL("body of /next\n", after.body.c_str());
}

TEST(HttpServing, AGzipBodyInPiecesAndItsHeadersForGetAndHead)
{
	Harness h;
	Response r, head, after;
	h.run([&](int port) {
		int fd = connectTo(port);
		std::string buf;
		sendAll(fd, get("/gzip", "Accept-Encoding: gzip\r\n"));
		r = readResponse(fd, buf);
		sendAll(fd, "HEAD /gzip HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n");
		head = readResponse(fd, buf, true);
		sendAll(fd, get("/next"));
		after = readResponse(fd, buf);
		close(fd);
	});
	CHECK_TRUE(r.complete);
	STRCMP_EQUAL("gzip", r.header("Content-Encoding").c_str());
	STRCMP_EQUAL("Accept, Accept-Encoding", r.header("Vary").c_str());
	STRCMP_EQUAL("application/openmetrics-text; version=1.0.0; charset=utf-8",
	    r.header("Content-Type").c_str());
	STRCMP_EQUAL(std::to_string(r.body.size()).c_str(), r.header("Content-Length").c_str());
	// zlib's inflate checks the CRC and length of the whole member.
	z_stream z{};
	LONGS_EQUAL(Z_OK, inflateInit2(&z, 16 + MAX_WBITS));
	char out[256];
	z.next_in = reinterpret_cast<Bytef *>(r.body.data());
	z.avail_in = static_cast<uInt>(r.body.size());
	z.next_out = reinterpret_cast<Bytef *>(out);
	z.avail_out = sizeof out;
	LONGS_EQUAL(Z_STREAM_END, inflate(&z, Z_FINISH));
	LONGS_EQUAL(0, z.avail_in);
	STRCMP_EQUAL("data part\nself part\n", std::string(out, sizeof out - z.avail_out).c_str());
	inflateEnd(&z);
	// HEAD: the same headers, no body (the next response reads cleanly).
	CHECK_TRUE(head.complete);
	for (const char *name : {"Content-Encoding", "Vary", "Content-Type", "Content-Length"})
		STRCMP_EQUAL(r.header(name).c_str(), head.header(name).c_str());
	CHECK_TRUE(after.complete);
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

TEST(HttpServing, AtTheCapTheConnectionWaitingLongestIsEvicted)
{
	HttpLimits limits;
	limits.maxConnections = 2;
	Harness h(limits);
	Response ra, rb, rc, rb2, rd;
	bool aClosed = false, cClosed = false;
	std::string cData;
	h.run([&](int port) {
		std::string ba, bb, bc, bd;
		// a: partway through a request, the oldest.
		int a = connectTo(port);
		sendAll(a, "GET /a HTTP/1.1\r\nHo");
		pause(50);
		// b: a complete request, then idle on keep-alive.
		int b = connectTo(port);
		sendAll(b, get("/b"));
		rb = readResponse(b, bb);
		pause(50);
		// c takes a's place; a is told why.
		int c = connectTo(port);
		sendAll(c, get("/c"));
		rc = readResponse(c, bc);
		ra = readResponse(a, ba);
		aClosed = closedByServer(a);
		close(a);
		// b was left alone.
		sendAll(b, get("/b2"));
		rb2 = readResponse(b, bb);
		pause(50);
		// Now c has waited longest (b's second answer came later): it
		// is closed as its idle timeout would, without a word.
		int d = connectTo(port);
		sendAll(d, get("/d"));
		rd = readResponse(d, bd);
		cClosed = closedByServer(c, &cData);
		close(c);
		close(b);
		close(d);
	});
	LONGS_EQUAL(200, rb.status);
	LONGS_EQUAL(200, rc.status);
	CHECK_TRUE(isBusy(ra));
	CHECK_TRUE(aClosed);
	LONGS_EQUAL(200, rb2.status);
	LONGS_EQUAL(200, rd.status);
	CHECK_TRUE(cClosed);
	STRCMP_EQUAL("", cData.c_str());
	LONGS_EQUAL(2, h.server().connectionsEvicted());
	LONGS_EQUAL(0, h.server().connectionsRefused());
	LONGS_EQUAL(4, h.seen.size());
}

TEST(HttpServing, AConnectionBeingAnsweredIsNeverEvicted)
{
	HttpLimits limits;
	limits.maxConnections = 2;
	Harness h(limits);
	h.big = bigBody();
	Response rw, rs, rn;
	h.run([&](int port) {
		std::string bw, bs, bn;
		// w, the oldest, asks for a large body and does not read it.
		int w = connectTo(port, 65536);
		sendAll(w, get("/big"));
		pause(50);
		int slow = connectTo(port);
		sendAll(slow, "GET / HTTP/1.1\r\n");
		pause(50);
		int n = connectTo(port);
		sendAll(n, get("/n"));
		rn = readResponse(n, bn);
		rs = readResponse(slow, bs);
		// w's answer arrives whole.
		rw = readResponse(w, bw);
		close(w);
		close(slow);
		close(n);
	});
	LONGS_EQUAL(200, rn.status);
	CHECK_TRUE(isBusy(rs));
	CHECK_TRUE(rw.complete);
	CHECK_TRUE(rw.body == *h.big);
	LONGS_EQUAL(1, h.server().connectionsEvicted());
	LONGS_EQUAL(0, h.server().connectionsRefused());
}

TEST(HttpServing, WhenEveryConnectionIsBeingAnsweredTheNewcomerIsRefused)
{
	HttpLimits limits;
	limits.maxConnections = 1;
	Harness h(limits);
	h.big = bigBody();
	Response rw, rx;
	bool xClosed = false;
	double waited = 0;
	h.run([&](int port) {
		std::string bw, bx;
		int w = connectTo(port, 65536);
		sendAll(w, get("/big"));
		pause(50);
		auto t0 = std::chrono::steady_clock::now();
		int x = connectTo(port);
		sendAll(x, get("/x"));
		rx = readResponse(x, bx);
		xClosed = closedByServer(x);
		waited = secondsSince(t0);
		close(x);
		rw = readResponse(w, bw);
		close(w);
	});
	// Refused at once, not queued until w is done.
	CHECK_TRUE(isBusy(rx));
	CHECK_TRUE(xClosed);
	CHECK(waited < 1);
	CHECK_TRUE(rw.body == *h.big);
	LONGS_EQUAL(1, h.server().connectionsRefused());
	LONGS_EQUAL(0, h.server().connectionsEvicted());
	LONGS_EQUAL(1, h.seen.size());
}

TEST(HttpServing, AConnectionThatHasJustArrivedIsNotEvicted)
{
	// a and b connect while the handler blocks the loop, so the loop
	// accepts both at once, before reading either: a's request is in the
	// kernel's buffer, and taking a's place would drop a client that is
	// not slow at all.  b is refused instead.
	HttpLimits limits;
	limits.maxConnections = 2;
	Harness h(limits);
	h.big = bigBody();
	Response ra, rb, rs;
	h.run([&](int port) {
		std::string bs, ba, bb;
		int s = connectTo(port, 65536);
		sendAll(s, get("/slowbig"));
		pause(100);
		int a = connectTo(port);
		int b = connectTo(port);
		sendAll(a, get("/a"));
		sendAll(b, get("/b"));
		rb = readResponse(b, bb);
		ra = readResponse(a, ba);
		rs = readResponse(s, bs);
		close(a);
		close(b);
		close(s);
	});
	LONGS_EQUAL(200, ra.status);
	CHECK_TRUE(isBusy(rb));
	CHECK_TRUE(rs.body == *h.big);
	LONGS_EQUAL(1, h.server().connectionsRefused());
	LONGS_EQUAL(0, h.server().connectionsEvicted());
}

TEST(HttpServing, AClosingConnectionIsEvictedFirst)
{
	HttpLimits limits;
	limits.maxConnections = 2;
	Harness h(limits);
	Response rs, rc, rn;
	std::string cData;
	h.run([&](int port) {
		std::string bs, bc, bn;
		// slow has waited longest, but c has had its answer and is only
		// lingering, so c goes first.
		int slow = connectTo(port);
		sendAll(slow, "GET / HTTP/1.1\r\n");
		pause(50);
		int c = connectTo(port);
		sendAll(c, get("/c", "Connection: close\r\n"));
		rc = readResponse(c, bc);
		pause(50);
		int n = connectTo(port);
		sendAll(n, get("/n"));
		rn = readResponse(n, bn);
		// slow is still there, and can finish.
		sendAll(slow, "Host: t\r\n\r\n");
		rs = readResponse(slow, bs);
		closedByServer(c, &cData);
		close(c);
		close(slow);
		close(n);
	});
	LONGS_EQUAL(200, rc.status);
	STRCMP_EQUAL("", cData.c_str());
	LONGS_EQUAL(200, rn.status);
	LONGS_EQUAL(200, rs.status);
	LONGS_EQUAL(1, h.server().connectionsEvicted());
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
	std::string extra;
	h.run([&](int port) {
		std::string buf;
		int fd = connectTo(port);
		sendAll(fd, "GET / HTTP/1.1\r\nHost: t\r\n"); // never finished
		r = readResponse(fd, buf);
		closed = closedByServer(fd);
		close(fd);
		// A client that connects and sends nothing is not kept either.
		fd = connectTo(port);
		silentClosed = closedByServer(fd, &extra);
		close(fd);
	});
	LONGS_EQUAL(408, r.status);
	STRCMP_EQUAL("close", r.header("Connection").c_str());
	CHECK_TRUE(closed);
	CHECK_TRUE(silentClosed);
	STRCMP_EQUAL("", extra.c_str());
	LONGS_EQUAL(2, h.server().requestsTimedOut());
	LONGS_EQUAL(0, h.seen.size());
}

TEST(HttpServing, TricklingBytesDoesNotExtendTheRequestTimeout)
{
	// A new connection's request timeout runs from the accept: neither a
	// late first byte nor a byte now and then restarts it.
	HttpLimits limits;
	limits.requestTimeoutMs = 400;
	Harness h(limits);
	Response r;
	double at = 0;
	h.run([&](int port) {
		std::string buf, line = "GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ";
		auto t0 = std::chrono::steady_clock::now();
		int fd = connectTo(port);
		pause(300);
		pollfd p{fd, POLLIN, 0};
		for (size_t i = 0; secondsSince(t0) < 3; i++) {
			if (!sendAll(fd, std::string(1, i < line.size() ? line[i] : 'y')))
				break;
			if (poll(&p, 1, 20) == 1)
				break;
		}
		at = secondsSince(t0);
		r = readResponse(fd, buf);
		close(fd);
	});
	LONGS_EQUAL(408, r.status);
	// Restarted at the first byte, it would have fired at 0.7 s at best.
	CHECK(at >= 0.35 && at < 0.65);
	LONGS_EQUAL(1, h.server().requestsTimedOut());
}

TEST(HttpServing, OnAKeptAliveConnectionTheRequestTimeoutStartsAtItsFirstByte)
{
	HttpLimits limits;
	limits.requestTimeoutMs = 150;
	limits.idleTimeoutMs = 60000;
	Harness h(limits);
	Response a, b;
	h.run([&](int port) {
		std::string buf;
		int fd = connectTo(port);
		sendAll(fd, get("/a"));
		a = readResponse(fd, buf);
		pause(400);
		sendAll(fd, get("/b"));
		b = readResponse(fd, buf);
		close(fd);
	});
	LONGS_EQUAL(200, a.status);
	LONGS_EQUAL(200, b.status);
	STRCMP_EQUAL("body of /b\n", b.body.c_str());
	LONGS_EQUAL(0, h.server().requestsTimedOut());
}

TEST(HttpServing, TheRequestTimeoutDoesNotCutAResponseShort)
{
	// Taking a large body slowly is bounded by the write timeout, not by
	// the request timeout.
	HttpLimits limits;
	limits.requestTimeoutMs = 100;
	Harness h(limits);
	h.big = bigBody();
	Response r;
	h.run([&](int port) {
		std::string buf;
		int fd = connectTo(port, 65536);
		sendAll(fd, get("/big"));
		pause(400);
		r = readResponse(fd, buf);
		close(fd);
	});
	CHECK_TRUE(r.complete);
	CHECK_TRUE(r.body == *h.big);
}

TEST(HttpServing, AClientThatStopsReadingIsClosedAfterTheWriteTimeout)
{
	HttpLimits limits;
	limits.writeTimeoutMs = 200;
	Harness h(limits);
	h.big = bigBody();
	Response r;
	h.run([&](int port) {
		std::string buf;
		int fd = connectTo(port, 65536);
		sendAll(fd, get("/big"));
		pause(600);
		r = readResponse(fd, buf);
		close(fd);
	});
	LONGS_EQUAL(200, r.status);
	CHECK_FALSE(r.complete);
}

TEST(HttpServing, ABadRequestIsAnsweredWhileTheClientIsStillSending)
{
	// The server answers 414 after 1 KiB, but goes on reading (and
	// dropping) the rest: closing with it unread would reset the
	// connection under the client, which would see that instead of 414.
	HttpLimits limits;
	limits.maxHeaderBytes = 1024;
	Harness h(limits);
	Response r;
	bool sent = false, clean = false;
	h.run([&](int port) {
		std::string buf;
		int fd = connectTo(port);
		sent = sendAll(fd, "GET /" + std::string(4 << 20, 'a') + " HTTP/1.1\r\n\r\n");
		r = readResponse(fd, buf);
		clean = closedCleanly(fd);
		close(fd);
	});
	CHECK_TRUE(sent);
	LONGS_EQUAL(414, r.status);
	STRCMP_EQUAL("close", r.header("Connection").c_str());
	CHECK_TRUE(clean);
}

TEST(HttpServing, PipelinedRequestsBeforeABadOneAreAnsweredFirst)
{
	Harness h;
	Response a, b, bad;
	bool clean = false;
	h.run([&](int port) {
		std::string buf;
		int fd = connectTo(port);
		sendAll(fd, get("/a") + get("/b") + "BREW /pot HTCPCP/1.0\r\n\r\n" + get("/never"));
		a = readResponse(fd, buf);
		b = readResponse(fd, buf);
		bad = readResponse(fd, buf);
		clean = closedCleanly(fd);
		close(fd);
	});
	STRCMP_EQUAL("body of /a\n", a.body.c_str());
	STRCMP_EQUAL("body of /b\n", b.body.c_str());
	LONGS_EQUAL(400, bad.status);
	STRCMP_EQUAL("close", bad.header("Connection").c_str());
	CHECK_TRUE(clean);
	LONGS_EQUAL(2, h.seen.size());
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
