// SPDX-License-Identifier: ISC
// UniqueFd: sole owner of a file descriptor, closed on destruction.
#pragma once

#include <unistd.h>

#include <utility>

namespace pme::common {

class UniqueFd {
public:
	UniqueFd() = default;
	explicit UniqueFd(int fd) : fd_(fd) {}
	UniqueFd(const UniqueFd &) = delete;
	UniqueFd &operator=(const UniqueFd &) = delete;
	UniqueFd(UniqueFd &&o) noexcept : fd_(o.release()) {}
	UniqueFd &operator=(UniqueFd &&o) noexcept
	{
		if (this != &o)
			reset(o.release());
		return *this;
	}
	~UniqueFd() { reset(); }

	int get() const { return fd_; }
	bool valid() const { return fd_ >= 0; }
	explicit operator bool() const { return valid(); }
	// Give up ownership without closing.
	int release() { return std::exchange(fd_, -1); }
	void reset(int fd = -1)
	{
		int old = std::exchange(fd_, fd);
		if (old >= 0)
			::close(old);
	}

private:
	int fd_ = -1;
};

} // namespace pme::common
