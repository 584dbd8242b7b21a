//! Exit codes of vardr-init itself (the child's own status passes through unchanged).

/// Any other failure of vardr-init.
pub const FAILURE: u8 = 1;
/// Bad usage or configuration: nothing was started.
pub const USAGE: u8 = 2;
/// The command exists but cannot be executed (the shell's and tini's convention).
pub const NOT_EXECUTABLE: u8 = 126;
/// The command does not exist.
pub const NOT_FOUND: u8 = 127;
