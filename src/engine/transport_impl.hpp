// UDP transport of the engine loop (RFC 5881 §4-6, RFC 5883 §5). Private to
// src/engine.
//
// Receive side: one socket per (address family, port): 3784 single hop and
// 4784 multihop, v4 and v6 (IPV6_V6ONLY). Each is watched with an Asio
// async_wait(wait_read) and drained with recvmmsg() in batches until EAGAIN,
// into buffers allocated once (no heap allocation per packet). Packet info
// gives the destination address and ingress ifindex (IP_PKTINFO /
// IPV6_RECVPKTINFO); the received TTL / hop limit comes from IP_RECVTTL /
// IPV6_RECVHOPLIMIT.
//
// Send side: one non-blocking UDP socket per session, bound to the session's
// fixed source port (SH-02/03) and local address, TTL/hop limit 255 (SH-06,
// MH-01), DSCP CS6, SO_BINDTODEVICE when an interface is given (SH-11), and
// connected to the peer once a route allows it (a connected socket keeps its
// route: about 15 % less work per packet than sendto). By default each packet
// leaves with its own send(2); with [engine] transmit = "io_uring" packets are
// queued and handed to the kernel 16 per system call (and at the end of each
// loop turn).
// Never blocks; a failed send is counted by the caller.
//
// Thread: engine loop only. Open functions throw StartupError (Listener) or
// return an error text (SendSocket), never crash on bad input.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "beacon/engine/core.hpp"
#include "beacon/util/address_text.hpp"
#include "beacon/util/ifindex.hpp"

namespace beacon::engine::detail {

namespace asio = boost::asio;

using RxInfo = engine::RxInfo;

using RxHandler = std::function<void(std::span<const std::uint8_t>, const RxInfo&)>;

// Preallocated recvmmsg() state shared by every listener (the engine loop is
// single-threaded and handles one batch at a time).
class RxBatch {
 public:
  static constexpr std::size_t kBatch = 32;
  static constexpr std::size_t kBufferSize = 512;  // BFD needs 52; padded packets are cut
  static constexpr std::size_t kCmsgSize = 128;

  RxBatch();
  RxBatch(const RxBatch&) = delete;
  RxBatch& operator=(const RxBatch&) = delete;

  // One recvmmsg() call on `fd`. Returns the number of datagrams (0 when
  // none are queued) or -1 with errno set on another error.
  int receive(int fd);
  std::span<const std::uint8_t> payload(std::size_t i) const;
  // Fills `out` for datagram i. `multihop` is the listener's kind.
  void info(std::size_t i, bool multihop, RxInfo& out) const;

 private:
  struct Slot {
    std::array<std::uint8_t, kBufferSize> data;
    alignas(cmsghdr) std::array<std::uint8_t, kCmsgSize> cmsg;
    sockaddr_storage from;
  };
  std::vector<Slot> slots_;  // sized once
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
};

struct ListenerStats {
  std::uint64_t rx_errors = 0;     // recvmmsg failures other than EAGAIN
  std::uint64_t kernel_drops = 0;  // SO_RXQ_OVFL: dropped by the kernel, receive queue full
  int rcvbuf = 0;                  // SO_RCVBUF in force (bytes, as the kernel reports it)
};

// Receive buffer asked for on each listener: rides out a 20 ms stall of the
// engine at 100,000 packets/s (about 2,000 datagrams; the kernel charges each
// small datagram its skb truesize, ~1 KiB on these machines), with room.
inline constexpr int kListenerRcvBuf = 8 * 1024 * 1024;

// One listening socket. Throws StartupError from open() with the address and
// port at fault ("cannot bind UDP 0.0.0.0:3784: Address already in use").
class Listener {
 public:
  Listener(asio::io_context& io, bool v6, bool multihop, std::uint16_t port);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Returns false (without throwing) only when the address family is not
  // supported by the kernel (IPv6 disabled); throws StartupError otherwise.
  bool open();
  // Watches the socket; each wake-up drains it (bounded) through `handler`,
  // then calls `done` once.
  void start(RxBatch& batch, RxHandler* handler, std::function<void()> done = {});
  // Reads everything queued now (up to a whole receive buffer) without
  // waiting; for a loop that was stalled and wants queued packets counted
  // before any timer is served.
  void poll();
  void close();
  bool is_open() const { return desc_.is_open(); }
  bool v6() const { return v6_; }
  bool multihop() const { return multihop_; }
  std::uint16_t port() const { return port_; }
  const ListenerStats& stats() const { return stats_; }

 private:
  void wait();
  void drain(int max_batches);
  std::string where() const;

  asio::posix::stream_descriptor desc_;
  bool v6_;
  bool multihop_;
  std::uint16_t port_;
  RxBatch* batch_ = nullptr;
  RxHandler* handler_ = nullptr;
  std::function<void()> done_;
  ListenerStats stats_;
};

using SendSpec = PathSpec;
using SendOpenError = PathOpenError;

// A session's send socket: non-blocking, never connected (an ICMP error must
// not swallow the next packet).
class SendSocket {
 public:
  SendSocket() = default;
  ~SendSocket();
  SendSocket(SendSocket&& o) noexcept;
  SendSocket& operator=(SendSocket&& o) noexcept;
  SendSocket(const SendSocket&) = delete;
  SendSocket& operator=(const SendSocket&) = delete;

  // Opens and binds; on failure returns nullopt and fills `err`.
  static std::optional<SendSocket> open(const SendSpec& spec, SendOpenError& err);

  // Non-blocking send to the peer. Returns false on any error (EAGAIN included).
  bool send(std::span<const std::uint8_t> bytes);
  // A connected socket may be handed to a batched send(2) as is; an
  // unconnected one (no route yet) needs send() above.
  bool connected() const { return connected_; }
  // After a batched send failed with `err`: whether it was an earlier
  // packet's ICMP error (reported once, the packet itself not sent: send it
  // again) and whether the socket must drop its connection (the route or
  // source address it was connected with is gone).
  bool deferred_error(int err) const;
  void lost_route(int err);
  int fd() const { return fd_; }
  bool is_open() const { return fd_ >= 0; }

 private:
  bool try_connect();

  int fd_ = -1;
  bool connected_ = false;
  sockaddr_storage dest_{};
  socklen_t dest_len_ = 0;
};

// The per-session sockets behind the core's Transport seam: path i is
// sockets_[i]. Batched (io_uring): send() queues a copy of the packet and
// flush() submits the queue with one system call; a full queue is flushed
// first. Unbatched: each send() is one system call and flush() has nothing
// to do.
class SocketTransport final : public Transport {
 public:
  SocketTransport();
  ~SocketTransport() override;
  SocketTransport(const SocketTransport&) = delete;
  SocketTransport& operator=(const SocketTransport&) = delete;

  // "auto": io_uring if this kernel allows it, else one send(2) per packet;
  // "io_uring": the same, but unavailable is an error; "send": never batch.
  // Returns "" or why io_uring cannot be used (for "auto" the fallback is
  // in force and the text is only worth a log line).
  std::string set_mode(const std::string& mode);
  bool batched() const;
  // Longest a packet waits in a batch before it leaves: a batch is handed to
  // the kernel once it holds this many packets, each a few microseconds of
  // kernel work.
  core::Duration batch_delay() const;
  std::uint64_t tx_syscalls() const { return syscalls_; }

  std::optional<Path> open_path(const PathSpec& spec, PathOpenError& err) override;
  void close_path(Path p) override;
  bool send(Path p, std::span<const std::uint8_t> bytes) override;
  std::size_t flush() override;
  unsigned interface_index(const std::string& name) const override;
  std::string interface_name(unsigned ifindex) const override;

 private:
  struct Ring;  // io_uring state (liburing), absent when not batching
  std::size_t reap();
  std::vector<SendSocket> sockets_;
  std::vector<Path> free_;
  std::unique_ptr<Ring> ring_;
  std::uint64_t syscalls_ = 0;
};

// Helpers shared with the engine.
using util::interface_index;  // 0 when the interface does not exist
using util::interface_name;   // "" if unknown
using util::without_scope;

inline constexpr int kDscpCs6Tos = 0xC0;  // DSCP CS6 (48) << 2
inline constexpr int kSendTtl = 255;      // SH-06, MH-01

}  // namespace beacon::engine::detail
