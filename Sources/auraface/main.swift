// The auraface program. The subcommands live in the AuraFaceCLI library so tests can run them
// in-process; this file only forwards the arguments and the exit status.

import AuraFaceCLI
import Foundation

let status = AuraFaceCommandLine.run(Array(CommandLine.arguments.dropFirst()), console: .standardStreams())
exit(status)
