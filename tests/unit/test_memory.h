// Guest memory laid out as ember lays it out, for tests that write boot structures.
#pragma once

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "core/arch/x86_64/layout.h"
#include "core/base/unique_fd.h"
#include "core/memory/guest_memory.h"

namespace ember::testing {

inline GuestMemory make_memory(uint64_t mib) {
    auto regions = x86::ram_regions(mib << 20);
    auto mem = GuestMemory::create_anonymous(regions);
    EXPECT_TRUE(mem) << mem.error().message;
    return std::move(*mem);
}

// An in-memory file holding `bytes`, for the loaders.
inline UniqueFd memfd_with(const std::string& bytes) {
    UniqueFd fd(::memfd_create("ember-test", MFD_CLOEXEC));
    EXPECT_EQ(::write(fd.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    return fd;
}

}  // namespace ember::testing
