// bfd-txbench: what does it cost the engine thread to transmit one wake-up's batch of BFD
// Control packets (24-byte UDP payload to port 3784, one UDP source port per session in
// 49152-65535, TTL/Hop Limit 255, TOS/Traffic Class 0xC0) to N different peers on one link?
//
// Standalone (libc, Linux headers, liburing). Normally driven by test/bench/txbench-run,
// which builds the namespace lab: the sender namespace (this process, started in it with
// `ip netns exec`) holds t0 = 10.77.0.1/16 + fd77::1/64, the receiver namespace (--rx-netns)
// holds r0 with one address per session: 10.77.1.1 + i and fd77::1:(i+1). Session i sends
// from source port 49152 + i to the i-th receiver address. Every receiver address has a
// permanent neighbour entry on the sender (no ARP/ND during the runs).
//
// A child process (forked at start) setns()es into the receiver namespace, pins itself to
// --rx-cpu and, with --rx-mode sock, drains UDP 3784 (IPv4 and IPv6 sockets) with
// recvmmsg(MSG_DONTWAIT), spinning while a run is active (no sleeping reader: a wake-up of an
// idle CPU is an IPI sent from the sender's CPU, a VM exit). Every datagram is checked: source
// address and port (49152 + session), destination (pktinfo), TTL/Hop Limit 255 and TOS/TClass
// 0xC0 (cmsgs), length 24, My Discriminator = session + 1; per-session counters live in shared
// memory. A datagram with a bad UDP checksum never reaches the socket: the kernel counts it in
// UdpInCsumErrors, which is reported too (raw-socket packets are CHECKSUM_NONE on veth, so the
// receiver really verifies them in software).
// Other --rx-mode values: `count` (the driver installed a drop rule in the receiver namespace,
// nftables inet prerouting or netdev ingress; delivery is counted from r0's rx_packets, read
// through /proc/<child>/net/dev), `txdrop` (the driver installed an nftables netdev egress
// drop on the sender's t0: the sender's stack without the veth hand-over and without any
// receive path; counted from that rule's counter).
//
// Variants (one send path each; payload rebuilt every batch as the engine would):
//   a      sendto() per packet, N unconnected UDP sockets bound to (10.77.0.1, sport)
//   b      send() per packet, N connected UDP sockets
//   c      sendmmsg() over ONE raw socket (AF_INET, SOCK_RAW, IPPROTO_UDP): we write the UDP
//          header (sport per session, checksum with pseudo header); per-message IP_PKTINFO
//          cmsg (source address + ifindex); TTL/TOS as socket options; drop-all classic BPF
//          filter so that the socket does not queue a copy of every UDP packet received
//   c2     sendmmsg() over ONE IPPROTO_RAW socket (send-only, IP_HDRINCL implied): we write
//          IP + UDP headers (TTL/TOS/saddr in the header), SO_BINDTODEVICE, no cmsg
//   d      io_uring: N IORING_OP_SEND (fixed files) on the N connected sockets, one
//          io_uring_submit() per batch (completions reaped from the CQ without a call)
//   dg     d, but io_uring_submit_and_get_events() (also flushes deferred completions)
//   d2     io_uring: N IORING_OP_SENDMSG (fixed files, msg_name) on the N unconnected sockets
//   a6     IPv6 sendto() per packet on N unconnected UDP sockets bound to (fd77::1, sport)
//   b6/d6  IPv6 versions of b and d
//   c6     IPv6 sendmmsg() over ONE raw socket (AF_INET6, SOCK_RAW, IPPROTO_UDP) with
//          IPV6_CHECKSUM = 6 (kernel fills the UDP checksum), per-message IPV6_PKTINFO
//
// Per run (variant, N): 3 warm-up batches, then batches back to back for --seconds (bounded
// also by --max-batches). Measured: sender thread CPU (CLOCK_THREAD_CPUTIME_ID; this kernel
// has no IRQ time accounting, so softirq work done on the sender's stack is included), CPU 0
// and CPU 1 busy time from /proc/stat (user+nice+system+irq+softirq), wall time, system
// calls per batch (counted at the call sites), packets accepted by the kernel, delivered
// (r0 rx_packets / tc drops) and received + verified (sock mode).
// Output: one "RESULT k=v ..." line per run, then a table of medians over --reps.
//
// Also: --selftest (the raw socket's BPF filter really stops copies), --ll-check (IPv6
// link-local destination with and without an interface), --icmp-check (what an ICMP port
// unreachable does to a connected UDP socket and to a raw socket).

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <linux/filter.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef TXBENCH_HAVE_URING
#include <liburing.h>
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace {

constexpr int kMaxSessions = 4096;
constexpr uint16_t kBfdPort = 3784;
constexpr uint16_t kSportBase = 49152;
constexpr int kTtl = 255;
constexpr int kTos = 0xC0;
constexpr size_t kBfdLen = 24;
constexpr uint32_t kSrc4 = 0x0A4D0001;      // 10.77.0.1
constexpr uint32_t kDst4Base = 0x0A4D0101;  // 10.77.1.1 + i

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "txbench: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}
void check(bool ok, const char* what) {
  if (!ok) die(what);
}

in_addr dst4(int i) {
  return in_addr{htonl(kDst4Base + static_cast<uint32_t>(i))};
}
in_addr src4() {
  return in_addr{htonl(kSrc4)};
}
in6_addr src6() {
  in6_addr a{};
  inet_pton(AF_INET6, "fd77::1", &a);
  return a;
}
in6_addr dst6(int i) {  // fd77::1:(i+1)
  in6_addr a{};
  inet_pton(AF_INET6, "fd77::1:0", &a);
  uint16_t low = htons(static_cast<uint16_t>(i + 1));
  std::memcpy(&a.s6_addr[14], &low, 2);
  return a;
}

double now_s(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// ---------------------------------------------------------------------------------------
// Packet building

// RFC 5880 Control packet, state Up, detect mult 3, 10 ms intervals. My Discriminator =
// session + 1 (checked by the receiver); Your Discriminator = batch number, so that the
// payload and the UDP checksum change every batch, as they would when the engine rebuilds.
void build_bfd(uint8_t* p, int session, uint32_t seq) {
  p[0] = 0x20;  // version 1, diag 0
  p[1] = 0xC0;  // state Up, no flags
  p[2] = 3;
  p[3] = kBfdLen;
  uint32_t v[5] = {htonl(static_cast<uint32_t>(session + 1)), htonl(seq), htonl(10000),
                   htonl(10000), 0};
  std::memcpy(p + 4, v, sizeof v);
}

uint32_t csum_add(uint32_t sum, const void* data, size_t len) {
  const auto* b = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
  if (len & 1) sum += static_cast<uint32_t>(b[len - 1] << 8);
  return sum;
}
uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xFFFF);
}

// UDP header + payload at `udp` (8 + 24 bytes), checksum over the IPv4 pseudo header.
void build_udp4(uint8_t* udp, in_addr src, in_addr dst, uint16_t sport, int session, uint32_t seq) {
  build_bfd(udp + 8, session, seq);
  const uint16_t ulen = 8 + kBfdLen;
  uint16_t h[4] = {htons(sport), htons(kBfdPort), htons(ulen), 0};
  std::memcpy(udp, h, 8);
  uint32_t sum = 0;
  sum = csum_add(sum, &src.s_addr, 4);
  sum = csum_add(sum, &dst.s_addr, 4);
  sum += IPPROTO_UDP;
  sum += ulen;
  sum = csum_add(sum, udp, ulen);
  uint16_t c = csum_fold(sum);
  if (c == 0) c = 0xFFFF;  // 0 means "no checksum" in IPv4 UDP
  c = htons(c);
  std::memcpy(udp + 6, &c, 2);
}

// ---------------------------------------------------------------------------------------
// Shared state with the receiver child

struct Shared {
  std::atomic<int> active;  // 1 while a run is going on: the receiver spins
  std::atomic<int> stop;
  std::atomic<int> ready;
  std::atomic<uint64_t> rx_total, rx_ll, bad_src, bad_sport, bad_ttl, bad_tos, bad_len, bad_payload,
      bad_dst;
  std::atomic<uint32_t> per_session[2][kMaxSessions];  // [0] IPv4, [1] IPv6
};
Shared* g_sh = nullptr;

struct RxCounters {
  uint64_t total = 0, ll = 0, bad = 0;
  std::vector<uint32_t> s4, s6;
};
RxCounters rx_snapshot() {
  RxCounters c;
  c.total = g_sh->rx_total.load();
  c.ll = g_sh->rx_ll.load();
  c.bad = g_sh->bad_src.load() + g_sh->bad_sport.load() + g_sh->bad_ttl.load() +
          g_sh->bad_tos.load() + g_sh->bad_len.load() + g_sh->bad_payload.load() +
          g_sh->bad_dst.load();
  c.s4.resize(kMaxSessions);
  c.s6.resize(kMaxSessions);
  for (int i = 0; i < kMaxSessions; ++i) {
    c.s4[i] = g_sh->per_session[0][i].load(std::memory_order_relaxed);
    c.s6[i] = g_sh->per_session[1][i].load(std::memory_order_relaxed);
  }
  return c;
}

void pin_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  check(sched_setaffinity(0, sizeof set, &set) == 0, "sched_setaffinity");
}

void rx_check4(const sockaddr_in& from, const msghdr& mh, size_t len, const uint8_t* buf) {
  int ttl = -1, tos = -1;
  in_addr dst{};
  bool have_dst = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&mh), c)) {
    if (c->cmsg_level != IPPROTO_IP) continue;
    if (c->cmsg_type == IP_TTL) std::memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
    if (c->cmsg_type == IP_TOS) tos = *CMSG_DATA(c);
    if (c->cmsg_type == IP_PKTINFO) {
      in_pktinfo pi{};
      std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
      dst = pi.ipi_addr;
      have_dst = true;
    }
  }
  int64_t idx = have_dst ? static_cast<int64_t>(ntohl(dst.s_addr)) - kDst4Base : -1;
  g_sh->rx_total++;
  if (idx < 0 || idx >= kMaxSessions) {
    g_sh->bad_dst++;
    return;
  }
  if (from.sin_addr.s_addr != src4().s_addr) {
    g_sh->bad_src++;
    return;
  }
  if (ntohs(from.sin_port) != kSportBase + idx) {
    g_sh->bad_sport++;
    return;
  }
  if (ttl != kTtl) {
    g_sh->bad_ttl++;
    return;
  }
  if (tos != kTos) {
    g_sh->bad_tos++;
    return;
  }
  if (len != kBfdLen) {
    g_sh->bad_len++;
    return;
  }
  uint32_t my = 0;
  std::memcpy(&my, buf + 4, 4);
  if (buf[0] != 0x20 || ntohl(my) != static_cast<uint32_t>(idx + 1)) {
    g_sh->bad_payload++;
    return;
  }
  g_sh->per_session[0][idx].fetch_add(1, std::memory_order_relaxed);
}

void rx_check6(const sockaddr_in6& from, const msghdr& mh, size_t len, const uint8_t* buf) {
  int hops = -1, tclass = -1;
  in6_addr dst{};
  bool have_dst = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&mh), c)) {
    if (c->cmsg_level != IPPROTO_IPV6) continue;
    if (c->cmsg_type == IPV6_HOPLIMIT) std::memcpy(&hops, CMSG_DATA(c), sizeof hops);
    if (c->cmsg_type == IPV6_TCLASS) std::memcpy(&tclass, CMSG_DATA(c), sizeof tclass);
    if (c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo pi{};
      std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
      dst = pi.ipi6_addr;
      have_dst = true;
    }
  }
  g_sh->rx_total++;
  if (have_dst && IN6_IS_ADDR_LINKLOCAL(&dst)) {  // --ll-check packets
    if (hops == kTtl && len == kBfdLen) g_sh->rx_ll++;
    return;
  }
  in6_addr base = dst6(0);
  int64_t idx = -1;
  if (have_dst && std::memcmp(&dst, &base, 14) == 0)
    idx = static_cast<int64_t>(dst.s6_addr[14] << 8 | dst.s6_addr[15]) - 1;
  if (idx < 0 || idx >= kMaxSessions) {
    g_sh->bad_dst++;
    return;
  }
  in6_addr s = src6();
  if (std::memcmp(&from.sin6_addr, &s, 16) != 0) {
    g_sh->bad_src++;
    return;
  }
  if (ntohs(from.sin6_port) != kSportBase + idx) {
    g_sh->bad_sport++;
    return;
  }
  if (hops != kTtl) {
    g_sh->bad_ttl++;
    return;
  }
  if (tclass != kTos) {
    g_sh->bad_tos++;
    return;
  }
  if (len != kBfdLen) {
    g_sh->bad_len++;
    return;
  }
  uint32_t my = 0;
  std::memcpy(&my, buf + 4, 4);
  if (buf[0] != 0x20 || ntohl(my) != static_cast<uint32_t>(idx + 1)) {
    g_sh->bad_payload++;
    return;
  }
  g_sh->per_session[1][idx].fetch_add(1, std::memory_order_relaxed);
}

int rx_socket(int family) {
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  check(fd >= 0, "rx socket");
  int one = 1, big = 64 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  if (family == AF_INET) {
    setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &one, sizeof one);
    setsockopt(fd, IPPROTO_IP, IP_RECVTOS, &one, sizeof one);
    setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(kBfdPort);
    check(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0, "rx bind4");
  } else {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(kBfdPort);
    check(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0, "rx bind6");
  }
  return fd;
}

// Drains one socket; returns the number of datagrams read.
int rx_drain(int fd, int family) {
  constexpr int kVlen = 256;
  static uint8_t bufs[kVlen][64];
  static uint8_t ctl[kVlen][128];
  static sockaddr_storage from[kVlen];
  static iovec iov[kVlen];
  static mmsghdr mm[kVlen];
  for (int i = 0; i < kVlen; ++i) {
    iov[i] = {bufs[i], sizeof bufs[i]};
    mm[i].msg_hdr = msghdr{};
    mm[i].msg_hdr.msg_name = &from[i];
    mm[i].msg_hdr.msg_namelen = sizeof from[i];
    mm[i].msg_hdr.msg_iov = &iov[i];
    mm[i].msg_hdr.msg_iovlen = 1;
    mm[i].msg_hdr.msg_control = ctl[i];
    mm[i].msg_hdr.msg_controllen = sizeof ctl[i];
  }
  int n = recvmmsg(fd, mm, kVlen, MSG_DONTWAIT, nullptr);
  for (int i = 0; i < n; ++i) {
    if (family == AF_INET)
      rx_check4(*reinterpret_cast<sockaddr_in*>(&from[i]), mm[i].msg_hdr, mm[i].msg_len, bufs[i]);
    else
      rx_check6(*reinterpret_cast<sockaddr_in6*>(&from[i]), mm[i].msg_hdr, mm[i].msg_len, bufs[i]);
  }
  return n > 0 ? n : 0;
}

[[noreturn]] void receiver_main(const std::string& netns, int cpu, bool sock) {
  int nsfd = open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
  check(nsfd >= 0, "open netns");
  check(setns(nsfd, CLONE_NEWNET) == 0, "setns");
  close(nsfd);
  pin_cpu(cpu);
  int fd4 = -1, fd6 = -1;
  if (sock) {
    fd4 = rx_socket(AF_INET);
    fd6 = rx_socket(AF_INET6);
  }
  g_sh->ready = 1;
  while (!g_sh->stop.load()) {
    if (getppid() == 1) break;  // parent gone
    if (!sock) {
      usleep(20000);
      continue;
    }
    if (g_sh->active.load(std::memory_order_relaxed)) {
      // Spin while a run is active (bounded by the run: the parent clears `active`).
      rx_drain(fd4, AF_INET);
      rx_drain(fd6, AF_INET6);
      continue;
    }
    pollfd p[2] = {{fd4, POLLIN, 0}, {fd6, POLLIN, 0}};
    if (poll(p, 2, 20) > 0) {
      while (rx_drain(fd4, AF_INET) + rx_drain(fd6, AF_INET6) > 0) {
      }
    }
  }
  _exit(0);
}

// ---------------------------------------------------------------------------------------
// System counters

struct CpuStat {
  uint64_t busy[2] = {0, 0};
};
CpuStat read_cpustat() {
  CpuStat s;
  FILE* f = std::fopen("/proc/stat", "r");
  check(f != nullptr, "/proc/stat");
  char line[512];
  while (std::fgets(line, sizeof line, f)) {
    int cpu = -1;
    unsigned long long u, n, sy, id, io, irq, sirq;
    if (std::sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu", &cpu, &u, &n, &sy, &id, &io,
                    &irq, &sirq) == 8 &&
        cpu >= 0 && cpu < 2)
      s.busy[cpu] = u + n + sy + irq + sirq;
  }
  std::fclose(f);
  return s;
}
const double kTickNs = 1e9 / static_cast<double>(sysconf(_SC_CLK_TCK));

// rx_packets of `dev` in the namespace of process `pid`.
uint64_t dev_rx_packets(pid_t pid, const char* dev) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/net/dev", pid);
  FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  char line[512];
  uint64_t v = 0;
  std::string want = std::string(dev) + ":";
  while (std::fgets(line, sizeof line, f)) {
    char* p = line;
    while (*p == ' ') ++p;
    if (std::strncmp(p, want.c_str(), want.size()) == 0) {
      unsigned long long bytes = 0, pk = 0;
      std::sscanf(p + want.size(), "%llu %llu", &bytes, &pk);
      v = pk;
    }
  }
  std::fclose(f);
  return v;
}

// One field of the "Udp:" (or "Udp6" from snmp6) counters in the namespace of `pid`.
uint64_t snmp_udp(pid_t pid, const char* field) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/net/snmp", pid);
  FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  char hdr[1024], val[1024];
  uint64_t out = 0;
  while (std::fgets(hdr, sizeof hdr, f) && std::fgets(val, sizeof val, f)) {
    if (std::strncmp(hdr, "Udp: ", 5) != 0) continue;
    std::vector<std::string> names, vals;
    for (char* t = std::strtok(hdr + 5, " \n"); t; t = std::strtok(nullptr, " \n"))
      names.push_back(t);
    for (char* t = std::strtok(val + 5, " \n"); t; t = std::strtok(nullptr, " \n"))
      vals.push_back(t);
    for (size_t i = 0; i < names.size() && i < vals.size(); ++i)
      if (names[i] == field) out = std::strtoull(vals[i].c_str(), nullptr, 10);
  }
  std::fclose(f);
  return out;
}
uint64_t snmp6(pid_t pid, const char* field) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/net/snmp6", pid);
  FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  char name[128];
  unsigned long long v;
  uint64_t out = 0;
  while (std::fscanf(f, "%127s %llu", name, &v) == 2)
    if (std::strcmp(name, field) == 0) out = v;
  std::fclose(f);
  return out;
}

// Packets counted by the nftables netdev egress drop rule on `dev` (--rx-mode txdrop, set up
// by txbench-run as table netdev txb, chain eg, "counter drop").
uint64_t txdrop_count() {
  FILE* p = popen("nft list chain netdev txb eg 2>/dev/null", "r");
  if (!p) return 0;
  char line[512];
  uint64_t v = 0;
  while (std::fgets(line, sizeof line, p)) {
    const char* d = std::strstr(line, "counter packets ");
    if (d) v = std::strtoull(d + 16, nullptr, 10);
  }
  pclose(p);
  return v;
}

// ---------------------------------------------------------------------------------------
// Variants

struct BatchStats {
  uint64_t ok = 0, err = 0, syscalls = 0, late = 0;  // late: io_uring CQEs not there at once
  int last_errno = 0;
};

class Variant {
 public:
  virtual ~Variant() = default;
  virtual bool ipv6() const { return false; }
  virtual void setup(int n) = 0;
  virtual void send_batch(uint32_t seq, BatchStats& st) = 0;
};

int ifindex_of(const std::string& dev) {
  int i = static_cast<int>(if_nametoindex(dev.c_str()));
  check(i > 0, "if_nametoindex");
  return i;
}

void drop_all_filter(int fd) {
  // Classic BPF "ret 0": every packet the raw socket would receive is dropped before it
  // is queued (the lookup and the filter run still happen per received UDP packet).
  static sock_filter code[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  sock_fprog prog{1, code};
  check(setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0, "SO_ATTACH_FILTER");
}

std::vector<int> udp_sockets(int n, int family, bool connected) {
  std::vector<int> fds(n);
  int one = 1, ttl = kTtl, tos = kTos;
  for (int i = 0; i < n; ++i) {
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    check(fd >= 0, "socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET) {
      check(setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) == 0, "IP_TTL");
      check(setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos) == 0, "IP_TOS");
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr = src4();
      a.sin_port = htons(static_cast<uint16_t>(kSportBase + i));
      check(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0, "bind");
      if (connected) {
        sockaddr_in d{};
        d.sin_family = AF_INET;
        d.sin_addr = dst4(i);
        d.sin_port = htons(kBfdPort);
        check(connect(fd, reinterpret_cast<sockaddr*>(&d), sizeof d) == 0, "connect");
      }
    } else {
      check(setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl) == 0, "HOPS");
      check(setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof tos) == 0, "TCLASS");
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_addr = src6();
      a.sin6_port = htons(static_cast<uint16_t>(kSportBase + i));
      check(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0, "bind6");
      if (connected) {
        sockaddr_in6 d{};
        d.sin6_family = AF_INET6;
        d.sin6_addr = dst6(i);
        d.sin6_port = htons(kBfdPort);
        check(connect(fd, reinterpret_cast<sockaddr*>(&d), sizeof d) == 0, "connect6");
      }
    }
    fds[i] = fd;
  }
  return fds;
}

class UdpVariant : public Variant {
 public:
  UdpVariant(int family, bool connected) : family_(family), connected_(connected) {}
  ~UdpVariant() override {
    for (int fd : fds_) close(fd);
  }
  bool ipv6() const override { return family_ == AF_INET6; }
  void setup(int n) override {
    fds_ = udp_sockets(n, family_, connected_);
    bufs_.assign(static_cast<size_t>(n) * kBfdLen, 0);
    d4_.resize(n);
    d6_.resize(n);
    for (int i = 0; i < n; ++i) {
      d4_[i] = sockaddr_in{};
      d4_[i].sin_family = AF_INET;
      d4_[i].sin_addr = dst4(i);
      d4_[i].sin_port = htons(kBfdPort);
      d6_[i] = sockaddr_in6{};
      d6_[i].sin6_family = AF_INET6;
      d6_[i].sin6_addr = dst6(i);
      d6_[i].sin6_port = htons(kBfdPort);
    }
  }
  void send_batch(uint32_t seq, BatchStats& st) override {
    const int n = static_cast<int>(fds_.size());
    for (int i = 0; i < n; ++i) {
      uint8_t* p = &bufs_[static_cast<size_t>(i) * kBfdLen];
      build_bfd(p, i, seq);
      ssize_t r;
      if (connected_)
        r = send(fds_[i], p, kBfdLen, 0);
      else if (family_ == AF_INET)
        r = sendto(fds_[i], p, kBfdLen, 0, reinterpret_cast<sockaddr*>(&d4_[i]), sizeof d4_[i]);
      else
        r = sendto(fds_[i], p, kBfdLen, 0, reinterpret_cast<sockaddr*>(&d6_[i]), sizeof d6_[i]);
      ++st.syscalls;
      if (r == static_cast<ssize_t>(kBfdLen)) {
        ++st.ok;
      } else {
        ++st.err;
        st.last_errno = errno;
      }
    }
  }

 private:
  int family_;
  bool connected_;
  std::vector<int> fds_;
  std::vector<uint8_t> bufs_;
  std::vector<sockaddr_in> d4_;
  std::vector<sockaddr_in6> d6_;
};

// sendmmsg() in chunks of at most UIO_MAXIOV (1024) messages; a short return (an error on
// message k) counts message k as failed and continues after it.
void sendmmsg_all(int fd, mmsghdr* mm, int n, BatchStats& st) {
  int done = 0;
  while (done < n) {
    int chunk = std::min(n - done, 1024);
    int r = sendmmsg(fd, mm + done, static_cast<unsigned>(chunk), 0);
    ++st.syscalls;
    if (r < 0) {
      st.last_errno = errno;
      ++st.err;
      ++done;
      continue;
    }
    st.ok += static_cast<uint64_t>(r);
    done += r;  // r < chunk: message `done` failed; the next call reports and skips it
  }
}

// (c) one raw IPPROTO_UDP socket, own UDP header, per-message IP_PKTINFO.
class Raw4Variant : public Variant {
 public:
  explicit Raw4Variant(std::string dev) : dev_(std::move(dev)) {}
  ~Raw4Variant() override {
    if (fd_ >= 0) close(fd_);
  }
  void setup(int n) override {
    fd_ = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP);
    check(fd_ >= 0, "raw socket (needs CAP_NET_RAW)");
    drop_all_filter(fd_);
    int ttl = kTtl, tos = kTos, big = 16 << 20;
    check(setsockopt(fd_, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) == 0, "IP_TTL");
    check(setsockopt(fd_, IPPROTO_IP, IP_TOS, &tos, sizeof tos) == 0, "IP_TOS");
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
    const int ifindex = ifindex_of(dev_);
    n_ = n;
    pkt_.assign(static_cast<size_t>(n) * 32, 0);
    ctl_.assign(static_cast<size_t>(n) * CMSG_SPACE(sizeof(in_pktinfo)), 0);
    dst_.resize(n);
    iov_.resize(n);
    mm_.resize(n);
    for (int i = 0; i < n; ++i) {
      dst_[i] = sockaddr_in{};
      dst_[i].sin_family = AF_INET;
      dst_[i].sin_addr = dst4(i);  // sin_port must be 0 (or IPPROTO_UDP) on a raw socket
      iov_[i] = {&pkt_[static_cast<size_t>(i) * 32], 32};
      msghdr& m = mm_[i].msg_hdr;
      m = msghdr{};
      m.msg_name = &dst_[i];
      m.msg_namelen = sizeof dst_[i];
      m.msg_iov = &iov_[i];
      m.msg_iovlen = 1;
      m.msg_control = &ctl_[static_cast<size_t>(i) * CMSG_SPACE(sizeof(in_pktinfo))];
      m.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
      cmsghdr* c = CMSG_FIRSTHDR(&m);
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
      in_pktinfo pi{};
      pi.ipi_ifindex = ifindex;  // egress interface (routing restricted to it)
      pi.ipi_spec_dst = src4();  // source address of the packet
      std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
    }
  }
  void send_batch(uint32_t seq, BatchStats& st) override {
    for (int i = 0; i < n_; ++i)
      build_udp4(&pkt_[static_cast<size_t>(i) * 32], src4(), dst4(i),
                 static_cast<uint16_t>(kSportBase + i), i, seq);
    sendmmsg_all(fd_, mm_.data(), n_, st);
  }

 private:
  std::string dev_;
  int fd_ = -1, n_ = 0;
  std::vector<uint8_t> pkt_, ctl_;
  std::vector<sockaddr_in> dst_;
  std::vector<iovec> iov_;
  std::vector<mmsghdr> mm_;
};

// (c2) one IPPROTO_RAW socket (send-only, header included), SO_BINDTODEVICE, no cmsg.
class RawHdrVariant : public Variant {
 public:
  explicit RawHdrVariant(std::string dev) : dev_(std::move(dev)) {}
  ~RawHdrVariant() override {
    if (fd_ >= 0) close(fd_);
  }
  void setup(int n) override {
    fd_ = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    check(fd_ >= 0, "raw socket");
    check(setsockopt(fd_, SOL_SOCKET, SO_BINDTODEVICE, dev_.c_str(),
                     static_cast<socklen_t>(dev_.size())) == 0,
          "SO_BINDTODEVICE");
    int big = 16 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
    n_ = n;
    pkt_.assign(static_cast<size_t>(n) * 52, 0);
    dst_.resize(n);
    iov_.resize(n);
    mm_.resize(n);
    for (int i = 0; i < n; ++i) {
      dst_[i] = sockaddr_in{};
      dst_[i].sin_family = AF_INET;
      dst_[i].sin_addr = dst4(i);
      iov_[i] = {&pkt_[static_cast<size_t>(i) * 52], 52};
      msghdr& m = mm_[i].msg_hdr;
      m = msghdr{};
      m.msg_name = &dst_[i];
      m.msg_namelen = sizeof dst_[i];
      m.msg_iov = &iov_[i];
      m.msg_iovlen = 1;
    }
  }
  void send_batch(uint32_t seq, BatchStats& st) override {
    for (int i = 0; i < n_; ++i) {
      uint8_t* p = &pkt_[static_cast<size_t>(i) * 52];
      iphdr ip{};
      ip.version = 4;
      ip.ihl = 5;
      ip.tos = kTos;
      ip.tot_len = htons(52);  // the kernel rewrites tot_len, id (if 0) and the checksum
      ip.frag_off = htons(IP_DF);
      ip.ttl = kTtl;
      ip.protocol = IPPROTO_UDP;
      ip.saddr = src4().s_addr;
      ip.daddr = dst4(i).s_addr;
      std::memcpy(p, &ip, sizeof ip);
      build_udp4(p + 20, src4(), dst4(i), static_cast<uint16_t>(kSportBase + i), i, seq);
    }
    sendmmsg_all(fd_, mm_.data(), n_, st);
  }

 private:
  std::string dev_;
  int fd_ = -1, n_ = 0;
  std::vector<uint8_t> pkt_;
  std::vector<sockaddr_in> dst_;
  std::vector<iovec> iov_;
  std::vector<mmsghdr> mm_;
};

// (c6) one raw IPv6 IPPROTO_UDP socket, IPV6_CHECKSUM 6, per-message IPV6_PKTINFO.
class Raw6Variant : public Variant {
 public:
  explicit Raw6Variant(std::string dev) : dev_(std::move(dev)) {}
  ~Raw6Variant() override {
    if (fd_ >= 0) close(fd_);
  }
  bool ipv6() const override { return true; }
  void setup(int n) override {
    fd_ = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP);
    check(fd_ >= 0, "raw6 socket");
    drop_all_filter(fd_);
    int off = 6, hops = kTtl, tc = kTos, big = 16 << 20;
    check(setsockopt(fd_, IPPROTO_IPV6, IPV6_CHECKSUM, &off, sizeof off) == 0, "IPV6_CHECKSUM");
    check(setsockopt(fd_, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops) == 0, "HOPS");
    check(setsockopt(fd_, IPPROTO_IPV6, IPV6_TCLASS, &tc, sizeof tc) == 0, "TCLASS");
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
    const int ifindex = ifindex_of(dev_);
    n_ = n;
    pkt_.assign(static_cast<size_t>(n) * 32, 0);
    ctl_.assign(static_cast<size_t>(n) * CMSG_SPACE(sizeof(in6_pktinfo)), 0);
    dst_.resize(n);
    iov_.resize(n);
    mm_.resize(n);
    for (int i = 0; i < n; ++i) {
      dst_[i] = sockaddr_in6{};
      dst_[i].sin6_family = AF_INET6;
      dst_[i].sin6_addr = dst6(i);
      iov_[i] = {&pkt_[static_cast<size_t>(i) * 32], 32};
      msghdr& m = mm_[i].msg_hdr;
      m = msghdr{};
      m.msg_name = &dst_[i];
      m.msg_namelen = sizeof dst_[i];
      m.msg_iov = &iov_[i];
      m.msg_iovlen = 1;
      m.msg_control = &ctl_[static_cast<size_t>(i) * CMSG_SPACE(sizeof(in6_pktinfo))];
      m.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
      cmsghdr* c = CMSG_FIRSTHDR(&m);
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
      in6_pktinfo pi{};
      pi.ipi6_addr = src6();
      pi.ipi6_ifindex = static_cast<unsigned>(ifindex);
      std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
    }
  }
  void send_batch(uint32_t seq, BatchStats& st) override {
    for (int i = 0; i < n_; ++i) {
      uint8_t* u = &pkt_[static_cast<size_t>(i) * 32];
      build_bfd(u + 8, i, seq);
      uint16_t h[4] = {htons(static_cast<uint16_t>(kSportBase + i)), htons(kBfdPort),
                       htons(8 + kBfdLen), 0};  // checksum 0: filled by IPV6_CHECKSUM
      std::memcpy(u, h, 8);
    }
    sendmmsg_all(fd_, mm_.data(), n_, st);
  }

 private:
  std::string dev_;
  int fd_ = -1, n_ = 0;
  std::vector<uint8_t> pkt_, ctl_;
  std::vector<sockaddr_in6> dst_;
  std::vector<iovec> iov_;
  std::vector<mmsghdr> mm_;
};

#ifdef TXBENCH_HAVE_URING
// (d) / (d2) / (d6) io_uring over the per-session sockets (registered as fixed files).
// One io_uring_submit() (= one io_uring_enter, no waiting) per batch; a UDP send completes
// inline, so its CQE is normally there when the call returns: the CQ is reaped right after
// without a system call, and CQEs that were not there yet ("late") at the next batch.
class UringVariant : public Variant {
 public:
  UringVariant(int family, bool sendmsg, bool get_events = false)
      : family_(family), sendmsg_(sendmsg), get_events_(get_events) {}
  ~UringVariant() override {
    if (ring_ok_) io_uring_queue_exit(&ring_);
    for (int fd : fds_) close(fd);
  }
  bool ipv6() const override { return family_ == AF_INET6; }
  void setup(int n) override {
    fds_ = udp_sockets(n, family_, !sendmsg_);
    n_ = n;
    bufs_.assign(static_cast<size_t>(n) * kBfdLen, 0);
    dst_.resize(n);
    iov_.resize(n);
    msg_.resize(n);
    for (int i = 0; i < n; ++i) {
      dst_[i] = sockaddr_in{};
      dst_[i].sin_family = AF_INET;
      dst_[i].sin_addr = dst4(i);
      dst_[i].sin_port = htons(kBfdPort);
      iov_[i] = {&bufs_[static_cast<size_t>(i) * kBfdLen], kBfdLen};
      msg_[i] = msghdr{};
      msg_[i].msg_name = &dst_[i];
      msg_[i].msg_namelen = sizeof dst_[i];
      msg_[i].msg_iov = &iov_[i];
      msg_[i].msg_iovlen = 1;
    }
    unsigned entries = 1;
    while (entries < static_cast<unsigned>(n)) entries <<= 1;
    io_uring_params p{};
    p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int r = io_uring_queue_init_params(entries, &ring_, &p);
    if (r < 0) {  // older kernel: plain ring
      p = io_uring_params{};
      r = io_uring_queue_init_params(entries, &ring_, &p);
    }
    errno = -r;
    check(r == 0, "io_uring_queue_init_params");
    ring_ok_ = true;
    r = io_uring_register_files(&ring_, fds_.data(), static_cast<unsigned>(n));
    errno = -r;
    check(r == 0, "io_uring_register_files");
  }
  void send_batch(uint32_t seq, BatchStats& st) override {
    if (inflight_) inflight_ -= reap(st);  // late CQEs of the previous batch
    for (int i = 0; i < n_; ++i) {
      build_bfd(&bufs_[static_cast<size_t>(i) * kBfdLen], i, seq);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (!sqe) {  // cannot happen: the ring holds n entries
        ++st.err;
        continue;
      }
      if (sendmsg_)
        io_uring_prep_sendmsg(sqe, i, &msg_[i], 0);
      else
        io_uring_prep_send(sqe, i, &bufs_[static_cast<size_t>(i) * kBfdLen], kBfdLen, 0);
      sqe->flags |= IOSQE_FIXED_FILE;
      sqe->user_data = static_cast<uint64_t>(i);
    }
    // get_events_: also flush deferred completions (IORING_ENTER_GETEVENTS, still one call);
    // with DEFER_TASKRUN a send that did not complete inline is posted only on such an enter.
    int r = get_events_ ? io_uring_submit_and_get_events(&ring_) : io_uring_submit(&ring_);
    ++st.syscalls;
    if (r < 0) {
      st.last_errno = -r;
      st.err += static_cast<uint64_t>(n_);
      return;
    }
    inflight_ += static_cast<unsigned>(r);
    unsigned seen = reap(st);
    inflight_ -= seen;
    st.late += inflight_;
  }

 private:
  unsigned reap(BatchStats& st) {
    unsigned head, seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      if (cqe->res == static_cast<int>(kBfdLen)) {
        ++st.ok;
      } else {
        ++st.err;
        st.last_errno = -cqe->res;
      }
    }
    io_uring_cq_advance(&ring_, seen);
    return seen;
  }
  int family_;
  bool sendmsg_, get_events_;
  bool ring_ok_ = false;
  io_uring ring_{};
  int n_ = 0;
  unsigned inflight_ = 0;
  std::vector<int> fds_;
  std::vector<uint8_t> bufs_;
  std::vector<sockaddr_in> dst_;
  std::vector<iovec> iov_;
  std::vector<msghdr> msg_;
};
#endif

std::unique_ptr<Variant> make_variant(const std::string& name, const std::string& dev) {
  if (name == "a") return std::make_unique<UdpVariant>(AF_INET, false);
  if (name == "b") return std::make_unique<UdpVariant>(AF_INET, true);
  if (name == "c") return std::make_unique<Raw4Variant>(dev);
  if (name == "c2") return std::make_unique<RawHdrVariant>(dev);
  if (name == "a6") return std::make_unique<UdpVariant>(AF_INET6, false);
  if (name == "b6") return std::make_unique<UdpVariant>(AF_INET6, true);
  if (name == "c6") return std::make_unique<Raw6Variant>(dev);
#ifdef TXBENCH_HAVE_URING
  if (name == "d") return std::make_unique<UringVariant>(AF_INET, false);
  if (name == "d2") return std::make_unique<UringVariant>(AF_INET, true);
  if (name == "d6") return std::make_unique<UringVariant>(AF_INET6, false);
  if (name == "dg") return std::make_unique<UringVariant>(AF_INET, false, true);
#endif
  return nullptr;
}

const char* describe(const std::string& v) {
  static const std::map<std::string, const char*> d = {
      {"a", "sendto, N unconnected UDP sockets"},
      {"b", "send, N connected UDP sockets"},
      {"c", "sendmmsg, 1 raw UDP socket + IP_PKTINFO"},
      {"c2", "sendmmsg, 1 IPPROTO_RAW socket, own IP hdr"},
      {"d", "io_uring SEND, N connected sockets"},
      {"d2", "io_uring SENDMSG, N unconnected sockets"},
      {"dg", "d with io_uring_submit_and_get_events"},
      {"a6", "IPv6 sendto, N unconnected UDP sockets"},
      {"b6", "IPv6 send, N connected UDP sockets"},
      {"d6", "IPv6 io_uring SEND, N connected sockets"},
      {"c6", "IPv6 sendmmsg, 1 raw socket + PKTINFO"}};
  auto it = d.find(v);
  return it == d.end() ? "?" : it->second;
}

// ---------------------------------------------------------------------------------------
// Runs

struct Opts {
  std::string rx_netns, dev = "t0", rx_dev = "r0", rx_mode = "sock";
  std::vector<std::string> variants = {"a", "b", "c", "d"};
  std::vector<int> sizes = {100, 1000, 4000};
  int reps = 3, tx_cpu = 0, rx_cpu = 1;
  double seconds = 3.0;
  uint64_t max_batches = 10'000'000;
  bool selftest = false, ll_check = false, icmp_check = false;
  std::string ll_dst;
};

struct Result {
  std::string variant;
  int n = 0, rep = 0;
  uint64_t batches = 0, sent_ok = 0, send_err = 0, syscalls = 0, delivered = 0, received = 0,
           bad = 0, sessions_wrong = 0, csum_err = 0, rcvbuf_err = 0, late = 0;
  double wall_s = 0, thread_ns_pp = 0, cpu0_ns_pp = 0, cpu1_ns_pp = 0, wall_ns_pp = 0;
  int last_errno = 0;
  bool ok = true;
};

pid_t g_child = -1;

uint64_t delivered_now(const Opts& o) {
  if (o.rx_mode == "txdrop") return txdrop_count();
  return dev_rx_packets(g_child, o.rx_dev.c_str());
}
uint64_t csum_errors_now() {
  return snmp_udp(g_child, "InCsumErrors") + snmp6(g_child, "Udp6InCsumErrors");
}
uint64_t rcvbuf_errors_now() {
  return snmp_udp(g_child, "RcvbufErrors") + snmp6(g_child, "Udp6RcvbufErrors");
}

// Waits (bounded: 2 s) until the receiver has counted `want` more datagrams than `base`,
// or its count stopped moving for 100 ms.
void settle(uint64_t base, uint64_t want) {
  uint64_t last = g_sh->rx_total.load();
  double t_last_change = now_s(CLOCK_MONOTONIC), t0 = t_last_change;
  for (int i = 0; i < 400; ++i) {
    uint64_t cur = g_sh->rx_total.load();
    if (cur - base >= want) return;
    double t = now_s(CLOCK_MONOTONIC);
    if (cur != last) {
      last = cur;
      t_last_change = t;
    }
    if (t - t_last_change > 0.1 || t - t0 > 2.0) return;
    usleep(5000);
  }
}

Result run_one(const Opts& o, const std::string& vname, int n, int rep) {
  Result res;
  res.variant = vname;
  res.n = n;
  res.rep = rep;
  auto v = make_variant(vname, o.dev);
  if (!v) {
    std::fprintf(stderr, "txbench: unknown or unavailable variant %s\n", vname.c_str());
    res.ok = false;
    return res;
  }
  const bool sock = o.rx_mode == "sock";
  v->setup(n);
  g_sh->active = 1;
  BatchStats warm;
  uint64_t base_rx = g_sh->rx_total.load();
  for (uint32_t s = 1; s <= 3; ++s) v->send_batch(s, warm);
  if (sock) settle(base_rx, warm.ok);

  RxCounters rx0 = sock ? rx_snapshot() : RxCounters{};
  uint64_t del0 = delivered_now(o), cs0 = csum_errors_now(), rb0 = rcvbuf_errors_now();
  BatchStats st;
  CpuStat c0 = read_cpustat();
  double w0 = now_s(CLOCK_MONOTONIC), t0 = now_s(CLOCK_THREAD_CPUTIME_ID);
  const double deadline = w0 + o.seconds;
  uint32_t seq = 100;
  uint64_t batches = 0;
  while (batches < o.max_batches) {
    v->send_batch(seq++, st);
    ++batches;
    if (now_s(CLOCK_MONOTONIC) >= deadline) break;
  }
  double t1 = now_s(CLOCK_THREAD_CPUTIME_ID), w1 = now_s(CLOCK_MONOTONIC);
  CpuStat c1 = read_cpustat();
  if (sock)
    settle(rx0.total, st.ok);
  else
    usleep(50000);
  g_sh->active = 0;

  res.batches = batches;
  res.sent_ok = st.ok;
  res.send_err = st.err;
  res.last_errno = st.last_errno;
  res.syscalls = st.syscalls;
  res.late = st.late;
  res.delivered = delivered_now(o) - del0;
  res.csum_err = csum_errors_now() - cs0;
  res.rcvbuf_err = rcvbuf_errors_now() - rb0;
  res.wall_s = w1 - w0;
  const double pk = static_cast<double>(batches) * n;
  res.thread_ns_pp = (t1 - t0) * 1e9 / pk;
  res.wall_ns_pp = (w1 - w0) * 1e9 / pk;
  res.cpu0_ns_pp = static_cast<double>(c1.busy[0] - c0.busy[0]) * kTickNs / pk;
  res.cpu1_ns_pp = static_cast<double>(c1.busy[1] - c0.busy[1]) * kTickNs / pk;
  if (sock) {
    RxCounters rx1 = rx_snapshot();
    res.received = rx1.total - rx0.total;
    res.bad = rx1.bad - rx0.bad;
    const auto& a = v->ipv6() ? rx1.s6 : rx1.s4;
    const auto& b = v->ipv6() ? rx0.s6 : rx0.s4;
    for (int i = 0; i < n; ++i)
      if (a[i] - b[i] != batches) ++res.sessions_wrong;
    res.ok = res.send_err == 0 && res.received == pk && res.bad == 0 && res.sessions_wrong == 0 &&
             res.csum_err == 0;
  } else {
    res.ok = res.send_err == 0 && res.delivered >= static_cast<uint64_t>(pk);
  }
  return res;
}

void print_result(const Opts& o, const Result& r) {
  std::printf(
      "RESULT variant=%s n=%d rep=%d rx_mode=%s batches=%llu wall_s=%.3f thread_ns_pp=%.1f "
      "cpu0_ns_pp=%.1f cpu1_ns_pp=%.1f wall_ns_pp=%.1f syscalls_pb=%.2f sent=%llu "
      "send_err=%llu errno=%d delivered=%llu received=%llu bad=%llu sessions_wrong=%llu "
      "csum_err=%llu rcvbuf_err=%llu late_cqes=%llu ok=%d\n",
      r.variant.c_str(), r.n, r.rep, o.rx_mode.c_str(), (unsigned long long)r.batches, r.wall_s,
      r.thread_ns_pp, r.cpu0_ns_pp, r.cpu1_ns_pp, r.wall_ns_pp,
      r.batches ? static_cast<double>(r.syscalls) / static_cast<double>(r.batches) : 0.0,
      (unsigned long long)r.sent_ok, (unsigned long long)r.send_err, r.last_errno,
      (unsigned long long)r.delivered, (unsigned long long)r.received, (unsigned long long)r.bad,
      (unsigned long long)r.sessions_wrong, (unsigned long long)r.csum_err,
      (unsigned long long)r.rcvbuf_err, (unsigned long long)r.late, r.ok ? 1 : 0);
  std::fflush(stdout);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

void print_table(const Opts& o, const std::vector<Result>& all) {
  std::printf("\nrx_mode=%s, medians of %d runs of %.1f s; ratio = variant / (a) at the same N\n",
              o.rx_mode.c_str(), o.reps, o.seconds);
  std::printf("%-3s %-44s %5s %9s %6s %9s %6s %9s %8s %s\n", "var", "send path", "N", "thread",
              "ratio", "cpu0", "ratio", "cpu1", "sys/bat", "delivery");
  std::printf("%-3s %-44s %5s %9s %6s %9s %6s %9s %8s\n", "", "", "", "ns/pkt", "", "ns/pkt", "",
              "ns/pkt", "");
  for (int n : o.sizes) {
    double base_t = 0, base_c = 0;
    for (const auto& vn : o.variants) {
      std::vector<double> t, c0, c1, sc;
      uint64_t sent = 0, del = 0, rec = 0, fails = 0;
      for (const auto& r : all) {
        if (r.variant != vn || r.n != n) continue;
        t.push_back(r.thread_ns_pp);
        c0.push_back(r.cpu0_ns_pp);
        c1.push_back(r.cpu1_ns_pp);
        sc.push_back(static_cast<double>(r.syscalls) / static_cast<double>(r.batches));
        sent += r.batches * static_cast<uint64_t>(n);
        del += r.delivered;
        rec += r.received;
        if (!r.ok) ++fails;
      }
      if (t.empty()) continue;
      double mt = median(t), mc = median(c0);
      if (vn == "a") base_t = mt, base_c = mc;
      char delivery[96];
      if (o.rx_mode == "sock")
        std::snprintf(delivery, sizeof delivery, "%s rcvd %llu/%llu", fails ? "LOSS" : "ok",
                      (unsigned long long)rec, (unsigned long long)sent);
      else
        std::snprintf(delivery, sizeof delivery, "%s dlvd %llu/%llu", fails ? "LOSS" : "ok",
                      (unsigned long long)del, (unsigned long long)sent);
      std::printf("%-3s %-44s %5d %9.0f %6.2f %9.0f %6.2f %9.0f %8.1f %s\n", vn.c_str(),
                  describe(vn), n, mt, base_t > 0 ? mt / base_t : 0, mc,
                  base_c > 0 ? mc / base_c : 0, median(c1), median(sc), delivery);
    }
  }
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------
// Checks

// The raw IPPROTO_UDP socket gets a copy of every UDP datagram the host receives unless a
// filter drops it. Shown on loopback in the sender namespace.
int selftest() {
  int bad = 0;
  {  // the price of a bare system call on this machine (entry/exit + mitigations)
    constexpr int kCalls = 200000;
    double t0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < kCalls; ++i) syscall(SYS_getppid);
    double t1 = now_s(CLOCK_THREAD_CPUTIME_ID);
    std::printf("SELFTEST bare system call (getppid): %.0f ns\n", (t1 - t0) * 1e9 / kCalls);
  }
  for (int with_filter = 0; with_filter < 2; ++with_filter) {
    int raw = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_UDP);
    check(raw >= 0, "raw socket");
    if (with_filter) drop_all_filter(raw);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in lo{};
    lo.sin_family = AF_INET;
    lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lo.sin_port = htons(9);
    char b[8] = "x";
    sendto(u, b, 1, 0, reinterpret_cast<sockaddr*>(&lo), sizeof lo);
    usleep(20000);
    char rb[256];
    ssize_t r = recv(raw, rb, sizeof rb, MSG_DONTWAIT);
    bool got = r > 0;
    std::printf(
        "SELFTEST raw IPPROTO_UDP socket %s drop-all filter: %s a copy of a local UDP "
        "datagram\n",
        with_filter ? "with" : "without", got ? "RECEIVED" : "did not receive");
    if (with_filter == got) ++bad;  // want: copy without filter, none with it
    close(u);
    close(raw);
  }
  return bad;
}

// IPv6 link-local destination on a raw socket: what the kernel requires.
int ll_check(const Opts& o) {
  int fd = socket(AF_INET6, SOCK_RAW, IPPROTO_UDP);
  check(fd >= 0, "raw6");
  drop_all_filter(fd);
  int off = 6, hops = kTtl;
  setsockopt(fd, IPPROTO_IPV6, IPV6_CHECKSUM, &off, sizeof off);
  setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof hops);
  const int ifindex = ifindex_of(o.dev);
  sockaddr_in6 d{};
  d.sin6_family = AF_INET6;
  check(inet_pton(AF_INET6, o.ll_dst.c_str(), &d.sin6_addr) == 1, "--ll-dst");
  uint8_t pkt[32];
  auto build = [&](uint32_t seq) {
    build_bfd(pkt + 8, 0, seq);
    uint16_t h[4] = {htons(kSportBase), htons(kBfdPort), htons(32), 0};
    std::memcpy(pkt, h, 8);
  };
  auto try_send = [&](const char* what, bool scope, bool pktinfo) {
    build(1);
    sockaddr_in6 dd = d;
    if (scope) dd.sin6_scope_id = static_cast<uint32_t>(ifindex);
    iovec iov{pkt, sizeof pkt};
    alignas(cmsghdr) uint8_t ctl[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
    msghdr m{};
    m.msg_name = &dd;
    m.msg_namelen = sizeof dd;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (pktinfo) {
      m.msg_control = ctl;
      m.msg_controllen = sizeof ctl;
      cmsghdr* c = CMSG_FIRSTHDR(&m);
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
      in6_pktinfo pi{};  // source :: = the kernel picks t0's link-local address
      pi.ipi6_ifindex = static_cast<unsigned>(ifindex);
      std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
    }
    uint64_t before = g_sh->rx_ll.load();
    ssize_t r = sendmsg(fd, &m, 0);
    int e = errno;
    usleep(50000);
    uint64_t got = g_sh->rx_ll.load() - before;
    std::printf("LLCHECK %-40s sendmsg=%s received by the peer on %s=%llu\n", what,
                r < 0 ? std::strerror(e) : "ok", o.dev.c_str(), (unsigned long long)got);
    return r >= 0 && got == 1;
  };
  g_sh->active = 1;
  // Without an interface the kernel takes whichever fe80::/64 route comes first (the driver
  // adds a second link, t1, whose route is found first): the packet may leave by the wrong link.
  try_send("fe80:: dst, no scope_id, no pktinfo:", false, false);
  bool b = try_send("fe80:: dst, sin6_scope_id = ifindex:", true, false);
  bool c = try_send("fe80:: dst, IPV6_PKTINFO ifindex:", false, true);
  g_sh->active = 0;
  close(fd);
  return (b && c) ? 0 : 1;
}

// ICMP port unreachable from a peer without a BFD listener: effect on a connected UDP
// socket (next send fails with ECONNREFUSED and that packet is NOT sent), on an unconnected
// one (ignored), and on a raw socket with IP_RECVERR (error queue).
int icmp_check(const Opts& o) {
  const int i = 0;
  auto dlv = [&]() { return dev_rx_packets(g_child, o.rx_dev.c_str()); };
  sockaddr_in d{};
  d.sin_family = AF_INET;
  d.sin_addr = dst4(i);
  d.sin_port = htons(kBfdPort);
  uint8_t p[kBfdLen];
  build_bfd(p, i, 1);
  auto fds_c = udp_sockets(1, AF_INET, true);
  auto fds_u = std::vector<int>{};
  // Connected socket: 1st send ok -> peer answers port unreachable (no listener in
  // rx_mode count) -> 2nd send.
  uint64_t k0 = dlv();
  ssize_t r1 = send(fds_c[0], p, sizeof p, 0);
  usleep(100000);
  uint64_t k1 = dlv();
  ssize_t r2 = send(fds_c[0], p, sizeof p, 0);
  int e2 = errno;
  usleep(20000);
  uint64_t k2 = dlv();
  ssize_t r3 = send(fds_c[0], p, sizeof p, 0);
  usleep(20000);
  uint64_t k3 = dlv();
  std::printf(
      "ICMPCHECK connected UDP: send#1=%s (on wire %llu) send#2=%s (on wire %llu) "
      "send#3=%s (on wire %llu)\n",
      r1 > 0 ? "ok" : "err", (unsigned long long)(k1 - k0), r2 > 0 ? "ok" : std::strerror(e2),
      (unsigned long long)(k2 - k1), r3 > 0 ? "ok" : "err", (unsigned long long)(k3 - k2));
  close(fds_c[0]);
  usleep(1100000);  // ICMP rate limit of the peer (icmp_ratelimit, 1 s)
  fds_u = udp_sockets(1, AF_INET, false);
  r1 = sendto(fds_u[0], p, sizeof p, 0, reinterpret_cast<sockaddr*>(&d), sizeof d);
  usleep(100000);
  r2 = sendto(fds_u[0], p, sizeof p, 0, reinterpret_cast<sockaddr*>(&d), sizeof d);
  e2 = errno;
  std::printf("ICMPCHECK unconnected UDP: sendto#1=%s sendto#2=%s\n", r1 > 0 ? "ok" : "err",
              r2 > 0 ? "ok" : std::strerror(e2));
  close(fds_u[0]);
  usleep(1100000);
  int raw = socket(AF_INET, SOCK_RAW, IPPROTO_UDP);
  drop_all_filter(raw);
  int one = 1, ttl = kTtl;
  setsockopt(raw, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
  setsockopt(raw, IPPROTO_IP, IP_RECVERR, &one, sizeof one);
  uint8_t u[32];
  build_udp4(u, src4(), dst4(i), kSportBase, i, 1);
  sockaddr_in rd = d;
  rd.sin_port = 0;
  r1 = sendto(raw, u, sizeof u, 0, reinterpret_cast<sockaddr*>(&rd), sizeof rd);
  usleep(100000);
  r2 = sendto(raw, u, sizeof u, 0, reinterpret_cast<sockaddr*>(&rd), sizeof rd);
  e2 = errno;
  uint8_t eb[256], ctl[512];
  iovec iov{eb, sizeof eb};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctl;
  m.msg_controllen = sizeof ctl;
  ssize_t er = recvmsg(raw, &m, MSG_ERRQUEUE | MSG_DONTWAIT);
  int origin = -1, type = -1, code = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); er >= 0 && c; c = CMSG_NXTHDR(&m, c))
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) {
      sock_extended_err ee{};
      std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
      origin = ee.ee_origin;
      type = ee.ee_type;
      code = ee.ee_code;
    }
  std::printf(
      "ICMPCHECK raw + IP_RECVERR: sendto#1=%s sendto#2=%s errqueue=%s (origin %d "
      "icmp type %d code %d)\n",
      r1 > 0 ? "ok" : "err", r2 > 0 ? "ok" : std::strerror(e2), er >= 0 ? "entry" : "empty", origin,
      type, code);
  close(raw);
  return 0;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t p = 0;
  while (p <= s.size()) {
    size_t q = s.find(',', p);
    if (q == std::string::npos) q = s.size();
    if (q > p) out.push_back(s.substr(p, q - p));
    p = q + 1;
  }
  return out;
}

void usage() {
  std::fprintf(stderr,
               "usage: bfd-txbench --rx-netns NS [--variants a,b,c,c2,d,d2,a6,c6] "
               "[--sizes 100,1000,4000]\n"
               "       [--reps 3] [--seconds 3] [--rx-mode sock|count|txdrop] [--dev t0] "
               "[--rx-dev r0]\n"
               "       [--tx-cpu 0] [--rx-cpu 1] [--max-batches N] [--selftest] "
               "[--ll-check --ll-dst ADDR] [--icmp-check]\n"
               "Run inside the sender namespace (see test/bench/txbench-run).\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Opts o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--rx-netns")
      o.rx_netns = val();
    else if (a == "--variants")
      o.variants = split(val());
    else if (a == "--sizes") {
      o.sizes.clear();
      for (auto& s : split(val())) o.sizes.push_back(std::atoi(s.c_str()));
    } else if (a == "--reps")
      o.reps = std::atoi(val().c_str());
    else if (a == "--seconds")
      o.seconds = std::atof(val().c_str());
    else if (a == "--rx-mode")
      o.rx_mode = val();
    else if (a == "--dev")
      o.dev = val();
    else if (a == "--rx-dev")
      o.rx_dev = val();
    else if (a == "--tx-cpu")
      o.tx_cpu = std::atoi(val().c_str());
    else if (a == "--rx-cpu")
      o.rx_cpu = std::atoi(val().c_str());
    else if (a == "--max-batches")
      o.max_batches = std::strtoull(val().c_str(), nullptr, 10);
    else if (a == "--selftest")
      o.selftest = true;
    else if (a == "--ll-check")
      o.ll_check = true;
    else if (a == "--ll-dst")
      o.ll_dst = val();
    else if (a == "--icmp-check")
      o.icmp_check = true;
    else
      usage();
  }
  if (o.rx_netns.empty()) usage();
  if (o.rx_mode != "sock" && o.rx_mode != "count" && o.rx_mode != "txdrop") usage();
  for (int n : o.sizes)
    if (n < 1 || n > kMaxSessions) usage();
  if (o.reps < 1 || o.reps > 20 || o.seconds <= 0 || o.seconds > 30) usage();

  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 65536);
  setrlimit(RLIMIT_NOFILE, &rl);

  void* mem =
      mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  check(mem != MAP_FAILED, "mmap");
  g_sh = new (mem) Shared();
  std::fflush(stdout);
  g_child = fork();
  check(g_child >= 0, "fork");
  if (g_child == 0) receiver_main(o.rx_netns, o.rx_cpu, o.rx_mode == "sock");
  pin_cpu(o.tx_cpu);
  for (int i = 0; i < 200 && !g_sh->ready.load(); ++i) usleep(10000);
  int rc = 0;
  if (!g_sh->ready.load()) {
    std::fprintf(stderr, "txbench: receiver did not start\n");
    rc = 2;
  } else if (o.selftest) {
    rc = selftest();
  } else if (o.ll_check) {
    rc = ll_check(o);
  } else if (o.icmp_check) {
    rc = icmp_check(o);
  } else {
    std::vector<Result> all;
    // Repetition outermost, so that drift (other load, thermal) spreads over all variants.
    for (int rep = 0; rep < o.reps; ++rep)
      for (int n : o.sizes)
        for (const auto& vn : o.variants) {
          Result r = run_one(o, vn, n, rep);
          print_result(o, r);
          if (!r.ok) rc = 1;
          all.push_back(r);
        }
    print_table(o, all);
  }
  g_sh->stop = 1;
  int status = 0;
  waitpid(g_child, &status, 0);
  return rc;
}
