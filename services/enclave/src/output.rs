//! The command line's standard output. A reader that stops early (`enclave
//! catalog --json | head`) closes the pipe: the command then ends quietly,
//! as Unix tools do, instead of panicking inside `println!`.

use std::fmt::Arguments;
use std::io::{ErrorKind, Write};

/// Writes `text` to standard output. A closed pipe ends the process with
/// success; any other failure to write ends it with an error.
pub(crate) fn write(text: Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let Err(error) = out.write_fmt(text).and_then(|()| out.flush()) else {
        return;
    };
    if error.kind() == ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {error}");
    std::process::exit(1);
}

/// `println!` through [`write()`].
macro_rules! outln {
    () => {
        $crate::output::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` through [`write()`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*))
    };
}
