// swift-tools-version:5.4
// libFuzzer targets for swift-zmtp. Kept at tools version 5.4 on purpose: with later tools versions
// SwiftPM renames the executable's entry point and `-sanitize=fuzzer` fails to link
// (../../shared/TOOLCHAIN.md). Build and run with ./run.sh TARGET SECONDS.
//
// Each target is a one-line shim over a harness in the root package's ZMTPFuzzing module, which the
// unit tests also use to replay Corpus/ and FailCases/.
import PackageDescription

let targets = ["FuzzFrameDecoder", "FuzzHandshakeServer", "FuzzHandshakeClient", "FuzzMetadata", "FuzzCommand", "FuzzZ85",
               "FuzzCurveServer", "FuzzCurveClient", "FuzzCurveMessage", "FuzzZAP"]

let package = Package(
    name: "swift-zmtp-fuzz",
    dependencies: [
        .package(name: "swift-zmtp", path: ".."),
    ],
    targets: targets.map { name in
        .executableTarget(name: name, dependencies: [.product(name: "ZMTPFuzzing", package: "swift-zmtp")])
    }
)
