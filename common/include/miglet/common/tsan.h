#pragma once

// Happens-before annotations for ThreadSanitizer (`make tsan` defines MIGLET_TSAN), for a
// hand-off that really is ordered but through a library TSan cannot see into: Debian's gRPC is
// not built with TSan, so when it hands an object from the thread that made it to the thread
// that calls it back, the ordering (gRPC's own locks) is invisible and TSan reports the first
// access as a race. MIGLET_TSAN_RELEASE(p) on the first thread once the object is set up and
// MIGLET_TSAN_ACQUIRE(p) at the start of the callback state exactly that edge, and nothing more.
// Elsewhere both are no-ops.
#if defined(MIGLET_TSAN)
#include <sanitizer/tsan_interface.h>
#define MIGLET_TSAN_RELEASE(p) __tsan_release(static_cast<void*>(p))
#define MIGLET_TSAN_ACQUIRE(p) __tsan_acquire(static_cast<void*>(p))
#else
#define MIGLET_TSAN_RELEASE(p) static_cast<void>(p)
#define MIGLET_TSAN_ACQUIRE(p) static_cast<void>(p)
#endif
