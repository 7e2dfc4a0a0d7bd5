//! The browser playground (to be written).
