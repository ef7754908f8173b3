// One file served over FUSE from memory, whose reads and writes can be held unanswered: a drive
// image that stalls as a hung network file system or a dying disk does, for the tests that show a
// stalled drive never stalls ember. Speaks the kernel's FUSE protocol (linux/fuse.h) directly on
// /dev/fuse, from a thread of its own; needs root (mount).
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ember::testing {

class FuseFile {
  public:
    // Mounts a FUSE file system on `dir` (an empty directory) holding one file, "image", with
    // `contents`, seen only by the calling thread and the processes it starts from then on (the
    // first mount moves it into a mount namespace of its own). Null, with the reason in `why`,
    // where this host cannot (no /dev/fuse, not root).
    static std::unique_ptr<FuseFile> mount(const std::string& dir, std::string contents,
                                           std::string& why);
    // Answers what is held, unmounts, and ends the thread.
    ~FuseFile();
    // mount() makes one: `fd` is the mounted /dev/fuse.
    FuseFile(std::string dir, int fd, std::string contents);
    FuseFile(const FuseFile&) = delete;
    FuseFile& operator=(const FuseFile&) = delete;

    std::string path() const { return dir_ + "/image"; }
    // From now on, reads and writes of the file wait unanswered until release().
    void hold();
    // Waits until at least `n` requests are held; false if that has not happened by the failsafe.
    bool wait_held(size_t n);
    // Answers every held request, in order, and holds no more.
    void release();
    // The reads and writes answered so far, and the file's bytes now.
    size_t answered() const;
    std::string contents() const;

  private:
    struct Request {
        uint64_t unique;
        uint32_t opcode;
        uint64_t offset;
        uint32_t size;
        std::string data;  // a write's bytes
    };
    void serve();
    // Answers a read or a write; under mu_.
    void answer(const Request& r);
    void reply(uint64_t unique, int error, const void* body = nullptr, size_t len = 0);

    std::string dir_;
    int fd_;
    int stop_;  // an eventfd that ends the thread
    mutable std::mutex mu_;
    std::condition_variable held_changed_;
    std::string contents_;
    bool holding_ = false;
    std::vector<Request> held_;
    size_t answered_ = 0;
    std::thread thread_;
};

}  // namespace ember::testing
