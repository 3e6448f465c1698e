// SPDX-License-Identifier: ISC
// The identity of a series (a 64-bit hash of its labels) and the hash
// tables the store keeps by it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "common/config.hpp"
#include "common/metric.hpp"

namespace pme::daemon {

// MurmurHash64A (Austin Appleby, public domain): fast on short keys, and
// a change anywhere in the key changes every bit of the hash.
inline uint64_t hash64(std::string_view data)
{
	constexpr uint64_t m = 0xc6a4a7935bd1e995ULL;
	constexpr int r = 47;
	uint64_t h = 0x8445d61a4e774912ULL ^ (data.size() * m);
	const char *p = data.data();
	size_t n = data.size();
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t k;
		std::memcpy(&k, p, 8);
		k *= m;
		k ^= k >> r;
		k *= m;
		h ^= k;
		h *= m;
	}
	if (n > 0) {
		// The last bytes, read without storing them first (a copy of
		// n bytes to the stack read back as 8 stalls the load).
		uint64_t k = 0;
		if (data.size() >= 8) {
			std::memcpy(&k, data.data() + data.size() - 8, 8);
			k >>= 8 * (8 - n);
		} else {
			for (size_t i = 0; i < n; i++)
				k |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
		}
		h ^= k;
		h *= m;
	}
	h ^= h >> r;
	h *= m;
	h ^= h >> r;
	return h == 0 ? 1 : h; // 0 marks an empty slot of KeyMap
}

// Identity of a series within its family, and of the histogram or
// summary series it belongs to (its _bucket, _sum and _count samples
// share every label but le): hashes and not text, as a key is kept for
// every series.  A label's hash mixes those of its name and its value; a
// set of labels hashes to the sum of its labels' hashes, whatever their
// order, and a series to that mixed with the hash of its suffix.  Two
// series of a family that differ but hash alike (1 in 2^64 for a pair)
// are taken for one, the second dropped as exported twice; the output
// stays valid.
struct SeriesKeys {
	uint64_t series;
	uint64_t set;
};

inline uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ULL)) * 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h == 0 ? 1 : h; // 0 marks an empty slot of KeyMap
}

inline uint64_t labelHash(std::string_view name, std::string_view value)
{
	return mix(hash64(name), hash64(value));
}

// The keys of a sample whose exported labels are `labels` and the
// service's constant ones, of which `constSum` is the sum of hashes.
inline SeriesKeys seriesKeys(common::MetricType type, std::string_view suffix,
    const std::vector<common::Label> &labels, uint64_t constSum)
{
	uint64_t sum = constSum, le = 0;
	for (const auto &l : labels) {
		uint64_t h = labelHash(l.name, l.value);
		sum += h;
		if (type == common::MetricType::Histogram && l.name == "le")
			le = h;
	}
	uint64_t suffixHash = suffix.empty() ? 0 : hash64(suffix);
	return {mix(suffixHash, sum), mix(0, sum - le)};
}

inline uint64_t constantSum(const common::Pairs &constLabels)
{
	uint64_t sum = 0;
	for (const auto &[n, v] : constLabels)
		sum += labelHash(n, v);
	return sum;
}

// Keys are already hashes (seriesKeys()).
struct KeyHash {
	size_t operator()(uint64_t k) const { return static_cast<size_t>(k ^ (k >> 32)); }
};

// A hash table of series keys (seriesKeys(), never 0) in one array, with
// linear probing: a lookup is one cache miss, where std::unordered_map
// follows a pointer to a node allocated for each entry.
template <typename V> class KeyMap {
public:
	bool empty() const { return used_ == 0; }
	const V *find(uint64_t key) const
	{
		if (slots_.empty())
			return nullptr;
		for (size_t i = index(key);; i = (i + 1) & (slots_.size() - 1)) {
			if (slots_[i].key == key)
				return &slots_[i].value;
			if (slots_[i].key == 0)
				return nullptr;
		}
	}
	V *find(uint64_t key)
	{
		return const_cast<V *>(std::as_const(*this).find(key));
	}
	// Room for n keys in all without growing.
	void reserve(size_t n)
	{
		if (n * 4 > slots_.size() * 3) {
			size_t want = std::max<size_t>(16, slots_.size());
			while (n * 4 > want * 3)
				want *= 2;
			rehash(want);
		}
	}
	// The value of key, and whether it was put there now (as v).
	std::pair<V *, bool> insert(uint64_t key, const V &v)
	{
		if ((used_ + 1) * 4 > slots_.size() * 3)
			rehash(std::max<size_t>(16, slots_.size() * 2));
		size_t i = index(key);
		for (; slots_[i].key != 0; i = (i + 1) & (slots_.size() - 1))
			if (slots_[i].key == key)
				return {&slots_[i].value, false};
		slots_[i] = {key, v};
		used_++;
		return {&slots_[i].value, true};
	}
	template <typename Fn> void forEach(Fn &&fn)
	{
		for (auto &s : slots_)
			if (s.key != 0)
				fn(s.key, s.value);
	}
	// Removes the entries pred(key, value) holds for: the others are
	// placed anew, in a table sized for them.
	template <typename Pred> void eraseIf(Pred &&pred)
	{
		std::vector<Slot> old = std::move(slots_);
		slots_.clear();
		used_ = 0;
		size_t kept = 0;
		for (auto &s : old)
			kept += s.key != 0 && !pred(s.key, s.value);
		if (kept == 0)
			return;
		reserve(kept);
		for (auto &s : old)
			if (s.key != 0 && !pred(s.key, s.value))
				insert(s.key, s.value);
	}

private:
	struct Slot {
		uint64_t key = 0;
		V value{};
	};
	size_t index(uint64_t key) const
	{
		return static_cast<size_t>(key ^ (key >> 29)) & (slots_.size() - 1);
	}
	void rehash(size_t n)
	{
		std::vector<Slot> old = std::move(slots_);
		slots_.assign(n, Slot());
		used_ = 0;
		for (auto &s : old)
			if (s.key != 0)
				insert(s.key, s.value);
	}
	std::vector<Slot> slots_;
	size_t used_ = 0;
};

// A set of series keys, as KeyMap but half the size: it is filled with a
// whole result's keys, and the fewer cache lines it spans the better.
class KeySet {
public:
	// Emptied, with room for n keys and the memory kept.
	void reset(size_t n)
	{
		size_t want = 16;
		while (want < n * 2)
			want *= 2;
		if (slots_.size() != want)
			slots_.assign(want, 0);
		else
			std::fill(slots_.begin(), slots_.end(), 0);
	}
	bool contains(uint64_t key) const { return slots_[slot(key)] == key; }
	// Never more than n keys.
	void insert(uint64_t key) { slots_[slot(key)] = key; }

private:
	// Where key is, or the empty slot where it goes.
	size_t slot(uint64_t key) const
	{
		size_t mask = slots_.size() - 1;
		size_t i = static_cast<size_t>(key ^ (key >> 29)) & mask;
		while (slots_[i] != key && slots_[i] != 0)
			i = (i + 1) & mask;
		return i;
	}
	std::vector<uint64_t> slots_;
};

} // namespace pme::daemon
