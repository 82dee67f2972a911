// The single matrix multiply of the engine: row-major float32 GEMM through OpenBLAS.

/// Computes `C = alpha * op(A) * op(B) + beta * C` with OpenBLAS `cblas_sgemm`, row-major.
///
/// `op(A)` is `m x k`, `op(B)` is `k x n` and `C` is `m x n`. Each matrix starts at its
/// offset in its array and has a row stride (`lda`, `ldb`, `ldc`, in elements) of at least
/// its stored row length, so a matrix can be a block of a larger buffer. When `transposeA`
/// is true, A is stored as `k x m` and used transposed, likewise for B.
///
/// OpenBLAS must be loaded (`OpenBLAS.load()`); sizes must fit in 32-bit ints.
func sgemm(
    transposeA: Bool = false, transposeB: Bool = false,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    a: [Float], aOffset: Int = 0, lda: Int,
    b: [Float], bOffset: Int = 0, ldb: Int,
    beta: Float = 0,
    c: inout [Float], cOffset: Int = 0, ldc: Int
) {
    precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative size \(m)x\(n)x\(k)")
    if m == 0 || n == 0 {
        return
    }
    let (aRows, aColumns) = transposeA ? (k, m) : (m, k)
    let (bRows, bColumns) = transposeB ? (n, k) : (k, n)
    precondition(lda >= max(1, aColumns) && ldb >= max(1, bColumns) && ldc >= max(1, n),
        "sgemm: row stride below row length")
    precondition(requiredExtent(rows: aRows, columns: aColumns, stride: lda, offset: aOffset) <= a.count,
        "sgemm: A [\(aRows), \(aColumns)] at offset \(aOffset) exceeds \(a.count) elements")
    precondition(requiredExtent(rows: bRows, columns: bColumns, stride: ldb, offset: bOffset) <= b.count,
        "sgemm: B [\(bRows), \(bColumns)] at offset \(bOffset) exceeds \(b.count) elements")
    precondition(requiredExtent(rows: m, columns: n, stride: ldc, offset: cOffset) <= c.count,
        "sgemm: C [\(m), \(n)] at offset \(cOffset) exceeds \(c.count) elements")
    let limit = Int(Int32.max)
    precondition([m, n, k, lda, ldb, ldc].allSatisfy { $0 <= limit }, "sgemm: size exceeds Int32")

    if k == 0 {
        // An empty sum: C = beta * C, without handing OpenBLAS possibly empty A and B arrays.
        // As in BLAS, beta = 0 overwrites C, even where it held NaN.
        for row in 0..<m {
            for column in 0..<n {
                let index = cOffset + row * ldc + column
                c[index] = beta == 0 ? 0 : beta * c[index]
            }
        }
        return
    }

    // The preconditions above keep every element OpenBLAS touches inside the three arrays.
    let rowMajor: Int32 = 101
    let noTranspose: Int32 = 111
    let transpose: Int32 = 112
    let function = OpenBLAS.sgemm
    a.withUnsafeBufferPointer { aBuffer in
        b.withUnsafeBufferPointer { bBuffer in
            c.withUnsafeMutableBufferPointer { cBuffer in
                function(
                    rowMajor, transposeA ? transpose : noTranspose,
                    transposeB ? transpose : noTranspose,
                    Int32(m), Int32(n), Int32(k),
                    alpha, aBuffer.baseAddress! + aOffset, Int32(lda),
                    bBuffer.baseAddress! + bOffset, Int32(ldb),
                    beta, cBuffer.baseAddress! + cOffset, Int32(ldc))
            }
        }
    }
}

/// Computes how many elements a `rows x columns` block with row `stride` spans from the start
/// of its buffer, counting `offset`. A zero-area block spans only the offset.
private func requiredExtent(rows: Int, columns: Int, stride: Int, offset: Int) -> Int {
    precondition(offset >= 0, "sgemm: negative offset \(offset)")
    if rows == 0 || columns == 0 {
        return offset
    }
    return offset + (rows - 1) * stride + columns
}

/// `cblas_sgemm` on pointers, row-major, C = op(A) * op(B) (alpha 1, beta 0), for kernels that
/// split their products over threads and cannot pass `inout` arrays to each.
///
/// The caller guarantees that A, B and C hold the blocks that the sizes and strides describe,
/// that `k` is at least 1, and that all sizes fit in 32-bit ints.
func sgemm(
    transposeB: Bool = false, m: Int, n: Int, k: Int,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    c: UnsafeMutablePointer<Float>, ldc: Int
) {
    let rowMajor: Int32 = 101
    let noTranspose: Int32 = 111
    let transpose: Int32 = 112
    OpenBLAS.sgemm(
        rowMajor, noTranspose, transposeB ? transpose : noTranspose,
        Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), 0, c, Int32(ldc))
}

/// The blocks in which the engine splits a GEMM C [m, n] over threads. They depend on the
/// shape alone, never on the thread count, so each block is the same OpenBLAS call and gives
/// the same bits whether one thread runs all blocks or several share them. (OpenBLAS
/// picks its kernels by matrix size, so a split that followed the thread count could change
/// the rounding.)
///
/// Wide products are split into column blocks of at least `columnBlock` columns; products too
/// narrow for that are split into row blocks of at least `rowBlock` rows.
func gemmBlocks(m: Int, n: Int, columnBlock: Int = 512, rowBlock: Int = 64) -> [(rows: Range<Int>, columns: Range<Int>)] {
    let columnParts = max(1, n / columnBlock)
    if columnParts > 1 {
        return (0..<columnParts).map { part in
            (0..<m, (part * n / columnParts)..<((part + 1) * n / columnParts))
        }
    }
    let rowParts = max(1, m / rowBlock)
    return (0..<rowParts).map { part in
        ((part * m / rowParts)..<((part + 1) * m / rowParts), 0..<n)
    }
}

/// Returns the rows per block in which the engine splits a product C [m, n] = A [m, k] x
/// B [k, n] whose A is a weight matrix, so that each block goes to OpenBLAS's small-matrix kernel
/// (`OpenBLAS.hasSmallMatrixKernel`). Returns m, one block, when the loaded kernels have no
/// such kernel or even 16 rows exceed its limit.
///
/// Why: the general kernel copies both operands into packed panels on every call. For the
/// Winograd products of one image the weights are the larger operand (layer3: A is 256 x 256,
/// B is 256 x 49), so the copy cost about half as much as the multiply. In a perf profile of
/// r100 at batch 1 it took 18% of the CPU samples. The small-matrix kernel reads A and B in
/// place. Measured on a 2-core AMD EPYC (Zen 4) with OpenBLAS 0.3.21 Cooperlake kernels and one
/// thread, for the 16 products of one convolution: 64 x 784 x 64 went from 1.15 to 0.94 ms.
/// layer3's shape went from 1.59 to 1.27 ms, and layer4's (512 x 16 x 512) from 2.92 to
/// 1.90 ms. The same split with the Haswell kernels, which have no small-matrix kernel, took up to 1.6 times as
/// long as one call, because every block packs B again.
///
/// Blocks are multiples of 16 rows (the kernel's register tile) and at most 64 rows, the
/// largest that measured no slower. The block size depends only on the shape and the loaded
/// kernels, never on the thread count, so the rounding does not either.
func smallKernelRowBlock(m: Int, n: Int, k: Int) -> Int {
    guard OpenBLAS.hasSmallMatrixKernel, n > 0, k > 0 else { return m }
    let fitting = OpenBLAS.smallMatrixKernelLimit / (n * k) / 16 * 16
    guard fitting >= 16 else { return m }
    return min(m, fitting, 64)
}
