//! The `screening` stage: what each teacher-weighting rule makes of the teachers on the
//! training images (no augmentation), without training anything: the library's
//! `SoftTargetAudit` over the rules below.

use std::sync::Arc;

use burn_distill::{
    Granularity, RuleReport, ScreeningRule, SoftTargetAudit, Teacher, TeacherSelectorConfig,
    Weighting,
};
use serde::Serialize;

use crate::Res;
use crate::training::{Context, ModelReport, write_json};

/// The rules compared: the peers, then the seed paper's per-sample rule varied one setting
/// at a time.
fn rules(k: usize, best: usize) -> Vec<(&'static str, TeacherSelectorConfig)> {
    let (screened, unscreened) = (
        TeacherSelectorConfig::seed_paper,
        TeacherSelectorConfig::unscreened,
    );
    let one_hot = (0..k).map(|i| if i == best { 1.0 } else { 0.0 }).collect();
    vec![
        (
            "strongest teacher only",
            unscreened(Weighting::Fixed(one_hot)),
        ),
        ("AVER", unscreened(Weighting::Average)),
        ("CA-MKD weights", unscreened(Weighting::Confidence)),
        ("EBKD weights", unscreened(Weighting::Entropy)),
        ("screened per sample, tau 1 (seed paper)", screened()),
        ("screened per sample, tau 0.5", screened().with_tau(0.5)),
        ("screened per sample, tau 2", screened().with_tau(2.0)),
        ("screened per sample, tau 4", screened().with_tau(4.0)),
        (
            "screened per batch, tau 1",
            screened().with_granularity(Granularity::PerBatch),
        ),
        (
            "screened per sample + CA-MKD weights",
            screened().with_weighting(Weighting::Confidence),
        ),
        (
            "screened per sample + equal weights",
            screened().with_weighting(Weighting::Average),
        ),
        (
            "best teacher per sample (TopK 1)",
            screened().with_screening(ScreeningRule::TopK(1)),
        ),
    ]
}

/// One row of screening.json.
#[derive(Debug, Serialize)]
struct RuleResult {
    rule: &'static str,
    #[serde(flatten)]
    report: RuleReport,
}

pub fn run(ctx: &Context, teachers: &[Arc<dyn Teacher>], reports: &[ModelReport]) -> Res<()> {
    let (k, temperature) = (teachers.len(), ctx.config.temperature);
    let accuracy = |i: &usize| reports[*i].test_accuracy;
    let best = (0..k)
        .max_by(|a, b| accuracy(a).total_cmp(&accuracy(b)))
        .ok_or("no teachers")?;
    let rules = rules(k, best);
    let selectors = rules
        .iter()
        .map(|(_, c)| c.init(k))
        .collect::<Result<Vec<_>, _>>()?;
    let mut audit = SoftTargetAudit::new(selectors, temperature, best)?;
    println!(
        "screening: {} rules on {} training images (no augmentation), T = {temperature}",
        rules.len(),
        ctx.train.labels.len()
    );
    for (inputs, labels) in ctx.batches(&ctx.train)? {
        let logits: Vec<_> = teachers
            .iter()
            .map(|t| t.forward(inputs.clone()).logits)
            .collect();
        audit.update(&logits, labels)?;
    }
    let report = audit.finish()?;
    let results: Vec<RuleResult> = rules
        .iter()
        .zip(report.rules)
        .map(|((rule, _), report)| RuleResult { rule, report })
        .collect();

    let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
    let per_teacher: Vec<String> = names
        .iter()
        .zip(&report.teacher_accuracy)
        .map(|(n, a)| format!("{n} {:.2}%", 100.0 * a))
        .collect();
    let (n, wrong) = (report.samples, report.strongest_wrong);
    let mut s = format!(
        "Teachers on the {n} training images (no augmentation); top-1 accuracy there: {}. Strongest teacher (by {} \
         accuracy): {}, wrong on {wrong} images ({:.1}%). Soft targets at T = {temperature}.\n\n\
         | rule | target top-1 = label | target mass on label | weight on right teachers | where the strongest is wrong: \
         weight on right teachers | … target top-1 = label | keep rate ({}) | mean weight |\n|---|---:|---:|---:|---:|---:|---|---|\n",
        per_teacher.join(", "),
        ctx.config.eval_split(),
        names[best],
        100.0 * wrong as f64 / n.max(1) as f64,
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
            100.0 * r.report.target_accuracy,
            r.report.label_mass,
            r.report.weight_on_right,
            r.report.weight_on_right_when_best_wrong,
            100.0 * r.report.target_accuracy_when_best_wrong,
            list(&r.report.keep_rate),
            list(&r.report.mean_weight)
        );
    }
    println!("\n{s}");
    let out = &ctx.cli.out;
    std::fs::write(out.join("screening.md"), &s)
        .map_err(|e| format!("cannot write screening.md: {e}"))?;
    write_json(&out.join("screening.json"), &results)?;
    println!("wrote screening.md and screening.json in {}", out.display());
    Ok(())
}
