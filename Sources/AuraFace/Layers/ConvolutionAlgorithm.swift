// The choice between the two ways the engine computes a 3x3, stride-1 convolution.

/// The method `AuraFaceModel` uses for its 3x3 convolutions with stride 1, which carry most
/// of IResNet's FLOPs. The other convolutions (the strided 3x3 ones and the 1x1 shortcuts) do
/// not depend on this choice.
///
/// Both compute the same convolution and differ only in float rounding. The tests hold each
/// to the direct convolution within a relative difference of 1e-5 per layer, and both give
/// the same result for an image alone or within a batch, bit for bit.
public enum ConvolutionAlgorithm: String, Sendable, Hashable, CaseIterable {
    /// im2col and one GEMM per image: 9 multiply-adds per output value and input channel,
    /// each product of the direct sum computed as written. The path to audit against.
    case plain
    /// Winograd F(2x2, 3x3) (Lavin & Gray 2016): 4 multiply-adds per output value and input
    /// channel (more where the output height or width is odd, since the 2x2 output tiles then
    /// overhang it) in 16 smaller GEMMs per image, plus transforms of the input and output tiles.
    case winograd
}
