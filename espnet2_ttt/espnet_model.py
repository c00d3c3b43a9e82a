"""TtTModel: the ESPnet model that owns the hybrid AR + absorbing-diffusion objective."""
from typing import Dict, Sequence, Tuple, Union

import torch
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from espnet2_ttt.corruption import (
    CorruptionConfig,
    banom_keeps_clean,
    diffusion_corruption,
    per_rank_seed,
    prefix_preservation,
    stochastic_span_truncation,
)
from espnet2_ttt.losses import ar_text_loss, masked_diffusion_loss
from espnet2_ttt.mask import build_modality_mask
from espnet2_ttt.models.transformer import AbsBackbone
from espnet2_ttt.sequence import supervised_mask
from espnet2_ttt.vocabulary import TtTVocabulary

AUDIO_OBJECTIVES = ("diffusion", "ar")


class TtTModel(AbsESPnetModel):
    """Text-to-Talk over any backbone.

    forward(seq [B, L] long, seq_lengths [B]) -> (loss, stats, weight = B).

    Training (one forward): SST on the batch, then BANOM decides clean (AR loss only) or
    diffusion (PPM, masking, AR + diffusion loss on the one noisy forward).  Evaluation (no
    SST/BANOM/PPM; two forwards): the text is scored on a clean forward, as decoding sees it
    (every earlier span clean), the audio on a noisy forward whose ``t`` and masks come from a
    generator re-seeded with ``eval_seed`` whenever the model enters eval mode, so validation
    numbers are deterministic and comparable.  Stats (NaN = absent from the batch):

    * ``loss_ar``: L_AR; in evaluation of the clean forward, in training of the one forward.
    * ``acc_text``: argmax accuracy at the supervised text targets, same forward as ``loss_ar``.
    * ``loss_diff``: L_diff of the noisy forward (NaN: clean BANOM batch, no maskable audio in
      the batch, or ``diffusion_weight == 0``).
    * ``acc_audio``: argmax accuracy at the masked positions of the noisy forward.
    * ``acc``: the text and masked-audio predictions pooled, (text correct + audio correct) /
      (text targets + masked positions), each part from the forward of its own stat; ESPnet
      selects ``valid.acc.ave.pth`` on it.
    * ``loss``: ar_weight * loss_ar + diffusion_weight * loss_diff (loss_ar alone when NaN).

    Randomness: training draws (SST, BANOM, PPM, ``t``, masks) come from the model's own
    generator, which ``train()`` re-seeds with :func:`espnet2_ttt.corruption.per_rank_seed` (a
    draw from the global RNG plus the rank).  ESPnet's trainer re-seeds the global RNG with
    ``seed + epoch`` on every rank and then calls ``train()`` at the start of every epoch, so an
    epoch's draws depend on (seed, epoch, rank) alone: ranks draw apart, runs reproduce, and a
    run resumed from an epoch checkpoint draws what the uninterrupted run drew.  The eval
    generator is the same on every rank (a batch scores the same on any rank).

    Args:
        token_list: the ESPnet token list (see :class:`TtTVocabulary`).
        backbone: a built :class:`AbsBackbone` with ``vocab_size == len(token_list)``.
        ar_weight, diffusion_weight: loss = ar_weight * L_AR + diffusion_weight * L_diff.
        banom_prob, ppm_prob, sst_prob, eps, mask_schedule: see :mod:`espnet2_ttt.corruption`
            (0 disables a strategy).
        ar_on_masked_inputs: official behaviour (True) scores the AR target after a masked
            position too; False drops text targets whose input position is [M].
        audio_objective: "diffusion" (TtT) or "ar": the AR-only baseline of the same size, data
            and steps (plain causal attention everywhere, audio scored by shifted
            cross-entropy like text, no BANOM/PPM/masking; SST still applies when set; loss =
            ar_weight * text term + diffusion_weight * audio term, each a per-sample mean).
            The decoder then writes spans one code per forward.
    """

    def __init__(
        self,
        token_list: Union[Sequence[str], TtTVocabulary],
        backbone: AbsBackbone,
        ar_weight: float = 1.0,
        diffusion_weight: float = 1.0,
        banom_prob: float = 0.3,
        ppm_prob: float = 0.3,
        sst_prob: float = 0.5,
        eps: float = 1e-3,
        mask_schedule: str = "uniform",
        ar_on_masked_inputs: bool = True,
        audio_objective: str = "diffusion",
        eval_seed: int = 0,
    ):
        super().__init__()
        self.vocab = token_list if isinstance(token_list, TtTVocabulary) else TtTVocabulary(token_list)
        if backbone.vocab_size != len(self.vocab):
            raise ValueError(f"backbone vocab_size {backbone.vocab_size} != token list size {len(self.vocab)}")
        self.backbone = backbone
        self.ar_weight, self.diffusion_weight = ar_weight, diffusion_weight
        self.corruption = CorruptionConfig(banom_prob=banom_prob, ppm_prob=ppm_prob, sst_prob=sst_prob, eps=eps,
                                           mask_schedule=mask_schedule)
        self.ar_on_masked_inputs = ar_on_masked_inputs
        if audio_objective not in AUDIO_OBJECTIVES:
            raise ValueError(f"audio_objective must be one of {AUDIO_OBJECTIVES}, got {audio_objective!r}")
        self.audio_objective = audio_objective
        self.eval_seed = eval_seed
        self._eval_generator = torch.Generator().manual_seed(eval_seed)
        self._train_generator = torch.Generator()  # re-seeded per rank by train()
        self.register_buffer("audio_side_table", self.vocab.audio_side_table.clone(), persistent=False)

    def train(self, mode: bool = True):
        if mode:
            self._train_generator.manual_seed(per_rank_seed())
        elif self.training:
            self._eval_generator.manual_seed(self.eval_seed)
        return super().train(mode)

    def forward(self, seq: torch.Tensor, seq_lengths: torch.Tensor, **kwargs) -> Tuple[torch.Tensor, Dict, torch.Tensor]:
        self.vocab.check_ids(seq, "TtTModel input batch")
        seq_lengths = seq_lengths.to(seq.device)
        gen = self._train_generator if self.training else self._eval_generator
        if self.training and self.corruption.sst_prob > 0:
            seq, seq_lengths = stochastic_span_truncation(seq, seq_lengths, self.vocab, self.corruption, gen)
        L = int(seq_lengths.max())
        seq = seq[:, :L]
        valid = torch.arange(L, device=seq.device)[None, :] < seq_lengths[:, None]
        is_audio = self.audio_side_table[seq]
        supervised = supervised_mask(seq, valid, self.vocab)
        if self.audio_objective == "ar":
            return self._ar_baseline_loss(seq, valid, is_audio, supervised)
        attn_mask = build_modality_mask(is_audio, valid)
        span_positions = self.backbone.span_positions(is_audio)

        def logits_of(inputs):
            return self.backbone(inputs, attn_mask, span_positions=span_positions)

        text_targets = supervised & ~is_audio
        maskable = is_audio & supervised
        clean = self.training and banom_keeps_clean(self.corruption, gen)
        if clean or not bool(maskable.any()) or self.diffusion_weight == 0:
            return self._report(seq.shape[0], ar_text_loss(logits_of(seq), seq, text_targets))
        if self.training:
            maskable = prefix_preservation(maskable, self.corruption, gen)
        noisy, masked, p = diffusion_corruption(seq, maskable, self.vocab.mask_id, self.corruption, gen)
        n_maskable = maskable.sum(1).clamp(min=1)
        if self.training:  # one forward: the text is scored after the noisy audio
            logits = logits_of(noisy)
            if not self.ar_on_masked_inputs:
                text_targets = text_targets & ~torch.nn.functional.pad(masked[:, :-1], (1, 0), value=False)
            text = ar_text_loss(logits, seq, text_targets)
            audio = masked_diffusion_loss(logits, seq, masked, p, n_maskable)
        else:  # the audio from the seeded noisy forward, the text after clean audio as decoding sees it
            audio = masked_diffusion_loss(logits_of(noisy), seq, masked, p, n_maskable)
            text = ar_text_loss(logits_of(seq), seq, text_targets)
        return self._report(seq.shape[0], text, audio)

    def _report(self, batch_size, text, audio=None):
        """(loss, stats, weight) from the text and audio terms, each (loss, #correct, #scored)."""
        loss_ar, ok_text, n_text = text
        loss = self.ar_weight * loss_ar
        # every rank reports the same keys (DDP averages them); NaN = absent in this batch,
        # which ESPnet's reporter leaves out of its averages
        stats = {"loss_ar": loss_ar.detach(), "acc_text": _ratio(ok_text, n_text), "loss_diff": _nan(), "acc_audio": _nan()}
        ok_all, n_all = ok_text, n_text
        if audio is not None:
            loss_diff, ok_audio, n_audio = audio
            loss = loss + self.diffusion_weight * loss_diff
            stats.update(loss_diff=loss_diff.detach(), acc_audio=_ratio(ok_audio, n_audio))
            ok_all, n_all = ok_all + ok_audio, n_all + n_audio
        stats.update(loss=loss.detach(), acc=_ratio(ok_all, n_all))
        return force_gatherable((loss, stats, batch_size), loss.device)

    def _ar_baseline_loss(self, seq, valid, is_audio, supervised):
        """audio_objective "ar": every supervised token by shifted CE under a causal mask."""
        causal = build_modality_mask(torch.zeros_like(is_audio), valid)  # no span: causal
        logits = self.backbone(seq, causal, span_positions=self.backbone.span_positions(is_audio))
        loss_ar, ok_text, n_text = ar_text_loss(logits, seq, supervised & ~is_audio)
        loss_audio, ok_audio, n_audio = ar_text_loss(logits, seq, supervised & is_audio)
        loss = self.ar_weight * loss_ar + self.diffusion_weight * loss_audio
        stats = {"loss_ar": loss_ar.detach(), "acc_text": _ratio(ok_text, n_text), "loss_audio_ar": loss_audio.detach(),
                 "acc_audio": _ratio(ok_audio, n_audio), "loss": loss.detach(),
                 "acc": _ratio(ok_text + ok_audio, n_text + n_audio)}
        return force_gatherable((loss, stats, seq.shape[0]), loss.device)

    def collect_feats(self, seq: torch.Tensor, seq_lengths: torch.Tensor, **kwargs) -> Dict[str, torch.Tensor]:
        return {}


def _nan() -> torch.Tensor:
    return torch.tensor(float("nan"))


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return (num.float() / den).detach() if int(den) > 0 else _nan()
