// SPDX-License-Identifier: ISC
// Label and value templates: literal text with $N, ${N}, ${name} and $$.
#include "capture_template.hpp"

#include <cctype>

namespace pme::worker {

namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

int toNumber(std::string_view digits)
{
	// Capture numbers above 65535 do not exist in PCRE2; saturate so that
	// resolve() reports them instead of overflowing.
	long n = 0;
	for (char c : digits) {
		n = n * 10 + (c - '0');
		if (n > 65535)
			return 65536;
	}
	return static_cast<int>(n);
}

} // namespace

CaptureTemplate CaptureTemplate::parse(std::string_view text)
{
	CaptureTemplate t;
	t.source_ = std::string(text);
	std::string literal;
	auto flush = [&]() {
		if (!literal.empty()) {
			Part p;
			p.literal = std::move(literal);
			t.parts_.push_back(std::move(p));
			literal.clear();
		}
	};
	size_t i = 0;
	while (i < text.size()) {
		char c = text[i];
		if (c != '$' || i + 1 >= text.size()) {
			literal += c;
			i++;
			continue;
		}
		char next = text[i + 1];
		if (next == '$') {
			literal += '$';
			i += 2;
			continue;
		}
		if (isDigit(next)) {
			size_t j = i + 1;
			while (j < text.size() && isDigit(text[j]))
				j++;
			flush();
			Part p;
			p.group = toNumber(text.substr(i + 1, j - i - 1));
			t.parts_.push_back(std::move(p));
			i = j;
			continue;
		}
		if (next == '{') {
			size_t j = i + 2;
			while (j < text.size() && isNameChar(text[j]))
				j++;
			if (j < text.size() && text[j] == '}' && j > i + 2) {
				std::string_view inner = text.substr(i + 2, j - i - 2);
				bool numeric = true;
				for (char d : inner)
					numeric = numeric && isDigit(d);
				flush();
				Part p;
				if (numeric)
					p.group = toNumber(inner);
				else
					p.name = std::string(inner);
				t.parts_.push_back(std::move(p));
				i = j + 1;
				continue;
			}
		}
		literal += c;
		i++;
	}
	flush();
	return t;
}

bool CaptureTemplate::hasReference() const
{
	for (const Part &p : parts_)
		if (p.isReference())
			return true;
	return false;
}

std::string CaptureTemplate::resolve(const std::function<int(const std::string &)> &lookup,
    int captureCount)
{
	for (Part &p : parts_) {
		if (!p.name.empty()) {
			int n = lookup(p.name);
			if (n < 0)
				return "${" + p.name + "}";
			p.group = n;
		} else if (p.group > captureCount) {
			return "$" + std::to_string(p.group);
		}
	}
	return "";
}

std::string CaptureTemplate::expand(const std::function<std::string_view(int)> &capture) const
{
	std::string out;
	for (const Part &p : parts_) {
		if (p.group >= 0)
			out += capture(p.group);
		else
			out += p.literal;
	}
	return out;
}

std::string CaptureTemplate::literal() const
{
	std::string out;
	for (const Part &p : parts_)
		if (!p.isReference())
			out += p.literal;
	return out;
}

} // namespace pme::worker
