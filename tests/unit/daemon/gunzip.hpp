// SPDX-License-Identifier: ISC
// zlib's own inflate of a whole gzip member, for the tests that check what
// pmed compresses: it checks the trailer's CRC and length, and that nothing
// follows.
#pragma once

#include <zlib.h>

#include <string>

namespace pme::test {

// The member inflated; *ok is false when it is not exactly one valid member.
inline std::string gunzip(const std::string &member, bool *ok)
{
	z_stream z{};
	*ok = false;
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return "";
	std::string out;
	z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(member.data()));
	z.avail_in = static_cast<uInt>(member.size());
	char buf[16384];
	int r;
	do {
		z.next_out = reinterpret_cast<Bytef *>(buf);
		z.avail_out = sizeof buf;
		r = inflate(&z, Z_NO_FLUSH);
		out.append(buf, sizeof buf - z.avail_out);
	} while (r == Z_OK);
	*ok = r == Z_STREAM_END && z.avail_in == 0;
	inflateEnd(&z);
	return out;
}

} // namespace pme::test
