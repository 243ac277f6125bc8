#pragma once

#include <climits>
#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"

namespace miglet::kube {

// Fields of JSON from the wire, read without trusting their types: nlohmann's value() and
// get() throw on a type mismatch (an exception that would end the informer's thread, and so
// the controller) and convert out-of-range numbers with undefined behaviour.

// `j[key]` when `j` is an object and that is a string, else "".
inline std::string StringField(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return "";
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// `j[key]` when `j` is an object and that is a whole number that fits an int, else `fallback`.
inline int IntField(const nlohmann::json& j, const char* key, int fallback) {
  if (!j.is_object()) return fallback;
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return fallback;
  if (it->is_number_unsigned()) {
    const auto u = it->get<uint64_t>();
    return u <= static_cast<uint64_t>(INT_MAX) ? static_cast<int>(u) : fallback;
  }
  const auto v = it->get<int64_t>();
  return v >= INT_MIN && v <= INT_MAX ? static_cast<int>(v) : fallback;
}

}  // namespace miglet::kube
