// SPDX-License-Identifier: ISC
// Error values for expected failures, with an optional config location.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

namespace pme::common {

// Where in a configuration file something was written (1-based).
struct Location {
	std::string file;
	int line = 0;
	int column = 0;

	bool valid() const { return line > 0; }
	// "file:line:column", or "file" when no position is known.
	std::string str() const;
};

// An expected failure: I/O, parse, protocol or configuration.  Context is
// prepended as it is forwarded ("reading /proc/stat: No such file").
struct Error {
	std::string message;
	Location where;

	Error() = default;
	explicit Error(std::string msg) : message(std::move(msg)) {}
	Error(Location loc, std::string msg) : message(std::move(msg)), where(std::move(loc)) {}

	// "file:line:column: message" when a location is known, else the message.
	std::string str() const;
	// A copy with "context: " in front of the message.
	Error context(const std::string &ctx) const;
};

using Errors = std::vector<Error>;

template <typename T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(std::string msg) { return tl::unexpected(Error(std::move(msg))); }
inline tl::unexpected<Error> fail(Location loc, std::string msg)
{
	return tl::unexpected(Error(std::move(loc), std::move(msg)));
}

// "message: strerror(errno)" for the current errno.
std::string errnoMessage(const std::string &what);
std::string errnoMessage(const std::string &what, int err);

} // namespace pme::common
