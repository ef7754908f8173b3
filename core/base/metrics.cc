#include "core/base/metrics.h"

namespace ember::metrics {

void add_into(Group& into, const Group& from) {
    if (into.fields.empty()) {
        into.fields = from.fields;
        return;
    }
    for (size_t i = 0; i < into.fields.size() && i < from.fields.size(); ++i)
        into.fields[i].value += from.fields[i].value;
}

std::string Reporter::line(uint64_t utc_timestamp_ms, const std::vector<Group>& groups) {
    std::string out = "{\"utc_timestamp_ms\":" + std::to_string(utc_timestamp_ms);
    for (const auto& g : groups) {
        out += ",\"" + g.name + "\":{";
        bool first = true;
        for (const auto& f : g.fields) {
            uint64_t shown = f.value;
            if (f.kind == Field::Kind::Counter) {
                uint64_t& last = reported_[g.name + "." + f.name];
                // A total that went down (a device replaced) starts again from zero.
                shown = f.value >= last ? f.value - last : f.value;
                last = f.value;
            }
            out += (first ? "\"" : ",\"") + f.name + "\":" + std::to_string(shown);
            first = false;
        }
        out += "}";
    }
    return out + "}\n";
}

}  // namespace ember::metrics
