// An nginx (Debian's nginx-light, installed with the tests' packages) serving a folder on
// 127.0.0.1 at a free port, in the foreground as one process, everything it writes under `dir`: a
// web server a store's restore reads over HTTP. Its access log counts what it was asked for.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "tests/support/ember_process.h"

namespace ember::testing {

class Nginx {
  public:
    Nginx(const TempDir& dir, const std::string& root) : dir_(dir.path() + "/nginx") {
        ::mkdir(dir_.c_str(), 0700);
        port_ = free_loopback_port();
        const std::string conf = dir.write(
            "nginx/nginx.conf",
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid " + dir_ +
                "/nginx.pid;\nerror_log " + dir_ +
                "/error.log;\nevents { worker_connections 64; }\n"
                "http {\n  access_log " +
                dir_ + "/access.log;\n  client_body_temp_path " + dir_ +
                "/body;\n  proxy_temp_path " + dir_ + "/proxy;\n  fastcgi_temp_path " + dir_ +
                "/fastcgi;\n  uwsgi_temp_path " + dir_ + "/uwsgi;\n  scgi_temp_path " + dir_ +
                "/scgi;\n  server { listen 127.0.0.1:" + std::to_string(port_) + "; root " + root +
                "; }\n}\n");
        const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        pid_ = spawn({"/usr/sbin/nginx", "-c", conf, "-e", dir_ + "/error.log"}, null, null, null);
        ::close(null);
        for (auto t = std::chrono::steady_clock::now();
             !ready_ && std::chrono::steady_clock::now() - t < kFailsafe;) {
            ready_ = accepts();
            if (!ready_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    ~Nginx() { stop(); }
    Nginx(const Nginx&) = delete;
    Nginx& operator=(const Nginx&) = delete;

    // Kills it, as a server that dies mid-restore.
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    // Stops it (SIGSTOP) without closing anything: a server that stopped answering. The kernel
    // still takes connections and requests for it, which nobody reads.
    void freeze() {
        if (pid_ > 0) ::kill(pid_, SIGSTOP);
    }
    // Whether anything sent to it waits unread: a connection not accepted, or a request not read
    // (/proc/net/tcp's receive queue of its port's sockets).
    bool has_unread() const {
        std::ifstream tcp("/proc/net/tcp");
        char port[8];
        std::snprintf(port, sizeof port, ":%04X", port_);
        std::string line;
        std::getline(tcp, line);  // the header
        while (std::getline(tcp, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, state, queues;
            fields >> slot >> local >> remote >> state >> queues;
            if (local.size() > 5 && local.substr(local.size() - 5) == port &&
                queues.substr(queues.find(':') + 1) != "00000000")
                return true;
        }
        return false;
    }
    // Whether it listened within the failsafe; its error log says why not.
    bool ready() const { return ready_; }
    std::string error_log() const { return read_file(dir_ + "/error.log"); }
    int port() const { return port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    // Requests of its access log whose line holds `what`.
    int requests(const std::string& what) const {
        return count_lines_containing(read_file(dir_ + "/access.log"), what);
    }

  private:
    bool accepts() const {
        const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(static_cast<uint16_t>(port_));
        const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(s);
        return ok;
    }

    std::string dir_;
    int port_ = 0;
    pid_t pid_ = -1;
    bool ready_ = false;
};

}  // namespace ember::testing
