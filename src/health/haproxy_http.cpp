// haproxy-http probe: GET an HAProxy monitor-uri with libcurl's multi
// interface driven by the ops loop's io_context (never blocks it).
//
// Integration (the classic curl "hiper" pattern): curl tells us which sockets
// to watch (CURLMOPT_SOCKETFUNCTION) and when to call it back
// (CURLMOPT_TIMERFUNCTION); we wait on those sockets with non-owning
// stream_descriptors (released, never closed by Asio: curl owns its fds) and
// one steady_timer, and feed readiness back through curl_multi_socket_action.
//
// One transfer at a time per probe. run() while a transfer is outstanding
// finishes the old one at once as Fail "superseded" and starts a new one.
// Every run uses a fresh connection (FRESH_CONNECT + FORBID_REUSE): a probe
// must prove HAProxy still accepts, not that an old keep-alive is open.
// Thread: everything here runs on the io_context's thread.
#include <curl/curl.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstring>
#include <map>
#include <string>

#include "polled_probe_impl.hpp"
#include "probes_impl.hpp"

namespace beacon::health {
namespace {

namespace asio = boost::asio;
using std::chrono::steady_clock;

void global_init_once() {
  // curl_global_init is not thread-safe; a function-local static is.
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  (void)rc;
}

using detail::ms_text;

// A retry needs at least 10 ms of the timeout left to be worth starting.
constexpr core::Duration kRetryMinBudget{10'000};

class HttpImpl : public std::enable_shared_from_this<HttpImpl>, public detail::PolledRun<HttpImpl> {
 public:
  // A failed initialisation leaves multi_ or easy_ null; every run then
  // fails with "curl initialisation failed".
  HttpImpl(const boost::asio::any_io_executor& io, const config::CheckSpec& spec)
      : PolledRun(io, spec), spec_(spec), timer_(io), retry_timer_(io) {
    init();
  }

  // Only weak references to this object are held by handlers, so the
  // facade's release ends the curl handles here.
  ~HttpImpl() { shutdown(); }

  void run(ResultFn done) {
    begin_run(std::move(done));
    retries_ = 0;
    retry_timer_.cancel();
    if (multi_ == nullptr || easy_ == nullptr) return post_fail("curl initialisation failed");
    if (spec_.url.empty()) return post_fail("no url configured");
    start_transfer(timeout_);
  }

  // Drops the outstanding transfer; no callback runs afterwards.
  void cancel() {
    PolledRun::cancel();
    timer_.cancel();
  }

 private:
  friend class detail::PolledRun<HttpImpl>;

  void init() {
    global_init_once();
    multi_ = curl_multi_init();
    easy_ = curl_easy_init();
    if (multi_ == nullptr || easy_ == nullptr) return;
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &HttpImpl::on_socket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &HttpImpl::on_timer);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    curl_easy_setopt(easy_, CURLOPT_URL, spec_.url.c_str());
    curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy_, CURLOPT_PROXY, "");
    curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy_, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(easy_, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(easy_, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy_, CURLOPT_USERAGENT, "bfd-beacon");
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &HttpImpl::discard_body);
    curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, errbuf_);
  }

  // PolledRun hook: the transfer of the run ends with it.
  void stop_io() {
    detach_easy();
    retry_timer_.cancel();
  }

  void shutdown() {
    cancel();
    if (easy_ != nullptr) curl_easy_cleanup(easy_);
    easy_ = nullptr;
    if (multi_ != nullptr) curl_multi_cleanup(multi_);  // may call on_socket(REMOVE)
    multi_ = nullptr;
    for (auto& [fd, w] : sockets_) release(*w);
    sockets_.clear();
  }

  struct Watch {
    explicit Watch(const boost::asio::any_io_executor& io, int fd) : sd(io, fd) {}
    asio::posix::stream_descriptor sd;
    int what = 0;  // CURL_POLL_*
    bool reading = false, writing = false;
    bool alive = true;
  };

  static long to_ms(core::Duration d) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    return ms > 0 ? static_cast<long>(ms) : 1L;
  }

  // One attempt on a fresh connection, allowed `budget` (what is left of the
  // run's timeout).
  void start_transfer(core::Duration budget) {
    errbuf_[0] = '\0';
    curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, to_ms(budget));
    if (CURLMcode mc = curl_multi_add_handle(multi_, easy_); mc != CURLM_OK) {
      return post_fail(std::string("curl: ") + curl_multi_strerror(mc));
    }
    in_multi_ = true;
  }

  // During a reload the listener changes hands (the new HAProxy binds with
  // SO_REUSEPORT, the old one closes its socket and resets what sat in its
  // accept queue): a refused or reset connection is retried on a fresh one
  // while the timeout leaves room, and counts only if it persists. An HTTP
  // answer, whatever its status, is never retried: HAProxy spoke.
  static bool transient(CURLcode code) {
    return code == CURLE_COULDNT_CONNECT || code == CURLE_RECV_ERROR || code == CURLE_SEND_ERROR ||
           code == CURLE_GOT_NOTHING;
  }

  bool retry(Result& r) {
    const core::Duration delay = detail::retry_delay(retries_);
    const core::Duration left = timeout_ - elapsed() - delay;
    if (left < kRetryMinBudget) {
      r.reason += detail::retries_text(retries_);
      return false;
    }
    ++retries_;
    retry_timer_.expires_after(delay);
    retry_timer_.async_wait(
        [wself = weak_from_this(), gen = generation_, left](boost::system::error_code ec) {
          auto s = wself.lock();
          if (!s || ec || gen != s->generation_ || s->multi_ == nullptr) return;
          s->start_transfer(left);
        });
    return true;
  }

  static size_t discard_body(char*, size_t size, size_t n, void*) { return size * n; }

  static void release(Watch& w) {
    w.alive = false;
    boost::system::error_code ec;
    w.sd.cancel(ec);
    (void)w.sd.release();  // curl owns and closes the fd
  }

  void detach_easy() {
    if (in_multi_ && multi_ != nullptr) curl_multi_remove_handle(multi_, easy_);
    in_multi_ = false;
  }

  // CURLMOPT_SOCKETFUNCTION: called from inside curl_multi_* calls.
  static int on_socket(CURL*, curl_socket_t fd, int what, void* userp, void*) {
    auto* self = static_cast<HttpImpl*>(userp);
    if (what == CURL_POLL_REMOVE) {
      if (auto it = self->sockets_.find(fd); it != self->sockets_.end()) {
        release(*it->second);
        self->sockets_.erase(it);
      }
      return 0;
    }
    auto& w = self->sockets_[fd];
    if (!w) w = std::make_shared<Watch>(self->io_, fd);
    w->what = what;
    self->arm(w);
    return 0;
  }

  // CURLMOPT_TIMERFUNCTION: -1 cancels; 0 means "as soon as possible".
  static int on_timer(CURLM*, long timeout_ms, void* userp) {
    auto* self = static_cast<HttpImpl*>(userp);
    self->timer_.cancel();
    if (timeout_ms < 0) return 0;
    self->timer_.expires_after(std::chrono::milliseconds(timeout_ms));
    self->timer_.async_wait([wself = self->weak_from_this()](boost::system::error_code ec) {
      auto s = wself.lock();
      if (!s || ec == asio::error::operation_aborted || s->multi_ == nullptr) return;
      int running = 0;
      curl_multi_socket_action(s->multi_, CURL_SOCKET_TIMEOUT, 0, &running);
      s->check_done();
    });
    return 0;
  }

  void arm(const std::shared_ptr<Watch>& w) {
    if ((w->what & CURL_POLL_IN) && !w->reading) {
      w->reading = true;
      wait_on(w, asio::posix::stream_descriptor::wait_read, CURL_CSELECT_IN);
    }
    if ((w->what & CURL_POLL_OUT) && !w->writing) {
      w->writing = true;
      wait_on(w, asio::posix::stream_descriptor::wait_write, CURL_CSELECT_OUT);
    }
  }

  void wait_on(const std::shared_ptr<Watch>& w, asio::posix::stream_descriptor::wait_type type,
               int select) {
    w->sd.async_wait(type, [wself = weak_from_this(), w, select](boost::system::error_code ec) {
      (select == CURL_CSELECT_IN ? w->reading : w->writing) = false;
      auto s = wself.lock();
      if (!s || !w->alive || ec == asio::error::operation_aborted || s->multi_ == nullptr) return;
      int running = 0;
      const int fd = w->sd.native_handle();
      curl_multi_socket_action(s->multi_, fd, ec ? CURL_CSELECT_ERR : select, &running);
      // Re-arm only if curl still wants this socket in this direction.
      if (w->alive) s->arm(w);
      s->check_done();
    });
  }

  void check_done() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg != CURLMSG_DONE || msg->easy_handle != easy_) continue;
      const CURLcode code = msg->data.result;
      Result r = make_result(code);
      detach_easy();
      if (transient(code) && retry(r)) return;
      finish(r.status, std::move(r.reason));
      return;  // finish() may have started a new transfer; stop reading stale messages
    }
  }

  Result make_result(CURLcode code) {
    Result r;
    r.latency = elapsed();
    r.status = Status::Fail;
    if (code == CURLE_OK) {
      long status = 0;
      curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status);
      r.reason = "HTTP " + std::to_string(status);
      if (status == spec_.expect_status) {
        r.status = Status::Pass;
      } else if (spec_.expect_status != 200) {
        r.reason += " (expected " + std::to_string(spec_.expect_status) + ")";
      }
      return r;
    }
    if (code == CURLE_OPERATION_TIMEDOUT) {
      r.reason = "timeout after " + ms_text(timeout_);
      return r;
    }
    long os_errno = 0;
    curl_easy_getinfo(easy_, CURLINFO_OS_ERRNO, &os_errno);
    if (code == CURLE_COULDNT_CONNECT && os_errno != 0) {
      r.reason = std::string("connect: ") + std::strerror(static_cast<int>(os_errno));
    } else if (errbuf_[0] != '\0') {
      r.reason = errbuf_;
    } else {
      r.reason = curl_easy_strerror(code);
    }
    return r;
  }

  config::CheckSpec spec_;
  asio::steady_timer timer_;
  asio::steady_timer retry_timer_;
  unsigned retries_ = 0;
  CURLM* multi_ = nullptr;
  CURL* easy_ = nullptr;
  bool in_multi_ = false;
  std::map<curl_socket_t, std::shared_ptr<Watch>> sockets_;
  char errbuf_[CURL_ERROR_SIZE] = {};
};

}  // namespace

std::unique_ptr<Probe> make_haproxy_http_probe(const boost::asio::any_io_executor& io,
                                               const config::CheckSpec& spec) {
  return std::make_unique<detail::PolledProbe<HttpImpl>>(io, spec);
}

}  // namespace beacon::health
