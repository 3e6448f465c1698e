// SPDX-License-Identifier: ISC
// Fuzz target: the supervisor's HTTP server (daemon/http_server), over real loopback connections.
//
// Built two ways, as fuzz_frame.c is: a libFuzzer target with
// -DPME_LIBFUZZER -fsanitize=fuzzer, otherwise a meson test whose main()
// runs a bounded deterministic batch.
//
// An input is the bytes a client sends.  HttpServer is driven through its
// public API only, on one uv loop shared with the client: it listens on
// 127.0.0.1 port 0; a uv_tcp_t client connects and writes the input in
// pieces cut at points drawn from a hash of the input (one piece per loop
// iteration, so that the server reads each before the next is sent and
// llhttp sees requests cut anywhere), shuts its side down, and reads until
// the server closes.  The shutdown is what ends an input: the server
// answers what it has, sees the end of the client's requests and closes,
// and no input waits for a timeout.  The handler answers a few paths
// (/metrics with a body in two parts, /health, 404 elsewhere, 204, a
// handler that throws, and headers with CR or LF that must not reach the
// client), and the limits are small (1 KiB of request line and headers)
// so that short inputs reach them.
//
// What must hold:
//  - what comes back is a sequence of complete responses, each
//    "HTTP/1.1 ", a 3-digit status, a reason, headers, one Content-Length
//    and that many bytes of body (none for HEAD);
//  - the handler sees only GET and HEAD, a path that is the target up to
//    '?', header names in lower case, a target within the limit;
//  - the handler's requests are answered in order, each with the status it
//    chose (500 when it threw); a response the server makes itself is 400,
//    405, 408, 413, 414 or 431; after any of them but 405, and after a
//    "Connection: close", nothing follows and the connection is closed;
//  - a header the handler returns with CR or LF in it never reaches the
//    client (no response splitting);
//  - the server closes within 5 s of the client's shutdown, and
//    connections() comes back to 0; requestsServed() grew by the number of
//    responses;
//  - a plain GET on a new connection is then answered with 200 and the
//    handler's body: nothing an input did broke the server.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <uv.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.hpp"
#include "daemon/http_server.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

using namespace pme;
using daemon::HttpRequest;
using daemon::HttpResponse;
using fuzz::broken;
using fuzz::check;

namespace {

// Outcomes, to show how deep a run went.
size_t responses = 0, handled = 0, refusals = 0, cut = 0;

constexpr size_t kMaxHeaderBytes = 1024;
constexpr uint64_t kDeadlineMs = 5000;

const auto metricsBody = std::make_shared<const std::string>(
    "# HELP pme_up Whether the exporter runs.\n# TYPE pme_up gauge\npme_up 1\n");
const auto metricsTail = std::make_shared<const std::string>("pme_scrapes_total 7\n");

// A request as the handler saw it, and what it answered.
struct Seen {
	std::string method;
	int status = 0;
	bool threw = false;
};

struct Server {
	uv_loop_t loop;
	std::unique_ptr<daemon::HttpServer> http;
	sockaddr_in addr{};
	std::vector<Seen> seen; // of the current exchange

	Server()
	{
		// A write to a connection the server closed must fail, not kill.
		std::signal(SIGPIPE, SIG_IGN);
		common::log::init("fuzz_http", common::log::Sink::Callback, 0);
		common::log::setCallback([](int, const std::string &) {});
		uv_loop_init(&loop);
		daemon::HttpLimits limits;
		limits.maxHeaderBytes = kMaxHeaderBytes;
		limits.requestTimeoutMs = 10000;
		limits.idleTimeoutMs = 10000;
		http = std::make_unique<daemon::HttpServer>(&loop,
		    [this](const HttpRequest &r) { return handle(r); }, limits);
		auto l = http->listen("127.0.0.1:0");
		if (!l || http->port() <= 0) {
			std::fprintf(stderr, "fuzz_http: cannot listen on 127.0.0.1: %s\n",
			    l ? "no port" : l.error().message.c_str());
			std::exit(1);
		}
		uv_ip4_addr("127.0.0.1", http->port(), &addr);
	}

	HttpResponse handle(const HttpRequest &r)
	{
		handled++;
		check(r.method == "GET" || r.method == "HEAD", [&] {
			return "the handler sees a " + fuzz::cLiteral(r.method, 40) + " request";
		});
		check(r.path == r.target.substr(0, r.target.find('?')),
		    "the path is not the target up to '?'");
		check(r.target.size() <= kMaxHeaderBytes, "a target over the limit");
		for (const auto &h : r.headers)
			check(h.first.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string::npos,
			    [&] { return "header name " + fuzz::cLiteral(h.first, 80) +
				" not in lower case"; });
		Seen s{r.method, 200, false};
		HttpResponse resp;
		resp.headers.emplace_back("X-Fuzz-Request", std::to_string(seen.size()));
		if (r.path == "/metrics") {
			resp.contentType = "text/plain; version=0.0.4; charset=utf-8";
			resp.body = metricsBody;
			resp.tail = metricsTail;
		} else if (r.path == "/health") {
			resp.contentType = "application/json";
			resp.body = std::make_shared<const std::string>("{\"status\":\"ok\"}\n");
		} else if (r.path == "/split") {
			resp.headers.emplace_back("X-Split", "a\r\nX-Injected: 1");
			resp.headers.emplace_back("X-Injected\r\nX-Other", "1");
			resp.headers.emplace_back("Content-Length", "99");
			resp.body = metricsTail;
		} else if (r.path == "/type") {
			resp.contentType = "text/plain\r\nX-Injected: 1";
			resp.body = metricsTail;
		} else if (r.path == "/empty") {
			resp.status = 204;
		} else if (r.path == "/throw") {
			seen.push_back({r.method, 500, true});
			throw std::runtime_error("the handler fails");
		} else {
			resp.status = 404;
			resp.body = std::make_shared<const std::string>("Not Found\n");
		}
		s.status = resp.status;
		seen.push_back(s);
		return resp;
	}
};

Server &server()
{
	static Server s;
	return s;
}

// ---- the client ----

struct Client {
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_write_t write;
	uv_shutdown_t shutdown;
	uv_timer_t pace;      // one piece per loop iteration
	uv_timer_t deadline;
	std::vector<std::string_view> pieces;
	size_t next = 0;
	std::string received;
	bool ended = false;   // the server closed: EOF or an error
	int readError = 0;
	bool expired = false;
	bool closing = false;
	int open = 0;         // handles not yet closed

	static Client *of(void *handle)
	{
		return static_cast<Client *>(static_cast<uv_handle_t *>(handle)->data);
	}

	void writeNext()
	{
		if (closing || ended)
			return;
		if (next == pieces.size()) {
			uv_shutdown(&shutdown, reinterpret_cast<uv_stream_t *>(&tcp),
			    [](uv_shutdown_t *, int) noexcept {});
			return;
		}
		std::string_view p = pieces[next++];
		uv_buf_t buf = uv_buf_init(const_cast<char *>(p.data()), static_cast<unsigned>(p.size()));
		write.data = this;
		// A write that fails, now or in its callback, is the server having
		// closed the connection early: the read side sees that too, and
		// the rest of the input is not sent.
		uv_write(&write, reinterpret_cast<uv_stream_t *>(&tcp), &buf, 1,
		    [](uv_write_t *w, int status) noexcept {
			Client *c = static_cast<Client *>(w->data);
			if (status == 0 && !c->closing)
				uv_timer_start(&c->pace, [](uv_timer_t *t) noexcept {
					of(t)->writeNext();
				}, 0, 0);
		});
	}
};

struct Exchange {
	std::string received;
	int readError = 0;
	uint64_t served = 0;   // requestsServed() during the exchange
};

// Connects, sends the pieces, shuts down, reads until the server closes,
// and waits for the server to drop the connection.
Exchange exchange(const std::vector<std::string_view> &pieces)
{
	Server &s = server();
	uint64_t servedBefore = s.http->requestsServed();
	Client c;
	c.pieces = pieces;
	uv_tcp_init(&s.loop, &c.tcp);
	uv_timer_init(&s.loop, &c.pace);
	uv_timer_init(&s.loop, &c.deadline);
	c.tcp.data = c.pace.data = c.deadline.data = &c;
	c.open = 3;
	c.connect.data = &c;
	uv_tcp_connect(&c.connect, &c.tcp, reinterpret_cast<const sockaddr *>(&s.addr),
	    [](uv_connect_t *req, int status) noexcept {
		Client *cl = static_cast<Client *>(req->data);
		if (cl->closing)
			return;
		check(status == 0, [&] {
			return std::string("cannot connect to the server: ") + uv_strerror(status);
		});
		// Each piece goes out at once, not held back by Nagle for an ACK.
		uv_tcp_nodelay(&cl->tcp, 1);
		uv_read_start(reinterpret_cast<uv_stream_t *>(&cl->tcp),
		    [](uv_handle_t *, size_t, uv_buf_t *buf) noexcept {
			static char storage[65536];
			*buf = uv_buf_init(storage, sizeof storage);
		}, [](uv_stream_t *st, ssize_t n, const uv_buf_t *buf) noexcept {
			Client *c2 = Client::of(st);
			if (n > 0) {
				c2->received.append(buf->base, static_cast<size_t>(n));
			} else if (n < 0) {
				c2->ended = true;
				c2->readError = n == UV_EOF ? 0 : static_cast<int>(n);
				uv_read_stop(st);
			}
		});
		cl->writeNext();
	});
	uv_timer_start(&c.deadline, [](uv_timer_t *t) noexcept { Client::of(t)->expired = true; },
	    kDeadlineMs, 0);
	while (!c.ended && !c.expired)
		uv_run(&s.loop, UV_RUN_ONCE);
	check(!c.expired, "the server has not closed the connection 5 s after the client's "
	    "shutdown");

	// The server is done: the client closes its socket, as a scraper does
	// after "Connection: close", and the server, which may linger to read
	// what is left, must then let the connection go.
	c.closing = true;
	auto closed = [](uv_handle_t *h) noexcept { Client::of(h)->open--; };
	uv_close(reinterpret_cast<uv_handle_t *>(&c.tcp), closed);
	uv_close(reinterpret_cast<uv_handle_t *>(&c.pace), closed);
	uv_timer_start(&c.deadline, [](uv_timer_t *t) noexcept { Client::of(t)->expired = true; },
	    kDeadlineMs, 0);
	while ((c.open > 1 || s.http->connections() != 0) && !c.expired)
		uv_run(&s.loop, UV_RUN_ONCE);
	check(s.http->connections() == 0, [&] {
		return "the server keeps " + std::to_string(s.http->connections()) +
		    " connections 5 s after the client closed its own";
	});
	uv_close(reinterpret_cast<uv_handle_t *>(&c.deadline), closed);
	while (c.open > 0)
		uv_run(&s.loop, UV_RUN_ONCE);
	return {std::move(c.received), c.readError, s.http->requestsServed() - servedBefore};
}

// ---- the responses ----

struct Response {
	int status = 0;
	std::string head;     // status line and headers, without the blank line
	long request = -1;    // X-Fuzz-Request: which handler call answered
	bool close = false;   // Connection: close
	std::string body;
};

bool iequals(std::string_view a, std::string_view b)
{
	if (a.size() != b.size())
		return false;
	for (size_t i = 0; i < a.size(); i++)
		if (std::tolower(static_cast<unsigned char>(a[i])) !=
		    std::tolower(static_cast<unsigned char>(b[i])))
			return false;
	return true;
}

// The responses in what was received, checked one by one.
std::vector<Response> parseResponses(const std::string &in, const std::vector<Seen> &seen)
{
	std::vector<Response> out;
	size_t pos = 0, k = 0;
	while (pos < in.size()) {
		Response r;
		check(in.compare(pos, 9, "HTTP/1.1 ") == 0 && in.size() >= pos + 13 &&
		    std::isdigit(static_cast<unsigned char>(in[pos + 9])) &&
		    std::isdigit(static_cast<unsigned char>(in[pos + 10])) &&
		    std::isdigit(static_cast<unsigned char>(in[pos + 11])) && in[pos + 12] == ' ',
		    [&] { return "a response does not start with HTTP/1.1 and a status: " +
			fuzz::cLiteral(in.substr(pos, 80)); });
		r.status = std::stoi(in.substr(pos + 9, 3));
		size_t end = in.find("\r\n\r\n", pos);
		check(end != std::string::npos, "a response's head cut short");
		r.head = in.substr(pos, end - pos);
		size_t line = r.head.find("\r\n");
		check(line != std::string::npos && line > 13, "a status line without a reason");
		int lengths = 0;
		size_t length = 0;
		while (line != std::string::npos) {
			size_t from = line + 2, to = r.head.find("\r\n", from);
			std::string_view h = std::string_view(r.head).substr(from,
			    to == std::string::npos ? std::string::npos : to - from);
			size_t colon = h.find(": ");
			check(colon != std::string::npos && colon > 0, [&] {
				return "a malformed header line " + fuzz::cLiteral(h, 120);
			});
			std::string_view name = h.substr(0, colon), value = h.substr(colon + 2);
			check(!iequals(name, "x-injected") && !iequals(name, "x-other") &&
			    h.find('\n') == std::string::npos && h.find('\r') == std::string::npos,
			    [&] { return "a header the handler had broken reached the client: " +
				fuzz::cLiteral(h, 120); });
			if (iequals(name, "content-length")) {
				lengths++;
				check(!value.empty() && value.find_first_not_of("0123456789") ==
				    std::string_view::npos, "a Content-Length that is not a number");
				length = std::stoul(std::string(value));
			} else if (iequals(name, "connection")) {
				r.close = r.close || iequals(value, "close");
			} else if (name == "X-Fuzz-Request") {
				r.request = std::stol(std::string(value));
			}
			line = to;
		}
		check(lengths == 1, "a response without exactly one Content-Length");
		// A HEAD request's answer has no body, whoever made it.
		bool head = false;
		if (r.request >= 0 && static_cast<size_t>(r.request) < seen.size())
			head = seen[r.request].method == "HEAD";
		else if (r.status == 500 && k < seen.size() && seen[k].threw)
			head = seen[k].method == "HEAD";
		size_t bodyLength = head ? 0 : length;
		check(in.size() - (end + 4) >= bodyLength, "a response's body cut short");
		r.body = in.substr(end + 4, bodyLength);
		pos = end + 4 + bodyLength;

		if (r.request >= 0) {
			check(static_cast<size_t>(r.request) == k && k < seen.size(), [&] {
				return "response for request " + std::to_string(r.request) +
				    " where " + std::to_string(k) + " was due";
			});
			check(r.status == seen[k].status, "a status other than the handler's");
			k++;
		} else if (r.status == 500 && k < seen.size() && seen[k].threw) {
			k++;
		} else {
			refusals++;
			check(r.status == 400 || r.status == 405 || r.status == 408 ||
			    r.status == 413 || r.status == 414 || r.status == 431, [&] {
				return "the server answers " + std::to_string(r.status) +
				    " by itself";
			});
			check(r.status == 405 || r.close, [&] {
				return "a " + std::to_string(r.status) +
				    " without Connection: close";
			});
		}
		check(!r.close || pos == in.size(), "bytes after a Connection: close response");
		out.push_back(std::move(r));
	}
	check(k == seen.size(), [&] {
		return std::to_string(seen.size()) + " requests reached the handler, " +
		    std::to_string(k) + " were answered";
	});
	return out;
}

// Where to cut the input: from a hash of it, so that an input is always
// cut the same way.
std::vector<std::string_view> cutInput(std::string_view in)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (unsigned char c : in)
		h = (h ^ c) * 0x100000001b3ULL;
	fuzz::Rng rng(h | 1);
	std::vector<size_t> at{0};
	if (in.size() < 200 && rng.chance(10)) {
		for (size_t i = 1; i < in.size(); i++)
			at.push_back(i);
	} else {
		for (size_t n = rng.below(6); n > 0 && !in.empty(); n--)
			at.push_back(rng.below(in.size()));
		std::sort(at.begin(), at.end());
	}
	at.push_back(in.size());
	std::vector<std::string_view> pieces;
	for (size_t i = 0; i + 1 < at.size(); i++)
		if (at[i + 1] > at[i])
			pieces.push_back(in.substr(at[i], at[i + 1] - at[i]));
	cut += pieces.size() > 1;
	return pieces;
}

void checkServerStillAnswers()
{
	Server &s = server();
	s.seen.clear();
	static const std::string get = "GET /metrics HTTP/1.1\r\nHost: pme\r\n\r\n";
	Exchange e = exchange({get});
	auto rs = parseResponses(e.received, s.seen);
	check(rs.size() == 1 && rs[0].status == 200 && rs[0].body == *metricsBody + *metricsTail, [&] {
		return "after the input, a plain GET gets " + fuzz::cLiteral(e.received, 400);
	});
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Server &s = server();
	fuzz::targetName = "fuzz_http";
	const std::string_view input(reinterpret_cast<const char *>(data), size);
	fuzz::currentInput = input;
	try {
		s.seen.clear();
		Exchange e = exchange(cutInput(input));
		fuzz::context = "the responses";
		check(e.readError == 0 || e.readError == UV_ECONNRESET, [&] {
			return std::string("reading the responses fails: ") + uv_strerror(e.readError);
		});
		auto rs = parseResponses(e.received, s.seen);
		responses += rs.size();
		check(rs.size() == e.served, [&] {
			return std::to_string(e.served) + " responses served, " +
			    std::to_string(rs.size()) + " received";
		});
		fuzz::context = "a plain GET afterwards";
		checkServerStillAnswers();
		fuzz::context = {};
	} catch (const std::bad_alloc &) {
		// libFuzzer's -rss_limit_mb: exhaustion is not what is tested.
	} catch (const std::exception &e) {
		broken(std::string("exception: ") + e.what());
	}
	return 0;
}

#ifndef PME_LIBFUZZER

namespace {

// Requests as clients send them.
const std::vector<std::string> embeddedSeeds = {
	// Prometheus 2.45 scraping.
	"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:10064\r\nUser-Agent: Prometheus/2.45.0\r\n"
	"Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
	"version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n"
	"Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
	"GET /health HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
	"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics?x=1&y HTTP/1.1\r\nHost: x\r\n\r\n"
	"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n",
	"GET /metrics HTTP/1.0\r\n\r\n",
	"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /health HTTP/1.0\r\n\r\n",
	"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /metrics HTTP/1.1\r\n\r\n",
	"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
	"GET /split HTTP/1.1\r\n\r\nGET /type HTTP/1.1\r\n\r\nHEAD /throw HTTP/1.1\r\n\r\n"
	"GET /throw HTTP/1.1\r\n\r\nGET /empty HTTP/1.1\r\n\r\n",
	"GET http://127.0.0.1:10064/metrics HTTP/1.1\r\n\r\nOPTIONS * HTTP/1.1\r\n\r\n",
	"GET /metrics HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nxyz",
	"GET /metrics HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n",
	"GET /metrics HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
	"GET /metrics HTTP/1.1\nHost: x\n\n",
	"GET /metrics HTTP/2.0\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
	"GET /" + std::string(1100, 'a') + " HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nX-Long: " + std::string(1100, 'b') + "\r\n\r\n",
	"GET / HTTP/1.1\r\n" + std::string(60, 'c') + ": d\r\n" + std::string(60, 'e') + ": f\r\n\r\n",
	"GET /caf\xc3\xa9 HTTP/1.1\r\nX: \xff\r\n\r\n",
	"get /metrics HTTP/1.1\r\n\r\n",
	"GET /metrics HTTP/1.1\r\nHost: x\r\n \r\n folded\r\n\r\n",
	"\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n",
};

const std::vector<std::string> dict = {
	"GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "CONNECT ", "OPTIONS ", "TRACE ", "PRI ",
	" HTTP/1.1\r\n", " HTTP/1.0\r\n", " HTTP/0.9\r\n", " HTTP/9.9\r\n", "\r\n", "\n", "\r",
	"\r\n\r\n", ": ", ":", " ", "\t", "Host: x\r\n", "Connection: close\r\n",
	"Connection: keep-alive\r\n", "Connection: Upgrade\r\nUpgrade: h2c\r\n",
	"Content-Length: 0\r\n", "Content-Length: 65537\r\n", "Content-Length: -1\r\n",
	"Content-Length: 18446744073709551616\r\n", "Transfer-Encoding: chunked\r\n",
	"Transfer-Encoding: gzip, chunked\r\n", "Expect: 100-continue\r\n", "0\r\n\r\n",
	"ffffffffffffffff\r\n", "/metrics", "/health", "/split", "/type", "/throw", "/empty",
	"?", "#", "%00", "%", "*", "http://h/", std::string(1, '\0'), "\x7f", "\xc3\xa9", "\xff",
	std::string(300, 'x'),
};

// Request level edits: a request repeated (pipelining), a header line
// repeated, dropped or made long, a line end changed.
void mutateRequest(std::string &s, fuzz::Rng &rng)
{
	size_t a = s.empty() ? 0 : rng.below(s.size());
	size_t start = s.rfind('\n', a);
	start = start == std::string::npos ? 0 : start + 1;
	size_t end = s.find('\n', a);
	end = end == std::string::npos ? s.size() : end + 1;
	std::string line = s.substr(start, end - start);
	switch (rng.below(5)) {
	case 0:
		s += s.substr(0, s.find("\r\n\r\n") == std::string::npos ? s.size() :
		    s.find("\r\n\r\n") + 4);
		break;
	case 1:
		s.insert(start, line);
		break;
	case 2:
		s.erase(start, end - start);
		break;
	case 3:
		s.insert(start, "X-Pad: " + std::string(kMaxHeaderBytes - 200 + rng.below(400), 'p') +
		    "\r\n");
		break;
	default:
		if (start > 0 && s[start - 1] == '\n')
			s.insert(start - 1, rng.chance(50) ? "\r" : " ");
		break;
	}
}

} // namespace

int main(int argc, char **argv)
{
	fuzz::targetName = "fuzz_http";
	std::optional<long> batch = fuzz::runArgs(argc, argv, LLVMFuzzerTestOneInput, 3000);
	if (!batch)
		return 0;
	const long runs = *batch;
	fuzz::Rng rng(0xb5470917038d3c3fULL);
	auto run = [](const std::string &s) {
		LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(s.data()), s.size());
	};
	for (const auto &seed : embeddedSeeds) {
		fuzz::saveSeed(seed);
		run(seed);
	}
	// The first seed cut at every byte: a request that stops anywhere.
	for (size_t len = 0; len < embeddedSeeds[0].size(); len++)
		run(embeddedSeeds[0].substr(0, len));
	for (long i = 0; i < runs; i++) {
		std::string input;
		if (rng.chance(5)) {
			for (size_t n = rng.below(300); n > 0; n--)
				input += static_cast<char>(rng.next());
		} else {
			input = rng.pick(embeddedSeeds);
			if (rng.chance(20))
				input += rng.pick(embeddedSeeds);
			for (size_t n = rng.below(3); n > 0; n--)
				mutateRequest(input, rng);
			if (rng.chance(60))
				fuzz::mutateBytes(input, rng, dict, rng.pick(embeddedSeeds), 4096);
		}
		run(input);
	}
	std::printf("fuzz_http: %zu seeds, a cut of each length and %ld random or mutated "
	    "inputs survived (%zu responses, %zu requests handled, %zu refused by the server, "
	    "%zu inputs sent in pieces), and a plain GET after each was answered\n",
	    embeddedSeeds.size(), runs, responses, handled, refusals, cut);
	return 0;
}

#endif
