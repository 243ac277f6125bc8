#include "miglet/common/logging.h"

#include "absl/strings/ascii.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_color_sinks.h"

namespace miglet {

namespace {

// %v with JSON string escaping, so a log line is always one valid JSON object.
class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (char c : msg.payload) {
      switch (c) {
        case '"':
          dest.append(std::string_view("\\\""));
          break;
        case '\\':
          dest.append(std::string_view("\\\\"));
          break;
        case '\n':
          dest.append(std::string_view("\\n"));
          break;
        case '\r':
          dest.append(std::string_view("\\r"));
          break;
        case '\t':
          dest.append(std::string_view("\\t"));
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            snprintf(buf, sizeof(buf), "\\u%04x", c);
            dest.append(std::string_view(buf));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(std::string_view s) {
  const std::string t = absl::AsciiStrToLower(std::string(s));
  if (t == "text") return LogFormat::kText;
  if (t == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError("unknown log format \"" + std::string(s) +
                                    "\" (want json or text)");
}

absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(std::string_view s) {
  const std::string t = absl::AsciiStrToLower(std::string(s));
  if (t == "trace") return spdlog::level::trace;
  if (t == "debug") return spdlog::level::debug;
  if (t == "info") return spdlog::level::info;
  if (t == "warn" || t == "warning") return spdlog::level::warn;
  if (t == "error") return spdlog::level::err;
  if (t == "critical") return spdlog::level::critical;
  if (t == "off") return spdlog::level::off;
  return absl::InvalidArgumentError("unknown log level \"" + std::string(s) +
                                    "\" (want trace, debug, info, warn or error)");
}

namespace {
void ApplyFormat(spdlog::logger& logger, LogFormat format) {
  if (format == LogFormat::kJson) {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    f->add_flag<JsonEscapedMessage>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","logger":"%n","msg":"%*"})");
    logger.set_formatter(std::move(f));
  } else {
    logger.set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %n: %v");
  }
}
}  // namespace

void SetLogFormat(LogFormat format) { ApplyFormat(*spdlog::default_logger(), format); }

void InitLogging(std::string_view name, LogFormat format, spdlog::level::level_enum level) {
  spdlog::drop(std::string(name));
  auto logger = spdlog::stderr_color_mt(std::string(name));
  ApplyFormat(*logger, format);
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

absl::Status SetLogLevel(std::string_view level) {
  auto l = ParseLogLevel(level);
  if (!l.ok()) return l.status();
  spdlog::set_level(*l);
  return absl::OkStatus();
}

}  // namespace miglet
