#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "miglet/common/backoff.h"
#include "miglet/common/clock.h"
#include "miglet/operator/kube/kube_client.h"

namespace miglet::kube {

// Called from the informer's own thread, in the order the cache changed. Handlers must not
// block for long: they enqueue keys for workers.
struct ResourceEventHandler {
  std::function<void(const Json& obj)> on_add;
  std::function<void(const Json& old_obj, const Json& new_obj)> on_update;
  std::function<void(const Json& obj)> on_delete;  // the last state the cache knew
};

struct InformerOptions {
  Resource resource;
  std::string ns;  // "" = all namespaces
  std::string label_selector;
  std::string field_selector;
  int64_t page_size = 500;
  // Applied to every object before it is cached and handed to handlers (client-go's
  // TransformFunc): drop what no reader needs, e.g. StripManagedFields.
  std::function<void(Json&)> transform;
  // Each watch asks the server to end it after a random time in [min, max] (client-go: 5-10
  // min), so no connection lives forever behind a load balancer that forgot it.
  int min_watch_timeout_seconds = 300;
  int max_watch_timeout_seconds = 600;
  // Between failed list/watch attempts.
  BackoffPolicy backoff{std::chrono::milliseconds(800), std::chrono::seconds(30), 2.0, 0.1,
                        std::chrono::seconds(60)};
  // What the backoff waits on; null: the real clock.
  std::shared_ptr<Clock> clock;
};

struct InformerStats {
  int64_t lists = 0;           // full lists (the first one included)
  int64_t watches = 0;         // watch requests opened
  int64_t expired = 0;         // 410 Gone answers that forced a re-list
  int64_t watch_failures = 0;  // watches that ended in an error (connection, 5xx)
  int64_t bookmarks = 0;
};

// A cache of one resource kept current by list + watch (client-go's SharedInformer).
class Informer {
 public:
  virtual ~Informer() = default;
  // Before Start().
  virtual void AddEventHandler(ResourceEventHandler handler) = 0;
  virtual void Start() = 0;
  // Ends the watch and joins the informer's thread.
  virtual void Stop() = 0;
  // True once the first full list is in the cache and its handlers have run.
  virtual bool HasSynced() const = 0;
  // Waits (on the informer's clock) for HasSynced(); false on timeout or when stopped first.
  virtual bool WaitForSync(Duration timeout) = 0;

  virtual std::optional<Json> Get(const std::string& key) const = 0;  // ObjectKey()
  virtual std::vector<Json> List() const = 0;
  virtual std::vector<std::string> ListKeys() const = 0;
  // The resourceVersion the cache reflects (the last list, event or bookmark).
  virtual std::string LastResourceVersion() const = 0;
  virtual InformerStats Stats() const = 0;
};

// Removes metadata.managedFields, which the apiserver keeps for server-side apply and which is
// often the largest part of a small object (controller-runtime's TransformStripManagedFields).
void StripManagedFields(Json& obj);

std::unique_ptr<Informer> MakeInformer(std::shared_ptr<KubeClient> client, InformerOptions options);

}  // namespace miglet::kube
