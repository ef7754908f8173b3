#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "core/acpi/aml.h"
#include "core/acpi/tables.h"
#include "core/arch/x86_64/acpi.h"
#include "core/arch/x86_64/e820.h"
#include "core/arch/x86_64/layout.h"
#include "tests/support/ember_process.h"
#include "tests/unit/test_memory.h"

namespace ember {
namespace {

namespace aml = acpi::aml;
using Bytes = std::vector<uint8_t>;

// Encodings checked against the specification's grammar (ACPI 6.5, 20.2) and what iasl emits.
TEST(Aml, IntegersTakeTheShortestEncoding) {
    EXPECT_EQ(aml::integer(0), (Bytes{0x00}));
    EXPECT_EQ(aml::integer(1), (Bytes{0x01}));
    EXPECT_EQ(aml::integer(~uint64_t{0}), (Bytes{0xff}));
    EXPECT_EQ(aml::integer(2), (Bytes{0x0a, 0x02}));
    EXPECT_EQ(aml::integer(0x100), (Bytes{0x0b, 0x00, 0x01}));
    EXPECT_EQ(aml::integer(0xd0000000), (Bytes{0x0c, 0x00, 0x00, 0x00, 0xd0}));
    EXPECT_EQ(aml::integer(0x100000000), (Bytes{0x0e, 0, 0, 0, 0, 1, 0, 0, 0}));
}

TEST(Aml, PackageLengthCountsItselfAcrossEveryWidth) {
    EXPECT_EQ(aml::package_length(0), (Bytes{0x01}));
    EXPECT_EQ(aml::package_length(62), (Bytes{0x3f}));
    // 63 bytes need a second length byte, so 65 in all: low nibble 1, then 65 >> 4.
    EXPECT_EQ(aml::package_length(63), (Bytes{0x41, 0x04}));
    EXPECT_EQ(aml::package_length(0xffd), (Bytes{0x4f, 0xff}));
    EXPECT_EQ(aml::package_length(0xffe), (Bytes{0x81, 0x00, 0x01}));
    EXPECT_EQ(aml::package_length(0xffffc), (Bytes{0x8f, 0xff, 0xff}));
    EXPECT_EQ(aml::package_length(0xffffd), (Bytes{0xc1, 0x00, 0x00, 0x01}));
}

TEST(Aml, NamesArePaddedAndPrefixed) {
    EXPECT_EQ(aml::name_string("COM1"), (Bytes{'C', 'O', 'M', '1'}));
    EXPECT_EQ(aml::name_string("_S5"), (Bytes{'_', 'S', '5', '_'}));
    EXPECT_EQ(aml::name_string("\\_SB"), (Bytes{'\\', '_', 'S', 'B', '_'}));
    EXPECT_EQ(aml::name_string("\\_SB.VGEN"),
              (Bytes{'\\', 0x2e, '_', 'S', 'B', '_', 'V', 'G', 'E', 'N'}));
    EXPECT_EQ(aml::name_string("^A.B.C"),
              (Bytes{'^', 0x2f, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_'}));
    EXPECT_EQ(aml::name_string("\\"), (Bytes{'\\', 0x00}));
}

TEST(AmlDeathTest, AMalformedNameIsABugThatStopsEmber) {
    EXPECT_DEATH(aml::name_string("com1"), "AML name 'com1' is malformed");
    EXPECT_DEATH(aml::name_string("TOOLONG"), "malformed");
    EXPECT_DEATH(aml::name_string("\\_SB."), "malformed");
    EXPECT_DEATH(aml::eisa_id("PNP05"), "EISA id");
}

TEST(Aml, EisaIdIsCompressedBigEndian) {
    EXPECT_EQ(aml::eisa_id("PNP0A03"), (Bytes{0x0c, 0x41, 0xd0, 0x0a, 0x03}));
    EXPECT_EQ(aml::eisa_id("PNP0501"), (Bytes{0x0c, 0x41, 0xd0, 0x05, 0x01}));
}

TEST(Aml, ResourceDescriptorsHaveTheirSpecifiedLayout) {
    EXPECT_EQ(aml::io_port(0x3f8, 8), (Bytes{0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08}));
    EXPECT_EQ(aml::irq(4), (Bytes{0x22, 0x10, 0x00}));
    EXPECT_EQ(aml::memory32_fixed(0xd0000000, 0x1000, true),
              (Bytes{0x86, 0x09, 0x00, 0x01, 0, 0, 0, 0xd0, 0, 0x10, 0, 0}));
    EXPECT_EQ(aml::interrupt(5, true, false, false),
              (Bytes{0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0, 0, 0}));
    // An empty template is a two-byte buffer: the end tag and its checksum.
    EXPECT_EQ(aml::resource_template({}), (Bytes{0x11, 0x05, 0x0a, 0x02, 0x79, 0x00}));
}

TEST(Aml, MethodsAndDevicesNestTheirTerms) {
    // Method(_EVT, 1, Serialized) { If (LEqual(Arg0, 3)) { Notify(VGEN, 0x80) } }
    Bytes m = aml::method("_EVT", 1, true,
                          {aml::if_then(aml::equal(aml::arg(0), aml::integer(3)),
                                        {aml::notify("VGEN", aml::integer(0x80))})});
    Bytes expected{0x14, 0x16, '_',  'E',  'V', 'T', 0x09, 0xa0, 0x0e, 0x93,
                   0x68, 0x0a, 0x03, 0x86, 'V', 'G', 'E',  'N',  0x0a, 0x80};
    expected[1] = static_cast<uint8_t>(expected.size() - 1);
    expected[8] = static_cast<uint8_t>(expected.size() - 8);
    EXPECT_EQ(m, expected);
    Bytes d = aml::device("COM1", {aml::name("_UID", aml::integer(1))});
    EXPECT_EQ(d, (Bytes{0x5b, 0x82, 0x0b, 'C', 'O', 'M', '1', 0x08, '_', 'U', 'I', 'D', 0x01}));
}

// The tables as a guest finds them: from the RSDP, through the XSDT, to each table.
class AcpiTables : public ::testing::Test {
  protected:
    x86::AcpiMachine machine(uint32_t cpus, size_t devices) {
        x86::AcpiMachine m{cpus, {0x3f8, 4}, {0x60, 1}, {}};
        for (size_t i = 0; i < devices; ++i)
            m.virtio.push_back({x86::kMmioGapStart + i * x86::kMmioSlotSize, x86::kMmioSlotSize,
                                static_cast<uint32_t>(x86::kFirstMmioGsi + i)});
        return m;
    }
    Bytes read(const GuestMemory& mem, uint64_t addr, size_t len) {
        Bytes out(len);
        EXPECT_TRUE(mem.read(addr, out));
        return out;
    }
    uint8_t sum(const Bytes& b) { return std::accumulate(b.begin(), b.end(), uint8_t{0}); }
    // A table's bytes, after checking its signature, length and checksum.
    Bytes table(const GuestMemory& mem, uint64_t addr, const char* signature) {
        Bytes head = read(mem, addr, 36);
        EXPECT_EQ(std::string(head.begin(), head.begin() + 4), signature);
        uint32_t length;
        std::memcpy(&length, head.data() + 4, 4);
        EXPECT_GE(length, 36u);
        EXPECT_LE(addr + length, x86::kAcpiAreaEnd);
        Bytes whole = read(mem, addr, length);
        EXPECT_EQ(sum(whole), 0) << signature << " checksum";
        return whole;
    }
    template <typename T>
    T at(const Bytes& b, size_t offset) {
        T v;
        std::memcpy(&v, b.data() + offset, sizeof v);
        return v;
    }
};

TEST_F(AcpiTables, EveryTableIsReachableWithItsLengthAndChecksum) {
    for (uint32_t cpus : {1u, 2u, 32u}) {
        for (size_t devices : {size_t{0}, size_t{3}, size_t{19}}) {
            auto mem = testing::make_memory(16);
            auto rsdp_addr = x86::write_acpi_tables(mem, machine(cpus, devices));
            ASSERT_TRUE(rsdp_addr) << rsdp_addr.error().message;
            ASSERT_EQ(*rsdp_addr, x86::kAcpiRsdpAddr);
            Bytes rsdp = read(mem, *rsdp_addr, 36);
            EXPECT_EQ(std::string(rsdp.begin(), rsdp.begin() + 8), "RSD PTR ");
            EXPECT_EQ(sum(Bytes(rsdp.begin(), rsdp.begin() + 20)), 0) << "ACPI 1.0 checksum";
            EXPECT_EQ(sum(rsdp), 0) << "extended checksum";
            EXPECT_EQ(rsdp[15], 2) << "revision";
            EXPECT_EQ(at<uint32_t>(rsdp, 20), 36u);

            Bytes xsdt = table(mem, at<uint64_t>(rsdp, 24), "XSDT");
            ASSERT_EQ(xsdt.size(), 36u + 2 * 8);
            Bytes fadt = table(mem, at<uint64_t>(xsdt, 36), "FACP");
            EXPECT_EQ(fadt.size(), 276u);
            EXPECT_EQ(fadt[8], 6) << "FADT revision";
            EXPECT_NE(at<uint32_t>(fadt, 112) & (1u << 20), 0u) << "hardware-reduced";
            // Sleep control and status: one byte each, in I/O space.
            EXPECT_EQ(fadt[244], 1);
            EXPECT_EQ(at<uint64_t>(fadt, 248), x86::kSleepControlPort);
            EXPECT_EQ(at<uint64_t>(fadt, 260), x86::kSleepStatusPort);
            Bytes dsdt = table(mem, at<uint64_t>(fadt, 140), "DSDT");
            EXPECT_EQ(at<uint32_t>(fadt, 40), at<uint64_t>(fadt, 140)) << "DSDT and X_DSDT agree";

            Bytes madt = table(mem, at<uint64_t>(xsdt, 44), "APIC");
            EXPECT_EQ(madt.size(), 44u + 8 * cpus + 12 + 6);
            EXPECT_EQ(at<uint32_t>(madt, 36), x86::kLapicAddr);
            for (uint32_t cpu = 0; cpu < cpus; ++cpu) {
                size_t e = 44 + 8 * cpu;
                EXPECT_EQ(madt[e], 0);
                EXPECT_EQ(madt[e + 3], cpu) << "APIC id";
                EXPECT_EQ(at<uint32_t>(madt, e + 4), 1u) << "enabled";
            }
            size_t ioapic = 44 + 8 * cpus;
            EXPECT_EQ(madt[ioapic], 1);
            EXPECT_EQ(madt[ioapic + 2], cpus)
                << "the IOAPIC's id follows the CPUs', as in the MP table";
            EXPECT_EQ(at<uint32_t>(madt, ioapic + 4), x86::kIoapicAddr);
            EXPECT_EQ(at<uint32_t>(madt, ioapic + 8), 0u) << "GSI base";
        }
    }
}

TEST_F(AcpiTables, TheGenerationIdSitsWhereItsAmlSaysAndClearOfTheTables) {
    auto mem = testing::make_memory(16);
    ASSERT_TRUE(x86::write_acpi_tables(mem, machine(1, 1)));
    EXPECT_EQ(x86::kVmGenIdAddr % 8, 0u);
    EXPECT_GE(x86::kVmGenIdAddr, x86::kAcpiRsdpAddr + 36);
    EXPECT_LE(x86::kVmGenIdAddr + x86::kVmGenIdBytes, x86::kAcpiTablesAddr);
    Bytes block = x86::dsdt_definition_block(machine(1, 1));
    // ADDR returns Package(2) { low half, high half }.
    Bytes addr = aml::package({aml::integer(x86::kVmGenIdAddr), aml::integer(0)});
    EXPECT_NE(std::search(block.begin(), block.end(), addr.begin(), addr.end()), block.end());
}

TEST_F(AcpiTables, TheAreaIsOutsideTheE820RamAndInsideGuestMemory) {
    auto mem = testing::make_memory(16);
    for (const auto& e : x86::e820_map(mem.regions())) {
        EXPECT_TRUE(e.addr + e.size <= x86::kAcpiRsdpAddr || e.addr >= x86::kAcpiAreaEnd)
            << "e820 RAM at " << e.addr << " overlaps the ACPI area";
    }
    EXPECT_TRUE(mem.slice(x86::kAcpiRsdpAddr, x86::kAcpiAreaEnd - x86::kAcpiRsdpAddr));
}

// Debian's acpica-tools disassembles what ember wrote: the independent check that the AML parses
// and says what ember means.
TEST_F(AcpiTables, IaslDisassemblesEveryTableWithoutErrors) {
    auto mem = testing::make_memory(16);
    auto rsdp_addr = x86::write_acpi_tables(mem, machine(2, 3));
    ASSERT_TRUE(rsdp_addr);
    testing::TempDir dir;
    Bytes rsdp = read(mem, *rsdp_addr, 36);
    Bytes xsdt = table(mem, at<uint64_t>(rsdp, 24), "XSDT");
    Bytes fadt = table(mem, at<uint64_t>(xsdt, 36), "FACP");
    struct Named {
        const char* file;
        Bytes bytes;
    } tables[] = {{"dsdt", table(mem, at<uint64_t>(fadt, 140), "DSDT")},
                  {"facp", fadt},
                  {"apic", table(mem, at<uint64_t>(xsdt, 44), "APIC")},
                  {"xsdt", xsdt}};
    for (const auto& t : tables) {
        std::string path =
            dir.write(std::string(t.file) + ".dat", std::string(t.bytes.begin(), t.bytes.end()));
        auto r = testing::run_process({"/usr/bin/iasl", "-d", path}, testing::kFailsafe);
        ASSERT_EQ(r.exit_code, 0) << "iasl (Debian's acpica-tools) on " << t.file << ":\n"
                                  << r.out << r.err;
        for (const char* word : {"Error", "Warning", "Invalid", "Unknown"}) {
            EXPECT_EQ((r.out + r.err).find(word), std::string::npos) << t.file << ": iasl says:\n"
                                                                     << r.out << r.err;
        }
        std::string dsl = testing::read_file(dir.path() + "/" + t.file + ".dsl");
        ASSERT_FALSE(dsl.empty()) << t.file;
        if (std::string(t.file) == "dsdt") {
            for (const char* expected :
                 {"Device (COM1)",
                  "EisaId (\"PNP0501\")",
                  "0x03F8,             // Range Minimum",
                  "Device (PS2K)",
                  "EisaId (\"PNP0303\")",
                  "Device (V000)",
                  "Device (V002)",
                  "\"LNRO0005\"",
                  "0xD0002000,         // Address Base",
                  "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )",
                  "0x00000007,",
                  "Device (VGEN)",
                  "\"VM_GEN_COUNTER\"",
                  "Method (ADDR, 0, NotSerialized)",
                  "0x000E0040,",
                  "Device (GED)",
                  "\"ACPI0013\"",
                  "Method (_EVT, 1, Serialized)",
                  "If ((Arg0 == 0x03))",
                  "Notify (\\_SB.VGEN, 0x80)",
                  "Name (\\_S5, Package (0x02)"}) {
                EXPECT_NE(dsl.find(expected), std::string::npos) << expected << " in\n" << dsl;
            }
        }
    }
}

}  // namespace
}  // namespace ember
