// A device's persistence is its own: a toy device declares its section and codec in this file
// alone, and the snapshot code saves and restores it beside the others, in order, checking that
// the file fits the VM's devices.
#include "snapshot/devices.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

#include "vmm/base/bytes.h"

namespace ember::snapshot {
namespace {

// The toy device: a counter and a name.
constexpr StateSection kToySection{0x70, "toy"};
constexpr StateSection kOtherSection{0x71, "other"};

class Toy : public Persistent {
  public:
    explicit Toy(StateSection kind = kToySection) : kind_(kind) {}
    StateSection section() const override { return kind_; }
    void quiesce() override { ++quiesced; }
    std::vector<uint8_t> save() const override {
        ByteWriter w;
        w.put(counter);
        w.put_string(name);
        return w.bytes();
    }
    Result<void> restore(std::span<const uint8_t> payload) override {
        ByteReader r(payload, "toy section");
        EMBER_TRY(read_into(r, counter));
        auto n = r.get_string();
        if (!n) return std::unexpected(n.error());
        if (!r.done()) return fail("toy section has trailing bytes");
        name = *n;
        return {};
    }

    uint32_t counter = 0;
    std::string name;
    int quiesced = 0;

  private:
    StateSection kind_;
};

constexpr uint32_t kKnown[] = {kToySection.id, kOtherSection.id};
constexpr StateSection kKinds[] = {kToySection, kOtherSection};

std::vector<uint8_t> saved(std::span<Persistent* const> devices) {
    Writer w;
    save_devices(w, devices);
    return w.finish();
}

TEST(SnapshotDevices, EachDeviceGetsBackItsOwnSectionInOrder) {
    Toy a, b;
    Toy c(kOtherSection);
    a.counter = 1, a.name = "first";
    b.counter = 2, b.name = "second";
    c.counter = 3, c.name = "third";
    std::array<Persistent*, 3> before{&a, &c, &b};
    auto file = saved(before);

    Toy a2, b2;
    Toy c2(kOtherSection);
    std::array<Persistent*, 3> after{&a2, &c2, &b2};
    auto reader = Reader::parse(file, kKnown);
    ASSERT_TRUE(reader) << reader.error().message;
    ASSERT_TRUE(restore_devices(*reader, after, kKinds));
    EXPECT_EQ(a2.counter, 1u);
    EXPECT_EQ(a2.name, "first");
    EXPECT_EQ(b2.counter, 2u);
    EXPECT_EQ(b2.name, "second");
    EXPECT_EQ(c2.counter, 3u);
    EXPECT_EQ(c2.name, "third");
}

TEST(SnapshotDevices, AFileWithAnotherNumberOfADevicesSectionsIsRefusedBeforeAnyRestore) {
    Toy a, b;
    std::array<Persistent*, 2> two{&a, &b};
    auto file = saved(two);
    auto reader = Reader::parse(file, kKnown);
    ASSERT_TRUE(reader);

    Toy only;
    std::array<Persistent*, 1> one{&only};
    auto r = restore_devices(*reader, one, kKinds);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "the snapshot has 2 toy sections for 1 devices");

    // A kind the VM has none of still counts: its sections would be silently dropped.
    Toy other(kOtherSection);
    std::array<Persistent*, 1> wrong_kind{&other};
    auto w = restore_devices(*reader, wrong_kind, kKinds);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().message, "the snapshot has 2 toy sections for 0 devices");
    EXPECT_EQ(other.counter, 0u) << "nothing restored";
}

TEST(SnapshotDevices, ABadPayloadNamesTheSectionItCameFrom) {
    Writer w;
    const std::vector<uint8_t> garbage = {1, 2};
    w.add(kToySection.id, 1, garbage);
    auto file = w.finish();
    auto reader = Reader::parse(file, kKnown);
    ASSERT_TRUE(reader);
    Toy t;
    std::array<Persistent*, 1> one{&t};
    auto r = restore_devices(*reader, one, kKinds);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message,
              "toy section 0: toy section: section is shorter than its contents");
}

}  // namespace
}  // namespace ember::snapshot
