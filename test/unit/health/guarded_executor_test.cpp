// GuardedExecutor: whatever a handler run through it throws is reported to
// the fault callback and never unwinds out of io_context::run(), for posted
// functions and for completion handlers of I/O objects created on it.
#include "../../../src/health/guarded_executor.hpp"

#include <gtest/gtest.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace beacon::health::detail {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

TEST(GuardedExecutor, PostedAndCompletionHandlerExceptionsBecomeFaults) {
  asio::io_context io;
  std::vector<std::string> faults;
  asio::any_io_executor ex =
      make_guarded_executor(io, [&](const std::string& what) { faults.push_back(what); });

  int ran_after = 0;
  asio::post(ex, [] { throw std::runtime_error("posted"); });
  asio::steady_timer timer(ex, 1ms);
  timer.async_wait([](boost::system::error_code) { throw std::logic_error("timer"); });
  asio::post(ex, [] { throw 42; });  // not even a std::exception
  // Plain handlers on the same loop keep running afterwards.
  asio::steady_timer later(io, 20ms);
  later.async_wait([&](boost::system::error_code) { ++ran_after; });

  ASSERT_NO_THROW(io.run_for(2s));
  ASSERT_EQ(faults.size(), 3u);
  EXPECT_EQ(faults[0], "posted");
  EXPECT_EQ(faults[1], "unknown exception");
  EXPECT_EQ(faults[2], "timer");
  EXPECT_EQ(ran_after, 1);
}

TEST(GuardedExecutor, NormalHandlersRunUnchanged) {
  asio::io_context io;
  int faults = 0, ran = 0;
  asio::any_io_executor ex = make_guarded_executor(io, [&](const std::string&) { ++faults; });
  for (int i = 0; i < 10; ++i) asio::post(ex, [&] { ++ran; });
  asio::steady_timer timer(ex, 1ms);
  timer.async_wait([&](boost::system::error_code ec) { ran += ec ? 0 : 100; });
  io.run_for(1s);
  EXPECT_EQ(ran, 110);
  EXPECT_EQ(faults, 0);
}

TEST(GuardedExecutor, AFaultCallbackThatThrowsIsContainedToo) {
  asio::io_context io;
  asio::any_io_executor ex =
      make_guarded_executor(io, [](const std::string&) { throw std::runtime_error("again"); });
  asio::post(ex, [] { throw std::runtime_error("first"); });
  EXPECT_NO_THROW(io.run_for(500ms));
}

}  // namespace
}  // namespace beacon::health::detail
