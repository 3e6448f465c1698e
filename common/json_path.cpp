// SPDX-License-Identifier: ISC
// RFC 9535 JSONPath: parser, type checker and evaluator over jansson.
//
// A query goes through three stages.  The parser is a recursive descent over
// the RFC's ABNF, byte by byte, that remembers the offset of every construct
// so that an error says where it is ("at offset 7: expected ']'").  Blank
// space is consumed only where the grammar allows S: "$ .a" and "$[ 1 ]" are
// accepted, "$. a", "$ " and "length (@)" are not.  It builds a small AST: a Query is a list of
// Segments (child or descendant), each a list of Selectors (name, wildcard,
// index, slice, filter); a filter holds an expression tree whose leaves are
// literals, queries (relative "@" or absolute "$") and function calls.
//
// Type checking happens while parsing, as RFC 9535 section 2.4.3 wants it at
// compile time: every expression node carries its kind, and the places that
// consume it (a test, a comparison, a function parameter) accept only the
// kinds the RFC allows: comparisons take literals, singular queries and
// ValueType functions; tests take queries and LogicalType/NodesType
// functions; `length`/`match`/`search` take ValueType arguments, `count` and
// `value` take NodesType.
//
// The evaluator walks the AST over borrowed json_t pointers: no reference is
// taken, since the document outlives the result.  A filter's value is a
// small struct that is "Nothing", a borrowed json_t, or an owned one (the
// integers length() and count() produce).  match() and search() translate
// I-Regexp (RFC 9485) into PCRE2 (`.` becomes [^\n\r]; `^` and `$` outside a
// class anchor at the start and end of the string, \A and \z, as the
// compliance suite expects) and compile it with the match limits set;
// patterns are cached per evaluation (no JIT: they are small and
// short-lived), and a pattern outside I-Regexp makes the function false as
// the RFC says.  Nesting in filters is bounded (kMaxNesting) so that a hostile
// query cannot exhaust the stack of the parser.
#include "common/json_path.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <optional>

#include "common/c_deleter.hpp"
#include "common/utf8.hpp"

namespace pme::common {

namespace jsonpath {

using common::CPtr;

constexpr int64_t kMaxInt = (int64_t(1) << 53) - 1;
constexpr int kMaxNesting = 64;
constexpr uint32_t kMatchLimit = 1000000;
constexpr uint32_t kDepthLimit = 10000;
constexpr uint32_t kHeapLimitKiB = 20 * 1024;

struct Expr;

struct Selector {
	enum Kind { Name, Wildcard, Index, Slice, Filter } kind = Name;
	std::string name;
	int64_t index = 0;
	std::optional<int64_t> start, end, step;
	std::shared_ptr<Expr> filter;
};

struct Segment {
	bool descendant = false;
	std::vector<Selector> selectors;
};

struct Query {
	bool absolute = true;
	std::vector<Segment> segments;

	bool singular() const
	{
		for (const auto &s : segments) {
			if (s.descendant || s.selectors.size() != 1)
				return false;
			auto k = s.selectors[0].kind;
			if (k != Selector::Name && k != Selector::Index)
				return false;
		}
		return true;
	}
};

enum class Func { Length, Count, Match, Search, Value };

struct Expr {
	enum Kind { Or, And, Not, Cmp, Literal, QueryRef, Call } kind = Literal;
	size_t offset = 0;
	std::vector<std::shared_ptr<Expr>> args;	// operands or arguments
	std::string op;					// comparison operator
	CPtr<json_t> literal;
	Query query;
	Func func = Func::Length;
};

// --- parser ---------------------------------------------------------------

enum class Type { Value, Logical, Nodes };

class Parser
{
public:
	explicit Parser(const std::string &s) : s_(s) {}

	common::Result<Query> parse()
	{
		if (peek() != '$')
			return err("expected '$' at the start of the query");
		pos_++;
		Query q;
		q.absolute = true;
		if (!segments(q))
			return tl::unexpected(error_);
		if (pos_ != s_.size())
			return err("unexpected character");
		return q;
	}

private:
	const std::string &s_;
	size_t pos_ = 0;
	int depth_ = 0;
	common::Error error_;
	bool failed_ = false;

	int peek(size_t ahead = 0) const
	{
		return pos_ + ahead < s_.size() ? (unsigned char)s_[pos_ + ahead] : -1;
	}

	bool fail(const std::string &msg, size_t at)
	{
		if (!failed_) {
			failed_ = true;
			error_ = common::Error("at offset " + std::to_string(at) + ": " + msg);
		}
		return false;
	}
	bool fail(const std::string &msg) { return fail(msg, pos_); }
	tl::unexpected<common::Error> err(const std::string &msg)
	{
		fail(msg);
		return tl::unexpected(error_);
	}

	static bool isBlank(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
	void skipS()
	{
		while (isBlank(peek()))
			pos_++;
	}
	static bool isAlpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
	static bool isDigit(int c) { return c >= '0' && c <= '9'; }
	static bool nameFirst(int c) { return isAlpha(c) || c == '_' || c >= 0x80; }

	bool segments(Query &q)
	{
		for (;;) {
			size_t save = pos_;
			skipS();
			int c = peek();
			if (c != '.' && c != '[') {
				pos_ = save;
				return true;
			}
			Segment seg;
			if (!segment(seg))
				return false;
			q.segments.push_back(std::move(seg));
		}
	}

	bool segment(Segment &seg)
	{
		if (peek() == '[')
			return bracketed(seg);
		pos_++;	// '.'
		if (peek() == '.') {
			pos_++;
			seg.descendant = true;
			if (peek() == '[')
				return bracketed(seg);
		}
		Selector sel;
		if (peek() == '*') {
			pos_++;
			sel.kind = Selector::Wildcard;
		} else if (nameFirst(peek())) {
			size_t b = pos_;
			while (nameFirst(peek()) || isDigit(peek()))
				pos_++;
			sel.name = s_.substr(b, pos_ - b);
		} else {
			return fail("expected a member name or '*'");
		}
		seg.selectors.push_back(std::move(sel));
		return true;
	}

	bool bracketed(Segment &seg)
	{
		pos_++;	// '['
		for (;;) {
			skipS();
			Selector sel;
			if (!selector(sel))
				return false;
			seg.selectors.push_back(std::move(sel));
			skipS();
			if (peek() == ',') {
				pos_++;
				continue;
			}
			if (peek() == ']') {
				pos_++;
				return true;
			}
			return fail("expected ']' or ','");
		}
	}

	bool selector(Selector &sel)
	{
		int c = peek();
		if (c == '\'' || c == '"') {
			sel.kind = Selector::Name;
			return stringLiteral(sel.name);
		}
		if (c == '*') {
			pos_++;
			sel.kind = Selector::Wildcard;
			return true;
		}
		if (c == '?') {
			pos_++;
			skipS();
			sel.kind = Selector::Filter;
			sel.filter = logical();
			return sel.filter != nullptr;
		}
		if (c == ':' || c == '-' || isDigit(c)) {
			std::optional<int64_t> first;
			if (c != ':') {
				int64_t v;
				if (!integer(v))
					return false;
				first = v;
				size_t save = pos_;
				skipS();
				if (peek() != ':') {
					pos_ = save;
					sel.kind = Selector::Index;
					sel.index = v;
					return true;
				}
			}
			sel.kind = Selector::Slice;
			sel.start = first;
			pos_++;	// ':'
			skipS();
			if (peek() == '-' || isDigit(peek())) {
				int64_t v;
				if (!integer(v))
					return false;
				sel.end = v;
				skipS();
			}
			if (peek() == ':') {
				pos_++;
				skipS();
				if (peek() == '-' || isDigit(peek())) {
					int64_t v;
					if (!integer(v))
						return false;
					sel.step = v;
				}
			}
			return true;
		}
		return fail("expected a selector");
	}

	// int = "0" / (["-"] DIGIT1 *DIGIT), within +-(2^53-1).
	bool integer(int64_t &out)
	{
		size_t b = pos_;
		bool neg = false;
		if (peek() == '-') {
			neg = true;
			pos_++;
		}
		if (!isDigit(peek()))
			return fail("expected a digit");
		if (peek() == '0' && (neg || isDigit(peek(1))))
			return fail(neg ? "'-0' is not a valid integer" : "leading zeros are not allowed", b);
		int64_t v = 0;
		while (isDigit(peek())) {
			v = v * 10 + (peek() - '0');
			pos_++;
			if (v > kMaxInt)
				return fail("integer out of range", b);
		}
		out = neg ? -v : v;
		return true;
	}

	static void putUtf8(std::string &o, uint32_t cp)
	{
		if (cp < 0x80) {
			o += char(cp);
		} else if (cp < 0x800) {
			o += char(0xC0 | (cp >> 6));
			o += char(0x80 | (cp & 0x3F));
		} else if (cp < 0x10000) {
			o += char(0xE0 | (cp >> 12));
			o += char(0x80 | ((cp >> 6) & 0x3F));
			o += char(0x80 | (cp & 0x3F));
		} else {
			o += char(0xF0 | (cp >> 18));
			o += char(0x80 | ((cp >> 12) & 0x3F));
			o += char(0x80 | ((cp >> 6) & 0x3F));
			o += char(0x80 | (cp & 0x3F));
		}
	}

	bool hex4(uint32_t &v)
	{
		v = 0;
		for (int i = 0; i < 4; i++) {
			int c = peek();
			int d;
			if (isDigit(c))
				d = c - '0';
			else if (c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else
				return fail("expected 4 hexadecimal digits after \\u");
			v = v * 16 + uint32_t(d);
			pos_++;
		}
		return true;
	}

	bool stringLiteral(std::string &out)
	{
		int quote = peek();
		pos_++;
		for (;;) {
			int c = peek();
			if (c < 0)
				return fail("unterminated string literal");
			if (c == quote) {
				pos_++;
				return true;
			}
			if (c < 0x20)
				return fail("control character in string literal");
			if (c != '\\') {
				out += char(c);
				pos_++;
				continue;
			}
			size_t esc = pos_;
			pos_++;
			c = peek();
			switch (c) {
			case 'b': out += '\b'; break;
			case 'f': out += '\f'; break;
			case 'n': out += '\n'; break;
			case 'r': out += '\r'; break;
			case 't': out += '\t'; break;
			case '/': out += '/'; break;
			case '\\': out += '\\'; break;
			case '\'':
			case '"':
				if (c != quote)
					return fail("invalid escape sequence", esc);
				out += char(c);
				break;
			case 'u': {
				pos_++;
				uint32_t cp;
				if (!hex4(cp))
					return false;
				if (cp >= 0xDC00 && cp <= 0xDFFF)
					return fail("unpaired low surrogate", esc);
				if (cp >= 0xD800 && cp <= 0xDBFF) {
					if (peek() != '\\' || peek(1) != 'u')
						return fail("unpaired high surrogate", esc);
					pos_ += 2;
					uint32_t lo;
					if (!hex4(lo))
						return false;
					if (lo < 0xDC00 || lo > 0xDFFF)
						return fail("invalid low surrogate", esc);
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				}
				putUtf8(out, cp);
				continue;
			}
			default:
				return fail("invalid escape sequence", esc);
			}
			pos_++;
		}
	}

	// --- filter expressions ---------------------------------------------

	bool needLogical(const std::shared_ptr<Expr> &e)
	{
		if (!e)
			return false;
		switch (e->kind) {
		case Expr::Literal:
			return fail("a literal must be compared", e->offset);
		case Expr::Call:
			if (e->func != Func::Match && e->func != Func::Search)
				return fail("function result must be compared", e->offset);
			return true;
		default:
			return true;
		}
	}

	std::shared_ptr<Expr> logical()
	{
		if (++depth_ > kMaxNesting) {
			fail("expression nested too deeply");
			return nullptr;
		}
		auto e = orExpr();
		depth_--;
		if (!needLogical(e))
			return nullptr;
		return e;
	}

	std::shared_ptr<Expr> orExpr() { return chain('|', Expr::Or, &Parser::andExpr); }
	std::shared_ptr<Expr> andExpr() { return chain('&', Expr::And, &Parser::basic); }

	// operand (op op operand)*: "||" or "&&" between logical operands; a
	// single operand is returned as it is.
	std::shared_ptr<Expr> chain(char op, decltype(Expr::Or) kind,
	    std::shared_ptr<Expr> (Parser::*operand)())
	{
		auto first = (this->*operand)();
		if (!first)
			return nullptr;
		std::shared_ptr<Expr> node;
		for (;;) {
			size_t save = pos_;
			skipS();
			if (peek() != op || peek(1) != op) {
				pos_ = save;
				return node ? node : first;
			}
			if (!node) {
				if (!needLogical(first))
					return nullptr;
				node = std::make_shared<Expr>();
				node->kind = kind;
				node->offset = first->offset;
				node->args.push_back(first);
			}
			pos_ += 2;
			skipS();
			auto next = (this->*operand)();
			if (!needLogical(next))
				return nullptr;
			node->args.push_back(next);
		}
	}

	std::shared_ptr<Expr> basic()
	{
		size_t at = pos_;
		if (peek() == '!') {
			pos_++;
			skipS();
			std::shared_ptr<Expr> inner;
			if (peek() == '(')
				inner = paren();
			else if (peek() == '@' || peek() == '$' || (peek() >= 'a' && peek() <= 'z'))
				inner = comparable(true);
			else
				fail("expected '(', a query or a function after '!'");
			if (!needLogical(inner))
				return nullptr;
			auto n = std::make_shared<Expr>();
			n->kind = Expr::Not;
			n->offset = at;
			n->args.push_back(inner);
			return n;
		}
		if (peek() == '(')
			return paren();
		auto left = comparable(false);
		if (!left)
			return nullptr;
		size_t save = pos_;
		skipS();
		std::string op;
		int c = peek(), d = peek(1);
		if ((c == '=' || c == '!') && d == '=')
			op = std::string(1, char(c)) + "=";
		else if ((c == '<' || c == '>') && d == '=')
			op = std::string(1, char(c)) + "=";
		else if (c == '<' || c == '>')
			op = std::string(1, char(c));
		if (op.empty()) {
			pos_ = save;
			return left;
		}
		pos_ += op.size();
		skipS();
		auto right = comparable(false);
		if (!right)
			return nullptr;
		if (!comparableOk(*left) || !comparableOk(*right))
			return nullptr;
		auto n = std::make_shared<Expr>();
		n->kind = Expr::Cmp;
		n->offset = at;
		n->op = op;
		n->args.push_back(left);
		n->args.push_back(right);
		return n;
	}

	bool comparableOk(const Expr &e)
	{
		switch (e.kind) {
		case Expr::Literal:
			return true;
		case Expr::QueryRef:
			if (!e.query.singular())
				return fail("a compared query must be singular", e.offset);
			return true;
		case Expr::Call:
			if (e.func == Func::Match || e.func == Func::Search)
				return fail("a logical function result cannot be compared", e.offset);
			return true;
		default:
			return fail("expected a comparable", e.offset);
		}
	}

	std::shared_ptr<Expr> paren()
	{
		pos_++;
		skipS();
		auto inner = logical();
		if (!inner)
			return nullptr;
		skipS();
		if (peek() != ')') {
			fail("expected ')'");
			return nullptr;
		}
		pos_++;
		return inner;
	}

	// A literal, a query or a function call.  After '!' only a query or a
	// function is allowed (noLiteral).
	std::shared_ptr<Expr> comparable(bool noLiteral)
	{
		auto n = std::make_shared<Expr>();
		n->offset = pos_;
		int c = peek();
		if (c == '@' || c == '$') {
			pos_++;
			n->kind = Expr::QueryRef;
			n->query.absolute = c == '$';
			if (!segments(n->query))
				return nullptr;
			return n;
		}
		if (c >= 'a' && c <= 'z') {
			size_t b = pos_;
			while ((peek() >= 'a' && peek() <= 'z') || peek() == '_' || isDigit(peek()))
				pos_++;
			std::string word = s_.substr(b, pos_ - b);
			if (peek() == '(')
				return call(n, word);
			if (!noLiteral && (word == "true" || word == "false" || word == "null")) {
				n->kind = Expr::Literal;
				n->literal.reset(word == "true" ? json_true()
				    : word == "false" ? json_false() : json_null());
				return n;
			}
			fail("unknown name '" + word + "'", b);
			return nullptr;
		}
		if (noLiteral) {
			fail("expected a query or a function");
			return nullptr;
		}
		n->kind = Expr::Literal;
		if (c == '\'' || c == '"') {
			std::string str;
			if (!stringLiteral(str))
				return nullptr;
			n->literal.reset(json_stringn(str.data(), str.size()));
			return n;
		}
		if (c == '-' || isDigit(c))
			return number(n) ? n : nullptr;
		fail("expected a literal, a query or a function");
		return nullptr;
	}

	bool number(const std::shared_ptr<Expr> &n)
	{
		size_t b = pos_;
		if (peek() == '-')
			pos_++;
		if (!isDigit(peek()))
			return fail("expected a digit");
		if (peek() == '0' && isDigit(peek(1)))
			return fail("leading zeros are not allowed", b);
		while (isDigit(peek()))
			pos_++;
		bool isInt = true;
		if (peek() == '.') {
			pos_++;
			if (!isDigit(peek()))
				return fail("expected a digit after '.'");
			while (isDigit(peek()))
				pos_++;
			isInt = false;
		}
		if (peek() == 'e' || peek() == 'E') {
			pos_++;
			if (peek() == '+' || peek() == '-')
				pos_++;
			if (!isDigit(peek()))
				return fail("expected a digit in the exponent");
			while (isDigit(peek()))
				pos_++;
			isInt = false;
		}
		std::string text = s_.substr(b, pos_ - b);
		if (isInt && text != "-0") {
			errno = 0;
			long long v = std::strtoll(text.c_str(), nullptr, 10);
			if (errno == 0) {
				n->literal.reset(json_integer(v));
				return true;
			}
		}
		double d = std::strtod(text.c_str(), nullptr);
		if (!std::isfinite(d))
			return fail("number out of range", b);
		n->literal.reset(json_real(d));
		return true;
	}

	std::shared_ptr<Expr> call(std::shared_ptr<Expr> n, const std::string &name)
	{
		n->kind = Expr::Call;
		std::vector<Type> params;
		if (name == "length") {
			n->func = Func::Length;
			params = {Type::Value};
		} else if (name == "count") {
			n->func = Func::Count;
			params = {Type::Nodes};
		} else if (name == "value") {
			n->func = Func::Value;
			params = {Type::Nodes};
		} else if (name == "match") {
			n->func = Func::Match;
			params = {Type::Value, Type::Value};
		} else if (name == "search") {
			n->func = Func::Search;
			params = {Type::Value, Type::Value};
		} else {
			fail("unknown function '" + name + "'", n->offset);
			return nullptr;
		}
		pos_++;	// '('
		skipS();
		if (peek() != ')') {
			for (;;) {
				size_t at = pos_;
				if (++depth_ > kMaxNesting) {
					fail("expression nested too deeply");
					return nullptr;
				}
				auto a = orExpr();
				depth_--;
				if (!a)
					return nullptr;
				size_t i = n->args.size();
				if (i >= params.size()) {
					fail("too many arguments to " + name + "()", at);
					return nullptr;
				}
				if (!argOk(*a, params[i], name))
					return nullptr;
				n->args.push_back(a);
				skipS();
				if (peek() == ',') {
					pos_++;
					skipS();
					continue;
				}
				if (peek() == ')')
					break;
				fail("expected ',' or ')'");
				return nullptr;
			}
		}
		if (n->args.size() != params.size()) {
			fail(name + "() takes " + std::to_string(params.size()) + " argument(s)");
			return nullptr;
		}
		pos_++;	// ')'
		return n;
	}

	bool argOk(const Expr &a, Type want, const std::string &name)
	{
		if (want == Type::Value) {
			if (a.kind == Expr::Literal)
				return true;
			if (a.kind == Expr::QueryRef) {
				if (!a.query.singular())
					return fail("argument of " + name + "() must be a singular query",
					    a.offset);
				return true;
			}
			if (a.kind == Expr::Call && a.func != Func::Match && a.func != Func::Search)
				return true;
			return fail("argument of " + name + "() must be a value", a.offset);
		}
		if (a.kind == Expr::QueryRef)
			return true;
		return fail("argument of " + name + "() must be a query", a.offset);
	}
};

// --- evaluator ------------------------------------------------------------

using Path = std::vector<std::variant<std::string, size_t>>;
using Node = JsonPath::Node;

// A ValueType result: Nothing, a borrowed value, or one we made.
struct Val {
	json_t *v = nullptr;
	CPtr<json_t> owned;
};

class Evaluator
{
public:
	explicit Evaluator(json_t *root) : root_(root) {}

	std::vector<Node> run(const Query &q, json_t *start, bool paths)
	{
		std::vector<Node> cur;
		cur.push_back(Node{start, {}});
		for (const auto &seg : q.segments) {
			std::vector<Node> next;
			for (auto &n : cur) {
				if (seg.descendant)
					descend(seg, n.value, n.path, next, paths);
				else
					applyAll(seg, n.value, n.path, next, paths);
			}
			cur.swap(next);
		}
		return cur;
	}

private:
	json_t *root_;
	std::map<std::string, CPtr<pcre2_code>> regexCache_[2];
	CPtr<pcre2_match_context> mctx_;

	static void push(std::vector<Node> &out, json_t *v, const Path &base,
	    std::variant<std::string, size_t> step, bool paths)
	{
		Node n{v, {}};
		if (paths) {
			n.path = base;
			n.path.push_back(std::move(step));
		}
		out.push_back(std::move(n));
	}

	void applyAll(const Segment &seg, json_t *v, const Path &p, std::vector<Node> &out,
	    bool paths)
	{
		for (const auto &sel : seg.selectors)
			apply(sel, v, p, out, paths);
	}

	// Visits v and then its descendants in document order (pre-order),
	// applying the segment's selectors to each.  An explicit stack, not
	// recursion, so that a deep document cannot exhaust the worker's stack;
	// `p` is extended and restored in place, one copy per selected node.
	void descend(const Segment &seg, json_t *v, Path &p, std::vector<Node> &out, bool paths)
	{
		struct Frame {
			json_t *value;
			size_t index;
			void *iter;
		};
		std::vector<Frame> stack;
		applyAll(seg, v, p, out, paths);
		stack.push_back({v, 0, json_is_object(v) ? json_object_iter(v) : nullptr});
		while (!stack.empty()) {
			Frame &f = stack.back();
			json_t *child = nullptr;
			if (json_is_array(f.value) && f.index < json_array_size(f.value)) {
				child = json_array_get(f.value, f.index);
				if (paths)
					p.emplace_back(std::in_place_index<1>, f.index);
				f.index++;
			} else if (json_is_object(f.value) && f.iter) {
				child = json_object_iter_value(f.iter);
				if (paths)
					p.emplace_back(std::in_place_index<0>, json_object_iter_key(f.iter),
					    json_object_iter_key_len(f.iter));
				f.iter = json_object_iter_next(f.value, f.iter);
			}
			if (!child) {
				stack.pop_back();
				if (paths && !stack.empty())
					p.pop_back();
				continue;
			}
			applyAll(seg, child, p, out, paths);
			stack.push_back({child, 0,
			    json_is_object(child) ? json_object_iter(child) : nullptr});
		}
	}

	static int64_t norm(int64_t i, int64_t len) { return i >= 0 ? i : len + i; }

	void apply(const Selector &sel, json_t *v, const Path &p, std::vector<Node> &out,
	    bool paths)
	{
		switch (sel.kind) {
		case Selector::Name:
			if (json_is_object(v)) {
				json_t *m = json_object_getn(v, sel.name.data(), sel.name.size());
				if (m)
					push(out, m, p, sel.name, paths);
			}
			break;
		case Selector::Wildcard:
			if (json_is_array(v)) {
				for (size_t i = 0; i < json_array_size(v); i++)
					push(out, json_array_get(v, i), p, i, paths);
			} else if (json_is_object(v)) {
				const char *k;
				size_t klen;
				json_t *m;
				void *tmp;
				json_object_keylen_foreach_safe(v, tmp, k, klen, m)
					push(out, m, p, std::string(k, klen), paths);
			}
			break;
		case Selector::Index:
			if (json_is_array(v)) {
				int64_t len = int64_t(json_array_size(v));
				int64_t i = norm(sel.index, len);
				if (i >= 0 && i < len)
					push(out, json_array_get(v, size_t(i)), p, size_t(i), paths);
			}
			break;
		case Selector::Slice: {
			if (!json_is_array(v))
				break;
			int64_t len = int64_t(json_array_size(v));
			int64_t step = sel.step.value_or(1);
			if (step == 0)
				break;
			if (step > 0) {
				int64_t s = norm(sel.start.value_or(0), len);
				int64_t e = norm(sel.end.value_or(len), len);
				int64_t lo = std::min(std::max(s, int64_t(0)), len);
				int64_t hi = std::min(std::max(e, int64_t(0)), len);
				for (int64_t i = lo; i < hi; i += step)
					push(out, json_array_get(v, size_t(i)), p, size_t(i), paths);
			} else {
				int64_t s = sel.start ? norm(*sel.start, len) : len - 1;
				int64_t e = sel.end ? norm(*sel.end, len) : -len - 1;
				int64_t hi = std::min(std::max(s, int64_t(-1)), len - 1);
				int64_t lo = std::min(std::max(e, int64_t(-1)), len - 1);
				for (int64_t i = hi; lo < i; i += step)
					push(out, json_array_get(v, size_t(i)), p, size_t(i), paths);
			}
			break;
		}
		case Selector::Filter:
			if (json_is_array(v)) {
				for (size_t i = 0; i < json_array_size(v); i++) {
					json_t *m = json_array_get(v, i);
					if (test(*sel.filter, m))
						push(out, m, p, i, paths);
				}
			} else if (json_is_object(v)) {
				const char *k;
				size_t klen;
				json_t *m;
				void *tmp;
				json_object_keylen_foreach_safe(v, tmp, k, klen, m) {
					if (test(*sel.filter, m))
						push(out, m, p, std::string(k, klen), paths);
				}
			}
			break;
		}
	}

	std::vector<Node> nodes(const Expr &e, json_t *cur)
	{
		return run(e.query, e.query.absolute ? root_ : cur, false);
	}

	bool test(const Expr &e, json_t *cur)
	{
		switch (e.kind) {
		case Expr::Or:
			for (const auto &a : e.args)
				if (test(*a, cur))
					return true;
			return false;
		case Expr::And:
			for (const auto &a : e.args)
				if (!test(*a, cur))
					return false;
			return true;
		case Expr::Not:
			return !test(*e.args[0], cur);
		case Expr::QueryRef:
			return !nodes(e, cur).empty();
		case Expr::Cmp: {
			Val a = value(*e.args[0], cur);
			Val b = value(*e.args[1], cur);
			const std::string &op = e.op;
			if (op == "==")
				return equal(a.v, b.v);
			if (op == "!=")
				return !equal(a.v, b.v);
			if (op == "<")
				return less(a.v, b.v);
			if (op == ">")
				return less(b.v, a.v);
			if (op == "<=")
				return less(a.v, b.v) || equal(a.v, b.v);
			return less(b.v, a.v) || equal(a.v, b.v);
		}
		case Expr::Call:
			if (e.func == Func::Match || e.func == Func::Search)
				return regex(e, cur);
			return false;
		case Expr::Literal:
			return false;
		}
		return false;
	}

	Val value(const Expr &e, json_t *cur)
	{
		Val r;
		switch (e.kind) {
		case Expr::Literal:
			r.v = e.literal.get();
			break;
		case Expr::QueryRef: {
			auto ns = nodes(e, cur);
			if (ns.size() == 1)
				r.v = ns[0].value;
			break;
		}
		case Expr::Call:
			switch (e.func) {
			case Func::Length: {
				Val a = value(*e.args[0], cur);
				json_int_t n = -1;
				if (json_is_string(a.v)) {
					n = 0;
					const char *s = json_string_value(a.v);
					size_t len = json_string_length(a.v);
					for (size_t i = 0; i < len; i++)
						if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80)
							n++;
				} else if (json_is_array(a.v)) {
					n = json_int_t(json_array_size(a.v));
				} else if (json_is_object(a.v)) {
					n = json_int_t(json_object_size(a.v));
				}
				if (n >= 0) {
					r.owned.reset(json_integer(n));
					r.v = r.owned.get();
				}
				break;
			}
			case Func::Count:
				r.owned.reset(json_integer(json_int_t(nodes(*e.args[0], cur).size())));
				r.v = r.owned.get();
				break;
			case Func::Value: {
				auto ns = nodes(*e.args[0], cur);
				if (ns.size() == 1)
					r.v = ns[0].value;
				break;
			}
			default:
				break;
			}
			break;
		default:
			break;
		}
		return r;
	}

	static bool isNum(json_t *v) { return json_is_integer(v) || json_is_real(v); }

	static bool numEqual(json_t *a, json_t *b)
	{
		if (json_is_integer(a) && json_is_integer(b))
			return json_integer_value(a) == json_integer_value(b);
		return json_number_value(a) == json_number_value(b);
	}

	static bool numLess(json_t *a, json_t *b)
	{
		if (json_is_integer(a) && json_is_integer(b))
			return json_integer_value(a) < json_integer_value(b);
		return json_number_value(a) < json_number_value(b);
	}

	static bool equal(json_t *a, json_t *b)
	{
		if (!a || !b)
			return !a && !b;
		if (isNum(a) && isNum(b))
			return numEqual(a, b);
		if (json_typeof(a) != json_typeof(b))
			return false;
		if (json_is_array(a)) {
			if (json_array_size(a) != json_array_size(b))
				return false;
			for (size_t i = 0; i < json_array_size(a); i++)
				if (!equal(json_array_get(a, i), json_array_get(b, i)))
					return false;
			return true;
		}
		if (json_is_object(a)) {
			if (json_object_size(a) != json_object_size(b))
				return false;
			const char *k;
			size_t klen;
			json_t *m;
			void *tmp;
			json_object_keylen_foreach_safe(a, tmp, k, klen, m) {
				if (!equal(m, json_object_getn(b, k, klen)))
					return false;
			}
			return true;
		}
		return json_equal(a, b);
	}

	static bool less(json_t *a, json_t *b)
	{
		if (!a || !b)
			return false;
		if (isNum(a) && isNum(b))
			return numLess(a, b);
		if (json_is_string(a) && json_is_string(b)) {
			// UTF-8 byte order is code point order.
			size_t la = json_string_length(a), lb = json_string_length(b);
			int c = std::memcmp(json_string_value(a), json_string_value(b),
			    std::min(la, lb));
			return c < 0 || (c == 0 && la < lb);
		}
		return false;
	}

	bool regex(const Expr &e, json_t *cur)
	{
		Val s = value(*e.args[0], cur);
		Val re = value(*e.args[1], cur);
		if (!json_is_string(s.v) || !json_is_string(re.v))
			return false;
		bool full = e.func == Func::Match;
		std::string pattern(json_string_value(re.v), json_string_length(re.v));
		auto &cache = regexCache_[full ? 1 : 0];
		auto it = cache.find(pattern);
		if (it == cache.end()) {
			CPtr<pcre2_code> code;
			std::string translated;
			if (translate(pattern, translated)) {
				int errcode;
				PCRE2_SIZE erroff;
				uint32_t opts = PCRE2_UTF | PCRE2_UCP;
				if (full)
					opts |= PCRE2_ANCHORED | PCRE2_ENDANCHORED;
				code.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()),
				    translated.size(), opts, &errcode, &erroff, nullptr));
			}
			it = cache.emplace(pattern, std::move(code)).first;
		}
		if (!it->second)
			return false;
		if (!mctx_) {
			mctx_.reset(pcre2_match_context_create(nullptr));
			if (!mctx_)
				throw std::bad_alloc();
			pcre2_set_match_limit(mctx_.get(), kMatchLimit);
			pcre2_set_depth_limit(mctx_.get(), kDepthLimit);
			pcre2_set_heap_limit(mctx_.get(), kHeapLimitKiB);
		}
		CPtr<pcre2_match_data> md(pcre2_match_data_create_from_pattern(it->second.get(),
		    nullptr));
		if (!md)
			throw std::bad_alloc();
		int rc = pcre2_match(it->second.get(),
		    reinterpret_cast<PCRE2_SPTR>(json_string_value(s.v)), json_string_length(s.v),
		    0, 0, md.get(), mctx_.get());
		return rc >= 0;
	}

	// I-Regexp (RFC 9485) to PCRE2.  Returns false for a pattern outside
	// I-Regexp, which the RFC treats as a non-match.
	static bool translate(const std::string &in, std::string &out)
	{
		bool inClass = false;
		for (size_t i = 0; i < in.size(); i++) {
			char c = in[i];
			if (c == '\\') {
				if (i + 1 >= in.size())
					return false;
				char d = in[i + 1];
				if (d == 'p' || d == 'P') {
					size_t close = in.find('}', i);
					if (i + 2 >= in.size() || in[i + 2] != '{' || close == std::string::npos)
						return false;
					out.append(in, i, close - i + 1);
					i = close;
					continue;
				}
				if (!std::strchr("()*+-.?[\\]^{|}nrt", d) || d == '\0')
					return false;
				out += c;
				out += d;
				i++;
				continue;
			}
			if (inClass) {
				if (c == ']')
					inClass = false;
				else if (c == '[')
					return false;
				out += c;
				continue;
			}
			if (c == '(' && i + 1 < in.size() && in[i + 1] == '?')
				return false;	// PCRE group syntax, not I-Regexp
			if ((c == '*' || c == '+' || c == '?' || c == '}') && i + 1 < in.size() &&
			    std::strchr("*+?{", in[i + 1]))
				return false;	// lazy/possessive quantifiers are not I-Regexp
			switch (c) {
			case '.':
				out += "[^\\n\\r]";
				break;
			case '^':
				out += "\\A";
				break;
			case '$':
				out += "\\z";
				break;
			case '[':
				inClass = true;
				out += c;
				if (i + 1 < in.size() && in[i + 1] == '^') {
					out += '^';
					i++;
				}
				if (i + 1 < in.size() && in[i + 1] == ']')
					return false;
				break;
			default:
				out += c;
			}
		}
		return !inClass;
	}
};

} // namespace jsonpath

common::Result<JsonPath> JsonPath::compile(const std::string &query)
{
	std::string noNul = query;
	std::replace(noNul.begin(), noNul.end(), '\0', ' ');
	if (!validUtf8(noNul)) {
		// Error path only: the longest valid prefix gives the offset.
		size_t good = 0;
		for (size_t n = 1; n <= noNul.size(); n++)
			if (validUtf8(std::string_view(noNul).substr(0, n)))
				good = n;
		return common::fail("at offset " + std::to_string(good) + ": invalid UTF-8");
	}
	jsonpath::Parser p(query);
	auto q = p.parse();
	if (!q)
		return tl::unexpected(q.error());
	JsonPath jp;
	jp.text_ = query;
	jp.query_ = std::make_shared<const jsonpath::Query>(std::move(*q));
	return jp;
}

std::vector<JsonPath::Node> JsonPath::evaluate(json_t *root) const
{
	if (!query_ || !root)
		return {};
	jsonpath::Evaluator ev(root);
	return ev.run(*query_, root, true);
}

bool JsonPath::singular() const
{
	return query_ && query_->singular();
}

std::string JsonPath::normalizedPath(const Node &node)
{
	static const char hex[] = "0123456789abcdef";
	std::string out = "$";
	for (const auto &step : node.path) {
		if (const size_t *i = std::get_if<size_t>(&step)) {
			out += "[" + std::to_string(*i) + "]";
			continue;
		}
		out += "['";
		for (unsigned char c : std::get<std::string>(step)) {
			switch (c) {
			case '\b': out += "\\b"; break;
			case '\f': out += "\\f"; break;
			case '\n': out += "\\n"; break;
			case '\r': out += "\\r"; break;
			case '\t': out += "\\t"; break;
			case '\'': out += "\\'"; break;
			case '\\': out += "\\\\"; break;
			default:
				if (c < 0x20) {
					out += "\\u00";
					out += hex[c >> 4];
					out += hex[c & 15];
				} else {
					out += char(c);
				}
			}
		}
		out += "']";
	}
	return out;
}

} // namespace pme::common
