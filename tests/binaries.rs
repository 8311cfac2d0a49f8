//! Executables the harness starts beside the in-process server.

/// This package's `render-helper` binary (render_helper.rs), which the in-process server
/// starts to render prompt templates. Test executables live in `target/<profile>/deps/`, the
/// package's binaries one level up.
pub fn render_helper() -> std::path::PathBuf {
    binary("render-helper")
}

/// This package's `agentry-cli` binary (agentry_cli.rs): the agentry command line, for real
/// `agentry worker` processes.
pub fn agentry_cli() -> std::path::PathBuf {
    binary("agentry-cli")
}

fn binary(name: &str) -> std::path::PathBuf {
    let me = std::env::current_exe().expect("test executable path");
    me.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("no {name} binary next to {}", me.display()))
}
