"""The scenario schema and its loading from TOML: what a user may write, checked."""
