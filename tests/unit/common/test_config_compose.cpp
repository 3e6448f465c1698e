// SPDX-License-Identifier: ISC
// Configuration composition: templates and vars, include globs, ${env:NAME},
// $$ and YAML merge keys, each error pointing where it belongs.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "common/config_loader.hpp"
#include "common/config_writer.hpp"

#include <CppUTest/TestHarness.h>

using namespace pme::common;

namespace {

std::string listErrors(const Errors &errors)
{
	std::string all;
	for (const auto &e : errors)
		all += e.str() + "\n";
	return all;
}

Config load(const std::string &yaml)
{
	auto r = loadConfigString(yaml, "t.yml");
	if (!r)
		FAIL(("unexpected errors:\n" + listErrors(r.error())).c_str());
	return *r;
}

// Every error, one per line.
std::string errorsOf(const std::string &yaml)
{
	auto r = loadConfigString(yaml, "t.yml");
	if (r)
		FAIL("the configuration loaded without error");
	return listErrors(r.error());
}

const GroupConfig &group(const Config &c, const std::string &service, const std::string &key)
{
	const ServiceConfig *s = c.findService(service);
	CHECK_TEXT(s != nullptr, service.c_str());
	for (const auto &g : s->groups)
		if (g.key == key)
			return g;
	FAIL(("no group " + key).c_str());
	return s->groups.front();
}

const std::string nginxTemplate = R"(templates:
  nginx_status:
    vars: {host: 127.0.0.1}
    source_type: command
    source: curl -s http://${host}:${port}/nginx_status
    labels: {port: '${port}'}
    multiline: true
    metrics:
      active:
        filter: 'Active connections:\s+(\d+)'
      accepts:
        type: counter
        filter: '\s(\d+)\s+\d+\s+\d+\s*$'
)";

// A temporary directory, removed with its files.
struct TempDir {
	std::string path;
	TempDir()
	{
		char tmpl[] = "/tmp/pme-compose-XXXXXX";
		path = ::mkdtemp(tmpl);
	}
	~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
	std::string write(const std::string &name, const std::string &text) const
	{
		std::string p = path + "/" + name;
		size_t slash = name.rfind('/');
		if (slash != std::string::npos)
			::mkdir((path + "/" + name.substr(0, slash)).c_str(), 0755);
		std::ofstream(p) << text;
		return p;
	}
};

} // namespace

TEST_GROUP(Templates) {};

TEST(Templates, AUseIsTheTemplateWithItsVarsSubstituted)
{
	Config c = load(nginxTemplate + R"(services:
  web:
    metric_groups:
      front:
        use: nginx_status
        vars: {port: 8080}
  api:
    metric_groups:
      back:
        use: nginx_status
        vars: {port: 8081, host: 10.0.0.2}
)");
	const GroupConfig &front = group(c, "web", "front");
	STRCMP_EQUAL("curl -s http://127.0.0.1:8080/nginx_status", front.source.c_str());
	LONGS_EQUAL(2, front.metrics.size());
	STRCMP_EQUAL("8080", front.labels[0].second.c_str());
	const GroupConfig &back = group(c, "api", "back");
	STRCMP_EQUAL("curl -s http://10.0.0.2:8081/nginx_status", back.source.c_str());
	CHECK(back.multiline);
}

TEST(Templates, TheGroupsOwnKeysOverrideAndMetricsMerge)
{
	Config c = load(nginxTemplate + R"(services:
  web:
    metric_groups:
      front:
        use: nginx_status
        vars: {port: 8080}
        interval: 10s
        labels: {site: shop}
        metrics:
          active: {filter: 'Active:\s+(\d+)', description: Open connections}
          waiting: {filter: 'Waiting:\s+(\d+)'}
)");
	const GroupConfig &g = group(c, "web", "front");
	LONGS_EQUAL(10000, g.interval->count());
	LONGS_EQUAL(2, g.labels.size());
	STRCMP_EQUAL("site", g.labels[1].first.c_str());
	LONGS_EQUAL(3, g.metrics.size());
	STRCMP_EQUAL("active", g.metrics[0].key.c_str());
	STRCMP_EQUAL("Active:\\s+(\\d+)", g.metrics[0].filter.c_str());
	STRCMP_EQUAL("Open connections", g.metrics[0].description.c_str());
	STRCMP_EQUAL("accepts", g.metrics[1].key.c_str());
	STRCMP_EQUAL("waiting", g.metrics[2].key.c_str());
}

TEST(Templates, AnErrorInsideATemplatePointsAtItsLineAndAtTheUse)
{
	std::string e = errorsOf(R"(templates:
  t:
    source_type: command
    source: echo 1
    metrics:
      m: {filter: '(\d+', type: gauge}
services:
  s:
    metric_groups:
      g: {use: t}
)");
	STRCMP_CONTAINS("t.yml:6:19: invalid filter", e.c_str());
	STRCMP_CONTAINS("(in template 't' used at t.yml:10:16)", e.c_str());
}

TEST(Templates, AVarWithoutValueInAPlainFieldIsAnError)
{
	std::string e = errorsOf(nginxTemplate + R"(services:
  web:
    metric_groups:
      front: {use: nginx_status}
)");
	STRCMP_CONTAINS("t.yml:5:13: 'source' refers to ${port}, but the template is given no "
	    "value for it", e.c_str());
	STRCMP_CONTAINS("used at t.yml:17:20", e.c_str());
}

TEST(Templates, AVarTheTemplateDoesNotUseIsRefusedWithASuggestion)
{
	std::string e = errorsOf(nginxTemplate + R"(services:
  web:
    metric_groups:
      front: {use: nginx_status, vars: {prot: 80, port: 80}}
)");
	STRCMP_EQUAL("t.yml:17:41: template 'nginx_status' has no ${prot}; did you mean 'port'?\n",
	    e.c_str());
}

TEST(Templates, AnUnknownTemplateIsNamedWithTheClosest)
{
	std::string e = errorsOf(nginxTemplate + R"(services:
  web:
    metric_groups:
      front: {use: nginx_stats}
)");
	STRCMP_EQUAL("t.yml:17:20: unknown template 'nginx_stats'; did you mean 'nginx_status'?\n",
	    e.c_str());
}

TEST(Templates, LabelTemplatesKeepCapturesTheVarsDoNotName)
{
	Config c = load(R"(templates:
  disk:
    source_type: command
    source: df -P ${path}
    metrics:
      used:
        filter: '(?<dev>\S+)\s+\d+\s+(\d+)'
        labels: {device: '${dev}', mount: '${path}', note: '$$${dev}'}
services:
  s:
    metric_groups:
      root: {use: disk, vars: {path: /}}
)");
	const auto &labels = group(c, "s", "root").metrics[0].labels;
	STRCMP_EQUAL("${dev}", labels[0].second.c_str());
	STRCMP_EQUAL("/", labels[1].second.c_str());
	STRCMP_EQUAL("$$${dev}", labels[2].second.c_str());
}

TEST(Templates, AVarValueWithADollarStaysLiteral)
{
	Config c = load(R"(templates:
  t:
    source_type: command
    source: echo ${word}
    metrics: {m: {filter: '(\d+)', labels: {w: '${word}'}}}
services:
  s:
    metric_groups:
      g: {use: t, vars: {word: 'a$$b'}}
)");
	const GroupConfig &g = group(c, "s", "g");
	STRCMP_EQUAL("echo a$b", g.source.c_str());
	STRCMP_EQUAL("a$$b", g.metrics[0].labels[0].second.c_str());
}

TEST(Templates, MisuseIsExplained)
{
	std::string base = R"(templates:
  t:
    source_type: static
    metrics: {m: {value: 1}}
)";
	STRCMP_CONTAINS("'vars' gives values to a template's variables: add 'use'",
	    errorsOf(base + "services:\n  s:\n    metric_groups:\n      g: {vars: {a: 1}}\n")
	    .c_str());
	STRCMP_CONTAINS("templates are for groups",
	    errorsOf(base + "services:\n  s:\n    standalone_metrics:\n      g: {use: t}\n")
	    .c_str());
	STRCMP_CONTAINS("template 'u' cannot itself use a template",
	    errorsOf(base + "  u: {use: t}\nservices:\n  s:\n    metric_groups:\n      g: {use: u}\n")
	    .c_str());
	STRCMP_CONTAINS("t.yml:5:3: duplicate key 't' (first given at line 2, column 3)",
	    errorsOf(base + "  t: {}\nservices:\n  s:\n    metric_groups:\n      g: {use: t}\n")
	    .c_str());
}

TEST(Templates, ASelfContainingTemplateIsBounded)
{
	std::string e = errorsOf(R"(templates:
  t: &t
    source_type: static
    metrics: {m: {value: 1, labels: *t}}
services:
  s:
    metric_groups:
      g: {use: t}
)");
	STRCMP_CONTAINS("template 't' cannot be used: it is nested more than 64 levels deep",
	    e.c_str());
}

TEST_GROUP(Variables) {};

TEST(Variables, EnvironmentVariablesFillAnyString)
{
	::setenv("PME_TEST_PORT", "9100", 1);
	Config c = load(R"(services:
  s:
    metric_groups:
      g:
        source_type: command
        source: curl -s http://127.0.0.1:${env:PME_TEST_PORT}/metrics
        content_type: prometheus
)");
	STRCMP_EQUAL("curl -s http://127.0.0.1:9100/metrics", group(c, "s", "g").source.c_str());
}

TEST(Variables, DoubleDollarIsADollar)
{
	Config c = load(R"(services:
  s:
    metric_groups:
      g:
        source_type: command
        shell: true
        source: 'echo $$$$ $${env:HOME} $1'
        metrics: {m: {filter: '(\d+)'}}
)");
	STRCMP_EQUAL("echo $$ ${env:HOME} $1", group(c, "s", "g").source.c_str());
}

TEST(Variables, AnUnknownBraceReferenceIsRefusedWithTheWayOut)
{
	std::string e = errorsOf(R"(services:
  s:
    metric_groups:
      g:
        source_type: command
        shell: true
        source: 'echo ${HOME}'
        metrics: {m: {filter: '(\d+)'}}
)");
	STRCMP_EQUAL("t.yml:7:17: 'source' refers to ${HOME}, which is not a variable here: "
	    "${env:NAME} reads pmed's environment, ${NAME} is a variable of a template; write "
	    "$${HOME} for the text itself\n", e.c_str());
}

TEST(Variables, AnUnsetEnvironmentVariableIsAnError)
{
	::unsetenv("PME_TEST_UNSET");
	std::string e = errorsOf("exporter:\n  user: ${env:PME_TEST_UNSET}\nservices: {}\n");
	STRCMP_CONTAINS("t.yml:2:9: environment variable PME_TEST_UNSET is not set", e.c_str());
}

TEST(Variables, WrittenConfigurationsLoadAsThemselves)
{
	Config c = load(R"(services:
  s:
    labels: {price: '5$$'}
    metric_groups:
      g:
        source_type: command
        shell: true
        source: 'echo $$HOME 5'
        metrics: {m: {filter: '(\d+)', labels: {l: '$$1 $1'}}}
)");
	STRCMP_EQUAL("echo $HOME 5", group(c, "s", "g").source.c_str());
	auto again = loadConfigString(writeConfig(c), "w.yml");
	if (!again)
		FAIL(listErrors(again.error()).c_str());
	const GroupConfig &g = group(*again, "s", "g");
	STRCMP_EQUAL("echo $HOME 5", g.source.c_str());
	STRCMP_EQUAL("$$1 $1", g.metrics[0].labels[0].second.c_str());
	STRCMP_EQUAL("5$", again->services[0].labels[0].second.c_str());
}

TEST_GROUP(MergeKeys) {};

TEST(MergeKeys, GroupsShareDefaultsThroughAnchors)
{
	Config c = load(R"(x-defaults: &defaults
  source_type: command
  timeout: 3s
  interval: 10s
services:
  s:
    metric_groups:
      a:
        <<: *defaults
        source: echo 1
        metrics: {m: {filter: '(\d+)'}}
      b:
        <<: *defaults
        timeout: 1s
        source: echo 2
        metrics: {m2: {filter: '(\d+)'}}
)" );
	LONGS_EQUAL(3000, group(c, "s", "a").timeout.count());
	LONGS_EQUAL(1000, group(c, "s", "b").timeout.count());
	LONGS_EQUAL(10000, group(c, "s", "b").interval->count());
}

TEST_GROUP(Include)
{
	TempDir dir;
};

TEST(Include, ServicesAndTemplatesComeFromIncludedFiles)
{
	dir.write("conf.d/b.yml", "services:\n  b:\n    metric_groups:\n      g: {use: one}\n");
	dir.write("conf.d/a.yml", "templates:\n  one:\n    source_type: static\n"
	    "    metrics: {m: {value: 1}}\nservices:\n  a:\n    metric_groups:\n"
	    "      g: {use: one}\n");
	dir.write("conf.d/notes.txt", "not yaml: [");
	std::string main = dir.write("pme.yml", "exporter:\n  include: conf.d/*.yml\n"
	    "services:\n  main:\n    metric_groups:\n      g: {use: one}\n");
	auto r = loadConfigFile(main);
	if (!r)
		FAIL(listErrors(r.error()).c_str());
	LONGS_EQUAL(3, r->services.size());
	STRCMP_EQUAL("main", r->services[0].key.c_str());
	STRCMP_EQUAL("a", r->services[1].key.c_str());
	STRCMP_EQUAL("b", r->services[2].key.c_str());
	LONGS_EQUAL(1, r->exporter.include.size());
}

TEST(Include, ADuplicateServiceNamesBothPlaces)
{
	dir.write("conf.d/a.yml", "services:\n  web:\n    standalone_metrics:\n"
	    "      up: {value: 1}\n");
	std::string main = dir.write("pme.yml", "include: [conf.d/*.yml]\nservices:\n  web:\n"
	    "    standalone_metrics:\n      up: {value: 1}\n");
	auto r = loadConfigFile(main);
	CHECK_FALSE(r);
	LONGS_EQUAL(1, r.error().size());
	STRCMP_EQUAL((dir.path + "/conf.d/a.yml:2:3: service 'web' is already defined at " +
	    dir.path + "/pme.yml:3:3; a service key is unique across the main and included "
	    "files").c_str(), r.error()[0].str().c_str());
}

TEST(Include, ErrorsInIncludedFilesNameThemAndComeAfterTheMainOnes)
{
	dir.write("conf.d/a.yml", "exporter: {}\nservices:\n  x:\n    bogus: 1\n");
	std::string main = dir.write("pme.yml", "include: conf.d/*.yml\nservices:\n  m:\n"
	    "    standalone_metrics:\n      up: {value: 1, typo: 2}\n");
	auto r = loadConfigFile(main);
	CHECK_FALSE(r);
	std::string e = listErrors(r.error());
	std::string a = dir.path + "/conf.d/a.yml";
	STRCMP_CONTAINS((dir.path + "/pme.yml:5:22: unknown key 'typo'").c_str(), e.c_str());
	STRCMP_CONTAINS((a + ":1:1: 'exporter' can only be given in the main configuration "
	    "file").c_str(), e.c_str());
	STRCMP_CONTAINS((a + ":4:5: unknown key 'bogus'").c_str(), e.c_str());
	CHECK(e.find("pme.yml:5:22") < e.find("a.yml:1:1"));
}

TEST(Include, AMissingLiteralFileIsAnErrorAnEmptyGlobIsNot)
{
	std::string main = dir.write("pme.yml", "include: [none.d/*.yml, extra.yml]\nservices:\n"
	    "  m:\n    standalone_metrics:\n      up: {value: 1}\n");
	auto r = loadConfigFile(main);
	CHECK_FALSE(r);
	LONGS_EQUAL(1, r.error().size());
	STRCMP_EQUAL((dir.path + "/pme.yml:1:25: included file " + dir.path + "/extra.yml: "
	    "cannot read: No such file or directory").c_str(), r.error()[0].str().c_str());
}

TEST(Include, AFileIsReadOnceAndNeverItself)
{
	dir.write("a.yml", "services:\n  a:\n    standalone_metrics:\n      up: {value: 1}\n");
	std::string main = dir.write("pme.yml", "include: ['*.yml', a.yml]\nservices: {}\n");
	auto r = loadConfigFile(main);
	if (!r)
		FAIL(listErrors(r.error()).c_str());
	LONGS_EQUAL(1, r->services.size());
}

TEST(Include, IncludeIsGivenOnce)
{
	std::string e = errorsOf("include: []\nexporter:\n  include: []\nservices: {}\n");
	STRCMP_CONTAINS("give 'include' either at the top level or under 'exporter'", e.c_str());
}

TEST(Include, ATemplateDefinedInTwoFilesNamesBoth)
{
	dir.write("conf.d/a.yml", "templates:\n  t: {source_type: static, metrics: {m: {value: 1}}}\n");
	std::string main = dir.write("pme.yml", "include: conf.d/a.yml\ntemplates:\n"
	    "  t: {source_type: static, metrics: {m: {value: 2}}}\nservices: {}\n");
	auto r = loadConfigFile(main);
	CHECK_FALSE(r);
	LONGS_EQUAL(1, r.error().size());
	STRCMP_EQUAL((dir.path + "/conf.d/a.yml:2:3: template 't' is already defined at " +
	    dir.path + "/pme.yml:3:3").c_str(), r.error()[0].str().c_str());
}
