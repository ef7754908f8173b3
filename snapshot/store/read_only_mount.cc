#include "snapshot/store/read_only_mount.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <thread>

namespace ember::snapshot {

namespace {

constexpr uint64_t kRoot = FUSE_ROOT_ID;
constexpr uint64_t kFirstFile = kRoot + 1;
// Nothing here ever changes while mounted: the kernel may keep names and attributes for a day.
constexpr uint64_t kValidSeconds = 86400;
// What a request may carry: the largest is a LOOKUP's name; writes are refused by the mount.
constexpr uint32_t kMaxWrite = 4096;
constexpr size_t kRequestBuffer = 64 << 10;

fuse_attr attributes(uint64_t node, uint64_t bytes) {
    fuse_attr a{};
    a.ino = node;
    a.nlink = node == kRoot ? 2 : 1;
    a.mode = node == kRoot ? (S_IFDIR | 0555) : (S_IFREG | 0444);
    a.size = bytes;
    a.blocks = (bytes + 511) / 512;
    a.blksize = 4096;
    return a;
}

template <typename T>
T argument(const uint8_t* arg, size_t len) {
    T out{};
    std::memcpy(&out, arg, std::min(len, sizeof out));
    return out;
}

}  // namespace

Result<std::unique_ptr<ReadOnlyMount>> ReadOnlyMount::mount(const std::string& dir,
                                                            std::vector<ServedFile> files) {
    for (const auto& f : files)
        if (f.name.empty() || f.name == "." || f.name == ".." ||
            f.name.find('/') != std::string::npos || f.name.size() > 255)
            return fail("'" + f.name + "' is not a file name");
    // Non-blocking: a request can leave the queue between poll() and read() (its reader killed),
    // and a thread blocked in read() would not see the stop.
    UniqueFd fuse(::open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK));
    if (!fuse.valid()) return fail_errno("/dev/fuse");
    UniqueFd ended(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!ended.valid()) return fail_errno("eventfd");
    const std::string options = "fd=" + std::to_string(fuse.get()) +
                                ",rootmode=40000,user_id=" + std::to_string(::getuid()) +
                                ",group_id=" + std::to_string(::getgid()) +
                                ",allow_other,default_permissions";
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return fail_errno("pipe");
    UniqueFd watched(pipe_fds[0]), held(pipe_fds[1]);
    if (::mount("ember-store", dir.c_str(), "fuse.ember-store",
                MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, options.c_str()) != 0)
        return fail_errno("mounting FUSE on " + dir);
    const pid_t unmounter = ::fork();
    if (unmounter < 0) {
        const int err = errno;
        ::umount2(dir.c_str(), MNT_DETACH);
        return fail_errno("fork", err);
    }
    if (unmounter == 0) {
        // Only async-signal-safe calls from here: the parent may have had other threads. It keeps
        // nothing of the parent's open but the pipe's reading end, /dev/fuse least of all (while
        // any process holds it, the connection lives on and readers wait instead of failing).
        // A signal to the whole group (SIGTERM, SIGINT) must not end it before the server.
        sigset_t all;
        sigfillset(&all);
        ::sigprocmask(SIG_BLOCK, &all, nullptr);
        ::dup2(watched.get(), 0);
        ::close_range(1, ~0U, 0);
        char byte;
        while (::read(0, &byte, 1) < 0 && errno == EINTR) {
        }
        ::umount2(dir.c_str(), MNT_DETACH);
        ::_exit(0);
    }
    return std::unique_ptr<ReadOnlyMount>(new ReadOnlyMount(  // NOLINT: private
        std::move(fuse), std::move(ended), std::move(held), unmounter, std::move(files)));
}

ReadOnlyMount::~ReadOnlyMount() {
    unmount();
    end_all();
    for (auto& t : workers_) t.join();
    // Closing the last descriptor of /dev/fuse (fuse_, once this returns) ends the connection:
    // a VMM still reading gets an error, not a wait for answers nobody will give.
}

void ReadOnlyMount::end_all() {
    const uint64_t one = 1;
    (void)!::write(ended_.get(), &one, sizeof one);
}

void ReadOnlyMount::unmount() {
    if (unmounter_ <= 0) return;
    unmounter_pipe_.reset();
    int status = 0;
    while (::waitpid(unmounter_, &status, 0) < 0 && errno == EINTR) {
    }
    unmounter_ = -1;
}

Result<bool> ReadOnlyMount::serve(
    unsigned threads, int stop_fd,
    const std::function<void(const ServedFile&, const Error&)>& on_error) {
    threads = std::clamp(threads, 1u, kMaxThreads);
    on_error_ = on_error;
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { serve_requests(); });
    for (;;) {
        pollfd p[2] = {{stop_fd, POLLIN, 0}, {ended_.get(), POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return fail_errno("poll");
        }
        if (p[0].revents != 0) {
            // Idle threads end; one waiting on a read's chunk is not waited for.
            end_all();
            return true;
        }
        if (p[1].revents != 0) break;
    }
    for (auto& t : workers_) t.join();
    workers_.clear();
    return false;
}

void ReadOnlyMount::serve_requests() {
    std::vector<uint8_t> request(kRequestBuffer);
    std::vector<uint8_t> out(sizeof(fuse_out_header) + kMaxRead);
    for (;;) {
        pollfd p[2] = {{fuse_.get(), POLLIN, 0}, {ended_.get(), POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (p[1].revents != 0) return;
        if ((p[0].revents & POLLIN) == 0) {
            if (p[0].revents != 0) break;  // the connection ended
            continue;
        }
        const ssize_t n = ::read(fuse_.get(), request.data(), request.size());
        if (n < 0) {
            // ENOENT: the request was interrupted and withdrawn before it was read.
            if (errno == EINTR || errno == EAGAIN || errno == ENOENT) continue;
            break;  // ENODEV: unmounted
        }
        answer(request.data(), static_cast<size_t>(n), out);
    }
    end_all();
}

void ReadOnlyMount::reply(uint64_t unique, int error, std::vector<uint8_t>& out, size_t len) {
    fuse_out_header h{};
    h.len = static_cast<uint32_t>(sizeof h + len);
    h.error = error;
    h.unique = unique;
    std::memcpy(out.data(), &h, sizeof h);
    // One write, header and body: an answer to a request the kernel has given up on (an
    // interrupted one) is refused, which is fine.
    (void)!::write(fuse_.get(), out.data(), h.len);
}

void ReadOnlyMount::reply(uint64_t unique, int error, std::vector<uint8_t>& out, const void* body,
                          size_t len) {
    std::memcpy(out.data() + sizeof(fuse_out_header), body, len);
    reply(unique, error, out, len);
}

void ReadOnlyMount::answer(const uint8_t* buf, size_t len, std::vector<uint8_t>& out) {
    if (len < sizeof(fuse_in_header)) return;
    const auto in = argument<fuse_in_header>(buf, len);
    if (in.len < sizeof in) return;
    const size_t arg_len = std::min<size_t>(len, in.len) - sizeof in;
    const uint8_t* arg = buf + sizeof in;
    const bool is_file = in.nodeid >= kFirstFile && in.nodeid - kFirstFile < files_.size();
    const ServedFile* file = is_file ? &files_[in.nodeid - kFirstFile] : nullptr;
    uint8_t* const body = out.data() + sizeof(fuse_out_header);
    switch (in.opcode) {
        case FUSE_INIT: {
            const auto init = argument<fuse_init_in>(arg, arg_len);
            if (init.major != FUSE_KERNEL_VERSION) {
                reply(in.unique, -EPROTO, out);
                return;
            }
            fuse_init_out answer{};
            answer.major = FUSE_KERNEL_VERSION;
            answer.minor = std::min<uint32_t>(init.minor, FUSE_KERNEL_MINOR_VERSION);
            answer.max_readahead = init.max_readahead;
            // Reads in parallel and up to kMaxRead each, where the kernel offers them.
            answer.flags = init.flags & (FUSE_ASYNC_READ | FUSE_MAX_PAGES);
            answer.max_pages = static_cast<uint16_t>(kMaxRead / 4096);
            answer.max_background = 16;
            answer.congestion_threshold = 12;
            answer.max_write = kMaxWrite;
            answer.time_gran = 1;
            reply(in.unique, 0, out, &answer, sizeof answer);
            return;
        }
        case FUSE_LOOKUP: {
            const std::string_view name(reinterpret_cast<const char*>(arg),
                                        strnlen(reinterpret_cast<const char*>(arg), arg_len));
            const auto found = std::find_if(files_.begin(), files_.end(),
                                            [&](const ServedFile& f) { return f.name == name; });
            if (in.nodeid != kRoot || found == files_.end()) {
                reply(in.unique, -ENOENT, out);
                return;
            }
            fuse_entry_out entry{};
            entry.nodeid = kFirstFile + static_cast<uint64_t>(found - files_.begin());
            entry.generation = 1;
            entry.entry_valid = entry.attr_valid = kValidSeconds;
            entry.attr = attributes(entry.nodeid, found->bytes);
            reply(in.unique, 0, out, &entry, sizeof entry);
            return;
        }
        case FUSE_GETATTR: {
            if (in.nodeid != kRoot && !is_file) {
                reply(in.unique, -ENOENT, out);
                return;
            }
            fuse_attr_out attr{};
            attr.attr_valid = kValidSeconds;
            attr.attr = attributes(in.nodeid, file != nullptr ? file->bytes : 0);
            reply(in.unique, 0, out, &attr, sizeof attr);
            return;
        }
        case FUSE_OPEN:
        case FUSE_OPENDIR: {
            const auto open = argument<fuse_open_in>(arg, arg_len);
            if ((in.opcode == FUSE_OPEN) != is_file ||
                (in.opcode == FUSE_OPENDIR && in.nodeid != kRoot)) {
                reply(in.unique, in.opcode == FUSE_OPEN ? -EISDIR : -ENOTDIR, out);
                return;
            }
            if ((open.flags & O_ACCMODE) != O_RDONLY) {
                reply(in.unique, -EROFS, out);
                return;
            }
            fuse_open_out opened{};
            opened.fh = in.nodeid;
            opened.open_flags = FOPEN_KEEP_CACHE;
            reply(in.unique, 0, out, &opened, sizeof opened);
            return;
        }
        case FUSE_READ: {
            const auto read = argument<fuse_read_in>(arg, arg_len);
            if (file == nullptr) {
                reply(in.unique, -EBADF, out);
                return;
            }
            auto got = file->read(read.offset, std::span(body, std::min(read.size, kMaxRead)));
            if (!got) {
                on_error_(*file, got.error());
                reply(in.unique, -EIO, out);
                return;
            }
            reply(in.unique, 0, out, *got);
            return;
        }
        case FUSE_READDIR: {
            const auto read = argument<fuse_read_in>(arg, arg_len);
            if (in.nodeid != kRoot) {
                reply(in.unique, -ENOTDIR, out);
                return;
            }
            const size_t room = std::min(read.size, kMaxRead);
            size_t used = 0;
            for (uint64_t i = read.offset; i < files_.size() + 2; ++i) {
                const std::string_view name = i == 0   ? std::string_view(".")
                                              : i == 1 ? std::string_view("..")
                                                       : std::string_view(files_[i - 2].name);
                const size_t size = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + name.size());
                if (used + size > room) break;
                fuse_dirent d{};
                d.ino = i < 2 ? kRoot : kFirstFile + (i - 2);
                d.off = i + 1;
                d.namelen = static_cast<uint32_t>(name.size());
                d.type = i < 2 ? DT_DIR : DT_REG;
                std::memset(body + used, 0, size);
                std::memcpy(body + used, &d, FUSE_NAME_OFFSET);
                std::memcpy(body + used + FUSE_NAME_OFFSET, name.data(), name.size());
                used += size;
            }
            reply(in.unique, 0, out, used);
            return;
        }
        case FUSE_STATFS: {
            fuse_statfs_out statfs{};
            statfs.st.bsize = statfs.st.frsize = 4096;
            statfs.st.files = files_.size() + 1;
            statfs.st.namelen = 255;
            for (const auto& f : files_) statfs.st.blocks += (f.bytes + 4095) / 4096;
            reply(in.unique, 0, out, &statfs, sizeof statfs);
            return;
        }
        case FUSE_RELEASE:
        case FUSE_RELEASEDIR:
        case FUSE_FLUSH:
        case FUSE_DESTROY: reply(in.unique, 0, out); return;
        case FUSE_FORGET:
        case FUSE_BATCH_FORGET:
        case FUSE_INTERRUPT: return;  // never answered
        default: reply(in.unique, -ENOSYS, out); return;
    }
}

}  // namespace ember::snapshot
