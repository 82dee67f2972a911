import Foundation

// Reading a tensor's values: dims checks, raw_data or typed fields, and external data.

extension ONNXTensor {
    /// Returns the dims as `Int`, after checking that none is negative and that the byte
    /// count of the largest element type (8 bytes) fits in `Int`.
    public func shape() throws(ONNXError) -> [Int] {
        var product = 1
        for dim in dims {
            guard dim >= 0 else {
                throw .negativeDimension(tensor: name, dims: dims)
            }
            guard dim <= Int64(Int.max) else {
                throw .elementCountOverflow(tensor: name, dims: dims)
            }
            let (next, overflow) = product.multipliedReportingOverflow(by: Int(dim))
            guard !overflow else {
                throw .elementCountOverflow(tensor: name, dims: dims)
            }
            product = next
        }
        guard !product.multipliedReportingOverflow(by: 8).overflow else {
            throw .elementCountOverflow(tensor: name, dims: dims)
        }
        return dims.map { Int($0) }
    }

    /// Returns the number of elements: the product of the dims, 1 for a scalar.
    public func elementCount() throws(ONNXError) -> Int {
        try shape().reduce(1, *)
    }

    /// Decodes the values of a `FLOAT` tensor, or of a `DOUBLE` tensor rounded to `Float`.
    ///
    /// - Throws: `ONNXError` for bad dims, another data type, data of the wrong length, or
    ///   external data that cannot be read.
    public func floatValues() throws(ONNXError) -> [Float] {
        let count = try elementCount()
        switch dataType {
        case .float:
            if let payload = try payload(
                elementSize: 4, count: count, typedField: "float_data", typedCount: floatData.count)
            {
                return payload.withBytes { Self.decodeFloat32($0, count: count) }
            }
            try checkTypedCount(floatData.count, field: "float_data", expected: count)
            return floatData
        case .double:
            if let payload = try payload(
                elementSize: 8, count: count, typedField: "double_data",
                typedCount: doubleData.count)
            {
                return payload.withBytes { bytes in
                    (0..<count).map { Float(Double(bitPattern: Self.loadUInt64(bytes, index: $0))) }
                }
            }
            try checkTypedCount(doubleData.count, field: "double_data", expected: count)
            return doubleData.map { Float($0) }
        default:
            throw .unsupportedDataType(tensor: name, found: dataType, expected: "FLOAT or DOUBLE")
        }
    }

    /// Decodes the values of an `INT64` or `INT32` tensor, such as a `Reshape` target shape.
    ///
    /// - Throws: `ONNXError` for bad dims, another data type, data of the wrong length, or
    ///   external data that cannot be read.
    public func int64Values() throws(ONNXError) -> [Int64] {
        let count = try elementCount()
        switch dataType {
        case .int64:
            if let payload = try payload(
                elementSize: 8, count: count, typedField: "int64_data", typedCount: int64Data.count)
            {
                return payload.withBytes { bytes in
                    (0..<count).map { Int64(bitPattern: Self.loadUInt64(bytes, index: $0)) }
                }
            }
            try checkTypedCount(int64Data.count, field: "int64_data", expected: count)
            return int64Data
        case .int32:
            if let payload = try payload(
                elementSize: 4, count: count, typedField: "int32_data", typedCount: int32Data.count)
            {
                return payload.withBytes { bytes in
                    (0..<count).map { Int64(Int32(bitPattern: Self.loadUInt32(bytes, index: $0))) }
                }
            }
            try checkTypedCount(int32Data.count, field: "int32_data", expected: count)
            return int32Data.map { Int64($0) }
        default:
            throw .unsupportedDataType(tensor: name, found: dataType, expected: "INT64 or INT32")
        }
    }

    // MARK: Where the bytes are

    /// Bytes of a tensor's data: a range in the model's storage or the bytes read from an
    /// external file.
    private struct Payload {
        var storage: ByteStorage
        var range: Range<Int>

        func withBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
            body(storage.slice(range))
        }
    }

    /// Returns the little-endian bytes of the tensor when it uses `raw_data` or external
    /// data, after checking their length, or nil when the values are in the typed field.
    private func payload(elementSize: Int, count: Int, typedField: String, typedCount: Int)
        throws(ONNXError) -> Payload?
    {
        guard !hasSegment else {
            throw .unsupportedStorage(
                tensor: name, reason: "segmented tensors (TensorProto.segment) are not supported")
        }
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: elementSize)
        guard !overflow else {
            throw .elementCountOverflow(tensor: name, dims: dims)
        }
        if dataLocation == Self.externalDataLocation {
            guard rawData == nil, typedCount == 0 else {
                throw .unsupportedStorage(
                    tensor: name,
                    reason: "data_location is EXTERNAL but the tensor also has data in the file")
            }
            return try externalPayload(byteCount: byteCount)
        }
        guard dataLocation == 0 else {
            throw .unsupportedStorage(
                tensor: name,
                reason: "data_location is \(dataLocation); expected 0 (DEFAULT) or 1 (EXTERNAL)")
        }
        guard let rawData else {
            return nil
        }
        guard typedCount == 0 else {
            throw .unsupportedStorage(
                tensor: name, reason: "the tensor has both raw_data and \(typedField)")
        }
        guard rawData.count == byteCount else {
            throw .dataLengthMismatch(
                tensor: name, field: "raw_data", expected: byteCount, found: rawData.count,
                unit: "bytes")
        }
        return Payload(storage: storage, range: rawData)
    }

    private func checkTypedCount(_ found: Int, field: String, expected: Int) throws(ONNXError) {
        if found == 0 && expected > 0 {
            throw .missingData(tensor: name)
        }
        guard found == expected else {
            throw .dataLengthMismatch(
                tensor: name, field: field, expected: expected, found: found, unit: "values")
        }
    }

    /// Reads the tensor's bytes from the file named by `external_data`.
    ///
    /// `location` must be a relative path that stays inside the model's folder, also after
    /// resolving symbolic links. `offset` defaults to 0. `length`, when given, must equal
    /// the byte count the dims call for. Only the tensor's bytes are read, after checking the
    /// file's size, so a file truncated or replaced later does not affect the values.
    private func externalPayload(byteCount: Int) throws(ONNXError) -> Payload {
        var location: String?
        var offset = 0
        var length: Int?
        for entry in externalData {
            switch entry.key {
            case "location":
                location = entry.value
            case "offset", "length":
                guard let number = Int(entry.value), number >= 0 else {
                    throw .invalidExternalData(
                        tensor: name, key: entry.key, value: entry.value,
                        reason: "expected a non-negative integer")
                }
                if entry.key == "offset" { offset = number } else { length = number }
            default:
                // "checksum" and any future keys do not change where the bytes are.
                continue
            }
        }

        let fileURL = try resolveExternalLocation(location)
        if let length, length != byteCount {
            throw .dataLengthMismatch(
                tensor: name, field: "external_data length", expected: byteCount, found: length,
                unit: "bytes")
        }
        let file: ByteStorage
        do {
            file = try ByteStorage(readingFileAt: fileURL, offset: offset, count: byteCount)
        } catch {
            switch error {
            case let .failed(_, reason):
                throw .externalDataFileUnreadable(tensor: name, file: fileURL.path, reason: reason)
            case let .tooShort(_, fileSize, needed):
                throw .externalDataFileTooShort(
                    tensor: name, file: fileURL.path, fileSize: fileSize, needed: needed)
            }
        }
        return Payload(storage: file, range: 0..<byteCount)
    }

    private func resolveExternalLocation(_ location: String?) throws(ONNXError) -> URL {
        guard let location, !location.isEmpty else {
            throw .invalidExternalData(
                tensor: name, key: "location", value: location ?? "",
                reason: "missing; expected a file path relative to the model's folder")
        }
        guard !location.hasPrefix("/") else {
            throw .invalidExternalData(
                tensor: name, key: "location", value: location,
                reason:
                    "absolute paths are not allowed; expected a path relative to the model's folder"
            )
        }
        guard !location.split(separator: "/").contains("..") else {
            throw .invalidExternalData(
                tensor: name, key: "location", value: location,
                reason: "'..' is not allowed; expected a path inside the model's folder")
        }
        guard let directory = externalDataDirectory else {
            throw .invalidExternalData(
                tensor: name, key: "location", value: location,
                reason: "the model was not read from a file, so there is no folder to look in")
        }
        let fileURL = directory.appendingPathComponent(location)
        // A symbolic link inside the folder could still point out of it.
        let resolvedFolder = directory.resolvingSymlinksInPath().standardizedFileURL.path
        let resolvedFile = fileURL.resolvingSymlinksInPath().standardizedFileURL.path
        guard resolvedFile != resolvedFolder else {
            // Such as "." or "sub/..": checked apart from the prefix test below, which would
            // call the folder itself "outside the model's folder".
            throw .invalidExternalData(
                tensor: name, key: "location", value: location,
                reason: "it names the model's folder '\(resolvedFolder)' itself; expected a file inside it")
        }
        guard
            resolvedFile.hasPrefix(
                resolvedFolder.hasSuffix("/") ? resolvedFolder : resolvedFolder + "/")
        else {
            throw .invalidExternalData(
                tensor: name, key: "location", value: location,
                reason:
                    "it resolves to '\(resolvedFile)', outside the model's folder '\(resolvedFolder)'"
            )
        }
        return fileURL
    }

    // MARK: Little-endian decoding

    private static func decodeFloat32(_ bytes: UnsafeRawBufferPointer, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initializedCount in
            #if _endian(little)
                UnsafeMutableRawBufferPointer(buffer).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: bytes[0..<(count * 4)]))
            #else
                for index in 0..<count {
                    buffer[index] = Float(bitPattern: loadUInt32(bytes, index: index))
                }
            #endif
            initializedCount = count
        }
    }

    private static func loadUInt32(_ bytes: UnsafeRawBufferPointer, index: Int) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self))
    }

    private static func loadUInt64(_ bytes: UnsafeRawBufferPointer, index: Int) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))
    }
}
