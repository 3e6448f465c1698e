// SPDX-License-Identifier: ISC
// The keys of a series (64-bit hashes of its labels, seeded per process)
// and the hash tables the store keeps by them.
#pragma once

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string_view>
#include <utility>
#include <vector>

#include "common/config.hpp"
#include "common/metric.hpp"

namespace pme::daemon {

// The seed of every hash of this process, drawn once: series come from
// workers that are not trusted, and a known hash lets one compute labels
// that collide with another service's series.  The store never takes a
// hash for the series (it compares the text when keys are equal), so a
// collision costs a comparison, not data; the seed keeps them rare.  Once
// per process and not per store, so that counter state keyed by it goes on
// through a reload.  getrandom() without blocking: pmed may start before
// the kernel's pool is ready, and the clock and addresses are still
// unknown to a worker.
inline uint64_t drawSeed()
{
	uint64_t seed = 0;
	if (::getrandom(&seed, sizeof seed, GRND_NONBLOCK) == sizeof seed)
		return seed;
	timespec ts{};
	::clock_gettime(CLOCK_MONOTONIC, &ts);
	return (static_cast<uint64_t>(ts.tv_nsec) * 0x9e3779b97f4a7c15ULL) ^
	    (static_cast<uint64_t>(ts.tv_sec) << 32) ^ static_cast<uint64_t>(::getpid()) ^
	    reinterpret_cast<uintptr_t>(&seed);
}
inline const uint64_t hashSeed = drawSeed();

// For unit tests only, which set it to force collisions (0: every series
// of a family has the same key): ANDed into every key seriesKeys() makes.
// Production code never writes it.
inline uint64_t seriesKeyMask = ~0ULL;

// MurmurHash64A (Austin Appleby, public domain), seeded with hashSeed:
// fast on short keys, and a change anywhere in the key changes every bit
// of the hash.  MurmurHash2 and 3 have collisions that hold whatever the
// seed (Aumasson and Bernstein, 2012), and 64A is built like them: the
// seed is a hurdle, the comparison of texts is what keeps series apart.
inline uint64_t hash64(std::string_view data)
{
	constexpr uint64_t m = 0xc6a4a7935bd1e995ULL;
	constexpr int r = 47;
	uint64_t h = hashSeed ^ (data.size() * m);
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

// Keys of a series within its family, and of the histogram or summary
// series it belongs to (its _bucket, _sum and _count samples share every
// label but le): hashes and not text, as a key is kept for every series.
// A label's hash mixes those of its name and its value; a set of labels
// hashes to the sum of its labels' hashes, whatever their order (a worker
// may send them in any order and it is still the same series), and a
// series to that mixed with the hash of its suffix.  A key is where to
// look, not an identity: the store compares the series' text whenever
// keys are equal (metric_store.cpp), and keeps both when they differ.
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
	uint64_t series = mix(suffixHash, sum) & seriesKeyMask;
	uint64_t set = mix(0, sum - le) & seriesKeyMask;
	return {series == 0 ? 1 : series, set == 0 ? 1 : set}; // 0: an empty slot
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

// The series kept so far of a result, by key, in one array with linear
// probing as KeyMap: it is filled with a whole result's keys, and a
// lookup is one cache miss.  Keys need not be unique: series whose keys
// are equal but whose texts differ are all kept, each with its index,
// and the caller tells them apart.
class KeySet {
public:
	// Emptied, with room for n keys and the memory kept.
	void reset(size_t n)
	{
		size_t want = 16;
		while (want < n * 2)
			want *= 2;
		if (slots_.size() != want)
			slots_.assign(want, Slot());
		else
			std::fill(slots_.begin(), slots_.end(), Slot());
	}
	// Whether same(index) holds for an entry of key; counts the entries
	// of key it does not hold for in *others.
	template <typename Same> bool find(uint64_t key, Same &&same, size_t *others) const
	{
		size_t mask = slots_.size() - 1;
		*others = 0;
		for (size_t i = start(key); slots_[i].key != 0; i = (i + 1) & mask) {
			if (slots_[i].key != key)
				continue;
			if (same(slots_[i].index))
				return true;
			++*others;
		}
		return false;
	}
	// Never more than n entries.
	void insert(uint64_t key, uint32_t index)
	{
		size_t mask = slots_.size() - 1;
		size_t i = start(key);
		while (slots_[i].key != 0)
			i = (i + 1) & mask;
		slots_[i] = {key, index};
	}

private:
	struct Slot {
		uint64_t key = 0;
		uint32_t index = 0;
	};
	size_t start(uint64_t key) const
	{
		return static_cast<size_t>(key ^ (key >> 29)) & (slots_.size() - 1);
	}
	std::vector<Slot> slots_;
};

} // namespace pme::daemon
