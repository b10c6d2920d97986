//! The `screening` stage: what each teacher-weighting rule (`screening-rules.json`, each a
//! `TeacherSelectorConfig` given as its changes to the library's default) makes of the
//! teachers on the training images (no augmentation), without training anything: the
//! library's `SoftTargetAudit`.

use std::sync::Arc;

use burn_distill::files::{config_from_json, save_json};
use burn_distill::{RuleReport, SoftTargetAudit, Teacher, TeacherSelectorConfig, Weighting};
use serde::{Deserialize, Serialize};

use crate::Res;
use crate::training::{Context, ModelReport};

/// One row of screening-rules.json.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    name: String,
    selector: serde_json::Value,
}

/// One row of screening.json.
#[derive(Debug, Serialize)]
struct RuleResult<'a> {
    rule: &'a str,
    #[serde(flatten)]
    report: RuleReport,
}

pub fn run(ctx: &Context, teachers: &[Arc<dyn Teacher>], reports: &[ModelReport]) -> Res<()> {
    let (k, temperature) = (teachers.len(), ctx.config.temperature);
    let accuracy = |i: &usize| reports[*i].test_accuracy;
    let best = (0..k)
        .max_by(|a, b| accuracy(a).total_cmp(&accuracy(b)))
        .ok_or("no teachers")?;
    let rules: Vec<Rule> = serde_json::from_str(include_str!("screening-rules.json"))?;
    let one_hot = (0..k).map(|i| if i == best { 1.0 } else { 0.0 }).collect();
    let (mut names, mut configs) = (
        vec!["strongest teacher only"],
        vec![TeacherSelectorConfig::unscreened(Weighting::Fixed(one_hot))],
    );
    for rule in &rules {
        names.push(&rule.name);
        configs.push(config_from_json(
            &rule.selector.to_string(),
            Some(&TeacherSelectorConfig::new()),
        )?);
    }
    let selectors = configs
        .iter()
        .map(|c| c.init(k))
        .collect::<Result<Vec<_>, _>>()?;
    let mut audit = SoftTargetAudit::new(selectors, temperature, best)?;
    let n = ctx.train.labels.len();
    println!(
        "screening: {} rules on {n} training images (no augmentation), T = {temperature}",
        names.len()
    );
    for (inputs, labels) in ctx.batches(&ctx.train)? {
        let logits: Vec<_> = teachers
            .iter()
            .map(|t| t.forward(inputs.clone()).logits)
            .collect();
        audit.update(&logits, labels)?;
    }
    let report = audit.finish()?;
    let teachers: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
    let accuracy = teachers
        .iter()
        .zip(&report.teacher_accuracy)
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
