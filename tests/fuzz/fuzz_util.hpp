// SPDX-License-Identifier: ISC
// Shared by the C++ fuzz targets: invariant checks, a deterministic generator, mutations.
//
// Header-only so that each target stays one translation unit that builds
// both as a libFuzzer binary and as a meson test.  In the meson test a broken
// invariant prints the offending input as a C string literal, ready to paste
// into a unit test; under libFuzzer abort() is enough, libFuzzer saves it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace pme::fuzz {

// The input being run, the file it came from, and what of it, for the
// failure report.
inline std::string_view currentInput;
inline std::string currentFile;
inline const char *targetName = "fuzz";
inline std::string_view context;

// The input as a C literal: printable ASCII as is, the rest as \xNN.
inline std::string cLiteral(std::string_view s, size_t max = 8192)
{
	std::string out = "\"";
	bool hex = false;  // a hex escape just ended: a following hex digit must be split off
	for (size_t i = 0; i < s.size() && i < max; i++) {
		auto c = static_cast<unsigned char>(s[i]);
		bool isHexDigit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		    (c >= 'A' && c <= 'F');
		if (hex && isHexDigit)
			out += "\" \"";
		hex = false;
		if (c == '\n') {
			// One line of the literal per line of the input.
			out += i + 1 < s.size() && i + 1 < max ? "\\n\"\n\"" : "\\n";
		} else if (c == '"' || c == '\\') {
			out += '\\';
			out += static_cast<char>(c);
		} else if (c >= 0x20 && c < 0x7f) {
			out += static_cast<char>(c);
		} else {
			char buf[8];
			std::snprintf(buf, sizeof(buf), "\\x%02x", c);
			out += buf;
			hex = true;
		}
	}
	out += '"';
	if (s.size() > max)
		out += " /* ... " + std::to_string(s.size() - max) + " more bytes */";
	return out;
}

[[noreturn]] inline void broken(const std::string &what)
{
	std::fprintf(stderr, "%s: invariant broken%s%.*s: %s\n", targetName,
	    context.empty() ? "" : " in ", static_cast<int>(context.size()), context.data(),
	    what.c_str());
#ifndef PME_LIBFUZZER
	std::fprintf(stderr, "input (%zu bytes%s%s):\n%s\n", currentInput.size(),
	    currentFile.empty() ? "" : ", from ", currentFile.c_str(),
	    cLiteral(currentInput).c_str());
#endif
	std::abort();
}

// check(cond, "text"), or check(cond, [&] { return text; }) where building
// the text costs: the lambda runs only when the check fails.
template <typename Message>
void check(bool cond, const Message &what)
{
	if (cond)
		return;
	if constexpr (std::is_invocable_v<const Message &>)
		broken(what());
	else
		broken(what);
}

// xorshift64*: deterministic, so that a failing run is the same every time.
class Rng {
public:
	explicit Rng(uint64_t seed = 0x9e3779b97f4a7c15ULL) : state_(seed) {}

	uint32_t next()
	{
		state_ ^= state_ >> 12;
		state_ ^= state_ << 25;
		state_ ^= state_ >> 27;
		return static_cast<uint32_t>((state_ * 0x2545f4914f6cdd1dULL) >> 32);
	}
	// Uniform enough in [0, n); n > 0.
	size_t below(size_t n) { return next() % n; }
	bool chance(unsigned percent) { return next() % 100 < percent; }
	template <typename T>
	const T &pick(const std::vector<T> &v) { return v[below(v.size())]; }

private:
	uint64_t state_;
};

// Whole file, or "" when it cannot be read.
inline std::string readFile(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	std::stringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

// $PME_SOURCE_ROOT/rel, as meson's test environment sets it; else the
// source root the target was built from, so that it runs by hand from
// anywhere.
inline std::string sourceFile(const std::string &rel)
{
	const char *root = std::getenv("PME_SOURCE_ROOT");
#ifdef PME_FUZZ_SOURCE_ROOT
	if (!root)
		root = PME_FUZZ_SOURCE_ROOT;
#endif
	return readFile(std::string(root ? root : ".") + "/" + rel);
}

// One input read from a file, run, and reported.
inline void runFile(const std::string &path, int (*target)(const uint8_t *, size_t))
{
	std::ifstream in(path, std::ios::binary);
	if (!in) {
		std::fprintf(stderr, "%s: cannot read %s\n", targetName, path.c_str());
		std::exit(1);
	}
	std::stringstream ss;
	ss << in.rdbuf();
	std::string data = ss.str();
	currentFile = path;
	target(reinterpret_cast<const uint8_t *>(data.data()), data.size());
	currentFile.clear();
	std::printf("%s: %s (%zu bytes) survived\n", targetName, path.c_str(), data.size());
}

// The driver's arguments: [RUNS] [FILE | DIRECTORY]...
//
// Each file is run once, before anything else: a reproducer, a crash file
// libFuzzer wrote, and, as meson passes them, every file of the target's
// seed corpus and regression inputs (tests/fuzz/corpus/<target>,
// tests/fuzz/regress/<target>) in name order.  A path that does not exist
// is skipped with a note: regress/<target> only appears with the target's
// first regression input.  Returns the number of generated runs that
// follow: RUNS, `runs` when there are no arguments, nothing when there are
// files and no RUNS.
inline std::optional<long> runArgs(int argc, char **argv,
    int (*target)(const uint8_t *, size_t), long runs)
{
	namespace fs = std::filesystem;
	int first = 1;
	std::optional<long> batch = runs;
	if (argc > 1 && std::string_view(argv[1]).find_first_not_of("0123456789") ==
	    std::string_view::npos) {
		batch = std::strtol(argv[1], nullptr, 10);
		first = 2;
	} else if (argc > 1) {
		batch.reset();
	}
	for (int i = first; i < argc; i++) {
		std::error_code ec;
		if (!fs::exists(argv[i], ec)) {
			std::printf("%s: %s does not exist, nothing to run\n", targetName, argv[i]);
			continue;
		}
		if (!fs::is_directory(argv[i], ec)) {
			runFile(argv[i], target);
			continue;
		}
		std::vector<std::string> files;
		for (const auto &e : fs::directory_iterator(argv[i]))
			if (e.is_regular_file())
				files.push_back(e.path().string());
		std::sort(files.begin(), files.end());
		for (const auto &f : files)
			runFile(f, target);
	}
	return batch;
}

// With PME_FUZZ_CORPUS=dir in the environment, the driver writes its seed
// inputs there, one file each: a start corpus for the libFuzzer build.
inline void saveSeed(std::string_view input)
{
	static const char *dir = std::getenv("PME_FUZZ_CORPUS");
	static unsigned n = 0;
	if (!dir)
		return;
	std::ofstream out(std::string(dir) + "/seed-" + std::to_string(n++), std::ios::binary);
	out.write(input.data(), static_cast<std::streamsize>(input.size()));
}

// Bytes that tend to matter to parsers.
inline const std::vector<std::string> interestingBytes = {
	std::string(1, '\0'), "\x01", "\x7f", "\x80", "\xbf", "\xc0", "\xc3", "\xe2", "\xed",
	"\xef\xbb\xbf", "\xf0", "\xf4\x90", "\xff", "\r", "\n", "\t", " ", "\"", "'", "\\",
	"$", "{", "}", "[", "]", ":", ",", "#", "-", "%", "\xc3\xa9", "\xe6\x97\xa5",
	"\xf0\x9f\x93\x88", "\xed\xa0\x80",
};

// One to four byte-level edits of s: bit flips, interesting bytes, cuts,
// insertions from dict, duplicated or deleted ranges, a splice of other.
inline void mutateBytes(std::string &s, Rng &rng, const std::vector<std::string> &dict,
    std::string_view other = {}, size_t maxLen = 1 << 16)
{
	size_t n = 1 + rng.below(4);
	for (size_t k = 0; k < n; k++) {
		size_t pos = s.empty() ? 0 : rng.below(s.size() + 1);
		switch (rng.below(9)) {
		case 0:
			if (pos < s.size())
				s[pos] = static_cast<char>(s[pos] ^ (1u << rng.below(8)));
			break;
		case 1:
			s.insert(pos, rng.pick(interestingBytes));
			break;
		case 2:
			if (pos < s.size())
				s[pos] = rng.pick(interestingBytes)[0];
			break;
		case 3:
			s.erase(pos, 1 + rng.below(16));
			break;
		case 4:
			if (!dict.empty())
				s.insert(pos, rng.pick(dict));
			break;
		case 5: {
			size_t len = rng.below(64);
			std::string chunk = s.substr(pos, len);
			s.insert(pos, chunk);
			break;
		}
		case 6:
			if (rng.chance(20))
				s.resize(pos);
			break;
		case 7:
			if (!other.empty()) {
				size_t from = rng.below(other.size());
				size_t len = rng.below(other.size() - from + 1);
				s.insert(pos, other.substr(from, len));
			}
			break;
		default:
			for (size_t i = rng.below(8); i > 0; i--)
				s.insert(s.begin() + static_cast<std::ptrdiff_t>(pos),
				    static_cast<char>(rng.next()));
			break;
		}
		if (s.size() > maxLen)
			s.resize(maxLen);
	}
}

} // namespace pme::fuzz
