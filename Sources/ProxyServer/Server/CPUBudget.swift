internal import Foundation
internal import NIOCore

/// How many worker event loops to run when `--concurrency` is not given: the CPUs this process may really
/// use — the cgroup v2 quota (`cpu.max`, rounded up) when one is set, else the online CPU count. More loops
/// than allotted CPUs only add tail latency (proxy-performance.md, rule 6).
enum CPUBudget {
  static func workerCount(cgroupFile: String = "/sys/fs/cgroup/cpu.max") -> Int {
    let cores = System.coreCount
    guard let text = try? String(contentsOfFile: cgroupFile, encoding: .utf8) else { return cores }
    return workerCount(cpuMax: text, cores: cores)
  }

  /// `cpu.max` is "<quota> <period>" or "max <period>".
  static func workerCount(cpuMax: String, cores: Int) -> Int {
    let fields = cpuMax.split(whereSeparator: \.isWhitespace)
    guard fields.count == 2, let quota = Double(fields[0]), let period = Double(fields[1]), period > 0 else {
      return cores
    }
    return max(1, min(cores, Int((quota / period).rounded(.up))))
  }
}
