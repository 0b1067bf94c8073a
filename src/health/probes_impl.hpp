// Constructors of the concrete probes; make_probe() (probe_factory.cpp)
// dispatches on CheckSpec::type. Private to src/health.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <utility>

#include "beacon/config/config.hpp"
#include "beacon/health/probe.hpp"

namespace beacon::health {

namespace detail {

enum class ProbeKind { Polled, Event };

// The one facade of every probe: owns the implementation (a shared object,
// so its asynchronous handlers can hold it), forwards the Probe calls to it
// and cancels it on destruction. Impl has run() and cancel(), and watch()
// when Kind is Event.
template <class Impl, ProbeKind Kind>
class ProbeFacade final : public Probe {
 public:
  template <class... Args>
  explicit ProbeFacade(Args&&... args)
      : impl_(std::make_shared<Impl>(std::forward<Args>(args)...)) {}
  ~ProbeFacade() override { impl_->cancel(); }

  void run(ResultFn done) override { impl_->run(std::move(done)); }
  bool event_driven() const override { return Kind == ProbeKind::Event; }
  void watch([[maybe_unused]] ResultFn on_change) override {
    if constexpr (Kind == ProbeKind::Event) impl_->watch(std::move(on_change));
  }
  void cancel() override { impl_->cancel(); }

 private:
  std::shared_ptr<Impl> impl_;
};

template <class Impl>
using PolledProbe = ProbeFacade<Impl, ProbeKind::Polled>;
template <class Impl>
using EventProbe = ProbeFacade<Impl, ProbeKind::Event>;

}  // namespace detail

// polled: haproxy_http.cpp, haproxy_socket.cpp, exec_probe.cpp
std::unique_ptr<Probe> make_haproxy_http_probe(const boost::asio::any_io_executor& io,
                                               const config::CheckSpec& spec);
std::unique_ptr<Probe> make_haproxy_socket_probe(const boost::asio::any_io_executor& io,
                                                 const config::CheckSpec& spec);
std::unique_ptr<Probe> make_exec_probe(const boost::asio::any_io_executor& io,
                                       const config::CheckSpec& spec);
// event-driven: haproxy_process.cpp, interface_probe.cpp, file_probe.cpp
std::unique_ptr<Probe> make_haproxy_process_probe(const boost::asio::any_io_executor& io,
                                                  const config::CheckSpec& spec);
std::unique_ptr<Probe> make_interface_probe(const boost::asio::any_io_executor& io,
                                            const config::CheckSpec& spec);
std::unique_ptr<Probe> make_file_probe(const boost::asio::any_io_executor& io,
                                       const config::CheckSpec& spec);

// The same on an io_context's own executor (tests, tools).
inline std::unique_ptr<Probe> make_haproxy_http_probe(boost::asio::io_context& io,
                                                      const config::CheckSpec& spec) {
  return make_haproxy_http_probe(io.get_executor(), spec);
}
inline std::unique_ptr<Probe> make_haproxy_socket_probe(boost::asio::io_context& io,
                                                        const config::CheckSpec& spec) {
  return make_haproxy_socket_probe(io.get_executor(), spec);
}
inline std::unique_ptr<Probe> make_exec_probe(boost::asio::io_context& io,
                                              const config::CheckSpec& spec) {
  return make_exec_probe(io.get_executor(), spec);
}
inline std::unique_ptr<Probe> make_haproxy_process_probe(boost::asio::io_context& io,
                                                         const config::CheckSpec& spec) {
  return make_haproxy_process_probe(io.get_executor(), spec);
}
inline std::unique_ptr<Probe> make_interface_probe(boost::asio::io_context& io,
                                                   const config::CheckSpec& spec) {
  return make_interface_probe(io.get_executor(), spec);
}
inline std::unique_ptr<Probe> make_file_probe(boost::asio::io_context& io,
                                              const config::CheckSpec& spec) {
  return make_file_probe(io.get_executor(), spec);
}

}  // namespace beacon::health
