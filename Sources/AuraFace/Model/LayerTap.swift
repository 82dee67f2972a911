// The per-layer hook of a traced forward pass.

/// Receives each layer's output during a traced forward pass: the layer's PyTorch module
/// path, the output shape and its values in row-major order.
///
/// Shapes are [N, C, H, W] up to `bn2` and [N, D] for `fc` and `features`.
public typealias LayerObserver = (_ name: String, _ shape: [Int], _ values: [Float]) -> Void

/// An observer with the module path of the part of the network being run, such as
/// `layer2.0`. The forward pass takes it as an optional, so an untraced pass pays one nil
/// check per layer and builds no names.
struct LayerTap {
    let prefix: String
    let observer: LayerObserver

    init(observer: @escaping LayerObserver) {
        self.prefix = ""
        self.observer = observer
    }

    private init(prefix: String, observer: @escaping LayerObserver) {
        self.prefix = prefix
        self.observer = observer
    }

    /// Returns a tap for the submodule `name`, whose layers report as `prefix.name.layer`.
    func scoped(_ name: String) -> LayerTap {
        LayerTap(prefix: path(name), observer: observer)
    }

    /// Reports `x` as the output of the layer `name`.
    func callAsFunction(_ name: String, _ x: borrowing FeatureMap) {
        observer(path(name), x.shape, x.values)
    }

    /// Reports `x` as the output of the whole submodule this tap is scoped to, such as a block.
    func output(_ x: borrowing FeatureMap) {
        observer(prefix, x.shape, x.values)
    }

    /// Reports `x` as the output of the layer `name` with the [N, C*H*W] shape of a flattened
    /// head activation.
    func flat(_ name: String, _ x: borrowing FeatureMap) {
        observer(path(name), [x.batch, x.imageSize], x.values)
    }

    /// Reports a convolution's output unless the batch norm after it was folded into its
    /// bias. In that case the output already equals the batch norm's output, and the caller
    /// reports it under the batch norm's name instead.
    func convolution(_ name: String, _ x: borrowing FeatureMap, before norm: BatchNorm?) {
        if norm != nil {
            self(name, x)
        }
    }

    private func path(_ name: String) -> String {
        prefix.isEmpty ? name : prefix + "." + name
    }
}
