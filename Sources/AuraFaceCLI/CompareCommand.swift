// `auraface compare`: the cosine similarity of two face crops' embeddings.

import AuraFace
import Foundation

enum CompareCommand {
    static let spec = CommandSpec(
        name: "compare",
        summary: "Print the cosine similarity of two aligned face crops' embeddings.",
        usage: [
            "--model FILE [--threads N] [--verbose] A.png B.png",
            "--model FILE [--landmarks-a X1,Y1,...] [--landmarks-b X1,Y1,...] [--save-aligned DIR] A B",
        ],
        discussion: """
            Prints one number from -1 to 1: the dot product of the two L2-normalized \
            embeddings. Higher means more alike; the threshold for "same person" depends on \
            the model and the data and is not chosen here. --verbose also prints each raw \
            embedding's L2 norm to standard error. A and B are PNG, JPEG, PPM or PGM files. \
            With --landmarks-a or --landmarks-b, that image is a \
            photo of any size, aligned from its five landmarks first.
            """,
        positionals: [
            PositionalSpec(name: "A.png", help: "First aligned face crop at the model's input size."),
            PositionalSpec(name: "B.png", help: "Second aligned face crop at the model's input size."),
        ],
        options: [CommonOptions.model, CommonOptions.threads, CommonOptions.verbose] + photoOptions)

    static let command = Command(spec: spec, run: run)

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        let modelURL = try CommonOptions.modelURL(arguments, command: "compare")
        let threads = try CommonOptions.threadCount(arguments)
        let verbose = arguments.flag("verbose")
        let paths = arguments.positionals
        // Bad landmarks are a usage error, reported before the model loads.
        for option in ["landmarks-a", "landmarks-b"] {
            if let text = arguments.value(option) {
                _ = try PhotoAlignment.landmarks(text, option: option)
            }
        }
        if let saveDirectory = arguments.value("save-aligned") {
            guard arguments.value("landmarks-a") != nil || arguments.value("landmarks-b") != nil else {
                throw UsageError("--save-aligned applies only with --landmarks-a or --landmarks-b")
            }
            try OutputPath.rejectStandardOutput(saveDirectory, option: "--save-aligned")
            try OutputPath.prepareFolder(URL(fileURLWithPath: saveDirectory), option: "--save-aligned")
        }

        let model = try loadModel(at: modelURL, threads: threads, verbose: verbose, console: console)
        let images = try loadFaces(paths, arguments: arguments, inputSize: model.architecture.inputSize)
        var raw: [[Float]] = []
        try embedFaces(images, model: model, batchSize: 2) { _, embeddings in
            raw += embeddings
        }
        let a = try AuraFaceModel.l2Normalized(raw[0])
        let b = try AuraFaceModel.l2Normalized(raw[1])
        let cosine = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }

        try console.print(JSONText.number(Float(cosine)))
        if verbose {
            for (path, vector) in zip(paths, raw) {
                console.note("raw embedding norm of \(path): \(JSONText.number(l2Norm(vector)))")
            }
        }
    }
}
