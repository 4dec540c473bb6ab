"""The fine-tuning loop, written out: epochs of label-token loss, validation loss per epoch, early stop.

Only trainable parameters go to the optimizer; the best epoch's trainable weights are kept in memory
and restored at the end, so early stopping returns the best model, not the last. A non-finite loss
stops the trial at once with a reason instead of training on garbage.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from accelerate import Accelerator
from transformers import get_linear_schedule_with_warmup

from bakeoff.config import TrainingSpec
from bakeoff.errors import BakeoffError
from bakeoff.models.prompt import EncodedItem
from bakeoff.training.batches import batches
from bakeoff.training.fused_lora import fused_lora_forward
from bakeoff.training.grouped_attention import grouped_attention
from bakeoff.training.packing import batch_builder


class TrainingDiverged(BakeoffError):
    """Loss became NaN or infinite."""


def steady_step_s(training: dict | None) -> float | None:
    """Mean optimizer step after the first (a stored `TrainResult` as a dict): what a long run's steps take,
    and what the estimator prices. The first step also allocates optimizer state and warms kernels; with
    the few steps of a small trial it would weigh on the mean (2.4 s against 1.6 s measured for Gemma-3 at
    4 steps). Runs stored before `first_step_s` existed, or of one step, give the plain mean."""
    if not training or not training.get("steps"):
        return None
    first, steps = training.get("first_step_s") or 0.0, training["steps"]
    if steps > 1 and first:
        return (training["step_time_s"] - first) / (steps - 1)
    return training["step_time_s"] / steps


@dataclass
class TrainResult:
    steps: int = 0
    epochs_run: int = 0
    best_epoch: int = 0
    stopped_early: bool = False
    train_loss_per_epoch: list[float] = field(default_factory=list)
    validation_loss_per_epoch: list[float] = field(default_factory=list)
    wall_s: float = 0.0  # whole loop, validation passes included
    step_time_s: float = 0.0  # optimizer steps only (forward, backward, update)
    first_step_s: float = 0.0  # the first of them: it also pays for allocation and lazy initialisation
    train_tokens: int = 0  # real tokens of the training batches (prompt + label per item), all epochs
    computed_tokens: int = 0  # tokens actually run: the shared prefix once per packed row, no padding
    packed: bool = False  # packed batches (else left-padded ones)

    @property
    def train_tokens_per_s(self) -> float:
        return self.train_tokens / self.step_time_s if self.step_time_s else 0.0


@dataclass(frozen=True)
class LoopInputs:
    """What the loop trains on."""

    train: list[EncodedItem]
    validation: list[EncodedItem]
    label_ids: list[list[int]]
    pad_id: int
    learning_rate: float
    seed: int


def train(
    model, inputs: LoopInputs, spec: TrainingSpec, accelerator: Accelerator, on_step=None, on_epoch=None
) -> TrainResult:
    """Fine-tune `model` in place (its trainable parameters); returns the loss history and throughput.
    `on_step(loss)` after each optimizer step, `on_epoch(epoch, train_loss, validation_loss)` after each epoch."""
    # LoRA's scaling and sum inside the GEMM (training/fused_lora.py); packed rows attend by groups of items
    # (training/grouped_attention.py). Both only while training: the model comes back as it went in.
    with fused_lora_forward(model), grouped_attention(model):
        return _train(model, inputs, spec, accelerator, on_step, on_epoch)


def _train(model, inputs: LoopInputs, spec: TrainingSpec, accelerator: Accelerator, on_step, on_epoch) -> TrainResult:
    torch.manual_seed(inputs.seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    # Fused AdamW (CPU and CUDA): one kernel for all adapter tensors; SmolLM2's 420 adapter tensors: 6 ms vs 16 ms a
    # step here.
    optimizer = torch.optim.AdamW(
        trainable,
        lr=inputs.learning_rate,
        weight_decay=spec.weight_decay,
        fused=all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in trainable),
    )
    steps_per_epoch = math.ceil(len(inputs.train) / spec.batch_size)
    total_steps = steps_per_epoch * spec.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(spec.warmup_fraction * total_steps), total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)

    make_batch, packed = batch_builder(
        model, inputs.train + inputs.validation, inputs.label_ids, inputs.pad_id, spec.packing
    )
    result = TrainResult(packed=packed)
    best_loss, best_state, stale_epochs = math.inf, None, 0
    started = time.perf_counter()
    for epoch in range(spec.epochs):
        model.train()
        epoch_loss, epoch_targets = 0.0, 0
        for batch_items in batches(inputs.train, spec.batch_size, seed=inputs.seed * 1000 + epoch):
            step_started = time.perf_counter()
            batch = make_batch(batch_items).to(accelerator.device)
            loss, targets = batch.loss(model)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at step {result.steps + 1}; lower `training.learning_rate`"
                    " (and on GPU prefer bfloat16 to float16)"
                )
            accelerator.backward(loss)
            if spec.max_grad_norm is not None:
                # Without clipping, early LoRA steps at small-model learning rates overshoot: the held-out loss
                # ended ~50% worse than HF Trainer's (which clips at 1.0) in bench/train_speed.py.
                accelerator.clip_grad_norm_(trainable, spec.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            # Reading the loss waits for the device: on CUDA the backward and the update are only queued
            # until then, and a timer stopped before it would leave most of the step out.
            loss_value = loss.item()
            step_s = time.perf_counter() - step_started
            result.step_time_s += step_s
            if result.steps == 0:
                result.first_step_s = step_s
            result.steps += 1
            result.train_tokens += batch.real_tokens
            result.computed_tokens += batch.computed_tokens
            epoch_loss += loss_value * targets
            epoch_targets += targets
            if on_step is not None:
                on_step(loss_value)
        result.epochs_run = epoch + 1
        result.train_loss_per_epoch.append(epoch_loss / max(epoch_targets, 1))
        validation_loss = evaluate_loss(model, inputs, spec.batch_size, accelerator.device, make_batch)
        result.validation_loss_per_epoch.append(validation_loss)
        if on_epoch is not None:
            on_epoch(epoch + 1, result.train_loss_per_epoch[-1], validation_loss)
        if validation_loss < best_loss - 1e-4:
            best_loss, stale_epochs, result.best_epoch = validation_loss, 0, epoch + 1
            best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        else:
            stale_epochs += 1
            if spec.early_stopping_patience and stale_epochs >= spec.early_stopping_patience:
                result.stopped_early = epoch + 1 < spec.epochs
                break
    result.wall_s = time.perf_counter() - started
    if best_state is not None:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in best_state.items():
                params[name].copy_(value)
    model.eval()
    return result


@torch.no_grad()
def evaluate_loss(model, inputs: LoopInputs, batch_size: int, device, make_batch=None) -> float:
    """Mean label-token cross-entropy on the validation items (packed batches when `make_batch` packs)."""
    model.eval()
    if make_batch is None:
        make_batch, _ = batch_builder(model, inputs.validation, inputs.label_ids, inputs.pad_id, packing=True)
    total, count = 0.0, 0
    for batch_items in batches(inputs.validation, batch_size, seed=0, shuffle=False):
        batch = make_batch(batch_items).to(device)
        loss, targets = batch.loss(model)
        total += loss.item() * targets
        count += targets
    model.train()
    return total / max(count, 1)
