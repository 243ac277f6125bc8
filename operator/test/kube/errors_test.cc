#include <gtest/gtest.h>

#include "miglet/operator/kube/errors.h"

namespace miglet::kube {
namespace {

std::string StatusBody(int code, const std::string& reason, const std::string& msg) {
  return R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":")" + msg +
         R"(","reason":")" + reason + R"(","code":)" + std::to_string(code) + "}";
}

TEST(ErrorsTest, MapsCodesAndKeepsReasonAndMessage) {
  auto nf = StatusFromResponse(404, StatusBody(404, "NotFound", "pods \\\"x\\\" not found"), "",
                               "GET pods default/x");
  EXPECT_EQ(nf.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(kube::IsNotFound(nf));
  EXPECT_NE(nf.message().find("pods \"x\" not found"), std::string::npos) << nf;
  auto e = GetKubeError(nf);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, 404);
  EXPECT_EQ(e->reason, "NotFound");

  auto exists = StatusFromResponse(409, StatusBody(409, "AlreadyExists", "exists"), "", "CREATE");
  EXPECT_EQ(exists.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(kube::IsAlreadyExists(exists));
  EXPECT_FALSE(IsConflict(exists));

  auto conflict = StatusFromResponse(
      409, StatusBody(409, "Conflict", "the object has been modified"), "", "UPDATE");
  EXPECT_EQ(conflict.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(IsConflict(conflict));

  auto gone =
      StatusFromResponse(410, StatusBody(410, "Expired", "too old resource version"), "", "WATCH");
  EXPECT_TRUE(IsGone(gone));
  EXPECT_EQ(GetKubeError(gone)->reason, "Expired");

  auto invalid = StatusFromResponse(
      422, StatusBody(422, "Invalid", "spec.replicas: Invalid value: -1"), "", "CREATE");
  EXPECT_EQ(invalid.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(IsInvalid(invalid));
  EXPECT_EQ(GetKubeError(invalid)->message, "spec.replicas: Invalid value: -1");
}

TEST(ErrorsTest, TooManyRequestsCarriesRetryAfter) {
  auto header = StatusFromResponse(429, "slow down", "7", "LIST");
  EXPECT_EQ(header.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(IsTooManyRequests(header));
  EXPECT_EQ(RetryAfter(header), absl::Seconds(7));
  EXPECT_EQ(GetKubeError(header)->reason, "TooManyRequests");

  auto details = StatusFromResponse(
      429,
      R"({"kind":"Status","reason":"TooManyRequests","code":429,"details":{"retryAfterSeconds":3}})",
      "", "LIST");
  EXPECT_EQ(RetryAfter(details), absl::Seconds(3));
}

TEST(ErrorsTest, NonStatusBodiesAndOtherStatuses) {
  auto s = StatusFromResponse(503, "<html>down</html>", "", "GET");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(GetKubeError(s)->reason, "ServiceUnavailable");
  EXPECT_FALSE(GetKubeError(absl::UnavailableError("x")));
  EXPECT_FALSE(kube::IsNotFound(absl::NotFoundError("not from the API")));
  EXPECT_EQ(StatusFromResponse(401, "", "", "GET").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(StatusFromResponse(403, "", "", "GET").code(), absl::StatusCode::kPermissionDenied);
}

// Found by fuzz/watch_line_fuzz.cc: a body over 512 bytes is cut there for the message, which
// split a UTF-8 character, and the error's JSON payload then threw (nlohmann's dump() refuses
// invalid UTF-8), ending the caller's thread. A proxy's HTML error page in any language would do.
TEST(ErrorsTest, LongBodyCutInsideAUtf8Character) {
  const std::string body = "<html>" + std::string(505, 'x') + "\xc3\xa9</html>";  // é at 511
  absl::Status s = StatusFromResponse(502, body, "", "GET");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(GetKubeError(s));
  EXPECT_EQ(GetKubeError(s)->code, 502);
  EXPECT_EQ(GetKubeError(s)->message.substr(511, 3), "\xef\xbf\xbd");
  s = StatusFromResponse(500, "not utf-8: \xff", "", "GET");
  ASSERT_TRUE(GetKubeError(s));
  EXPECT_EQ(GetKubeError(s)->message, "not utf-8: \xef\xbf\xbd");
}

}  // namespace
}  // namespace miglet::kube
