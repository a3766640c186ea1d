def version() -> str:
    """The library version, e.g. "0.1.0" (the Rust core's, from Cargo.toml)."""
