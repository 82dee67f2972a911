// swift-tools-version:6.0
// libFuzzer targets for the library's file readers. A package of its own, because its
// executables only link with `--sanitize=fuzzer`, which provides `main`. Tools/fuzz.sh builds
// and runs them. The root package's `swift build` and `swift test` never see this folder.
import PackageDescription

/// One executable per reader, in Sources/<name>.
let fuzzTargets: [(name: String, products: [String])] = [
    ("fuzz-onnx", ["AuraFace", "AuraFaceONNX"]),
    ("fuzz-safetensors", ["AuraFace"]),
    ("fuzz-npy", ["AuraFace"]),
    ("fuzz-png", ["AuraFace"]),
    ("fuzz-jpeg", ["AuraFace"]),
    ("fuzz-ppm", ["AuraFace"]),
    ("fuzz-landmarks", ["AuraFace"]),
    ("fuzz-pickle", ["AuraFace"]),
]

let package = Package(
    name: "AuraFaceFuzz",
    dependencies: [
        // `name:` fixes the package's name whatever the checkout folder is called.
        .package(name: "AuraFace", path: "../..")
    ],
    targets: fuzzTargets.map { target in
        .executableTarget(
            name: target.name,
            dependencies: target.products.map { .product(name: $0, package: "AuraFace") },
            path: "Sources/\(target.name)"
        )
    }
)
