//! Generators that live outside this process (contract §2): an external
//! command speaking the generator protocol, or a directory of recorded rules.

mod external;
mod recorded;

pub use external::{Command, DEFAULT_TIMEOUT, OUTPUT_LIMIT};
pub use recorded::RecordedDir;
