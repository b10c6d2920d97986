//! A memory-bounded cache of teacher outputs keyed by sample index, for un-augmented data.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};

use crate::model::{DistillInput, Feature, FeatureKind, ModelOutput};
use crate::teacher::{Teacher, TeacherReplicas};

/// Teacher outputs kept on the host, per sample index, up to a byte budget.
///
/// Teachers are frozen, so on data that is not augmented (feature-distillation
/// fine-tuning, a fixed pre-processed set) their outputs for a sample never change: from
/// the second epoch on, a cached batch skips every teacher forward pass. **Do not use it
/// with random augmentation**: the cached outputs would belong to another view of the
/// image.
///
/// Samples are added until `max_bytes` is reached; later samples are computed every time.
///
/// Outputs are returned on the device of the batch: cached ones are rebuilt there, and the
/// teachers run there, each placed once per device ([`Teacher::to_device`]; a teacher that
/// cannot move runs where it is).
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Tensor};
/// use burn_distill::models::CnnConfig;
/// use burn_distill::{FrozenTeacher, Teacher, TeacherCache};
///
/// let device = Device::default();
/// let teachers: Vec<Arc<dyn Teacher>> = vec![Arc::new(FrozenTeacher::from_model(
///     "t",
///     CnnConfig::new(4).with_width(2).init(&device),
/// ))];
/// let mut cache = TeacherCache::new(1 << 20);
/// let images = Tensor::<4>::ones([2, 3, 8, 8], &device);
/// let first = cache.outputs(&teachers, &[10, 11], images.clone()); // computed
/// let again = cache.outputs(&teachers, &[10, 11], images); // from the cache
/// assert_eq!((cache.hits(), cache.misses()), (1, 1));
/// assert_eq!(first[0].logits.to_data(), again[0].logits.to_data());
/// ```
#[derive(Debug)]
pub struct TeacherCache {
    max_bytes: usize,
    bytes: usize,
    /// Per sample: per teacher, logits then each feature, flattened.
    entries: HashMap<usize, Vec<Vec<Vec<f32>>>>,
    /// Per teacher: shapes (without the batch dimension) of logits and features.
    shapes: Option<Vec<Vec<Vec<usize>>>>,
    kinds: Vec<Vec<FeatureKind>>,
    /// The last teacher set seen and its replicas per device (a `TeacherReplicas<I>`; the
    /// cache itself is not generic over the input type).
    replicas: Option<Box<dyn Any + Send + Sync>>,
    hits: usize,
    misses: usize,
}

impl TeacherCache {
    /// An empty cache that holds at most `max_bytes` of teacher outputs.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            bytes: 0,
            entries: HashMap::new(),
            shapes: None,
            kinds: Vec::new(),
            replicas: None,
            hits: 0,
            misses: 0,
        }
    }

    /// Batches served entirely from the cache.
    pub fn hits(&self) -> usize {
        self.hits
    }

    /// Batches for which the teachers ran.
    pub fn misses(&self) -> usize {
        self.misses
    }

    /// Bytes of outputs held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The teachers' outputs for the batch `inputs` whose samples have dataset indices
    /// `indices`: from the cache when every sample is there, else computed by running the
    /// teachers (and stored while the budget allows).
    ///
    /// # Panics
    /// When `indices.len()` is not the batch size of `images`.
    pub fn outputs<I: DistillInput>(
        &mut self,
        teachers: &[Arc<dyn Teacher<I>>],
        indices: &[usize],
        inputs: I,
    ) -> Vec<ModelOutput> {
        let n = inputs.batch_size();
        assert_eq!(
            indices.len(),
            n,
            "TeacherCache: {} indices for a batch of {n} inputs",
            indices.len()
        );
        let device = inputs.device().inner();
        if let Some(shapes) = &self.shapes
            && indices.iter().all(|i| self.entries.contains_key(i))
        {
            self.hits += 1;
            return (0..teachers.len())
                .map(|k| {
                    let tensor = |part: usize| -> Vec<f32> {
                        indices
                            .iter()
                            .flat_map(|i| self.entries[i][k][part].iter().copied())
                            .collect()
                    };
                    let shape = |part: usize| -> Vec<usize> {
                        std::iter::once(n)
                            .chain(shapes[k][part].iter().copied())
                            .collect()
                    };
                    let logits =
                        Tensor::<2>::from_data(TensorData::new(tensor(0), shape(0)), &device);
                    let features = (1..shapes[k].len())
                        .map(|part| {
                            Feature::from_data(
                                self.kinds[k][part - 1],
                                TensorData::new(tensor(part), shape(part)),
                                &device,
                            )
                        })
                        .collect();
                    ModelOutput { logits, features }
                })
                .collect();
        }
        self.misses += 1;
        let inputs = inputs.without_autodiff();
        let placed = self.placed(teachers, &device);
        let outputs: Vec<ModelOutput> = placed
            .iter()
            .map(|teacher| teacher.forward(inputs.clone()))
            .collect();
        let shapes: Vec<Vec<Vec<usize>>> = outputs
            .iter()
            .map(|o| {
                std::iter::once(o.logits.dims()[1..].to_vec())
                    .chain(o.features.iter().map(|f| f.dims()[1..].to_vec()))
                    .collect()
            })
            .collect();
        let per_sample: usize = shapes
            .iter()
            .flatten()
            .map(|s| s.iter().product::<usize>())
            .sum();
        let new: Vec<&usize> = indices
            .iter()
            .filter(|i| !self.entries.contains_key(i))
            .collect();
        if self.shapes.as_ref().is_none_or(|s| *s == shapes)
            && self.bytes + new.len() * per_sample * 4 <= self.max_bytes
        {
            let host: Vec<Vec<Vec<f32>>> = outputs
                .iter()
                .map(|o| {
                    std::iter::once(flat(o.logits.clone().into_data()))
                        .chain(o.features.iter().map(|f| flat(f.clone().into_data())))
                        .collect()
                })
                .collect();
            for (row, index) in indices.iter().enumerate() {
                if self.entries.contains_key(index) {
                    continue;
                }
                let sample = host
                    .iter()
                    .zip(&shapes)
                    .map(|(parts, part_shapes)| {
                        parts
                            .iter()
                            .zip(part_shapes)
                            .map(|(values, shape)| {
                                let size: usize = shape.iter().product();
                                values[row * size..(row + 1) * size].to_vec()
                            })
                            .collect()
                    })
                    .collect();
                self.entries.insert(*index, sample);
                self.bytes += per_sample * 4;
            }
            self.shapes = Some(shapes);
            self.kinds = outputs
                .iter()
                .map(|o| o.features.iter().map(Feature::kind).collect())
                .collect();
        }
        outputs
    }
}

impl TeacherCache {
    /// `teachers` placed on `device`, from the replicas kept for the last teacher set.
    fn placed<I: DistillInput>(
        &mut self,
        teachers: &[Arc<dyn Teacher<I>>],
        device: &Device,
    ) -> Arc<[Arc<dyn Teacher<I>>]> {
        let known = self
            .replicas
            .as_ref()
            .and_then(|r| r.downcast_ref::<TeacherReplicas<I>>())
            .is_some_and(|r| r.holds(teachers));
        if !known {
            self.replicas = Some(Box::new(TeacherReplicas::new(teachers.into(), None, false)));
        }
        let replicas = self
            .replicas
            .as_ref()
            .and_then(|r| r.downcast_ref::<TeacherReplicas<I>>())
            .expect("replicas of this input type were just stored");
        // Not strict: never an error (a teacher that cannot move runs where it is).
        replicas
            .on(device)
            .unwrap_or_else(|_| replicas.originals().clone())
    }
}

fn flat(data: TensorData) -> Vec<f32> {
    data.convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float data")
}
