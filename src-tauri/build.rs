// tauri-build reads `tauri.conf.json` from the package root (the repo root),
// embeds the icons, and resolves the capabilities inlined under
// `app.security.capabilities` (there is no `capabilities/` folder).
fn main() {
    tauri_build::build()
}
