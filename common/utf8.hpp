// SPDX-License-Identifier: ISC
// Make untrusted bytes (command stderr, captured text) safe to put in a frame.
#pragma once

#include <string>
#include <string_view>

namespace pme::common {

// True when text is valid UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF) without NUL bytes.
bool validUtf8(std::string_view text);

// The text with every invalid UTF-8 sequence and every NUL byte replaced by
// U+FFFD, so that the frame decoder of the supervisor accepts it.
std::string sanitizeUtf8(std::string_view text);

// At most max bytes of text, cut at a character boundary, with "..." added
// when something was cut.  The result is valid UTF-8.
std::string shorten(std::string_view text, size_t max);

} // namespace pme::common
