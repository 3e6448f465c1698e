// SPDX-License-Identifier: ISC
// Source type http: one HTTP/1.1 exchange per read, on libuv and llhttp.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <llhttp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/error.hpp"
#include "common/http_url.hpp"
#include "common/uv_handle.hpp"
#include "source.hpp"

namespace pme::worker {

// What a read of an http source asks for.
struct HttpRequest {
	std::string url;             // http://host[:port]/path?query, http://[v6]:port/...,
	                             // or unix:/path/to.sock:/url/path
	std::string method = "GET";
	std::string body;            // sent with Content-Length when non-empty (or when the
	                             // method is POST, PUT or PATCH)
	common::Pairs headers;       // extra request headers, in order; they override the
	                             // defaults of the same name (case-insensitive)
	std::string username;        // basic auth when username is non-empty
	std::string password;        // literal password, or
	std::string passwordFile;    // read at each request, one trailing \n or \r\n stripped
	std::string token;           // bearer token, or
	std::string tokenFile;       // read at each request, trailing newline stripped
	common::Millis timeout{10000}; // whole exchange: DNS, connect, redirects, body
	uint64_t maxBody = 1024 * 1024; // beyond it the body is cut, truncated=true
	int maxRedirects = 5;        // 0: a redirect is the response (a failure: not 2xx)
	bool httpCache = false;      // honour Cache-Control max-age, ETag, Last-Modified
	std::string userAgent = "pme";
};

using common::HttpUrl;
using common::parseHttpUrl;
using common::resolveLocation;

// Check the method and the extra headers: empty when fine, else a message.
// Content-Length, Transfer-Encoding and Connection are pme's to set.
std::string checkHttpRequest(const HttpRequest &request);

// Runs one HTTP exchange at a time (with its redirects) against the URL of
// a group; see http_source.cpp for how.
class HttpSource {
public:
	HttpSource(uv_loop_t *loop, HttpRequest request);
	~HttpSource();
	HttpSource(const HttpSource &) = delete;
	HttpSource &operator=(const HttpSource &) = delete;

	// Run one exchange; cb is called once, from the loop (never inside
	// start()), unless cancel().  Not while running().  A body reused
	// while fresh (http_cache, max-age) comes back cached, with
	// httpStatus 200 and responseSeconds -1: no request was made.
	void start(SourceCallback cb);
	bool running() const { return running_; }
	// Drop the exchange in flight: its callback is never called.
	void cancel();
	// Requests actually sent (each redirect counts).
	uint64_t requests() const { return requests_; }
	const HttpRequest &request() const { return request_; }

	struct DnsReq;
	struct SecretRead;

private:
	friend struct DnsReq;
	friend struct SecretRead;

	// The response being received.
	struct Response {
		int status = 0;
		std::string reason;
		common::Pairs headers;   // names in lower case
		std::string field, value;
		size_t headerBytes = 0;
		std::string body;
		bool truncated = false;
		bool done = false;
		uint64_t received = 0;
		const std::string *header(const char *lowerName) const;
	};

	static void onTimer(uv_timer_t *t) noexcept;
	static void onConnect(uv_connect_t *req, int status) noexcept;
	static void onWrite(uv_write_t *req, int status) noexcept;
	static void onAlloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) noexcept;
	static void onRead(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) noexcept;
	static const llhttp_settings_t *settings();
	static int onStatus(llhttp_t *p, const char *at, size_t len) noexcept;
	static int onHeaderField(llhttp_t *p, const char *at, size_t len) noexcept;
	static int onHeaderValue(llhttp_t *p, const char *at, size_t len) noexcept;
	static int onHeaderValueComplete(llhttp_t *p) noexcept;
	static int onHeadersComplete(llhttp_t *p) noexcept;
	static int onBody(llhttp_t *p, const char *at, size_t len) noexcept;
	static int onMessageComplete(llhttp_t *p) noexcept;

	void secretRead(std::string secret, std::string error);
	void connectTarget();
	void resolved(int status, const struct addrinfo *res);
	void tryNextAddress();
	void connected(int status);
	void handleRead(ssize_t nread, const uv_buf_t *buf);
	void responseDone();
	std::string requestText();
	std::string prefix() const;
	void fail(const std::string &why, int status = 0);
	void finish(SourceRead read);
	void closeIo();
	void handleTimer();
	bool cacheFresh() const;
	void storeCache(const Response &r);
	void updateFreshness(const Response &r);

	uv_loop_t *loop_;
	HttpRequest request_;
	std::optional<HttpUrl> origin_;  // the configured URL, once parsed
	std::string checkError_;         // why the request cannot be sent at all
	SourceCallback cb_;
	bool running_ = false;
	uint64_t requests_ = 0;

	// The exchange in flight.
	uint64_t startNs_ = 0;
	HttpUrl target_;
	std::string method_;
	std::string body_;
	int redirects_ = 0;
	std::string authorization_;      // header value, empty for none
	bool validatorsSent_ = false;    // the request in flight has If-None-Match...
	bool delivering_ = false;
	SourceRead result_;
	std::optional<common::UvHandle<uv_timer_t>> timer_;
	std::optional<common::UvHandle<uv_tcp_t>> tcp_;
	std::optional<common::UvHandle<uv_pipe_t>> pipe_;
	DnsReq *dns_ = nullptr;
	SecretRead *secret_ = nullptr;
	std::vector<sockaddr_storage> addrs_;
	size_t nextAddr_ = 0;
	std::string connectError_;
	llhttp_t parser_{};
	Response resp_;
	std::vector<char> buf_;

	// http_cache: the last 200 response of a GET.
	bool cacheValid_ = false;
	std::string cacheUrl_;           // the URL that answered it
	std::string cacheBody_;
	bool cacheTruncated_ = false;
	std::string etag_, lastModified_;
	bool cacheReusable_ = false;     // max-age given, no no-cache/no-store
	uint64_t freshUntilNs_ = 0;
};

} // namespace pme::worker
