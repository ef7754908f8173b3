// A folder of read-only files served over FUSE, for a store's drive images: ember (or any VMM)
// opens one as it opens an image on disk, and each read the kernel does not answer from its page
// cache comes here. Speaks the kernel's protocol (linux/fuse.h) directly on /dev/fuse: what a
// read-only folder needs is a dozen requests, every one bounded here, with no library in between.
// The files never change while mounted, so the kernel keeps their pages and attributes: a function
// cloned ten times on a host reads each page of its image once. Mounting needs CAP_SYS_ADMIN.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember::snapshot {

struct ServedFile {
    std::string name;  // a single path component
    uint64_t bytes = 0;
    // Fills its span from the offset, short only at the end; called from several threads.
    std::function<Result<size_t>(uint64_t, std::span<uint8_t>)> read;
};

class ReadOnlyMount {
  public:
    // The most a read asks for at once, and the most threads that serve.
    static constexpr uint32_t kMaxRead = uint32_t{1} << 20;
    static constexpr unsigned kMaxThreads = 16;

    // Mounts `files` on `dir` (an existing directory), read-only, seen by every user.
    static Result<std::unique_ptr<ReadOnlyMount>> mount(const std::string& dir,
                                                        std::vector<ServedFile> files);
    // Unmounts: whatever still has a file open reads an error from then on, never waits.
    ~ReadOnlyMount();
    ReadOnlyMount(const ReadOnlyMount&) = delete;
    ReadOnlyMount& operator=(const ReadOnlyMount&) = delete;

    // Answers requests from `threads` threads (this one among them) until `stop_fd` is readable
    // (a signalfd, say; never read here) or the folder is unmounted by someone else. A read a
    // file cannot answer is answered EIO, and `on_error` told (from any thread).
    Result<void> serve(unsigned threads, int stop_fd,
                       const std::function<void(const ServedFile&, const Error&)>& on_error);

  private:
    ReadOnlyMount(std::string dir, UniqueFd fuse, UniqueFd ended, std::vector<ServedFile> files)
        : dir_(std::move(dir)),
          fuse_(std::move(fuse)),
          ended_(std::move(ended)),
          files_(std::move(files)) {}
    void serve_one(int stop_fd,
                   const std::function<void(const ServedFile&, const Error&)>& on_error);
    // Answers one request of `len` bytes in `buf`; `data` is this thread's buffer for a read.
    void answer(const uint8_t* buf, size_t len, std::vector<uint8_t>& data,
                const std::function<void(const ServedFile&, const Error&)>& on_error);
    void reply(uint64_t unique, int error, const void* body = nullptr, size_t len = 0);

    std::string dir_;
    UniqueFd fuse_;
    UniqueFd ended_;  // an eventfd, readable once one thread has seen the mount go
    std::vector<ServedFile> files_;
};

}  // namespace ember::snapshot
