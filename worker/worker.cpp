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
// A read that gives more than max_series series fails whole, the way a
// scrape past Prometheus' sample_limit does: the supervisor keeps the last
// values rather than an arbitrary part of the new ones.
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
#include "common/fnv.hpp"
#include "common/log.hpp"
#include "file_source.hpp"
#include "http_source.hpp"
#include "json_extractor.hpp"
#include "observation.hpp"
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
	uint64_t h = common::fnv1a(service + "/" + group);
	return Millis(static_cast<int64_t>(h % static_cast<uint64_t>(interval.count())));
}

namespace {

// Per metric: its extractor, or why it has none (monostate).
using Extractor = std::variant<std::monostate, TextExtractor, JsonExtractor, XmlExtractor>;

// The parsed documents of one read, for the extractors of its content type.
struct Documents {
	std::string_view text;
	const JsonDocument *json = nullptr;
	const XmlDocument *xml = nullptr;
};

// One extractor over one read, as an Extraction whatever the content.
Extraction runExtractor(Extractor &x, const Documents &docs)
{
	Extraction out;
	if (auto *t = std::get_if<TextExtractor>(&x)) {
		auto f = t->extract(docs.text);
		if (f) {
			out.family = std::move(*f);
		} else {
			out.errors.push_back(common::sanitizeUtf8(f.error().message));
			out.errorCount = 1;
		}
	} else if (auto *j = std::get_if<JsonExtractor>(&x)) {
		out = j->extract(*docs.json);
	} else if (auto *e = std::get_if<XmlExtractor>(&x)) {
		out = e->extract(*docs.xml);
	}
	return out;
}

} // namespace

// How one metric is read: histograms read from the source have an
// extractor per bucket (then sum, then count); histograms and summaries
// fed by observation keep their state here, so that a worker restart
// starts them again (the supervisor sees a reset, SPEC §3).
struct Plan {
	Extractor main;
	std::vector<Extractor> parts;
	std::string compileError;
	std::optional<ObservedHistogram> histogram;
	std::optional<SlidingSummary> summary;
};

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
	std::string_view observationText(const SourceRead &read);
	void collectMapped(GroupResult &r, const common::MetricConfig &m, Plan &plan,
	    const Documents &docs);
	void collectObserved(GroupResult &r, const common::MetricConfig &m, Plan &plan,
	    Extraction x);
	void collectStateSet(GroupResult &r, const common::MetricConfig &m, Extraction x);
	void addExtraction(GroupResult &r, const common::MetricConfig &m, Extraction x);
	template <typename Failed>
	Extractor compileExtractor(const common::MetricConfig &m, Failed &&failed);
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
	std::vector<Plan> plans_; // parallel to config_.metrics
	std::optional<PromImporter> importer_;
	std::set<std::string> loggedErrors_;

	bool running_ = false;
	uint32_t skipped_ = 0;
	uint64_t sequence_ = 0;
	uint64_t startedNs_ = 0;
	bool lastOk_ = true;
	std::optional<SourceRead> lastRead_;
	uint64_t lastReadMs_ = 0;
	// A text file observed by histograms or summaries: how much of it
	// was observed, and a hash of that part, to tell an appended file
	// from a replaced one.
	bool observes_ = false;
	size_t observedSize_ = 0;
	uint64_t observedHash_ = 0;
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
		Plan &plan = plans_.emplace_back();
		if (config.sourceType == SourceType::Static || !setupError_.empty() ||
		    config.contentType == ContentType::Prometheus)
			continue;
		auto failed = [&](const std::string &why) {
			if (plan.compileError.empty()) {
				log::warnx("metric %s of group %s/%s: %s", m.name.c_str(),
				    service.c_str(), config.key.c_str(), why.c_str());
				plan.compileError = why;
			}
		};
		if (m.mappedHistogram()) {
			// Each part a gauge of its own filter, with the metric's
			// constant labels; scale is for the sum alone.
			auto part = [&](const std::string &filter, bool sum) {
				common::MetricConfig pm = m;
				pm.type = common::MetricType::Gauge;
				pm.filter = filter;
				pm.valueTemplate.reset();
				pm.scale = sum ? m.scale : 1;
				if (filter.empty()) {
					plan.parts.emplace_back();
					return;
				}
				plan.parts.push_back(compileExtractor(pm, failed));
			};
			for (const auto &[le, filter] : m.bucketFilters)
				part(filter, false);
			part(m.sumFilter, true);
			part(m.countFilter, false);
			continue;
		}
		common::MetricConfig em = m;
		if (m.type == common::MetricType::StateSet) {
			// The state read is mapped to its index in states.
			em.values.clear();
			for (size_t i = 0; i < m.states.size(); i++)
				em.values.emplace_back(m.states[i], static_cast<double>(i));
		}
		plan.main = compileExtractor(em, failed);
		if (m.type == common::MetricType::Histogram && m.observe) {
			plan.histogram.emplace(m.bucketBounds, kMaxSeriesPerMetric);
			observes_ = true;
		} else if (m.type == common::MetricType::Summary) {
			SlidingSummary::Options o;
			o.quantiles = m.quantiles;
			o.maxAge = m.maxAge;
			o.ageBuckets = m.ageBuckets;
			// Exact quantiles keep the window's observations: at most
			// 1,000 label sets of 10,000 observations each (80 MB).
			o.maxSeries = 1000;
			o.maxObservations = 10000;
			plan.summary.emplace(o);
			observes_ = true;
		}
	}
}

// The metric's extractor for the group's content type; on failure, an
// empty one and the reason handed to failed.
template <typename Failed>
Extractor Worker::Group::compileExtractor(const common::MetricConfig &m, Failed &&failed)
{
	auto take = [&](auto x) -> Extractor {
		if (x)
			return Extractor(std::move(*x));
		failed(x.error().message);
		return Extractor();
	};
	switch (config_.contentType) {
	case ContentType::Text:
		return take(TextExtractor::compile(m, config_.multiline));
	case ContentType::Json:
		return take(JsonExtractor::compile(m));
	case ContentType::Xml:
		return take(XmlExtractor::compile(m, config_.namespaces));
	case ContentType::Prometheus:
		break;
	}
	failed("an imported exposition has no declared metrics");
	return Extractor();
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
	Documents docs{read.content, json ? &*json : nullptr, xml ? &*xml : nullptr};
	Documents observed = docs;
	if (observes_)
		observed.text = observationText(read);
	for (size_t i = 0; i < config_.metrics.size(); i++) {
		const common::MetricConfig &m = config_.metrics[i];
		Plan &plan = plans_[i];
		if (!plan.compileError.empty()) {
			if (m.valueOnError)
				r.families.push_back(valueOnErrorFamily(m, config_.contentType));
			else
				r.metricErrors.emplace_back(m.name, plan.compileError);
		} else if (m.mappedHistogram()) {
			collectMapped(r, m, plan, docs);
		} else if (plan.histogram || plan.summary) {
			collectObserved(r, m, plan, read.cached ? Extraction() :
			    runExtractor(plan.main, observed));
		} else if (m.type == common::MetricType::StateSet) {
			collectStateSet(r, m, runExtractor(plan.main, docs));
		} else if (std::holds_alternative<TextExtractor>(plan.main)) {
			// A text metric fails as a whole: no partial family.
			Extraction x = runExtractor(plan.main, docs);
			if (x.errorCount == 0)
				r.families.push_back(std::move(x.family));
			else if (m.valueOnError)
				r.families.push_back(valueOnErrorFamily(m));
			else
				r.metricErrors.emplace_back(m.name, x.summary());
		} else {
			addExtraction(r, m, runExtractor(plan.main, docs));
		}
	}
}

// What observed metrics see of a read.  A text file is observed as a log:
// only the complete lines appended since the previous read, all of it at
// the first read or once the file was truncated or replaced (what was
// observed is no longer its beginning), so that each line is observed
// once.  Any other source is observed whole at each read; a read reused
// from the cache is not observed again (the caller passes nothing).
std::string_view Worker::Group::observationText(const SourceRead &read)
{
	std::string_view text = read.content;
	if (config_.sourceType != SourceType::File || config_.contentType != ContentType::Text)
		return text;
	if (read.cached)
		return {};
	size_t from = 0;
	if (observedSize_ > 0 && text.size() >= observedSize_ &&
	    common::fnv1a(text.substr(0, observedSize_)) == observedHash_)
		from = observedSize_;
	size_t end = text.rfind('\n');
	end = end == std::string_view::npos ? 0 : end + 1;
	if (end <= from)
		return {};
	observedSize_ = end;
	observedHash_ = common::fnv1a(text.substr(0, end));
	return text.substr(from, end - from);
}

// A histogram the source counted: each part must match exactly once.
void Worker::Group::collectMapped(GroupResult &r, const common::MetricConfig &m, Plan &plan,
    const Documents &docs)
{
	MappedHistogram h;
	h.cumulative = m.cumulative;
	std::vector<common::Label> labels;
	std::string problem;
	auto one = [&](Extractor &x, const std::string &what) -> std::optional<double> {
		Extraction e = runExtractor(x, docs);
		if (e.errorCount > 0)
			problem = what + ": " + e.summary();
		else if (e.family.samples.size() != 1)
			problem = what + " matched " + std::to_string(e.family.samples.size()) +
			    " times; it must match once";
		else {
			labels = e.family.samples.front().labels;
			return e.family.samples.front().value;
		}
		return std::nullopt;
	};
	size_t n = m.bucketFilters.size();
	for (size_t k = 0; k < n && problem.empty(); k++) {
		auto v = one(plan.parts[k], "bucket le=\"" + formatLe(m.bucketFilters[k].first) +
		    "\"");
		if (v)
			h.buckets.emplace_back(m.bucketFilters[k].first, *v);
	}
	if (problem.empty() && !std::holds_alternative<std::monostate>(plan.parts[n]))
		h.sum = one(plan.parts[n], "sum");
	if (problem.empty() && !std::holds_alternative<std::monostate>(plan.parts[n + 1]))
		h.count = one(plan.parts[n + 1], "count");
	common::Family f = emptyFamily(m);
	if (problem.empty()) {
		if (auto ok = appendMappedHistogram(f, labels, h); !ok)
			problem = ok.error().message;
	}
	if (!problem.empty())
		r.metricErrors.emplace_back(m.name, common::sanitizeUtf8(problem));
	else
		r.families.push_back(std::move(f));
}

// Each value read is one observation; the family is every label set's
// histogram or summary so far, sent at every cycle.
void Worker::Group::collectObserved(GroupResult &r, const common::MetricConfig &m, Plan &plan,
    Extraction x)
{
	uint64_t now = uv_now(worker_.loop_);
	std::string problem;
	for (const auto &s : x.family.samples) {
		auto ok = plan.histogram ? plan.histogram->observe(s.labels, s.value) :
		    plan.summary->observe(s.labels, s.value, now);
		if (!ok && problem.empty())
			problem = ok.error().message;
	}
	if (x.errorCount > 0)
		r.metricErrors.emplace_back(m.name, x.summary());
	else if (!problem.empty())
		r.metricErrors.emplace_back(m.name, common::sanitizeUtf8(problem));
	common::Family f = emptyFamily(m);
	if (plan.histogram)
		plan.histogram->render(f);
	else
		plan.summary->render(f, now);
	if (!f.samples.empty())
		r.families.push_back(std::move(f));
}

// The state read, as its index in states, becomes a series per state.
void Worker::Group::collectStateSet(GroupResult &r, const common::MetricConfig &m, Extraction x)
{
	if (x.errorCount > 0)
		r.metricErrors.emplace_back(m.name, x.summary());
	if (!x.sendFamily())
		return;
	common::Family f = std::move(x.family);
	f.type = common::MetricType::StateSet;
	if (auto ok = expandStateSet(f, m.states); !ok) {
		if (x.errorCount == 0)
			r.metricErrors.emplace_back(m.name, common::sanitizeUtf8(ok.error().message));
		return;
	}
	r.families.push_back(std::move(f));
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
	r.truncated = read.truncated;
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
	size_t series = 0;
	for (const auto &f : r.families)
		series += f.samples.size();
	if (series > config_.maxSeries) {
		// As Prometheus does past a scrape's sample_limit: none of them,
		// rather than an arbitrary part that looks complete.
		r.ok = false;
		r.error = "the read gave " + std::to_string(series) + " series, more than " +
		    "max_series (" + std::to_string(config_.maxSeries) + "); none is kept";
		r.families.clear();
		metricsOnError(r);
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
	if (worker_.stopped_)
		return;
	if (worker_.options_.explain)
		worker_.options_.explain(config_, read, r);
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
