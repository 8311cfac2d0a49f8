//! Executables the harness starts beside the in-process server.

/// This package's `render-helper` binary (render_helper.rs), which the in-process server
/// starts to render prompt templates. Test executables live in `target/<profile>/deps/`, the
/// package's binaries one level up.
pub fn render_helper() -> std::path::PathBuf {
    let me = std::env::current_exe().expect("test executable path");
    me.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("render-helper"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("no render-helper binary next to {}", me.display()))
}
