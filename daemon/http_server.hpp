// SPDX-License-Identifier: ISC
// Minimal HTTP/1.1 server on libuv + llhttp: GET/HEAD, keep-alive, limits.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "daemon/shared_buffers.hpp"

namespace pme::daemon {

struct HttpRequest {
	std::string method;           // "GET", "HEAD", ...
	std::string target;           // raw request target
	std::string path;             // target without the query
	std::vector<std::pair<std::string, std::string>> headers; // names lower-cased
	const std::string *header(const std::string &lowerName) const;
};

struct HttpResponse {
	int status = 200;
	std::string contentType = "text/plain; charset=utf-8";
	// Shared so that the pre-rendered exposition is sent without a copy.
	std::shared_ptr<const std::string> body;
	// Sent after body, each piece a buffer of the same write.
	std::shared_ptr<const SharedBuffers> pieces;
	// Sent last, in the same write: the small part of a body that changes
	// on every request.
	std::shared_ptr<const std::string> tail;
	std::vector<std::pair<std::string, std::string>> headers; // extra headers
};

// The defaults are for an exporter: a few scrapers, each on one keep-alive
// connection, sending a small request in one piece.
struct HttpLimits {
	// Connections open at once.  A slow or idle client does not keep a
	// newcomer out (see HttpServer), so the cap bounds descriptors and
	// memory, not who is served: 256 is far more than the scrapers and
	// probes of one host, and with a second listener and a few hundred
	// workers still fits the soft RLIMIT_NOFILE of 1024 that systemd
	// gives a service.
	size_t maxConnections = 256;
	// Request line plus headers.  Prometheus sends about 300 bytes; 8 KiB
	// is what common servers allow, and bounds what a client makes us hold.
	size_t maxHeaderBytes = 8192;
	// A request must be complete within this, counted from the accept on
	// a new connection and from the first byte on a kept-alive one.  A
	// scraper sends its request at once; 5 s still allows for a
	// retransmission or two on a lossy link.
	uint64_t requestTimeoutMs = 5000;
	// Keep-alive idle time.  Longer than Prometheus' default
	// scrape_interval of 1m, so that a scraper's connection is reused and
	// not closed just as its next scrape is sent.  An idle connection can
	// be evicted when the cap is reached, so this keeps no one out.
	uint64_t idleTimeoutMs = 90000;
	// A response must be taken by the client within this.  Prometheus
	// gives up after its scrape_timeout, at most the scrape_interval (1m
	// by default); a client still not reading after 60 s has stopped.
	uint64_t writeTimeoutMs = 60000;
};

// Routes requests to one handler.  HEAD is answered like GET without the
// body; methods other than GET and HEAD get 405 and the connection goes
// on.  A malformed request gets 400, an oversized request line 414,
// oversized headers 431, an oversized body 413, a request not complete in
// time 408, and the connection is then closed.
//
// At maxConnections, a new connection takes the place of one that is
// closing after its last answer, else of the one that has waited longest
// for a request (idle, or partway through one); it is refused, with a 503,
// only when every open connection is being answered or has only just
// arrived.
class HttpServer {
public:
	using Handler = std::function<HttpResponse(const HttpRequest &)>;

	HttpServer(uv_loop_t *loop, Handler handler, HttpLimits limits = {});
	~HttpServer();
	HttpServer(const HttpServer &) = delete;
	HttpServer &operator=(const HttpServer &) = delete;

	// Listen on "host:port", "[v6]:port" or ":port" (all addresses).
	common::Result<void> listen(const std::string &address);
	// Accept on fd, a TCP socket already bound and listening (one that
	// systemd passed), which the server then owns.  Returns the address
	// it listens on, written as listen() takes it.
	common::Result<std::string> adopt(int fd);
	// Stop accepting and close every connection.
	void close();
	size_t connections() const;
	uint64_t requestsServed() const;
	// Connections closed to make room for a new one at maxConnections.
	uint64_t connectionsEvicted() const;
	// Connections closed at once because none could be evicted, or
	// because accept(2) failed (out of descriptors).
	uint64_t connectionsRefused() const;
	// Requests not complete within requestTimeoutMs, including new
	// connections that sent nothing.
	uint64_t requestsTimedOut() const;
	// The local port of the listener-th successful listen(), -1 if none
	// (tests listen on port 0).
	int port(size_t listener = 0) const;

	struct Impl;

private:
	std::unique_ptr<Impl> impl_;
};

// Parse "host:port" forms into a sockaddr.
common::Result<void> parseListenAddress(const std::string &address, sockaddr_storage *out);

} // namespace pme::daemon
