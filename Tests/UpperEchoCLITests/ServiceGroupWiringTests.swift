import Logging
import Reactor
import Selectors
import Testing

@testable import upper_echo

extension UpperEchoCLITests {
    /// How `--api async` wires its servers to its `ServiceGroup`, in process.
    @Suite struct ServiceGroupWiring {
        @Test("the servers and their ServiceGroup are freed once the run lets go of them: no cycle between them")
        func serversAndServiceGroupAreFreed() throws {
            let group = try LoopGroup(loops: 1, selector: { try EpollSelector<Int>() }) { _, _ in }
            defer {
                group.stop()
                try? group.join()
            }
            weak var servers: GroupServers?
            weak var services: AnyObject?
            do {
                let made = GroupServers(1, logger: Logger(label: "upper-echo"))
                let serviceGroup = made.serviceGroup(running: group)
                servers = made
                services = serviceGroup
                #expect(made.onFirstSignal != nil, "the first signal does not reach the service group")
            }
            // A cycle kept both alive after the run, and LeakSanitizer
            // failed the process at exit.
            #expect(servers == nil, "the servers outlive their run")
            #expect(services == nil, "the service group outlives its run")
        }
    }
}
