// SPDX-License-Identifier: ISC
// Error values for expected failures.
#include "error.hpp"

#include <cerrno>
#include <cstring>

namespace pme::common {

std::string Location::str() const
{
	if (!valid())
		return file;
	return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string Error::str() const
{
	if (where.valid() || !where.file.empty())
		return where.str() + ": " + message;
	return message;
}

Error Error::context(const std::string &ctx) const
{
	Error e = *this;
	e.message = ctx + ": " + message;
	return e;
}

std::string errnoMessage(const std::string &what, int err)
{
	return what + ": " + std::strerror(err);
}

std::string errnoMessage(const std::string &what)
{
	return errnoMessage(what, errno);
}

} // namespace pme::common
