// Timing statistics, process memory and CPU time: the figures auraface-bench reports.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Summary statistics of a sample of timings, in milliseconds.
///
/// Quartiles interpolate linearly between the closest ranks, as numpy's default
/// `percentile` does, so that Tools/bench_onnxruntime.py computes the same figures.
struct TimingSummary: Codable {
    var count: Int
    var median: Double
    var min: Double
    var max: Double
    var q1: Double
    var q3: Double
    /// q3 - q1.
    var iqr: Double

    init(_ samples: [Double]) {
        precondition(!samples.isEmpty, "a timing summary needs at least one sample")
        let sorted = samples.sorted()
        count = sorted.count
        median = Self.percentile(sorted, 0.5)
        min = sorted[0]
        max = sorted[sorted.count - 1]
        q1 = Self.percentile(sorted, 0.25)
        q3 = Self.percentile(sorted, 0.75)
        iqr = q3 - q1
    }

    private static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        let position = fraction * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = Swift.min(lower + 1, sorted.count - 1)
        let weight = position - Double(lower)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * weight
    }
}

/// Peak and current resident memory of this process.
struct MemoryReport: Codable {
    /// getrusage(RUSAGE_SELF).ru_maxrss, which Linux reports in KiB, converted to MiB.
    var maxRSSMiB: Double
    /// VmHWM (peak resident set) from /proc/self/status, in MiB, nil where unreadable.
    var vmHWMMiB: Double?
    /// VmRSS (current resident set) from /proc/self/status, in MiB, nil where unreadable.
    var vmRSSMiB: Double?

    static func current() -> MemoryReport {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let status = procStatusKiB()
        return MemoryReport(
            maxRSSMiB: Double(usage.ru_maxrss) / 1024,
            vmHWMMiB: status["VmHWM"].map { Double($0) / 1024 },
            vmRSSMiB: status["VmRSS"].map { Double($0) / 1024 })
    }

    /// Reads the `kB` fields of /proc/self/status, such as `VmHWM:  123456 kB`.
    private static func procStatusKiB() -> [String: Int] {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else {
            return [:]
        }
        var fields: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let words = parts[1].split(whereSeparator: { $0 == " " || $0 == "\t" })
            if words.count == 2, words[1] == "kB", let value = Int(words[0]) {
                fields[String(parts[0])] = value
            }
        }
        return fields
    }
}

/// CPU time (user + system) used by all threads of this process so far, in milliseconds.
func processCPUTimeMilliseconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func milliseconds(_ time: timeval) -> Double {
        Double(time.tv_sec) * 1000 + Double(time.tv_usec) / 1000
    }
    return milliseconds(usage.ru_utime) + milliseconds(usage.ru_stime)
}

/// Wall-clock milliseconds taken by `body`, on the monotonic clock.
func measureMilliseconds<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let start = ContinuousClock.now
    let result = try body()
    let elapsed = ContinuousClock.now - start
    let (seconds, attoseconds) = elapsed.components
    return (result, Double(seconds) * 1000 + Double(attoseconds) / 1e15)
}

/// Generates `count` uniform values in `range` with SplitMix64, so that every run and every
/// machine times the same input tensor.
func randomInput(count: Int, seed: UInt64, range: ClosedRange<Float>) -> [Float] {
    var state = seed
    var values = [Float](repeating: 0, count: count)
    let span = range.upperBound - range.lowerBound
    for index in 0..<count {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        // The top 24 bits give a uniform float in [0, 1) with no rounding.
        let unit = Float(z >> 40) / Float(1 << 24)
        values[index] = range.lowerBound + unit * span
    }
    return values
}
