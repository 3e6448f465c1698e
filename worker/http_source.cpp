// SPDX-License-Identifier: ISC
// Source type http: one HTTP/1.1 exchange per read, on libuv and llhttp.
//
// An exchange is a chain of asynchronous steps on the worker's loop:
//
//   [read password_file/token_file] -> [resolve] -> connect -> write ->
//   read and parse -> [redirect: back to resolve] -> deliver
//
// Every request says "Connection: close": one connection per request, so
// that there is no pool to manage, no stale keep-alive connection to retry
// and the end of a body that has neither length nor chunks is the end of
// the connection (llhttp_finish() at EOF).  Responses are parsed with llhttp
// in response mode; the parser is paused when the final response is
// complete (or its body has reached max_output), and 1xx interim responses
// are skipped.
//
// One timer runs from start() to the end and covers everything: the secret
// file, DNS, every connection attempt, every redirect and the body.  The same
// timer, restarted at zero, delivers the result, so that the callback never
// runs inside start() nor inside a libuv or llhttp callback of the exchange:
// a callback that starts the next read or destroys the source is safe.
//
// Lifetimes.  The socket and the timer are common::UvHandle nodes; closing
// one clears its data pointer, so a connect or write request that libuv
// completes with UV_ECANCELED afterwards finds no owner and only frees
// itself (those requests are on the heap for that reason).  A
// uv_getaddrinfo() or uv_fs_*() request running in the thread pool cannot be
// taken back: it is a heap object with an owner pointer that cancel() and
// the destructor clear, and it frees itself (and whatever it opened) when it
// completes.
//
// Credentials.  The Authorization header made from username/password or
// from a bearer token, and configured Authorization, Cookie and Host
// headers, are sent only to the origin (host and port, or socket) of the
// configured URL.  A redirect elsewhere gets the request without them: a
// server must not be able to send pme's credentials to a host of its
// choice.
//
// http_cache.  Off by default: every read is a request.  On, the body of
// the last 200 answer to a GET is kept with its ETag and Last-Modified,
// sent back as If-None-Match and If-Modified-Since; a 304 then hands back
// the kept body (cached=true).  While Cache-Control max-age (less Age) has
// not run out, and neither no-cache nor no-store was given, the body is
// reused without any request at all; no-store forgets it.
#include "http_source.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/un.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "common/utf8.hpp"

namespace pme::worker {

using common::fail;
using common::Result;

namespace {

constexpr size_t kReadBuffer = 64 * 1024;
constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr size_t kMaxReason = 256;
constexpr size_t kMaxSecret = 64 * 1024;

using common::asciiLower;
using common::equalsIgnoringCase;
using common::trimBlanks;

bool allDigits(std::string_view s)
{
	return !s.empty() && std::all_of(s.begin(), s.end(),
	    [](char c) { return c >= '0' && c <= '9'; });
}

std::string base64(std::string_view in)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	std::string out;
	size_t i = 0;
	for (; i + 2 < in.size(); i += 3) {
		uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16 |
		    static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8 |
		    static_cast<unsigned char>(in[i + 2]);
		out += abc[v >> 18 & 63];
		out += abc[v >> 12 & 63];
		out += abc[v >> 6 & 63];
		out += abc[v & 63];
	}
	if (i + 1 == in.size()) {
		uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16;
		out += abc[v >> 18 & 63];
		out += abc[v >> 12 & 63];
		out += "==";
	} else if (i + 2 == in.size()) {
		uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16 |
		    static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
		out += abc[v >> 18 & 63];
		out += abc[v >> 12 & 63];
		out += abc[v >> 6 & 63];
		out += '=';
	}
	return out;
}

std::string addressText(const sockaddr *sa)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET6) {
		const auto *s6 = reinterpret_cast<const sockaddr_in6 *>(sa);
		uv_ip6_name(s6, host, sizeof host);
		port = ntohs(s6->sin6_port);
		return "[" + std::string(host) + "]:" + std::to_string(port);
	}
	const auto *s4 = reinterpret_cast<const sockaddr_in *>(sa);
	uv_ip4_name(s4, host, sizeof host);
	port = ntohs(s4->sin_port);
	return std::string(host) + ":" + std::to_string(port);
}

std::string uvError(int64_t err)
{
	return uv_strerror(static_cast<int>(err));
}

// What Cache-Control (all of its headers) says.
struct CacheControl {
	bool noStore = false;
	bool noCache = false;
	std::optional<uint64_t> maxAge;
};

uint64_t parseSeconds(std::string_view s)
{
	uint64_t v = 0;
	auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
	if (ec == std::errc::result_out_of_range)
		return UINT64_MAX;
	(void)p;
	return v;
}

} // namespace

std::string checkHttpRequest(const HttpRequest &r)
{
	if (std::string e = common::checkHttpUrl(r.url); !e.empty())
		return e;
	if (!common::httpToken(r.method))
		return "invalid HTTP method '" + common::shorten(r.method, 40) + "'";
	for (const auto &[name, value] : r.headers) {
		if (!common::httpToken(name))
			return "invalid HTTP header name '" + common::shorten(name, 60) + "'";
		if (common::hasLineBreak(value))
			return "the value of header " + name + " has a line break";
		if (equalsIgnoringCase(name, "content-length") || equalsIgnoringCase(name, "transfer-encoding") ||
		    equalsIgnoringCase(name, "connection"))
			return "header " + name + " is set by pme and cannot be configured";
	}
	if (r.username.find(':') != std::string::npos)
		return "a username for basic authentication cannot contain ':'";
	if (common::hasLineBreak(r.username))
		return "the username has a line break";
	if (!r.password.empty() && !r.passwordFile.empty())
		return "password and password_file are exclusive";
	if (!r.token.empty() && !r.tokenFile.empty())
		return "token and token_file are exclusive";
	if ((!r.password.empty() || !r.passwordFile.empty()) && r.username.empty())
		return "a password needs a username";
	if (!r.username.empty() && (!r.token.empty() || !r.tokenFile.empty()))
		return "basic authentication (username) and a bearer token are exclusive";
	if (common::hasLineBreak(r.token))
		return "the token has a line break";
	if (common::hasLineBreak(r.userAgent))
		return "the user agent has a line break";
	if (r.maxRedirects < 0)
		return "the redirect limit cannot be negative";
	return std::string();
}

// A password_file or token_file, read on the thread pool like a file source.
struct HttpSource::SecretRead {
	enum class Step { Open, Read, Close };

	HttpSource *owner;
	uv_loop_t *loop;
	std::string path;
	std::string what;            // "password_file" or "token_file"
	uv_fs_t req{};
	Step step = Step::Open;
	uv_file fd = -1;
	std::string content;
	std::string error;
	std::array<char, 4096> buf{};

	static void onFs(uv_fs_t *req) noexcept;
	void next(ssize_t result);
	void readMore();
	void close();
	void done();
};

void HttpSource::SecretRead::onFs(uv_fs_t *req) noexcept
{
	static_cast<SecretRead *>(req->data)->next(req->result);
}

void HttpSource::SecretRead::readMore()
{
	step = Step::Read;
	uv_buf_t b = uv_buf_init(buf.data(), static_cast<unsigned int>(buf.size()));
	req.data = this;
	uv_fs_read(loop, &req, fd, &b, 1, -1, onFs);
}

void HttpSource::SecretRead::close()
{
	step = Step::Close;
	req.data = this;
	uv_fs_close(loop, &req, fd, onFs);
}

void HttpSource::SecretRead::next(ssize_t result)
{
	uv_fs_req_cleanup(&req);
	std::string cannot = "cannot read " + what + " " + path + ": ";
	switch (step) {
	case Step::Open:
		if (result < 0) {
			error = cannot + std::strerror(static_cast<int>(-result));
			return done();
		}
		fd = static_cast<uv_file>(result);
		if (owner == nullptr)
			return close();
		return readMore();
	case Step::Read:
		if (result < 0) {
			error = cannot + std::strerror(static_cast<int>(-result));
			return close();
		}
		if (result == 0 || owner == nullptr)
			return close();
		content.append(buf.data(), static_cast<size_t>(result));
		if (content.size() > kMaxSecret) {
			error = what + " " + path + " is larger than " +
			    std::to_string(kMaxSecret / 1024) + " KiB";
			return close();
		}
		return readMore();
	case Step::Close:
		fd = -1;
		return done();
	}
}

void HttpSource::SecretRead::done()
{
	HttpSource *o = owner;
	std::string text = std::move(content);
	std::string err = std::move(error);
	bool token = what == "token_file";
	std::string p = std::move(path);
	delete this;
	if (o == nullptr)
		return;
	o->secret_ = nullptr;
	if (err.empty()) {
		// One trailing newline is the file's, not the secret's.
		if (text.size() >= 2 && text.compare(text.size() - 2, 2, "\r\n") == 0)
			text.resize(text.size() - 2);
		else if (!text.empty() && text.back() == '\n')
			text.pop_back();
		if (token && text.empty())
			err = "token_file " + p + " is empty";
		else if (token && std::any_of(text.begin(), text.end(),
		    [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
			err = "token_file " + p + " has a line break or control character";
	}
	o->secretRead(std::move(text), std::move(err));
}

// A name resolution in the thread pool; it outlives a cancelled exchange.
struct HttpSource::DnsReq {
	uv_getaddrinfo_t req{};
	HttpSource *owner;

	static void onResolved(uv_getaddrinfo_t *req, int status, addrinfo *res) noexcept;
};

void HttpSource::DnsReq::onResolved(uv_getaddrinfo_t *req, int status, addrinfo *res) noexcept
{
	auto *d = static_cast<DnsReq *>(req->data);
	HttpSource *self = d->owner;
	delete d;
	if (self != nullptr) {
		self->dns_ = nullptr;
		self->resolved(status, res);
	}
	if (res != nullptr)
		uv_freeaddrinfo(res);
}

namespace {

struct WriteReq {
	uv_write_t req{};
	std::string text;
};

} // namespace

const std::string *HttpSource::Response::header(const char *lowerName) const
{
	for (const auto &[n, v] : headers)
		if (n == lowerName)
			return &v;
	return nullptr;
}

HttpSource::HttpSource(uv_loop_t *loop, HttpRequest request)
	: loop_(loop), request_(std::move(request)), buf_(kReadBuffer)
{
	checkError_ = checkHttpRequest(request_);
	if (checkError_.empty())
		origin_ = *parseHttpUrl(request_.url);
}

HttpSource::~HttpSource()
{
	cancel();
}

std::string HttpSource::prefix() const
{
	std::string p = request_.method + " " + request_.url;
	if (origin_ && target_.str() != origin_->str())
		p += " (redirected to " + target_.str() + ")";
	return p;
}

void HttpSource::start(SourceCallback cb)
{
	if (running_)
		throw std::logic_error("HttpSource::start while running");
	cb_ = std::move(cb);
	running_ = true;
	delivering_ = false;
	result_ = SourceRead();
	resp_ = Response();
	redirects_ = 0;
	authorization_.clear();
	method_ = request_.method;
	body_ = request_.body;
	target_ = origin_ ? *origin_ : HttpUrl();
	uv_update_time(loop_);
	startNs_ = uv_hrtime();

	timer_.emplace();
	uv_timer_init(loop_, timer_->get());
	timer_->initialized();
	timer_->get()->data = this;
	uv_timer_start(timer_->get(), onTimer, static_cast<uint64_t>(request_.timeout.count()), 0);

	if (!checkError_.empty())
		return fail(checkError_);
	if (cacheFresh()) {
		SourceRead read;
		read.content = cacheBody_;
		read.truncated = cacheTruncated_;
		read.cached = true;
		read.httpStatus = 200;
		if (read.truncated)
			read.error = common::sanitizeUtf8(prefix() + ": response body cut at " +
			    std::to_string(request_.maxBody) + " bytes (max_output)");
		return finish(std::move(read));
	}

	std::string file, what;
	if (!request_.username.empty() && !request_.passwordFile.empty()) {
		file = request_.passwordFile;
		what = "password_file";
	} else if (request_.username.empty() && !request_.tokenFile.empty()) {
		file = request_.tokenFile;
		what = "token_file";
	}
	if (file.empty())
		return secretRead(std::string(), std::string());
	secret_ = new SecretRead{this, loop_, file, what};
	secret_->req.data = secret_;
	int r = uv_fs_open(loop_, &secret_->req, file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK, 0, SecretRead::onFs);
	if (r < 0) {
		delete secret_;
		secret_ = nullptr;
		return fail("cannot read " + what + " " + file + ": " + uvError(r));
	}
}

void HttpSource::secretRead(std::string secret, std::string error)
{
	if (!error.empty())
		return fail(error);
	if (!request_.username.empty()) {
		const std::string &pw = request_.passwordFile.empty() ? request_.password : secret;
		authorization_ = "Basic " + base64(request_.username + ":" + pw);
	} else {
		const std::string &token = request_.tokenFile.empty() ? request_.token : secret;
		if (!token.empty())
			authorization_ = "Bearer " + token;
	}
	connectTarget();
}

void HttpSource::connectTarget()
{
	resp_ = Response();
	llhttp_init(&parser_, HTTP_RESPONSE, settings());
	parser_.data = this;
	addrs_.clear();
	nextAddr_ = 0;
	connectError_.clear();

	if (target_.unixSocket) {
		pipe_.emplace();
		uv_pipe_init(loop_, pipe_->get(), 0);
		pipe_->initialized();
		pipe_->get()->data = this;
		auto *req = new uv_connect_t{};
		// Errors, even immediate ones, come through onConnect.
		uv_pipe_connect(req, pipe_->get(), target_.socketPath.c_str(), onConnect);
		return;
	}

	sockaddr_storage ss{};
	if (target_.ipv6Literal) {
		if (uv_ip6_addr(target_.host.c_str(), target_.port,
		    reinterpret_cast<sockaddr_in6 *>(&ss)) == 0)
			addrs_.push_back(ss);
	} else if (uv_ip4_addr(target_.host.c_str(), target_.port,
	    reinterpret_cast<sockaddr_in *>(&ss)) == 0) {
		addrs_.push_back(ss);
	}
	if (!addrs_.empty())
		return tryNextAddress();

	dns_ = new DnsReq{{}, this};
	dns_->req.data = dns_;
	addrinfo hints{};
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	std::string port = std::to_string(target_.port);
	int r = uv_getaddrinfo(loop_, &dns_->req, DnsReq::onResolved, target_.host.c_str(),
	    port.c_str(), &hints);
	if (r < 0) {
		delete dns_;
		dns_ = nullptr;
		fail("cannot resolve " + target_.host + ": " + uvError(r));
	}
}

void HttpSource::resolved(int status, const addrinfo *res)
{
	if (status < 0)
		return fail("cannot resolve " + target_.host + ": " + uvError(status));
	for (const addrinfo *ai = res; ai != nullptr; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(sockaddr_storage))
			continue;
		sockaddr_storage ss{};
		std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		addrs_.push_back(ss);
	}
	if (addrs_.empty())
		return fail("cannot resolve " + target_.host + ": no IPv4 or IPv6 address");
	tryNextAddress();
}

void HttpSource::tryNextAddress()
{
	// One address after the other, until one accepts.
	while (nextAddr_ < addrs_.size()) {
		const auto *sa = reinterpret_cast<const sockaddr *>(&addrs_[nextAddr_++]);
		tcp_.reset();
		tcp_.emplace();
		uv_tcp_init(loop_, tcp_->get());
		tcp_->initialized();
		tcp_->get()->data = this;
		auto *req = new uv_connect_t{};
		int r = uv_tcp_connect(req, tcp_->get(), sa, onConnect);
		if (r == 0)
			return;
		delete req;
		connectError_ = "cannot connect to " + addressText(sa) + ": " + uvError(r);
	}
	tcp_.reset();
	fail(connectError_.empty() ? "no address to connect to" : connectError_);
}

void HttpSource::onConnect(uv_connect_t *req, int status) noexcept
{
	auto *self = static_cast<HttpSource *>(req->handle->data);
	delete req;
	if (self != nullptr)
		self->connected(status);
}

void HttpSource::connected(int status)
{
	if (status < 0) {
		if (target_.unixSocket)
			return fail("cannot connect to " + target_.socketPath + ": " +
			    uvError(status));
		const auto *sa = reinterpret_cast<const sockaddr *>(&addrs_[nextAddr_ - 1]);
		connectError_ = "cannot connect to " + addressText(sa) + ": " + uvError(status);
		return tryNextAddress();
	}
	uv_stream_t *stream;
	if (tcp_) {
		uv_tcp_nodelay(tcp_->get(), 1);
		stream = reinterpret_cast<uv_stream_t *>(tcp_->get());
	} else {
		stream = reinterpret_cast<uv_stream_t *>(pipe_->get());
	}
	auto *w = new WriteReq;
	w->req.data = w;
	w->text = requestText();
	uv_buf_t b = uv_buf_init(w->text.data(), static_cast<unsigned int>(w->text.size()));
	int r = uv_write(&w->req, stream, &b, 1, onWrite);
	if (r < 0) {
		delete w;
		return fail("cannot send the request: " + uvError(r));
	}
	requests_++;
	r = uv_read_start(stream, onAlloc, onRead);
	if (r < 0)
		return fail("cannot read the response: " + uvError(r));
}

std::string HttpSource::requestText()
{
	// Credentials and the configured Host go to the configured origin only.
	bool sameOrigin = origin_ && target_.origin() == origin_->origin();
	struct Header {
		std::string name, value;
		bool configured;
	};
	std::vector<Header> hs;
	hs.push_back({"Host", target_.hostHeader(), false});
	if (!request_.userAgent.empty())
		hs.push_back({"User-Agent", request_.userAgent, false});
	hs.push_back({"Accept", "*/*", false});
	if (sameOrigin && !authorization_.empty())
		hs.push_back({"Authorization", authorization_, false});
	validatorsSent_ = false;
	if (request_.httpCache && cacheValid_ && method_ == "GET" && target_.str() == cacheUrl_) {
		if (!etag_.empty())
			hs.push_back({"If-None-Match", etag_, false});
		if (!lastModified_.empty())
			hs.push_back({"If-Modified-Since", lastModified_, false});
		validatorsSent_ = !etag_.empty() || !lastModified_.empty();
	}
	for (const auto &[name, value] : request_.headers) {
		if (!sameOrigin && (equalsIgnoringCase(name, "authorization") || equalsIgnoringCase(name, "cookie") ||
		    equalsIgnoringCase(name, "proxy-authorization") || equalsIgnoringCase(name, "host")))
			continue;
		auto it = std::find_if(hs.begin(), hs.end(), [&](const Header &h) {
			return !h.configured && equalsIgnoringCase(h.name, name);
		});
		if (it != hs.end()) {
			it->name = name;
			it->value = value;
			it->configured = true;
		} else {
			hs.push_back({name, value, true});
		}
	}
	std::string text = method_ + " " + target_.target + " HTTP/1.1\r\n";
	for (const auto &h : hs)
		text += h.name + ": " + h.value + "\r\n";
	if (!body_.empty() || method_ == "POST" || method_ == "PUT" || method_ == "PATCH")
		text += "Content-Length: " + std::to_string(body_.size()) + "\r\n";
	text += "Connection: close\r\n\r\n";
	text += body_;
	return text;
}

void HttpSource::onWrite(uv_write_t *req, int) noexcept
{
	// A failed write shows on the reading side (reset, or EOF without a
	// response), which says more.
	delete static_cast<WriteReq *>(req->data);
}

void HttpSource::onAlloc(uv_handle_t *h, size_t, uv_buf_t *buf) noexcept
{
	auto *self = static_cast<HttpSource *>(h->data);
	if (self == nullptr) {
		*buf = uv_buf_init(nullptr, 0);
		return;
	}
	*buf = uv_buf_init(self->buf_.data(), static_cast<unsigned int>(self->buf_.size()));
}

void HttpSource::onRead(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) noexcept
{
	auto *self = static_cast<HttpSource *>(s->data);
	if (self != nullptr)
		self->handleRead(nread, buf);
}

void HttpSource::handleRead(ssize_t nread, const uv_buf_t *buf)
{
	if (nread == 0)
		return;
	if (nread == UV_EOF) {
		if (!resp_.done)
			llhttp_finish(&parser_);
		if (resp_.done)
			return responseDone();
		if (resp_.received == 0)
			return fail("connection closed without a response");
		return fail("connection closed before the end of the response");
	}
	if (nread == UV_ECONNRESET)
		return fail("connection reset by peer before the end of the response");
	if (nread < 0)
		return fail("cannot read the response: " + uvError(nread));
	resp_.received += static_cast<uint64_t>(nread);
	llhttp_errno_t err = llhttp_execute(&parser_, buf->base, static_cast<size_t>(nread));
	if (resp_.done)
		return responseDone();
	if (err != HPE_OK) {
		const char *reason = llhttp_get_error_reason(&parser_);
		return fail("invalid HTTP response: " +
		    std::string(reason != nullptr && *reason != '\0' ? reason :
		    llhttp_errno_name(err)));
	}
}

const llhttp_settings_t *HttpSource::settings()
{
	static const llhttp_settings_t s = [] {
		llhttp_settings_t v;
		llhttp_settings_init(&v);
		v.on_status = onStatus;
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

namespace {

HttpSource *of(llhttp_t *p)
{
	return static_cast<HttpSource *>(p->data);
}

int headerTooLarge(llhttp_t *p)
{
	llhttp_set_error_reason(p, "response headers larger than 64 KiB");
	return HPE_USER;
}

} // namespace

int HttpSource::onStatus(llhttp_t *p, const char *at, size_t len) noexcept
{
	Response &r = of(p)->resp_;
	if (r.reason.size() < kMaxReason)
		r.reason.append(at, std::min(len, kMaxReason - r.reason.size()));
	return HPE_OK;
}

int HttpSource::onHeaderField(llhttp_t *p, const char *at, size_t len) noexcept
{
	Response &r = of(p)->resp_;
	r.headerBytes += len;
	if (r.headerBytes > kMaxHeaderBytes)
		return headerTooLarge(p);
	r.field.append(at, len);
	return HPE_OK;
}

int HttpSource::onHeaderValue(llhttp_t *p, const char *at, size_t len) noexcept
{
	Response &r = of(p)->resp_;
	r.headerBytes += len;
	if (r.headerBytes > kMaxHeaderBytes)
		return headerTooLarge(p);
	r.value.append(at, len);
	return HPE_OK;
}

int HttpSource::onHeaderValueComplete(llhttp_t *p) noexcept
{
	Response &r = of(p)->resp_;
	r.headers.emplace_back(asciiLower(r.field), std::string(trimBlanks(r.value)));
	r.field.clear();
	r.value.clear();
	return HPE_OK;
}

int HttpSource::onHeadersComplete(llhttp_t *p) noexcept
{
	HttpSource *self = of(p);
	self->resp_.status = llhttp_get_status_code(p);
	// The answer to HEAD has the headers of a body, and no body.
	return self->method_ == "HEAD" ? 1 : 0;
}

int HttpSource::onBody(llhttp_t *p, const char *at, size_t len) noexcept
{
	HttpSource *self = of(p);
	Response &r = self->resp_;
	uint64_t room = self->request_.maxBody > r.body.size() ?
	    self->request_.maxBody - r.body.size() : 0;
	if (len > room) {
		r.body.append(at, static_cast<size_t>(room));
		r.truncated = true;
		r.done = true;
		return HPE_PAUSED;
	}
	r.body.append(at, len);
	return HPE_OK;
}

int HttpSource::onMessageComplete(llhttp_t *p) noexcept
{
	Response &r = of(p)->resp_;
	int status = llhttp_get_status_code(p);
	if (status >= 100 && status < 200 && status != 101) {
		// An interim response (103 Early Hints...): the real one follows.
		r.status = 0;
		r.reason.clear();
		r.headers.clear();
		r.body.clear();
		return HPE_OK;
	}
	r.status = status;
	r.done = true;
	return HPE_PAUSED;
}

namespace {

CacheControl cacheControl(const common::Pairs &headers)
{
	CacheControl cc;
	for (const auto &[name, value] : headers) {
		if (name != "cache-control")
			continue;
		std::string_view v = value;
		while (!v.empty()) {
			size_t comma = v.find(',');
			std::string_view d = trimBlanks(v.substr(0, comma));
			v = comma == std::string_view::npos ? std::string_view() :
			    v.substr(comma + 1);
			size_t eq = d.find('=');
			std::string key = asciiLower(trimBlanks(d.substr(0, eq)));
			std::string_view arg = eq == std::string_view::npos ? std::string_view() :
			    trimBlanks(d.substr(eq + 1));
			if (arg.size() >= 2 && arg.front() == '"' && arg.back() == '"')
				arg = arg.substr(1, arg.size() - 2);
			if (key == "no-store")
				cc.noStore = true;
			else if (key == "no-cache")
				cc.noCache = true;
			else if (key == "max-age" && allDigits(arg))
				cc.maxAge = parseSeconds(arg);
		}
	}
	return cc;
}

} // namespace

bool HttpSource::cacheFresh() const
{
	return request_.httpCache && cacheValid_ && cacheReusable_ && request_.method == "GET" &&
	    uv_hrtime() < freshUntilNs_;
}

void HttpSource::updateFreshness(const Response &r)
{
	CacheControl cc = cacheControl(r.headers);
	cacheReusable_ = false;
	if (!cc.maxAge || cc.noCache || cc.noStore)
		return;
	uint64_t age = 0;
	if (const std::string *a = r.header("age"); a != nullptr && allDigits(*a))
		age = parseSeconds(*a);
	if (*cc.maxAge <= age)
		return;
	// A year at most: that is long enough, and no overflow below.
	uint64_t lifetime = std::min<uint64_t>(*cc.maxAge - age, 366ULL * 86400);
	cacheReusable_ = true;
	freshUntilNs_ = uv_hrtime() + lifetime * 1000000000ULL;
}

void HttpSource::storeCache(const Response &r)
{
	if (cacheControl(r.headers).noStore) {
		cacheValid_ = false;
		cacheReusable_ = false;
		cacheBody_.clear();
		etag_.clear();
		lastModified_.clear();
		return;
	}
	cacheValid_ = true;
	cacheUrl_ = target_.str();
	cacheBody_ = r.body;
	cacheTruncated_ = r.truncated;
	const std::string *etag = r.header("etag");
	const std::string *modified = r.header("last-modified");
	// Sent back verbatim: they must not break the request.
	etag_ = etag != nullptr && !common::hasLineBreak(*etag) ? *etag : std::string();
	lastModified_ = modified != nullptr && !common::hasLineBreak(*modified) ? *modified :
	    std::string();
	updateFreshness(r);
}

void HttpSource::responseDone()
{
	Response &r = resp_;
	int status = r.status;
	double seconds = static_cast<double>(uv_hrtime() - startNs_) / 1e9;
	bool redirect = status == 301 || status == 302 || status == 303 || status == 307 ||
	    status == 308;
	const std::string *location = r.header("location");
	if (redirect && location != nullptr && request_.maxRedirects > 0) {
		if (redirects_ >= request_.maxRedirects)
			return fail("too many redirects (" + std::to_string(request_.maxRedirects) +
			    ")", status);
		auto next = resolveLocation(target_, *location);
		if (!next)
			return fail(next.error().message, status);
		redirects_++;
		// 303, and 301/302 after a POST (what browsers and curl do),
		// become a GET without body; 307 and 308 keep both.
		if ((status == 303 && method_ != "HEAD") ||
		    ((status == 301 || status == 302) && method_ == "POST")) {
			method_ = "GET";
			body_.clear();
		}
		closeIo();
		target_ = std::move(*next);
		return connectTarget();
	}

	SourceRead read;
	read.httpStatus = status;
	read.responseSeconds = seconds;
	if (status == 304 && validatorsSent_ && cacheValid_) {
		// A 304 may renew the freshness of what is kept.
		CacheControl cc = cacheControl(r.headers);
		if (cc.maxAge || cc.noCache)
			updateFreshness(r);
		if (const std::string *etag = r.header("etag"); etag && !common::hasLineBreak(*etag))
			etag_ = *etag;
		read.content = cacheBody_;
		read.truncated = cacheTruncated_;
		read.cached = true;
	} else {
		read.content = std::move(r.body);
		read.truncated = r.truncated;
		if (status < 200 || status > 299) {
			read.ok = false;
			read.error = prefix() + ": HTTP " + std::to_string(status);
			if (!r.reason.empty())
				read.error += " " + common::shorten(r.reason, 128);
		} else if (status == 200 && request_.httpCache && request_.method == "GET" &&
		    method_ == "GET") {
			Response stored;
			stored.headers = r.headers;
			stored.body = read.content;
			stored.truncated = read.truncated;
			storeCache(stored);
		}
	}
	if (read.ok && read.truncated)
		read.error = prefix() + ": response body cut at " +
		    std::to_string(request_.maxBody) + " bytes (max_output)";
	read.error = common::sanitizeUtf8(read.error);
	finish(std::move(read));
}

void HttpSource::fail(const std::string &why, int status)
{
	SourceRead read;
	read.ok = false;
	read.httpStatus = status;
	read.error = common::sanitizeUtf8(prefix() + ": " + why);
	finish(std::move(read));
}

void HttpSource::closeIo()
{
	tcp_.reset();
	pipe_.reset();
	if (dns_ != nullptr) {
		// Freed by its callback, which may come much later.
		dns_->owner = nullptr;
		uv_cancel(reinterpret_cast<uv_req_t *>(&dns_->req));
		dns_ = nullptr;
	}
	if (secret_ != nullptr) {
		secret_->owner = nullptr;
		secret_ = nullptr;
	}
	addrs_.clear();
}

void HttpSource::finish(SourceRead read)
{
	closeIo();
	result_ = std::move(read);
	delivering_ = true;
	uv_timer_start(timer_->get(), onTimer, 0, 0);
}

void HttpSource::onTimer(uv_timer_t *t) noexcept
{
	auto *self = static_cast<HttpSource *>(t->data);
	if (self != nullptr)
		self->handleTimer();
}

void HttpSource::handleTimer()
{
	if (!delivering_)
		return fail("timed out after " + common::formatDuration(request_.timeout));
	timer_.reset();
	running_ = false;
	delivering_ = false;
	SourceCallback cb = std::move(cb_);
	cb_ = nullptr;
	SourceRead read = std::move(result_);
	result_ = SourceRead();
	// The callback may start the next read, or destroy this source.
	if (cb)
		cb(std::move(read));
}

void HttpSource::cancel()
{
	if (!running_)
		return;
	closeIo();
	timer_.reset();
	running_ = false;
	delivering_ = false;
	cb_ = nullptr;
	result_ = SourceRead();
}

} // namespace pme::worker
