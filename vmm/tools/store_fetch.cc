// ember-store-fetch BASE_URL [--fetchers N]
// A snapshot store's objects over HTTP(S) or S3's API, for a page-fault handler (ember-uffd
// --manifest http://...) and for a push (ember-snapshot push s3://...), which start it and talk to
// it over a pipe pair, so that neither links cpp-httplib and OpenSSL itself. Requests on stdin (ID
// a number the caller picks, PATH under BASE_URL):
//   ID GET PATH MOST             the object, at most MOST bytes: ID OK LENGTH\n and its bytes
//   ID RANGE PATH OFFSET LENGTH  LENGTH bytes of the object from OFFSET, exactly: as a GET's
//   ID HAS PATH                  whether the store holds it: ID YES\n or ID NO\n
//   ID PUT PATH LENGTH\n BYTES   the object's bytes stored: ID OK 0\n
// or, to any, ID ERR MESSAGE\n. Answers come on stdout in the order they finish, from N requests at
// once (default 8). It ends once stdin does and every request has its answer, or at a request it
// cannot read past (a PUT without its length). Exits 2 on a bad command line. Once its store is
// open, every thread keeps to a seccomp filter (fetch_filter.json).
#include <unistd.h>

#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/client/store/fetch_filter.h"
#include "api/client/store/store_fetch.h"
#include "core/base/file_io.h"
#include "core/seccomp/install.h"

namespace {

using namespace ember;

enum class Verb { kGet, kRange, kHas, kPut };

struct Request {
    std::string id, path;
    Verb verb = Verb::kGet;
    size_t most = 0;    // GET: the bound; RANGE: the length; PUT: the body's length
    size_t offset = 0;  // RANGE's
    std::string body;   // PUT's
};

// The most a GET may ask for or a PUT carry (a chunk is at most 4 MiB; a manifest a few MiB), and
// the most the PUTs waiting for a fetcher may hold: past it, stdin waits.
constexpr size_t kMostObject = size_t{96} << 20;
constexpr size_t kMostQueued = size_t{256} << 20;

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

bool number(std::string_view text, size_t& out) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

// A request line's words: "ID VERB PATH [N]"; nullopt where it is not one.
std::optional<Request> parse(std::string_view text) {
    std::vector<std::string_view> words;
    while (!text.empty() && words.size() < 6) {
        const size_t space = text.find(' ');
        words.push_back(text.substr(0, space));
        text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    }
    Request r;
    if (words.size() < 3 || words[0].empty() || words[0].size() > 20 ||
        words[0].find_first_not_of("0123456789") != std::string_view::npos)
        return std::nullopt;
    r.id = std::string(words[0]);
    r.path = std::string(words[2]);
    if (words[1] == "GET" && words.size() == 4 && number(words[3], r.most)) {
        r.verb = Verb::kGet;
    } else if (words[1] == "RANGE" && words.size() == 5 && number(words[3], r.offset) &&
               number(words[4], r.most)) {
        r.verb = Verb::kRange;
    } else if (words[1] == "HAS" && words.size() == 3) {
        r.verb = Verb::kHas;
    } else if (words[1] == "PUT" && words.size() == 4 && number(words[3], r.most)) {
        r.verb = Verb::kPut;
    } else {
        return std::nullopt;
    }
    return r;
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
    // From here on every thread keeps to the filter: the credentials are read, and what is left
    // is a client's work on what servers send.
    auto filter = client::fetch_filter();
    Result<void> filtered = filter ? seccomp::install_on_every_thread(*filter, "fetcher")
                                   : Result<void>(std::unexpected(filter.error()));
    if (!filtered) {
        std::fprintf(stderr, "ember-store-fetch: seccomp: %s\n", filtered.error().message.c_str());
        return 2;
    }
    std::mutex mutex;
    std::condition_variable ready, room;
    std::deque<Request> queue;
    size_t queued = 0;  // bytes of the PUTs in the queue
    unsigned idle = 0;  // workers waiting for a request
    bool done = false;
    Answers answers;
    auto answer_error = [&](const std::string& id, std::string why) {
        for (char& ch : why)
            if (ch == '\n' || ch == '\r') ch = ' ';
        answers.send(id + " ERR " + why + "\n");
    };
    {
        std::vector<std::jthread> workers;
        workers.reserve(fetchers);
        auto work = [&] {
            for (;;) {
                Request r;
                {
                    std::unique_lock lock(mutex);
                    ++idle;
                    ready.wait(lock, [&] { return done || !queue.empty(); });
                    --idle;
                    if (queue.empty()) return;
                    r = std::move(queue.front());
                    queue.pop_front();
                }
                if (r.verb == Verb::kGet || r.verb == Verb::kRange) {
                    auto body = r.verb == Verb::kGet
                                    ? (*fetcher)->get(r.path, r.most)
                                    : (*fetcher)->get_range(r.path, r.offset, r.most);
                    if (body)
                        answers.send(r.id + " OK " + std::to_string(body->size()) + "\n", *body);
                    else
                        answer_error(r.id, body.error().message);
                } else if (r.verb == Verb::kHas) {
                    auto held = (*fetcher)->has(r.path);
                    if (held)
                        answers.send(r.id + (*held ? " YES\n" : " NO\n"));
                    else
                        answer_error(r.id, held.error().message);
                } else {
                    auto put = (*fetcher)->put(r.path, r.body);
                    {
                        std::lock_guard lock(mutex);
                        queued -= r.body.size();
                    }
                    room.notify_one();
                    if (put)
                        answers.send(r.id + " OK 0\n");
                    else
                        answer_error(r.id, put.error().message);
                }
            }
        };
        char* line = nullptr;
        size_t capacity = 0;
        ssize_t n;
        while ((n = ::getline(&line, &capacity, stdin)) > 0) {
            std::string_view text(line, static_cast<size_t>(n));
            if (text.back() == '\n') text.remove_suffix(1);
            auto r = parse(text);
            if (!r) {
                // A PUT's bytes follow its line: past one that cannot be read, nothing can be.
                if (text.find(" PUT ") != std::string_view::npos) {
                    std::fprintf(stderr,
                                 "ember-store-fetch: a PUT that is not ID PUT PATH LENGTH\n");
                    break;
                }
                answers.send(
                    "0 ERR a request that is not ID GET PATH MOST, ID RANGE PATH OFFSET LENGTH, "
                    "ID HAS PATH or ID PUT PATH LENGTH\n");
                continue;
            }
            if (r->verb == Verb::kPut) {
                if (r->most > kMostObject) {
                    std::fprintf(stderr, "ember-store-fetch: a PUT of more than %zu bytes\n",
                                 kMostObject);
                    break;
                }
                r->body.resize(r->most);
                if (std::fread(r->body.data(), 1, r->most, stdin) != r->most) break;
            }
            if (!plain_path(r->path) || ((r->verb == Verb::kGet || r->verb == Verb::kRange) &&
                                         (r->most == 0 || r->most > kMostObject))) {
                answer_error(r->id, "a path or bound a store's object does not have");
                continue;
            }
            std::unique_lock lock(mutex);
            room.wait(lock, [&] { return queued == 0 || queued + r->body.size() <= kMostQueued; });
            queued += r->body.size();
            queue.push_back(std::move(*r));
            // Workers start as requests come, not all at once: a restore from a warm cache asks
            // for its manifest alone, and each thread costs the start some 100 us.
            if (idle < queue.size() && workers.size() < fetchers) {
                try {
                    workers.emplace_back(work);
                } catch (const std::system_error&) {
                    if (workers.empty()) {
                        std::fprintf(stderr, "ember-store-fetch: no thread to fetch with\n");
                        break;
                    }
                }
            }
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
