// The BLAS line of `auraface inspect`: which kernels run and why.

import Testing

@testable import AuraFace
@testable import AuraFaceCLI

@Suite("Inspect BLAS text")
struct InspectBLASTextTests {
    private func info(coreName: String, requested: String?) -> BLASInfo {
        BLASInfo(
            coreName: coreName, config: "OpenBLAS 0.3.21", threads: 2,
            coreTypeSource: .userEnvironment, requestedCoreType: requested,
            libraryPath: "/usr/lib/libopenblas.so.0")
    }

    @Test func honouredCoreTypeIsCredited() {
        let text = InspectCommand.coreTypeSourceText(info(coreName: "Haswell", requested: "HASWELL"))

        #expect(text == "from OPENBLAS_CORETYPE=HASWELL in the environment")
    }

    @Test func ignoredCoreTypeIsNotCredited() {
        let text = InspectCommand.coreTypeSourceText(info(coreName: "Cooperlake", requested: "Bogus"))

        #expect(text.hasPrefix("OPENBLAS_CORETYPE=Bogus in the environment was not used"))
        #expect(!text.hasPrefix("from "))
    }
}
