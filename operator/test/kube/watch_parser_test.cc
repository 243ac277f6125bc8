#include "watch_parser.h"

#include <gtest/gtest.h>

#include "miglet/operator/kube/errors.h"

namespace miglet::kube {
namespace {

TEST(WatchParserTest, EventTypes) {
  auto a = ParseWatchLine(
      R"({"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"p","namespace":"n","resourceVersion":"5"}}})");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->type, WatchEvent::Type::kAdded);
  EXPECT_EQ(ObjectKey(a->object), "n/p");
  EXPECT_EQ(ResourceVersionOf(a->object), "5");

  EXPECT_EQ(ParseWatchLine(R"({"type":"MODIFIED","object":{}})")->type,
            WatchEvent::Type::kModified);
  EXPECT_EQ(ParseWatchLine(R"({"type":"DELETED","object":{}})")->type, WatchEvent::Type::kDeleted);
  auto b = ParseWatchLine(
      R"({"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"99"}}})");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->type, WatchEvent::Type::kBookmark);
  EXPECT_EQ(ResourceVersionOf(b->object), "99");
}

TEST(WatchParserTest, ErrorEventBecomesGone) {
  auto e = ParseWatchLine(
      R"json({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 5 (120)","reason":"Expired","code":410}})json");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->type, WatchEvent::Type::kError);
  absl::Status s = WatchErrorStatus(*e, "watch pods");
  EXPECT_TRUE(IsGone(s));
  EXPECT_NE(s.message().find("too old resource version"), std::string::npos);
}

// Found by fuzz/watch_line_fuzz.cc: a Status whose fields had other types threw out of
// StatusFromResponse (nlohmann's value() throws on a type mismatch), which would end the
// informer's thread and the controller. Such fields now count as unset.
TEST(WatchParserTest, ErrorEventWithFieldsOfOtherTypes) {
  auto e = ParseWatchLine(R"({"type":"ERROR","object":{"kind":410,"reason":"Expired"}})");
  ASSERT_TRUE(e.ok());
  absl::Status s = WatchErrorStatus(*e, "watch pods");
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(IsGone(s));  // not a Status: the code comes from nowhere, 500
  e = ParseWatchLine(
      R"({"type":"ERROR","object":{"kind":"Status","code":"410","reason":7,"message":[],)"
      R"("details":{"retryAfterSeconds":"3"}}})");
  ASSERT_TRUE(e.ok());
  s = WatchErrorStatus(*e, "watch pods");
  EXPECT_FALSE(IsGone(s));
  EXPECT_EQ(RetryAfter(s), absl::ZeroDuration());
  e = ParseWatchLine(R"({"type":"ERROR","object":{"kind":"Status","code":1e30}})");
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(WatchErrorStatus(*e, "watch pods").ok());
  e = ParseWatchLine(R"({"type":"ERROR","object":{"kind":"Status","code":410}})");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(IsGone(WatchErrorStatus(*e, "watch pods")));
}

// Found while writing that fuzz target: the informer's key and resourceVersion of an object
// threw the same way when metadata or its fields had other types.
TEST(WatchParserTest, ObjectKeyOfOddMetadata) {
  auto e = ParseWatchLine(R"({"type":"ADDED","object":{"metadata":{"name":1,"namespace":"n"}}})");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(ObjectKey(e->object), "n/");
  EXPECT_EQ(ResourceVersionOf(e->object), "");
  e = ParseWatchLine(R"({"type":"ADDED","object":{"metadata":"x"}})");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(ObjectKey(e->object), "");
  EXPECT_EQ(ResourceVersionOf(e->object), "");
}

TEST(WatchParserTest, RejectsMalformedLines) {
  EXPECT_FALSE(ParseWatchLine("not json").ok());
  EXPECT_FALSE(ParseWatchLine("[1,2]").ok());
  EXPECT_FALSE(ParseWatchLine(R"({"type":"ADDED"})").ok());
  EXPECT_FALSE(ParseWatchLine(R"({"type":"SOMETHING","object":{}})").ok());
  EXPECT_FALSE(ParseWatchLine(R"({"type":"ADDED","object":{"a":)").ok());  // cut short
}

}  // namespace
}  // namespace miglet::kube
