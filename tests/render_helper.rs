//! The template render helper for the in-process test server. Test executables are not
//! agentry, so the harness points `Config::render_helper` here: the same helper code that
//! `agentry --render-helper` runs.

fn main() -> std::process::ExitCode {
    agentry::prompt::helper::main()
}
