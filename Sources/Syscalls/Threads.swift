// Threads: starting one, joining it, naming it, and the CPUs the process may
// run on.
import CEpollShim
import SystemPackage

/// A thread started by `system_thread_start`; join it exactly once.
package struct SystemThread: Sendable {
    fileprivate let id: pthread_t
}

/// The closure a new thread runs, handed to it through `pthread_create`'s
/// single pointer argument.
private final class ThreadBody {
    let body: () -> Void
    let name: String
    init(_ name: String, _ body: @escaping () -> Void) {
        self.name = name
        self.body = body
    }
}

/// Starts a thread named `name` (at most 15 bytes are kept) that runs
/// `body`. The corresponding C function is `pthread_create`.
package func system_thread_start(name: String, _ body: @escaping @Sendable () -> Void) -> Result<
    SystemThread, Errno
> {
    let context = Unmanaged.passRetained(ThreadBody(name, body)).toOpaque()
    var id = pthread_t()
    let result = pthread_create(
        &id, nil,
        { raw in
            let thread = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
            _ = cepoll_set_thread_name(thread.name)
            thread.body()
            return nil
        }, context)
    guard result == 0 else {
        Unmanaged<ThreadBody>.fromOpaque(context).release()
        return .failure(Errno(rawValue: result))
    }
    return .success(SystemThread(id: id))
}

/// Waits for `thread` to end. The corresponding C function is `pthread_join`.
package func system_thread_join(_ thread: SystemThread) {
    let result = pthread_join(thread.id, nil)
    precondition(result == 0, "pthread_join failed: \(result)")
}

/// How many CPUs the process may run on: its affinity mask (`taskset -c 0`
/// gives 1), never less than 1. The corresponding C function is
/// `sched_getaffinity`.
package func system_affinity_cpu_count() -> Int {
    max(Int(cepoll_affinity_cpu_count()), 1)
}
