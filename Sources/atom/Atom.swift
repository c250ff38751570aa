import AtomCLI

/// The `atom` executable: everything lives in AtomCLI.
@main
extension AtomCommand {}
