// A device's persistence is its own: a toy device declares its section and codec in this file
// alone, and the snapshot code saves and restores it beside the others, each section back to the
// device it was tagged with, checking that the file fits the VM's devices; a file from before the
// tags still loads, in order.
#include "snapshot/devices.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

#include "core/base/bytes.h"

namespace ember::snapshot {
namespace {

// The toy device: a counter and a name.
constexpr StateSection kToySection{0x70, "toy", 3, kPerDevice};
constexpr StateSection kOtherSection{0x71, "other", 1, kPerDevice};

class Toy : public Persistent {
  public:
    explicit Toy(StateSection kind = kToySection) : kind_(kind) {}
    StateSection section() const override { return kind_; }
    Result<void> quiesce() override {
        ++quiesced;
        return {};
    }
    std::vector<uint8_t> save() const override {
        ByteWriter w;
        w.put(counter);
        w.put_string(name);
        return w.bytes();
    }
    Result<void> restore(std::span<const uint8_t> payload, uint32_t version) override {
        restored_version = version;
        ByteReader r(payload, "toy section");
        EMBER_TRY(read_into(r, counter));
        auto n = r.get_string();
        EMBER_TRY(n);
        if (!r.done()) return fail("toy section has trailing bytes");
        name = *n;
        return {};
    }

    uint32_t counter = 0;
    std::string name;
    int quiesced = 0;
    uint32_t restored_version = 0;

  private:
    StateSection kind_;
};

constexpr StateSection kKinds[] = {kToySection, kOtherSection};

std::vector<uint8_t> saved(std::span<const TaggedDevice> devices) {
    Writer w;
    save_devices(w, devices);
    return w.finish();
}

// The same sections as format 1 wrote them: untagged, in the file's order.
std::vector<uint8_t> saved_as_format_1(std::span<Toy* const> devices) {
    Writer w;
    for (Toy* d : devices) w.add(d->section().id, 1, d->save());
    auto file = w.finish();
    file[8] = 1;  // the format version, after the magic
    file.resize(file.size() - 8);
    const uint64_t sum = fnv1a64(file);
    const auto* bytes = reinterpret_cast<const uint8_t*>(&sum);
    file.insert(file.end(), bytes, bytes + sizeof sum);
    return file;
}

// The reader's sections point into `file`, which must outlive it.
Reader parsed(const std::vector<uint8_t>& file) {
    auto reader = Reader::parse(file, kKinds);
    EXPECT_TRUE(reader) << reader.error().message;
    return *reader;
}
Reader parsed(std::vector<uint8_t>&&) = delete;

DeviceTag toy(const std::string& id, uint64_t base = 0xd0000000, uint32_t gsi = 5) {
    return {"toy", id, base, gsi};
}

TEST(SnapshotDevices, EachDeviceGetsBackItsOwnSectionWhateverTheOrder) {
    Toy a, b;
    Toy c(kOtherSection);
    a.counter = 1, a.name = "first";
    b.counter = 2, b.name = "second";
    c.counter = 3, c.name = "third";
    const TaggedDevice before[] = {
        {&a, toy("a")}, {&c, {"other", "other"}}, {&b, toy("b", 0xd0001000, 6)}};
    auto file = saved(before);
    const Reader reader = parsed(file);
    EXPECT_EQ(reader.format_version(), kFormatVersion);
    EXPECT_EQ(reader.all(kToySection.id)[0].version, 3u) << "written at its kind's version";

    Toy a2, b2;
    Toy c2(kOtherSection);
    const TaggedDevice after[] = {
        {&b2, toy("b", 0xd0001000, 6)}, {&c2, {"other", "other"}}, {&a2, toy("a")}};
    ASSERT_TRUE(restore_devices(reader, after, kKinds));
    EXPECT_EQ(a2.counter, 1u);
    EXPECT_EQ(a2.name, "first");
    EXPECT_EQ(b2.counter, 2u);
    EXPECT_EQ(b2.name, "second");
    EXPECT_EQ(c2.counter, 3u);
    EXPECT_EQ(c2.name, "third");
    EXPECT_EQ(a2.restored_version, 3u);
}

TEST(SnapshotDevices, AFileThatDoesNotFitTheVmIsRefusedBeforeAnyRestore) {
    Toy a, b;
    const TaggedDevice two[] = {{&a, toy("a")}, {&b, toy("b", 0xd0001000, 6)}};
    const auto file = saved(two);  // the reader's sections point into it
    const Reader reader = parsed(file);

    Toy only;
    const TaggedDevice one[] = {{&only, toy("a")}};
    auto extra = restore_devices(reader, one, kKinds);
    ASSERT_FALSE(extra);
    EXPECT_EQ(extra.error().message,
              "the snapshot has a toy section for toy 'b', which this VM does not have");
    EXPECT_EQ(only.restored_version, 0u) << "nothing restored";

    Toy x, y, z;
    const TaggedDevice three[] = {{&x, toy("a")}, {&y, toy("b", 0xd0001000, 6)}, {&z, toy("c")}};
    auto missing = restore_devices(reader, three, kKinds);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message, "the snapshot has no section for toy 'c'");
    EXPECT_EQ(x.restored_version, 0u) << "nothing restored";

    // The guest found the device at its slot: the VM rebuilt from the snapshot must put it there.
    Toy moved_a, moved_b;
    const TaggedDevice moved[] = {{&moved_a, toy("a")}, {&moved_b, toy("b", 0xd0002000, 7)}};
    auto elsewhere = restore_devices(reader, moved, kKinds);
    ASSERT_FALSE(elsewhere);
    EXPECT_EQ(elsewhere.error().message,
              "toy 'b' was at 0xd0001000 (GSI 6) in the snapshot, and this VM places it at "
              "0xd0002000 (GSI 7)");
    EXPECT_EQ(moved_a.restored_version, 0u) << "nothing restored";
}

TEST(SnapshotDevices, AFileFromBeforeTheTagsLoadsInOrder) {
    Toy a, b;
    Toy c(kOtherSection);
    a.counter = 1, b.counter = 2, c.counter = 3;
    Toy* const before[] = {&a, &c, &b};
    const auto file = saved_as_format_1(before);
    const Reader reader = parsed(file);
    EXPECT_EQ(reader.format_version(), 1u);

    Toy a2, b2;
    Toy c2(kOtherSection);
    const TaggedDevice after[] = {{&a2, toy("a")}, {&c2, {"other", "other"}}, {&b2, toy("b")}};
    ASSERT_TRUE(restore_devices(reader, after, kKinds));
    EXPECT_EQ(a2.counter, 1u);
    EXPECT_EQ(b2.counter, 2u);
    EXPECT_EQ(c2.counter, 3u);
    EXPECT_EQ(a2.restored_version, 1u);

    Toy only;
    const TaggedDevice one[] = {{&only, toy("a")}};
    auto r = restore_devices(reader, one, kKinds);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "the snapshot has 2 toy sections for 1 devices");
    // A kind the VM has none of still counts: its sections would be silently dropped.
    Toy other(kOtherSection);
    const TaggedDevice wrong_kind[] = {{&other, {"other", "other"}}};
    auto w = restore_devices(reader, wrong_kind, kKinds);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().message, "the snapshot has 2 toy sections for 0 devices");
    EXPECT_EQ(other.counter, 0u) << "nothing restored";
}

TEST(SnapshotDevices, ABadPayloadOrTagNamesWhereItCameFrom) {
    Toy t;
    const TaggedDevice one[] = {{&t, toy("a")}};
    Writer w;
    const std::vector<uint8_t> garbage = {1, 2};
    w.add(kToySection, tagged_payload(toy("a"), garbage));
    const auto w_file = w.finish();
    auto r = restore_devices(parsed(w_file), one, kKinds);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "toy 'a': toy section: section is shorter than its contents");

    Writer untagged;
    untagged.add(kToySection, garbage);
    const auto untagged_file = untagged.finish();
    auto u = restore_devices(parsed(untagged_file), one, kKinds);
    ASSERT_FALSE(u);
    EXPECT_EQ(u.error().message, "toy: device tag: section is shorter than its contents");

    Writer long_id;
    long_id.add(kToySection, tagged_payload(toy(std::string(65, 'x')), {}));
    const auto long_id_file = long_id.finish();
    auto l = restore_devices(parsed(long_id_file), one, kKinds);
    ASSERT_FALSE(l);
    EXPECT_EQ(l.error().message,
              "toy: device tag: a kind or id that is not 1 to 64 letters, digits or '_'");
    Writer escape;
    escape.add(kToySection, tagged_payload(toy("a\x1b[2J"), {}));
    const auto escape_file = escape.finish();
    auto e = restore_devices(parsed(escape_file), one, kKinds);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().message, l.error().message) << "no control character gets through";
}

}  // namespace
}  // namespace ember::snapshot
