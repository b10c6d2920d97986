//! The `screening` stage: what each teacher-weighting rule makes of the teachers, measured
//! on the training images (no augmentation), without training anything.
//!
//! For every rule the selector runs on the teachers' logits batch by batch, exactly as in
//! training, and the stage reports per teacher the keep rate and mean weight, and for the
//! soft target the student would learn from, `q = Σ_k w[k] · softmax(z_k / T)`: how often
//! its top class is the true label, its mass on the true label, the weight given to
//! teachers that are right, and what happens on the samples the strongest teacher gets
//! wrong. A rule that cannot make a better target than the strongest teacher alone cannot
//! make a better student through the soft term.

use std::sync::Arc;

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use burn_distill::{ScreeningRule, Teacher, TeacherSelectorConfig, Weighting};
use serde::Serialize;

use crate::training::{Context, ModelReport, write_json};

#[derive(Debug, Serialize)]
struct RuleResult {
    rule: String,
    /// Fraction of samples whose soft target's top class is the label.
    target_accuracy: f64,
    /// Mean soft-target probability of the label.
    label_mass: f64,
    /// Mean total weight on teachers whose top class is the label.
    weight_on_right: f64,
    /// On samples the strongest teacher gets wrong: mean weight on teachers that are right,
    /// and the fraction of those samples where the target's top class is the label.
    weight_on_right_when_best_wrong: f64,
    target_accuracy_when_best_wrong: f64,
    keep_rate: Vec<f64>,
    mean_weight: Vec<f64>,
}

fn rules(k: usize, best: usize) -> Vec<(String, TeacherSelectorConfig)> {
    // The seed paper's per-sample rule, varied one setting at a time.
    let screened = TeacherSelectorConfig::seed_paper;
    let mut one_hot = vec![0.0; k];
    one_hot[best] = 1.0;
    vec![
        (
            "strongest teacher only".into(),
            TeacherSelectorConfig::unscreened(Weighting::Fixed(one_hot)),
        ),
        (
            "AVER".into(),
            TeacherSelectorConfig::unscreened(Weighting::Average),
        ),
        (
            "CA-MKD weights".into(),
            TeacherSelectorConfig::unscreened(Weighting::Confidence),
        ),
        (
            "EBKD weights".into(),
            TeacherSelectorConfig::unscreened(Weighting::Entropy),
        ),
        ("screened per sample, tau 1 (seed paper)".into(), screened()),
        (
            "screened per sample, tau 0.5".into(),
            screened().with_tau(0.5),
        ),
        (
            "screened per sample, tau 2".into(),
            screened().with_tau(2.0),
        ),
        (
            "screened per sample, tau 4".into(),
            screened().with_tau(4.0),
        ),
        (
            "screened per batch, tau 1".into(),
            screened().with_granularity(burn_distill::Granularity::PerBatch),
        ),
        (
            "screened per sample + CA-MKD weights".into(),
            screened().with_weighting(Weighting::Confidence),
        ),
        (
            "screened per sample + equal weights".into(),
            screened().with_weighting(Weighting::Average),
        ),
        (
            "best teacher per sample (TopK 1)".into(),
            screened().with_screening(ScreeningRule::TopK(1)),
        ),
    ]
}

pub fn run(
    ctx: &Context,
    teachers: &[Arc<dyn Teacher>],
    reports: &[ModelReport],
) -> Result<(), String> {
    let k = teachers.len();
    let temperature = ctx.config.temperature;
    let best = (0..k)
        .max_by(|a, b| {
            reports[*a]
                .test_accuracy
                .total_cmp(&reports[*b].test_accuracy)
        })
        .ok_or("no teachers")?;
    let rules = rules(k, best);
    let selectors = rules
        .iter()
        .map(|(_, config)| config.init(k).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    // Per rule: [target hits, label mass, weight on right, best-wrong weight on right,
    // best-wrong target hits], then keep counts and weight sums per teacher.
    let mut sums: Vec<Option<(Tensor<1>, Tensor<1>, Tensor<1>)>> = vec![None; rules.len()];
    let mut teacher_hits: Option<Tensor<1>> = None;
    let mut best_wrong_count: Option<Tensor<1>> = None;
    let mut n_total = 0usize;
    println!(
        "screening: {} rules on {} training images (no augmentation), T = {temperature}",
        rules.len(),
        ctx.train.labels.len()
    );
    for batch in ctx.eval_loader(&ctx.train).iter() {
        let batch = batch.map_err(|e| format!("cannot read a training batch: {e}"))?;
        let [n] = batch.labels.dims();
        n_total += n;
        let labels = batch.labels;
        let logits: Vec<Tensor<2>> = teachers
            .iter()
            .map(|t| t.forward(batch.inputs.clone()).logits)
            .collect();
        let probs: Vec<Tensor<2>> = logits
            .iter()
            .map(|z| softmax(z.clone().div_scalar(temperature), 1))
            .collect();
        let label_column = labels.clone().reshape([n, 1]);
        let right = |z: &Tensor<2>| -> Tensor<2> {
            z.clone().argmax(1).equal(label_column.clone()).float()
        };
        let right_matrix = Tensor::cat(logits.iter().map(right).collect(), 1); // [N, K]
        let best_wrong = right_matrix
            .clone()
            .slice([0..n, best..best + 1])
            .neg()
            .add_scalar(1.0); // [N, 1]
        let hits = right_matrix.clone().sum_dim(0).reshape([k]);
        teacher_hits = Some(match teacher_hits {
            Some(t) => t + hits,
            None => hits,
        });
        let wrong = best_wrong.clone().sum().reshape([1]);
        best_wrong_count = Some(match best_wrong_count {
            Some(t) => t + wrong,
            None => wrong,
        });
        for (r, selector) in selectors.iter().enumerate() {
            let selection = selector
                .select(&logits, labels.clone())
                .map_err(|e| e.to_string())?;
            let w = selection.weights.clone();
            let mut target: Option<Tensor<2>> = None;
            for (j, p) in probs.iter().enumerate() {
                let part = p.clone() * w.clone().slice([0..n, j..j + 1]);
                target = Some(match target {
                    Some(t) => t + part,
                    None => part,
                });
            }
            let target = target.ok_or("no teachers")?;
            let target_right = right(&target);
            let mass = target.gather(1, label_column.clone());
            let on_right = (w.clone() * right_matrix.clone()).sum_dim(1); // [N, 1]
            let scalars = Tensor::cat(
                vec![
                    target_right.clone().sum().reshape([1]),
                    mass.sum().reshape([1]),
                    on_right.clone().sum().reshape([1]),
                    (on_right * best_wrong.clone()).sum().reshape([1]),
                    (target_right * best_wrong.clone()).sum().reshape([1]),
                ],
                0,
            );
            let keep = selection.keep_rate().mul_scalar(n as f64);
            let weight = selection.mean_weight().mul_scalar(n as f64);
            sums[r] = Some(match sums[r].take() {
                Some((a, b, c)) => (a + scalars, b + keep, c + weight),
                None => (scalars, keep, weight),
            });
        }
    }
    let read = |t: Tensor<1>| -> Vec<f64> {
        t.into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .unwrap_or_default()
    };
    let n = n_total.max(1) as f64;
    let teacher_accuracy: Vec<f64> = read(teacher_hits.ok_or("the training set is empty")?)
        .into_iter()
        .map(|h| h / n)
        .collect();
    let wrong = read(best_wrong_count.ok_or("the training set is empty")?)[0].max(1.0);
    let results: Vec<RuleResult> = rules
        .iter()
        .zip(sums)
        .map(|((name, _), sums)| {
            let (scalars, keep, weight) = sums.expect("one batch at least");
            let s = read(scalars);
            RuleResult {
                rule: name.clone(),
                target_accuracy: s[0] / n,
                label_mass: s[1] / n,
                weight_on_right: s[2] / n,
                weight_on_right_when_best_wrong: s[3] / wrong,
                target_accuracy_when_best_wrong: s[4] / wrong,
                keep_rate: read(keep).into_iter().map(|x| x / n).collect(),
                mean_weight: read(weight).into_iter().map(|x| x / n).collect(),
            }
        })
        .collect();

    let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
    let mut s = format!(
        "Teachers on the {} training images (no augmentation); top-1 accuracy there: {}. \
         Strongest teacher (by {} accuracy): {}, wrong on {:.0} images ({:.1}%). Soft targets \
         at T = {temperature}.\n\n",
        n_total,
        names
            .iter()
            .zip(&teacher_accuracy)
            .map(|(name, a)| format!("{name} {:.2}%", 100.0 * a))
            .collect::<Vec<_>>()
            .join(", "),
        ctx.config.eval_split(),
        names[best],
        wrong,
        100.0 * wrong / n,
    );
    s += &format!(
        "| rule | target top-1 = label | target mass on label | weight on right teachers | where the strongest is wrong: weight on right teachers | … target top-1 = label | keep rate ({}) | mean weight |\n|---|---:|---:|---:|---:|---:|---|---|\n",
        names.join(", ")
    );
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    for r in &results {
        s += &format!(
            "| {} | {:.2}% | {:.3} | {:.3} | {:.3} | {:.2}% | {} | {} |\n",
            r.rule,
            100.0 * r.target_accuracy,
            r.label_mass,
            r.weight_on_right,
            r.weight_on_right_when_best_wrong,
            100.0 * r.target_accuracy_when_best_wrong,
            list(&r.keep_rate),
            list(&r.mean_weight)
        );
    }
    println!("\n{s}");
    let out = &ctx.cli.out;
    std::fs::write(out.join("screening.md"), &s)
        .map_err(|e| format!("cannot write screening.md: {e}"))?;
    write_json(&out.join("screening.json"), &results)?;
    println!(
        "wrote {} and {}",
        out.join("screening.md").display(),
        out.join("screening.json").display()
    );
    Ok(())
}
