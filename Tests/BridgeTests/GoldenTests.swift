import Bridge
import FoundationEssentials
import Testing

/// Decodes `data` as `T` and re-encodes it the way its sender would.
private func roundTrip<T: Codable>(_ type: T.Type, _ data: Data) throws -> Data {
    let value = try BridgeJSON.decoder.decode(T.self, from: data)
    if let response = value as? any BridgeResponse { return try response.wireBody() }
    return try BridgeJSON.encode(value)
}

/// The message type each fixture holds, chosen by file name.
private func reencode(_ name: String, _ data: Data) throws -> Data {
    let isRequest = name.contains(".request")
    switch name {
    case _ where name.hasPrefix("negotiate-protocol"):
        return isRequest ? try roundTrip(NegotiateProtocolRequest.self, data) : try roundTrip(NegotiateProtocolResponse.self, data)
    case _ where name.hasPrefix("create-container"):
        return isRequest ? try roundTrip(CreateContainerRequest.self, data) : try roundTrip(CreateContainerResponse.self, data)
    case _ where name.hasPrefix("start-container"):
        return isRequest ? try roundTrip(StartContainerRequest.self, data) : try roundTrip(EmptyResponse.self, data)
    case _ where name.hasPrefix("execute-process"):
        return isRequest ? try roundTrip(ExecuteProcessRequest.self, data) : try roundTrip(ExecuteProcessResponse.self, data)
    case _ where name.hasPrefix("wait-for-process"):
        return isRequest ? try roundTrip(WaitForProcessRequest.self, data) : try roundTrip(WaitForProcessResponse.self, data)
    case _ where name.hasPrefix("signal-process"):
        return isRequest ? try roundTrip(SignalProcessRequest.self, data) : try roundTrip(EmptyResponse.self, data)
    case _ where name.hasPrefix("resize-console"):
        return isRequest ? try roundTrip(ResizeConsoleRequest.self, data) : try roundTrip(EmptyResponse.self, data)
    case _ where name.hasPrefix("get-properties"):
        return isRequest ? try roundTrip(GetPropertiesRequest.self, data) : try roundTrip(GetPropertiesResponse.self, data)
    case _ where name.hasPrefix("modify-settings"):
        return isRequest ? try roundTrip(ModifySettingsRequest.self, data) : try roundTrip(EmptyResponse.self, data)
    case _ where name.hasPrefix("dump-stacks"):
        return isRequest ? try roundTrip(DumpStacksRequest.self, data) : try roundTrip(DumpStacksResponse.self, data)
    case "shutdown-graceful.request.json":
        return try roundTrip(ShutdownGracefulRequest.self, data)
    case "shutdown-forced.request.json":
        return try roundTrip(ShutdownForcedRequest.self, data)
    case _ where name.hasPrefix("delete-container-state"):
        return isRequest ? try roundTrip(DeleteContainerStateRequest.self, data) : try roundTrip(EmptyResponse.self, data)
    case _ where name.hasPrefix("update-container"):
        return try roundTrip(UpdateContainerRequest.self, data)
    case "error.container-not-found.response.json":
        return try roundTrip(ExecuteProcessResponse.self, data)
    case _ where name.hasPrefix("error.") || name.hasPrefix("shutdown"):
        return try roundTrip(EmptyResponse.self, data)
    case "container-notification.json":
        return try roundTrip(ContainerNotification.self, data)
    default:
        throw BridgeError(.fail, "no type for fixture \(name)")
    }
}

@Suite("Golden fixtures", .timeLimit(.minutes(5)))
struct GoldenTests {
    @Test("every fixture is present and listed in the README table")
    func inventory() throws {
        #expect(Fixtures.names.count == 63)
        #expect(Fixtures.headerRows.count == 63)
        #expect(Set(Fixtures.headerRows.map(\.file)) == Set(Fixtures.names))
    }

    @Test("decodes into our types and re-encodes to an equal JSON value", arguments: Fixtures.names)
    func roundTrips(name: String) throws {
        let original = try Fixtures.data(name)
        let again = try reencode(name, original)
        #expect(try jsonValue(again) == jsonValue(original), "\(name): \(String(decoding: again, as: UTF8.self))")
    }

    @Test("header bytes match the README hex", arguments: Fixtures.headerRows)
    func headers(row: Fixtures.HeaderRow) throws {
        let body = try Fixtures.bytes(row.file)
        #expect(row.size == body.count + 16)
        let header = FrameHeader(type: MessageIdentifier(row.identifier), size: UInt32(body.count + 16), id: row.id)
        #expect(header.bytes == row.headerHex)
        // And the reader parses header + body back.
        let reader = FrameReader()
        (header.bytes + body).withUnsafeBytes { reader.append($0) }
        let frame = try #require(try reader.nextFrame())
        #expect(frame.header == header)
        #expect(Array(frame.body) == body)
    }

    @Test("embedded documents round-trip through their types")
    func embeddedDocuments() throws {
        for name in ["create-container.sandbox.request.json", "create-container.workload.request.json"] {
            let request = try BridgeJSON.decoder.decode(CreateContainerRequest.self, from: Fixtures.data(name))
            let settings = try request.settings()
            #expect(try jsonValue(BridgeJSON.encode(settings)) == jsonValue(request.containerConfig))
            #expect(settings.ociSpecification?["annotations"]?["io.kubernetes.cri.container-type"] != nil)
        }
        for name in Fixtures.names where name.hasPrefix("execute-process") && name.contains(".request") {
            let request = try BridgeJSON.decoder.decode(ExecuteProcessRequest.self, from: Fixtures.data(name))
            let parameters = try request.parameters()
            #expect(try jsonValue(BridgeJSON.encode(parameters)) == jsonValue(request.settings.processParameters), "\(name)")
        }
        for name in Fixtures.names where name.hasPrefix("get-properties") {
            if name.contains(".request") {
                let request = try BridgeJSON.decoder.decode(GetPropertiesRequest.self, from: Fixtures.data(name))
                #expect(try jsonValue(BridgeJSON.encode(request.decodedQuery())) == jsonValue(request.query))
            } else {
                let response = try BridgeJSON.decoder.decode(GetPropertiesResponse.self, from: Fixtures.data(name))
                #expect(try jsonValue(BridgeJSON.encode(response.document())) == jsonValue(response.properties))
            }
        }
    }

    @Test("uint64 cgroup values survive exactly")
    func uint64Exact() throws {
        let response = try BridgeJSON.decoder.decode(GetPropertiesResponse.self, from: Fixtures.data("get-properties.statistics.response.json"))
        let metrics = try #require(try response.document().lcowMetrics)
        #expect(metrics["memory"]?["hierarchical_swap_limit"] == .uint(18_446_744_073_709_551_615))
        let text = String(decoding: try BridgeJSON.encode(response.document()), as: UTF8.self)
        #expect(text.contains("18446744073709551615"))
    }

    @Test("typed ModifySettings settings match the resource type")
    func modifySettingsTyped() throws {
        let disk = try BridgeJSON.decoder.decode(ModifySettingsRequest.self, from: Fixtures.data("modify-settings.mapped-virtual-disk-add-scratch.request.json"))
        guard case .mappedVirtualDisk(let settings) = disk.request.settings else { Issue.record("wrong case"); return }
        #expect(settings.lun == 0 && settings.controller == 0 && settings.ensureFilesystem && settings.filesystem == "ext4")
        let layers = try BridgeJSON.decoder.decode(ModifySettingsRequest.self, from: Fixtures.data("modify-settings.combined-layers-add-2.request.json"))
        guard case .combinedLayers(let combined) = layers.request.settings else { Issue.record("wrong case"); return }
        #expect(combined.layers.map(\.path) == ["/run/mounts/scsi/m2", "/run/layers/p1", "/run/layers/p0-1048576-75640832"])
        let pod = try BridgeJSON.decoder.decode(ModifySettingsRequest.self, from: Fixtures.data("modify-settings.pod-cgroup-memory-limit-update.request.json"))
        #expect(pod.request.settings == .podCgroupMemoryLimit)
    }
}
