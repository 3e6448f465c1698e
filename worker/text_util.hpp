// SPDX-License-Identifier: ISC
// Small text helpers the extractors share: trimming, case-free comparison
// and PCRE2's error texts.
#pragma once

#include <string>
#include <string_view>

namespace pme::worker {

// s without leading and trailing ASCII white space.
std::string_view trim(std::string_view s);

// a equals lower, ignoring the case of ASCII letters in a; lower is lower case.
bool equalsNoCase(std::string_view a, std::string_view lower);

// v times scale.  A scale that is the exact inverse of a whole number
// (0.001, 0.5) divides by that number instead, so that 180325 * 0.001 is
// 180.325 and not 180.32500000000002.
double scaled(double v, double scale);

// The message PCRE2 gives for an error code.
std::string pcre2Message(int code);

} // namespace pme::worker
