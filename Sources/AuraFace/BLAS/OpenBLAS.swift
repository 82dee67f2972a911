// OpenBLAS, loaded with dlopen on first use instead of linked.
//
// OpenBLAS built with DYNAMIC_ARCH (as Debian ships it) picks its kernels once, while it loads,
// from the CPUID it recognises or from the OPENBLAS_CORETYPE environment variable. Loading it
// ourselves lets the library set that variable first when the CPU supports a faster kernel
// family than OpenBLAS would detect, and report which kernels are really in use.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The OpenBLAS build and kernels in use, for `auraface inspect` and benchmark reports.
public struct BLASInfo: Sendable, Equatable {
    /// The origin of the OpenBLAS kernel family (core type) in use.
    public enum CoreTypeSource: String, Sendable {
        /// The user set `OPENBLAS_CORETYPE` and AuraFace left it alone.
        case userEnvironment
        /// AuraFace set `OPENBLAS_CORETYPE` from the CPU flags before loading OpenBLAS.
        case selectedByAuraFace
        /// AuraFace found no better choice than OpenBLAS's own CPU detection.
        case detectedByOpenBLAS
        /// Something else in the process had loaded OpenBLAS first, so its kernels were
        /// already fixed and AuraFace chose nothing.
        case alreadyLoaded
    }

    /// `openblas_get_corename()`, such as `SkylakeX` or `Haswell`: the kernels in use.
    public var coreName: String
    /// `openblas_get_config()`: version and build options.
    public var config: String
    /// `openblas_get_num_threads()`: the size of OpenBLAS's thread pool.
    public var threads: Int
    public var coreTypeSource: CoreTypeSource
    /// The `OPENBLAS_CORETYPE` value in force when OpenBLAS loaded, if any. OpenBLAS ignores a
    /// name it does not know, so `coreName` is the authority on what runs.
    public var requestedCoreType: String?
    /// The file that was loaded, with symbolic links resolved.
    public var libraryPath: String
}

/// Errors from loading or configuring OpenBLAS.
public enum BLASError: Error, Equatable, CustomStringConvertible {
    /// dlopen failed, usually because the OpenBLAS runtime package is not installed.
    case libraryNotLoaded(library: String, reason: String)
    /// The library loaded but lacks a function AuraFace calls.
    case missingSymbol(symbol: String, library: String)
    /// A thread count below 1 was requested, for a model or for OpenBLAS's pool.
    case invalidThreadCount(Int)

    public var description: String {
        switch self {
        case let .libraryNotLoaded(library, reason):
            "cannot load \(library): \(reason); install OpenBLAS "
                + "(Debian: apt-get install libopenblas0, or libopenblas-dev)"
        case let .missingSymbol(symbol, library):
            "\(library) has no function '\(symbol)'; expected an OpenBLAS build with CBLAS"
        case let .invalidThreadCount(count):
            "invalid thread count \(count), expected 1 or more"
        }
    }
}

/// The process-wide OpenBLAS library: loading, kernel choice, thread count and `cblas_sgemm`.
public enum OpenBLAS {
    /// The soname that is loaded (Debian's libopenblas0 provides it through alternatives).
    public static let libraryName = "libopenblas.so.0"

    /// Loads OpenBLAS if it is not loaded yet and returns what is in use.
    ///
    /// On the first call, unless the user set `OPENBLAS_CORETYPE`, this chooses a kernel family
    /// from the CPU flags (see `HostCPU.openBLASCoreType(flags:)`), sets the variable for the
    /// duration of `dlopen` and removes it again. It then sets OpenBLAS's own thread pool to 1
    /// thread, whatever `OPENBLAS_NUM_THREADS` requests: each `AuraFaceModel` splits its work over
    /// its own `threadCount` threads and calls sgemm single-threaded from each, so a larger
    /// pool would multiply the threads and its idle threads would spin against the model's.
    /// When other code in the process had already loaded OpenBLAS, this leaves its kernels
    /// alone and reports `.alreadyLoaded`, but still sets the pool to 1 thread.
    /// Later calls only read the current state.
    ///
    /// NOTE: setenv is not thread-safe against a concurrent getenv in another thread. The first
    /// call should happen before the host starts threads that read the environment.
    ///
    /// - Throws: `BLASError.libraryNotLoaded` or `.missingSymbol`. A failure is remembered:
    ///   every later call throws the same error.
    @discardableResult
    public static func load() throws(BLASError) -> BLASInfo {
        let library = try loaded.get()
        return library.info()
    }

    /// Sets the size of OpenBLAS's own thread pool (process-wide, shared by every model).
    ///
    /// AuraFace keeps it at 1 and parallelises per model (`AuraFaceModel.threadCount`). A larger
    /// pool is for code that calls OpenBLAS directly, because inside a model it would add its
    /// threads within each of the model's.
    /// Call it while no other thread is inside an OpenBLAS function. OpenBLAS caps the count
    /// at the `MAX_THREADS` it was built with; `load().threads` shows the value in force.
    ///
    /// - Throws: `BLASError.invalidThreadCount` for a count below 1, or a load error.
    public static func setThreadCount(_ count: Int) throws(BLASError) {
        guard count >= 1 else {
            throw .invalidThreadCount(count)
        }
        let library = try loaded.get()
        library.setNumThreads(Int32(clamping: count))
    }

    /// `cblas_sgemm`, for the GEMM kernel. Traps if OpenBLAS is not loaded: every entry point
    /// that runs a network calls `load()` first.
    static var sgemm: Library.SGEMM {
        switch loaded {
        case let .success(library):
            return library.sgemm
        case let .failure(error):
            preconditionFailure("OpenBLAS used before a successful OpenBLAS.load(): \(error)")
        }
    }

    /// Whether the loaded kernels multiply small products without packing them first: OpenBLAS
    /// 0.3.21 (Debian 12) has such a "small-matrix" kernel in its SkylakeX and Cooperlake
    /// families, used for a non-transposed product with m * n * k <= 10^6
    /// (`sgemm_small_kernel_permit_skylakex.c`). Reading it loads OpenBLAS, and it is false
    /// when the load fails.
    ///
    /// NOTE: it checks the core name only, not the OpenBLAS version: the two families were
    /// checked with perf on 0.3.21. Other families are treated as having no such kernel, so
    /// their products are not split.
    static var hasSmallMatrixKernel: Bool {
        smallMatrixKernel
    }

    /// The largest m * n * k that OpenBLAS's small-matrix kernel takes.
    static let smallMatrixKernelLimit = 1_000_000

    private static let smallMatrixKernel: Bool = {
        guard case let .success(library) = loaded else { return false }
        let name = library.info().coreName.lowercased()
        return name == "skylakex" || name == "cooperlake"
    }()

    /// The loaded library or the load error. Swift runs this initializer once, on first use,
    /// even when several threads race to it.
    private static let loaded = Result<Library, BLASError> { () throws(BLASError) in
        try Library.open()
    }

    /// The C entry points of a loaded OpenBLAS.
    ///
    /// `@unchecked Sendable` because C function pointers are not marked Sendable: they are
    /// immutable after `open()`, and OpenBLAS's pthread build allows concurrent sgemm calls.
    struct Library: @unchecked Sendable {
        // CBLAS enums are C ints: CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112.
        // blasint is a 32-bit int in libopenblas0 (the 64-bit-index build is libopenblas64).
        typealias SGEMM = @convention(c) (
            _ order: Int32, _ transA: Int32, _ transB: Int32,
            _ m: Int32, _ n: Int32, _ k: Int32,
            _ alpha: Float, _ a: UnsafePointer<Float>?, _ lda: Int32,
            _ b: UnsafePointer<Float>?, _ ldb: Int32,
            _ beta: Float, _ c: UnsafeMutablePointer<Float>?, _ ldc: Int32
        ) -> Void
        typealias SetNumThreads = @convention(c) (Int32) -> Void
        typealias GetNumThreads = @convention(c) () -> Int32
        typealias GetString = @convention(c) () -> UnsafePointer<CChar>?

        let sgemm: SGEMM
        let setNumThreads: SetNumThreads
        let getNumThreads: GetNumThreads
        let getCoreName: GetString
        let getConfig: GetString
        let coreTypeSource: BLASInfo.CoreTypeSource
        let requestedCoreType: String?
        let path: String

        func info() -> BLASInfo {
            BLASInfo(
                coreName: getCoreName().map { String(cString: $0) } ?? "unknown",
                config: getConfig().map { String(cString: $0) } ?? "unknown",
                threads: Int(getNumThreads()),
                coreTypeSource: coreTypeSource,
                requestedCoreType: requestedCoreType,
                libraryPath: path)
        }

        static func open() throws(BLASError) -> Library {
            let environment = ProcessInfo.processInfo.environment
            // Any value counts as the user's choice, even an empty one.
            let userCoreType = environment["OPENBLAS_CORETYPE"]

            // RTLD_NOLOAD returns a handle only if the library is already in the process. Its
            // kernels were then fixed by the code that loaded it first.
            let source: BLASInfo.CoreTypeSource
            var requestedCoreType = userCoreType
            let handle: UnsafeMutableRawPointer
            if let existing = dlopen(OpenBLAS.libraryName, RTLD_NOW | RTLD_NOLOAD) {
                source = .alreadyLoaded
                handle = existing
            } else {
                var chosen: String?
                if userCoreType != nil {
                    source = .userEnvironment
                } else if let coreType = HostCPU.openBLASCoreType(flags: HostCPU.flags()) {
                    source = .selectedByAuraFace
                    chosen = coreType
                    requestedCoreType = coreType
                } else {
                    source = .detectedByOpenBLAS
                }
                if let chosen {
                    setenv("OPENBLAS_CORETYPE", chosen, 1)
                }
                let opened = dlopen(OpenBLAS.libraryName, RTLD_NOW | RTLD_LOCAL)
                // OpenBLAS reads the variable only in its load-time constructor, so removing it
                // now leaves the environment as the user set it (child processes included).
                if chosen != nil {
                    unsetenv("OPENBLAS_CORETYPE")
                }
                guard let opened else {
                    let reason = dlerror().map { String(cString: $0) } ?? "dlopen failed"
                    throw .libraryNotLoaded(library: OpenBLAS.libraryName, reason: reason)
                }
                handle = opened
            }

            func symbol<T>(_ name: String, as type: T.Type) throws(BLASError) -> T {
                guard let address = dlsym(handle, name) else {
                    throw .missingSymbol(symbol: name, library: OpenBLAS.libraryName)
                }
                return unsafeBitCast(address, to: type)
            }
            let sgemmAddress = dlsym(handle, "cblas_sgemm")
            let library = Library(
                sgemm: try symbol("cblas_sgemm", as: SGEMM.self),
                setNumThreads: try symbol("openblas_set_num_threads", as: SetNumThreads.self),
                getNumThreads: try symbol("openblas_get_num_threads", as: GetNumThreads.self),
                getCoreName: try symbol("openblas_get_corename", as: GetString.self),
                getConfig: try symbol("openblas_get_config", as: GetString.self),
                coreTypeSource: source,
                requestedCoreType: requestedCoreType,
                path: sgemmAddress.flatMap(sharedObjectPath(containing:)) ?? OpenBLAS.libraryName)

            // OpenBLAS started its pool in its constructor (sized by OPENBLAS_NUM_THREADS or the
            // CPU count); one thread leaves the parallelism to the models.
            library.setNumThreads(1)
            return library
        }
    }
}

/// Finds the resolved path of the shared object that contains `address`, with dladdr.
private func sharedObjectPath(containing address: UnsafeMutableRawPointer) -> String? {
    // dladdr and Dl_info are GNU extensions that the Glibc module does not import. This struct
    // mirrors Dl_info's layout (four pointer-sized fields) so dladdr can fill it.
    struct SymbolInfo {
        var fileName: UnsafePointer<CChar>?
        var fileBase: UnsafeMutableRawPointer?
        var symbolName: UnsafePointer<CChar>?
        var symbolAddress: UnsafeMutableRawPointer?
    }
    typealias DLAddr = @convention(c) (UnsafeRawPointer, UnsafeMutableRawPointer) -> Int32
    guard let dladdrAddress = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "dladdr") else {
        return nil
    }
    let dladdr = unsafeBitCast(dladdrAddress, to: DLAddr.self)
    var info = SymbolInfo()
    let found = withUnsafeMutableBytes(of: &info) { dladdr(address, $0.baseAddress!) }
    guard found != 0, let fileName = info.fileName else { return nil }
    let path = String(cString: fileName)
    guard let resolved = realpath(path, nil) else { return path }
    defer { free(resolved) }
    return String(cString: resolved)
}
