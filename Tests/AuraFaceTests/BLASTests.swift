// OpenBLAS loading, the kernel-family choice from CPU flags, and the CPU count.

import Foundation
import Testing

@testable import AuraFace

@Suite struct BLASTests {
    static let avx512 = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]

    @Test func cpuinfoFlagsParseFirstProcessor() {
        let text = """
            processor\t: 0
            vendor_id\t: AuthenticAMD
            flags\t\t: fpu sse2 avx2 fma avx512f
            bogomips\t: 4800.00

            processor\t: 1
            flags\t\t: fpu
            """
        #expect(HostCPU.flags(cpuinfo: text) == ["fpu", "sse2", "avx2", "fma", "avx512f"])
        #expect(HostCPU.flags(cpuinfo: "processor : 0\n").isEmpty)
    }

    @Test(arguments: [
        (avx512 + ["avx2", "fma"], "SkylakeX"),
        (avx512 + ["avx2", "fma", "avx512_bf16"], "Cooperlake"),
        (["avx2", "fma"], "Haswell"),
        // AVX-512 without VL is not enough for SkylakeX kernels; AVX2 + FMA still are there.
        (["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx2", "fma"], "Haswell"),
        (["avx2"], nil),
        (["sse2", "avx"], nil),
    ] as [([String], String?)])
    func coreTypeFollowsCPUFlags(flags: [String], expected: String?) {
        #expect(HostCPU.openBLASCoreType(flags: Set(flags)) == expected)
    }

    @Test func cgroupV2QuotaLimitsCPUs() {
        let files = ["/sys/fs/cgroup/job/cpu.max": "150000 100000\n"]
        #expect(HostCPU.cgroupCPUQuota(memberships: "0::/job\n") { files[$0] } == 1.5)
        let unlimited = ["/sys/fs/cgroup/cpu.max": "max 100000\n"]
        #expect(HostCPU.cgroupCPUQuota(memberships: "0::/\n") { unlimited[$0] } == nil)
    }

    @Test func cgroupV1QuotaLimitsCPUs() {
        let memberships = "4:memory:/x\n1:cpu,cpuacct:/job\n0::/\n"
        let limited = [
            "/sys/fs/cgroup/cpu/job/cpu.cfs_quota_us": "50000\n",
            "/sys/fs/cgroup/cpu/job/cpu.cfs_period_us": "100000\n",
        ]
        #expect(HostCPU.cgroupCPUQuota(memberships: memberships) { limited[$0] } == 0.5)
        let unlimited = [
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
            "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
        ]
        #expect(HostCPU.cgroupCPUQuota(memberships: "1:cpu:/\n") { unlimited[$0] } == nil)
    }

    @Test func availableCPUCountIsWithinOnlineCPUs() {
        let count = HostCPU.availableCPUCount()
        #expect(count >= 1)
        #expect(count <= ProcessInfo.processInfo.processorCount)
    }

    @Test func loadReportsKernelsInUse() throws {
        let info = try OpenBLAS.load()
        #expect(info.config.contains("OpenBLAS"))
        #expect(info.config.contains(info.coreName))
        #expect(info.threads >= 1)
        #expect(info.libraryPath.contains("openblas"))
        let flags = HostCPU.flags()
        switch info.coreTypeSource {
        case .selectedByAuraFace:
            let chosen = HostCPU.openBLASCoreType(flags: flags)
            #expect(info.requestedCoreType == chosen)
            #expect(info.coreName.lowercased() == chosen?.lowercased())
            // The variable was set only while OpenBLAS loaded.
            #expect(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil)
        case .userEnvironment:
            #expect(info.requestedCoreType == ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"])
        case .detectedByOpenBLAS:
            #expect(HostCPU.openBLASCoreType(flags: flags) == nil)
        case .alreadyLoaded:
            // Nothing in the test process loads OpenBLAS before AuraFace does.
            Issue.record("OpenBLAS was loaded before OpenBLAS.load(): \(info.coreName)")
        }
    }

    @Test func blasInfoMatchesLoad() throws {
        let info = try AuraFaceModel.blasInfo
        #expect(info == (try OpenBLAS.load()))
    }

    @Test func rejectsThreadCountBelowOne() {
        #expect(throws: BLASError.invalidThreadCount(0)) { try OpenBLAS.setThreadCount(0) }
        #expect(BLASError.invalidThreadCount(0).description == "invalid thread count 0, expected 1 or more")
    }

    @Test func loadErrorNamesPackage() {
        let error = BLASError.libraryNotLoaded(library: "libopenblas.so.0", reason: "not found")
        #expect(
            error.description
                == "cannot load libopenblas.so.0: not found; install OpenBLAS "
                + "(Debian: apt-get install libopenblas0, or libopenblas-dev)")
    }
}
