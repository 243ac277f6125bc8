#include "miglet/common/duration.h"

#include <gtest/gtest.h>

namespace miglet {
namespace {

TEST(DurationTest, ParsesUnitsAndBareSeconds) {
  EXPECT_EQ(*ParseDuration("15s"), std::chrono::seconds(15));
  EXPECT_EQ(*ParseDuration("500ms"), std::chrono::milliseconds(500));
  EXPECT_EQ(*ParseDuration("1m30s"), std::chrono::seconds(90));
  EXPECT_EQ(*ParseDuration("10"), std::chrono::seconds(10));
  EXPECT_EQ(*ParseDuration(" 2.5 "), std::chrono::milliseconds(2500));
}

TEST(DurationTest, RejectsGarbageWithAHint) {
  auto d = ParseDuration("fast");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(std::string(d.status().message()).find("15s"), std::string::npos);
  EXPECT_FALSE(ParseDuration("").ok());
  EXPECT_FALSE(ParseDuration("-3s").ok());
  EXPECT_FALSE(ParseDuration("-3").ok());
  EXPECT_FALSE(ParseDuration("inf").ok());
  // Found by fuzz/controller_config_fuzz.cc: 9.2e21 seconds overflowed the conversion to
  // nanoseconds (undefined behaviour); anything past 100 years is refused, in both forms.
  EXPECT_FALSE(ParseDuration("9223372036854775807302").ok());
  EXPECT_FALSE(ParseDuration("1e300").ok());
  EXPECT_FALSE(ParseDuration("2562048h").ok());
  EXPECT_FALSE(ParseDuration("876001h").ok());
  EXPECT_EQ(*ParseDuration("876000h"), std::chrono::hours(876000));
  EXPECT_EQ(*ParseDuration("3153600000"), std::chrono::hours(876000));
}

}  // namespace
}  // namespace miglet
