// SPDX-License-Identifier: ISC
// Everything the supervisor knows about collected data: per-group fragments,
// counter state, staleness, self-metrics, and the rendered exposition.
//
// The store is built once from the supervisor's own validated config, and
// everything a worker sends is checked against that registry before any of
// it is used: a worker can only write the families its groups declare, with
// the declared type, and a result that breaks a rule is refused whole (the
// caller stops that worker).  The help text and type always come from the
// config, never from the worker.
//
// Rendering is split so that a scrape costs no render and no copy.  Each
// (group, family) pair is a Fragment holding its series already rendered
// as text lines, one text for all of them, when the result is applied;
// beside the text, each series keeps a 32-byte record (a hash of its
// labels, the value on its line, where the line is), and no other copy of
// its labels.  A result that sends the series it sent last time, as most
// do, is compared with these records and renders nothing; a series whose
// value changed is rendered again, the others copied.
//
// A hash finds a series, it never identifies one: workers are not trusted,
// and one that computed labels hashing like another service's series must
// not make that series go.  Wherever two keys are equal, the texts of the
// series (the line up to its value) are compared too, lengths first: the
// same text is the same series, equal keys with different texts are two
// series, both kept.  The comparison is of a series to its own record in
// the normal case: a walk of the sample's labels along the line, nothing
// rendered (writes()).  The same labels in another order are the same
// series (the key adds the labels' hashes, and texts of equal length that
// differ are compared label by label).  Counter state has no text: it is
// kept per group and family, where a worker can only confuse its own
// series, and a series whose key an earlier, different one of its result
// has gets a state key of its own (stateKey()).  Fragments of one
// family name, from every group of every service in config order, make a
// MergedFamily: one HELP/TYPE header and all its samples contiguous, as the
// format requires.  The body of a scrape is a list of pieces (SharedBuffers,
// sent as one write of many buffers): each family's header and each
// fragment's text, shared with the store, and rebuilt (pointers, not
// bytes) when a family changed.  That is also where a series exported by
// two services is noticed (keys compared in a set) and the later one
// dropped, from a copy of its fragment's text, so the output stays valid
// whatever the workers send.  The self-metrics follow in one more buffer:
// the cached per-group status block (pme_source_* and pme_worker_*,
// re-rendered when a status changed) and a few volatile lines (scrape
// counter, process metrics) read at render time.  exposition() joins the
// two for --once, behind a version counter bumped by every change.
//
// Both formats are served from the same sample lines.  A merged family
// keeps its OpenMetrics text, in one piece, beside its 0.0.4 pieces, each
// with its own dirty flag: the OpenMetrics text is made from the 0.0.4
// lines (see exposition.cpp) the first time a client asks for OpenMetrics
// after the family changed, so an exporter scraped only in 0.0.4 never
// renders it.  With gzip, each piece is deflated on its own, on the first
// gzip request after it was made, and the pieces are one deflate stream
// (exposition.cpp).  The OpenMetrics texts and the deflated pieces are
// dropped when no client asked for them for CacheKept seconds.
//
// A group with content_type prometheus declares no family: it imports
// whatever the source exposes.  Its fragments are created as families
// appear (kept in a deque so that the pointers of merged families stay
// valid) and join the merged family of that name, declared by another
// service or imported earlier, or a new one appended after the declared
// ones.  A family that cannot join (a name of pmed's own, a type other than
// the one the name already has, too many families) is refused alone: the
// rest of the result is applied, and the refusal is logged once, counted in
// pme_source_families_rejected_total and shown in /health.  A family that
// an imported exposition no longer contains loses its series at the next
// successful result.
//
// Counters keep their state here ({last raw value, exposed value} per
// series), not in the worker, so that a worker restart or a source restart
// is seen as a reset and the exposed counter only grows (SPEC §3).
//
// Histograms and summaries are counters too: their _bucket, _sum and _count
// samples are kept in the same state, but a reset is decided for each of
// their series as a whole (the samples sharing every label but le).  When
// its _count or any of its buckets went down since the last result, every
// sample of the series adds its new raw value to what it exposes, otherwise
// its increase; deciding sample by sample could leave the le="1" bucket
// above le="+Inf" after a reset.  A _sum follows the decision and never
// makes it: it may go down when observations are negative.  A summary's
// quantiles are gauges and go out as sent.  The histograms and summaries a
// worker observes itself live in that worker and start again from zero
// when it restarts, which a drop does not always show (the new worker may
// already have observed as much as the old one had): when a worker goes
// down, the last raw values of those families become 0, so that the next
// worker's values are all added.  A text file is the exception: it is
// observed as a log, and the next worker observes all of it again, so its
// counts go on from where they were.
#include "metric_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jansson.h>

#include <algorithm>
#include <utility>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <limits>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/c_deleter.hpp"
#include "common/log.hpp"
#include "daemon/exposition.hpp"
#include "daemon/series_key.hpp"
#include "pme_build.h"

namespace pme::daemon {

using common::MetricType;

const char *toString(WorkerState s)
{
	switch (s) {
	case WorkerState::Starting: return "starting";
	case WorkerState::Running: return "running";
	case WorkerState::Restarting: return "restarting";
	case WorkerState::Failed: return "failed";
	case WorkerState::Refused: return "refused";
	case WorkerState::Stopped: return "stopped";
	}
	return "unknown";
}

namespace {

constexpr size_t NoIndex = std::numeric_limits<size_t>::max();
// Families one importing group may have created; more are refused.
constexpr size_t MaxImportedFamilies = 20000;
// Seconds a counter's state is kept after its series was last seen: longer
// than the slowest restart of a worker (5 minutes) with room to spare.
constexpr double CounterStateKept = 3600;
// Seconds the OpenMetrics text and the deflated pieces of a format are
// kept after the last request that used them: longer than any scrape
// interval, so that a scraper that uses them never waits for them; a
// client that asked once does not make pmed hold them for good.
constexpr double CacheKept = 600;
// Error texts from workers are kept for /health; bound what is kept.
constexpr size_t MaxErrorText = 512;

// Families the store writes itself; a configured metric of one of these
// names would make a second HELP/TYPE and is left out.
const char *const reservedNames[] = {
	"pme_source_up", "pme_source_duration_seconds", "pme_source_errors_total",
	"pme_source_truncated_total",
	"pme_source_last_success_timestamp_seconds", "pme_source_skipped_total",
	"pme_source_exit_status", "pme_worker_restarts_total", "pme_worker_up",
	"pme_source_age_seconds", "pme_http_status_code", "pme_http_response_seconds",
	"pme_frames_received_total", "pme_protocol_errors_total", "pme_scrapes_total",
	"pme_source_families_rejected_total",
	"pme_series_dropped_total", "pme_build_info", "pme_config_last_reload_successful",
	"pme_http_connections_evicted_total", "pme_http_connections_refused_total",
	"pme_http_requests_timed_out_total",
	"pme_config_last_reload_success_timestamp_seconds", "process_cpu_seconds_total",
	"process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
	"process_max_fds", "process_start_time_seconds",
};

bool reservedName(const std::string &name)
{
	for (const char *r : reservedNames)
		if (name == r)
			return true;
	return false;
}

// A run of the body, immutable once made: a family's header, the samples
// one group exports of it, or a family in OpenMetrics.  Bodies being sent
// share it.  Its deflated form is made on the first gzip request after it
// was, and dropped when no client asked for gzip for a while (CacheKept).
struct Piece {
	std::string text;
	std::shared_ptr<const Deflated> gz;
};
using PiecePtr = std::shared_ptr<Piece>;

// One series of a fragment: where its line is in the fragment's text, and
// what the line was made from, so that a result that sends it again
// unchanged costs a comparison and no rendering.
struct Series {
	uint64_t key = 0;  // seriesKeys(): its identity within the family
	double value = 0;  // on the line: a counter's exposed value, not the raw one
	// Of a counter, or of a histogram's or summary's _bucket, _sum or
	// _count: since when the store has counted it (CounterState), NaN
	// for the other samples.  OpenMetrics' _created.
	double created = std::numeric_limits<double>::quiet_NaN();
	uint32_t offset = 0;
	uint32_t length : 30 = 0;
	uint32_t timestamped : 1 = 0; // the line ends with a timestamp (ms)
	// Its key is that of an earlier series of the fragment whose text
	// differs: its counter state is kept under a key of its own.
	uint32_t collides : 1 = 0;
};

// One family of one group: the series it last reported, their lines in
// one text, the 0.0.4 format.
struct Fragment {
	std::string name;
	MetricType type = MetricType::Gauge;
	PiecePtr text;          // null when there is no series
	std::vector<Series> series;
	double updated = 0;     // when the series were sent: all come in one result
	bool imported = false;  // created by a result, not by the config
	bool observed = false;  // a histogram or summary the worker observes itself
	size_t merged = NoIndex; // index in Impl::merged_, NoIndex when not exported

	std::string_view line(const Series &s) const
	{
		return std::string_view(text->text).substr(s.offset, s.length);
	}
};

struct CounterState {
	double lastRaw = 0;
	double exposed = 0;
	double lastSeen = 0;
	// When this state was made: the exposed value counts from then on.
	// A reset of the source does not change it, as the exposed value goes
	// on from where it was; a state forgotten (expire()) and made again
	// does, as the exposed value starts again from the raw one.
	double created = 0;
};

// Series key -> state of a counter, or of a histogram's or summary's
// _bucket, _sum or _count.
using CounterStates = KeyMap<CounterState>;

struct GroupState {
	std::string key;
	double staleAfter = 15; // seconds
	std::unordered_map<std::string, size_t> fragmentIndex; // family name -> fragments
	std::deque<Fragment> fragments; // grows only: merged families point into it
	bool imports = false;   // content_type prometheus: families come from results
	bool hasOutput = false; // a command, file or http source: max_output applies
	size_t importedFamilies = 0;
	uint64_t rejected = 0;  // families refused (imports)
	std::string lastRejected;
	// By family name: kept apart from the fragments, as a counter's state
	// outlives its series (expire()) and goes on through a reload.
	std::unordered_map<std::string, CounterStates> counters;
	double countersOldest = std::numeric_limits<double>::infinity();

	bool reported = false;
	bool up = false;
	double lastResult = 0;
	double lastSuccess = 0; // 0: never
	double duration = 0;
	uint64_t errors = 0;
	uint64_t truncated = 0; // results whose source output was cut at max_output
	uint64_t skipped = 0;
	int32_t exitStatus = -1;
	int32_t httpStatus = 0;       // 0: no HTTP response yet
	double responseSeconds = -1;
	std::string lastError;
};

struct ServiceState {
	std::string name;
	common::Pairs labels;
	std::vector<GroupState> groups;
	std::unordered_map<std::string, size_t> groupIndex;
	WorkerState state = WorkerState::Starting;
	int pid = 0;
	std::string reason;
	uint64_t restarts = 0;
	uint64_t frames = 0;
	uint64_t protocolErrors = 0;
};

struct Part {
	const ServiceState *service;
	const Fragment *fragment;
};

struct MergedFamily {
	std::string name;
	MetricType type = MetricType::Gauge;
	std::string help;
	std::string unit;           // OpenMetrics UNIT (config, or the import), "" none
	std::vector<Part> parts;    // config order, then imported ones as they came
	PiecePtr head;              // HELP and TYPE in 0.0.4, made once
	// What it serves in 0.0.4: head, then each part's text, or a copy
	// without the series an earlier part exports; none when no sample.
	std::vector<PiecePtr> pieces;
	bool dirty = true;
	// The same in OpenMetrics, in one piece, rendered only when a client
	// asks for OpenMetrics after a change, so that a text-only scraper
	// pays nothing.
	PiecePtr om;
	bool omDirty = true;
	// Series exported twice were counted and logged since the last
	// change, by whichever format was rendered first.
	bool counted = false;
	// Where it goes in the body: declared families in config order, then
	// imported ones by service and group in config order and, within a
	// group, in the order they first appeared, whatever order the
	// workers' results arrive in.
	std::array<size_t, 3> order{};
};

// What one format serves.
struct Body {
	// The families' pieces in order; rebuilt (pointers, not bytes) when
	// a family changed.
	std::shared_ptr<const SharedBuffers> data;
	std::vector<PiecePtr> pieces;          // the same pieces, for gzip
	uint64_t version = 0;                  // Impl::dataVersion data was built at
	std::shared_ptr<const SharedBuffers> gzip; // gzipHeader() and the pieces deflated
	uint32_t crc = 0;                      // of data
	uint64_t gzipVersion = 0;              // the version gzip was made of
	uint32_t gzipServed = 0;               // answers of that gzip so far
	std::string status;                    // status block of the self-metrics
	bool statusDirty = true;
	// Impl::clock at the last request for this format, with and without
	// gzip: what a cache no client uses is dropped by.
	double asked = 0;
	double gzipAsked = 0;
};

bool isDown(WorkerState s)
{
	return s == WorkerState::Restarting || s == WorkerState::Failed ||
	    s == WorkerState::Refused || s == WorkerState::Stopped;
}

bool suffixAllowed(MetricType type, const std::string &suffix)
{
	switch (type) {
	case MetricType::Counter:
	case MetricType::Gauge:
	case MetricType::Info:
	case MetricType::StateSet:
	case MetricType::Untyped:
		return suffix.empty();
	case MetricType::Histogram:
		return suffix == "_bucket" || suffix == "_sum" || suffix == "_count";
	case MetricType::Summary:
		return suffix.empty() || suffix == "_sum" || suffix == "_count";
	}
	return false;
}

const char *typeWord(MetricType t)
{
	switch (t) {
	case MetricType::Counter: return "counter";
	case MetricType::Gauge: return "gauge";
	case MetricType::Histogram: return "histogram";
	case MetricType::Summary: return "summary";
	case MetricType::Info: return "info";
	case MetricType::StateSet: return "stateset";
	case MetricType::Untyped: return "untyped";
	}
	return "unknown";
}

// Worker text for the log and /health: bounded, valid UTF-8, one line.
std::string sanitize(const std::string &text)
{
	std::string out;
	size_t n = std::min(text.size(), MaxErrorText);
	out.reserve(n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = static_cast<unsigned char>(text[i]);
		if (c < 0x80) {
			out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
			continue;
		}
		size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		if (i + len <= n && validUtf8(std::string_view(text).substr(i, len))) {
			out.append(text, i, len);
			i += len - 1;
		} else {
			out += '?';
		}
	}
	return out;
}

// The labels a sample is exported with.  A constant label of the service
// wins over a sample's own label of the same name: the output never
// repeats a name.  `own` holds them when some had to be left out.
const std::vector<common::Label> &exportedLabels(const common::Sample &s,
    const common::Pairs &constLabels, std::vector<common::Label> &own)
{
	if (constLabels.empty())
		return s.labels;
	bool any = false;
	for (const auto &l : s.labels)
		for (const auto &c : constLabels)
			any = any || c.first == l.name;
	if (!any)
		return s.labels;
	own.clear();
	for (const auto &l : s.labels) {
		bool shadowed = std::any_of(constLabels.begin(), constLabels.end(),
		    [&](const auto &c) { return c.first == l.name; });
		if (!shadowed)
			own.push_back(l);
	}
	return own;
}

// Whether a sample is kept as a counter: a counter, and the _bucket,
// _sum and _count of a histogram or summary (not its quantiles).
bool tracked(MetricType type, const std::string &suffix)
{
	return type == MetricType::Counter ||
	    ((type == MetricType::Histogram || type == MetricType::Summary) && !suffix.empty());
}

// What decides that the source of a tracked sample was reset.
enum class Reset {
	Own,     // a counter: its own value went down
	Set,     // its histogram or summary series was reset
	NotSet,  // its histogram or summary series was not
};

// What a tracked sample is exposed with, and since when it has counted
// (NaN while it has no state).
struct Tracked {
	double value;
	double created;
};

// The value a tracked sample is exposed with, nullopt while it has none.
// Counts that are NaN or negative are not usable and leave the state as it
// was; a _sum may be negative, and one that is not finite (an observation
// of +Inf makes it +Inf) is exposed as sent, the state left as it was.
std::optional<Tracked> track(GroupState &g, CounterStates &states, uint64_t key,
    const std::string &suffix, double raw, Reset reset, double now)
{
	constexpr double none = std::numeric_limits<double>::quiet_NaN();
	bool sum = suffix == "_sum";
	bool usable = std::isfinite(raw) && (raw >= 0 || sum);
	CounterState *state = states.find(key);
	if (!state) {
		if (!usable)
			return sum ? std::optional<Tracked>({raw, none}) : std::nullopt;
		states.insert(key, CounterState{raw, raw, now, now});
		g.countersOldest = std::min(g.countersOldest, now);
		return Tracked{raw, now};
	}
	CounterState &c = *state;
	c.lastSeen = now;
	if (!usable) {
		// Its series restarted from zero: so does its next usable value.
		if (reset == Reset::Set)
			c.lastRaw = 0;
		return Tracked{sum ? raw : c.exposed, c.created};
	}
	if (reset == Reset::Set || (reset == Reset::Own && raw < c.lastRaw))
		c.exposed += raw;
	else
		c.exposed += raw - c.lastRaw;
	c.lastRaw = raw;
	return Tracked{c.exposed, c.created};
}

// The histograms and summaries a worker observes start again from zero in
// the next worker: all of their next values are new.
void restartObserved(GroupState &g)
{
	for (auto &[family, states] : g.counters) {
		auto it = g.fragmentIndex.find(family);
		if (it == g.fragmentIndex.end() || !g.fragments[it->second].observed)
			continue;
		states.forEach([](uint64_t, CounterState &c) { c.lastRaw = 0; });
	}
}

bool sameBits(double a, double b)
{
	return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}

// What names the series on a sample line: the line without its value,
// timestamp and newline ("name_sum{a=\"x\"}").  Values and timestamps
// hold no space, label values may: cut from the end.
std::string_view seriesText(std::string_view line, bool timestamped)
{
	line.remove_suffix(1);
	if (timestamped)
		line = line.substr(0, line.rfind(' '));
	return line.substr(0, line.rfind(' '));
}

// The labels of a series text, each as written (a="x"), in order.
void splitLabels(std::string_view text, std::vector<std::string_view> &out)
{
	size_t i = text.find('{');
	if (i == std::string_view::npos)
		return;
	i++;
	while (i < text.size()) {
		size_t eq = text.find('=', i);
		if (eq == std::string_view::npos)
			break;
		size_t end = eq + 2;
		while (end < text.size() && text[end] != '"')
			end += text[end] == '\\' ? 2 : 1;
		out.push_back(text.substr(i, end + 1 - i));
		i = end + 2; // past the quote and the comma or brace
	}
}

// Whether two series texts (seriesText()) name the same series: the same
// bytes, or the same name and the same labels in another order.  Texts
// of different lengths never do.
bool sameSeries(std::string_view a, std::string_view b)
{
	if (a.size() != b.size())
		return false;
	if (std::memcmp(a.data(), b.data(), a.size()) == 0)
		return true;
	// Equal keys and lengths but other bytes: a reordering, or a
	// collision.  Rare, so vectors made on the spot.
	size_t brace = a.find('{');
	if (brace == std::string_view::npos || a.substr(0, brace + 1) != b.substr(0, brace + 1))
		return false;
	std::vector<std::string_view> la, lb;
	splitLabels(a, la);
	splitLabels(b, lb);
	std::sort(la.begin(), la.end());
	std::sort(lb.begin(), lb.end());
	return la == lb;
}

// Whether the n bytes at a and b are equal, inline: the texts compared
// here are short, and a call to memcmp() costs more than they do.
bool sameBytes(const char *a, const char *b, size_t n)
{
	for (; n >= 8; a += 8, b += 8, n -= 8) {
		uint64_t x, y;
		std::memcpy(&x, a, 8);
		std::memcpy(&y, b, 8);
		if (x != y)
			return false;
	}
	for (; n > 0; n--)
		if (*a++ != *b++)
			return false;
	return true;
}

// Whether the n bytes at v are those at t, and none of them a quote or a
// backslash (so that v written as a label value is v itself): 8 bytes at
// a time.
bool samePlain(const char *t, const char *v, size_t n)
{
	constexpr uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
	auto has = [](uint64_t x, unsigned char c) {
		uint64_t y = x ^ (ones * c);
		return ((y - ones) & ~y & highs) != 0;
	};
	for (; n >= 8; t += 8, v += 8, n -= 8) {
		uint64_t x, y;
		std::memcpy(&x, v, 8);
		std::memcpy(&y, t, 8);
		if (x != y || has(x, '"') || has(x, '\\'))
			return false;
	}
	for (; n > 0; n--, t++, v++)
		if (*t != *v || *v == '"' || *v == '\\')
			return false;
	return true;
}

// Whether `text` (seriesText()) is what appendSample() writes for a
// sample of `name` and `suffix` with `labels`, then `constLabels`: a
// series compared with its record without being rendered.
bool writes(std::string_view text, std::string_view name, std::string_view suffix,
    const std::vector<common::Label> &labels, const common::Pairs &constLabels)
{
	const char *t = text.data(), *end = t + text.size();
	auto take = [&](std::string_view what) {
		if (static_cast<size_t>(end - t) < what.size() ||
		    !sameBytes(t, what.data(), what.size()))
			return false;
		t += what.size();
		return true;
	};
	auto is = [&](char c) {
		if (t == end || *t != c)
			return false;
		t++;
		return true;
	};
	// A label value, escaped as appendLabelValue() does.  A quote or a
	// backslash in the text is never one of the value's own: it ends
	// the value or starts an escape.
	auto value = [&](std::string_view v) {
		if (static_cast<size_t>(end - t) >= v.size() && samePlain(t, v.data(), v.size())) {
			t += v.size();
			return true;
		}
		for (char c : v) {
			if (t != end && *t == c && c != '\\' && c != '"') {
				t++;
				continue;
			}
			bool escaped = c == '\\' || c == '"' || c == '\n';
			if (!escaped || end - t < 2 || t[0] != '\\' || t[1] != (c == '\n' ? 'n' : c))
				return false;
			t += 2;
		}
		return true;
	};
	char separator = '{';
	auto label = [&](std::string_view n, std::string_view v) {
		bool ok = is(separator) && take(n) && is('=') && is('"') && value(v) && is('"');
		separator = ',';
		return ok;
	};
	if (!take(name) || !take(suffix))
		return false;
	for (const auto &l : labels)
		if (!label(l.name, l.value))
			return false;
	for (const auto &[n, v] : constLabels)
		if (!label(n, v))
			return false;
	return separator == '{' ? t == end : end - t == 1 && *t == '}';
}

// The key of a series' counter state: its own key, or for a series whose
// key `others` earlier, different series of its result have, a key made
// from both.  Such series keep apart while they come in the same order;
// another order swaps their states, which shows as a reset, never as a
// series lost.
uint64_t stateKey(uint64_t key, size_t others)
{
	return others == 0 ? key : mix(key, others);
}

common::Result<void> checkSample(const common::Family &fam, const common::Sample &s)
{
	if (!suffixAllowed(fam.type, s.suffix))
		return common::fail("metric " + fam.name + ": suffix \"" + sanitize(s.suffix) +
		    "\" is not allowed for type " + typeWord(fam.type));
	for (size_t i = 0; i < s.labels.size(); i++) {
		const auto &l = s.labels[i];
		if (!validLabelName(l.name))
			return common::fail("metric " + fam.name + ": invalid label name \"" +
			    sanitize(l.name) + "\"");
		if (!validUtf8(l.value))
			return common::fail("metric " + fam.name + ": label " + l.name +
			    " is not valid UTF-8");
		for (size_t k = 0; k < i; k++)
			if (s.labels[k].name == l.name)
				return common::fail("metric " + fam.name + ": label " + l.name +
				    " given twice");
	}
	if (s.suffix == "_bucket") {
		bool le = std::any_of(s.labels.begin(), s.labels.end(),
		    [](const common::Label &l) { return l.name == "le"; });
		if (!le)
			return common::fail("metric " + fam.name + ": bucket without an le label");
	}
	return {};
}

double staleSeconds(const common::GroupConfig &g, const common::ServiceConfig &s,
    const common::ExporterConfig &e)
{
	using common::Millis;
	Millis stale;
	if (g.staleAfter)
		stale = *g.staleAfter;
	else if (g.effectiveInterval.count() > 0)
		stale = g.staleAfterOrDefault();
	else if (g.interval)
		stale = *g.interval * 3;
	else if (s.effectiveInterval.count() > 0)
		stale = s.effectiveInterval * 3;
	else if (s.interval)
		stale = *s.interval * 3;
	else
		stale = e.interval * 3;
	return static_cast<double>(stale.count()) / 1000.0;
}

// /proc/self/stat and friends, for the process_* metrics.
struct ProcessStats {
	bool ok = false;
	double cpuSeconds = 0;
	double virtualBytes = 0;
	double residentBytes = 0;
	double startTime = 0;
	double openFds = 0;
	double maxFds = 0;
};

std::string readSmallFile(const char *path)
{
	std::string out;
	int fd = ::open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return out;
	char buf[4096];
	for (;;) {
		ssize_t n = ::read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		out.append(buf, static_cast<size_t>(n));
		if (out.size() > 1 << 20)
			break;
	}
	::close(fd);
	return out;
}

double bootTime()
{
	std::string stat = readSmallFile("/proc/stat");
	size_t p = stat.find("\nbtime ");
	if (p == std::string::npos)
		return 0;
	return std::strtod(stat.c_str() + p + 7, nullptr);
}

ProcessStats readProcessStats(double btime)
{
	ProcessStats ps;
	std::string stat = readSmallFile("/proc/self/stat");
	size_t paren = stat.rfind(')');
	if (paren == std::string::npos)
		return ps;
	// Field 3 (state) follows the command name; fields are 1-based in proc(5).
	std::vector<std::string_view> fields;
	std::string_view rest = std::string_view(stat).substr(paren + 1);
	while (!rest.empty()) {
		size_t b = rest.find_first_not_of(" \n");
		if (b == std::string_view::npos)
			break;
		rest.remove_prefix(b);
		size_t e = rest.find_first_of(" \n");
		fields.push_back(rest.substr(0, e));
		rest.remove_prefix(e == std::string_view::npos ? rest.size() : e);
	}
	auto field = [&](size_t n) {
		return n - 3 < fields.size() ? std::strtod(std::string(fields[n - 3]).c_str(), nullptr)
		    : 0.0;
	};
	if (fields.size() < 22)
		return ps;
	double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
	double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
	ps.cpuSeconds = (field(14) + field(15)) / tick;
	ps.startTime = btime + field(22) / tick;
	ps.virtualBytes = field(23);
	ps.residentBytes = field(24) * page;
	if (DIR *d = ::opendir("/proc/self/fd")) {
		size_t n = 0;
		while (const dirent *de = ::readdir(d))
			if (de->d_name[0] != '.')
				n++;
		::closedir(d);
		ps.openFds = n > 0 ? static_cast<double>(n - 1) : 0; // minus the directory's own fd
	}
	rlimit rl{};
	if (::getrlimit(RLIMIT_NOFILE, &rl) == 0)
		ps.maxFds = rl.rlim_cur == RLIM_INFINITY ? INFINITY : static_cast<double>(rl.rlim_cur);
	ps.ok = true;
	return ps;
}

} // namespace

struct MetricStore::Impl {
	// Built in the constructor and never resized afterwards: MergedFamily
	// keeps pointers into these vectors.
	std::vector<ServiceState> services;
	std::unordered_map<std::string, size_t> serviceIndex; // name and key
	std::vector<MergedFamily> merged;

	uint64_t version = 1;     // bumped by every change, self-metrics included
	uint64_t dataVersion = 1; // bumped by every change of a family
	uint64_t renderedVersion = 0;
	std::shared_ptr<const std::string> cached;
	std::array<Body, FormatCount> bodies;     // by Format
	// The latest time apply(), expire() or setWorkerState() was given: what
	// Body::asked is measured in.
	double clock = 0;

	std::unordered_map<std::string, size_t> mergedIndex; // family name -> merged
	std::vector<size_t> joinOrder; // indices of merged, sorted by MergedFamily::order
	std::array<uint64_t, FormatCount> scrapes{}; // by Format
	uint64_t seriesDropped = 0;
	uint64_t httpEvicted = 0, httpRefused = 0, httpTimedOut = 0;
	bool reloadOk = true;
	double reloadedAt = 0;  // the configuration in use: loaded at start or reload
	std::set<std::pair<std::string, std::string>> loggedDuplicates; // (family, service)
	std::set<std::pair<std::string, std::string>> loggedRejections; // (family, service)
	std::set<std::string> loggedClashes; // families left out of OpenMetrics
	double btime = 0;
	ProcessStats processStats;
	double processStatsAt = 0; // CLOCK_MONOTONIC seconds
	// Reused by applyFamily() from one result to the next.
	std::vector<SeriesKeys> keys;
	std::vector<bool> written; // sample i is written as old series i
	KeySet seenKeys;
	std::string sampleName;
	std::string seriesScratch; // a sample's series text (seriesText())

	explicit Impl(const common::Config &config);
	ServiceState *findService(const std::string &name);
	void touch(bool status)
	{
		version++;
		if (status)
			for (auto &b : bodies)
				b.statusDirty = true;
	}
	// A family's samples changed: both formats render it again.  What
	// holds the old texts goes now, not at the next scrape, so that they
	// are freed as soon as no response is sending them: the lists of
	// every body, the family's OpenMetrics text and its list of pieces.
	void changed(MergedFamily &m)
	{
		m.dirty = m.omDirty = true;
		m.counted = false;
		m.pieces.clear();
		m.om.reset();
		dataVersion++;
		for (auto &b : bodies) {
			b.data.reset();
			b.pieces.clear();
			b.gzip.reset();
		}
	}
	void markDirty(const Fragment &f)
	{
		if (f.merged != NoIndex)
			changed(merged[f.merged]);
	}
	void applyFamily(ServiceState &svc, GroupState &g, Fragment &frag,
	    const std::vector<const common::Family *> &fams, double now);
	std::unordered_set<uint64_t, KeyHash> resetSets(const GroupState &g, const Fragment &frag,
	    const std::vector<const common::Family *> &fams);
	common::Result<size_t> importFamily(ServiceState &svc, GroupState &g,
	    const common::Family &fam);
	void reject(ServiceState &svc, GroupState &g, const std::string &family,
	    const std::string &why);
	void countDuplicate(const MergedFamily &m, const ServiceState &svc,
	    const ServiceState &first, std::string_view line);
	template <typename Fn> void forEachExported(MergedFamily &m, Fn &&fn);
	void renderFamily(MergedFamily &m);
	void renderFamilyOm(MergedFamily &m);
	void join(Format format);
	void dropCaches();
	void renderStatus(Format format);
	void appendVolatile(std::string &out, Format format);
};

MetricStore::Impl::Impl(const common::Config &config)
{
	btime = bootTime();
	timespec ts{};
	::clock_gettime(CLOCK_REALTIME, &ts);
	reloadedAt = static_cast<double>(ts.tv_sec);
	services.reserve(config.services.size());
	for (const auto &sc : config.services) {
		ServiceState &svc = services.emplace_back();
		svc.name = sc.name.empty() ? sc.key : sc.name;
		svc.labels = sc.labels;
		svc.groups.reserve(sc.groups.size());
		for (const auto &gc : sc.groups) {
			if (svc.groupIndex.count(gc.key))
				continue;
			svc.groupIndex.emplace(gc.key, svc.groups.size());
			GroupState &g = svc.groups.emplace_back();
			g.key = gc.key;
			g.staleAfter = staleSeconds(gc, sc, config.exporter);
			g.imports = gc.contentType == common::ContentType::Prometheus;
			g.hasOutput = gc.sourceType != common::SourceType::Static;
			for (const auto &mc : gc.metrics) {
				if (g.fragmentIndex.count(mc.name))
					continue;
				g.fragmentIndex.emplace(mc.name, g.fragments.size());
				Fragment &f = g.fragments.emplace_back();
				f.name = mc.name;
				f.type = mc.type;
				// A text file is observed as a log, which the next
				// worker reads whole again: its counts go on.
				f.observed = mc.observed() &&
				    !(gc.sourceType == common::SourceType::File &&
				    gc.contentType == common::ContentType::Text);
			}
		}
	}
	// Merged families, in config order; done after every vector is filled.
	for (size_t si = 0; si < services.size(); si++) {
		ServiceState &svc = services[si];
		const auto &sc = config.services[si];
		for (auto &g : svc.groups) {
			const common::GroupConfig *gc = nullptr;
			for (const auto &c : sc.groups)
				if (c.key == g.key)
					gc = &c;
			for (auto &f : g.fragments) {
				const common::MetricConfig *mc = nullptr;
				for (const auto &c : gc->metrics)
					if (c.name == f.name) {
						mc = &c;
						break;
					}
				if (reservedName(f.name)) {
					common::log::warnx("service %s: metric %s has the name of one of "
					    "pmed's own metrics and is not exported",
					    svc.name.c_str(), f.name.c_str());
					continue;
				}
				auto [it, fresh] = mergedIndex.emplace(f.name, merged.size());
				if (fresh) {
					MergedFamily &m = merged.emplace_back();
					m.order = {0, 0, merged.size() - 1};
					joinOrder.push_back(merged.size() - 1);
					m.name = f.name;
					m.type = f.type;
					m.help = mc && !mc->description.empty() ? mc->description : f.name;
					if (mc)
						m.unit = mc->unit;
				}
				MergedFamily &m = merged[it->second];
				if (m.type != f.type) {
					common::log::warnx("service %s: metric %s has type %s but another "
					    "service declares it as %s; its samples are not exported",
					    svc.name.c_str(), f.name.c_str(), typeWord(f.type),
					    typeWord(m.type));
					continue;
				}
				f.merged = it->second;
				m.parts.push_back({&svc, &f});
			}
		}
	}
	for (size_t i = 0; i < services.size(); i++) {
		serviceIndex.emplace(services[i].name, i);
		serviceIndex.emplace(config.services[i].key, i); // kept if a name claimed it
	}
}

ServiceState *MetricStore::Impl::findService(const std::string &name)
{
	auto it = serviceIndex.find(name);
	return it == serviceIndex.end() ? nullptr : &services[it->second];
}

// The histogram or summary series of a result that were reset: their
// _count or one of their buckets went down since the last result.  The
// first of duplicate samples is the one that counts, as in applyFamily.
// Uses the keys applyFamily() computed, one per sample in order, and takes
// them for series unchecked: a collision within the result (made by the
// group's own worker, or 1 in 2^64) can at worst make a series of this
// group take another's reset, never lose a series nor touch another group.
std::unordered_set<uint64_t, KeyHash> MetricStore::Impl::resetSets(const GroupState &g,
    const Fragment &frag, const std::vector<const common::Family *> &fams)
{
	std::unordered_set<uint64_t, KeyHash> resets;
	auto cit = g.counters.find(frag.name);
	if (cit == g.counters.end())
		return resets;
	const CounterStates &states = cit->second;
	// Samples that went down; a reset only if each is the first of its key.
	std::vector<size_t> drops;
	size_t k = 0;
	for (const common::Family *fam : fams) {
		for (const auto &s : fam->samples) {
			size_t i = k++;
			if (s.suffix != "_bucket" && s.suffix != "_count")
				continue;
			const CounterState *c = states.find(keys[i].series);
			if (c && std::isfinite(s.value) && s.value >= 0 && s.value < c->lastRaw)
				drops.push_back(i);
		}
	}
	if (drops.empty())
		return resets;
	std::unordered_map<uint64_t, size_t, KeyHash> first;
	for (size_t i = 0; i < keys.size(); i++)
		first.emplace(keys[i].series, i);
	for (size_t i : drops)
		if (first[keys[i].series] == i)
			resets.insert(keys[i].set);
	return resets;
}

// The fragment's series become exactly those sent: a series missing from a
// family that was sent is gone (a json node that is null this cycle); a
// family not sent at all keeps its series until they are stale.
//
// Most results send what the last one did, in the same order and often
// with the same values: while that holds, the series are compared with
// the last ones and nothing is rendered.  At the first series that
// differs, a new text starts with a copy of the lines so far; from there,
// a series sent as before is copied, another one rendered.  A fragment
// whose series all stayed the same keeps its text, and its family is not
// rendered again nor its gzip remade.
void MetricStore::Impl::applyFamily(ServiceState &svc, GroupState &g, Fragment &frag,
    const std::vector<const common::Family *> &fams, double now)
{
	std::vector<common::Label> own;
	uint64_t constSum = constantSum(svc.labels);
	const std::vector<Series> &old = frag.series;
	// The keys, and whether each sample is written as the series at its
	// place last time, compared while its labels are in the cache.
	keys.clear();
	written.clear();
	for (const common::Family *fam : fams) {
		for (const auto &s : fam->samples) {
			const auto &labels = exportedLabels(s, svc.labels, own);
			size_t i = keys.size();
			keys.push_back(seriesKeys(frag.type, s.suffix, labels, constSum));
			written.push_back(i < old.size() && old[i].key == keys.back().series &&
			    writes(seriesText(frag.line(old[i]), old[i].timestamped), frag.name,
			    s.suffix, labels, svc.labels));
		}
	}
	bool counts = frag.type == MetricType::Counter || frag.type == MetricType::Histogram ||
	    frag.type == MetricType::Summary;
	CounterStates *states = counts ? &g.counters[frag.name] : nullptr;
	if (states)
		states->reserve(keys.size());
	std::unordered_set<uint64_t, KeyHash> resets;
	if (frag.type == MetricType::Histogram || frag.type == MetricType::Summary)
		resets = resetSets(g, frag, fams);

	std::string_view oldText = frag.text ? std::string_view(frag.text->text) : std::string_view();
	// The new series: the first `same` of the old ones, then `fresh`,
	// filled from the first series that differs or comes out of order
	// (so that an unchanged result copies nothing).
	size_t same = 0;
	std::vector<Series> fresh;
	bool copied = false;
	auto copy = [&] {
		if (copied)
			return;
		copied = true;
		fresh.reserve(keys.size());
		fresh.assign(old.begin(), old.begin() + static_cast<ptrdiff_t>(same));
	};
	PiecePtr text;          // made at the first series that differs
	// Series kept so far by key, once the series stopped coming as in
	// the last result; until then none can be a duplicate, as the last
	// ones were not.
	KeySet &seen = seenKeys;
	bool inOrder = true;
	// The series text of a kept series, in the text its offset is in.
	auto keptText = [&](const Series &f) {
		std::string_view in = text ? std::string_view(text->text) : oldText;
		return seriesText(in.substr(f.offset, f.length), f.timestamped);
	};
	std::string &series = seriesScratch;
	size_t k = 0;
	for (const common::Family *fam : fams) {
		for (const auto &s : fam->samples) {
			const SeriesKeys &sk = keys[k++];
			uint64_t key = sk.series;
			size_t i = copied ? fresh.size() : same;
			const auto &labels = exportedLabels(s, svc.labels, own);
			// Whether it is the series of a kept text, whose key is
			// equal: written as this sample would be, else (labels
			// in another order, or a collision) compared with its
			// rendered text.
			bool rendered = false;
			auto isSeries = [&](std::string_view kept) {
				if (writes(kept, frag.name, s.suffix, labels, svc.labels))
					return true;
				if (!rendered) {
					rendered = true;
					sampleName.assign(frag.name);
					sampleName += s.suffix;
					series.clear();
					appendSample(series, sampleName, labels, svc.labels, 0);
					series.resize(series.rfind(' '));
				}
				return sameSeries(kept, series);
			};
			// Whether it is the series at the same place last time.
			bool asBefore = i < old.size() && old[i].key == key &&
			    ((i == k - 1 && written[i]) ||
			    isSeries(seriesText(frag.line(old[i]), old[i].timestamped)));
			if (inOrder && !(asBefore && !old[i].collides)) {
				inOrder = false;
				copy();
				seen.reset(keys.size());
				for (size_t j = 0; j < fresh.size(); j++)
					seen.insert(fresh[j].key, static_cast<uint32_t>(j));
			}
			size_t others = 0; // earlier, different series of its key
			if (!inOrder && seen.find(key, [&](uint32_t j) {
				// j may be past the end: a series whose line
				// was too long is inserted, then not kept.
				return j < fresh.size() && isSeries(keptText(fresh[j]));
			    }, &others)) {
				seriesDropped++;
				continue;
			}
			Series ser;
			ser.key = key;
			ser.collides = others > 0;
			ser.value = s.value;
			ser.timestamped = s.timestampMs.has_value();
			if (tracked(frag.type, s.suffix)) {
				Reset reset = Reset::Own;
				if (frag.type != MetricType::Counter) {
					bool set = !resets.empty() && resets.count(sk.set);
					reset = set ? Reset::Set : Reset::NotSet;
				}
				auto exposed = track(g, *states, stateKey(key, others), s.suffix,
				    s.value, reset, now);
				if (!exposed)
					continue;
				ser.value = exposed->value;
				ser.created = exposed->created;
			}
			if (!inOrder)
				seen.insert(key, static_cast<uint32_t>(fresh.size()));
			bool unchanged = !ser.timestamped && asBefore && !old[i].timestamped &&
			    old[i].collides == ser.collides && sameBits(old[i].value, ser.value) &&
			    sameBits(old[i].created, ser.created);
			if (unchanged && !text) {
				if (copied)
					fresh.push_back(old[i]);
				else
					same++;
				continue;
			}
			copy();
			if (!text) {
				text = std::make_shared<Piece>();
				// Room for as many lines, or for as many as the
				// last ones when there were none.
				text->text.reserve(oldText.empty() ? keys.size() * 96 :
				    oldText.size() + oldText.size() / 8);
				text->text.assign(oldText.substr(0, i < old.size() ? old[i].offset :
				    oldText.size()));
			}
			std::string &out = text->text;
			size_t start = out.size();
			if (unchanged) {
				out += frag.line(old[i]);
			} else {
				sampleName.assign(frag.name);
				sampleName += s.suffix;
				appendSample(out, sampleName, labels, svc.labels, ser.value);
				if (s.timestampMs) {
					out.pop_back();
					out += ' ';
					char buf[24];
					out.append(buf, std::to_chars(buf, buf + sizeof buf,
					    *s.timestampMs).ptr);
					out += '\n';
				}
			}
			// Offsets are 32 bits and lengths 30: a worker's result
			// is far smaller.
			if (out.size() > std::numeric_limits<uint32_t>::max() / 2 ||
			    out.size() - start >= size_t(1) << 30) {
				out.resize(start);
				seriesDropped++;
				continue;
			}
			ser.offset = static_cast<uint32_t>(start);
			ser.length = static_cast<uint32_t>(out.size() - start) & 0x3fffffff;
			fresh.push_back(ser);
		}
	}
	frag.updated = now;
	if (!text && (copied ? fresh.size() : same) == old.size())
		return;
	copy();
	if (!text && !fresh.empty()) {
		// Series went away at the end: the lines of the rest.
		text = std::make_shared<Piece>();
		text->text.assign(oldText.substr(0, fresh.back().offset + fresh.back().length));
	}
	// Slack beyond an eighth is given back (at the cost of a copy).
	if (text && text->text.capacity() - text->text.size() > text->text.size() / 8)
		text->text.shrink_to_fit();
	frag.text = fresh.empty() ? nullptr : std::move(text);
	fresh.shrink_to_fit();
	frag.series = std::move(fresh);
	markDirty(frag);
}

void MetricStore::Impl::reject(ServiceState &svc, GroupState &g, const std::string &family,
    const std::string &why)
{
	g.rejected++;
	g.lastRejected = sanitize("family " + family + ": " + why);
	if (loggedRejections.size() < 10000 &&
	    loggedRejections.emplace(family, svc.name + "/" + g.key).second)
		common::log::warnx("service %s, group %s: family %s is not exported: %s",
		    svc.name.c_str(), g.key.c_str(), sanitize(family).c_str(), sanitize(why).c_str());
}

// The fragment of an imported family, created on its first appearance;
// an Error when the family cannot be exported (the caller refuses it).
common::Result<size_t> MetricStore::Impl::importFamily(ServiceState &svc, GroupState &g,
    const common::Family &fam)
{
	if (fam.name.compare(0, 4, "pme_") == 0 || reservedName(fam.name))
		return common::fail("the name is one of pmed's own metrics");
	auto fit = g.fragmentIndex.find(fam.name);
	if (fit != g.fragmentIndex.end()) {
		Fragment &frag = g.fragments[fit->second];
		if (frag.type == fam.type) {
			// The unit follows the source while nothing else exports
			// the name; only OpenMetrics shows it.
			MergedFamily &m = merged[frag.merged];
			if (m.unit != fam.unit && m.parts.size() == 1) {
				m.unit = fam.unit;
				m.omDirty = true;
				dataVersion++;
			}
			return fit->second;
		}
		// The source changed the family's type: allowed while nothing
		// else exports the name.
		MergedFamily &m = merged[frag.merged];
		if (m.parts.size() != 1)
			return common::fail("it was a " + std::string(typeWord(frag.type)) +
			    " and is now a " + typeWord(fam.type) + ", and other groups export it");
		g.counters.erase(frag.name);
		frag.type = m.type = fam.type;
		frag.series.clear();
		frag.text.reset();
		m.unit = fam.unit;
		m.head.reset();
		changed(m);
		return fit->second;
	}
	auto mit = mergedIndex.find(fam.name);
	if (mit != mergedIndex.end() && merged[mit->second].type != fam.type) {
		const MergedFamily &m = merged[mit->second];
		std::string owner = m.parts.empty() ? "" : " by service " + m.parts[0].service->name;
		return common::fail("it is a " + std::string(typeWord(fam.type)) + " here but "
		    "already exported as a " + typeWord(m.type) + owner);
	}
	if (g.importedFamilies >= MaxImportedFamilies)
		return common::fail("the group already imports " +
		    std::to_string(MaxImportedFamilies) + " families");
	if (mit == mergedIndex.end()) {
		mit = mergedIndex.emplace(fam.name, merged.size()).first;
		MergedFamily &m = merged.emplace_back();
		m.order = {1 + static_cast<size_t>(&svc - services.data()),
		    static_cast<size_t>(&g - svc.groups.data()), merged.size() - 1};
		auto at = std::upper_bound(joinOrder.begin(), joinOrder.end(), m.order,
		    [&](const auto &order, size_t i) { return order < merged[i].order; });
		joinOrder.insert(at, merged.size() - 1);
		m.name = fam.name;
		m.type = fam.type;
		m.help = fam.help.empty() ? fam.name : fam.help;
		m.unit = fam.unit;
	}
	size_t index = g.fragments.size();
	Fragment &frag = g.fragments.emplace_back();
	frag.name = fam.name;
	frag.type = fam.type;
	frag.imported = true;
	frag.merged = mit->second;
	g.importedFamilies++;
	g.fragmentIndex.emplace(fam.name, index);
	merged[mit->second].parts.push_back({&svc, &frag});
	return index;
}

void MetricStore::Impl::countDuplicate(const MergedFamily &m, const ServiceState &svc,
    const ServiceState &first, std::string_view line)
{
	seriesDropped++;
	if (loggedDuplicates.emplace(m.name, svc.name).second)
		common::log::warnx("service %s exports a series of %s that service %s already "
		    "exports; it is dropped (%s)", svc.name.c_str(), m.name.c_str(),
		    first.name.c_str(), sanitize(std::string(line.substr(0, line.size() - 1))).c_str());
}

// Calls fn(fragment, series) for each series of the family that goes out:
// all of them when one group exports the family, else the first of each
// series (by key), groups in config order.  The first rendering after a
// change, in whichever format, counts and logs those left out.
template <typename Fn> void MetricStore::Impl::forEachExported(MergedFamily &m, Fn &&fn)
{
	bool count = !m.counted;
	m.counted = true;
	if (m.parts.size() == 1) {
		const Fragment &f = *m.parts[0].fragment;
		for (const auto &s : f.series)
			fn(f, s);
		return;
	}
	// Several groups export this family: the first one of a series wins.
	size_t total = 0;
	for (const auto &p : m.parts)
		total += p.fragment->series.size();
	// A series by key is one of those exported, or the same as one of
	// them: the texts tell (a key is no identity, see the top).
	struct Exported {
		const ServiceState *service;
		const Fragment *fragment;
		const Series *series;
		std::string_view text() const
		{
			return seriesText(fragment->line(*series), series->timestamped);
		}
	};
	std::unordered_map<uint64_t, Exported, KeyHash> seen;
	std::vector<Exported> colliding; // the others of a key: none but by collision
	seen.reserve(total);
	for (const auto &p : m.parts) {
		const Fragment &f = *p.fragment;
		for (const auto &s : f.series) {
			Exported e{p.service, &f, &s};
			auto [it, fresh] = seen.emplace(s.key, e);
			if (fresh) {
				fn(f, s);
				continue;
			}
			std::string_view text = e.text();
			const Exported *first = nullptr;
			if (sameSeries(it->second.text(), text))
				first = &it->second;
			for (size_t c = 0; c < colliding.size() && !first; c++)
				if (colliding[c].series->key == s.key &&
				    sameSeries(colliding[c].text(), text))
					first = &colliding[c];
			if (!first) {
				colliding.push_back(e);
				fn(f, s);
			} else if (count) {
				countDuplicate(m, *p.service, *first->service, f.line(s));
			}
		}
	}
}

// The family's pieces: its header, then each group's text as it is.  Only
// a group whose series another group already exports gets a copy of its
// text without them.
void MetricStore::Impl::renderFamily(MergedFamily &m)
{
	m.dirty = false;
	m.pieces.clear();
	bool any = false;
	for (const auto &p : m.parts)
		any = any || !p.fragment->series.empty();
	if (!any)
		return;
	if (!m.head) {
		m.head = std::make_shared<Piece>();
		appendHeader(m.head->text, m.name, m.help, m.type);
	}
	m.pieces.push_back(m.head);
	const Fragment *current = nullptr;
	PiecePtr copy;       // of current's text, from its first duplicate
	size_t next = 0;     // index of current's next series
	// The lines of current's first n series, which were all kept.
	auto prefix = [&](size_t n) {
		auto p = std::make_shared<Piece>();
		p->text.reserve(current->text->text.size());
		if (n > 0) {
			const Series &last = current->series[n - 1];
			p->text.assign(current->text->text, 0, last.offset + last.length);
		}
		return p;
	};
	auto finish = [&] {
		if (!current)
			return;
		if (!copy && next != current->series.size())
			copy = prefix(next); // its last series were left out
		m.pieces.push_back(copy ? std::move(copy) : current->text);
		copy.reset();
	};
	forEachExported(m, [&](const Fragment &f, const Series &s) {
		if (&f != current) {
			finish();
			current = &f;
			next = 0;
		}
		size_t index = static_cast<size_t>(&s - f.series.data());
		if (index != next && !copy)
			copy = prefix(next); // series before this one were left out
		if (copy)
			copy->text += f.line(s);
		next = index + 1;
	});
	finish();
}

namespace {

// The suffix of a sample line of family `name`: "", "_bucket", "_sum",
// "_count".
std::string_view lineSuffix(std::string_view line, size_t nameLen)
{
	std::string_view rest = line.substr(nameLen);
	return rest.substr(0, rest.find_first_of("{ "));
}

// The value of the label `name` in a label text as appendSample() writes
// it ("" or {a="x",b="y"}), still escaped; empty when it is not there.
std::string_view labelValue(std::string_view labels, std::string_view name)
{
	size_t i = 1;
	while (i < labels.size()) {
		size_t eq = labels.find('=', i);
		if (eq == std::string_view::npos)
			break;
		std::string_view n = labels.substr(i, eq - i);
		size_t start = eq + 2, end = start;
		while (end < labels.size() && labels[end] != '"')
			end += labels[end] == '\\' ? 2 : 1;
		if (n == name)
			return labels.substr(start, end - start);
		i = end + 2; // past the quote and the comma or brace
	}
	return {};
}

} // namespace

// OpenMetrics from the 0.0.4 lines (see exposition.cpp): counters and
// infos renamed, a counter's _created after its sample, and the samples
// of a histogram or summary grouped by MetricPoint (OpenMetrics forbids
// interleaving them, 0.0.4 does not), buckets in the order of le, then
// _count, _sum and _created.  A point's _created is the earliest of its
// samples': when the store began counting it.
void MetricStore::Impl::renderFamilyOm(MergedFamily &m)
{
	m.omDirty = false;
	m.om.reset();
	struct Line {
		std::string_view line;
		bool timestamped;
		double created;
	};
	std::vector<Line> lines;
	forEachExported(m, [&](const Fragment &f, const Series &s) {
		lines.push_back({f.line(s), s.timestamped != 0, s.created});
	});
	if (lines.empty())
		return;
	std::vector<const Line *> kept;
	kept.reserve(lines.size());
	size_t bytes = 0;
	for (const Line &l : lines) {
		kept.push_back(&l);
		bytes += l.line.size();
	}
	m.om = std::make_shared<Piece>();
	std::string &out = m.om->text;
	// A counter's _created line is about as long as its sample.
	out.reserve(bytes + (m.type == MetricType::Counter ? bytes : bytes / 8) +
	    m.name.size() * 3 + m.help.size() + m.unit.size() + 64);
	std::string_view name = omFamilyName(m.name, m.type);
	appendHeaderOm(out, name, m.help, m.type, m.unit);
	auto created = [&](std::string_view labels, double when) {
		out += name;
		out += "_created";
		out += labels;
		out += ' ';
		appendValue(out, when);
		out += '\n';
	};
	if (m.type == MetricType::Counter || m.type == MetricType::Info) {
		std::string sample(name);
		sample += m.type == MetricType::Counter ? "_total" : "_info";
		for (const Line *s : kept) {
			appendOmSample(out, s->line, m.name.size(), sample, s->timestamped);
			if (m.type == MetricType::Counter && std::isfinite(s->created))
				created(sampleLabels(s->line, m.name.size(), s->timestamped), s->created);
		}
		return;
	}
	if (m.type != MetricType::Histogram && m.type != MetricType::Summary) {
		// Gauges, statesets and unknowns: the same samples.
		for (const Line *s : kept) {
			if (s->timestamped)
				appendOmSample(out, s->line, m.name.size(), m.name, true);
			else
				out += s->line;
		}
		return;
	}

	bool histogram = m.type == MetricType::Histogram;
	std::string_view special = histogram ? "le" : "quantile";
	struct Member {
		const Line *series;
		std::string_view suffix;
		int rank;     // buckets and quantiles, _count, _sum
		double bound; // a bucket's le (unreadable: last)
	};
	std::vector<std::vector<Member>> points;
	std::unordered_map<std::string, size_t> index;
	for (const Line *s : kept) {
		// The point: the labels but le or quantile.
		std::string_view suffix = lineSuffix(s->line, m.name.size());
		std::string_view labels = sampleLabels(s->line, m.name.size() + suffix.size(),
		    s->timestamped);
		std::string_view value = labelValue(labels, special);
		std::string key;
		appendLabelsEdited(key, labels, special, LabelEdit::Drop);
		auto [it, fresh] = index.emplace(std::move(key), points.size());
		if (fresh)
			points.emplace_back();
		double bound = INFINITY;
		if (suffix == "_bucket" && (!parseNumber(value, &bound) || std::isnan(bound)))
			bound = INFINITY;
		int rank = suffix == "_count" ? 1 : suffix == "_sum" ? 2 : 0;
		points[it->second].push_back({s, suffix, rank, bound});
	}
	for (auto &point : points) {
		std::stable_sort(point.begin(), point.end(), [](const Member &a, const Member &b) {
			return a.rank != b.rank ? a.rank < b.rank : a.bound < b.bound;
		});
		double since = NAN;
		for (const Member &x : point) {
			const Line &s = *x.series;
			size_t nameLen = m.name.size() + x.suffix.size();
			bool numbered = x.suffix == (histogram ? "_bucket" : "");
			appendOmSample(out, s.line, nameLen, std::string_view(s.line).substr(0, nameLen),
			    s.timestamped, numbered ? special : std::string_view());
			if (std::isfinite(s.created) && !(s.created >= since))
				since = s.created;
		}
		if (std::isfinite(since)) {
			const Line &s = *point.front().series;
			std::string labels;
			appendLabelsEdited(labels, sampleLabels(s.line,
			    m.name.size() + point.front().suffix.size(), s.timestamped), special,
			    LabelEdit::Drop);
			created(labels, since);
		}
	}
}

// The body of `format` anew if a family changed since it was made: the
// families changed since are rendered again, and the pieces of all of
// them collected in order (pointers: no text is copied).
void MetricStore::Impl::join(Format format)
{
	Body &b = bodies[static_cast<size_t>(format)];
	if (b.data && b.version == dataVersion)
		return;
	bool om = format == Format::OpenMetrics;
	auto data = std::make_shared<SharedBuffers>();
	std::vector<PiecePtr> pieces;
	auto add = [&](const PiecePtr &p) {
		if (!p || p->text.empty())
			return;
		data->add(std::shared_ptr<const std::string>(p, &p->text));
		pieces.push_back(p);
	};
	if (!om) {
		for (size_t i : joinOrder) {
			MergedFamily &m = merged[i];
			if (m.dirty)
				renderFamily(m);
			for (const auto &p : m.pieces)
				add(p);
		}
	} else {
		// OpenMetrics forbids families whose sample names could clash
		// (a gauge x_created beside a counter x, a gauge x beside a
		// counter x_total), which 0.0.4 allows: the first in the body
		// keeps the names, pmed's own before all; a later one is left
		// out of OpenMetrics alone, and logged once.
		std::unordered_map<std::string, std::string_view> taken; // name -> family
		for (const char *r : reservedNames) {
			// pmed's counters are the ones named _total.
			std::string_view self(r);
			MetricType type = self.ends_with("_total") ? MetricType::Counter :
			    MetricType::Gauge;
			for (auto &n : omSampleNames(omFamilyName(self, type), type))
				taken.emplace(std::move(n), self);
		}
		for (size_t i : joinOrder) {
			MergedFamily &m = merged[i];
			if (m.omDirty)
				renderFamilyOm(m);
			if (!m.om)
				continue;
			auto names = omSampleNames(omFamilyName(m.name, m.type), m.type);
			auto clash = std::find_if(names.begin(), names.end(),
			    [&](const std::string &n) { return taken.count(n) != 0; });
			if (clash != names.end()) {
				if (loggedClashes.size() < 10000 && loggedClashes.insert(m.name).second)
					common::log::warnx("metric %s is left out of the OpenMetrics "
					    "exposition: the name %s is taken by %.*s", m.name.c_str(),
					    clash->c_str(), static_cast<int>(taken[*clash].size()),
					    taken[*clash].data());
				continue;
			}
			for (auto &n : names)
				taken.emplace(std::move(n), m.name);
			add(m.om);
		}
	}
	b.data = std::move(data);
	b.pieces = std::move(pieces);
	b.version = dataVersion;
}

// The caches of a format no client asked for in CacheKept seconds: the
// deflated pieces, and the OpenMetrics text.  Responses being sent keep
// what they use.
void MetricStore::Impl::dropCaches()
{
	for (size_t f = 0; f < FormatCount; f++) {
		Body &b = bodies[f];
		bool om = static_cast<Format>(f) == Format::OpenMetrics;
		if (b.gzip && clock - b.gzipAsked > CacheKept) {
			b.gzip.reset();
			for (auto &m : merged) {
				for (auto &p : m.pieces)
					if (!om)
						p->gz.reset();
				if (om && m.om)
					m.om->gz.reset();
			}
		}
		if (om && b.data && clock - std::max(b.asked, b.gzipAsked) > CacheKept) {
			b.data.reset();
			b.pieces.clear();
			for (auto &m : merged) {
				m.om.reset();
				m.omDirty = true;
			}
		}
	}
}

void MetricStore::Impl::renderStatus(Format format)
{
	Body &b = bodies[static_cast<size_t>(format)];
	b.statusDirty = false;
	std::string &o = b.status;
	o.clear();
	auto perGroup = [&](const char *name, const char *help, MetricType type, auto value,
	    auto present) {
		bool any = false;
		for (const auto &svc : services)
			for (const auto &g : svc.groups)
				any = any || present(g);
		if (!any)
			return;
		appendHeader(o, name, help, type, format);
		for (const auto &svc : services)
			for (const auto &g : svc.groups)
				if (present(g))
					appendSample(o, name, {{"service", svc.name}, {"group", g.key}},
					    value(g));
	};
	auto always = [](const GroupState &) { return true; };
	perGroup("pme_source_up", "1 when the last collection of the group succeeded.",
	    MetricType::Gauge, [](const GroupState &g) { return g.up ? 1.0 : 0.0; }, always);
	perGroup("pme_source_duration_seconds", "Duration of the last collection of the group.",
	    MetricType::Gauge, [](const GroupState &g) { return g.duration; }, always);
	perGroup("pme_source_errors_total", "Failed collections and failed metrics of the group.",
	    MetricType::Counter,
	    [](const GroupState &g) { return static_cast<double>(g.errors); }, always);
	perGroup("pme_source_truncated_total",
	    "Collections whose source output was cut at max_output.", MetricType::Counter,
	    [](const GroupState &g) { return static_cast<double>(g.truncated); },
	    [](const GroupState &g) { return g.hasOutput || g.truncated > 0; });
	perGroup("pme_source_last_success_timestamp_seconds",
	    "Time of the last successful collection of the group (0: never).", MetricType::Gauge,
	    [](const GroupState &g) { return g.lastSuccess; }, always);
	perGroup("pme_source_skipped_total",
	    "Collections skipped because the previous one was still running.", MetricType::Counter,
	    [](const GroupState &g) { return static_cast<double>(g.skipped); }, always);
	perGroup("pme_source_families_rejected_total",
	    "Families of the group's results that were not exported because they would make "
	    "the exposition invalid.", MetricType::Counter,
	    [](const GroupState &g) { return static_cast<double>(g.rejected); },
	    [](const GroupState &g) { return g.imports || g.rejected > 0; });
	perGroup("pme_source_exit_status", "Exit status of the group's last command.",
	    MetricType::Gauge, [](const GroupState &g) { return static_cast<double>(g.exitStatus); },
	    [](const GroupState &g) { return g.exitStatus >= 0; });
	perGroup("pme_http_status_code", "Status code of the last response of the group's "
	    "http source.", MetricType::Gauge,
	    [](const GroupState &g) { return static_cast<double>(g.httpStatus); },
	    [](const GroupState &g) { return g.httpStatus > 0; });
	perGroup("pme_http_response_seconds", "Time the last request of the group's http "
	    "source took, redirects included.", MetricType::Gauge,
	    [](const GroupState &g) { return g.responseSeconds; },
	    [](const GroupState &g) { return g.responseSeconds >= 0; });

	auto perService = [&](const char *name, const char *help, MetricType type, auto value) {
		if (services.empty())
			return;
		appendHeader(o, name, help, type, format);
		for (const auto &svc : services)
			appendSample(o, name, {{"service", svc.name}}, value(svc));
	};
	perService("pme_worker_restarts_total", "Restarts of the service's worker.",
	    MetricType::Counter,
	    [](const ServiceState &s) { return static_cast<double>(s.restarts); });
	perService("pme_worker_up", "1 when the service's worker is running.", MetricType::Gauge,
	    [](const ServiceState &s) { return s.state == WorkerState::Running ? 1.0 : 0.0; });
	perService("pme_frames_received_total", "Frames received from the service's worker.",
	    MetricType::Counter, [](const ServiceState &s) { return static_cast<double>(s.frames); });
	perService("pme_protocol_errors_total",
	    "Protocol errors of the service's worker (each one stops the worker).",
	    MetricType::Counter,
	    [](const ServiceState &s) { return static_cast<double>(s.protocolErrors); });
}

void MetricStore::Impl::appendVolatile(std::string &o, Format format)
{
	appendHeader(o, "pme_scrapes_total", "Scrapes of the metrics endpoint, by the format "
	    "served: text (0.0.4) or openmetrics.", MetricType::Counter, format);
	for (Format f : {Format::Text, Format::OpenMetrics})
		appendSample(o, "pme_scrapes_total", {{"format", formatName(f)}},
		    static_cast<double>(scrapes[static_cast<size_t>(f)]));
	appendHeader(o, "pme_series_dropped_total",
	    "Series dropped because they were exported twice.", MetricType::Counter, format);
	appendSample(o, "pme_series_dropped_total", {}, static_cast<double>(seriesDropped));
	appendHeader(o, "pme_build_info", "pme build information.", MetricType::Gauge, format);
	appendSample(o, "pme_build_info", {{"version", PME_VERSION}}, 1);
	appendHeader(o, "pme_http_connections_evicted_total",
	    "Connections closed to make room for a new one at the connection cap.",
	    MetricType::Counter, format);
	appendSample(o, "pme_http_connections_evicted_total", {}, static_cast<double>(httpEvicted));
	appendHeader(o, "pme_http_connections_refused_total",
	    "Connections refused at once: none could be evicted, or accept failed.",
	    MetricType::Counter, format);
	appendSample(o, "pme_http_connections_refused_total", {}, static_cast<double>(httpRefused));
	appendHeader(o, "pme_http_requests_timed_out_total",
	    "Requests that did not arrive whole within the request timeout.",
	    MetricType::Counter, format);
	appendSample(o, "pme_http_requests_timed_out_total", {}, static_cast<double>(httpTimedOut));
	appendHeader(o, "pme_config_last_reload_successful",
	    "Whether the last configuration reload (SIGHUP) succeeded.", MetricType::Gauge, format);
	appendSample(o, "pme_config_last_reload_successful", {}, reloadOk ? 1 : 0);
	appendHeader(o, "pme_config_last_reload_success_timestamp_seconds",
	    "When the configuration in use was loaded.", MetricType::Gauge, format);
	appendSample(o, "pme_config_last_reload_success_timestamp_seconds", {}, reloadedAt);

	// How old each group's data is, at the time of the scrape: what
	// stale_after is measured against.
	timespec ts{};
	::clock_gettime(CLOCK_REALTIME, &ts);
	double now = static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
	bool header = false;
	for (const auto &svc : services)
		for (const auto &g : svc.groups) {
			if (g.lastSuccess <= 0)
				continue;
			if (!header)
				appendHeader(o, "pme_source_age_seconds", "Seconds since the last "
				    "successful collection of the group.", MetricType::Gauge, format);
			header = true;
			appendSample(o, "pme_source_age_seconds", {{"service", svc.name},
			    {"group", g.key}}, std::max(0.0, now - g.lastSuccess));
		}

	// Read at most ten times a second: a scraper never asks that often,
	// and a client that does (a benchmark, a misconfigured scraper)
	// should cost the copy of the body and not a walk of /proc each time.
	timespec mono{};
	::clock_gettime(CLOCK_MONOTONIC, &mono);
	double at = static_cast<double>(mono.tv_sec) + static_cast<double>(mono.tv_nsec) / 1e9;
	if (!processStats.ok || at - processStatsAt >= 0.1) {
		processStats = readProcessStats(btime);
		processStatsAt = at;
	}
	const ProcessStats &ps = processStats;
	if (!ps.ok)
		return;
	auto one = [&](const char *name, const char *help, MetricType type, double v) {
		appendHeader(o, name, help, type, format);
		appendSample(o, name, {}, v);
	};
	one("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
	    MetricType::Counter, ps.cpuSeconds);
	one("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge,
	    ps.residentBytes);
	one("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge,
	    ps.virtualBytes);
	one("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, ps.openFds);
	one("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
	    ps.maxFds);
	one("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
	    MetricType::Gauge, ps.startTime);
}

MetricStore::MetricStore(const common::Config &config) : impl_(std::make_unique<Impl>(config)) {}

MetricStore::~MetricStore() = default;

common::Result<void> MetricStore::apply(const std::string &service,
    const common::GroupResult &result, double now)
{
	ServiceState *svc = impl_->findService(service);
	if (!svc)
		return common::fail("unknown service \"" + sanitize(service) + "\"");
	auto git = svc->groupIndex.find(result.group);
	if (git == svc->groupIndex.end())
		return common::fail("service " + svc->name + " has no metric group \"" +
		    sanitize(result.group) + "\"");
	GroupState &g = svc->groups[git->second];
	impl_->clock = std::max(impl_->clock, now);

	// Check everything before changing anything: a malformed sample, or a
	// family a declaring group does not declare, refuses the whole result.
	for (const auto &fam : result.families) {
		if (!g.imports) {
			auto fit = g.fragmentIndex.find(fam.name);
			if (fit == g.fragmentIndex.end())
				return common::fail("group " + g.key + " of service " + svc->name +
				    " does not declare a metric \"" + sanitize(fam.name) + "\"");
			const Fragment &frag = g.fragments[fit->second];
			if (fam.type != frag.type)
				return common::fail("metric " + fam.name + " is declared with type " +
				    typeWord(frag.type) + ", the worker sent type " +
				    typeWord(fam.type));
		}
		for (const auto &s : fam.samples)
			if (auto r = checkSample(fam, s); !r)
				return r;
	}

	// An imported family that cannot be exported is refused alone.
	std::vector<std::pair<size_t, std::vector<const common::Family *>>> byFragment;
	std::unordered_map<size_t, size_t> slot; // fragment -> byFragment
	for (const auto &fam : result.families) {
		size_t index;
		if (g.imports) {
			auto r = impl_->importFamily(*svc, g, fam);
			if (!r) {
				impl_->reject(*svc, g, fam.name, r.error().message);
				continue;
			}
			index = *r;
		} else {
			index = g.fragmentIndex.at(fam.name);
		}
		auto [it, fresh] = slot.emplace(index, byFragment.size());
		if (fresh)
			byFragment.push_back({index, {&fam}});
		else
			byFragment[it->second].second.push_back(&fam);
	}
	for (auto &[index, fams] : byFragment)
		impl_->applyFamily(*svc, g, g.fragments[index], fams, now);
	// The scratch of a large result is not kept for the next one.
	if (impl_->keys.capacity() > 4096) {
		impl_->keys = {};
		impl_->seenKeys = {};
	}
	if (g.imports && result.ok) {
		// Families the exposition no longer has are gone with it.
		for (size_t i = 0; i < g.fragments.size(); i++) {
			Fragment &frag = g.fragments[i];
			if (!frag.series.empty() && !slot.count(i)) {
				frag.series.clear();
				frag.text.reset();
				impl_->markDirty(frag);
			}
		}
	}

	g.reported = true;
	g.lastResult = now;
	g.up = result.ok;
	if (result.ok) {
		g.lastSuccess = now;
	} else {
		g.errors++;
		g.lastError = sanitize(result.error);
	}
	g.errors += result.metricErrors.size();
	if (result.truncated)
		g.truncated++;
	if (result.ok && !result.metricErrors.empty())
		g.lastError = sanitize(result.metricErrors.front().first + ": " +
		    result.metricErrors.front().second);
	else if (result.ok)
		g.lastError.clear();
	if (std::isfinite(result.duration) && result.duration >= 0)
		g.duration = result.duration;
	g.skipped += result.skipped;
	if (result.exitStatus >= 0)
		g.exitStatus = result.exitStatus;
	if (result.httpStatus > 0)
		g.httpStatus = result.httpStatus;
	if (std::isfinite(result.responseSeconds) && result.responseSeconds >= 0)
		g.responseSeconds = result.responseSeconds;
	impl_->touch(true);
	return {};
}

void MetricStore::setWorkerState(const std::string &service, WorkerState state, int pid,
    const std::string &reason, double /*now*/)
{
	ServiceState *svc = impl_->findService(service);
	if (!svc)
		return;
	svc->state = state;
	svc->pid = pid;
	svc->reason = reason;
	if (isDown(state)) {
		// The data stays until it is stale (expire()).
		for (auto &g : svc->groups) {
			g.up = false;
			restartObserved(g);
		}
	}
	impl_->touch(true);
}

// What the old store knew goes on in this one wherever the configuration
// still describes the same thing: a service by name, a group by key, a
// family by name and type.  So a reload that changes one service breaks no
// counter of the others, and even in the changed service a counter that is
// still there goes on (a changed filter may make it reset: Prometheus
// handles that).  Rendered series carry the service's constant labels; if
// those changed, the series are left behind and the next result brings them.
void MetricStore::reconfigure(const common::Config &config)
{
	MetricStore next(config);
	next.adopt(*this);
	std::swap(impl_, next.impl_);
}

void MetricStore::adopt(MetricStore &old)
{
	Impl &from = *old.impl_;
	Impl &to = *impl_;
	for (auto &svc : to.services) {
		ServiceState *was = from.findService(svc.name);
		if (was == nullptr)
			continue;
		svc.state = was->state;
		svc.pid = was->pid;
		svc.reason = was->reason;
		svc.restarts = was->restarts;
		svc.frames = was->frames;
		svc.protocolErrors = was->protocolErrors;
		bool sameLabels = svc.labels == was->labels;
		for (auto &g : svc.groups) {
			auto git = was->groupIndex.find(g.key);
			if (git == was->groupIndex.end())
				continue;
			GroupState &wg = was->groups[git->second];
			g.counters = std::move(wg.counters);
			g.countersOldest = wg.countersOldest;
			g.rejected = wg.rejected;
			g.lastRejected = wg.lastRejected;
			g.reported = wg.reported;
			g.up = wg.up;
			g.lastResult = wg.lastResult;
			g.lastSuccess = wg.lastSuccess;
			g.duration = wg.duration;
			g.errors = wg.errors;
			g.truncated = wg.truncated;
			g.skipped = wg.skipped;
			g.exitStatus = wg.exitStatus;
			g.httpStatus = wg.httpStatus;
			g.responseSeconds = wg.responseSeconds;
			g.lastError = wg.lastError;
			if (!sameLabels)
				continue;
			for (auto &wf : wg.fragments) {
				size_t index;
				if (g.imports && wf.imported) {
					common::Family fam;
					fam.name = wf.name;
					fam.type = wf.type;
					if (wf.merged != NoIndex) {
						fam.help = from.merged[wf.merged].help;
						fam.unit = from.merged[wf.merged].unit;
					}
					auto r = to.importFamily(svc, g, fam);
					if (!r)
						continue;
					index = *r;
				} else {
					auto fit = g.fragmentIndex.find(wf.name);
					if (fit == g.fragmentIndex.end())
						continue;
					index = fit->second;
				}
				Fragment &f = g.fragments[index];
				if (f.type != wf.type)
					continue;
				f.series = std::move(wf.series);
				f.text = std::move(wf.text);
				f.updated = wf.updated;
				to.markDirty(f);
			}
		}
	}
	to.scrapes = from.scrapes;
	to.seriesDropped = from.seriesDropped;
	to.reloadOk = from.reloadOk;
	to.reloadedAt = from.reloadedAt;
	to.loggedDuplicates = std::move(from.loggedDuplicates);
	to.loggedRejections = std::move(from.loggedRejections);
	to.loggedClashes = std::move(from.loggedClashes);
	to.touch(true);
}

void MetricStore::setHttpStats(uint64_t evicted, uint64_t refused, uint64_t timedOut)
{
	impl_->httpEvicted = evicted;
	impl_->httpRefused = refused;
	impl_->httpTimedOut = timedOut;
}

void MetricStore::configReloaded(bool ok, double now)
{
	impl_->reloadOk = ok;
	if (ok)
		impl_->reloadedAt = std::floor(now);
	impl_->touch(true);
}

void MetricStore::countRestart(const std::string &service)
{
	if (ServiceState *svc = impl_->findService(service)) {
		svc->restarts++;
		impl_->touch(true);
	}
}

void MetricStore::expire(double now)
{
	impl_->clock = std::max(impl_->clock, now);
	impl_->dropCaches();
	bool changed = false, status = false;
	for (auto &svc : impl_->services) {
		for (auto &g : svc.groups) {
			// A group that stopped reporting is not up any more.
			if (g.up && g.reported && now - g.lastResult > g.staleAfter) {
				g.up = false;
				status = true;
			}
			for (auto &frag : g.fragments) {
				if (frag.series.empty() || now - frag.updated <= g.staleAfter)
					continue;
				frag.series.clear();
				frag.series.shrink_to_fit();
				frag.text.reset();
				impl_->markDirty(frag);
				changed = true;
			}
			// A counter's state outlives its series: a worker down
			// longer than stale_after (its restart backed off) must
			// find the offsets of earlier resets when it comes back.
			double keep = std::max(g.staleAfter, CounterStateKept);
			if (now - g.countersOldest > keep) {
				g.countersOldest = std::numeric_limits<double>::infinity();
				for (auto it = g.counters.begin(); it != g.counters.end();) {
					CounterStates &states = it->second;
					states.eraseIf([&](uint64_t, const CounterState &c) {
						return now - c.lastSeen > keep;
					});
					states.forEach([&](uint64_t, const CounterState &c) {
						g.countersOldest = std::min(g.countersOldest, c.lastSeen);
					});
					it = states.empty() ? g.counters.erase(it) : std::next(it);
				}
			}
		}
	}
	if (changed || status)
		impl_->touch(status);
}

MetricStore::Parts MetricStore::expositionParts(Format format, bool gzip)
{
	Impl &im = *impl_;
	Body &b = im.bodies[static_cast<size_t>(format)];
	(gzip ? b.gzipAsked : b.asked) = im.clock;
	im.join(format);
	if (b.statusDirty)
		im.renderStatus(format);
	auto self = std::make_shared<std::string>();
	self->reserve(b.status.size() + 2048);
	*self += b.status;
	im.appendVolatile(*self, format);
	if (format == Format::OpenMetrics)
		*self += "# EOF\n";
	if (!gzip)
		return {b.data, std::move(self)};
	// A body served this many times unchanged has its pieces compressed
	// again, smaller (exposition.cpp, GzipSmall): a body that changes at
	// every cycle never gets there, a stable one pays once.
	constexpr uint32_t recompressAfter = 32;
	bool recompress = b.gzip && b.gzipVersion == b.version && ++b.gzipServed == recompressAfter;
	if (!b.gzip || b.gzipVersion != b.version || recompress) {
		// Each piece deflated once per level, whatever body it is part of.
		static const auto header = std::make_shared<const std::string>(gzipHeader());
		auto z = std::make_shared<SharedBuffers>();
		z->add(header);
		uint32_t crc = 0;
		if (!recompress)
			b.gzipServed = 1; // this answer
		for (const auto &p : b.pieces) {
			if (!p->gz || (recompress && p->gz->level != GzipSmall))
				p->gz = std::make_shared<const Deflated>(deflatePiece(p->text,
				    recompress ? GzipSmall : GzipFast));
			z->add(std::shared_ptr<const std::string>(p->gz, &p->gz->bytes));
			crc = crc32Combine(crc, p->gz->crc, p->text.size());
		}
		b.gzip = std::move(z);
		b.crc = crc;
		b.gzipVersion = b.version;
	}
	return {b.gzip, std::make_shared<const std::string>(gzipTail(b.crc, b.data->size, *self))};
}

std::shared_ptr<const std::string> MetricStore::exposition()
{
	Impl &im = *impl_;
	if (im.cached && im.renderedVersion == im.version)
		return im.cached;
	Parts parts = expositionParts();
	auto out = std::make_shared<std::string>(parts.data->str());
	*out += *parts.self;
	im.cached = std::move(out);
	im.renderedVersion = im.version;
	return im.cached;
}

std::string MetricStore::healthJson(bool *healthy, double now) const
{
	const Impl &im = *impl_;
	bool ok = true;
	common::CPtr<json_t> servicesObj(json_object());
	auto str = [](const std::string &s) {
		json_t *j = json_string(s.c_str());
		return j ? j : json_string("");
	};
	for (const auto &svc : im.services) {
		json_t *so = json_object();
		json_object_set_new(so, "state", json_string(toString(svc.state)));
		json_object_set_new(so, "pid", svc.pid > 0 ? json_integer(svc.pid) : json_null());
		json_object_set_new(so, "restarts", json_integer(static_cast<json_int_t>(svc.restarts)));
		if (!svc.reason.empty())
			json_object_set_new(so, "reason", str(sanitize(svc.reason)));
		if (svc.state != WorkerState::Running)
			ok = false;
		json_t *groups = json_object();
		for (const auto &g : svc.groups) {
			bool up = g.up && now - g.lastResult <= g.staleAfter;
			ok = ok && up;
			json_t *go = json_object();
			json_object_set_new(go, "up", json_boolean(up));
			json_object_set_new(go, "last_success",
			    g.lastSuccess > 0 ? json_real(g.lastSuccess) : json_null());
			json_object_set_new(go, "errors", json_integer(static_cast<json_int_t>(g.errors)));
			if (g.hasOutput)
				json_object_set_new(go, "truncated",
				    json_integer(static_cast<json_int_t>(g.truncated)));
			json_object_set_new(go, "error", str(g.lastError));
			if (g.imports || g.rejected > 0) {
				json_object_set_new(go, "families_rejected",
				    json_integer(static_cast<json_int_t>(g.rejected)));
				if (!g.lastRejected.empty())
					json_object_set_new(go, "rejected", str(g.lastRejected));
			}
			json_object_set_new(groups, g.key.c_str(), go);
		}
		json_object_set_new(so, "groups", groups);
		json_object_set_new(servicesObj.get(), svc.name.c_str(), so);
	}
	common::CPtr<json_t> root(json_object());
	json_object_set_new(root.get(), "status", json_string(ok ? "ok" : "degraded"));
	json_object_set_new(root.get(), "services", servicesObj.release());
	if (healthy)
		*healthy = ok;
	char *text = json_dumps(root.get(), JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_REAL_PRECISION(15));
	if (!text)
		throw std::bad_alloc();
	std::string out(text);
	std::free(text);
	out += '\n';
	return out;
}

bool MetricStore::allGroupsReported() const
{
	for (const auto &svc : impl_->services) {
		if (svc.state == WorkerState::Refused || svc.state == WorkerState::Failed)
			continue;
		for (const auto &g : svc.groups)
			if (!g.reported)
				return false;
	}
	return true;
}

void MetricStore::countScrape(Format format)
{
	impl_->scrapes[static_cast<size_t>(format)]++;
	impl_->touch(false);
}

void MetricStore::countFrames(const std::string &service, uint64_t n)
{
	if (ServiceState *svc = impl_->findService(service)) {
		svc->frames += n;
		impl_->touch(true);
	}
}

void MetricStore::countProtocolError(const std::string &service)
{
	if (ServiceState *svc = impl_->findService(service)) {
		svc->protocolErrors++;
		impl_->touch(true);
	}
}

} // namespace pme::daemon
