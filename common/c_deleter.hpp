// SPDX-License-Identifier: ISC
// One deleter functor for the C libraries' handles: std::unique_ptr<T, CDeleter>.
#pragma once

#include <memory>

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <yaml.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace pme::common {

struct CDeleter {
	void operator()(pcre2_code *p) const noexcept { pcre2_code_free(p); }
	void operator()(pcre2_match_data *p) const noexcept { pcre2_match_data_free(p); }
	void operator()(pcre2_match_context *p) const noexcept { pcre2_match_context_free(p); }
	void operator()(pcre2_jit_stack *p) const noexcept { pcre2_jit_stack_free(p); }
	void operator()(json_t *p) const noexcept { json_decref(p); }
	void operator()(xmlDoc *p) const noexcept { xmlFreeDoc(p); }
	void operator()(xmlXPathContext *p) const noexcept { xmlXPathFreeContext(p); }
	void operator()(xmlXPathObject *p) const noexcept { xmlXPathFreeObject(p); }
	void operator()(xmlXPathCompExpr *p) const noexcept { xmlXPathFreeCompExpr(p); }
	void operator()(xmlParserCtxt *p) const noexcept { xmlFreeParserCtxt(p); }
	void operator()(yaml_parser_t *p) const noexcept
	{
		yaml_parser_delete(p);
		delete p;
	}
	void operator()(yaml_document_t *p) const noexcept
	{
		yaml_document_delete(p);
		delete p;
	}
	void operator()(yaml_emitter_t *p) const noexcept
	{
		yaml_emitter_delete(p);
		delete p;
	}
};

template <typename T>
using CPtr = std::unique_ptr<T, CDeleter>;

} // namespace pme::common
