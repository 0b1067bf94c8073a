// Shared scaffolding for the event-driven probe tests (file, haproxy-process,
// interface): the io_context runs on its own thread (Loop), and results are
// recorded with their arrival time (Recorder) so a test can wait, bounded,
// for the n-th one. Every wait is bounded.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "beacon/health/probe.hpp"

namespace beacon::test {

// io_context on a thread; sync() runs a function on it and waits (5 s bound).
class Loop {
 public:
  Loop() : guard_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~Loop() {
    guard_.reset();
    io_.stop();
    thread_.join();
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  boost::asio::io_context& io() { return io_; }
  void sync(std::function<void()> fn) {
    std::promise<void> done;
    boost::asio::post(io_, [&] {
      fn();
      done.set_value();
    });
    ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
};

// One probe result and when it arrived.
struct Event {
  health::Result result;
  std::chrono::steady_clock::time_point at;
};

// Thread-safe sink for a probe's results (fn() is the callback to hand over).
class Recorder {
 public:
  health::ResultFn fn() {
    return [this](health::Result r) {
      std::lock_guard lk(m_);
      events_.push_back({std::move(r), std::chrono::steady_clock::now()});
      cv_.notify_all();
    };
  }
  std::size_t size() {
    std::lock_guard lk(m_);
    return events_.size();
  }
  // Waits for event number `index` (0-based); nullopt after `timeout`.
  std::optional<Event> wait(std::size_t index,
                            std::chrono::steady_clock::duration timeout = std::chrono::seconds(3)) {
    std::unique_lock lk(m_);
    if (!cv_.wait_for(lk, timeout, [&] { return events_.size() > index; })) return std::nullopt;
    return events_[index];
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<Event> events_;
};

inline double ms_since(std::chrono::steady_clock::time_point t0,
                       std::chrono::steady_clock::time_point t1) {
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

}  // namespace beacon::test
