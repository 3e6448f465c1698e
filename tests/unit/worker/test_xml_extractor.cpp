// SPDX-License-Identifier: ISC
// Content type xml: parsing (entities refused), XPath filters, templates, values.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <libxml/globals.h>

#include "worker/xml_extractor.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme;
using common::MetricConfig;
using common::MetricType;
using common::Pairs;
using worker::Extraction;
using worker::XmlDocument;
using worker::XmlExtractor;

namespace {

// A time bound for a check that a limit stops runaway work: generous enough
// for a loaded machine, and PME_TEST_TIME_FACTOR times more under valgrind.
std::chrono::milliseconds timeBound(int seconds)
{
	const char *f = std::getenv("PME_TEST_TIME_FACTOR");
	int factor = f != nullptr ? std::max(1, std::atoi(f)) : 1;
	return std::chrono::milliseconds(1000LL * seconds * factor);
}

// nginx-rtmp-module's /stat, abridged.
const char *kRtmpStat = R"(<?xml version="1.0" encoding="utf-8" ?>
<?xml-stylesheet type="text/xsl" href="stat.xsl" ?>
<rtmp>
<nginx_version>1.22.1</nginx_version>
<nginx_rtmp_version>1.1.4</nginx_rtmp_version>
<pid>1234</pid>
<uptime>86400</uptime>
<naccepted>42</naccepted>
<bw_in>123456</bw_in>
<server>
<application>
<name>live</name>
<live>
<stream>
<name>cam1</name>
<time>3600000</time>
<bw_in>2048000</bw_in>
<bytes_in>921600000</bytes_in>
<bw_out>4096000</bw_out>
<client><id>1</id><address>10.0.0.5</address><dropped>0</dropped><publishing/><active/></client>
<client><id>7</id><address>10.0.0.9</address><dropped>12</dropped><active/></client>
<meta><video><width>1920</width><height>1080</height><frame_rate>30</frame_rate>
<codec>H264</codec></video></meta>
<nclients>2</nclients>
<publishing/>
<active/>
</stream>
<stream>
<name>cam2</name>
<time>60000</time>
<bw_in>1024000</bw_in>
<bytes_in>7680000</bytes_in>
<bw_out>0</bw_out>
<nclients>1</nclients>
<active/>
</stream>
<nclients>3</nclients>
</live>
</application>
<application>
<name>vod</name>
<play>
<nclients>0</nclients>
</play>
</application>
</server>
</rtmp>
)";

// virsh dumpxml, abridged.
const char *kDomain = R"(<domain type='kvm' id='3'>
  <name>web01</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <memory unit='KiB'>4194304</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>4</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web01.qcow2' index='2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='block' device='cdrom'>
      <source dev='/dev/sr0'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='bridge'>
      <mac address='52:54:00:ab:cd:ef'/>
      <target dev='vnet3'/>
      <mtu size='1500'/>
    </interface>
  </devices>
</domain>
)";

// A SOAP response whose prefixes differ from the configuration's.
const char *kSoap = R"(<?xml version="1.0"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <m:GetQueueStatsResponse xmlns:m="urn:example:queues">
      <m:Queue m:name="orders" depth="12"><m:state>RUNNING</m:state></m:Queue>
      <m:Queue m:name="mail" depth="3"><m:state>PAUSED</m:state></m:Queue>
      <other:Queue xmlns:other="urn:example:other" m:name="decoy" depth="99"/>
    </m:GetQueueStatsResponse>
  </soap:Body>
</soap:Envelope>
)";

// An Atom feed: every element in the default namespace.
const char *kAtom = R"(<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Builds</title>
  <entry><title>build 41</title><id>urn:build:41</id><category term="passed"/></entry>
  <entry><title>build 42</title><id>urn:build:42</id><category term="failed"/></entry>
</feed>
)";

const Pairs kSoapNs = {{"s", "http://schemas.xmlsoap.org/soap/envelope/"},
    {"q", "urn:example:queues"}};
const Pairs kAtomNs = {{"a", "http://www.w3.org/2005/Atom"}};

MetricConfig metric(const std::string &filter, Pairs labels = {},
    MetricType type = MetricType::Gauge)
{
	MetricConfig m;
	m.key = "m";
	m.name = "test_metric";
	m.baseName = "test_metric";
	m.description = "A test metric";
	m.type = type;
	m.filter = filter;
	m.labels = std::move(labels);
	return m;
}

XmlDocument parse(const std::string &text)
{
	auto d = XmlDocument::parse(text);
	if (!d)
		FAIL(("parse failed: " + d.error().message).c_str());
	return std::move(*d);
}

std::string parseError(const std::string &text)
{
	auto d = XmlDocument::parse(text);
	if (d)
		FAIL("parse succeeded where it should fail");
	return d.error().message;
}

Extraction extract(const MetricConfig &m, const std::string &text, const Pairs &ns = {})
{
	auto x = XmlExtractor::compile(m, ns);
	if (!x)
		FAIL(("compile failed: " + x.error().message).c_str());
	return x->extract(parse(text));
}

std::string compileError(const MetricConfig &m, const Pairs &ns = {})
{
	auto x = XmlExtractor::compile(m, ns);
	if (x)
		FAIL(("compiled: " + m.filter).c_str());
	return x.error().message;
}

std::string label(const common::Sample &s, const std::string &name)
{
	for (const auto &l : s.labels)
		if (l.name == name)
			return l.value;
	FAIL(("no label " + name).c_str());
	return "";
}

// The value of the one sample whose label `name` is `value`.
double valueWhere(const Extraction &e, const std::string &name, const std::string &value)
{
	const common::Sample *found = nullptr;
	for (const auto &s : e.family.samples)
		for (const auto &l : s.labels)
			if (l.name == name && l.value == value) {
				if (found)
					FAIL(("two samples with " + name + "=" + value).c_str());
				found = &s;
			}
	if (!found)
		FAIL(("no sample with " + name + "=" + value).c_str());
	return found->value;
}

void noErrors(const Extraction &e)
{
	if (e.errorCount != 0)
		FAIL(("unexpected errors: " + e.summary()).c_str());
}

} // namespace

TEST_GROUP(XmlExtraction) {};

TEST(XmlExtraction, RtmpStreamsGetTheirNameAndTheirApplication)
{
	MetricConfig m = metric("//live/stream",
	    {{"application", "${^^.name}"}, {"stream", "${.name}"}});
	m.valueTemplate = "${.bw_in}";
	Extraction e = extract(m, kRtmpStat);
	noErrors(e);
	CHECK(e.sendFamily());
	STRCMP_EQUAL("test_metric", e.family.name.c_str());
	STRCMP_EQUAL("A test metric", e.family.help.c_str());
	LONGS_EQUAL(2, e.family.samples.size());
	STRCMP_EQUAL("live", label(e.family.samples[0], "application").c_str());
	STRCMP_EQUAL("cam1", label(e.family.samples[0], "stream").c_str());
	DOUBLES_EQUAL(2048000, e.family.samples[0].value, 0);
	STRCMP_EQUAL("cam2", label(e.family.samples[1], "stream").c_str());
	DOUBLES_EQUAL(1024000, e.family.samples[1].value, 0);
	// Labels keep the order the operator wrote.
	STRCMP_EQUAL("application", e.family.samples[0].labels[0].name.c_str());
}

TEST(XmlExtraction, RtmpPerApplicationFromTheCountNodeUpwards)
{
	// The node is <nclients>; ^ is <live>, ^^ the <application>.
	Extraction e = extract(metric("/rtmp/server/application/live/nclients",
	    {{"application", "${^^.name}"}, {"version", "${$.rtmp.nginx_version}"}}), kRtmpStat);
	noErrors(e);
	LONGS_EQUAL(1, e.family.samples.size());
	STRCMP_EQUAL("live", label(e.family.samples[0], "application").c_str());
	STRCMP_EQUAL("1.22.1", label(e.family.samples[0], "version").c_str());
	DOUBLES_EQUAL(3, e.family.samples[0].value, 0);
}

TEST(XmlExtraction, MissingValueFailsThatSeriesOnly)
{
	// vod has no <live>: its value is missing, live's is read.
	MetricConfig m = metric("/rtmp/server/application", {{"application", "${.name}"}});
	m.valueTemplate = "${.live.nclients}";
	Extraction e = extract(m, kRtmpStat);
	LONGS_EQUAL(1, e.family.samples.size());
	DOUBLES_EQUAL(3, valueWhere(e, "application", "live"), 0);
	LONGS_EQUAL(1, e.errorCount);
	STRCMP_EQUAL("/rtmp/server/application[2]: ${.live.nclients} is missing",
	    e.summary().c_str());
	CHECK(e.sendFamily());

	// With value_on_error, vod gets that value under its own labels.
	m.valueOnError = -1;
	e = extract(m, kRtmpStat);
	noErrors(e);
	LONGS_EQUAL(2, e.family.samples.size());
	DOUBLES_EQUAL(-1, valueWhere(e, "application", "vod"), 0);
	DOUBLES_EQUAL(3, valueWhere(e, "application", "live"), 0);
}

TEST(XmlExtraction, BadValuesFailSeriesBySeries)
{
	// Every <video> child of cam1: width, height and frame_rate are
	// numbers, the codec is not.
	MetricConfig m = metric("//stream[name='cam1']/meta/video/*", {{"field", "${key}"}});
	Extraction e = extract(m, kRtmpStat);
	LONGS_EQUAL(3, e.family.samples.size());
	DOUBLES_EQUAL(1920, valueWhere(e, "field", "width"), 0);
	DOUBLES_EQUAL(30, valueWhere(e, "field", "frame_rate"), 0);
	LONGS_EQUAL(1, e.errorCount);
	STRCMP_EQUAL("/rtmp/server/application[1]/live/stream[1]/meta/video/codec: "
	    "value 'H264' is not a number", e.summary().c_str());

	m.valueOnError = 0;
	e = extract(m, kRtmpStat);
	noErrors(e);
	LONGS_EQUAL(4, e.family.samples.size());
	DOUBLES_EQUAL(0, valueWhere(e, "field", "codec"), 0);
}

TEST(XmlExtraction, TextNodesTakeTheirElementsName)
{
	Extraction e = extract(metric("//video/width/text() | //video/height/text()",
	    {{"field", "${key}"}, {"stream", "${^^^^.name}"}}), kRtmpStat);
	noErrors(e);
	LONGS_EQUAL(2, e.family.samples.size());
	DOUBLES_EQUAL(1920, valueWhere(e, "field", "width"), 0);
	DOUBLES_EQUAL(1080, valueWhere(e, "field", "height"), 0);
	STRCMP_EQUAL("cam1", label(e.family.samples[0], "stream").c_str());
}

TEST(XmlExtraction, LibvirtMemoryWithItsUnitAttribute)
{
	Extraction e = extract(metric("/domain/memory | /domain/currentMemory",
	    {{"domain", "${$.domain.name}"}, {"kind", "${key}"}, {"unit", "${.unit}"}}), kDomain);
	noErrors(e);
	LONGS_EQUAL(2, e.family.samples.size());
	DOUBLES_EQUAL(4194304, valueWhere(e, "kind", "memory"), 0);
	DOUBLES_EQUAL(2097152, valueWhere(e, "kind", "currentMemory"), 0);
	STRCMP_EQUAL("web01", label(e.family.samples[0], "domain").c_str());
	STRCMP_EQUAL("KiB", label(e.family.samples[0], "unit").c_str());
}

TEST(XmlExtraction, LibvirtAttributesAsNodesLabelsAndValues)
{
	// The attribute is the node; ^ is its element.
	Extraction e = extract(metric("//devices/disk/target/@dev",
	    {{"dev", "${@}"}, {"type", "${^^.type}"}, {"attr", "${key}"}}, MetricType::Info),
	    kDomain);
	noErrors(e);
	LONGS_EQUAL(2, e.family.samples.size());
	DOUBLES_EQUAL(1, valueWhere(e, "dev", "vda"), 0);
	STRCMP_EQUAL("file", label(e.family.samples[0], "type").c_str());
	STRCMP_EQUAL("block", label(e.family.samples[1], "type").c_str());
	STRCMP_EQUAL("dev", label(e.family.samples[1], "attr").c_str());

	// An attribute as the value; a label from a sibling's attribute.
	e = extract(metric("//interface/mtu/@size", {{"interface", "${^^.target.dev}"}}), kDomain);
	noErrors(e);
	LONGS_EQUAL(1, e.family.samples.size());
	DOUBLES_EQUAL(1500, valueWhere(e, "interface", "vnet3"), 0);

	// //disk/@type as a label; a missing attribute is an empty label.
	e = extract(metric("//disk", {{"type", "${.type}"}, {"device", "${.device}"},
	    {"file", "${.source.file}"}, {"bus", "${.target.bus}"}}, MetricType::Info), kDomain);
	noErrors(e);
	LONGS_EQUAL(2, e.family.samples.size());
	STRCMP_EQUAL("/var/lib/libvirt/images/web01.qcow2",
	    label(e.family.samples[0], "file").c_str());
	STRCMP_EQUAL("", label(e.family.samples[1], "file").c_str());
	STRCMP_EQUAL("sata", label(e.family.samples[1], "bus").c_str());
	STRCMP_EQUAL("cdrom", label(e.family.samples[1], "device").c_str());
}

TEST(XmlExtraction, NameStepPrefersTheAttributeThenTheFirstChildElement)
{
	// <domain type='kvm'>: the attribute.  <os> has no type attribute: its
	// child <type>, and that element's attribute arch.
	Extraction e = extract(metric("/domain/os", {{"t", "${.type}"}, {"arch", "${.type.arch}"},
	    {"dt", "${^.type}"}}, MetricType::Info), kDomain);
	noErrors(e);
	STRCMP_EQUAL("hvm", label(e.family.samples[0], "t").c_str());
	STRCMP_EQUAL("x86_64", label(e.family.samples[0], "arch").c_str());
	STRCMP_EQUAL("kvm", label(e.family.samples[0], "dt").c_str());
	// Above the document node there is nothing.
	e = extract(metric("/domain", {{"x", "${^^^.name}"}, {"k", "${^key}"}}, MetricType::Info),
	    kDomain);
	noErrors(e);
	STRCMP_EQUAL("", label(e.family.samples[0], "x").c_str());
	STRCMP_EQUAL("", label(e.family.samples[0], "k").c_str());
}

TEST(XmlExtraction, NamespacesAreMatchedByUriNotByTheDocumentsPrefix)
{
	MetricConfig m = metric("/s:Envelope/s:Body/q:GetQueueStatsResponse/q:Queue",
	    {{"queue", "${.q:name}"}, {"state", "${.q:state}"}});
	m.valueTemplate = "${.depth}";
	Extraction e = extract(m, kSoap, kSoapNs);
	noErrors(e);
	LONGS_EQUAL(2, e.family.samples.size());  // not the decoy in urn:example:other
	DOUBLES_EQUAL(12, valueWhere(e, "queue", "orders"), 0);
	DOUBLES_EQUAL(3, valueWhere(e, "queue", "mail"), 0);
	STRCMP_EQUAL("RUNNING", label(e.family.samples[0], "state").c_str());

	// A step prefixed with another namespace finds nothing.
	m.labels = {{"queue", "${.s:name}"}};
	m.valueTemplate.reset();
	m.filter = "//q:Queue/@depth";
	e = extract(m, kSoap, kSoapNs);
	STRCMP_EQUAL("", label(e.family.samples[0], "queue").c_str());
	// The second series with the same (empty) label is one too many.
	LONGS_EQUAL(1, e.family.samples.size());
	LONGS_EQUAL(1, e.errorCount);
	STRCMP_CONTAINS("same labels", e.summary().c_str());
}

TEST(XmlExtraction, DefaultNamespaceStatesMappedThroughValues)
{
	// The filter needs the prefix; label steps without one match the
	// local name in any namespace.
	MetricConfig m = metric("//a:entry/a:category/@term",
	    {{"build", "${^^.id}"}, {"title", "${^^.a:title}"}});
	m.values = {{"passed", 1}, {"failed", 0}};
	Extraction e = extract(m, kAtom, kAtomNs);
	noErrors(e);
	LONGS_EQUAL(2, e.family.samples.size());
	DOUBLES_EQUAL(1, valueWhere(e, "build", "urn:build:41"), 0);
	DOUBLES_EQUAL(0, valueWhere(e, "build", "urn:build:42"), 0);
	STRCMP_EQUAL("build 42", label(e.family.samples[1], "title").c_str());

	// An unmapped state fails its series and names the known ones.
	m.values = {{"passed", 1}};
	e = extract(m, kAtom, kAtomNs);
	LONGS_EQUAL(1, e.family.samples.size());
	LONGS_EQUAL(1, e.errorCount);
	STRCMP_CONTAINS("value 'failed' is not one of passed", e.summary().c_str());

	// Without the namespace the filter matches no element: no series, no
	// error (as any filter that selects nothing).
	e = extract(metric("//entry"), kAtom);
	noErrors(e);
	LONGS_EQUAL(0, e.family.samples.size());
	CHECK(e.sendFamily());
}

TEST(XmlExtraction, DocumentCommentAndNamespaceNodes)
{
	const char *doc = "<r xmlns:p='urn:p'><!-- 7 --><v>5</v></r>";
	// The document node: no name, its whole text as the value.
	Extraction e = extract(metric("/", {{"k", "${key}"}, {"root", "${.r.v}"}}), doc);
	noErrors(e);
	DOUBLES_EQUAL(5, e.family.samples[0].value, 0);
	STRCMP_EQUAL("", label(e.family.samples[0], "k").c_str());
	STRCMP_EQUAL("5", label(e.family.samples[0], "root").c_str());
	// A comment is named after its element.
	e = extract(metric("//comment()", {{"k", "${key}"}}), doc);
	noErrors(e);
	DOUBLES_EQUAL(7, valueWhere(e, "k", "r"), 0);
	// Namespace nodes: the prefix is the name, the URI the text, the
	// element the parent.
	e = extract(metric("/r/namespace::*", {{"prefix", "${key}"}, {"uri", "${@}"},
	    {"element", "${^key}"}}, MetricType::Info), doc);
	noErrors(e);
	DOUBLES_EQUAL(1, valueWhere(e, "uri", "urn:p"), 0);
	for (const auto &s : e.family.samples)
		STRCMP_EQUAL("r", label(s, "element").c_str());
	MetricConfig m = metric("/r/namespace::p");
	e = extract(m, doc);
	LONGS_EQUAL(1, e.errorCount);
	STRCMP_EQUAL("/r/namespace::p: value 'urn:p' is not a number", e.summary().c_str());
}

TEST(XmlExtraction, UndeclaredPrefixesAreCompileErrors)
{
	STRCMP_EQUAL("filter: at offset 2: namespace prefix 'a' is not declared under 'namespaces'",
	    compileError(metric("//a:entry")).c_str());
	STRCMP_EQUAL("label 'x': ${.b:name}: namespace prefix 'b' is not declared under "
	    "'namespaces'",
	    compileError(metric("//a:entry", {{"x", "${.b:name}"}}), kAtomNs).c_str());
	MetricConfig m = metric("//a:entry");
	m.valueTemplate = "${.z:count}";
	STRCMP_CONTAINS("value: ${.z:count}: namespace prefix 'z'",
	    compileError(m, kAtomNs).c_str());
	STRCMP_CONTAINS("namespace prefix 'a' has an empty URI",
	    compileError(metric("//a:entry"), {{"a", ""}}).c_str());
}

TEST(XmlExtraction, CountAndSumGiveOneSeries)
{
	Extraction e = extract(metric("count(//stream)", {{"server", "${$.rtmp.nginx_version}"},
	    {"kind", "streams"}}), kRtmpStat);
	noErrors(e);
	LONGS_EQUAL(1, e.family.samples.size());
	DOUBLES_EQUAL(2, e.family.samples[0].value, 0);
	STRCMP_EQUAL("1.22.1", label(e.family.samples[0], "server").c_str());
	STRCMP_EQUAL("streams", label(e.family.samples[0], "kind").c_str());

	MetricConfig m = metric("sum(//live/stream/bw_in) div 8");
	m.scale = 0.001;
	e = extract(m, kRtmpStat);
	noErrors(e);
	DOUBLES_EQUAL(384, e.family.samples[0].value, 1e-9);

	// count() of nothing is a number too.
	e = extract(metric("count(//stream[name='cam9'])"), kRtmpStat);
	DOUBLES_EQUAL(0, e.family.samples[0].value, 0);
}

TEST(XmlExtraction, NodeReferencesNeedNodes)
{
	STRCMP_EQUAL("label 'stream' refers to ${.name}, but filter 'count(//stream)' yields a "
	    "number, not nodes: use constant text or ${$...} references",
	    compileError(metric("count(//stream)", {{"stream", "${.name}"}})).c_str());
	STRCMP_CONTAINS("yields a boolean",
	    compileError(metric("boolean(//a)", {{"x", "${^key}"}})).c_str());
	MetricConfig m = metric("sum(//nclients)");
	m.valueTemplate = "${$.rtmp.pid}";
	STRCMP_CONTAINS("yields a number, which is the value: remove value",
	    compileError(m).c_str());
}

TEST(XmlExtraction, BooleansAreOneAndZero)
{
	Extraction e = extract(metric("boolean(//stream[name='cam1']/publishing)"), kRtmpStat);
	noErrors(e);
	DOUBLES_EQUAL(1, e.family.samples[0].value, 0);
	MetricConfig m = metric("count(//stream[name='cam2']/publishing) > 0");
	m.scale = 1000;  // booleans are not scaled
	e = extract(m, kRtmpStat);
	DOUBLES_EQUAL(0, e.family.samples[0].value, 0);
	// Element text "true" reads as 1 as well.
	e = extract(metric("/r/ok"), "<r><ok> true </ok></r>");
	DOUBLES_EQUAL(1, e.family.samples[0].value, 0);
}

TEST(XmlExtraction, StringResultsAndStatesThroughValues)
{
	const char *doc = "<status><state>DEGRADED</state><server status='up'/>"
	    "<server status='down'/><server status='maintenance'/></status>";
	MetricConfig m = metric("string(/status/state)", {}, MetricType::StateSet);
	m.values = {{"OK", 0}, {"DEGRADED", 1}, {"FAILED", 2}};
	Extraction e = extract(m, doc);
	noErrors(e);
	DOUBLES_EQUAL(1, e.family.samples[0].value, 0);

	m = metric("//server/@status", {{"n", "${^key}${@}"}});
	m.values = {{"up", 1}, {"down", 0}};
	m.valueOnError = -1;
	e = extract(m, doc);
	noErrors(e);
	DOUBLES_EQUAL(1, valueWhere(e, "n", "serverup"), 0);
	DOUBLES_EQUAL(0, valueWhere(e, "n", "serverdown"), 0);
	DOUBLES_EQUAL(-1, valueWhere(e, "n", "servermaintenance"), 0);

	// A string that is not a number, and number() of one (NaN).
	e = extract(metric("string(/status/state)"), doc);
	LONGS_EQUAL(0, e.family.samples.size());
	STRCMP_EQUAL("string(/status/state): value 'DEGRADED' is not a number",
	    e.summary().c_str());
	CHECK_FALSE(e.sendFamily());
	e = extract(metric("number(/status/state)", {{"what", "state"}}), doc);
	STRCMP_EQUAL("number(/status/state): is not a number", e.summary().c_str());
	m = metric("number(/status/state)", {{"what", "state"}});
	m.valueOnError = 7;
	e = extract(m, doc);
	noErrors(e);
	DOUBLES_EQUAL(7, valueWhere(e, "what", "state"), 0);
}

TEST(XmlExtraction, ValueRegexReadsTheNumberInsideText)
{
	const char *doc = "<checks><check name='db'>12ms</check><check name='dns'>3ms</check>"
	    "<check name='web'>timeout</check></checks>";
	MetricConfig m = metric("//check", {{"check", "${.name}"}});
	m.valueRegex = R"((?<value>[\d.]+)ms)";
	m.scale = 0.001;
	Extraction e = extract(m, doc);
	LONGS_EQUAL(2, e.family.samples.size());
	DOUBLES_EQUAL(0.012, valueWhere(e, "check", "db"), 1e-12);
	DOUBLES_EQUAL(0.003, valueWhere(e, "check", "dns"), 1e-12);
	LONGS_EQUAL(1, e.errorCount);
	STRCMP_CONTAINS("/checks/check[3]: value 'timeout' does not match value_regex",
	    e.summary().c_str());
}

TEST(XmlExtraction, DuplicateLabelSetsAreRefused)
{
	// Both streams sit under the same application: one label is not enough.
	Extraction e = extract(metric("//live/stream/nclients", {{"application", "${^^^.name}"}}),
	    kRtmpStat);
	LONGS_EQUAL(1, e.family.samples.size());
	LONGS_EQUAL(1, e.errorCount);
	STRCMP_EQUAL("two nodes give the same labels {application=\"live\"}: add a label that "
	    "tells them apart", e.summary().c_str());
}

TEST(XmlExtraction, CompileRefusesWhatCannotWork)
{
	STRCMP_EQUAL("a histogram read from the source has a filter per bucket, not one filter",
	    compileError(metric("/a", {}, MetricType::Histogram)).c_str());
	// A summary observes each value the filter selects.
	CHECK(XmlExtractor::compile(metric("/a", {}, MetricType::Summary), {}).has_value());
	STRCMP_CONTAINS("needs a filter", compileError(metric("")).c_str());
	STRCMP_EQUAL("filter: at offset 8: Invalid expression",
	    compileError(metric("/status/")).c_str());
	STRCMP_EQUAL("filter: at offset 0: unknown XPath function 'cnt()'",
	    compileError(metric("cnt(//a)")).c_str());
	STRCMP_CONTAINS("label 'x': at offset", compileError(metric("/a", {{"x", "$1"}})).c_str());
	MetricConfig m = metric("/a");
	m.valueTemplate = "${.a}${.b}";
	STRCMP_CONTAINS("must be exactly one reference", compileError(m).c_str());
	m.valueTemplate = "${.a}";
	m.type = MetricType::Info;
	STRCMP_CONTAINS("info metric", compileError(m).c_str());
	m = metric("/a");
	m.valueRegex = "(";
	STRCMP_CONTAINS("value_regex", compileError(m).c_str());
}

TEST(XmlExtraction, InvalidDocumentsNameLineAndColumn)
{
	std::string e = parseError("<status>\n  <up>1</up>\n  <down>0</up>\n</status>\n");
	STRCMP_CONTAINS("invalid XML at line 3, column", e.c_str());
	STRCMP_CONTAINS("mismatch", e.c_str());
	CHECK(e.back() != '\n');
	e = parseError("");
	STRCMP_CONTAINS("invalid XML", e.c_str());
	e = parseError("{\"json\": true}");
	STRCMP_CONTAINS("invalid XML at line 1, column 1: ", e.c_str());
	// libxml2's two-line message is one line.
	e = parseError("<a>\xff</a>");
	STRCMP_CONTAINS("invalid XML at line 1, column 4: Input is not proper UTF-8", e.c_str());
	CHECK(e.find('\n') == std::string::npos);
	e = parseError("<a>1</a><b/>");
	STRCMP_CONTAINS("invalid XML at line 1", e.c_str());
	// Undeclared entities in a document without a DTD.
	e = parseError("<a>&nbsp;</a>");
	CHECK(!e.empty());
	// Predefined and character references are fine.
	Extraction x = extract(metric("/a/@v", {{"t", "${^}"}}),
	    "<a v='1'>&lt;&amp;&#x41;&#66;&quot;</a>");
	noErrors(x);
	STRCMP_EQUAL("<&AB\"", label(x.family.samples[0], "t").c_str());
}

TEST(XmlExtraction, ErrorHandlersAreRestoredAfterEachParse)
{
	xmlStructuredErrorFunc before = xmlStructuredError;
	void *beforeContext = xmlStructuredErrorContext;
	xmlGenericErrorFunc generic = xmlGenericError;
	parseError("<a>");
	parse("<a/>");
	extract(metric("/a"), "<a>1</a>");
	compileError(metric("cnt2()|/a"));
	CHECK(before == xmlStructuredError);
	CHECK(beforeContext == xmlStructuredErrorContext);
	CHECK(generic == xmlGenericError);
}

TEST_GROUP(XmlEntities)
{
	std::string path;
	std::string secret;

	void setup() override
	{
		char tmpl[] = "/tmp/pme-xxe-XXXXXX";
		int fd = mkstemp(tmpl);
		CHECK(fd >= 0);
		path = tmpl;
		secret = "pme-secret-" + std::to_string(getpid()) + "-root:x:0:0";
		auto n = static_cast<ssize_t>(secret.size());
		CHECK(write(fd, secret.data(), secret.size()) == n);
		close(fd);
	}

	void teardown() override
	{
		unlink(path.c_str());
	}

	void refused(const std::string &doc)
	{
		auto d = XmlDocument::parse(doc);
		CHECK_FALSE(d);
		STRCMP_EQUAL("XML document declares entities (DTD); pme does not expand entities",
		    d.error().message.c_str());
		CHECK(d.error().message.find(secret) == std::string::npos);
	}
};

TEST(XmlEntities, ExternalEntityIsRefusedAndTheFileNeverRead)
{
	refused("<?xml version='1.0'?>\n<!DOCTYPE r [<!ENTITY x SYSTEM 'file://" + path +
	    "'>]>\n<r>&x;</r>\n");
	refused("<!DOCTYPE r [<!ENTITY x SYSTEM '" + path + "'>]><r><v>&x;</v></r>");
	// A parameter entity, expanded inside the DTD itself.
	refused("<!DOCTYPE r [<!ENTITY % p SYSTEM 'file://" + path + "'> %p;]><r/>");
	// Declared but never used: refused all the same.
	refused("<!DOCTYPE r [<!ENTITY x 'harmless'>]><r>1</r>");
	// The parse stops at the declaration: what follows is never read (here
	// the document is not even complete).
	refused("<!DOCTYPE r [<!ENTITY x 'a'>]><r>");
	// An unparsed entity.
	refused("<!DOCTYPE r [<!NOTATION n SYSTEM 'x'><!ENTITY u SYSTEM 'y' NDATA n>]><r/>");
}

TEST(XmlEntities, ExternalDtdIsNotLoaded)
{
	// The external subset names the file; it is not read, so the document
	// parses and nothing of the file is in it.
	XmlDocument d = parse("<!DOCTYPE r SYSTEM 'file://" + path + "'><r><v>5</v></r>");
	Extraction e = extract(metric("/r", {{"all", "${$}"}}), "<!DOCTYPE r SYSTEM 'file://" +
	    path + "'><r><v>5</v></r>");
	noErrors(e);
	STRCMP_EQUAL("5", label(e.family.samples[0], "all").c_str());
	DOUBLES_EQUAL(5, e.family.samples[0].value, 0);
	CHECK(d.get()->extSubset == nullptr);

	// A DTD that would declare the entity, if it were loaded: the
	// reference is then to an undeclared entity, and the file is not read.
	std::string dtd = path + ".dtd";
	{
		std::ofstream out(dtd);
		out << "<!ENTITY x SYSTEM 'file://" << path << "'>\n";
	}
	auto r = XmlDocument::parse("<!DOCTYPE r SYSTEM 'file://" + dtd + "'><r>&x;</r>");
	unlink(dtd.c_str());
	CHECK_FALSE(r);
	CHECK(r.error().message.find(secret) == std::string::npos);
	CHECK(r.error().message.find("root:x") == std::string::npos);
}

TEST(XmlEntities, BillionLaughsIsRefusedQuickly)
{
	std::string doc = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n"
	    " <!ENTITY lol \"lol\">\n";
	for (int i = 1; i <= 9; i++) {
		doc += " <!ENTITY lol" + std::to_string(i) + " \"";
		for (int j = 0; j < 10; j++)
			doc += "&lol" + (i == 1 ? std::string() : std::to_string(i - 1)) + ";";
		doc += "\">\n";
	}
	doc += "]>\n<lolz>&lol9;</lolz>\n";
	auto start = std::chrono::steady_clock::now();
	refused(doc);
	auto took = std::chrono::steady_clock::now() - start;
	CHECK(took < timeBound(1));

	// The quadratic variant: one large entity referenced many times.
	std::string big(100000, 'a');
	std::string quad = "<!DOCTYPE q [<!ENTITY a \"" + big + "\">]><q>";
	for (int i = 0; i < 10000; i++)
		quad += "&a;";
	quad += "</q>";
	start = std::chrono::steady_clock::now();
	refused(quad);
	took = std::chrono::steady_clock::now() - start;
	CHECK(took < timeBound(1));
}

TEST_GROUP(XmlLimits) {};

TEST(XmlLimits, AQuadraticFilterIsStopped)
{
	std::string doc = "<r>";
	for (int i = 0; i < 6000; i++)
		doc += "<i>" + std::to_string(i) + "</i>";
	doc += "</r>";
	auto start = std::chrono::steady_clock::now();
	Extraction e = extract(metric("//i[count(//i) > 1]"), doc);
	auto took = std::chrono::steady_clock::now() - start;
	LONGS_EQUAL(0, e.family.samples.size());
	LONGS_EQUAL(1, e.errorCount);
	STRCMP_CONTAINS("filter: ", e.summary().c_str());
	STRCMP_CONTAINS("limit", e.summary().c_str());
	CHECK(took < timeBound(10));
	// A linear filter on the same document is fine.
	e = extract(metric("//i[. > 5990]", {{"v", "${@}"}}), doc);
	noErrors(e);
	LONGS_EQUAL(9, e.family.samples.size());
}
