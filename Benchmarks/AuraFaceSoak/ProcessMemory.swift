// Resident memory of this process from /proc (Linux only), and the least-squares trend of
// RSS over a run.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// VmRSS and VmHWM of this process, in KiB, as /proc/self/status reports them.
struct ResidentMemory {
    /// Current resident set size.
    var rssKiB: Int
    /// Peak resident set size since the process started or since the last `resetPeak()`.
    var peakKiB: Int

    /// Reads /proc/self/status, or returns nil where it is missing or lacks the two fields.
    static func current() -> ResidentMemory? {
        guard let text = readProcFile("/proc/self/status") else {
            return nil
        }
        var fields: [Substring: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let words = parts[1].split(whereSeparator: { $0 == " " || $0 == "\t" })
            if words.count == 2, words[1] == "kB", let value = Int(words[0]) {
                fields[parts[0]] = value
            }
        }
        guard let rss = fields["VmRSS"], let peak = fields["VmHWM"] else {
            return nil
        }
        return ResidentMemory(rssKiB: rss, peakKiB: peak)
    }

    /// Sets VmHWM back to the current VmRSS by writing 5 to /proc/self/clear_refs (Linux 4.0
    /// and later), so that the next reading's peak belongs to the work done in between.
    /// Returns false where the kernel rejects the write.
    static func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else {
            return false
        }
        defer { try? handle.close() }
        do {
            try handle.write(contentsOf: Data("5".utf8))
            return true
        } catch {
            return false
        }
    }
}

/// Reads a /proc file with open and read into one buffer. Foundation's file readers are
/// avoided so that the sampler allocates the same every time and cannot add to the trend it
/// measures (in Swift 6.3.1 they take a separate path for files that report size 0).
private func readProcFile(_ path: String) -> String? {
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else {
        return nil
    }
    defer { close(descriptor) }
    // /proc/self/status is about 1.5 KiB on Linux 6.x, so one 16 KiB buffer is enough.
    var buffer = [UInt8](repeating: 0, count: 16_384)
    var length = 0
    while length < buffer.count {
        let count = buffer.withUnsafeMutableBytes { bytes in
            read(descriptor, bytes.baseAddress! + length, bytes.count - length)
        }
        guard count > 0 else { break }
        length += count
    }
    return String(decoding: buffer[..<length], as: UTF8.self)
}

/// One RSS reading taken after `embeddings` embeddings were done.
struct MemorySample {
    var embeddings: Int
    var rssKiB: Int
}

/// The least-squares line through RSS samples, with the extremes it summarizes.
struct MemoryTrend {
    /// Slope of the fitted line, in KiB per 1000 embeddings.
    var slopeKiBPer1000: Double
    var sampleCount: Int
    var first: MemorySample
    var last: MemorySample
    var maxRSSKiB: Int

    /// Fits RSS = a + b * embeddings by ordinary least squares. Returns nil for fewer than
    /// two samples or when all samples were taken at the same embedding count.
    init?(_ samples: [MemorySample]) {
        guard samples.count >= 2, let first = samples.first, let last = samples.last else {
            return nil
        }
        let n = Double(samples.count)
        let meanX = samples.reduce(0.0) { $0 + Double($1.embeddings) } / n
        let meanY = samples.reduce(0.0) { $0 + Double($1.rssKiB) } / n
        var covariance = 0.0
        var varianceX = 0.0
        for sample in samples {
            let dx = Double(sample.embeddings) - meanX
            covariance += dx * (Double(sample.rssKiB) - meanY)
            varianceX += dx * dx
        }
        guard varianceX > 0 else {
            return nil
        }
        slopeKiBPer1000 = covariance / varianceX * 1000
        sampleCount = samples.count
        self.first = first
        self.last = last
        maxRSSKiB = samples.map(\.rssKiB).max() ?? last.rssKiB
    }
}

/// Formats KiB as MiB with one decimal.
func mebibytes(_ kibibytes: Int) -> String {
    String(format: "%.1f", Double(kibibytes) / 1024)
}
