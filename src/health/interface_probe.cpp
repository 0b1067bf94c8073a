// `interface` check: link state of one named interface from rtnetlink events
// (RTM_NEWLINK / RTM_DELLINK on RTMGRP_LINK), never polling.
//
//  * Start: subscribe to RTMGRP_LINK, then dump all links (RTM_GETLINK
//    NLM_F_DUMP) and pick ours by name; the first verdict is reported when
//    the dump is done. The same dump re-synchronises after ENOBUFS (the
//    kernel dropped events because our socket buffer overflowed).
//  * Matching is by name (IFLA_IFNAME), so an interface deleted and re-created
//    with a new ifindex is picked up again. RTM_DELLINK for the name (or for
//    the ifindex we track) and a rename away both mean "does not exist".
//  * Verdict, in this order:
//      missing                     -> Fail "eth1: interface does not exist"
//      !IFF_UP                     -> Fail "eth1: link down (administratively down)"
//      !IFF_LOWER_UP / carrier 0   -> Fail "eth1: no carrier"
//      operstate up                -> Pass "eth1: up"
//      operstate unknown+IFF_RUNNING -> Pass "eth1: up (operstate unknown)"
//                                     (lo, dummy and some tunnels never
//                                     report operstate up)
//      any other operstate         -> Fail "eth1: link down (operstate dormant)"
//  * The netlink socket lives in the network namespace of the thread that
//    creates it, i.e. the one calling watch()/run() first.
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "event_probe_util.hpp"
#include "probes_impl.hpp"

namespace beacon::health {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

constexpr unsigned kIffLowerUp = 0x10000;  // IFF_LOWER_UP (linux/if.h; clashes with net/if.h)
constexpr auto kRetryInterval = std::chrono::seconds(1);

std::string_view operstate_name(std::uint8_t s) {
  switch (s) {
    case 0:
      return "unknown";
    case 1:
      return "notpresent";
    case 2:
      return "down";
    case 3:
      return "lowerlayerdown";
    case 4:
      return "testing";
    case 5:
      return "dormant";
    case 6:
      return "up";
  }
  return "invalid";
}

struct LinkState {
  bool exists = false;
  int index = 0;
  unsigned flags = 0;
  std::uint8_t operstate = 0;
  std::optional<std::uint8_t> carrier;
};

class LinkWatcher : public std::enable_shared_from_this<LinkWatcher> {
 public:
  LinkWatcher(const boost::asio::any_io_executor& io, const config::CheckSpec& spec)
      : io_(io), ifname_(spec.interface), sock_(io), timer_(io) {}

  void watch(ResultFn on_change) {
    on_change_ = std::move(on_change);
    if (initial_done_) {
      asio::post(io_, [self = shared_from_this()]() {
        if (!self->stopped_) self->emit(true);
      });
    }
    if (!initial_done_) force_next_ = true;
    start();
  }

  void run(ResultFn done) {
    if (initial_done_) {
      asio::post(io_, [self = shared_from_this(), done = std::move(done)]() {
        if (!self->stopped_) done(self->verdict());
      });
      return;
    }
    pending_runs_.push_back(std::move(done));
    start();
  }

  void cancel() {
    stopped_ = true;
    on_change_ = nullptr;
    pending_runs_.clear();
    timer_.cancel();
    error_code ec;
    sock_.close(ec);
  }

 private:
  void start() {
    if (started_ || stopped_) return;
    started_ = true;
    if (ifname_.empty()) {
      fatal_ = "interface check: no interface configured";
      asio::post(io_, [self = shared_from_this()]() { self->finish_initial(); });
      return;
    }
    open_socket();
  }

  void open_socket() {
    const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return socket_failed("netlink socket: " + detail::errno_text(errno));
    int rcvbuf = 1 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);  // best effort
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_LINK;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
      const int err = errno;
      ::close(fd);
      return socket_failed("netlink bind: " + detail::errno_text(err));
    }
    error_code ec;
    sock_.assign(fd, ec);
    if (ec) {
      ::close(fd);
      return socket_failed("netlink: " + ec.message());
    }
    arm_read();
    request_dump();
  }

  // A probe that cannot run fails (never passes) and retries later.
  void socket_failed(std::string why) {
    fatal_ = std::move(why);
    error_code ec;
    sock_.close(ec);
    dumping_ = false;
    asio::post(io_, [self = shared_from_this()]() { self->finish_initial(); });
    timer_.expires_after(kRetryInterval);
    timer_.async_wait([self = shared_from_this()](const error_code& e) {
      if (self->stopped_ || e) return;
      self->open_socket();
    });
  }

  void request_dump() {
    if (dumping_) {
      redump_ = true;  // one dump at a time per socket (else EBUSY)
      return;
    }
    struct {
      nlmsghdr nh;
      ifinfomsg ifi;
    } req{};
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
    req.nh.nlmsg_type = RTM_GETLINK;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nh.nlmsg_seq = ++seq_;
    req.ifi.ifi_family = AF_UNSPEC;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    ssize_t n;
    do {
      n = ::sendto(sock_.native_handle(), &req, req.nh.nlmsg_len, 0,
                   reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return socket_failed("netlink RTM_GETLINK: " + detail::errno_text(errno));
    dumping_ = true;
    dump_seen_ = false;
    redump_ = false;
  }

  void arm_read() {
    sock_.async_wait(asio::posix::stream_descriptor::wait_read,
                     [self = shared_from_this()](const error_code& ec) {
                       if (self->stopped_ || ec) return;
                       self->on_readable();
                     });
  }

  void on_readable() {
    alignas(nlmsghdr) static thread_local char buf[64 * 1024];
    bool overflow = false;
    for (int guard = 0; guard < 256 && sock_.is_open(); ++guard) {  // bounded per wake-up
      const ssize_t n = ::recv(sock_.native_handle(), buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == ENOBUFS) {  // events lost: state unknown until re-dumped
          overflow = true;
          continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return socket_failed("netlink recv: " + detail::errno_text(errno));
      }
      if (n == 0) break;
      parse(buf, static_cast<std::size_t>(n));
      if (stopped_) return;
    }
    if (overflow) request_dump();
    if (!stopped_ && sock_.is_open()) arm_read();
  }

  void parse(const char* data, std::size_t len) {
    // NLMSG_OK/NLMSG_NEXT spelled out in unsigned arithmetic: the macros
    // compare the u32 nlmsg_len with a signed length (clang's -Wsign-compare).
    // A message must hold its header and fit in what is left; the next one
    // starts at the aligned end, and a header that would not fit ends the walk.
    for (std::size_t off = 0; off <= len && len - off >= sizeof(nlmsghdr);) {
      const auto* nh = reinterpret_cast<const nlmsghdr*>(data + off);
      if (nh->nlmsg_len < sizeof(nlmsghdr) || nh->nlmsg_len > len - off) break;
      off += NLMSG_ALIGN(nh->nlmsg_len);
      const bool ours = dumping_ && nh->nlmsg_seq == seq_;
      switch (nh->nlmsg_type) {
        case NLMSG_DONE:
          if (ours) dump_done();
          break;
        case NLMSG_ERROR:
          if (ours) {  // e.g. EBUSY; try again
            dumping_ = false;
            redump_ = true;
            dump_done_retry();
          }
          break;
        case RTM_NEWLINK:
        case RTM_DELLINK:
          on_link(nh);
          break;
        default:
          break;
      }
      if (stopped_) return;
    }
  }

  void on_link(const nlmsghdr* nh) {
    if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return;
    const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(nh));
    std::optional<std::string> name;
    std::optional<std::uint8_t> operstate, carrier;
    int alen = static_cast<int>(IFLA_PAYLOAD(nh));
    for (auto* a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
      const auto* p = static_cast<const char*>(RTA_DATA(a));
      const auto plen = RTA_PAYLOAD(a);
      switch (a->rta_type) {
        case IFLA_IFNAME:
          name = std::string(p, ::strnlen(p, plen));
          break;
        case IFLA_OPERSTATE:
          if (plen >= 1) operstate = static_cast<std::uint8_t>(p[0]);
          break;
        case IFLA_CARRIER:
          if (plen >= 1) carrier = static_cast<std::uint8_t>(p[0]);
          break;
        default:
          break;
      }
    }
    const bool by_name = name && *name == ifname_;
    const bool by_index = link_.exists && ifi->ifi_index == link_.index;
    if (!by_name && !by_index) return;
    if (nh->nlmsg_type == RTM_DELLINK || !by_name) {  // deleted, or renamed away
      link_ = LinkState{};
    } else {
      link_.exists = true;
      link_.index = ifi->ifi_index;
      link_.flags = ifi->ifi_flags;
      if (operstate) link_.operstate = *operstate;
      link_.carrier = carrier;
      if (dumping_) dump_seen_ = true;
    }
    if (initial_done_) emit(false);
  }

  void dump_done() {
    dumping_ = false;
    fatal_.clear();
    if (!dump_seen_) link_ = LinkState{};
    if (redump_) {
      request_dump();
      if (stopped_ || !sock_.is_open()) return;
    }
    finish_initial();
  }

  void dump_done_retry() {
    timer_.expires_after(std::chrono::milliseconds(50));
    timer_.async_wait([self = shared_from_this()](const error_code& e) {
      if (self->stopped_ || e || !self->sock_.is_open()) return;
      self->request_dump();
    });
  }

  void finish_initial() {
    if (stopped_) return;
    initial_done_ = true;
    emit(force_next_);
    force_next_ = false;
    auto runs = std::move(pending_runs_);
    pending_runs_.clear();
    for (auto& r : runs) {
      if (stopped_) return;
      r(verdict());
    }
  }

  Result verdict() const {
    Result r;
    r.status = Status::Fail;
    if (!fatal_.empty()) {
      r.reason = ifname_.empty() ? fatal_ : ifname_ + ": " + fatal_;
      return r;
    }
    if (!link_.exists) {
      r.reason = ifname_ + ": interface does not exist";
    } else if (!(link_.flags & IFF_UP)) {
      r.reason = ifname_ + ": link down (administratively down)";
    } else if (!(link_.flags & kIffLowerUp) || (link_.carrier && *link_.carrier == 0)) {
      r.reason = ifname_ + ": no carrier";
    } else if (link_.operstate == 6) {
      r.status = Status::Pass;
      r.reason = ifname_ + ": up";
    } else if (link_.operstate == 0 && (link_.flags & IFF_RUNNING)) {
      r.status = Status::Pass;
      r.reason = ifname_ + ": up (operstate unknown)";
    } else {
      r.reason =
          ifname_ + ": link down (operstate " + std::string(operstate_name(link_.operstate)) + ")";
    }
    return r;
  }

  void emit(bool force) {
    if (stopped_) return;
    Result r = verdict();
    if (!filter_.update(r.status, r.reason) && !force) return;
    if (on_change_) on_change_(std::move(r));
  }

  asio::any_io_executor io_;
  std::string ifname_;
  asio::posix::stream_descriptor sock_;
  asio::steady_timer timer_;
  ResultFn on_change_;
  std::vector<ResultFn> pending_runs_;
  detail::ChangeFilter filter_;
  LinkState link_;
  std::string fatal_;
  std::uint32_t seq_ = 0;
  bool started_ = false;
  bool stopped_ = false;
  bool dumping_ = false;
  bool dump_seen_ = false;
  bool redump_ = false;
  bool initial_done_ = false;
  bool force_next_ = false;
};

}  // namespace

std::unique_ptr<Probe> make_interface_probe(const boost::asio::any_io_executor& io,
                                            const config::CheckSpec& spec) {
  return std::make_unique<detail::EventProbe<LinkWatcher>>(io, spec);
}

}  // namespace beacon::health
