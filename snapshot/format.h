// snapshot/: saving a paused VM and rebuilding it in a new process.
//
// The state file: "EMBERSNP", a format version, then sections, each an id, a version of its own
// and a length, and last a 64-bit FNV-1a checksum of everything before it. A reader skips a section
// it does not know when its id carries kOptional, and fails clearly on anything else: a truncated
// file, a bad checksum, a foreign magic, a newer format, a missing or unknown required section, a
// section newer than its kind as this ember knows it (core/base/state_sections.h).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/base/bytes.h"
#include "core/base/error.h"
#include "core/base/state_sections.h"

namespace ember::snapshot {

inline constexpr char kMagic[8] = {'E', 'M', 'B', 'E', 'R', 'S', 'N', 'P'};
// 2: each per-device section begins with the tag of its device (snapshot/devices.h); format 1 had
// none, and its device sections are matched to devices by their order.
inline constexpr uint32_t kFormatVersion = 2;
inline constexpr uint32_t kFirstTaggedFormat = 2;
// A reader that does not know a section with this bit set skips it.
inline constexpr uint32_t kOptional = 0x80000000u;

struct Section {
    uint32_t id;  // without kOptional
    uint32_t version;
    std::span<const uint8_t> payload;
    bool optional = false;  // the file marked it kOptional
};

class Writer {
  public:
    // An older format only for tests and fuzzers that re-encode an older file.
    explicit Writer(uint32_t format_version = kFormatVersion) : format_version_(format_version) {}
    void add(uint32_t id, uint32_t version, std::span<const uint8_t> payload);
    // At the version this ember writes the kind at.
    void add(const StateSection& kind, std::span<const uint8_t> payload) {
        add(kind.id, kind.version, payload);
    }
    // The whole file, checksum included.
    std::vector<uint8_t> finish() const;

  private:
    uint32_t format_version_;
    std::vector<uint8_t> body_;
    uint32_t count_ = 0;
};

class Reader {
  public:
    // Checks the whole file before handing out any section. `known` lists the kinds this reader
    // understands, each with the newest version it reads; a section outside them is an error
    // unless marked optional.
    static Result<Reader> parse(std::span<const uint8_t> file, std::span<const StateSection> known);
    // The sections point into `file`, which must outlive the reader: never a temporary.
    static Result<Reader> parse(std::vector<uint8_t>&& file,
                                std::span<const StateSection> known) = delete;

    std::vector<Section> all(uint32_t id) const;
    Result<Section> one(uint32_t id) const;
    uint32_t format_version() const { return version_; }
    const std::vector<Section>& sections() const { return sections_; }
    // Optional sections this reader did not know and left out of sections().
    uint32_t skipped() const { return skipped_; }

  private:
    uint32_t version_ = 0;
    std::vector<Section> sections_;
    uint32_t skipped_ = 0;
};

uint64_t fnv1a64(std::span<const uint8_t> bytes);
// The closing checksum of a file Reader::parse() accepted: what names the snapshot it holds.
uint64_t closing_checksum(std::span<const uint8_t> file);

// The largest state file a reader takes: many times any VM's, and a bound on what a path from
// outside (a FIFO, /dev/zero, a huge file) can make it read and allocate.
inline constexpr uint64_t kMaxStateFileBytes = 64 << 20;

// The whole state file at `path`, which must be a regular file of at most kMaxStateFileBytes; the
// errors leave the path to the caller, which names the field too.
Result<std::vector<uint8_t>> read_state_file(const std::string& path);

}  // namespace ember::snapshot
