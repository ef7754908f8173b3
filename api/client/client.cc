#include "api/client/client.h"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <httplib.h>

#include "api/json/config_codec.h"
#include "api/json/cpu_config_json.h"
#include "api/json/writer.h"

namespace ember::client {
namespace {

std::string call_name(std::string_view method, const std::string& path) {
    return std::string(method) + " " + path;
}

// What went wrong between us and the server, in words a host agent's log can use.
std::string transport_error(httplib::Error error, const ClientOptions& o,
                            std::chrono::milliseconds timeout) {
    switch (error) {
        case httplib::Error::Connection:
            return "cannot connect to " + o.socket_path + " (is ember serving its API there?)";
        case httplib::Error::ConnectionTimeout:
            return "connecting to " + o.socket_path + " took longer than " +
                   std::to_string(timeout.count()) + " ms";
        case httplib::Error::Read:
            return "the answer could not be read: the connection ended, or what came was not HTTP";
        case httplib::Error::Write: return "the request could not be sent: the connection ended";
        default: return "cpp-httplib error " + httplib::to_string(error);
    }
}

// The fault_message of a 400 as ember and Firecracker write it; otherwise the status and the start
// of the body.
std::string fault_of(const Answer& a) {
    if (auto o = json::parse_object(a.body)) {
        json::Fields f(*o, "");
        if (auto message = f.string("fault_message"); message && *message) return **message;
    }
    constexpr size_t kShown = 200;
    return "HTTP " + std::to_string(a.status) +
           (a.body.empty() ? "" : ": " + a.body.substr(0, kShown));
}

template <typename T>
std::string body_of(const T& request) {
    return json::to_json(request, json::Absent::Omitted);
}
std::string body_of(const CpuTemplate& t) {
    return json::to_json(t);
}

// cpp-httplib (Debian's build) sends without MSG_NOSIGNAL: a server that closes before the whole
// request is written would raise SIGPIPE, whose default kills the agent. The call's thread
// blocks it, and takes back a SIGPIPE the call raised, so no handler of the agent's sees it.
class SigpipeHeld {
  public:
    SigpipeHeld() {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_, &before_);
        blocked_before_ = sigismember(&before_, SIGPIPE) == 1;
        // A thread that did not block SIGPIPE has none pending: it would have been delivered. Only
        // one that did must be asked, so that the agent's own is left to it.
        if (blocked_before_) {
            sigset_t pending;
            sigpending(&pending);
            was_pending_ = sigismember(&pending, SIGPIPE) == 1;
        }
    }
    ~SigpipeHeld() {
        if (!was_pending_) {
            const timespec now{};
            while (sigtimedwait(&pipe_, nullptr, &now) == SIGPIPE) {
            }
        }
        if (!blocked_before_) pthread_sigmask(SIG_SETMASK, &before_, nullptr);
    }
    SigpipeHeld(const SigpipeHeld&) = delete;
    SigpipeHeld& operator=(const SigpipeHeld&) = delete;

  private:
    sigset_t pipe_{}, before_{};
    bool blocked_before_ = false;
    bool was_pending_ = false;
};

}  // namespace

Client::Client(ClientOptions options)
    : options_(std::move(options)),
      calls_(std::make_unique<std::mutex>()),
      // (host, port), not a URL: the socket's path is taken as it is, never parsed.
      http_(std::make_unique<httplib::Client>(options_.socket_path, 80)) {
    if (!options_.watchdog) options_.watchdog = std::make_shared<Watchdog>();
    http_->set_address_family(AF_UNIX);
    // A connection per call, as curl makes: a connect on a Unix socket costs microseconds, and a
    // load sent on a connection kept open since the ember started answered 1-1.5 ms later at the
    // median (perf/density --pool, 40 each way) than on a new one. Why is not known yet.
    http_->set_keep_alive(false);
    // ember never compresses; a body that says it is compressed is refused as it came.
    http_->set_decompress(false);
}

Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

Result<Answer> Client::call(std::string_view method, const std::string& path, std::string body,
                            std::chrono::milliseconds timeout) {
    std::lock_guard one_call(*calls_);
    SigpipeHeld no_sigpipe;
    // The watch bounds the call; each read, write and the connect get a second more, so that the
    // watch, not one of them, ends a call that runs out of time, and says so.
    const auto own = timeout + std::chrono::seconds(1);
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(own);
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(own - seconds);
    http_->set_connection_timeout(seconds.count(), micros.count());
    http_->set_read_timeout(seconds.count(), micros.count());
    http_->set_write_timeout(seconds.count(), micros.count());

    httplib::Request request;
    request.method = std::string(method);
    request.path = path;
    if (!body.empty()) request.set_header("Content-Type", "application/json");
    request.body = std::move(body);
    Answer answer;
    bool too_long = false;
    request.content_receiver = [&](const char* data, size_t length, uint64_t, uint64_t) {
        if (answer.body.size() + length > options_.max_answer_bytes) {
            too_long = true;
            return false;
        }
        answer.body.append(data, length);
        return true;
    };

    httplib::Response response;
    httplib::Error error = httplib::Error::Success;
    bool sent = false;
    bool late = false;
    {
        httplib::Client& http = *http_;
        auto watch =
            options_.watchdog->watch(Watchdog::Clock::now() + timeout, [&http] { http.stop(); });
        sent = http.send(request, response, error);
        late = !sent && watch.fired();
    }
    if (!sent) {
        const std::string name = call_name(method, path);
        if (too_long)
            return fail(name + ": the answer is longer than " +
                        std::to_string(options_.max_answer_bytes) + " bytes");
        if (late)
            return fail(name + ": no whole answer within " + std::to_string(timeout.count()) +
                        " ms");
        return fail(name + ": " + transport_error(error, options_, timeout));
    }
    answer.status = response.status;
    return answer;
}

Result<std::string> Client::exchange(std::string_view method, const std::string& path,
                                     std::string body, std::chrono::milliseconds timeout) {
    auto answer = call(method, path, std::move(body), timeout);
    EMBER_TRY(answer);
    if (answer->status == 200 || answer->status == 204) return std::move(answer->body);
    return fail(call_name(method, path) + ": " + fault_of(*answer));
}

Result<void> Client::no_content(std::string_view method, const std::string& path, std::string body,
                                std::chrono::milliseconds timeout) {
    auto answer = exchange(method, path, std::move(body), timeout);
    EMBER_TRY(answer);
    return {};
}

template <typename T>
Result<T> Client::get(const endpoints::Endpoint<T>& e) {
    const std::string path(e.path);
    auto body = exchange("GET", path, {}, options_.timeout);
    EMBER_TRY(body);
    // An answer's unknown fields are left alone: a newer ember may add some.
    auto value = json::read_body<T, json::Unknown::Ignored>(*body);
    EMBER_TRY(value, "GET " + path + ": the answer");
    return value;
}

template <typename T>
Result<void> Client::send(const endpoints::Endpoint<T>& e, const T& body) {
    std::string path(e.path);
    if constexpr (requires { endpoints::id_in(body); }) path += endpoints::id_in(body);
    return no_content(endpoints::name_of(e.method), path, body_of(body),
                      e.slow ? options_.snapshot_timeout : options_.timeout);
}

Result<InstanceInfo> Client::describe_instance() {
    return get(endpoints::kInstanceInfo);
}
Result<VersionInfo> Client::version() {
    return get(endpoints::kVersion);
}
Result<VmConfig> Client::vm_config() {
    return get(endpoints::kVmConfig);
}
Result<MachineConfig> Client::machine_config() {
    return get(endpoints::kGetMachineConfig);
}

Result<void> Client::put_machine_config(const MachineConfig& m) {
    return send(endpoints::kPutMachineConfig, m);
}
Result<void> Client::patch_machine_config(const MachineConfigPatch& p) {
    return send(endpoints::kPatchMachineConfig, p);
}
Result<void> Client::put_boot_source(const BootSourceConfig& b) {
    return send(endpoints::kBootSource, b);
}
Result<void> Client::put_drive(const DriveConfig& d) {
    return send(endpoints::kPutDrive, d);
}
Result<void> Client::patch_drive(const DriveUpdate& u) {
    return send(endpoints::kPatchDrive, u);
}
Result<void> Client::put_network_interface(const NetworkInterfaceConfig& n) {
    return send(endpoints::kPutNetworkInterface, n);
}
Result<void> Client::patch_network_interface(const NetworkInterfaceUpdate& u) {
    return send(endpoints::kPatchNetworkInterface, u);
}
Result<void> Client::put_logger(const LoggerConfig& l) {
    return send(endpoints::kLogger, l);
}
Result<void> Client::put_metrics(const PutMetrics& m) {
    return send(endpoints::kMetrics, m);
}
Result<void> Client::put_cpu_config(const CpuTemplate& t) {
    return send(endpoints::kCpuConfig, t);
}

Result<void> Client::configure(const VmConfig& c) {
    EMBER_TRY(put_machine_config(c.machine));
    if (c.boot_source) EMBER_TRY(put_boot_source(*c.boot_source));
    for (const auto& d : c.drives) EMBER_TRY(put_drive(d));
    for (const auto& n : c.network_interfaces) EMBER_TRY(put_network_interface(n));
    if (c.cpu_config) EMBER_TRY(put_cpu_config(*c.cpu_config));
    return {};
}

Result<void> Client::action(ActionType type) {
    return send(endpoints::kActions, PutAction{type});
}
Result<void> Client::set_vm_state(VmStateChange state) {
    return send(endpoints::kVmState, SetVmState{state});
}

Result<void> Client::create_snapshot(const CreateSnapshot& c) {
    return send(endpoints::kCreateSnapshot, c);
}
Result<void> Client::load_snapshot(const LoadSnapshot& l) {
    return send(endpoints::kLoadSnapshot, l);
}
Result<void> Client::record_working_set(const RecordWorkingSet& w) {
    return send(endpoints::kRecordWorkingSet, w);
}

}  // namespace ember::client
