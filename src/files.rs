//! Files: strict configuration files and model weights in Burn, SafeTensors and PyTorch
//! formats, with typed errors.
//!
//! - [`load_config`] / [`load_config_over`]: a Burn [`Config`] from JSON that refuses
//!   unknown fields (a misspelt field would otherwise be ignored) and wrong types.
//! - [`load_weights`] / [`save_weights`]: weights by file extension — `.bpk` (Burn's
//!   burnpack record), `.safetensors`, and (load only) PyTorch `.pt` / `.pth` state dicts,
//!   also when saved inside a checkpoint as `{'model': state_dict}`. Loading checks that
//!   every parameter is present and has the right shape; saving writes a temporary file
//!   and renames it, so a crash never leaves a half-written file under the final name.
//!   Any Burn [`Module`] loads; PyTorch keys are used as they are unless remapped with
//!   [`load_weights_remapped`].
//! - [`save_json`]: any serialisable value as a JSON file, written the same safe way.
//! - [`PytorchLayout`]: how a model's parameter names map onto a PyTorch state dict, for
//!   [`load_weights_with_layout`]; the models in `crate::models` follow RepDistiller's
//!   `vgg.py` / `resnet.py`.

use std::path::{Path, PathBuf};

use burn::config::Config;
use burn::module::Module;
use burn::store::{ApplyResult, ModuleSnapshot, PytorchStore, SafetensorsStore};

use crate::error::Error;

/// Reads a configuration from a JSON file, refusing unknown fields and wrong types. Every
/// field must be present (as with Burn's [`Config::load`]); use [`load_config_over`] to
/// give only the fields that differ from a base configuration.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::ConfigFile`] when it is not JSON,
/// a value has the wrong type, a required field is missing, or a field is unknown (the
/// message names the field's path, e.g. `selector.tua`).
pub fn load_config<C: Config>(path: impl AsRef<Path>) -> crate::Result<C> {
    load(path.as_ref(), None)
}

/// Like [`load_config`], but fields missing from the file keep their values in `base`
/// (objects are merged field by field).
///
/// # Errors
/// As [`load_config`].
///
/// # Example
/// ```
/// use burn_distill::{DistillerConfig, Error, files::load_config_over};
///
/// let dir = std::env::temp_dir().join(format!("load-config-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("distiller.json");
/// std::fs::write(&path, r#"{"loss": {"temperature": 4.0}}"#).unwrap();
/// let config = load_config_over(&path, &DistillerConfig::new()).unwrap();
/// assert_eq!(config.loss.temperature, 4.0);
///
/// std::fs::write(&path, r#"{"loss": {"temprature": 4.0}}"#).unwrap();
/// let err = load_config_over(&path, &DistillerConfig::new()).unwrap_err();
/// assert!(matches!(err, Error::ConfigFile { .. }));
/// assert!(err.to_string().contains("loss.temprature"));
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
pub fn load_config_over<C: Config>(path: impl AsRef<Path>, base: &C) -> crate::Result<C> {
    load(path.as_ref(), Some(base))
}

fn load<C: Config>(path: &Path, base: Option<&C>) -> crate::Result<C> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    config_from_json(&text, base).map_err(|reason| Error::ConfigFile {
        path: path.to_path_buf(),
        reason,
    })
}

/// Parses a configuration from JSON text with the checks of [`load_config`] (over `base`
/// when given, as in [`load_config_over`]); the error is the reason, without a file name.
pub fn config_from_json<C: Config>(text: &str, base: Option<&C>) -> Result<C, String> {
    let given: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let merged = match base {
        Some(base) => {
            let mut merged =
                serde_json::to_value(base).map_err(|e| format!("cannot serialise: {e}"))?;
            merge(&mut merged, &given);
            merged
        }
        None => given.clone(),
    };
    let config: C = serde_json::from_value(merged)
        .map_err(|e| format!("does not match the configuration: {e}"))?;
    let known = serde_json::to_value(&config).map_err(|e| format!("cannot re-serialise: {e}"))?;
    let mut unknown = Vec::new();
    unknown_fields(&given, &known, "", &mut unknown);
    if unknown.is_empty() {
        Ok(config)
    } else {
        Err(format!(
            "unknown field{} {} (misspelt?)",
            if unknown.len() > 1 { "s" } else { "" },
            unknown.join(", ")
        ))
    }
}

/// Writes `given` over `base`: objects field by field, anything else replaced.
fn merge(base: &mut serde_json::Value, given: &serde_json::Value) {
    match (base, given) {
        (serde_json::Value::Object(base), serde_json::Value::Object(given)) => {
            for (key, value) in given {
                match base.get_mut(key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (slot, value) => *slot = value.clone(),
    }
}

/// Paths of the object keys in `given` that `known` (the parsed config written back) lacks.
fn unknown_fields(
    given: &serde_json::Value,
    known: &serde_json::Value,
    prefix: &str,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (given, known) {
        (Value::Object(given), Value::Object(known)) => {
            for (key, value) in given {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match known.get(key) {
                    Some(known_value) => unknown_fields(value, known_value, &path, out),
                    None => out.push(path),
                }
            }
        }
        (Value::Array(given), Value::Array(known)) => {
            for (i, (g, k)) in given.iter().zip(known).enumerate() {
                unknown_fields(g, k, &format!("{prefix}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// How a model's parameter paths map onto the keys of a PyTorch state dict, for
/// [`load_weights_with_layout`]. Each entry is a regular expression over the PyTorch key and its
/// replacement (`$1`-style groups), applied in order.
pub trait PytorchLayout {
    /// The remapping from PyTorch keys to this model's parameter paths. Default: none (the
    /// state dict's keys are the module's paths).
    fn pytorch_key_remapping(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// File formats [`load_weights`] and [`save_weights`] know, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    /// Burn's burnpack record (`.bpk`), as written by `Module::save_file`.
    Burnpack,
    /// SafeTensors (`.safetensors`), with Burn's parameter paths as names.
    Safetensors,
    /// A PyTorch state dict (`.pt`, `.pth`), load only.
    Pytorch,
}

impl WeightsFormat {
    /// The format of `path`, from its extension.
    ///
    /// # Errors
    /// [`Error::Weights`] for an unknown extension.
    pub fn of(path: &Path) -> crate::Result<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("bpk" | "burnpack") => Ok(Self::Burnpack),
            Some("safetensors") => Ok(Self::Safetensors),
            Some("pt" | "pth") => Ok(Self::Pytorch),
            other => Err(Error::Weights {
                path: path.to_path_buf(),
                model: "model".into(),
                reason: format!(
                    "unknown weights format {other:?}: use .bpk (Burn), .safetensors, or .pt/.pth \
                     (PyTorch)"
                ),
            }),
        }
    }
}

/// Loads weights into `model` from a Burn record, SafeTensors or PyTorch file (by
/// extension, see [`WeightsFormat`]) into any Burn module. PyTorch keys are used as they
/// are (see [`load_weights_with_layout`] and [`load_weights_remapped`]), and a checkpoint that wraps the state dict as
/// `{'model': ...}` or `{'state_dict': ...}` is unwrapped.
///
/// Every parameter of `model` must be in the file with the right shape; extra entries in a
/// PyTorch file (e.g. BatchNorm's `num_batches_tracked`) are ignored.
///
/// # Errors
/// [`Error::MissingData`] when the file does not exist; [`Error::Weights`] for an unknown
/// extension, a file that is not in the format, a parameter missing from the file, or a
/// parameter of another shape (a checkpoint of another architecture) — the message names
/// the parameters.
///
/// # Example
/// ```
/// use burn::tensor::Device;
/// use burn_distill::files::{load_weights, save_weights};
/// use burn_distill::models::VggConfig;
///
/// let device = Device::default();
/// let dir = std::env::temp_dir().join(format!("load-weights-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("vgg8.safetensors");
/// save_weights(VggConfig::vgg8(10).with_width(4).init(&device), &path).unwrap();
/// let loaded = load_weights(VggConfig::vgg8(10).with_width(4).init(&device), &path).unwrap();
/// // Another architecture is refused with a typed error naming the parameters.
/// let err = load_weights(VggConfig::vgg13(10).with_width(4).init(&device), &path).unwrap_err();
/// assert!(err.to_string().contains("missing"));
/// # drop(loaded);
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
pub fn load_weights<M: Module>(model: M, path: impl AsRef<Path>) -> crate::Result<M> {
    load_weights_remapped(model, path, &[])
}

/// Like [`load_weights`], with PyTorch keys mapped by the model's own
/// [`PytorchLayout::pytorch_key_remapping`] (the models of `crate::models` load
/// RepDistiller's checkpoints this way).
///
/// # Errors
/// As [`load_weights`].
pub fn load_weights_with_layout<M: Module + PytorchLayout>(
    model: M,
    path: impl AsRef<Path>,
) -> crate::Result<M> {
    let remapping = model.pytorch_key_remapping();
    load_weights_remapped(model, path, &remapping)
}

/// Like [`load_weights`], with PyTorch keys mapped by `remapping`: regular expressions over
/// the PyTorch key and their replacements (`$1`-style groups), applied in order. Burn and
/// SafeTensors files ignore it.
///
/// # Errors
/// As [`load_weights`].
pub fn load_weights_remapped<M: Module>(
    model: M,
    path: impl AsRef<Path>,
    remapping: &[(String, String)],
) -> crate::Result<M> {
    let path = path.as_ref();
    let format = WeightsFormat::of(path)?;
    if !path.is_file() {
        return Err(Error::MissingData {
            path: path.to_path_buf(),
            hint: "no weights file at this path".into(),
        });
    }
    let model_name = type_name::<M>();
    let fail = |reason: String| Error::Weights {
        path: path.to_path_buf(),
        model: model_name.clone(),
        reason,
    };
    match format {
        WeightsFormat::Burnpack => model.try_load_file(path).map_err(|e| fail(e.to_string())),
        WeightsFormat::Safetensors => {
            let mut model = model;
            let mut store = SafetensorsStore::from_file(path);
            let result = model
                .load_from(&mut store)
                .map_err(|e| fail(e.to_string()))?;
            check_applied(&result).map_err(fail)?;
            Ok(model)
        }
        WeightsFormat::Pytorch => {
            let mut last_error = String::new();
            // The state dict may be wrapped in a checkpoint dict: take the first place
            // where any parameter is found, then require all of them.
            for top in [Some("model"), Some("state_dict"), None] {
                let mut store = PytorchStore::from_file(path)
                    .allow_partial(true)
                    .validate(false);
                if let Some(key) = top {
                    store = store.with_top_level_key(key);
                }
                for (from, to) in remapping {
                    store = store.with_key_remapping(from, to);
                }
                let mut candidate = model.clone();
                match candidate.load_from(&mut store) {
                    Ok(result) if !result.applied.is_empty() || !result.errors.is_empty() => {
                        check_applied(&result).map_err(&fail)?;
                        return Ok(candidate);
                    }
                    Ok(_) => {
                        last_error = "none of the model's parameters is in the file (another \
                                      architecture, or another naming of the parameters?)"
                            .into()
                    }
                    Err(e) if last_error.is_empty() || top.is_none() => last_error = e.to_string(),
                    Err(_) => {}
                }
            }
            Err(fail(last_error))
        }
    }
}

/// Turns a store's report into an error naming what is missing or of the wrong shape.
fn check_applied(result: &ApplyResult) -> Result<(), String> {
    let mut problems = Vec::new();
    if !result.missing.is_empty() {
        let names: Vec<&str> = result.missing.iter().map(|(p, _)| p.as_str()).collect();
        problems.push(format!("missing {}", list(&names)));
    }
    if !result.errors.is_empty() {
        let errors: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        let errors: Vec<&str> = errors.iter().map(String::as_str).collect();
        problems.push(list(&errors));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The first few items of a list, and how many more.
fn list(items: &[&str]) -> String {
    const SHOWN: usize = 5;
    let mut text = items[..items.len().min(SHOWN)].join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}

fn type_name<M>() -> String {
    let full = std::any::type_name::<M>();
    full.rsplit("::").next().unwrap_or(full).to_string()
}

/// Saves `model`'s weights as a Burn record (`.bpk`) or SafeTensors (`.safetensors`), by
/// extension, creating the file's folder. The file is written under a temporary name and
/// renamed, so an interrupted save leaves any earlier file intact.
///
/// Batch-norm running statistics are synced first. Burn 0.22 keeps a `RunningState`'s
/// latest update aside (per thread) until the module is synced, which `valid()` does but
/// `save_file` and `save_into` do not: saved straight after training, a model's file holds
/// statistics one update old, and the reloaded model scores differently from the one in
/// memory (2–5 of 2,000 CIFAR-10 validation images for this project's teachers).
///
/// # Errors
/// [`Error::Weights`] for another extension (PyTorch files cannot be written);
/// [`Error::Io`] when the file cannot be written, naming the path.
pub fn save_weights<M: Module>(model: M, path: impl AsRef<Path>) -> crate::Result<()> {
    let path = path.as_ref();
    let format = WeightsFormat::of(path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let source = |source| Error::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(source)?;
    }
    // `valid()` folds every pending running-statistics update into the shared state that
    // saving reads (clones share it); the inference copy itself is not needed.
    drop(model.valid());
    let temp = temporary_path(path);
    let io = |e: String| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    };
    match format {
        WeightsFormat::Burnpack => model.save_file(&temp).map_err(|e| io(e.to_string()))?,
        WeightsFormat::Safetensors => {
            let mut store = SafetensorsStore::from_file(&temp).overwrite(true);
            model.save_into(&mut store).map_err(|e| io(e.to_string()))?;
        }
        WeightsFormat::Pytorch => {
            return Err(Error::Weights {
                path: path.to_path_buf(),
                model: type_name::<M>(),
                reason: "PyTorch files can be loaded but not written: save as .bpk or \
                         .safetensors"
                    .into(),
            });
        }
    }
    std::fs::rename(&temp, path).map_err(|source| {
        let _ = std::fs::remove_file(&temp);
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Writes `value` as pretty-printed JSON to `path`, creating its folder: under a temporary
/// name first, then renamed, so a stop never leaves half a file under the final name.
///
/// # Errors
/// [`Error::Io`] naming `path` when the folder or file cannot be written.
///
/// # Example
/// ```
/// use burn_distill::files::save_json;
///
/// let dir = std::env::temp_dir().join(format!("save-json-doc-{}", std::process::id()));
/// save_json(dir.join("run/result.json"), &serde_json::json!({"accuracy": 0.5})).unwrap();
/// assert!(std::fs::read_to_string(dir.join("run/result.json")).unwrap().contains("0.5"));
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
pub fn save_json<T: serde::Serialize + ?Sized>(
    path: impl AsRef<Path>,
    value: &T,
) -> crate::Result<()> {
    let path = path.as_ref();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_json::to_string_pretty(value).map_err(|e| io(std::io::Error::other(e)))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let temp = temporary_path(path);
    std::fs::write(&temp, text + "\n").map_err(io)?;
    std::fs::rename(&temp, path).map_err(io)
}

/// `dir/name.tmp.ext`: same extension (the writers check it), same folder (rename is atomic
/// within a file system).
fn temporary_path(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("weights");
    let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("");
    path.with_file_name(format!(".{stem}.partial.{ext}"))
}
