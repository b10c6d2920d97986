use burn::config::Config;
use burn::module::Module;
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::{FeatureModel, FeatureSpec, ModelOutput};

/// What a [`SequenceTransformer`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SequenceInput {
    /// Token ids `[N, L]` (`Tensor<2, Int>`) from a vocabulary of this size.
    Tokens(usize),
    /// Float sequences `[N, L, dim]` (`Tensor<3>`) with this many values per position
    /// (audio frames, sensor readings, the rows of an image).
    Vectors(usize),
}

/// Configuration of a [`SequenceTransformer`].
#[derive(Config, Debug)]
pub struct SequenceTransformerConfig {
    /// Number of classes.
    pub num_classes: usize,
    /// Token ids or float vectors per position.
    pub input: SequenceInput,
    /// Width of the hidden states. Default: 64.
    #[config(default = 64)]
    pub d_model: usize,
    /// Encoder layers. Default: 2.
    #[config(default = 2)]
    pub layers: usize,
    /// Attention heads (must divide `d_model`). Default: 4.
    #[config(default = 4)]
    pub heads: usize,
    /// Longest sequence (size of the learned position table). Default: 128.
    #[config(default = 128)]
    pub max_length: usize,
    /// Dropout in the encoder. Default: 0.1.
    #[config(default = 0.1)]
    pub dropout: f64,
}

impl SequenceTransformerConfig {
    /// Builds the model on `device`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a size is 0 or `heads` does not divide `d_model`.
    pub fn init(&self, device: &Device) -> crate::Result<SequenceTransformer> {
        let invalid = |field, value: usize, reason| {
            Err(Error::InvalidConfig {
                field,
                value: value.to_string(),
                reason,
            })
        };
        for (field, value) in [
            ("num_classes", self.num_classes),
            ("d_model", self.d_model),
            ("layers", self.layers),
            ("heads", self.heads),
            ("max_length", self.max_length),
        ] {
            if value == 0 {
                return invalid(field, value, "must be greater than 0");
            }
        }
        if !self.d_model.is_multiple_of(self.heads) {
            return invalid("d_model", self.d_model, "must be a multiple of heads");
        }
        let (tokens, vectors) = match self.input {
            SequenceInput::Tokens(0) | SequenceInput::Vectors(0) => {
                return invalid(
                    "input",
                    0,
                    "vocabulary or vector size must be greater than 0",
                );
            }
            SequenceInput::Tokens(vocabulary) => (
                Some(EmbeddingConfig::new(vocabulary, self.d_model).init(device)),
                None,
            ),
            SequenceInput::Vectors(dim) => (
                None,
                Some(LinearConfig::new(dim, self.d_model).init(device)),
            ),
        };
        Ok(SequenceTransformer {
            tokens,
            vectors,
            positions: EmbeddingConfig::new(self.max_length, self.d_model).init(device),
            encoder: TransformerEncoderConfig::new(
                self.d_model,
                4 * self.d_model,
                self.heads,
                self.layers,
            )
            .with_dropout(self.dropout)
            .with_norm_first(true)
            .init(device),
            classifier: LinearConfig::new(self.d_model, self.num_classes).init(device),
        })
    }
}

/// A transformer-encoder classifier over sequences of token ids or of float vectors: input
/// embedding plus learned positions, pre-norm [`TransformerEncoder`] layers, mean over
/// positions, linear classifier. Its feature for distillation is the last layer's hidden
/// states, a sequence `[N, L, d_model]`.
///
/// It implements [`FeatureModel<Tensor<2, Int>>`] (token ids) and
/// [`FeatureModel<Tensor<3>>`] (float vectors); use the one its
/// [`SequenceTransformerConfig::input`] was built for.
///
/// # Shapes
/// - input: `[N, L]` token ids or `[N, L, dim]` floats, `L <= max_length`
/// - logits: `[N, num_classes]`; one sequence feature `[N, L, d_model]`
///
/// # Example
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use burn_distill::FeatureModel;
/// use burn_distill::models::{SequenceInput, SequenceTransformerConfig};
///
/// let device = Device::default();
/// let model = SequenceTransformerConfig::new(3, SequenceInput::Tokens(100))
///     .with_d_model(16)
///     .init(&device)
///     .unwrap();
/// let tokens = Tensor::<2, Int>::zeros([2, 7], &device);
/// let out = model.forward_features(tokens);
/// assert_eq!(out.logits.dims(), [2, 3]);
/// assert_eq!(out.features[0].dims(), vec![2, 7, 16]);
/// ```
#[derive(Module, Debug)]
pub struct SequenceTransformer {
    tokens: Option<Embedding>,
    vectors: Option<Linear>,
    positions: Embedding,
    encoder: TransformerEncoder,
    classifier: Linear,
}

impl SequenceTransformer {
    /// Width of the hidden states.
    pub fn d_model(&self) -> usize {
        self.classifier.weight.dims()[0]
    }

    fn classes(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    fn specs(&self) -> Vec<FeatureSpec> {
        vec![FeatureSpec::sequence(self.d_model())]
    }

    /// Runs the encoder on embedded inputs `[N, L, d_model]`.
    fn encode(&self, embedded: Tensor<3>) -> ModelOutput {
        let [n, length, _] = embedded.dims();
        let max_length = self.positions.weight.dims()[0];
        assert!(
            length <= max_length,
            "SequenceTransformer: sequence of length {length} is longer than max_length \
             {max_length}"
        );
        let device = embedded.device();
        let positions = Tensor::<1, Int>::arange(0..length as i64, &device)
            .reshape([1, length])
            .expand([n, length]);
        let x = embedded + self.positions.forward(positions);
        let hidden = self.encoder.forward(TransformerEncoderInput::new(x));
        let pooled = hidden.clone().mean_dim(1).squeeze_dim::<2>(1);
        ModelOutput {
            logits: self.classifier.forward(pooled),
            features: vec![hidden.into()],
        }
    }
}

impl FeatureModel<Tensor<2, Int>> for SequenceTransformer {
    /// # Panics
    /// When the model was built for float vectors.
    fn forward_features(&self, input: Tensor<2, Int>) -> ModelOutput {
        let embedding = self
            .tokens
            .as_ref()
            .expect("SequenceTransformer built for float vectors was given token ids");
        self.encode(embedding.forward(input))
    }

    fn num_classes(&self) -> usize {
        self.classes()
    }

    fn feature_specs(&self) -> Option<Vec<FeatureSpec>> {
        Some(self.specs())
    }

    /// Token ids of any length: `[any]`.
    fn input_shape(&self) -> Option<crate::InputShape> {
        Some(crate::InputShape::new([None]))
    }
}

impl FeatureModel<Tensor<3>> for SequenceTransformer {
    /// # Panics
    /// When the model was built for token ids.
    fn forward_features(&self, input: Tensor<3>) -> ModelOutput {
        let projection = self
            .vectors
            .as_ref()
            .expect("SequenceTransformer built for token ids was given float vectors");
        self.encode(projection.forward(input))
    }

    fn num_classes(&self) -> usize {
        self.classes()
    }

    fn feature_specs(&self) -> Option<Vec<FeatureSpec>> {
        Some(self.specs())
    }

    /// Sequences of any length of vectors of the width the model was built for:
    /// `[any, D]`.
    fn input_shape(&self) -> Option<crate::InputShape> {
        let width = self.vectors.as_ref().map(|p| p.weight.dims()[0]);
        Some(crate::InputShape::new([None, width]))
    }
}
