#include "miglet/common/flags.h"

#include <algorithm>
#include <sstream>

namespace miglet {

FlagSet::FlagSet(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

void FlagSet::String(const std::string& name, const std::string& value_name,
                     const std::string& help, std::function<void(const std::string&)> set) {
  flags_.push_back({name, value_name, help, true, [set](const std::string& v) {
                      set(v);
                      return absl::OkStatus();
                    }});
}

void FlagSet::Value(const std::string& name, const std::string& value_name, const std::string& help,
                    std::function<absl::Status(const std::string&)> set) {
  flags_.push_back({name, value_name, help, true, std::move(set)});
}

void FlagSet::Bool(const std::string& name, const std::string& help, std::function<void()> set) {
  flags_.push_back({name, "", help, false, [set](const std::string&) {
                      set();
                      return absl::OkStatus();
                    }});
}

void FlagSet::OptionalValue(const std::string& name, const std::string& help,
                            std::function<absl::Status(const std::string&)> set) {
  flags_.push_back({name, "", help, false, std::move(set), /*optional_value=*/true});
}

bool FlagSet::Given(const std::string& name) const {
  return std::find(given_.begin(), given_.end(), name) != given_.end();
}

absl::Status FlagSet::Parse(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      help_ = true;
      continue;
    }
    if (arg == "--version") {
      version_ = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError("unexpected argument \"" + arg + "\" (see --help)");
    }
    std::string name = arg.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto it =
        std::find_if(flags_.begin(), flags_.end(), [&](const Flag& f) { return f.name == name; });
    if (it == flags_.end()) {
      return absl::InvalidArgumentError("unknown flag --" + name + " (see --help)");
    }
    if (it->takes_value && !has_value) {
      if (i + 1 >= argc) return absl::InvalidArgumentError("flag --" + name + " needs a value");
      value = argv[++i];
    } else if (!it->takes_value && has_value && !it->optional_value) {
      return absl::InvalidArgumentError("flag --" + name + " takes no value");
    }
    if (auto st = it->set(value); !st.ok()) {
      return absl::InvalidArgumentError("flag --" + name + ": " + std::string(st.message()));
    }
    given_.push_back(name);
  }
  return absl::OkStatus();
}

std::string FlagSet::Usage() const {
  std::ostringstream out;
  out << "Usage: " << program_ << " [flags]\n\n" << summary_ << "\n\nFlags:\n";
  for (const auto& f : flags_) {
    std::string left = "  --" + f.name +
                       (f.takes_value      ? "=" + f.value_name
                        : f.optional_value ? "[=true|false]"
                                           : "");
    out << left;
    if (left.size() < 30) {
      out << std::string(30 - left.size(), ' ');
    } else {
      out << "\n" << std::string(30, ' ');
    }
    out << f.help << "\n";
  }
  out << "  --help                      show this help\n"
      << "  --version                   print the version\n";
  return out.str();
}

}  // namespace miglet
