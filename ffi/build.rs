//! Gives the shared library a versioned SONAME (`libjournalkeeper.so.<major>`), so programs
//! linked against it keep working across compatible releases. `make` creates the symlinks.

fn main() {
    let major =
        std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets CARGO_PKG_VERSION_MAJOR");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libjournalkeeper.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
