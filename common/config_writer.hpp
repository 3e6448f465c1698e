// SPDX-License-Identifier: ISC
// Write the typed model back as YAML in pme's own keys.
#pragma once

#include <string>

#include "config.hpp"

namespace pme::common {

// A complete configuration document holding only `service` (exporter:
// interval and the service with effective intervals written out), such that
// loadConfigString() of it yields an equal ServiceConfig.  This is the
// SERVICE_CONFIG a worker receives.
std::string writeServiceDocument(const Config &config, const ServiceConfig &service);

// The whole configuration in pme's own keys (pmed -n -v).
std::string writeConfig(const Config &config);

// 16 hex digits that change when writeConfig() does: how the supervisor and
// the spawner, each loading the file on a reload, tell that they read the
// same configuration.
std::string configDigest(const Config &config);

} // namespace pme::common
