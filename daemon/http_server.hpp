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
	// Sent right after body, as a second buffer of the same write: the
	// small part of a body that changes on every request.
	std::shared_ptr<const std::string> tail;
	std::vector<std::pair<std::string, std::string>> headers; // extra headers
};

struct HttpLimits {
	size_t maxConnections = 64;
	size_t maxHeaderBytes = 8192;  // request line + headers
	uint64_t requestTimeoutMs = 10000; // a request must be complete within
	uint64_t idleTimeoutMs = 60000;    // keep-alive idle time
};

// Routes requests to one handler.  HEAD is answered like GET without the
// body; methods other than GET and HEAD get 405, malformed requests 400,
// oversized headers 431, oversized request lines 414, then the connection
// is closed.
class HttpServer {
public:
	using Handler = std::function<HttpResponse(const HttpRequest &)>;

	HttpServer(uv_loop_t *loop, Handler handler, HttpLimits limits = {});
	~HttpServer();
	HttpServer(const HttpServer &) = delete;
	HttpServer &operator=(const HttpServer &) = delete;

	// Listen on "host:port", "[v6]:port" or ":port" (all addresses).
	common::Result<void> listen(const std::string &address);
	// Stop accepting and close every connection.
	void close();
	size_t connections() const;
	uint64_t requestsServed() const;
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
