#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "miglet/common/clock.h"

namespace miglet {

// A YAML file flattened to dotted keys ("controller.retry.max_backoff"), each remembering the
// line it came from so errors can point at it.
class ConfigFile {
 public:
  struct Entry {
    std::string value;               // scalars
    std::vector<std::string> items;  // sequences of scalars
    bool is_list = false;
    int line = 0;  // 1-based; 0 when not from a file
  };

  static absl::StatusOr<ConfigFile> Load(const std::string& path);
  static absl::StatusOr<ConfigFile> Parse(std::string_view text, std::string name);

  const Entry* Find(const std::string& key) const;
  const std::map<std::string, Entry>& entries() const { return entries_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::map<std::string, Entry> entries_;
};

// Binds known keys to typed fields. Precedence: environment (PREFIX + KEY upper-cased with
// '.' -> '_'), then the file, then the field's existing value (the default). Collects the
// first error with where it came from ("miglet.yaml:12: heartbeat.interval: ..."), and
// unknown keys in the file are errors too, so a typo never passes silently.
class ConfigBinder {
 public:
  ConfigBinder(const ConfigFile* file, std::string env_prefix);

  ConfigBinder& String(const std::string& key, std::string* out);
  ConfigBinder& Int(const std::string& key, int64_t* out, int64_t min, int64_t max);
  ConfigBinder& Bool(const std::string& key, bool* out);
  ConfigBinder& Dur(const std::string& key, Duration* out);
  ConfigBinder& List(const std::string& key, std::vector<std::string>* out);
  // Keys accepted but without meaning here: `key`, or every key under it when it ends in '.'
  // ("storage.mongodb."). Each one the file has is listed by ignored(), never an error.
  ConfigBinder& Ignore(const std::string& key_or_prefix);

  // OK, or the first error (bad value or unknown key).
  absl::Status Finish();

  // Where a key's value came from, for error messages of cross-field checks.
  std::string Where(const std::string& key) const;

  // Every bound key and where its value came from (file:line, environment variable, default).
  const std::map<std::string, std::string>& sources() const { return known_; }
  // The ignored keys the file has, as "key (file:line)", sorted by key.
  const std::vector<std::string>& ignored() const { return ignored_; }

  static std::string EnvName(const std::string& prefix, const std::string& key);

 private:
  // Returns the raw value and where it came from, or nullopt when unset.
  bool Lookup(const std::string& key, std::string* value, std::string* where,
              const ConfigFile::Entry** entry);
  void Fail(const std::string& where, const std::string& key, const std::string& what);

  const ConfigFile* file_;
  std::string prefix_;
  std::map<std::string, std::string> known_;  // key -> where it came from
  std::vector<std::string> ignored_;
  std::vector<std::string> ignore_;  // keys and prefixes
  absl::Status status_;
};

}  // namespace miglet
