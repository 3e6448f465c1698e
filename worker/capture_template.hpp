// SPDX-License-Identifier: ISC
// Label and value templates: literal text with $N, ${N}, ${name} and $$.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pme::worker {

// A template as written in pme.yml: `labels: {mount: "${mount}", dev: "$1"}`,
// `value: "${used}"`.  `$N` takes every digit that follows; `${...}` holds
// digits (a number) or a name of letters, digits and '_'; `$$` is one '$';
// a '$' followed by anything else is kept as it is.
class CaptureTemplate {
public:
	struct Part {
		std::string literal;  // text, when group < 0 and name is empty
		int group = -1;       // capture number (after resolve(), names too)
		std::string name;     // capture name as written
		bool isReference() const { return group >= 0 || !name.empty(); }
	};

	CaptureTemplate() = default;
	static CaptureTemplate parse(std::string_view text);

	const std::string &source() const { return source_; }
	const std::vector<Part> &parts() const { return parts_; }
	bool hasReference() const;

	// Turn every named reference into a number with lookup (which returns
	// < 0 for an unknown name) and check numbers against the capture
	// count.  Returns the first reference that does not exist, as written
	// ("${mount}", "$3"), or an empty string when all do.
	std::string resolve(const std::function<int(const std::string &)> &lookup,
	    int captureCount);

	// The text with every reference replaced by capture(number).  Only
	// meaningful after resolve().
	std::string expand(const std::function<std::string_view(int)> &capture) const;
	// The text with every reference replaced by "".
	std::string literal() const;

private:
	std::string source_;
	std::vector<Part> parts_;
};

} // namespace pme::worker
