// SPDX-License-Identifier: ISC
// Logging: one line per message, tagged with the process role.
#include "log.hpp"

#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace pme::common::log {

namespace {

std::string tag_ = "pme";
Sink sink_ = Sink::Stderr;
int verbosity_ = 0;
std::function<void(int, const std::string &)> callback_;
bool syslogOpen_ = false;

const char *levelWord(int level)
{
	switch (level) {
	case Error: return "error: ";
	case Warning: return "warning: ";
	case Debug: return "debug: ";
	default: return "";
	}
}

void emitAs(const std::string &tag, int level, const std::string &msg);

void emit(int level, const std::string &msg) { emitAs(tag_, level, msg); }

void emitAs(const std::string &tag, int level, const std::string &msg)
{
	if (level >= Debug && verbosity_ < 1)
		return;
	switch (sink_) {
	case Sink::Callback:
		if (callback_) {
			callback_(level, msg);
			return;
		}
		[[fallthrough]];
	case Sink::Stderr: {
		std::string out = tag + ": " + levelWord(level) + msg + "\n";
		ssize_t r = ::write(STDERR_FILENO, out.data(), out.size());
		(void)r;
		return;
	}
	case Sink::Journal: {
		std::string out = "<" + std::to_string(level) + ">" + tag + ": " + msg + "\n";
		ssize_t r = ::write(STDERR_FILENO, out.data(), out.size());
		(void)r;
		return;
	}
	case Sink::Syslog:
		if (!syslogOpen_) {
			openlog("pmed", LOG_PID | LOG_NDELAY, LOG_DAEMON);
			syslogOpen_ = true;
		}
		::syslog(level, "%s: %s", tag.c_str(), msg.c_str());
		return;
	}
}

} // namespace

void init(const std::string &tag, Sink sink, int verbosity)
{
	tag_ = tag;
	sink_ = sink;
	verbosity_ = verbosity;
}

void setTag(const std::string &tag) { tag_ = tag; }
void setVerbosity(int v) { verbosity_ = v; }
int verbosity() { return verbosity_; }

void setCallback(std::function<void(int, const std::string &)> cb)
{
	callback_ = std::move(cb);
	sink_ = Sink::Callback;
}

Sink defaultSink(bool foreground)
{
	if (std::getenv("JOURNAL_STREAM") != nullptr)
		return Sink::Journal;
	return foreground ? Sink::Stderr : Sink::Syslog;
}

std::string vformat(const char *fmt, va_list ap)
{
	char small[512];
	va_list copy;
	va_copy(copy, ap);
	int n = std::vsnprintf(small, sizeof(small), fmt, copy);
	va_end(copy);
	if (n < 0)
		return fmt;
	if (static_cast<size_t>(n) < sizeof(small))
		return std::string(small, static_cast<size_t>(n));
	std::string big(static_cast<size_t>(n) + 1, '\0');
	std::vsnprintf(big.data(), big.size(), fmt, ap);
	big.resize(static_cast<size_t>(n));
	return big;
}

std::string format(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	std::string s = vformat(fmt, ap);
	va_end(ap);
	return s;
}

void line(int level, const std::string &msg) { emit(level, msg); }
void relay(const std::string &tag, int level, const std::string &msg) { emitAs(tag, level, msg); }

#define PME_LOG_BODY(level, suffix)                 \
	va_list ap;                                 \
	va_start(ap, fmt);                          \
	std::string msg = vformat(fmt, ap) + suffix; \
	va_end(ap);                                 \
	emit(level, msg)

void warn(const char *fmt, ...)
{
	int saved = errno;
	PME_LOG_BODY(Warning, std::string(": ") + std::strerror(saved));
	errno = saved;
}

void warnx(const char *fmt, ...) { PME_LOG_BODY(Warning, ""); }
void info(const char *fmt, ...) { PME_LOG_BODY(Info, ""); }
void notice(const char *fmt, ...) { PME_LOG_BODY(Notice, ""); }
void debug(const char *fmt, ...)
{
	if (verbosity_ < 1)
		return;
	PME_LOG_BODY(Debug, "");
}

void fatal(int code, const char *fmt, ...)
{
	int saved = errno;
	PME_LOG_BODY(Error, std::string(": ") + std::strerror(saved));
	std::exit(code);
}

void fatalx(int code, const char *fmt, ...)
{
	PME_LOG_BODY(Error, "");
	std::exit(code);
}

} // namespace pme::common::log
