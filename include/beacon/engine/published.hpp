// The one hand-off of immutable data between threads: a producer (the
// engine loop, the ops loop) builds a whole new object and publishes it;
// any reader takes the latest without waiting on the producer. The lock is
// held only to copy or swap the pointer, never while building or reading the
// object, so a slow reader cannot delay the producer and vice versa; the old
// object is freed by whoever drops the last reference, outside the lock.
#pragma once

#include <memory>
#include <mutex>
#include <utility>

namespace beacon::engine {

template <class T>
class Published {
 public:
  // Any thread. Replaces the published object.
  void publish(std::shared_ptr<const T> next) {
    std::shared_ptr<const T> old;
    {
      std::lock_guard lk(mu_);
      old = std::exchange(current_, std::move(next));
    }
    // `old` is released here, outside the lock.
  }
  // Any thread; never waits for the producer. Null until the first publish().
  std::shared_ptr<const T> get() const {
    std::lock_guard lk(mu_);
    return current_;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const T> current_;
};

}  // namespace beacon::engine
