// A folder of read-only files served over FUSE, for a store's drive images: ember (or any VMM)
// opens one as it opens an image on disk, and each read the kernel does not answer from its page
// cache comes here. Speaks the kernel's protocol (linux/fuse.h) directly on /dev/fuse: what a
// read-only folder needs is a dozen requests, every one bounded here, with no library in between.
// The files never change while mounted, so the kernel keeps their pages and attributes: a function
// cloned ten times on a host reads each page of its image once. Mounting needs CAP_SYS_ADMIN.
// A small process of its own, forked at the mount, unmounts the folder once this one has ended,
// however it ended (SIGKILL too): a server that dies leaves no dead mount behind, and the server
// itself never needs umount2 under its seccomp filter.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
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
    // Unmounts, and waits for its threads: whatever still has a file open reads an error from
    // then on, never waits.
    ~ReadOnlyMount();
    ReadOnlyMount(const ReadOnlyMount&) = delete;
    ReadOnlyMount& operator=(const ReadOnlyMount&) = delete;

    // Answers requests from `threads` threads of its own until `stop_fd` is readable (a
    // signalfd, say; never read here): true; or until the folder is unmounted by someone else:
    // false, once every thread has ended. After a stop, a thread still waiting on a read's chunk
    // (a slow store's, up to the fetcher's bound) is not waited for: unmount(), then end the
    // process, if waiting is not wanted. A read a file cannot answer is answered EIO, and
    // `on_error` told (from any thread).
    Result<bool> serve(unsigned threads, int stop_fd,
                       const std::function<void(const ServedFile&, const Error&)>& on_error);
    // Unmounts now, and waits until that is done.
    void unmount();

  private:
    ReadOnlyMount(UniqueFd fuse, UniqueFd ended, UniqueFd unmounter_pipe, pid_t unmounter,
                  std::vector<ServedFile> files)
        : fuse_(std::move(fuse)),
          ended_(std::move(ended)),
          unmounter_pipe_(std::move(unmounter_pipe)),
          unmounter_(unmounter),
          files_(std::move(files)) {}
    void serve_requests();
    // Makes `ended_` readable: every serving thread ends once it is not inside an answer.
    void end_all();
    // Answers one request of `len` bytes in `buf`; `out` is this thread's buffer for the answer.
    void answer(const uint8_t* buf, size_t len, std::vector<uint8_t>& out);
    // Sends the answer whose body is the `len` bytes after the header's room in `out`.
    void reply(uint64_t unique, int error, std::vector<uint8_t>& out, size_t len = 0);
    // The same with `len` bytes of `body`, copied in.
    void reply(uint64_t unique, int error, std::vector<uint8_t>& out, const void* body, size_t len);

    UniqueFd fuse_;
    UniqueFd ended_;           // an eventfd, readable once one thread has seen the mount go
    UniqueFd unmounter_pipe_;  // the unmounting process unmounts once this closes
    pid_t unmounter_;
    std::vector<ServedFile> files_;
    std::function<void(const ServedFile&, const Error&)> on_error_;
    std::vector<std::thread> workers_;
};

}  // namespace ember::snapshot
