// SPDX-License-Identifier: ISC
// Small text helpers the extractors share.
#include "text_util.hpp"

#include <cmath>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace pme::worker {

std::string_view trim(std::string_view s)
{
	const char *ws = " \t\r\n\f\v";
	size_t b = s.find_first_not_of(ws);
	if (b == std::string_view::npos)
		return {};
	size_t e = s.find_last_not_of(ws);
	return s.substr(b, e - b + 1);
}

bool equalsNoCase(std::string_view a, std::string_view lower)
{
	if (a.size() != lower.size())
		return false;
	for (size_t i = 0; i < a.size(); i++) {
		char c = a[i];
		if (c >= 'A' && c <= 'Z')
			c = static_cast<char>(c - 'A' + 'a');
		if (c != lower[i])
			return false;
	}
	return true;
}

double scaled(double v, double scale)
{
	if (scale == 1)
		return v;
	if (scale > 0 && scale < 1) {
		double inverse = std::round(1 / scale);
		if (inverse <= 1e15 && 1 / inverse == scale)
			return v / inverse;
	}
	return v * scale;
}

std::string pcre2Message(int code)
{
	PCRE2_UCHAR buf[256];
	int n = pcre2_get_error_message(code, buf, sizeof(buf));
	if (n < 0)
		return "PCRE2 error " + std::to_string(code);
	return std::string(reinterpret_cast<const char *>(buf), static_cast<size_t>(n));
}

} // namespace pme::worker
