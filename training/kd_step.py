"""Distillation inside the trainer's step: the student's loss sums of one micro-batch with a teacher.

`Distiller.sums` returns (CE, KD, extra) sums over the micro-batch's labelled positions; the trainer
backpropagates (1 − rate)·CE + rate·(KD + extra), scaled like its plain cross-entropy, and logs CE as
`loss` (comparable with runs without a teacher) and KD per target token as `kd`. `extra` is DSKD's
projector cross-entropy (zero for vanilla KD). Validation loss stays the student's CE.

    vanilla, on the fly   teacher forward per micro-batch, KL over the full vocabulary
    vanilla, cached       teacher top-k read from the cache (training/distill.py), KL on that support
    dskd                  teacher forward on its own tokens of each document, CMA (training/dskd.py)
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from training import distill, dskd
from training.data import IGNORE
from training.kd import KDError, kd_sum, topk_kd_sum
from training.loss import FusedHead

log = logging.getLogger(__name__)


class Distiller:
    def __init__(self, spec, teacher, teacher_dir: str, teacher_revision: str) -> None:
        self.spec = spec
        self.teacher = teacher
        self.teacher_dir = teacher_dir
        self.teacher_revision = teacher_revision
        self.cache: distill.TopKCache | None = None
        self.projector: dskd.Projector | None = None
        self.student_tok = self.teacher_tok = None

    @classmethod
    def build(cls, trainer, spec) -> Distiller:
        """Load the teacher and check the pair, before the DeepSpeed engine exists (DSKD's projector
        must be a module of the student by then, so the optimizer trains it)."""
        from pipelines.llm.models import resolve
        from training.trainer import zero_config

        teacher = resolve(spec.teacher, chat=False)  # the teacher reads the shards as tokens: no template needed
        stage = int(zero_config(trainer.spec.zero, trainer.world).get("zero_optimization", {}).get("stage", 0))
        if spec.method == "vanilla":
            distill.check_same_vocabulary(trainer.model_dir, teacher.path)
        elif stage == 3:
            raise KDError("kd.method dskd runs its projector outside the model's forward, which ZeRO stage 3 does "
                          "not gather; use zero2.yaml (or lower)")
        model = distill.load_teacher(teacher.path, trainer.device, trainer.bf16)
        self = cls(spec, model, teacher.path, teacher.revision)
        if spec.method == "dskd":
            from transformers import AutoTokenizer

            if FusedHead.of(model) is None or FusedHead.of(trainer.model) is None:
                raise KDError(f"dskd reads both models' last hidden states before their heads; "
                              f"{trainer.model_dir} or {teacher.path} is not a plain-head decoder "
                              f"(llama, mistral, qwen2/3, gemma, phi3, olmo2)")
            self.projector = dskd.attach(trainer.model, _hidden(trainer.model), _hidden(model))
            self.student_tok = AutoTokenizer.from_pretrained(trainer.model_dir)
            self.teacher_tok = AutoTokenizer.from_pretrained(teacher.path)
        return self

    def ready(self, trainer, progress=None) -> None:
        """After the engine exists: build or open the teacher cache (then the teacher is not needed)."""
        if self.spec.teacher_logits != "cached":
            return
        folder = Path(trainer.run_dir) / "teacher-cache" / "train"
        key = distill.cache_key(self.teacher_revision, trainer.train_data.manifest, "train", self.spec.cache_top_k)
        if trainer.rank == 0:
            distill.build_cache(self.teacher, trainer.train_data, folder, key, trainer.device,
                                micro=trainer.plan.micro, progress=progress)
        if trainer.world > 1:
            torch.distributed.barrier()
        self.cache = distill.TopKCache.open(folder)
        self.teacher = None  # training reads the cache alone
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def describe(self) -> str:
        k = self.spec
        how = (f"cached top-{k.cache_top_k}" if k.teacher_logits == "cached" else "on the fly")
        return (f"distillation: {k.method} from teacher {self.teacher_dir} ({how}), T {k.loss.temperature:g}, "
                f"rate {k.loss.rate:g}, {k.loss.divergence} KL")

    # -- the step -----------------------------------------------------------------------------------

    def sums(self, trainer, micro: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = trainer.inputs(micro)
        hidden, head = _student_hidden(trainer, x.kwargs)
        if self.spec.method == "dskd":
            return self._dskd(trainer, micro, x, hidden, head)
        logits = (hidden.reshape(-1, hidden.size(-1)).index_select(0, x.rows) @ head.t()).float()
        y = x.labels.reshape(-1).index_select(0, x.rows)
        ce = F.cross_entropy(logits, y, reduction="sum")
        if self.cache is not None:
            ids, logp = self.cache.rows(micro["index"].tolist())
            kd, _ = topk_kd_sum(logits, ids, logp, self.spec.loss)
        else:
            t = distill.teacher_logits(self.teacher, micro, x.rows, trainer.device)
            kd, _ = kd_sum(logits, t, None, self.spec.loss)
        return ce, kd, torch.zeros((), device=ce.device)

    def _dskd(self, trainer, micro, x, hidden, head):
        labels, host = x.labels, x.host_labels  # document boundaries and tokens are read on the host: no sync
        docs = dskd.documents(micro, host)
        ids = micro["input_ids"]
        student_embed = trainer.model.get_input_embeddings()
        t_inputs, spans = [], []
        for r, a, b in docs:
            pos = (host[r, a:b] != IGNORE).nonzero().squeeze(1)
            t_ids, t_first = dskd.teacher_tokens(ids[r, a:b].tolist(), int(pos[0]) + 1, self.student_tok,
                                                  self.teacher_tok)
            t_inputs.append(t_ids)
            spans.append((r, a, pos, t_first))
        t_hidden = self._teacher_hidden(t_inputs, trainer.device)
        t_head = FusedHead.of(self.teacher).head.weight
        t_embed = self.teacher.get_input_embeddings()
        ce = torch.zeros((), device=hidden.device)
        kd = torch.zeros((), device=hidden.device)
        extra = torch.zeros((), device=hidden.device)
        device_ids = ids.to(hidden.device, non_blocking=True)
        for (r, a, pos, t_first), t_ids, th in zip(spans, t_inputs, t_hidden):
            s_pos = (pos + a).to(hidden.device, non_blocking=True)
            s_ids = device_ids[r]
            student = dskd.Side(hidden[r].index_select(0, s_pos), dskd.pair_embeddings(student_embed, s_ids, s_pos),
                                labels[r].index_select(0, s_pos))
            tt = torch.tensor(t_ids, device=hidden.device)
            t_pos = torch.arange(t_first - 1, len(t_ids) - 1, device=hidden.device)
            teacher = dskd.Side(th[:len(t_ids)].index_select(0, t_pos), dskd.pair_embeddings(t_embed, tt, t_pos),
                                tt.index_select(0, t_pos + 1))
            logits = (student.hidden @ head.t()).float()
            ce = ce + F.cross_entropy(logits, student.targets, reduction="sum")
            k, proj_ce, _ = dskd.dskd_sum(student, teacher, self.projector, head, t_head, self.spec.loss)
            kd, extra = kd + k, extra + proj_ce
        return ce, kd, extra

    @torch.no_grad()
    def _teacher_hidden(self, seqs: list[list[int]], device) -> list[torch.Tensor]:
        if not seqs:
            return []
        width = max(len(s) for s in seqs)
        pad = self.teacher_tok.pad_token_id if self.teacher_tok.pad_token_id is not None else 0
        x = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            x[i, :len(s)], mask[i, :len(s)] = torch.tensor(s), 1
        head = FusedHead.of(self.teacher)
        with head.headless():
            h = self.teacher(input_ids=x.to(device), attention_mask=mask.to(device), use_cache=False).logits
        return list(h.float())


def _hidden(model) -> int:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return int(base.config.hidden_size)


def _student_hidden(trainer, kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """(last hidden states [B, T, d] through the engine, the output head's weight [V, d])."""
    head = trainer.fused or FusedHead.of(trainer.model)
    if head is None:
        raise KDError(f"distillation reads the student's last hidden states before its head; {trainer.model_dir} is "
                      f"not a plain-head decoder (llama, mistral, qwen2/3, gemma, phi3, olmo2)")
    with head.headless():
        hidden = trainer.engine(**kwargs).logits
    return hidden, head.head.weight
