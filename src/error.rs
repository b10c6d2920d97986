//! The crate's error type.

#[cfg(any(
    feature = "vision",
    feature = "files",
    feature = "train",
    feature = "charts"
))]
use std::path::PathBuf;

/// Everything a user can get wrong, or that can go wrong at run time, in `burn-distill`.
///
/// Each variant carries the offending value so that the message alone is enough to find the
/// mistake. Shape mismatches between tensors handed to a `forward`-style call are reported
/// as [`Error::ShapeMismatch`] where the call returns a `Result`, and as a panic naming
/// both shapes where it cannot (documented under `# Panics` on each such function).
///
/// # What each bad input gives
///
/// Every case below is exercised in `tests/suite/bad_input.rs` (data parsers and weights files
/// also in `tests/suite/data.rs`, `tests/suite/pytorch.rs` and, on random bytes, `tests/suite/properties.rs`).
///
/// | Bad input | Where it is caught | What you get |
/// |---|---|---|
/// | Empty teacher list | [`DistillerConfig::init`], [`TeacherSelectorConfig::init`] | [`Error::NoTeachers`] |
/// | Teachers with different class counts | [`DistillerConfig::init`] | [`Error::ClassCountMismatch`] naming both teachers and counts |
/// | Student with another class count | [`DistillerConfig::init`] | [`Error::StudentClassMismatch`] |
/// | Student and teacher expose different numbers of features (maps, vectors or sequences) | [`DistillerConfig::init`] | [`Error::FeatureCountMismatch`] |
/// | Samples of another shape than a model declares (`input_shape`: the zoo's models, a `FeatureModel` or `FrozenTeacher::with_input_shape`) | [`Distiller::forward`] | [`Error::InputShape`] naming the student or the teacher and both shapes; a model that declares nothing fails inside Burn with Burn's panic |
/// | A teacher map whose channels do not match its adapter | [`Distiller::forward`] | [`Error::ShapeMismatch`] naming teacher, map and both shapes |
/// | A student map with other channels than its adapter | [`FeatureAdapter::forward`] | panic naming both channel counts |
/// | Batch sizes differ between student, teachers and labels | [`Distiller::forward`], [`TeacherSelector::select`] | [`Error::ShapeMismatch`] with both shapes |
/// | Labels `>= C` or negative | [`Distiller::forward`] (before the first `Distiller::advance`, then every [`DistillerConfig::check_every`]-th optimizer step), [`Distiller::check_batch`] | [`Error::LabelOutOfRange`] with the smallest and largest label |
/// | NaN or ±Inf in the input batch | as above (found through the outputs, then the inputs are read to tell the cause) | [`Error::NonFinite`] naming the input batch |
/// | NaN or ±Inf in teacher logits or features, or in the student's logits | as above | [`Error::NonFinite`] naming the tensor |
/// | Temperature `<= 0` or NaN, `tau <= 0` | [`DistillationLossConfig::init`], [`TeacherSelectorConfig::init`] | [`Error::InvalidConfig`] with field and value |
/// | Negative or NaN loss weights (also DKD's) | [`DistillationLossConfig::init`] | [`Error::InvalidConfig`] |
/// | `TopK(0)`, `TopK(k > K)`, NaN or negative `MaxCrossEntropy` | [`TeacherSelectorConfig::init`] | [`Error::InvalidConfig`] |
/// | `Fixed` weights of the wrong length, negative, non-finite or all zero | [`TeacherSelectorConfig::init`] | [`Error::InvalidConfig`] |
/// | Adapter with 0 channels, ResNet depth not `6n + 2` | `init` of the config | [`Error::InvalidConfig`] |
/// | `FeatureTarget::Mixture` with teachers whose features differ in kind or channels | [`DistillerConfig::init`] | [`Error::InvalidConfig`] naming both teachers |
/// | A batch on a device a teacher cannot be placed on | [`Distiller::forward`] (a distiller forked to that device), `Teacher::to_device` | [`Error::TeacherPlacement`] naming the teacher and the device |
/// | A config file with unknown fields, wrong types, or not JSON | [`crate::files::load_config`] | [`Error::ConfigFile`] naming the file and field |
/// | A CIFAR file that is truncated or of the wrong size | [`crate::data::parse_cifar`], [`crate::data::load_cifar`] | [`Error::TruncatedFile`] naming the file and record |
/// | An IDX file with a wrong magic number, wrong size or truncated | [`crate::data::parse_idx_images`], [`crate::data::parse_idx_labels`] | [`Error::InvalidFormat`] naming the file |
/// | Labels out of range in a CIFAR or IDX file | the same parsers | [`Error::CorruptRecord`] naming the file and record |
/// | A CIFAR PNG folder with a corrupt PNG, an image that is not 32x32, or the wrong number of class folders | [`crate::data::load_cifar_image_folder`] | [`Error::InvalidFormat`] naming the file or folder |
/// | A failed download (offline, HTTP error, short transfer, wrong MD5) | `download::download`, `download::fetch_cifar` (feature `download`) | [`Error::Download`] naming the URL, the cause and where to put the file by hand |
/// | Missing data files | [`crate::data::load_cifar`], [`crate::data::load_cifar_image_folder`], [`crate::data::load_fashion_mnist`] | [`Error::MissingData`] saying where to get them |
/// | A checkpoint of another architecture, a weights file with missing keys or wrong shapes, or not a weights file | [`crate::files::load_weights`] | [`Error::Weights`] naming the file and parameters |
/// | An output path that cannot be written | [`crate::files::save_weights`] | [`Error::Io`] naming the path; an earlier file there is left intact |
///
/// Label and finiteness checks need a copy from the device, so [`Distiller::forward`]
/// makes them only on checked steps; the example additionally checks every teacher on
/// the test set when it loads it (pre-screening).
///
/// [`DistillerConfig::init`]: crate::DistillerConfig::init
/// [`DistillerConfig::check_every`]: crate::DistillerConfig::check_every
/// [`TeacherSelectorConfig::init`]: crate::TeacherSelectorConfig::init
/// [`TeacherSelector::select`]: crate::TeacherSelector::select
/// [`Distiller::forward`]: crate::Distiller::forward
/// [`Distiller::check_batch`]: crate::Distiller::check_batch
/// [`FeatureAdapter::forward`]: crate::FeatureAdapter::forward
/// [`DistillationLossConfig::init`]: crate::DistillationLossConfig::init
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

    /// A batch's samples are not of the shape a model declares it takes
    /// ([`crate::FeatureModel::input_shape`], [`crate::Teacher::input_shape`]).
    #[error("{model} takes samples of shape {expected}, but the batch's samples are {found:?}")]
    InputShape {
        /// Which model: `the student` or `teacher 1 (vgg13)`.
        model: String,
        /// The shape it declares.
        expected: crate::InputShape,
        /// The shape of the batch's samples (without the batch dimension).
        found: Vec<usize>,
    },

    /// The student predicts a different number of classes than the teachers.
    #[error("the student has {student} classes but the teachers have {teachers}")]
    StudentClassMismatch {
        /// Student class count.
        student: usize,
        /// Teachers' class count.
        teachers: usize,
    },

    /// Student and a teacher expose a different number of features.
    #[error(
        "feature-count mismatch: the student gives {} but teacher {index} ({name}) gives {}",
        count(*student, "feature"),
        count(*teacher, "feature")
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

    /// A student feature and the teacher feature it is paired with are of different kinds
    /// (a vector against a map, ...): no adapter maps one onto the other.
    #[error(
        "feature kinds cannot be paired: student feature {feature} is a {student} but feature \
         {feature} of teacher {index} ({name}) is a {teacher}; expose features of the same kind \
         at the same position"
    )]
    FeatureKindMismatch {
        /// Position of the feature in the models' feature lists.
        feature: usize,
        /// Index of the teacher.
        index: usize,
        /// Name of the teacher.
        name: String,
        /// Kind of the student's feature.
        student: crate::FeatureKind,
        /// Kind of the teacher's feature.
        teacher: crate::FeatureKind,
    },

    /// A model does not declare its features' kinds and channel counts, and no probe batch
    /// was given to read them from.
    #[error(
        "{model} does not declare its feature specs: return them from feature_specs(), or \
         build the distiller with DistillerConfig::init_with_probe to read them from a batch"
    )]
    FeatureSpecsUnknown {
        /// `student` or `teacher K (name)`.
        model: String,
    },

    /// A teacher could not be placed on a device (a device that cannot hold its weights, or a
    /// teacher type that cannot move).
    #[error("cannot place teacher {teacher} on {device}: {reason}")]
    TeacherPlacement {
        /// The teacher's name.
        teacher: String,
        /// The device, as Burn names it.
        device: String,
        /// Why.
        reason: String,
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

    /// Labels outside `0..classes` (negative, or not smaller than the class count).
    #[error(
        "labels out of range: the batch has labels from {min} to {max}, but they must be in \
         0..{classes}"
    )]
    LabelOutOfRange {
        /// Smallest label in the batch.
        min: i64,
        /// Largest label in the batch.
        max: i64,
        /// Number of classes.
        classes: usize,
    },

    /// NaN or infinite values where finite numbers are needed.
    #[error("non-finite values (NaN or ±Inf) in {what}")]
    NonFinite {
        /// Which tensor, e.g. `teacher 1 (vgg13) logits`.
        what: String,
    },

    /// A weights file or checkpoint does not fit the model: another architecture, missing
    /// parameters, wrong shapes, or not a weights file at all.
    #[cfg(feature = "files")]
    #[error("cannot load {path} into the {model}: {reason}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// What it was loaded into.
        model: String,
        /// What does not fit.
        reason: String,
    },

    /// A configuration file has unknown fields, values of the wrong type, or is not JSON.
    #[cfg(feature = "files")]
    #[error("config file {path}: {reason}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A download failed: no connection, an HTTP error, a short transfer or a wrong
    /// checksum. Nothing half-written is left where data is looked for.
    #[cfg(feature = "download")]
    #[error(
        "download of {url} failed: {cause}. Check the connection, or download the file by hand \
         and put it at {dest}"
    )]
    Download {
        /// The address.
        url: String,
        /// What went wrong.
        cause: String,
        /// Where the file was to be saved (and where to put it by hand).
        dest: PathBuf,
    },

    /// A chart could not be drawn or written.
    #[cfg(feature = "charts")]
    #[error("cannot draw the chart {path}: {reason}")]
    Chart {
        /// The PNG file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A run folder's checkpoint was made with another configuration than the one asked to
    /// resume from it ([`crate::experiment::resume_point`]).
    #[cfg(all(feature = "files", feature = "train"))]
    #[error(
        "the checkpoint in {dir} was made with another configuration ({saved}); refusing to resume \
         from it with {given}. Use another output folder or start afresh"
    )]
    ResumeMismatch {
        /// The run folder.
        dir: PathBuf,
        /// What its `run.json` says the checkpoint was made with.
        saved: String,
        /// What the resume asked for.
        given: String,
    },

    /// A data file (or a run's burn-train logs) is missing.
    #[cfg(any(feature = "vision", feature = "files", feature = "train"))]
    #[error("data file {path} not found: {hint}")]
    MissingData {
        /// The file that was looked for.
        path: PathBuf,
        /// Where to get it.
        hint: String,
    },

    /// A data file is not a whole number of records: truncated, or not the expected format.
    #[cfg(feature = "vision")]
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
    #[cfg(feature = "vision")]
    #[error("{path} is not a valid file of the expected format: {reason}")]
    InvalidFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A record in a data file holds an impossible value.
    #[cfg(feature = "vision")]
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
    #[cfg(any(feature = "vision", feature = "files"))]
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

/// `1 feature`, `2 features`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
