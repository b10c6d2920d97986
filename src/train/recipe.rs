//! The SGD recipe of the CIFAR-100 distillation benchmarks, as a burn optimizer and a
//! burn learning-rate schedule.

use burn::config::Config;
use burn::optim::SgdConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::LrSchedulerConfig;
use burn::optim::lr_scheduler::sequential::SequentialLrSchedulerConfig;
use burn::optim::momentum::MomentumConfig;

use crate::Error;
use crate::error::{check_non_negative, check_positive};

/// SGD with momentum and weight decay, the learning rate multiplied by `gamma` at fixed
/// fractions of the run (PyTorch's `MultiStepLR`).
///
/// The defaults are the recipe of CRD (Tian et al. 2020, "Contrastive Representation
/// Distillation", and its RepDistiller code) that CA-MKD and most CIFAR-100 distillation
/// papers reuse: learning rate 0.05, momentum 0.9, weight decay 5e-4, ×0.1 after epochs
/// 150, 180 and 210 of 240 (fractions 0.625, 0.75, 0.875).
///
/// # Example
/// ```
/// use burn_distill::train::SgdRecipeConfig;
///
/// let recipe = SgdRecipeConfig::new().with_lr(0.1).with_decay_at(vec![0.5]);
/// // 10 epochs of 100 steps: 0.1 for the first 500 steps, then 0.01.
/// assert_eq!(recipe.decay_steps(10, 100).unwrap(), vec![500]);
/// let schedule = recipe.schedule(10, 100).unwrap();
/// let optimizer = recipe.optimizer();
/// # let _ = (schedule, optimizer);
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct SgdRecipeConfig {
    /// The initial learning rate.
    #[config(default = 0.05)]
    pub lr: f64,
    /// Momentum (PyTorch's convention, without dampening).
    #[config(default = 0.9)]
    pub momentum: f64,
    /// L2 weight decay.
    #[config(default = 5e-4)]
    pub weight_decay: f64,
    /// Fractions of the run (in `[0, 1]`) after which the learning rate is multiplied by
    /// `gamma`. Each becomes the epoch `round(fraction * epochs)`; epochs 0 and `epochs`
    /// (no step left) are dropped, and so are repeats.
    #[config(default = "vec![0.625, 0.75, 0.875]")]
    pub decay_at: Vec<f64>,
    /// The factor of each decay.
    #[config(default = 0.1)]
    pub gamma: f64,
}

impl SgdRecipeConfig {
    /// The optimizer's configuration (call `init` on it for a model).
    pub fn optimizer(&self) -> SgdConfig {
        SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_momentum(self.momentum)))
            .with_weight_decay(Some(WeightDecayConfig::new(self.weight_decay as f32)))
    }

    /// The optimizer steps after which the learning rate decays, for a run of `epochs` epochs
    /// of `steps_per_epoch` steps, in increasing order.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a learning rate or `gamma` that is not finite and
    /// positive, a negative or non-finite momentum or weight decay, or a fraction outside
    /// `[0, 1]` (NaN included).
    pub fn decay_steps(&self, epochs: usize, steps_per_epoch: usize) -> crate::Result<Vec<usize>> {
        check_positive("lr", self.lr)?;
        check_positive("gamma", self.gamma)?;
        check_non_negative("momentum", self.momentum)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        if let Some(bad) = self.decay_at.iter().find(|f| !(0.0..=1.0).contains(*f)) {
            return Err(Error::InvalidConfig {
                field: "decay_at",
                value: bad.to_string(),
                reason: "each fraction must be in [0, 1]",
            });
        }
        let mut epochs_at: Vec<usize> = (self.decay_at.iter())
            .map(|f| (f * epochs as f64).round() as usize)
            .filter(|&e| e > 0 && e < epochs)
            .collect();
        epochs_at.sort_unstable();
        epochs_at.dedup();
        Ok(epochs_at.into_iter().map(|e| e * steps_per_epoch).collect())
    }

    /// The learning-rate schedule: constant pieces `lr`, `lr·gamma`, `lr·gamma²`, …, changing
    /// after the steps of [`SgdRecipeConfig::decay_steps`].
    ///
    /// # Errors
    /// As [`SgdRecipeConfig::decay_steps`].
    pub fn schedule(
        &self,
        epochs: usize,
        steps_per_epoch: usize,
    ) -> crate::Result<SequentialLrSchedulerConfig> {
        let milestones = self.decay_steps(epochs, steps_per_epoch)?;
        let pieces = (0..=milestones.len())
            .map(|i| LrSchedulerConfig::Constant(self.lr * self.gamma.powi(i as i32)))
            .collect();
        Ok(SequentialLrSchedulerConfig::new(pieces, milestones))
    }
}
