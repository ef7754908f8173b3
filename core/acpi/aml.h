// core/acpi: ACPI as the guest reads it: the AML byte code of a definition block (this file) and
// the system description tables that carry it (tables.h). Nothing here knows the machine; the
// architecture lays the tables out in guest memory.
//
// AML is built as values: each function returns the bytes of one term, and terms nest by being
// passed to the term that contains them. Names are ACPI name strings ("COM1", "\\_SB_.GED_",
// "^VGEN"); a segment shorter than four characters is padded with '_'. Names come from ember's own
// code, never from outside, so a malformed one is a bug: it aborts rather than returning an error.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace ember::acpi::aml {

using Bytes = std::vector<uint8_t>;

// Data objects.
Bytes integer(uint64_t value);  // the shortest encoding: Zero, One, Ones, Byte ... QWord
Bytes string(std::string_view ascii);
Bytes eisa_id(std::string_view id);  // "PNP0501" as its compressed 32-bit form
Bytes package(const std::vector<Bytes>& elements);
Bytes buffer(std::span<const uint8_t> bytes);

// Named objects and scopes.
Bytes name_string(std::string_view path);
Bytes name(std::string_view path, const Bytes& value);
Bytes scope(std::string_view path, const std::vector<Bytes>& terms);
Bytes device(std::string_view path, const std::vector<Bytes>& terms);
Bytes method(std::string_view path, uint8_t arg_count, bool serialized,
             const std::vector<Bytes>& terms);

// Statements and expressions.
Bytes arg(unsigned n);  // Arg0 .. Arg6
Bytes ret(const Bytes& value);
Bytes equal(const Bytes& a, const Bytes& b);
Bytes if_then(const Bytes& predicate, const std::vector<Bytes>& terms);
Bytes notify(std::string_view path, const Bytes& value);

// Resource descriptors, joined by resource_template() into a buffer with its end tag.
Bytes io_port(uint16_t base, uint8_t length);                            // IO, 16-bit decode
Bytes irq(uint8_t line);                                                 // IRQNoFlags
Bytes memory32_fixed(uint32_t base, uint32_t length, bool writable);     // Memory32Fixed
Bytes interrupt(uint32_t gsi, bool edge, bool active_low, bool shared);  // Interrupt, consumer
Bytes resource_template(const std::vector<Bytes>& descriptors);

// Terms one after another, as the top level of a definition block holds them.
Bytes joined(const std::vector<Bytes>& terms);

// The PkgLength that prefixes `content_length` bytes: it counts itself.
Bytes package_length(size_t content_length);

}  // namespace ember::acpi::aml
