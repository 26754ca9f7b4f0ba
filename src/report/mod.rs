//! Reports: the JSON record of a drill and its renderings (terminal, Markdown, HTML with an SVG
//! timeline, JUnit XML), and the compliance summary over stored records.

pub mod html;
pub mod junit;
pub mod markdown;
pub mod prediction;
pub mod summary;
pub mod svg;
pub mod terminal;
mod view;

#[cfg(test)]
mod tests;
