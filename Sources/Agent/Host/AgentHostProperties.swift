import Bridge
import Logging

/// GetProperties and ModifySettings, apart from the lifecycle requests: they read a
/// container's cgroup and runc's view of it, or change its limits.
extension AgentHost {
    public func getProperties(_ request: GetPropertiesRequest, query: PropertyQuery) async throws -> PropertiesDocument {
        guard request.base.containerId != uvmContainerID else {
            throw BridgeError(.fail, "GetProperties is not supported for the utility VM")
        }
        let container = try container(request.base.containerId)
        var document = PropertiesDocument()
        for type in query.propertyTypes {
            switch type {
            case PropertyQuery.processList:
                document.processList = try await container.processList().compactMap { UInt32(exactly: $0) }.map(ProcessDetails.init)
            case PropertyQuery.statistics:
                document.lcowMetrics = try ContainerPreparation.statistics(cgroupsPath: container.spec["linux"]?["cgroupsPath"])
            default:
                // Ignored, as the Go guest does (bridge-protocol §8.9): the host may ask for more
                // than a Linux guest has.
                logger.info("GetProperties: property type ignored", metadata: ["type": "\(type)", "container": "\(request.base.containerId)"])
            }
        }
        return document
    }

    /// ModifySettings (§7.10). Addressed to a container, only `ContainerConstraints` is
    /// accepted (the container is looked up first, as the Go guest does); addressed to the VM,
    /// `ContainerConstraints` looks the VM up as a container, which fails. Storage and network
    /// resources are not implemented yet: a clear error, never a silent success.
    public func modifySettings(_ request: ModifySettingsRequest) async throws {
        let resource = request.request.resourceType
        if request.base.containerId != uvmContainerID {
            let container = try container(request.base.containerId)
            guard case .containerConstraints(let constraints) = request.request.settings else {
                throw BridgeError(.fail, "the ResourceType \"\(resource)\" is not supported for containers")
            }
            try await container.update(resources: constraints.linux)
            return
        }
        switch request.request.settings {
        case .containerConstraints:
            throw BridgeError(.systemNotFound, "container \(uvmContainerID) not found")  // the VM is no container
        case .podCgroupMemoryLimit:
            let requestType = request.request.effectiveRequestType
            guard requestType == "Update" else { throw BridgeError(.fail, "the RequestType \"\(requestType)\" is not supported") }
            let limit = try podsCgroup.refresh()
            logger.info("pods memory limit", metadata: ["cgroup": "\(podsCgroup.path)", "limit": "\(limit)"])
            return
        default:
            break
        }
        throw BridgeError(.fail, "ModifySettings of resource type \(resource.isEmpty ? "(none)" : resource) is not supported by this guest yet")
    }
}
