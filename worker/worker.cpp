// SPDX-License-Identifier: ISC
// Worker: collects a service's groups on schedule and hands over each result.
//
// A cycle of a group is one source read (SPEC §3: whatever the number of
// metrics) followed by one extraction per metric over the same text:
//
//   timer tick -> [still running? count a skip] -> read the source (static:
//   nothing; command: CommandSource; file: FileSource; a read younger than
//   cache_ttl: reused) -> extract each metric -> GroupResult -> sink
//
// What fails where: a source that fails (command not found, non-zero exit,
// timeout, unreadable file) fails the group (ok = false, its error text);
// its metrics with value_on_error still report that value, the others
// nothing, so that the supervisor keeps their last value.  A metric whose
// filter matches nothing or whose value does not parse is a metric error
// (value_on_error, else a METRIC_ERROR record) and does not fail the group.
// Output cut at max_output is parsed as far as it goes, and the group is
// reported failed with the truncation as its error so that it gets noticed.
//
// Structured content (json, xml) is parsed once per cycle, and each metric
// selects from the same document.  A document that does not parse fails
// the group like a failed read.  A metric of such content may yield some
// series and errors for others (a null among ten nodes): the family is
// sent with the series that were read, and the METRIC_ERROR record carries
// the first problem, so that the missing series are absent this cycle.  An
// imported exposition (prometheus) is a group without declared metrics:
// whatever families it has, after the import filters, are the result.
//
// Metric errors are logged once per group and distinct message (a field
// that is null at every cycle would otherwise fill the log); the supervisor
// counts every one in pme_source_errors_total.
//
// Configuration a worker cannot act on (a source type this worker does not
// implement, a filter that does not compile) was already refused by the
// loader in pmed -n; should it get here anyway it is reported in every
// cycle rather than stopping the other groups of the service.
#include "worker.hpp"

#include <optional>
#include <set>
#include <variant>

#include "command_source.hpp"
#include "common/log.hpp"
#include "file_source.hpp"
#include "http_source.hpp"
#include "json_extractor.hpp"
#include "prom_import.hpp"
#include "text_extractor.hpp"
#include "xml_extractor.hpp"
#include "common/utf8.hpp"
#include "common/uv_handle.hpp"
#include "pme_build.h"

namespace pme::worker {

using common::ContentType;
using common::GroupConfig;
using common::GroupResult;
using common::Millis;
using common::SourceType;
namespace log = common::log;

Millis startOffset(const std::string &service, const std::string &group, Millis interval)
{
	if (interval.count() <= 0)
		return Millis(0);
	uint64_t h = 14695981039346656037ull;
	std::string key = service + "/" + group;
	for (unsigned char c : key) {
		h ^= c;
		h *= 1099511628211ull;
	}
	return Millis(static_cast<int64_t>(h % static_cast<uint64_t>(interval.count())));
}

class Worker::Group {
public:
	Group(Worker &worker, const GroupConfig &config);
	void arm();
	void stop();

private:
	static void onTick(uv_timer_t *t) noexcept;
	void tick();
	void run();
	void finished(SourceRead read);
	GroupResult build(const SourceRead &read);
	void extractMetrics(GroupResult &r, const SourceRead &read);
	void addExtraction(GroupResult &r, const common::MetricConfig &m, Extraction x);
	void addGroupLabels(GroupResult &r) const;
	void metricsOnError(GroupResult &result);
	void logTransition(const GroupResult &result);
	void logMetricErrors(const GroupResult &result);

	Worker &worker_;
	GroupConfig config_;
	Millis interval_;
	UvHandle<uv_timer_t> timer_;
	std::unique_ptr<CommandSource> command_;
	std::unique_ptr<FileSource> file_;
	std::unique_ptr<HttpSource> http_;
	std::string setupError_;
	// Per metric: its extractor, or why it has none (monostate).
	using Extractor = std::variant<std::monostate, TextExtractor, JsonExtractor, XmlExtractor>;
	std::vector<Extractor> extractors_;
	std::vector<std::string> compileErrors_;
	std::optional<PromImporter> importer_;
	std::set<std::string> loggedErrors_;

	bool running_ = false;
	uint32_t skipped_ = 0;
	uint64_t sequence_ = 0;
	uint64_t startedNs_ = 0;
	bool lastOk_ = true;
	std::optional<SourceRead> lastRead_;
	uint64_t lastReadMs_ = 0;
};

Worker::Group::Group(Worker &worker, const GroupConfig &config)
	: worker_(worker), config_(config)
{
	interval_ = config.effectiveInterval.count() > 0 ? config.effectiveInterval :
	    worker.options_.globalInterval;
	if (interval_.count() <= 0)
		interval_ = Millis(5000);
	uv_timer_init(worker.loop_, timer_.get());
	timer_.initialized();
	timer_.get()->data = this;

	const std::string &service = worker.service_.name;
	switch (config.sourceType) {
	case SourceType::Static:
		break;
	case SourceType::Command: {
		auto spec = commandSpec(config, worker.options_.baseEnv, worker.service_.env);
		if (spec)
			command_ = std::make_unique<CommandSource>(worker.loop_, std::move(*spec));
		else
			setupError_ = "command: " + spec.error().message;
		break;
	}
	case SourceType::File:
		file_ = std::make_unique<FileSource>(worker.loop_, config.source, config.maxOutput);
		break;
	case SourceType::Http: {
		HttpRequest req;
		req.url = config.source;
		req.method = config.http.method;
		req.body = config.http.body;
		req.headers = config.http.headers;
		req.username = config.http.username;
		req.password = config.http.password;
		req.passwordFile = config.http.passwordFile;
		req.token = config.http.token;
		req.tokenFile = config.http.tokenFile;
		req.timeout = config.timeout;
		req.maxBody = config.maxOutput;
		req.maxRedirects = config.http.maxRedirects;
		req.httpCache = config.http.cache;
		req.userAgent = std::string("pme/") + PME_VERSION;
		if (std::string why = checkHttpRequest(req); !why.empty())
			setupError_ = "http: " + why;
		else
			http_ = std::make_unique<HttpSource>(worker.loop_, std::move(req));
		break;
	}
	}
	if (config.sourceType != SourceType::Static && setupError_.empty() &&
	    config.contentType == ContentType::Prometheus) {
		auto importer = PromImporter::compile(config, worker.service_.metricPrefix);
		if (importer)
			importer_.emplace(std::move(*importer));
		else
			setupError_ = "import: " + importer.error().message;
	}
	if (!setupError_.empty())
		log::warnx("group %s/%s: %s", service.c_str(), config.key.c_str(),
		    setupError_.c_str());

	for (const auto &m : config.metrics) {
		if (config.sourceType == SourceType::Static || !setupError_.empty()) {
			extractors_.emplace_back();
			compileErrors_.emplace_back();
			continue;
		}
		auto compiled = [&](auto x) {
			if (x) {
				extractors_.emplace_back(std::move(*x));
				compileErrors_.emplace_back();
				return;
			}
			log::warnx("metric %s of group %s/%s: %s", m.name.c_str(), service.c_str(),
			    config.key.c_str(), x.error().message.c_str());
			extractors_.emplace_back();
			compileErrors_.push_back(x.error().message);
		};
		switch (config.contentType) {
		case ContentType::Text:
			compiled(TextExtractor::compile(m, config.multiline));
			break;
		case ContentType::Json:
			compiled(JsonExtractor::compile(m));
			break;
		case ContentType::Xml:
			compiled(XmlExtractor::compile(m, config.namespaces));
			break;
		case ContentType::Prometheus:
			compiled(common::Result<TextExtractor>(common::fail(
			    "an imported exposition has no declared metrics")));
			break;
		}
	}
}

void Worker::Group::arm()
{
	Millis first = worker_.options_.once ? Millis(0) :
	    startOffset(worker_.service_.name, config_.key, interval_);
	uv_timer_start(timer_.get(), onTick, static_cast<uint64_t>(first.count()),
	    static_cast<uint64_t>(interval_.count()));
}

void Worker::Group::stop()
{
	timer_.close();
	if (command_)
		command_->cancel();
	if (file_)
		file_->cancel();
	if (http_)
		http_->cancel();
	running_ = false;
}

void Worker::Group::onTick(uv_timer_t *t) noexcept
{
	auto *self = static_cast<Group *>(t->data);
	if (self != nullptr)
		self->tick();
}

void Worker::Group::tick()
{
	if (running_) {
		skipped_++;
		log::debug("group %s: still running, tick skipped", config_.key.c_str());
		return;
	}
	run();
}

void Worker::Group::run()
{
	running_ = true;
	startedNs_ = uv_hrtime();
	uint64_t now = uv_now(worker_.loop_);
	if (lastRead_ && config_.cacheTtl.count() > 0 &&
	    now - lastReadMs_ < static_cast<uint64_t>(config_.cacheTtl.count())) {
		SourceRead again = *lastRead_;
		again.cached = true;
		again.responseSeconds = -1; // no request was made
		finished(std::move(again));
		return;
	}
	auto done = [this](SourceRead read) {
		if (read.ok && config_.cacheTtl.count() > 0) {
			lastRead_ = read;
			lastReadMs_ = uv_now(worker_.loop_);
		}
		finished(std::move(read));
	};
	if (setupError_.empty() && command_)
		command_->start(done);
	else if (setupError_.empty() && file_)
		file_->start(done);
	else if (setupError_.empty() && http_)
		http_->start(done);
	else
		finished(SourceRead());
}

void Worker::Group::metricsOnError(GroupResult &result)
{
	for (const auto &m : config_.metrics)
		if (m.valueOnError)
			result.families.push_back(valueOnErrorFamily(m, config_.contentType));
}

void Worker::Group::addExtraction(GroupResult &r, const common::MetricConfig &m, Extraction x)
{
	if (x.errorCount > 0)
		r.metricErrors.emplace_back(m.name, common::sanitizeUtf8(x.summary()));
	if (x.sendFamily())
		r.families.push_back(std::move(x.family));
	else if (m.valueOnError)
		r.families.push_back(valueOnErrorFamily(m, config_.contentType));
}

// Every metric over one read: the document is parsed once.
void Worker::Group::extractMetrics(GroupResult &r, const SourceRead &read)
{
	auto documentFailed = [&](const std::string &why) {
		r.ok = false;
		r.error = common::sanitizeUtf8(why);
		metricsOnError(r);
	};
	if (config_.contentType == ContentType::Prometheus) {
		auto imported = importer_->import(read.content);
		if (!imported) {
			r.ok = false;
			r.error = common::sanitizeUtf8(imported.error().message);
			return;
		}
		r.families = std::move(imported->families);
		for (const auto &e : imported->errors)
			if (loggedErrors_.size() < 64 && loggedErrors_.insert(e).second)
				log::warnx("group %s: %s (logged once)", config_.key.c_str(), e.c_str());
		return;
	}
	std::optional<JsonDocument> json;
	std::optional<XmlDocument> xml;
	if (config_.contentType == ContentType::Json) {
		auto doc = JsonDocument::parse(read.content);
		if (!doc)
			return documentFailed(doc.error().message);
		json.emplace(std::move(*doc));
	} else if (config_.contentType == ContentType::Xml) {
		auto doc = XmlDocument::parse(read.content);
		if (!doc)
			return documentFailed(doc.error().message);
		xml.emplace(std::move(*doc));
	}
	for (size_t i = 0; i < config_.metrics.size(); i++) {
		const common::MetricConfig &m = config_.metrics[i];
		Extractor &x = extractors_[i];
		if (auto *t = std::get_if<TextExtractor>(&x)) {
			auto f = t->extract(read.content);
			if (f)
				r.families.push_back(std::move(*f));
			else if (m.valueOnError)
				r.families.push_back(valueOnErrorFamily(m));
			else
				r.metricErrors.emplace_back(m.name,
				    common::sanitizeUtf8(f.error().message));
		} else if (auto *j = std::get_if<JsonExtractor>(&x)) {
			addExtraction(r, m, j->extract(*json));
		} else if (auto *e = std::get_if<XmlExtractor>(&x)) {
			addExtraction(r, m, e->extract(*xml));
		} else if (m.valueOnError) {
			r.families.push_back(valueOnErrorFamily(m, config_.contentType));
		} else {
			r.metricErrors.emplace_back(m.name, compileErrors_[i]);
		}
	}
}

// The group's constant labels on every sample that does not have its own.
void Worker::Group::addGroupLabels(GroupResult &r) const
{
	if (config_.labels.empty() || config_.contentType == ContentType::Prometheus)
		return; // the importer adds them
	for (auto &f : r.families)
		for (auto &s : f.samples)
			for (const auto &[name, value] : config_.labels) {
				bool has = false;
				for (const auto &l : s.labels)
					has = has || l.name == name;
				if (!has)
					s.labels.push_back({name, value});
			}
}

GroupResult Worker::Group::build(const SourceRead &read)
{
	GroupResult r;
	r.group = config_.key;
	r.sequence = ++sequence_;
	r.skipped = skipped_;
	r.exitStatus = read.exitStatus;
	r.httpStatus = read.httpStatus;
	r.responseSeconds = read.responseSeconds;
	r.duration = static_cast<double>(uv_hrtime() - startedNs_) / 1e9;

	if (!setupError_.empty() || !read.ok) {
		r.ok = false;
		r.error = setupError_.empty() ? read.error : setupError_;
		metricsOnError(r);
		addGroupLabels(r);
		return r;
	}
	if (read.truncated) {
		r.ok = false;
		r.error = read.error;
		// A cut document does not parse: say why rather than where.
		if (config_.contentType != ContentType::Text) {
			metricsOnError(r);
			addGroupLabels(r);
			return r;
		}
	}
	if (config_.sourceType == SourceType::Static) {
		for (const auto &m : config_.metrics) {
			auto f = staticFamily(m);
			if (f)
				r.families.push_back(std::move(*f));
			else
				r.metricErrors.emplace_back(m.name, f.error().message);
		}
	} else {
		extractMetrics(r, read);
	}
	addGroupLabels(r);
	return r;
}

void Worker::Group::logMetricErrors(const GroupResult &r)
{
	for (const auto &[name, message] : r.metricErrors) {
		if (loggedErrors_.size() >= 64)
			return;
		if (loggedErrors_.insert(name + ": " + message).second)
			log::warnx("group %s: metric %s: %s (logged once; every cycle with an "
			    "error is counted in pme_source_errors_total)", config_.key.c_str(),
			    name.c_str(), message.c_str());
	}
}

void Worker::Group::logTransition(const GroupResult &r)
{
	if (!r.ok && lastOk_)
		log::warnx("group %s failed: %s", config_.key.c_str(), r.error.c_str());
	else if (r.ok && !lastOk_)
		log::info("group %s recovered", config_.key.c_str());
	lastOk_ = r.ok;
}

void Worker::Group::finished(SourceRead read)
{
	GroupResult r = build(read);
	running_ = false;
	skipped_ = 0;
	logTransition(r);
	logMetricErrors(r);
	if (!worker_.stopped_)
		worker_.sink_(r);
}

Worker::Worker(uv_loop_t *loop, common::ServiceConfig service, WorkerOptions options,
    ResultSink sink)
	: loop_(loop), service_(std::move(service)), options_(std::move(options)),
	  sink_(std::move(sink))
{
	for (const auto &g : service_.groups)
		groups_.push_back(std::make_unique<Group>(*this, g));
}

Worker::~Worker()
{
	stop();
}

void Worker::start()
{
	for (auto &g : groups_)
		g->arm();
}

void Worker::stop()
{
	if (stopped_)
		return;
	stopped_ = true;
	for (auto &g : groups_)
		g->stop();
}

} // namespace pme::worker
