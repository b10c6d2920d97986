//! Teachers follow the batch: a distiller forked onto another device runs replicas of its
//! teachers there, made once, and a device that cannot hold a teacher is a typed error.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use burn_distill::models::CnnConfig;
use burn_distill::{DistillerConfig, Error, FrozenTeacher, ModelOutput, Teacher};

use crate::common;

/// A frozen teacher that counts how often it is placed on a device.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn Teacher>,
    placed: Arc<AtomicUsize>,
}

impl Teacher for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }
    fn feature_specs(&self) -> Option<Vec<burn_distill::FeatureSpec>> {
        self.inner.feature_specs()
    }
    fn forward(&self, input: Tensor<4>) -> ModelOutput {
        self.inner.forward(input)
    }
    fn to_device(&self, device: &Device) -> burn_distill::Result<Arc<dyn Teacher>> {
        self.placed.fetch_add(1, Ordering::SeqCst);
        Ok(Arc::new(Counting {
            inner: self.inner.to_device(device)?,
            placed: self.placed.clone(),
        }))
    }
}

/// The other CPU device compiled in besides `home` (flex and ndarray are distinct devices
/// to Burn: different backends, different tensors).
fn other_device(home: &Device) -> Option<Device> {
    common::cpu_devices()
        .into_iter()
        .map(|(_, d)| d)
        .find(|d| d != home)
}

#[test]
fn a_forked_distiller_runs_teacher_replicas_made_once_on_the_batch_device() {
    let home = common::cpu_devices().remove(0).1;
    let Some(other) = other_device(&home) else {
        eprintln!("one CPU device compiled in: enable flex and ndarray for this test");
        return;
    };
    let _guard = common::seeded(&home, 3);
    let model = |width| {
        CnnConfig::new(4)
            .with_width(width)
            .init(&home.clone().autodiff())
    };
    let placed = Arc::new(AtomicUsize::new(0));
    let teachers: Vec<Arc<dyn Teacher>> = (0..2)
        .map(|k| {
            Arc::new(Counting {
                inner: Arc::new(FrozenTeacher::from_model(format!("t{k}"), model(4))),
                placed: placed.clone(),
            }) as Arc<dyn Teacher>
        })
        .collect();
    let distiller = DistillerConfig::new()
        .init(model(2), teachers, &home.clone().autodiff())
        .unwrap();
    let pixels = common::values(6 * 3 * 8 * 8, 11, 1.0);
    let batch = |device: &Device| {
        let images = Tensor::<1>::from_floats(pixels.as_slice(), device).reshape([6, 3, 8, 8]);
        (images, common::labels(&[0, 1, 2, 3, 0, 1], device))
    };
    let (images, labels) = batch(&home.clone().autodiff());
    let at_home = distiller.forward(images, labels).unwrap();
    assert_eq!(
        placed.load(Ordering::SeqCst),
        0,
        "no replica for the home device"
    );

    // burn-train gives each device `model.fork(&device)`: the student and adapters move, the
    // teachers are replicated there once and reused.
    let forked = distiller.clone().fork(&other.clone().autodiff());
    for _ in 0..3 {
        let (images, labels) = batch(&other.clone().autodiff());
        let away = forked.forward(images, labels).unwrap();
        assert_eq!(
            away.loss.total.device(),
            other,
            "the step ran on the batch's device"
        );
        // Same weights on both devices: the same loss, to float rounding.
        common::assert_close(
            "loss on the other device",
            "cpu",
            &common::floats(&away.loss.total),
            &[common::floats(&at_home.loss.total)[0] as f64],
            1e-4,
        );
    }
    assert_eq!(
        placed.load(Ordering::SeqCst),
        2,
        "one replica per teacher, made once"
    );
    let replicas = forked.teachers_on(&other).unwrap();
    let (images, _) = batch(&other);
    for teacher in replicas.iter() {
        assert_eq!(teacher.forward(images.clone()).logits.device(), other);
    }
    // Clones share the replicas.
    let _ = distiller.teachers_on(&other).unwrap();
    assert_eq!(placed.load(Ordering::SeqCst), 2);
}

/// A teacher type without `to_device` cannot follow the batch: the step names the teacher
/// and the device instead of mixing devices.
#[test]
fn a_teacher_that_cannot_move_is_a_typed_error_naming_it_and_the_device() {
    #[derive(Debug)]
    struct Fixed(Arc<dyn Teacher>);
    impl Teacher for Fixed {
        fn name(&self) -> &str {
            "pinned"
        }
        fn num_classes(&self) -> usize {
            self.0.num_classes()
        }
        fn feature_specs(&self) -> Option<Vec<burn_distill::FeatureSpec>> {
            self.0.feature_specs()
        }
        fn forward(&self, input: Tensor<4>) -> ModelOutput {
            self.0.forward(input)
        }
    }
    let home = common::cpu_devices().remove(0).1;
    let Some(other) = other_device(&home) else {
        eprintln!("one CPU device compiled in: enable flex and ndarray for this test");
        return;
    };
    let model = |width| CnnConfig::new(4).with_width(width).init(&home);
    let teacher = Arc::new(FrozenTeacher::from_model("inner", model(4)));
    let distiller = DistillerConfig::new()
        .init(
            model(2),
            vec![Arc::new(Fixed(teacher)) as Arc<dyn Teacher>],
            &home,
        )
        .unwrap()
        .fork(&other);
    let images = Tensor::<4>::zeros([2, 3, 8, 8], &other);
    let err = distiller
        .forward(images, common::labels(&[0, 1], &other))
        .unwrap_err();
    match &err {
        Error::TeacherPlacement {
            teacher, device, ..
        } => {
            assert_eq!(teacher, "pinned");
            assert_eq!(*device, format!("{other:?}"));
        }
        other => panic!("expected TeacherPlacement, got {other}"),
    }
    assert!(
        err.to_string().contains("cannot place teacher pinned on"),
        "{err}"
    );
}

/// `prescreen` places the teachers on the batches' device once: teachers built on one CPU
/// device score batches on the other exactly as on their own.
#[test]
fn prescreen_runs_the_teachers_on_the_batches_device() {
    let home = common::cpu_devices().remove(0).1;
    let Some(other) = other_device(&home) else {
        eprintln!("one CPU device compiled in: enable flex and ndarray for this test");
        return;
    };
    let _guard = common::seeded(&home, 4);
    let teachers: Vec<Arc<dyn Teacher>> = (0..2)
        .map(|k| {
            let model = CnnConfig::new(4).with_width(2 + 2 * k).init(&home);
            Arc::new(FrozenTeacher::from_model(format!("t{k}"), model)) as Arc<dyn Teacher>
        })
        .collect();
    let pixels = common::values(8 * 3 * 8 * 8, 5, 1.0);
    let batch = |device: &Device| {
        let images = Tensor::<1>::from_floats(pixels.as_slice(), device).reshape([8, 3, 8, 8]);
        (images, common::labels(&[0, 1, 2, 3, 0, 1, 2, 3], device))
    };
    let rule = burn_distill::ScreeningRule::KeepAll;
    let at_home = burn_distill::prescreen(&teachers, [batch(&home)], &rule).unwrap();
    let away = burn_distill::prescreen(&teachers, [batch(&other)], &rule).unwrap();
    assert_eq!(at_home.accuracy, away.accuracy);
    for (a, b) in at_home
        .mean_cross_entropy
        .iter()
        .zip(&away.mean_cross_entropy)
    {
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn teacher_cache_serves_and_computes_on_the_batches_device_placing_each_teacher_once() {
    let home = common::cpu_devices().remove(0).1;
    let Some(other) = other_device(&home) else {
        eprintln!("one CPU device compiled in: enable flex and ndarray for this test");
        return;
    };
    let _guard = common::seeded(&home, 6);
    let placed = Arc::new(AtomicUsize::new(0));
    let teachers: Vec<Arc<dyn Teacher>> = vec![Arc::new(Counting {
        inner: Arc::new(FrozenTeacher::from_model(
            "t",
            CnnConfig::new(4).with_width(2).init(&home),
        )),
        placed: placed.clone(),
    })];
    let pixels = common::values(4 * 3 * 8 * 8, 8, 1.0);
    let images =
        |device: &Device| Tensor::<1>::from_floats(pixels.as_slice(), device).reshape([4, 3, 8, 8]);
    let expected = common::floats(&teachers[0].forward(images(&home)).logits);
    let mut cache = burn_distill::TeacherCache::new(1 << 20);
    // A miss on the other device: the teacher is placed there once and runs there.
    let computed = cache.outputs(&teachers, &[0, 1, 2, 3], images(&other));
    // A hit: rebuilt on the batch's device.
    let cached = cache.outputs(&teachers, &[0, 1, 2, 3], images(&other));
    // A miss again (new indices) on the same device reuses the replica.
    let again = cache.outputs(&teachers, &[4, 5, 6, 7], images(&other));
    assert_eq!((cache.hits(), cache.misses()), (1, 2));
    assert_eq!(
        placed.load(Ordering::SeqCst),
        1,
        "one replica for the other device"
    );
    for output in [&computed, &cached, &again] {
        assert_eq!(output[0].logits.device(), other);
        for (a, b) in common::floats(&output[0].logits).iter().zip(&expected) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
}
