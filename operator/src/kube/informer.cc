#include "miglet/operator/kube/informer.h"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "miglet/operator/kube/errors.h"
#include "spdlog/spdlog.h"
#include "watch_parser.h"

namespace miglet::kube {

namespace {

class InformerImpl final : public Informer {
 public:
  InformerImpl(std::shared_ptr<KubeClient> client, InformerOptions o)
      : client_(std::move(client)),
        o_(std::move(o)),
        clock_(o_.clock ? o_.clock : MakeRealClock()),
        backoff_(o_.backoff),
        rng_(std::random_device{}()) {}
  ~InformerImpl() override { Stop(); }

  void AddEventHandler(ResourceEventHandler h) override { handlers_.push_back(std::move(h)); }

  void Start() override {
    if (thread_.joinable()) return;
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() override {
    {
      std::lock_guard l(mu_);
      if (stopped_) return;
      stopped_ = true;
      cv_.notify_all();
    }
    {
      std::lock_guard l(watch_mu_);
      if (watch_) watch_->Cancel();
    }
    if (thread_.joinable()) thread_.join();
  }

  bool HasSynced() const override {
    std::lock_guard l(mu_);
    return synced_;
  }

  bool WaitForSync(Duration timeout) override {
    std::unique_lock l(mu_);
    return clock_->WaitFor(l, cv_, timeout, [this] { return synced_ || stopped_; }) && synced_;
  }

  std::optional<Json> Get(const std::string& key) const override {
    std::lock_guard l(mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) return std::nullopt;
    return it->second;
  }

  std::vector<Json> List() const override {
    std::lock_guard l(mu_);
    std::vector<Json> out;
    out.reserve(cache_.size());
    for (const auto& [k, v] : cache_) out.push_back(v);
    return out;
  }

  std::vector<std::string> ListKeys() const override {
    std::lock_guard l(mu_);
    std::vector<std::string> out;
    out.reserve(cache_.size());
    for (const auto& [k, v] : cache_) out.push_back(k);
    return out;
  }

  std::string LastResourceVersion() const override {
    std::lock_guard l(mu_);
    return rv_;
  }

  InformerStats Stats() const override {
    std::lock_guard l(mu_);
    return stats_;
  }

 private:
  bool Stopping() {
    std::lock_guard l(mu_);
    return stopped_;
  }

  // Waits out a backoff delay; false when stopped meanwhile.
  bool Pause(Duration d) {
    std::unique_lock l(mu_);
    return !clock_->WaitFor(l, cv_, d, [this] { return stopped_; });
  }

  void Run() {
    bool need_list = true;
    while (!Stopping()) {
      if (need_list) {
        absl::Status s = ListAndReplace();
        if (!s.ok()) {
          const Duration d = backoff_.Next();
          spdlog::warn("informer {}: {}; retrying in {:.1f}s", o_.resource.resource, s.ToString(),
                       ToSeconds(d));
          if (!Pause(d)) return;
          continue;
        }
        need_list = false;
      }
      const MonoTime started = clock_->Now();
      absl::Status s = WatchOnce();
      if (Stopping()) return;
      if (s.ok()) continue;  // the server ended the watch (timeoutSeconds): watch again
      if (IsGone(s)) {
        // Our resourceVersion is older than what the server still has: re-list from scratch.
        spdlog::info("informer {}: {}; re-listing", o_.resource.resource, std::string(s.message()));
        {
          std::lock_guard l(mu_);
          ++stats_.expired;
        }
        need_list = true;
        continue;
      }
      {
        std::lock_guard l(mu_);
        ++stats_.watch_failures;
      }
      const Duration d = backoff_.NextAfterStream(clock_->Now() - started);
      spdlog::warn("informer {}: {}; re-watching in {:.1f}s", o_.resource.resource, s.ToString(),
                   ToSeconds(d));
      if (!Pause(d)) return;
    }
  }

  absl::Status ListAndReplace() {
    ListOptions lo;
    lo.label_selector = o_.label_selector;
    lo.field_selector = o_.field_selector;
    lo.limit = o_.page_size;
    lo.resource_version = "";  // a consistent read: never older than what we had
    auto res = client_->ListAll(o_.resource, o_.ns, lo);
    if (!res.ok() && IsGone(res.status())) {
      // The continue token expired between pages: take it in one piece instead.
      lo.limit = 0;
      res = client_->ListAll(o_.resource, o_.ns, lo);
    }
    if (!res.ok()) return res.status();
    Replace(std::move(res->items), res->resource_version);
    backoff_.Reset();
    return absl::OkStatus();
  }

  void Replace(std::vector<Json> items, const std::string& rv) {
    std::map<std::string, Json> fresh;
    for (auto& item : items) {
      if (o_.transform) o_.transform(item);
      std::string key = ObjectKey(item);
      fresh.emplace(std::move(key), std::move(item));
    }
    std::vector<Json> added, deleted;
    std::vector<std::pair<Json, Json>> updated;
    {
      std::lock_guard l(mu_);
      for (const auto& [k, v] : cache_) {
        if (!fresh.count(k)) deleted.push_back(v);
      }
      for (const auto& [k, v] : fresh) {
        auto it = cache_.find(k);
        if (it == cache_.end()) {
          added.push_back(v);
        } else if (ResourceVersionOf(it->second) != ResourceVersionOf(v)) {
          updated.emplace_back(it->second, v);
        }
      }
      cache_ = std::move(fresh);
      rv_ = rv;
      ++stats_.lists;
    }
    for (const auto& h : handlers_) {
      for (const auto& o : deleted) {
        if (h.on_delete) h.on_delete(o);
      }
      for (const auto& o : added) {
        if (h.on_add) h.on_add(o);
      }
      for (const auto& [a, b] : updated) {
        if (h.on_update) h.on_update(a, b);
      }
    }
    std::lock_guard l(mu_);
    if (!synced_) {
      synced_ = true;
      cv_.notify_all();
    }
  }

  absl::Status WatchOnce() {
    WatchOptions wo;
    wo.label_selector = o_.label_selector;
    wo.field_selector = o_.field_selector;
    wo.allow_bookmarks = true;
    wo.timeout_seconds = std::uniform_int_distribution<int>(o_.min_watch_timeout_seconds,
                                                            o_.max_watch_timeout_seconds)(rng_);
    {
      std::lock_guard l(mu_);
      wo.resource_version = rv_;
      ++stats_.watches;
    }
    auto w = client_->Watch(o_.resource, o_.ns, wo);
    if (!w.ok()) return w.status();
    {
      std::lock_guard l(watch_mu_);
      watch_ = std::move(*w);
      if (Stopping()) watch_->Cancel();
    }
    absl::Status result = absl::OkStatus();
    while (true) {
      auto ev = watch_->Next();
      if (!ev.ok()) {
        result = ev.status();
        break;
      }
      if (!ev->has_value()) break;
      WatchEvent& e = **ev;
      if (e.type == WatchEvent::Type::kError) {
        result = WatchErrorStatus(e, "watch " + o_.resource.resource);
        break;
      }
      Apply(e);
    }
    std::unique_ptr<WatchStream> done;
    {
      std::lock_guard l(watch_mu_);
      done = std::move(watch_);
    }
    done.reset();
    return result;
  }

  void Apply(WatchEvent& e) {
    const std::string rv = ResourceVersionOf(e.object);
    if (e.type == WatchEvent::Type::kBookmark) {
      std::lock_guard l(mu_);
      if (!rv.empty()) rv_ = rv;
      ++stats_.bookmarks;
      return;
    }
    if (o_.transform) o_.transform(e.object);
    const std::string key = ObjectKey(e.object);
    std::optional<Json> old;
    {
      std::lock_guard l(mu_);
      auto it = cache_.find(key);
      if (it != cache_.end()) old = it->second;
      if (e.type == WatchEvent::Type::kDeleted) {
        cache_.erase(key);
      } else {
        cache_[key] = e.object;
      }
      if (!rv.empty()) rv_ = rv;
    }
    for (const auto& h : handlers_) {
      if (e.type == WatchEvent::Type::kDeleted) {
        if (h.on_delete) h.on_delete(old ? *old : e.object);
      } else if (old) {
        if (h.on_update) h.on_update(*old, e.object);
      } else if (h.on_add) {
        h.on_add(e.object);
      }
    }
  }

  std::shared_ptr<KubeClient> client_;
  InformerOptions o_;
  std::shared_ptr<Clock> clock_;
  Backoff backoff_;
  std::mt19937 rng_;
  std::vector<ResourceEventHandler> handlers_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Json> cache_;
  std::string rv_;
  bool synced_ = false;
  bool stopped_ = false;
  InformerStats stats_;

  std::mutex watch_mu_;
  std::unique_ptr<WatchStream> watch_;
};

}  // namespace

void StripManagedFields(Json& obj) {
  if (auto md = obj.find("metadata"); md != obj.end() && md->is_object())
    md->erase("managedFields");
}

std::unique_ptr<Informer> MakeInformer(std::shared_ptr<KubeClient> client,
                                       InformerOptions options) {
  return std::make_unique<InformerImpl>(std::move(client), std::move(options));
}

}  // namespace miglet::kube
