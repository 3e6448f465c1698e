// SPDX-License-Identifier: ISC
// Rendering benchmark: what the supervisor's store costs for 100,000
// series, against peers measured in the same run.
//
// The series are those of tests/bench/bench.py's body (a request counter,
// a latency histogram, two gauges), sent as one imported result.  Each
// step is timed as the median of several runs, each on a fresh store
// where it has to be:
//   lines     the store's line rendering (appendSample()) of every sample
//             alone, like for like with the snprintf peer: the target;
//   render    the first result applied (checked, keyed, counted, every
//             line rendered) and the body of the text format collected;
//   same      a result whose series are all as before;
//   changed   a result where every value changed;
//   gzip      the body deflated in its pieces, at level 1 (pmed) and 6;
//   openmetrics  the body in OpenMetrics, from the 0.0.4 lines.
// The peers: snprintf() writing the same lines from the same samples (what
// a naive exporter does at every scrape), and memcpy() of the body (the
// floor of any rendering).  The target of pme issue 7 is rendering 100,000
// series from scratch under 30 ms; like every target of tests/bench, it
// is judged here, never in a unit test.  Its exit status is 1 when the
// target is missed.
//
//   build/tests/bench/bench_render [series]
#include <zlib.h>

#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/metric.hpp"
#include "daemon/exposition.hpp"
#include "daemon/metric_store.hpp"

using namespace pme;
using common::MetricType;

namespace {

constexpr double TargetMs = 30;
constexpr int Runs = 7;

const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
const char *const codes[] = {"200", "201", "400", "404", "500"};
const char *const buckets[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
    "2.5", "5", "10"};
constexpr size_t HistogramSeries = std::size(buckets) + 3; // +Inf, _sum, _count

common::Sample sample(double v, std::vector<common::Label> labels, std::string suffix = "")
{
	common::Sample s;
	s.value = v;
	s.labels = std::move(labels);
	s.suffix = std::move(suffix);
	return s;
}

// Like bench.py's generate_body(), with values from a fixed generator.
common::GroupResult makeResult(size_t total, uint32_t seed)
{
	uint32_t x = seed;
	auto rnd = [&](uint32_t n) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		return x % n;
	};
	common::GroupResult r;
	r.group = "g";
	r.ok = true;
	auto family = [&](const char *name, MetricType type, const char *help) -> common::Family & {
		common::Family &f = r.families.emplace_back();
		f.name = name;
		f.type = type;
		f.help = help;
		return f;
	};
	family("app_build_info", MetricType::Gauge, "Build.").samples.push_back(
	    sample(1, {{"version", "2.4.1"}, {"revision", "3f2a9c1"}}));
	size_t rest = total - 1;
	size_t counters = rest * 4 / 10;
	size_t histograms = rest * 3 / 10 / HistogramSeries;
	size_t gauges = rest - counters - histograms * HistogramSeries;
	auto &c = family("app_http_requests_total", MetricType::Counter, "Requests.");
	for (size_t i = 0; i < counters; i++)
		c.samples.push_back(sample(rnd(10000000) + 1, {{"method", methods[i % 4]},
		    {"handler", "/api/v1/resource" + std::to_string(i / 20)},
		    {"code", codes[i / 4 % 5]}}));
	auto &h = family("app_http_request_duration_seconds", MetricType::Histogram, "Latency.");
	for (size_t i = 0; i < histograms; i++) {
		std::vector<common::Label> base{{"method", methods[i % 4]},
		    {"handler", "/api/v1/resource" + std::to_string(i / 4)}};
		double count = 0;
		for (const char *le : buckets) {
			count += rnd(5000);
			auto l = base;
			l.push_back({"le", le});
			h.samples.push_back(sample(count, l, "_bucket"));
		}
		auto l = base;
		l.push_back({"le", "+Inf"});
		h.samples.push_back(sample(count, l, "_bucket"));
		h.samples.push_back(sample(count * 0.125, base, "_sum"));
		h.samples.push_back(sample(count, base, "_count"));
	}
	auto &q = family("app_queue_messages", MetricType::Gauge, "Messages.");
	for (size_t i = 0; i < gauges / 2; i++)
		q.samples.push_back(sample(rnd(100000), {{"queue", "orders-" + std::to_string(i / 16)},
		    {"partition", std::to_string(i % 16)}}));
	auto &w = family("app_worker_load_ratio", MetricType::Gauge, "Load.");
	for (size_t i = 0; i < gauges - gauges / 2; i++)
		w.samples.push_back(sample(rnd(10000) / 10000.0, {{"pool", "pool-" +
		    std::to_string(i / 64)}, {"thread", std::to_string(i % 64)}}));
	return r;
}

// Every value of a result moved on, as counters do between two cycles.
void advance(common::GroupResult &r)
{
	for (auto &f : r.families)
		for (auto &s : f.samples)
			s.value += 1;
}

common::Config importing()
{
	common::GroupConfig g;
	g.key = "g";
	g.contentType = common::ContentType::Prometheus;
	g.sourceType = common::SourceType::File;
	g.interval = g.effectiveInterval = common::Millis(2000);
	common::ServiceConfig s;
	s.key = s.name = "app";
	s.effectiveInterval = common::Millis(2000);
	s.groups.push_back(std::move(g));
	common::Config c;
	c.path = "bench";
	c.services.push_back(std::move(s));
	return c;
}

// CPU time of this thread, not wall time: the machine may be busy with
// other work, which would count in wall time and not here.
double cpuMs()
{
	timespec ts{};
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// The median of Runs runs of fn(), each after setup() (not timed).
double median(const std::function<void()> &setup, const std::function<void()> &fn)
{
	std::vector<double> ms;
	for (int i = 0; i < Runs; i++) {
		setup();
		double t0 = cpuMs();
		fn();
		ms.push_back(cpuMs() - t0);
	}
	std::sort(ms.begin(), ms.end());
	return ms[ms.size() / 2];
}

// The peer: each line written with snprintf, as "%s{%s=\"%s\",...} %.17g".
size_t renderSnprintf(const common::GroupResult &r, std::string &out)
{
	out.clear();
	char line[1024];
	for (const auto &f : r.families) {
		for (const auto &s : f.samples) {
			int n = std::snprintf(line, sizeof line, "%s%s", f.name.c_str(), s.suffix.c_str());
			for (size_t i = 0; i < s.labels.size(); i++)
				n += std::snprintf(line + n, sizeof line - static_cast<size_t>(n),
				    "%c%s=\"%s\"", i == 0 ? '{' : ',', s.labels[i].name.c_str(),
				    s.labels[i].value.c_str());
			n += std::snprintf(line + n, sizeof line - static_cast<size_t>(n), "%s %.17g\n",
			    s.labels.empty() ? "" : "}", s.value);
			out.append(line, static_cast<size_t>(n));
		}
	}
	return out.size();
}

// The store's own line rendering (appendSample(), std::to_chars) of the
// same samples, without the rest of an apply: like for like with the
// snprintf peer.
size_t renderLines(const common::GroupResult &r, std::string &out)
{
	out.clear();
	std::string name;
	for (const auto &f : r.families) {
		for (const auto &s : f.samples) {
			name.assign(f.name);
			name += s.suffix;
			daemon::appendSample(out, name, s.labels, {}, s.value);
		}
	}
	return out.size();
}

// Deflate each piece of a body at `level`, with a sync flush each, as
// pmed does; returns the bytes out.
size_t deflatePieces(const daemon::SharedBuffers &body, int level)
{
	z_stream z{};
	if (deflateInit2(&z, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		std::abort();
	std::string out;
	size_t total = 0;
	for (const auto &p : body.pieces) {
		deflateReset(&z);
		out.resize(deflateBound(&z, p->size()) + 64);
		z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(p->data()));
		z.avail_in = static_cast<uInt>(p->size());
		z.next_out = reinterpret_cast<Bytef *>(out.data());
		z.avail_out = static_cast<uInt>(out.size());
		deflate(&z, Z_SYNC_FLUSH);
		total += out.size() - z.avail_out;
	}
	deflateEnd(&z);
	return total;
}

} // namespace

int main(int argc, char **argv)
{
	size_t series = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
	if (series < 100) {
		std::fprintf(stderr, "bench_render: give at least 100 series\n");
		return 2;
	}
	common::Config config = importing();
	common::GroupResult first = makeResult(series, 2463534242u);
	common::GroupResult moved = first;
	advance(moved);

	std::unique_ptr<daemon::MetricStore> store;
	auto fresh = [&] { store = std::make_unique<daemon::MetricStore>(config); };
	auto apply = [&](const common::GroupResult &r, double now) {
		if (!store->apply("app", r, now))
			std::abort();
	};
	size_t bytes = 0;
	double render = median(fresh, [&] {
		apply(first, 100);
		bytes = store->expositionParts().data->size;
	});
	double same = median([&] { fresh(); apply(first, 100); store->expositionParts(); },
	    [&] { apply(first, 102); store->expositionParts(); });
	double changed = median([&] { fresh(); apply(first, 100); store->expositionParts(); },
	    [&] { apply(moved, 102); store->expositionParts(); });
	double om = median([&] { fresh(); apply(first, 100); },
	    [&] { store->expositionParts(daemon::Format::OpenMetrics); });
	double gzipPmed = median([&] { fresh(); apply(first, 100); store->expositionParts(); },
	    [&] { store->expositionParts(daemon::Format::Text, true); });
	auto body = store->expositionParts().data;
	size_t z1 = 0, z6 = 0;
	double gzip1 = median([] {}, [&] { z1 = deflatePieces(*body, 1); });
	double gzip6 = median([] {}, [&] { z6 = deflatePieces(*body, 6); });
	double scrape = median([] {}, [&] { store->expositionParts(daemon::Format::Text, true); });

	std::string peer;
	size_t peerBytes = 0;
	double snprintfMs = median([] {}, [&] { peerBytes = renderSnprintf(first, peer); });
	std::string lines;
	size_t linesBytes = 0;
	double linesMs = median([&] { lines.clear(); lines.shrink_to_fit(); },
	    [&] { linesBytes = renderLines(first, lines); });
	std::string copy;
	std::string joined = body->str();
	double memcpyMs = median([&] { copy.clear(); copy.shrink_to_fit(); },
	    [&] { copy.assign(joined); });

	std::printf("bench_render: %zu series, %zu bytes of text format (snprintf peer: %zu "
	    "bytes); CPU time, median of %d runs\n", series, bytes, peerBytes, Runs);
	std::printf("| step | ms | vs snprintf | vs memcpy |\n|---|---|---|---|\n");
	auto row = [&](const char *what, double ms) {
		std::printf("| %s | %.2f | %.3fx | %.1fx |\n", what, ms, ms / snprintfMs,
		    ms / memcpyMs);
	};
	row("render the lines (appendSample, to_chars)", linesMs);
	row("apply from scratch (check, key, count, render) + text body", render);
	row("result with every series as before", same);
	row("result with every value changed", changed);
	row("OpenMetrics body from the 0.0.4 lines", om);
	row("gzip body, pmed (level 1, per piece)", gzipPmed);
	row("a gzip scrape after that (self-metrics)", scrape);
	row("peer: snprintf of the same lines", snprintfMs);
	row("peer: memcpy of the body", memcpyMs);
	std::printf("deflate of the pieces: level 1 %.2f ms, %zu bytes; level 6 %.2f ms, %zu "
	    "bytes\n", gzip1, z1, gzip6, z6);
	bool ok = linesMs < TargetMs;
	std::printf("target: rendering %zu series from scratch < %.0f ms: %.2f ms (%zu bytes), %s; "
	    "the whole first apply (checks, keys, counter states, rendering) %.2f ms\n", series,
	    TargetMs, linesMs, linesBytes, ok ? "pass" : "FAIL", render);
	return ok ? 0 : 1;
}
