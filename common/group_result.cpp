// SPDX-License-Identifier: ISC
// GroupResult <-> GROUP_BEGIN / GROUP_DATA... / GROUP_END frames.

// A group's result can be far larger than one frame (a histogram per
// backend, thousands of series), and no frame may be: the supervisor's
// decoder refuses anything over PME_PROTO_MAX_PAYLOAD before buffering it.
// So a result travels as GROUP_BEGIN, any number of GROUP_DATA frames and
// GROUP_END.
//
// The encoder fills a GROUP_DATA frame record by record and starts a new
// one when the next record would not fit.  Record sizes are computed before
// anything is written, so a frame is never left with half a record.  When a
// family's samples continue in a new frame, its FAMILY record is written
// again at the top of that frame: every DATA frame can be read on its own,
// and a sample never depends on a frame that came before.
//
// The assembler is the other side, run by the supervisor on untrusted
// frames.  It checks the order (no DATA or END outside BEGIN..END, no BEGIN
// inside), lets pme_proto_record_next() validate every record, merges a
// FAMILY seen again into the family it already has (same type required),
// and bounds everything a worker could make it allocate: samples, families,
// metric errors and bytes of text.  Any violation resets it and returns an
// Error; the caller adds "protocol error: " and stops the worker.
#include "group_result.hpp"

#include <cstdio>
#include <string_view>

#include "proto/message.h"

namespace pme::common {

namespace {

constexpr size_t strSize(size_t len) { return 4 + len; }

size_t familySize(const Family &f)
{
	return 1 + strSize(f.name.size()) + 1 + strSize(f.help.size()) + strSize(f.unit.size());
}

size_t sampleSize(const Sample &s)
{
	size_t n = 1 + strSize(s.suffix.size()) + 2 + 8 + (s.timestampMs ? 8 : 0);
	for (const Label &l : s.labels)
		n += strSize(l.name.size()) + strSize(l.value.size());
	return n;
}

size_t metricErrorSize(const std::string &family, const std::string &msg)
{
	return 1 + strSize(family.size()) + strSize(msg.size());
}

bool validUtf8(const std::string &s)
{
	return pme_proto_valid_utf8(s.data(), s.size());
}

// s cut to at most max bytes without splitting a UTF-8 sequence.
std::string_view cutUtf8(std::string_view s, size_t max)
{
	if (s.size() <= max)
		return s;
	size_t n = max;
	while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80)
		n--;
	return s.substr(0, n);
}

// s in quotes for an error message: at most 64 bytes, anything but
// printable ASCII as \xNN (the message may end up in a LOG frame).
std::string quoted(const std::string &s)
{
	std::string out = "\"";
	for (size_t i = 0; i < s.size() && i < 64; i++) {
		auto c = static_cast<unsigned char>(s[i]);
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			out += static_cast<char>(c);
		} else {
			char hex[8];
			snprintf(hex, sizeof(hex), "\\x%02x", c);
			out += hex;
		}
	}
	if (s.size() > 64)
		out += "...";
	return out + "\"";
}

// What the decoder would refuse, said before it is sent.
Result<void> checkFamily(const Family &f)
{
	if (!pme_proto_valid_metric_name(f.name.data(), f.name.size()))
		return fail("invalid metric name " + quoted(f.name));
	auto type = static_cast<uint8_t>(f.type);
	if (type < PME_TYPE_COUNTER || type > PME_TYPE_UNTYPED)
		return fail("family " + f.name + ": invalid metric type");
	if (!validUtf8(f.help) || !validUtf8(f.unit))
		return fail("family " + f.name + ": help or unit is not valid UTF-8");
	return {};
}

Result<void> checkSample(const Family &f, const Sample &s)
{
	const std::string &sfx = s.suffix;
	if (!sfx.empty() && (sfx[0] != '_' || !pme_proto_valid_metric_name(sfx.data(), sfx.size())))
		return fail("family " + f.name + ": invalid sample suffix " + quoted(sfx));
	if (f.name.size() + sfx.size() > PME_PROTO_MAX_NAME)
		return fail("family " + f.name + ": sample name longer than " +
		    std::to_string(PME_PROTO_MAX_NAME) + " bytes");
	if (s.labels.size() > PME_PROTO_MAX_LABELS)
		return fail("family " + f.name + ": more than " +
		    std::to_string(PME_PROTO_MAX_LABELS) + " labels on one sample");
	for (size_t i = 0; i < s.labels.size(); i++) {
		const Label &l = s.labels[i];
		if (!pme_proto_valid_label_name(l.name.data(), l.name.size()))
			return fail("family " + f.name + ": invalid label name " + quoted(l.name));
		if (!validUtf8(l.value))
			return fail("family " + f.name + ": value of label " + l.name +
			    " is not valid UTF-8");
		for (size_t j = 0; j < i; j++)
			if (s.labels[j].name == l.name)
				return fail("family " + f.name + ": label " + l.name +
				    " repeated on one sample");
	}
	return {};
}

// Frames of one result, handed to the sink as they fill up.
class DataFrames {
public:
	DataFrames(const FrameSink &sink, uint32_t maxPayload)
		: sink_(sink), max_(maxPayload), w_(maxPayload) {}

	pme_proto_writer *w() { return w_.get(); }
	size_t used() { return pme_proto_writer_payload_len(w_.get()); }
	size_t room() { return max_ - used(); }
	bool empty() { return used() == 0; }

	// Make sure n more bytes fit, flushing the current frame if they do not.
	// Returns false when n does not fit even in an empty frame.
	Result<bool> reserve(size_t n)
	{
		if (n <= room())
			return true;
		if (auto r = flush(); !r)
			return tl::unexpected(r.error());
		return n <= room();
	}

	Result<void> flush()
	{
		if (!empty()) {
			if (auto r = send(); !r)
				return r;
		}
		pme_proto_writer_begin(w_.get(), PME_MSG_GROUP_DATA);
		return {};
	}

	// Finish the writer's frame and hand it to the sink.
	Result<void> send()
	{
		int rc = pme_proto_writer_finish(w_.get());
		if (rc != 0)
			return fail(std::string("encoding frame: ") + pme_proto_strerror(rc));
		return sink_(w_.get()->buf, w_.get()->len);
	}

private:
	// The C writer, RAII (channel.hpp's FrameWriter is not needed here).
	struct Writer {
		explicit Writer(uint32_t max) { pme_proto_writer_init(&w, max); }
		~Writer() { pme_proto_writer_free(&w); }
		Writer(const Writer &) = delete;
		Writer &operator=(const Writer &) = delete;
		pme_proto_writer *get() { return &w; }
		pme_proto_writer w;
	};

	const FrameSink &sink_;
	size_t max_;
	Writer w_;
};

void putFamily(pme_proto_writer *w, const Family &f)
{
	pme_proto_put_family(w, f.name.data(), f.name.size(), static_cast<uint8_t>(f.type),
	    f.help.data(), f.help.size(), f.unit.data(), f.unit.size());
}

void putSample(pme_proto_writer *w, const Sample &s)
{
	pme_proto_put_sample_begin(w, s.suffix.data(), s.suffix.size());
	for (const Label &l : s.labels)
		pme_proto_put_label(w, l.name.data(), l.name.size(), l.value.data(), l.value.size());
	if (s.timestampMs)
		pme_proto_put_sample_end_ts(w, s.value, *s.timestampMs);
	else
		pme_proto_put_sample_end(w, s.value);
}

} // namespace

Result<void> encodeGroupResult(const GroupResult &result, const FrameSink &sink,
    uint32_t maxPayload)
{
	if (maxPayload > PME_PROTO_HARD_MAX_PAYLOAD)
		maxPayload = PME_PROTO_HARD_MAX_PAYLOAD;
	if (result.group.empty() || !validUtf8(result.group))
		return fail("invalid group name " + quoted(result.group));
	if (!validUtf8(result.error))
		return fail("group " + result.group + ": error text is not valid UTF-8");

	DataFrames frames(sink, maxPayload);
	pme_proto_encode_group_begin(frames.w(), result.group.data(), result.group.size(),
	    result.sequence);
	if (auto r = frames.send(); !r)
		return r;
	pme_proto_writer_begin(frames.w(), PME_MSG_GROUP_DATA);

	for (const Family &f : result.families) {
		if (auto r = checkFamily(f); !r)
			return r;
		const size_t fsize = familySize(f);
		bool familyInFrame = false;
		if (f.samples.empty()) {
			auto fits = frames.reserve(fsize);
			if (!fits)
				return tl::unexpected(fits.error());
			if (!*fits)
				return fail("family " + f.name + ": help too long for one frame");
			putFamily(frames.w(), f);
			continue;
		}
		for (const Sample &s : f.samples) {
			if (auto r = checkSample(f, s); !r)
				return r;
			const size_t ssize = sampleSize(s);
			size_t need = ssize + (familyInFrame ? 0 : fsize);
			if (need > frames.room()) {
				// A new frame starts with the family again.
				if (auto r = frames.flush(); !r)
					return r;
				familyInFrame = false;
				need = ssize + fsize;
				if (need > frames.room())
					return fail("family " + f.name + ": a sample does not fit in " +
					    "one " + std::to_string(maxPayload) + "-byte frame");
			}
			if (!familyInFrame) {
				putFamily(frames.w(), f);
				familyInFrame = true;
			}
			putSample(frames.w(), s);
		}
	}

	for (const auto &[family, message] : result.metricErrors) {
		if (!pme_proto_valid_metric_name(family.data(), family.size()))
			return fail("metric error for invalid metric name " + quoted(family));
		if (!validUtf8(message))
			return fail("metric error of " + family + " is not valid UTF-8");
		// A message that cannot fit is cut; the family name always fits.
		size_t fixed = metricErrorSize(family, "");
		if (fixed > maxPayload)
			return fail("metric error of " + family + " does not fit in one frame");
		std::string_view msg = cutUtf8(message, maxPayload - fixed);
		size_t size = fixed + msg.size();
		auto fits = frames.reserve(size);
		if (!fits)
			return tl::unexpected(fits.error());
		pme_proto_put_metric_error(frames.w(), family.data(), family.size(), msg.data(),
		    msg.size());
	}
	if (!frames.empty()) {
		if (auto r = frames.send(); !r)
			return r;
	}

	// ok, duration, skipped, exit status, error length, HTTP status,
	// response time, truncated: 1 + 8 + 4 + 4 + 4 + 4 + 8 + 1 bytes.
	constexpr size_t endFixed = 34;
	if (maxPayload < endFixed)
		return fail("maximum payload too small for GROUP_END");
	std::string_view error = cutUtf8(result.error, maxPayload - endFixed);
	pme_proto_encode_group_end(frames.w(), result.ok, result.duration, result.skipped,
	    result.exitStatus, error.data(), error.size(), result.httpStatus,
	    result.responseSeconds, result.truncated);
	return frames.send();
}

void GroupResultAssembler::reset()
{
	open_ = false;
	current_ = GroupResult();
	series_ = 0;
	bytes_ = 0;
	familyIndex_.clear();
	family_ = 0;
}

Result<std::optional<GroupResult>> GroupResultAssembler::feed(const pme_proto_frame &frame)
{
	auto broken = [this](std::string msg) -> Result<std::optional<GroupResult>> {
		reset();
		return fail(std::move(msg));
	};

	switch (frame.type) {
	case PME_MSG_GROUP_BEGIN: {
		if (open_)
			return broken("GROUP_BEGIN while group " + quoted(current_.group) +
			    " is still open");
		pme_proto_group_begin m;
		if (int rc = pme_proto_decode_group_begin(&frame, &m); rc != 0)
			return broken(std::string("GROUP_BEGIN: ") + pme_proto_strerror(rc));
		reset();
		std::string group(m.group.ptr, m.group.len);
		maxSeries_ = limits_.maxSeries;
		if (!limits_.groups.empty()) {
			auto it = limits_.groups.find(group);
			if (it == limits_.groups.end())
				return broken("GROUP_BEGIN: " + quoted(group) +
				    " is not a group of this service");
			maxSeries_ = it->second;
		}
		open_ = true;
		current_.group = std::move(group);
		current_.sequence = m.sequence;
		bytes_ = m.group.len;
		return std::nullopt;
	}
	case PME_MSG_GROUP_DATA:
		if (!open_)
			return broken("GROUP_DATA without GROUP_BEGIN");
		if (auto r = addRecords(frame); !r)
			return broken(r.error().message);
		return std::nullopt;
	case PME_MSG_GROUP_END: {
		if (!open_)
			return broken("GROUP_END without GROUP_BEGIN");
		pme_proto_group_end m;
		if (int rc = pme_proto_decode_group_end(&frame, &m); rc != 0)
			return broken(std::string("GROUP_END: ") + pme_proto_strerror(rc));
		GroupResult done = std::move(current_);
		done.ok = m.ok != 0;
		done.duration = m.duration;
		done.skipped = m.skipped;
		done.exitStatus = m.exit_status;
		done.httpStatus = m.http_status;
		done.responseSeconds = m.response_seconds;
		done.truncated = m.truncated != 0;
		done.error = cutUtf8(std::string_view(m.error.ptr, m.error.len),
		    limits_.maxErrorText);
		reset();
		return done;
	}
	default: {
		char hex[8];
		snprintf(hex, sizeof(hex), "0x%02x", frame.type);
		return broken(std::string("message type ") + hex + " inside a group result");
	}
	}
}

Result<void> GroupResultAssembler::addRecords(const pme_proto_frame &frame)
{
	pme_proto_reader r;
	pme_proto_record rec;
	size_t index = 0;
	int rc;

	pme_proto_reader_init(&r, &frame);
	while ((rc = pme_proto_record_next(&r, &rec)) == 1) {
		index++;
		auto bad = [&](const std::string &what) {
			return fail("GROUP_DATA record " + std::to_string(index) + ": " + what);
		};
		switch (rec.kind) {
		case PME_REC_FAMILY: {
			std::string name(rec.name.ptr, rec.name.len);
			auto it = familyIndex_.find(name);
			if (it != familyIndex_.end()) {
				Family &f = current_.families[it->second];
				if (static_cast<uint8_t>(f.type) != rec.type)
					return bad("family " + name + " repeated with another type");
				family_ = it->second + 1;
				break;
			}
			if (current_.families.size() >= limits_.maxFamilies)
				return bad("more than " + std::to_string(limits_.maxFamilies) +
				    " families in one result");
			bytes_ += rec.name.len + rec.help.len + rec.unit.len;
			if (bytes_ > limits_.maxBytes)
				return bad("result larger than " + std::to_string(limits_.maxBytes) +
				    " bytes");
			Family f;
			f.name = name;
			f.type = static_cast<MetricType>(rec.type);
			f.help.assign(rec.help.ptr, rec.help.len);
			f.unit.assign(rec.unit.ptr, rec.unit.len);
			current_.families.push_back(std::move(f));
			familyIndex_.emplace(std::move(name), current_.families.size() - 1);
			family_ = current_.families.size();
			break;
		}
		case PME_REC_SAMPLE:
		case PME_REC_SAMPLE_TS: {
			if (family_ == 0)
				return bad("sample before any family");
			Family &f = current_.families[family_ - 1];
			if (f.name.size() + rec.suffix.len > PME_PROTO_MAX_NAME)
				return bad("sample name longer than " +
				    std::to_string(PME_PROTO_MAX_NAME) + " bytes");
			if (series_ >= maxSeries_)
				return bad("more than " + std::to_string(maxSeries_) +
				    " samples in one result of group " + quoted(current_.group));
			Sample s;
			s.suffix.assign(rec.suffix.ptr, rec.suffix.len);
			s.value = rec.value;
			if (rec.kind == PME_REC_SAMPLE_TS)
				s.timestampMs = rec.timestamp_ms;
			s.labels.reserve(rec.nlabels);
			size_t size = rec.suffix.len + 8;
			pme_proto_str name, value;
			int lrc;
			while ((lrc = pme_proto_label_next(&rec, &name, &value)) == 1) {
				s.labels.push_back(Label{std::string(name.ptr, name.len),
				    std::string(value.ptr, value.len)});
				size += name.len + value.len;
			}
			if (lrc < 0)
				return bad(pme_proto_strerror(lrc));
			bytes_ += size;
			if (bytes_ > limits_.maxBytes)
				return bad("result larger than " + std::to_string(limits_.maxBytes) +
				    " bytes");
			f.samples.push_back(std::move(s));
			series_++;
			break;
		}
		case PME_REC_METRIC_ERROR: {
			if (current_.metricErrors.size() >= limits_.maxFamilies)
				return bad("more than " + std::to_string(limits_.maxFamilies) +
				    " metric errors in one result");
			std::string_view msg = cutUtf8(std::string_view(rec.message.ptr,
			    rec.message.len), limits_.maxErrorText);
			bytes_ += rec.name.len + msg.size();
			if (bytes_ > limits_.maxBytes)
				return bad("result larger than " + std::to_string(limits_.maxBytes) +
				    " bytes");
			current_.metricErrors.emplace_back(std::string(rec.name.ptr, rec.name.len),
			    std::string(msg));
			break;
		}
		}
	}
	if (rc < 0)
		return fail("GROUP_DATA record " + std::to_string(index + 1) + ": " +
		    pme_proto_strerror(rc));
	return {};
}

} // namespace pme::common
