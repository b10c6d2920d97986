//! The crate's error type.

use std::path::PathBuf;

/// Everything a user can get wrong, or that can go wrong at run time, in `burn-distill`.
///
/// Each variant carries the offending value so that the message alone is enough to find the
/// mistake. Shape mismatches between tensors handed to a `forward`-style call are reported
/// as [`Error::ShapeMismatch`] where the call returns a `Result`, and as a panic naming
/// both shapes where it cannot (documented under `# Panics` on each such function).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The teacher list is empty: distillation needs at least one teacher.
    #[error("no teachers given: distillation needs at least one teacher")]
    NoTeachers,

    /// Two teachers predict a different number of classes.
    #[error(
        "teachers disagree on the number of classes: teacher 0 ({first}) has {expected}, \
         teacher {index} ({name}) has {found}"
    )]
    ClassCountMismatch {
        /// Name of the first teacher, whose class count is the reference.
        first: String,
        /// Class count of the first teacher.
        expected: usize,
        /// Index of the disagreeing teacher.
        index: usize,
        /// Name of the disagreeing teacher.
        name: String,
        /// Its class count.
        found: usize,
    },

    /// The student predicts a different number of classes than the teachers.
    #[error("the student has {student} classes but the teachers have {teachers}")]
    StudentClassMismatch {
        /// Student class count.
        student: usize,
        /// Teachers' class count.
        teachers: usize,
    },

    /// Student and a teacher expose a different number of feature maps.
    #[error(
        "feature-count mismatch: the student gives {student} feature maps but teacher {index} \
         ({name}) gives {teacher}"
    )]
    FeatureCountMismatch {
        /// Number of feature maps the student exposes.
        student: usize,
        /// Index of the teacher.
        index: usize,
        /// Name of the teacher.
        name: String,
        /// Number of feature maps that teacher exposes.
        teacher: usize,
    },

    /// A configuration value is out of its valid range.
    #[error("invalid config value {field} = {value}: {reason}")]
    InvalidConfig {
        /// The field, e.g. `temperature`.
        field: &'static str,
        /// The rejected value, formatted.
        value: String,
        /// What the value must satisfy.
        reason: &'static str,
    },

    /// Tensors given to one call do not have matching shapes.
    #[error("shape mismatch in {context}: expected {expected:?}, got {found:?}")]
    ShapeMismatch {
        /// What was being checked, e.g. `teacher 1 logits`.
        context: String,
        /// The shape that was expected.
        expected: Vec<usize>,
        /// The shape that was given.
        found: Vec<usize>,
    },

    /// A data file is missing.
    #[error("data file {path} not found: {hint}")]
    MissingData {
        /// The file that was looked for.
        path: PathBuf,
        /// Where to get it.
        hint: String,
    },

    /// A data file is not a whole number of records: truncated, or not the expected format.
    #[error(
        "{path} is truncated or not in the expected format: {bytes} bytes is not a whole, \
         non-zero number of {record_size}-byte records (record {record} is incomplete)"
    )]
    TruncatedFile {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        bytes: usize,
        /// The size of one record.
        record_size: usize,
        /// Index of the first incomplete record.
        record: usize,
    },

    /// A file is not in the expected format (wrong magic number, sizes that disagree with
    /// its header, corrupt compression).
    #[error("{path} is not a valid file of the expected format: {reason}")]
    InvalidFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A record in a data file holds an impossible value.
    #[error("{path}, record {record}: {reason}")]
    CorruptRecord {
        /// The file.
        path: PathBuf,
        /// Index of the record.
        record: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// Reading or writing a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Checks `value > 0` and finite, for a named config field.
pub(crate) fn check_positive(field: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidConfig {
            field,
            value: value.to_string(),
            reason: "must be a finite number greater than 0",
        })
    }
}

/// Checks `value >= 0` and finite, for a named config field.
pub(crate) fn check_non_negative(field: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidConfig {
            field,
            value: value.to_string(),
            reason: "must be a finite number greater than or equal to 0",
        })
    }
}
