// SPDX-License-Identifier: ISC
// UvHandle<T>: a libuv handle in a heap node that lives until its close callback (STYLE §14).
#pragma once

#include <uv.h>

#include <utility>

namespace pme::common {

// libuv handles must not move and must stay allocated until uv_close()'s
// callback has run, which is after their owner may be gone.  The owner holds
// a UvHandle; the node itself is freed by the close callback.  Callbacks
// reach the owner through handle->data, which is cleared when the owner
// lets go of the handle.
template <typename T>
class UvHandle {
public:
	UvHandle() : h_(new T{}) {}
	~UvHandle() { close(); }
	UvHandle(const UvHandle &) = delete;
	UvHandle &operator=(const UvHandle &) = delete;

	T *get() const { return h_; }
	uv_handle_t *handle() const { return reinterpret_cast<uv_handle_t *>(h_); }
	explicit operator bool() const { return h_ != nullptr; }
	bool isInitialized() const { return init_; }

	// uv_*_init() succeeded (or uv_spawn() was called, which initializes
	// the handle even when it fails): from now on only uv_close() frees it.
	void initialized() { init_ = true; }

	// Close the handle (once); the node is freed when libuv is done with it.
	void close() noexcept
	{
		T *h = std::exchange(h_, nullptr);
		if (h == nullptr)
			return;
		if (!init_) {
			delete h;
			return;
		}
		h->data = nullptr;
		if (!uv_is_closing(reinterpret_cast<uv_handle_t *>(h)))
			uv_close(reinterpret_cast<uv_handle_t *>(h), freeNode);
	}

	// Give the node up without closing it: whoever gets it must close it
	// with freeNode as the callback.
	T *release() noexcept
	{
		init_ = false;
		return std::exchange(h_, nullptr);
	}

	static void freeNode(uv_handle_t *h) noexcept { delete reinterpret_cast<T *>(h); }

private:
	T *h_;
	bool init_ = false;
};

} // namespace pme::worker
