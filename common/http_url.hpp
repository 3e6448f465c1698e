// SPDX-License-Identifier: ISC
// The URLs of http sources: http://host[:port]/path and unix:/socket:/path.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "error.hpp"

namespace pme::common {

// A parsed http:// or unix: URL.
struct HttpUrl {
	bool unixSocket = false;
	std::string socketPath;      // unix: the socket's path
	std::string host;            // http: name or address, without [] for IPv6
	bool ipv6Literal = false;
	uint16_t port = 80;
	std::string target;          // path and query, starting with '/'

	// The URL as text (messages, redirects).
	std::string str() const;
	// The Host header: host[:port], "localhost" for a Unix socket.
	std::string hostHeader() const;
	// Where requests go: "host:port" or the socket path; credentials are
	// sent only where this is the original one.
	std::string origin() const;
};

// Parse a URL of an http source; the error says what is wrong and what to do.
common::Result<HttpUrl> parseHttpUrl(const std::string &url);
// A redirect's Location (absolute, scheme-relative, absolute path or
// relative reference) resolved against the URL that answered it.
common::Result<HttpUrl> resolveLocation(const HttpUrl &base, const std::string &location);

// Check a URL as the loader must: empty when fine, else a clear message
// (https:// is refused: pme has no TLS).
std::string checkHttpUrl(const std::string &url);

// Header names and values: ASCII case folded, compared, and stripped of
// the spaces and tabs around them (RFC 9110 OWS).
std::string asciiLower(std::string_view s);
bool equalsIgnoringCase(std::string_view a, std::string_view b);
std::string_view trimBlanks(std::string_view s);

// An RFC 9110 token: what a method or a header name is made of.
bool httpToken(std::string_view s);
// A CR, LF or NUL, which cannot go into a request header.
bool hasLineBreak(std::string_view s);

} // namespace pme::common
