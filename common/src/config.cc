#include "miglet/common/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "miglet/common/duration.h"

namespace miglet {

namespace {

absl::Status Flatten(const YAML::Node& node, const std::string& prefix, const std::string& name,
                     std::map<std::string, ConfigFile::Entry>* out) {
  const int line = node.Mark().line + 1;
  const std::string where = name + ":" + std::to_string(line);
  switch (node.Type()) {
    case YAML::NodeType::Map:
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return absl::InvalidArgumentError(where + ": keys must be plain strings");
        }
        const std::string key =
            prefix.empty() ? kv.first.Scalar() : prefix + "." + kv.first.Scalar();
        if (out->count(key)) {
          return absl::InvalidArgumentError(name + ":" + std::to_string(kv.first.Mark().line + 1) +
                                            ": " + key + ": duplicate key");
        }
        auto st = Flatten(kv.second, key, name, out);
        if (!st.ok()) return st;
      }
      return absl::OkStatus();
    case YAML::NodeType::Sequence: {
      ConfigFile::Entry e;
      e.is_list = true;
      e.line = line;
      for (const auto& item : node) {
        if (!item.IsScalar()) {
          return absl::InvalidArgumentError(where + ": " + prefix +
                                            ": list items must be plain values");
        }
        e.items.push_back(item.Scalar());
      }
      (*out)[prefix] = std::move(e);
      return absl::OkStatus();
    }
    case YAML::NodeType::Scalar:
      (*out)[prefix] = ConfigFile::Entry{node.Scalar(), {}, false, line};
      return absl::OkStatus();
    case YAML::NodeType::Null:
      if (!prefix.empty()) (*out)[prefix] = ConfigFile::Entry{"", {}, false, line};
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError(where + ": " + prefix + ": unsupported value");
  }
}

}  // namespace

absl::StatusOr<ConfigFile> ConfigFile::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

absl::StatusOr<ConfigFile> ConfigFile::Parse(std::string_view text, std::string name) {
  ConfigFile f;
  f.name_ = std::move(name);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(f.name_ + ":" + std::to_string(e.mark.line + 1) +
                                      ": invalid YAML: " + e.msg);
  }
  if (root.IsNull()) return f;
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(f.name_ + ":" + std::to_string(root.Mark().line + 1) +
                                      ": the top level must be a mapping of keys");
  }
  auto st = Flatten(root, "", f.name_, &f.entries_);
  if (!st.ok()) return st;
  return f;
}

const ConfigFile::Entry* ConfigFile::Find(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

ConfigBinder::ConfigBinder(const ConfigFile* file, std::string env_prefix)
    : file_(file), prefix_(std::move(env_prefix)) {}

std::string ConfigBinder::EnvName(const std::string& prefix, const std::string& key) {
  std::string n = prefix + key;
  for (char& c : n) c = c == '.' ? '_' : absl::ascii_toupper(c);
  return n;
}

bool ConfigBinder::Lookup(const std::string& key, std::string* value, std::string* where,
                          const ConfigFile::Entry** entry) {
  *entry = nullptr;
  if (!prefix_.empty()) {
    const std::string env = EnvName(prefix_, key);
    if (const char* v = std::getenv(env.c_str())) {
      *value = v;
      *where = "environment variable " + env;
      known_[key] = *where;
      return true;
    }
  }
  if (file_ != nullptr) {
    if (const auto* e = file_->Find(key)) {
      *entry = e;
      *value = e->value;
      *where = file_->name() + ":" + std::to_string(e->line);
      known_[key] = *where;
      return true;
    }
  }
  known_[key] = "default";
  return false;
}

void ConfigBinder::Fail(const std::string& where, const std::string& key, const std::string& what) {
  if (status_.ok()) status_ = absl::InvalidArgumentError(where + ": " + key + ": " + what);
}

ConfigBinder& ConfigBinder::String(const std::string& key, std::string* out) {
  std::string v, where;
  const ConfigFile::Entry* e;
  if (!Lookup(key, &v, &where, &e)) return *this;
  if (e != nullptr && e->is_list) {
    Fail(where, key, "expected a single value, got a list");
    return *this;
  }
  *out = v;
  return *this;
}

ConfigBinder& ConfigBinder::Int(const std::string& key, int64_t* out, int64_t min, int64_t max) {
  std::string v, where;
  const ConfigFile::Entry* e;
  if (!Lookup(key, &v, &where, &e)) return *this;
  int64_t n;
  if (!absl::SimpleAtoi(v, &n)) {
    Fail(where, key, "\"" + v + "\" is not a whole number");
  } else if (n < min || n > max) {
    Fail(where, key,
         std::to_string(n) + " is out of range [" + std::to_string(min) + ", " +
             std::to_string(max) + "]");
  } else {
    *out = n;
  }
  return *this;
}

ConfigBinder& ConfigBinder::Bool(const std::string& key, bool* out) {
  std::string v, where;
  const ConfigFile::Entry* e;
  if (!Lookup(key, &v, &where, &e)) return *this;
  const std::string t = absl::AsciiStrToLower(v);
  if (t == "true" || t == "yes" || t == "on" || t == "1") {
    *out = true;
  } else if (t == "false" || t == "no" || t == "off" || t == "0") {
    *out = false;
  } else {
    Fail(where, key, "\"" + v + "\" is not true or false");
  }
  return *this;
}

ConfigBinder& ConfigBinder::Dur(const std::string& key, Duration* out) {
  std::string v, where;
  const ConfigFile::Entry* e;
  if (!Lookup(key, &v, &where, &e)) return *this;
  auto d = ParseDuration(v);
  if (!d.ok()) {
    Fail(where, key, std::string(d.status().message()));
  } else {
    *out = *d;
  }
  return *this;
}

ConfigBinder& ConfigBinder::List(const std::string& key, std::vector<std::string>* out) {
  std::string v, where;
  const ConfigFile::Entry* e;
  if (!Lookup(key, &v, &where, &e)) return *this;
  if (e != nullptr && e->is_list) {
    *out = e->items;
  } else {
    out->clear();
    for (auto part : absl::StrSplit(v, ',', absl::SkipWhitespace())) {
      out->emplace_back(std::string(absl::StripAsciiWhitespace(part)));
    }
  }
  return *this;
}

ConfigBinder& ConfigBinder::Ignore(const std::string& key_or_prefix) {
  ignore_.push_back(key_or_prefix);
  return *this;
}

absl::Status ConfigBinder::Finish() {
  if (!status_.ok()) return status_;
  if (file_ != nullptr) {
    for (const auto& [key, e] : file_->entries()) {
      if (known_.count(key)) continue;
      const bool ignored = std::any_of(ignore_.begin(), ignore_.end(), [&](const std::string& i) {
        return key == i || (!i.empty() && i.back() == '.' && key.rfind(i, 0) == 0);
      });
      if (ignored) {
        ignored_.push_back(key + " (" + file_->name() + ":" + std::to_string(e.line) + ")");
        continue;
      }
      return absl::InvalidArgumentError(file_->name() + ":" + std::to_string(e.line) + ": " + key +
                                        ": unknown key");
    }
  }
  return absl::OkStatus();
}

std::string ConfigBinder::Where(const std::string& key) const {
  auto it = known_.find(key);
  return it == known_.end() ? "default" : it->second;
}

}  // namespace miglet
