"""factorization-curse: reversal-curse tasks and factorization-agnostic training objectives.

Public API::

    tasks:      retrieval_task, relationship_task, bios_task, star_graph_task, load_facts,
                facts_task, country_facts, countries_task, TaskData, Query, Fact
    data:       Vocab, encode_sequences, token_reverse, entity_reverse, training_sequences
    objectives: OBJECTIVES, Objective, get_objective, objective_loss
    models:     ModelConfig, PAST, build_model
    decoding:   decode, evaluate_queries, score
    training:   TrainConfig, train, save_checkpoint, load_checkpoint
    runs:       RunConfig, run_experiment, run_table, run_paper
    wiki:       load_genwiki, wikireversal_task, Passage (GenWiki is not bundled)
    hf:         FinetuneConfig, finetune, build_tiny_checkpoint (fine-tuning local Hugging Face
                checkpoints); PAST as a transformers model in `factorization_curse.hf`
"""

from importlib.metadata import PackageNotFoundError, version

from factorization_curse._data import Vocab as Vocab
from factorization_curse._data import encode_sequences as encode_sequences
from factorization_curse._data import entity_reverse as entity_reverse
from factorization_curse._data import token_reverse as token_reverse
from factorization_curse._data import training_sequences as training_sequences
from factorization_curse._decode import decode as decode
from factorization_curse._decode import evaluate_queries as evaluate_queries
from factorization_curse._decode import score as score
from factorization_curse._experiment import RunConfig as RunConfig
from factorization_curse._experiment import run_experiment as run_experiment
from factorization_curse._finetune import FinetuneConfig as FinetuneConfig
from factorization_curse._finetune import build_tiny_checkpoint as build_tiny_checkpoint
from factorization_curse._finetune import finetune as finetune
from factorization_curse._models import PAST as PAST
from factorization_curse._models import ModelConfig as ModelConfig
from factorization_curse._models import build_model as build_model
from factorization_curse._objectives import OBJECTIVES as OBJECTIVES
from factorization_curse._objectives import Objective as Objective
from factorization_curse._objectives import get_objective as get_objective
from factorization_curse._objectives import objective_loss as objective_loss
from factorization_curse._paper import run_paper as run_paper
from factorization_curse._table import run_table as run_table
from factorization_curse._tasks import Fact as Fact
from factorization_curse._tasks import Query as Query
from factorization_curse._tasks import TaskData as TaskData
from factorization_curse._tasks import bios_task as bios_task
from factorization_curse._tasks import countries_task as countries_task
from factorization_curse._tasks import country_facts as country_facts
from factorization_curse._tasks import facts_task as facts_task
from factorization_curse._tasks import load_facts as load_facts
from factorization_curse._tasks import relationship_task as relationship_task
from factorization_curse._tasks import retrieval_task as retrieval_task
from factorization_curse._tasks import star_graph_task as star_graph_task
from factorization_curse._train import TrainConfig as TrainConfig
from factorization_curse._train import load_checkpoint as load_checkpoint
from factorization_curse._train import save_checkpoint as save_checkpoint
from factorization_curse._train import train as train
from factorization_curse._wiki import Passage as Passage
from factorization_curse._wiki import load_genwiki as load_genwiki
from factorization_curse._wiki import wikireversal_task as wikireversal_task

try:
    __version__ = version("factorization-curse")
except PackageNotFoundError:  # running from a source tree (PYTHONPATH) without installation
    __version__ = "unknown"

__all__ = [
    "OBJECTIVES", "PAST", "Fact", "Passage", "ModelConfig", "Objective", "Query", "RunConfig", "TaskData",
    "TrainConfig", "Vocab", "__version__", "bios_task", "build_model", "countries_task",
    "country_facts", "decode", "encode_sequences", "entity_reverse", "evaluate_queries",
    "facts_task", "get_objective", "load_checkpoint", "load_facts", "load_genwiki", "objective_loss",
    "relationship_task", "retrieval_task", "run_experiment", "run_paper", "run_table", "save_checkpoint",
    "score", "star_graph_task", "token_reverse", "train", "training_sequences", "wikireversal_task",
    "FinetuneConfig", "build_tiny_checkpoint", "finetune",
]
