#include "tests/support/fuse_file.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "tests/support/ember_process.h"
#include "tests/support/mount_namespace.h"

namespace ember::testing {
namespace {

constexpr uint64_t kRoot = FUSE_ROOT_ID;
constexpr uint64_t kImage = 2;
constexpr uint32_t kMaxWrite = 128 << 10;
// The attributes never change behind the kernel's back: it may keep them for a day.
constexpr uint64_t kValidSeconds = 86400;

fuse_attr attributes(uint64_t node, size_t size) {
    fuse_attr a{};
    a.ino = node;
    a.nlink = node == kRoot ? 2 : 1;
    a.mode = node == kRoot ? (S_IFDIR | 0755) : (S_IFREG | 0644);
    a.size = node == kRoot ? 0 : size;
    a.blocks = (a.size + 511) / 512;
    a.blksize = 4096;
    return a;
}

}  // namespace

std::unique_ptr<FuseFile> FuseFile::mount(const std::string& dir, std::string contents,
                                          std::string& why) {
    why = in_own_mount_namespace();
    if (!why.empty()) return nullptr;
    // Non-blocking: a request can leave the queue between poll() and read() (its sender killed),
    // and a blocked read() would not see the stop.
    const int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        why = std::string("/dev/fuse: ") + std::strerror(errno);
        return nullptr;
    }
    const std::string options =
        "fd=" + std::to_string(fd) + ",rootmode=40000,user_id=0,group_id=0,allow_other";
    if (::mount("ember-test", dir.c_str(), "fuse", MS_NOSUID | MS_NODEV, options.c_str()) < 0) {
        why = "mounting FUSE on " + dir + ": " + std::strerror(errno);
        ::close(fd);
        return nullptr;
    }
    return std::make_unique<FuseFile>(dir, fd, std::move(contents));
}

FuseFile::FuseFile(std::string dir, int fd, std::string contents)
    : dir_(std::move(dir)), fd_(fd), contents_(std::move(contents)) {
    stop_ = ::eventfd(0, EFD_CLOEXEC);
    thread_ = std::thread([this] { serve(); });
}

FuseFile::~FuseFile() {
    release();
    ::umount2(dir_.c_str(), MNT_DETACH);
    const uint64_t one = 1;
    (void)!::write(stop_, &one, sizeof one);
    thread_.join();
    // The last /dev/fuse fd closed ends the connection: whatever still has the file open gets
    // ENOTCONN rather than waiting for answers nobody will give.
    ::close(fd_);
    ::close(stop_);
}

void FuseFile::hold() {
    std::lock_guard lock(mu_);
    holding_ = true;
}

bool FuseFile::wait_held(size_t n) {
    std::unique_lock lock(mu_);
    return held_changed_.wait_for(lock, kFailsafe, [&] { return held_.size() >= n; });
}

void FuseFile::release() {
    std::lock_guard lock(mu_);
    holding_ = false;
    for (const auto& r : held_) answer(r);
    held_.clear();
}

size_t FuseFile::answered() const {
    std::lock_guard lock(mu_);
    return answered_;
}

std::string FuseFile::contents() const {
    std::lock_guard lock(mu_);
    return contents_;
}

void FuseFile::reply(uint64_t unique, int error, const void* body, size_t len) {
    fuse_out_header h{};
    h.len = static_cast<uint32_t>(sizeof h + len);
    h.error = error;
    h.unique = unique;
    iovec iov[2] = {{&h, sizeof h}, {const_cast<void*>(body), len}};
    // An answer to a request the kernel has given up on (an interrupted one) is refused: fine.
    (void)!::writev(fd_, iov, len ? 2 : 1);
}

void FuseFile::answer(const Request& r) {
    ++answered_;
    if (r.opcode == FUSE_READ) {
        const size_t at = std::min<size_t>(r.offset, contents_.size());
        const size_t n = std::min<size_t>(r.size, contents_.size() - at);
        reply(r.unique, 0, contents_.data() + at, n);
        return;
    }
    if (r.offset + r.data.size() > contents_.size()) contents_.resize(r.offset + r.data.size());
    std::memcpy(contents_.data() + r.offset, r.data.data(), r.data.size());
    fuse_write_out out{};
    out.size = static_cast<uint32_t>(r.data.size());
    reply(r.unique, 0, &out, sizeof out);
}

void FuseFile::serve() {
    std::vector<char> buf(kMaxWrite + 4096);
    for (;;) {
        pollfd p[2] = {{fd_, POLLIN, 0}, {stop_, POLLIN, 0}};
        if (::poll(p, 2, -1) < 0 && errno != EINTR) return;
        if (p[1].revents) return;
        if (!(p[0].revents & POLLIN)) {
            if (p[0].revents) return;  // the connection ended
            continue;
        }
        const ssize_t n = ::read(fd_, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == ENOENT) continue;
            return;  // ENODEV: unmounted
        }
        if (static_cast<size_t>(n) < sizeof(fuse_in_header)) continue;
        fuse_in_header in;
        std::memcpy(&in, buf.data(), sizeof in);
        const char* arg = buf.data() + sizeof in;
        const size_t arg_len = static_cast<size_t>(n) - sizeof in;
        switch (in.opcode) {
            case FUSE_INIT: {
                fuse_init_in init{};
                std::memcpy(&init, arg, std::min(arg_len, sizeof init));
                fuse_init_out out{};
                out.major = FUSE_KERNEL_VERSION;
                out.minor = std::min<uint32_t>(init.minor, FUSE_KERNEL_MINOR_VERSION);
                out.max_readahead = init.max_readahead;
                // What libfuse asks for by default: reads sent in the background, in parallel.
                out.flags = init.flags & FUSE_ASYNC_READ;
                out.max_background = 16;
                out.congestion_threshold = 12;
                out.max_write = kMaxWrite;
                out.time_gran = 1;
                reply(in.unique, 0, &out, sizeof out);
                break;
            }
            case FUSE_LOOKUP: {
                if (in.nodeid != kRoot || std::string_view(arg, strnlen(arg, arg_len)) != "image") {
                    reply(in.unique, -ENOENT);
                    break;
                }
                fuse_entry_out out{};
                out.nodeid = kImage;
                out.generation = 1;
                out.entry_valid = out.attr_valid = kValidSeconds;
                std::lock_guard lock(mu_);
                out.attr = attributes(kImage, contents_.size());
                reply(in.unique, 0, &out, sizeof out);
                break;
            }
            case FUSE_GETATTR:
            case FUSE_SETATTR: {
                fuse_attr_out out{};
                out.attr_valid = kValidSeconds;
                std::lock_guard lock(mu_);
                out.attr = attributes(in.nodeid, contents_.size());
                reply(in.unique, 0, &out, sizeof out);
                break;
            }
            case FUSE_OPEN: {
                fuse_open_out out{};
                out.fh = 1;
                reply(in.unique, 0, &out, sizeof out);
                break;
            }
            case FUSE_READ:
            case FUSE_WRITE: {
                Request r{in.unique, in.opcode, 0, 0, {}};
                if (in.opcode == FUSE_READ) {
                    fuse_read_in rd{};
                    std::memcpy(&rd, arg, std::min(arg_len, sizeof rd));
                    r.offset = rd.offset;
                    r.size = rd.size;
                } else {
                    fuse_write_in wr{};
                    std::memcpy(&wr, arg, std::min(arg_len, sizeof wr));
                    const size_t have = arg_len > sizeof wr ? arg_len - sizeof wr : 0;
                    r.offset = wr.offset;
                    r.data.assign(arg + sizeof wr, std::min<size_t>(wr.size, have));
                }
                std::lock_guard lock(mu_);
                if (holding_) {
                    held_.push_back(std::move(r));
                    held_changed_.notify_all();
                } else {
                    answer(r);
                }
                break;
            }
            case FUSE_FLUSH:
            case FUSE_RELEASE:
            case FUSE_FSYNC: reply(in.unique, 0); break;
            case FUSE_STATFS: {
                fuse_statfs_out out{};
                out.st.bsize = out.st.frsize = 4096;
                out.st.namelen = 255;
                reply(in.unique, 0, &out, sizeof out);
                break;
            }
            case FUSE_FORGET:
            case FUSE_BATCH_FORGET:
            case FUSE_INTERRUPT: break;  // never answered
            default: reply(in.unique, -ENOSYS);
        }
    }
}

}  // namespace ember::testing
