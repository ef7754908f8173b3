// A remote store (http://, https:// or s3://) read, and an S3 bucket pushed into, through
// ember-store-fetch, a process of its own that this one starts and talks to over a pipe pair: a
// page-fault handler never links an HTTP client, and the code that parses a server's bytes never
// holds the guest's memory. A chunk is checked on arrival and asked for again, twice at most, when
// its bytes are not what its name says (a proxy's or a disk's fault may pass); every wait is
// bounded, and a fetcher that dies fails what waits.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/base/unique_fd.h"
#include "snapshot/store/chunk_store.h"

namespace ember::snapshot {

class FetcherStore final : public ChunkStore, public ChunkSink {
  public:
    // GETs at once: a round trip of a millisecond or more, not the server, bounds a restore's
    // fetch ahead, so it runs as many as a browser opens to a CDN's origins.
    static constexpr unsigned kFetches = 32;

    // `fetcher`: ember-store-fetch's path; `base`: the store's URL (its root); `wait`: the most a
    // request may wait for its answer.
    // ember-store-fetch beside the running program, where the build and an install put it.
    static std::string beside_this_program();

    static Result<std::unique_ptr<FetcherStore>> start(const std::string& fetcher,
                                                       const std::string& base,
                                                       std::chrono::milliseconds wait);
    ~FetcherStore() override;
    FetcherStore(const FetcherStore&) = delete;
    FetcherStore& operator=(const FetcherStore&) = delete;

    Result<ChunkBytes> get(const ChunkId& id, uint64_t length) override;
    Result<std::vector<uint8_t>> get_range(const ChunkId& object, uint64_t offset,
                                           uint64_t length) override;
    Result<std::string> manifest(const std::string& name);

    // A push into a bucket (S3's API): a HEAD for each chunk, a PUT for each the store lacks.
    Result<bool> put(const ChunkId& id, std::span<const uint8_t> stored, uint64_t length) override;
    Result<void> put_manifest(std::string_view name, std::string_view text) override;
    unsigned parallel() const override { return kFetches; }

  private:
    struct Reply {
        std::vector<uint8_t> body;
        std::optional<bool> held;  // a HAS's answer
    };
    FetcherStore(pid_t pid, UniqueFd to, UniqueFd from, std::chrono::milliseconds wait);
    // One request, "GET PATH MOST", "RANGE PATH OFFSET LENGTH", "HAS PATH" or "PUT PATH LENGTH"
    // with its `body`, and its answer, whose bytes are at most `most`.
    Result<Reply> request(const std::string& head, std::span<const uint8_t> body, size_t most,
                          bool range = false);
    // The object at `path`, at most `most` bytes.
    Result<std::vector<uint8_t>> fetch(const std::string& path, size_t most);
    Result<void> put_object(const std::string& path, std::span<const uint8_t> bytes);
    void read_answers();

    pid_t pid_;
    UniqueFd to_, from_;
    std::chrono::milliseconds wait_;
    std::mutex writing_;  // one request's line and bytes at a time into the pipe
    std::mutex mutex_;
    struct Pending {
        size_t most = 0;
        bool range = false;  // a RANGE, which an ember-store-fetch older than packs cannot read
        std::optional<Result<Reply>> answer;
        // Its own: one answer wakes the one request that waits for it, not all 32.
        std::condition_variable answered;
    };
    std::map<uint64_t, Pending> pending_;
    std::map<uint64_t, size_t> abandoned_;  // requests that gave up waiting: their bounds
    uint64_t next_id_ = 1;
    std::optional<std::string> dead_;  // why no more answers come
    // Why RANGEs fail at once: the fetcher answered one with its error for a request it cannot
    // read (ID 0), which only RANGE, the newest verb, can be from one of ours.
    std::optional<std::string> no_ranges_;
    std::jthread reader_;
};

}  // namespace ember::snapshot
