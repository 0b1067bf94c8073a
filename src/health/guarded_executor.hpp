// GuardedExecutor: an Asio executor that runs every function it is given
// inside try/catch and reports what escaped to a fault callback instead of
// letting it unwind out of io_context::run().
//
// Each health check gets its own guarded executor over the shared ops loop;
// the check's probe creates its timers, sockets and descriptors on it, so the
// completion handlers of its asynchronous operations (and whatever it posts)
// all run through execute() below. An exception in one probe then becomes a
// fault of that check alone (the manager marks it failing and restarts the
// probe) instead of stopping the loop that serves every check and the control
// socket.
//
// Properties (blocking, outstanding_work, relationship, allocator, context)
// are forwarded to the inner executor and the result is wrapped again, so
// the executor is usable wherever asio::any_io_executor is.
#pragma once

#include <boost/asio/execution.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/require.hpp>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

namespace beacon::health::detail {

// Called on the loop's thread, from inside the failed handler's frame, with
// the exception's text. It must not throw.
using FaultFn = std::function<void(const std::string& what)>;

template <class Inner>
class GuardedExecutor {
  // Declared first: the trailing return types below name inner_.
  Inner inner_;
  std::shared_ptr<const FaultFn> fault_;

 public:
  GuardedExecutor(Inner inner, std::shared_ptr<const FaultFn> fault) noexcept
      : inner_(std::move(inner)), fault_(std::move(fault)) {}

  template <class Property>
  auto query(const Property& p) const noexcept(noexcept(boost::asio::query(inner_, p)))
      -> decltype(boost::asio::query(inner_, p)) {
    return boost::asio::query(inner_, p);
  }

  template <class Property>
  auto require(const Property& p) const
      -> GuardedExecutor<std::decay_t<decltype(boost::asio::require(inner_, p))>> {
    return {boost::asio::require(inner_, p), fault_};
  }

  template <class Property>
  auto prefer(const Property& p) const
      -> GuardedExecutor<std::decay_t<decltype(boost::asio::prefer(inner_, p))>> {
    return {boost::asio::prefer(inner_, p), fault_};
  }

  template <class F>
  void execute(F&& f) const {
    boost::asio::execution::execute(inner_, [f = std::forward<F>(f), fault = fault_]() mutable {
      try {
        std::move(f)();
      } catch (const std::exception& e) {
        report(*fault, e.what());
      } catch (...) {
        report(*fault, "unknown exception");
      }
    });
  }

  friend bool operator==(const GuardedExecutor& a, const GuardedExecutor& b) noexcept {
    return a.inner_ == b.inner_ && a.fault_ == b.fault_;
  }
  friend bool operator!=(const GuardedExecutor& a, const GuardedExecutor& b) noexcept {
    return !(a == b);
  }

 private:
  template <class>
  friend class GuardedExecutor;

  static void report(const FaultFn& fault, const char* what) noexcept {
    try {
      if (fault) fault(what);
    } catch (...) {  // a fault handler that throws has nowhere left to go
    }
  }
};

inline GuardedExecutor<boost::asio::io_context::executor_type> make_guarded_executor(
    boost::asio::io_context& io, FaultFn fault) {
  return {io.get_executor(), std::make_shared<const FaultFn>(std::move(fault))};
}

}  // namespace beacon::health::detail
