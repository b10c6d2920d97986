//! The `screening` stage: what each teacher-weighting rule (`screening-rules.json`, rows of
//! the grid's format that change the selector) makes of the teachers on the training images
//! (no augmentation), without training anything: the library's `SoftTargetAudit`.

use std::sync::Arc;

use burn_distill::experiment::{ModelReport, grid_from_json};
use burn_distill::files::save_json;
use burn_distill::{
    DistillerConfig, RuleReport, SoftTargetAudit, Teacher, TeacherSelectorConfig, Weighting,
};
use serde::Serialize;

use crate::Res;
use crate::training::Context;

/// One row of screening.json.
#[derive(Debug, Serialize)]
struct RuleResult<'a> {
    rule: &'a str,
    #[serde(flatten)]
    report: RuleReport,
}

pub fn run(ctx: &Context, teachers: &[Arc<dyn Teacher>], reports: &[ModelReport]) -> Res<()> {
    let (k, temperature, base) = (
        teachers.len(),
        ctx.config.temperature,
        DistillerConfig::new(),
    );
    let accuracy = |i: &usize| reports[*i].accuracy;
    let best = (0..k)
        .max_by(|a, b| accuracy(a).total_cmp(&accuracy(b)))
        .ok_or("no teachers")?;
    let one_hot = (0..k).map(|i| if i == best { 1.0 } else { 0.0 }).collect();
    let mut rules = vec![(
        "strongest teacher only".to_string(),
        TeacherSelectorConfig::unscreened(Weighting::Fixed(one_hot)),
    )];
    for rule in grid_from_json(include_str!("screening-rules.json"), &base)? {
        rules.push((rule.name.clone(), rule.distiller(&base)?.selector));
    }
    let selectors = rules
        .iter()
        .map(|(_, c)| c.init(k))
        .collect::<Result<Vec<_>, _>>()?;
    let n = ctx.train.labels.len();
    let count = rules.len();
    println!(
        "screening: {count} rules on {n} training images (no augmentation), T = {temperature}"
    );
    let report = SoftTargetAudit::new(selectors, temperature, best)?
        .run(teachers, ctx.batches(&ctx.train)?)?;
    let names: Vec<&str> = rules.iter().map(|(name, _)| name.as_str()).collect();
    let teachers: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
    let accuracy = (teachers.iter().zip(&report.teacher_accuracy))
        .map(|(n, a)| format!("{n} {:.2}%", 100.0 * a));
    let (n, wrong, split) = (
        report.samples,
        report.strongest_wrong,
        ctx.config.eval_split(),
    );
    let s = format!(
        "Teachers on the {n} training images (no augmentation); top-1 accuracy there: {}. Strongest teacher (by \
         {split} accuracy): {}, wrong on {wrong} images ({:.1}%). Soft targets at T = {temperature}.\n\n{}",
        accuracy.collect::<Vec<_>>().join(", "),
        teachers[best],
        100.0 * wrong as f64 / n.max(1) as f64,
        report.markdown(&names, &teachers)
    );
    println!("\n{s}");
    let out = &ctx.cli.out;
    std::fs::write(out.join("screening.md"), &s)
        .map_err(|e| format!("cannot write screening.md: {e}"))?;
    let results = names
        .iter()
        .zip(report.rules)
        .map(|(rule, report)| RuleResult { rule, report });
    save_json(out.join("screening.json"), &results.collect::<Vec<_>>())?;
    println!("wrote screening.md and screening.json in {}", out.display());
    Ok(())
}
