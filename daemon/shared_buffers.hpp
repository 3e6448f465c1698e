// SPDX-License-Identifier: ISC
// A response body in pieces that many responses share.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace pme::daemon {

// Immutable once handed out: the store builds one when its data changed,
// and every response sends the same pieces, one uv_buf_t each, without
// copying them.  A piece that did not change is shared with the previous
// SharedBuffers too, so a change in one place costs no copy of the rest.
struct SharedBuffers {
	std::vector<std::shared_ptr<const std::string>> pieces;
	size_t size = 0; // bytes in all

	void add(std::shared_ptr<const std::string> piece)
	{
		if (!piece || piece->empty())
			return;
		size += piece->size();
		pieces.push_back(std::move(piece));
	}
	// Joined: for --once and tests.
	std::string str() const
	{
		std::string out;
		out.reserve(size);
		for (const auto &p : pieces)
			out += *p;
		return out;
	}
};

} // namespace pme::daemon
