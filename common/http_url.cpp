// SPDX-License-Identifier: ISC
// The URLs of http sources: http://host[:port]/path and unix:/socket:/path.
//
// Shared by the loader, which refuses a URL pme cannot read when the file
// is checked, and by the worker's HTTP source, which parses the configured
// URL and resolves the Location of redirects (RFC 3986 5.2, with dot
// segments removed) against the URL that answered.
#include "http_url.hpp"

#include <arpa/inet.h>
#include <sys/un.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <vector>

#include "utf8.hpp"

namespace pme::common {

namespace {

char lowerChar(char c)
{
	return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

std::string lower(std::string_view s)
{
	std::string out(s);
	for (char &c : out)
		c = lowerChar(c);
	return out;
}

bool iequals(std::string_view a, std::string_view b)
{
	if (a.size() != b.size())
		return false;
	for (size_t i = 0; i < a.size(); i++)
		if (lowerChar(a[i]) != lowerChar(b[i]))
			return false;
	return true;
}

bool startsWithNoCase(std::string_view s, std::string_view prefix)
{
	return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s)
{
	while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
		s.remove_prefix(1);
	while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
		s.remove_suffix(1);
	return s;
}

// RFC 9110 tchar: what a method or a header name is made of.
bool tokenChar(unsigned char c)
{
	return std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool isTokenText(std::string_view s)
{
	if (s.empty())
		return false;
	for (unsigned char c : s)
		if (c == 0 || !tokenChar(c))
			return false;
	return true;
}

// Bytes that cannot go into a request line: controls, space, non-ASCII.
bool badTargetChar(unsigned char c)
{
	return c <= 0x20 || c >= 0x7f;
}

bool lineBreak(std::string_view s)
{
	return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

bool allDigits(std::string_view s)
{
	return !s.empty() && std::all_of(s.begin(), s.end(),
	    [](char c) { return c >= '0' && c <= '9'; });
}

std::string quoted(std::string_view url)
{
	return "'" + shorten(url, 200) + "'";
}

const char *kNoTls = "https:// is not supported yet: pme has no TLS; use http:// to a local "
    "endpoint, or put a TLS-terminating proxy in front";

// RFC 3986 5.2.4, on the path part of a target (the query is left alone).
std::string removeDotSegments(const std::string &target)
{
	size_t q = target.find('?');
	std::string path = target.substr(0, q);
	std::string query = q == std::string::npos ? "" : target.substr(q);
	std::vector<std::string> out;
	size_t i = 1;  // after the leading '/'
	bool trailingSlash = false;
	while (i <= path.size()) {
		size_t j = path.find('/', i);
		if (j == std::string::npos)
			j = path.size();
		std::string seg = path.substr(i, j - i);
		bool last = j == path.size();
		if (seg == "..") {
			if (!out.empty())
				out.pop_back();
			trailingSlash = last;
		} else if (seg == ".") {
			trailingSlash = last;
		} else {
			out.push_back(seg);
			trailingSlash = false;
		}
		i = j + 1;
	}
	std::string result;
	for (const auto &s : out)
		result += "/" + s;
	if (trailingSlash || result.empty())
		result += "/";
	return result + query;
}


uint16_t portNumber(std::string_view s)
{
	unsigned v = 0;
	auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
	(void)p;
	return ec == std::errc() && v <= 65535 ? static_cast<uint16_t>(v) : 0;
}

} // namespace

std::string asciiLower(std::string_view s)
{
	return lower(s);
}

bool equalsIgnoringCase(std::string_view a, std::string_view b)
{
	return iequals(a, b);
}

std::string_view trimBlanks(std::string_view s)
{
	return trim(s);
}

bool httpToken(std::string_view s)
{
	return isTokenText(s);
}

bool hasLineBreak(std::string_view s)
{
	return lineBreak(s);
}

// HttpUrl

std::string HttpUrl::str() const
{
	if (unixSocket)
		return "unix:" + socketPath + ":" + target;
	return "http://" + hostHeader() + target;
}

std::string HttpUrl::hostHeader() const
{
	if (unixSocket)
		return "localhost";
	std::string h = ipv6Literal ? "[" + host + "]" : host;
	if (port != 80)
		h += ":" + std::to_string(port);
	return h;
}

std::string HttpUrl::origin() const
{
	if (unixSocket)
		return "unix:" + socketPath;
	return (ipv6Literal ? "[" + lower(host) + "]" : lower(host)) + ":" + std::to_string(port);
}

namespace {

// The path and query of a URL, from just after its authority.
Result<std::string> parseTarget(std::string_view rest, const std::string &url)
{
	size_t hash = rest.find('#');
	if (hash != std::string_view::npos)
		rest = rest.substr(0, hash);
	std::string target(rest);
	if (target.empty() || target[0] == '?')
		target.insert(0, "/");
	for (unsigned char c : target)
		if (badTargetChar(c))
			return fail("the URL " + quoted(url) + " has a space, control or non-ASCII "
			    "character in its path: percent-encode it (%20)");
	return target;
}

} // namespace

Result<HttpUrl> parseHttpUrl(const std::string &url)
{
	HttpUrl u;
	if (url.empty())
		return fail("the URL is empty");
	if (startsWithNoCase(url, "https://"))
		return fail(kNoTls);
	if (startsWithNoCase(url, "unix:")) {
		std::string_view rest = std::string_view(url).substr(5);
		size_t sep = rest.find(":/");
		if (sep == std::string_view::npos)
			return fail("unix: URL needs ':/' between the socket path and the request "
			    "path, as in unix:/run/app.sock:/metrics");
		u.unixSocket = true;
		u.socketPath = rest.substr(0, sep);
		if (u.socketPath.empty() || u.socketPath[0] != '/')
			return fail("the socket path of " + quoted(url) + " must be absolute, as in "
			    "unix:/run/app.sock:/metrics");
		if (u.socketPath.size() >= sizeof(sockaddr_un::sun_path))
			return fail("the socket path of " + quoted(url) + " is longer than " +
			    std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
		if (lineBreak(u.socketPath))
			return fail("the socket path of " + quoted(url) + " has a line break");
		auto target = parseTarget(rest.substr(sep + 1), url);
		if (!target)
			return tl::unexpected(target.error());
		u.target = std::move(*target);
		return u;
	}
	if (!startsWithNoCase(url, "http://")) {
		size_t colon = url.find(':');
		if (colon != std::string::npos && colon > 0 &&
		    url.find_first_of("/?#") > colon)
			return fail("unsupported URL scheme in " + quoted(url) + ": pme reads "
			    "http://host[:port]/path and unix:/path/to.sock:/path");
		return fail("the URL " + quoted(url) + " must start with http:// (or be "
		    "unix:/path/to.sock:/path)");
	}
	std::string_view rest = std::string_view(url).substr(7);
	size_t end = rest.find_first_of("/?#");
	std::string_view authority = rest.substr(0, end);
	rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
	if (authority.find('@') != std::string_view::npos)
		return fail("credentials in the URL " + quoted(url) + " are not supported: set "
		    "username with password or password_file instead");
	if (authority.empty())
		return fail("the URL " + quoted(url) + " has no host");
	std::string_view port;
	bool hasPort = false;
	if (authority[0] == '[') {
		size_t close = authority.find(']');
		if (close == std::string_view::npos)
			return fail("the URL " + quoted(url) + " has an unterminated [IPv6 address]");
		u.host = authority.substr(1, close - 1);
		u.ipv6Literal = true;
		in6_addr a6;
		if (u.host.empty() || inet_pton(AF_INET6, u.host.c_str(), &a6) != 1)
			return fail("the URL " + quoted(url) + " has an invalid IPv6 address '" +
			    shorten(u.host, 100) + "'");
		std::string_view after = authority.substr(close + 1);
		if (!after.empty()) {
			if (after[0] != ':')
				return fail("the URL " + quoted(url) + " has something after its "
				    "[IPv6 address] that is not :port");
			port = after.substr(1);
			hasPort = true;
		}
	} else {
		size_t colon = authority.find(':');
		if (colon != std::string_view::npos &&
		    authority.find(':', colon + 1) != std::string_view::npos)
			return fail("the URL " + quoted(url) + " has an IPv6 address without "
			    "brackets: write http://[::1]:8080/path");
		u.host = authority.substr(0, colon);
		if (colon != std::string_view::npos) {
			port = authority.substr(colon + 1);
			hasPort = true;
		}
		if (u.host.empty())
			return fail("the URL " + quoted(url) + " has no host");
		for (unsigned char c : u.host)
			if (!std::isalnum(c) && c != '-' && c != '.' && c != '_')
				return fail("the URL " + quoted(url) + " has an invalid host name '" +
				    shorten(u.host, 100) + "'");
	}
	if (hasPort && !port.empty()) {
		if (!allDigits(port) || port.size() > 5 || portNumber(port) == 0)
			return fail("the URL " + quoted(url) + " has an invalid port '" +
			    shorten(port, 20) + "' (1 to 65535)");
		u.port = portNumber(port);
	}
	auto target = parseTarget(rest, url);
	if (!target)
		return tl::unexpected(target.error());
	u.target = std::move(*target);
	return u;
}

Result<HttpUrl> resolveLocation(const HttpUrl &base, const std::string &location)
{
	std::string loc(trim(location));
	if (loc.empty())
		return fail("redirect with an empty Location");
	// A scheme: letters, digits, + - . before the first ':', ahead of any / ? #.
	size_t colon = loc.find(':');
	if (colon != std::string::npos && colon > 0 && colon < loc.find_first_of("/?#") &&
	    std::isalpha(static_cast<unsigned char>(loc[0])) &&
	    std::all_of(loc.begin(), loc.begin() + static_cast<std::ptrdiff_t>(colon),
	    [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '+' ||
	    c == '-' || c == '.'; })) {
		if (startsWithNoCase(loc, "https:"))
			return fail("redirected to " + quoted(loc) + ", which pme cannot follow: " +
			    kNoTls);
		if (!startsWithNoCase(loc, "http:"))
			return fail("redirected to " + quoted(loc) + ", which is not an http:// URL");
		auto u = parseHttpUrl(loc);
		if (!u)
			return fail("redirected to an invalid URL: " + u.error().message);
		u->target = removeDotSegments(u->target);
		return u;
	}
	if (loc.compare(0, 2, "//") == 0) {
		auto u = parseHttpUrl("http:" + loc);
		if (!u)
			return fail("redirected to an invalid URL: " + u.error().message);
		u->target = removeDotSegments(u->target);
		return u;
	}
	size_t hash = loc.find('#');
	if (hash != std::string::npos)
		loc.resize(hash);
	HttpUrl u = base;
	std::string basePath = base.target.substr(0, base.target.find('?'));
	if (loc.empty())
		u.target = base.target;
	else if (loc[0] == '/')
		u.target = loc;
	else if (loc[0] == '?')
		u.target = basePath + loc;
	else
		u.target = basePath.substr(0, basePath.rfind('/') + 1) + loc;
	for (unsigned char c : u.target)
		if (badTargetChar(c))
			return fail("redirected to " + quoted(loc) + ", which has a space, control "
			    "non-ASCII character");
	u.target = removeDotSegments(u.target);
	return u;
}

std::string checkHttpUrl(const std::string &url)
{
	auto u = parseHttpUrl(url);
	return u ? std::string() : u.error().message;
}

} // namespace pme::common
