"""Label-free quantization-aware fine-tuning: the fake-int8 student learns to match its own float teacher.

Why. Post-training int8 of third-party depthwise networks (EfficientNet-Lite0 with ImageNet weights) stops far
from fp32, and ``--qat`` needs labels that a brought model does not come with. What the user does have is the
float model (a teacher) and unlabelled images of the domain (the calibration images). So the student, a copy of
the float model under the fake quantization of :mod:`edgecls.training.qat` (the same rounding onnxruntime
applies for the target's recipe; no second simulation), is trained to reproduce the teacher's outputs:

- loss = T^2 * KL(softmax(teacher / T) || softmax(student / T)) (Hinton et al. 2015, "Distilling the
  Knowledge in a Neural Network"), plus optionally a normalised MSE on the features entering the classifier;
- inputs: augmented views of the calibration images (random resized crop, flip, and mixup of two images:
  "function matching", Beyer et al. 2022, "Knowledge distillation: A good teacher is patient and consistent"),
  so 256 images give many distinct training points, and no label is ever read;
- the teacher runs in eval mode on the same view, so the target is exactly the float function.

Third-party models are not written as ``conv -> bn -> act`` inside ``nn.Sequential`` (which is what
``qat.fold_batchnorms`` and ``FakeQuantizedModel`` recognise), so :func:`prepare_student` first rewrites the
student with ``torch.fx``: every BatchNorm that follows a conv/linear is folded into it (as ``quant_pre_process``
folds it in the ONNX graph), and every conv/linear followed by ReLU/ReLU6 becomes ``nn.Sequential(conv, act)``,
so ``FakeQuantizedModel`` quantizes its output after the activation, as onnxruntime does when it folds the
activation into the conv's quantized range.

The student starts where post-training int8 is: besides the rounding, it simulates the bias correction the
int8 search applies to the exported weights (:mod:`edgecls.training.bias_correction_sim`), and its int8 search
starts from that bias-corrected recipe. Without it the untrained student was far below the post-training file
(EfficientNet-Lite0: 0.040 logit error to the bias-corrected file, 0.0030 with it; the learned weights were then
corrected twice at export), and the few hundred steps a CPU budget buys cannot make up for a worse start.

Activation ranges are re-measured on the float student (MinMax over the calibration images, as onnxruntime's
calibrator will measure them on the exported weights) every ``recalibrate_every`` steps: ranges are not learned,
because ``quantize_static`` recalibrates the exported model anyway and a learned range would be thrown away.

The loop is bounded by wall time (``time_budget`` seconds) and ``max_steps``; the learning rate follows a cosine
over the steps the budget is estimated to fit (from the rate so far, re-estimated as the machine's load
changes), so stopping at the budget is the planned end of the schedule, not a cut; when the budget cannot be
reached (tests), the plan is ``max_steps`` and the result does not depend on timing.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgecls.training.bias_correction_sim import SimulatedBiasCorrection
from edgecls.training.progress import make_progress
from edgecls.training.qat import FakeQuantizedModel, FakeQuantSpec
from edgecls.training.student_graph import prepare_student

Log = Callable[[str], None]
CHANNELS_LAST = torch.channels_last


@dataclass(frozen=True)
class DistillConfig:
    time_budget: float = 480.0  # seconds of learning (the loop's own bound; the int8 search comes after)
    max_steps: int = 4000
    batch_size: int = 16
    lr: float = 2e-5  # peak (Adam), cosine to zero over the budget
    temperature: float = 2.0
    feature_weight: float = 0.0  # weight of the normalised MSE on the classifier's input features
    recalibrate_every: int = 100  # steps between MinMax re-measurements of the activation ranges
    mixup: float = 0.5  # probability that a view is a blend of two images
    min_crop: float = 0.5  # random resized crop: side fraction in [min_crop, 1]
    probe_images: int = 64  # calibration images (unaugmented) on which KL/agreement are reported
    seed: int = 0
    spec: FakeQuantSpec = FakeQuantSpec()
    # simulate the int8 search's bias correction (the learned file is then quantized with it: its first recipe)
    bias_correction: bool = True


@dataclass
class DistillResult:
    model: nn.Module  # the student's float weights (BatchNorm folded, fake quantization removed), eval mode
    steps: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # process CPU time of the loop (the box is shared: wall time alone misleads)
    loop_seconds: float = 0.0  # the training steps alone (what --time-budget bounds)
    stopped_by: str = ""  # "time budget" | "max steps"
    before: dict[str, float] = field(default_factory=dict)  # fake-int8 student vs teacher on the probe images
    after: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)  # every recalibration: step, loss, s
    folded_batchnorms: int = 0
    fused_activations: int = 0
    weight_points: int = 0
    activation_points: int = 0
    corrected_biases: int = 0  # layers whose simulated bias correction is in the loop
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("model")
        return d



def augment(x: torch.Tensor, gen: torch.Generator, config: DistillConfig) -> torch.Tensor:
    """Random views of a batch float32[B, 3, h, w]: resized crop + flip (affine resampling), then mixup."""
    b = x.shape[0]
    scale = torch.empty(b).uniform_(config.min_crop, 1.0, generator=gen)  # crop side / image side
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    shift = (torch.rand(b, 2, generator=gen) * 2 - 1) * (1 - scale)[:, None]  # crop centre inside the image
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = scale * flip, scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    views = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    lam = torch.rand(b, generator=gen) * 0.5 * (torch.rand(b, generator=gen) < config.mixup)  # 0: no blend
    partner = views[torch.randperm(b, generator=gen)]
    lam = lam[:, None, None, None]
    return (1 - lam) * views + lam * partner


def _classifier_input(model: nn.Module, store: dict[str, torch.Tensor]) -> Any:
    """Hook that records the input of the last linear layer (the pooled features) into ``store``."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        return None
    return linears[-1].register_forward_pre_hook(lambda _m, args: store.__setitem__("f", args[0]))


def kl_to_teacher(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(p_teacher || p_student) at temperature T, mean over the batch."""
    t = temperature
    log_p_s = F.log_softmax(student_logits / t, dim=1)
    log_p_t = F.log_softmax(teacher_logits / t, dim=1)
    return F.kl_div(log_p_s, log_p_t, log_target=True, reduction="batchmean") * t * t


@torch.no_grad()
def _probe(student: nn.Module, teacher_logits: torch.Tensor, inputs: torch.Tensor, t: float) -> dict[str, float]:
    """Fake-int8 student vs teacher on fixed unaugmented images: KL at T=1 and top-1 agreement."""
    student.eval()
    logits = torch.cat([student(inputs[i : i + 32]) for i in range(0, len(inputs), 32)])
    return {
        "kl": round(float(kl_to_teacher(logits, teacher_logits, 1.0)), 6),
        "agreement": round(float((logits.argmax(1) == teacher_logits.argmax(1)).float().mean()), 4),
    }


class _Schedule:
    """Cosine learning-rate factor over a planned number of steps: ``max_steps``, or fewer when the time budget
    will not fit them, estimated from the rate so far after ``WARMUP_STEPS`` steps and again every
    ``replan_every`` steps (on a shared machine the rate changes with the load: a plan made while it was high
    would end the loop early); the time budget stays a hard stop. With a budget the steps cannot reach, the plan
    is ``max_steps`` and the schedule is a function of the step alone."""

    WARMUP_STEPS = 3

    def __init__(self, budget: float, max_steps: int, replan_every: int) -> None:
        self.budget, self.max_steps, self.replan_every = budget, max_steps, replan_every
        self.t0 = time.perf_counter()
        self.planned = max_steps

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def observe(self, step: int) -> None:
        if step == self.WARMUP_STEPS or (step > self.WARMUP_STEPS and step % self.replan_every == 0):
            fit = int(step * self.budget / max(self.elapsed(), 1e-9))
            self.planned = min(self.max_steps, max(step + 1, fit))

    def factor(self, step: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * min(1.0, step / self.planned)))

    def done(self, step: int) -> bool:
        return step >= self.planned or self.elapsed() >= self.budget



class FakeInt8Student:
    """A copy of ``teacher`` computing what onnxruntime will compute for its int8 file: BatchNorm folded and
    activations fused (:func:`prepare_student`), weights and activations fake-quantized with ``config.spec``
    (``FakeQuantizedModel``), and with ``config.bias_correction`` the int8 search's bias correction simulated
    (``SimulatedBiasCorrection``). Activation ranges and mean inputs are measured on ``calibration``
    float32[N, 3, h, w] (float model, MinMax, as the search's calibration) on creation and by ``recalibrate``."""

    def __init__(self, teacher: nn.Module, calibration: torch.Tensor, config: DistillConfig) -> None:
        self.model, self.folded, self.fused = prepare_student(teacher, calibration[:2])
        self.fq = FakeQuantizedModel(self.model, config.spec)
        self.corrector = SimulatedBiasCorrection(self.model) if config.bias_correction else None
        self.calibration = calibration
        self.recalibrate()

    def recalibrate(self) -> None:
        """Ranges and mean inputs of the current float weights (one float pass over the calibration images)."""
        if self.corrector:
            self.corrector.start_observing()
        self.fq.calibrate(self.calibration[i : i + 32].numpy() for i in range(0, len(self.calibration), 32))
        if self.corrector:
            self.corrector.stop_observing()

    def detach(self) -> nn.Module:
        """The learned float weights, simulation removed (the int8 search corrects the biases itself)."""
        if self.corrector:
            self.corrector.remove()
        return self.fq.detach()


def distill(
    teacher: nn.Module,
    calibration: np.ndarray,
    config: DistillConfig,
    log: Log = print,
    progress: bool = False,
) -> DistillResult:
    """Fine-tune a fake-int8 copy of ``teacher`` to match it on augmented views of ``calibration``
    (float32[N, 3, h, w], already preprocessed); ``teacher`` is not modified. No labels are involved."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    # channels_last: oneDNN's depthwise kernels (forward and backward) run about 2x faster in it on CPU.
    data = torch.from_numpy(np.ascontiguousarray(calibration, dtype=np.float32)).to(memory_format=CHANNELS_LAST)
    teacher = copy.deepcopy(teacher).eval().to(memory_format=CHANNELS_LAST)  # the caller's module is left as it was
    for p in teacher.parameters():
        p.requires_grad_(False)
    sim = FakeInt8Student(teacher, data, config)
    student, fq, recalibrate = sim.model, sim.fq, sim.recalibrate
    result = DistillResult(student, folded_batchnorms=sim.folded, fused_activations=sim.fused)
    result.weight_points, result.activation_points = len(fq.weights), len(fq.activations)
    result.corrected_biases = len(sim.corrector.sites) if sim.corrector else 0
    result.config = {k: v for k, v in asdict(config).items() if k != "spec"} | {"spec": asdict(config.spec)}
    probe = data[:: max(1, len(data) // config.probe_images)][: config.probe_images]
    with torch.no_grad():
        probe_teacher = teacher(probe)
    result.before = _probe(student, probe_teacher, probe, config.temperature)
    log(
        f"distill: {sim.folded} BatchNorm folded, {sim.fused} activations fused; {len(fq.weights)} weight / "
        f"{len(fq.activations)} activation fake-quant points, {result.corrected_biases} biases corrected as export "
        f"will; fake-int8 vs float on {len(probe)} calibration "
        f"images: agreement {100 * result.before['agreement']:.1f}%, KL {result.before['kl']:.4f}; learning for "
        f"up to {config.time_budget:.0f} s / {config.max_steps} steps"
    )
    for p in student.parameters():
        p.requires_grad_(True)
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    t_feats: dict[str, torch.Tensor] = {}
    s_feats: dict[str, torch.Tensor] = {}
    hooks = [h for h in (_classifier_input(teacher, t_feats), _classifier_input(student, s_feats)) if h is not None]
    use_features = config.feature_weight > 0 and len(hooks) == 2
    schedule = _Schedule(config.time_budget, config.max_steps, max(1, config.recalibrate_every // 4))
    bar = make_progress(progress, "KL {task.fields[loss]:.4f}", time_left=True)
    task = bar.add_task("learning int8", total=config.max_steps, loss=0.0) if bar else None
    step, running = 0, 0.0
    try:
        if bar:
            bar.start()
        while not schedule.done(step):
            idx = torch.randint(0, len(data), (config.batch_size,), generator=gen)
            x = augment(data[idx], gen, config)
            with torch.no_grad():
                target = teacher(x)
            student.eval()  # BatchNorm folded; dropout and drop-connect off: the student is the deployed function
            out = student(x)
            loss = kl_to_teacher(out, target, config.temperature)
            if use_features:
                ft, fs = t_feats["f"], s_feats["f"]
                loss = loss + config.feature_weight * F.mse_loss(fs, ft) / ft.pow(2).mean().clamp_min(1e-8)
            for g in optimizer.param_groups:
                g["lr"] = config.lr * schedule.factor(step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            schedule.observe(step)
            value = float(loss.detach())
            running = value if step == 1 else 0.95 * running + 0.05 * value
            if step % config.recalibrate_every == 0:
                recalibrate()  # the weights moved: onnxruntime will calibrate the exported weights afresh
                result.history.append({"step": step, "loss": round(running, 6), "s": round(schedule.elapsed(), 1)})
            if bar is not None:
                bar.update(task, completed=step, total=schedule.planned, loss=running)
    finally:
        if bar is not None:
            bar.stop()
        for h in hooks:
            h.remove()
    result.loop_seconds = round(schedule.elapsed(), 3)
    result.stopped_by = "max steps" if step >= config.max_steps else "time budget"
    recalibrate()
    result.after = _probe(student, probe_teacher, probe, config.temperature)
    result.steps = step
    result.model = sim.detach().to(memory_format=torch.contiguous_format)
    for p in result.model.parameters():
        p.requires_grad_(False)
    result.seconds = round(time.perf_counter() - wall0, 1)
    result.cpu_seconds = round(time.process_time() - cpu0, 1)
    log(
        f"distill: {step} steps in {result.seconds:.0f} s (CPU {result.cpu_seconds:.0f} s, stopped by the "
        f"{result.stopped_by}); fake-int8 vs float agreement {100 * result.before['agreement']:.1f}% -> "
        f"{100 * result.after['agreement']:.1f}%, KL {result.before['kl']:.4f} -> {result.after['kl']:.4f}"
    )
    return result
