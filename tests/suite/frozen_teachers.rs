//! Teachers stay bit-identical through training. It seeds the default device, so it holds
//! the suite's seeding lock (`common::seeded`) while it runs.
use crate::common;

use std::sync::Arc;

use crate::common::floats;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Int, Tensor};
use burn_distill::models::CnnConfig;
use burn_distill::{DistillerConfig, FrozenTeacher, Teacher};

/// Every float parameter's values, flattened (bit patterns, for exact comparison).
fn parameter_bits<M: Module>(module: &M) -> Vec<u32> {
    struct Collect(Vec<u32>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            self.0
                .extend(floats(&param.val()).iter().map(|v| v.to_bits()));
        }
    }
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    collect.0
}

#[test]
fn training_leaves_teachers_bit_identical() {
    let plain = Device::default();
    let _seeded = common::seeded(&plain, 5);
    let device = plain.clone().autodiff();
    let frozen = Arc::new(FrozenTeacher::from_model(
        "t",
        CnnConfig::new(4).with_width(4).init(&device),
    ));
    let before = parameter_bits(frozen.model());
    let student = CnnConfig::new(4).with_width(4).init(&device);
    let student_before = parameter_bits(&student);
    let mut distiller = DistillerConfig::new()
        .init(student, vec![frozen.clone() as Arc<dyn Teacher>], &device)
        .unwrap();
    let mut optim = AdamConfig::new().init();
    for step in 0..5 {
        let images = Tensor::<4>::random([16, 3, 8, 8], Distribution::Default, &device);
        let labels = Tensor::<1, Int>::from_ints([step as i64 % 4; 16], &device);
        let out = distiller.forward(images, labels).unwrap();
        let grads = GradientsParams::from_grads(out.loss.total.backward(), &distiller);
        distiller = optim.step(0.01, distiller, grads).advance();
    }
    assert_eq!(
        parameter_bits(frozen.model()),
        before,
        "a teacher parameter changed"
    );
    assert_ne!(
        parameter_bits(&distiller.student),
        student_before,
        "the student trained"
    );
}
