// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "AuraFace",
    products: [
        .library(name: "AuraFace", targets: ["AuraFace"]),
        .library(name: "AuraFaceONNX", targets: ["AuraFaceONNX"]),
        .executable(name: "auraface", targets: ["auraface"]),
        .executable(name: "auraface-bench", targets: ["AuraFaceBenchmarks"]),
        .executable(name: "auraface-soak", targets: ["AuraFaceSoak"]),
    ],
    targets: [
        // libpng from Debian's libpng-dev. OpenBLAS is not linked: the library loads it at
        // run time (see Sources/AuraFace/BLAS/OpenBLAS.swift) so it can pick its kernels first.
        .systemLibrary(
            name: "CLibPNG",
            path: "Sources/CLibPNG",
            pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]
        ),
        // TurboJPEG from Debian's libturbojpeg0-dev (libjpeg-turbo 2.1.5 on Debian 12), for JPEG
        // decoding through its tjDecompress2 API, which reports errors instead of exiting.
        .systemLibrary(
            name: "CTurboJPEG",
            path: "Sources/CTurboJPEG",
            pkgConfig: "libturbojpeg",
            providers: [.apt(["libturbojpeg0-dev"])]
        ),
        // Calls libpng from C, where its setjmp/longjmp error handling cannot unwind Swift frames.
        .target(
            name: "CPNGShim",
            dependencies: ["CLibPNG"],
            path: "Sources/CPNGShim"
        ),
        // The engine: weights, layers, kernels, the IResNet forward pass and image input.
        .target(
            name: "AuraFace",
            dependencies: ["CLibPNG", "CPNGShim", "CTurboJPEG"],
            path: "Sources/AuraFace"
        ),
        // Protobuf wire format, the ONNX messages an IResNet export uses, and the converter.
        .target(
            name: "AuraFaceONNX",
            dependencies: ["AuraFace"],
            path: "Sources/AuraFaceONNX"
        ),
        // The command-line program's argument parser and subcommands, a library so tests can
        // call them in-process; the auraface executable only forwards its arguments.
        .target(
            name: "AuraFaceCLI",
            dependencies: ["AuraFace", "AuraFaceONNX"],
            path: "Sources/AuraFaceCLI"
        ),
        .executableTarget(
            name: "auraface",
            dependencies: ["AuraFaceCLI"],
            path: "Sources/auraface"
        ),
        .executableTarget(
            name: "AuraFaceBenchmarks",
            dependencies: ["AuraFace", "AuraFaceONNX"],
            path: "Benchmarks/AuraFaceBenchmarks"
        ),
        // Long run of one model: checks every output and tracks resident memory over time.
        .executableTarget(
            name: "AuraFaceSoak",
            dependencies: ["AuraFace"],
            path: "Benchmarks/AuraFaceSoak"
        ),
        .testTarget(
            name: "AuraFaceTests",
            dependencies: ["AuraFace"],
            path: "Tests/AuraFaceTests"
        ),
        .testTarget(
            name: "AuraFaceCLITests",
            dependencies: ["AuraFace", "AuraFaceCLI"],
            path: "Tests/AuraFaceCLITests"
        ),
        // Converter + engine against onnxruntime's outputs on committed fixture graphs.
        .testTarget(
            name: "ParityTests",
            dependencies: ["AuraFace", "AuraFaceONNX"],
            path: "Tests/ParityTests"
        ),
        .testTarget(
            name: "AuraFaceONNXTests",
            dependencies: ["AuraFace", "AuraFaceONNX"],
            path: "Tests/AuraFaceONNXTests"
        ),
    ]
)
