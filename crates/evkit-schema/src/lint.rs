//! Schema lint: mistakes that validators silently accept.
//!
//! The service evkit replaces had `minValue` and `format: int` in a schema: validators ignore both,
//! so its ids were floats. Lint finds these before they ship.
