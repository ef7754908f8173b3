// ember-store-fetch BASE_URL [--fetchers N]
// Fetches objects of a snapshot store over HTTP(S) for a page-fault handler (ember-uffd
// --manifest http://...), which starts it on its first miss and talks to it over a pipe pair, so
// that the handler itself never links cpp-httplib and OpenSSL. Requests, one a line on stdin:
//   ID PATH MOST          (ID a number the caller picks; PATH under BASE_URL; MOST its bound)
// answers on stdout, in the order they finish, from N fetches at once (default 8):
//   ID OK LENGTH\n followed by LENGTH bytes, or ID ERR MESSAGE\n
// It ends once stdin does and every request has its answer. Exits 2 on a bad command line.
#include <unistd.h>

#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/client/store/store_fetch.h"
#include "core/base/file_io.h"

namespace {

using namespace ember;

struct Request {
    std::string id, path;
    size_t most = 0;
};

// PATH as a store names its objects: letters, digits, '.', '_', '-' and '/', no ".." segment, no
// leading '/', and short.
bool plain_path(std::string_view p) {
    std::string framed(1, '/');
    framed.append(p).push_back('/');
    return !p.empty() && p.size() <= 300 && p.front() != '/' &&
           framed.find("/../") == std::string::npos &&
           p.find_first_not_of(
               "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/") ==
               std::string_view::npos;
}

class Answers {
  public:
    void send(const std::string& head, std::string_view body = {}) {
        std::lock_guard lock(mutex_);
        (void)write_all(STDOUT_FILENO,
                        {reinterpret_cast<const uint8_t*>(head.data()), head.size()});
        if (!body.empty())
            (void)write_all(STDOUT_FILENO,
                            {reinterpret_cast<const uint8_t*>(body.data()), body.size()});
    }

  private:
    std::mutex mutex_;
};

}  // namespace

int main(int argc, char** argv) {
    unsigned fetchers = 8;
    if (argc != 2 && !(argc == 4 && std::string_view(argv[2]) == "--fetchers")) {
        std::fprintf(stderr, "usage: ember-store-fetch BASE_URL [--fetchers N]\n");
        return 2;
    }
    if (argc == 4) {
        const std::string_view v = argv[3];
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), fetchers);
        if (ec != std::errc() || end != v.data() + v.size() || fetchers == 0 || fetchers > 64) {
            std::fprintf(stderr, "ember-store-fetch: --fetchers is a number from 1 to 64\n");
            return 2;
        }
    }
    auto fetcher = client::StoreFetcher::open(argv[1], {});
    if (!fetcher) {
        std::fprintf(stderr, "ember-store-fetch: %s\n", fetcher.error().message.c_str());
        return 2;
    }
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<Request> queue;
    bool done = false;
    Answers answers;
    {
        std::vector<std::jthread> workers;
        workers.reserve(fetchers);
        for (unsigned i = 0; i < fetchers; ++i)
            workers.emplace_back([&] {
                for (;;) {
                    Request r;
                    {
                        std::unique_lock lock(mutex);
                        ready.wait(lock, [&] { return done || !queue.empty(); });
                        if (queue.empty()) return;
                        r = std::move(queue.front());
                        queue.pop_front();
                    }
                    auto body = (*fetcher)->get(r.path, r.most);
                    if (body) {
                        answers.send(r.id + " OK " + std::to_string(body->size()) + "\n", *body);
                    } else {
                        std::string why = body.error().message;
                        for (char& ch : why)
                            if (ch == '\n' || ch == '\r') ch = ' ';
                        answers.send(r.id + " ERR " + why + "\n");
                    }
                }
            });
        char* line = nullptr;
        size_t capacity = 0;
        ssize_t n;
        while ((n = ::getline(&line, &capacity, stdin)) > 0) {
            std::string_view text(line, static_cast<size_t>(n));
            if (text.back() == '\n') text.remove_suffix(1);
            const size_t a = text.find(' '), b = text.rfind(' ');
            Request r;
            if (a != std::string_view::npos && b > a) {
                r.id = std::string(text.substr(0, a));
                r.path = std::string(text.substr(a + 1, b - a - 1));
                const auto most = text.substr(b + 1);
                const auto [end, ec] =
                    std::from_chars(most.data(), most.data() + most.size(), r.most);
                if (ec != std::errc() || end != most.data() + most.size() || r.most > (96u << 20))
                    r.most = 0;
            }
            if (r.id.empty() || r.id.size() > 20 ||
                r.id.find_first_not_of("0123456789") != std::string::npos) {
                answers.send("0 ERR a request that is not ID PATH MOST\n");
                continue;
            }
            if (!plain_path(r.path) || r.most == 0) {
                answers.send(r.id + " ERR a path or bound a store's object does not have\n");
                continue;
            }
            std::lock_guard lock(mutex);
            queue.push_back(std::move(r));
            ready.notify_one();
        }
        std::free(line);  // NOLINT: getline's buffer
        {
            std::lock_guard lock(mutex);
            done = true;
        }
        ready.notify_all();
    }
    return 0;
}
