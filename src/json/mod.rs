//! JSON text handled by hand where serde's generic path costs the most per alert: reading an
//! alert's members in one checked pass (`scan`), and writing events (`writer`), both built on
//! one sixteen-bytes-at-a-time string scan (`escape`); finding where a streamed alert ends 64
//! bytes at a time (`blocks`). Everything here is pure.

pub mod blocks;
mod compact;
pub mod escape;
pub mod scan;
pub mod text_slot;
pub mod writer;

#[cfg(test)]
mod scan_tests;

pub use compact::compact;
pub use writer::JsonWriter;
