// SPDX-License-Identifier: ISC
// Logging in the OpenBSD manner: warn() adds strerror(errno), warnx() does not.
#pragma once

#include <cstdarg>
#include <functional>
#include <string>

namespace pme::common::log {

// Where lines go.
enum class Sink {
	Stderr,        // plain "pmed: message" lines (foreground, -d)
	Journal,       // "<N>pmed: message" lines to stderr, read by journald
	Syslog,        // syslog(3), daemon facility
	Callback,      // handed to a function (the worker: LOG frames)
};

// Syslog priorities, as numbers so that callers need no <syslog.h>.
enum Level { Error = 3, Warning = 4, Notice = 5, Info = 6, Debug = 7 };

// Set the process tag ("pmed", "spawner", "worker[nginx]") and the sink.
// verbosity: 0 logs up to Info, 1 and more also Debug.
void init(const std::string &tag, Sink sink, int verbosity);
void setTag(const std::string &tag);
void setVerbosity(int verbosity);
int verbosity();
// For Sink::Callback: receives the level and the formatted line (no tag).
void setCallback(std::function<void(int level, const std::string &line)> cb);
// Pick Journal when stderr is connected to journald (JOURNAL_STREAM), else
// Stderr when foreground, else Syslog.
Sink defaultSink(bool foreground);

// Emit a pre-formatted line at a level.
void line(int level, const std::string &msg);
// Emit a line on behalf of another process ("worker[nginx]"): a worker's
// LOG frame relayed by the supervisor.
void relay(const std::string &tag, int level, const std::string &msg);

void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Log and exit(EX_SOFTWARE-like code given); warn-style and warnx-style.
[[noreturn]] void fatal(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
[[noreturn]] void fatalx(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

std::string vformat(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
std::string format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

} // namespace pme::common::log
