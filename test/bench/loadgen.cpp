// bfd-loadgen: plays N single-hop IPv4 BFD peers against one device under test.
//
// Every peer has its own source address (the first N host addresses of
// --sources, which the caller adds to the generator's interface), its own My
// Discriminator and its own source port (49152 + i). Packets are written with
// their own IP/UDP headers (TTL 255) through one raw socket and sent with one
// sendmmsg() per wake-up; the DUT's packets arrive on one UDP socket bound to
// port 3784 and are drained with recvmmsg(), each with its kernel receive
// timestamp (SO_TIMESTAMPNS), destination (IP_PKTINFO) and TTL.
//
// Timers: one clock_nanosleep() per slot. Every deadline (transmit, detection,
// housekeeping) is rounded UP to the slot grid (--slot, default 100 us), so
// nothing fires early and all work of a slot is served by one wake-up (timer
// programming is a VM exit on the target machines). The socket is drained at
// every wake-up and at least every --rx-wait (1 ms) even when nothing is due:
// the measurements use kernel timestamps, so that delay only postpones the
// answers (Final, state changes) by at most that much.
//
// Per peer the RFC 5880 state machine runs in the active role: Down -> Init
// -> Up, Desired Min TX 1 s while not Up and --interval once Up (announced
// with a Poll), Required Min RX --interval, Detect Mult 3, transmit interval
// max(Desired Min TX, remote Required Min RX) minus 0-25 % jitter, the next
// periodic packet scheduled from the moment the previous one was handed to
// the kernel, so two periodic packets are never closer than 75 % of the
// interval. A state change is sent at once (and re-bases the schedule); a
// received Poll is answered at once with Final (or the periodic packet due in
// the same wake-up carries the F).
//
// Measured in the window after --warmup (and after every session was Up):
//   flaps        a session leaving Up, by cause: the DUT sent Down/AdminDown,
//                or the generator's detection time expired (DUT silent)
//   gaps         per session, between consecutive packets from the DUT while
//                both sides are Up, from kernel receive timestamps, as a
//                fraction of the DUT's negotiated transmit interval
//                max(DUT Desired Min TX, our Required Min RX). Packets with F
//                (answers to our Polls, sent out of schedule by RFC 5880
//                §6.8.7) end a run of gaps: a gap spanning one is not counted.
//                gaps_below_75: gaps < 75 % of the interval (a violation).
//                tx_err: per gap, how far it falls outside [75 %, 100 %] of
//                the interval (0 inside), in microseconds.
//   poll->final  every --poll-every, --poll-count Up sessions (round robin)
//                set P on their next periodic packets; the time from handing
//                the first P packet to the kernel until the kernel stamped the
//                F reply.
//   lateness     per periodic packet, the time between its slot (the deadline
//                rounded up to the grid) and the moment it was handed to the
//                kernel. p99 above 25 % of the interval: the run is invalid,
//                no result line is printed and the exit status is 3.
//
// Exit: 0 result printed, 2 usage or setup error, 3 generator fell behind,
// 4 hard time cap hit.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "beacon/core/wire.hpp"

namespace {

namespace wire = beacon::core::wire;
using Ns = std::int64_t;

constexpr Ns kUs = 1'000;
constexpr Ns kMs = 1'000'000;
constexpr Ns kSec = 1'000'000'000;
constexpr std::uint32_t kSlowTxUs = 1'000'000;    // RFC 5880 §6.8.3: >= 1 s while not Up
constexpr std::uint32_t kDiscrBase = 0x4c470001;  // "LG" + index
constexpr std::uint16_t kFirstSourcePort = 49152;
constexpr int kMaxSessions = 16384;
constexpr std::size_t kTxBatch = 1024;
constexpr std::size_t kRxBatch = 256;
constexpr int kMaxRxBatchesPerWake = 64;
constexpr std::size_t kPacketLen = 20 + 8 + wire::kMandatoryLength;

Ns clock_ns(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return Ns{ts.tv_sec} * kSec + ts.tv_nsec;
}
Ns mono_now() {
  return clock_ns(CLOCK_MONOTONIC);
}
Ns real_now() {
  return clock_ns(CLOCK_REALTIME);
}

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "bfd-loadgen: %s\n", msg.c_str());
  std::fprintf(stderr,
               "usage: bfd-loadgen --dut ADDR --sources CIDR --sessions N --interval 10ms\n"
               "                   --duration 60s [--warmup 10s] [--poll-every 1s]\n"
               "                   [--poll-count K] [--slot 100us] [--rx-wait 1ms]\n"
               "                   [--up-timeout 60s] [--max-seconds S] [--seed N] [--no-rt]\n"
               "                   [--log-flaps N] [--trace INDEX] [--quiet]\n");
  std::exit(2);
}

// "300us", "10ms", "1.5s", "2m" -> nanoseconds (a unit is mandatory).
std::optional<Ns> parse_duration(std::string_view text) {
  std::size_t unit_at = 0;
  while (unit_at < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[unit_at])) || text[unit_at] == '.')) {
    ++unit_at;
  }
  if (unit_at == 0) return std::nullopt;
  const std::string number(text.substr(0, unit_at));
  const std::string_view unit = text.substr(unit_at);
  char* end = nullptr;
  const double v = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || v < 0) return std::nullopt;
  double scale;
  if (unit == "us") {
    scale = kUs;
  } else if (unit == "ms") {
    scale = kMs;
  } else if (unit == "s") {
    scale = kSec;
  } else if (unit == "m") {
    scale = 60.0 * kSec;
  } else {
    return std::nullopt;
  }
  const double ns = v * scale;
  if (ns > 1e18) return std::nullopt;
  return static_cast<Ns>(ns + 0.5);
}

std::optional<std::uint32_t> parse_ipv4(const std::string& text) {
  in_addr a{};
  if (::inet_pton(AF_INET, text.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

std::optional<long> parse_int(std::string_view text) {
  long v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return v;
}

std::string ip_text(std::uint32_t host_order) {
  in_addr a{htonl(host_order)};
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

// ------------------------------------------------------------ histogram

// Log-linear histogram of non-negative integers: exact below 2^kSubBits,
// then 2^(kSubBits-1) buckets per power of two (relative error < 0.4 %).
class Histogram {
 public:
  static constexpr int kSubBits = 8;
  static constexpr std::uint64_t kSub = 1u << kSubBits;
  static constexpr std::uint64_t kHalf = kSub / 2;

  Histogram() : counts_(kSub + (64 - kSubBits) * kHalf, 0) {}

  void add(std::uint64_t v) {
    ++counts_[index(v)];
    ++total_;
    max_ = std::max(max_, v);
  }
  void clear() {
    std::fill(counts_.begin(), counts_.end(), 0);
    total_ = 0;
    max_ = 0;
  }
  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return max_; }
  // Nearest-rank quantile, reported as the upper bound of its bucket (capped
  // at the exact maximum): never understates.
  std::uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_) + 0.999999);
    rank = std::clamp<std::uint64_t>(rank, 1, total_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(upper(i), max_);
    }
    return max_;
  }

 private:
  static std::size_t index(std::uint64_t v) {
    if (v < kSub) return static_cast<std::size_t>(v);
    const int msb = 63 - std::countl_zero(v);
    const int shift = msb - (kSubBits - 1);  // keeps the top kSubBits bits
    const std::uint64_t top = v >> shift;    // kHalf .. kSub-1
    return static_cast<std::size_t>(kSub + static_cast<std::uint64_t>(shift - 1) * kHalf +
                                    (top - kHalf));
  }
  static std::uint64_t upper(std::size_t i) {
    if (i < kSub) return i;
    const std::uint64_t k = i - kSub;
    const int shift = static_cast<int>(k / kHalf) + 1;
    const std::uint64_t top = kHalf + k % kHalf;
    return ((top + 1) << shift) - 1;
  }

  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

// ------------------------------------------------------------ options

struct Options {
  std::uint32_t dut = 0;
  std::uint32_t first_source = 0;
  std::uint64_t source_count = 0;
  int sessions = 0;
  Ns interval = 0;
  Ns duration = 0;
  Ns warmup = 10 * kSec;
  Ns poll_every = 1 * kSec;
  int poll_count = 0;  // 0: auto
  Ns slot = 100 * kUs;
  Ns rx_wait = 1 * kMs;
  Ns up_timeout = 60 * kSec;
  Ns max_seconds = 0;  // 0: auto
  Ns settle = 500 * kMs;
  std::uint64_t seed = 0;
  bool quiet = false;
  int log_flaps = 0;     // print the first this many flaps to stderr
  int trace = -1;        // session index whose packets are printed to stderr
  int rt_priority = 10;  // SCHED_FIFO priority of the generator; 0: normal scheduling
};

Options parse_args(int argc, char** argv) {
  Options o;
  bool have_dut = false, have_sources = false, have_interval = false, have_duration = false;
  auto need_duration = [](std::string_view name, const char* v) {
    auto d = parse_duration(v);
    if (!d) usage_error(std::string(name) + ": bad duration \"" + v + "\" (e.g. 10ms, 1.5s)");
    return *d;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--quiet") {
      o.quiet = true;
      continue;
    }
    if (a == "--no-rt") {
      o.rt_priority = 0;
      continue;
    }
    if (a == "--help" || a == "-h") usage_error("help");
    if (i + 1 >= argc) usage_error(std::string(a) + ": missing value");
    const char* v = argv[++i];
    if (a == "--dut") {
      auto ip = parse_ipv4(v);
      if (!ip) usage_error(std::string("--dut: not an IPv4 address: ") + v);
      o.dut = *ip;
      have_dut = true;
    } else if (a == "--sources") {
      const std::string s = v;
      const auto slash = s.find('/');
      auto ip = parse_ipv4(s.substr(0, slash));
      std::optional<long> len = slash == std::string::npos
                                    ? std::optional<long>(32)
                                    : parse_int(std::string_view(s).substr(slash + 1));
      if (!ip || !len || *len < 1 || *len > 32) usage_error("--sources: bad IPv4 prefix " + s);
      const std::uint64_t size = std::uint64_t{1} << (32 - *len);
      const std::uint32_t mask = *len == 32 ? 0xffffffffu : ~((1u << (32 - *len)) - 1);
      const std::uint32_t net = *ip & mask;
      if (size <= 2) {
        o.first_source = net;
        o.source_count = size;
      } else {
        o.first_source = net + 1;  // skip the network and broadcast addresses
        o.source_count = size - 2;
      }
      have_sources = true;
    } else if (a == "--sessions") {
      auto n = parse_int(v);
      if (!n || *n < 1 || *n > kMaxSessions) {
        usage_error("--sessions: 1.." + std::to_string(kMaxSessions));
      }
      o.sessions = static_cast<int>(*n);
    } else if (a == "--interval") {
      o.interval = need_duration(a, v);
      have_interval = true;
    } else if (a == "--duration") {
      o.duration = need_duration(a, v);
      have_duration = true;
    } else if (a == "--warmup") {
      o.warmup = need_duration(a, v);
    } else if (a == "--poll-every") {
      o.poll_every = need_duration(a, v);
    } else if (a == "--poll-count") {
      auto n = parse_int(v);
      if (!n || *n < 0 || *n > kMaxSessions) usage_error("--poll-count: 0..16384");
      o.poll_count = static_cast<int>(*n);
    } else if (a == "--slot") {
      o.slot = need_duration(a, v);
    } else if (a == "--rx-wait") {
      o.rx_wait = need_duration(a, v);
    } else if (a == "--up-timeout") {
      o.up_timeout = need_duration(a, v);
    } else if (a == "--max-seconds") {
      auto n = parse_int(v);
      if (!n || *n < 1 || *n > 86400) usage_error("--max-seconds: 1..86400");
      o.max_seconds = *n * kSec;
    } else if (a == "--trace") {
      auto n = parse_int(v);
      if (!n || *n < 0 || *n >= kMaxSessions) usage_error("--trace: a session index");
      o.trace = static_cast<int>(*n);
    } else if (a == "--log-flaps") {
      auto n = parse_int(v);
      if (!n || *n < 0 || *n > 100000) usage_error("--log-flaps: 0..100000");
      o.log_flaps = static_cast<int>(*n);
    } else if (a == "--seed") {
      auto n = parse_int(v);
      if (!n) usage_error("--seed: an integer");
      o.seed = static_cast<std::uint64_t>(*n);
    } else {
      usage_error("unknown option " + std::string(a));
    }
  }
  if (!have_dut || !have_sources || o.sessions == 0 || !have_interval || !have_duration) {
    usage_error("--dut, --sources, --sessions, --interval and --duration are required");
  }
  if (static_cast<std::uint64_t>(o.sessions) > o.source_count) {
    usage_error("--sources holds only " + std::to_string(o.source_count) + " host addresses");
  }
  if (o.interval < 1 * kMs || o.interval > 10 * kSec) usage_error("--interval: 1ms..10s");
  if (o.duration < 1 * kSec || o.duration > 3600 * kSec) usage_error("--duration: 1s..3600s");
  if (o.warmup > 600 * kSec) usage_error("--warmup: at most 600s");
  if (o.up_timeout > 600 * kSec) usage_error("--up-timeout: at most 600s");
  if (o.slot < 10 * kUs || o.slot > o.interval / 4) usage_error("--slot: 10us..interval/4");
  if (o.rx_wait < o.slot || o.rx_wait > 100 * kMs) usage_error("--rx-wait: slot..100ms");
  if (o.poll_every < 10 * kMs) usage_error("--poll-every: at least 10ms");
  if (o.dut >= o.first_source && o.dut < o.first_source + o.source_count) {
    const std::uint64_t idx = o.dut - o.first_source;
    if (idx < static_cast<std::uint64_t>(o.sessions)) usage_error("--dut is one of the sources");
  }
  if (o.poll_count == 0) o.poll_count = std::clamp(o.sessions / 50, 1, 50);
  o.poll_count = std::min(o.poll_count, o.sessions);
  const Ns natural = o.warmup + o.up_timeout + o.duration + 10 * kSec;
  if (o.max_seconds == 0) o.max_seconds = natural;
  if (o.seed == 0) o.seed = static_cast<std::uint64_t>(real_now()) ^ 0x9e3779b97f4a7c15ull;
  return o;
}

// ------------------------------------------------------------ hard cap

void on_alarm(int) {
  static const char msg[] = "bfd-loadgen: hard time cap reached, exiting\n";
  ssize_t r = ::write(2, msg, sizeof msg - 1);
  (void)r;
  ::_exit(4);
}

// ------------------------------------------------------------ generator

struct Peer {
  std::uint32_t addr = 0;  // host order
  std::uint16_t sport = 0;
  std::uint32_t discr = 0;
  wire::State state = wire::State::Down;
  std::uint8_t diag = 0;
  std::uint32_t desired_tx_us = kSlowTxUs;
  // remote
  std::uint32_t r_discr = 0;
  wire::State r_state = wire::State::Down;
  std::uint32_t r_min_rx_us = 1;
  std::uint32_t r_desired_tx_us = kSlowTxUs;
  std::uint8_t r_mult = 3;
  // poll (ours)
  bool poll_active = false;
  bool poll_timed = false;
  bool poll_first_pending = false;
  Ns poll_tx_real = 0;
  // pending immediate packets
  bool need_final = false;
  bool need_send = false;
  bool queued = false;
  // timers
  Ns next_tx = 0;
  Ns last_tx = 0;   // monotonic, when the last packet that set the schedule was handed over
  Ns sched_iv = 0;  // the transmit interval next_tx was computed with
  Ns last_rx = 0;   // monotonic (converted kernel timestamp)
  bool detect_armed = false;
  Ns detect_at = 0;
  // gap tracking (realtime kernel timestamps)
  Ns gap_last = 0;
  std::uint32_t gap_iv_us = 0;
};

enum class EvKind : std::uint8_t { Tx, Detect };

struct Ev {
  Ns at;
  std::uint32_t id;
  EvKind kind;
};
struct EvLater {
  bool operator()(const Ev& a, const Ev& b) const { return a.at > b.at; }
};

enum class TxKind : std::uint8_t { Periodic, Rebase, FinalOnly };

std::uint16_t fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t sum) {
  for (std::size_t i = 0; i + 1 < n; i += 2) sum += (std::uint32_t{p[i]} << 8) | p[i + 1];
  if (n & 1) sum += std::uint32_t{p[n - 1]} << 8;
  return sum;
}

void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
void put32(std::uint8_t* p, std::uint32_t v) {
  put16(p, static_cast<std::uint16_t>(v >> 16));
  put16(p + 2, static_cast<std::uint16_t>(v));
}

class Generator {
 public:
  explicit Generator(const Options& o) : o_(o), rng_(o.seed | 1) {
    flap_log_left_ = o.log_flaps;
    interval_us_ = static_cast<std::uint32_t>(o.interval / kUs);
    peers_.resize(static_cast<std::size_t>(o.sessions));
    for (int i = 0; i < o.sessions; ++i) {
      Peer& p = peers_[static_cast<std::size_t>(i)];
      p.addr = o.first_source + static_cast<std::uint32_t>(i);
      p.sport = static_cast<std::uint16_t>(kFirstSourcePort + i % 16384);
      p.discr = kDiscrBase + static_cast<std::uint32_t>(i);
    }
    tx_bufs_.resize(kTxBatch);
    tx_iov_.resize(kTxBatch);
    tx_msgs_.resize(kTxBatch);
    tx_meta_.resize(kTxBatch);
    rx_bufs_.resize(kRxBatch);
    rx_iov_.resize(kRxBatch);
    rx_msgs_.resize(kRxBatch);
    rx_names_.resize(kRxBatch);
    rx_ctrl_.resize(kRxBatch);
  }

  bool open_sockets() {
    tx_fd_ = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (tx_fd_ < 0) return fail("socket(SOCK_RAW, IPPROTO_RAW)");
    int big = 4 << 20;
    if (::setsockopt(tx_fd_, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) != 0) {
      ::setsockopt(tx_fd_, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    }
    rx_fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (rx_fd_ < 0) return fail("socket(SOCK_DGRAM)");
    int one = 1;
    int rcv = 16 << 20;
    if (::setsockopt(rx_fd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0) {
      ::setsockopt(rx_fd_, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    }
    if (::setsockopt(rx_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        ::setsockopt(rx_fd_, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) != 0 ||
        ::setsockopt(rx_fd_, IPPROTO_IP, IP_RECVTTL, &one, sizeof one) != 0 ||
        ::setsockopt(rx_fd_, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0 ||
        ::setsockopt(rx_fd_, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) != 0) {
      return fail("setsockopt on the receive socket");
    }
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(wire::kSingleHopPort);
    sin.sin_addr.s_addr = htonl(INADDR_ANY);
    if (::bind(rx_fd_, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
      return fail("bind 0.0.0.0:3784");
    }
    dut_sa_.sin_family = AF_INET;
    dut_sa_.sin_port = htons(wire::kSingleHopPort);
    dut_sa_.sin_addr.s_addr = htonl(o_.dut);
    for (std::size_t i = 0; i < kTxBatch; ++i) {
      tx_iov_[i].iov_base = tx_bufs_[i].data();
      tx_iov_[i].iov_len = kPacketLen;
      msghdr& h = tx_msgs_[i].msg_hdr;
      h.msg_name = &dut_sa_;
      h.msg_namelen = sizeof dut_sa_;
      h.msg_iov = &tx_iov_[i];
      h.msg_iovlen = 1;
    }
    return true;
  }

  int run();

 private:
  bool fail(const char* what) {
    std::fprintf(stderr, "bfd-loadgen: %s: %s\n", what, std::strerror(errno));
    return false;
  }

  std::uint64_t next_rand() {  // xorshift64*
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return rng_ * 0x2545f4914f6cdd1dull;
  }
  double uniform() { return static_cast<double>(next_rand() >> 11) * 0x1.0p-53; }

  Ns slot_up(Ns t) const { return (t + o_.slot - 1) / o_.slot * o_.slot; }

  Ns tx_interval(const Peer& p) const { return Ns{std::max(p.desired_tx_us, p.r_min_rx_us)} * kUs; }
  // RFC 5880 §6.8.7: 0-25 % less than the interval (Detect Mult is always 3 here).
  Ns jittered(Ns iv) {
    return static_cast<Ns>(static_cast<double>(iv) * (0.75 + 0.25 * uniform()));
  }
  Ns detect_time(const Peer& p) const {
    const std::uint8_t mult = p.r_mult != 0 ? p.r_mult : 3;
    return Ns{mult} * Ns{std::max(interval_us_, p.r_desired_tx_us)} * kUs;
  }

  void push(Ns at, std::uint32_t id, EvKind k) { heap_.push(Ev{at, id, k}); }
  void queue_now(std::uint32_t id) {
    Peer& p = peers_[id];
    if (!p.queued) {
      p.queued = true;
      immediate_.push_back(id);
    }
  }
  // One pending detection event per session, moved forward lazily (re-armed
  // when it fires early) but moved back at once when the detection time
  // shrinks (the DUT announcing its fast rate).
  void arm_detect(std::uint32_t id) {
    Peer& p = peers_[id];
    const Ns at = p.last_rx + detect_time(p);
    if (p.detect_armed && p.detect_at <= at) return;
    p.detect_armed = true;
    p.detect_at = at;
    push(at, id, EvKind::Detect);
  }

  void set_state(Peer& p, wire::State s, std::uint8_t diag, bool by_timeout) {
    const wire::State old = p.state;
    if (old == s) return;
    if (old == wire::State::Up) {
      --up_;
      ++flaps_all_;
      if (flap_log_left_ > 0) {  // --log-flaps: the first flaps, for correlation with DUT logs
        --flap_log_left_;
        const Ns now = mono_now();
        std::fprintf(stderr,
                     "bfd-loadgen: flap %s t=%.3fs real=%.3f cause=%s last_rx_ago=%.1fms "
                     "remote=%s\n",
                     ip_text(p.addr).c_str(), static_cast<double>(now - t0_) / kSec,
                     static_cast<double>(real_now()) / kSec, by_timeout ? "timeout" : "dut-down",
                     static_cast<double>(now - p.last_rx) / kMs,
                     std::string(wire::state_name(p.r_state)).c_str());
      }
      if (measuring_) {
        ++flaps_;
        if (by_timeout) {
          ++flaps_timeout_;
        } else {
          ++flaps_dut_down_;
          if (p.r_state == wire::State::AdminDown) ++flaps_admin_down_;
        }
      }
      if (p.poll_active && p.poll_timed && measuring_) ++polls_lost_;
    }
    p.state = s;
    p.diag = diag;
    p.gap_last = 0;
    if (s == wire::State::Up) {
      ++up_;
      p.diag = 0;
      // Faster once Up: announce it with a Poll (decreasing may apply at once).
      p.desired_tx_us = interval_us_;
      p.poll_active = true;
      p.poll_timed = false;
      p.poll_first_pending = false;
    } else if (old == wire::State::Up || s == wire::State::Down) {
      p.desired_tx_us = kSlowTxUs;
      p.poll_active = false;
      p.poll_timed = false;
      p.poll_first_pending = false;
    }
    p.need_send = true;
  }

  void on_packet(std::uint32_t id, const wire::ControlPacket& pkt, Ns ts_real, Ns ts_mono);
  void trace_packet(const char* dir, const wire::ControlPacket& pkt, Ns t) const {
    std::fprintf(stderr,
                 "bfd-loadgen: trace %s t=%.6f %s diag=%u%s%s mult=%u my=%u your=%u tx=%u rx=%u\n",
                 dir, static_cast<double>(t - t0_) / kSec,
                 std::string(wire::state_name(pkt.state)).c_str(), pkt.diag, pkt.poll ? " P" : "",
                 pkt.final ? " F" : "", pkt.detect_mult, pkt.my_discriminator,
                 pkt.your_discriminator, pkt.desired_min_tx_us, pkt.required_min_rx_us);
  }
  void drain_rx(Ns real_minus_mono);
  void handle_rx_msg(const mmsghdr& m, std::size_t i, Ns real_minus_mono);
  void serve_due(Ns now);
  void on_detect(std::uint32_t id, Ns now);
  void build(std::uint32_t id, TxKind kind, bool final, Ns slot_target);
  void flush();
  void start_polls();
  void begin_measure(Ns now);
  void send_admin_down();
  int report(Ns now);

  __attribute__((format(printf, 2, 3))) void progress(const char* fmt, ...) {
    std::va_list ap;
    va_start(ap, fmt);
    std::printf("loadgen: ");
    std::vprintf(fmt, ap);
    std::printf("\n");
    std::fflush(stdout);
    va_end(ap);
  }

  const Options& o_;
  std::uint64_t rng_;
  std::uint32_t interval_us_ = 0;
  std::vector<Peer> peers_;
  std::priority_queue<Ev, std::vector<Ev>, EvLater> heap_;
  std::vector<std::uint32_t> immediate_;
  int tx_fd_ = -1;
  int rx_fd_ = -1;
  sockaddr_in dut_sa_{};

  struct TxMeta {
    std::uint32_t id;
    TxKind kind;
    bool poll_first;
    Ns slot_target;
  };
  std::vector<std::array<std::uint8_t, kPacketLen>> tx_bufs_;
  std::vector<iovec> tx_iov_;
  std::vector<mmsghdr> tx_msgs_;
  std::vector<TxMeta> tx_meta_;
  std::size_t tx_n_ = 0;

  struct RxBuf {
    std::array<std::uint8_t, 128> data;
  };
  struct RxCtrl {
    alignas(cmsghdr) std::array<std::uint8_t, 256> data;
  };
  std::vector<RxBuf> rx_bufs_;
  std::vector<iovec> rx_iov_;
  std::vector<mmsghdr> rx_msgs_;
  std::vector<sockaddr_in> rx_names_;
  std::vector<RxCtrl> rx_ctrl_;

  // state
  int up_ = 0;
  int flap_log_left_ = 0;
  bool measuring_ = false;
  Ns t0_ = 0;
  Ns all_up_at_ = 0;     // the first moment every session was Up
  Ns all_up_since_ = 0;  // since when every session is Up (0: not all Up now)
  Ns measure_start_ = 0;
  std::size_t poll_cursor_ = 0;
  std::vector<std::pair<double, int>> timeline_;  // (seconds since start, up) until all up

  // counters (whole run)
  std::uint64_t rx_packets_ = 0, rx_bad_ = 0, rx_foreign_ = 0, rx_bad_ttl_ = 0;
  std::uint64_t rx_bad_sport_ = 0, rx_unknown_ = 0, rx_no_ts_ = 0;
  std::uint32_t rx_ovfl_ = 0, rx_ovfl_at_start_ = 0;
  std::uint64_t tx_packets_ = 0, tx_errors_ = 0, wakeups_ = 0, flaps_all_ = 0;
  // measured window
  std::uint64_t flaps_ = 0, flaps_timeout_ = 0, flaps_dut_down_ = 0, flaps_admin_down_ = 0;
  std::uint64_t gaps_below_75_ = 0, polls_started_ = 0, polls_answered_ = 0, polls_lost_ = 0;
  std::uint64_t tx_in_window_ = 0, rx_in_window_ = 0, wakeups_in_window_ = 0;
  int min_up_ = 0;
  Histogram gap_pct_;    // units of 0.01 % of the interval
  Histogram tx_err_;     // ns outside [75 %, 100 %]
  Histogram rx_work_;    // ns per wake-up draining the socket
  Histogram tx_work_;    // ns per wake-up building and sending
  Histogram early_;      // ns short of 75 %, early gaps only
  Histogram poll_rtt_;   // ns
  Histogram late_;       // ns, per periodic packet
  Histogram wake_late_;  // ns, per wake-up
  rusage ru_start_{};
};

// ------------------------------------------------------------ receive

void Generator::drain_rx(Ns real_minus_mono) {
  for (int b = 0; b < kMaxRxBatchesPerWake; ++b) {
    for (std::size_t i = 0; i < kRxBatch; ++i) {
      rx_iov_[i].iov_base = rx_bufs_[i].data.data();
      rx_iov_[i].iov_len = rx_bufs_[i].data.size();
      msghdr& h = rx_msgs_[i].msg_hdr;
      h.msg_name = &rx_names_[i];
      h.msg_namelen = sizeof(sockaddr_in);
      h.msg_iov = &rx_iov_[i];
      h.msg_iovlen = 1;
      h.msg_control = rx_ctrl_[i].data.data();
      h.msg_controllen = rx_ctrl_[i].data.size();
      h.msg_flags = 0;
    }
    const int n = ::recvmmsg(rx_fd_, rx_msgs_.data(), kRxBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;  // EAGAIN (or an error: retried at the next wake-up)
    for (int i = 0; i < n; ++i) {
      handle_rx_msg(rx_msgs_[static_cast<std::size_t>(i)], static_cast<std::size_t>(i),
                    real_minus_mono);
    }
    if (static_cast<std::size_t>(n) < kRxBatch) return;
  }
}

void Generator::handle_rx_msg(const mmsghdr& m, std::size_t i, Ns real_minus_mono) {
  ++rx_packets_;
  if (measuring_) ++rx_in_window_;
  const sockaddr_in& from = rx_names_[i];
  Ns ts_real = 0;
  std::uint32_t dst = 0;
  bool have_dst = false;
  int ttl = -1;
  msghdr* h = const_cast<msghdr*>(&m.msg_hdr);
  for (cmsghdr* c = CMSG_FIRSTHDR(h); c != nullptr; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      timespec ts;
      std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
      ts_real = Ns{ts.tv_sec} * kSec + ts.tv_nsec;
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
      std::uint32_t v;
      std::memcpy(&v, CMSG_DATA(c), sizeof v);
      rx_ovfl_ = std::max(rx_ovfl_, v);
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
      dst = ntohl(pi.ipi_addr.s_addr);
      have_dst = true;
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) {
      std::memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
    }
  }
  if (ntohl(from.sin_addr.s_addr) != o_.dut || !have_dst) {
    ++rx_foreign_;
    return;
  }
  if (ttl != 255) {  // RFC 5881 §5: single hop needs TTL 255
    ++rx_bad_ttl_;
    return;
  }
  if (ntohs(from.sin_port) < kFirstSourcePort) ++rx_bad_sport_;  // counted, still used
  if (ts_real == 0) {
    ++rx_no_ts_;
    ts_real = real_now();
  }
  wire::ControlPacket pkt;
  const auto bytes = std::span<const std::uint8_t>(rx_bufs_[i].data.data(), m.msg_len);
  if (wire::decode(bytes, pkt) != wire::DropReason::None || pkt.auth_present) {
    ++rx_bad_;
    return;
  }
  std::uint32_t id;
  if (pkt.your_discriminator != 0) {
    const std::uint32_t idx = pkt.your_discriminator - kDiscrBase;
    if (pkt.your_discriminator < kDiscrBase || idx >= peers_.size() || peers_[idx].addr != dst) {
      ++rx_unknown_;
      return;
    }
    id = idx;
  } else {
    if (pkt.state == wire::State::Init || pkt.state == wire::State::Up) {  // §6.8.6 step 8
      ++rx_unknown_;
      return;
    }
    const std::uint32_t idx = dst - o_.first_source;
    if (dst < o_.first_source || idx >= peers_.size()) {
      ++rx_unknown_;
      return;
    }
    id = idx;
  }
  on_packet(id, pkt, ts_real, ts_real - real_minus_mono);
}

void Generator::on_packet(std::uint32_t id, const wire::ControlPacket& pkt, Ns ts_real,
                          Ns ts_mono) {
  Peer& p = peers_[id];
  if (static_cast<int>(id) == o_.trace) trace_packet("rx", pkt, ts_mono);
  // Gap between consecutive scheduled packets of the DUT, both sides Up.
  if (pkt.final) {
    p.gap_last = 0;  // out of schedule (§6.8.7): a gap spanning it is not counted
  } else if (measuring_ && p.state == wire::State::Up && p.r_state == wire::State::Up &&
             pkt.state == wire::State::Up) {
    const std::uint32_t iv_us = std::max(pkt.desired_min_tx_us, interval_us_);
    if (p.gap_last != 0 && p.gap_iv_us == iv_us && ts_real > p.gap_last) {
      const Ns gap = ts_real - p.gap_last;
      const Ns iv = Ns{iv_us} * kUs;
      gap_pct_.add(static_cast<std::uint64_t>(gap * 10000 / iv));
      const Ns lo = iv * 3 / 4;
      if (gap < lo) {
        ++gaps_below_75_;
        tx_err_.add(static_cast<std::uint64_t>(lo - gap));
        early_.add(static_cast<std::uint64_t>(lo - gap));
      } else if (gap > iv) {
        tx_err_.add(static_cast<std::uint64_t>(gap - iv));
      } else {
        tx_err_.add(0);
      }
    }
    p.gap_last = ts_real;
    p.gap_iv_us = iv_us;
  } else {
    p.gap_last = 0;
  }

  p.r_discr = pkt.my_discriminator;
  p.r_state = pkt.state;
  p.r_min_rx_us = pkt.required_min_rx_us;
  p.r_desired_tx_us = pkt.desired_min_tx_us;
  p.r_mult = pkt.detect_mult;
  // A faster rate allowed by the DUT (its Required Min RX drops when it comes
  // Up) applies at once: reschedule from the last transmission, still >= 75 %.
  if (const Ns iv = tx_interval(p);
      iv < p.sched_iv && p.last_tx != 0 && pkt.required_min_rx_us != 0) {
    const Ns at = std::max(p.last_tx + jittered(iv), ts_mono);
    if (at < p.next_tx) {
      p.next_tx = at;
      p.sched_iv = iv;
      push(at, id, EvKind::Tx);
    }
  }
  if (pkt.final && p.poll_active) {  // §6.5: the Poll Sequence ends
    p.poll_active = false;
    if (p.poll_timed && p.poll_tx_real != 0 && measuring_) {
      ++polls_answered_;
      poll_rtt_.add(static_cast<std::uint64_t>(std::max<Ns>(ts_real - p.poll_tx_real, 0)));
    }
    p.poll_timed = false;
    p.poll_first_pending = false;
    p.poll_tx_real = 0;
  }
  p.last_rx = std::max(p.last_rx, ts_mono);

  // §6.8.6 state machine.
  using S = wire::State;
  const S old = p.state;
  if (pkt.state == S::AdminDown) {
    if (p.state != S::Down) set_state(p, S::Down, 3, false);
  } else if (p.state == S::Down) {
    if (pkt.state == S::Down) {
      set_state(p, S::Init, 0, false);
    } else if (pkt.state == S::Init) {
      set_state(p, S::Up, 0, false);
    }
  } else if (p.state == S::Init) {
    if (pkt.state == S::Init || pkt.state == S::Up) set_state(p, S::Up, 0, false);
  } else if (p.state == S::Up) {
    if (pkt.state == S::Down) set_state(p, S::Down, 3, false);
  }
  if (p.state != old) queue_now(id);
  if (pkt.poll) {
    p.need_final = true;
    queue_now(id);
  }
  if (p.state != S::Down) arm_detect(id);
}

// ------------------------------------------------------------ timers

void Generator::on_detect(std::uint32_t id, Ns now) {
  Peer& p = peers_[id];
  p.detect_armed = false;
  if (p.state == wire::State::Down) return;
  const Ns deadline = p.last_rx + detect_time(p);
  if (now < deadline) {
    p.detect_armed = true;
    p.detect_at = deadline;
    push(deadline, id, EvKind::Detect);
    return;
  }
  set_state(p, wire::State::Down, 1, true);  // Control Detection Time Expired
  p.r_discr = 0;                             // §6.8.1
  p.r_state = wire::State::Down;
  p.r_desired_tx_us = kSlowTxUs;
  queue_now(id);
}

void Generator::serve_due(Ns now) {
  while (!heap_.empty() && heap_.top().at <= now) {
    const Ev ev = heap_.top();
    heap_.pop();
    Peer& p = peers_[ev.id];
    if (ev.kind == EvKind::Detect) {
      if (p.detect_armed && ev.at == p.detect_at) on_detect(ev.id, now);
      continue;
    }
    if (ev.at != p.next_tx) continue;  // superseded by a re-based schedule
    if (p.r_min_rx_us == 0) {          // the DUT asks for no packets (§6.8.7)
      p.next_tx = now + kSlowTxUs * kUs;
      push(p.next_tx, ev.id, EvKind::Tx);
      continue;
    }
    const bool final = p.need_final;
    build(ev.id, TxKind::Periodic, final, slot_up(ev.at));
  }
}

void Generator::build(std::uint32_t id, TxKind kind, bool final, Ns slot_target) {
  if (tx_n_ == kTxBatch) flush();
  Peer& p = peers_[id];
  wire::ControlPacket pk;
  pk.diag = p.diag;
  pk.state = p.state;
  pk.poll = p.poll_active && !final;
  pk.final = final;
  pk.detect_mult = 3;
  pk.my_discriminator = p.discr;
  pk.your_discriminator = p.r_discr;
  pk.desired_min_tx_us = p.desired_tx_us;
  pk.required_min_rx_us = interval_us_;
  pk.required_min_echo_rx_us = 0;
  std::uint8_t* b = tx_bufs_[tx_n_].data();
  // IPv4 header: the kernel fills the checksum (and the ID, 0 here) for IPPROTO_RAW.
  std::memset(b, 0, 28);
  b[0] = 0x45;
  b[1] = 0xc0;  // precedence 6 (internetwork control), as routers send BFD
  put16(b + 2, static_cast<std::uint16_t>(kPacketLen));
  put16(b + 6, 0x4000);  // DF
  b[8] = 255;            // RFC 5881 §5
  b[9] = IPPROTO_UDP;
  put32(b + 12, p.addr);
  put32(b + 16, o_.dut);
  put16(b + 20, p.sport);
  put16(b + 22, wire::kSingleHopPort);
  put16(b + 24, static_cast<std::uint16_t>(8 + wire::kMandatoryLength));
  const std::size_t n = wire::encode(pk, std::span<std::uint8_t>(b + 28, wire::kMaxPacketLength));
  (void)n;                                  // always 24: no authentication
  std::uint32_t sum = sum16(b + 12, 8, 0);  // pseudo header: addresses
  sum += IPPROTO_UDP + 8 + wire::kMandatoryLength;
  sum = sum16(b + 20, 8 + wire::kMandatoryLength, sum);
  std::uint16_t csum = fold(sum);
  put16(b + 26, csum == 0 ? 0xffff : csum);
  if (static_cast<int>(id) == o_.trace) trace_packet("tx", pk, mono_now());
  const bool poll_first = pk.poll && p.poll_first_pending;
  if (poll_first) p.poll_first_pending = false;
  if (final) p.need_final = false;
  if (kind != TxKind::FinalOnly) p.need_send = false;
  tx_meta_[tx_n_] = TxMeta{id, kind, poll_first, slot_target};
  ++tx_n_;
}

void Generator::flush() {
  if (tx_n_ == 0) return;
  const Ns before_mono = mono_now();
  const Ns before_real = real_now();
  std::size_t off = 0;
  int guard = 0;
  while (off < tx_n_ && guard++ < 4 * static_cast<int>(kTxBatch)) {
    const int r = ::sendmmsg(tx_fd_, tx_msgs_.data() + off, static_cast<unsigned>(tx_n_ - off), 0);
    if (r > 0) {
      off += static_cast<std::size_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    ++tx_errors_;  // skip the packet the kernel refused (ENOBUFS, ...)
    ++off;
  }
  const Ns after = mono_now();
  for (std::size_t i = 0; i < tx_n_; ++i) {
    const TxMeta& m = tx_meta_[i];
    Peer& p = peers_[m.id];
    if (m.poll_first) p.poll_tx_real = before_real;
    if (m.kind == TxKind::Periodic && measuring_) {
      late_.add(static_cast<std::uint64_t>(std::max<Ns>(before_mono - m.slot_target, 0)));
    }
    if (m.kind != TxKind::FinalOnly) {
      // Scheduled from the moment after the kernel took it: never closer than 75 %.
      p.last_tx = after;
      p.sched_iv = tx_interval(p);
      p.next_tx = after + jittered(p.sched_iv);
      push(p.next_tx, m.id, EvKind::Tx);
    }
  }
  tx_packets_ += tx_n_;
  if (measuring_) tx_in_window_ += tx_n_;
  tx_n_ = 0;
}

void Generator::start_polls() {
  int started = 0;
  for (std::size_t tries = 0; tries < peers_.size() && started < o_.poll_count; ++tries) {
    Peer& p = peers_[poll_cursor_];
    poll_cursor_ = (poll_cursor_ + 1) % peers_.size();
    if (p.state != wire::State::Up || p.poll_active) continue;
    p.poll_active = true;
    p.poll_timed = true;
    p.poll_first_pending = true;
    p.poll_tx_real = 0;
    ++polls_started_;
    ++started;
  }
}

void Generator::begin_measure(Ns now) {
  measuring_ = true;
  measure_start_ = now;
  min_up_ = up_;
  rx_ovfl_at_start_ = rx_ovfl_;
  ::getrusage(RUSAGE_SELF, &ru_start_);
  progress("measure start t=%.3fs up=%d/%d", static_cast<double>(now - t0_) / kSec, up_,
           o_.sessions);
}

void Generator::send_admin_down() {
  for (std::uint32_t id = 0; id < peers_.size(); ++id) {
    Peer& p = peers_[id];
    p.poll_active = false;
    p.state = wire::State::AdminDown;
    p.diag = 7;
    build(id, TxKind::FinalOnly, false, 0);
  }
  flush();
}

int Generator::run() {
  t0_ = mono_now();
  // Spread the first Down packets so the DUT sees a ramp, not one burst.
  const Ns ramp = std::clamp<Ns>(Ns{o_.sessions} * 50 * kUs, 10 * kMs, 1 * kSec);
  for (std::uint32_t id = 0; id < peers_.size(); ++id) {
    Peer& p = peers_[id];
    p.next_tx = t0_ + static_cast<Ns>(uniform() * static_cast<double>(ramp));
    push(p.next_tx, id, EvKind::Tx);
  }
  const Ns hard_end = t0_ + o_.warmup + o_.up_timeout + o_.duration + 5 * kSec;
  Ns next_progress = t0_ + 1 * kSec;
  Ns next_poll = 0;
  Ns last_drain = t0_;
  timeline_.emplace_back(0.0, 0);
  progress("start sessions=%d interval_us=%u dut=%s sources=%s.. slot_us=%lld", o_.sessions,
           interval_us_, ip_text(o_.dut).c_str(), ip_text(o_.first_source).c_str(),
           static_cast<long long>(o_.slot / kUs));
  Ns target = t0_;
  for (;;) {
    const Ns now = mono_now();
    ++wakeups_;
    if (measuring_) {
      ++wakeups_in_window_;
      wake_late_.add(static_cast<std::uint64_t>(std::max<Ns>(now - target, 0)));
    }
    const Ns real_minus_mono = real_now() - now;
    drain_rx(real_minus_mono);
    last_drain = now;
    const Ns t_rx = mono_now();
    serve_due(now);
    for (std::uint32_t id : immediate_) {
      Peer& p = peers_[id];
      p.queued = false;
      if (p.need_send) {
        build(id, TxKind::Rebase, p.need_final, 0);
      } else if (p.need_final) {
        build(id, TxKind::FinalOnly, true, 0);
      }
    }
    immediate_.clear();
    flush();
    if (measuring_) {
      const Ns t_tx = mono_now();
      rx_work_.add(static_cast<std::uint64_t>(t_rx - now));
      tx_work_.add(static_cast<std::uint64_t>(t_tx - t_rx));
    }

    // Phases.
    if (up_ != o_.sessions) {
      all_up_since_ = 0;
    } else if (all_up_since_ == 0) {
      all_up_since_ = now;
    }
    if (all_up_at_ == 0 && up_ == o_.sessions) {
      all_up_at_ = now;
      timeline_.emplace_back(static_cast<double>(now - t0_) / kSec, up_);
      progress("all %d sessions up after %.1f ms", o_.sessions,
               static_cast<double>(now - t0_) / kMs);
    }
    if (measuring_) min_up_ = std::min(min_up_, up_);
    if (!measuring_) {
      // Every session Up (again, if some flapped in the warm-up) for o_.settle.
      const bool ready = all_up_since_ != 0 && now >= all_up_since_ + o_.settle;
      if ((now >= t0_ + o_.warmup && ready) || now >= t0_ + o_.warmup + o_.up_timeout) {
        if (!ready) progress("up timeout: only %d/%d sessions up", up_, o_.sessions);
        begin_measure(now);
        next_poll = now + o_.poll_every / 2;
      }
    } else if (now >= measure_start_ + o_.duration) {
      progress("measure end t=%.3fs up=%d/%d", static_cast<double>(now - t0_) / kSec, up_,
               o_.sessions);
      break;
    }
    if (now >= hard_end) {  // cannot happen unless the clock misbehaves
      progress("time cap reached");
      break;
    }
    if (measuring_ && now >= next_poll) {
      start_polls();
      next_poll += o_.poll_every;
      if (next_poll <= now) next_poll = now + o_.poll_every;
    }
    if (now >= next_progress) {
      if (all_up_at_ == 0) {
        timeline_.emplace_back(static_cast<double>(now - t0_) / kSec, up_);
        if (!o_.quiet) {
          progress("t=%.1fs up=%d/%d", static_cast<double>(now - t0_) / kSec, up_, o_.sessions);
        }
      }
      next_progress += 1 * kSec;
      if (next_progress <= now) next_progress = now + 1 * kSec;
    }

    // Next wake-up: the earliest deadline still ahead, rounded up to the slot
    // grid. A phase deadline already passed (warm-up over, waiting for the
    // last sessions) must not make the loop spin: it is ignored, and the
    // rx-wait bound wakes the loop to re-check.
    Ns next = last_drain + o_.rx_wait;
    auto consider = [&](Ns t) {
      if (t > now) next = std::min(next, t);
    };
    consider(next_progress);
    consider(hard_end);
    if (!heap_.empty()) next = std::min(next, heap_.top().at);  // due work: at once
    if (measuring_) {
      consider(next_poll);
      consider(measure_start_ + o_.duration);
    } else {
      consider(t0_ + o_.warmup);
      consider(t0_ + o_.warmup + o_.up_timeout);
      if (all_up_since_ != 0) consider(all_up_since_ + o_.settle);
    }
    target = slot_up(next);
    if (target > mono_now()) {
      timespec ts{static_cast<time_t>(target / kSec), static_cast<long>(target % kSec)};
      while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
      }
    }
  }
  const Ns end = mono_now();
  measuring_ = false;
  send_admin_down();
  return report(end);
}

// ------------------------------------------------------------ report

int Generator::report(Ns now) {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return Ns{t.tv_sec} * kSec + Ns{t.tv_usec} * kUs; };
  const Ns window = std::max<Ns>(now - measure_start_, 1);
  const Ns cpu =
      (tv(ru.ru_utime) + tv(ru.ru_stime)) - (tv(ru_start_.ru_utime) + tv(ru_start_.ru_stime));
  const double cpu_pct = 100.0 * static_cast<double>(cpu) / static_cast<double>(window);
  const double secs = static_cast<double>(window) / kSec;
  auto us = [](std::uint64_t ns) { return static_cast<unsigned long long>((ns + 500) / 1000); };
  auto pct = [](std::uint64_t v) { return static_cast<double>(v) / 100.0; };
  const std::uint64_t late_p99 = late_.quantile(0.99);
  const std::uint32_t drops = rx_ovfl_ - rx_ovfl_at_start_;

  std::printf("loadgen summary: %d sessions @ %u us against %s, window %.1f s\n", o_.sessions,
              interval_us_, ip_text(o_.dut).c_str(), secs);
  if (all_up_at_ != 0) {
    std::printf("  all up after      %.1f ms\n", static_cast<double>(all_up_at_ - t0_) / kMs);
  } else {
    std::printf("  all up after      never (max %d)\n", up_);
  }
  std::printf("  up over time      ");
  for (const auto& [t, u] : timeline_) std::printf("%.1fs:%d ", t, u);
  std::printf("\n");
  std::printf("  up at end         %d (min in window %d)\n", up_, min_up_);
  std::printf(
      "  flaps             %llu (dut down %llu, of which admin-down %llu; timeout %llu); "
      "whole run %llu\n",
      static_cast<unsigned long long>(flaps_), static_cast<unsigned long long>(flaps_dut_down_),
      static_cast<unsigned long long>(flaps_admin_down_),
      static_cast<unsigned long long>(flaps_timeout_), static_cast<unsigned long long>(flaps_all_));
  std::printf("  gaps              n=%llu p50=%.1f%% p99=%.1f%% max=%.1f%% below75=%llu\n",
              static_cast<unsigned long long>(gap_pct_.count()), pct(gap_pct_.quantile(0.5)),
              pct(gap_pct_.quantile(0.99)), pct(gap_pct_.max()),
              static_cast<unsigned long long>(gaps_below_75_));
  std::printf(
      "  dut tx error      p50=%llu us p99=%llu us max=%llu us (outside 75-100%%); "
      "early gaps short of 75%% by p50=%llu us max=%llu us\n",
      us(tx_err_.quantile(0.5)), us(tx_err_.quantile(0.99)), us(tx_err_.max()),
      us(early_.quantile(0.5)), us(early_.max()));
  std::printf(
      "  poll->final       started=%llu answered=%llu lost=%llu p50=%llu us p99=%llu us "
      "max=%llu us\n",
      static_cast<unsigned long long>(polls_started_),
      static_cast<unsigned long long>(polls_answered_),
      static_cast<unsigned long long>(polls_lost_), us(poll_rtt_.quantile(0.5)),
      us(poll_rtt_.quantile(0.99)), us(poll_rtt_.max()));
  std::printf(
      "  generator late    per packet p50=%llu us p99=%llu us max=%llu us; per wake-up "
      "p99=%llu us\n",
      us(late_.quantile(0.5)), us(late_p99), us(late_.max()), us(wake_late_.quantile(0.99)));
  std::printf(
      "  generator work    per wake-up rx p50=%llu us p99=%llu us max=%llu us, tx p50=%llu "
      "us p99=%llu us max=%llu us\n",
      us(rx_work_.quantile(0.5)), us(rx_work_.quantile(0.99)), us(rx_work_.max()),
      us(tx_work_.quantile(0.5)), us(tx_work_.quantile(0.99)), us(tx_work_.max()));
  std::printf("  generator         cpu %.1f%%, %.0f wake-ups/s, tx %.0f pkt/s, rx %.0f pkt/s\n",
              cpu_pct, static_cast<double>(wakeups_in_window_) / secs,
              static_cast<double>(tx_in_window_) / secs, static_cast<double>(rx_in_window_) / secs);
  std::printf(
      "  rx                total=%llu socket-drops=%u bad=%llu unknown=%llu foreign=%llu "
      "bad-ttl=%llu low-sport=%llu no-ts=%llu; tx total=%llu errors=%llu\n",
      static_cast<unsigned long long>(rx_packets_), drops, static_cast<unsigned long long>(rx_bad_),
      static_cast<unsigned long long>(rx_unknown_), static_cast<unsigned long long>(rx_foreign_),
      static_cast<unsigned long long>(rx_bad_ttl_), static_cast<unsigned long long>(rx_bad_sport_),
      static_cast<unsigned long long>(rx_no_ts_), static_cast<unsigned long long>(tx_packets_),
      static_cast<unsigned long long>(tx_errors_));
  std::fflush(stdout);
  if (static_cast<Ns>(late_p99) * 4 > o_.interval) {
    std::printf(
        "loadgen: generator fell behind: late_p99_us=%llu > 25%% of the interval "
        "(%u us); no result\n",
        us(late_p99), interval_us_);
    std::fflush(stdout);
    std::fprintf(stderr, "bfd-loadgen: generator fell behind\n");
    return 3;
  }
  std::printf(
      "loadgen sessions=%d up=%d flaps=%llu flaps_dut_down=%llu flaps_timeout=%llu "
      "gap_p99_pct=%.1f gaps_below_75=%llu poll_final_p50_us=%llu poll_final_p99_us=%llu "
      "late_p99_us=%llu gap_p50_pct=%.1f gap_max_pct=%.1f tx_err_p99_us=%llu all_up_ms=%.0f "
      "polls=%llu polls_answered=%llu rx_drops=%u gen_cpu_pct=%.1f\n",
      o_.sessions, up_, static_cast<unsigned long long>(flaps_),
      static_cast<unsigned long long>(flaps_dut_down_),
      static_cast<unsigned long long>(flaps_timeout_), pct(gap_pct_.quantile(0.99)),
      static_cast<unsigned long long>(gaps_below_75_), us(poll_rtt_.quantile(0.5)),
      us(poll_rtt_.quantile(0.99)), us(late_p99), pct(gap_pct_.quantile(0.5)), pct(gap_pct_.max()),
      us(tx_err_.quantile(0.99)),
      all_up_at_ != 0 ? static_cast<double>(all_up_at_ - t0_) / kMs : -1.0,
      static_cast<unsigned long long>(polls_started_),
      static_cast<unsigned long long>(polls_answered_), drops, cpu_pct);
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_args(argc, argv);
  std::signal(SIGALRM, on_alarm);
  ::alarm(static_cast<unsigned>((o.max_seconds + kSec - 1) / kSec));
  // Wake-ups on time: no timer slack, and (when permitted) SCHED_FIFO so that
  // other work on the generator's CPU cannot delay its slots. The DUT is not
  // affected: it runs on another CPU at normal priority.
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  if (o.rt_priority > 0) {
    sched_param sp{};
    sp.sched_priority = o.rt_priority;
    if (::sched_setscheduler(0, SCHED_FIFO, &sp) != 0) {
      std::fprintf(stderr, "bfd-loadgen: SCHED_FIFO not available (%s), normal scheduling\n",
                   std::strerror(errno));
    }
  }
  Generator gen(o);
  if (!gen.open_sockets()) return 2;
  return gen.run();
}
