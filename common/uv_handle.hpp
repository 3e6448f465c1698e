// SPDX-License-Identifier: ISC
// libuv handles that do not move and outlive uv_close (STYLE §14).
#pragma once

#include <uv.h>

namespace pme::common {

// A handle of type H in its own heap node, large enough for any handle
// type, with data set to the owner.  Release it only with closeHandle().
template <typename H>
H *newHandle(void *owner)
{
	auto *node = new uv_any_handle{};
	H *h = reinterpret_cast<H *>(node);
	h->data = owner;
	return h;
}

// Close a handle made by newHandle(); its node is freed by the close
// callback, so the loop never sees freed memory.  Safe to call twice.
template <typename H>
void closeHandle(H *&h)
{
	if (h == nullptr)
		return;
	auto *base = reinterpret_cast<uv_handle_t *>(h);
	base->data = nullptr;
	if (!uv_is_closing(base))
		uv_close(base, [](uv_handle_t *x) noexcept {
			delete reinterpret_cast<uv_any_handle *>(x);
		});
	h = nullptr;
}

} // namespace pme::common
