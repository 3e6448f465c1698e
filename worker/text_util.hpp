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

// The message PCRE2 gives for an error code.
std::string pcre2Message(int code);

} // namespace pme::worker
