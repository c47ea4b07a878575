"""Distillation losses: attention transfer (AT) and knowledge distillation (KD).

Attention transfer — Zagoruyko & Komodakis, *Paying More Attention to
Attention*, ICLR 2017 (arXiv 1612.03928), as used by Turner et al. 2018.

The paper defines the spatial attention map of activation ``A`` (C×H×W) as
``F(A) = Σ_c |A_c|^p`` with p = 2, and the loss
``β/2 · Σ_j ‖ Q_s^j/‖Q_s^j‖₂ − Q_t^j/‖Q_t^j‖₂ ‖_p`` over matched pairs j.
The code that produced every published number (the authors' ``utils.at`` /
``at_loss``, RepDistiller, torchdistill) differs, and we follow the code:

    q(x)  = normalize_L2( mean_c x² ).flatten()      per sample (mean, not sum, over channels —
                                                     irrelevant after the L2 normalisation)
    L_AT  = mean_{n, positions} (q_s − q_t)²         squared difference (not a p-norm),
                                                     averaged over the batch and the H·W positions
    L     = CE + β · Σ_j L_AT_j,  β = 1000           (not β/2)

If a student and teacher map differ in spatial size, the larger *feature map*
is adaptive-average-pooled to the smaller size before taking ``q``.

Knowledge distillation — Hinton, Vinyals & Dean 2015, in the usual code form:
``(1−α)·CE + α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T))`` (KL averaged over the
batch), T = 4, α = 0.9.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

AT_BETA = 1000.0
KD_TEMPERATURE = 4.0
KD_ALPHA = 0.9


def attention_map(x: torch.Tensor) -> torch.Tensor:
    """``q(x) = normalize_L2(mean_c x²).flatten()`` per sample: N×C×H×W -> N×(H·W)."""
    return F.normalize(x.pow(2).mean(1).flatten(1), dim=1)


def match_sizes(student: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive-average-pool whichever map is spatially larger to the other's size."""
    hs, ws = student.shape[-2:]
    ht, wt = teacher.shape[-2:]
    if (hs, ws) == (ht, wt):
        return student, teacher
    if hs * ws > ht * wt:
        return F.adaptive_avg_pool2d(student, (ht, wt)), teacher
    return student, F.adaptive_avg_pool2d(teacher, (hs, ws))


def at_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``L_AT = mean_{n,positions}(q(s) − q(t))²`` for one matched pair of stage outputs."""
    student, teacher = match_sizes(student, teacher)
    return (attention_map(student) - attention_map(teacher)).pow(2).mean()


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
            temperature: float = KD_TEMPERATURE) -> torch.Tensor:
    """``T² · KL(softmax(z_t/T) ‖ softmax(z_s/T))``, averaged over the batch."""
    log_p = F.log_softmax(student_logits / temperature, dim=1)
    q = F.softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_p, q, reduction="batchmean") * temperature**2


def distill_loss(student_logits: torch.Tensor, labels: torch.Tensor,
                 student_feats: Sequence[torch.Tensor] = (),
                 teacher_feats: Sequence[torch.Tensor] = (),
                 teacher_logits: torch.Tensor | None = None, *, beta: float = AT_BETA,
                 kd: bool = False, alpha: float = KD_ALPHA,
                 temperature: float = KD_TEMPERATURE) -> torch.Tensor:
    """Total loss ``CE' + β·Σ_j L_AT_j`` where ``CE' = (1−α)·CE + α·KD`` with ``kd`` else ``CE``.

    With ``beta == 0`` and no KD this is exactly plain cross-entropy.
    """
    ce = F.cross_entropy(student_logits, labels)
    loss = ce
    if kd:
        if teacher_logits is None:
            raise ValueError("KD needs the teacher's logits")
        loss = (1 - alpha) * ce + alpha * kd_loss(student_logits, teacher_logits, temperature)
    if beta:
        if len(student_feats) != len(teacher_feats):
            raise ValueError("attention transfer needs one teacher map per student map")
        loss = loss + beta * sum((at_loss(s, t) for s, t in zip(student_feats, teacher_feats, strict=True)),
                                 torch.zeros((), dtype=ce.dtype))
    return loss
