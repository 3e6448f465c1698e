// SPDX-License-Identifier: ISC
// Load pme.yml with libyaml into the typed model, collecting every error.
//
// The file is parsed into a YamlTree (yaml_tree.hpp: nodes that know their
// file and position, aliases shared, merge keys applied), and the schema is
// then walked by hand.  Walking a fixed schema rather than the document
// keeps recursion bounded by the schema's depth, so aliases (even ones that
// point at their own ancestors) cannot make the loader loop.
//
// The loader is spread over files: config_read.cpp reads keys into drafts,
// config_check.cpp validates them, this file drives both.
//
// Loading happens in two passes per service.  The first reads every key of
// the service's mappings into "drafts", which are the model plus the nodes
// that later messages point at; unknown keys, wrong node kinds and
// unparsable scalars are reported there.  The second validates what needs
// more than one key at a time: a group's source depends on its
// source_type, a filter's captures decide which templates are valid,
// intervals depend on the parent's, metric names on the service's prefix.
// Every error is collected rather than returned at the first, so that an
// operator fixes a file in one round; a field that failed to parse is left
// at its default and checks that would only repeat the same mistake are
// skipped.
//
// Scalars are typed by the field they are in, not by YAML's own resolution:
// a string field takes any scalar as written (`version: 1.2` is "1.2"), a
// bool field takes YAML 1.1 and 1.2 booleans, a number field takes decimal,
// 0x/0o and .inf/.nan forms.  The one field whose meaning depends on the
// scalar's form is a metric's `value`: a plain number is a constant, any
// other scalar (a quoted "1" included) is a template.
#include "config_load.hpp"

#include <algorithm>
#include <cerrno>
#include <tuple>

#include <fcntl.h>
#include <unistd.h>

#include "unique_fd.hpp"

namespace pme::common {

namespace load {

ConfigResult Loader::load(const std::string &text)
{
	config_.path = file_;
	fileOrder_.push_back(file_);
	Node root = tree_.parse(text, file_, errors_);
	if (!root || root->isNull()) {
		if (errors_.empty())
			errors_.emplace_back(Location{file_, 1, 1}, "empty configuration: define at "
			    "least 'services' (see pme.yml(5))");
		return tl::unexpected(errors_);
	}

	if (!root->isMapping()) {
		error(root, "expected a mapping with 'exporter' and 'services' at the top level, got " +
		    describe(root));
		return tl::unexpected(errors_);
	}
	root = translateLegacy(root);
	Node exporter = nullptr;
	std::vector<Node> services, templates;
	eachPair(root, [&](const std::string &key, Node k, Node v) {
		if (key == "exporter")
			exporter = v;
		else if (key == "services")
			services.push_back(v);
		else if (key == "templates")
			templates.push_back(v);
		else if (key == "include")
			includeNode_ = v;
		else if (key.compare(0, 2, "x-") == 0)
			; // a place for anchors that merge keys refer to
		else
			unknownKey(k, key, "the top level", topKeys);
	});
	if (exporter)
		loadExporter(exporter);
	if (includeNode_)
		loadIncludes(includeNode_, services, templates);
	for (Node t : templates)
		loadTemplates(t);
	for (Node n : services)
		loadServices(n);
	std::map<std::string, Location> serviceNames;
	for (auto &sd : drafts_) {
		validateService(sd, serviceNames);
		config_.services.push_back(std::move(sd.s));
	}

	if (!errors_.empty()) {
		sortErrors();
		return tl::unexpected(errors_);
	}
	return std::move(config_);
}

// By file (the main one first, then included ones in the order read), then
// by position.
void Loader::sortErrors()
{
	auto rank = [&](const std::string &file) {
		auto it = std::find(fileOrder_.begin(), fileOrder_.end(), file);
		return it - fileOrder_.begin();
	};
	std::stable_sort(errors_.begin(), errors_.end(), [&](const Error &a, const Error &b) {
		return std::tuple(rank(a.where.file), a.where.line, a.where.column) <
		    std::tuple(rank(b.where.file), b.where.line, b.where.column);
	});
}

Result<std::string> readConfigText(const std::string &path)
{
	UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
	if (!fd)
		return fail(errnoMessage("cannot read"));
	std::string text;
	char buf[65536];
	for (;;) {
		ssize_t n = ::read(fd.get(), buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(errnoMessage("cannot read"));
		if (n == 0)
			break;
		text.append(buf, static_cast<size_t>(n));
		if (text.size() > maxFileSize)
			return fail(errnoMessage("cannot read", EFBIG));
	}
	return text;
}

} // namespace load

ConfigResult loadConfigString(const std::string &text, const std::string &name,
    LoadNotes *notes)
{
	load::Loader loader(name);
	ConfigResult r = loader.load(text);
	// Messages quote what the file says, which may be any bytes: they go
	// to logs and, after a failed reload, into a frame that must be UTF-8.
	if (!r)
		for (auto &e : r.error())
			e.message = printableText(e.message);
	if (r && notes) {
		*notes = loader.notes();
		for (auto &w : notes->warnings)
			w.message = printableText(w.message);
	}
	return r;
}

ConfigResult loadConfigFile(const std::string &path, LoadNotes *notes)
{
	auto text = load::readConfigText(path);
	if (!text)
		return tl::unexpected(Errors{Error(Location{path, 0, 0}, text.error().message)});
	return loadConfigString(*text, path, notes);
}

} // namespace pme::common
