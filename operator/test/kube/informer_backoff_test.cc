#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "miglet/common/fake_clock.h"
#include "miglet/operator/kube/informer.h"

namespace miglet::kube {
namespace {

using std::chrono::milliseconds;

// An apiserver that cannot be reached for the first `failures` lists, then lists nothing and
// serves a watch that stays open until cancelled. Only List and Watch are used by an informer.
class UnreachableThenEmpty : public KubeClient {
 public:
  explicit UnreachableThenEmpty(int failures) : failures_(failures) {}
  int lists() const {
    std::lock_guard l(mu_);
    return lists_;
  }

  absl::StatusOr<ListResult> List(const Resource&, const std::string&,
                                  const ListOptions&) override {
    std::lock_guard l(mu_);
    if (++lists_ <= failures_) return absl::UnavailableError("connection refused");
    return ListResult{.items = {}, .resource_version = "7", .continue_token = ""};
  }
  absl::StatusOr<std::unique_ptr<WatchStream>> Watch(const Resource&, const std::string&,
                                                     const WatchOptions&) override {
    return std::make_unique<OpenWatch>();
  }
  absl::StatusOr<Json> Get(const Resource&, const std::string&, const std::string&,
                           const std::string&) override {
    return Unused();
  }
  absl::StatusOr<Json> Create(const Resource&, const std::string&, const Json&) override {
    return Unused();
  }
  absl::StatusOr<Json> Update(const Resource&, const std::string&, const Json&,
                              const std::string&) override {
    return Unused();
  }
  absl::StatusOr<Json> Patch(const Resource&, const std::string&, const std::string&, PatchType,
                             const Json&, const std::string&) override {
    return Unused();
  }
  absl::StatusOr<Json> Apply(const Resource&, const std::string&, const Json&, const ApplyOptions&,
                             const std::string&) override {
    return Unused();
  }
  absl::Status Delete(const Resource&, const std::string&, const std::string&,
                      const DeleteOptions&) override {
    return Unused();
  }

 private:
  static absl::Status Unused() { return absl::UnimplementedError("not used by an informer"); }

  class OpenWatch : public WatchStream {
   public:
    absl::StatusOr<std::optional<WatchEvent>> Next() override {
      std::unique_lock l(mu_);
      cv_.wait(l, [&] { return cancelled_; });
      return absl::CancelledError("cancelled");
    }
    void Cancel() override {
      std::lock_guard l(mu_);
      cancelled_ = true;
      cv_.notify_all();
    }

   private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool cancelled_ = false;
  };

  mutable std::mutex mu_;
  const int failures_;
  int lists_ = 0;
};

TEST(InformerBackoffTest, FailedListsAreRetriedAfterEachBackoffStepOfTheClock) {
  auto client = std::make_shared<UnreachableThenEmpty>(4);
  auto clock = std::make_shared<FakeClock>();
  InformerOptions o;
  o.resource = ConfigMaps();
  o.ns = "default";
  o.backoff = BackoffPolicy{.initial = milliseconds(800),
                            .max = std::chrono::seconds(3),
                            .multiplier = 2.0,
                            .jitter = 0.0,
                            .reset_after = std::chrono::seconds(60)};
  o.clock = clock;
  auto inf = MakeInformer(client, o);
  inf->Start();
  const std::vector<Duration> steps = {milliseconds(800), milliseconds(1600), milliseconds(3000),
                                       milliseconds(3000)};
  for (size_t i = 0; i < steps.size(); ++i) {
    ASSERT_TRUE(clock->AwaitWaiterUntil(clock->Now() + steps[i])) << "step " << i;
    EXPECT_EQ(client->lists(), static_cast<int>(i) + 1);
    clock->Advance(steps[i] - milliseconds(1));
    EXPECT_EQ(client->lists(), static_cast<int>(i) + 1) << "listed again before its time";
    clock->Advance(milliseconds(1));
  }
  // The fifth list succeeds: the cache is synced without any real waiting.
  EXPECT_TRUE(inf->WaitForSync(std::chrono::hours(1)));
  EXPECT_EQ(client->lists(), 5);
  EXPECT_EQ(inf->LastResourceVersion(), "7");
  inf->Stop();
}

}  // namespace
}  // namespace miglet::kube
