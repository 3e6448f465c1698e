// SPDX-License-Identifier: ISC
// Group result codec: encodeGroupResult() and GroupResultAssembler.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common/channel.hpp"
#include "common/group_result.hpp"
#include "proto/message.h"

#include <CppUTest/TestHarness.h>

using namespace pme::common;

namespace {

using Bytes = std::vector<uint8_t>;

// Encode a result and keep each frame (header included).
std::vector<Bytes> encode(const GroupResult &r, uint32_t max = PME_PROTO_MAX_PAYLOAD)
{
	std::vector<Bytes> frames;
	auto ok = encodeGroupResult(r, [&](const uint8_t *p, size_t n) -> Result<void> {
		frames.emplace_back(p, p + n);
		return {};
	}, max);
	if (!ok)
		FAIL(ok.error().message.c_str());
	return frames;
}

pme_proto_frame view(const Bytes &b)
{
	pme_proto_frame f{};
	f.type = b.at(3);
	f.length = static_cast<uint32_t>(b.size() - PME_PROTO_HEADER_SIZE);
	f.payload = b.data() + PME_PROTO_HEADER_SIZE;
	return f;
}

// Feed frames to an assembler; the error message, or "" and the result.
std::string assemble(GroupResultAssembler &a, const std::vector<Bytes> &frames,
    GroupResult *out = nullptr)
{
	for (size_t i = 0; i < frames.size(); i++) {
		auto r = a.feed(view(frames[i]));
		if (!r)
			return r.error().message;
		if (r->has_value()) {
			if (i + 1 != frames.size())
				return "result finished before the last frame";
			if (out != nullptr)
				*out = std::move(**r);
			return "";
		}
	}
	return "no GROUP_END";
}

Bytes finish(pme_proto_writer *w)
{
	LONGS_EQUAL(0, pme_proto_writer_finish(w));
	return Bytes(w->buf, w->buf + w->len);
}

Bytes beginFrame(const char *group, uint64_t seq)
{
	FrameWriter w;
	pme_proto_encode_group_begin(w.get(), group, strlen(group), seq);
	return finish(w.get());
}

Bytes endFrame(const std::string &error = "")
{
	FrameWriter w;
	pme_proto_encode_group_end(w.get(), error.empty(), 0.5, 0, -1, error.data(), error.size(),
	    0, -1, 0);
	return finish(w.get());
}

GroupResult bigResult()
{
	GroupResult r;
	r.group = "status";
	r.sequence = 77;
	Family hist;
	hist.name = "nginx_request_duration_seconds";
	hist.type = MetricType::Histogram;
	hist.help = "Request latency, by upstream and path";
	hist.unit = "seconds";
	for (int i = 0; i < 20000; i++) {
		Sample s;
		s.suffix = i % 3 == 0 ? "_bucket" : (i % 3 == 1 ? "_sum" : "_count");
		s.labels = {{"upstream", "backend-" + std::to_string(i / 100)},
		    {"path", "/api/v1/items/" + std::to_string(i)},
		    {"le", std::to_string(i % 17)}};
		s.value = i * 0.5;
		hist.samples.push_back(s);
	}
	r.families.push_back(hist);
	Family up;
	up.name = "nginx_up";
	up.help = "1 when nginx answered";
	up.samples.push_back(Sample{"", {}, 1});
	r.families.push_back(up);
	Family empty;
	empty.name = "nginx_info";
	empty.type = MetricType::Info;
	r.families.push_back(empty);
	r.metricErrors = {{"nginx_connections", "regex \xc3\xa9 did not match"}};
	r.ok = false;
	r.duration = 0.125;
	r.skipped = 2;
	r.exitStatus = 3;
	r.httpStatus = 503;
	r.responseSeconds = 0.25;
	r.truncated = true;
	r.error = "curl exited with status 3";
	return r;
}

void checkSame(const GroupResult &a, const GroupResult &b)
{
	STRCMP_EQUAL(a.group.c_str(), b.group.c_str());
	CHECK(a.sequence == b.sequence);
	LONGS_EQUAL(a.families.size(), b.families.size());
	for (size_t i = 0; i < a.families.size(); i++) {
		const Family &fa = a.families[i], &fb = b.families[i];
		STRCMP_EQUAL(fa.name.c_str(), fb.name.c_str());
		CHECK(fa.type == fb.type);
		STRCMP_EQUAL(fa.help.c_str(), fb.help.c_str());
		STRCMP_EQUAL(fa.unit.c_str(), fb.unit.c_str());
		LONGS_EQUAL(fa.samples.size(), fb.samples.size());
		for (size_t j = 0; j < fa.samples.size(); j++) {
			const Sample &sa = fa.samples[j], &sb = fb.samples[j];
			STRCMP_EQUAL(sa.suffix.c_str(), sb.suffix.c_str());
			CHECK(sa.labels == sb.labels);
			CHECK(sa.timestampMs == sb.timestampMs);
			if (std::isnan(sa.value))
				CHECK(std::isnan(sb.value));
			else
				CHECK(sa.value == sb.value);
		}
	}
	CHECK(a.metricErrors == b.metricErrors);
	CHECK(a.ok == b.ok);
	CHECK(a.duration == b.duration);
	LONGS_EQUAL(a.skipped, b.skipped);
	LONGS_EQUAL(a.exitStatus, b.exitStatus);
	LONGS_EQUAL(a.httpStatus, b.httpStatus);
	DOUBLES_EQUAL(a.responseSeconds, b.responseSeconds, 0);
	CHECK_EQUAL(a.truncated, b.truncated);
	STRCMP_EQUAL(a.error.c_str(), b.error.c_str());
}

} // namespace

TEST_GROUP(GroupResultCodec) {};

TEST(GroupResultCodec, TwentyThousandSamplesSpanManyFramesAndComeBackWhole)
{
	GroupResult in = bigResult();
	auto frames = encode(in);
	CHECK(frames.size() > 10);
	LONGS_EQUAL(PME_MSG_GROUP_BEGIN, frames.front()[3]);
	LONGS_EQUAL(PME_MSG_GROUP_END, frames.back()[3]);
	for (size_t i = 1; i + 1 < frames.size(); i++) {
		pme_proto_frame f = view(frames[i]);
		LONGS_EQUAL(PME_MSG_GROUP_DATA, f.type);
		CHECK(f.length <= PME_PROTO_MAX_PAYLOAD);
		// Every DATA frame reads on its own: it starts with a FAMILY.
		pme_proto_reader r;
		pme_proto_record rec;
		pme_proto_reader_init(&r, &f);
		LONGS_EQUAL(1, pme_proto_record_next(&r, &rec));
		LONGS_EQUAL(PME_REC_FAMILY, rec.kind);
	}

	// Through a real decoder, as the supervisor reads them.
	Bytes stream;
	for (const Bytes &b : frames)
		stream.insert(stream.end(), b.begin(), b.end());
	FrameDecoder dec;
	CHECK(dec.ok());
	GroupResultAssembler a;
	GroupResult out;
	bool done = false;
	size_t off = 0;
	while (off < stream.size() || pme_proto_decoder_pending(dec.get()) > 0) {
		off += pme_proto_decoder_feed(dec.get(), stream.data() + off, stream.size() - off);
		pme_proto_frame f;
		int rc;
		while ((rc = pme_proto_decoder_next(dec.get(), &f)) == 1) {
			auto r = a.feed(f);
			CHECK_TEXT(r.has_value(), r ? "" : r.error().message.c_str());
			if (r->has_value()) {
				out = std::move(**r);
				done = true;
			}
		}
		LONGS_EQUAL(0, rc);
	}
	CHECK(done);
	CHECK_FALSE(a.inProgress());
	checkSame(in, out);
}

TEST(GroupResultCodec, SmallFramesRepeatTheFamilyAndStayUnderTheMaximum)
{
	GroupResult in = bigResult();
	in.families[0].samples.resize(300);
	auto frames = encode(in, 1000);
	size_t families = 0;
	for (size_t i = 1; i + 1 < frames.size(); i++) {
		CHECK(frames[i].size() <= PME_PROTO_HEADER_SIZE + 1000);
		pme_proto_frame f = view(frames[i]);
		pme_proto_reader r;
		pme_proto_record rec;
		pme_proto_reader_init(&r, &f);
		while (pme_proto_record_next(&r, &rec) == 1)
			families += rec.kind == PME_REC_FAMILY;
		LONGS_EQUAL(0, r.error);
	}
	CHECK(families > 10);
	GroupResultAssembler a;
	GroupResult out;
	STRCMP_EQUAL("", assemble(a, frames, &out).c_str());
	checkSame(in, out);
}

TEST(GroupResultCodec, SpecialValuesAndEmptyResult)
{
	GroupResult in;
	in.group = "g";
	Family f;
	f.name = "x";
	f.samples = {{"", {}, NAN}, {"", {{"a", ""}}, INFINITY}, {"", {{"a", "1"}}, -INFINITY}};
	in.families.push_back(f);
	GroupResultAssembler a;
	GroupResult out;
	STRCMP_EQUAL("", assemble(a, encode(in), &out).c_str());
	checkSame(in, out);

	GroupResult none;
	none.group = "nothing";
	auto frames = encode(none);
	LONGS_EQUAL(2, frames.size());
	STRCMP_EQUAL("", assemble(a, frames, &out).c_str());
	checkSame(none, out);
}

TEST(GroupResultCodec, ImportedTimestampsTravelWithTheirSamples)
{
	GroupResult in;
	in.group = "import";
	Family f;
	f.name = "node_load1";
	for (int i = 0; i < 3000; i++) {
		Sample s{"", {{"cpu", std::to_string(i)}}, i * 0.25, std::nullopt};
		if (i % 2 == 0)
			s.timestampMs = 1700000000000LL + i;
		f.samples.push_back(s);
	}
	in.families.push_back(f);
	GroupResultAssembler a;
	GroupResult out;
	auto frames = encode(in);
	CHECK(frames.size() > 3);
	STRCMP_EQUAL("", assemble(a, frames, &out).c_str());
	checkSame(in, out);
}

TEST(GroupResultCodec, EncoderRefusesWhatTheDecoderWould)
{
	auto err = [](const GroupResult &r) {
		auto res = encodeGroupResult(r, [](const uint8_t *, size_t) -> Result<void> {
			return {};
		});
		return res ? std::string() : res.error().message;
	};
	GroupResult r;
	r.group = "g";
	r.families.push_back(Family{"bad-name", MetricType::Gauge, "", "", {}});
	STRCMP_CONTAINS("invalid metric name \"bad-name\"", err(r).c_str());

	r.families[0].name = "ok";
	r.families[0].samples = {{"", {{"__name__", "x"}}, 1}};
	STRCMP_CONTAINS("invalid label name \"__name__\"", err(r).c_str());
	r.families[0].samples = {{"", {{"a", "1"}, {"a", "2"}}, 1}};
	STRCMP_CONTAINS("label a repeated", err(r).c_str());
	r.families[0].samples = {{"", {{"a", "\xff"}}, 1}};
	STRCMP_CONTAINS("not valid UTF-8", err(r).c_str());
	r.families[0].samples = {{"bucket", {}, 1}};
	STRCMP_CONTAINS("invalid sample suffix", err(r).c_str());

	// A sample bigger than a frame.
	r.families[0].samples = {{"", {{"a", std::string(2000, 'v')}}, 1}};
	auto res = encodeGroupResult(r, [](const uint8_t *, size_t) -> Result<void> {
		return {};
	}, 1000);
	CHECK_FALSE(res);
	STRCMP_CONTAINS("does not fit", res.error().message.c_str());
}

TEST(GroupResultCodec, SinkErrorStopsEncoding)
{
	int calls = 0;
	auto res = encodeGroupResult(bigResult(), [&](const uint8_t *, size_t) -> Result<void> {
		if (++calls == 3)
			return fail("write: Broken pipe");
		return {};
	});
	CHECK_FALSE(res);
	STRCMP_EQUAL("write: Broken pipe", res.error().message.c_str());
	LONGS_EQUAL(3, calls);
}

TEST(GroupResultCodec, LongErrorTextFitsTheFrameAndIsCutByTheAssembler)
{
	GroupResult in;
	in.group = "g";
	in.ok = false;
	in.error = std::string(100000, 'e');
	in.metricErrors = {{"m", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"}};
	auto frames = encode(in);
	CHECK(frames.back().size() <= PME_PROTO_HEADER_SIZE + PME_PROTO_MAX_PAYLOAD);
	GroupResultAssembler::Limits lim;
	lim.maxErrorText = 9;
	GroupResultAssembler a(lim);
	GroupResult out;
	STRCMP_EQUAL("", assemble(a, frames, &out).c_str());
	STRCMP_EQUAL("eeeeeeeee", out.error.c_str());
	// Cut at a character boundary: four of five two-byte characters.
	STRCMP_EQUAL("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", out.metricErrors.at(0).second.c_str());
}

TEST_GROUP(GroupResultAssembler) {};

TEST(GroupResultAssembler, OutOfOrderFramesAreErrors)
{
	GroupResult in = bigResult();
	in.families.resize(2);
	in.families[0].samples.resize(5);
	auto frames = encode(in);
	LONGS_EQUAL(3, frames.size());
	GroupResultAssembler a;

	STRCMP_EQUAL("GROUP_DATA without GROUP_BEGIN", assemble(a, {frames[1]}).c_str());
	STRCMP_EQUAL("GROUP_END without GROUP_BEGIN", assemble(a, {frames[2]}).c_str());
	std::string e = assemble(a, {frames[0], frames[1], frames[0]});
	STRCMP_EQUAL("GROUP_BEGIN while group \"status\" is still open", e.c_str());
	CHECK_FALSE(a.inProgress());

	FrameWriter w;
	pme_proto_encode_log(w.get(), 3, "hi", 2);
	STRCMP_EQUAL("message type 0x05 inside a group result",
	    assemble(a, {frames[0], finish(w.get())}).c_str());
	CHECK_FALSE(a.inProgress());

	// After an error the assembler starts over cleanly.
	GroupResult out;
	STRCMP_EQUAL("", assemble(a, frames, &out).c_str());
	checkSame(in, out);
}

TEST(GroupResultAssembler, BadRecordIsNamedByItsPosition)
{
	FrameWriter w;
	pme_proto_writer_begin(w.get(), PME_MSG_GROUP_DATA);
	pme_proto_put_family(w.get(), "up", 2, PME_TYPE_GAUGE, "", 0, "", 0);
	pme_proto_put_sample_begin(w.get(), "", 0);
	pme_proto_put_sample_end(w.get(), 1);
	pme_proto_put_sample_begin(w.get(), "", 0);
	pme_proto_put_label(w.get(), "bad-label", 9, "v", 1);
	pme_proto_put_sample_end(w.get(), 1);
	GroupResultAssembler a;
	std::string e = assemble(a, {beginFrame("g", 1), finish(w.get()), endFrame()});
	STRCMP_EQUAL("GROUP_DATA record 3: invalid or duplicate label name", e.c_str());

	pme_proto_writer_begin(w.get(), PME_MSG_GROUP_DATA);
	pme_proto_put_sample_begin(w.get(), "", 0);
	pme_proto_put_sample_end(w.get(), 1);
	e = assemble(a, {beginFrame("g", 1), finish(w.get()), endFrame()});
	STRCMP_EQUAL("GROUP_DATA record 1: sample before any family", e.c_str());

	pme_proto_writer_begin(w.get(), PME_MSG_GROUP_DATA);
	pme_proto_put_family(w.get(), "up", 2, PME_TYPE_GAUGE, "", 0, "", 0);
	pme_proto_put_family(w.get(), "up", 2, PME_TYPE_COUNTER, "", 0, "", 0);
	e = assemble(a, {beginFrame("g", 1), finish(w.get()), endFrame()});
	STRCMP_EQUAL("GROUP_DATA record 2: family up repeated with another type", e.c_str());

	// A bad GROUP_END.
	pme_proto_encode_group_end(w.get(), 1, -5, 0, -1, "", 0, 0, -1, 0);
	e = assemble(a, {beginFrame("g", 1), finish(w.get())});
	STRCMP_EQUAL("GROUP_END: field value out of range", e.c_str());
}

TEST(GroupResultAssembler, RepeatedFamilyIsMergedEvenWhenNotAdjacent)
{
	auto data = [](const char *family, double v) {
		FrameWriter w;
		pme_proto_writer_begin(w.get(), PME_MSG_GROUP_DATA);
		pme_proto_put_family(w.get(), family, strlen(family), PME_TYPE_COUNTER, "h", 1, "", 0);
		pme_proto_put_sample_begin(w.get(), "_total", 6);
		pme_proto_put_sample_end(w.get(), v);
		return finish(w.get());
	};
	GroupResultAssembler a;
	GroupResult out;
	STRCMP_EQUAL("", assemble(a, {beginFrame("g", 9), data("a", 1), data("b", 2), data("a", 3),
	    endFrame()}, &out).c_str());
	LONGS_EQUAL(2, out.families.size());
	STRCMP_EQUAL("a", out.families[0].name.c_str());
	LONGS_EQUAL(2, out.families[0].samples.size());
	CHECK(out.families[0].samples[1].value == 3);
	LONGS_EQUAL(1, out.families[1].samples.size());
	CHECK(out.sequence == 9);
}

TEST(GroupResultAssembler, LimitsAreEnforced)
{
	GroupResult in = bigResult();
	auto frames = encode(in);

	GroupResultAssembler::Limits lim;
	lim.maxSeries = 19999;
	GroupResultAssembler series(lim);
	STRCMP_CONTAINS("more than 19999 samples in one result", assemble(series, frames).c_str());
	CHECK_FALSE(series.inProgress());

	lim = {};
	lim.maxFamilies = 2;
	GroupResultAssembler families(lim);
	STRCMP_CONTAINS("more than 2 families in one result", assemble(families, frames).c_str());

	lim = {};
	lim.maxBytes = 100000;
	GroupResultAssembler bytes(lim);
	STRCMP_CONTAINS("result larger than 100000 bytes", assemble(bytes, frames).c_str());

	// Per group, in place of maxSeries; a group not listed is refused
	// at its GROUP_BEGIN.
	lim = {};
	lim.groups = {{"status", 19000}, {"other", 1000000}};
	GroupResultAssembler perGroup(lim);
	STRCMP_CONTAINS("more than 19000 samples in one result of group \"status\"",
	    assemble(perGroup, frames).c_str());
	lim.groups = {{"other", 1000000}};
	GroupResultAssembler notOurs(lim);
	STRCMP_CONTAINS("GROUP_BEGIN: \"status\" is not a group of this service",
	    assemble(notOurs, frames).c_str());
	lim.groups = {{"status", 20001}};
	lim.maxSeries = 1;
	GroupResultAssembler enough(lim);
	STRCMP_EQUAL("", assemble(enough, frames).c_str());

	// Exactly at the limits is fine.
	lim = {};
	lim.maxSeries = 20001;
	lim.maxFamilies = 3;
	GroupResultAssembler exact(lim);
	GroupResult out;
	STRCMP_EQUAL("", assemble(exact, frames, &out).c_str());
	checkSame(in, out);
}
