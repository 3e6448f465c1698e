// SPDX-License-Identifier: ISC
// Load pme.yml with libyaml into the typed model, collecting every error.
#pragma once

#include <string>

#include "config.hpp"

namespace pme::common {

using ConfigResult = tl::expected<Config, Errors>;

// Read, parse and validate a configuration file.  On failure every error
// found is returned, each as "file:line:column: message".
ConfigResult loadConfigFile(const std::string &path);
// The same from text; name is used as the file in error locations.
ConfigResult loadConfigString(const std::string &text, const std::string &name);

} // namespace pme::common
