#!/bin/bash
# The experiments harness in the paper's setting (CRD, Tian et al. 2020; CA-MKD, Zhang et al.
# 2022): VGG13 and ResNet32x4 teachers at full width, all 50,000 CIFAR-100 training images and
# the 10,000 test images, 240 epochs with SGD (lr 0.05, momentum 0.9, weight decay 5e-4) and the
# learning rate x0.1 after epochs 150, 180 and 210, batch 64, T = 4. Meant for a GPU.
#
#   scripts/cifar100-paper.sh [STAGES] [OPTIONS]
#   scripts/cifar100-paper.sh --device cuda                      # teachers, student, eval
#   FEATURES=cuda,download,train,charts scripts/cifar100-paper.sh ablation --device cuda --seeds 5
#
# The options given come after these, so they override them (clap keeps the last value).
set -euo pipefail
features=${FEATURES:-wgpu,download,train,charts}
exec cargo run --release --features "$features" --example cifar100_experiments -- \
  --epochs 240 --teacher-epochs 240 --width 64 --teachers vgg13,resnet32x4 \
  --lr-decay-at 0.625,0.75,0.875 --limit-train 0 --limit-test 0 --device wgpu "$@"
