#include "snapshot/store/fetcher_store.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>

#include "core/base/file_io.h"
#include "snapshot/store/chunk_codec.h"
#include "snapshot/store/directory_store.h"
#include "snapshot/store/manifest.h"

extern char** environ;  // NOLINT: posix_spawn's

namespace ember::snapshot {

namespace {

// Reads a pipe a line, or an exact count of bytes, at a time. A body goes from the pipe into its
// own buffer, but for what the last read took past its header: a chunk is copied once here.
class PipeReader {
  public:
    explicit PipeReader(int fd) : fd_(fd) {}
    std::optional<std::string> line(size_t most) {
        for (size_t searched = 0;;) {
            const std::string_view held = view();
            if (const size_t nl = held.find('\n', searched); nl != std::string_view::npos) {
                std::string out(held.substr(0, nl));
                start_ += nl + 1;
                return out;
            }
            searched = held.size();
            if (held.size() > most || !fill()) return std::nullopt;
        }
    }
    std::optional<std::vector<uint8_t>> bytes(size_t n) {
        std::vector<uint8_t> out(n);
        const size_t have = std::min(n, buffer_.size() - start_);
        if (have > 0) std::memcpy(out.data(), buffer_.data() + start_, have);
        start_ += have;
        for (size_t at = have; at < n;) {
            const ssize_t got =
                retry_on_eintr([&] { return ::read(fd_, out.data() + at, n - at); });
            if (got <= 0) return std::nullopt;
            at += static_cast<size_t>(got);
        }
        return out;
    }

  private:
    std::string_view view() const { return std::string_view(buffer_).substr(start_); }
    bool fill() {
        if (start_ > 0) {
            buffer_.erase(0, start_);
            start_ = 0;
        }
        const size_t old = buffer_.size();
        buffer_.resize(old + 4096);
        const ssize_t n = retry_on_eintr([&] { return ::read(fd_, buffer_.data() + old, 4096); });
        buffer_.resize(old + static_cast<size_t>(std::max<ssize_t>(n, 0)));
        return n > 0;
    }
    int fd_;
    std::string buffer_;
    size_t start_ = 0;
};

}  // namespace

std::string FetcherStore::beside_this_program() {
    std::string self(4096, '\0');
    const ssize_t n = ::readlink("/proc/self/exe", self.data(), self.size() - 1);
    self.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return self.substr(0, self.rfind('/') + 1) + "ember-store-fetch";
}

Result<std::unique_ptr<FetcherStore>> FetcherStore::start(const std::string& fetcher,
                                                          const std::string& base,
                                                          std::chrono::milliseconds wait) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0) return fail_errno("pipe");
    UniqueFd in_read(in[0]), in_write(in[1]);
    if (::pipe2(out, O_CLOEXEC) != 0) return fail_errno("pipe");
    UniqueFd out_read(out[0]), out_write(out[1]);
    // Room for a few chunks' answers, where 64 KiB would take two wake-ups of each side per chunk
    // (a hint: an unprivileged process past the system's bound keeps the default).
    ::fcntl(out_write.get(), F_SETPIPE_SZ, 1 << 20);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_read.get(), STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
    std::string arg0 = fetcher, arg1 = base, arg2 = "--fetchers", arg3 = std::to_string(kFetches);
    char* argv[] = {arg0.data(), arg1.data(), arg2.data(), arg3.data(), nullptr};
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, fetcher.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return fail_errno("starting " + fetcher, rc);
    return std::unique_ptr<FetcherStore>(new FetcherStore(  // NOLINT: private
        pid, std::move(in_write), std::move(out_read), wait));
}

FetcherStore::FetcherStore(pid_t pid, UniqueFd to, UniqueFd from, std::chrono::milliseconds wait)
    : pid_(pid), to_(std::move(to)), from_(std::move(from)), wait_(wait) {
    reader_ = std::jthread([this] { read_answers(); });
}

FetcherStore::~FetcherStore() {
    to_.reset();
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    if (reader_.joinable()) reader_.join();
}

void FetcherStore::read_answers() {
    PipeReader pipe(from_.get());
    std::string why = "ember-store-fetch ended";
    for (;;) {
        auto head = pipe.line(4096);
        if (!head) break;
        // ID OK LENGTH | ID ERR MESSAGE
        const size_t a = head->find(' ');
        if (a == std::string::npos) {
            why = "ember-store-fetch answered what is not an answer";
            break;
        }
        uint64_t id = 0;
        const auto [end, ec] = std::from_chars(head->data(), head->data() + a, id);
        if (ec != std::errc() || end != head->data() + a) {
            why = "ember-store-fetch answered what is not an answer";
            break;
        }
        const std::string_view rest = std::string_view(*head).substr(a + 1);
        if (id == 0) {
            // Not an answer to one request: a line it could not read. Ours are well formed, so it
            // is a RANGE sent to an ember-store-fetch from before packs, which answers nothing
            // else to it: every RANGE waiting fails now, not at the end of its wait.
            if (!rest.starts_with("ERR ")) {
                why = "ember-store-fetch answered what is not an answer";
                break;
            }
            std::lock_guard lock(mutex_);
            no_ranges_ = "ember-store-fetch reads no ranges (" + std::string(rest.substr(4)) + ")";
            for (auto& [_, p] : pending_)
                if (p.range) p.answered.notify_one();
            continue;
        }
        size_t most = 0;
        {
            std::lock_guard lock(mutex_);
            if (auto asked = pending_.find(id); asked != pending_.end()) {
                most = asked->second.most;
            } else if (auto late = abandoned_.find(id); late != abandoned_.end()) {
                // Its request gave up waiting: the answer is read, and dropped.
                most = late->second;
                abandoned_.erase(late);
            }
        }
        Result<Reply> answer = fail("");
        if (rest == "YES" || rest == "NO") {
            answer = Reply{{}, rest == "YES"};
        } else if (rest.starts_with("OK ")) {
            size_t length = 0;
            const auto n = rest.substr(3);
            const auto [e2, c2] = std::from_chars(n.data(), n.data() + n.size(), length);
            if (c2 != std::errc() || e2 != n.data() + n.size() || length > most) {
                why = "ember-store-fetch answered more bytes than were asked for";
                break;
            }
            auto body = pipe.bytes(length);
            if (!body) break;
            answer = Reply{std::move(*body), std::nullopt};
        } else if (rest.starts_with("ERR ")) {
            answer = fail(std::string(rest.substr(4)));
        } else {
            why = "ember-store-fetch answered what is not an answer";
            break;
        }
        // The request may have given up waiting meanwhile, and marked this answer to be read
        // past: it has been, and the mark goes with it.
        std::lock_guard lock(mutex_);
        if (auto it = pending_.find(id); it != pending_.end()) {
            it->second.answer = std::move(answer);
            it->second.answered.notify_one();
        } else {
            abandoned_.erase(id);
        }
    }
    std::lock_guard lock(mutex_);
    dead_ = why;
    for (auto& [_, p] : pending_) p.answered.notify_one();
}

Result<FetcherStore::Reply> FetcherStore::request(const std::string& head,
                                                  std::span<const uint8_t> body, size_t most,
                                                  bool range) {
    std::unique_lock lock(mutex_);
    if (dead_) return fail(*dead_);
    if (range && no_ranges_) return fail(*no_ranges_);
    const uint64_t id = next_id_++;
    Pending& mine = pending_[id];
    mine.most = most;
    mine.range = range;
    lock.unlock();
    // Not under mutex_: a PUT's bytes may wait for the fetcher to take them, which waits for its
    // answers to be read, which takes mutex_.
    bool sent = false;
    {
        std::lock_guard writing(writing_);
        const std::string line = std::to_string(id) + " " + head + "\n";
        sent = write_all(to_.get(), {reinterpret_cast<const uint8_t*>(line.data()), line.size()}) &&
               (body.empty() || write_all(to_.get(), body));
    }
    lock.lock();
    if (!sent) {
        pending_.erase(id);
        return fail("ember-store-fetch does not take requests");
    }
    const bool got = mine.answered.wait_for(
        lock, wait_, [&] { return mine.answer.has_value() || dead_ || (range && no_ranges_); });
    auto answer = std::move(mine.answer);
    pending_.erase(id);
    if (answer) return std::move(*answer);
    // Refused unread: no answer of its ID will come.
    if (range && no_ranges_ && !dead_) return fail(*no_ranges_);
    // Its answer may still come: it must be read past, not taken for the next one's.
    if (!dead_) abandoned_[id] = most;
    if (!got)
        return fail("no answer from the store within " + std::to_string(wait_.count()) + " ms");
    return fail(*dead_);
}

Result<std::vector<uint8_t>> FetcherStore::fetch(const std::string& path, size_t most) {
    auto reply = request("GET " + path + " " + std::to_string(most), {}, most);
    EMBER_TRY(reply);
    if (reply->held) return fail("ember-store-fetch answered a GET with YES or NO");
    return std::move(reply->body);
}

Result<ChunkBytes> FetcherStore::get(const ChunkId& id, uint64_t length) {
    Error last{""};
    for (int attempt = 0; attempt < 3; ++attempt) {
        auto bytes = fetch("chunks/" + id.hex(), length);
        EMBER_TRY(bytes, "chunk " + id.hex());
        auto checked = decode_chunk(id, length, std::move(*bytes));
        if (checked) return std::make_shared<const std::vector<uint8_t>>(std::move(*checked));
        last = std::move(checked.error());
    }
    return fail(last.message + " (asked for 3 times)");
}

Result<std::vector<uint8_t>> FetcherStore::get_range(const ChunkId& object, uint64_t offset,
                                                     uint64_t length) {
    auto reply = request("RANGE chunks/" + object.hex() + " " + std::to_string(offset) + " " +
                             std::to_string(length),
                         {}, length, true);
    EMBER_TRY(reply, "object " + object.hex());
    if (reply->held) return fail("ember-store-fetch answered a RANGE with YES or NO");
    if (reply->body.size() != length)
        return fail("object " + object.hex() + ": " + std::to_string(reply->body.size()) +
                    " bytes where " + std::to_string(length) + " were asked for");
    return std::move(reply->body);
}

Result<std::string> FetcherStore::manifest(const std::string& name) {
    auto bytes = fetch("snapshots/" + name + ".json", kMaxManifestBytes);
    EMBER_TRY(bytes);
    return std::string(bytes->begin(), bytes->end());
}

// Any object of the chunk's name is the chunk, in either form: a restore checks it.
Result<bool> FetcherStore::put(const ChunkId& id, std::span<const uint8_t> bytes, uint64_t) {
    const std::string path = "chunks/" + id.hex();
    auto held = request("HAS " + path, {}, 0);
    EMBER_TRY(held, "chunk " + id.hex());
    if (!held->held)
        return fail("chunk " + id.hex() + ": ember-store-fetch answered a HAS with bytes");
    if (*held->held) return false;
    EMBER_TRY(put_object(path, bytes), "chunk " + id.hex());
    return true;
}

Result<void> FetcherStore::put_manifest(std::string_view name, std::string_view text) {
    EMBER_TRY(check_snapshot_name(name));
    return put_object("snapshots/" + std::string(name) + ".json",
                      {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

Result<void> FetcherStore::put_object(const std::string& path, std::span<const uint8_t> bytes) {
    auto reply = request("PUT " + path + " " + std::to_string(bytes.size()), bytes, 0);
    EMBER_TRY(reply);
    if (reply->held) return fail("ember-store-fetch answered a PUT with YES or NO");
    return {};
}

}  // namespace ember::snapshot
