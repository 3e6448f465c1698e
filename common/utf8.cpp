// SPDX-License-Identifier: ISC
// UTF-8 repair for text that came from a source.
#include "common/utf8.hpp"

namespace pme::common {

namespace {

const char kReplacement[] = "\xef\xbf\xbd";

// Length of the valid UTF-8 character at s[0..len), or 0 when invalid.
size_t validCharLength(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	if (c == 0)
		return 0;
	if (c < 0x80)
		return 1;
	size_t n;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (len < n)
		return 0;
	// The second byte's range rules out overlong forms, surrogates and
	// anything past U+10FFFF (RFC 3629 section 4).
	unsigned char lo = 0x80, hi = 0xbf;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

} // namespace

bool validUtf8(std::string_view text)
{
	const auto *s = reinterpret_cast<const unsigned char *>(text.data());
	size_t len = text.size();
	size_t i = 0;
	while (i < len) {
		// ASCII runs are the common case.
		if (s[i] != 0 && s[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = validCharLength(s + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

std::string sanitizeUtf8(std::string_view text)
{
	const auto *s = reinterpret_cast<const unsigned char *>(text.data());
	size_t len = text.size();
	std::string out;
	out.reserve(len);
	size_t i = 0;
	while (i < len) {
		size_t n = validCharLength(s + i, len - i);
		if (n == 0) {
			out += kReplacement;
			i++;
			continue;
		}
		out.append(text.data() + i, n);
		i += n;
	}
	return out;
}

std::string shorten(std::string_view text, size_t max)
{
	std::string clean = sanitizeUtf8(text);
	if (clean.size() <= max)
		return clean;
	size_t cut = max;
	// Back up to the start of a character (continuation bytes are 10xxxxxx).
	while (cut > 0 && (static_cast<unsigned char>(clean[cut]) & 0xc0) == 0x80)
		cut--;
	clean.resize(cut);
	return clean + "...";
}

} // namespace pme::common
