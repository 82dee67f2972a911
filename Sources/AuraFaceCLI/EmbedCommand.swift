// `auraface embed`: face crops (PNG, JPEG, PPM or PGM) to JSON lines, or an input tensor (.npy)
// to an embedding matrix (.npy).

import AuraFace
import Foundation

enum EmbedCommand {
    /// Images per forward pass unless --batch-size sets another value. Activation memory grows
    /// linearly with it: the stem output alone is 64 x 112 x 112 floats (3.2 MB) per face.
    static let defaultBatchSize = 32

    static let spec = CommandSpec(
        name: "embed",
        summary: "Compute face embeddings from aligned face crops or from an input tensor.",
        usage: [
            "--model FILE [--batch-size N] [--threads N] [--verbose] IMAGE...",
            "--model FILE --tensor X.npy --output E.npy [--raw] [--batch-size N] [--threads N]",
            "--model FILE --landmarks X1,Y1,...,X5,Y5 [--save-aligned DIR] [--threads N] PHOTO",
            "--model FILE --output OUT [--format F] [--landmarks-file FILE] [--save-aligned DIR] [--batch-size N] (--images DIR | --list FILE | IMAGE...)",
        ],
        discussion: """
            With images: each IMAGE is a face crop (PNG, JPEG, PPM or PGM) already aligned to the \
            model's input size \
            (112x112 for AuraFace). The output is one JSON object per line and image, in argument \
            order: {"file": IMAGE, "embedding": [...], "norm": N}, where "embedding" is \
            L2-normalized (compare two with a dot product) and "norm" is the L2 norm of the raw \
            network output. Pixels are mapped by (v - input_mean) * input_scale from the \
            weights' metadata; alpha is dropped and no gamma correction is applied.

            With --tensor: X.npy holds exactly what the source ONNX graph takes as input, \
            float32 [N, C, H, W], and E.npy receives float32 [N, D] embeddings, L2-normalized \
            unless --raw is given.

            With --landmarks: PHOTO (PNG, JPEG, PPM or PGM, any size) is aligned onto the ArcFace \
            template as insightface's norm_crop does, then embedded; the JSON line also holds \
            "matrix" (the 2x3 photo-to-crop transform) and "rms_residual" (crop pixels).
            """ + "\n\n" + BatchEmbedding.discussion,
        positionals: [
            PositionalSpec(
                name: "IMAGE", help: "Aligned face crop (PNG, JPEG, PPM or PGM) at the model's input size.",
                repeats: true, optional: true)
        ],
        options: [
            CommonOptions.model,
            .value("tensor", "X.npy", "Read the graph input tensor [N, C, H, W] float32 from X.npy instead of images."),
            .value("output", "OUT", "With --tensor: write the [N, D] embeddings to OUT (.npy, required). With images: write them to OUT (.jsonl, .csv or .npy) and resume it on a rerun."),
            .flag("raw", "With --tensor: write the raw network output instead of L2-normalized embeddings."),
            .value("batch-size", "N", "Faces per forward pass (default \(defaultBatchSize))."),
            CommonOptions.threads,
            CommonOptions.verbose,
        ] + photoOptions + BatchEmbedding.options)

    static let command = Command(spec: spec, run: run)

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        let modelURL = try CommonOptions.modelURL(arguments, command: "embed")
        let threads = try CommonOptions.threadCount(arguments)
        let batchSize = try arguments.value("batch-size").map { text throws(UsageError) in
            try integerValue(text, option: "batch-size", range: 1...4096)
        } ?? defaultBatchSize
        let verbose = arguments.flag("verbose")

        if BatchEmbedding.isRequested(arguments) {
            try BatchEmbedding.run(
                arguments, modelURL: modelURL, threads: threads, batchSize: batchSize,
                verbose: verbose, console: console)
            return
        }
        if let landmarksText = arguments.value("landmarks") {
            try embedPhoto(
                arguments, landmarksText: landmarksText, modelURL: modelURL, threads: threads,
                console: console)
            return
        }
        if arguments.value("save-aligned") != nil {
            throw UsageError("--save-aligned applies only with --landmarks")
        }
        if let tensorPath = arguments.value("tensor") {
            guard arguments.positionals.isEmpty else {
                throw UsageError(
                    "--tensor cannot be combined with image files (found '\(arguments.positionals[0])')")
            }
            guard let outputPath = arguments.value("output") else {
                throw UsageError("--tensor requires --output E.npy for the embeddings")
            }
            try OutputPath.rejectStandardOutput(outputPath, option: "--output")
            let input = URL(fileURLWithPath: tensorPath)
            let output = URL(fileURLWithPath: outputPath)
            guard output.pathExtension.lowercased() == "npy" else {
                throw UsageError(
                    "--output '\(outputPath)' with --tensor is written as .npy data, so it must "
                        + "end in .npy, found "
                        + (output.pathExtension.isEmpty ? "no extension" : "'.\(output.pathExtension)'"))
            }
            // Writing over X.npy or the weights would destroy a file this command reads.
            for (option, url) in [("--tensor", input), ("--model", modelURL)]
            where isSameFile(url, output) {
                throw UsageError(
                    "--output E.npy must differ from \(option) ('\(url.path)'), which it would overwrite")
            }
            try OutputPath.checkFileDestination(output, option: "--output")
            try embedTensor(
                input: input, output: output,
                raw: arguments.flag("raw"), modelURL: modelURL, threads: threads,
                batchSize: batchSize, verbose: verbose, console: console)
            return
        }
        for option in ["output", "raw"] where arguments.flag(option) || arguments.value(option) != nil {
            throw UsageError("--\(option) applies only with --tensor X.npy")
        }
        guard !arguments.positionals.isEmpty else {
            throw UsageError(
                "missing argument IMAGE... or --tensor X.npy for 'auraface embed'; "
                    + "see 'auraface embed --help'")
        }
        try embedImages(
            arguments.positionals, modelURL: modelURL, threads: threads, batchSize: batchSize,
            verbose: verbose, console: console)
    }

    static func embedImages(
        _ paths: [String], modelURL: URL, threads: Int?, batchSize: Int, verbose: Bool,
        console: Console
    ) throws {
        let model = try loadModel(at: modelURL, threads: threads, verbose: verbose, console: console)
        let images = try loadFaceImages(paths, inputSize: model.architecture.inputSize)
        try embedFaces(images, model: model, batchSize: batchSize) { first, embeddings in
            for (offset, raw) in embeddings.enumerated() {
                let embedding = try AuraFaceModel.l2Normalized(raw)
                try console.print(
                    "{\"file\":\(JSONText.string(paths[first + offset])),"
                        + "\"embedding\":\(JSONText.array(embedding)),"
                        + "\"norm\":\(JSONText.number(l2Norm(raw)))}")
            }
            if verbose {
                console.note("embedded \(first + embeddings.count) of \(images.count) images")
            }
        }
    }

    static func embedTensor(
        input: URL, output: URL, raw: Bool, modelURL: URL, threads: Int?, batchSize: Int,
        verbose: Bool, console: Console
    ) throws {
        let tensor = try NpyArray(contentsOf: input)
        let model = try loadModel(at: modelURL, threads: threads, verbose: verbose, console: console)
        let architecture = model.architecture
        let imageShape = [architecture.inputChannels, architecture.inputSize, architecture.inputSize]
        guard tensor.shape.count == 4, tensor.shape[0] >= 1, Array(tensor.shape[1...]) == imageShape
        else {
            throw CommandFailure(
                "'\(input.path)' has shape \(tensor.shape), expected [N, \(imageShape.map(String.init).joined(separator: ", "))] "
                    + "with N >= 1: the input the model's source ONNX graph takes, float32 NCHW")
        }

        let count = tensor.shape[0]
        let imageValues = imageShape.reduce(1, *)
        var embeddings: [Float] = []
        embeddings.reserveCapacity(count * architecture.embeddingSize)
        var first = 0
        while first < count {
            let chunkSize = min(batchSize, count - first)
            let chunk = Array(tensor.values[(first * imageValues)..<((first + chunkSize) * imageValues)])
            for vector in try model.rawEmbeddings(graphInput: chunk, batchSize: chunkSize) {
                embeddings += raw ? vector : try AuraFaceModel.l2Normalized(vector)
            }
            first += chunkSize
            if verbose {
                console.note("embedded \(first) of \(count) inputs")
            }
        }
        try NpyArray(shape: [count, architecture.embeddingSize], values: embeddings).write(to: output)
        if verbose {
            console.note(
                "wrote \(raw ? "raw" : "L2-normalized") embeddings [\(count), \(architecture.embeddingSize)] "
                    + "to \(output.path)")
        }
    }
}
