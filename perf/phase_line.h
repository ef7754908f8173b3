// perf/: ember's log line of one start's or load's phases (core/base/phase_times.h), read back:
// "phases, us from <origin> (at <us on CLOCK_MONOTONIC>): <step> <us>, <step> <us>, ...".
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "perf/percentile.h"

namespace ember::perf {

struct PhaseLine {
    long long origin_us = 0;                           // on CLOCK_MONOTONIC
    std::vector<std::pair<std::string, double>> ends;  // each step's end, us from the origin
};

// The first such line from `origin` in `log`, or nothing while there is none, whole.
inline std::optional<PhaseLine> phase_line(const std::string& log, const std::string& origin) {
    const std::string head = "phases, us from " + origin + " (at ";
    const auto at = log.find(head);
    if (at == std::string::npos) return std::nullopt;
    const auto end = log.find('\n', at);
    if (end == std::string::npos) return std::nullopt;
    const std::string line = log.substr(at, end - at);
    PhaseLine p;
    if (std::sscanf(line.c_str() + head.size(), "%lld", &p.origin_us) != 1) return std::nullopt;
    const auto steps_at = line.find("): ");
    if (steps_at == std::string::npos) return std::nullopt;
    std::istringstream steps(line.substr(steps_at + 3));
    for (std::string step; std::getline(steps, step, ',');) {
        if (step.starts_with(" ")) step.erase(0, 1);
        const auto cut = step.rfind(' ');
        if (cut == std::string::npos) return std::nullopt;
        p.ends.emplace_back(step.substr(0, cut), std::atof(step.c_str() + cut + 1));
    }
    return p;
}

// One row per step of the runs' phases: the median of when it ends and of what it takes (from the
// step before, or the origin). The steps are the first run's; a run with others is left out.
inline void print_phase_rows(const std::vector<PhaseLine>& runs) {
    if (runs.empty()) return;
    const auto& steps = runs.front().ends;
    for (size_t i = 0; i < steps.size(); ++i) {
        std::vector<double> ends, takes;
        for (const auto& run : runs) {
            if (run.ends.size() != steps.size()) continue;
            ends.push_back(run.ends[i].second);
            takes.push_back(run.ends[i].second - (i ? run.ends[i - 1].second : 0));
        }
        std::printf("| %s | %.0f | %.0f |\n", steps[i].first.c_str(), percentile(ends, 0.5),
                    percentile(takes, 0.5));
    }
}

}  // namespace ember::perf
