//! Hugo sites as they are: their [config], the front matter keys Hugo gives meaning to
//! ([front_matter]), leaf bundles. Shortcodes are [`crate::shortcodes`]'.

pub mod aliases;
pub mod config;
pub mod front_matter;
