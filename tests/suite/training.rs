//! End-to-end: teachers trained on a learnable synthetic task, then a student distilled from
//! them through a plain loop and (feature `train`) through burn-train's SupervisedTraining.
use crate::common;

use std::sync::Arc;

use crate::common::*;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_distill::models::{Cnn, CnnConfig};
use burn_distill::{DistillerConfig, FrozenTeacher, Teacher};

const CLASSES: usize = 4;
const SIZE: usize = 8;

/// A deterministic, learnable task: each class has a fixed random mean colour (one value in
/// [-1, 1] per channel) and a fixed random 3x8x8 texture of amplitude 0.5; an image is its
/// class's colour plus texture plus noise of standard deviation 0.8 (a sum of three
/// uniforms). Global-average-pooled CNNs separate the classes by colour.
struct Synthetic {
    images: Vec<f32>,
    labels: Vec<i64>,
}

fn lcg(state: &mut u64) -> f32 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*state >> 40) as f32) / ((1u64 << 24) as f32)
}

fn synthetic(n: usize, seed: u64) -> Synthetic {
    let per = 3 * SIZE * SIZE;
    let mut proto_state = 7u64;
    let colours: Vec<f32> = (0..CLASSES * 3)
        .map(|_| 2.0 * lcg(&mut proto_state) - 1.0)
        .collect();
    let textures: Vec<f32> = (0..CLASSES * per)
        .map(|_| lcg(&mut proto_state) - 0.5)
        .collect();
    let mut state = seed;
    let mut images = Vec::with_capacity(n * per);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % CLASSES;
        labels.push(class as i64);
        for p in 0..per {
            let channel = p / (SIZE * SIZE);
            let noise = (lcg(&mut state) + lcg(&mut state) + lcg(&mut state) - 1.5) * 1.6;
            images.push(colours[class * 3 + channel] + textures[class * per + p] + noise);
        }
    }
    Synthetic { images, labels }
}

impl Synthetic {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn batch(&self, start: usize, size: usize, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        let per = 3 * SIZE * SIZE;
        let images = self.images[start * per..(start + size) * per].to_vec();
        let labels = self.labels[start..start + size].to_vec();
        (
            Tensor::from_data(TensorData::new(images, [size, 3, SIZE, SIZE]), device),
            Tensor::from_data(TensorData::new(labels, [size]), device),
        )
    }
}

fn accuracy(model: &Cnn, data: &Synthetic, device: &Device) -> f64 {
    let model = model.valid();
    let (images, labels) = data.batch(0, data.len(), device);
    let predicted = model.forward(images).argmax(1).reshape([data.len()]);
    let correct = predicted.equal(labels).int().sum().into_scalar::<i64>();
    correct as f64 / data.len() as f64
}

fn teacher_accuracy(
    teacher: &std::sync::Arc<dyn Teacher>,
    data: &Synthetic,
    device: &Device,
) -> f64 {
    let (images, labels) = data.batch(0, data.len(), device);
    let predicted = teacher
        .forward(images)
        .logits
        .argmax(1)
        .reshape([data.len()]);
    predicted.equal(labels).int().sum().into_scalar::<i64>() as f64 / data.len() as f64
}

fn train_teacher(width: usize, steps: usize, data: &Synthetic, device: &Device) -> Cnn {
    let mut model = CnnConfig::new(CLASSES).with_width(width).init(device);
    let mut optim = AdamConfig::new().init();
    let ce = burn::nn::loss::CrossEntropyLossConfig::new().init(device);
    for step in 0..steps {
        let start = (step * 32) % (data.len() - 32);
        let (images, labels) = data.batch(start, 32, device);
        let loss = ce.forward(model.forward(images), labels);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.01, model, grads);
    }
    model
}

fn teachers(train: &Synthetic, device: &Device) -> Vec<Arc<dyn Teacher>> {
    vec![
        Arc::new(FrozenTeacher::from_model(
            "good",
            train_teacher(8, 40, train, device),
        )),
        Arc::new(FrozenTeacher::from_model(
            "weak",
            train_teacher(4, 3, train, device),
        )),
    ]
}

#[test]
fn plain_loop_distillation_learns() {
    for (name, plain) in cpu_devices() {
        let _seeded = common::seeded(&plain, 1);
        let device = plain.clone().autodiff();
        let train = synthetic(256, 11);
        let test = synthetic(128, 99);
        let teachers = teachers(&train, &device);
        eprintln!(
            "{name}: teacher test accuracy {:.3}",
            teacher_accuracy(&teachers[0], &test, &plain)
        );
        let mut distiller = DistillerConfig::new()
            .init(
                CnnConfig::new(CLASSES).with_width(4).init(&device),
                teachers,
                &device,
            )
            .unwrap();
        let mut optim = AdamConfig::new().init();
        let mut losses = Vec::new();
        let mut kept = Vec::new();
        for step in 0..60 {
            let start = (step * 32) % (train.len() - 32);
            let (images, labels) = train.batch(start, 32, &device);
            let out = distiller.forward(images, labels).unwrap();
            losses.push(out.loss.total.clone().into_scalar::<f32>());
            kept.push(floats(&out.selection.keep_rate()));
            let grads = GradientsParams::from_grads(out.loss.total.backward(), &distiller);
            distiller = optim.step(0.01, distiller, grads).advance();
        }
        let first: f32 = losses[..8].iter().sum::<f32>() / 8.0;
        let last: f32 = losses[losses.len() - 8..].iter().sum::<f32>() / 8.0;
        assert!(
            last < 0.7 * first,
            "{name}: loss went from {first} to {last}"
        );
        // The good teacher is kept far more often than the weak one.
        let good: f32 = kept.iter().map(|k| k[0]).sum();
        let weak: f32 = kept.iter().map(|k| k[1]).sum();
        assert!(good > weak, "{name}: keep rates good {good} weak {weak}");
        let acc = accuracy(&distiller.student, &test, &plain);
        eprintln!("{name}: loss {first:.3} -> {last:.3}, student test accuracy {acc:.3}");
        // Measured 0.99 (flex) and 1.00 (ndarray); chance is 0.25.
        assert!(
            acc > 0.8,
            "{name}: student test accuracy {acc} (chance 0.25)"
        );
    }
}

#[cfg(feature = "train")]
mod supervised {
    use super::*;
    use burn::data::dataloader::DataLoaderBuilder;
    use burn::data::dataloader::batcher::Batcher;
    use burn::data::dataset::InMemDataset;
    use burn::optim::lr_scheduler::constant::ConstantLr;
    use burn::train::metric::{AccuracyMetric, LossMetric};
    use burn::train::{Learner, LearnerSummary, SupervisedTraining};
    use burn_distill::DistillBatch;
    use burn_distill::train::{LossPart, LossPartMetric};

    #[derive(Clone, Debug)]
    struct Item {
        image: Vec<f32>,
        label: i64,
    }

    struct ItemBatcher;

    impl Batcher<Item, DistillBatch> for ItemBatcher {
        fn batch(&self, items: Vec<Item>, device: &Device) -> DistillBatch {
            let n = items.len();
            let images: Vec<f32> = items.iter().flat_map(|i| i.image.clone()).collect();
            let labels: Vec<i64> = items.iter().map(|i| i.label).collect();
            DistillBatch {
                inputs: Tensor::from_data(TensorData::new(images, [n, 3, SIZE, SIZE]), device),
                labels: Tensor::from_data(TensorData::new(labels, [n]), device),
            }
        }
    }

    fn items(data: &Synthetic) -> Vec<Item> {
        let per = 3 * SIZE * SIZE;
        (0..data.len())
            .map(|i| Item {
                image: data.images[i * per..(i + 1) * per].to_vec(),
                label: data.labels[i],
            })
            .collect()
    }

    #[test]
    fn supervised_training_distillation_learns() {
        let (name, plain) = cpu_devices().remove(0);
        let _seeded = common::seeded(&plain, 2);
        let device = plain.clone().autodiff();
        let train = synthetic(256, 21);
        let test = synthetic(128, 77);
        let teachers = teachers(&train, &device);
        let student = CnnConfig::new(CLASSES).with_width(4).init(&device);
        let before = accuracy(&student, &test, &plain);
        let distiller = DistillerConfig::new()
            .init(student, teachers, &device)
            .unwrap();

        let loader_train = DataLoaderBuilder::new(ItemBatcher)
            .batch_size(32)
            .shuffle(3)
            .build(InMemDataset::new(items(&train)));
        let loader_valid = DataLoaderBuilder::new(ItemBatcher)
            .batch_size(64)
            .build(InMemDataset::new(items(&test)));
        let dir = crate::common::temp_path("training", "supervised");
        let learner = Learner::new(distiller, AdamConfig::new().init(), ConstantLr::new(0.01));
        let result = SupervisedTraining::new(&dir, loader_train, loader_valid)
            .metric_train_numeric(AccuracyMetric::new())
            .metric_valid_numeric(AccuracyMetric::new())
            .metric_train_numeric(LossMetric::new())
            .metric_train_numeric(LossPartMetric::new(LossPart::Hard))
            .metric_train_numeric(LossPartMetric::new(LossPart::Soft))
            .metric_train_numeric(LossPartMetric::new(LossPart::Feature))
            .with_application_logger(None)
            .num_epochs(8)
            .launch(learner);
        assert!(result.error.is_none(), "{name}: {:?}", result.error);
        // burn-train advanced the schedule's clock once per optimizer step: 8 epochs of
        // 256 / 32 batches.
        assert_eq!(result.model.optimizer_steps(), 8 * 8, "{name}");
        let student = result.model.into_student();
        let after = accuracy(&student, &test, &plain);
        eprintln!("{name}: student test accuracy {before:.3} -> {after:.3}");
        // Measured 1.00 on flex; chance is 0.25.
        assert!(
            after > 0.8 && after > before,
            "{name}: accuracy {before} -> {after} (chance 0.25)"
        );
        // The per-epoch training loss, read back from burn-train's metric logs, goes down.
        let summary = LearnerSummary::new(&dir, &["Loss"]).unwrap();
        let loss = &summary
            .metrics
            .train
            .iter()
            .find(|m| m.name == "Loss")
            .unwrap()
            .entries;
        assert_eq!(loss.len(), 8, "{name}: one loss entry per epoch");
        let (first, last) = (loss[0].value, loss[7].value);
        assert!(last < 0.7 * first, "{name}: epoch loss {first} -> {last}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[cfg(any(feature = "train", feature = "remote"))]
/// Every float parameter's values, flattened, except batch norm's running statistics
/// (`running_mean`, `running_var`: visited as floats too, but not trained).
fn trainable_parameters<M: burn::module::Module>(module: &M) -> Vec<f32> {
    #[derive(Default)]
    struct Collect {
        path: Vec<String>,
        values: Vec<f32>,
        skipped: usize,
    }
    impl burn::module::ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            match self.path.last() {
                Some(name) if name.starts_with("running_") => self.skipped += 1,
                _ => self.values.extend(floats(&param.val())),
            }
        }
    }
    let mut collect = Collect::default();
    module.visit(&mut collect);
    assert!(collect.skipped > 0, "no running statistics found");
    assert!(!collect.values.is_empty(), "no trainable parameter found");
    collect.values
}

/// burn-train's MultiDevice strategy on two CPU devices (flex and ndarray: distinct backends,
/// so distinct devices to Burn; device 0 gets the first half of the data and device 1 the
/// second, `split_dataloader`): the run trains, the teachers run as replicas on device 1, the
/// schedule's clock counts optimizer steps on every replica, and the student's parameters end
/// where one device with `grads_accumulation(2)` over the same two batches ends, and where the
/// same run on flex + flex ends (no step mixes the devices' tensors), in both optimizer modes
/// (asserted to 1e-4 of the logits' scale).
///
/// Batch norm's running statistics are not parameters: under MultiDevice each replica updates
/// its own and burn-train keeps the main device's, which saw half the batches. So the
/// trainable parameters are compared with the one-device run (to 1e-5 of their scale), and the
/// students' outputs in inference mode only between the two-device runs (the one-device
/// student's differ by 8e-2 of the logits' scale after two steps, all of it the statistics).
///
/// `BURN_DISTILL_GPU_DEVICES` (for example `cuda:0,cuda:1`, set by `scripts/gpu-check.sh`)
/// runs the same comparison on the first two of those devices, and for CUDA devices DDP too.
#[cfg(feature = "train")]
mod multi_device {
    use super::*;
    use burn::data::dataloader::DataLoaderBuilder;
    use burn::data::dataloader::batcher::Batcher;
    use burn::data::dataset::InMemDataset;
    use burn::optim::SgdConfig;
    use burn::optim::lr_scheduler::constant::ConstantLr;
    use burn::train::{ExecutionStrategy, Learner, MultiDeviceOptim, SupervisedTraining};
    use burn_distill::{DistillBatch, Distiller};

    #[derive(Clone, Debug)]
    struct Item(Vec<f32>, i64);

    struct ItemBatcher;

    impl Batcher<Item, DistillBatch> for ItemBatcher {
        fn batch(&self, items: Vec<Item>, device: &Device) -> DistillBatch {
            let n = items.len();
            let images: Vec<f32> = items.iter().flat_map(|i| i.0.clone()).collect();
            let labels: Vec<i64> = items.iter().map(|i| i.1).collect();
            DistillBatch {
                inputs: Tensor::from_data(TensorData::new(images, [n, 3, SIZE, SIZE]), device),
                labels: Tensor::from_data(TensorData::new(labels, [n]), device),
            }
        }
    }

    /// The student's trainable parameters (flattened), its logits in inference mode (with
    /// its running statistics) and the optimizer steps counted by the distiller.
    fn run(
        base: &Device,
        strategy: Option<(ExecutionStrategy, Device)>,
        lr: f64,
        name: &str,
    ) -> (Vec<f32>, Vec<f32>, usize) {
        let _seeded = common::seeded(base, 5);
        let home = base.clone().autodiff();
        let data = synthetic(64, 31);
        let per = 3 * SIZE * SIZE;
        let items: Vec<Item> = (0..data.len())
            .map(|i| Item(data.images[i * per..(i + 1) * per].to_vec(), data.labels[i]))
            .collect();
        let teachers = teachers(&data, &home);
        let student = CnnConfig::new(CLASSES).with_width(4).init(&home);
        let distiller: Distiller<Cnn> = DistillerConfig::new()
            .with_loss(common::loss_from_step_0())
            .init(student, teachers, &home)
            .unwrap();
        let loader = |items: Vec<Item>| {
            DataLoaderBuilder::new(ItemBatcher)
                .batch_size(32)
                .set_device(home.clone())
                .build(InMemDataset::new(items))
        };
        let mut training = SupervisedTraining::new(
            common::temp_path("multi-device", name),
            loader(items.clone()),
            loader(items[..32].to_vec()),
        )
        .with_application_logger(None)
        .num_epochs(2);
        let second = strategy.as_ref().map(|(_, second)| second.clone());
        training = match strategy {
            Some((strategy, _)) => training.with_training_strategy(strategy.into()),
            None => training.grads_accumulation(2),
        };
        let learner = Learner::new(distiller, SgdConfig::new().init(), ConstantLr::new(lr));
        let result = training.launch(learner);
        assert!(result.error.is_none(), "{name}: {:?}", result.error);
        let steps = result.model.optimizer_steps();
        // Device 1's replicas run there.
        if let Some(second) = second {
            let second = second.inner();
            let replicas = result.model.teachers_on(&second).unwrap();
            let probe = Tensor::<4>::from_data(
                TensorData::new(items[0].0.clone(), [1, 3, SIZE, SIZE]),
                &second,
            );
            assert_eq!(replicas[0].forward(probe).logits.device(), second);
        }
        let student = result.model.into_student();
        let parameters = trainable_parameters(&student);
        let (images, _) = data.batch(0, 16, base);
        let inference_mode = floats(&student.valid().forward(images));
        (parameters, inference_mode, steps)
    }

    fn assert_close(actual: &[f32], expected: &[f32], tolerance: f32, what: &str) {
        assert_eq!(actual.len(), expected.len(), "{what}: lengths");
        let scale = expected.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (i, (a, b)) in actual.iter().zip(expected).enumerate() {
            assert!(
                (a - b).abs() <= tolerance * scale,
                "{what}: value {i}: {a} vs {b}"
            );
        }
    }

    fn compare(base: &Device, pair: [Device; 2], ddp: bool) {
        let label = format!("{:?} + {:?}", pair[0], pair[1]);
        let same = vec![base.clone().autodiff(), base.clone().autodiff()];
        let pair: Vec<Device> = pair.iter().map(|d| d.clone().autodiff()).collect();
        let (single, _, single_steps) = run(base, None, 0.05, "single");
        assert_eq!(single_steps, 2, "two epochs of one accumulated step");
        let multi = |devices: Vec<Device>, optim| {
            let second = devices[1].clone();
            (ExecutionStrategy::multi(devices, optim), second)
        };
        let (reference, reference_inference, _) = run(
            base,
            Some(multi(same, MultiDeviceOptim::OptimMainDevice)),
            0.05,
            "same-device",
        );
        assert_close(&reference, &single, 1e-5, "one device twice vs accumulated");
        for optim in [
            MultiDeviceOptim::OptimMainDevice,
            MultiDeviceOptim::OptimSharded,
        ] {
            let name = format!("{label} {optim:?}");
            let (multi, multi_inference, steps) =
                run(base, Some(multi(pair.clone(), optim)), 0.05, &name);
            assert_eq!(steps, 2, "{name}: the clock counts optimizer steps");
            assert_close(&multi, &single, 1e-5, &format!("{name}: vs one device"));
            assert_close(
                &multi_inference,
                &reference_inference,
                1e-4,
                &format!("{name}: inference mode, vs one device twice"),
            );
        }
        if ddp {
            // DDP all-reduces the gradients as a mean: SGD at twice the learning rate takes
            // the accumulated (summed) step.
            use burn::tensor::distributed::{DistributedConfig, ReduceOperation};
            let config = DistributedConfig {
                all_reduce_op: ReduceOperation::Mean,
            };
            let second = pair[1].clone();
            let strategy = ExecutionStrategy::ddp(pair.clone(), config);
            let (ddp, _, steps) = run(base, Some((strategy, second)), 0.1, "ddp");
            assert_eq!(steps, 2, "DDP: the clock counts optimizer steps");
            assert_close(&ddp, &single, 1e-5, "DDP vs one device");
        }
    }

    #[cfg(all(feature = "flex", feature = "ndarray"))]
    #[test]
    fn multi_device_training_is_the_same_on_any_second_device_and_in_both_optimizer_modes() {
        #[allow(deprecated)]
        let pair = [Device::flex(), Device::ndarray()];
        compare(&Device::flex(), pair, false);
    }

    /// On the GPUs named by `BURN_DISTILL_GPU_DEVICES` (two or more; skipped when unset).
    #[test]
    fn multi_device_training_on_the_gpus_named_in_the_environment() {
        let list = std::env::var("BURN_DISTILL_GPU_DEVICES").unwrap_or_default();
        if list.trim().is_empty() {
            eprintln!("BURN_DISTILL_GPU_DEVICES unset: nothing to run");
            return;
        }
        let devices = burn_distill::devices::parse_devices(&list).unwrap();
        assert!(devices.len() >= 2, "give two devices: {list}");
        let ddp = burn_distill::devices::check_ddp_devices(&devices[..2]).is_ok();
        compare(&devices[0], [devices[0].clone(), devices[1].clone()], ddp);
    }
}

/// Burn's remote backend: a server started here on 127.0.0.1 (websocket, a port the OS picks)
/// serves a flex device; the distiller built locally is moved there (student, adapters and
/// step count; the teachers follow the first batch as replicas on the remote device) and
/// trains one epoch by hand on batches that live there. It ends where the same epoch on the
/// local flex device ends (the server runs the same backend), to 1e-5 of the parameters' scale.
#[cfg(feature = "remote")]
mod remote {
    use super::*;
    use burn::optim::SgdConfig;
    use burn::tensor::remote::RemoteHost;
    use burn::tensor::server::{RemoteServer, WebSocketTransport};

    fn start_server() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a local port");
        let url = format!("ws://{}", listener.local_addr().expect("its address"));
        std::thread::spawn(move || {
            let served = RemoteServer::new([Device::flex()])
                .serve(WebSocketTransport::from_listener(listener));
            if let Err(error) = served {
                eprintln!("remote server stopped: {error}");
            }
        });
        url
    }

    /// One epoch (two batches of 32) by hand on `device`, from the same seeded start.
    fn one_epoch(device: Option<&Device>) -> (Vec<f32>, usize) {
        let flex = Device::flex();
        let _seeded = common::seeded(&flex, 9);
        let home = flex.clone().autodiff();
        let data = synthetic(64, 21);
        let teachers = teachers(&data, &home);
        let mut distiller = DistillerConfig::new()
            .with_loss(common::loss_from_step_0())
            .init(
                CnnConfig::new(CLASSES).with_width(4).init(&home),
                teachers,
                &home,
            )
            .unwrap();
        let target = device.map(|d| d.clone().autodiff()).unwrap_or(home);
        distiller = distiller.fork(&target);
        let mut optim = SgdConfig::new().init();
        for start in [0, 32] {
            let (images, labels) = data.batch(start, 32, &target);
            let out = distiller.forward(images.clone(), labels).unwrap();
            let total = out.loss.total.clone().into_scalar::<f32>();
            assert!(total.is_finite(), "loss {total}");
            let grads = GradientsParams::from_grads(out.loss.total.backward(), &distiller);
            distiller = optim.step(0.05, distiller, grads).advance();
        }
        if let Some(device) = device {
            let replicas = distiller.teachers_on(&target).unwrap();
            let (images, _) = data.batch(0, 4, device);
            assert_eq!(replicas[0].forward(images).logits.device(), *device);
        }
        let steps = distiller.optimizer_steps();
        (trainable_parameters(&distiller.into_student()), steps)
    }

    #[test]
    fn a_distiller_moved_to_a_remote_device_trains_there_as_it_does_locally() {
        let url = start_server();
        let remote = Device::remote_options(&RemoteHost::websocket(&url))
            .init()
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        let (local, local_steps) = one_epoch(None);
        let (away, steps) = one_epoch(Some(&remote));
        assert_eq!((local_steps, steps), (2, 2));
        let scale = local.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let worst = away
            .iter()
            .zip(&local)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        eprintln!(
            "remote vs local: {} parameters, largest difference {worst:e} (scale {scale})",
            local.len()
        );
        for (i, (a, b)) in away.iter().zip(&local).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * scale,
                "parameter value {i}: remote {a} vs local {b}"
            );
        }
    }
}
