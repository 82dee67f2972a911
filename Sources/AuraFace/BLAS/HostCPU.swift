// Facts about the CPUs this process runs on: the instruction-set flags (to choose OpenBLAS
// kernels the CPU can execute) and the number of CPUs the scheduler and the cgroup allow (to
// size OpenBLAS's thread pool). Linux only, because everything comes from /proc and /sys.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

enum HostCPU {
    /// Reads the flags of the first processor in `/proc/cpuinfo`, such as `avx2` or `avx512f`.
    ///
    /// The kernel lists an AVX or AVX-512 flag only when the OS also enabled the register
    /// state for it (XSAVE), so a listed flag means the instructions will not fault.
    static func flags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else {
            return []
        }
        return flags(cpuinfo: text)
    }

    /// Splits the `flags` line of the first processor in `cpuinfo` text into words.
    static func flags(cpuinfo: String) -> Set<String> {
        for line in cpuinfo.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2,
                parts[0].trimmingCharacters(in: .whitespaces) == "flags"
            else { continue }
            return Set(parts[1].split(separator: " ").map(String.init))
        }
        return []
    }

    /// Chooses the OpenBLAS core type (`OPENBLAS_CORETYPE` value) for a CPU with `flags`, or
    /// returns nil to let OpenBLAS detect the CPU itself.
    ///
    /// Only families the flags prove are chosen, so the chosen kernels never execute an
    /// instruction the CPU lacks: SkylakeX needs AVX-512 F, CD, BW, DQ and VL; Cooperlake
    /// adds BF16; Haswell needs AVX2 and FMA.
    ///
    /// NOTE: the choice also replaces OpenBLAS's own detection on CPUs it does recognise, where
    /// a dedicated family (such as Zen) may be tuned better than the one picked here.
    static func openBLASCoreType(flags: Set<String>) -> String? {
        let avx512 = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        if avx512.allSatisfy(flags.contains) {
            return flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX"
        }
        if flags.contains("avx2") && flags.contains("fma") {
            return "Haswell"
        }
        return nil
    }

    /// Counts the CPUs this process may use: the CPUs in its scheduler affinity mask,
    /// lowered to the cgroup CPU quota (rounded up) when one is set. At least 1.
    static func availableCPUCount() -> Int {
        var count = affinityCPUCount() ?? ProcessInfo.processInfo.activeProcessorCount
        if let quota = cgroupCPUQuota() {
            count = min(count, Int(quota.rounded(.up)))
        }
        return max(1, count)
    }

    /// Counts the CPUs in this process's affinity mask, or returns nil when it cannot be read.
    private static func affinityCPUCount() -> Int? {
        // sched_getaffinity is a GNU extension that the Glibc module does not import, so it is
        // looked up by name. Its C signature: int (pid_t, size_t, cpu_set_t *).
        typealias SchedGetAffinity = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sched_getaffinity") else {
            return nil
        }
        let getAffinity = unsafeBitCast(symbol, to: SchedGetAffinity.self)
        // cpu_set_t has room for 1024 CPUs. NOTE: a machine with more than 1024 CPUs makes the call
        // fail with EINVAL, and the caller then falls back to the online CPU count.
        var set = cpu_set_t()
        let status = withUnsafeMutableBytes(of: &set) { getAffinity(0, $0.count, $0.baseAddress!) }
        guard status == 0 else { return nil }
        let count = withUnsafeBytes(of: &set) { bytes in
            bytes.reduce(0) { $0 + $1.nonzeroBitCount }
        }
        return count > 0 ? count : nil
    }

    /// Reads the CPU quota of this process's cgroup in CPUs (quota / period), or returns nil
    /// when there is no limit or none can be read. Tries cgroup v2 `cpu.max`, then cgroup v1
    /// `cpu.cfs_quota_us`.
    private static func cgroupCPUQuota() -> Double? {
        let memberships = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? ""
        return cgroupCPUQuota(memberships: memberships) { path in
            try? String(contentsOfFile: path, encoding: .utf8)
        }
    }

    /// Finds the quota for the cgroups listed in `/proc/self/cgroup` text, reading control
    /// files through `readFile`.
    static func cgroupCPUQuota(memberships: String, readFile: (String) -> String?) -> Double? {
        var v2Path: String?
        var v1Path: String?
        for line in memberships.split(separator: "\n") {
            // Each line is hierarchy-ID:controller-list:cgroup-path.
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[0] == "0" && fields[1].isEmpty {
                v2Path = String(fields[2])
            } else if fields[1].split(separator: ",").contains("cpu") {
                v1Path = String(fields[2])
            }
        }

        if let v2Path {
            // cpu.max is "max 100000" (no limit) or "<quota> <period>" in microseconds. Inside a
            // container the cgroup namespace often shows "/", so the root file is tried too.
            for directory in ["/sys/fs/cgroup" + v2Path, "/sys/fs/cgroup"] {
                guard let text = readFile(directory + "/cpu.max") else { continue }
                let parts = text.split(whereSeparator: \.isWhitespace)
                guard parts.count == 2, let quota = Double(parts[0]), let period = Double(parts[1]),
                    quota > 0, period > 0
                else { return nil }
                return quota / period
            }
        }
        if let v1Path {
            for directory in ["/sys/fs/cgroup/cpu" + v1Path, "/sys/fs/cgroup/cpu"] {
                guard let quotaText = readFile(directory + "/cpu.cfs_quota_us"),
                    let periodText = readFile(directory + "/cpu.cfs_period_us")
                else { continue }
                // A quota of -1 means no limit.
                guard let quota = Double(quotaText.trimmingCharacters(in: .whitespacesAndNewlines)),
                    let period = Double(periodText.trimmingCharacters(in: .whitespacesAndNewlines)),
                    quota > 0, period > 0
                else { return nil }
                return quota / period
            }
        }
        return nil
    }
}
