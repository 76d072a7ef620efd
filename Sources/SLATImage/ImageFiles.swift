import Foundation
import SLATCore

/// The files `slat build` writes into its output directory:
/// `tables.bin`, `registers.env`, `registers.json` and `mappings.json`.
public enum ImageFiles {
    /// `mappings.json`: the format, the mappings as parsed and the leaves written.
    public static func mappingsJSON(_ image: BuiltImage) throws(ImageError) -> String {
        let format = try image.configuration.makeFormat()
        let mappings: [JSONValue] = image.requests.map { request in
            var object = JSONValue.object([
                ("line", .number(request.line)),
                ("guest", .string(NumberSyntax.hex(request.guest))),
                ("size", .string(NumberSyntax.hex(request.size))),
                ("output", .string(NumberSyntax.hex(request.output.rawValue))),
                ("permissions", .string(request.permissions.description)),
                ("memoryType", .string(format.name(of: request.memoryType))),
                ("accessed", .bool(request.accessed)),
                ("dirty", .bool(request.dirty)),
            ])
            if let level = request.maximumLevel {
                object.append("leaf", .string(NumberSyntax.size(format.geometry.entrySize(atLevel: level))))
            }
            if request.ignorePAT { object.append("ipat", .bool(true)) }
            return object
        }
        let leaves: [JSONValue] = zip(image.leaves, image.leafEntries).map { leaf, entry in
            .object([
                ("guest", .string(NumberSyntax.hex(leaf.guestAddress.rawValue))),
                ("size", .string(NumberSyntax.size(leaf.size))),
                ("output", .string(NumberSyntax.hex(leaf.output.rawValue))),
                ("level", .number(format.architecturalLevel(leaf.level))),
                ("permissions", .string(leaf.attributes.permissions.description)),
                ("memoryType", .string(format.name(of: leaf.attributes.memoryType))),
                ("accessed", .bool(leaf.attributes.accessed)),
                ("dirty", .bool(leaf.attributes.dirty)),
                ("entry", .string(NumberSyntax.hex(entry, width: 16))),
            ])
        }
        let document = JSONValue.object([
            ("format", .string(image.configuration.kind.rawValue)),
            ("base", .string(NumberSyntax.hex(image.configuration.base))),
            ("root", .string(NumberSyntax.hex(image.root))),
            ("tableBytes", .number(image.bytes.count)),
            ("mappings", .array(mappings)),
            ("leaves", .array(leaves)),
        ])
        return document.rendered() + "\n"
    }

    /// Writes the four files of `image` into `directory` (created if missing).
    ///
    /// - Throws: ``ImageError/buildFailed(_:)`` naming the file that could not be written.
    public static func write(_ image: BuiltImage, to directory: String) throws(ImageError) {
        let registers = try image.registers()
        let mappings = try mappingsJSON(image)
        let url = URL(fileURLWithPath: directory, isDirectory: true)
        let files: [(String, Data)] = [
            ("tables.bin", Data(image.bytes)),
            ("registers.env", Data(registers.environmentText.utf8)),
            ("registers.json", Data(registers.jsonText.utf8)),
            ("mappings.json", Data(mappings.utf8)),
        ]
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw .buildFailed("cannot create directory \(directory): \(error.localizedDescription)")
        }
        for (name, data) in files {
            let file = url.appendingPathComponent(name)
            do {
                try data.write(to: file)
            } catch {
                throw .buildFailed("cannot write \(file.path): \(error.localizedDescription)")
            }
        }
    }
}
