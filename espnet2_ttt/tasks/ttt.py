"""TtTTask: wires the TtT model, its backbone choices and its data into ESPnet's AbsTask."""
import argparse
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import yaml
from espnet2.tasks.abs_task import AbsTask
from espnet2.torch_utils.initialize import initialize
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.train.class_choices import ClassChoices
from espnet2.train.collate_fn import CommonCollateFn
from espnet2.train.trainer import Trainer
from espnet2.utils.types import str2bool, str_or_none

from espnet2_ttt.espnet_model import TtTModel
from espnet2_ttt.models.hf_backbone import HFCausalLM
from espnet2_ttt.models.transformer import AbsBackbone, TtTTransformer
from espnet2_ttt.models.weights import check_init_param, load_weights
from espnet2_ttt.preprocessor import TtTPreprocessor
from espnet2_ttt.sequence import read_sequence_lengths
from espnet2_ttt.sequence_builder import sequence_layout_arg
from espnet2_ttt.trainer import TtTTrainer
from espnet2_ttt.utils.cli import InputError
from espnet2_ttt.utils.table import iter_utf8_lines, read_utf8_text, reading
from espnet2_ttt.vocabulary import TtTVocabulary

CHAT_TEMPLATES = ("ttt", "official")
BUILD_OPTIONS = ("token_list", "backbone", "backbone_conf", "model", "model_conf", "init")  # what _build_model reads
backbone_choices = ClassChoices(
    "backbone",
    classes=dict(transformer=TtTTransformer, hf_causal_lm=HFCausalLM),
    type_check=AbsBackbone,
    default="transformer",
)
model_choices = ClassChoices(
    "model",
    classes=dict(ttt=TtTModel),
    type_check=AbsESPnetModel,
    default="ttt",
)


def sequence_files(args: argparse.Namespace, split: str) -> List[str]:
    """The ``seq`` files of ``split`` ("train" or "valid"); InputError unless of type ``text``."""
    files = []
    for path, name, data_type in getattr(args, f"{split}_data_path_and_name_and_type"):
        if name == "seq" and data_type != "text":
            raise InputError(f"--{split}_data_path_and_name_and_type {path},{name},{data_type}: "
                             "the seq data is of type text")
        files += [path] if name == "seq" else []
    return files


def check_shape_file(shape_file: str, seq_file: str, lengths: Dict[str, int]) -> None:
    """Refuse a shape file that does not give exactly the utterances of ``seq_file`` with their
    ``lengths`` (token counts): InputError naming the shape file and the line or utterance."""
    listed = set()
    for number, line in iter_utf8_lines(shape_file):
        fields = line.split()
        dims = fields[1].split(",") if len(fields) == 2 else []
        if not dims or not all(d.isdigit() for d in dims):
            raise InputError(f"{shape_file}:{number}: expected '<utt_id> <length>'")
        key = fields[0]
        if key not in lengths:
            raise InputError(f"{shape_file}:{number}: utterance '{key}' is not in {seq_file}")
        if key in listed:
            raise InputError(f"{shape_file}:{number}: utterance '{key}' is given twice")
        if int(dims[0]) != lengths[key]:
            raise InputError(f"{shape_file}:{number}: utterance '{key}' has length {dims[0]}, but "
                             f"{lengths[key]} tokens in {seq_file} (a shape file of other data?)")
        listed.add(key)
    missing = [key for key in lengths if key not in listed]
    if missing:
        raise InputError(f"{shape_file}: utterance '{missing[0]}' of {seq_file} is missing "
                         f"({len(missing)} utterances are)")


def check_data_files(args: argparse.Namespace) -> None:
    """Refuse bad training data files before anything is built: for each split, its sequence
    file (:func:`read_sequence_lengths`: empty file, duplicate ids, ...) and shape files
    (:func:`check_shape_file`), and for training one ``--fold_length`` per shape file.
    Reads each file once, a line at a time; the tokens are checked per utterance by
    :class:`TtTPreprocessor`."""
    for split in ("train", "valid"):
        shape_files = getattr(args, f"{split}_shape_file")
        for seq_file in sequence_files(args, split):
            lengths = read_sequence_lengths(seq_file)
            for shape_file in shape_files:
                check_shape_file(shape_file, seq_file, lengths)
        if args.collect_stats or args.iterator_type != "sequence":
            continue
        if not shape_files:
            raise InputError(f"--{split}_shape_file is required for training (the seq_shape file of "
                             "--collect_stats true)")
        if "folded" in (args.batch_type, args.valid_batch_type) and len(args.fold_length) != len(shape_files):
            raise InputError(f"--fold_length: give one per shape file ({len(shape_files)} for {split}, "
                             f"e.g. --fold_length {args.max_seq_len}), got {len(args.fold_length)}")


class TtTTask(AbsTask):
    """Data: one ``seq`` text file of token strings per split (see :mod:`espnet2_ttt.sequence`),
    checked before anything is built (:func:`check_data_files`) and per utterance
    (:class:`TtTPreprocessor`); training runs in :class:`TtTTrainer` (outputs that survive a kill)."""

    num_optimizers: int = 1
    class_choices_list = [backbone_choices, model_choices]
    trainer = TtTTrainer

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group(description="Task related")
        required = parser.get_default("required")
        required += ["token_list"]
        group.add_argument("--token_list", type=str_or_none, default=None,
                           help="Token list file (or list, once resolved into config.yaml)")
        group.add_argument("--init", type=lambda x: str_or_none(x.lower()), default=None,
                           help="Parameter initialisation (None: the backbone's own)")
        group.add_argument("--chat_template", choices=CHAT_TEMPLATES, default="ttt",
                           help="Chat template the model was trained with, kept for inference: ttt (role tokens) "
                                "or official (the official TtT/Qwen one: role word + newline, newline after <|im_end|>)")
        group.add_argument("--sequence_layout", type=sequence_layout_arg, default=None,
                           help="Layout options of the training sequences, kept for inference (prompts, chunk "
                                "and span lengths): the yaml of build_sequences --layout_file, or an inline "
                                "mapping; None: build_sequences' defaults")
        group.add_argument("--max_seq_len", type=int, default=2048,
                           help="Longest training sequence; longer ones are an error naming the utterance")
        group = parser.add_argument_group(description="Preprocess related")
        group.add_argument("--use_preprocessor", type=str2bool, default=True)
        group.add_argument("--bpemodel", type=str_or_none, default=None,
                           help="Text tokenizer of the text pieces, kept for inference: a SentencePiece model, "
                                "or the pretrained backbone's Hugging Face tokenizer directory")
        group.add_argument("--speech_tokenizer_dir", type=str_or_none, default=None,
                           help="Speech tokenizer directory (kept for inference)")
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)

    @classmethod
    def check_required_command_args(cls, args: argparse.Namespace):
        super().check_required_command_args(args)
        check_data_files(args)  # here: once, before the processes of a distributed run start

    @classmethod
    def main_worker(cls, args: argparse.Namespace):
        if args.use_deepspeed:  # AbsTask pairs DeepSpeed (its own checkpoints) with ESPnet's Trainer only
            cls.trainer = Trainer
        super().main_worker(args)

    @classmethod
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable:
        return CommonCollateFn(int_pad_value=0)  # 0 = <pad>; the model uses lengths, not pad ids

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> Optional[Callable]:
        if not args.use_preprocessor:
            return None
        sources = sequence_files(args, "train") + sequence_files(args, "valid")
        return TtTPreprocessor(train, TtTVocabulary.from_token_list(args.token_list), args.max_seq_len, sources)

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ("seq",)

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ()

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> TtTModel:
        # the shape pass (--collect_stats) never runs the model: no need to read pretrained weights
        model = cls._build_model(args, load_pretrained=not getattr(args, "collect_stats", False))
        for init_param in getattr(args, "init_param", None) or []:  # ESPnet loads them next, unchecked
            check_init_param(init_param, model, args.ignore_init_mismatch)
        return model

    @classmethod
    def _build_model(cls, args: argparse.Namespace, load_pretrained: bool) -> TtTModel:
        """Resolves ``args`` so that config.yaml alone rebuilds the model: the token list, and for
        a pretrained backbone its ``hf_config``; ``load_pretrained=False`` skips pretrained weights."""
        vocab = TtTVocabulary.from_token_list(args.token_list)
        args.token_list = list(vocab.token_list)
        backbone_class = backbone_choices.get_class(args.backbone)
        conf = dict(args.backbone_conf)
        pretrained = getattr(backbone_class, "needs_token_list", False)
        if pretrained:
            if args.init is not None:
                raise ValueError(f"--init {args.init} would overwrite the pretrained weights of backbone {args.backbone}")
            conf.update(token_list=vocab.token_list, load_weights=conf.get("load_weights", True) and load_pretrained)
        backbone = backbone_class(vocab_size=len(vocab), **conf)
        if pretrained:
            args.backbone_conf = {**args.backbone_conf, "hf_config": backbone.hf_config()}
        model = model_choices.get_class(args.model)(token_list=vocab, backbone=backbone, **args.model_conf)
        if args.init is not None:
            initialize(model, args.init)
        return model

    @classmethod
    def build_model_from_file(
        cls,
        config_file: Optional[Union[Path, str]] = None,
        model_file: Optional[Union[Path, str]] = None,
        device: str = "cpu",
    ) -> Tuple[TtTModel, argparse.Namespace]:
        """Like AbsTask's, but the weights load weights-only and strictly after the checks of
        :func:`~espnet2_ttt.models.weights.load_weights`, and a pretrained backbone is built from
        config.yaml alone when ``model_file`` brings the weights.  A config that cannot be read or
        built is an InputError naming it."""
        if config_file is None:
            if model_file is None:
                raise ValueError("give config_file or model_file")
            config_file = Path(model_file).parent / "config.yaml"
        with reading(config_file, (ValueError, yaml.YAMLError)):
            config = yaml.safe_load(read_utf8_text(config_file))
        if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
            raise InputError(f"{config_file}: not a training config (a YAML mapping of option names)")
        missing = [name for name in BUILD_OPTIONS if name not in config]
        if missing:
            raise InputError(f"{config_file}: {missing[0]}: missing (the model is built from "
                             f"{', '.join(BUILD_OPTIONS)})")
        args = argparse.Namespace(**config)
        with reading(config_file, (ValueError, TypeError, KeyError), "cannot build a TtT model"):
            model = cls._build_model(args, load_pretrained=model_file is None).to(device)
        if model_file is not None:
            load_weights(model, model_file, device)
        return model, args
