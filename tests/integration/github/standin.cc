#include "standin.h"
#include "../exec_args.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <signal.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

namespace miglet::github::testing {

namespace {

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Bio(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  std::string s(data, n);
  BIO_free(b);
  return s;
}

}  // namespace

std::string NewRsaPrivateKeyPem() {
  EVP_PKEY* k = EVP_RSA_gen(2048);
  BIO* priv = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, k, nullptr, nullptr, 0, nullptr, nullptr);
  EVP_PKEY_free(k);
  return Bio(priv);
}

bool Eventually(const std::function<bool()>& cond, int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

absl::StatusOr<std::unique_ptr<StandIn>> StandIn::Start(const fs::path& dir,
                                                        const std::string& extra_args) {
  std::unique_ptr<StandIn> s(new StandIn());
  s->dir_ = dir;
  fs::create_directories(dir);
  // The App's key pair: the private half for the client, the public half for the stand-in.
  EVP_PKEY* k = EVP_RSA_gen(2048);
  BIO* priv = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, k, nullptr, nullptr, 0, nullptr, nullptr);
  s->app_key_pem_ = Bio(priv);
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(pub, k);
  std::ofstream(dir / "app.pub") << Bio(pub);
  EVP_PKEY_free(k);

  std::vector<std::string> args = {MIGLET_GITHUB_STANDIN,
                                   "serve",
                                   "--dir",
                                   dir.string(),
                                   "--listen",
                                   "127.0.0.1:0",
                                   "--app",
                                   std::to_string(kAppId) + "=" + (dir / "app.pub").string(),
                                   "--installation",
                                   std::to_string(kInstallationId) + "=acme",
                                   "--pat",
                                   kTestPat,
                                   "--log",
                                   (dir / "standin.log").string()};
  std::istringstream extra(extra_args);
  for (std::string a; extra >> a;) args.push_back(a);
  const std::string out = (dir / "standin.out").string();
  const ::miglet::testing::ExecArgs exec(args);
  s->pid_ = fork();
  if (s->pid_ == 0) {
    int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    exec.Exec();
    _exit(127);
  }
  const fs::path info = dir / "info.json";
  if (!Eventually([&] { return fs::exists(info); }, 30)) {
    return absl::UnavailableError("the stand-in did not start: " + ReadFile(dir / "standin.out"));
  }
  auto j = Json::parse(ReadFile(info), nullptr, false);
  if (!j.is_object()) return absl::InternalError("bad info.json: " + ReadFile(info));
  s->url_ = j.value("url", "");
  s->ca_file_ = j.value("ca_file", "");
  s->ca_pem_ = ReadFile(s->ca_file_);
  TransportOptions o{.base_url = s->url_};
  o.tls.ca_pem = s->ca_pem_;
  o.tls.ca_source = s->ca_file_;
  auto t = MakeHttpTransport(o);
  if (!t.ok()) return t.status();
  s->http_ = std::move(*t);
  return s;
}

StandIn::~StandIn() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
}

std::string StandIn::log() const { return ReadFile(dir_ / "standin.log"); }

GitHubClientOptions StandIn::Options(const std::string& path, bool app,
                                     int64_t installation_id) const {
  GitHubClientOptions o;
  o.url = url_ + path;
  o.tls.ca_pem = ca_pem_;
  o.tls.ca_source = ca_file_;
  if (app) {
    o.credentials.app_id = kAppId;
    o.credentials.installation_id = installation_id;
    o.credentials.private_key_pem = app_key_pem_;
  } else {
    o.credentials.token = kTestPat;
  }
  o.credentials.source = "test credentials";
  // Backoff short enough for tests; the policy itself is unit-tested on a fake clock.
  o.backoff.initial = std::chrono::milliseconds(50);
  o.backoff.max = std::chrono::milliseconds(200);
  return o;
}

absl::StatusOr<Json> StandIn::Get(const std::string& path) {
  auto r = http_->Do("GET", path);
  if (!r.ok()) return r.status();
  auto j = Json::parse(r->body, nullptr, false);
  if (r->status >= 300 || j.is_discarded()) {
    return absl::InternalError("GET " + path + ": " + std::to_string(r->status) + " " + r->body);
  }
  return j;
}

absl::StatusOr<Json> StandIn::Post(const std::string& path, const Json& body) {
  auto r = http_->Do("POST", path, body.dump());
  if (!r.ok()) return r.status();
  if (r->status >= 300) {
    return absl::InternalError("POST " + path + ": " + std::to_string(r->status) + " " + r->body);
  }
  auto j = Json::parse(r->body, nullptr, false);
  return j.is_discarded() ? Json::object() : j;
}

Json StandIn::State() {
  auto s = Get("/_standin/state");
  return s.ok() ? *s : Json::object();
}

std::vector<std::string> StandIn::Secrets() {
  std::vector<std::string> out;
  auto s = Get("/_standin/secrets");
  if (s.ok() && s->contains("secrets")) {
    for (const auto& v : (*s)["secrets"]) out.push_back(v.get<std::string>());
  }
  return out;
}

std::vector<Json> StandIn::Requests(const std::string& route) {
  std::vector<Json> out;
  Json st = State();
  if (!st.contains("requests") || !st["requests"].is_array()) return out;
  for (const auto& r : st["requests"]) {
    if (r.value("route", "") == route) out.push_back(r);
  }
  return out;
}

Json StandIn::RunnerNamed(const std::string& name) {
  Json st = State();
  if (st.contains("runners") && st["runners"].is_array()) {
    for (const auto& r : st["runners"]) {
      if (r.value("name", "") == name) return r;
    }
  }
  return nullptr;
}

std::string StandIn::QueueJob(const std::string& scope, const std::string& name,
                              const std::vector<std::string>& labels) {
  auto r = Post("/_standin/jobs", {{"scope", scope}, {"name", name}, {"labels", labels}});
  return r.ok() ? r->value("id", "") : "";
}

void StandIn::AddFault(const Json& fault) { (void)Post("/_standin/faults", fault); }

RunnerProcess::RunnerProcess(const fs::path& dir, const std::string& ca_file,
                             const std::string& script, std::vector<std::string> args)
    : dir_(dir), out_(dir / (script + ".out")) {
  fs::create_directories(dir);
  for (const char* f : {"config.sh", "run.sh"}) {
    if (!fs::exists(dir / f)) fs::copy_file(fs::path(MIGLET_FAKE_RUNNER_DIR) / f, dir / f);
  }
  const std::string path = (dir / script).string();
  args.insert(args.begin(), path);
  const ::miglet::testing::ExecArgs exec(args, {{"FAKE_RUNNER_CA_FILE", ca_file}});
  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);
    int fd = open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    exec.Exec();
    _exit(127);
  }
}

RunnerProcess::~RunnerProcess() {
  if (pid_ > 0 && code_ < 0) {
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

int RunnerProcess::Wait(int seconds) {
  if (code_ >= 0) return code_;
  Eventually(
      [&] {
        int status;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          return true;
        }
        return false;
      },
      seconds);
  return code_;
}

void RunnerProcess::Signal(int sig) { kill(pid_, sig); }

std::string RunnerProcess::Output() const { return ReadFile(out_); }

LogCapture::LogCapture() : out_(std::make_shared<std::ostringstream>()) {
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*out_);
  spdlog::default_logger()->sinks().push_back(sink);
  sink_ = sink;
}

LogCapture::~LogCapture() {
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.erase(
      std::remove(sinks.begin(), sinks.end(), std::static_pointer_cast<spdlog::sinks::sink>(sink_)),
      sinks.end());
}

std::string LogCapture::str() const { return out_->str(); }

std::vector<std::string> LeakedSecrets(const std::vector<std::string>& secrets,
                                       const std::string& text) {
  std::vector<std::string> leaked;
  for (const auto& s : secrets) {
    if (s.size() >= 8 && text.find(s) != std::string::npos) leaked.push_back(s);
  }
  return leaked;
}

}  // namespace miglet::github::testing
