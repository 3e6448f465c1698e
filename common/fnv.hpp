// SPDX-License-Identifier: ISC
// FNV-1a, 64 bits: a fast hash to notice change, never to resist an adversary.
#pragma once

#include <cstdint>
#include <string_view>

namespace pme::common {

inline uint64_t fnv1a(std::string_view data)
{
	uint64_t h = 14695981039346656037ull;
	for (unsigned char c : data) {
		h ^= c;
		h *= 1099511628211ull;
	}
	return h;
}

} // namespace pme::common
