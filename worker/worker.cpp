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
// Configuration a worker cannot act on (a content type or source type this
// worker does not implement, a filter that does not compile) was already
// refused by the loader in pmed -n; should it get here anyway it is reported
// in every cycle rather than stopping the other groups of the service.
#include "worker.hpp"

#include <optional>

#include "command_source.hpp"
#include "common/log.hpp"
#include "file_source.hpp"
#include "text_extractor.hpp"
#include "common/utf8.hpp"
#include "common/uv_handle.hpp"

namespace pme::worker {

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
	void metricsOnError(GroupResult &result);
	void logTransition(const GroupResult &result);

	Worker &worker_;
	GroupConfig config_;
	Millis interval_;
	UvHandle<uv_timer_t> timer_;
	std::unique_ptr<CommandSource> command_;
	std::unique_ptr<FileSource> file_;
	std::string setupError_;
	// Per metric: its extractor, or why it has none.
	std::vector<std::optional<TextExtractor>> extractors_;
	std::vector<std::string> compileErrors_;

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
	case SourceType::Http:
		setupError_ = "source type http is not supported by this pme-worker";
		break;
	}
	if (config.sourceType != SourceType::Static && setupError_.empty() &&
	    config.contentType != common::ContentType::Text)
		setupError_ = std::string("content type ") + common::toString(config.contentType) +
		    " is not supported by this pme-worker";
	if (!setupError_.empty())
		log::warnx("group %s/%s: %s", service.c_str(), config.key.c_str(),
		    setupError_.c_str());

	for (const auto &m : config.metrics) {
		if (config.sourceType == SourceType::Static || !setupError_.empty()) {
			extractors_.emplace_back();
			compileErrors_.emplace_back();
			continue;
		}
		auto x = TextExtractor::compile(m, config.multiline);
		if (x) {
			extractors_.emplace_back(std::move(*x));
			compileErrors_.emplace_back();
		} else {
			log::warnx("metric %s of group %s/%s: %s", m.name.c_str(), service.c_str(),
			    config.key.c_str(), x.error().message.c_str());
			extractors_.emplace_back();
			compileErrors_.push_back(x.error().message);
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
	else
		finished(SourceRead());
}

void Worker::Group::metricsOnError(GroupResult &result)
{
	for (const auto &m : config_.metrics)
		if (m.valueOnError)
			result.families.push_back(valueOnErrorFamily(m));
}

GroupResult Worker::Group::build(const SourceRead &read)
{
	GroupResult r;
	r.group = config_.key;
	r.sequence = ++sequence_;
	r.skipped = skipped_;
	r.exitStatus = read.exitStatus;
	r.duration = static_cast<double>(uv_hrtime() - startedNs_) / 1e9;

	if (!setupError_.empty() || !read.ok) {
		r.ok = false;
		r.error = setupError_.empty() ? read.error : setupError_;
		metricsOnError(r);
		return r;
	}
	if (read.truncated) {
		r.ok = false;
		r.error = read.error;
	}
	for (size_t i = 0; i < config_.metrics.size(); i++) {
		const common::MetricConfig &m = config_.metrics[i];
		common::Result<common::Family> f;
		if (config_.sourceType == SourceType::Static)
			f = staticFamily(m);
		else if (extractors_[i])
			f = extractors_[i]->extract(read.content);
		else
			f = common::fail(compileErrors_[i]);
		if (f)
			r.families.push_back(std::move(*f));
		else if (m.valueOnError)
			r.families.push_back(valueOnErrorFamily(m));
		else
			r.metricErrors.emplace_back(m.name, common::sanitizeUtf8(f.error().message));
	}
	return r;
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
