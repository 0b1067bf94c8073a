// Control socket server over a real UNIX socket in a temp dir, with a fake
// backend; and the bfdctl client (ctl::request, run_ctl) against it.
#include "beacon/ctl/server.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ostream_sink.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "beacon/ctl/cli.hpp"
#include "beacon/ctl/client.hpp"
#include "fake_backend.hpp"

namespace beacon::ctl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::shared_ptr<spdlog::logger> null_logger() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

fs::path make_temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "ctl-test-XXXXXX").string();
  char* d = ::mkdtemp(tmpl.data());
  if (d == nullptr) throw std::runtime_error("mkdtemp failed");
  return fs::path(d);
}

// Minimal blocking client with a 5 s receive timeout (a generous bound, never
// a timing assertion: a hang fails the test instead of blocking ctest).
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawClient() { ::close(fd_); }
  bool connected() const { return connected_; }

  void send(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;  // peer closed: the test's reads will tell
      off += static_cast<std::size_t>(n);
    }
  }
  // Next line without '\n'; nullopt on EOF, error or timeout.
  std::optional<std::string> line() {
    for (;;) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string l = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return l;
      }
      char chunk[4096];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }
  json ask(const std::string& request) {
    send(request + "\n");
    auto l = line();
    if (!l) return json();
    return json::parse(*l);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    path_ = (dir_ / "run" / "control.sock").string();
  }
  void TearDown() override {
    stop();
    fs::remove_all(dir_);
  }

  void start(ServerOptions opt = {}) {
    if (opt.path.empty()) opt.path = path_;
    server_ = std::make_unique<Server>(io_, opt, dispatcher_, null_logger());
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  void stop() {
    if (!thread_.joinable()) return;
    boost::asio::post(io_, [this] {
      server_->stop();
      work_.reset();
    });
    thread_.join();
  }

  fs::path dir_;
  std::string path_;
  testing::FakeBackend backend_;
  Dispatcher dispatcher_{backend_};
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

TEST_F(ServerTest, CreatesParentDirAndSocketWithModes) {
  start();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  ASSERT_EQ(::stat((dir_ / "run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
}

TEST_F(ServerTest, SetsTheSocketGroup) {
  // Root may give the file any group; anyone else only one of its own.
  const gid_t group = ::geteuid() == 0 ? 4242 : ::getegid();
  ServerOptions opt;
  opt.group = group;
  start(opt);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, group);
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST_F(ServerTest, PassesThePeerCredentialsToTheDispatcher) {
  std::ostringstream audit;
  auto logger = std::make_shared<spdlog::logger>(
      "audit", std::make_shared<spdlog::sinks::ostream_sink_mt>(audit));
  logger->set_pattern("%v");
  // Groups that exist nowhere: only uid 0 may do anything.
  dispatcher_.enable_access_control(
      AccessPolicy{GroupRef{"r", std::nullopt}, GroupRef{"a", std::nullopt}}, logger);
  start();
  RawClient c(path_);
  ASSERT_TRUE(c.connected());
  json r = c.ask(R"({"cmd":"session-set-state","state":"up","all":true})");
  const std::string uid = std::to_string(::geteuid());
  if (::geteuid() == 0) {
    EXPECT_EQ(r.at("ok"), true) << r;
  } else {
    EXPECT_EQ(r.at("ok"), false);
    EXPECT_EQ(r.at("error").get<std::string>().rfind("permission denied: uid " + uid, 0), 0u) << r;
  }
  stop();  // the audit line is written before the response; stop() orders the read
  EXPECT_NE(audit.str().find("audit: uid=" + uid + " user="), std::string::npos) << audit.str();
  EXPECT_NE(audit.str().find(" pid=" + std::to_string(::getpid()) + " cmd=session-set-state"),
            std::string::npos)
      << audit.str();
}

TEST_F(ServerTest, ManyRequestsOnOneConnectionWithABadOneInTheMiddle) {
  backend_.sessions_ = {testing::sample_session()};
  start();
  RawClient c(path_);
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 20; ++i) {
    json r = c.ask(R"({"cmd":"sessions","id":)" + std::to_string(i) + "}");
    ASSERT_EQ(r.at("ok"), true);
    EXPECT_EQ(r.at("id"), i);
    EXPECT_EQ(r.at("sessions").size(), 1u);
  }
  json bad = c.ask("{this is not json");
  EXPECT_EQ(bad.at("ok"), false);
  EXPECT_NE(bad.at("error").get<std::string>().find("invalid JSON"), std::string::npos);
  json unknown = c.ask(R"({"cmd":"frobnicate"})");
  EXPECT_EQ(unknown.at("ok"), false);
  // The connection is still usable.
  json r = c.ask(R"({"cmd":"session-set-state","state":"down","group":"web"})");
  EXPECT_EQ(r.at("ok"), true);
  EXPECT_EQ(r.at("matched"), 2);
  ASSERT_EQ(backend_.calls_.size(), 1u);
}

TEST_F(ServerTest, PipelinedRequestsInOneWriteAreAnsweredInOrder) {
  start();
  RawClient c(path_);
  std::string batch;
  for (int i = 0; i < 50; ++i) batch += R"({"cmd":"version","id":)" + std::to_string(i) + "}\r\n";
  batch += "\n   \n";  // blank lines are ignored, not answered
  batch += R"({"cmd":"version","id":"last"})"
           "\n";
  c.send(batch);
  for (int i = 0; i < 50; ++i) {
    auto l = c.line();
    ASSERT_TRUE(l);
    EXPECT_EQ(json::parse(*l).at("id"), i);
  }
  auto l = c.line();
  ASSERT_TRUE(l);
  EXPECT_EQ(json::parse(*l).at("id"), "last");
}

TEST_F(ServerTest, RequestSplitAcrossWritesIsReassembled) {
  start();
  RawClient c(path_);
  c.send(R"({"cmd":"ver)");
  c.send(R"(sion"})");
  c.send("\n");
  auto l = c.line();
  ASSERT_TRUE(l);
  EXPECT_EQ(json::parse(*l).at("ok"), true);
}

TEST_F(ServerTest, SecondClientIsServedWhileFirstHasAPartialLine) {
  start();
  RawClient a(path_);
  a.send(R"({"cmd":"sess)");  // incomplete: must not block anyone else
  RawClient b(path_);
  ASSERT_TRUE(b.connected());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(b.ask(R"({"cmd":"stats"})").at("ok"), true);
  a.send("ions\"}\n");
  auto l = a.line();
  ASSERT_TRUE(l);
  EXPECT_EQ(json::parse(*l).at("ok"), true);
}

TEST_F(ServerTest, ManyConcurrentClientThreads) {
  start();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      RawClient c(path_);
      for (int i = 0; i < 25; ++i) {
        json r = c.ask(R"({"cmd":"version"})");
        if (r.is_object() && r.value("ok", false)) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8 * 25);
}

TEST_F(ServerTest, OversizedLineGetsErrorAndClose) {
  ServerOptions opt;
  opt.max_line = 1024;
  start(opt);
  RawClient c(path_);
  c.send(std::string(5000, 'x'));  // no newline: the buffer limit trips
  auto l = c.line();
  ASSERT_TRUE(l);
  json r = json::parse(*l);
  EXPECT_EQ(r.at("ok"), false);
  EXPECT_NE(r.at("error").get<std::string>().find("exceeds 1024 bytes"), std::string::npos);
  EXPECT_FALSE(c.line());  // closed
  // The server itself is fine.
  RawClient d(path_);
  EXPECT_EQ(d.ask(R"({"cmd":"version"})").at("ok"), true);
}

TEST_F(ServerTest, OversizedCompleteLineIsRejectedToo) {
  ServerOptions opt;
  opt.max_line = 100;
  start(opt);
  RawClient c(path_);
  c.send(R"({"cmd":"version","id":")" + std::string(200, 'a') + "\"}\n");
  auto l = c.line();
  ASSERT_TRUE(l);
  EXPECT_EQ(json::parse(*l).at("ok"), false);
  EXPECT_FALSE(c.line());
}

TEST_F(ServerTest, DefaultLimitIs64KiB) {
  start();
  RawClient c(path_);
  // Just under the limit: a valid (if odd) request is still parsed.
  std::string id(kMaxRequestLine - 40, 'a');
  json r = c.ask(R"({"cmd":"version","id":")" + id + "\"}");
  EXPECT_EQ(r.at("ok"), true);
  c.send(std::string(kMaxRequestLine + 10, 'b'));
  auto l = c.line();
  ASSERT_TRUE(l);
  EXPECT_EQ(json::parse(*l).at("ok"), false);
}

TEST_F(ServerTest, ConnectionLimitRejectsExtraClients) {
  ServerOptions opt;
  opt.max_connections = 2;
  start(opt);
  RawClient a(path_), b(path_);
  EXPECT_EQ(a.ask(R"({"cmd":"version"})").at("ok"), true);
  EXPECT_EQ(b.ask(R"({"cmd":"version"})").at("ok"), true);
  RawClient c(path_);
  auto l = c.line();
  ASSERT_TRUE(l);
  EXPECT_NE(json::parse(*l).at("error").get<std::string>().find("too many"), std::string::npos);
  EXPECT_FALSE(c.line());
}

TEST_F(ServerTest, StopUnlinksSocketAndClosesClients) {
  start();
  RawClient c(path_);
  EXPECT_EQ(c.ask(R"({"cmd":"version"})").at("ok"), true);
  stop();
  EXPECT_FALSE(fs::exists(path_));
  EXPECT_FALSE(c.line());
}

TEST_F(ServerTest, StaleSocketFileIsReplaced) {
  fs::create_directories(fs::path(path_).parent_path());
  {
    // Bind and close without unlinking: a crashed daemon's leftover.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::close(fd);
  }
  ASSERT_TRUE(fs::exists(path_));
  start();
  RawClient c(path_);
  EXPECT_EQ(c.ask(R"({"cmd":"version"})").at("ok"), true);
}

TEST_F(ServerTest, RefusesWhenAnotherServerIsLive) {
  start();
  boost::asio::io_context io2;
  Server second(io2, ServerOptions{path_}, dispatcher_, null_logger());
  try {
    second.start();
    FAIL() << "second server started on a live socket";
  } catch (const ServerError& e) {
    EXPECT_NE(std::string(e.what()).find(path_), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
  }
  // The first server's socket is untouched.
  RawClient c(path_);
  EXPECT_EQ(c.ask(R"({"cmd":"version"})").at("ok"), true);
}

TEST_F(ServerTest, RefusesRegularFileAtSocketPath) {
  fs::create_directories(fs::path(path_).parent_path());
  { std::ofstream(path_) << "not a socket"; }
  Server s(io_, ServerOptions{path_}, dispatcher_, null_logger());
  EXPECT_THROW(s.start(), ServerError);
  EXPECT_TRUE(fs::exists(path_));  // never deleted someone's file
}

TEST_F(ServerTest, RefusesOverlongPath) {
  Server s(io_, ServerOptions{"/tmp/" + std::string(200, 'p')}, dispatcher_, null_logger());
  EXPECT_THROW(s.start(), ServerError);
}

// ---- client side (what bfdctl uses) ----

TEST_F(ServerTest, ClientRequestRoundTrip) {
  start();
  ClientResult r = request(path_, json{{"cmd", "version"}}, std::chrono::seconds(5));
  ASSERT_EQ(r.status, ClientResult::Status::Ok) << r.error;
  EXPECT_EQ(r.response.at("version"), BEACON_VERSION);
}

TEST_F(ServerTest, ClientReportsMissingSocketAsUnreachable) {
  ClientResult r = request(path_, json{{"cmd", "version"}}, std::chrono::seconds(5));
  EXPECT_EQ(r.status, ClientResult::Status::Unreachable);
  EXPECT_NE(r.error.find(path_), std::string::npos) << r.error;
}

TEST_F(ServerTest, ClientTimesOutOnSilentListener) {
  fs::create_directories(fs::path(path_).parent_path());
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 4), 0);  // never accepts, never answers
  ClientResult r = request(path_, json{{"cmd", "version"}}, std::chrono::milliseconds(200));
  ::close(fd);
  EXPECT_EQ(r.status, ClientResult::Status::Unreachable);
  EXPECT_NE(r.error.find("timed out"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find(path_), std::string::npos) << r.error;
}

TEST_F(ServerTest, RunCtlEndToEndExitCodes) {
  backend_.sessions_ = {testing::sample_session()};
  start();
  std::ostringstream out, err;
  EXPECT_EQ(run_ctl({"--socket", path_, "sessions", "--json"}, &request, out, err), kExitOk);
  EXPECT_EQ(json::parse(out.str()).at(0).at("peer"), "198.18.0.1");

  out.str("");
  EXPECT_EQ(
      run_ctl({"--socket", path_, "session", "set-state", "down", "--all"}, &request, out, err),
      kExitOk);
  EXPECT_EQ(out.str(), "2 sessions set to down (diag 5)\n");

  backend_.hold_error_ = "no such group 'db'";
  err.str("");
  EXPECT_EQ(run_ctl({"--socket", path_, "session", "set-state", "down", "--group", "db"}, &request,
                    out, err),
            kExitRefused);
  EXPECT_NE(err.str().find("no such group 'db'"), std::string::npos);

  stop();
  err.str("");
  EXPECT_EQ(run_ctl({"--socket", path_, "sessions"}, &request, out, err), kExitUnreachable);
  EXPECT_NE(err.str().find(path_), std::string::npos);
}

}  // namespace
}  // namespace beacon::ctl
