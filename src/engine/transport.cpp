// UDP transport: listeners drained with recvmmsg, per-session send sockets.
// See transport_impl.hpp for the design notes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <liburing.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/posix/descriptor_base.hpp>
#include <cerrno>
#include <cstring>
#include <utility>

#include "beacon/core/wire.hpp"
#include "beacon/engine/engine.hpp"
#include "beacon/util/errno_text.hpp"
#include "transport_impl.hpp"

namespace beacon::engine::detail {

namespace {

constexpr int kMaxBatchesPerWake = 8;  // then yield to timers and other sockets
// After a stall everything queued is read before timers are served: a whole
// receive buffer's worth (8 MiB of ~1 KiB datagrams) at most.
constexpr int kMaxBatchesAfterStall = 256;

using util::errno_text;

std::string endpoint_text(const asio::ip::address& a, std::uint16_t port) {
  if (a.is_v6()) return "[" + a.to_string() + "]:" + std::to_string(port);
  return a.to_string() + ":" + std::to_string(port);
}

bool set_int(int fd, int level, int opt, int value) {
  return ::setsockopt(fd, level, opt, &value, sizeof(value)) == 0;
}

// Fills a sockaddr for `a`:`port`; v6 link-local gets `scope` when a has none.
socklen_t make_sockaddr(const asio::ip::address& a, std::uint16_t port, unsigned scope,
                        sockaddr_storage& out) {
  std::memset(&out, 0, sizeof(out));
  if (a.is_v4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    auto bytes = a.to_v4().to_bytes();
    std::memcpy(&sin->sin_addr, bytes.data(), bytes.size());
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  auto v6 = a.to_v6();
  auto bytes = v6.to_bytes();
  std::memcpy(&sin6->sin6_addr, bytes.data(), bytes.size());
  if (v6.is_link_local()) {
    sin6->sin6_scope_id = v6.scope_id() != 0 ? static_cast<std::uint32_t>(v6.scope_id()) : scope;
  }
  return sizeof(sockaddr_in6);
}

asio::ip::address from_in4(const in_addr& a) {
  asio::ip::address_v4::bytes_type b;
  std::memcpy(b.data(), &a, b.size());
  return asio::ip::address_v4(b);
}

asio::ip::address from_in6(const in6_addr& a) {
  asio::ip::address_v6::bytes_type b;
  std::memcpy(b.data(), &a, b.size());
  return asio::ip::address_v6(b);
}

}  // namespace

// ---------------------------------------------------------------- helpers

// ---------------------------------------------------------------- RxBatch

RxBatch::RxBatch() : slots_(kBatch), msgs_(kBatch), iovs_(kBatch) {}

int RxBatch::receive(int fd) {
  // Reset the in/out fields the kernel overwrote last time; no allocation.
  for (std::size_t i = 0; i < kBatch; ++i) {
    iovs_[i].iov_base = slots_[i].data.data();
    iovs_[i].iov_len = kBufferSize;
    msghdr& h = msgs_[i].msg_hdr;
    h.msg_name = &slots_[i].from;
    h.msg_namelen = sizeof(sockaddr_storage);
    h.msg_iov = &iovs_[i];
    h.msg_iovlen = 1;
    h.msg_control = slots_[i].cmsg.data();
    h.msg_controllen = kCmsgSize;
    h.msg_flags = 0;
    msgs_[i].msg_len = 0;
  }
  int n = ::recvmmsg(fd, msgs_.data(), kBatch, MSG_DONTWAIT, nullptr);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
  return n;
}

std::span<const std::uint8_t> RxBatch::payload(std::size_t i) const {
  std::size_t len = std::min<std::size_t>(msgs_[i].msg_len, kBufferSize);
  return {slots_[i].data.data(), len};
}

void RxBatch::info(std::size_t i, bool multihop, RxInfo& out) const {
  const msghdr& h = msgs_[i].msg_hdr;
  out = RxInfo{};
  out.multihop = multihop;
  const auto& from = slots_[i].from;
  if (from.ss_family == AF_INET) {
    const auto& sin = reinterpret_cast<const sockaddr_in&>(from);
    out.src = from_in4(sin.sin_addr);
    out.src_port = ntohs(sin.sin_port);
  } else if (from.ss_family == AF_INET6) {
    const auto& sin6 = reinterpret_cast<const sockaddr_in6&>(from);
    out.src = from_in6(sin6.sin6_addr);
    out.src_port = ntohs(sin6.sin6_port);
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(const_cast<msghdr*>(&h)); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
        c->cmsg_len >= CMSG_LEN(sizeof(in_pktinfo))) {
      in_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
      out.dst = from_in4(pi.ipi_addr);
      out.ifindex = static_cast<unsigned>(pi.ipi_ifindex);
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL &&
               c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int ttl;
      std::memcpy(&ttl, CMSG_DATA(c), sizeof(ttl));
      out.ttl = ttl;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
               c->cmsg_len >= CMSG_LEN(sizeof(in6_pktinfo))) {
      in6_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
      out.dst = from_in6(pi.ipi6_addr);
      out.ifindex = pi.ipi6_ifindex;
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL &&
               c->cmsg_len >= CMSG_LEN(sizeof(std::uint32_t))) {
      std::uint32_t dropped;
      std::memcpy(&dropped, CMSG_DATA(c), sizeof(dropped));
      out.kernel_drops = dropped;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT &&
               c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int hl;
      std::memcpy(&hl, CMSG_DATA(c), sizeof(hl));
      out.ttl = hl;
    }
  }
}

// ---------------------------------------------------------------- Listener

Listener::Listener(asio::io_context& io, bool v6, bool multihop, std::uint16_t port)
    : desc_(io), v6_(v6), multihop_(multihop), port_(port) {}

Listener::~Listener() {
  close();
}

std::string Listener::where() const {
  return "UDP " + std::string(v6_ ? "[::]" : "0.0.0.0") + ":" + std::to_string(port_);
}

bool Listener::open() {
  int fd = ::socket(v6_ ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    if (v6_ && e == EAFNOSUPPORT) return false;
    throw StartupError("cannot open " + where() + ": " + errno_text(e));
  }
  bool ok = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1) && set_int(fd, SOL_SOCKET, SO_RXQ_OVFL, 1);
  // A large receive queue: SO_RCVBUFFORCE (CAP_NET_ADMIN) ignores
  // net.core.rmem_max; without the capability SO_RCVBUF gets what rmem_max
  // allows. Either way the size in force is reported (bfdctl stats).
  if (!set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, kListenerRcvBuf)) {
    (void)set_int(fd, SOL_SOCKET, SO_RCVBUF, kListenerRcvBuf);
  }
  {
    int size = 0;
    socklen_t len = sizeof size;
    if (::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, &len) == 0) stats_.rcvbuf = size;
  }
  if (v6_) {
    ok = ok && set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) &&
         set_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1) &&
         set_int(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1);
  } else {
    ok = ok && set_int(fd, IPPROTO_IP, IP_PKTINFO, 1) && set_int(fd, IPPROTO_IP, IP_RECVTTL, 1);
  }
  if (!ok) {
    int e = errno;
    ::close(fd);
    throw StartupError("cannot set socket options on " + where() + ": " + errno_text(e));
  }
  sockaddr_storage sa;
  socklen_t len = make_sockaddr(v6_ ? asio::ip::address(asio::ip::address_v6::any())
                                    : asio::ip::address(asio::ip::address_v4::any()),
                                port_, 0, sa);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    int e = errno;
    ::close(fd);
    if (v6_ && e == EADDRNOTAVAIL) return false;  // IPv6 disabled on this host
    throw StartupError("cannot bind " + where() + ": " + errno_text(e));
  }
  desc_.assign(fd);
  return true;
}

void Listener::start(RxBatch& batch, RxHandler* handler, std::function<void()> done) {
  batch_ = &batch;
  handler_ = handler;
  done_ = std::move(done);
  wait();
}

void Listener::poll() {
  if (desc_.is_open() && handler_ != nullptr) drain(kMaxBatchesAfterStall);
}

void Listener::close() {
  boost::system::error_code ec;
  if (desc_.is_open()) desc_.close(ec);
}

void Listener::wait() {
  if (!desc_.is_open()) return;
  desc_.async_wait(asio::posix::descriptor_base::wait_read,
                   [this](const boost::system::error_code& ec) {
                     if (ec) return;  // operation_aborted: closing
                     drain(kMaxBatchesPerWake);
                     if (done_) done_();
                     wait();
                   });
}

void Listener::drain(int max_batches) {
  for (int round = 0; round < max_batches; ++round) {
    int n = batch_->receive(desc_.native_handle());
    if (n < 0) {
      if (errno != EINTR) ++stats_.rx_errors;
      return;
    }
    RxInfo info;
    for (int i = 0; i < n; ++i) {
      batch_->info(static_cast<std::size_t>(i), multihop_, info);
      if (info.kernel_drops >= 0) {
        stats_.kernel_drops =
            std::max(stats_.kernel_drops, static_cast<std::uint64_t>(info.kernel_drops));
      }
      (*handler_)(batch_->payload(static_cast<std::size_t>(i)), info);
    }
    if (static_cast<std::size_t>(n) < RxBatch::kBatch) return;
  }
}

// ---------------------------------------------------------------- SendSocket

SendSocket::~SendSocket() {
  if (fd_ >= 0) ::close(fd_);
}

SendSocket::SendSocket(SendSocket&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      connected_(std::exchange(o.connected_, false)),
      dest_(o.dest_),
      dest_len_(o.dest_len_) {}

SendSocket& SendSocket::operator=(SendSocket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    connected_ = std::exchange(o.connected_, false);
    dest_ = o.dest_;
    dest_len_ = o.dest_len_;
  }
  return *this;
}

std::optional<SendSocket> SendSocket::open(const SendSpec& spec, SendOpenError& err) {
  const bool v6 = spec.peer.is_v6();
  auto fail = [&](int e, std::string what) {
    err.errnum = e;
    err.message = std::move(what) + ": " + errno_text(e);
    return std::nullopt;
  };
  if (spec.local && spec.local->is_v6() != v6) {
    err.errnum = EINVAL;
    err.message = "local address " + spec.local->to_string() +
                  " is not of the same address family as the peer";
    return std::nullopt;
  }
  SendSocket s;
  s.fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s.fd_ < 0) {
    const int e = errno;
    return fail(e, "cannot open UDP socket");
  }
  int fd = s.fd_;
  bool ok;
  if (v6) {
    ok = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) &&
         set_int(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, kSendTtl) &&
         set_int(fd, IPPROTO_IPV6, IPV6_TCLASS, kDscpCs6Tos);
  } else {
    ok = set_int(fd, IPPROTO_IP, IP_TTL, kSendTtl) && set_int(fd, IPPROTO_IP, IP_TOS, kDscpCs6Tos);
  }
  if (!ok) {
    const int e = errno;
    return fail(e, "cannot set TTL/DSCP on UDP socket");
  }
  if (!spec.interface.empty()) {
    // SH-11: leave only through the protected link, whatever the routes say.
    if (::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, spec.interface.data(),
                     static_cast<socklen_t>(spec.interface.size())) != 0) {
      const int e = errno;
      return fail(e, "cannot bind to interface \"" + spec.interface + "\"");
    }
  } else if (spec.ifindex != 0) {
    int idx = static_cast<int>(spec.ifindex);
    if (::setsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &idx, sizeof(idx)) != 0) {
      const int e = errno;
      return fail(e, "cannot bind to interface index " + std::to_string(spec.ifindex));
    }
  }
  asio::ip::address local = spec.local ? *spec.local
                            : v6       ? asio::ip::address(asio::ip::address_v6::any())
                                       : asio::ip::address(asio::ip::address_v4::any());
  sockaddr_storage sa;
  socklen_t len = make_sockaddr(local, spec.source_port, spec.ifindex, sa);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
    const int e = errno;
    return fail(e, "cannot bind UDP " + endpoint_text(without_scope(local), spec.source_port));
  }
  std::uint16_t dport = spec.dest_port != 0 ? spec.dest_port
                        : spec.multihop     ? std::uint16_t{4784}
                                            : std::uint16_t{3784};
  // SH-15: a link-local peer means nothing without the interface as scope.
  s.dest_len_ = make_sockaddr(spec.peer, dport, spec.ifindex, s.dest_);
  if (v6 && spec.peer.to_v6().is_link_local() &&
      reinterpret_cast<sockaddr_in6&>(s.dest_).sin6_scope_id == 0) {
    err.errnum = EINVAL;
    err.message = "link-local peer " + spec.peer.to_string() + " needs an interface";
    return std::nullopt;
  }
  // No route yet (link down at boot, say) is no error: the socket sends
  // unconnected and connects once a route exists.
  s.try_connect();
  return std::optional<SendSocket>(std::move(s));
}

bool SendSocket::try_connect() {
  connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&dest_), dest_len_) == 0;
  return connected_;
}

bool SendSocket::deferred_error(int err) const {
  // A connected UDP socket reports an ICMP error for an earlier packet on
  // the next send, which then does not go out (ECONNREFUSED: the peer's
  // port was closed; the unreachables: a router said so). One retry sends
  // it; a second failure is this packet's own.
  return connected_ &&
         (err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN);
}

void SendSocket::lost_route(int err) {
  // The source address the socket was connected with is gone (renumbered
  // interface): drop the connection; the next send picks a new route.
  if (!connected_ || (err != EADDRNOTAVAIL && err != EINVAL)) return;
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  (void)::connect(fd_, &unspec, sizeof unspec);
  connected_ = false;
}

bool SendSocket::send(std::span<const std::uint8_t> bytes) {
  if (fd_ < 0) return false;
  if (!connected_) try_connect();
  for (int attempt = 0; attempt < 2; ++attempt) {
    const ssize_t n = connected_
                          ? ::send(fd_, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL)
                          : ::sendto(fd_, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                                     reinterpret_cast<const sockaddr*>(&dest_), dest_len_);
    if (n == static_cast<ssize_t>(bytes.size())) return true;
    const int e = errno;
    if (attempt == 0 && deferred_error(e)) continue;
    lost_route(e);
    return false;
  }
  return false;
}

}  // namespace beacon::engine::detail

namespace beacon::engine::detail {

// ---------------------------------------------------------------- SocketTransport

// One io_uring and the copies of the packets it has been handed. A slot is
// busy from send() until its completion is reaped; sends normally complete
// inside the submitting system call (the sockets are non-blocking), so every
// slot is free again after flush().
struct SocketTransport::Ring {
  static constexpr unsigned kEntries = 256;
  static constexpr unsigned kFlushAt = 16;
  struct Slot {
    std::array<std::uint8_t, core::wire::kMaxPacketLength> data;
    std::uint32_t len = 0;
    Path path = 0;
    int fd = -1;
  };
  io_uring ring{};
  std::array<Slot, kEntries> slots{};
  std::vector<unsigned> free_slots;
  unsigned queued = 0;
  bool ready = false;  // io_uring_queue_init succeeded

  ~Ring() {
    if (ready) io_uring_queue_exit(&ring);
  }
};

SocketTransport::SocketTransport() = default;
SocketTransport::~SocketTransport() = default;

std::string SocketTransport::set_mode(const std::string& mode) {
  ring_.reset();
  if (mode == "send") return {};
  auto r = std::make_unique<Ring>();
  io_uring_params p{};
  // Fewer interruptions of the loop: completions are posted when it next
  // enters the kernel (5.19+; older kernels refuse the flag). Not
  // SINGLE_ISSUER: the ring is set up before the engine thread that uses it.
  p.flags = IORING_SETUP_COOP_TASKRUN;
  int rc = io_uring_queue_init_params(Ring::kEntries, &r->ring, &p);
  if (rc == -EINVAL) {
    p = io_uring_params{};
    rc = io_uring_queue_init_params(Ring::kEntries, &r->ring, &p);
  }
  if (rc < 0) return "io_uring_setup: " + errno_text(-rc);
  r->ready = true;
  for (unsigned i = Ring::kEntries; i-- > 0;) r->free_slots.push_back(i);
  ring_ = std::move(r);
  return {};
}

bool SocketTransport::batched() const {
  return ring_ != nullptr;
}

core::Duration SocketTransport::batch_delay() const {
  // 16 packets at up to ~6 us of kernel work each on these machines (the
  // peer's receive path included on a veth), with room.
  return ring_ ? core::Duration{150} : core::Duration{0};
}

std::optional<Transport::Path> SocketTransport::open_path(const PathSpec& spec,
                                                          PathOpenError& err) {
  auto sock = SendSocket::open(spec, err);
  if (!sock) return std::nullopt;
  Path p;
  if (!free_.empty()) {
    p = free_.back();
    free_.pop_back();
    sockets_[p] = std::move(*sock);
  } else {
    p = static_cast<Path>(sockets_.size());
    sockets_.push_back(std::move(*sock));
  }
  return p;
}

void SocketTransport::close_path(Path p) {
  if (p >= sockets_.size() || !sockets_[p].is_open()) return;
  sockets_[p] = SendSocket();
  free_.push_back(p);
}

bool SocketTransport::send(Path p, std::span<const std::uint8_t> bytes) {
  if (p >= sockets_.size() || !sockets_[p].is_open()) return false;
  SendSocket& s = sockets_[p];
  if (ring_ && s.connected() && bytes.size() <= core::wire::kMaxPacketLength) {
    if (ring_->free_slots.empty()) flush();
    io_uring_sqe* sqe = ring_->free_slots.empty() ? nullptr : io_uring_get_sqe(&ring_->ring);
    if (sqe != nullptr) {
      const unsigned i = ring_->free_slots.back();
      ring_->free_slots.pop_back();
      Ring::Slot& slot = ring_->slots[i];
      std::memcpy(slot.data.data(), bytes.data(), bytes.size());
      slot.len = static_cast<std::uint32_t>(bytes.size());
      slot.path = p;
      slot.fd = s.fd();
      io_uring_prep_send(sqe, s.fd(), slot.data.data(), slot.len, MSG_DONTWAIT | MSG_NOSIGNAL);
      io_uring_sqe_set_data64(sqe, i);
      // Submitted in small batches: a packet must not wait long behind the
      // others. Its successor is scheduled from the time it was handed
      // over, and a wait longer than the timer slot would put the next gap
      // below 75 % of the interval (RFC 5880 §6.8.7). 16 packets take about
      // as long to send as one slot; the system calls still fall 16-fold.
      if (++ring_->queued >= Ring::kFlushAt) flush();
      return true;
    }
  }
  ++syscalls_;
  return s.send(bytes);
}

std::size_t SocketTransport::flush() {
  if (!ring_) return 0;
  if (ring_->queued != 0) {
    ++syscalls_;
    const int rc = io_uring_submit(&ring_->ring);
    // A failed submit leaves the entries queued: the next flush retries, and
    // their slots stay busy until then.
    if (rc >= 0) ring_->queued = 0;
  }
  return reap();
}

std::size_t SocketTransport::reap() {
  std::size_t failed = 0;
  std::array<io_uring_cqe*, Ring::kEntries> cqes;
  for (;;) {
    const unsigned n = io_uring_peek_batch_cqe(&ring_->ring, cqes.data(), Ring::kEntries);
    if (n == 0) break;
    for (unsigned k = 0; k < n; ++k) {
      const auto i = static_cast<unsigned>(io_uring_cqe_get_data64(cqes[k]));
      const int res = cqes[k]->res;
      if (i >= Ring::kEntries) continue;
      Ring::Slot& slot = ring_->slots[i];
      if (res != static_cast<int>(slot.len)) {
        // The path may have been closed (and its index reused) meanwhile.
        SendSocket* s = slot.path < sockets_.size() && sockets_[slot.path].fd() == slot.fd
                            ? &sockets_[slot.path]
                            : nullptr;
        const int err = res < 0 ? -res : EMSGSIZE;
        bool ok = false;
        if (s != nullptr && s->deferred_error(err)) {
          ++syscalls_;
          ok = s->send(std::span<const std::uint8_t>(slot.data.data(), slot.len));
        } else if (s != nullptr) {
          s->lost_route(err);
        }
        failed += ok ? 0 : 1;
      }
      ring_->free_slots.push_back(i);
    }
    io_uring_cq_advance(&ring_->ring, n);
  }
  return failed;
}

unsigned SocketTransport::interface_index(const std::string& name) const {
  return detail::interface_index(name);
}

std::string SocketTransport::interface_name(unsigned ifindex) const {
  return detail::interface_name(ifindex);
}

}  // namespace beacon::engine::detail
