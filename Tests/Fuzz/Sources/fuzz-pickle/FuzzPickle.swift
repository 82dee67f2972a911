// libFuzzer entry point for the pickle reader (Evaluation/PickleReader.swift) and the
// verification-set layout check on top of it (Evaluation/VerificationSet.swift).

import AuraFace

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPickle(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // A thrown PickleError is a correct outcome for a malformed stream.
    guard (try? PickleReader.decode(bytes, path: "fuzz.bin")) != nil else {
        return 0
    }
    do {
        _ = try VerificationSet(bytes: bytes, path: "fuzz.bin")
    } catch is VerificationSetError {
        // A pickle that is not (images, issame): a correct outcome.
    } catch {
        // The stream decoded above, so only the layout check may fail.
        preconditionFailure("VerificationSet threw \(type(of: error)): \(error)")
    }
    return 0
}
