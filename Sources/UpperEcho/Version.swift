/// The version of upper-echo, which `upper-echo --version` prints after the
/// program's name. The one place it is written.
public let upperEchoVersion = "0.1.0"
