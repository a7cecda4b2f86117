// Hooks that tell ThreadSanitizer and AddressSanitizer about the emulator's fibers; no-ops in
// builds without them.
//
// ThreadSanitizer: every thread slot is a TSan fiber, and switches carry no happens-before
// (no_sync), so two emulated threads are concurrent unless a barrier orders them; barriers
// release and acquire explicit sync objects. The emulator's own bookkeeping, which all fibers
// touch, runs inside ignore regions. AddressSanitizer: every switch announces the stack it goes
// to, so that exceptions and reports see the right stack.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

namespace simt::detail::san {

#if defined(__SANITIZE_THREAD__)
inline void* current_fiber() { return __tsan_get_current_fiber(); }
inline void* create_fiber() { return __tsan_create_fiber(0); }
inline void destroy_fiber(void* fiber) { __tsan_destroy_fiber(fiber); }
inline void switch_to_fiber(void* fiber) {
  __tsan_switch_to_fiber(fiber, __tsan_switch_to_fiber_no_sync);
}
inline void acquire(void* address) { __tsan_acquire(address); }
inline void release(void* address) { __tsan_release(address); }
inline void ignore_begin() { __tsan_ignore_thread_begin(); }
inline void ignore_end() { __tsan_ignore_thread_end(); }
#else
inline void* current_fiber() { return nullptr; }
inline void* create_fiber() { return nullptr; }
inline void destroy_fiber(void*) {}
inline void switch_to_fiber(void*) {}
inline void acquire(void*) {}
inline void release(void*) {}
inline void ignore_begin() {}
inline void ignore_end() {}
#endif

#if defined(__SANITIZE_ADDRESS__)
inline void start_switch(void** fake_stack_save, const void* bottom, std::size_t size) {
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
}
inline void finish_switch(void* fake_stack_save, const void** old_bottom, std::size_t* old_size) {
  __sanitizer_finish_switch_fiber(fake_stack_save, old_bottom, old_size);
}
#else
inline void start_switch(void**, const void*, std::size_t) {}
inline void finish_switch(void*, const void**, std::size_t*) {}
#endif

// Emulator bookkeeping that every fiber touches; invisible to ThreadSanitizer.
class IgnoreScope {
 public:
  IgnoreScope() { ignore_begin(); }
  ~IgnoreScope() { ignore_end(); }
  IgnoreScope(const IgnoreScope&) = delete;
  IgnoreScope& operator=(const IgnoreScope&) = delete;
};

inline constexpr bool kSanitized =
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    true;
#else
    false;
#endif

}  // namespace simt::detail::san
