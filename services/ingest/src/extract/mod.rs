//! Parsers of the identified extract formats (see docs/extract-formats.md).
