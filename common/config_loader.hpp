// SPDX-License-Identifier: ISC
// Load pme.yml with libyaml into the typed model, collecting every error.
#pragma once

#include <string>

#include "config.hpp"

namespace pme::common {

using ConfigResult = tl::expected<Config, Errors>;

// What loading found that is not an error.  A file in the original PME's
// dialect (Compatibility in pme.yml(5)) is read in pme's own keys: each of
// its keys that pme reads under another name, or reads and ignores, counts,
// and each ignored one has a warning that says why.
struct LoadNotes {
	size_t legacyKeys = 0;
	Errors warnings;              // "file:line:column: message"
};

// Read, parse and validate a configuration file.  On failure every error
// found is returned, each as "file:line:column: message".  notes, when
// given, receives the legacy keys and warnings of a file that loads.
ConfigResult loadConfigFile(const std::string &path, LoadNotes *notes = nullptr);
// The same from text; name is used as the file in error locations.
ConfigResult loadConfigString(const std::string &text, const std::string &name,
    LoadNotes *notes = nullptr);

} // namespace pme::common
