#pragma once

namespace miglet {

// Process-wide settings for a server under load. Debian builds abseil without NDEBUG, so every
// absl::Mutex that gRPC takes also runs abseil's deadlock detection (a lock-order graph): in a
// profile of mig-controller at 5,000 streams that alone was the top symbol (~13% of its CPU).
// Call once at the start of main.
void TuneRuntimeForServing();

}  // namespace miglet
