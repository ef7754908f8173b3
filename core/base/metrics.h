// Firecracker's metrics line: named groups of counters, one JSON object per flush. A counter
// reports what it gained since the previous line (Firecracker's SharedIncMetric, reset on each
// flush); a value reports what it is now (SharedStoreMetric, e.g. a latency).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ember::metrics {

struct Field {
    enum class Kind { Counter, Value };
    std::string name;
    uint64_t value = 0;  // a counter's running total; the line shows its gain
    Kind kind = Kind::Counter;
};

struct Group {
    std::string name;
    std::vector<Field> fields;
};

// Adds `from`'s counters into `into` field by field (same names, same order): the aggregate
// "block" and "net" groups beside the per-device ones.
void add_into(Group& into, const Group& from);

class Reporter {
  public:
    // {"utc_timestamp_ms":T,"group":{"field":N,...},...}\n, counters as gains since the last
    // line this Reporter made (a group or field seen for the first time gains its total).
    std::string line(uint64_t utc_timestamp_ms, const std::vector<Group>& groups);

  private:
    std::map<std::string, uint64_t> reported_;  // "group.field" -> total at the last line
};

}  // namespace ember::metrics
