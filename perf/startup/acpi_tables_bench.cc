// What writing the ACPI tables adds to every boot: the tables for 1, 2 and 32 vCPUs with 0, 3 and
// 19 virtio devices, beside the MP table ember wrote before them, in the same run. Host code only:
// no KVM is needed, and the figures are real wherever it runs.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/arch/x86_64/acpi.h"
#include "core/arch/x86_64/layout.h"
#include "core/arch/x86_64/mptable.h"
#include "perf/quick.h"

namespace ember {
namespace {

GuestMemory& memory() {
    static GuestMemory mem = std::move(*GuestMemory::create_anonymous(x86::ram_regions(16 << 20)));
    return mem;
}

void BM_AcpiTables(benchmark::State& state) {
    x86::AcpiMachine machine{static_cast<uint32_t>(state.range(0)), {0x3f8, 4}, {0x60, 1}, {}};
    for (int64_t i = 0; i < state.range(1); ++i)
        machine.virtio.push_back({x86::kMmioGapStart + static_cast<uint64_t>(i) * 0x1000, 0x1000,
                                  static_cast<uint32_t>(x86::kFirstMmioGsi + i)});
    for (auto _ : state) benchmark::DoNotOptimize(x86::write_acpi_tables(memory(), machine));
}
BENCHMARK(BM_AcpiTables)->Args({1, 0})->Args({2, 3})->Args({32, 19});

void BM_MpTable(benchmark::State& state) {
    for (auto _ : state)
        benchmark::DoNotOptimize(
            x86::write_mptable(memory(), static_cast<uint32_t>(state.range(0))));
}
BENCHMARK(BM_MpTable)->Arg(1)->Arg(2)->Arg(32);

}  // namespace
}  // namespace ember

// Quick: each case runs for a millisecond instead of Google Benchmark's half second.
int main(int argc, char** argv) {
    std::vector<char*> args(argv, argv + argc);
    std::string min_time = "--benchmark_min_time=0.001";
    if (ember::perf::quick_mode()) args.insert(args.begin() + 1, min_time.data());
    int n = static_cast<int>(args.size());
    benchmark::Initialize(&n, args.data());
    if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
